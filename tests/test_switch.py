"""gatedvision.ops.switch: one precedence for every op's backend (argument, context / setter,
environment variable, auto)."""
import pytest
import torch

from gatedvision.ops import KERNELS, routed_attention, set_backend, use_backend
from gatedvision.ops.switch import resolve_backend


@pytest.mark.parametrize('op', sorted(KERNELS))
def test_precedence(op, monkeypatch):
    kernel = KERNELS[op]
    first, second = kernel.backends[:2]
    assert resolve_backend(op) == 'auto'
    monkeypatch.setenv(kernel.env, first)
    assert resolve_backend(op) == first                      # the environment variable over auto
    with use_backend(op, second):
        assert resolve_backend(op) == second                 # the context over the environment
        assert resolve_backend(op, first) == first           # the call's own argument over both
    assert resolve_backend(op) == first                      # the context ends with its block
    set_backend(op, second)
    try:
        assert resolve_backend(op) == second                 # process-wide, over the environment
        with use_backend(op, first):
            assert resolve_backend(op) == first
    finally:
        set_backend(op, None)
    assert resolve_backend(op) == first


def test_bad_names_are_errors_naming_where(monkeypatch):
    monkeypatch.setenv('GATEDVISION_NA_BACKEND', 'cuda')
    with pytest.raises(ValueError, match=r"unknown na2d_av backend 'cuda' \(environment variable "
                                         r"GATEDVISION_NA_BACKEND\); choose one of \('auto', 'dense', 'loop', 'triton'\)"):
        resolve_backend('na2d_av')
    with pytest.raises(ValueError, match=r"unknown gla backend 'cuda' \(use_backend\)"):
        with use_backend('gla', 'cuda'):
            pass
    with pytest.raises(ValueError, match="unknown op 'nat'"):
        set_backend('nat', 'loop')


def test_routed_attention_takes_a_backend_argument(monkeypatch):
    import sys
    ra = sys.modules['gatedvision.ops.routing']
    calls = []
    monkeypatch.setattr(ra, 'routed_attention_reference', lambda *a: calls.append(a) or a[0])
    q = torch.randn(1, 4, 1, 2, 8)
    idx = torch.zeros(1, 4, 1, dtype=torch.long)
    monkeypatch.setenv('GATEDVISION_ROUTED_ATTN', 'reference')
    routed_attention(q, q, q, idx, 1.0, backend='chunked')   # the argument wins over the environment
    assert not calls
    routed_attention(q, q, q, idx, 1.0)
    assert len(calls) == 1


def test_no_function_shadows_a_module():
    """``gatedvision.ops.gla`` is the function; its module has a name of its own (and so on)."""
    import importlib.util
    import gatedvision.ops as ops
    shadowing = [name for name in ops.__all__ if importlib.util.find_spec(f'gatedvision.ops.{name}') is not None]
    assert not shadowing, shadowing
