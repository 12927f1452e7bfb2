"""OverLoCK: Overview-first-Look-Closely-next ConvNet with context-mixing dynamic kernels (ContMix).

Paper: "OverLoCK: An Overview-first-Look-Closely-next ConvNet with Context-Mixing Dynamic Kernels",
Lou and Yu, CVPR 2025, arXiv 2502.20087.
Original code and weights: https://github.com/LMMMEng/OverLoCK (GitHub release ``v1``).

Base-Net (stages 1–3) and Overview-Net (stage 4) are large-kernel reparameterisable conv blocks;
Focus-Net re-runs stages 3–4 with ContMix blocks steered top-down by the Overview-Net's context.
Module names follow the original, so its checkpoints (``overlock_*_in1k_224.pth`` and the
``*_reparam.pth`` deploy files) load unchanged. NATTEN's ``na2d_av``, which the original needs,
is :func:`gatedvision.ops.na2d_av`.

Models: ``overlock_{xt,t,s,b}`` (training form: un-merged kernel branches; ``reparameterize()``
merges them) and ``overlock_{xt,t,s,b}_reparam`` (deploy form). The training-only auxiliary head
is built with ``use_ds=True``; in training mode the model then returns ``dict(main=, aux=)`` as the
original does.
"""
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm2d, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn

from gatedvision.ops.neighborhood import na2d_av, na_index
from ._helpers import (add_missing, check_image_input, is_other_head, prepare_features, prepare_pretrained, run_blocks,
                       unwrap_state_dict)

__all__ = ['OverLoCK']

# UniRepLKNet's dilated branches per large kernel size: (kernel sizes, dilations)
_DILATED_BRANCHES = {
    19: ([5, 7, 9, 9, 3, 3, 3], [1, 1, 1, 2, 4, 5, 7]),
    17: ([5, 7, 9, 3, 3, 3], [1, 1, 2, 4, 5, 7]),
    15: ([5, 7, 7, 3, 3, 3], [1, 1, 2, 3, 5, 7]),
    13: ([5, 7, 7, 3, 3, 3], [1, 1, 2, 3, 4, 5]),
    11: ([5, 7, 5, 3, 3, 3], [1, 1, 2, 3, 4, 5]),
    9: ([5, 7, 5, 3, 3], [1, 1, 2, 3, 4]),
    7: ([5, 3, 3, 3], [1, 1, 2, 3]),
    5: ([3, 3], [1, 2]),
}


def _fuse_bn(weight, bias, bn):
    std = (bn.running_var + bn.eps).sqrt()
    bias = 0 if bias is None else bias
    return weight * (bn.weight / std).reshape(-1, 1, 1, 1), bn.bias + (bias - bn.running_mean) * bn.weight / std


def _dilate_kernel(kernel, rate):
    """A dilated depthwise kernel as the equivalent dense one (zeros between the taps)."""
    k = kernel.shape[-1]
    out = kernel.new_zeros(*kernel.shape[:2], rate * (k - 1) + 1, rate * (k - 1) + 1)
    out[..., ::rate, ::rate] = kernel
    return out


def stem(in_chans: int, dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, dim // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(dim // 2), nn.GELU(),
        nn.Conv2d(dim // 2, dim // 2, 3, padding=1, bias=False), nn.BatchNorm2d(dim // 2), nn.GELU(),
        nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(dim), nn.GELU(),
        nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim))


def downsample(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_dim, out_dim, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out_dim))


class SEModule(nn.Module):
    def __init__(self, dim: int, red: int = 8):
        super().__init__()
        inner = max(16, dim // red)
        self.proj = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, inner, 1), nn.GELU(),
                                  nn.Conv2d(inner, dim, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.proj(x)


class LayerScale(nn.Module):
    """Per-channel scale and shift (stored as a depthwise 1×1 conv, as the original)."""

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim, 1, 1, 1), float(init_value)))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2), NCHW."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(-1, -2), keepdim=True)
        nx = gx / (gx.mean(dim=1, keepdim=True) + 1e-6)
        return (self.gamma * nx + 1) * x + self.beta


class DilatedReparamBlock(nn.Module):
    """Large depthwise kernel plus parallel dilated small kernels, each followed by BN (UniRepLKNet);
    ``merge_dilated_branches()`` folds them into the one large kernel (deploy form)."""

    def __init__(self, channels: int, kernel_size: int, deploy: bool = False):
        super().__init__()
        if kernel_size not in _DILATED_BRANCHES:
            raise ValueError(f'DilatedReparamBlock supports kernel sizes {sorted(_DILATED_BRANCHES)}, got {kernel_size}')
        self.lk_origin = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2,
                                   groups=channels, bias=deploy)
        self.kernel_sizes, self.dilates = _DILATED_BRANCHES[kernel_size]
        if not deploy:
            self.origin_bn = nn.BatchNorm2d(channels)
            for k, r in zip(self.kernel_sizes, self.dilates):
                setattr(self, f'dil_conv_k{k}_{r}', nn.Conv2d(
                    channels, channels, k, padding=(r * (k - 1) + 1) // 2, dilation=r, groups=channels, bias=False))
                setattr(self, f'dil_bn_k{k}_{r}', nn.BatchNorm2d(channels))

    def forward(self, x):
        if not hasattr(self, 'origin_bn'):
            return self.lk_origin(x)
        out = self.origin_bn(self.lk_origin(x))
        for k, r in zip(self.kernel_sizes, self.dilates):
            out = out + getattr(self, f'dil_bn_k{k}_{r}')(getattr(self, f'dil_conv_k{k}_{r}')(x))
        return out

    @torch.no_grad()
    def merge_dilated_branches(self):
        if not hasattr(self, 'origin_bn'):
            return
        weight, bias = _fuse_bn(self.lk_origin.weight, self.lk_origin.bias, self.origin_bn)
        big = weight.shape[-1]
        for k, r in zip(self.kernel_sizes, self.dilates):
            w, b = _fuse_bn(getattr(self, f'dil_conv_k{k}_{r}').weight, None, getattr(self, f'dil_bn_k{k}_{r}'))
            w = _dilate_kernel(w, r)
            pad = big // 2 - w.shape[-1] // 2
            weight = weight + F.pad(w, [pad] * 4)
            bias = bias + b
            delattr(self, f'dil_conv_k{k}_{r}')
            delattr(self, f'dil_bn_k{k}_{r}')
        del self.origin_bn
        conv = nn.Conv2d(weight.shape[0], weight.shape[0], big, padding=big // 2, groups=weight.shape[0],
                         bias=True, device=weight.device, dtype=weight.dtype)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        self.lk_origin = conv


class CTXDownsample(nn.Module):
    """Stride-2 downsampling of the feature and of the context between Focus-Net stages 3 and 4."""

    def __init__(self, dim: int, h_dim: int):
        super().__init__()
        self.x_proj = nn.Sequential(nn.Conv2d(dim, h_dim, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(h_dim))
        self.h_proj = nn.Sequential(nn.Conv2d(h_dim // 4, h_dim // 4, 3, stride=2, padding=1, bias=False),
                                    nn.BatchNorm2d(h_dim // 4))

    def forward(self, x, ctx):
        return self.x_proj(x), self.h_proj(ctx)


class ResDWConv(nn.Conv2d):
    """x + DWConv(x)."""

    def __init__(self, dim: int, kernel_size: int = 3):
        super().__init__(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)

    def forward(self, x):
        return x + super().forward(x)


class RepConvBlock(nn.Module):
    """Base-/Overview-Net block: large-kernel reparam DW conv, SE, ConvFFN with GRN."""

    def __init__(self, dim: int, kernel_size: int, mlp_ratio: float = 4, ls_init_value=None,
                 drop_path: float = 0., deploy: bool = False):
        super().__init__()
        mlp_dim = int(dim * mlp_ratio)
        self.dwconv = ResDWConv(dim, 3)
        self.proj = nn.Sequential(
            LayerNorm2d(dim, eps=1e-6), DilatedReparamBlock(dim, kernel_size, deploy), nn.BatchNorm2d(dim),
            SEModule(dim), nn.Conv2d(dim, mlp_dim, 1), nn.GELU(), ResDWConv(mlp_dim, 3), GRN(mlp_dim),
            nn.Conv2d(mlp_dim, dim, 1), DropPath(drop_path) if drop_path > 0 else nn.Identity())
        self.ls = LayerScale(dim, ls_init_value) if ls_init_value is not None else nn.Identity()

    def forward(self, x):
        x = self.dwconv(x)
        return self.ls(x) + self.proj(x)  # res_scale form: scale the identity path


class DynamicConvBlock(nn.Module):
    """Focus-Net block with ContMix (paper Sec. 3.3).

    The feature (C) and the top-down context (C_h) are fused; per-pixel queries from the feature
    meet 49 region keys pooled from the context; their affinities are projected to a 5×5 and a
    K×K kernel per pixel and group (plus relative position bias, softmax), applied to the two
    halves of the groups with the neighborhood weighted sum; a SiLU gate multiplies the result.
    Maps smaller than K are upsampled for the dynamic convolution and pooled back.
    """

    def __init__(self, dim: int, ctx_dim: int, kernel_size: int = 7, smk_size: int = 5,
                 num_heads: int = 2, mlp_ratio: float = 4, ls_init_value=None, drop_path: float = 0.,
                 is_first: bool = False, is_last: bool = False, deploy: bool = False):
        super().__init__()
        ctx_dim = ctx_dim // 4
        out_dim = dim + ctx_dim
        mlp_dim = int(dim * mlp_ratio)
        self.kernel_size = kernel_size
        self.smk_size = smk_size
        self.num_heads = num_heads * 2
        self.scale = (dim // self.num_heads) ** -0.5
        self.is_first = is_first
        self.is_last = is_last
        if not is_first:
            self.x_scale = LayerScale(ctx_dim, init_value=1)
            self.h_scale = LayerScale(ctx_dim, init_value=1)
        self.dwconv1 = ResDWConv(out_dim, 3)
        self.norm1 = LayerNorm2d(out_dim, eps=1e-6)
        self.fusion = nn.Sequential(
            nn.Conv2d(out_dim, out_dim, 3, padding=1, groups=out_dim), nn.BatchNorm2d(out_dim), nn.GELU(),
            nn.Conv2d(out_dim, dim, 1), GRN(dim))
        self.weight_query = nn.Sequential(nn.Conv2d(dim, dim // 2, 1, bias=False), nn.BatchNorm2d(dim // 2))
        self.weight_key = nn.Sequential(nn.AdaptiveAvgPool2d(7), nn.Conv2d(ctx_dim, dim // 2, 1, bias=False),
                                        nn.BatchNorm2d(dim // 2))
        self.weight_proj = nn.Conv2d(49, kernel_size ** 2 + smk_size ** 2, 1)
        self.dyconv_proj = nn.Sequential(nn.Conv2d(dim, dim, 1, bias=False), nn.BatchNorm2d(dim))
        self.lepe = nn.Sequential(DilatedReparamBlock(dim, kernel_size, deploy), nn.BatchNorm2d(dim))
        self.se_layer = SEModule(dim)
        self.gate = nn.Sequential(nn.Conv2d(dim, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.SiLU())
        self.proj = nn.Sequential(nn.BatchNorm2d(dim), nn.Conv2d(dim, out_dim, 1))
        self.dwconv2 = ResDWConv(out_dim, 3)
        self.norm2 = LayerNorm2d(out_dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Conv2d(out_dim, mlp_dim, 1), nn.GELU(), ResDWConv(mlp_dim, 3), GRN(mlp_dim),
                                 nn.Conv2d(mlp_dim, out_dim, 1))
        self.ls1 = LayerScale(out_dim, ls_init_value) if ls_init_value is not None else nn.Identity()
        self.ls2 = LayerScale(out_dim, ls_init_value) if ls_init_value is not None else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.rpb1 = nn.Parameter(torch.zeros(self.num_heads, 2 * smk_size - 1, 2 * smk_size - 1))
        self.rpb2 = nn.Parameter(torch.zeros(self.num_heads, 2 * kernel_size - 1, 2 * kernel_size - 1))

    @staticmethod
    def _rpb(rpb: torch.Tensor, h: int, w: int, k: int) -> torch.Tensor:
        """(G, H, W, k²) relative position bias of every pixel's (clamped) window."""
        # index of a tap in the (2k-1)² table: its offset from the pixel, shifted to >= 0
        ih = na_index(h, k, device=rpb.device) - torch.arange(h, device=rpb.device)[:, None] + k - 1
        iw = na_index(w, k, device=rpb.device) - torch.arange(w, device=rpb.device)[:, None] + k - 1
        return rpb[:, ih[:, None, :, None], iw[None, :, None, :]].reshape(rpb.shape[0], h, w, k * k)

    def forward(self, x, h_x, h_r):
        in_size = x.shape[2:]
        c, c_h = x.shape[1], h_x.shape[1]
        if not self.is_first:
            h_x = self.x_scale(h_x) + self.h_scale(h_r)
        x_f = self.dwconv1(torch.cat([x, h_x], dim=1))
        identity = x_f
        x_f = self.norm1(x_f)
        x = self.fusion(x_f)
        gate = self.gate(x)
        lepe = self.lepe(x)

        h, w = in_size
        upsampled = min(h, w) < self.kernel_size
        if upsampled:  # the windows need maps at least K wide: upsample, pool back afterwards
            k = self.kernel_size
            size = (k, int(k / h * w)) if h < w else (int(k / w * h), k)
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
            x_f = F.interpolate(x_f, size=size, mode='bilinear', align_corners=False)
            h, w = size

        b, g = x.shape[0], self.num_heads
        query, key = torch.split(x_f, [c, c_h], dim=1)
        query = (self.weight_query(query) * self.scale).reshape(b, g, -1, h * w)   # (B, G, c, HW)
        key = self.weight_key(key).reshape(b, g, -1, 49)                           # (B, G, c, 49)
        affinity = query.transpose(-2, -1) @ key                                   # (B, G, HW, 49)
        # the 49 affinities are the channels of a 1x1 conv over the (G, HW) grid
        weight = self.weight_proj(affinity.permute(0, 3, 1, 2))                   # (B, k²+s², G, HW)
        weight = weight.permute(0, 2, 3, 1).reshape(b, g, h, w, -1)
        attn1, attn2 = torch.split(weight, [self.smk_size ** 2, self.kernel_size ** 2], dim=-1)
        attn1 = (attn1 + self._rpb(self.rpb1, h, w, self.smk_size)).softmax(-1)
        attn2 = (attn2 + self._rpb(self.rpb2, h, w, self.kernel_size)).softmax(-1)
        value = x.reshape(b, 2, g, -1, h, w).permute(1, 0, 2, 4, 5, 3)             # (2, B, G, H, W, c)
        out = torch.cat([na2d_av(attn1, value[0], self.smk_size),
                         na2d_av(attn2, value[1], self.kernel_size)], dim=1)       # (B, 2G, H, W, c)
        x = out.permute(0, 1, 4, 2, 3).reshape(b, -1, h, w)
        if upsampled:
            x = F.adaptive_avg_pool2d(x, in_size)

        x = self.dyconv_proj(x) + lepe
        x = self.proj(gate * self.se_layer(x))
        x = self.ls1(identity) + self.drop_path(x)
        x = self.dwconv2(x)
        x = self.ls2(x) + self.drop_path(self.mlp(self.norm2(x)))
        if self.is_last:
            return x, None
        return torch.split(x, [c, c_h], dim=1)


# Every module in the order the dense forward runs it, with the stage whose output it feeds first:
# the stride-16 output needs the Overview-Net (stride 32) above it, so that belongs to stage 3.
_RUN_ORDER = (
    ('patch_embed1', 0), ('blocks1', 1), ('extra_norm.0', 1), ('patch_embed2', 2), ('blocks2', 2),
    ('extra_norm.1', 2), ('patch_embed3', 3), ('blocks3', 3), ('patch_embed4', 3), ('blocks4', 3),
    ('high_level_proj', 3), ('sub_blocks3', 3), ('extra_norm.2', 3), ('patch_embedx', 4), ('sub_blocks4', 4),
    ('extra_norm.3', 4), ('extra_norm.4', 4), ('h_proj', 4))


class OverLoCK(nn.Module):
    """OverLoCK.

    Args:
        depth: RepConvBlocks per Base-/Overview-Net stage.
        sub_depth: ContMix blocks of the Focus-Net at strides 16 and 32.
        in_chans: input channels.
        embed_dim: channels per stage.
        kernel_size: large kernel per stage (the ContMix K at stages 3 and 4).
        mlp_ratio / sub_mlp_ratio: FFN expansion of the Base-/Focus-Net blocks.
        sub_num_heads: ContMix groups per half, stages 3 and 4.
        ls_init_value: layer-scale init per stage (None: none).
        smk_size: the small dynamic kernel.
        deploy: build the merged (reparameterized) large kernels.
        use_ds: build the training-only auxiliary head (deep supervision on the context).
        drop_rate: unused by the original; kept for timm's API.
        drop_path_rate: stochastic depth over all blocks.
        projection: width of the classifier's 1×1 projection.
        num_classes: classes (0: no classifier).
        dense_norms: add the dense backbone's per-output LayerNorm2d (``extra_norm``).
        dense_ctx_proj: the detection variant's stage-4 output, ``+ h_proj(norm(context))``.
    """

    def __init__(self, depth=(2, 2, 2, 2), sub_depth=(4, 2), in_chans: int = 3,
                 embed_dim=(96, 192, 384, 768), kernel_size=(7, 7, 7, 7), mlp_ratio=(4, 4, 4, 4),
                 sub_mlp_ratio=(4, 4), sub_num_heads=(4, 8), ls_init_value=(None, None, 1, 1),
                 smk_size: int = 5, deploy: bool = False, use_ds: bool = False, drop_rate: float = 0.,
                 drop_path_rate: float = 0., projection: int = 1024, num_classes: int = 1000,
                 global_pool: str = 'avg', dense_norms: bool = False, dense_ctx_proj: bool = False):
        super().__init__()
        fusion_dim = embed_dim[-1] + embed_dim[-1] // 4
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.embed_dim = list(embed_dim)
        self.num_features = fusion_dim
        self.head_hidden_size = projection
        self.in_chans = in_chans

        self.patch_embed1 = stem(in_chans, embed_dim[0])
        self.patch_embed2 = downsample(embed_dim[0], embed_dim[1])
        self.patch_embed3 = downsample(embed_dim[1], embed_dim[2])
        self.patch_embed4 = downsample(embed_dim[2], embed_dim[3])
        self.high_level_proj = nn.Conv2d(embed_dim[-1], embed_dim[-1] // 4, 1)
        self.patch_embedx = CTXDownsample(embed_dim[2], embed_dim[3])

        total = sum(depth) + sum(sub_depth)
        dpr = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        cur = 0
        for s in range(4):
            setattr(self, f'blocks{s + 1}', nn.ModuleList(
                RepConvBlock(embed_dim[s], kernel_size[s], mlp_ratio[s], ls_init_value[s], dpr[cur + i], deploy)
                for i in range(depth[s])))
            cur += depth[s]
        for s, stage in enumerate((2, 3)):
            n = sub_depth[s]
            setattr(self, f'sub_blocks{stage + 1}', nn.ModuleList(
                DynamicConvBlock(embed_dim[stage], embed_dim[-1], kernel_size[stage], smk_size, sub_num_heads[s],
                                 sub_mlp_ratio[s], ls_init_value[stage], dpr[cur + i], deploy=deploy,
                                 is_first=(stage == 2 and i == 0), is_last=(stage == 3 and i == n - 1))
                for i in range(n)))
            cur += n

        out_dims = [embed_dim[0], embed_dim[1], embed_dim[2] + embed_dim[3] // 4, fusion_dim]
        self.feature_info = [dict(num_chs=c, reduction=4 * 2 ** i, module=f'extra_norm.{i}' if dense_norms else
                                  ('blocks1', 'blocks2', 'sub_blocks3', 'sub_blocks4')[i])
                             for i, c in enumerate(out_dims)]
        self.dense_norms = dense_norms
        self.dense_ctx_proj = dense_ctx_proj
        if dense_norms:
            self.extra_norm = nn.ModuleList(LayerNorm2d(c, eps=1e-6) for c in out_dims)
            if dense_ctx_proj:
                self.extra_norm.append(LayerNorm2d(embed_dim[-1], eps=1e-6))
                self.h_proj = nn.Sequential(nn.Conv2d(embed_dim[-1], fusion_dim, 1), LayerScale(fusion_dim, 1e-5))

        if use_ds:
            self.aux_head = nn.Sequential(
                nn.BatchNorm2d(embed_dim[-1]), nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(embed_dim[-1], num_classes, 1) if num_classes > 0 else nn.Identity())
        self.head = nn.Sequential(
            nn.Conv2d(fusion_dim, projection, 1, bias=False), nn.BatchNorm2d(projection), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(projection, num_classes, 1) if num_classes > 0 else nn.Identity())
        self.grad_checkpointing = False
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv1d)):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def reparameterize(self) -> 'OverLoCK':
        """Merge every large-kernel block's dilated branches into one kernel (deploy form; same
        outputs in eval mode, fewer parameters)."""
        for m in self.modules():
            if isinstance(m, DilatedReparamBlock):
                m.merge_dilated_branches()
        return self

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        """Stem (``patch_embed1``), then the four stages in the order they run (``_RUN_ORDER``);
        fine groups: each block and embedding on its own. The dense model's output norms and context
        projection join the block before them, so that block-wise depths are the classification
        model's (as timm's ``param_groups_layer_decay`` counts them). The heads come last."""
        def last_block(pos: int):
            while _RUN_ORDER[pos][0].startswith(('extra_norm', 'h_proj')):
                pos -= 1
            module = _RUN_ORDER[pos][0]
            return (pos, len(getattr(self, module)) - 1 if module.startswith(('blocks', 'sub_blocks')) else 0)

        def ordinal(name: str):
            for pos, (module, stage) in enumerate(_RUN_ORDER):
                if name == module or name.startswith(module + '.'):
                    if coarse:
                        return (stage,)
                    if module.startswith(('extra_norm', 'h_proj')):
                        return last_block(pos)
                    index = name[len(module) + 1:].split('.')[0]
                    return (pos, int(index) if index.isdigit() and module.startswith(('blocks', 'sub_blocks')) else 0)
            return (float('inf'),)  # aux_head, head
        return ordinal

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head[-1]

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None):
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = global_pool
        self.head[-1] = nn.Conv2d(self.head_hidden_size, num_classes, 1) if num_classes > 0 else nn.Identity()

    def _check_input(self, x: torch.Tensor) -> None:
        check_image_input(x, self.in_chans, 32, 'OverLoCK')

    def _stages(self, x, dense: bool = False):
        """Yields the four outputs (strides 4..32) and finally the Overview-Net context (raw).

        ``dense``: the dense backbone's outputs, each through its ``extra_norm``. As in the authors'
        detection and segmentation backbones, stage 3 continues from the *normalised* stride-8
        output, and the detection variant adds ``h_proj(norm(context))`` at stride 32.
        """
        def out(i: int, t: torch.Tensor) -> torch.Tensor:
            return self.extra_norm[i](t) if dense else t

        def run(blocks, x, *args):
            return run_blocks(blocks, x, *args, checkpointing=self.grad_checkpointing)

        x = run(self.blocks1, self.patch_embed1(x))
        yield out(0, x)
        x = out(1, run(self.blocks2, self.patch_embed2(x)))
        yield x
        x = run(self.blocks3, self.patch_embed3(x))
        ctx = run(self.blocks4, self.patch_embed4(x))
        ctx_cls = ctx
        # top-down: the Overview-Net's context steers the Focus-Net at strides 16 and 32
        ctx_ori = self.high_level_proj(ctx)
        ctx_up = F.interpolate(ctx_ori, size=x.shape[2:], mode='bilinear', align_corners=False)
        x, ctx = run(self.sub_blocks3, (x, ctx_up), ctx_up)
        yield out(2, torch.cat([x, ctx], dim=1))
        x, ctx = run(self.sub_blocks4, self.patch_embedx(x, ctx), ctx_ori)
        x = out(3, x)
        if dense and self.dense_ctx_proj:
            x = x + self.h_proj(self.extra_norm[4](ctx_cls))
        yield x
        yield ctx_cls

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ):
        """The four outputs of the dense backbone; ``norm=True`` (with ``dense_norms``) gives the
        authors' dense forward: ``extra_norm`` on every output, the normalised stride-8 output
        feeding stage 3, and the detection variant's context projection."""
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        self._check_input(x)
        take_indices, _ = feature_take_indices(4, indices)
        outs = list(self._stages(x, dense=norm and self.dense_norms))
        intermediates = [outs[i] for i in take_indices]
        if intermediates_only:
            return intermediates
        return outs[3], intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1,
                                  prune_norm: bool = False, prune_head: bool = True):
        # stage 3's output needs the Overview-Net (stage 4) above it: nothing but the heads goes
        take_indices, _ = feature_take_indices(4, indices)
        if hasattr(self, 'aux_head'):
            del self.aux_head
        if prune_head:
            self.head = nn.Identity()
            self.num_classes = 0
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return list(self._stages(x))[3]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return self.head[:4](x).flatten(1)
        return self.head(x).flatten(1)

    def forward(self, x: torch.Tensor):
        self._check_input(x)
        outs = list(self._stages(x))
        logits = self.forward_head(outs[3])
        if self.training and hasattr(self, 'aux_head'):  # deep supervision, as the original
            return dict(main=logits, aux=self.aux_head(outs[4]).flatten(1))
        return logits


def checkpoint_filter_fn(state_dict, model: OverLoCK):
    """The original checkpoints (raw, ``state_dict`` or ``model``) to this model: the auxiliary
    head is dropped unless built; dense norms and the detection context projection the checkpoint
    lacks start as identity (norms) and as the original's fresh init (projection)."""
    state_dict = unwrap_state_dict(state_dict)
    target = model.state_dict()
    out = {}
    for k, v in state_dict.items():
        k = k[len('module.'):] if k.startswith('module.') else k
        if not is_other_head(k, v, target, heads=('aux_head.', 'head.')):
            out[k] = v
    add_missing(out, target, ['extra_norm.', 'h_proj.'])  # norms identity, projection scaled 1e-5
    return out


def _create_overlock(variant: str, pretrained: bool = False, **kwargs) -> OverLoCK:
    prepare_features(variant, kwargs)
    if pretrained:
        prepare_pretrained(variant, kwargs)
    return build_model_with_cfg(
        OverLoCK, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), norm=True),
        **kwargs)


def _cfg(url: str = '', **kwargs):
    return {
        'url': url, 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7),
        'crop_pct': 0.9, 'interpolation': 'bicubic', 'mean': (0.485, 0.456, 0.406),
        'std': (0.229, 0.224, 0.225), 'first_conv': 'patch_embed1.0', 'classifier': 'head.4',
        'license': 'apache-2.0', 'paper_ids': 'arXiv:2502.20087',
        'origin_url': 'https://github.com/LMMMEng/OverLoCK', **kwargs,
    }


_RELEASE = 'https://github.com/LMMMEng/OverLoCK/releases/download/v1/{}.pth'

default_cfgs = generate_default_cfgs({
    'overlock_xt.in1k': _cfg(_RELEASE.format('overlock_xt_in1k_224'), crop_pct=0.925),
    'overlock_t.in1k': _cfg(_RELEASE.format('overlock_t_in1k_224'), crop_pct=0.95),
    'overlock_s.in1k': _cfg(_RELEASE.format('overlock_s_in1k_224'), crop_pct=0.95),
    'overlock_b.in1k': _cfg(_RELEASE.format('overlock_b_in1k_224'), crop_pct=0.975),
    'overlock_xt_reparam.in1k': _cfg(_RELEASE.format('overlock_xt_in1k_224_reparam'), crop_pct=0.925),
    'overlock_t_reparam.in1k': _cfg(_RELEASE.format('overlock_t_in1k_224_reparam'), crop_pct=0.95),
    'overlock_s_reparam.in1k': _cfg(_RELEASE.format('overlock_s_in1k_224_reparam'), crop_pct=0.95),
    'overlock_b_reparam.in1k': _cfg(_RELEASE.format('overlock_b_in1k_224_reparam'), crop_pct=0.975),
})

_KERNELS = (17, 15, 13, 7)
_ARGS = {
    'xt': dict(depth=(2, 2, 3, 2), sub_depth=(6, 2), embed_dim=(56, 112, 256, 336), sub_num_heads=(4, 6)),
    't': dict(depth=(4, 4, 6, 2), sub_depth=(12, 2), embed_dim=(64, 128, 256, 512), sub_num_heads=(4, 8)),
    's': dict(depth=(6, 6, 8, 3), sub_depth=(16, 3), embed_dim=(64, 128, 320, 512), sub_num_heads=(8, 16)),
    'b': dict(depth=(8, 8, 10, 4), sub_depth=(20, 4), embed_dim=(80, 160, 384, 576), sub_num_heads=(6, 9)),
}


def _args(size: str, deploy: bool = False, **kwargs):
    return dict(dict(_ARGS[size], kernel_size=_KERNELS, sub_mlp_ratio=(3, 3), deploy=deploy), **kwargs)


@register_model
def overlock_xt(pretrained=False, **kwargs) -> OverLoCK:
    return _create_overlock('overlock_xt', pretrained, **_args('xt', **kwargs))


@register_model
def overlock_t(pretrained=False, **kwargs) -> OverLoCK:
    return _create_overlock('overlock_t', pretrained, **_args('t', **kwargs))


@register_model
def overlock_s(pretrained=False, **kwargs) -> OverLoCK:
    return _create_overlock('overlock_s', pretrained, **_args('s', **kwargs))


@register_model
def overlock_b(pretrained=False, **kwargs) -> OverLoCK:
    return _create_overlock('overlock_b', pretrained, **_args('b', **kwargs))


@register_model
def overlock_xt_reparam(pretrained=False, **kwargs) -> OverLoCK:
    return _create_overlock('overlock_xt_reparam', pretrained, **_args('xt', deploy=True, **kwargs))


@register_model
def overlock_t_reparam(pretrained=False, **kwargs) -> OverLoCK:
    return _create_overlock('overlock_t_reparam', pretrained, **_args('t', deploy=True, **kwargs))


@register_model
def overlock_s_reparam(pretrained=False, **kwargs) -> OverLoCK:
    return _create_overlock('overlock_s_reparam', pretrained, **_args('s', deploy=True, **kwargs))


@register_model
def overlock_b_reparam(pretrained=False, **kwargs) -> OverLoCK:
    return _create_overlock('overlock_b_reparam', pretrained, **_args('b', deploy=True, **kwargs))
