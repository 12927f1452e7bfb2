"""Image restoration: metrics on known cases, tiled inference, data, and a toy denoiser that learns."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

from conftest import run_tool
from gatedvision.registry import MODELS, TRANSFORMS
from gatedvision.tasks.restoration import (PSNR, SSIM, PairedImageDataset, make_toy_restore,
                                           tiled_inference)
from gatedvision.tasks.restoration.dataset import read_rgb
from gatedvision.tasks.restoration.metric import prepare, psnr

TOY = 'configs/restore/nafdec_hornet-t-7x7_1xb8-300i_toyrestore-sigma25.py'


def _astronaut():
    import skimage.data
    return torch.from_numpy(skimage.data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)


def _metric(metric, pred, gt, lq=None):
    batch = dict(inputs=[lq if lq is not None else pred])
    metric.process(batch, [dict(pred_img=pred, gt_img=gt)])
    return metric.compute_metrics(metric.results)


def test_psnr_ssim_known_answers():
    img = _astronaut()
    same = _metric(PSNR(), img, img)
    assert same['PSNR'] == float('inf')
    assert _metric(SSIM(), img, img)['SSIM'] == pytest.approx(1.0)
    # Gaussian noise of sigma 25 on a real picture: 20 log10(255 / 25) = 20.17 dB, as long as
    # clipping to [0, 1] does not eat the noise (the picture is kept 2.5 sigma inside the range)
    img = img * 0.5 + 0.25
    noisy = (img + torch.randn(img.shape, generator=torch.Generator().manual_seed(0)) * 25 / 255)
    res = _metric(PSNR(input_score=True), img, img, lq=noisy)
    assert res['PSNR_input'] == pytest.approx(20 * np.log10(255 / 25), abs=0.1)
    assert 0.2 < _metric(SSIM(), noisy, img)['SSIM'] < 0.6
    # a uniform error of one grey level everywhere: 20 log10(255) exactly
    a = np.full((8, 8, 3), 100.0)
    assert psnr(a + 1, a) == pytest.approx(20 * np.log10(255))


def test_y_channel_and_border_crop():
    rgb = np.zeros((6, 6, 3))
    rgb[..., 0] = 255  # pure red: Y = 16 + 65.481 (ITU-R BT.601, as MATLAB's rgb2ycbcr)
    y = prepare(rgb, crop_border=1, convert_to='y')
    assert y.shape == (4, 4, 1) and y[0, 0, 0] == pytest.approx(16 + 65.481, abs=1e-3)
    with pytest.raises(ValueError, match="convert_to must be None or 'y'"):
        PSNR(convert_to='ycbcr')


class _SmallConv(nn.Module):
    """Fully convolutional, receptive field 5x5 (radius 2)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x):
        return self.net(x)


def test_tiled_equals_whole_for_a_fully_convolutional_model():
    x = torch.rand(2, 3, 150, 203)
    model = _SmallConv()
    whole = model(x)
    tiled = tiled_inference(model, x, tile=64, overlap=16)
    assert (tiled - whole).abs().max() < 1e-5
    with pytest.raises(ValueError, match='overlap < tile'):
        tiled_inference(model, x, tile=16, overlap=16)


def test_tiled_backbone_restorer_has_no_seams():
    from gatedvision.engine.config import load_config
    cfg = load_config(TOY)
    cfg.model.test_cfg = dict(tile=96, tile_overlap=32)
    with DefaultScope.overwrite_default_scope('gatedvision'):
        model = MODELS.build(cfg.model).eval()
    x = _astronaut()[None, :, 100:292, 100:292]  # 192 x 192: tiles start at 0, 64, 96
    with torch.no_grad():
        whole = model.restore(x)
        tiled = model.predict(x)
    err = (tiled - whole).abs()[0].amax(0)  # (H, W)
    # the blend zones sit around columns/rows 64..96 and 96..128
    band = torch.zeros(192, dtype=torch.bool)
    band[56:136] = True
    seam_err = max(err[band].max(), err[:, band].max())
    interior = err[~band][:, ~band].max()
    assert seam_err <= 3 * interior + 1e-3, (seam_err, interior)
    # and the tiled output has no step across a tile edge that the whole-image output lacks
    step = lambda o: (o[..., 1:] - o[..., :-1]).abs()[0].mean(0)  # noqa: E731
    assert (step(tiled) - step(whole)).abs().max() < 0.05


def test_paired_dataset_names_mismatches(tmp_path):
    import cv2
    for sub, names in (('lq', ['a', 'b', 'c']), ('gt', ['a', 'b'])):
        (tmp_path / sub).mkdir()
        for n in names:
            cv2.imwrite(str(tmp_path / sub / f'{n}.png'), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"1 image\(s\) in 'lq/' have no file of the same name in 'gt/': c"):
        PairedImageDataset(data_root=str(tmp_path), pipeline=[])
    (tmp_path / 'gt' / 'c.png').write_bytes(b'\x89PNG truncated')
    with DefaultScope.overwrite_default_scope('gatedvision'):
        ds = PairedImageDataset(data_root=str(tmp_path), pipeline=[dict(type='LoadImagePair')])
    with pytest.raises(ValueError, match=r"cannot read image '.*gt/c\.png'"):
        ds[2]


def test_degrade_is_fixed_for_a_test_set_and_paired_crops_align(tmp_path):
    gt = read_rgb(str(Path(make_toy_restore()) / 'val' / 'astronaut.png'))
    with DefaultScope.overwrite_default_scope('gatedvision'):
        degrade = TRANSFORMS.build(dict(type='Degrade', seed=0, transforms=[
            dict(type='GaussNoise', std_range=(0.1, 0.1), p=1.0)]))
        crop = TRANSFORMS.build(dict(type='PairedAlbu', transforms=[
            dict(type='RandomCrop', height=32, width=48), dict(type='HorizontalFlip')]))
    a = degrade(dict(gt=gt, sample_idx=3))['lq']
    b = degrade(dict(gt=gt, sample_idx=3))['lq']
    np.testing.assert_array_equal(a, b)
    assert np.std(a - gt) == pytest.approx(0.1, rel=0.1)
    out = crop(dict(gt=gt, lq=gt * 0.5))
    assert out['gt'].shape == (32, 48, 3)
    np.testing.assert_allclose(out['lq'], out['gt'] * 0.5, atol=1e-6)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The toy denoiser trained briefly with tools/train.py (shared by the tests below)."""
    work = tmp_path_factory.mktemp('restore')
    res = run_tool('train', TOY, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=60',
                   'train_cfg.val_interval=60', 'default_hooks.checkpoint.interval=60',
                   'param_scheduler.0.end=60', 'default_hooks.logger.interval=10')
    assert res.returncode == 0, res.stderr[-3000:]
    return work


def test_toy_denoiser_beats_its_noisy_input(trained, tmp_path):
    rows = [json.loads(line) for line in
            next(trained.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    losses = [r['loss'] for r in rows if 'loss' in r]
    assert losses[-1] < losses[0]
    # tested through torch.compile (dynamo's capture, eager kernels: what --compile changes, cheaply)
    res = run_tool('test', TOY, trained / 'iter_60.pth', '--work-dir', tmp_path,
                   '--show-dir', tmp_path / 'pics', '--compile', 'eager')
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "torch.compile({'backend': 'eager'}): backbone" in out
    gain = float(re.search(r'PSNR: ([\d.]+)', out).group(1)) - float(
        re.search(r'PSNR_input: ([\d.]+)', out).group(1))
    assert gain >= 2.0, out[-2000:]
    pics = sorted((tmp_path / 'pics').glob('*.png'))
    assert [p.stem for p in pics] == ['astronaut', 'camera', 'motorcycle_right']
    import cv2
    pic = cv2.imread(str(pics[0]))
    assert pic.shape == (256, 3 * 256, 3)  # input | restored | ground truth


def test_infer_restores_a_users_picture(trained, tmp_path, offline):
    """The full denoising config (its backbone ``pretrained=True``) with the toy-trained checkpoint
    of the same model, on a machine without a network: nothing is downloaded."""
    src = Path(make_toy_restore()) / 'val' / 'camera.png'
    res = run_tool('infer', 'configs/restore/nafdec_hornet-t-7x7_8xb8-300k_denoise-sigma25-256x256.py',
                   trained / 'iter_60.pth', src, '--out-dir', tmp_path, '--device', 'cpu', env=offline)
    assert res.returncode == 0, res.stderr[-3000:]
    out = read_rgb(str(tmp_path / 'vis' / 'camera.png'))
    assert out.shape == read_rgb(str(src)).shape


def test_train_with_amp_on_the_cpu(tmp_path):
    """--amp without CUDA: bf16 autocast through gatedvision.AutocastOptimWrapper (no loss scaling).
    The toy denoiser on 64 px crops, 3 iterations, validated on one picture (a CPU without AVX-512
    emulates bf16: a 256x256 segmentation batch takes many seconds)."""
    res = run_tool('train', TOY, '--work-dir', tmp_path, '--amp', '--cfg-options', 'train_cfg.max_iters=3',
                   'train_cfg.val_interval=3', 'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1',
                   'train_dataloader.batch_size=4', 'val_dataloader.dataset.indices=1')
    assert res.returncode == 0, res.stderr[-3000:]
    assert "type='gatedvision.AutocastOptimWrapper'" in next(tmp_path.glob('*.py')).read_text()  # the dumped config
    rows = [json.loads(line) for line in next(tmp_path.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    losses = [r['loss'] for r in rows if 'loss' in r]
    assert len(losses) == 3 and np.isfinite(losses).all()
    assert re.search(r'PSNR: [\d.]+', res.stdout + res.stderr)  # and validated
