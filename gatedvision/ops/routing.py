"""Token-to-token attention restricted to routed regions (BiFormer's bi-level routing attention,
the step after region routing).

Each query region attends to the tokens of the ``topk`` key regions the router picked for it. The
original implementation gathers the keys and values of every query region's top-k regions at once,
a ``topk``-fold copy of k/v, then materialises the full attention matrix; at detection resolutions
that takes tens of GB (rayleizhu/BiFormer#21). Here query regions are processed in chunks sized to
a memory budget and each chunk runs :func:`torch.nn.functional.scaled_dot_product_attention`
(a fused kernel that does not keep the attention matrix), with the same result.

``backend='reference'`` (or ``use_backend('routed_attention', 'reference')``, or
``GATEDVISION_ROUTED_ATTN=reference``) runs the original formulation (for comparisons).
"""
import os

import torch
import torch.nn.functional as F

from .switch import resolve_backend

__all__ = ['routed_attention', 'routed_attention_reference']

# bytes of gathered keys+values per chunk; GATEDVISION_ROUTED_ATTN_CHUNK_MB overrides
_DEFAULT_CHUNK_MB = 64


def routed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, region_idx: torch.Tensor,
                     scale: float, chunk_bytes: int = None, backend: str = 'auto') -> torch.Tensor:
    """Attention of each query region over the tokens of its routed key regions.

    Args:
        q: (N, R, heads, Tq, Dk) queries, ``R`` regions of ``Tq`` tokens.
        k: (N, R, heads, Tk, Dk) keys per region.
        v: (N, R, heads, Tk, Dv) values per region.
        region_idx: (N, R, topk) int64, the key regions each query region attends to.
        scale: logit scale.
        chunk_bytes: memory budget for the keys/values gathered at once.
        backend: ``'auto'`` (= ``'chunked'``), ``'chunked'`` or ``'reference'`` (the original's
            formulation, for comparisons); see :mod:`gatedvision.ops.switch`.

    Returns:
        (N, R, heads, Tq, Dv).
    """
    if resolve_backend('routed_attention', backend) == 'reference':
        return routed_attention_reference(q, k, v, region_idx, scale)
    n, r, heads, tq, dk = q.shape
    topk, tk, dv = region_idx.shape[-1], k.shape[-2], v.shape[-1]
    if chunk_bytes is None:
        chunk_bytes = int(os.environ.get('GATEDVISION_ROUTED_ATTN_CHUNK_MB', _DEFAULT_CHUNK_MB)) << 20
    per_region = n * topk * heads * tk * (dk + dv) * k.element_size()
    step = max(1, min(r, chunk_bytes // max(per_region, 1)))
    batch = torch.arange(n, device=q.device).view(n, 1, 1)
    outs = []
    for r0 in range(0, r, step):
        idx = region_idx[:, r0:r0 + step]                        # (N, r, topk)
        # (N, r, topk, heads, Tk, D) -> (N, r, heads, topk*Tk, D)
        ks = k[batch, idx].transpose(2, 3).reshape(n, -1, heads, topk * tk, dk)
        vs = v[batch, idx].transpose(2, 3).reshape(n, -1, heads, topk * tk, dv)
        qs = q[:, r0:r0 + step]
        rr = qs.shape[1]
        # the fused (flash) CPU and CUDA kernels take 4-D inputs; 5-D falls back to the math path
        o = F.scaled_dot_product_attention(
            qs.reshape(n * rr, heads, tq, dk), ks.reshape(n * rr, heads, topk * tk, dk),
            vs.reshape(n * rr, heads, topk * tk, dv), scale=scale)
        outs.append(o.view(n, rr, heads, tq, dv))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


def routed_attention_reference(q, k, v, region_idx, scale):
    """The original formulation (gather everything, explicit softmax); for tests and benchmarks."""
    n, r, heads, tq, dk = q.shape
    topk, tk = region_idx.shape[-1], k.shape[-2]
    gather = region_idx.view(n, r, topk, 1, 1, 1)
    ks = torch.gather(k.unsqueeze(1).expand(-1, r, -1, -1, -1, -1), 2,
                      gather.expand(-1, -1, -1, heads, tk, dk))
    vs = torch.gather(v.unsqueeze(1).expand(-1, r, -1, -1, -1, -1), 2,
                      gather.expand(-1, -1, -1, heads, tk, v.shape[-1]))
    ks = ks.transpose(2, 3).reshape(n, r, heads, topk * tk, dk)
    vs = vs.transpose(2, 3).reshape(n, r, heads, topk * tk, -1)
    attn = ((q * scale) @ ks.transpose(-2, -1)).softmax(-1)
    return attn @ vs
