"""Special kernels: a portable torch path and accelerated paths with the same signature."""
from .gla import bidirectional_gla, gla
from .neighborhood import na2d_av
from .routed_attention import routed_attention

__all__ = ['bidirectional_gla', 'gla', 'na2d_av', 'routed_attention']
