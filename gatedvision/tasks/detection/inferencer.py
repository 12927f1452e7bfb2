"""Detection on a user's own images: mmdet's inferencer, registered so that a config names it
(``inferencer = dict(type='gatedvision.DetInferencer')``) and ``tools/infer.py`` needs no per-task branch."""
from mmdet.apis import DetInferencer

from gatedvision.registry import INFERENCERS

INFERENCERS.register_module('DetInferencer', module=DetInferencer)

__all__ = ['DetInferencer']
