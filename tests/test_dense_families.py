"""Every backbone family trains a step and validates under a real mmdet and mmseg head.

Each family's full COCO / ADE20K config gives the model (backbone, neck, channels); the toy data
and a one-iteration schedule replace the rest, so what is tested is the config users will run.
"""
from pathlib import Path

import pytest
import torch
from mmengine.registry import RUNNERS

from gatedvision.engine.config import load_config

ROOT = Path(__file__).resolve().parents[1] / 'configs'
FAMILIES = ['hornet-t-7x7', 'biformer-s', 'overlock-t', 'vig-h-t', 'vig-t', 'convit-s', 'halonet26t']


def _run(full: Path, toy: Path, tmp_path, overrides: dict):
    cfg = load_config(str(toy))
    model = load_config(str(full)).model
    model.backbone.pretrained = False
    cfg.model.backbone = model.backbone
    if model.get('neck') is not None:
        cfg.model.neck = model.neck
    cfg.merge_from_dict({
        'train_dataloader.batch_size': 1, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False, 'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False, 'default_hooks.logger.interval': 1})
    for key, value in overrides.items():
        cfg.merge_from_dict({key: value})
    cfg.work_dir = str(tmp_path)
    cfg.precheck = False  # its batch and validation sample are what this test runs (tested: test_your_data)
    # the configs' runner, as tools/train.py builds it; its visualizer is this run's own, not the one
    # of an earlier test in the process (whose folder is removed when it passes)
    runner = RUNNERS.build(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('family', FAMILIES)
def test_mask_rcnn_step_and_validation(family, tmp_path):
    small = {f'{p}.num_images': [2, 1] for p in ('train_dataloader.dataset', 'val_dataloader.dataset',
                                                'val_evaluator')}
    small.update({'train_dataloader.dataset.image_size': 128, 'val_dataloader.dataset.image_size': 128,
                  'val_evaluator.image_size': 128, 'train_cfg.max_epochs': 1})
    runner = _run(ROOT / 'det' / f'mask-rcnn_{family}_fpn_1x_coco.py',
                  ROOT / 'det' / 'mask-rcnn_hornet-t-7x7_fpn_1xb2-2e_toycoco.py', tmp_path, small)
    metrics = runner.message_hub.log_scalars
    assert 'val/coco/bbox_mAP' in metrics and 'val/coco/segm_mAP' in metrics
    # what reaches the RoI extractor is contiguous NCHW: mmcv's CPU RoIAlign reads any other
    # strides as NCHW and scrambles the RoI features (ConViT's simple pyramid once did, at P2)
    with torch.no_grad():
        feats = runner.model.eval().extract_feat(torch.randn(1, 3, 128, 128))
    assert [f.is_contiguous() for f in feats] == [True] * len(feats)


@pytest.mark.parametrize('family', FAMILIES)
def test_upernet_step_and_validation(family, tmp_path):
    full = ROOT / 'seg' / f'upernet_{family}_8xb2-160k_ade20k-512x512.py'
    heads = load_config(str(full)).model
    small = {'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1,
             'train_dataloader.batch_size': 2,  # UPerNet's pooling branch normalises 1x1 maps
             'train_dataloader.dataset.num_images': [2, 1], 'val_dataloader.dataset.num_images': [2, 1],
             'model.decode_head.in_channels': heads.decode_head.in_channels,
             'model.auxiliary_head.in_channels': heads.auxiliary_head.in_channels}
    runner = _run(full, ROOT / 'seg' / 'upernet_halonet26t_1xb4-200i_toyseg-256x256.py', tmp_path, small)
    assert 'val/mIoU' in runner.message_hub.log_scalars
