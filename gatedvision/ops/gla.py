"""Gated linear attention (GLA) with per-channel, data-dependent forget gates.

One head, q_t, k_t ∈ ℝ^K, v_t ∈ ℝ^V, log-gates g_t ∈ ℝ^K with g ≤ 0 (natural log of the decay):

    S_t = diag(exp(g_t)) · S_{t-1} + k_tᵀ v_t,        o_t = scale · q_t · S_t      (token t included)

``reverse=True`` scans from the end (flip, scan, flip). ViG combines the two directions with
separate gates: :func:`bidirectional_gla`, ``(o_fw + o_bw) / 2``.

Paths (layout ``[B, T, H, K]`` / ``[B, T, H, V]`` as fla-core 0.6):

- ``'torch'``: chunked parallel form, the default off-GPU, trains on CPU. Chunks of 32 tokens pass
  the state between them; inside a chunk, sub-blocks of 8 are exact (a 3-D decay tensor) and
  pairs of sub-blocks use a matmul with the decay split at the earlier block's end, so every
  exponent is ≤ 0: no overflow however strong the gates (the plain "fast" form overflows once a
  half-chunk's summed decay passes ≈ 88 in fp32).
- ``'fla'``: fla-core's Triton ``chunk_gla`` for CUDA tensors (``pip install fla-core``), imported
  only there; ``'auto'`` falls back to torch with a one-time warning when it is missing.
- :func:`gla_recurrent`: the token-by-token recurrence, the reference for tests.

``GATEDVISION_GLA_BACKEND`` overrides ``backend``.
"""
import os
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ['gla', 'bidirectional_gla', 'gla_recurrent']

_BACKENDS = ('auto', 'torch', 'fla')
_SEGMENT = 4096  # tokens per segment of the torch path (a multiple of the chunk)
_warned = False


def gla_recurrent(q, k, v, g, scale: Optional[float] = None, initial_state=None,
                  output_final_state: bool = False, reverse: bool = False):
    """Token-by-token reference (fp32 accumulation). Returns (o, final_state or None)."""
    b, t, h, dk = q.shape
    scale = dk ** -0.5 if scale is None else scale
    acc = torch.promote_types(q.dtype, torch.float32)  # fp32 at least, fp64 stays fp64
    dtype = v.dtype
    q, k, v, g = (x.to(acc) for x in (q, k, v, g))
    state = (initial_state.to(acc).clone() if initial_state is not None
             else q.new_zeros(b, h, dk, v.shape[-1]))
    out = q.new_empty(b, t, h, v.shape[-1])
    steps = range(t - 1, -1, -1) if reverse else range(t)
    for i in steps:
        state = state * g[:, i].exp()[..., None] + k[:, i][..., None] * v[:, i][..., None, :]
        out[:, i] = scale * (q[:, i][..., None] * state).sum(-2)
    return out.to(dtype), (state if output_final_state else None)


def _chunk_gla(q, k, v, g, scale, initial_state, chunk: int = 32, sub: int = 8):
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    dtype = v.dtype
    acc = torch.promote_types(q.dtype, torch.float32)
    n = -(-t // chunk)
    pad = n * chunk - t
    # padding with q = k = v = 0 and g = 0 (no decay) leaves the result unchanged
    q, k, v, g = (F.pad(x.to(acc), (0, 0, 0, 0, 0, pad)) for x in (q, k, v, g))

    def blocks(x):  # (B, T, H, D) -> (B, H, N, C, D)
        return x.view(b, n, chunk, h, -1).permute(0, 3, 1, 2, 4)

    q, k, v, g = map(blocks, (q, k, v, g))
    q = q * scale
    cum = g.cumsum(-2)                                              # b_i, inclusive, ≤ 0
    nb = chunk // sub
    qs, ks, cs = (x.view(b, h, n, nb, sub, dk) for x in (q, k, cum))

    # diagonal sub-blocks, exactly: A[i, j] = Σ_d q_id k_jd exp(b_id - b_jd), j <= i; one key
    # column at a time keeps the decay tensor at the size of q (not c times that)
    causal = torch.ones(sub, sub, dtype=torch.bool, device=q.device).tril()
    a_diag = torch.stack([
        # exponent b_i - b_j <= 0 for i >= j; the masked i < j entries are clamped to stay finite
        (qs * (cs - cs[..., j:j + 1, :]).clamp(max=0).exp() * ks[..., j:j + 1, :]).sum(-1)
        for j in range(sub)], dim=-1) * causal                      # (..., nb, c, c)

    # sub-block pairs I > J through a matmul, the decay split at the end of block J
    ref = cs[..., -1, :]                                            # (B, H, N, nb, K): r_J
    k_t = ks * (ref[..., None, :] - cs).exp()                       # k_J exp(r_J - b_J) <= 1
    # exponent b_I - r_J <= 0 for I > J; the other pairs are masked out, clamp keeps them finite
    q_t = qs[..., :, None, :, :] * (cs[..., :, None, :, :] - ref[..., None, :, None, :]).clamp(max=0).exp()
    a_off = q_t @ k_t[..., None, :, :, :].transpose(-2, -1)         # (..., I, J, c, c)
    later = torch.ones(nb, nb, dtype=torch.bool, device=q.device).tril(-1)
    a_off = a_off * later[:, :, None, None]
    # assemble the (C, C) intra-chunk matrix from the blocks
    full = a_off.clone()  # (B, H, N, I, J, c, c)
    idx = torch.arange(nb, device=q.device)
    full[..., idx, idx, :, :] = a_diag
    attn = full.permute(0, 1, 2, 3, 5, 4, 6).reshape(b, h, n, chunk, chunk)
    o = attn @ v                                                    # intra-chunk part

    # inter-chunk: carry the state S (B, H, K, V) through the chunks
    state = (initial_state.to(acc) if initial_state is not None
             else q.new_zeros(b, h, dk, dv))
    q_dec = q * cum.exp()                                           # q_i exp(b_i)
    last = cum[..., -1:, :]                                         # b_{C-1}
    k_dec = k * (last - cum).exp()                                  # k_j exp(b_{C-1} - b_j)
    outs = []
    for i in range(n):
        outs.append(q_dec[:, :, i] @ state)
        state = state * last[:, :, i].transpose(-2, -1).exp() + k_dec[:, :, i].transpose(-2, -1) @ v[:, :, i]
    o = o + torch.stack(outs, dim=2)
    o = o.permute(0, 2, 3, 1, 4).reshape(b, n * chunk, h, dv)[:, :t]
    return o.to(dtype), state


def _backend(q: torch.Tensor, backend: str) -> str:
    global _warned
    backend = os.environ.get('GATEDVISION_GLA_BACKEND', backend)
    if backend not in _BACKENDS:
        raise ValueError(f"unknown GLA backend '{backend}'; choose one of {_BACKENDS}")
    if backend == 'auto':
        if not q.is_cuda:
            return 'torch'
        try:
            import fla.ops.gla  # noqa: F401
            return 'fla'
        except ImportError:
            if not _warned:
                warnings.warn('fla-core is not installed: GLA runs its torch path on the GPU '
                              '(pip install fla-core for the Triton kernels)')
                _warned = True
            return 'torch'
    return backend


def gla(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
        scale: Optional[float] = None, initial_state: Optional[torch.Tensor] = None,
        output_final_state: bool = False, reverse: bool = False,
        backend: str = 'auto') -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Gated linear attention.

    Args:
        q, k: (B, T, H, K); v: (B, T, H, V); g: (B, T, H, K) log forget gates (<= 0).
        scale: applied to q (default K ** -0.5).
        initial_state: (B, H, K, V) fp32 state before the first token scanned.
        output_final_state: also return the state after the last token scanned.
        reverse: scan from the last token to the first.
        backend: ``'auto'``, ``'torch'`` or ``'fla'``.

    Returns:
        (o of shape (B, T, H, V), final state or None).
    """
    if q.shape != k.shape or q.shape != g.shape or q.shape[:3] != v.shape[:3]:
        raise ValueError(f'gla expects q, k, g (B, T, H, K) and v (B, T, H, V); got q {tuple(q.shape)}, '
                         f'k {tuple(k.shape)}, v {tuple(v.shape)}, g {tuple(g.shape)}')
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if _backend(q, backend) == 'fla':
        from fla.ops.gla import chunk_gla
        if reverse:
            q, k, v, g = (x.flip(1) for x in (q, k, v, g))
        o, state = chunk_gla(q, k, v, g, scale=scale, initial_state=initial_state,
                             output_final_state=output_final_state)
        return (o.flip(1) if reverse else o), state
    if reverse:
        q, k, v, g = (x.flip(1) for x in (q, k, v, g))
    # long sequences (detection/segmentation maps) in segments that hand the state on, so the
    # chunk temporaries stay the size of one segment
    outs, state = [], initial_state
    # fp32 inside whatever autocast is on: the decays exp(cumulative g) need it, and autocast would
    # otherwise run the matmuls in bf16 beside fp32 elementwise parts (mixed-dtype index_put);
    # the output comes back in v's dtype
    with torch.autocast(q.device.type, enabled=False):
        for s0 in range(0, q.shape[1], _SEGMENT):
            part = slice(s0, s0 + _SEGMENT)
            o, state = _chunk_gla(q[:, part], k[:, part], v[:, part], g[:, part], scale, state)
            outs.append(o)
    o = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
    return (o.flip(1) if reverse else o), (state if output_final_state else None)


def bidirectional_gla(q, k, v, g_fw, g_bw, scale: Optional[float] = None,
                      backend: str = 'auto') -> torch.Tensor:
    """ViG's bidirectional GLA: ``(forward scan with g_fw + backward scan with g_bw) / 2``."""
    o_fw, _ = gla(q, k, v, g_fw, scale, backend=backend)
    o_bw, _ = gla(q, k, v, g_bw, scale, reverse=True, backend=backend)
    return (o_fw + o_bw) / 2
