"""ViG: linear-complexity visual sequence learning with gated linear attention (GLA).

Paper: "ViG: Linear-complexity Visual Sequence Learning with Gated Linear Attention", Liao et al.,
AAAI 2025, arXiv 2405.18425. Original code and weights: https://github.com/hustvl/ViG (weights on
the Hugging Face hub, ``hustvl/ViG``, Apache-2.0). Not the Vision GNN that shares the name.

A ViG block mixes tokens with bidirectional GLA over the raster scan: a 3×3 depthwise conv gives
the local branch, from which q, k, v and low-rank direction-wise forget gates
(``logsigmoid(·)/16``) are projected; the forward and backward scans are averaged, and a sigmoid
gate blends the RMS-normed global output with the RMS-normed local branch (2D gating locality
injection) before the output projection.

- ``vig_{tiny,small,base}``: plain, isotropic (stride 16), absolute position embedding resized to
  the input, RMSNorm + SwiGLU.
- ``vig_h_{tiny,small,base}``: hierarchical (strides 4–32, VMamba layout), LayerNorm2d + gated MLP.

GLA runs through :func:`gatedvision.ops.bidirectional_gla` (torch on CPU, fla-core's Triton
kernels on CUDA). The released plain models were evaluated with the two directions summed and
divided by 4 (the kernel wrapper halves and the model halves again) but trained with /2; the RMSNorm
that follows cancels the factor up to its eps. gatedvision reproduces exactly that: /2 in training,
/4 in eval mode for the plain models (``eval_quarter``), /2 always for the hierarchical ones.
"""
import re
from collections import OrderedDict
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm2d, resample_abs_pos_embed, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import MATCH_PREV_GROUP
from torch import nn

from gatedvision.ops.linear_attention import bidirectional_gla
from ._helpers import (add_missing, check_image_input, is_other_head, prepare_features, prepare_pretrained, run_blocks,
                       unwrap_state_dict)

__all__ = ['ViG', 'HierViG']


class Linear2d(nn.Linear):
    """A 1×1 convolution stored as a Linear (channels-first data, Linear-shaped weights)."""

    def forward(self, x):
        return F.conv2d(x, self.weight[:, :, None, None], self.bias)


class GatedLinearAttention(nn.Module):
    """Bidirectional GLA with 2D gating locality injection (paper Sec. 3.2–3.3).

    Args:
        dim: channels.
        num_heads: heads.
        expand_k / expand_v: q/k and v widths relative to ``dim``.
        channels_first: (B, C, H, W) in and out with 1×1 convs (hierarchical ViG); else
            (B, N, C) tokens with Linear layers (plain ViG).
        use_act_in_conv: SiLU after the local depthwise conv.
        use_out_act: SiLU before the output projection.
        eval_quarter: the released plain models' eval-time (fw + bw) / 4 (see module docstring).
    """

    def __init__(self, dim: int, num_heads: int, expand_k: float = 0.5, expand_v: float = 1.0,
                 channels_first: bool = False, use_act_in_conv: bool = True, use_out_act: bool = False,
                 gate_low_rank_dim: int = 16, gate_logit_normalizer: float = 16, eps: float = 1e-6,
                 eval_quarter: bool = False):
        super().__init__()
        linear = Linear2d if channels_first else nn.Linear
        self.channels_first = channels_first
        self.num_heads = num_heads
        self.key_dim = int(dim * expand_k)
        self.value_dim = int(dim * expand_v)
        self.head_v_dim = self.value_dim // num_heads
        self.gate_logit_normalizer = gate_logit_normalizer
        self.eval_quarter = eval_quarter
        self.in_proj = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
                                     nn.SiLU() if use_act_in_conv else nn.Identity())
        self.qkv_proj = linear(dim, 2 * self.key_dim + self.value_dim, bias=False)
        self.gk_proj = nn.Sequential(linear(dim, gate_low_rank_dim, bias=False),
                                     linear(gate_low_rank_dim, 2 * self.key_dim, bias=True))
        self.o_proj = nn.Linear(self.value_dim, dim, bias=False)
        self.g_norm = nn.RMSNorm(self.head_v_dim, eps=eps)
        self.l_norm = nn.RMSNorm(self.head_v_dim, eps=eps)
        self.g_proj = linear(dim, self.value_dim, bias=True)
        self.out_act = nn.SiLU() if use_out_act else None
        self.reset_parameters()

    def reset_parameters(self):
        for w in (self.qkv_proj.weight, self.in_proj[0].weight, self.g_proj.weight, self.o_proj.weight,
                  self.gk_proj[0].weight, self.gk_proj[1].weight):
            nn.init.xavier_uniform_(w, gain=2 ** -2.5)

    def _project(self, xs):
        """``qkv_proj``, ``g_proj`` and ``gk_proj[0]`` as one matmul (their weights concatenated)."""
        gk0 = self.gk_proj[0]
        weight = torch.cat([self.qkv_proj.weight, self.g_proj.weight, gk0.weight])
        bias = torch.cat([self.g_proj.bias.new_zeros(self.qkv_proj.out_features), self.g_proj.bias,
                          self.g_proj.bias.new_zeros(gk0.out_features)])
        if self.channels_first:
            return F.conv2d(xs, weight[:, :, None, None], bias)
        return F.linear(xs, weight, bias)

    def forward(self, x: torch.Tensor, size=None) -> torch.Tensor:
        heads = self.num_heads
        if self.channels_first:
            b, c, h, w = x.shape
            local = self.in_proj(x)                                       # (B, C, H, W)
            xs = local

            def split_heads(t):  # (B, heads*d, H, W) -> (B, heads, N, d): a view, channels-last or not
                return t.reshape(b, heads, -1, h * w).transpose(-1, -2)
        else:
            b, n, c = x.shape
            h, w = size
            # the tokens (B, N, C) are a channels-last (B, C, H, W) map as they are: no copies
            local = self.in_proj(x.reshape(b, h, w, c).permute(0, 3, 1, 2))
            xs = local.permute(0, 2, 3, 1).reshape(b, n, c)               # (B, N, C)

            def split_heads(t):  # (B, N, heads*d) -> (B, heads, N, d), a view
                return t.unflatten(-1, (heads, -1)).transpose(1, 2)
        dim = 1 if self.channels_first else -1
        # q, k, v, the output gate and the gates' low-rank input read the same map: one projection
        q, k, v, gate, gk = self._project(xs).split(
            [self.key_dim, self.key_dim, self.value_dim, self.value_dim, self.gk_proj[0].out_features], dim=dim)
        gk = self.gk_proj[1](gk)
        g_fw, g_bw = (log_sigmoid(gk) / self.gate_logit_normalizer).chunk(2, dim=dim)
        o = bidirectional_gla(*map(split_heads, (q, k, v, g_fw, g_bw)), head_first=True)  # (fw + bw) / 2
        if self.eval_quarter and not self.training:
            o = o / 2
        gate = split_heads(gate.sigmoid())
        # g_norm(o) * gate + l_norm(local) * (1 - gate), one pass
        o = torch.lerp(self.l_norm(split_heads(xs)), self.g_norm(o), gate)   # (B, heads, N, dv)
        if self.out_act is not None:
            o = self.out_act(o)
        o = self.o_proj(o.transpose(1, 2).reshape(b, h * w, -1))         # (B, N, C)
        # back to (B, C, H, W) as a channels-last view
        return o.view(b, h, w, c).permute(0, 3, 1, 2) if self.channels_first else o


def swiglu(gate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * y``; without autograd in place of the silu's output (one temporary fewer:
    at stage 1 of ViG-H-T, batch 8, 25 MB a block)."""
    if torch.is_grad_enabled() and (gate.requires_grad or y.requires_grad):
        return F.silu(gate) * y
    return F.silu(gate).mul_(y)


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``F.logsigmoid`` at a tenth of its CPU cost (ATen's kernel is ~30x a sigmoid): log(sigmoid(x))
    where that is accurate (x > -20; absolute error below 1e-7), x itself below (error < e^-20)."""
    return torch.where(x > -20, torch.sigmoid(x.clamp(min=-20)).log(), x)


# --- plain ViG -----------------------------------------------------------------------------

class SwiGLU(nn.Module):
    """``down(silu(gate) * up)``, hidden width a multiple of 256 near 8/3 · dim (fla's GLAMLP)."""

    def __init__(self, dim: int):
        super().__init__()
        hidden = int(dim * 4 * 2 / 3)
        hidden = 256 * ((hidden + 255) // 256)
        self.gate_proj = nn.Linear(dim, 2 * hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        gate, y = self.gate_proj(x).chunk(2, dim=-1)
        return self.down_proj(swiglu(gate, y))


class GLABlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, drop_path: float = 0., use_act_in_conv: bool = True,
                 use_out_act: bool = False, eps: float = 1e-6):
        super().__init__()
        self.attn_norm = nn.RMSNorm(dim, eps=eps)
        self.attn = GatedLinearAttention(dim, num_heads, use_act_in_conv=use_act_in_conv,
                                         use_out_act=use_out_act, eps=eps, eval_quarter=True)
        self.mlp_norm = nn.RMSNorm(dim, eps=eps)
        self.mlp = SwiGLU(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x, size):
        x = x + self.drop_path(self.attn(self.attn_norm(x), size))
        return x + self.drop_path(self.mlp(self.mlp_norm(x)))


class PatchEmbed(nn.Module):
    """9×9 stride-8 conv, LayerNorm2d, SiLU, 3×3 stride-2 conv, LayerNorm2d: stride 16 ("v2")."""

    def __init__(self, in_chans: int, dim: int):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, dim // 2, 9, stride=8, padding=1), LayerNorm2d(dim // 2, eps=1e-5), nn.SiLU(),
            nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1), LayerNorm2d(dim, eps=1e-5))

    def forward(self, x):
        return self.proj(x)


class ViG(nn.Module):
    """Plain (isotropic) ViG.

    Args:
        img_size: size the position embedding is trained for (resized for other inputs).
        in_chans / num_classes / global_pool: as in timm.
        embed_dim / depth / num_heads: width, blocks, heads.
        use_act_in_conv / use_out_act: ViG-T uses both, S and B neither.
        drop_rate / drop_path_rate: as in timm.
    """

    def __init__(self, img_size: int = 224, in_chans: int = 3, num_classes: int = 1000,
                 global_pool: str = 'avg', embed_dim: int = 192, depth: int = 12, num_heads: int = 3,
                 use_act_in_conv: bool = True, use_out_act: bool = False, drop_rate: float = 0.,
                 drop_path_rate: float = 0., eps: float = 1e-6):
        super().__init__()
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.in_chans = in_chans
        self.patch_embed = PatchEmbed(in_chans, embed_dim)
        self.grid = (img_size // 16, img_size // 16)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], embed_dim))
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            GLABlock(embed_dim, num_heads, dpr[i], use_act_in_conv, use_out_act, eps) for i in range(depth))
        self.norm = nn.RMSNorm(embed_dim, eps=eps)
        self.grad_checkpointing = False
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [dict(num_chs=embed_dim, reduction=16, module=f'blocks.{i}') for i in range(depth)]
        self.apply(self._init_weights)
        for m in self.modules():  # as the original: GLA's own init after the generic one
            if isinstance(m, GatedLinearAttention):
                m.reset_parameters()
        trunc_normal_(self.pos_embed, std=.02)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'pos_embed'}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """The embedding (patches, position) as the stem, then one group per block."""
        return dict(stem=r'^pos_embed|^patch_embed', blocks=[(r'^blocks\.(\d+)', None), (r'^norm\.', (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None):
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = global_pool
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _embed(self, x):
        check_image_input(x, self.in_chans, 32, 'ViG')
        x = self.patch_embed(x)
        size = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)                                  # (B, C, H, W) -> (B, N, C)
        pos = self.pos_embed
        if tuple(size) != self.grid:  # bicubic, no antialias, as the original resizes it
            pos = resample_abs_pos_embed(pos, list(size), list(self.grid), num_prefix_tokens=0,
                                         interpolation='bicubic', antialias=False)
        return x + pos, tuple(size)

    def forward_intermediates(self, x, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False):
        """Block outputs as (B, C, H/16, W/16) maps; ``norm=True`` applies the final RMSNorm."""
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        x, size = self._embed(x)
        intermediates = []
        blocks = self.blocks[:max_index + 1] if stop_early else self.blocks
        for i, blk in enumerate(blocks):
            x = run_blocks((blk,), x, size, checkpointing=self.grad_checkpointing)
            if i in take_indices:
                y = self.norm(x) if norm else x
                intermediates.append(y.transpose(1, 2).reshape(x.shape[0], -1, *size))
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True):
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[:max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x):
        x, size = self._embed(x)
        x = run_blocks(self.blocks, x, size, checkpointing=self.grad_checkpointing)
        return self.norm(x)

    def forward_head(self, x, pre_logits: bool = False):
        if self.global_pool == 'avg':
            x = x.mean(1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


# --- hierarchical ViG ----------------------------------------------------------------------

class GatedMlp(nn.Module):
    """Channels-first SwiGLU MLP, hidden width a multiple of 32 near 8/3 · dim."""

    def __init__(self, dim: int, drop: float = 0.):
        super().__init__()
        hidden = int(dim * 4 * 2 / 3)
        hidden = 32 * ((hidden + 31) // 32)
        self.fc1 = Linear2d(dim, 2 * hidden, bias=False)
        self.fc2 = Linear2d(hidden, dim, bias=False)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        # fc1 as two convolutions of half its width: the same arithmetic, outputs half the size
        # (glibc maps fresh pages for every allocation above 32 MB: ViG-H-T's stage 1 at batch 8
        # would fault in 51 MB each call)
        gate_w, y_w = self.fc1.weight[:, :, None, None].chunk(2)
        return self.drop(self.fc2(swiglu(F.conv2d(x, gate_w), F.conv2d(x, y_w))))


class VSSBlock(nn.Module):
    """``x + GLA(LN(x))``, ``x + gMLP(LN(x))``, channels first."""

    def __init__(self, dim: int, num_heads: int, drop_path: float = 0., use_act_in_conv: bool = False,
                 use_out_act: bool = False):
        super().__init__()
        self.norm = LayerNorm2d(dim, eps=1e-5)
        self.op = GatedLinearAttention(dim, num_heads, channels_first=True, use_act_in_conv=use_act_in_conv,
                                       use_out_act=use_out_act)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = LayerNorm2d(dim, eps=1e-5)
        self.mlp = GatedMlp(dim)

    def forward(self, x):
        x = x + self.drop_path(self.op(self.norm(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class HierViG(nn.Module):
    """Hierarchical ViG (ViG-H).

    Args:
        in_chans / num_classes / global_pool: as in timm.
        depths / dims / num_heads: per stage.
        use_act_in_conv / use_out_act: off in the released models.
        drop_rate / drop_path_rate: as in timm.
        dense_norms: the dense backbone's per-output LayerNorm2d (``outnorm{i}``); features_only.
    """

    def __init__(self, in_chans: int = 3, num_classes: int = 1000, global_pool: str = 'avg',
                 depths: Sequence[int] = (2, 2, 5, 2), dims: Union[int, Sequence[int]] = 96,
                 num_heads: Sequence[int] = (3, 6, 12, 24), use_act_in_conv: bool = False,
                 use_out_act: bool = False, drop_rate: float = 0., drop_path_rate: float = 0.,
                 dense_norms: bool = False):
        super().__init__()
        dims = [dims * 2 ** i for i in range(4)] if isinstance(dims, int) else list(dims)
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.dims = dims
        self.num_features = self.head_hidden_size = dims[-1]
        self.in_chans = in_chans
        d0 = dims[0]
        self.patch_embed = nn.Sequential(
            nn.Conv2d(in_chans, d0 // 2, 3, stride=2, padding=1), nn.Identity(), LayerNorm2d(d0 // 2, eps=1e-5),
            nn.Identity(), nn.GELU(), nn.Conv2d(d0 // 2, d0, 3, stride=2, padding=1), nn.Identity(),
            LayerNorm2d(d0, eps=1e-5))
        total = sum(depths)
        dpr = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.layers = nn.ModuleList()
        self.feature_info = []
        cur = 0
        for i in range(4):
            down = nn.Sequential(nn.Identity(), nn.Conv2d(dims[i], dims[i + 1], 3, stride=2, padding=1),
                                 nn.Identity(), LayerNorm2d(dims[i + 1], eps=1e-5)) if i < 3 else nn.Identity()
            self.layers.append(nn.Sequential(OrderedDict(
                blocks=nn.Sequential(*[VSSBlock(dims[i], num_heads[i], dpr[cur + j], use_act_in_conv, use_out_act)
                                       for j in range(depths[i])]),
                downsample=down)))
            cur += depths[i]
            self.feature_info.append(dict(num_chs=dims[i], reduction=4 * 2 ** i, module=f'layers.{i}.blocks'))
        self.dense_norms = dense_norms
        if dense_norms:
            for i in range(4):
                self.add_module(f'outnorm{i}', LayerNorm2d(dims[i], eps=1e-5))
        self.classifier = nn.Sequential(OrderedDict(
            norm=LayerNorm2d(dims[-1], eps=1e-5),
            permute=nn.Identity(),
            avgpool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
            head=nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()))
        self.head_drop = nn.Dropout(drop_rate)
        self.grad_checkpointing = False
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):  # Linear2d too, as the original
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        """Stem, then stage i = its blocks and its dense output norm. ``layers.i.downsample`` runs
        after stage i's output and before stage i + 1, so it belongs to stage i + 1 (a function:
        a regex cannot add one)."""
        def ordinal(name: str):
            if name.startswith('patch_embed.'):
                return (0,)
            m = re.match(r'layers\.(\d+)\.(blocks|downsample)(?:\.(\d+))?', name)
            if m:
                stage = int(m[1]) + 1 + (m[2] == 'downsample')
                block = -1 if m[2] == 'downsample' else int(m[3] or 0)
                return (stage,) if coarse else (stage, block)
            m = re.match(r'outnorm(\d+)\.', name)
            if m:
                return (int(m[1]) + 1,) if coarse else (int(m[1]) + 1, MATCH_PREV_GROUP[0])
            return (float('inf'),)  # the classifier
        return ordinal

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.classifier.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None):
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = global_pool
        self.classifier.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _check_input(self, x):
        check_image_input(x, self.in_chans, 32, 'ViG-H')

    def forward_intermediates(self, x, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False):
        """Stage outputs (before downsampling); ``norm=True`` applies ``outnorm{i}``."""
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        self._check_input(x)
        take_indices, max_index = feature_take_indices(4, indices)
        x = self.patch_embed(x.contiguous(memory_format=torch.channels_last))
        intermediates = []
        last = max_index if stop_early else 3
        for i in range(last + 1):
            o = run_blocks(self.layers[i].blocks, x, checkpointing=self.grad_checkpointing)
            x = self.layers[i].downsample(o)
            if i in take_indices:
                intermediates.append(getattr(self, f'outnorm{i}')(o) if norm and self.dense_norms else o)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True):
        take_indices, max_index = feature_take_indices(4, indices)
        self.layers = self.layers[:max_index + 1]
        self.layers[-1].downsample = nn.Identity()
        if self.dense_norms:
            for i in range(max_index + 1, 4):
                delattr(self, f'outnorm{i}')
        self.classifier = nn.Identity()
        self.num_classes = 0
        return take_indices

    def forward_features(self, x):
        self._check_input(x)
        # channels-last throughout: the 1x1 convolutions run 2-4x faster on the CPU than on NCHW
        # (oneDNN reorders NCHW), LayerNorm2d's permute is free, and GLA's head views need no copies
        x = self.patch_embed(x.contiguous(memory_format=torch.channels_last))
        for layer in self.layers:
            x = layer.downsample(run_blocks(layer.blocks, x, checkpointing=self.grad_checkpointing))
        return x

    def forward_head(self, x, pre_logits: bool = False):
        c = self.classifier
        x = c.flatten(c.avgpool(c.norm(x)))
        x = self.head_drop(x)
        return x if pre_logits else c.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict, model):
    """``{'model': ...}`` to this model (the names are the original's); VMamba-style names the
    original remaps too; dense norms the checkpoint lacks start as identity."""
    state_dict = unwrap_state_dict(state_dict)
    target = model.state_dict()
    renames = [('patch_embed.proj.', 'patch_embed.0.'), ('patch_embed.norm.', 'patch_embed.2.'),
               ('.ln_1.', '.norm.'), ('.self_attention.', '.op.')] if isinstance(model, HierViG) else []
    out = {}
    for k, v in state_dict.items():
        for a, b in renames:
            if a in k and k.replace(a, b) in target:
                k = k.replace(a, b)
        if isinstance(model, HierViG) and k.startswith(('norm.', 'head.')):
            k = 'classifier.' + k
        if is_other_head(k, v, target, heads=('head.', 'classifier.head.')):
            continue
        if k in target and target[k].shape != v.shape and v.numel() == target[k].numel():
            v = v.view(target[k].shape)  # Linear2d weights saved as 1x1 convs
        out[k] = v
    add_missing(out, target, ['outnorm'])
    return out


def _create(cls, variant: str, pretrained: bool = False, **kwargs):
    prepare_features(variant, kwargs, dense_norms=cls is HierViG)
    if pretrained:
        prepare_pretrained(variant, kwargs)
    feature_cfg = dict(out_indices=(0, 1, 2, 3), norm=True) if cls is HierViG else dict(out_indices=(-1,), norm=True)
    return build_model_with_cfg(cls, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
                                feature_cfg=feature_cfg, **kwargs)


def _cfg(filename: str, **kwargs):
    return {
        'hf_hub_id': 'hustvl/ViG', 'hf_hub_filename': filename, 'num_classes': 1000,
        'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875, 'interpolation': 'bicubic',
        'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225), 'license': 'apache-2.0',
        'paper_ids': 'arXiv:2405.18425', 'origin_url': 'https://github.com/hustvl/ViG', **kwargs,
    }


default_cfgs = generate_default_cfgs({
    # the ViG-T file name follows the others' pattern (unverified: the hub listing was not reachable)
    'vig_tiny.in1k': _cfg('vig_t_77p2acc.pth', first_conv='patch_embed.proj.0', classifier='head', pool_size=(14, 14)),
    'vig_small.in1k': _cfg('vig_s_81p7acc.pth', first_conv='patch_embed.proj.0', classifier='head', pool_size=(14, 14)),
    'vig_base.in1k': _cfg('vig_b_82p6acc.pth', first_conv='patch_embed.proj.0', classifier='head', pool_size=(14, 14)),
    'vig_h_tiny.in1k': _cfg('vig_h_t_82p8acc.pth', first_conv='patch_embed.0', classifier='classifier.head'),
    'vig_h_small.in1k': _cfg('vig_h_s_83p8acc.pth', first_conv='patch_embed.0', classifier='classifier.head'),
    'vig_h_base.in1k': _cfg('vig_h_b_84p2acc.pth', first_conv='patch_embed.0', classifier='classifier.head'),
})


@register_model
def vig_tiny(pretrained=False, **kwargs) -> ViG:
    model_args = dict(embed_dim=192, depth=12, num_heads=3, use_act_in_conv=True, use_out_act=True)
    return _create(ViG, 'vig_tiny', pretrained, **dict(model_args, **kwargs))


@register_model
def vig_small(pretrained=False, **kwargs) -> ViG:
    model_args = dict(embed_dim=384, depth=12, num_heads=6, use_act_in_conv=False, use_out_act=False)
    return _create(ViG, 'vig_small', pretrained, **dict(model_args, **kwargs))


@register_model
def vig_base(pretrained=False, **kwargs) -> ViG:
    model_args = dict(embed_dim=768, depth=12, num_heads=12, use_act_in_conv=False, use_out_act=False)
    return _create(ViG, 'vig_base', pretrained, **dict(model_args, **kwargs))


@register_model
def vig_h_tiny(pretrained=False, **kwargs) -> HierViG:
    model_args = dict(depths=(2, 2, 5, 2), dims=96, num_heads=(3, 6, 12, 24))
    return _create(HierViG, 'vig_h_tiny', pretrained, **dict(model_args, **kwargs))


@register_model
def vig_h_small(pretrained=False, **kwargs) -> HierViG:
    model_args = dict(depths=(2, 2, 17, 2), dims=96, num_heads=(3, 6, 12, 24))
    return _create(HierViG, 'vig_h_small', pretrained, **dict(model_args, **kwargs))


@register_model
def vig_h_base(pretrained=False, **kwargs) -> HierViG:
    model_args = dict(depths=(2, 2, 17, 2), dims=128, num_heads=(4, 8, 16, 32))
    return _create(HierViG, 'vig_h_base', pretrained, **dict(model_args, **kwargs))
