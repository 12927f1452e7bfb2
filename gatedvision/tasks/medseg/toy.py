"""A demo brain-lesion dataset in nnU-Net raw layout, generated on first use (CPU, a few seconds).

Each case is the MNI152 2009a T1 template (shipped inside nilearn's wheel, skull-stripped) resampled
to ``resolution`` mm, with 1–2 synthetic lesions: a contrast-enhancing tumour (label 1; an
ellipsoid of random size, orientation and position inside the brain, textured, sometimes with a
dark necrotic core) inside a hypointense oedema shell (label 2). Every case then gets its own
anatomy mirror, small shift, multiplicative bias field, intensity scale and noise, partial-volume
blur and int16 storage, and half the cases are stored with a flipped first voxel axis (the affine
says so; the loader's canonical reorientation undoes it). Fully deterministic from ``seed``.

Layout (``Dataset900_ToyLesion``): ``imagesTr/lesion_XXX_0000.nii.gz``, ``labelsTr/lesion_XXX.nii.gz``,
``dataset.json`` and ``splits_final.json`` (fold 0: the first ``num_train`` cases train, the rest
validate).
"""
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from gatedvision.engine.utils import build_once, cache_dir

__all__ = ['make_toy_medseg', 'LABELS']

LABELS = {'background': 0, 'tumour': 1, 'oedema': 2}
VERSION = 2


def _template(resolution: int):
    from nilearn.datasets import load_mni152_template
    img = load_mni152_template(resolution=int(resolution))
    return np.asarray(img.get_fdata(), np.float32), img.affine


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _add_lesion(vol, label, brain, inner, rng, resolution):
    """Paint one tumour + oedema shell into ``vol`` / ``label`` (in place)."""
    centre = np.argwhere(inner)[rng.integers(inner.sum())]
    radii = rng.uniform(8, 18, size=3) / resolution  # mm -> voxels
    shell = rng.uniform(6, 12) / resolution
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in vol.shape], indexing='ij'), -1)
    local = (grid - centre) @ _rotation(rng)  # (X, Y, Z, 3) in the lesion's frame
    r = np.sqrt(((local / radii) ** 2).sum(-1))  # 1 on the tumour surface
    mean_radius = radii.mean()
    tumour = (r <= 1) & brain
    oedema = (r <= 1 + shell / mean_radius) & brain & ~tumour
    brain_level = np.median(vol[brain])
    texture = ndimage.gaussian_filter(rng.normal(size=vol.shape), 1.0)
    texture /= texture.std() + 1e-8
    vol[oedema] *= rng.uniform(0.6, 0.8)
    tumour_level = brain_level * rng.uniform(1.3, 1.7)
    vol[tumour] = tumour_level * (1 + 0.08 * texture[tumour])
    if rng.random() < 0.3:  # necrotic core, still tumour
        core = (r <= rng.uniform(0.3, 0.5)) & tumour
        vol[core] = brain_level * rng.uniform(0.3, 0.5)
    label[oedema & (label == 0)] = LABELS['oedema']
    label[tumour] = LABELS['tumour']


def _case(template, affine, rng, resolution):
    vol = template.copy()
    if rng.random() < 0.5:  # anatomy mirrored left-right
        vol = vol[::-1].copy()
    vol = np.roll(vol, tuple(rng.integers(-2, 3, size=3)), axis=(0, 1, 2))  # background borders
    brain = vol > 0.1
    inner = ndimage.binary_erosion(brain, iterations=max(1, round(10 / resolution)))
    label = np.zeros(vol.shape, np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        _add_lesion(vol, label, brain, inner, rng, resolution)
    # scanner effects: smooth multiplicative bias, global scale, noise inside the brain
    coords = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in vol.shape], indexing='ij'))
    bias = 1 + np.tensordot(rng.uniform(-0.15, 0.15, size=3), coords, axes=1)
    vol = ndimage.gaussian_filter(vol, 0.5) * bias
    vol += rng.normal(0, rng.uniform(0.01, 0.04), vol.shape) * brain
    vol = np.clip(vol, 0, None) * rng.uniform(300, 1500)
    vol[~brain] = 0
    vol = np.rint(vol).astype(np.int16)
    aff = affine.copy()
    if rng.random() < 0.5:  # stored with the first voxel axis reversed (same anatomy in space)
        vol, label = vol[::-1].copy(), label[::-1].copy()
        aff[:3, 3] += aff[:3, 0] * (vol.shape[0] - 1)
        aff[:3, 0] *= -1
    return vol, label, aff


def make_toy_medseg(root=None, num_train: int = 12, num_val: int = 4, resolution: int = 3,
                    seed: int = 0) -> Path:
    """Write the demo dataset to ``root`` (default: the cache) unless it is there; return the root."""
    if root is None:
        root = cache_dir('medseg', f'Dataset900_ToyLesion-v{VERSION}-{num_train}-{num_val}-'
                                   f'{resolution}mm-s{seed}')

    def build(tmp: Path):
        template, affine = _template(resolution)
        (tmp / 'imagesTr').mkdir()
        (tmp / 'labelsTr').mkdir()
        names = [f'lesion_{i:03d}' for i in range(num_train + num_val)]
        for i, name in enumerate(names):
            vol, label, aff = _case(template, affine, np.random.default_rng([seed, i]), resolution)
            img = nib.Nifti1Image(vol, aff)
            img.header.set_xyzt_units('mm')
            nib.save(img, str(tmp / 'imagesTr' / f'{name}_0000.nii.gz'))
            nib.save(nib.Nifti1Image(label, aff), str(tmp / 'labelsTr' / f'{name}.nii.gz'))
        (tmp / 'dataset.json').write_text(json.dumps(dict(
            name='ToyLesion',
            description='MNI152 2009a T1 template (nilearn) with synthetic tumours and oedema',
            channel_names={'0': 'T1'}, labels=LABELS, numTraining=len(names),
            file_ending='.nii.gz'), indent=2))
        (tmp / 'splits_final.json').write_text(json.dumps(
            [dict(train=names[:num_train], val=names[num_train:])], indent=2))

    return build_once(Path(root), build)
