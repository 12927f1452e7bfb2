"""The detection metric of the toy dataset."""
from mmdet.evaluation import CocoMetric

from gatedvision.registry import METRICS
from .toy import make_toy_coco

@METRICS.register_module()
class ToyCocoMetric(CocoMetric):
    """mmdet's ``CocoMetric`` (boxes and masks) against the toy dataset's annotation file, which
    lives in the cache; ``num_images``, ``image_size`` and ``sparse`` must match the dataset's."""

    def __init__(self, data_root=None, split: str = 'val', num_images=(64, 16), image_size: int = 256,
                 sparse: bool = False, **kwargs):
        root = make_toy_coco(data_root, num_train=num_images[0], num_val=num_images[1], size=image_size,
                             sparse=sparse)
        super().__init__(ann_file=str(root / 'annotations' / f'instances_{split}.json'), **kwargs)
