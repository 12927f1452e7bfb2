"""Pictures of restorations during testing: input | output | ground truth side by side
(``tools/test.py --show-dir``)."""
import os.path as osp
from pathlib import Path
from typing import Optional

import torch
from mmengine.hooks import Hook

from gatedvision.registry import HOOKS
from .vis import save_rgb

@HOOKS.register_module()
class RestorationVisualizationHook(Hook):
    """With ``draw=True`` writes ``<stem>.png`` = input | restored | ground truth for every
    ``interval``-th test batch into ``test_out_dir`` (default: ``<log_dir>/vis``)."""

    def __init__(self, draw: bool = False, interval: int = 1, test_out_dir: Optional[str] = None):
        self.draw, self.interval, self.test_out_dir = draw, interval, test_out_dir

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.draw or batch_idx % self.interval:
            return
        out_dir = self.test_out_dir or osp.join(runner.log_dir, 'vis')
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for lq, sample in zip(data_batch['inputs'], outputs):
            lq = lq.float() / 255.0 if lq.dtype == torch.uint8 else lq.float()
            panels = [lq, sample.pred_img] + ([sample.gt_img] if 'gt_img' in sample else [])
            stem = Path(sample.metainfo.get('gt_path') or sample.metainfo.get('lq_path')).stem
            save_rgb(osp.join(out_dir, f'{stem}.png'), torch.cat([p.cpu() for p in panels], dim=2))

