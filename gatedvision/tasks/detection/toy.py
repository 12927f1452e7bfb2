"""A toy instance-segmentation dataset in COCO format, generated on first use.

``images/{train,val}/*.jpg`` and ``annotations/instances_{train,val}.json`` (boxes, RLE masks of
the visible part of each shape, areas, categories): the shapes of the toy segmentation data, each
an instance, later shapes occluding earlier ones; or, with ``sparse=True``, 1–3 larger shapes apart
from each other, which a detector trained from scratch learns in a few hundred CPU iterations.
mmdet's ``CocoDataset`` and ``CocoMetric`` read it as they read COCO.
"""
import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from gatedvision.engine.utils import build_once, cache_dir
from gatedvision.tasks.shapes import paint_shapes

CLASSES = ('disc', 'square', 'triangle', 'ring')
PALETTE = [(220, 20, 60), (0, 200, 80), (30, 90, 230), (250, 200, 0)]
VERSION = 1


def make_sample(rng: np.random.Generator, size: int = 256, sparse: bool = False):
    """(RGB uint8 image, list of (category 1..4, visible bool mask))."""
    img, shapes = paint_shapes(rng, size, sparse)
    instances = []
    for cls, m in shapes:
        for _, earlier in instances:  # occlusion: what a later shape covers is no longer visible
            earlier &= ~m
        instances.append((cls, m.copy()))
    instances = [(c, m) for c, m in instances if m.sum() >= 20]
    return (img * 255).round().astype(np.uint8), instances


def _write_split(root: Path, split: str, n: int, seed: int, size: int, sparse: bool) -> None:
    (root / 'images' / split).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(n):
        img, instances = make_sample(rng, size, sparse)
        name = f'toy_{split}_{i:05d}.jpg'
        cv2.imwrite(str(root / 'images' / split / name), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=i + 1, file_name=name, height=size, width=size))
        for cls, m in instances:
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i + 1, category_id=cls, iscrowd=0,
                bbox=[x, y, w, h], area=float(mask_utils.area(rle)),
                segmentation=dict(size=rle['size'], counts=rle['counts'].decode('ascii'))))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)])
    (root / 'annotations').mkdir(exist_ok=True)
    (root / 'annotations' / f'instances_{split}.json').write_text(json.dumps(coco))


def make_toy_coco(root=None, num_train: int = 64, num_val: int = 16, size: int = 256,
                  sparse: bool = False) -> Path:
    """Write the toy COCO dataset to ``root`` (default: the cache) unless it is there."""
    if root is None:
        root = cache_dir(f'toycoco-v{VERSION}-{num_train}-{num_val}-{size}' + ('-sparse' if sparse else ''))

    def build(tmp: Path):
        _write_split(tmp, 'train', num_train, seed=0, size=size, sparse=sparse)
        _write_split(tmp, 'val', num_val, seed=1, size=size, sparse=sparse)

    return build_once(Path(root), build)
