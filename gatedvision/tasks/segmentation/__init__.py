"""Semantic segmentation on mmseg 1.x: datasets (the heads are mmseg's)."""
from .dataset import ToySegDataset
from .inferencer import MMSegInferencer
from .toy import make_toy_seg

__all__ = ['MMSegInferencer', 'ToySegDataset', 'make_toy_seg']
