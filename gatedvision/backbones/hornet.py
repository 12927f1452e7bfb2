"""HorNet: recursive gated convolutions (gⁿConv).

Paper: "HorNet: Efficient High-Order Spatial Interactions with Recursive Gated Convolutions",
Rao et al., NeurIPS 2022, arXiv 2207.14284.
Original code and weights: https://github.com/raoyongming/HorNet (MIT).
OpenMMLab's converted weights: mmpretrain ``configs/hornet`` (Apache-2.0).

Module names follow the original, so its checkpoints (``{'model': state_dict}``) load unchanged;
``checkpoint_filter_fn`` also reads mmpretrain's renamed layout and resizes the global filters of
the GF variants to the resolution the model is built for.
"""
import re
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm2d, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn

from ._helpers import (add_missing, check_image_input, is_other_head, prepare_features, prepare_pretrained, resize_like,
                       run_blocks, unwrap_state_dict)

__all__ = ['HorNet']


class GlobalLocalFilter(nn.Module):
    """The GF spatial mixer: half the channels through a 3×3 depthwise conv, half through a global
    filter (a learnable complex weight multiplied in the 2D Fourier domain, computed in fp32).

    The weight is trained for one map size (``h`` × ``w`` rFFT bins); other sizes resize it
    bilinearly at run time, as the original does.
    """

    def __init__(self, dim: int, h: int = 14, w: int = 8):
        super().__init__()
        self.dw = nn.Conv2d(dim // 2, dim // 2, kernel_size=3, padding=1, bias=False, groups=dim // 2)
        self.complex_weight = nn.Parameter(torch.empty(dim // 2, h, w, 2))
        trunc_normal_(self.complex_weight, std=.02)
        self.pre_norm = LayerNorm2d(dim, eps=1e-6)
        self.post_norm = LayerNorm2d(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_norm(x)
        x1, x2 = torch.chunk(x, 2, dim=1)
        x1 = self.dw(x1)
        B, C, H, W = x2.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            f = torch.fft.rfft2(x2.float(), dim=(2, 3), norm='ortho')
            weight = self.complex_weight.float()
            if weight.shape[1:3] != f.shape[2:4]:
                weight = F.interpolate(weight.permute(3, 0, 1, 2), size=f.shape[2:4],
                                       mode='bilinear', align_corners=True).permute(1, 2, 3, 0)
            f = f * torch.view_as_complex(weight.contiguous())
            x2 = torch.fft.irfft2(f, s=(H, W), dim=(2, 3), norm='ortho').to(x1.dtype)
        # channels interleave: (x1_0, x2_0, x1_1, x2_1, ...) as in the original
        x = torch.stack([x1, x2], dim=2).reshape(B, 2 * C, H, W)
        return self.post_norm(x)


class GnConv(nn.Module):
    """Recursive gated convolution of order n (paper Eq. 3–4).

    ``[p0, q] = proj_in(x)``; ``q' = s · DW(q)`` split into ``n`` parts of widths
    ``C / 2^(n-1-k)``; ``p1 = p0 ⊙ q'0``, ``p(k+1) = pws[k](pk) ⊙ q'k``; ``out = proj_out(pn)``.
    """

    def __init__(self, dim: int, order: int = 5, gf_size: Optional[Tuple[int, int]] = None,
                 scale: float = 1.0):
        super().__init__()
        self.order = order
        self.dims = [dim // 2 ** i for i in range(order)][::-1]
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        width = sum(self.dims)
        if gf_size is None:
            self.dwconv = nn.Conv2d(width, width, kernel_size=7, padding=3, groups=width)
        else:
            self.dwconv = GlobalLocalFilter(width, *gf_size)
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.pws = nn.ModuleList(
            nn.Conv2d(self.dims[i], self.dims[i + 1], 1) for i in range(order - 1))
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, q = torch.split(self.proj_in(x), (self.dims[0], sum(self.dims)), dim=1)
        gates = torch.split(self.dwconv(q) * self.scale, self.dims, dim=1)
        x = p * gates[0]
        for pw, gate in zip(self.pws, gates[1:]):
            x = pw(x) * gate
        return self.proj_out(x)


class Block(nn.Module):
    """``x + γ1·gⁿConv(LN(x))`` then ``x + γ2·MLP(LN(x))`` (ConvNeXt-style, layer scale)."""

    def __init__(self, dim: int, order: int, gf_size=None, scale: float = 1 / 3,
                 drop_path: float = 0., ls_init_value: float = 1e-6):
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-6)
        self.gnconv = GnConv(dim, order, gf_size, scale)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma1 = nn.Parameter(ls_init_value * torch.ones(dim)) if ls_init_value > 0 else None
        self.gamma2 = nn.Parameter(ls_init_value * torch.ones(dim)) if ls_init_value > 0 else None
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gnconv(self.norm1(x))
        if self.gamma1 is not None:
            y = y * self.gamma1.view(-1, 1, 1)
        x = x + self.drop_path(y)
        y = self.pwconv2(self.act(self.pwconv1(self.norm2(x.permute(0, 2, 3, 1)))))
        if self.gamma2 is not None:
            y = y * self.gamma2
        return x + self.drop_path(y.permute(0, 3, 1, 2))  # (B, H, W, C) -> (B, C, H, W)


class HorNet(nn.Module):
    """HorNet.

    Args:
        in_chans: input channels.
        num_classes: classifier outputs (0 for none).
        global_pool: ``'avg'`` or ``''``.
        depths: blocks per stage.
        base_dim: channels of stage 1; stage i has ``base_dim * 2**i``.
        orders: gⁿConv order per stage.
        gf_stages: per stage, whether the spatial mixer is the global-local filter (GF variants:
            stages 3 and 4) instead of the 7×7 depthwise conv.
        img_size: input size the global filters are built for (their rFFT grid at each stage);
            other sizes still run (the filters are resized on the fly), and checkpoints trained
            at another size are resized when loaded.
        scale: ``s``, the gate scale.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, linearly increasing over blocks.
        ls_init_value: layer-scale init.
        head_init_scale: classifier init scale.
        dense_norms: add a channels-first LayerNorm per stage output (``norm0``..``norm3``) as the
            original detection/segmentation backbone does; used by ``features_only``.
    """

    def __init__(self, in_chans: int = 3, num_classes: int = 1000, global_pool: str = 'avg',
                 depths: Sequence[int] = (2, 3, 18, 2), base_dim: int = 64,
                 orders: Sequence[int] = (2, 3, 4, 5),
                 gf_stages: Sequence[bool] = (False, False, False, False),
                 img_size: Union[int, Tuple[int, int]] = 224,
                 scale: float = 1 / 3, drop_rate: float = 0., drop_path_rate: float = 0.,
                 ls_init_value: float = 1e-6, head_init_scale: float = 1.,
                 dense_norms: bool = False):
        super().__init__()
        dims = [base_dim * 2 ** i for i in range(4)]
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.drop_rate = drop_rate
        self.num_features = self.head_hidden_size = dims[-1]

        self.downsample_layers = nn.ModuleList([
            nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNorm2d(dims[0], eps=1e-6))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm2d(dims[i], eps=1e-6), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)))

        img_h, img_w = (img_size, img_size) if isinstance(img_size, int) else img_size
        # rFFT grid of the stage's map: (H, W // 2 + 1); (14, 8) and (7, 4) at 224
        gf_sizes = [(img_h // (4 * 2 ** i), img_w // (4 * 2 ** i) // 2 + 1) if gf else None
                    for i, gf in enumerate(gf_stages)]
        dpr = [drop_path_rate * i / max(sum(depths) - 1, 1) for i in range(sum(depths))]
        self.stages = nn.ModuleList()
        self.feature_info = []
        cur = 0
        for i in range(4):
            self.stages.append(nn.Sequential(*[
                Block(dims[i], orders[i], gf_sizes[i], scale, dpr[cur + j], ls_init_value)
                for j in range(depths[i])]))
            cur += depths[i]
            self.feature_info.append(dict(num_chs=dims[i], reduction=4 * 2 ** i, module=f'stages.{i}'))
        self.dense_norms = dense_norms
        if dense_norms:
            for i in range(4):
                self.add_module(f'norm{i}', LayerNorm2d(dims[i], eps=1e-6))

        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.grad_checkpointing = False
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()

        self.apply(self._init_weights)
        if isinstance(self.head, nn.Linear):
            self.head.weight.data.mul_(head_init_scale)
            self.head.bias.data.mul_(head_init_scale)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'complex_weight'}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Stem, then stage i = its downsampling layer, its blocks and its dense output norm."""
        return dict(stem=r'^downsample_layers\.0\.', blocks=[
            (r'^downsample_layers\.(\d+)', None if coarse else (0,)),  # with the stage's first block
            (r'^stages\.(\d+)' if coarse else r'^stages\.(\d+)\.(\d+)', None),
            (r'^norm(\d+)\.', None if coarse else (99999,)),  # 99999: with the stage's last block
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

    def _check_input(self, x: torch.Tensor) -> None:
        check_image_input(x, self.downsample_layers[0][0].in_channels, 32, 'HorNet')

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ):
        """Stage outputs; ``norm=True`` applies the dense per-stage norms (``dense_norms``)."""
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        self._check_input(x)
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        intermediates = []
        last = max_index if stop_early else len(self.stages) - 1
        for i in range(last + 1):
            x = run_blocks(self.stages[i], self.downsample_layers[i](x), checkpointing=self.grad_checkpointing)
            if i in take_indices:
                intermediates.append(getattr(self, f'norm{i}')(x) if norm and self.dense_norms else x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1,
                                  prune_norm: bool = False, prune_head: bool = True):
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[:max_index + 1]
        self.downsample_layers = self.downsample_layers[:max_index + 1]
        if self.dense_norms:
            for i in range(max_index + 1, 4):
                delattr(self, f'norm{i}')
        # the final LayerNorm acts on the pooled vector: no use to intermediates
        self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        for down, stage in zip(self.downsample_layers, self.stages):
            x = run_blocks(stage, down(x), checkpointing=self.grad_checkpointing)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == 'avg':
            x = self.norm(x.mean((-2, -1)))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict, model: HorNet):
    """Original (``{'model': ...}``) or mmpretrain (``{'state_dict': {'backbone.*', 'head.fc.*'}}``)
    layouts to this model's; GF weights resized to the model's filter size; dense norms the
    checkpoint lacks start as identity (weight 1, bias 0), as in the original dense backbone."""
    state_dict = unwrap_state_dict(state_dict)
    target = model.state_dict()
    out = {}
    for k, v in state_dict.items():
        if k.startswith('backbone.'):  # mmpretrain
            k = k[len('backbone.'):]
            k = re.sub(r'\.gnconv\.projs\.', '.gnconv.pws.', k)
            k = re.sub(r'\.(gamma[12])\.weight$', r'.\1', k)
            k = re.sub(r'^norm3\.', 'norm.', k)
        elif k.startswith('head.fc.'):
            k = 'head.' + k[len('head.fc.'):]
        elif k.startswith('data_preprocessor'):
            continue
        if k.endswith('complex_weight') and k in target:
            v = resize_like(v, target[k])
        if is_other_head(k, v, target):
            continue
        out[k] = v
    add_missing(out, target, [f'norm{i}.' for i in range(4)])
    return out


def _create_hornet(variant: str, pretrained: bool = False, **kwargs) -> HorNet:
    prepare_features(variant, kwargs)
    if pretrained:
        prepare_pretrained(variant, kwargs)
    return build_model_with_cfg(
        HorNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), norm=True),
        **kwargs)


def _cfg(url: str = '', **kwargs):
    return {
        'url': url, 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7),
        'crop_pct': 0.875, 'interpolation': 'bicubic', 'mean': (0.485, 0.456, 0.406),
        'std': (0.229, 0.224, 0.225), 'first_conv': 'downsample_layers.0.0',
        'classifier': 'head', 'license': 'mit', 'paper_ids': 'arXiv:2207.14284',
        'origin_url': 'https://github.com/raoyongming/HorNet', **kwargs,
    }


_TSINGHUA = 'https://cloud.tsinghua.edu.cn/f/{}/?dl=1'
_MMPRETRAIN = 'https://download.openmmlab.com/mmclassification/v0/hornet/{}.pth'
# The 22k head size is not published; 11221 (ImageNet-21K-P fall11) fits the repo's
# in1k_to_21k_map.pth (largest index 10458) and the published 209M/211M/216M (derived).
_IN22K = dict(num_classes=11221)

default_cfgs = generate_default_cfgs({
    # the authors' weights first (Tsinghua Cloud, {'model': ...}); then OpenMMLab's conversions
    'hornet_tiny_7x7.in1k': _cfg(_TSINGHUA.format('bac9690c72944d19aca1')),
    'hornet_tiny_7x7.mmpretrain_in1k': _cfg(_MMPRETRAIN.format('hornet-tiny_3rdparty_in1k_20220915-0e8eedff'), license='apache-2.0'),
    'hornet_tiny_gf.in1k': _cfg(_TSINGHUA.format('460e759c82324ea6bfa3')),
    'hornet_tiny_gf.mmpretrain_in1k': _cfg(_MMPRETRAIN.format('hornet-tiny-gf_3rdparty_in1k_20220915-4c35a66b'), license='apache-2.0'),
    'hornet_small_7x7.in1k': _cfg(_TSINGHUA.format('8ef64277da0e469ea857')),
    'hornet_small_7x7.mmpretrain_in1k': _cfg(_MMPRETRAIN.format('hornet-small_3rdparty_in1k_20220915-5935f60f'), license='apache-2.0'),
    'hornet_small_gf.in1k': _cfg(_TSINGHUA.format('959603ca287d4c09ad49')),
    'hornet_small_gf.mmpretrain_in1k': _cfg(_MMPRETRAIN.format('hornet-small-gf_3rdparty_in1k_20220915-649ca492'), license='apache-2.0'),
    'hornet_base_7x7.in1k': _cfg(_TSINGHUA.format('13a748487711492e9704')),
    'hornet_base_7x7.mmpretrain_in1k': _cfg(_MMPRETRAIN.format('hornet-base_3rdparty_in1k_20220915-a06176bb'), license='apache-2.0'),
    'hornet_base_gf.in1k': _cfg(_TSINGHUA.format('c212d1d8a3914b47a5c1')),
    'hornet_base_gf.mmpretrain_in1k': _cfg(_MMPRETRAIN.format('hornet-base-gf_3rdparty_in1k_20220915-82c06fa7'), license='apache-2.0'),
    'hornet_large_7x7.in22k': _cfg(_TSINGHUA.format('c2fc23caae084a3aa73d'), **_IN22K),
    'hornet_large_7x7.mmpretrain_in22k': _cfg(_MMPRETRAIN.format('hornet-large_3rdparty_in21k_20220909-9ccef421'), license='apache-2.0', **_IN22K),
    'hornet_large_gf.in22k': _cfg(_TSINGHUA.format('8600206ebdfa485f98d0'), **_IN22K),
    'hornet_large_gf.mmpretrain_in22k': _cfg(_MMPRETRAIN.format('hornet-large-gf_3rdparty_in21k_20220909-3aea3b61'), license='apache-2.0', **_IN22K),
    'hornet_large_gf_img384.in22k': _cfg(_TSINGHUA.format('eec48d5eca5a48d98fd2'), input_size=(3, 384, 384), pool_size=(12, 12), crop_pct=1.0, **_IN22K),
    'hornet_large_gf_img384.mmpretrain_in22k': _cfg(_MMPRETRAIN.format('hornet-large-gf384_3rdparty_in21k_20220909-80894290'), input_size=(3, 384, 384), pool_size=(12, 12), crop_pct=1.0, license='apache-2.0', **_IN22K),
})

_GF = (False, False, True, True)


@register_model
def hornet_tiny_7x7(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=64)
    return _create_hornet('hornet_tiny_7x7', pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_tiny_gf(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=64, gf_stages=_GF)
    return _create_hornet('hornet_tiny_gf', pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_small_7x7(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=96)
    return _create_hornet('hornet_small_7x7', pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_small_gf(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=96, gf_stages=_GF)
    return _create_hornet('hornet_small_gf', pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_base_7x7(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=128)
    return _create_hornet('hornet_base_7x7', pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_base_gf(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=128, gf_stages=_GF)
    return _create_hornet('hornet_base_gf', pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_large_7x7(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=192)
    return _create_hornet('hornet_large_7x7', pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_large_gf(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=192, gf_stages=_GF)
    return _create_hornet('hornet_large_gf', pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_large_gf_img384(pretrained=False, **kwargs) -> HorNet:
    model_args = dict(base_dim=192, gf_stages=_GF, img_size=384)
    return _create_hornet('hornet_large_gf_img384', pretrained, **dict(model_args, **kwargs))
