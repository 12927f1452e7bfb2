"""The first end-to-end slice: toy data, augmentation, training, testing, resuming."""
import json
import pickle
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


def test_train_then_test_with_pictures(tmp_path, offline):
    """Trained by tools/dist_train.sh on two processes of 2 images (gloo on the CPU, which the runner
    picks: the config asks for NCCL) for 30 iterations, a 10-iteration warm-up, validated on both;
    tested by tools/test.py in one process. Testing, inference and resuming then run without a
    network although the backbone is configured with ``pretrained=True``: the checkpoint has every
    weight, so the ImageNet weights are neither downloaded nor needed."""
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
    res = run_tool('test', CONFIG, ckpt, '--work-dir', tmp_path / 'test', '--show-dir', tmp_path / 'pics',
                   '--out', tmp_path / 'preds.pkl', '--cfg-options', 'model.backbone.pretrained=True', env=offline)
    assert res.returncode == 0, res.stderr[-3000:]
    miou = float(re.search(r'mIoU: ([\d.]+)', res.stdout + res.stderr).group(1))
    assert miou > 45, miou  # 30 iterations from scratch: 64.1 measured
    assert len(list((tmp_path / 'pics').rglob('*.png'))) == 16  # one per validation image
    assert (tmp_path / 'preds.pkl').stat().st_size > 0
    # the validation that ended the 2-process training (each rank half the images, gathered) scored
    # the same on the same weights
    assert float(re.findall(r'mIoU: ([\d.]+)', log)[-1]) == miou

    # --amp on the CPU: bf16 autocast predicts the fp32 labels (on 2 images: without AVX-512 a CPU
    # emulates bf16, and one 256x256 image takes about 15 s)
    res = run_tool('test', CONFIG, ckpt, '--work-dir', tmp_path / 'test-amp', '--amp', '--out', tmp_path / 'amp.pkl',
                   '--cfg-options', 'test_dataloader.dataset.indices=2')
    assert res.returncode == 0, res.stderr[-3000:]
    fp32, bf16 = (pickle.loads((tmp_path / name).read_bytes()) for name in ('preds.pkl', 'amp.pkl'))
    assert [p['img_path'] for p in bf16] == [p['img_path'] for p in fp32[:2]]
    agree = np.mean([(a['pred_sem_seg']['data'] == b['pred_sem_seg']['data']).float().mean().item()
                     for a, b in zip(fp32, bf16)])
    assert agree > 0.98, agree

    # a user's own image through tools/infer.py, in bf16 (fp32 inference: the other tasks' tests)
    image = next((make_toy_seg() / 'images' / 'validation').glob('*.jpg'))
    pretrained = tmp_path / 'pretrained.py'  # the toy config as a user's, with ImageNet weights
    pretrained.write_text(f"_base_ = ['{Path(CONFIG).resolve()}']\nmodel = dict(backbone=dict(pretrained=True))\n")
    res = run_tool('infer', pretrained, ckpt, image, '--out-dir', tmp_path / 'infer', '--device', 'cpu', '--amp',
                   env=offline)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / 'infer' / 'vis' / image.name).is_file()

    # --resume on a machine without a network: the checkpoint replaces the pretrained weights
    res = run_tool('train', CONFIG, '--work-dir', work, '--resume', '--cfg-options', *FAST,
                   'model.backbone.pretrained=True', 'train_cfg.max_iters=31', 'train_cfg.val_interval=100',
                   'default_hooks.checkpoint.interval=31', env=offline)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'halonet26t: pretrained weights not loaded: --resume' in res.stdout + res.stderr
    assert (work / 'iter_31.pth').is_file()
    # and a training that starts from the pretrained weights still fetches them: without a network
    # it stops before the first iteration with what to do, and no traceback
    res = run_tool('train', CONFIG, '--work-dir', tmp_path / 'fresh', '--cfg-options', *FAST,
                   'model.backbone.pretrained=True', env=offline)
    assert res.returncode != 0 and 'Traceback' not in res.stderr, res.stderr[-3000:]
    assert re.search(r'cannot download the pretrained weights of halonet26t from timm/halonet26t\.a1h_in1k '
                     r'\(.*\)\. Either download them .*tools/download\.py halonet26t\.a1h_in1k\) into '
                     r'.*models--timm--halonet26t\.a1h_in1k.*checkpoint=PATH.*pretrained=False', res.stderr), \
        res.stderr[-3000:]
    assert not (tmp_path / 'fresh' / 'iter_1.pth').exists()


def test_full_config_tests_a_checkpoint_offline(tmp_path, offline):
    """tools/test.py on an ADE20K config whose backbone says ``pretrained=True`` (HorNet-T, UPerNet)
    and a checkpoint of that model, on a machine without a network: no ImageNet download (the
    toy images stand in for ADE20K's validation set; they share its layout)."""
    import torch
    from mmengine.registry import DefaultScope

    from gatedvision.engine.config import load_config
    from gatedvision.registry import MODELS
    config = 'configs/seg/upernet_hornet-t-7x7_8xb2-160k_ade20k-512x512.py'
    cfg = load_config(config)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)  # building downloads nothing either
    ckpt = tmp_path / 'upernet_hornet.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    res = run_tool('test', config, ckpt, '--work-dir', tmp_path / 'test', '--cfg-options',
                   'test_dataloader.dataset.type=gatedvision.ToySegDataset', 'test_dataloader.dataset.data_root=None',
                   'test_dataloader.dataset.indices=1', env=offline)
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r'mIoU: [\d.]+', res.stdout + res.stderr)


