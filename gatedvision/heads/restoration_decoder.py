"""A U-shaped restoration decoder over any backbone's 4-level pyramid (NAFNet-style).

NAFNet (Chen et al., "Simple Baselines for Image Restoration", arXiv 2204.04676) decodes with
``Conv1x1(C -> 4C') + PixelShuffle(2)`` upsampling, *adds* the encoder skip and refines with NAF
blocks (LayerNorm, depth-wise conv, SimpleGate, simplified channel attention). Here the encoder is a
gated backbone whose stem already downsamples by 4, so the decoder has two more levels than the
pyramid: a stride-2 and a full-resolution shallow branch computed from the image itself, which
carry the high-frequency detail a stride-4 stem throws away. The decoder predicts a residual; the
model adds it to the input (global residual).
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from timm.layers import LayerNorm2d

from gatedvision.registry import MODELS


class SimpleGate(nn.Module):
    """NAFNet's gate: split the channels in two halves and multiply them (eq. 4)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """NAFNet's block: a gated depth-wise conv branch with simplified channel attention and a
    gated feed-forward branch, each a residual scaled by a learned per-channel factor (init 0)."""

    def __init__(self, channels: int, expand: int = 2, ffn_expand: int = 2):
        super().__init__()
        dw = channels * expand
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, dw, 1)
        self.dwconv = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.conv2 = nn.Conv2d(dw // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.ffn1 = nn.Conv2d(channels, channels * ffn_expand, 1)
        self.ffn2 = nn.Conv2d(channels * ffn_expand // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.dwconv(self.conv1(self.norm1(x))))
        x = x + self.beta * self.conv2(y * self.sca(y))
        return x + self.gamma * self.ffn2(self.gate(self.ffn1(self.norm2(x))))


class UpShuffle(nn.Sequential):
    """x2 learned upsampling: ``Conv1x1(c -> 4c') + PixelShuffle(2)``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels * 4, 1, bias=False), nn.PixelShuffle(2))


@MODELS.register_module()
class RestorationDecoder(nn.Module):
    """Decode a backbone pyramid (strides 4, 8, 16, 32) into a full-resolution residual image.

    Args:
        in_channels: channels of the four pyramid levels (the backbone's ``out_channels``).
        channels: decoder widths at strides 4, 8, 16, 32.
        shallow_channels: widths of the image branch at strides 1 and 2.
        num_blocks: NAF blocks after each fusion, from stride 16 down to stride 1 (five levels).
        num_middle_blocks: NAF blocks on the coarsest level before decoding.
        out_channels: channels of the restored image (3 for RGB).
        in_image_channels: channels of the input image.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: Sequence[int] = (64, 128, 256, 256),
                 shallow_channels: Sequence[int] = (32, 48),
                 num_blocks: Sequence[int] = (1, 1, 1, 1, 1),
                 num_middle_blocks: int = 1,
                 out_channels: int = 3,
                 in_image_channels: int = 3):
        super().__init__()
        if len(in_channels) != 4 or len(channels) != 4:
            raise ValueError(f'RestorationDecoder needs a 4-level pyramid (strides 4, 8, 16, 32): got '
                             f'in_channels={list(in_channels)}, channels={list(channels)}')
        if len(shallow_channels) != 2 or len(num_blocks) != 5:
            raise ValueError('RestorationDecoder: shallow_channels needs 2 widths (strides 1, 2) and '
                             f'num_blocks 5 counts (strides 16 .. 1), got {list(shallow_channels)}, '
                             f'{list(num_blocks)}')
        self.in_channels = list(in_channels)
        self.lateral = nn.ModuleList(nn.Conv2d(i, c, 1) for i, c in zip(in_channels, channels))
        self.middle = nn.Sequential(*[NAFBlock(channels[3]) for _ in range(num_middle_blocks)])
        # decoding path widths, coarse to fine: 32 -> 16 -> 8 -> 4 -> 2 -> 1
        widths = [channels[3], channels[2], channels[1], channels[0], shallow_channels[1],
                  shallow_channels[0]]
        self.ups = nn.ModuleList(UpShuffle(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.blocks = nn.ModuleList(nn.Sequential(*[NAFBlock(w) for _ in range(n)])
                                    for w, n in zip(widths[1:], num_blocks))
        self.shallow1 = nn.Conv2d(in_image_channels, shallow_channels[0], 3, padding=1)
        self.shallow2 = nn.Sequential(
            nn.Conv2d(shallow_channels[0], shallow_channels[1], 3, stride=2, padding=1), nn.GELU(),
            NAFBlock(shallow_channels[1]))
        self.out = nn.Conv2d(shallow_channels[0], out_channels, 3, padding=1)

    def forward(self, image: torch.Tensor, feats: List[torch.Tensor]) -> torch.Tensor:
        """``image`` (B, C, H, W) with H, W multiples of 32; ``feats`` its pyramid. Returns the
        residual (B, out_channels, H, W)."""
        if len(feats) != 4:
            raise ValueError(f'RestorationDecoder got {len(feats)} feature maps, needs 4')
        s1 = self.shallow1(image)
        s2 = self.shallow2(s1)
        lats = [lat(f) for lat, f in zip(self.lateral, feats)]
        x = self.middle(lats[3])
        skips = [lats[2], lats[1], lats[0], s2, s1]
        for up, blocks, skip in zip(self.ups, self.blocks, skips):
            x = up(x)
            # backbones with padding crop their outputs to ceil(H / stride): align to the skip
            x = blocks(x[..., :skip.shape[-2], :skip.shape[-1]] + skip)
        return self.out(x)
