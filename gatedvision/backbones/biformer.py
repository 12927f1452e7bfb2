"""BiFormer: vision transformer with bi-level routing attention.

Paper: "BiFormer: Vision Transformer with Bi-Level Routing Attention", Zhu et al., CVPR 2023,
arXiv 2303.08810. Original code and weights: https://github.com/rayleizhu/BiFormer (MIT).

Module names follow the original (``{'model': state_dict}`` checkpoints load unchanged). The
published OneDrive links are reported dead (rayleizhu/BiFormer#53); they stay in the pretrained
cfgs, and a local file loads with ``pretrained_cfg_overlay=dict(file='biformer_small.pth')``.

Differences from the original code, none of which changes outputs: every input size works (the
attention pads each map to a multiple of ``n_win`` and crops back, as the original's dense
``auto_pad`` does), ``n_win`` is a constructor argument (dense tasks use 16 for detection and 8 for
segmentation), and the token attention runs chunked over query regions with a fused kernel
(:mod:`gatedvision.ops.routing`) instead of materialising ``topk`` copies of the keys and
values and the full attention matrix.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm2d, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn

from gatedvision.ops.routing import routed_attention
from ._helpers import (add_missing, check_image_input, is_other_head, prepare_features, prepare_pretrained, run_blocks,
                       unwrap_state_dict)

__all__ = ['BiFormer']


class QKVLinear(nn.Module):
    def __init__(self, dim: int, qk_dim: int):
        super().__init__()
        self.qk_dim = qk_dim
        self.qkv = nn.Linear(dim, 2 * qk_dim + dim)

    def forward(self, x):
        return self.qkv(x)


class BiLevelRoutingAttention(nn.Module):
    """Region-to-region routing, then token attention within the routed regions (paper Sec. 3.2).

    The map is split into ``n_win × n_win`` regions; region-level queries and keys are the mean of
    their tokens; each query region keeps the ``topk`` key regions of highest affinity (not
    differentiated); its tokens attend to all tokens of those regions. A 5×5 depthwise conv of the
    values (LePE) is added before the output projection. The logit scale is ``qk_dim ** -0.5`` over
    the full qk width, as published (the released weights were trained with it).
    """

    def __init__(self, dim: int, num_heads: int, n_win: int = 7, qk_dim: Optional[int] = None,
                 topk: int = 4, side_dwconv: int = 5):
        super().__init__()
        self.dim = dim
        self.n_win = n_win
        self.num_heads = num_heads
        self.qk_dim = qk_dim or dim
        self.topk = topk
        self.scale = self.qk_dim ** -0.5
        self.lepe = nn.Conv2d(dim, dim, side_dwconv, padding=side_dwconv // 2, groups=dim)
        self.qkv = QKVLinear(dim, self.qk_dim)
        self.wo = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, H, W, C) -> (N, H, W, C)."""
        n, h_in, w_in, c = x.shape
        s = self.n_win
        ph, pw = (-h_in) % s, (-w_in) % s
        if ph or pw:
            x = F.pad(x, (0, 0, 0, pw, 0, ph))
        hp, wp = h_in + ph, w_in + pw
        rh, rw = hp // s, wp // s  # region size
        heads, qk = self.num_heads, self.qk_dim

        qkv = self.qkv(x)                                           # (N, Hp, Wp, 2qk + C)
        # (N, Hp, Wp, c) -> (N, S*S, rh*rw, c), regions in row-major order
        qkv = qkv.view(n, s, rh, s, rw, -1).permute(0, 1, 3, 2, 4, 5).reshape(n, s * s, rh * rw, -1)
        q, k, v = qkv.split([qk, qk, c], dim=-1)
        lepe = self.lepe(
            v.reshape(n, s, s, rh, rw, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, hp, wp))

        with torch.no_grad():  # routing is a hard, non-differentiable choice
            q_win, k_win = q.mean(2), k.mean(2)                     # (N, S*S, qk)
            affinity = (q_win * self.scale) @ k_win.transpose(-2, -1)
            region_idx = affinity.topk(min(self.topk, s * s), dim=-1).indices

        def heads_first(t):  # (N, R, T, heads*d) -> (N, R, heads, T, d)
            return t.reshape(n, s * s, rh * rw, heads, -1).transpose(2, 3)

        out = routed_attention(heads_first(q), heads_first(k), heads_first(v), region_idx, self.scale)
        # (N, R, heads, T, dv) -> (N, Hp, Wp, C)
        out = out.transpose(2, 3).reshape(n, s, s, rh, rw, c).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(n, hp, wp, c) + lepe.permute(0, 2, 3, 1)
        out = self.wo(out)
        return out[:, :h_in, :w_in] if (ph or pw) else out


class AttentionLePE(nn.Module):
    """Full multi-head attention plus LePE, used in the last stage (topk = -2 in the original,
    whose 7×7 map makes routing pointless). 8 heads, no qkv bias, as released."""

    def __init__(self, dim: int, num_heads: int = 8, side_dwconv: int = 5):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.lepe = nn.Conv2d(dim, dim, side_dwconv, padding=side_dwconv // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        qkv = self.qkv(x).reshape(n, h * w, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                        # (N, heads, HW, d) each
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        out = out.transpose(1, 2).reshape(n, h, w, c) + self.lepe(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.proj(out)


class Block(nn.Module):
    """``x + DWConv3×3(x)`` (conditional position encoding), then pre-norm attention and MLP."""

    def __init__(self, dim: int, num_heads: int, n_win: int, topk: int, mlp_ratio: float,
                 drop_path: float = 0., side_dwconv: int = 5):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if topk > 0:
            self.attn = BiLevelRoutingAttention(dim, num_heads, n_win, dim, topk, side_dwconv)
        else:
            self.attn = AttentionLePE(dim, side_dwconv=side_dwconv)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(mlp_ratio * dim)
        # indices 0 and 3 as in the original (an identity slot held its optional MLP dwconv)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.Identity(), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = x.permute(0, 2, 3, 1)                                   # (N, C, H, W) -> (N, H, W, C)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x.permute(0, 3, 1, 2)


class BiFormer(nn.Module):
    """BiFormer.

    Args:
        in_chans: input channels.
        num_classes: classifier outputs (0 for none).
        global_pool: ``'avg'`` or ``''``.
        depths: blocks per stage.
        embed_dims: channels per stage (also the qk width of the routing attention).
        head_dim: channels per head of the routing attention.
        mlp_ratios: MLP expansion per stage.
        topks: routed regions per stage; ``-2`` is full attention with LePE.
        n_win: regions per side (7 for ImageNet at 224, 16 detection, 8 segmentation).
        side_dwconv: LePE kernel size.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, linearly increasing over blocks.
        dense_norms: add a LayerNorm2d per stage output (``extra_norms``) as the original dense
            backbone does; used by ``features_only``.
    """

    def __init__(self, in_chans: int = 3, num_classes: int = 1000, global_pool: str = 'avg',
                 depths: Sequence[int] = (4, 4, 18, 4), embed_dims: Sequence[int] = (64, 128, 256, 512),
                 head_dim: int = 32, mlp_ratios: Sequence[float] = (3, 3, 3, 3),
                 topks: Sequence[int] = (1, 4, 16, -2), n_win: int = 7, side_dwconv: int = 5,
                 drop_rate: float = 0., drop_path_rate: float = 0., dense_norms: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.embed_dim = list(embed_dims)
        self.num_features = self.head_hidden_size = embed_dims[-1]
        self.n_win = n_win

        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_chans, embed_dims[0] // 2, 3, stride=2, padding=1),
            nn.BatchNorm2d(embed_dims[0] // 2),
            nn.GELU(),
            nn.Conv2d(embed_dims[0] // 2, embed_dims[0], 3, stride=2, padding=1),
            nn.BatchNorm2d(embed_dims[0]))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                nn.Conv2d(embed_dims[i], embed_dims[i + 1], 3, stride=2, padding=1),
                nn.BatchNorm2d(embed_dims[i + 1])))

        total = sum(depths)
        dpr = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stages = nn.ModuleList()
        self.feature_info = []
        cur = 0
        for i in range(4):
            self.stages.append(nn.Sequential(*[
                Block(embed_dims[i], embed_dims[i] // head_dim, n_win, topks[i], mlp_ratios[i],
                      dpr[cur + j], side_dwconv) for j in range(depths[i])]))
            cur += depths[i]
            self.feature_info.append(dict(num_chs=embed_dims[i], reduction=4 * 2 ** i, module=f'stages.{i}'))
        self.dense_norms = dense_norms
        if dense_norms:
            self.extra_norms = nn.ModuleList(LayerNorm2d(d) for d in embed_dims)

        self.norm = nn.BatchNorm2d(embed_dims[-1])
        self.grad_checkpointing = False
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Stem, then stage i = its downsampling layer, its blocks and its dense output norm."""
        return dict(stem=r'^downsample_layers\.0\.', blocks=[
            (r'^downsample_layers\.(\d+)', None if coarse else (0,)),  # with the stage's first block
            (r'^stages\.(\d+)' if coarse else r'^stages\.(\d+)\.(\d+)', None),
            (r'^extra_norms\.(\d+)', None if coarse else (99999,)),  # 99999: with the stage's last block
            (r'^norm\.', (99999,)),
        ])

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
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def set_n_win(self, n_win: int) -> None:
        """Change the regions per side of every routing attention (no weights depend on it)."""
        self.n_win = n_win
        for m in self.modules():
            if isinstance(m, BiLevelRoutingAttention):
                m.n_win = n_win

    def _check_input(self, x: torch.Tensor) -> None:
        check_image_input(x, self.downsample_layers[0][0].in_channels, 32, 'BiFormer')

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ):
        """Stage outputs; ``norm=True`` applies the dense per-stage norms (``extra_norms``)."""
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        self._check_input(x)
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        intermediates = []
        last = max_index if stop_early else len(self.stages) - 1
        for i in range(last + 1):
            x = run_blocks(self.stages[i], self.downsample_layers[i](x), checkpointing=self.grad_checkpointing)
            if i in take_indices:
                intermediates.append(self.extra_norms[i](x) if norm and self.dense_norms else x)
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1,
                                  prune_norm: bool = False, prune_head: bool = True):
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[:max_index + 1]
        self.downsample_layers = self.downsample_layers[:max_index + 1]
        if self.dense_norms:
            self.extra_norms = self.extra_norms[:max_index + 1]
        self.norm = nn.Identity()  # the original dense backbone drops it too
        if prune_head:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        for down, stage in zip(self.downsample_layers, self.stages):
            x = run_blocks(stage, down(x), checkpointing=self.grad_checkpointing)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == 'avg':
            x = x.flatten(2).mean(-1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict, model: BiFormer):
    """``{'model': ...}`` to this model; dense norms the checkpoint lacks start as identity, as in
    the original dense backbone (``extra_norms`` are not in the classification weights)."""
    state_dict = unwrap_state_dict(state_dict)
    target = model.state_dict()
    out = {}
    for k, v in state_dict.items():
        if not is_other_head(k, v, target):
            out[k] = v
    add_missing(out, target, ['extra_norms.'])
    return out


def _create_biformer(variant: str, pretrained: bool = False, **kwargs) -> BiFormer:
    prepare_features(variant, kwargs)
    if pretrained:
        prepare_pretrained(variant, kwargs)
    return build_model_with_cfg(
        BiFormer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), norm=True),
        **kwargs)


def _cfg(url: str = '', **kwargs):
    return {
        'url': url, 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7),
        'crop_pct': 0.875, 'interpolation': 'bicubic', 'mean': (0.485, 0.456, 0.406),
        'std': (0.229, 0.224, 0.225), 'first_conv': 'downsample_layers.0.0',
        'classifier': 'head', 'license': 'mit', 'paper_ids': 'arXiv:2303.08810',
        'origin_url': 'https://github.com/rayleizhu/BiFormer', **kwargs,
    }


_ONEDRIVE = 'https://api.onedrive.com/v1.0/shares/s!{}/root/content'

default_cfgs = generate_default_cfgs({
    'biformer_tiny.in1k': _cfg(_ONEDRIVE.format('AkBbczdRlZvChHEOoGkgwgQzEDlM')),
    'biformer_small.in1k': _cfg(_ONEDRIVE.format('AkBbczdRlZvChHDyM-x9KWRBZ832')),
    'biformer_base.in1k': _cfg(_ONEDRIVE.format('AkBbczdRlZvChHI_XPhoadjaNxtO')),
})


@register_model
def biformer_tiny(pretrained=False, **kwargs) -> BiFormer:
    model_args = dict(depths=(2, 2, 8, 2), embed_dims=(64, 128, 256, 512))
    return _create_biformer('biformer_tiny', pretrained, **dict(model_args, **kwargs))


@register_model
def biformer_small(pretrained=False, **kwargs) -> BiFormer:
    model_args = dict(depths=(4, 4, 18, 4), embed_dims=(64, 128, 256, 512))
    return _create_biformer('biformer_small', pretrained, **dict(model_args, **kwargs))


@register_model
def biformer_base(pretrained=False, **kwargs) -> BiFormer:
    model_args = dict(depths=(4, 4, 18, 4), embed_dims=(96, 192, 384, 768))
    return _create_biformer('biformer_base', pretrained, **dict(model_args, **kwargs))
