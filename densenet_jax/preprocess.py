"""The one place where a line image becomes recogniser input (training and inference alike).

1. `to_line_image`: any image (RGB or gray, any size) -> `(32, W) uint8` gray, aspect kept
   (`stretch_line` widens such a line for a second reading, see `recognizer`).
2. `pad_lines`: a list of such lines -> one `(B, 32, W_bucket, 1) uint8` batch + true widths.
3. `normalize`: uint8 -> float32 `x / 255 - 0.5` (inside jit, so batches travel as uint8).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import jax.numpy as jnp
import numpy as np

LINE_HEIGHT = 32
MIN_WIDTH = 8


def to_line_image(
    image: np.ndarray, height: int = LINE_HEIGHT, max_width: int | None = None
) -> np.ndarray:
    """Converts a line crop to `(height, W) uint8` gray, keeping the aspect ratio.

    Args:
      image: `(h, w)` or `(h, w, 3)` RGB uint8 (other dtypes are scaled to uint8).
      max_width: if given, wider results are squeezed horizontally to this width.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(
            img.astype(np.float32) * (255.0 if img.max(initial=0) <= 1 else 1), 0, 255
        ).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if img.shape[2] == 3 else cv2.COLOR_RGBA2GRAY)
    h, w = img.shape
    if h == 0 or w == 0:
        raise ValueError(f"empty line image of shape {image.shape}")
    new_w = max(MIN_WIDTH, int(round(w * height / h)))
    if max_width is not None:
        new_w = min(new_w, max_width)
    if (h, w) != (height, new_w):
        interp = cv2.INTER_AREA if h > height else cv2.INTER_CUBIC
        img = cv2.resize(img, (new_w, height), interpolation=interp)
    return img


def stretch_line(line: np.ndarray, factor: float) -> np.ndarray:
    """`(32, w) uint8` -> `(32, round(w * factor)) uint8`: the line scaled horizontally, so
    that its characters span more of the model's time steps (8 px each)."""
    if factor <= 0:
        raise ValueError(f"stretch factor must be positive, got {factor}")
    new_w = max(MIN_WIDTH, int(round(line.shape[1] * factor)))
    if new_w == line.shape[1]:
        return line
    interp = cv2.INTER_AREA if new_w < line.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(line, (new_w, line.shape[0]), interpolation=interp)


def bucket_width(width: int, buckets: Sequence[int]) -> int:
    """The smallest bucket >= width; past the largest, the next multiple of the largest."""
    for b in sorted(buckets):
        if width <= b:
            return b
    top = max(buckets)
    return -(-width // top) * top


def pad_lines(lines: Sequence[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Stacks `(32, w_i) uint8` lines into `(B, 32, width, 1) uint8`, padding on the right.

    Padding repeats each line's median gray level (its background), so the padded part
    looks like empty ground rather than a black bar.

    Returns:
      `(batch, widths)` with `widths (B,) int32` the true widths.
    """
    h = lines[0].shape[0] if lines else LINE_HEIGHT
    batch = np.empty((len(lines), h, width, 1), np.uint8)
    widths = np.empty((len(lines),), np.int32)
    for i, line in enumerate(lines):
        w = min(line.shape[1], width)
        batch[i, :, :w, 0] = line[:, :w]
        batch[i, :, w:, 0] = np.median(line)
        widths[i] = w
    return batch, widths


def normalize(batch: jnp.ndarray) -> jnp.ndarray:
    """uint8 pixels -> float32 `x / 255 - 0.5`, the original's input scaling."""
    return batch.astype(jnp.float32) / 255.0 - 0.5
