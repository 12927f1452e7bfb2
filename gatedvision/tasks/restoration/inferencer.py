"""Restoring a user's own pictures (``tools/infer.py``)."""
import os.path as osp
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from gatedvision.registry import INFERENCERS, MODELS
from .dataset import list_images, read_rgb
from .metric import to_8bit
from .vis import save_rgb


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
