"""Image restoration (denoising, deblurring, deraining) on mmengine, in the ``gatedvision`` scope."""
from .dataset import (Degrade, ImageFolderDataset, LoadImagePair, PackRestorationInputs, PairedAlbu,
                   PairedImageDataset, ToyRestoreDataset, make_toy_restore)
from .metric import PSNR, SSIM
from .model import CharbonnierLoss, L1Loss, PSNRLoss, Restorer, tiled_inference
from .hooks import RestorationVisualizationHook
from .inferencer import RestorationInferencer

__all__ = ['Degrade', 'ImageFolderDataset', 'LoadImagePair', 'PackRestorationInputs', 'PairedAlbu',
           'PairedImageDataset', 'ToyRestoreDataset', 'make_toy_restore', 'PSNR', 'SSIM',
           'CharbonnierLoss', 'L1Loss', 'PSNRLoss', 'Restorer', 'tiled_inference',
           'RestorationInferencer', 'RestorationVisualizationHook']
