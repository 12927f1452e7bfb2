"""The medical segmentor: a timm backbone + :class:`~gatedvision.heads.AttentionUNetHead`, trained on
2-D (or 2.5-D) slices with MONAI's Dice + cross-entropy and deep supervision, predicting whole
volumes slice by slice."""
import math
from typing import Dict, List, Optional, Sequence, Union

import monai.losses
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.structures import BaseDataElement

from gatedvision.engine.bridge import pad_to_multiple
from gatedvision.registry import MODELS

__all__ = ['MedSegmentor', 'MedSegDataPreProcessor', 'deep_supervision_loss', 'stack_slices']

# MONAI's losses under their own names in gatedvision's scope: loss=dict(type='DiceCELoss', ...)
for _name in ('DiceCELoss', 'DiceLoss', 'DiceFocalLoss', 'GeneralizedDiceLoss'):
    MODELS.register_module(_name, module=getattr(monai.losses, _name))


def stack_slices(volume, axis: int, index: Sequence[int], context: int = 0):
    """Slices ``index`` of a (C, X, Y, Z) volume along spatial ``axis`` as (N, C*(2k+1), H, W).

    With ``context=k`` each slice brings its k neighbours on either side as extra channels (2.5-D;
    clamped at the volume's ends), channel-major: C0[z-k..z+k], C1[z-k..z+k], ... Works on numpy
    arrays (memory-mapped ones read only these slices) and torch tensors.
    """
    depth = volume.shape[axis + 1]
    offsets = np.arange(-context, context + 1)
    idx = np.clip(np.asarray(index)[:, None] + offsets, 0, depth - 1)  # (N, 2k+1)
    if isinstance(volume, torch.Tensor):
        sl = volume.index_select(axis + 1, torch.as_tensor(idx.ravel(), device=volume.device))
        sl = sl.movedim(axis + 1, 0)  # (N*(2k+1), C, H, W)
    else:
        sl = np.moveaxis(np.take(volume, idx.ravel(), axis=axis + 1), axis + 1, 0)
    n, k = idx.shape
    c, h, w = sl.shape[1:]
    # (N*(2k+1), C, H, W) -> (N, 2k+1, C, H, W) -> (N, C, 2k+1, H, W) -> (N, C*(2k+1), H, W)
    sl = sl.reshape(n, k, c, h, w)
    sl = sl.transpose(1, 2) if isinstance(sl, torch.Tensor) else sl.transpose(0, 2, 1, 3, 4)
    return sl.reshape(n, c * k, h, w)


def deep_supervision_loss(outputs: Sequence[torch.Tensor], target: torch.Tensor, loss_fn,
                          weights: Sequence[float]) -> Dict[str, torch.Tensor]:
    """``sum_i w_i * loss_fn(outputs[i], target_i) / sum_i w_i`` as one loss term per output.

    Each term is MONAI's ``DeepSupervisionLoss.get_loss``: ``target`` (N, H, W), passed as
    (N, 1, h, w), is downsampled to each output's size by nearest neighbour (as AGUNet and nnU-Net
    supervise the coarse outputs). Not its ``forward``, which returns only the sum: here the terms
    are logged apart (keys ``loss_s{stride}``, their sum the total), normalised by the weights' sum.
    """
    if len(weights) != len(outputs):
        raise ValueError(f'{len(outputs)} outputs but {len(weights)} deep-supervision weights')
    supervision = monai.losses.DeepSupervisionLoss(loss_fn, weights=[float(w) for w in weights])
    weights = supervision.get_weights(len(outputs))
    total = float(sum(weights))
    losses = {}
    for out, w in zip(outputs, weights):
        stride = 2 ** round(math.log2(target.shape[-1] / out.shape[-1]))
        losses[f'loss_s{stride}'] = supervision.get_loss(out.float(), target[:, None].float()) * (w / total)
    return losses


@MODELS.register_module()
class MedSegDataPreProcessor(BaseDataPreprocessor):
    """Moves training batches (slices, stacked by the loader) to the model's device, their samples'
    labels stacked into the (N, H, W) target; whole volumes for prediction stay where they are and
    the segmentor moves them slice batch by slice batch."""

    def forward(self, data: dict, training: bool = False) -> dict:
        if not (training or isinstance(data.get('inputs'), torch.Tensor)):
            return data
        samples = data.get('data_samples')
        if isinstance(samples, (list, tuple)) and samples and isinstance(samples[0], BaseDataElement):
            data = dict(data, data_samples=torch.stack([torch.as_tensor(s.gt) for s in samples]))
        return self.cast_data(data)


@MODELS.register_module()
class MedSegmentor(BaseModel):
    """Backbone + attention-gated U-Net head for 2-D / 2.5-D medical segmentation.

    Training batches are slices ``inputs`` (N, C, H, W) with labels ``data_samples`` (N, H, W) (the
    data preprocessor stacks them from the samples' ``gt``);
    prediction batches are whole volumes ``inputs`` [(C, X, Y, Z), ...] with their metadata
    ``data_samples`` (``BaseDataElement``: ``axis``, ``context``, ``name``, ``gt`` ...), predicted
    slice by slice along ``axis`` and returned as label volumes in the same voxel grid.

    Args:
        backbone: backbone config (``gatedvision.TimmBackbone``); its ``in_channels`` must be the
            image channels times ``2 * context + 1``.
        head: head config; ``in_channels``, ``in_strides``, ``image_channels`` and
            ``num_classes`` are filled in from the backbone (or neck) and this model.
        neck: optional neck config (``gatedvision.SimplePyramid`` for plain backbones: ConViT).
        num_classes: classes including background.
        loss: loss config (MONAI's ``DiceCELoss`` by default), called as ``loss(logits, target)``
            with target (N, 1, H, W).
        deep_supervision_weights: one weight per head output (full resolution first); default
            ``1, 1/2, 1/4, ...`` normalised to sum 1, as nnU-Net.
        size_divisor: slices are zero-padded to a multiple of this (the decoder's coarsest
            stride) and the logits cropped back.
        test_cfg: ``slice_batch`` (slices per forward pass when predicting volumes),
            ``crop_nonzero`` (predict only the bounding box of the nonzero voxels; default True).
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 num_classes: int,
                 neck: Optional[dict] = None,
                 loss: Optional[dict] = None,
                 deep_supervision_weights: Optional[Sequence[float]] = None,
                 size_divisor: int = 32,
                 data_preprocessor: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or dict(
            type='gatedvision.MedSegDataPreProcessor'), init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        channels, strides = self.backbone.out_channels, self.backbone.out_strides
        self.neck = None
        if neck is not None:
            self.neck = MODELS.build(dict(dict(in_channels=list(channels)), **neck))
            channels, strides = self.neck.out_channels, self.neck.out_strides(strides)
        self.head = MODELS.build(dict(
            head, in_channels=list(channels), in_strides=list(strides),
            image_channels=self.backbone.in_channels, num_classes=num_classes))
        self.num_classes = num_classes
        self.loss_fn = MODELS.build(loss or dict(
            type='DiceCELoss', to_onehot_y=True, softmax=True, batch=True))
        n_out = 1 + len(self.head.deep_supervision)
        self.ds_weights = list(deep_supervision_weights or [0.5 ** i for i in range(n_out)])
        if len(self.ds_weights) != n_out:
            raise ValueError(f'deep_supervision_weights has {len(self.ds_weights)} entries but the '
                             f'head has {n_out} outputs (full resolution + strides '
                             f'{self.head.deep_supervision})')
        self.test_cfg = dict(dict(slice_batch=16), **(test_cfg or {}))
        self.size_divisor = size_divisor

    def _logits(self, x: torch.Tensor) -> List[torch.Tensor]:
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, self.size_divisor)  # the decoder's strides; cropped back below
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        outs = self.head(feats, x)
        return [o[..., :math.ceil(h * o.shape[-2] / x.shape[-2]),
                  :math.ceil(w * o.shape[-1] / x.shape[-1])] for o in outs]

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return deep_supervision_loss(self._logits(inputs), data_samples, self.loss_fn,
                                         self.ds_weights)
        if mode == 'predict':
            return [self._predict_case(v, s) for v, s in zip(inputs, data_samples)]
        return self._logits(inputs)

    def _predict_case(self, volume: torch.Tensor, sample: BaseDataElement) -> BaseDataElement:
        pred = self.predict_volume(volume, axis=sample.axis, context=sample.context)
        out = BaseDataElement(metainfo=sample.metainfo)
        out.pred = pred.cpu().numpy().astype(np.uint8)
        if 'gt' in sample:
            out.gt = np.asarray(sample.gt)
        return out

    @torch.no_grad()
    def predict_volume(self, volume: Union[torch.Tensor, np.ndarray], axis: int = 2,
                       context: int = 0, return_probs: bool = False,
                       _crop: bool = True) -> torch.Tensor:
        """Predict a normalised (C, X, Y, Z) volume slice by slice along ``axis``.

        Returns the (X, Y, Z) label map (or (K, X, Y, Z) softmax probabilities).
        """
        volume = torch.as_tensor(volume)
        if _crop and self.test_cfg.get('crop_nonzero', True):
            # as nnU-Net: only the bounding box of the nonzero voxels (skull-stripped MRI) is
            # predicted, the rest is background
            nonzero = (volume != 0).any(0)
            if nonzero.any() and not nonzero.all():
                box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in nonzero.nonzero().T)
                inner = self.predict_volume(volume[(slice(None),) + box], axis, context,
                                            return_probs, _crop=False)
                if return_probs:
                    out = torch.zeros((self.num_classes,) + nonzero.shape, device=inner.device)
                    out[0] = 1
                    out[(slice(None),) + box] = inner
                else:
                    out = torch.zeros(nonzero.shape, dtype=torch.uint8, device=inner.device)
                    out[box] = inner
                return out
        device = next(self.parameters()).device
        depth = volume.shape[axis + 1]
        probs = []
        for start in range(0, depth, self.test_cfg['slice_batch']):
            index = range(start, min(depth, start + self.test_cfg['slice_batch']))
            x = stack_slices(volume, axis, index, context).to(device, torch.float32)
            p = self._logits(x)[0].softmax(1)  # (n, K, H, W)
            probs.append(p if return_probs else p.argmax(1))
        # slices back into the volume: (Z, ..., H, W) -> put Z back at `axis`
        if return_probs:
            return torch.cat(probs).movedim(0, axis + 1)
        return torch.cat(probs).movedim(0, axis).to(torch.uint8)
