"""Detector input: resize as the original, pad to a shape bucket (inference and training).

Images are scaled so that the shorter side is ``short_side`` unless the longer side would
exceed ``long_side`` (the original: 600 / 1000 for training, 900 / 1500 at test time), then
padded on the right and bottom to a *bucket*: each side independently to the smallest of
``bucket_sizes`` that holds it (a multiple of 16 beyond the largest).  With three sizes a
model compiles for at most nine shapes, whatever the images.  ``TextDetector`` and the
training pipeline (``ctpn_jax.data.pipeline``) both use these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ctpn_jax.anchors import FEATURE_STRIDE
from ctpn_jax.model import PIXEL_MEAN

#: Padding colour: the model's input mean, i.e. zero after normalisation.
PAD_VALUE: tuple[int, int, int] = tuple(int(round(v)) for v in PIXEL_MEAN)


def resize_scale(
    height: int, width: int, short_side: float, long_side: float, max_scale: float = np.inf
) -> float:
    """The original's scale: shorter side to ``short_side``, longer side at most
    ``long_side``; and at most ``max_scale`` (1: never enlarge a small image)."""
    s = float(short_side) / min(height, width)
    if s * max(height, width) > long_side:
        s = float(long_side) / max(height, width)
    return min(s, float(max_scale))


def resize_image(
    image: np.ndarray, short_side: float, long_side: float, max_scale: float = np.inf
) -> tuple[np.ndarray, tuple[float, float]]:
    """Resize ``(H, W, 3) uint8`` as ``resize_scale`` says.

    Returns:
        The resized image and the exact ``(scale_y, scale_x)`` of the rounded size.
    """
    h, w = image.shape[:2]
    s = resize_scale(h, w, short_side, long_side, max_scale)
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (nw, nh), interpolation=interp)
    return image, (nh / h, nw / w)


def bucket_size(n: int, sizes: Sequence[int], stride: int = FEATURE_STRIDE) -> int:
    """The smallest of ``sizes`` that is >= ``n``; beyond them, ``n`` rounded up to ``stride``."""
    for s in sorted(sizes):
        if s >= n:
            return int(s)
    return -(-int(n) // stride) * stride


def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad ``(h, w, 3) uint8`` at the bottom and right to ``(height, width, 3)`` (``PAD_VALUE``)."""
    out = np.empty((height, width, 3), np.uint8)
    out[:] = np.asarray(PAD_VALUE, np.uint8)
    h, w = image.shape[:2]
    out[:h, :w] = image
    return out
