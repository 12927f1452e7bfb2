"""Config loading for the tools: clear errors that name the config file and the key."""
import difflib
import inspect
import os
import re
from importlib import import_module
from typing import Iterator, List, Optional, Tuple

from mmengine import registry as root_registry
from mmengine.config import Config
from mmengine.registry import Registry

__all__ = ['ConfigError', 'load_config', 'check_types', 'check_arguments', 'accepted_arguments', 'compile_backend',
           'add_compile_argument']


class ConfigError(ValueError):
    """A config that cannot work; the message names the file and the key."""


def load_config(path: str, options: Optional[dict] = None) -> Config:
    """Read ``path``, merge ``--cfg-options`` and check that every ``type`` is registered."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        cfg = Config.fromfile(path)
    except FileNotFoundError as e:  # a _base_ file
        raise ConfigError(f"config '{path}': {e}") from None
    if options:
        cfg.merge_from_dict(options)
    check_types(cfg, path)
    check_top_level_keys(cfg, path)
    from torch.utils.data import DataLoader
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if isinstance(cfg.get(key), dict) and 'type' not in cfg[key]:  # mmengine builds a DataLoader
            check_arguments(key, cfg[key], DataLoader, path)
    return cfg


# what mmengine's Runner reads from a config (Runner.from_cfg) and what gatedvision adds
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator',
    'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from', 'resume',
    'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer', 'default_scope', 'randomness',
    'experiment_name', 'runner_type', 'custom_imports', 'precheck', 'inferencer', 'tta_model',
    'tta_pipeline', 'vis_backends', 'compile')
# keys that became something else: what to write instead
MOVED_KEYS = {'nonfinite_loss': "the nonfinite_loss default hook's policy: default_hooks = dict(nonfinite_loss="
                                "dict(policy='skip'))"}
# variables OpenMMLab configs conventionally define for their own use
CONFIG_VARIABLES = ('train_pipeline', 'val_pipeline', 'test_pipeline', 'dataset_type', 'data_root',
                    'crop_size', 'img_scale', 'norm_cfg', 'backend_args', 'metainfo', 'num_classes')


def compile_backend(name: str) -> str:
    """``name`` when ``torch.compile`` knows that backend (argparse ``type`` of the tools' ``--compile``),
    else an error listing the ones it knows."""
    import argparse

    import torch._dynamo
    known = torch._dynamo.list_backends(exclude_tags=())
    if name not in known:
        raise argparse.ArgumentTypeError(
            f"unknown torch.compile backend {name!r}; this torch has: {', '.join(sorted(known))} "
            f"('inductor' compiles to fast kernels; 'aot_eager' traces without generating code)")
    return name


def add_compile_argument(parser, what: str = "the backbone (the config's compile key)") -> None:
    """The tools' ``--compile [BACKEND]``: ``torch.compile`` of ``what``, inductor unless named."""
    parser.add_argument('--compile', nargs='?', const='inductor', type=compile_backend, metavar='BACKEND',
                        help=f"torch.compile {what} with BACKEND (default inductor; 'aot_eager' traces without "
                             f"generating code)")


def check_top_level_keys(cfg: Config, path: str) -> None:
    """A top-level key that is not one the Runner reads but looks like one is a typo that
    mmengine would silently ignore (``train_cgf``): name it and the key it resembles. Other
    top-level names (``crop_size``, ``train_pipeline``) are the config's own variables."""
    for key in cfg.keys():
        if key in MOVED_KEYS:
            raise ConfigError(f"config '{path}': the key '{key}' is now {MOVED_KEYS[key]}")
        if key in RUNNER_KEYS or key in CONFIG_VARIABLES or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.8)
        if close:
            raise ConfigError(f"config '{path}': unknown key '{key}' (mmengine would ignore it); "
                              f"did you mean '{close[0]}'?")


def _scope_registries(scope: Optional[str]) -> List[Registry]:
    roots = [r for r in vars(root_registry).values() if isinstance(r, Registry)]
    if scope and scope != 'mmengine':
        try:
            import_module(f'{scope}.registry')  # puts the scope's nodes into the tree
        except ImportError as e:
            raise ConfigError(f"default_scope '{scope}' cannot be imported: {e}") from None
    return [r._children.get(scope, r) for r in roots]


def _walk(node, path: str) -> Iterator[Tuple[str, dict]]:
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield path, node
        for k, v in node.items():
            yield from _walk(v, f'{path}.{k}' if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f'{path}[{i}]')


def check_types(cfg: Config, filename: str = '') -> None:
    """Raise :class:`ConfigError` for the first ``type='X'`` no registry of the scope knows, or
    for a key its class does not take (:func:`check_arguments`).

    Modules whose config holds foreign type names (albumentations transforms inside
    ``gatedvision.Albu``) list those keys in a ``foreign_config_keys`` class attribute.
    """
    filename = filename or cfg.filename
    registries = _scope_registries(cfg.get('default_scope'))
    skip: List[str] = []
    for path, node in _walk(cfg.to_dict(), ''):
        if any(path.startswith(p) for p in skip):
            continue
        key = node['type']
        found = None
        for reg in registries:
            try:
                found = reg.get(key)
            except (KeyError, ImportError):
                found = None
            if found is not None:
                break
        if found is None and _is_mmcv_op(key):
            continue  # roi_layer / nms configs: mmdet resolves them with getattr(mmcv.ops, type)
        if found is None:
            prefix, _, short = key.rpartition('.')
            if prefix:  # 'gatedvision.X': suggest from that scope's own registries
                scoped = [r for r in _scope_registries(prefix) if r.scope == prefix]
                names = sorted({f'{prefix}.{n}' for r in scoped for n in r.module_dict})
            else:
                names = sorted({n for reg in registries for r in _lineage(reg)
                                for n in r.module_dict})
            close = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ''
            raise ConfigError(f"config '{filename}': {path}.type = '{key}' is not registered in "
                              f"scope '{cfg.get('default_scope')}'{hint}")
        check_arguments(path, node, found, filename)
        for k in getattr(found, 'foreign_config_keys', ()):
            skip.append(f'{path}.{k}')


# keys a builder takes out of a config dict before it calls the class: they are not arguments
_BUILDER_KEYS = {'type', '_scope_', '_delete_',
                 'constructor', 'paramwise_cfg',  # mmengine.optim.build_optim_wrapper
                 'convert_to_iter_based',         # Runner.build_param_scheduler
                 'requires_grad'}                 # mmcv.cnn.build_norm_layer


def accepted_arguments(cls, _mro_from: int = 0) -> Optional[List[str]]:
    """The keyword arguments ``cls`` takes, or None where that is open-ended. An ``__init__`` that
    takes ``**kwargs`` only to hand them to ``super().__init__`` (OpenMMLab heads, datasets,
    scheduler mixins) takes its own arguments and those of the next ``__init__`` in the MRO."""
    if inspect.isclass(cls):
        mro = cls.__mro__
        at = next((i for i in range(_mro_from, len(mro)) if '__init__' in vars(mro[i])), None)
        if at is None or mro[at] is object:
            return []
        init = vars(mro[at])['__init__']
    else:
        init, at = cls, None
    try:
        params = inspect.signature(init).parameters
    except (TypeError, ValueError):  # builtins and C extensions without a signature
        return None
    names = [n for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != 'self']
    var = next((n for n, p in params.items() if p.kind is p.VAR_KEYWORD), None)
    if var is None:
        return names
    try:
        source = inspect.getsource(init)
    except (OSError, TypeError):
        return None
    call = re.search(r'super\([^)]*\)\.__init__\(([^)]*)\)', source, re.S)
    # '**kwargs' twice: in the signature and in the super() call, nowhere else (not stored, not
    # handed to another builder)
    if at is None or call is None or f'**{var}' not in call.group(1) or source.count(f'**{var}') != 2:
        return None
    parent = accepted_arguments(cls, at + 1)
    return None if parent is None else names + [n for n in parent if n not in names]


def check_arguments(path: str, node: dict, cls, filename: str) -> None:
    """A key of ``node`` that ``cls`` does not take would end in a TypeError far from the config:
    name the key path, the class and the closest argument (where the arguments are known)."""
    accepted = accepted_arguments(cls)
    if accepted is None:
        return
    for key in node:
        if key in _BUILDER_KEYS or key in accepted:
            continue
        close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f'; it takes: {", ".join(accepted)}'
        raise ConfigError(f"config '{filename}': {path}.{key}: {getattr(cls, '__name__', cls)} has no "
                          f"argument '{key}'{hint}")


def _is_mmcv_op(name: str) -> bool:
    try:
        from mmcv import ops
    except ImportError:
        return False
    return hasattr(ops, name)


def _lineage(reg: Registry) -> Iterator[Registry]:
    while reg is not None:
        yield reg
        reg = reg.parent
