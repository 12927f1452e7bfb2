"""Neighborhood weighted sum ``na2d_av`` with NATTEN 0.15–0.17 semantics.

``out[b, g, i, j] = Σ_{u, v} attn[b, g, i, j, u·kw + v] · value[b, g, R_i[u], C_j[v]]`` where the
per-axis neighbour tables ``R``, ``C`` hold ``k`` positions ``d`` apart around each pixel, the window
clamped (shifted) at the borders so that every pixel has exactly ``k`` neighbours (never padded).
OverLoCK's ContMix applies its per-pixel dynamic kernels with it. NATTEN no longer offers the
function (removed in 0.20; 0.17 does not import on current torch), so gatedvision provides it:

- ``'dense'``: scatter the weights into an (HW × HW) matrix and multiply; fastest for small maps
  (classification resolutions, where the windows cover most of the map).
- ``'loop'``: k² gathers accumulated one at a time inside a custom autograd function whose backward
  recomputes them: O(B·G·H·W·C) memory at any kernel size, for detection/segmentation maps.
  (OverLoCK's own fallback unfolds the values, k²-fold memory: 169× at k = 13.)
- ``'triton'``: a Triton kernel for CUDA tensors (forward and backward).

``backend='auto'`` (the default) picks triton on CUDA when Triton is importable, else dense for maps
of at most ``DENSE_MAX_PIXELS`` pixels and loop above. Picking a backend: :mod:`gatedvision.ops.switch`
(``backend=``, ``use_backend('na2d_av', ...)``, ``GATEDVISION_NA_BACKEND``, then ``'auto'``).
"""
from typing import Sequence, Tuple, Union

import torch

from .switch import resolve_backend

__all__ = ['na2d_av', 'na_index', 'DENSE_MAX_PIXELS']

# above this many pixels the (HW)² matrix of the dense path costs more than the k² loop
DENSE_MAX_PIXELS = 1024


def _pair(x) -> Tuple[int, int]:
    return (x, x) if isinstance(x, int) else tuple(x)


def na_index(length: int, kernel_size: int, dilation: int = 1, device=None) -> torch.Tensor:
    """(length, kernel_size) neighbour positions along one axis, windows clamped at the borders."""
    if kernel_size * dilation > length:
        raise ValueError(f'neighborhood op needs kernel_size * dilation <= map size, got '
                         f'{kernel_size} * {dilation} > {length}')
    i = torch.arange(length, device=device)
    g, a = i % dilation, i // dilation
    n_g = length // dilation + (g < length % dilation).long()  # positions in i's dilation group
    left, right = kernel_size // 2, kernel_size // 2 + kernel_size % 2 - 1
    center = torch.minimum(a.clamp(min=left), n_g - 1 - right)
    return ((center - left) * dilation + g)[:, None] + torch.arange(kernel_size, device=device) * dilation


def _check(attn: torch.Tensor, value: torch.Tensor, kh: int, kw: int):
    if attn.ndim != 5 or value.ndim != 5 or attn.shape[:4] != value.shape[:4]:
        raise ValueError(f'na2d_av expects attn (B, G, H, W, k*k) and value (B, G, H, W, C) with '
                         f'matching B, G, H, W; got {tuple(attn.shape)} and {tuple(value.shape)}')
    if attn.shape[-1] != kh * kw:
        raise ValueError(f'attn has {attn.shape[-1]} weights per pixel, kernel {kh}x{kw} needs {kh * kw}')


def _dense(attn, value, rows, cols):
    b, g, h, w, kk = attn.shape
    # flat (HW, kh*kw) index of each neighbour, row-major u*kw + v as F.unfold orders them
    flat = (rows[:, None, :, None] * w + cols[None, :, None, :]).reshape(h * w, kk)
    mat = attn.new_zeros(b, g, h * w, h * w)
    mat = mat.scatter(3, flat.expand(b, g, -1, -1), attn.reshape(b, g, h * w, kk))
    return (mat @ value.reshape(b, g, h * w, -1)).view(b, g, h, w, -1)


class _LoopAV(torch.autograd.Function):
    """k² gather-multiply-accumulate steps; backward recomputes the gathers (no k² buffers)."""

    @staticmethod
    def forward(ctx, attn, value, rows, cols):
        ctx.save_for_backward(attn, value, rows, cols)
        kw = cols.shape[1]
        out = torch.zeros_like(value, dtype=torch.promote_types(attn.dtype, value.dtype))
        for u in range(rows.shape[1]):
            vr = value.index_select(2, rows[:, u])
            for v in range(kw):
                out.addcmul_(attn[..., u * kw + v, None], vr.index_select(3, cols[:, v]))
        return out.to(value.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        attn, value, rows, cols = ctx.saved_tensors
        kw = cols.shape[1]
        grad_attn = grad_value = None
        if ctx.needs_input_grad[0]:
            grad_attn = torch.empty_like(attn)
            for u in range(rows.shape[1]):
                vr = value.index_select(2, rows[:, u])
                for v in range(kw):
                    grad_attn[..., u * kw + v] = (grad_out * vr.index_select(3, cols[:, v])).sum(-1)
        if ctx.needs_input_grad[1]:
            grad_value = torch.zeros_like(value)
            part = torch.empty_like(value)
            for u in range(rows.shape[1]):
                part.zero_()
                for v in range(kw):  # columns first, then the rows of this u in one index_add
                    part.index_add_(3, cols[:, v], attn[..., u * kw + v, None] * grad_out)
                grad_value.index_add_(2, rows[:, u], part)
        return grad_attn, grad_value, None, None


def _backend(attn: torch.Tensor, backend: str) -> str:
    backend = resolve_backend('na2d_av', backend)
    if backend == 'auto':
        if attn.is_cuda and _triton_available():
            return 'triton'
        return 'dense' if attn.shape[2] * attn.shape[3] <= DENSE_MAX_PIXELS else 'loop'
    return backend


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
        return True
    except ImportError:
        return False


def na2d_av(attn: torch.Tensor, value: torch.Tensor, kernel_size: Union[int, Sequence[int]],
            dilation: Union[int, Sequence[int]] = 1, backend: str = 'auto') -> torch.Tensor:
    """Neighborhood weighted sum of ``value`` with per-pixel weights ``attn`` (NATTEN semantics).

    Args:
        attn: (B, G, H, W, kh*kw) weights, row-major over the window (already normalised).
        value: (B, G, H, W, C).
        kernel_size: window size, an int or (kh, kw).
        dilation: distance between window taps, an int or (dh, dw); kernel * dilation <= H, W.
        backend: ``'auto'``, ``'dense'``, ``'loop'`` or ``'triton'`` (see the module docstring).

    Returns:
        (B, G, H, W, C).
    """
    (kh, kw), (dh, dw) = _pair(kernel_size), _pair(dilation)
    _check(attn, value, kh, kw)
    h, w = attn.shape[2:4]
    rows = na_index(h, kh, dh, attn.device)
    cols = na_index(w, kw, dw, attn.device)
    backend = _backend(attn, backend)
    if backend == 'dense':
        return _dense(attn, value, rows, cols)
    if backend == 'loop':
        return _LoopAV.apply(attn, value, rows, cols)
    from ._neighborhood_triton import na2d_av_triton
    return na2d_av_triton(attn, value, rows, cols)
