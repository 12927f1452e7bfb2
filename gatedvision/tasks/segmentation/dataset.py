"""Datasets for semantic segmentation."""
from mmseg.datasets import BaseSegDataset

from gatedvision.registry import DATASETS
from .toy import CLASSES, PALETTE, make_toy_seg


@DATASETS.register_module()
class ToySegDataset(BaseSegDataset):
    """The toy shapes dataset (:mod:`.toy`) in ADE20K's layout, generated into the cache on first use.

    It reads the folders exactly as mmseg's ``ADE20KDataset`` does (``.jpg`` images, ``.png``
    annotations, ``reduce_zero_label=True``), so a config moves to ADE20K by changing the dataset
    ``type`` and ``data_root``.

    Args:
        data_root: where the dataset lives; generated there if missing. None: the cache folder.
        num_images: (training, validation) images to generate.
        image_size: side of the generated square images.
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, data_root=None, num_images=(64, 16), image_size=256, img_suffix='.jpg',
                 seg_map_suffix='.png', reduce_zero_label=True, **kwargs):
        root = make_toy_seg(data_root, num_train=num_images[0], num_val=num_images[1],
                            size=image_size)
        super().__init__(data_root=str(root), img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
