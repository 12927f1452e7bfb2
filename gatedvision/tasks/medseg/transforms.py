"""The medical datasets' pipelines: registered mmcv transforms over a case (its files, or its volume
already in memory), so that a config changes the sampling, crop and augmentations as it changes an
mmseg pipeline, and every sample carries its case's files and slice.

Random draws come from numpy's global state, as nnU-Net's augmentations and mmseg's transforms draw
theirs: mmengine seeds it per loader worker and ``RandomStateHook`` restores it on ``--resume``, so
a resumed run draws the same samples. MONAI's dictionary transforms are not used for these steps:
each draws from a ``RandomState`` of its own, which neither that seeding nor the resume restores.
"""
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from gatedvision.registry import TRANSFORMS
from .io import Case, load_case, normalize
from .model import stack_slices

__all__ = ['LoadMedicalCase', 'PackMedSegVolume', 'SampleSlice', 'RandomCropSlice', 'RandomFlipSlice',
           'RandomIntensity', 'PackMedSegSlice']


@TRANSFORMS.register_module()
class LoadMedicalCase(BaseTransform):
    """Read a case's channel files and label (nibabel), reorient them to RAS when ``canonical``,
    normalise the intensities (:func:`.io.normalize`) and check the label values against the
    dataset's classes. Reads ``image_paths``, ``label_path``, ``name``, ``canonical``,
    ``normalize``, ``channel_names``, ``labels``; adds ``image`` (C, X, Y, Z) float32, ``label``
    (X, Y, Z), ``spacing``, ``affine``, ``header``, ``shape``."""

    def transform(self, results: dict) -> dict:
        case = Case(results['name'], [Path(p) for p in results['image_paths']], Path(results['label_path']))
        data = load_case(case, canonical=results['canonical'])
        data['image'] = normalize(data['image'], results['normalize'], results['channel_names'])
        labels = np.unique(data['label'])
        if labels.max() >= len(results['labels']):
            raise ValueError(f"case '{case.name}': label values {labels.tolist()} outside the "
                             f"{len(results['labels'])} classes of dataset.json ({results['labels']})")
        results.update(data)
        return results


@TRANSFORMS.register_module()
class PackMedSegVolume(BaseTransform):
    """``dict(inputs=(C, X, Y, Z) tensor, data_samples=BaseDataElement)``: the sample carries ``gt``
    (the label volume) and, as metainfo, what prediction and writing need (``name``, ``img_path``,
    ``image_paths``, ``label_path``, ``spacing``, ``affine``, ``header``, ``shape``, ``canonical``,
    ``axis``, ``context``)."""

    KEYS = ('name', 'img_path', 'image_paths', 'label_path', 'spacing', 'affine', 'header', 'shape',
            'canonical', 'axis', 'context')

    def transform(self, results: dict) -> dict:
        sample = BaseDataElement(metainfo={k: results[k] for k in self.KEYS})
        sample.gt = results['label']
        return dict(inputs=torch.from_numpy(results['image']), data_samples=sample)


@TRANSFORMS.register_module()
class SampleSlice(BaseTransform):
    """A slice of the case along ``axis`` (with ``context`` neighbours on either side as extra
    channels): with probability ``fg_prob`` one through a random voxel of a random foreground class
    present in the case, which also becomes the crop's centre (nnU-Net's foreground oversampling),
    else a uniform one. Reads the case's ``image``, ``label`` and ``fg`` (voxels per class); adds
    ``img`` (C', H, W) float32, ``gt_seg_map`` (H, W), ``slice_index`` and ``centre`` (or None)."""

    def __init__(self, fg_prob: float = 0.33):
        self.fg_prob = fg_prob

    def transform(self, results: dict) -> dict:
        rng, axis, fg = np.random, results['axis'], results['fg']
        centre = None
        if fg and rng.random_sample() < self.fg_prob:
            cls = list(fg)[rng.randint(len(fg))]
            voxel = fg[cls][rng.randint(len(fg[cls]))]
            z = int(voxel[axis])
            centre = [int(v) for i, v in enumerate(voxel) if i != axis]
        else:
            z = rng.randint(results['label'].shape[axis])
        results['img'] = np.asarray(stack_slices(results['image'], axis, [z], results['context'])[0], np.float32)
        results['gt_seg_map'] = np.asarray(np.take(results['label'], z, axis=axis))
        results.update(slice_index=z, centre=centre)
        return results


@TRANSFORMS.register_module()
class RandomCropSlice(BaseTransform):
    """A ``patch_size`` (h, w) crop of the slice, holding its ``centre`` anywhere inside when it has
    one, else uniform; a smaller slice is zero-padded (centred) first."""

    def __init__(self, patch_size: Sequence[int]):
        self.patch_size = tuple(patch_size)

    def transform(self, results: dict) -> dict:
        image, label, centre = results['img'], results['gt_seg_map'], results.get('centre')
        pads, starts = [], []
        for d, (size, p) in enumerate(zip(label.shape, self.patch_size)):
            before = max(0, p - size) // 2
            pads.append((before, max(0, p - size) - before))
            size = max(size, p)
            start = centre[d] + before - np.random.randint(p) if centre is not None else np.random.randint(size - p + 1)
            starts.append(int(np.clip(start, 0, size - p)))
        if any(sum(p) for p in pads):
            image, label = np.pad(image, [(0, 0)] + pads), np.pad(label, pads)
        (y, x), (h, w) = starts, self.patch_size
        results.update(img=image[:, y:y + h, x:x + w], gt_seg_map=label[y:y + h, x:x + w])
        return results


@TRANSFORMS.register_module()
class RandomFlipSlice(BaseTransform):
    """Flips the slice and its labels along each in-plane axis with probability ``prob``."""

    def __init__(self, prob: float = 0.5):
        self.prob = prob

    def transform(self, results: dict) -> dict:
        for ax in (-2, -1):
            if np.random.random_sample() < self.prob:
                results['img'] = np.flip(results['img'], ax)
                results['gt_seg_map'] = np.flip(results['gt_seg_map'], ax)
        return results


@TRANSFORMS.register_module()
class RandomIntensity(BaseTransform):
    """``img * (1 + U(-scale, scale)) + U(-shift, shift)`` (the image is normalised already)."""

    def __init__(self, scale: float = 0.1, shift: float = 0.1):
        self.scale, self.shift = scale, shift

    def transform(self, results: dict) -> dict:
        results['img'] = results['img'] * (1 + np.random.uniform(-self.scale, self.scale)) \
            + np.random.uniform(-self.shift, self.shift)
        return results


@TRANSFORMS.register_module()
class PackMedSegSlice(BaseTransform):
    """``dict(inputs=(C', h, w) float tensor, data_samples=BaseDataElement)``: the sample's ``gt``
    is the (h, w) label, its metainfo the case's ``name``, ``img_path`` (its first channel file),
    ``image_paths``, ``label_path`` and the ``slice_index`` along ``axis``, so that an error on a
    batch names its files and slices."""

    KEYS = ('name', 'img_path', 'image_paths', 'label_path', 'slice_index', 'axis')

    def transform(self, results: dict) -> dict:
        sample = BaseDataElement(metainfo={k: results[k] for k in self.KEYS})
        sample.gt = torch.from_numpy(np.ascontiguousarray(results['gt_seg_map']).astype(np.int64))
        return dict(inputs=torch.from_numpy(np.ascontiguousarray(results['img'], np.float32)),
                    data_samples=sample)


def default_slice_pipeline(patch_size: Optional[Sequence[int]] = None) -> list:
    """The training pipeline the configs write out: foreground-oversampled slices, a crop, flips,
    an intensity jitter."""
    crop = [dict(type='gatedvision.RandomCropSlice', patch_size=patch_size)] if patch_size else []
    return [dict(type='gatedvision.SampleSlice'), *crop, dict(type='gatedvision.RandomFlipSlice'),
            dict(type='gatedvision.RandomIntensity'), dict(type='gatedvision.PackMedSegSlice')]
