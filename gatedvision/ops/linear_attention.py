"""Gated linear attention (GLA) with per-channel, data-dependent forget gates.

One head, q_t, k_t ∈ ℝ^K, v_t ∈ ℝ^V, log-gates g_t ∈ ℝ^K with g ≤ 0 (natural log of the decay):

    S_t = diag(exp(g_t)) · S_{t-1} + k_tᵀ v_t,        o_t = scale · q_t · S_t      (token t included)

``reverse=True`` scans from the end (flip, scan, flip). ViG combines the two directions with
separate gates: :func:`bidirectional_gla`, ``(o_fw + o_bw) / 2``.

Paths (layout ``[B, T, H, K]`` / ``[B, T, H, V]`` as fla-core 0.6, or ``head_first`` ``[B, H, T, ·]``):

- ``'torch'``, the default off-GPU, trains on CPU; two forms, picked per call from the gates:
  - *factorised*, for gates like ViG's (logsigmoid(x)/16 >= -0.04 a token where x >= 0; a chunk
    is refused only where its channel's x averages below -10): inside a chunk of at
    most 64 tokens the decay-masked attention is one matmul of q·exp(b) by k·exp(-b) (b: the
    cumulative log-decay from the chunk's start), valid while a chunk's summed decay stays within
    ``_LIMIT`` = 40 (every factor within e^±40 in fp32); the state passes between chunks.
    :func:`bidirectional_gla` runs both directions in one pass (the forward scan's lower triangle
    and the backward one's upper triangle in one matrix, no flipped copies).
  - *exact* for stronger gates: chunks of 32 tokens, sub-blocks of 8 exact (a 3-D decay tensor),
    pairs of sub-blocks through a matmul with the decay split at the earlier block's end, so every
    exponent is <= 0 however strong the gates.
- ``'fla'``: fla-core's Triton ``chunk_gla`` for CUDA tensors (``pip install fla-core``), imported
  only there; ``'auto'`` falls back to torch with a one-time warning when it is missing.
- :func:`gla_recurrent`: the token-by-token recurrence, the reference for tests.

Picking a backend: :mod:`gatedvision.ops.switch` (``backend=``, ``use_backend('gla', ...)``,
``GATEDVISION_GLA_BACKEND``, then ``'auto'``).
"""
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .switch import resolve_backend

__all__ = ['gla', 'bidirectional_gla', 'gla_recurrent']

_SEGMENT = 4096  # tokens per segment of the exact torch path (a multiple of the chunk)
_CHUNK = 64      # the factorised path's largest chunk
_LIMIT = 40.0    # the largest summed decay of one chunk it takes: every factor within e^±40
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


def _chunk_size(t: int, chunk: int) -> int:
    """A divisor of ``t`` in [chunk / 2, chunk] where one exists (no padding: 3136 = 64 x 49,
    784 = 14 x 56), else chunks as even as the count allows (padded at the end)."""
    if t <= chunk:
        return t
    for c in range(chunk, chunk // 2 - 1, -1):
        if t % c == 0:
            return c
    return -(-t // -(-t // chunk))


def _fits(gates, chunk: int = _CHUNK, limit: float = _LIMIT) -> torch.Tensor:
    """Whether every chunk's summed log-decay of every gate (head-first (..., T, K)) stays within
    ``limit``, the factorised path's condition, as a 0-d bool tensor (what ``torch.cond`` takes)."""
    fits = None
    for g in gates:
        t = g.shape[-2]
        c = _chunk_size(t, chunk)
        n = -(-t // c)
        total = F.pad(g, (0, 0, 0, n * c - t)).unflatten(-2, (n, c)).sum(-2)
        ok = -total.min() <= limit
        fits = ok if fits is None else fits & ok
    return fits


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose gradient is contiguous: the two branches of a ``torch.cond`` must hand their
    operands' gradients back in one layout, and each path's matmuls leave its own."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous()


def _contiguous_grads(*xs):
    """``xs`` through :class:`_ContiguousGrad` when a backward will follow; as they are under
    torch.export (whose autocast pass cannot take the Function inside a ``torch.cond`` branch)."""
    if torch.compiler.is_exporting() or not any(x.requires_grad for x in xs):
        return xs
    return tuple(map(_ContiguousGrad.apply, xs))


def _scale(q, scale: Optional[float]):
    """``scale``, or K ** -0.5 from q's shape: inside a ``torch.cond`` branch, where a scale
    computed outside from a dynamic shape (a SymFloat) cannot be carried in."""
    return q.shape[-1] ** -0.5 if scale is None else scale


def _traced() -> bool:
    """Under torch.compile or torch.export: the path choice becomes ``torch.cond`` (both paths in
    the graph, picked at run time), not a Python branch on a tensor's value, which would break the
    graph (compile) or fail (export)."""
    return torch.compiler.is_compiling()


def _factorised(q, k, v, g_f, g_b, scale, s_f=None, s_b=None, want_states=False, chunk=_CHUNK,
                limit=_LIMIT):
    """The forward scan with gates ``g_f`` plus the backward one with ``g_b`` (either may be None),
    head-first (..., T, ·) tensors, from the states ``s_f`` / ``s_b`` before each scan's first
    token. Returns (o_f + o_b, [final state of each scan, None unless computed]), or None where a
    chunk's summed decay exceeds ``limit`` (``limit=None``: the caller has checked, :func:`_fits`).

    Inside a chunk the forward scan's A[t, j] = Σ_d q_td k_jd exp(b_td - b_jd), j <= t, with b the
    inclusive cumulative log-decay from the chunk's start, is one matmul of q·exp(b) by k·exp(-b);
    the backward scan's (j >= t) uses the exclusive sums x = b - g the other way round,
    q·exp(-x) by k·exp(x). Every factor lies within exp(±limit): nothing overflows or underflows,
    and each product is exact to rounding. The same factors carry the state between chunks."""
    t = q.shape[-2]
    acc = torch.promote_types(q.dtype, torch.float32)
    c = _chunk_size(t, chunk)
    n = -(-t // c)
    pad = n * c - t

    def blocks(x):  # (..., T, D) -> (..., n, c, D) contiguous (the matmuls copy strided operands)
        x = F.pad(x.to(acc), (0, 0, 0, pad)) if pad else x.to(acc).contiguous()
        return x.unflatten(-2, (n, c))

    q, k, v = blocks(q) * scale, blocks(k), blocks(v)
    scans = []   # per scan: (factor of q, factor of k, q's inter-chunk factor, k's, chunk decay, reverse)
    for g, rev in ((g_f, False), (g_b, True)):
        if g is None:
            continue
        g = blocks(g)
        b = g.cumsum(-2)                                     # inclusive, <= 0
        total = b[..., -1:, :]                               # the chunk's summed log-decay
        if limit is not None and -total.min() > limit:
            return None
        decay = total.exp()
        if not rev:
            e = b.exp()
            qf, kf = q * e, k / e
            # inter-chunk: token t sees the state with exp(b_t) (= qf); key j reaches the chunk's
            # end with exp(total - b_j)
            scans.append((qf, kf, qf, kf * decay, decay, rev))
        else:
            e = (b - g).exp()                                # exp(x), x exclusive
            qf, kf = q / e, k * e
            # exp(R_t) = exp(total - x_t) for the state after the chunk; exp(x_j) to its start
            scans.append((qf, kf, qf * decay, kf, decay, rev))
    if len(scans) == 2:
        # the forward scan's strict lower triangle, the backward one's upper, and both diagonals
        # (equal: no decay between a token and itself)
        a_f = scans[0][0] @ scans[0][1].transpose(-1, -2)
        a_b = scans[1][0] @ scans[1][1].transpose(-1, -2)
        upper2 = torch.ones(c, c, dtype=acc, device=q.device).triu() + torch.eye(c, dtype=acc, device=q.device)
        attn = a_b.mul_(upper2).add_(a_f.tril_(-1))  # in place: the matmuls' backward needs neither
    else:
        qf, kf, _, _, _, rev = scans[0]
        attn = qf @ kf.transpose(-1, -2)
        attn = attn.triu() if rev else attn.tril()
    o = attn @ v                                             # intra-chunk, both scans
    finals = []
    for (_, _, qi, ki, decay, rev), s0 in zip(scans, (s_f, s_b) if g_f is not None else (s_b,)):
        if n == 1 and s0 is None and not want_states:
            finals.append(None)
            continue
        u = ki.transpose(-1, -2) @ v                         # (..., n, K, V): each chunk's own state
        decay = decay.transpose(-1, -2)                      # (..., n, K, 1)
        s = s0.to(acc) if s0 is not None else u.new_zeros(u.shape[:-3] + u.shape[-2:])
        before = [None] * n
        for m in (range(n - 1, -1, -1) if rev else range(n)):
            before[m] = s
            s = torch.addcmul(u[..., m, :, :], s, decay[..., m, :, :])
        o = o + qi @ torch.stack(before, dim=-3)
        finals.append(s)
    o = o.flatten(-3, -2)[..., :t, :]
    return o, finals


def _backend(q: torch.Tensor, backend: str) -> str:
    global _warned
    backend = resolve_backend('gla', backend)
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


def _check(q, k, v, g, head_first) -> None:
    if q.shape != k.shape or q.shape != g.shape or q.shape[:3] != v.shape[:3]:
        layout = '(B, H, T, K)' if head_first else '(B, T, H, K)'
        raise ValueError(f'gla expects q, k, g {layout} and v of the same leading shape; got q {tuple(q.shape)}, '
                         f'k {tuple(k.shape)}, v {tuple(v.shape)}, g {tuple(g.shape)}')


def gla(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
        scale: Optional[float] = None, initial_state: Optional[torch.Tensor] = None,
        output_final_state: bool = False, reverse: bool = False,
        backend: str = 'auto', head_first: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Gated linear attention.

    Args:
        q, k: (B, T, H, K); v: (B, T, H, V); g: (B, T, H, K) log forget gates (<= 0).
        scale: applied to q (default K ** -0.5).
        initial_state: (B, H, K, V) fp32 state before the first token scanned.
        output_final_state: also return the state after the last token scanned.
        reverse: scan from the last token to the first.
        backend: ``'auto'``, ``'torch'`` or ``'fla'``.
        head_first: tensors are (B, H, T, ·) instead (strided views are fine: no copies).

    Returns:
        (o of shape (B, T, H, V), or (B, H, T, V) with ``head_first``; final state or None).
    """
    _check(q, k, v, g, head_first)
    given_scale, scale = scale, _scale(q, scale)
    if _backend(q, backend) == 'fla':
        if head_first:  # fla-core 0.6 takes (B, T, H, ·)
            q, k, v, g = (x.transpose(1, 2) for x in (q, k, v, g))
        from fla.ops.gla import chunk_gla
        if reverse:
            q, k, v, g = (x.flip(1) for x in (q, k, v, g))
        o, state = chunk_gla(q, k, v, g, scale=scale, initial_state=initial_state,
                             output_final_state=output_final_state)
        o = o.flip(1) if reverse else o
        return (o.transpose(1, 2) if head_first else o), state
    if not head_first:
        q, k, v, g = (x.transpose(1, 2) for x in (q, k, v, g))
    # fp32 inside whatever autocast is on: the decays exp(cumulative g) need it, and autocast would
    # otherwise run the matmuls in bf16 beside fp32 elementwise parts; the output comes back in v's dtype
    with torch.autocast(q.device.type, enabled=False):
        gates = (None, g) if reverse else (g, None)
        states = (None, initial_state) if reverse else (initial_state, None)
        if _traced() and initial_state is None and not output_final_state:
            def factorised(q, k, v, g):
                # a fresh tensor (torch.cond's branches may not return views of their intermediates),
                # contiguous (both branches must return one layout)
                q, k, v, g = _contiguous_grads(q, k, v, g)
                return _factorised(q, k, v, *((None, g) if reverse else (g, None)), _scale(q, given_scale),
                                   limit=None)[0].clone(memory_format=torch.contiguous_format)

            def exact(q, k, v, g):  # the factorised branch's dtype and layout, not a view
                q, k, v, g = _contiguous_grads(q, k, v, g)
                return _exact(q, k, v, g, _scale(q, given_scale), None, reverse)[0].to(
                    torch.promote_types(q.dtype, torch.float32), copy=True, memory_format=torch.contiguous_format)

            operands = tuple(x.clone() for x in (q, k, v, g))  # torch.cond takes no aliasing operands
            o, state = torch.cond(_fits([g]), factorised, exact, operands), None
        else:
            done = _factorised(q, k, v, *gates, scale, *states, want_states=output_final_state)
            if done is not None:
                o, (state,) = done
            else:
                o, state = _exact(q, k, v, g, scale, initial_state, reverse)
    o = o.to(v.dtype)
    return (o if head_first else o.transpose(1, 2)), (state if output_final_state else None)


def _exact(q, k, v, g, scale, state, reverse):
    """The sub-block path for gates too strong to factorise, head-first in and out. Long sequences
    (detection/segmentation maps) go in segments that hand the state on, so the chunk temporaries
    stay the size of one segment."""
    q, k, v, g = (x.transpose(1, 2) for x in (q, k, v, g))      # (B, T, H, ·) for _chunk_gla
    if reverse:
        q, k, v, g = (x.flip(1) for x in (q, k, v, g))
    outs = []
    for s0 in range(0, q.shape[1], _SEGMENT):
        part = slice(s0, s0 + _SEGMENT)
        o, state = _chunk_gla(q[:, part], k[:, part], v[:, part], g[:, part], scale, state)
        outs.append(o)
    o = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
    return (o.flip(1) if reverse else o).transpose(1, 2), state


def bidirectional_gla(q, k, v, g_fw, g_bw, scale: Optional[float] = None,
                      backend: str = 'auto', head_first: bool = False) -> torch.Tensor:
    """ViG's bidirectional GLA: ``(forward scan with g_fw + backward scan with g_bw) / 2``.

    On the torch path both directions share one pass: one intra-chunk matrix (the forward scan's
    lower triangle plus the backward one's upper triangle) and no flipped copies."""
    _check(q, k, v, g_fw, head_first)
    if g_bw.shape != g_fw.shape:
        raise ValueError(f'bidirectional_gla expects g_fw and g_bw of one shape; got {tuple(g_fw.shape)} '
                         f'and {tuple(g_bw.shape)}')
    given_scale, scale = scale, _scale(q, scale)
    if _backend(q, backend) == 'torch':
        hf = (lambda x: x) if head_first else (lambda x: x.transpose(1, 2))
        with torch.autocast(q.device.type, enabled=False):
            if _traced():
                def factorised(q, k, v, g_fw, g_bw):  # contiguous: both branches must return one layout
                    q, k, v, g_fw, g_bw = _contiguous_grads(q, k, v, g_fw, g_bw)
                    return (_factorised(q, k, v, g_fw, g_bw, _scale(q, given_scale), limit=None)[0] / 2).contiguous()

                def exact(q, k, v, g_fw, g_bw):  # the factorised branch's dtype and layout
                    q, k, v, g_fw, g_bw = _contiguous_grads(q, k, v, g_fw, g_bw)
                    o_fw, o_bw = (_exact(q, k, v, g, _scale(q, given_scale), None, rev)[0]
                                  for g, rev in ((g_fw, False), (g_bw, True)))
                    return ((o_fw + o_bw) / 2).to(torch.promote_types(q.dtype, torch.float32)).contiguous()

                # copies: torch.cond takes no operands that alias each other (ViG's are views of one projection)
                operands = tuple(hf(x).clone() for x in (q, k, v, g_fw, g_bw))
                o = torch.cond(_fits(operands[3:]), factorised, exact, operands)
                return hf(o.to(v.dtype))
            done = _factorised(*map(hf, (q, k, v, g_fw, g_bw)), scale)
        if done is not None:
            return hf((done[0] / 2).to(v.dtype))
    o_fw, _ = gla(q, k, v, g_fw, scale, backend=backend, head_first=head_first)
    o_bw, _ = gla(q, k, v, g_bw, scale, reverse=True, backend=backend, head_first=head_first)
    return (o_fw + o_bw) / 2
