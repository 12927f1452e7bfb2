"""Per-volume Dice and HD95 (MONAI), per class and averaged over volumes."""
import json
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from monai.metrics import DiceMetric, HausdorffDistanceMetric
from monai.networks.utils import one_hot

from gatedvision.registry import METRICS
from .io import save_label

__all__ = ['MedSegMetric', 'volume_scores']


def volume_scores(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                  spacing: Optional[Sequence[float]] = None):
    """Dice and HD95 (mm with ``spacing``) of each foreground class of one volume.

    MONAI's ``DiceMetric(ignore_empty=True)`` and ``HausdorffDistanceMetric(percentile=95)``.
    A class absent from the ground truth scores NaN for both (left out of the means); a class
    present in the ground truth but not predicted scores Dice 0 and, for HD95, the volume's
    diagonal in mm (the largest distance possible) instead of MONAI's inf.
    """
    p = one_hot(torch.as_tensor(np.asarray(pred), dtype=torch.long)[None, None], num_classes)
    g = one_hot(torch.as_tensor(np.asarray(gt), dtype=torch.long)[None, None], num_classes)
    dice = DiceMetric(include_background=False, reduction='none', ignore_empty=True)(p, g)[0]
    spacing = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * pred.ndim
    with warnings.catch_warnings():  # MONAI warns about empty classes, handled below
        warnings.simplefilter('ignore')
        hd = HausdorffDistanceMetric(include_background=False, percentile=95, reduction='none')(
            p, g, spacing=spacing)[0]
    dice, hd = dice.numpy().astype(float), hd.numpy().astype(float)
    diagonal = float(np.sqrt(sum((n * s) ** 2 for n, s in zip(pred.shape, spacing))))
    present = g[0, 1:].flatten(1).any(1).numpy()
    predicted = p[0, 1:].flatten(1).any(1).numpy()
    hd[present & ~predicted] = diagonal
    hd[~present] = np.nan
    dice[~present] = np.nan
    return dice, hd


@METRICS.register_module()
class MedSegMetric(BaseMetric):
    """Dice and HD95 of every foreground class, per volume and averaged over volumes.

    Reports ``Dice/<class>`` and ``HD95/<class>`` (mm) averaged over the volumes where the class is
    present, and their means over classes, ``mDice`` and ``mHD95``. Dice is in [0, 1].

    Args:
        output_dir: also write each prediction there as ``<case>.nii.gz`` (uint8), in the image
            file's voxel grid with its affine and header.
        per_case_file: also write the per-case scores there (JSON).
    """
    default_prefix = None

    def __init__(self, output_dir: Optional[str] = None, per_case_file: Optional[str] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir, self.per_case_file = output_dir, per_case_file

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        classes = self.dataset_meta['classes']
        for s in data_samples:
            if self.output_dir:
                save_label(s['pred'], Path(self.output_dir) / f"{s['name']}.nii.gz", s['affine'],
                           s.get('header'), canonical=s.get('canonical', True))
            if s.get('gt') is None:
                continue
            dice, hd = volume_scores(s['pred'], s['gt'], len(classes), s['spacing'])
            self.results.append(dict(name=s['name'], dice=dice.tolist(), hd95=hd.tolist()))

    def compute_metrics(self, results: List[dict]) -> dict:
        names = list(self.dataset_meta['classes'])[1:]
        dice = np.array([r['dice'] for r in results], float).reshape(-1, len(names))
        hd = np.array([r['hd95'] for r in results], float).reshape(-1, len(names))
        with _quiet_nanmean():
            dice_c, hd_c = np.nanmean(dice, 0), np.nanmean(hd, 0)
        metrics = {}
        for n, d, h in zip(names, dice_c, hd_c):
            metrics[f'Dice/{n}'] = float(d)
            metrics[f'HD95/{n}'] = float(h)
        with _quiet_nanmean():
            metrics['mDice'] = float(np.nanmean(dice_c))
            metrics['mHD95'] = float(np.nanmean(hd_c))
        print_log('per-case scores (HD95 in mm):\n' + per_case_table(names, results), logger='current')
        if self.per_case_file:
            Path(self.per_case_file).parent.mkdir(parents=True, exist_ok=True)
            Path(self.per_case_file).write_text(json.dumps(dict(classes=names, cases=results),
                                                           indent=1, default=float))
        return metrics


class _quiet_nanmean:
    """Silence numpy's 'mean of empty slice' warning (a class absent from every volume)."""

    def __enter__(self):
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter('ignore', RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def per_case_table(names, results) -> str:
    """One row per case, a Dice and an HD95 column per class: every column as wide as its header or
    its widest value, two spaces apart, whatever the class and case names."""
    header = ['case'] + [f'{m} {n}' for n in names for m in ('Dice', 'HD95')]
    rows = [[r['name']] + [f'{v:.4f}' if i % 2 == 0 else f'{v:.2f}'
                           for d, h in zip(r['dice'], r['hd95']) for i, v in enumerate((d, h))] for r in results]
    widths = [max(len(row[c]) for row in [header] + rows) for c in range(len(header))]
    def line(row):
        return '  '.join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths)))
    return '\n'.join(line(row) for row in [header] + rows)
