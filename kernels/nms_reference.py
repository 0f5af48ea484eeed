"""The NMS reference: greedy non-maximum suppression in plain numpy.

The classic loop (as the original's ``py_cpu_nms``): take the highest-scoring box left, keep
it, drop every box that overlaps it by more than the threshold, repeat. IoU is continuous
(no ``+1`` on widths), computed in float32 like the kernels; a box of zero area overlaps
nothing, so it is never suppressed; ties in score keep the lower index first. The tests
check ``kernels.nms_jnp`` and ``kernels.nms_pallas`` against it and ``bench/nms.py`` times
it beside them.
"""

from __future__ import annotations

import numpy as np


def nms_reference(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_output_size: int | None = None
) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, highest score first.

    Args:
      boxes: ``(N, 4)`` ``(x1, y1, x2, y2)``, any float dtype (computed in float32).
      scores: ``(N,)``.
      iou_threshold: a box whose IoU with a kept box is above this is suppressed.
      max_output_size: stop after keeping this many (None: no limit).

    Returns:
      ``(K,) int64`` indices into ``boxes``.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    threshold = np.float32(iou_threshold)  # compare in float32, as the kernels do
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")  # stable: ties keep the lower index first
    keep: list[int] = []
    while order.size and (max_output_size is None or len(keep) < max_output_size):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = w * h
        union = area[i] + area[rest] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            overlap = np.where(union > 0, inter / union, np.float32(0))
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)
