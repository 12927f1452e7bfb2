"""The first end-to-end slice: toy data, augmentation, training, testing, resuming."""
import json
import re
from pathlib import Path

import numpy as np

from conftest import run_dist, run_tool
from gatedvision.tasks import Albu, make_toy_seg
from gatedvision.tasks.segmentation.toy import CLASSES

CONFIG = 'configs/seg/upernet_halonet26t_1xb4-200i_toyseg-256x256.py'
# small and quick: 2 images a batch, a log line per iteration
FAST = ['train_dataloader.batch_size=2', 'default_hooks.logger.interval=1',
        'randomness.deterministic=True']


def test_toy_dataset_layout_and_determinism(tmp_path):
    import cv2
    a = make_toy_seg(tmp_path / 'a', num_train=3, num_val=2, size=64)
    b = make_toy_seg(tmp_path / 'b', num_train=3, num_val=2, size=64)
    for split, n in (('training', 3), ('validation', 2)):
        imgs = sorted((a / 'images' / split).glob('*.jpg'))
        anns = sorted((a / 'annotations' / split).glob('*.png'))
        assert len(imgs) == len(anns) == n
        assert [p.stem for p in imgs] == [p.stem for p in anns]
        for p in anns:
            ann = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            assert ann.shape == (64, 64) and ann.dtype == np.uint8
            # ADE20K convention: 0 unlabelled, classes 1..K, background present in every image
            assert set(np.unique(ann)) <= set(range(1, len(CLASSES) + 1)) and 1 in ann
            assert (p.read_bytes() == (b / 'annotations' / split / p.name).read_bytes())


def test_albu_moves_masks_with_the_image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    seg = rng.integers(0, 5, (32, 48), dtype=np.uint8)
    out = Albu([dict(type='HorizontalFlip', p=1.0)])(dict(img=img.copy(), gt_seg_map=seg.copy()))
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    np.testing.assert_array_equal(out['gt_seg_map'], seg[:, ::-1])
    # photometric transforms leave the labels alone; BGR input is treated as RGB internally
    out = Albu([dict(type='ToGray', p=1.0)])(dict(img=img.copy(), gt_seg_map=seg.copy()))
    np.testing.assert_array_equal(out['gt_seg_map'], seg)
    b, g, r = [img[..., i].astype(float) for i in range(3)]
    np.testing.assert_allclose(out['img'][..., 0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1.5)


def _scalars(work_dir: Path):
    rows = [json.loads(line) for line in
            next(work_dir.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    return [r for r in rows if 'loss' in r]


def test_train_then_test_with_pictures(tmp_path):
    """Trained by tools/dist_train.sh on two processes of 2 images (gloo on the CPU, which the runner
    picks: the config asks for NCCL) for 30 iterations, a 10-iteration warm-up, validated on both;
    tested by tools/test.py in one process."""
    work = tmp_path / 'work'
    res = run_dist('dist_train', CONFIG, 2, '--work-dir', work, '--cfg-options', *FAST,
                   'train_cfg.max_iters=30', 'train_cfg.val_interval=30', 'param_scheduler.0.end=10',
                   'default_hooks.checkpoint.interval=30', port=29632)
    assert res.returncode == 0, res.stderr[-3000:]
    log = next(work.glob('*/*.log')).read_text()  # rank 0's: the only log, beside the only checkpoint
    assert "dist_cfg: {'backend': 'nccl'}" in log and 'Distributed training: True' in log
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_30.pth'] and len(list(work.glob('*/*.log'))) == 1
    losses = [r['loss'] for r in _scalars(work)]
    assert len(losses) == 30
    # the first iterations are warm-up (loss can rise); by 30 it has clearly fallen
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5]), losses

    ckpt = work / 'iter_30.pth'
    res = run_tool('test', CONFIG, ckpt, '--work-dir', tmp_path / 'test',
                   '--show-dir', tmp_path / 'pics', '--out', tmp_path / 'preds.pkl')
    assert res.returncode == 0, res.stderr[-3000:]
    miou = float(re.search(r'mIoU: ([\d.]+)', res.stdout + res.stderr).group(1))
    assert miou > 45, miou  # 30 iterations from scratch: 62.9 measured in session 6
    assert len(list((tmp_path / 'pics').rglob('*.png'))) == 16  # one per validation image
    assert (tmp_path / 'preds.pkl').stat().st_size > 0
    # the validation that ended the 2-process training (each rank half the images, gathered) scored
    # the same on the same weights
    assert float(re.findall(r'mIoU: ([\d.]+)', log)[-1]) == miou

    # --amp on the CPU: bf16 autocast gives the fp32 mIoU to within a point
    res = run_tool('test', CONFIG, ckpt, '--work-dir', tmp_path / 'test-amp', '--amp')
    assert res.returncode == 0, res.stderr[-3000:]
    miou_amp = float(re.search(r'mIoU: ([\d.]+)', res.stdout + res.stderr).group(1))
    assert abs(miou_amp - miou) < 1.0, (miou, miou_amp)

    # a user's own image through tools/infer.py, in bf16 (fp32 inference: the other tasks' tests)
    image = next((make_toy_seg() / 'images' / 'validation').glob('*.jpg'))
    res = run_tool('infer', CONFIG, ckpt, image, '--out-dir', tmp_path / 'infer', '--device', 'cpu', '--amp')
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / 'infer' / 'vis' / image.name).is_file()


def test_train_with_amp_on_the_cpu(tmp_path):
    """--amp without CUDA: bf16 autocast through gatedvision.AutocastOptimWrapper (no loss scaling)."""
    res = run_tool('train', CONFIG, '--work-dir', tmp_path, '--amp', '--cfg-options', *FAST,
                   'train_cfg.max_iters=6', 'train_cfg.val_interval=6', 'default_hooks.checkpoint.interval=6')
    assert res.returncode == 0, res.stderr[-3000:]
    assert "type='gatedvision.AutocastOptimWrapper'" in next(tmp_path.glob('*.py')).read_text()  # the dumped config
    losses = [r['loss'] for r in _scalars(tmp_path)]
    assert len(losses) == 6 and np.isfinite(losses).all()

