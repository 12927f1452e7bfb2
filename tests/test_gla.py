"""gatedvision.ops.gla (module ops.linear_attention): the chunked torch form against the token-by-token recurrence."""
import itertools
import sys

import pytest
import torch
import torch.nn.functional as F

from gatedvision.ops.linear_attention import bidirectional_gla, gla, gla_recurrent


def _inputs(b, t, h, dk, dv, strength, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(b, t, h, dk, generator=gen, dtype=dtype) for _ in range(2))
    v = torch.randn(b, t, h, dv, generator=gen, dtype=dtype)
    # strength 'weak': ViG's logsigmoid(x)/16; 'strong': logsigmoid(4x - 12), decays of e^-12 a step
    x = torch.randn(b, t, h, dk, generator=gen, dtype=dtype)
    g = F.logsigmoid(x) / 16 if strength == 'weak' else F.logsigmoid(4 * x - 12)
    return q, k, v, g


@pytest.mark.parametrize('t', [1, 15, 64, 100, 197])   # below, at, not divisible by the chunk
@pytest.mark.parametrize('strength', ['weak', 'strong'])
@pytest.mark.parametrize('reverse', [False, True])
@pytest.mark.parametrize('with_state', [False, True])
def test_chunked_matches_recurrence(t, strength, reverse, with_state):
    # weak gates take the factorised path, strong ones the exact sub-block path (next tests)
    q, k, v, g = _inputs(2, t, 3, 16, 24, strength)
    init = torch.randn(2, 3, 16, 24) if with_state else None
    o, s = gla(q, k, v, g, initial_state=init, output_final_state=True, reverse=reverse, backend='torch')
    ro, rs = gla_recurrent(q, k, v, g, initial_state=init, output_final_state=True, reverse=reverse)
    assert torch.isfinite(o).all()
    torch.testing.assert_close(o, ro, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s, rs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('strength', ['weak', 'strong'])
def test_gradients_match_recurrence(strength):
    q, k, v, g = (x.requires_grad_() for x in _inputs(1, 70, 2, 8, 12, strength, torch.float64))
    w = torch.randn(1, 70, 2, 12, dtype=torch.float64)
    grads = torch.autograd.grad((gla(q, k, v, g, backend='torch')[0] * w).sum(), (q, k, v, g))
    ref = torch.autograd.grad((gla_recurrent(q, k, v, g)[0] * w).sum(), (q, k, v, g))
    for a, b in zip(grads, ref):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize('t', [1, 33, 196, 300])
@pytest.mark.parametrize('strength', ['weak', 'strong'])
@pytest.mark.parametrize('head_first', [False, True])
def test_bidirectional_is_the_mean_of_both_scans(t, strength, head_first):
    q, k, v, g = _inputs(2, t, 2, 8, 12, strength)
    g_bw = _inputs(2, t, 2, 8, 12, strength, seed=1)[3]
    fw = gla_recurrent(q, k, v, g)[0]
    bw = gla_recurrent(q, k, v, g_bw, reverse=True)[0]
    if head_first:  # (B, H, T, ·) strided views, as hierarchical ViG passes them
        out = bidirectional_gla(*(x.transpose(1, 2) for x in (q, k, v, g, g_bw)), head_first=True).transpose(1, 2)
    else:
        out = bidirectional_gla(q, k, v, g, g_bw)
    torch.testing.assert_close(out, (fw + bw) / 2, rtol=1e-5, atol=1e-5)


def test_the_factorised_path_takes_weak_gates_and_declines_strong_ones():
    G = sys.modules['gatedvision.ops.linear_attention']
    for strength, taken in (('weak', True), ('strong', False)):
        q, k, v, g = (x.transpose(1, 2) for x in _inputs(1, 100, 2, 8, 8, strength))
        assert (G._factorised(q, k, v, g, g, 8 ** -0.5) is not None) == taken
    # the limit is on one chunk's summed decay: 64 tokens of -0.7 sum to -44.8 (> 40), 32 to -22.4
    q = k = v = torch.ones(1, 1, 64, 4)
    g = torch.full((1, 1, 64, 4), -0.7)
    assert G._factorised(q, k, v, g, None, 1.0) is None
    assert G._factorised(q, k, v, g, None, 1.0, chunk=32) is not None


def test_bidirectional_gradients_match_recurrence():
    q, k, v, g, g_bw = (x.requires_grad_() for x in (*_inputs(1, 70, 2, 8, 12, 'weak', torch.float64),
                                                     _inputs(1, 70, 2, 8, 12, 'weak', torch.float64, 1)[3]))
    w = torch.randn(1, 70, 2, 12, dtype=torch.float64)
    grads = torch.autograd.grad((bidirectional_gla(q, k, v, g, g_bw) * w).sum(), (q, k, v, g, g_bw))
    ref_out = (gla_recurrent(q, k, v, g)[0] + gla_recurrent(q, k, v, g_bw, reverse=True)[0]) / 2
    ref = torch.autograd.grad((ref_out * w).sum(), (q, k, v, g, g_bw))
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


def test_bad_shapes_and_backend():
    q = torch.zeros(1, 4, 2, 8)
    with pytest.raises(ValueError, match='gla expects q, k, g'):
        gla(q, q, torch.zeros(1, 5, 2, 8), q)
    with pytest.raises(ValueError, match=r"unknown gla backend 'cuda' \(backend= argument\)"):
        gla(q, q, q, q, backend='cuda')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_fla_matches_torch_on_cuda():
    pytest.importorskip('fla.ops.gla')
    q, k, v, g = (x.cuda() for x in _inputs(2, 196, 3, 32, 64, 'weak'))
    for reverse in (False, True):
        a = gla(q, k, v, g, reverse=reverse, backend='fla')[0]
        b = gla(q, k, v, g, reverse=reverse, backend='torch')[0]
        # fla-core's fp32 dots run in TF32. Measured on an H100 against a float64 recurrence: fla's
        # largest error 2.6e-2 at outputs up to 17.3 (1.5e-3 of the scale), the torch path's 3.4e-6.
        assert (a - b).abs().max() <= 5e-3 * b.abs().max()


def test_segments_hand_the_state_on(monkeypatch):
    G = sys.modules['gatedvision.ops.linear_attention']
    q, k, v, g = _inputs(1, 150, 2, 8, 8, 'strong')
    whole = gla(q, k, v, g, reverse=True, backend='torch')[0]
    monkeypatch.setattr(G, '_SEGMENT', 64)
    torch.testing.assert_close(gla(q, k, v, g, reverse=True, backend='torch')[0], whole, rtol=1e-5, atol=1e-5)


def test_bf16_inputs_and_autocast_keep_fp32_accuracy():
    """--amp: under bf16 autocast (and with bf16 inputs) the torch path computes in fp32 and
    returns v's dtype; the only error left is the inputs' and the output's bf16 rounding."""
    q, k, v, g = _inputs(2, 100, 3, 16, 24, 'strong')
    ref, _ = gla_recurrent(*(x.bfloat16().float() for x in (q, k, v, g)))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        o, _ = gla(q, k, v, g, backend='torch')  # fp32 inputs under autocast: the path ViG takes
    assert o.dtype == torch.float32
    torch.testing.assert_close(o, gla_recurrent(q, k, v, g)[0], rtol=1e-4, atol=1e-4)
    ob, _ = gla(*(x.bfloat16() for x in (q, k, v, g)), backend='torch')
    assert ob.dtype == torch.bfloat16
    torch.testing.assert_close(ob.float(), ref, rtol=1e-2, atol=1e-2)  # bf16: 8 bits of mantissa


def test_compiled_and_exported_paths_pick_by_the_gates_at_run_time():
    """Under torch.compile (one graph, no breaks) and torch.export the factorised / exact choice is
    a ``torch.cond`` on the gates: one compiled function serves weak and strong gates with the
    eager outputs and gradients, and so does one exported program."""
    def bi(q, k, v, g):
        return bidirectional_gla(q, k, v, g, g.flip(1), backend='torch')

    def one(q, k, v, g):
        return gla(q, k, v, g, reverse=True, backend='torch')[0]

    # shapes: several chunks; one chunk (the paths' gradients leave different layouts: ViG-T at 64²)
    for fn, shape in itertools.product((bi, one), ((1, 100, 2, 8, 12), (2, 16, 3, 32, 64))):
        # fullgraph: a break is an error; static shapes (dynamic ones: below)
        compiled = torch.compile(fn, backend='aot_eager', fullgraph=True, dynamic=False)
        for strength in ('weak', 'strong'):
            inputs = [x.requires_grad_() for x in _inputs(*shape, strength)]
            eager = fn(*inputs)
            out = compiled(*inputs)
            torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-6)
            w = torch.randn_like(eager)
            want = torch.autograd.grad((eager * w).sum(), inputs)
            for a, b in zip(want, torch.autograd.grad((out * w).sum(), inputs)):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    # dynamic shapes: K ** -0.5 is then a SymFloat, which a torch.cond branch cannot take in
    dynamic = torch.compile(one, backend='aot_eager', fullgraph=True, dynamic=True)
    inputs = _inputs(1, 20, 2, 8, 12, 'weak')
    torch.testing.assert_close(dynamic(*inputs), one(*inputs), rtol=1e-5, atol=1e-6)

    class Bi(torch.nn.Module):
        def forward(self, q, k, v, g):
            return bi(q, k, v, g)

    program = torch.export.export(Bi(), tuple(_inputs(1, 100, 2, 8, 12, 'weak')))
    assert any(n.target is torch.ops.higher_order.cond for n in program.graph.nodes)
    for strength in ('weak', 'strong'):
        inputs = _inputs(1, 100, 2, 8, 12, strength, seed=1)
        torch.testing.assert_close(program.module()(*inputs), bi(*inputs), rtol=1e-5, atol=1e-6)
