"""Detection and instance segmentation on mmdet 3.x: datasets (the models are mmdet's)."""
from .dataset import ToyCocoDataset, ToyCocoMetric
from .toy import make_toy_coco

__all__ = ['ToyCocoDataset', 'ToyCocoMetric', 'make_toy_coco']
