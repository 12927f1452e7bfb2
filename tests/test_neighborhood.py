"""gatedvision.ops.neighborhood.na2d_av against a slow, obvious reference."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from gatedvision.ops.neighborhood import na2d_av, na_index


def reference_av(attn, value, kernel_size, dilation=1):
    """Loops over pixels; each window is clamped into the map (NATTEN's rule)."""
    b, g, h, w, _ = value.shape
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation

    def window(i, length, k, d):
        group, a = i % d, i // d
        n_group = len(range(group, length, d))
        start = min(max(a - k // 2, 0), n_group - k)  # clamp the window start, in-group units
        return [(start + t) * d + group for t in range(k)]

    out = torch.zeros_like(value)
    for i in range(h):
        for j in range(w):
            rows, cols = window(i, h, kh, dh), window(j, w, kw, dw)
            for u, r in enumerate(rows):
                for v, c in enumerate(cols):
                    out[:, :, i, j] += attn[:, :, i, j, u * kw + v, None] * value[:, :, r, c]
    return out


CASES = [  # (H, W, kernel, dilation)
    (7, 9, 3, 1), (9, 11, 5, 1), (13, 15, 5, 2), (14, 9, 3, 3), (8, 8, 7, 1), (14, 14, 13, 1),
    (6, 10, (3, 5), (2, 1)),
]


@pytest.mark.parametrize('backend', ['dense', 'loop'])
@pytest.mark.parametrize('h, w, k, d', CASES)
def test_matches_reference(backend, h, w, k, d):
    torch.manual_seed(0)
    kk = k * k if isinstance(k, int) else k[0] * k[1]
    attn = torch.randn(2, 3, h, w, kk).softmax(-1)
    value = torch.randn(2, 3, h, w, 4)
    torch.testing.assert_close(na2d_av(attn, value, k, d, backend=backend),
                               reference_av(attn, value, k, d), rtol=1e-5, atol=1e-5)


def test_index_table_clamps_windows_not_pads():
    assert na_index(5, 3).tolist() == [[0, 1, 2], [0, 1, 2], [1, 2, 3], [2, 3, 4], [2, 3, 4]]
    # dilation 2 on 6 positions: two interleaved groups of 3
    assert na_index(6, 3, 2).tolist() == [[0, 2, 4], [1, 3, 5], [0, 2, 4], [1, 3, 5], [0, 2, 4], [1, 3, 5]]


def test_equals_overlock_unfold_replicate_fallback():
    # OverLoCK's own torch fallback: unfold the valid windows, replicate-pad the window tensor
    torch.manual_seed(0)
    b, g, h, w, c, k = 1, 2, 10, 12, 3, 5
    attn = torch.randn(b, g, h, w, k * k).softmax(-1)
    value = torch.randn(b, g, h, w, c)
    v = value.permute(0, 1, 4, 2, 3).reshape(b, g * c, h, w)
    win = F.unfold(v, k).reshape(b, g * c * k * k, h - k + 1, w - k + 1)
    win = F.pad(win, (k // 2,) * 4, mode='replicate').reshape(b, g, c, k * k, h, w)
    ref = torch.einsum('bghwk,bgckhw->bghwc', attn, win)
    torch.testing.assert_close(na2d_av(attn, value, k), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('backend', ['dense', 'loop'])
@pytest.mark.parametrize('h, w, k, d', [(6, 7, 3, 1), (7, 6, 3, 2), (5, 5, 5, 1)])
def test_gradcheck(backend, h, w, k, d):
    torch.manual_seed(0)
    attn = torch.randn(1, 2, h, w, k * k, dtype=torch.float64, requires_grad=True)
    value = torch.randn(1, 2, h, w, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, v: na2d_av(a, v, k, d, backend=backend), (attn, value))


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r'kernel_size \* dilation <= map size, got 7 \* 1 > 5'):
        na2d_av(torch.rand(1, 1, 5, 9, 49), torch.rand(1, 1, 5, 9, 2), 7)
    with pytest.raises(ValueError, match='attn has 10 weights per pixel, kernel 3x3 needs 9'):
        na2d_av(torch.rand(1, 1, 5, 5, 10), torch.rand(1, 1, 5, 5, 2), 3)
    with pytest.raises(ValueError, match="unknown na2d_av backend 'cuda'"):
        na2d_av(torch.rand(1, 1, 5, 5, 9), torch.rand(1, 1, 5, 5, 2), 3, backend='cuda')


def test_auto_picks_by_map_size(monkeypatch):
    import gatedvision.ops.neighborhood as nb
    assert nb._backend(torch.empty(1, 1, 32, 32, 9), 'auto') == 'dense'
    assert nb._backend(torch.empty(1, 1, 33, 32, 9), 'auto') == 'loop'
    monkeypatch.setenv('GATEDVISION_NA_BACKEND', 'loop')
    assert nb._backend(torch.empty(1, 1, 8, 8, 9), 'auto') == 'loop'


TRITON_CHECK = textwrap.dedent('''
    import torch
    from gatedvision.ops.neighborhood import na2d_av, na_index
    from gatedvision.ops._neighborhood_triton import na2d_av_triton
    torch.manual_seed(0)
    # the interpreter runs every program in numpy: small maps, odd channel counts (masking)
    for h, w, k, d, c in [(5, 7, 5, 1, 3), (6, 7, 3, 2, 5)]:
        attn = torch.randn(1, 2, h, w, k * k).softmax(-1).requires_grad_()
        value = torch.randn(1, 2, h, w, c).requires_grad_()
        out = na2d_av_triton(attn, value, na_index(h, k, d), na_index(w, k, d))
        ref = na2d_av(attn, value, k, d, backend='loop')
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(out)
        ga, gv = torch.autograd.grad(out, (attn, value), g)
        ra, rv = torch.autograd.grad(ref, (attn, value), g)
        torch.testing.assert_close(ga, ra, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gv, rv, rtol=1e-5, atol=1e-5)
    print('triton kernels ok')
''')


def test_triton_kernels_under_interpreter():
    pytest.importorskip('triton')
    env = dict(os.environ, TRITON_INTERPRET='1')
    res = subprocess.run([sys.executable, '-c', TRITON_CHECK], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0 and 'triton kernels ok' in res.stdout, res.stderr[-3000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_triton_on_cuda_matches_torch():
    attn = torch.randn(2, 4, 32, 40, 169, device='cuda').softmax(-1)
    value = torch.randn(2, 4, 32, 40, 16, device='cuda')
    torch.testing.assert_close(na2d_av(attn, value, 13, backend='triton'),
                               na2d_av(attn, value, 13, backend='loop'), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('backend', ['dense', 'loop'])
def test_bf16_stays_close_to_fp32(backend):
    """--amp: bf16 attention and values (OverLoCK's ContMix under autocast) give the fp32 result to
    bf16's accuracy (relative error below 1%), under autocast too."""
    torch.manual_seed(0)
    attn = torch.randn(2, 3, 13, 15, 25).softmax(-1)
    value = torch.randn(2, 3, 13, 15, 8)
    ref = reference_av(attn, value, 5, 2)
    out = na2d_av(attn.bfloat16(), value.bfloat16(), 5, 2, backend=backend)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).norm() / ref.norm() < 1e-2
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = na2d_av(attn, value.bfloat16(), 5, 2, backend=backend)
    assert (mixed.float() - ref).norm() / ref.norm() < 1e-2
