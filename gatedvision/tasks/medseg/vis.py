"""Slice overlays of an image, its ground truth and a prediction, as PNG panels."""
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

__all__ = ['PALETTE', 'choose_slices', 'overlay_panel', 'write_overlays']

# RGB, class 1, 2, ... (background is not drawn)
PALETTE = [(230, 25, 75), (255, 225, 25), (60, 180, 75), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230)]


def choose_slices(label: Optional[np.ndarray], axis: int, n: int = 3) -> List[int]:
    """``n`` slice indices along ``axis``: the one with the most foreground first, then others
    spread over the foreground's extent (the middle slice if there is no foreground)."""
    depth = label.shape[axis] if label is not None else 1
    if label is None or not label.any():
        return [depth // 2]
    area = (label > 0).sum(axis=tuple(a for a in range(3) if a != axis))
    zs = np.flatnonzero(area)
    best = int(area.argmax())
    spread = [int(z) for z in np.linspace(zs[0], zs[-1], n + 1)[1:-1].round()] if n > 1 else []
    return list(dict.fromkeys([best] + spread))[:n]


def _rgb(plane: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(plane, [1, 99]) if plane.any() else (0.0, 1.0)
    grey = np.clip((plane - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.repeat((grey * 255).astype(np.uint8)[..., None], 3, -1)


def _blend(rgb: np.ndarray, label: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    out = rgb.astype(np.float32)
    for c in np.unique(label):
        if c == 0:
            continue
        m = label == c
        out[m] = (1 - alpha) * out[m] + alpha * np.array(PALETTE[(int(c) - 1) % len(PALETTE)])
    return out.astype(np.uint8)


def overlay_panel(image: np.ndarray, pred: np.ndarray, gt: Optional[np.ndarray] = None,
                  scale: int = 3) -> np.ndarray:
    """``image | ground truth | prediction`` (or ``image | prediction``) for one 2-D slice, as an
    RGB uint8 array, rotated so that a RAS axial slice shows anterior up, and enlarged ``scale``×."""
    rgb = _rgb(np.rot90(image))  # (x, y) -> rows y (anterior first), columns x
    tiles = [rgb] + [_blend(rgb, np.rot90(lab)) for lab in (gt, pred) if lab is not None]
    sep = np.full((rgb.shape[0], 2, 3), 255, np.uint8)
    parts = [tiles[0]]
    for t in tiles[1:]:
        parts += [sep, t]
    panel = np.concatenate(parts, axis=1)
    return cv2.resize(panel, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def write_overlays(out_dir, name: str, image: np.ndarray, pred: np.ndarray,
                   gt: Optional[np.ndarray] = None, axis: int = 2, num_slices: int = 3,
                   scale: int = 3) -> List[Path]:
    """Write ``<name>_<axis><index>.png`` panels of a (X, Y, Z) volume's most telling slices."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for z in choose_slices(gt if gt is not None and gt.any() else pred, axis, num_slices):
        image_z, pred_z = np.take(image, z, axis=axis), np.take(pred, z, axis=axis)
        gt_z = None if gt is None else np.take(gt, z, axis=axis)
        panel = overlay_panel(image_z, pred_z, gt_z, scale)
        path = out_dir / f"{name}_{'xyz'[axis]}{z:03d}.png"
        cv2.imwrite(str(path), panel[..., ::-1])
        paths.append(path)
    return paths
