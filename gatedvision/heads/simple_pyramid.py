"""ViTDet's simple feature pyramid: one stride-16 map of a plain backbone (ConViT, plain ViG) as
strides 4/8/16/32, for the FPN/UPerNet heads of mmdet and mmseg.

Li et al., "Exploring Plain Vision Transformer Backbones for Object Detection", ECCV 2022
(arXiv 2203.16527), Sec. 3: deconvolutions up (×4: two 2×2 stride-2 deconvs with a norm and GELU
between; ×2: one), identity at ×1, 2×2 max-pooling down, then per level a 1×1 and a 3×3 conv, each
followed by a norm.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from timm.layers import LayerNorm2d
from torch import nn

from gatedvision.registry import MODELS

__all__ = ['SimplePyramid']


def _norm(cfg: Optional[dict], channels: int) -> nn.Module:
    if cfg is None:
        return nn.Identity()
    cfg = dict(cfg)
    kind = cfg.pop('type')
    if kind == 'LN2d':
        return LayerNorm2d(channels, **cfg)
    from mmcv.cnn import build_norm_layer
    return build_norm_layer(dict(type=kind, **cfg), channels)[1]


@MODELS.register_module()
class SimplePyramid(BaseModule):
    """Simple feature pyramid from a single-scale map.

    Args:
        in_channels: channels of the backbone map (an int, or a list whose last entry is used).
        out_channels: channels of every output; None keeps the rescaled maps without the output
            convs (channels C/4, C/2, C, C), like mmseg's ``Feature2Pyramid``.
        scales: rescaling of each output relative to the input, from {4, 2, 1, 0.5}.
        norm_cfg: norm after the convs (``LN2d`` as ViTDet, or ``BN``/``SyncBN``/``GN`` configs).
        in_index: which backbone output to use (default the last).
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels, out_channels: Optional[int] = 256,
                 scales: Sequence[float] = (4, 2, 1, 0.5), norm_cfg: Optional[dict] = dict(type='LN2d'),
                 in_index: int = -1, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        c = in_channels[-1] if isinstance(in_channels, (list, tuple)) else in_channels
        self.in_index = in_index
        self.scales = tuple(scales)
        self.stages = nn.ModuleList()
        level_channels = []
        for s in self.scales:
            if s == 4:
                ops = [nn.ConvTranspose2d(c, c // 2, 2, stride=2), _norm(norm_cfg, c // 2), nn.GELU(),
                       nn.ConvTranspose2d(c // 2, c // 4, 2, stride=2)]
                ch = c // 4
            elif s == 2:
                ops, ch = [nn.ConvTranspose2d(c, c // 2, 2, stride=2)], c // 2
            elif s == 1:
                ops, ch = [], c
            elif s == 0.5:
                ops, ch = [nn.MaxPool2d(2, 2)], c
            else:
                raise ValueError(f'SimplePyramid scales must come from (4, 2, 1, 0.5), got {s}')
            if out_channels is not None:
                ops += [nn.Conv2d(ch, out_channels, 1, bias=norm_cfg is None), _norm(norm_cfg, out_channels),
                        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=norm_cfg is None),
                        _norm(norm_cfg, out_channels)]
                ch = out_channels
            self.stages.append(nn.Sequential(*ops))
            level_channels.append(ch)
        self.out_channels: List[int] = level_channels

    def out_strides(self, in_strides) -> List[int]:
        """The stride of each output, given the backbone's strides (a list, or the stride of the map
        this neck reads)."""
        s = in_strides[self.in_index] if isinstance(in_strides, (list, tuple)) else in_strides
        return [int(s / k) for k in self.scales]

    def forward(self, inputs) -> Tuple[torch.Tensor, ...]:
        x = inputs[self.in_index] if isinstance(inputs, (list, tuple)) else inputs
        # contiguous NCHW: LayerNorm2d leaves channels-last strides, which the convs after it keep
        # and mmcv's CPU RoIAlign reads as NCHW (the TimmBackbone outputs are made contiguous too)
        return tuple(stage(x).contiguous() for stage in self.stages)
