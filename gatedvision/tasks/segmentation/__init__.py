"""Semantic segmentation on mmseg 1.x: datasets (the heads are mmseg's)."""
from .dataset import ToySegDataset
from .toy import make_toy_seg

__all__ = ['ToySegDataset', 'make_toy_seg']
