"""A toy semantic-segmentation dataset in ADE20K's folder layout, generated on first use.

``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png``; annotation
value 0 means "unlabelled" and classes are 1..K, as in ADE20K (read with ``reduce_zero_label``).
Each image is a textured background with a few filled shapes; each shape class has its own hue
range, so a small network learns it in minutes on a CPU while the shapes still overlap in colour.
"""
from pathlib import Path

import cv2
import numpy as np

from gatedvision.engine.utils import build_once, cache_dir
from gatedvision.tasks.shapes import paint_shapes

CLASSES = ('background', 'disc', 'square', 'triangle', 'ring')
PALETTE = [[120, 120, 120], [220, 20, 60], [0, 200, 80], [30, 90, 230], [250, 200, 0]]
VERSION = 1


def make_sample(rng: np.random.Generator, size: int = 256):
    """One (RGB uint8 image, uint8 annotation) pair."""
    img, shapes = paint_shapes(rng, size)
    ann = np.ones((size, size), np.uint8)  # class 1 = background
    for cls, m in shapes:
        ann[m] = cls + 1
    return (img * 255).round().astype(np.uint8), ann


def _write_split(root: Path, split: str, n: int, seed: int, size: int) -> None:
    (root / 'images' / split).mkdir(parents=True)
    (root / 'annotations' / split).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, ann = make_sample(rng, size)
        name = f'toy_{split}_{i:05d}'
        cv2.imwrite(str(root / 'images' / split / f'{name}.jpg'), img[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / 'annotations' / split / f'{name}.png'), ann)


def make_toy_seg(root=None, num_train: int = 64, num_val: int = 16, size: int = 256) -> Path:
    """Write the toy dataset to ``root`` (default: the cache) unless it is there; return the root."""
    if root is None:
        root = cache_dir(f'toyseg-v{VERSION}-{num_train}-{num_val}-{size}')

    def build(tmp: Path):
        _write_split(tmp, 'training', num_train, seed=0, size=size)
        _write_split(tmp, 'validation', num_val, seed=1, size=size)

    return build_once(Path(root), build)
