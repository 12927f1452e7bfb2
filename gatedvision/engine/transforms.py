"""Albumentations inside an OpenMMLab data pipeline, and an image loader with clear errors."""
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence

import albumentations as A
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms import LoadImageFromFile as MMCVLoadImageFromFile
from mmengine.logging import print_log

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


@TRANSFORMS.register_module()
class LoadImageFromFile(MMCVLoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` whose errors name the image and say what is wrong with it.

    Args:
        skip_bad: skip images that are missing, truncated or not images instead of stopping: the
            loader returns nothing, the dataset draws another sample (training only) and each
            skip is logged with a running count.
        **kwargs: mmcv's ``LoadImageFromFile`` arguments.
    """

    def __init__(self, skip_bad: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.skip_bad = skip_bad
        self.skipped = 0

    def transform(self, results: Dict) -> Optional[Dict]:
        path = results['img_path']
        try:
            out = super().transform(results)
        except Exception as e:  # mmcv raises FileNotFoundError, or asserts on undecodable bytes
            reason = ('does not exist (an annotation refers to it)' if not osp.exists(path)
                      else 'is truncated, corrupt or not an image')
            if not self.skip_bad:
                raise ValueError(f"image '{path}' {reason}; fix or remove it, or set skip_bad=True "
                                 f"in the pipeline's LoadImageFromFile to skip such samples") from e
            self.skipped += 1
            print_log(f"skipping image '{path}': it {reason} ({self.skipped} skipped so far by "
                      f'this loader)', logger='current', level=logging.WARNING)
            return None
        if out is None:  # mmcv's ignore_empty
            return None
        return out
