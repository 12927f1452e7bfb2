"""Slice overlays of validation / test predictions (``tools/test.py --show-dir``)."""
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.hooks import Hook

from gatedvision.registry import HOOKS
from .vis import write_overlays

__all__ = ['MedSegVisualizationHook']


@HOOKS.register_module()
class MedSegVisualizationHook(Hook):
    """Write ``image | ground truth | prediction`` PNG panels of a few slices of each volume.

    Args:
        draw: off by default (``tools/test.py --show-dir`` turns it on).
        interval: draw every ``interval``-th volume batch.
        test_out_dir: where the test pictures go; relative paths are under the run's log dir.
            Validation pictures go to ``<log dir>/vis/iter_<N>``.
        num_slices: slices per volume (the one with the most foreground first).
        scale: enlargement of the pictures.
    """
    priority = 'NORMAL'

    def __init__(self, draw: bool = False, interval: int = 1, test_out_dir: Optional[str] = None,
                 num_slices: int = 3, scale: int = 3):
        self.draw, self.interval, self.test_out_dir = draw, interval, test_out_dir
        self.num_slices, self.scale = num_slices, scale

    def _write(self, out_dir, batch_idx, data_batch, outputs):
        if not self.draw or batch_idx % self.interval:
            return
        for volume, out in zip(data_batch['inputs'], outputs):
            image = np.asarray(volume[0], np.float32)  # first channel
            write_overlays(out_dir, out.name, image, out.pred, out.get('gt'), axis=out.axis,
                           num_slices=self.num_slices, scale=self.scale)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._write(osp.join(runner.log_dir, 'vis', f'iter_{runner.iter}'), batch_idx, data_batch,
                    outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        out_dir = self.test_out_dir or 'vis'
        self._write(osp.join(runner.log_dir, out_dir), batch_idx, data_batch, outputs)
