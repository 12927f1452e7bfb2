"""Layer-wise learning-rate decay for backbones laid out like ConvNeXt (HorNet's dense recipe), and
bf16 mixed precision on any device (:class:`AutocastOptimWrapper`).

HorNet's detection and segmentation configs train with ``LearningRateDecayOptimizerConstructorHorNet``
(the ConvNeXt constructor): parameters deeper in the backbone get a larger learning rate,
``lr * decay_rate ** (num_layers + 1 - layer_id)``, where ``layer_id`` comes from the parameter's
``downsample_layers.i`` / ``stages.i.j`` position, and everything outside those (necks, heads, output
norms) has ``layer_id = num_layers + 1`` (scale 1). 1-D parameters and biases get no weight decay.
This is the same rule for mmengine, found inside :class:`~gatedvision.TimmBackbone` whatever its
prefix, so a config only names the constructor and the three numbers the paper used.

For every other backbone ``decay_type='block_wise'`` takes the depth from the model itself: one
layer per group of its timm ``group_matcher`` (stem, then each block), as timm's
``param_groups_layer_decay`` counts them, so ``num_layers`` is not needed.
"""
import functools
import re
from contextlib import contextmanager
from typing import List, Optional

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, is_distributed
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

from gatedvision.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS

_POSITION = re.compile(r'(?:^|\.)(downsample_layers|stages)\.(\d+)(?:\.(\d+))?')


def layer_id(name: str, num_layers: int, decay_type: str) -> int:
    """The decay depth of parameter ``name`` (ConvNeXt / HorNet rule; 0 is the stem)."""
    m = _POSITION.search(name)
    if m is None or not name.startswith('backbone.'):
        return num_layers + 1
    kind, stage, block = m.group(1), int(m.group(2)), m.group(3)
    if decay_type == 'stage_wise':
        return 0 if kind == 'downsample_layers' else stage + 1
    # layer_wise: the third stage (the deep one) is split into pairs of blocks
    if stage == 3:
        return num_layers
    if kind == 'downsample_layers':
        return 0 if stage == 0 else stage + 1
    if stage < 2:
        return stage + 1
    return min(3 + int(block or 0) // 2, num_layers - 1)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise' | 'layer_wise', num_layers=6)``
    (the ConvNeXt rule of HorNet's configs) or ``dict(decay_rate=0.9, decay_type='block_wise')``.

    ``num_layers`` is the number the original configs give (6 for stage-wise, 12 for layer-wise);
    the scale of a parameter at depth ``i`` is ``decay_rate ** (num_layers + 1 - i)``. With
    ``block_wise`` the depths are the groups of each TimmBackbone's ``group_matcher`` and
    ``num_layers`` is their count.
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module: Optional[float] = None) -> None:
        cfg = dict(self.paramwise_cfg)
        decay_type = cfg.get('decay_type', 'layer_wise')
        needed = {'decay_rate'} | ({'num_layers'} if decay_type != 'block_wise' else set())
        unknown = set(cfg) - {'decay_rate', 'decay_type', 'num_layers'}
        if unknown or not needed <= set(cfg):
            raise ValueError(
                f'LayerDecayOptimWrapperConstructor: paramwise_cfg needs {" and ".join(sorted(needed))} '
                f'(and optionally decay_type), got {sorted(self.paramwise_cfg)}')
        if decay_type not in ('layer_wise', 'stage_wise', 'block_wise'):
            raise ValueError(f"decay_type must be 'layer_wise', 'stage_wise' or 'block_wise', got {decay_type!r}")
        rate = float(cfg['decay_rate'])
        if decay_type == 'block_wise':
            depth_of, num_layers = self._block_depths(module, prefix)
        else:
            num_layers = int(cfg['num_layers'])
            names = [n for n, _ in module.named_parameters(prefix=prefix)]
            if not any(_POSITION.search(n) and n.startswith('backbone.') for n in names):
                raise ValueError(
                    f"decay_type={decay_type!r} is the ConvNeXt/HorNet rule and needs a backbone laid out as "
                    f"'downsample_layers.i' / 'stages.i.j'; this model has none: use decay_type='block_wise'")

            def depth_of(name):
                return layer_id(name, num_layers, decay_type)
        groups = {}
        for name, param in module.named_parameters(prefix=prefix):
            if not param.requires_grad:
                continue
            no_decay = param.ndim == 1 or name.endswith('.bias')
            depth = depth_of(name)
            key = (depth, no_decay)
            if key not in groups:
                scale = rate ** (num_layers + 1 - depth)
                groups[key] = dict(params=[], lr=self.base_lr * scale, lr_scale=scale,
                                   weight_decay=0. if no_decay else self.base_wd)
            groups[key]['params'].append(param)
        MMLogger.get_current_instance().info(
            'layer decay: ' + ', '.join(f'depth {d}{" (no wd)" if nd else ""}: {len(g["params"])} '
                                        f'tensors x{g["lr_scale"]:.4f}'
                                        for (d, nd), g in sorted(groups.items())))
        params.extend(groups.values())

    @staticmethod
    def _block_depths(module: nn.Module, prefix: str):
        """Depth of every parameter from the group_matcher of each TimmBackbone inside ``module``:
        the backbone's groups are depths 0..n (the deepest scaled by ``decay_rate``); parameters
        outside a backbone get n + 1, the base lr."""
        from gatedvision.engine.bridge import TimmBackbone
        depths, num_layers = {}, 0
        for mname, m in module.named_modules(prefix=prefix):
            if not isinstance(m, TimmBackbone):
                continue
            ids = m.group_ids(coarse=False)
            if ids is None:
                raise ValueError(f"decay_type='block_wise': {m.model_name} has no timm group_matcher to "
                                 f"count its blocks with; use a constant learning rate (no constructor)")
            ids = {n: i for n, i in ids.items() if not n.startswith('<')}
            num_layers = max(num_layers, max(ids.values()))
            depths.update({f'{mname}.model.{n}': i for n, i in ids.items()})
        if not depths:
            raise ValueError("decay_type='block_wise' needs a gatedvision.TimmBackbone in the model")
        return (lambda name: depths.get(name, num_layers + 1)), num_layers


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Mixed precision without loss scaling: each forward under ``torch.autocast`` in bfloat16 on
    the model's device, the CPU included (``tools/train.py --amp`` there). mmengine's
    ``AmpOptimWrapper`` needs CUDA for its fp16 ``GradScaler``; bf16 keeps fp32's exponent range,
    so gradients need no scaling and the weights and optimizer state stay fp32."""

    def __init__(self, *args, dtype: str = 'bfloat16', **kwargs):
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(f"AutocastOptimWrapper: dtype={dtype!r}: only 'bfloat16' trains without loss "
                             f"scaling; for float16 use mmengine's AmpOptimWrapper (CUDA)")
        super().__init__(*args, **kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device, dtype=self.cast_dtype):
            yield


def on_any_rank(flag: bool) -> bool:
    """``flag`` or-ed over the processes of a distributed run (every rank must call it)."""
    if not is_distributed():
        return flag
    t = torch.tensor([float(flag)])
    all_reduce(t, op='max')
    return bool(t.item())


class NonFiniteGuard:
    """Mixed into the optimizer wrapper ResilientRunner builds (whatever its class: OptimWrapper,
    AmpOptimWrapper, AutocastOptimWrapper): an update whose loss is not finite, on any rank of a
    distributed run, back-propagates zero instead (every rank's gradient all-reduce still happens)
    and skips the optimizer step; :class:`~gatedvision.engine.hooks.NonFiniteLossHook` then stops training or counts the
    skip."""

    nonfinite = (False, False)  # (on this rank, on any rank) for the last update
    _skip_step = False

    def update_params(self, loss, step_kwargs=None, zero_kwargs=None) -> None:
        here = not bool(torch.isfinite(loss.detach()).all())
        self.nonfinite = (here, on_any_rank(here))
        if self.nonfinite[1]:
            self._skip_step = True  # the step that ends this accumulation window
            loss = sum(p.sum() * 0 for g in self.optimizer.param_groups for p in g['params'] if p.requires_grad)
        super().update_params(loss, step_kwargs, zero_kwargs)

    def step(self, **kwargs) -> None:
        if self._skip_step:
            self._skip_step = False
            return
        super().step(**kwargs)


@functools.lru_cache(maxsize=None)
def guarded(cls: type) -> type:
    """``cls`` (an OptimWrapper class) with :class:`NonFiniteGuard` mixed in."""
    return type(f'Guarded{cls.__name__}', (NonFiniteGuard, cls), {'__module__': __name__})
