"""Task heads and necks that OpenMMLab does not provide (registered in the ``gatedvision`` scope;
they need the OpenMMLab stack). :class:`AttentionUNetHead` needs MONAI and is registered by the
medical segmentation task (:mod:`gatedvision.tasks.medseg`)."""
import importlib

from .restoration_decoder import RestorationDecoder
from .simple_pyramid import SimplePyramid

__all__ = ['AttentionUNetHead', 'RestorationDecoder', 'SimplePyramid']


def __getattr__(name: str):
    if name == 'AttentionUNetHead':
        return importlib.import_module(f'{__name__}.attention_unet').AttentionUNetHead
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
