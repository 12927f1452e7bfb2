"""Triton kernels of :func:`gatedvision.ops.neighborhood.na2d_av` (CUDA; on CPU only under
``TRITON_INTERPRET=1``, which the tests use). One program per pixel, the whole channel vector in
registers; the value gradient is scattered with atomic adds."""
try:
    import triton
    import triton.language as tl
except ImportError as e:  # pragma: no cover - exercised only where triton is missing
    raise ImportError("na2d_av backend 'triton' needs the 'triton' package (pip install triton); "
                      "use backend='auto' to fall back to the torch paths") from e
import torch

__all__ = ['na2d_av_triton']


@triton.jit
def _na2d_av_fwd(attn_ptr, value_ptr, rows_ptr, cols_ptr, out_ptr, H, W, C,
                 KH: tl.constexpr, KW: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)                  # pixel over B*G*H*W
    hw = H * W
    bg = pid // hw
    i = (pid % hw) // W
    j = pid % W
    offs = tl.arange(0, BLOCK_C)
    mask = offs < C
    acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    for t in range(KH * KW):
        r = tl.load(rows_ptr + i * KH + t // KW)
        c = tl.load(cols_ptr + j * KW + t % KW)
        a = tl.load(attn_ptr + pid * KH * KW + t).to(tl.float32)
        v = tl.load(value_ptr + (bg * hw + r * W + c) * C + offs, mask=mask, other=0.).to(tl.float32)
        acc += a * v
    tl.store(out_ptr + pid * C + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _na2d_av_bwd(attn_ptr, value_ptr, rows_ptr, cols_ptr, grad_out_ptr, grad_attn_ptr,
                 grad_value_ptr, H, W, C,
                 KH: tl.constexpr, KW: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    hw = H * W
    bg = pid // hw
    i = (pid % hw) // W
    j = pid % W
    offs = tl.arange(0, BLOCK_C)
    mask = offs < C
    go = tl.load(grad_out_ptr + pid * C + offs, mask=mask, other=0.).to(tl.float32)
    for t in range(KH * KW):
        r = tl.load(rows_ptr + i * KH + t // KW)
        c = tl.load(cols_ptr + j * KW + t % KW)
        nbr = (bg * hw + r * W + c) * C
        v = tl.load(value_ptr + nbr + offs, mask=mask, other=0.).to(tl.float32)
        tl.store(grad_attn_ptr + pid * KH * KW + t, tl.sum(go * v, axis=0))
        a = tl.load(attn_ptr + pid * KH * KW + t).to(tl.float32)
        tl.atomic_add(grad_value_ptr + nbr + offs, a * go, mask=mask)


class _TritonAV(torch.autograd.Function):
    @staticmethod
    def forward(ctx, attn, value, rows, cols):
        attn, value = attn.contiguous(), value.contiguous()
        rows, cols = rows.contiguous(), cols.contiguous()
        b, g, h, w, c = value.shape
        out = torch.empty_like(value)
        block = triton.next_power_of_2(c)
        _na2d_av_fwd[(b * g * h * w,)](attn, value, rows, cols, out, h, w, c,
                                       KH=rows.shape[1], KW=cols.shape[1], BLOCK_C=block)
        ctx.save_for_backward(attn, value, rows, cols)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        attn, value, rows, cols = ctx.saved_tensors
        b, g, h, w, c = value.shape
        grad_attn = torch.empty(attn.shape, dtype=torch.float32, device=attn.device)
        grad_value = torch.zeros(value.shape, dtype=torch.float32, device=value.device)
        _na2d_av_bwd[(b * g * h * w,)](attn, value, rows, cols, grad_out.contiguous(), grad_attn,
                                       grad_value, h, w, c, KH=rows.shape[1], KW=cols.shape[1],
                                       BLOCK_C=triton.next_power_of_2(c))
        return grad_attn.to(attn.dtype), grad_value.to(value.dtype), None, None


def na2d_av_triton(attn, value, rows, cols):
    return _TritonAV.apply(attn, value, rows, cols)
