"""gatedvision.ops.routed_attention (module ops.routing) against the original gather-everything formulation."""
import pytest
import torch

from gatedvision.ops.routing import routed_attention, routed_attention_reference


@pytest.mark.parametrize('n, r, heads, t, dk, dv, topk', [
    (2, 49, 2, 16, 32, 32, 1), (1, 16, 4, 9, 16, 24, 4), (1, 4, 8, 64, 8, 8, 4)])
@pytest.mark.parametrize('chunk_bytes', [1, 4096, 1 << 30])  # one region a chunk .. all at once
def test_matches_reference_with_gradients(n, r, heads, t, dk, dv, topk, chunk_bytes):
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(n, r, heads, t, dk, generator=g, dtype=torch.float64, requires_grad=True)
            for _ in range(2))
    v = torch.randn(n, r, heads, t, dv, generator=g, dtype=torch.float64, requires_grad=True)
    idx = torch.stack([torch.randperm(r, generator=g)[:topk] for _ in range(n * r)]).view(n, r, topk)
    scale = dk ** -0.5 / 2
    out = routed_attention(q, k, v, idx, scale, chunk_bytes=chunk_bytes)
    ref = routed_attention_reference(q, k, v, idx, scale)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    w = torch.randn_like(ref)
    grads = torch.autograd.grad((out * w).sum(), (q, k, v))
    grads_ref = torch.autograd.grad((ref * w).sum(), (q, k, v))
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_switch_selects_the_reference(monkeypatch):
    import sys
    ra = sys.modules['gatedvision.ops.routing']
    calls = []
    monkeypatch.setattr(ra, 'routed_attention_reference', lambda *a: calls.append(a) or a[0])
    monkeypatch.setenv('GATEDVISION_ROUTED_ATTN', 'reference')
    q = torch.randn(1, 4, 1, 2, 8)
    ra.routed_attention(q, q, q, torch.zeros(1, 4, 1, dtype=torch.long), 1.0)
    assert len(calls) == 1


def test_bf16_autocast_stays_close_to_fp32():
    """--amp: under bf16 autocast the routed attention keeps bf16's accuracy (relative error of
    the output below 1%), with gradients for every input."""
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 16, 4, 9, 16, generator=g, requires_grad=True) for _ in range(2))
    v = torch.randn(2, 16, 4, 9, 24, generator=g, requires_grad=True)
    idx = torch.stack([torch.randperm(16, generator=g)[:4] for _ in range(32)]).view(2, 16, 4)
    ref = routed_attention_reference(q, k, v, idx, 0.25)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = routed_attention(q, k, v, idx, 0.25)
    err = (out.float() - ref).norm() / ref.norm()
    assert err < 1e-2, err
    grads = torch.autograd.grad(out.float().square().sum(), (q, k, v))
    assert all(torch.isfinite(x).all() and x.abs().sum() > 0 for x in grads)
