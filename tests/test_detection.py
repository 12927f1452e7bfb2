"""Detection slice: toy COCO data, a Mask R-CNN training step, evaluation and pictures."""
import json
import re

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from conftest import run_tool
from gatedvision.tasks import make_toy_coco

CONFIG = 'configs/det/mask-rcnn_hornet-t-7x7_fpn_1xb2-2e_toycoco.py'
SMALL = [f'{part}.num_images=[4,2]' for part in (
    'train_dataloader.dataset', 'val_dataloader.dataset', 'test_dataloader.dataset', 'val_evaluator',
    'test_evaluator')]


def test_toy_coco_annotations_match_their_masks(tmp_path):
    root = make_toy_coco(tmp_path / 'coco', num_train=3, num_val=1, size=64)
    coco = json.loads((root / 'annotations' / 'instances_train.json').read_text())
    assert [c['name'] for c in coco['categories']] == ['disc', 'square', 'triangle', 'ring']
    assert len(coco['images']) == 3 and coco['annotations']
    for ann in coco['annotations']:
        m = mask_utils.decode(dict(size=ann['segmentation']['size'],
                                   counts=ann['segmentation']['counts'].encode()))
        ys, xs = np.nonzero(m)
        # the box is the tight box of the (visible) mask, the area its pixel count
        assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert ann['area'] == m.sum()


def test_sparse_toy_coco_has_one_to_three_separate_whole_shapes(tmp_path):
    root = make_toy_coco(tmp_path / 'coco', num_train=12, num_val=1, size=128, sparse=True)
    coco = json.loads((root / 'annotations' / 'instances_train.json').read_text())
    per_image = {}
    for ann in coco['annotations']:
        m = mask_utils.decode(dict(size=ann['segmentation']['size'],
                                   counts=ann['segmentation']['counts'].encode())).astype(bool)
        per_image.setdefault(ann['image_id'], []).append(m)
    assert set(per_image) == set(range(1, 13))
    for masks in per_image.values():
        assert 1 <= len(masks) <= 3
        for i, a in enumerate(masks):
            assert a.sum() >= (128 // 8) ** 2  # radius >= size/8: large shapes (a ring's area is smaller than a disc's)
            for b in masks[i + 1:]:  # apart: even grown by 2 px they do not touch
                grown = cv2.dilate(a.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                assert not (grown & b).any()


def test_train_step_then_test_with_pictures(tmp_path):
    work = tmp_path / 'work'
    res = run_tool('train', CONFIG, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1', *SMALL)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert re.search(r'coco/bbox_mAP: [\d.]+', out) and re.search(r'coco/segm_mAP: [\d.]+', out)
    res = run_tool('test', CONFIG, work / 'epoch_1.pth', '--work-dir', tmp_path / 'test',
                   '--show-dir', tmp_path / 'pics', '--cfg-options', *SMALL)
    assert res.returncode == 0, res.stderr[-3000:]
    # mmdet's hook writes one picture per test image, named after it
    assert sorted(p.name for p in (tmp_path / 'pics').rglob('*.jpg')) == ['toy_val_00000.jpg', 'toy_val_00001.jpg']

    images = make_toy_coco(num_train=4, num_val=2) / 'images' / 'val'
    res = run_tool('infer', CONFIG, work / 'epoch_1.pth', images, '--out-dir', tmp_path / 'infer',
                   '--device', 'cpu')
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / 'infer' / 'vis').iterdir()) == sorted(p.name for p in images.iterdir())


def test_short_toy_training_reaches_clear_map(tmp_path):
    """Mask R-CNN (halonet26t) from scratch on the sparse toy shapes, 4 epochs / 64 iterations:
    measured bbox mAP 0.477 and segm mAP 0.547."""
    config = 'configs/det/mask-rcnn_halonet26t_fpn_1xb4-4e_toycoco-sparse.py'
    res = run_tool('train', config, '--work-dir', tmp_path / 'work')
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    bbox = float(re.findall(r'coco/bbox_mAP: ([\d.]+)', out)[-1])
    segm = float(re.findall(r'coco/segm_mAP: ([\d.]+)', out)[-1])
    assert bbox > 0.3 and segm > 0.3, (bbox, segm)
