"""CTPN anchors: fixed-width vertical slices centred on every feature-map cell.

Coordinates are continuous image pixels (a pixel with index ``i`` covers ``[i, i + 1)``); a
box is ``x1, y1, x2, y2`` with width ``x2 - x1`` (no ``+1``), the convention used by
``kernels.nms`` and by every module of this package.

Feature-map cell ``(i, j)`` of a stride-16 network covers the image square
``[16 j, 16 j + 16) x [16 i, 16 i + 16)``; its ``k``-th anchor is centred on that square,
16 px wide and ``ANCHOR_HEIGHTS[k]`` px high.  These are the original CTPN's anchors (its
``[0, 0, 15, 15]`` base box in the ``+1`` convention is the same square).
"""

from __future__ import annotations

import numpy as np

#: Heights of the k = 10 anchors, about x1.4 per step (the original's values).
ANCHOR_HEIGHTS: tuple[float, ...] = (11.0, 16.0, 23.0, 33.0, 48.0, 68.0, 97.0, 139.0, 198.0, 283.0)
#: Width of every anchor in pixels.
ANCHOR_WIDTH: float = 16.0
#: Stride of the backbone (VGG16 conv5_3): one feature-map cell per 16 x 16 pixels.
FEATURE_STRIDE: int = 16
#: Number of anchors per feature-map cell.
NUM_ANCHORS: int = len(ANCHOR_HEIGHTS)


def feature_size(size: int, stride: int = FEATURE_STRIDE) -> int:
    """Feature-map extent for an input extent of ``size`` pixels (``ceil(size / stride)``).

    This matches ``CTPN``'s four 2x2 ``SAME`` max-pools.
    """
    return -(-int(size) // int(stride))


def anchor_grid(
    feat_h: int,
    feat_w: int,
    stride: int = FEATURE_STRIDE,
    heights: tuple[float, ...] = ANCHOR_HEIGHTS,
    width: float = ANCHOR_WIDTH,
) -> np.ndarray:
    """All anchors of a ``feat_h x feat_w`` feature map.

    Args:
        feat_h: feature-map height (rows).
        feat_w: feature-map width (columns).
        stride: pixels per feature-map cell.
        heights: the anchor heights, one anchor per entry.
        width: the anchor width.

    Returns:
        ``(feat_h, feat_w, K, 4) float32`` boxes ``x1, y1, x2, y2``; anchor ``[i, j, k]`` is
        centred on ``(stride * (j + 0.5), stride * (i + 0.5))``.
    """
    h = np.asarray(heights, np.float32)
    cx = (np.arange(feat_w, dtype=np.float32) + 0.5) * stride
    cy = (np.arange(feat_h, dtype=np.float32) + 0.5) * stride
    cx = np.broadcast_to(cx[None, :, None], (feat_h, feat_w, h.size))
    cy = np.broadcast_to(cy[:, None, None], (feat_h, feat_w, h.size))
    hh = np.broadcast_to(h[None, None, :], (feat_h, feat_w, h.size))
    return np.stack([cx - width / 2, cy - hh / 2, cx + width / 2, cy + hh / 2], axis=-1).astype(
        np.float32
    )


def anchor_centers_heights(
    feat_h: int,
    feat_w: int,
    stride: int = FEATURE_STRIDE,
    heights: tuple[float, ...] = ANCHOR_HEIGHTS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor centres and heights, broadcastable to ``(feat_h, feat_w, K)``.

    Returns:
        ``cx (1, feat_w, 1)``, ``cy (feat_h, 1, 1)`` and ``h (1, 1, K)``, all float32.
    """
    cx = ((np.arange(feat_w, dtype=np.float32) + 0.5) * stride)[None, :, None]
    cy = ((np.arange(feat_h, dtype=np.float32) + 0.5) * stride)[:, None, None]
    h = np.asarray(heights, np.float32)[None, None, :]
    return cx, cy, h
