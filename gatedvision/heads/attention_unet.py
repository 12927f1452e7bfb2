"""Attention-gated U-Net decoder over a backbone's 4-level pyramid (AGUNet-style).

After Bouget et al., "Meningioma segmentation in T1-weighted MRI leveraging global context and
attention mechanisms", Front. Radiol. 2021 (arXiv 2101.07715; dbouget/mri_brain_tumor_segmentation,
``DualAttentionUNet.py``), whose AGUNet puts Oktay et al.'s additive attention gates (arXiv
1804.03999) on every skip connection and adds deep supervision and a multi-scale input pyramid,
and MONAI's ``AttentionUnet`` (whose ``AttentionBlock`` is the gate used here).

The encoder is any backbone with strides 4/8/16/32 (``gatedvision.TimmBackbone``); since those
start with a stride-4 stem, a shallow full-resolution branch (two conv blocks at stride 1, one at
stride 2, like a U-Net's first levels) supplies the stride-1 and stride-2 skips, and the decoder
upsamples with learned ×2 transposed convolutions all the way to the input resolution.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from monai.networks.nets.attentionunet import AttentionBlock
from torch import nn

from gatedvision.registry import MODELS

__all__ = ['AttentionGate', 'AttentionUNetHead']


class AttentionGate(AttentionBlock):
    """Additive attention gate (Oktay et al. 2018, eq. 1–2): MONAI's ``AttentionBlock``.

    ``alpha = sigmoid(psi(relu(W_g g + W_x x)))`` re-weights the skip features ``x`` by the
    decoder's gating signal ``g`` (both at the skip's resolution).

    Args:
        gate_channels: channels of ``g``.
        skip_channels: channels of ``x``.
        inter_channels: channels of the intermediate ``W_g g + W_x x``.
    """

    def __init__(self, gate_channels: int, skip_channels: int, inter_channels: int):
        super().__init__(spatial_dims=2, f_int=inter_channels, f_g=gate_channels, f_l=skip_channels)

    def coefficients(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The attention coefficients, (N, 1, H, W) in [0, 1]."""
        return self.psi(self.relu(self.W_g(g) + self.W_x(x)))

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * self.coefficients(g, x)


class _DecoderLevel(nn.Module):
    """Learned ×2 upsampling, gated skip, optional input-pyramid features, two conv blocks."""

    def __init__(self, in_channels, skip_channels, out_channels, pyramid_channels, attention,
                 conv_cfg):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.gate = (AttentionGate(out_channels, skip_channels, max(skip_channels // 2, 8))
                     if attention else None)
        cat = out_channels + skip_channels + pyramid_channels
        self.convs = nn.Sequential(ConvModule(cat, out_channels, 3, padding=1, **conv_cfg),
                                   ConvModule(out_channels, out_channels, 3, padding=1, **conv_cfg))

    def forward(self, x, skip, pyramid=None):
        up = self.up(x)
        if up.shape[-2:] != skip.shape[-2:]:  # odd sizes: crop or pad to the skip
            dh, dw = skip.shape[-2] - up.shape[-2], skip.shape[-1] - up.shape[-1]
            up = F.pad(up, (0, dw, 0, dh))
        if self.gate is not None:
            skip = self.gate(up, skip)
        parts = [up, skip] + ([pyramid] if pyramid is not None else [])
        return self.convs(torch.cat(parts, 1))


@MODELS.register_module()
class AttentionUNetHead(BaseModule):
    """Attention-gated U-Net decoder with deep supervision and a multi-scale input pyramid.

    ``forward(feats, image)`` returns logits, finest first: the full-resolution prediction, then
    one per stride in ``deep_supervision`` (each at that stride's resolution).

    Args:
        in_channels: the backbone's channels at ``in_strides``.
        in_strides: the backbone's strides; must be 4, 8, 16, 32.
        image_channels: channels of the network input (for the full-resolution branch and the
            input pyramid).
        num_classes: output classes, background included.
        channels: decoder channels at strides 16, 8, 4, 2, 1 (coarse to fine).
        stem_channels: channels of the full-resolution branch at strides 1 and 2.
        attention: attention gates on the skips (False: a plain U-Net decoder, for ablations).
        input_pyramid: AGUNet's multi-scale input: the input, average-pooled to each decoder
            stride from 2 to 16, through a 3×3 conv, concatenated with that decoder level.
        pyramid_channels: channels of each input-pyramid conv.
        deep_supervision: decoder strides with an extra 1×1 logits head (empty: none).
        norm_cfg, act_cfg: mmcv norm and activation configs of the conv blocks.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 in_strides: Sequence[int] = (4, 8, 16, 32),
                 image_channels: int = 1,
                 num_classes: int = 2,
                 channels: Sequence[int] = (256, 128, 64, 32, 16),
                 stem_channels: Sequence[int] = (16, 32),
                 attention: bool = True,
                 input_pyramid: bool = True,
                 pyramid_channels: int = 16,
                 deep_supervision: Sequence[int] = (2, 4, 8),
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if tuple(in_strides) != (4, 8, 16, 32) or len(in_channels) != 4:
            raise ValueError(
                f'AttentionUNetHead needs a 4-level pyramid at strides 4/8/16/32, got strides '
                f'{tuple(in_strides)} (channels {tuple(in_channels)}); pick a hierarchical backbone, '
                f'set the backbone\'s out_indices to those levels, or add a neck (gatedvision.SimplePyramid)')
        if len(channels) != 5 or len(stem_channels) != 2:
            raise ValueError(f'channels needs 5 entries (strides 16, 8, 4, 2, 1) and stem_channels '
                             f'2 (strides 1, 2); got {tuple(channels)} and {tuple(stem_channels)}')
        bad = sorted(set(deep_supervision) - {2, 4, 8, 16})
        if bad:
            raise ValueError(f'deep_supervision strides must be among 2, 4, 8, 16; got {bad}')
        conv_cfg = dict(norm_cfg=norm_cfg or dict(type='BN'), act_cfg=act_cfg or dict(type='ReLU'))
        s1, s2 = stem_channels
        self.stem = nn.ModuleList([
            nn.Sequential(ConvModule(image_channels, s1, 3, padding=1, **conv_cfg),
                          ConvModule(s1, s1, 3, padding=1, **conv_cfg)),
            nn.Sequential(ConvModule(s1, s2, 3, stride=2, padding=1, **conv_cfg),
                          ConvModule(s2, s2, 3, padding=1, **conv_cfg))])
        self.strides = (16, 8, 4, 2, 1)
        skips = [in_channels[2], in_channels[1], in_channels[0], s2, s1]
        self.input_pyramid = input_pyramid
        self.pyramid = nn.ModuleDict({
            str(s): ConvModule(image_channels, pyramid_channels, 3, padding=1, norm_cfg=None,
                               act_cfg=conv_cfg['act_cfg'])
            for s in self.strides if s > 1}) if input_pyramid else None
        levels, prev = [], in_channels[3]
        for s, skip, out in zip(self.strides, skips, channels):
            pyr = pyramid_channels if input_pyramid and s > 1 else 0
            levels.append(_DecoderLevel(prev, skip, out, pyr, attention, conv_cfg))
            prev = out
        self.levels = nn.ModuleList(levels)
        self.deep_supervision = tuple(sorted(deep_supervision))
        self.cls = nn.Conv2d(channels[-1], num_classes, 1)
        self.ds_cls = nn.ModuleDict({
            str(s): nn.Conv2d(channels[self.strides.index(s)], num_classes, 1)
            for s in self.deep_supervision})
        self.num_classes = num_classes

    @property
    def gates(self) -> List[Optional[AttentionGate]]:
        """The attention gates at strides 16, 8, 4, 2, 1."""
        return [lvl.gate for lvl in self.levels]

    def forward(self, feats: Sequence[torch.Tensor], image: torch.Tensor) -> List[torch.Tensor]:
        h, w = image.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f'AttentionUNetHead needs input sides divisible by 32, got {h}x{w}; '
                             f'pad the input (MedSegmentor does)')
        full = self.stem[0](image)
        skips = {16: feats[2], 8: feats[1], 4: feats[0], 2: self.stem[1](full), 1: full}
        x = feats[3]
        outs = {}
        for s, level in zip(self.strides, self.levels):
            pyr = None
            if self.pyramid is not None and s > 1:
                pyr = self.pyramid[str(s)](F.avg_pool2d(image, s))
            x = level(x, skips[s], pyr)
            if s in self.deep_supervision:
                outs[s] = self.ds_cls[str(s)](x)
        return [self.cls(x)] + [outs[s] for s in self.deep_supervision]
