"""Detection and instance segmentation on mmdet 3.x: datasets (the models are mmdet's)."""
from .dataset import ToyCocoDataset
from .inferencer import DetInferencer
from .metric import ToyCocoMetric
from .toy import make_toy_coco

__all__ = ['DetInferencer', 'ToyCocoDataset', 'ToyCocoMetric', 'make_toy_coco']
