"""Reading and writing nnU-Net raw / Medical Segmentation Decathlon datasets with nibabel.

Two layouts are understood (``dataset.json`` tells them apart):

- **nnU-Net v2 raw** (``nnUNet_raw/DatasetXXX_Name``): ``imagesTr/{CASE}_{XXXX}{file_ending}`` (one
  file per channel, 4-digit channel id), ``labelsTr/{CASE}{file_ending}``; ``dataset.json`` holds
  ``channel_names`` (``{"0": "T1"}``), ``labels`` (name -> int, ``"background": 0``),
  ``numTraining`` and ``file_ending``.
- **MSD** (``TaskXX_Name`` as downloaded): ``dataset.json`` lists ``training`` as
  ``[{"image": "./imagesTr/X.nii.gz", "label": "./labelsTr/X.nii.gz"}, ...]``, ``modality``
  (``{"0": "FLAIR", ...}``) and ``labels`` (int -> name); multi-channel images are 4-D with the
  channels last.

Volumes are turned to the closest canonical (RAS) orientation when loaded, so ``axis=2`` always
means axial slices; predictions are turned back to the file's own voxel grid before they are
written, with the image's affine and header.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import nibabel as nib
import numpy as np
from monai.data import load_decathlon_datalist
from monai.transforms import NormalizeIntensity
from nibabel import orientations as nio

__all__ = ['Case', 'DatasetInfo', 'read_dataset', 'default_split', 'load_case', 'to_canonical',
           'from_canonical', 'normalize', 'save_label', 'group_image_files']

_RAS = nio.axcodes2ornt('RAS')


@dataclass
class Case:
    """One case of a dataset: its id, one image file per channel (or one 4-D file) and its label."""
    name: str
    images: List[Path]
    label: Optional[Path] = None


@dataclass
class DatasetInfo:
    """What ``dataset.json`` says, in one form for both layouts."""
    root: Path
    channel_names: List[str]
    labels: Dict[str, int]
    file_ending: str
    cases: List[Case] = field(default_factory=list)

    @property
    def class_names(self) -> List[str]:
        return [n for n, _ in sorted(self.labels.items(), key=lambda kv: kv[1])]


def _fail(root: Path, msg: str):
    raise ValueError(f'dataset {root}: {msg}')


def read_dataset(root: Union[str, Path], check_shapes: bool = True) -> DatasetInfo:
    """Read ``dataset.json`` and list the labelled training cases, checking them against the files.

    Raises a ValueError naming the case for a missing image channel or label file, a label whose
    shape differs from its image's, or a ``numTraining`` that disagrees with ``imagesTr``
    (``check_shapes`` reads only the NIfTI headers).
    """
    root = Path(root)
    meta_file = root / 'dataset.json'
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{meta_file} does not exist: data_root must be an nnU-Net raw dataset folder "
            f"(dataset.json, imagesTr/, labelsTr/) or an MSD task folder")
    meta = json.loads(meta_file.read_text())
    if 'training' in meta and 'channel_names' not in meta:
        info = _read_msd(root, meta)
    else:
        info = _read_nnunet(root, meta)
    if check_shapes:
        for case in info.cases:
            shapes = [nib.load(str(p)).shape for p in case.images]
            spatial = {s[:3] for s in shapes}
            if len(spatial) != 1:
                _fail(root, f"case '{case.name}': its channel files differ in shape {shapes}")
            label_shape = nib.load(str(case.label)).shape
            if label_shape[:3] != shapes[0][:3] or len(label_shape) > 3 and label_shape[3] != 1:
                _fail(root, f"case '{case.name}': label shape {label_shape} differs from image "
                            f"shape {shapes[0][:3]} ({case.label.name} vs {case.images[0].name})")
    return info


def _labels(meta: dict, root: Path) -> Dict[str, int]:
    raw = meta.get('labels')
    if not raw:
        _fail(root, 'dataset.json has no "labels"')
    # nnU-Net: name -> int (regions as lists are not supported); MSD: "int" -> name
    if all(str(k).isdigit() for k in raw):
        labels = {str(v): int(k) for k, v in raw.items()}
    else:
        labels = {}
        for k, v in raw.items():
            if not isinstance(v, int):
                _fail(root, f'label "{k}": {v!r} is a region; only integer labels are supported')
            labels[k] = v
    values = sorted(labels.values())
    if values != list(range(len(values))):
        _fail(root, f'labels must be consecutive integers from 0 (background), got {labels}')
    return labels


def _read_nnunet(root: Path, meta: dict) -> DatasetInfo:
    for key in ('channel_names', 'labels', 'numTraining', 'file_ending'):
        if key not in meta:
            _fail(root, f'dataset.json lacks "{key}" (nnU-Net v2 raw layout)')
    ending = meta['file_ending']
    channels = [meta['channel_names'][k] for k in sorted(meta['channel_names'], key=int)]
    images_dir, labels_dir = root / 'imagesTr', root / 'labelsTr'
    pattern = re.compile(rf'^(.+)_(\d{{4}}){re.escape(ending)}$')
    found: Dict[str, Dict[int, Path]] = {}
    for p in sorted(images_dir.glob(f'*{ending}')):
        m = pattern.match(p.name)
        if m is None or p.name.startswith('.'):
            continue
        found.setdefault(m.group(1), {})[int(m.group(2))] = p
    cases = []
    for name, files in found.items():
        missing = [c for c in range(len(channels)) if c not in files]
        if missing:
            _fail(root, f"case '{name}': channel file(s) "
                        f"{', '.join(f'{name}_{c:04d}{ending}' for c in missing)} missing in "
                        f"imagesTr (dataset.json lists {len(channels)} channels: {channels})")
        extra = sorted(set(files) - set(range(len(channels))))
        if extra:
            _fail(root, f"case '{name}': channel ids {extra} in imagesTr but dataset.json lists "
                        f"only {len(channels)} channel(s)")
        label = labels_dir / f'{name}{ending}'
        if not label.is_file():
            _fail(root, f"case '{name}': label file {label} is missing")
        cases.append(Case(name, [files[c] for c in range(len(channels))], label))
    if len(cases) != meta['numTraining']:
        _fail(root, f"dataset.json says numTraining={meta['numTraining']} but imagesTr holds "
                    f"{len(cases)} case(s) with file ending '{ending}'")
    return DatasetInfo(root, channels, _labels(meta, root), ending, cases)


def _read_msd(root: Path, meta: dict) -> DatasetInfo:
    modality = meta.get('modality') or meta.get('channel_names') or {'0': 'unknown'}
    channels = [modality[k] for k in sorted(modality, key=int)]
    cases = []
    # MONAI's reader of the MSD list (paths resolved against the task folder); the checks are ours
    for entry in load_decathlon_datalist(str(root / 'dataset.json'), True, 'training', str(root)):
        image, label = Path(entry['image']), Path(entry['label'])
        name = re.sub(r'\.nii(\.gz)?$', '', image.name)
        if not image.is_file():
            _fail(root, f"case '{name}': image file {image} is missing")
        if not label.is_file():
            _fail(root, f"case '{name}': label file {label} is missing")
        cases.append(Case(name, [image], label))
    if meta.get('numTraining', len(cases)) != len(cases):
        _fail(root, f"dataset.json says numTraining={meta['numTraining']} but lists "
                    f"{len(cases)} training case(s)")
    return DatasetInfo(root, channels, _labels(meta, root), '.nii.gz', cases)


def default_split(info: DatasetInfo, split: str, fold: int = 0) -> List[Case]:
    """The cases of ``split`` ('train', 'val' or 'all') in ``fold``.

    ``splits_final.json`` in the dataset folder (nnU-Net's format: a list of
    ``{"train": [...], "val": [...]}``, one per fold) wins; otherwise nnU-Net's default 5-fold
    split (sklearn ``KFold(5, shuffle=True, random_state=12345)`` over the sorted case ids).
    """
    if split == 'all':
        return list(info.cases)
    if split not in ('train', 'val'):
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    by_name = {c.name: c for c in info.cases}
    splits_file = info.root / 'splits_final.json'
    if splits_file.is_file():
        splits = json.loads(splits_file.read_text())
        if not 0 <= fold < len(splits):
            raise ValueError(f'{splits_file} has {len(splits)} folds; fold={fold} does not exist')
        names = splits[fold][split]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            _fail(info.root, f'{splits_file.name} names case(s) {unknown[:5]} that imagesTr lacks')
        return [by_name[n] for n in names]
    from sklearn.model_selection import KFold
    names = sorted(by_name)
    train_idx, val_idx = list(KFold(5, shuffle=True, random_state=12345).split(names))[fold]
    return [by_name[names[i]] for i in (train_idx if split == 'train' else val_idx)]


def to_canonical(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Reorder and flip the first three axes of ``data`` to the closest RAS orientation."""
    return nio.apply_orientation(data, nio.io_orientation(affine))


def from_canonical(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Undo :func:`to_canonical`: back to the voxel order of the file whose affine is given."""
    return nio.apply_orientation(data, nio.ornt_transform(_RAS, nio.io_orientation(affine)))


def _canonical_spacing(affine: np.ndarray, shape: Sequence[int]) -> Tuple[float, float, float]:
    ornt = nio.io_orientation(affine)
    canonical = affine @ nio.inv_ornt_aff(ornt, shape[:3])
    return tuple(float(s) for s in np.sqrt((canonical[:3, :3] ** 2).sum(0)))


def load_case(case: Case, canonical: bool = True, with_label: bool = True) -> dict:
    """Read a case with nibabel.

    Returns ``image`` (C, X, Y, Z) float32, ``label`` (X, Y, Z) uint8 or None, ``spacing`` in mm
    along the returned axes, and what is needed to write a prediction back into the file's grid:
    ``affine``, ``header`` (of the first image file) and ``shape`` (its spatial shape).
    """
    channels = []
    first = None
    for p in case.images:
        img = nib.load(str(p))
        first = first or img
        data = np.asarray(img.dataobj, dtype=np.float32)
        # MSD stores channels last in one 4-D file
        channels.extend([data] if data.ndim == 3 else np.moveaxis(data, 3, 0))
    image = np.stack(channels)
    affine = first.affine
    shape = image.shape[1:]
    label = None
    if with_label and case.label is not None:
        lab = np.asanyarray(nib.load(str(case.label)).dataobj)
        lab = lab.reshape(lab.shape[:3])
        if lab.shape != shape:
            raise ValueError(f"case '{case.name}': label shape {lab.shape} differs from image "
                             f"shape {shape}")
        label = np.rint(lab).astype(np.uint8)
    if canonical:
        image = np.stack([to_canonical(c, affine) for c in image])
        label = to_canonical(label, affine) if label is not None else None
        spacing = _canonical_spacing(affine, shape)
    else:
        spacing = tuple(float(z) for z in first.header.get_zooms()[:3])
    return dict(name=case.name, image=np.ascontiguousarray(image),
                label=None if label is None else np.ascontiguousarray(label),
                spacing=spacing, affine=affine, header=first.header, shape=tuple(shape),
                canonical=canonical)


def normalize(image: np.ndarray, scheme: Union[str, dict] = 'zscore',
              channel_names: Optional[Sequence[str]] = None) -> np.ndarray:
    """Per-volume, per-channel intensity normalisation of a (C, X, Y, Z) image.

    Args:
        scheme: ``'zscore'`` (mean/std over the nonzero voxels, nnU-Net's choice for skull-stripped
            MRI; background stays 0), ``'percentile'`` (clip to the 0.5th/99.5th percentile of the
            nonzero voxels, then z-score; robust to outliers, for CT), ``'none'``, ``'auto'``
            (percentile for channels named CT, zscore otherwise), or a dict
            ``dict(type='percentile', lower=0.5, upper=99.5, nonzero=True)``.
        channel_names: the dataset's channel names, for ``'auto'``.
    """
    cfg = dict(type=scheme) if isinstance(scheme, str) else dict(scheme)
    kind = cfg.pop('type')
    out = np.empty_like(image, dtype=np.float32)
    for c, chan in enumerate(image):
        k = kind
        if k == 'auto':
            name = (channel_names[c] if channel_names else '').upper()
            k = 'percentile' if name == 'CT' else 'zscore'
        if k == 'none':
            out[c] = chan
            continue
        if k not in ('zscore', 'percentile'):
            raise ValueError(f"unknown normalisation '{kind}': use 'zscore', 'percentile', "
                             f"'auto' or 'none'")
        nonzero = cfg.get('nonzero', True)
        chan = chan.astype(np.float32)
        mask = chan != 0 if nonzero else np.ones(chan.shape, bool)
        if k == 'percentile' and mask.any():
            # percentiles of the foreground only: MONAI's ClipIntensityPercentiles takes every voxel
            lo, hi = np.percentile(chan[mask], [cfg.get('lower', 0.5), cfg.get('upper', 99.5)])
            chan = np.where(mask, np.clip(chan, lo, hi), 0)
        # MONAI's z-score over the nonzero voxels; the background stays 0, the value padding uses
        out[c] = NormalizeIntensity(nonzero=nonzero)(chan[None])[0]
    return out


def save_label(label: np.ndarray, path: Union[str, Path], affine: np.ndarray, header=None,
               canonical: bool = True) -> Path:
    """Write a (X, Y, Z) label map as NIfTI with the source image's affine (and header).

    ``canonical``: ``label`` is in the canonical orientation :func:`load_case` returns and is
    turned back to the file's voxel grid first.
    """
    label = np.asarray(label).astype(np.uint8)
    if canonical:
        label = from_canonical(label, affine)
    hdr = header.copy() if header is not None else None
    img = nib.Nifti1Image(np.ascontiguousarray(label), affine, hdr)
    img.set_data_dtype(np.uint8)
    img.header.set_slope_inter(1, 0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def group_image_files(inputs: Union[str, Path]) -> List[Case]:
    """The cases in a NIfTI file or a folder of them; ``X_0000.nii.gz``, ``X_0001.nii.gz`` ... are
    the channels of case ``X`` (nnU-Net naming), any other file is a case of its own."""
    inputs = Path(inputs)
    files = sorted(p for p in (inputs.iterdir() if inputs.is_dir() else [inputs])
                   if re.search(r'\.nii(\.gz)?$', p.name) and not p.name.startswith('.'))
    if inputs.is_file() and (m := re.match(r'^(.+)_\d{4}(\.nii(\.gz)?)$', inputs.name)):
        files = sorted(inputs.parent.glob(f'{m.group(1)}_[0-9][0-9][0-9][0-9]{m.group(2)}'))
    if not files:
        raise FileNotFoundError(f'no NIfTI files (.nii, .nii.gz) in {inputs}')
    groups: Dict[str, List[Path]] = {}
    for p in files:
        m = re.match(r'^(.+)_(\d{4})\.nii(\.gz)?$', p.name)
        name = m.group(1) if m else re.sub(r'\.nii(\.gz)?$', '', p.name)
        groups.setdefault(name, []).append(p)
    return [Case(name, paths) for name, paths in groups.items()]
