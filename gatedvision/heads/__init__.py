"""Task heads and necks that OpenMMLab does not provide (registered in the ``gatedvision`` scope;
they need the OpenMMLab stack)."""
from .attention_unet import AttentionUNetHead
from .restoration_decoder import RestorationDecoder
from .simple_pyramid import SimplePyramid

__all__ = ['AttentionUNetHead', 'RestorationDecoder', 'SimplePyramid']
