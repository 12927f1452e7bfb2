"""Datasets for detection and instance segmentation."""
from mmdet.datasets import CocoDataset

from gatedvision.registry import DATASETS
from .toy import CLASSES, PALETTE, make_toy_coco


@DATASETS.register_module()
class ToyCocoDataset(CocoDataset):
    """The toy shapes in COCO format (:mod:`.toy`), generated into the cache on first use and read
    by mmdet's ``CocoDataset``: a config moves to COCO by changing the dataset ``type``,
    ``data_root`` and the number of classes.

    Args:
        data_root: where the dataset lives; generated there if missing. None: the cache folder.
        split: ``'train'`` or ``'val'``.
        num_images: (train, val) images to generate.
        image_size: side of the generated square images.
        sparse: 1–3 larger shapes apart from each other instead of 2–5 that may occlude.
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, data_root=None, split: str = 'train', num_images=(64, 16), image_size: int = 256,
                 sparse: bool = False, **kwargs):
        root = make_toy_coco(data_root, num_train=num_images[0], num_val=num_images[1], size=image_size,
                             sparse=sparse)
        kwargs.setdefault('ann_file', f'annotations/instances_{split}.json')
        kwargs.setdefault('data_prefix', dict(img=f'images/{split}/'))
        super().__init__(data_root=str(root), **kwargs)
