"""Albumentations inside an OpenMMLab data pipeline."""
from typing import Dict, List, Sequence

import albumentations as A
import numpy as np
from mmcv.transforms import BaseTransform

from gatedvision.registry import TRANSFORMS


def _build(cfg: dict):
    cfg = dict(cfg)
    cls = getattr(A, cfg.pop('type'))
    if 'transforms' in cfg:  # OneOf, SomeOf, Sequential, ...
        cfg['transforms'] = [_build(t) for t in cfg['transforms']]
    return cls(**cfg)


@TRANSFORMS.register_module()
class Albu(BaseTransform):
    """Apply an albumentations pipeline to the image and, consistently, to its label maps.

    Args:
        transforms: albumentations transforms as dicts, ``type`` naming the class in
            ``albumentations`` (e.g. ``dict(type='ColorJitter', brightness=0.2, p=0.8)``); nested
            ``transforms`` for ``OneOf`` and friends.
        mask_keys: result keys holding label maps (warped with nearest interpolation, never
            recoloured), e.g. ``('gt_seg_map',)``.
        bgr: the pipeline's images are BGR (OpenCV loading, the OpenMMLab default); they are turned
            to RGB for albumentations, whose colour transforms assume RGB, and back.
    """
    foreign_config_keys = ('transforms',)  # albumentations names, not registry types

    def __init__(self, transforms: List[dict], mask_keys: Sequence[str] = ('gt_seg_map',),
                 bgr: bool = True):
        self.aug = A.Compose([_build(t) for t in transforms])
        self.mask_keys = tuple(mask_keys)
        self.bgr = bgr

    def transform(self, results: Dict) -> Dict:
        # albumentations keeps its own generators, seeded from the OS; drawing their seed from
        # numpy's global state (which mmengine seeds per worker) makes runs reproducible
        self.aug.set_random_seed(int(np.random.randint(0, 2**31 - 1)))
        img = results['img']
        keys = [k for k in self.mask_keys if k in results]
        out = self.aug(image=img[..., ::-1].copy() if self.bgr else img,
                       masks=[results[k] for k in keys])
        img = out['image']
        results['img'] = np.ascontiguousarray(img[..., ::-1]) if self.bgr else img
        for k, m in zip(keys, out['masks']):
            results[k] = m
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}({self.aug.transforms})'
