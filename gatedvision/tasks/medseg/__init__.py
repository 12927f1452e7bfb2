"""Medical image segmentation on mmengine: nnU-Net / MSD datasets read with nibabel, 2-D and 2.5-D
slice training of an attention-gated U-Net (:class:`~gatedvision.heads.AttentionUNetHead`) on any
timm backbone, whole-volume inference, MONAI's losses and metrics, NIfTI predictions."""
from gatedvision.heads.attention_unet import AttentionUNetHead  # noqa: F401  (its head; needs MONAI)
from .dataset import NnUNetSliceDataset, NnUNetVolumeDataset
from .hooks import MedSegVisualizationHook
from .inferencer import MedSegInferencer
from .metric import MedSegMetric, volume_scores
from .model import MedSegDataPreProcessor, MedSegmentor, deep_supervision_loss, stack_slices
from .toy import make_toy_medseg
from .transforms import (LoadMedicalCase, PackMedSegSlice, PackMedSegVolume, RandomCropSlice, RandomFlipSlice,
                         RandomIntensity, SampleSlice)

__all__ = ['NnUNetSliceDataset', 'NnUNetVolumeDataset', 'MedSegVisualizationHook',
           'MedSegInferencer', 'MedSegMetric', 'volume_scores', 'MedSegDataPreProcessor',
           'MedSegmentor', 'deep_supervision_loss', 'stack_slices', 'make_toy_medseg', 'LoadMedicalCase',
           'PackMedSegVolume', 'SampleSlice', 'RandomCropSlice', 'RandomFlipSlice', 'RandomIntensity', 'PackMedSegSlice']
