"""Special kernels: a portable torch path and accelerated paths with the same signature; one way to
pick among them (:mod:`gatedvision.ops.switch`)."""
from .linear_attention import bidirectional_gla, gla
from .neighborhood import na2d_av
from .routing import routed_attention
from .switch import KERNELS, set_backend, use_backend

__all__ = ['KERNELS', 'bidirectional_gla', 'gla', 'na2d_av', 'routed_attention', 'set_backend', 'use_backend']
