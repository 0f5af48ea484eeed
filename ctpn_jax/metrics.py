"""Detection metrics: quadrilateral IoU, one-to-one matching, precision / recall / H-mean.

Protocol (ICDAR 2015 style, and the same rules as ``shared/dev/ocr_eval.py``): predictions
are matched one-to-one to cared-for ground-truth lines, highest quadrilateral IoU first,
when IoU >= 0.5; a prediction left unmatched that has IoU >= 0.5 with a don't-care ("###")
line, or has at least half of its own area inside one, is ignored (neither true nor false
positive).  ``P = TP / (TP + FP)``, ``R = TP / #cared-for lines``, ``H = 2PR / (P + R)``.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np


def _convex(quad: np.ndarray) -> np.ndarray:
    return cv2.convexHull(np.asarray(quad, np.float32).reshape(-1, 1, 2)).reshape(-1, 2)


def polygon_area(quad: np.ndarray) -> float:
    """Area of the convex hull of ``(P, 2)`` points."""
    hull = _convex(quad)
    return float(abs(cv2.contourArea(hull))) if len(hull) >= 3 else 0.0


def intersection_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area of the intersection of the convex hulls of two ``(P, 2)`` point sets."""
    ha, hb = _convex(a), _convex(b)
    if len(ha) < 3 or len(hb) < 3:
        return 0.0
    if (
        ha[:, 0].max() <= hb[:, 0].min()
        or hb[:, 0].max() <= ha[:, 0].min()
        or ha[:, 1].max() <= hb[:, 1].min()
        or hb[:, 1].max() <= ha[:, 1].min()
    ):
        return 0.0
    area, _ = cv2.intersectConvexConvex(ha, hb)
    return float(max(area, 0.0))


def quad_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two convex quadrilaterals ``(4, 2)``."""
    inter = intersection_area(a, b)
    union = polygon_area(a) + polygon_area(b) - inter
    return inter / union if union > 0 else 0.0


@dataclasses.dataclass
class MatchResult:
    """Counts of one image (or, summed, of a set)."""

    tp: int = 0
    fp: int = 0
    num_gt: int = 0
    ignored: int = 0

    def __add__(self, o: MatchResult) -> MatchResult:
        return MatchResult(
            self.tp + o.tp, self.fp + o.fp, self.num_gt + o.num_gt, self.ignored + o.ignored
        )

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.num_gt if self.num_gt else 0.0

    @property
    def hmean(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def match_detections(
    gt_quads: np.ndarray, gt_ignore: np.ndarray, pred_quads: np.ndarray, iou: float = 0.5
) -> MatchResult:
    """Match predictions to ground truth (protocol in the module docstring).

    Args:
        gt_quads: ``(G, 4, 2)`` ground-truth lines.
        gt_ignore: ``(G,) bool`` don't-care flags.
        pred_quads: ``(P, 4, 2)`` predictions.
        iou: matching threshold.
    """
    gt_quads = np.asarray(gt_quads, np.float32).reshape(-1, 4, 2)
    pred_quads = np.asarray(pred_quads, np.float32).reshape(-1, 4, 2)
    gt_ignore = np.asarray(gt_ignore, bool).reshape(-1)
    care = np.nonzero(~gt_ignore)[0]
    dont = np.nonzero(gt_ignore)[0]
    cand = []
    for g in care:
        for p in range(len(pred_quads)):
            v = quad_iou(gt_quads[g], pred_quads[p])
            if v >= iou:
                cand.append((-v, int(g), p))
    cand.sort()
    used_g, used_p = set(), set()
    for _, g, p in cand:
        if g not in used_g and p not in used_p:
            used_g.add(g)
            used_p.add(p)
    ignored = 0
    for p in range(len(pred_quads)):
        if p in used_p:
            continue
        area = polygon_area(pred_quads[p])
        for g in dont:
            inter = intersection_area(gt_quads[g], pred_quads[p])
            if quad_iou(gt_quads[g], pred_quads[p]) >= iou or (area > 0 and inter / area >= 0.5):
                ignored += 1
                break
    fp = len(pred_quads) - len(used_p) - ignored
    return MatchResult(len(used_p), fp, len(care), ignored)
