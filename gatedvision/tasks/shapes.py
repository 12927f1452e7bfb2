"""The toy shapes the detection and segmentation toy datasets both draw (their labels derive from
the same painted shapes)."""
import cv2
import numpy as np

# hue centre (OpenCV hue, 0..180) of each shape class
_HUES = {1: 0, 2: 60, 3: 115, 4: 28}


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A grey-ish background: random stripes plus smooth noise, (size, size, 3) float in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size, 3), np.float32)
    for _ in range(3):
        angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(3, 20), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
        img += wave[..., None] * rng.uniform(0.02, 0.08, size=3)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (size, size, 3)).astype(np.float32), (0, 0), 4)
    base = rng.uniform(0.25, 0.75) + rng.uniform(-0.05, 0.05, size=3)
    return np.clip(base + img + 0.15 * noise, 0, 1)


def _shape_colour(rng: np.random.Generator, cls: int) -> np.ndarray:
    hue = (_HUES[cls] + rng.integers(-12, 13)) % 180
    hsv = np.uint8([[[hue, rng.integers(120, 256), rng.integers(120, 256)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255


def _draw(mask: np.ndarray, cls: int, rng: np.random.Generator, size: int,
          radius_div=(12, 5)) -> None:
    """Draw one shape of class ``cls`` into ``mask``; its radius is drawn from size/radius_div."""
    cx, cy = rng.integers(size // 8, size - size // 8, size=2)
    r = int(rng.integers(size // radius_div[0], size // radius_div[1]))
    if cls == 1:
        cv2.circle(mask, (int(cx), int(cy)), r, 1, -1)
    elif cls == 2:
        box = cv2.boxPoints(((float(cx), float(cy)), (2. * r, 2. * r), float(rng.uniform(0, 90))))
        cv2.fillPoly(mask, [box.astype(np.int32)], 1)
    elif cls == 3:
        a0 = rng.uniform(0, 2 * np.pi)
        pts = [(cx + r * 1.3 * np.cos(a0 + k * 2 * np.pi / 3),
                cy + r * 1.3 * np.sin(a0 + k * 2 * np.pi / 3)) for k in range(3)]
        cv2.fillPoly(mask, [np.array(pts, np.int32)], 1)
    else:
        cv2.circle(mask, (int(cx), int(cy)), r, 1, max(3, r // 3))


def paint_shapes(rng: np.random.Generator, size: int = 256, sparse: bool = False):
    """A textured background with filled shapes painted in order, later over earlier.

    ``sparse=False``: 2–5 shapes of radius size/12…size/5 that may overlap. ``sparse=True``: 1–3
    larger shapes (radius size/8…size/4) that do not touch, for a detector that must learn in a few
    hundred CPU iterations.
    Returns the float RGB image in [0, 1] and ``[(shape class 1..4, full mask), ...]`` in painting
    order; the segmentation and the COCO toy data both derive their labels from it.
    """
    img = _texture(rng, size)
    shapes = []
    taken = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 4) if sparse else rng.integers(2, 6))):
        cls = int(rng.integers(1, len(_HUES) + 1))
        mask = np.zeros((size, size), np.uint8)
        for _attempt in range(20 if sparse else 1):
            mask[:] = 0
            _draw(mask, cls, rng, size, radius_div=(8, 4) if sparse else (12, 5))
            if not (mask & taken).any():
                break
        else:
            continue  # sparse: no free room for this shape
        m = mask.astype(bool)
        if sparse:  # keep a margin of a few pixels between shapes
            taken |= cv2.dilate(mask, np.ones((7, 7), np.uint8))
        shade = 1 + 0.1 * cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 2)
        img[m] = np.clip(_shape_colour(rng, cls) * shade[m, None], 0, 1)
        shapes.append((cls, m))
    return img, shapes
