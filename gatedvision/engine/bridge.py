"""The one bridge from timm's model registry to OpenMMLab: ``type='gatedvision.TimmBackbone'``.

mmdet, mmseg and gatedvision's own tasks all use it; it serves any timm model, gatedvision's
backbones included, through ``timm.create_model(..., features_only=True)``.
"""
import difflib
import inspect
import math
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Union

import timm
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from timm.layers import LayerNorm2d
from torch import nn

import gatedvision  # noqa: F401  (registers gatedvision's models in timm)
from gatedvision.backbones._helpers import check_checkpoint, prepare_pretrained
from gatedvision.registry import MODELS

__all__ = ['TimmBackbone', 'check_model_name', 'probe_size_divisor', 'pad_to_multiple', 'compile_backbones']


def check_model_name(model_name: str) -> None:
    """Raise a ValueError naming the closest registered models if ``model_name`` is unknown."""
    if timm.is_model(model_name):
        return
    close = difflib.get_close_matches(model_name, timm.list_models(), n=5, cutoff=0.6)
    hint = f'; closest registered names: {", ".join(close)}' if close else ''
    raise ValueError(f"unknown model name '{model_name}': it is not in timm's registry "
                     f"(gatedvision's models included){hint}")


def _build_meta(model_name: str, **kwargs) -> nn.Module:
    with torch.device('meta'):
        return timm.create_model(model_name, pretrained=False, features_only=True, **kwargs)


def pad_to_multiple(x: torch.Tensor, size_divisor: int, mode: str = 'constant') -> torch.Tensor:
    """``x`` (..., H, W) padded at the bottom and right to multiples of ``size_divisor`` (the name
    mmdet's and mmseg's data preprocessors give it), zeros or ``mode``; the one padding helper of the
    bridge and the task models, which crop their outputs back. ``'reflect'`` falls back to
    ``'replicate'`` where the image is smaller than the padding (reflection needs more pixels)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % size_divisor, (-w) % size_divisor
    if not (ph or pw):
        return x
    if mode == 'reflect' and (ph >= h or pw >= w):
        mode = 'replicate'
    return F.pad(x, (0, pw, 0, ph), mode=mode)


_PROBED: dict = {}  # (model name, model kwargs) -> the size divisor probe_size_divisor found


def probe_size_divisor(model: nn.Module, in_chans: int, max_size: int = 1024) -> int:
    """The multiple of which input H and W must be, found by running the model on the meta device.

    Starts from the largest feature stride and looks for the smallest square size that runs; if the
    next multiple of the stride fails again, that size itself is the divisor (HaloNet: 256).
    """
    stride = max(model.feature_info.reduction())

    def runs(size: int) -> bool:
        try:
            with torch.no_grad():
                model(torch.empty(1, in_chans, size, size, device='meta'))
            return True
        except (AssertionError, RuntimeError, ValueError):
            return False

    for size in range(stride, max_size + 1, stride):
        if runs(size):
            return stride if runs(size + stride) else size
    return stride


@MODELS.register_module()
class TimmBackbone(BaseModule):
    """A timm model as a multi-level backbone for OpenMMLab dense heads.

    Args:
        model_name: timm model name, e.g. ``'halonet26t'``.
        out_indices: feature levels to return, as indices into the model's ``feature_info``
            (negative ones count from the end). Default: the last four levels of stride >= 4, or
            the last block of a plain (single-stride) model.
        pretrained: start from the weights named by the model's pretrained cfg (downloaded once into
            timm's cache). As OpenMMLab's ``init_cfg``, they are an initialisation: loaded by
            :meth:`init_weights`, which the Runner calls when training starts, and never when
            testing or predicting from a checkpoint (nor when training resumes or starts from
            ``load_from``: that checkpoint has every weight), so those need no network.
        checkpoint: local file or URL of a classification checkpoint for this model (the model's
            own layout or any layout its checkpoint filter accepts), loaded as ``pretrained`` is.
            Takes precedence over ``pretrained``; a local file is checked when the model is built.
        frozen_stages: ``-1`` freezes nothing, ``0`` freezes the stem, ``k >= 1`` also every stage
            up to that of the ``k``-th output. Stages come from the model's timm
            ``group_matcher(coarse=True)`` (every gatedvision backbone and most timm models have
            one), output norms included; frozen modules stay in eval mode. Only for a timm model
            without a matcher is the boundary guessed from the order in which parameters are
            registered.
        norm_eval: keep all normalization layers in eval mode while training.
        with_cp: gradient checkpointing (timm's ``set_grad_checkpointing``): blocks are recomputed
            in backward instead of keeping their activations; same gradients, less memory.
        out_norm: norm config applied to every output, e.g. ``dict(type='LN2d')`` (channels-first
            LayerNorm) or ``dict(type='BN')``; None for no norm.
        size_divisor: inputs are zero-padded at the bottom/right to a multiple of this and the
            outputs cropped back to ``ceil(H / stride)``; ``'auto'`` finds the multiple the model
            needs (256 for most HaloNets), ``None`` disables padding.
        in_channels: input channels; timm adapts the first convolution of pretrained weights.
        init_cfg: mmengine init config.
        **model_kwargs: forwarded to ``timm.create_model`` (e.g. ``drop_path_rate``).
    """
    foreign_config_keys = ('out_norm',)  # 'LN2d' is ours, not a registry type; checked when built

    def __init__(self,
                 model_name: str,
                 out_indices: Optional[Sequence[int]] = None,
                 pretrained: bool = False,
                 checkpoint: Optional[str] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 out_norm: Optional[dict] = None,
                 size_divisor: Union[int, str, None] = 'auto',
                 in_channels: int = 3,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None,
                 **model_kwargs):
        super().__init__(init_cfg=init_cfg)
        check_model_name(model_name)
        self.model_name = model_name
        self.in_channels = in_channels
        model_kwargs = dict(model_kwargs, in_chans=in_channels)

        self._model_kwargs = model_kwargs  # to probe the sizes the model takes when one fails
        try:
            meta = _build_meta(model_name, **model_kwargs)
        except TypeError as e:  # a misspelt argument reaches the model class
            bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
            if bad is None:
                raise
            own = [n for n in inspect.signature(TimmBackbone).parameters if n not in ('model_kwargs', 'init_cfg')]
            close = difflib.get_close_matches(bad[1], own, n=1)
            raise ValueError(f"TimmBackbone({model_name!r}): '{bad[1]}' is neither a TimmBackbone argument nor "
                             f"one {model_name} takes" + (f"; did you mean '{close[0]}'?" if close else '')) from None
        levels = [f['reduction'] for f in meta.feature_info.info]  # every level, not just the default ones
        out_indices = self._resolve_out_indices(out_indices, levels)
        if size_divisor == 'auto':
            key = (model_name, repr(sorted(model_kwargs.items())))
            if key not in _PROBED:  # a meta forward or two: seconds for OverLoCK, once a process
                _PROBED[key] = probe_size_divisor(meta, in_channels)
            size_divisor = _PROBED[key]
        self.size_divisor = size_divisor
        del meta

        if checkpoint:
            model_kwargs['pretrained_cfg_overlay'] = self._checkpoint_source(checkpoint)
        self.pretrained, self.checkpoint = bool(pretrained), checkpoint
        self.weights_provided_by: Optional[str] = None  # a checkpoint that will overwrite every weight
        if checkpoint or pretrained:
            prepare_pretrained(model_name, dict(model_kwargs), download=False)  # a local file is checked now
        self.model = timm.create_model(model_name, features_only=True, out_indices=out_indices, **model_kwargs)

        self.out_indices = tuple(out_indices)
        self.out_channels: List[int] = list(self.model.feature_info.channels())
        self.out_strides: List[int] = list(self.model.feature_info.reduction())
        if out_norm is not None:
            self.out_norms = nn.ModuleList(_build_norm(out_norm, c) for c in self.out_channels)
        else:
            self.out_norms = None
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        self._freeze()
        if with_cp:
            target = self.model if hasattr(self.model, 'set_grad_checkpointing') else self._inner_model()
            if not hasattr(target, 'set_grad_checkpointing'):
                raise ValueError(f'{model_name} has no set_grad_checkpointing: it cannot recompute its '
                                 f'blocks; set with_cp=False')
            target.set_grad_checkpointing(True)

    def _resolve_out_indices(self, out_indices, levels: List[int]) -> List[int]:
        n = len(levels)
        if out_indices is None:
            usable = [i for i, r in enumerate(levels) if r >= 4]
            if len({levels[i] for i in usable}) == 1:  # plain (isotropic) model: its last block
                return usable[-1:]
            return usable[-4:]
        out = []
        for i in out_indices:
            if not -n <= i < n:
                raise ValueError(
                    f'out_indices {tuple(out_indices)} out of range for {self.model_name}: it has '
                    f'{n} feature levels (indices 0..{n - 1}, strides {levels})')
            out.append(i % n)
        return out

    @staticmethod
    def _checkpoint_source(checkpoint: str) -> dict:
        if '://' in checkpoint:
            # hf_hub_id would take precedence over a url in timm's source resolution
            return dict(url=checkpoint, hf_hub_id=None, file=None, source='')
        if not os.path.isfile(checkpoint):
            raise FileNotFoundError(f"checkpoint file '{checkpoint}' does not exist")
        check_checkpoint(checkpoint)
        return dict(file=checkpoint, source='')

    def load_pretrained(self) -> None:
        """Load the ``pretrained`` (or ``checkpoint``) weights now, downloading them into the cache
        if they are not there (:class:`WeightsUnavailable` names the ways round when that fails).
        Strictly: a FeatureGetterNet's model takes them in place (its pruned head and final norm
        may be left over); other feature wrappers (timm's FeatureListNet renames modules) get them
        from the full model they were cut from."""
        from timm.models._features import FeatureGetterNet
        kwargs = dict(self._model_kwargs)
        prepare_pretrained(self.model_name, kwargs)  # downloads into the cache, or finds the file there
        overlay, checkpoint = kwargs.get('pretrained_cfg_overlay') or {}, self.checkpoint
        if isinstance(self.model, FeatureGetterNet):
            with torch.device('meta'):
                whole = timm.create_model(self.model_name, pretrained=False, **self._model_kwargs)
            kept = set(self.model.model.state_dict())
            load_pretrained_strictly(self.model.model, self.model_name, self.in_channels,
                                     [k for k in whole.state_dict() if k not in kept], checkpoint, overlay)
            return
        full = timm.create_model(self.model_name, pretrained=False, **self._model_kwargs)
        load_pretrained_strictly(full, self.model_name, self.in_channels, source=checkpoint, overlay=overlay)
        weights, original = full.state_dict(), self._full_model(full)[1]  # its names, no second build
        self.model.load_state_dict({n: weights[original(n)] for n in self.model.state_dict()})

    def _full_model(self, full: Optional[nn.Module] = None):
        """The full timm model behind ``self.model`` (a FeatureGetterNet's own; else ``full``, or
        one built on the meta device) and ``original``: a name in ``self.model`` -> its name there."""
        from timm.models._features import FeatureGetterNet
        if isinstance(self.model, FeatureGetterNet):
            return self.model.model, lambda name: name[len('model.'):] if name.startswith('model.') else name
        if full is None:
            with torch.device('meta'):
                full = timm.create_model(self.model_name, pretrained=False, **self._model_kwargs)
        # FeatureListNet & co. name a top-level Sequential's children 'name_child': map back
        to_orig = {}
        for name, child in full.named_children():
            to_orig[name] = name
            if isinstance(child, nn.Sequential):
                to_orig.update({f'{name}_{c}': f'{name}.{c}' for c, _ in child.named_children()})

        def original(name: str) -> str:
            head, _, rest = name.partition('.')
            return to_orig.get(head, head) + ('.' + rest if rest else '')
        return full, original

    def _inner_model(self) -> nn.Module:
        """The timm model itself (FeatureGetterNet wraps it as ``.model``)."""
        return getattr(self.model, 'model', self.model)

    def group_ids(self, coarse: bool = True) -> Optional[Dict[str, int]]:
        """``{parameter name (in self.model): group}`` from the model's timm ``group_matcher``:
        0 the stem, then one group per stage (``coarse``) or per block, the heads last; the group
        of the i-th output's module under ``'<outi>'``. None if the model has no matcher."""
        from timm.models._manipulate import group_with_matcher
        full, original = self._full_model()
        if not hasattr(full, 'group_matcher'):
            return None
        matcher = full.group_matcher(coarse=coarse)
        names = {n: original(n) for n, _ in self.model.named_parameters()}
        info = self.model.feature_info
        outs = {f'<out{i}>': original(info.module_name(j)) for i, j in enumerate(self.out_indices)}
        ids = group_with_matcher(((v, None) for v in [*names.values(), *outs.values()]), matcher, reverse=True)
        return {**{n: ids[o] for n, o in names.items()}, **{k: ids[o] for k, o in outs.items()}}

    def _freeze(self) -> None:
        if self.frozen_stages < 0:
            return
        if self.frozen_stages > len(self.out_indices):
            raise ValueError(f'frozen_stages={self.frozen_stages} but {self.model_name} has only '
                             f'{len(self.out_indices)} outputs')
        ids = self.group_ids(coarse=True)
        params = list(self.model.named_parameters())
        if ids is not None:
            if self.frozen_stages == 0:  # group 0: the stem
                frozen = [p for n, p in params if ids[n] == 0]
            else:
                last = ids[f'<out{self.frozen_stages - 1}>']
                frozen = [p for n, p in params if ids[n] <= last]
        else:  # no group_matcher: everything registered before the output's module ends
            info = self.model.feature_info

            def in_module(pname: str, module: str) -> bool:
                return f'.{module}.' in f'.{pname}'

            if self.frozen_stages == 0:
                first = info.module_name(self.out_indices[0])
                end = next(i for i, (n, _) in enumerate(params) if in_module(n, first))
            else:
                target = info.module_name(self.out_indices[self.frozen_stages - 1])
                end = max(i for i, (n, _) in enumerate(params) if in_module(n, target)) + 1
            frozen = [p for _, p in params[:end]]
        for p in frozen:
            p.requires_grad_(False)
        self._frozen_modules = [
            m for m in self.model.modules()
            if any(True for _ in m.parameters(recurse=False))
            and not any(p.requires_grad for p in m.parameters(recurse=False))]

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            for m in getattr(self, '_frozen_modules', []):
                m.training = False  # this module alone: a frozen root's children may still train
            if self.norm_eval:
                for m in self.model.modules():
                    if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)):
                        m.eval()
        return self

    def init_weights(self):
        """The pretrained weights (``pretrained`` / ``checkpoint``), then an explicit ``init_cfg``.
        Skipped for the pretrained weights when ``weights_provided_by`` names a checkpoint (the
        runner sets it for ``load_from`` and ``--resume``)."""
        # timm initialises the model itself when it builds it. BaseModule.init_weights would recurse
        # into timm modules that have their own init_weights and re-initialise them, so only the
        # pretrained weights and an explicit init_cfg are applied.
        if self.pretrained or self.checkpoint:
            if self.weights_provided_by:
                print_log(f'{self.model_name}: pretrained weights not loaded: {self.weights_provided_by} '
                          f'provides every weight', logger='current')
            else:
                self.load_pretrained()
                print_log(f'{self.model_name}: loaded pretrained weights '
                          f'({self.checkpoint or "its pretrained cfg"})', logger='current')
        if self.init_cfg is not None:
            initialize(self, self.init_cfg)
        self._is_init = True

    def forward(self, x: torch.Tensor):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'{self.model_name} expects (N, {self.in_channels}, H, W) input, got '
                             f'shape {tuple(x.shape)}; set in_channels to match the data')
        h, w = x.shape[-2:]
        if self.size_divisor:
            x = pad_to_multiple(x, self.size_divisor)
        try:
            feats = self.model(x)
        except (AssertionError, RuntimeError) as e:
            if self.size_divisor:
                raise
            # a size the model cannot take (HaloNet's blocks, window partitions): say which
            need = probe_size_divisor(_build_meta(self.model_name, **self._model_kwargs),
                                      self.in_channels)
            if h % need == 0 and w % need == 0:
                raise
            raise ValueError(f"{self.model_name} needs H and W divisible by {need}, got {h}x{w}; set "
                             f"size_divisor='auto' (or {need}) to pad, or resize the input") from e
        outs = []
        for i, (f, s) in enumerate(zip(feats, self.out_strides)):
            f = f[..., :math.ceil(h / s), :math.ceil(w / s)]
            if self.out_norms is not None:
                f = self.out_norms[i](f)
            # contiguous NCHW, whatever the model's last op left: timm's LayerNorm2d returns
            # channels-last strides (convolutions then keep them), and mmcv's CPU RoIAlign reads
            # such a tensor as if it were NCHW, so Mask R-CNN's RoI heads would see scrambled features
            outs.append(f.contiguous())
        return tuple(outs)


def compile_backbones(model: nn.Module, options: Union[bool, dict, None]) -> List[str]:
    """``torch.compile`` every :class:`TimmBackbone` in ``model``, in place (``nn.Module.compile``:
    state-dict keys, and so checkpoints, stay as they are); returns their names.

    ``options`` is the config's ``compile`` key: ``True`` or the keyword arguments of
    ``torch.compile`` (``dict(backend='inductor', mode='max-autotune')``). The backbone is the
    static, costly part of every task model; heads with per-image Python (detection's box
    assignment), losses and the optimizer step stay eager, so a learning-rate change or a new
    number of boxes does not recompile anything.
    """
    if not options:
        return []
    options = {} if options is True else dict(options)
    names = []
    for name, m in model.named_modules():
        if isinstance(m, TimmBackbone) and getattr(m, '_compiled_call_impl', None) is None:
            m.compile(**options)
            names.append(name)
    return names


def checkpoint_filter(model_name: str):
    """The checkpoint filter of ``model_name``'s module, by timm's convention ``checkpoint_filter_fn``
    (every gatedvision family has one; timm's own models without one need none)."""
    module = sys.modules[timm.models.model_entrypoint(model_name).__module__]
    return getattr(module, 'checkpoint_filter_fn', None)


def _show(keys: List[str]) -> str:
    more = f' (and {len(keys) - 8} more)' if len(keys) > 8 else ''
    return ', '.join(keys[:8]) + more or '-'


def load_pretrained_strictly(target: nn.Module, model_name: str, in_chans: int, allowed_unexpected=(),
                             source: Optional[str] = None, overlay: Optional[dict] = None) -> None:
    """Load ``target.pretrained_cfg``'s weights (updated by ``overlay``) into ``target`` (a full timm model, or the one a
    ``FeatureGetterNet`` holds) with timm's ``load_pretrained`` (sources, filter, input-channel
    adaptation) and fail, naming the keys, unless every weight found its place.

    timm itself loads feature models with ``strict=False`` (it drops the classifier) and only logs
    missing and unexpected keys, so a checkpoint of another architecture would load silently and
    partially. Here torch's ``load_state_dict`` post hook receives the keys that did not match: only
    the classifier's, and ``allowed_unexpected`` (the modules a feature model pruned), may differ.
    """
    cfg = dict(target.pretrained_cfg, **(overlay or {}))
    heads = cfg.get('classifier') or ()
    heads = tuple(h + '.' for h in ((heads,) if isinstance(heads, str) else heads))
    seen = []
    handle = target.register_load_state_dict_post_hook(
        lambda module, keys: seen.append((list(keys.missing_keys), list(keys.unexpected_keys))))
    try:
        timm.models.load_pretrained(target, pretrained_cfg=cfg, num_classes=0, in_chans=in_chans,
                                    filter_fn=checkpoint_filter(model_name), strict=False)
    except RuntimeError as e:  # torch refuses tensors of other shapes even when not strict
        if 'size mismatch' not in str(e):
            raise
        lines = [ln.strip() for ln in str(e).splitlines() if 'size mismatch' in ln]
        raise ValueError(f"checkpoint '{source or 'pretrained'}' does not match {model_name}: "
                         f"{len(lines)} tensor(s) of other shapes: {_show(lines)}") from None
    finally:
        handle.remove()
    if not seen:
        raise ValueError(f"timm found no pretrained weights for {model_name} (its pretrained cfg names no "
                         f"file, url or hub id): pass checkpoint=PATH")
    allowed = set(allowed_unexpected)
    missing = [k for k in seen[-1][0] if not k.startswith(heads)]
    unexpected = [k for k in seen[-1][1] if not k.startswith(heads) and k not in allowed]
    if missing or unexpected:
        raise ValueError(
            f"checkpoint '{source or 'pretrained'}' does not match {model_name}: "
            f"{len(missing)} missing key(s): {_show(missing)}; "
            f"{len(unexpected)} unexpected key(s): {_show(unexpected)}")


def _build_norm(cfg: dict, channels: int) -> nn.Module:
    cfg = dict(cfg)
    kind = cfg.pop('type')
    if kind == 'LN2d':
        return LayerNorm2d(channels, **cfg)
    from mmcv.cnn import build_norm_layer
    from mmengine.registry import MODELS as MMENGINE_MODELS
    if MMENGINE_MODELS.get(kind) is None:
        norms = ['LN2d'] + [n for n in ('BN', 'SyncBN', 'GN', 'LN', 'IN') if MMENGINE_MODELS.get(n) is not None]
        close = difflib.get_close_matches(kind, norms, n=1)
        raise ValueError(f"TimmBackbone out_norm type '{kind}' is not a norm layer"
                         + (f"; did you mean '{close[0]}'?" if close else '') + f' Known: {", ".join(norms)}')
    return build_norm_layer(dict(type=kind, **cfg), channels)[1]
