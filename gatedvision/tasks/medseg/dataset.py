"""Datasets over nnU-Net raw / MSD folders: whole volumes for validation and testing, random 2-D or
2.5-D slices with foreground oversampling for training."""
import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

from gatedvision.registry import DATASETS
from gatedvision.engine.utils import build_once, cache_dir
from .io import Case, default_split, load_case, normalize, read_dataset
from .model import stack_slices
from .toy import make_toy_medseg

__all__ = ['NnUNetVolumeDataset', 'NnUNetSliceDataset']


@DATASETS.register_module()
class NnUNetVolumeDataset(Dataset):
    """The cases of an nnU-Net raw (or MSD) dataset, one normalised volume per item.

    Items are ``dict(inputs=(C, X, Y, Z) float tensor, data_samples=BaseDataElement)``; the data
    sample carries ``gt`` (the label volume) and, as metainfo, what prediction and writing need:
    ``name``, ``spacing`` (mm), ``affine``, ``header``, ``shape``, ``canonical``, ``axis``,
    ``context``. Volumes are in the closest RAS orientation (``canonical=True``).

    Args:
        data_root: the dataset folder (``dataset.json``, ``imagesTr``, ``labelsTr``). None: the
            demo dataset (:func:`make_toy_medseg`, generated into the cache on first use).
        split: ``'train'``, ``'val'`` or ``'all'`` cases of ``fold`` (``splits_final.json`` if the
            folder has one, else nnU-Net's default 5-fold split).
        fold: cross-validation fold.
        axis: spatial axis the model slices along (2: axial, in RAS).
        context: neighbouring slices on either side fed as extra channels (2.5-D); the backbone's
            ``in_channels`` must be ``channels * (2 * context + 1)``.
        normalize: per-volume intensity normalisation (see :func:`.io.normalize`).
        canonical: reorient volumes to RAS (predictions are written back in the files' grid).
        toy: arguments of :func:`make_toy_medseg` when ``data_root`` is None.
    """

    def __init__(self,
                 data_root: Optional[str] = None,
                 split: str = 'val',
                 fold: int = 0,
                 axis: int = 2,
                 context: int = 0,
                 normalize: Union[str, dict] = 'zscore',
                 canonical: bool = True,
                 toy: Optional[dict] = None,
                 test_mode: bool = True):
        if axis not in (0, 1, 2):
            raise ValueError(f'axis must be 0, 1 or 2 (a spatial axis), got {axis}')
        root = make_toy_medseg(**(toy or {})) if data_root is None else Path(data_root)
        self.info = read_dataset(root)
        self.cases = default_split(self.info, split, fold)
        if not self.cases:
            raise ValueError(f"dataset {root}: split '{split}' of fold {fold} has no cases")
        self.axis, self.context = axis, context
        self.normalize, self.canonical = normalize, canonical
        self.metainfo = dict(classes=tuple(self.info.class_names),
                             channel_names=tuple(self.info.channel_names), data_root=str(root))

    def __len__(self) -> int:
        return len(self.cases)

    def load(self, case: Case) -> dict:
        data = load_case(case, canonical=self.canonical)
        data['image'] = normalize(data['image'], self.normalize, self.info.channel_names)
        labels = np.unique(data['label'])
        if labels.max() >= len(self.info.labels):
            raise ValueError(f"case '{case.name}': label values {labels.tolist()} outside the "
                             f"{len(self.info.labels)} classes of dataset.json ({self.info.labels})")
        return data

    def __getitem__(self, idx: int) -> dict:
        case = self.cases[idx]
        data = self.load(case)
        sample = BaseDataElement(metainfo=dict(
            name=case.name, image_paths=[str(p) for p in case.images], label_path=str(case.label),
            spacing=data['spacing'], affine=data['affine'], header=data['header'],
            shape=data['shape'], canonical=self.canonical, axis=self.axis, context=self.context))
        sample.gt = data['label']
        return dict(inputs=torch.from_numpy(data['image']), data_samples=sample)


@DATASETS.register_module()
class NnUNetSliceDataset(NnUNetVolumeDataset):
    """Random training slices (2-D, or 2.5-D with ``context``) from the cases of a split.

    Item ``i`` draws from case ``i % len(cases)``; with probability ``fg_prob`` the slice and crop
    are centred near a random voxel of a random foreground class present in the case (nnU-Net's
    foreground oversampling), else they are uniform. Randomness comes from numpy's global state
    (seeded per loader worker by mmengine, restored on resume by ``RandomStateHook``/the loader
    replay), so runs and resumed runs are reproducible.

    Items are ``dict(inputs=(C', h, w) float tensor, data_samples=(h, w) long tensor)``.

    Args:
        patch_size: (h, w) crop of each slice (padded with zeros if the slice is smaller); None:
            whole slices (all cases must then share the in-plane size).
        fg_prob: probability of a foreground-centred sample.
        samples_per_case: the dataset's length is ``samples_per_case * len(cases)``.
        flip: random flips of both in-plane axes.
        intensity_scale, intensity_shift: random ``x * (1 + U(-s, s)) + U(-t, t)`` per sample.
        cache: ``'memory'`` keeps every normalised case in memory (small datasets);
            ``'npy'`` writes each once to ``cache_dir('medseg', 'npy')`` and memory-maps it, so a
            slice reads only its own voxels (BraTS-sized datasets).
        **kwargs: :class:`NnUNetVolumeDataset`'s arguments.
    """

    def __init__(self,
                 *args,
                 split: str = 'train',
                 patch_size: Optional[Sequence[int]] = None,
                 fg_prob: float = 0.33,
                 samples_per_case: int = 50,
                 flip: bool = True,
                 intensity_scale: float = 0.1,
                 intensity_shift: float = 0.1,
                 cache: str = 'memory',
                 **kwargs):
        kwargs.setdefault('test_mode', False)
        super().__init__(*args, split=split, **kwargs)
        if cache not in ('memory', 'npy'):
            raise ValueError(f"cache must be 'memory' or 'npy', got {cache!r}")
        self.patch_size = tuple(patch_size) if patch_size is not None else None
        self.fg_prob, self.samples_per_case, self.flip = fg_prob, samples_per_case, flip
        self.intensity_scale, self.intensity_shift = intensity_scale, intensity_shift
        self.volumes = [self._prepare(c, cache) for c in self.cases]

    def _prepare(self, case: Case, cache: str) -> dict:
        """(image, label, per-class foreground voxel lists) of a case, in memory or memory-mapped."""
        if cache == 'memory':
            data = self.load(case)
            return dict(image=data['image'], label=data['label'], fg=_fg_locations(data['label']))
        stamp = json.dumps([str(Path(p).resolve()) for p in case.images + [case.label]]
                           + [Path(p).stat().st_mtime_ns for p in case.images + [case.label]]
                           + [self.normalize, self.canonical], sort_keys=True, default=str)
        key = hashlib.sha1(stamp.encode()).hexdigest()[:16]

        def build(tmp: Path):
            data = self.load(case)
            np.save(tmp / 'image.npy', data['image'])
            np.save(tmp / 'label.npy', data['label'])
            fg = _fg_locations(data['label'])
            np.savez(tmp / 'fg.npz', **{str(k): v for k, v in fg.items()})

        folder = build_once(cache_dir('medseg', 'npy', f'{case.name}-{key}'), build)
        fg = dict(np.load(folder / 'fg.npz'))
        return dict(image=np.load(folder / 'image.npy', mmap_mode='r'),
                    label=np.load(folder / 'label.npy', mmap_mode='r'),
                    fg={int(k): v for k, v in fg.items()})

    def __len__(self) -> int:
        return self.samples_per_case * len(self.cases)

    def __getitem__(self, idx: int) -> dict:
        vol = self.volumes[idx % len(self.volumes)]
        rng = np.random
        depth = vol['label'].shape[self.axis]
        centre = None
        if vol['fg'] and rng.random_sample() < self.fg_prob:
            cls = list(vol['fg'])[rng.randint(len(vol['fg']))]
            locs = vol['fg'][cls]
            voxel = locs[rng.randint(len(locs))]
            z = int(voxel[self.axis])
            centre = [int(v) for i, v in enumerate(voxel) if i != self.axis]
        else:
            z = rng.randint(depth)
        image = stack_slices(vol['image'], self.axis, [z], self.context)[0]  # (C', H, W)
        label = np.take(vol['label'], z, axis=self.axis)  # (H, W)
        image, label = self._crop(np.asarray(image, np.float32), np.asarray(label), centre, rng)
        if self.flip:
            for ax in (-2, -1):
                if rng.random_sample() < 0.5:
                    image, label = np.flip(image, ax), np.flip(label, ax)
        if self.intensity_scale or self.intensity_shift:
            image = image * (1 + rng.uniform(-self.intensity_scale, self.intensity_scale)) \
                + rng.uniform(-self.intensity_shift, self.intensity_shift)
        return dict(inputs=torch.from_numpy(np.ascontiguousarray(image, np.float32)),
                    data_samples=torch.from_numpy(np.ascontiguousarray(label).astype(np.int64)))

    def _crop(self, image: np.ndarray, label: np.ndarray, centre, rng) -> Tuple[np.ndarray, np.ndarray]:
        if self.patch_size is None:
            return image, label
        pads, starts = [], []
        for d, (size, p) in enumerate(zip(label.shape, self.patch_size)):
            before = max(0, p - size) // 2
            pads.append((before, max(0, p - size) - before))
            size = max(size, p)
            if centre is not None:  # the chosen voxel anywhere inside the patch
                start = centre[d] + before - rng.randint(p)
            else:
                start = rng.randint(size - p + 1)
            starts.append(int(np.clip(start, 0, size - p)))
        if any(sum(p) for p in pads):
            image = np.pad(image, [(0, 0)] + pads)
            label = np.pad(label, pads)
        (y, x), (h, w) = starts, self.patch_size
        return image[:, y:y + h, x:x + w], label[y:y + h, x:x + w]


def _fg_locations(label: np.ndarray, max_per_class: int = 10000) -> dict:
    """Voxel coordinates of every foreground class present (a fixed subsample if many)."""
    out = {}
    for c in np.unique(label):
        if c == 0:
            continue
        locs = np.argwhere(label == c)
        if len(locs) > max_per_class:
            locs = locs[np.random.default_rng(1234).choice(len(locs), max_per_class, replace=False)]
        out[int(c)] = locs
    return out
