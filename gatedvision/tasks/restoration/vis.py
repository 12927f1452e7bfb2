"""Pictures of restorations: input | output | ground truth side by side (``tools/test.py --show-dir``),
and restoring a user's own pictures (``tools/infer.py``)."""
import os.path as osp
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from gatedvision.registry import HOOKS, INFERENCERS, MODELS
from .data import list_images, read_rgb
from .metrics import to_8bit


def save_rgb(path: str, chw: torch.Tensor) -> None:
    img = to_8bit(chw).astype(np.uint8)
    cv2.imwrite(path, img[..., ::-1] if img.shape[2] == 3 else img)


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


@INFERENCERS.register_module()
class RestorationInferencer:
    """Restore image files with a trained :class:`Restorer` (tiled when large, as in testing).

    Args:
        model: the config (path or Config) that trained the checkpoint.
        weights: the checkpoint.
        device: ``'cpu'``, ``'cuda'``, ... (default: CUDA when available).
    """

    def __init__(self, model, weights: Optional[str] = None, device: Optional[str] = None):
        cfg = Config.fromfile(model) if isinstance(model, str) else model
        self.device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'gatedvision')):
            self.model = MODELS.build(cfg.model)
        if weights:
            load_checkpoint(self.model, weights, map_location='cpu', strict=True)
        self.model.to(self.device).eval()
        self.channels = cfg.model.get('decode_head', {}).get('out_channels', 3)

    @torch.no_grad()
    def __call__(self, inputs, out_dir: Optional[str] = None) -> List[np.ndarray]:
        paths: Sequence[Path] = (list_images(Path(inputs)) if osp.isdir(inputs) else [Path(inputs)])
        results = []
        for path in paths:
            img = torch.from_numpy(read_rgb(str(path), self.channels).transpose(2, 0, 1))[None]
            out = self.model.predict(img.to(self.device))[0].cpu()
            if out_dir:
                Path(out_dir, 'vis').mkdir(parents=True, exist_ok=True)
                save_rgb(osp.join(out_dir, 'vis', f'{path.stem}.png'), out)
            results.append(to_8bit(out).astype(np.uint8))
        return results
