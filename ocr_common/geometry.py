"""Geometry of text lines: corner order, reading order, widening and cropping quadrilaterals.

A line is a quadrilateral ``(4, 2)`` of ``(x, y)`` image pixels, clockwise on screen from the
text's top-left corner (``order_quad``). Coordinates are continuous: pixel ``(i, j)`` covers
``[j, j + 1) x [i, i + 1)``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def order_quad(quad: np.ndarray) -> np.ndarray:
    """Puts 4 corner points in the order top-left, top-right, bottom-right, bottom-left.

    That is clockwise on screen (image ``y`` points down), starting at the corner where the
    edge closest to pointing right (+x) begins: the text's top-left for lines that are
    tilted by less than 45 degrees.

    Args:
      quad: ``(4, 2)`` points ``(x, y)`` in any order.

    Returns:
      ``(4, 2) float32``.
    """
    q = np.asarray(quad, np.float64).reshape(4, 2)
    centre = q.mean(axis=0)
    # Increasing angle around the centre is clockwise on screen, because y points down.
    q = q[np.argsort(np.arctan2(q[:, 1] - centre[1], q[:, 0] - centre[0]), kind="stable")]
    edges = np.roll(q, -1, axis=0) - q
    rightward = edges[:, 0] / np.maximum(np.linalg.norm(edges, axis=1), 1e-9)
    return np.roll(q, -int(np.argmax(rightward)), axis=0).astype(np.float32)


def reading_order(quads: np.ndarray, row_overlap: float = 0.5) -> np.ndarray:
    """The order in which to read text lines: rows top to bottom, left to right in a row.

    The dominant direction of the lines (median angle of their top edges) is turned to the
    horizontal first, so that a tilted page is read by rows too. Lines are then taken in the
    order of their vertical centres; a line joins the current row when it overlaps the row
    vertically by at least ``row_overlap`` of the smaller height, else it starts a new row.

    Args:
      quads: ``(L, 4, 2)`` lines, clockwise from top-left.
      row_overlap: see above.

    Returns:
      ``(L,) int64`` indices into ``quads``.
    """
    q = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    if len(q) <= 1:
        return np.arange(len(q), dtype=np.int64)
    top_edges = q[:, 1] - q[:, 0]
    angles = np.arctan2(top_edges[:, 1], top_edges[:, 0])
    angles = angles[np.abs(angles) < math.pi / 4]
    theta = float(np.median(angles)) if angles.size else 0.0
    c, s = math.cos(theta), math.sin(theta)
    u = q[..., 0] * c + q[..., 1] * s  # along the text direction
    v = -q[..., 0] * s + q[..., 1] * c  # across it (down)
    top, bottom, left = v.min(axis=1), v.max(axis=1), u.min(axis=1)
    centre = 0.5 * (top + bottom)

    rows: list[list[int]] = []
    row_top = row_bottom = 0.0
    for i in np.lexsort((left, centre)):
        if rows:
            inter = min(bottom[i], row_bottom) - max(top[i], row_top)
            smaller = max(min(bottom[i] - top[i], row_bottom - row_top), 1e-6)
            if inter >= row_overlap * smaller:
                rows[-1].append(int(i))
                # The row's band is the mean of its members', so one odd box can't stretch it.
                row_top = float(np.mean(top[rows[-1]]))
                row_bottom = float(np.mean(bottom[rows[-1]]))
                continue
        rows.append([int(i)])
        row_top, row_bottom = float(top[i]), float(bottom[i])
    return np.asarray([i for row in rows for i in sorted(row, key=lambda k: left[k])], np.int64)


def widen_quad(quad: np.ndarray, margin: float) -> np.ndarray:
    """Lengthens a line's quadrilateral at both ends along its own direction.

    Each end moves outwards by ``margin`` times the quad's height (the mean length of its
    left and right sides), parallel to its top and bottom edges; tilted lines stay tilted.

    Args:
      quad: ``(4, 2)`` corners clockwise from the text's top-left (``order_quad``).
      margin: in line heights; 0 returns the quad unchanged, a negative value shortens it.

    Returns:
      ``(4, 2) float64``.
    """
    q = np.asarray(quad, np.float64).reshape(4, 2).copy()
    height = 0.5 * (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1]))
    for start, end in ((0, 1), (3, 2)):  # top edge, bottom edge
        edge = q[end] - q[start]
        step = edge / max(float(np.linalg.norm(edge)), 1e-9) * margin * height
        q[start] -= step
        q[end] += step
    return q


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Cuts a quadrilateral out of an image and warps it to an upright rectangle.

    Coordinates are continuous: pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, so the
    box ``(x0, y0)-(x1, y1)`` of integers crops exactly ``image[y0:y1, x0:x1]``. The output
    is as wide as the longer of the top and bottom edges and as high as the longer of the
    two sides; the quad's first corner lands at the output's top-left.

    Args:
      image: ``(H, W)`` or ``(H, W, C)`` uint8.
      quad: ``(4, 2)`` corners clockwise from the text's top-left, in image pixels.

    Returns:
      ``(h, w)`` or ``(h, w, C)`` uint8 with ``h, w >= 1``.
    """
    q = np.asarray(quad, np.float64).reshape(4, 2)
    width = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    height = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
    w, h = max(1, int(round(width))), max(1, int(round(height)))
    # Work on the quad's bounding region only: cheap on huge images, and keeps OpenCV's
    # remap coordinates well inside its 32767-pixel limit.
    x0 = int(np.clip(math.floor(q[:, 0].min()) - 1, 0, image.shape[1] - 1))
    y0 = int(np.clip(math.floor(q[:, 1].min()) - 1, 0, image.shape[0] - 1))
    x1 = int(np.clip(math.ceil(q[:, 0].max()) + 1, x0 + 1, image.shape[1]))
    y1 = int(np.clip(math.ceil(q[:, 1].max()) + 1, y0 + 1, image.shape[0]))
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    # OpenCV puts pixel centres at integer coordinates: shift corners by half a pixel.
    src = q - np.asarray([x0, y0], np.float64) - 0.5
    dst = np.asarray([[0, 0], [w, 0], [w, h], [0, h]], np.float64) - 0.5
    m = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    return cv2.warpPerspective(
        region, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
