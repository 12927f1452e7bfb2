"""The engine's checkpoint code: loading mmengine's under torch >= 2.6, writing atomically, finding
the one ``--resume`` continues from, and the authors' dense checkpoints (end of file). The
integrity check (:func:`checkpoint_problem`) is the backbones' (it needs torch only, as loading
pretrained weights does) and is re-exported here.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``, which torch >= 2.6 turns on, and
its Runner checkpoints hold a few non-tensor objects (the message hub's ``HistoryBuffer`` with its
statistics methods, numpy arrays and scalars), so ``--resume``, ``load_from`` and ``tools/test.py``
would fail with "Weights only load failed". Rather than turning the safe unpickler off, importing
this module adds exactly those types to torch's allow-list (``torch.serialization.add_safe_globals``,
torch's extension point for it): arbitrary pickled code in a checkpoint is still refused.
"""
import contextlib
import glob
import os
import os.path as osp
import re
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader

from gatedvision.backbones._helpers import check_checkpoint, checkpoint_problem
from gatedvision.registry import HOOKS

__all__ = ['SAFE_GLOBALS', 'load_checkpoint', 'atomic_torch_save', 'find_resumable_checkpoint', 'checkpoint_problem',
           'check_checkpoint', 'AuthorsCheckpointHook', 'authors_dense_to_ours', 'ours_to_authors_dense',
           'is_authors_dense_layout']


def _numpy_globals():
    from numpy.core.multiarray import _reconstruct, scalar  # numpy 2 aliases numpy._core
    dtypes = {type(np.dtype(t)) for t in
              (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
               np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128)}
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


# HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, 'min'): getattr is
# needed. The unpickler calls only allow-listed functions, so what getattr reaches cannot be called.
SAFE_GLOBALS = [HistoryBuffer, getattr, *_numpy_globals()]
torch.serialization.add_safe_globals(SAFE_GLOBALS)


def load_checkpoint(filename: str, map_location='cpu') -> dict:
    """Read an mmengine checkpoint (any scheme mmengine knows) with the safe unpickler."""
    return CheckpointLoader.load_checkpoint(filename, map_location=map_location)


# --- writing checkpoints atomically, and finding the newest complete one ----------------------

_CKPT_NUMBER = re.compile(r'(?:iter|epoch)_(\d+)\.pth$')


def _fsync_replace(tmp: str, path: str) -> None:
    with open(tmp, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(osp.dirname(path) or '.', os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextlib.contextmanager
def _atomic_file(path: str):
    """Yield a temporary name beside ``path``; once the body has written it, flush it to disk and
    rename it to ``path``. The temporary file is removed if the body fails."""
    tmp = osp.join(osp.dirname(path) or '.', f'.{osp.basename(path)}.tmp-{os.getpid()}')
    try:
        yield tmp
        _fsync_replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` that never leaves a partial file at ``path``."""
    with _atomic_file(path) as tmp:
        torch.save(obj, tmp)


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from: ``last_checkpoint``'s if it is complete, else
    the highest-numbered complete ``iter_N.pth`` / ``epoch_N.pth`` in ``work_dir``."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        if last and checkpoint_problem(last, thorough=True) is None:
            return last
    found = sorted(((int(m.group(1)), p) for p in glob.glob(osp.join(work_dir, '*.pth'))
                    if (m := _CKPT_NUMBER.search(osp.basename(p)))), reverse=True)
    return next((p for _, p in found if checkpoint_problem(p, thorough=True) is None), None)


# --- the authors' dense checkpoints (mmdet 2.x / mmseg 0.x, the authors' own backbone classes) ------

def _timm_backbone(model):
    from gatedvision.engine.bridge import TimmBackbone
    backbone = getattr(model, 'backbone', None)
    return backbone if isinstance(backbone, TimmBackbone) else None


def _inner_prefix(model, backbone) -> str:
    """Where the timm model itself sits in ``model``'s state dict, e.g. ``'backbone.model.model.'``."""
    inner = backbone._inner_model()
    return next(name for name, m in model.named_modules() if m is inner) + '.'


def is_authors_dense_layout(state_dict: dict, model) -> bool:
    """A detector/segmentor state dict whose ``backbone.*`` keys are the authors' dense backbone's
    (mmdet 2.x / mmseg 0.x: ``backbone.<their attribute names>``) while ``model`` holds the backbone
    as a :class:`TimmBackbone` (``backbone.model.…``)."""
    if _timm_backbone(model) is None:
        return False
    keys = [k for k in state_dict if k.startswith('backbone.')]
    return bool(keys) and not any(k.startswith('backbone.model.') for k in keys)


def _storage(t: torch.Tensor):
    return t.untyped_storage().data_ptr(), t.storage_offset()


def authors_dense_to_ours(state_dict: dict, model):
    """Map a state dict in the authors' dense layout onto ``model`` (an mmdet/mmseg model with a
    :class:`TimmBackbone`): ``backbone.*`` through the family's ``checkpoint_filter_fn`` (the same
    mapping its classification weights take), the neck and heads unchanged (mmdet 3.x and mmseg 1.x
    kept the 2.x / 0.x parameter names of FPN, RPN, RoI, cascade, UPerNet and FCN heads: their own
    model zoos still serve the 2020 checkpoints).

    Returns (state dict in ``model``'s names, report) where the report lists by name the authors'
    tensors the mapping did not use (``unused``) and the tensors of ours it had to fill in itself
    because the file lacks them (``filled``); both are empty for a checkpoint of the same model."""
    from gatedvision.engine.bridge import checkpoint_filter
    backbone = _timm_backbone(model)
    inner = backbone._inner_model()
    prefix = _inner_prefix(model, backbone)
    src = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    rest = {k: v for k, v in state_dict.items() if not k.startswith('backbone.')}
    filter_fn = checkpoint_filter(backbone.model_name)
    mapped = filter_fn(dict(src), inner) if filter_fn is not None else dict(src)
    # which of the authors' tensors ended up where: by storage (the filters rename and view, or clone
    # fill-ins such as identity norms the file lacks)
    origin = {_storage(v): k for k, v in src.items()}
    target = inner.state_dict()
    foreign = {k for k in mapped if k not in target}  # passed through, but no tensor of ours
    used = {origin[_storage(v)] for k, v in mapped.items() if _storage(v) in origin and k not in foreign}
    report = dict(unused=sorted('backbone.' + k for k in set(src) - used),
                  filled=sorted(prefix + k for k, v in mapped.items() if _storage(v) not in origin))
    mapped = {k: v for k, v in mapped.items() if k not in foreign}
    return {**{prefix + k: v for k, v in mapped.items()}, **rest}, report


def ours_to_authors_dense(state_dict: dict, model) -> dict:
    """The inverse for the families whose dense backbone keeps the authors' attribute names
    (OverLoCK, HorNet): ``backbone.model.model.<name>`` -> ``backbone.<name>``, the rest as is."""
    prefix = _inner_prefix(model, _timm_backbone(model))
    return {('backbone.' + k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


@HOOKS.register_module()
class AuthorsCheckpointHook(Hook):
    """``load_from`` / ``tools/test.py`` given one of the authors' dense checkpoints: converted on
    load (:func:`authors_dense_to_ours`). What did not map is named; under strict loading (testing)
    it is an error, since a partly loaded model would report wrong numbers."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        key = 'state_dict' if isinstance(checkpoint.get('state_dict'), dict) else None
        state_dict = checkpoint[key] if key else checkpoint
        if not is_authors_dense_layout(state_dict, model):
            return
        converted, report = authors_dense_to_ours(state_dict, model)
        problems = [f"{what}: {', '.join(names)}" for what, names in (
            ("the file's tensors the backbone did not use", report['unused']),
            ("our backbone's tensors the file lacks (left at their initialisation)", report['filled']))
            if names]
        if problems and getattr(runner, 'strict_load', False):
            raise ValueError('the authors\' dense checkpoint does not match this config\'s backbone; '
                             + '; '.join(problems) + ' (check model_name and its options in the config)')
        for p in problems:
            runner.logger.warning(p)
        runner.logger.info(f"checkpoint in the authors' dense layout: its {len(state_dict)} tensors mapped "
                           f"onto {type(model).__name__} ({model.backbone.model_name} through TimmBackbone)")
        if key:
            checkpoint[key] = converted
        else:
            checkpoint.clear()
            checkpoint.update(converted)
