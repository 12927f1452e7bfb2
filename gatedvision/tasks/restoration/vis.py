"""Writing restored images."""
import cv2
import numpy as np
import torch

from .metric import to_8bit


def save_rgb(path: str, chw: torch.Tensor) -> None:
    """Write a (C, H, W) image in [0, 1] as an 8-bit PNG (RGB or grey)."""
    img = to_8bit(chw).astype(np.uint8)
    cv2.imwrite(path, img[..., ::-1] if img.shape[2] == 3 else img)
