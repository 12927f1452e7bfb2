"""What every task shares, on mmengine's extension points: the runner (:mod:`.runner`), hooks,
optimizer wrappers and constructors (:mod:`.optim`), checkpoint compatibility (:mod:`.checkpoint`),
config checking (:mod:`.config`), the timm backbone bridge (:mod:`.bridge`), the data transforms
detection and segmentation share (:mod:`.transforms`) and the inferencers' base (:mod:`.inferencer`).

Importing it registers these in the ``gatedvision`` registry scope and imports neither mmdet, mmseg,
MONAI nor nibabel: each task's modules are imported by its config (``custom_imports`` in
``configs/_base_/runtimes/<task>.py``), see :mod:`gatedvision.tasks`.
"""
from . import checkpoint  # noqa: F401  (lets torch.load read mmengine checkpoints)
from .bridge import TimmBackbone, check_model_name
from .hooks import RandomStateHook
from .inferencer import CheckpointInferencer
from .optim import AutocastOptimWrapper, LayerDecayOptimWrapperConstructor
from .precheck import StartupCheckError, StartupCheckHook
from .runner import ResilientRunner
from .transforms import Albu, LoadImageFromFile
from .. import heads  # noqa: F401  (registers the necks and decoders that need no task library)

__all__ = ['TimmBackbone', 'check_model_name', 'CheckpointInferencer', 'RandomStateHook', 'AutocastOptimWrapper',
           'LayerDecayOptimWrapperConstructor', 'ResilientRunner', 'Albu', 'LoadImageFromFile', 'StartupCheckError',
           'StartupCheckHook']
