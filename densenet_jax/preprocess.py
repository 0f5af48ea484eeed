"""The one place where a line image becomes recogniser input (training and inference alike).

1. `to_line_image`: any image (RGB or gray, any size) -> `(32, W) uint8` gray, aspect kept
   (`stretch_line` widens such a line for a second reading, see `recognizer`); a vertical
   crop (`is_vertical`) also becomes `vertical_lines`: its characters cut apart and laid
   side by side, and the crop turned a quarter either way.
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
#: `trim_line` leaves a line as it is rather than keep fewer of its rows than this.
MIN_TRIMMED_ROWS = 8


def to_line_image(
    image: np.ndarray, height: int = LINE_HEIGHT, max_width: int | None = None
) -> np.ndarray:
    """Converts a line crop to `(height, W) uint8` gray, keeping the aspect ratio.

    Args:
      image: `(h, w)` or `(h, w, 3)` RGB uint8 (other dtypes are scaled to uint8).
      max_width: if given, wider results are squeezed horizontally to this width.
    """
    img = to_gray(image)
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


# A crop this many times taller than wide holds a vertical line (as PP-OCR decides it).
VERTICAL_ASPECT = 1.5


def to_gray(image: np.ndarray) -> np.ndarray:
    """`(h, w)` or `(h, w, 3|4)` RGB(A), any dtype -> `(h, w) uint8` gray."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(
            img.astype(np.float32) * (255.0 if img.max(initial=0) <= 1 else 1), 0, 255
        ).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if img.shape[2] == 3 else cv2.COLOR_RGBA2GRAY)
    return img


def is_vertical(image: np.ndarray) -> bool:
    """Whether a crop `(h, w, ...)` is tall enough to hold a vertical line."""
    h, w = np.shape(image)[:2]
    return h > VERTICAL_ASPECT * w


def _cuts(profile: np.ndarray, first: int, last: int, pitch: float) -> tuple[list[int], float]:
    """Rows cutting `profile[first:last]` (ink per row) into characters `pitch` rows apart,
    each cut at the least-inked row within a quarter pitch of where it is expected; and the
    mean ink on the cuts (0: every cut in a gap)."""
    cuts, cost = [first], []
    while last - cuts[-1] > 1.5 * pitch:
        lo = int(cuts[-1] + 0.75 * pitch)
        hi = min(last, int(cuts[-1] + 1.25 * pitch) + 1)
        window = profile[lo:hi]
        # the least ink, nearest the expected row
        expected = cuts[-1] + pitch - lo
        k = int(np.lexsort((np.abs(np.arange(len(window)) - expected), window))[0])
        cuts.append(lo + k)
        cost.append(float(window[k]))
    cuts.append(last)
    return cuts, float(np.mean(cost)) if cost else 0.0


def stack_vertical(image: np.ndarray, height: int = LINE_HEIGHT) -> np.ndarray:
    """A vertical line (upright characters top to bottom) as a horizontal one.

    The crop is scaled to `height` px wide and its inked rows (background taken from the
    border) are cut into characters: CJK characters follow one another at a regular pitch,
    so the pitch (between half and 1.4 times the width) whose cuts cross the least ink,
    near the width of the ink, is taken, each cut at the least-inked row near where it is
    expected. The cells are laid side by side, each in a `height`-square cell, with gaps
    of `height // 8` px.

    `(h, w)` or `(h, w, 3)` -> `(height, W) uint8` gray.
    """
    gray = to_gray(image)
    h, w = gray.shape
    if h == 0 or w == 0:
        raise ValueError(f"empty line image of shape {np.shape(image)}")
    new_h = max(height, int(round(h * height / w)))
    col = cv2.resize(gray, (height, new_h), interpolation=cv2.INTER_AREA)
    border = np.concatenate([col[0], col[-1], col[:, 0], col[:, -1]])
    bg = float(np.median(border))
    diff = np.abs(col.astype(np.float32) - bg)
    ink = diff > max(40.0, 0.5 * float(diff.max()))
    profile = ink.mean(axis=1)
    rows = np.nonzero(profile > 0.02)[0]
    first, last = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, new_h)
    # A character's size: the width of the ink (a square character), at least half the
    # crop's. Cuts through little ink at a pitch near that size win (cutting every other
    # gap also crosses no ink).
    cols = np.nonzero(ink.mean(axis=0) > 0.02)[0]
    size = float(np.clip(cols[-1] + 1 - cols[0] if cols.size else height, height / 2, height))
    pitches = np.arange(0.5, 1.41, 0.05) * height
    # Cuts go to wide gaps: the ink per row averaged over 5 rows (a glyph's inner gaps of a
    # row or two are then inked, the 4-8 rows between characters not).
    smooth = np.convolve(profile, np.ones(5) / 5, mode="same")
    options = [_cuts(smooth, first, last, p) for p in pitches]
    penalties = [  # pitch: the character and the gap after it
        c + 0.15 * abs(np.log(p / (1.15 * size)))
        for p, (_, c) in zip(pitches, options, strict=True)
    ]
    cuts = options[int(np.argmin(penalties))][0]
    gap = np.full((height, height // 8), int(bg), np.uint8)
    pieces = []
    for y0, y1 in zip(cuts[:-1], cuts[1:], strict=True):
        cell = col[y0:y1]
        ch = min(cell.shape[0], height)
        canvas = np.full((height, height), int(bg), np.uint8)
        top = (height - ch) // 2
        canvas[top : top + ch] = cv2.resize(cell, (height, ch), interpolation=cv2.INTER_AREA)
        pieces += [gap, canvas]
    return np.concatenate(pieces + [gap], axis=1)


def vertical_lines(image: np.ndarray, height: int = LINE_HEIGHT) -> list[np.ndarray]:
    """The readings to try for a vertical crop: its characters stacked side by side
    (`stack_vertical`, for CJK columns), and the crop turned a quarter clockwise and
    anticlockwise (for Latin set along the side of a box). Each `(height, W) uint8`."""
    gray = to_gray(image)
    return [
        stack_vertical(gray, height),
        to_line_image(cv2.rotate(gray, cv2.ROTATE_90_CLOCKWISE), height),
        to_line_image(cv2.rotate(gray, cv2.ROTATE_90_COUNTERCLOCKWISE), height),
    ]


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


def trim_line(line: np.ndarray, top: float, bottom: float) -> np.ndarray:
    """`(32, w) uint8` -> `(32, w') uint8`: the line without `top` and `bottom` shares of
    its height (a negative share adds that many rows, repeating the edge row), scaled back
    to 32 rows with its aspect ratio kept. Returns `line` when fewer than `MIN_TRIMMED_ROWS`
    rows would be left. Padded crops hold strips of the neighbouring lines and frame edges
    at the top and bottom that the model reads as characters; a trimmed view leaves them
    out."""
    if not (-1 < top < 1 and -1 < bottom < 1):
        raise ValueError(f"trim shares must be in (-1, 1), got {(top, bottom)}")
    h = line.shape[0]
    cut_top, cut_bottom = int(round(top * h)), int(round(bottom * h))
    if h - cut_top - cut_bottom < MIN_TRIMMED_ROWS:
        return line
    view = line[max(cut_top, 0) : h - max(cut_bottom, 0)]
    if cut_top < 0 or cut_bottom < 0:
        view = cv2.copyMakeBorder(
            view, max(-cut_top, 0), max(-cut_bottom, 0), 0, 0, cv2.BORDER_REPLICATE
        )
    return line if view.shape[0] == h else to_line_image(view, h)


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
