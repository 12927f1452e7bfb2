"""PSNR and SSIM as the restoration papers report them, computed by scikit-image.

Protocol (the BasicSR / mmagic one): outputs clipped to [0, 1] and rounded to 8 bits, an optional
border crop, RGB or the Y channel of ITU-R BT.601 YCbCr (``convert_to='y'``, deraining), SSIM with a
Gaussian window of sigma 1.5 and population covariance (Wang et al. 2004).
"""
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gatedvision.registry import METRICS


def to_8bit(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) float64 with the integer values 0..255."""
    return np.round(img.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255.0)


def prepare(img: np.ndarray, crop_border: int, convert_to: Optional[str]) -> np.ndarray:
    """8-bit (H, W, C) image -> what the metric compares (cropped, maybe Y in 16..235)."""
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    if convert_to is None:
        return img
    if convert_to.lower() != 'y':
        raise ValueError(f"convert_to must be None or 'y', got {convert_to!r}")
    if img.shape[2] == 1:
        return img
    return rgb2ycbcr(img / 255.0)[..., :1]


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(gt, pred, data_range=255))


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(structural_similarity(gt, pred, data_range=255, channel_axis=2, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


class _ImageMetric(BaseMetric):
    name = ''
    fn = None

    def __init__(self, crop_border: int = 0, convert_to: Optional[str] = None,
                 input_score: bool = False, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        prepare(np.zeros((1, 1, 3)), 0, convert_to)  # reject bad convert_to at build time
        self.crop_border, self.convert_to, self.input_score = crop_border, convert_to, input_score

    def _score(self, pred: torch.Tensor, gt: torch.Tensor) -> float:
        a, b = (prepare(to_8bit(t), self.crop_border, self.convert_to) for t in (pred, gt))
        return type(self).fn(a, b)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else None
        for i, sample in enumerate(data_samples):
            if 'gt_img' not in sample:
                raise KeyError(f'{self.name}: the test set has no ground truth (gt_img) to compare with')
            row = {self.name: self._score(sample['pred_img'], sample['gt_img'])}
            if self.input_score and inputs is not None:
                lq = inputs[i].float()
                lq = lq / 255.0 if inputs[i].dtype == torch.uint8 else lq
                row[f'{self.name}_input'] = self._score(lq, sample['gt_img'])
            self.results.append(row)

    def compute_metrics(self, results: list) -> dict:
        return {k: float(np.mean([r[k] for r in results])) for k in results[0]}


@METRICS.register_module()
class PSNR(_ImageMetric):
    """Mean PSNR (dB) over the test images; ``input_score=True`` also reports the input's
    (``PSNR_input``), the figure a restorer must beat.

    Args:
        crop_border: pixels cropped from each side before comparing.
        convert_to: ``None`` (RGB) or ``'y'`` (luma, as deraining papers report).
        input_score: also score the degraded input against the ground truth.
    """
    name = 'PSNR'
    fn = staticmethod(psnr)


@METRICS.register_module()
class SSIM(_ImageMetric):
    """Mean SSIM over the test images (arguments as :class:`PSNR`)."""
    name = 'SSIM'
    fn = staticmethod(ssim)
