"""Glue between gatedvision's backbones and the OpenMMLab stack (mmengine, mmdet, mmseg).

Importing it registers every gatedvision module in the ``gatedvision`` registry scope and lets
``torch.load`` read mmengine checkpoints (see :mod:`.checkpoint`).
"""
from . import checkpoint  # noqa: F401  (must come before any checkpoint is loaded)
from .. import heads  # noqa: F401  (registers the necks and heads)
from .backbone import TimmBackbone, check_model_name
from .detection import ToyCocoDataset, make_toy_coco
from .hooks import RandomStateHook
from . import inference  # noqa: F401  (registers the inferencers)
from . import medseg  # noqa: F401  (medical segmentation)
from .optim import AutocastOptimWrapper, LayerDecayOptimWrapperConstructor
from . import restoration  # noqa: F401  (image restoration)
from .runner import ResilientRunner
from .segmentation import ToySegDataset, make_toy_seg
from .transforms import Albu

__all__ = ['TimmBackbone', 'check_model_name', 'RandomStateHook', 'ToyCocoDataset', 'make_toy_coco', 'ToySegDataset', 'make_toy_seg', 'Albu',
           'AutocastOptimWrapper', 'LayerDecayOptimWrapperConstructor', 'ResilientRunner']
