"""The restoration model: a gated backbone + :class:`~gatedvision.heads.RestorationDecoder`, a global
residual, pixel losses, and tiled inference for images larger than the model should see at once."""
import math
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from gatedvision.engine.bridge import pad_to_multiple
from gatedvision.registry import MODELS


@MODELS.register_module()
class L1Loss(nn.Module):
    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * F.l1_loss(pred, target)


@MODELS.register_module()
class CharbonnierLoss(nn.Module):
    """``mean(sqrt((pred - target)^2 + eps^2))``, a smooth L1 (Restormer, MPRNet)."""

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-3):
        super().__init__()
        self.loss_weight, self.eps = loss_weight, eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * torch.sqrt((pred - target) ** 2 + self.eps ** 2).mean()


@MODELS.register_module()
class PSNRLoss(nn.Module):
    """NAFNet's loss: minus the PSNR of each image (images in [0, 1]), averaged over the batch."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mse = ((pred - target) ** 2).flatten(1).mean(1)
        return self.loss_weight * (10 / math.log(10)) * torch.log(mse + 1e-8).mean()


def _tile_starts(size: int, tile: int, overlap: int) -> List[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    return starts + [size - tile]


def _edge_weights(length: int, first: bool, last: bool, overlap: int) -> torch.Tensor:
    """Blending weights along one axis of a tile: zero on the outer quarter of the overlap at inner
    edges (where a tile lacks context), a linear ramp over the middle half, one elsewhere."""
    w = torch.ones(length)
    margin = overlap // 4
    ramp = torch.arange(1, overlap - 2 * margin + 1) / (overlap - 2 * margin + 1)
    if not first:
        w[:margin] = 0
        w[margin:margin + len(ramp)] = ramp
    if not last:
        w[length - margin:] = 0
        w[length - margin - len(ramp):length - margin] = ramp.flip(0)
    return w


def tiled_inference(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int,
                    overlap: int) -> torch.Tensor:
    """Run an image-to-image ``fn`` over overlapping ``tile`` x ``tile`` windows and blend them.

    Each output pixel is a convex combination of the tiles that see it with at least
    ``overlap // 4`` pixels of context, so a model whose receptive field fits in that margin gives
    exactly its whole-image output, and deeper models give no seams. Not MONAI's
    ``sliding_window_inference``: its blend also weights the tiles' context-less borders, about 1e-2
    from the whole-image output on a toy denoiser where this gives 6e-8.
    """
    if not 4 <= overlap < tile:
        raise ValueError(f'tiled inference needs 4 <= overlap < tile, got overlap={overlap}, tile={tile}')
    B, _, H, W = x.shape
    out = weight = None
    ys, xs = _tile_starts(H, tile, overlap), _tile_starts(W, tile, overlap)
    for i, y in enumerate(ys):
        for j, x0 in enumerate(xs):
            patch = x[..., y:y + tile, x0:x0 + tile]
            pred = fn(patch)
            if out is None:
                out = x.new_zeros(B, pred.shape[1], H, W)
                weight = x.new_zeros(1, 1, H, W)
            h, w = patch.shape[-2:]
            wy = _edge_weights(h, i == 0, i == len(ys) - 1, overlap).to(x)
            wx = _edge_weights(w, j == 0, j == len(xs) - 1, overlap).to(x)
            wmap = wy[:, None] * wx[None, :]
            out[..., y:y + h, x0:x0 + w] += pred * wmap
            weight[..., y:y + h, x0:x0 + w] += wmap
    return out / weight


@MODELS.register_module()
class Restorer(BaseModel):
    """Image restoration with a gated backbone: ``output = input + decoder(input, backbone(input))``.

    Args:
        backbone: backbone config (``gatedvision.TimmBackbone``), giving strides 4, 8, 16, 32.
        decode_head: ``gatedvision.RestorationDecoder`` config; its ``in_channels`` are filled in
            from the backbone (or neck) when left out.
        neck: optional neck config (``gatedvision.SimplePyramid`` for plain backbones).
        pixel_loss: ``gatedvision.L1Loss`` / ``CharbonnierLoss`` / ``PSNRLoss``.
        size_divisor: inputs are reflect-padded to a multiple of this (32: the coarsest stride)
            and the output cropped back.
        mean, std: normalization of the backbone's input (its pretraining statistics); the
            decoder's image branch and the residual see the [0, 1] image.
        test_cfg: ``dict(tile=512, tile_overlap=32)``: images with a side larger than ``tile`` are
            restored in overlapping tiles (:func:`tiled_inference`); ``tile=None`` never tiles.
        data_preprocessor: defaults to stacking the [0, 1] inputs (``ImgDataPreprocessor``).
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 neck: Optional[dict] = None,
                 pixel_loss: dict = dict(type='gatedvision.L1Loss'),
                 size_divisor: int = 32,
                 mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225),
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type='ImgDataPreprocessor'),
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        channels = self.neck.out_channels if self.neck is not None else self.backbone.out_channels
        decode_head = dict(decode_head)
        decode_head.setdefault('in_channels', list(channels))
        self.decode_head = MODELS.build(decode_head)
        self.pixel_loss = MODELS.build(pixel_loss)
        self.size_divisor = size_divisor
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.test_cfg = {**dict(tile=512, tile_overlap=32), **(test_cfg or {})}

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> the restored (B, C, H, W), any H and W."""
        H, W = x.shape[-2:]
        x = pad_to_multiple(x, self.size_divisor, mode='reflect')
        feats = self.backbone((x - self.mean) / self.std)
        if self.neck is not None:
            feats = self.neck(feats)
        return (x + self.decode_head(x, list(feats)))[..., :H, :W]

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Union[Dict[str, torch.Tensor], list, torch.Tensor]:
        if mode == 'loss':
            gt = torch.stack([s.gt_img for s in data_samples]).to(inputs)
            return dict(loss_pix=self.pixel_loss(self.restore(inputs), gt))
        if mode == 'predict':
            out = self.predict(inputs)
            for sample, pred in zip(data_samples, out):
                sample.pred_img = pred.cpu()
            return data_samples
        if mode == 'tensor':
            return self.restore(inputs)
        raise ValueError(f"Restorer.forward: mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        tile = self.test_cfg.get('tile')
        if tile and max(inputs.shape[-2:]) > tile:
            return tiled_inference(self.restore, inputs, tile, self.test_cfg['tile_overlap'])
        return self.restore(inputs)
