"""ConViT for dense prediction: gated positional self-attention at any input size.

Paper: "ConViT: Improving Vision Transformers with Soft Convolutional Inductive Biases", d'Ascoli
et al., ICML 2021, arXiv 2103.10697. Original code: https://github.com/facebookresearch/convit
(Apache-2.0). Weights: timm's ``convit_{tiny,small,base}.fb_in1k``, loaded unchanged (same keys).

timm's ConViT is fixed to 224 (square relative-position grid, fixed position embedding) and keeps
an N×N×3 relative-index tensor per GPSA layer. Here:

- any H×W multiple of 16 (the bridge pads other sizes): the relative offsets of an H×W grid, the
  position embedding resampled to it;
- the positional attention ``softmax(pos_proj(r_ij))`` does not depend on the image, so it is
  computed once per layer and forward for the whole batch from three N×N offset maps cached per
  grid size and shared by all layers (timm materialises it per image);
- the content attention runs fused (``scaled_dot_product_attention``), using
  ``A·V = (1 − σ(λ)) softmax(QKᵀ/√d)·V + σ(λ) softmax(pos)·V`` (both softmaxes sum to one, so
  the original row renormalisation is the identity).

Outputs equal timm's ``convit_*`` at 224 with the same weights (to float rounding).
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, PatchEmbed, resample_abs_pos_embed, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn

from ._helpers import prepare_features, prepare_pretrained, run_blocks

__all__ = ['ConViTDense']

_OFFSETS: Dict[Tuple, torch.Tensor] = {}


def relative_offsets(h: int, w: int, device, dtype) -> torch.Tensor:
    """(3, N, N) offsets (δx, δy, δx² + δy²) from each patch to each other of an h×w grid, cached
    per grid size and device (shared by every GPSA layer)."""
    key = (h, w, device, dtype)
    if key in _OFFSETS:
        return _OFFSETS[key]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=dtype, device=device),
                            torch.arange(w, dtype=dtype, device=device), indexing='ij')
    xs, ys = xs.flatten(), ys.flatten()
    dx = xs[None, :] - xs[:, None]
    dy = ys[None, :] - ys[:, None]
    offsets = torch.stack([dx, dy, dx ** 2 + dy ** 2])
    if not (torch.compiler.is_compiling() or torch.compiler.is_exporting()):  # traced: a graph's, not a tensor
        if len(_OFFSETS) > 8:
            _OFFSETS.clear()
        _OFFSETS[key] = offsets
    return offsets


class GPSA(nn.Module):
    """Gated positional self-attention (paper Eq. 5): a per-head gate σ(λ_h) blends content
    attention with positional attention over relative offsets."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, proj_drop: float = 0.):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qk = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.pos_proj = nn.Linear(3, num_heads)
        self.proj_drop = nn.Dropout(proj_drop)
        self.gating_param = nn.Parameter(torch.ones(num_heads))

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        heads = self.num_heads
        q, k = self.qk(x).reshape(b, n, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
        v = self.v(x).reshape(b, n, heads, c // heads).transpose(1, 2)     # (B, heads, N, d)
        offsets = relative_offsets(*grid, x.device, x.dtype)              # (3, N, N)
        # (heads, N, N): the same for every image of the batch
        pos = torch.einsum('hk,knm->hnm', self.pos_proj.weight, offsets) + self.pos_proj.bias[:, None, None]
        gate = torch.sigmoid(self.gating_param).view(1, heads, 1, 1)
        out = (1 - gate) * F.scaled_dot_product_attention(q, k, v, scale=self.scale) \
            + gate * (pos.softmax(-1) @ v)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


class MHSA(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, proj_drop: float = 0.):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, grid=None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4., qkv_bias: bool = False,
                 proj_drop: float = 0., drop_path: float = 0., use_gpsa: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = (GPSA if use_gpsa else MHSA)(dim, num_heads, qkv_bias, proj_drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=proj_drop)

    def forward(self, x, grid):
        x = x + self.drop_path(self.attn(self.norm1(x), grid))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ConViTDense(nn.Module):
    """ConViT for any input size (multiples of the patch size).

    Args:
        img_size: size the position embedding is trained for.
        patch_size / in_chans / num_classes / global_pool: as timm's ConVit.
        embed_dim: per-head width (×heads), as timm's ConVit.
        depth / num_heads / mlp_ratio / qkv_bias: as timm's ConVit.
        local_up_to_layer: GPSA blocks before the class token is inserted (10 as released).
        drop_rate / proj_drop_rate / drop_path_rate: as in timm.
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3,
                 num_classes: int = 1000, global_pool: str = 'token', embed_dim: int = 48,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4., qkv_bias: bool = False,
                 local_up_to_layer: int = 10, drop_rate: float = 0., proj_drop_rate: float = 0.,
                 drop_path_rate: float = 0.):
        super().__init__()
        embed_dim *= num_heads
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.in_chans = in_chans
        self.patch_size = patch_size
        self.local_up_to_layer = local_up_to_layer
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim, strict_img_size=False)
        self.grid = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], embed_dim))
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, proj_drop_rate, dpr[i], i < local_up_to_layer)
            for i in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.grad_checkpointing = False
        self.feature_info = [dict(num_chs=embed_dim, reduction=patch_size, module=f'blocks.{i}') for i in range(depth)]
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        trunc_normal_(self.pos_embed, std=.02)
        trunc_normal_(self.cls_token, std=.02)
        self.apply(self._init_weights)
        for m in self.modules():
            if isinstance(m, GPSA):
                self._local_init(m)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @staticmethod
    @torch.no_grad()
    def _local_init(m: GPSA, locality_strength: float = 1.):
        """ConViT's local init: v = identity, each head's positional attention centred at its own
        offset on a √heads × √heads grid (a soft convolution)."""
        m.v.weight.copy_(torch.eye(m.v.weight.shape[0]))
        k = int(m.num_heads ** .5)
        center = (k - 1) / 2 if k % 2 == 0 else k // 2
        for h1 in range(k):
            for h2 in range(k):
                pos = h1 + k * h2
                m.pos_proj.weight[pos, 2] = -1
                m.pos_proj.weight[pos, 1] = 2 * (h1 - center)
                m.pos_proj.weight[pos, 0] = 2 * (h2 - center)
        m.pos_proj.weight.mul_(locality_strength)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'pos_embed', 'cls_token'}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """The embedding (patches, position, class token) as the stem, then one group per block."""
        return dict(stem=r'^cls_token|^pos_embed|^patch_embed',
                    blocks=[(r'^blocks\.(\d+)', None), (r'^norm\.', (99999,))])

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
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f'ConViT expects (N, {self.in_chans}, H, W) input, got {tuple(x.shape)}')
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p or min(h, w) < p:
            raise ValueError(f'ConViT needs H and W to be multiples of {p}, got {h}x{w}; pad the input '
                             f'(gatedvision.TimmBackbone does, size_divisor={p})')
        x = self.patch_embed(x)                                           # (B, N, C)
        grid = (h // p, w // p)
        pos = self.pos_embed
        if grid != tuple(self.grid):
            pos = resample_abs_pos_embed(pos, list(grid), list(self.grid), num_prefix_tokens=0)
        return x + pos, grid

    def _run(self, x, indices=None, norm=False):
        x, grid = self._embed(x)
        feats = []
        for i, blk in enumerate(self.blocks):
            if i == self.local_up_to_layer:
                x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
            x = run_blocks((blk,), x, grid, checkpointing=self.grad_checkpointing)
            if indices is not None and i in indices:
                y = self.norm(x) if norm else x
                y = y[:, 1:] if i >= self.local_up_to_layer else y   # strip the class token
                feats.append(y.transpose(1, 2).reshape(x.shape[0], -1, *grid))
        return x, feats

    def forward_intermediates(self, x, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False):
        """Block outputs as (B, C, H/16, W/16) maps (class token stripped); ``norm`` applies the final
        LayerNorm."""
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        take_indices, _ = feature_take_indices(len(self.blocks), indices)
        x, feats = self._run(x, set(take_indices), norm)
        if intermediates_only:
            return feats
        return self.norm(x), feats

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True):
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[:max_index + 1]
        if max_index < self.local_up_to_layer:
            self.local_up_to_layer = len(self.blocks) + 1  # the class token would come after: unused
            del self.cls_token
            self.cls_token = None
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x):
        return self.norm(self._run(x)[0])

    def forward_head(self, x, pre_logits: bool = False):
        if self.global_pool:
            x = x[:, 1:].mean(1) if self.global_pool == 'avg' else x[:, 0]
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def _create(variant: str, pretrained: bool = False, **kwargs):
    prepare_features(variant, kwargs, dense_norms=False)
    if pretrained:
        prepare_pretrained(variant, kwargs)
    return build_model_with_cfg(ConViTDense, variant, pretrained,
                                feature_cfg=dict(out_indices=(-1,), norm=True), **kwargs)


def _cfg(hf_hub_id: str, **kwargs):
    return {
        'hf_hub_id': hf_hub_id, 'num_classes': 1000, 'input_size': (3, 224, 224),
        'min_input_size': (3, 16, 16), 'pool_size': None, 'crop_pct': 0.875, 'interpolation': 'bicubic',
        'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225), 'first_conv': 'patch_embed.proj',
        'classifier': 'head', 'license': 'apache-2.0', 'paper_ids': 'arXiv:2103.10697',
        'origin_url': 'https://github.com/facebookresearch/convit', **kwargs,
    }


default_cfgs = generate_default_cfgs({
    # timm's weights, unchanged
    'convit_tiny_dense.fb_in1k': _cfg('timm/convit_tiny.fb_in1k'),
    'convit_small_dense.fb_in1k': _cfg('timm/convit_small.fb_in1k'),
    'convit_base_dense.fb_in1k': _cfg('timm/convit_base.fb_in1k'),
})


@register_model
def convit_tiny_dense(pretrained=False, **kwargs) -> ConViTDense:
    return _create('convit_tiny_dense', pretrained, **dict(dict(embed_dim=48, num_heads=4), **kwargs))


@register_model
def convit_small_dense(pretrained=False, **kwargs) -> ConViTDense:
    return _create('convit_small_dense', pretrained, **dict(dict(embed_dim=48, num_heads=9), **kwargs))


@register_model
def convit_base_dense(pretrained=False, **kwargs) -> ConViTDense:
    return _create('convit_base_dense', pretrained, **dict(dict(embed_dim=48, num_heads=16), **kwargs))
