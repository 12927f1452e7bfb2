"""Datasets over nnU-Net raw / MSD folders, on mmengine's ``BaseDataset``: whole volumes for
validation and testing, random 2-D or 2.5-D slices with foreground oversampling for training. What
a sample goes through is the ``pipeline`` of registered transforms (:mod:`.transforms`)."""
import hashlib
import json
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
from mmengine.dataset import BaseDataset

from gatedvision.registry import DATASETS
from gatedvision.engine.utils import build_once, cache_dir
from .io import Case, default_split, read_dataset
from .toy import make_toy_medseg
from .transforms import LoadMedicalCase, default_slice_pipeline

__all__ = ['NnUNetVolumeDataset', 'NnUNetSliceDataset']


@DATASETS.register_module()
class NnUNetVolumeDataset(BaseDataset):
    """The cases of an nnU-Net raw (or MSD) dataset, one normalised volume per item.

    Each case's info (``name``, ``image_paths``, ``img_path``, ``label_path`` and the dataset's
    ``axis``, ``context``, ``normalize``, ``canonical``, ``channel_names``, ``labels``) goes through
    ``pipeline``; by default :class:`~.transforms.LoadMedicalCase` and
    :class:`~.transforms.PackMedSegVolume`, giving ``dict(inputs=(C, X, Y, Z) float tensor,
    data_samples=BaseDataElement)`` with ``gt`` (the label volume) and what prediction and writing
    need as metainfo. Volumes are in the closest RAS orientation (``canonical=True``).

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
        pipeline: the transforms (default: load, normalise and pack the whole volume).
        **kwargs: ``BaseDataset``'s (``test_mode``, ``indices``, ...).
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
                 pipeline: Optional[List[dict]] = None,
                 **kwargs):
        if axis not in (0, 1, 2):
            raise ValueError(f'axis must be 0, 1 or 2 (a spatial axis), got {axis}')
        root = make_toy_medseg(**(toy or {})) if data_root is None else Path(data_root)
        self.info = read_dataset(root)
        self.cases = default_split(self.info, split, fold)
        if not self.cases:
            raise ValueError(f"dataset {root}: split '{split}' of fold {fold} has no cases")
        self.axis, self.context = axis, context
        self.normalize, self.canonical = normalize, canonical
        if pipeline is None:
            pipeline = [dict(type='gatedvision.LoadMedicalCase'), dict(type='gatedvision.PackMedSegVolume')]
        kwargs.setdefault('test_mode', True)
        super().__init__(data_root=str(root), pipeline=pipeline, serialize_data=False,
                         metainfo=dict(classes=tuple(self.info.class_names),
                                       channel_names=tuple(self.info.channel_names)), **kwargs)

    def case_info(self, case: Case) -> dict:
        """What the pipeline gets of a case: its files, and how the dataset reads it."""
        return dict(name=case.name, image_paths=[str(p) for p in case.images], img_path=str(case.images[0]),
                    label_path=str(case.label), axis=self.axis, context=self.context, normalize=self.normalize,
                    canonical=self.canonical, channel_names=list(self.info.channel_names),
                    labels=self.info.labels)

    def load_data_list(self) -> List[dict]:
        return [self.case_info(c) for c in self.cases]

    def load(self, case: Case) -> dict:
        """A case read and normalised, its labels checked (``LoadMedicalCase``, for the slice cache)."""
        return LoadMedicalCase()(self.case_info(case))


@DATASETS.register_module()
class NnUNetSliceDataset(NnUNetVolumeDataset):
    """Random training slices (2-D, or 2.5-D with ``context``) from the cases of a split.

    Item ``i`` draws from case ``i % len(cases)``: its info carries the case's normalised volume
    (``image``, ``label``) and its foreground voxels per class (``fg``), and ``pipeline`` picks the
    slice and augments it (by default :func:`~.transforms.default_slice_pipeline`: foreground
    oversampling with probability 0.33, whole slices, flips, an intensity jitter; the configs crop
    with ``RandomCropSlice``). Randomness comes from numpy's global state (seeded per loader worker
    by mmengine, restored on resume by ``RandomStateHook`` and the loader's replay), so runs and
    resumed runs are reproducible.

    Args:
        samples_per_case: the dataset's length is ``samples_per_case * len(cases)``.
        cache: ``'memory'`` keeps every normalised case in memory (small datasets);
            ``'npy'`` writes each once to ``cache_dir('medseg', 'npy')`` and memory-maps it, so a
            slice reads only its own voxels (BraTS-sized datasets).
        **kwargs: :class:`NnUNetVolumeDataset`'s arguments (``pipeline`` included).
    """

    def __init__(self,
                 *args,
                 split: str = 'train',
                 samples_per_case: int = 50,
                 cache: str = 'memory',
                 pipeline: Optional[List[dict]] = None,
                 **kwargs):
        if cache not in ('memory', 'npy'):
            raise ValueError(f"cache must be 'memory' or 'npy', got {cache!r}")
        self.samples_per_case, self.cache = samples_per_case, cache
        kwargs.setdefault('test_mode', False)
        super().__init__(*args, split=split, pipeline=pipeline or default_slice_pipeline(), **kwargs)

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.volumes = [self._prepare(c, self.cache) for c in self.cases]
        super().full_init()

    def load_data_list(self) -> List[dict]:
        return [dict(self.case_info(self.cases[i % len(self.cases)]), case_index=i % len(self.cases))
                for i in range(self.samples_per_case * len(self.cases))]

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info.update(self.volumes[info['case_index']])  # the arrays themselves, not copies
        return info

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
