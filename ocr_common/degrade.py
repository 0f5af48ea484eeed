"""Print and camera degradations shared by the line and page renderers.

Each function is pure: the image and explicit parameters in, a new image out. The renderers
draw the parameters from their own `np.random.Generator` (with their own probabilities and
ranges) and pass them here, so that the order of their draws, and thus the rendered data,
is theirs to keep.

Images are `(h, w) uint8` gray or `(h, w, 3) uint8` RGB; every function returns the shape
and dtype it was given.
"""

from __future__ import annotations

import cv2
import numpy as np


def downscale(img: np.ndarray, factor: float) -> np.ndarray:
    """Low resolution: `img` shrunk by `factor` (< 1, area averaging) and scaled back up
    (bilinear) to its own size. `(h, w[, 3]) uint8` -> same."""
    h, w = img.shape[:2]
    small = cv2.resize(
        img, (max(1, int(w * factor)), max(1, int(h * factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Defocus: a Gaussian blur of standard deviation `sigma` px, OpenCV's kernel size for
    that sigma and reflect-101 borders. `(h, w[, 3])` -> same shape and dtype."""
    return cv2.GaussianBlur(img, (0, 0), sigma)


def gain_bias(img: np.ndarray, gain: float, bias: float) -> np.ndarray:
    """Exposure: `img * gain + bias` in float32, clipped to [0, 255] and truncated to uint8.
    `(h, w[, 3]) uint8` -> same."""
    return np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def add_noise(img: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Sensor noise: `img + noise`, clipped to [0, 255] and truncated to uint8.

    `img (h, w[, 3]) uint8`; `noise` float, broadcastable to it (the sum is taken in float32,
    or in float64 when `noise` is float64). Truncation, not rounding: zero-mean noise
    lowers the mean by about half a grey level (the renderers' data has always had that).
    """
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG encode / decode round trip at `quality` (0-100), OpenCV's default chroma
    subsampling. `(h, w) uint8` gray or `(h, w, 3) uint8` RGB -> same; `img` itself if
    encoding fails."""
    rgb = img.ndim == 3
    ok, enc = cv2.imencode(
        ".jpg",
        img[..., ::-1] if rgb else img,  # OpenCV wants BGR
        [cv2.IMWRITE_JPEG_QUALITY, int(quality)],
    )
    if not ok:
        return img
    if rgb:
        return np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1])
    return cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Camera shake: the image averaged along a line segment of `length` px at `angle`
    degrees (0 = horizontal), centred, reflect-101 borders. `(h, w[, 3]) uint8` -> same."""
    size = max(1, int(np.ceil(length)) | 1)  # odd, so that the segment is centred
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    t = np.linspace(-length / 2, length / 2, 4 * size)
    a = np.deg2rad(angle)
    xs = np.clip(np.round(c + t * np.cos(a)).astype(int), 0, size - 1)
    ys = np.clip(np.round(c - t * np.sin(a)).astype(int), 0, size - 1)
    kernel[ys, xs] = 1.0
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def uneven_light(
    img: np.ndarray, gain_left: float, gain_right: float, vignette: float
) -> np.ndarray:
    """Uneven light: `img` times a smooth field, a linear ramp from `gain_left` to
    `gain_right` across the width, darkened towards the corners by `vignette` (0: none, 1:
    black corners), in float32, clipped and truncated to uint8. `(h, w[, 3]) uint8` -> same."""
    h, w = img.shape[:2]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)
    ramp = gain_left + (gain_right - gain_left) * x
    r2 = ((2 * x[None, :] - 1) ** 2 + y[:, None] ** 2) / 2  # 0 at the centre, 1 at corners
    field = ramp[None, :] * (1.0 - vignette * r2)
    if img.ndim == 3:
        field = field[..., None]
    return np.clip(img.astype(np.float32) * field, 0, 255).astype(np.uint8)
