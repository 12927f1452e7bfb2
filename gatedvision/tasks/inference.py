"""Inference on a user's own images: the OpenMMLab inferencers, registered so that a config names
the one its task uses (``inferencer = dict(type='gatedvision.DetInferencer')``) and
``tools/infer.py`` needs no per-task branches."""
from mmdet.apis import DetInferencer
from mmseg.apis import MMSegInferencer

from gatedvision.registry import INFERENCERS

INFERENCERS.register_module('DetInferencer', module=DetInferencer)
INFERENCERS.register_module('SegInferencer', module=MMSegInferencer)

__all__ = ['DetInferencer', 'MMSegInferencer']
