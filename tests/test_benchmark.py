"""tools/benchmark.py end to end, gatedvision.benchmark's counting and its row-level errors."""
import csv

import pytest
import torch
import torch.nn.functional as F
from conftest import run_tool
from torch import nn

from gatedvision.benchmark import BenchSpec, count_macs, measure_model, resolve_models

NUMERIC = ['params_m', 'gmacs', 'infer_b1_ms', 'infer_b1_peak_mib', 'infer_bn_img_s',
           'infer_bn_peak_mib', 'train_bn_img_s', 'train_bn_peak_mib', 'peak_gmac_s', 'infer_bn_gmac_s',
           'train_bn_gmac_s']


def test_tool_end_to_end(tmp_path):
    res = run_tool('benchmark', 'vig_tiny', 'resnet18', '--resolutions', '64', '--batch-size', '2',
                   '--repeats', '2', '--warmup', '1', '--backends', 'all', '--out-dir', tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    with open(tmp_path / 'benchmark.csv') as f:
        rows = {(r['model'], r['backend']): r for r in csv.DictReader(f)}
    assert set(rows) == {('vig_tiny', 'torch'), ('vig_tiny', 'fla'), ('resnet18', '-')}
    for key in [('vig_tiny', 'torch'), ('resnet18', '-')]:
        assert rows[key]['resolution'] == '64' and rows[key]['note'] == ''
        assert all(float(rows[key][c]) > 0 for c in NUMERIC), rows[key]
    assert float(rows['resnet18', '-']['params_m']) == pytest.approx(11.69, abs=0.01)
    # the distance to the limit: the achieved rate is GMACs x img/s (3x for a training step), a
    # fraction of the same run's matmul peak (a model cannot beat a large matmul by much)
    for key in [('vig_tiny', 'torch'), ('resnet18', '-')]:
        r = {k: float(v) for k, v in rows[key].items() if k in NUMERIC or k.endswith('_of_peak')}
        assert r['infer_bn_gmac_s'] == pytest.approx(r['gmacs'] * r['infer_bn_img_s'], rel=1e-6)
        assert r['train_bn_gmac_s'] == pytest.approx(3 * r['gmacs'] * r['train_bn_img_s'], rel=1e-6)
        assert r['infer_bn_of_peak'] == pytest.approx(r['infer_bn_gmac_s'] / r['peak_gmac_s'], rel=1e-6)
        assert 0 < r['infer_bn_of_peak'] < 1.2 and 0 < r['train_bn_of_peak'] < 1.2, r
    # resnet18: 1.81 GMACs of convolutions at 224 (the paper's 1.8 "GFLOPs"), scaling with the
    # pixel count, plus the 512 x 1000 classifier
    gmacs = float(rows['resnet18', '-']['gmacs'])
    assert gmacs == pytest.approx(1.8136 * (64 / 224) ** 2 + 512 * 1000 / 1e9, rel=1e-3)
    assert 'CUDA only' in rows['vig_tiny', 'fla']['note']  # no Triton on CPU: a row says so
    md = (tmp_path / 'benchmark.md').read_text()
    assert 'GMACs' in md and md.count('| vig_tiny |') == 2 and md.count('| resnet18 |') == 1
    assert (tmp_path / 'benchmark.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '| resnet18 | - | 64² |' in res.stdout  # the table is printed too


def test_macs_known_answer():
    conv_linear = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                nn.Linear(8 * 16 * 16, 10))
    # conv: 16*16 outputs x 8 channels x (3*3*3) taps; linear: 2048 x 10 (biases are not counted)
    assert count_macs(conv_linear, torch.randn(1, 3, 16, 16)) == 16 * 16 * 8 * 27 + 2048 * 10
    assert count_macs(conv_linear, torch.randn(4, 3, 16, 16)) == 4 * (16 * 16 * 8 * 27 + 2048 * 10)

    class Attention(nn.Module):
        def forward(self, q):
            return F.scaled_dot_product_attention(q, q, q)

    # QK^T and AV: 2 x (B*H) x L x L x D, counted on CPU too (torch registers the CUDA ops only)
    assert count_macs(Attention(), torch.randn(1, 2, 16, 8)) == 2 * 2 * 16 * 16 * 8


def test_rows_for_models_that_cannot_take_the_size():
    rows = []
    spec = BenchSpec(batch_size=1, repeats=1, warmup=0)
    measure_model('halonet26t', 64, spec, rows.append)  # halo blocks of 8 on a 4x4 map
    assert len(rows) == 1 and rows[0]['note'].startswith('cannot run at 64x64: AssertionError')
    assert 'block_size' in rows[0]['note']
    measure_model('deit_tiny_patch16_224', 96, spec, rows.append)  # fixed size: rebuilt for 96
    assert rows[1]['note'] == 'built with img_size=96' and rows[1]['infer_b1_ms'] > 0


def test_unknown_model_names():
    res = run_tool('benchmark', 'hornet_tiny_7x8', '--out-dir', '/nonexistent')
    assert res.returncode == 2
    assert "unknown model 'hornet_tiny_7x8'" in res.stderr and 'hornet_tiny_7x7' in res.stderr
    with pytest.raises(ValueError, match='closest names: .*convit_tiny_dense'):
        resolve_models(['convit_tiny_dnse*'])
    assert resolve_models(['hornet_tiny_*', 'resnet50']) == [
        'hornet_tiny_7x7', 'hornet_tiny_gf', 'resnet50']


def test_compiled_against_eager_side_by_side():
    """--compile: the first compiled call's seconds, then alternating eager / compiled calls; the
    speed-up is the ratio of the medians, and the compiled output is eager's."""
    import contextlib

    from gatedvision.benchmark import compare_compiled, markdown_table
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    model.num_classes = 4
    spec = BenchSpec(batch_size=2, warmup=1, repeats=3, compile='aot_eager')
    out = compare_compiled(model, 16, spec, contextlib.nullcontext)
    assert out['compiled_max_diff'] < 1e-5
    for mode in ('infer_bn', 'train_bn'):
        assert out[f'{mode}_compile_s'] > 0 and out[f'{mode}_compiled_img_s'] > 0 and out[f'{mode}_speedup'] > 0
    assert not model.training
    row = dict(model='toy', backend='-', resolution=16, **out)
    table = markdown_table([row], 2)
    assert '| compile infer / train (s) |' in table
    assert f"| toy | - | 16² | {out['infer_bn_compile_s']:.0f} / {out['train_bn_compile_s']:.0f} |" in table


def test_onnx_runtime_against_pytorch_side_by_side():
    """--onnx: the export's seconds, then alternating PyTorch / ONNX Runtime calls; the speed-up is
    the ratio of the medians, and ONNX Runtime's output is PyTorch's; the model is left in eval mode
    with its weights."""
    from gatedvision.benchmark import compare_onnx, markdown_table
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = compare_onnx(model, 16, BenchSpec(batch_size=2, warmup=1, repeats=3))
    assert out['ort_max_diff'] < 1e-5
    assert out['onnx_export_s'] > 0 and out['infer_bn_ort_img_s'] > 0 and out['ort_speedup'] > 0
    assert out['infer_bn_ort_img_s'] / out['infer_bn_eager_img_s'] == pytest.approx(out['ort_speedup'])
    assert not model.training and all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    table = markdown_table([dict(model='toy', backend='-', resolution=16, **out)], 2)
    assert f"| toy | 16² | {out['onnx_export_s']:.0f} | {out['infer_bn_eager_img_s']:.1f} → " in table
