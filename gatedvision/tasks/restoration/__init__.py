"""Image restoration (denoising, deblurring, deraining) on mmengine, in the ``gatedvision`` scope."""
from .data import (Degrade, ImageFolderDataset, LoadImagePair, PackRestorationInputs, PairedAlbu,
                   PairedImageDataset, ToyRestoreDataset, make_toy_restore)
from .metrics import PSNR, SSIM
from .model import CharbonnierLoss, L1Loss, PSNRLoss, Restorer, tiled_inference
from .vis import RestorationInferencer, RestorationVisualizationHook

__all__ = ['Degrade', 'ImageFolderDataset', 'LoadImagePair', 'PackRestorationInputs', 'PairedAlbu',
           'PairedImageDataset', 'ToyRestoreDataset', 'make_toy_restore', 'PSNR', 'SSIM',
           'CharbonnierLoss', 'L1Loss', 'PSNRLoss', 'Restorer', 'tiled_inference',
           'RestorationInferencer', 'RestorationVisualizationHook']
