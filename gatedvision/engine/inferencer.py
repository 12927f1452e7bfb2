"""The base of the inferencers of the tasks that mmdet and mmseg do not serve (restoration, medical
segmentation): one way to build the model, load its checkpoint, pick the device and name the
pictures, for ``tools/infer.py`` and for users' scripts."""
from pathlib import Path
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

import gatedvision.engine.checkpoint  # noqa: F401  (the safe unpickler's allow-list)
from gatedvision.registry import MODELS

__all__ = ['CheckpointInferencer']


class CheckpointInferencer:
    """Builds the config's ``model`` in its default scope and loads ``weights`` into it strictly:
    the checkpoint has every weight, so the backbone's ``pretrained`` ImageNet weights (an
    initialisation, applied only by ``init_weights`` when training starts) are neither loaded nor
    downloaded, as with mmengine's ``BaseInferencer``. Subclasses implement ``__call__``.

    Args:
        model: the config (path or :class:`Config`) that trained the checkpoint.
        weights: the checkpoint (any path or URL mmengine reads; the safe unpickler).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'`` ... (default: CUDA when available).

    Attributes:
        cfg, model (in eval mode on ``device``), device, dataset_meta (the checkpoint's
        ``meta['dataset_meta']``, ``{}`` without one).
    """

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None, device: Optional[str] = None):
        self.cfg = Config.fromfile(model) if isinstance(model, str) else model
        self.device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        with DefaultScope.overwrite_default_scope(self.cfg.get('default_scope') or 'gatedvision'):
            self.model = MODELS.build(self.cfg.model)
        self.dataset_meta = {}
        if weights:
            checkpoint = load_checkpoint(self.model, weights, map_location='cpu', strict=True)
            self.dataset_meta = (checkpoint.get('meta') or {}).get('dataset_meta') or {}
        self.model.to(self.device).eval()

    @staticmethod
    def vis_dir(out_dir: Union[str, Path]) -> Path:
        """``<out_dir>/vis``, made: where every inferencer draws (``tools/infer.py`` prints it)."""
        path = Path(out_dir) / 'vis'
        path.mkdir(parents=True, exist_ok=True)
        return path
