"""One way to pick a kernel's backend, the same for every op.

Precedence, first match wins:

1. the op's explicit ``backend=`` argument (anything but ``'auto'``);
2. :func:`use_backend` (a context manager) or :func:`set_backend` (process-wide);
3. the op's environment variable (``GATEDVISION_GLA_BACKEND``, ``GATEDVISION_NA_BACKEND``,
   ``GATEDVISION_ROUTED_ATTN``);
4. ``'auto'``: the op's own choice for the tensors at hand.

    from gatedvision.ops import use_backend
    with use_backend('na2d_av', 'loop'):
        model(x)

``KERNELS`` declares each op's backends (``tools/benchmark.py --backends`` reads it).
"""
import contextlib
import os
import threading
from dataclasses import dataclass, field
from typing import Dict, Iterator, Optional, Tuple

__all__ = ['Kernel', 'KERNELS', 'resolve_backend', 'set_backend', 'use_backend']


@dataclass(frozen=True)
class Kernel:
    """An op with several backends: its name, environment variable and backends (besides
    ``'auto'``), and the packages a backend imports (backend -> pip name)."""
    name: str
    env: str
    backends: Tuple[str, ...]
    packages: Dict[str, str] = field(default_factory=dict)


KERNELS = {k.name: k for k in (
    Kernel('gla', 'GATEDVISION_GLA_BACKEND', ('torch', 'fla'), {'fla': 'fla-core'}),
    Kernel('na2d_av', 'GATEDVISION_NA_BACKEND', ('dense', 'loop', 'triton'), {'triton': 'triton'}),
    Kernel('routed_attention', 'GATEDVISION_ROUTED_ATTN', ('chunked', 'reference')),
)}

_state = threading.local()  # {op: backend} set by use_backend / set_backend, per thread
_process: Dict[str, str] = {}


def _check(op: str, backend: str, where: str) -> str:
    kernel = KERNELS[op]
    choices = ('auto',) + kernel.backends
    if backend not in choices:
        raise ValueError(f"unknown {op} backend '{backend}' ({where}); choose one of {choices}")
    return backend


def resolve_backend(op: str, backend: str = 'auto') -> str:
    """The backend ``op`` runs for an explicit ``backend`` argument: that argument unless it is
    ``'auto'``, else :func:`use_backend` / :func:`set_backend`, else the environment variable, else
    ``'auto'`` (which the op then resolves itself)."""
    kernel = KERNELS[op]
    if backend != 'auto':
        return _check(op, backend, 'backend= argument')
    chosen = getattr(_state, 'backends', {}).get(op) or _process.get(op)
    if chosen:
        return chosen
    return _check(op, os.environ.get(kernel.env, 'auto'), f'environment variable {kernel.env}')


def set_backend(op: str, backend: Optional[str]) -> None:
    """Process-wide default backend of ``op`` (``None`` or ``'auto'`` clears it)."""
    if op not in KERNELS:
        raise ValueError(f"unknown op '{op}'; choose one of {tuple(KERNELS)}")
    if backend in (None, 'auto'):
        _process.pop(op, None)
    else:
        _process[op] = _check(op, backend, 'set_backend')


@contextlib.contextmanager
def use_backend(op: str, backend: str) -> Iterator[None]:
    """Run ``op`` with ``backend`` inside the block (this thread), unless a call names its own."""
    if op not in KERNELS:
        raise ValueError(f"unknown op '{op}'; choose one of {tuple(KERNELS)}")
    _check(op, backend, 'use_backend')
    saved = dict(getattr(_state, 'backends', {}))
    _state.backends = {**saved, op: backend}
    try:
        yield
    finally:
        _state.backends = saved
