"""Segmentation of a user's own images: mmseg's inferencer, registered so that a config names it
(``inferencer = dict(type='gatedvision.SegInferencer')``) and ``tools/infer.py`` needs no per-task branch."""
from mmseg.apis import MMSegInferencer

from gatedvision.registry import INFERENCERS

INFERENCERS.register_module('SegInferencer', module=MMSegInferencer)

__all__ = ['MMSegInferencer']
