"""Restoration data: paired folders (GoPro / SIDD / Rain13k style), clean folders degraded on the fly,
the transforms between them, and the toy denoising set built from scikit-image's bundled pictures.

Images travel through the pipeline as RGB float32 in [0, 1] (``lq`` the degraded input, ``gt`` the
clean target); geometric augmentation is applied to both with one albumentations call.
"""
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import albumentations as A
import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from gatedvision.registry import DATASETS, TRANSFORMS
from gatedvision.engine.transforms import _build
from gatedvision.engine.utils import build_once, cache_dir

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def list_images(folder: Path) -> List[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder '{folder}' does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTENSIONS)


def read_rgb(path: str, channels: int = 3) -> np.ndarray:
    """An image file as RGB (or grey) float32 in [0, 1]; a clear error for unreadable files."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot read image '{path}': the file is missing, truncated or not an image")
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    if img.ndim == 2:
        img = img[..., None]
    elif img.shape[2] == 4:
        img = img[..., :3]  # drop alpha
    if img.shape[2] == 3:
        img = img[..., ::-1]  # OpenCV's BGR -> RGB
    if channels == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif channels == 1 and img.shape[2] == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)[..., None]
    return np.ascontiguousarray(img, dtype=np.float32) / scale


@DATASETS.register_module()
class PairedImageDataset(BaseDataset):
    """Degraded / clean pairs in two folders with matching file names (``lq/x.png``, ``gt/x.png``).

    Args:
        data_root: the dataset folder.
        lq_dir, gt_dir: the two sub-folders.
    """

    def __init__(self, data_root: str, lq_dir: str = 'lq', gt_dir: str = 'gt', **kwargs):
        self.lq_dir, self.gt_dir = lq_dir, gt_dir
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = Path(self.data_root)
        gts = {p.stem: p for p in list_images(root / self.gt_dir)}
        lqs = {p.stem: p for p in list_images(root / self.lq_dir)}
        for a, b, names in ((self.gt_dir, self.lq_dir, sorted(set(gts) - set(lqs))),
                            (self.lq_dir, self.gt_dir, sorted(set(lqs) - set(gts)))):
            if names:
                raise FileNotFoundError(
                    f"{root}: {len(names)} image(s) in '{a}/' have no file of the same name in "
                    f"'{b}/': {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
        if not gts:
            raise FileNotFoundError(f"{root}: no images in '{self.gt_dir}/'")
        return [dict(lq_path=str(lqs[k]), gt_path=str(gts[k])) for k in sorted(gts)]


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Clean images in one folder; a ``Degrade`` transform in the pipeline makes their inputs."""

    def __init__(self, data_root: str, img_dir: str = '', **kwargs):
        self.img_dir = img_dir
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        folder = Path(self.data_root, self.img_dir)
        paths = list_images(folder)
        if not paths:
            raise FileNotFoundError(f"no images in '{folder}'")
        return [dict(gt_path=str(p)) for p in paths]


@TRANSFORMS.register_module()
class LoadImagePair(BaseTransform):
    """Read ``gt_path`` (and ``lq_path`` when present) into ``gt`` / ``lq`` as float RGB."""

    def __init__(self, channels: int = 3):
        self.channels = channels

    def transform(self, results: Dict) -> Dict:
        for key in ('gt', 'lq'):
            if f'{key}_path' in results:
                results[key] = read_rgb(results[f'{key}_path'], self.channels)
        shapes = {k: results[k].shape for k in ('gt', 'lq') if k in results}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"'{results['lq_path']}' and '{results['gt_path']}' differ in size: "
                             f"{shapes['lq'][:2]} vs {shapes['gt'][:2]}")
        results['ori_shape'] = next(iter(shapes.values()))[:2]
        return results


class _Seeded(BaseTransform):
    """Albumentations whose randomness comes from numpy's per-worker state (reproducible runs and
    exact resume), or from ``seed + sample_idx`` when ``seed`` is given (a fixed test set)."""
    foreign_config_keys = ('transforms',)

    def __init__(self, transforms: List[dict], seed: Optional[int] = None, **compose_kwargs):
        self.aug = A.Compose([_build(t) for t in transforms], **compose_kwargs)
        self.seed = seed

    def _reseed(self, results: Dict) -> None:
        seed = (self.seed + int(results.get('sample_idx', 0)) if self.seed is not None
                else int(np.random.randint(0, 2**31 - 1)))
        self.aug.set_random_seed(seed)


@TRANSFORMS.register_module()
class Degrade(_Seeded):
    """Make ``lq`` from ``gt`` with albumentations degradations, e.g. Gaussian noise of sigma 25:
    ``dict(type='GaussNoise', std_range=(25 / 255, 25 / 255), p=1)``; blur, ``ImageCompression``.
    The result is clipped to [0, 1] and kept in float (no 8-bit rounding of the noisy input)."""

    def transform(self, results: Dict) -> Dict:
        self._reseed(results)
        results['lq'] = np.clip(self.aug(image=results['gt'])['image'], 0, 1).astype(np.float32)
        return results


@TRANSFORMS.register_module()
class PairedAlbu(_Seeded):
    """The same albumentations call on ``lq`` and ``gt`` (random crops, flips, rotations); on
    ``gt`` alone before a ``Degrade``."""

    def __init__(self, transforms: List[dict], seed: Optional[int] = None):
        super().__init__(transforms, seed, additional_targets=dict(gt='image'))

    def transform(self, results: Dict) -> Dict:
        self._reseed(results)
        if 'lq' not in results:
            results['gt'] = self.aug(image=results['gt'])['image']
            return results
        out = self.aug(image=results['lq'], gt=results['gt'])
        results['lq'], results['gt'] = out['image'], out['gt']
        return results


@TRANSFORMS.register_module()
class PackRestorationInputs(BaseTransform):
    """``lq`` -> ``inputs`` (C, H, W); ``gt`` -> ``data_samples.gt_img``; paths as metainfo."""

    def transform(self, results: Dict) -> Dict:
        def chw(a):
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={k: results[k] for k in
                                           ('gt_path', 'lq_path', 'ori_shape', 'sample_idx')
                                           if k in results})
        if 'gt' in results:
            sample.gt_img = chw(results['gt'])
        return dict(inputs=chw(results['lq']), data_samples=sample)


# ---- the toy denoising set ---------------------------------------------------------------------
TOY_VERSION = 1
TOY_TRAIN = ('coffee.png', 'chelsea.png', 'rocket.jpg', 'ihc.png', 'motorcycle_left.png',
             'hubble_deep_field.jpg', 'retina.jpg', 'brick.png', 'grass.png', 'gravel.png', 'page.png',
             'color.png')
TOY_VAL = ('astronaut.png', 'motorcycle_right.png', 'camera.png')


def make_toy_restore(root=None) -> Path:
    """scikit-image's bundled pictures (offline, in its wheel) as a clean-image dataset:
    ``train/`` (12 pictures, longer side <= 512) and ``val/`` (three held-out ones, 256 px)."""
    import skimage
    src = Path(skimage.__file__).parent / 'data'
    root = Path(root) if root is not None else cache_dir(f'toyrestore-v{TOY_VERSION}')

    def build(tmp: Path):
        for split, names, side in (('train', TOY_TRAIN, 512), ('val', TOY_VAL, 256)):
            (tmp / split).mkdir()
            for name in names:
                img = cv2.imread(str(src / name), cv2.IMREAD_COLOR)  # grey pictures become 3-channel
                if img is None:
                    raise FileNotFoundError(f'scikit-image picture {src / name} is missing')
                scale = side / max(img.shape[:2])
                if scale < 1:
                    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(tmp / split / (osp.splitext(name)[0] + '.png')), img)

    return build_once(root, build)


@DATASETS.register_module()
class ToyRestoreDataset(ImageFolderDataset):
    """The toy denoising pictures, generated into the cache on first use (``split``: train / val)."""

    def __init__(self, split: str = 'train', data_root: Optional[str] = None, **kwargs):
        root = make_toy_restore(data_root)
        super().__init__(data_root=str(root), img_dir=split, **kwargs)


__all__: Sequence[str] = ['PairedImageDataset', 'ImageFolderDataset', 'ToyRestoreDataset', 'LoadImagePair',
                          'Degrade', 'PairedAlbu', 'PackRestorationInputs', 'make_toy_restore', 'read_rgb']
