"""Annotated result images: the lines outlined on the image beside their text on white."""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

#: Largest side of the annotated image (each of its two panels), to keep the JPEG small.
DRAW_MAX_SIDE = 1600

#: Outline colours, one a line in turn.
COLOURS = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 200, 200),
    (240, 50, 230),
    (128, 128, 0),
    (0, 0, 128),
    (170, 110, 40),
)


def draw_results(
    image: np.ndarray,
    records: Sequence[dict],
    font_path: str | os.PathLike | None = None,
    max_side: int = DRAW_MAX_SIDE,
) -> np.ndarray:
    """The image with its lines outlined (left) beside the recognised text drawn at the same
    places on white (right).

    Args:
      image: ``(H, W, 3) uint8`` RGB, the original.
      records: line records with boxes in ``image``'s pixels.
      font_path: a CJK font (default ``ocr_common.fonts.default_font()``).
      max_side: each panel is downscaled so that its longer side is at most this.

    Returns:
      ``(h, 2 w, 3) uint8`` RGB.
    """
    from PIL import Image, ImageDraw

    from ocr_common.fonts import default_font, load_font

    small, s = fit_within(image, max_side)
    h, w = small.shape[:2]
    left = Image.fromarray(small).convert("RGBA")
    overlay = Image.new("RGBA", left.size, (0, 0, 0, 0))
    right = Image.new("RGB", (w, h), (255, 255, 255))
    draw_o, draw_r = ImageDraw.Draw(overlay), ImageDraw.Draw(right)
    font_path = font_path or default_font()
    for k, rec in enumerate(records):
        colour = COLOURS[k % len(COLOURS)]
        q = np.asarray(rec["box"], np.float64).reshape(4, 2) * s
        pts = [tuple(p) for p in q]
        draw_o.polygon(pts, fill=colour + (48,), outline=colour + (255,), width=2)
        draw_r.polygon(pts, outline=colour, width=1)
        text = rec["text"]
        if not text:
            continue
        box_w = max(np.linalg.norm(q[1] - q[0]), 1.0)
        box_h = max(np.linalg.norm(q[3] - q[0]), 1.0)
        size = int(np.clip(box_h * 0.8, 8, 256))
        length = load_font(font_path, size).getlength(text)
        if length > box_w:  # shrink to the box width, but stay legible
            size = max(8, int(size * box_w / length))
        centre_left = 0.5 * (q[0] + q[3])
        draw_r.text(
            (float(centre_left[0]) + 1, float(centre_left[1])),
            text,
            fill=(0, 0, 0),
            font=load_font(font_path, size),
            anchor="lm",
        )
    left = Image.alpha_composite(left, overlay).convert("RGB")
    return np.concatenate([np.asarray(left), np.asarray(right)], axis=1)


def fit_within(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscales ``(H, W, 3) uint8`` so that its longer side is at most ``max_side``.

    Returns:
      The image and the scale applied (1.0 when it already fits).
    """
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s == 1.0:
        return image, 1.0
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), s
