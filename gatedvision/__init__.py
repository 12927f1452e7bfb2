"""gatedvision: gated vision backbones registered in timm, with detection, segmentation,
restoration and medical-segmentation tasks on the OpenMMLab stack.

``import gatedvision`` registers the backbones in timm's model registry and needs only torch and
timm. The OpenMMLab glue lives in :mod:`gatedvision.tasks` and is imported by configs and tools.
"""
from . import backbones  # noqa: F401  (registers the timm models)
from .backbones import list_models

__all__ = ['list_models']
__version__ = '0.1.0'
