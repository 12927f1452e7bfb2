"""Loading mmengine checkpoints under torch >= 2.6, whose ``torch.load`` defaults to
``weights_only=True``.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``, and its Runner checkpoints hold a
few non-tensor objects (the message hub's ``HistoryBuffer`` with its statistics methods, numpy
arrays and scalars), so ``--resume``, ``load_from`` and ``tools/test.py`` fail with "Weights only
load failed". Rather than turning the safe unpickler off, every loader mmengine's
``CheckpointLoader`` dispatches to runs with exactly those types allow-listed: arbitrary pickled
code in a checkpoint is still refused, and ``torch.load`` elsewhere keeps torch's defaults.
"""
import functools

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['SAFE_GLOBALS', 'load_checkpoint', 'allow_mmengine_checkpoints']


def _numpy_globals():
    from numpy.core.multiarray import _reconstruct, scalar  # numpy 2 aliases numpy._core
    dtypes = {type(np.dtype(t)) for t in
              (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
               np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128)}
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


# HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, 'min'): getattr is
# needed, and only lets the unpickler reach attributes of the allowed types above.
SAFE_GLOBALS = [HistoryBuffer, getattr, *_numpy_globals()]


def _with_safe_globals(loader):
    if getattr(loader, '_gatedvision_safe', False):
        return loader

    @functools.wraps(loader)
    def load(*args, **kwargs):
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return loader(*args, **kwargs)

    load._gatedvision_safe = True
    return load


def allow_mmengine_checkpoints() -> None:
    """Wrap every scheme of mmengine's ``CheckpointLoader`` (local, http, ...) so that it reads
    Runner checkpoints under ``weights_only=True``. Idempotent."""
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        CheckpointLoader._schemes[prefix] = _with_safe_globals(loader)


def load_checkpoint(filename: str, map_location='cpu') -> dict:
    """Read an mmengine checkpoint (any scheme mmengine knows) with the safe unpickler."""
    allow_mmengine_checkpoints()
    return CheckpointLoader.load_checkpoint(filename, map_location=map_location)


allow_mmengine_checkpoints()
