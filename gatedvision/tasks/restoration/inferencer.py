"""Restoring a user's own pictures (``tools/infer.py``)."""
import os.path as osp
from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch

from gatedvision.engine.inferencer import CheckpointInferencer
from gatedvision.registry import INFERENCERS
from .dataset import list_images, read_rgb
from .metric import to_8bit
from .vis import save_rgb


@INFERENCERS.register_module()
class RestorationInferencer(CheckpointInferencer):
    """Restore image files with a trained :class:`Restorer` (tiled when large, as in testing).
    Model, checkpoint and device: :class:`CheckpointInferencer`."""

    @torch.no_grad()
    def __call__(self, inputs, out_dir=None) -> List[np.ndarray]:
        """Restore ``inputs`` (an image or a folder); with ``out_dir`` the results are written to
        ``<out_dir>/vis/<name>.png``. Returns the restored images (H, W, C uint8)."""
        channels = self.cfg.model.get('decode_head', {}).get('out_channels', 3)
        paths: Sequence[Path] = (list_images(Path(inputs)) if osp.isdir(inputs) else [Path(inputs)])
        results = []
        for path in paths:
            img = torch.from_numpy(read_rgb(str(path), channels).transpose(2, 0, 1))[None]
            out = self.model.predict(img.to(self.device))[0].cpu()
            if out_dir:
                save_rgb(str(self.vis_dir(out_dir) / f'{path.stem}.png'), out)
            results.append(to_8bit(out).astype(np.uint8))
        return results
