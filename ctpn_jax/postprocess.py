"""From CTPN outputs to text lines: decode, threshold, NMS, text-line construction.

Everything after the network runs on the host in vectorised numpy (the NMS calls the
jitted ``kernels.nms`` on a power-of-two padded size, so it compiles a handful of times).
Coordinates are continuous pixels of the image the network saw (see ``ctpn_jax.anchors``);
``ctpn_jax.detect`` maps them back to the input image.

Text-line construction follows the original CTPN:

1. proposal ``j`` is a candidate successor of ``i`` when ``0 < x1_j - x1_i <= max_gap`` (or
   ``<= max_gap_rel`` times ``i``'s height, when larger: large lettering has gaps wider
   than 30 px between its letters and words; 0 = off, as the original) and
   the pair overlaps vertically (overlap / smaller height >= ``min_v_overlap``) and has
   similar heights (smaller / larger >= ``min_size_similarity``); only the nearest such
   column counts;
2. ``i -> j`` is an edge when ``j`` is the best-scoring successor of ``i`` and ``i`` scores
   at least as high as every precursor of ``j`` in ``j``'s nearest precursor column
   (mutual best neighbours);
3. connected chains become lines (chains that meet are merged); a line's score is the mean
   of its proposals' scores;
4. "H" mode fits straight lines through the proposals' tops and bottoms (least squares) and
   returns the axis-aligned box between them; "O" mode fits the centre line through the
   proposal centres and returns the oriented rectangle around it;
5. side refinement moves the line's left end to the leftmost proposal's predicted side and
   the right end to the rightmost proposal's;
6. lines are kept above ``line_min_score``, with at least ``min_proposals`` proposals
   (or fewer, scoring above ``lone_min_score``),
   aspect ``width / height > min_ratio`` and height >= ``min_height``, then NMS over lines.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import jax
import numpy as np

from ctpn_jax.anchors import ANCHOR_HEIGHTS, ANCHOR_WIDTH, FEATURE_STRIDE
from ocr_common.exported import ExportedJit

Mode = Literal["H", "O"]


@dataclasses.dataclass(frozen=True)
class PostprocessConfig:
    """Test-time settings (defaults: the original's).

    Attributes:
        score_threshold: proposals with text probability above this are kept.
        nms_iou: IoU threshold of the NMS over proposals.
        max_proposals: at most this many proposals (highest scores) enter the NMS.
        max_gap: largest horizontal distance (px, between left edges) of neighbours.
        max_gap_rel: when > 0, neighbours may also be this many times a proposal's height
            apart (not in the original, whose gap is absolute; 0 = off).
        min_v_overlap: minimum vertical overlap over the smaller height.
        min_size_similarity: minimum ratio of the smaller to the larger height.
        line_min_score: lines whose mean proposal score is not above this are dropped.
        min_proposals: lines need at least this many proposals (the original: 2).
        lone_min_score: a line of fewer proposals is kept when its score is above this (a
            lone digit or code on a receipt is one or two proposals wide; 1 = never, as the
            original).
        min_ratio: lines need ``width / height`` above this.
        min_height: lines need at least this height in pixels.
        line_nms_iou: IoU threshold of the NMS over line boxes.
        line_containment: when > 0, a line whose box lies inside a better line's box for
            more than this fraction of its area is dropped too (not in the original, which
            keeps such fragments; 0 = off).
        mode: "H" (axis-aligned boxes) or "O" (oriented rectangles).
        side_refinement: use the side-refinement outputs to move line ends.
        max_side_offset: side offsets are clipped to this many anchor widths.
    """

    score_threshold: float = 0.7
    nms_iou: float = 0.3
    max_proposals: int = 4096
    max_gap: float = 30.0
    max_gap_rel: float = 0.0
    min_v_overlap: float = 0.6
    min_size_similarity: float = 0.6
    line_min_score: float = 0.6
    min_proposals: int = 2
    lone_min_score: float = 1.0
    min_ratio: float = 0.01
    min_height: float = 4.0
    line_nms_iou: float = 0.3
    line_containment: float = 0.0
    mode: Mode = "H"
    side_refinement: bool = True
    max_side_offset: float = 2.0


def decode_proposals(
    cls_logits: np.ndarray,
    vertical: np.ndarray,
    side: np.ndarray,
    stride: int = FEATURE_STRIDE,
    heights: tuple[float, ...] = ANCHOR_HEIGHTS,
    anchor_width: float = ANCHOR_WIDTH,
    max_side_offset: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn the outputs of one image into proposal boxes.

    Args:
        cls_logits: ``(Hf, Wf, K, 2)`` logits (index 1 = text).
        vertical: ``(Hf, Wf, K, 2)`` ``(v_c, v_h)``.
        side: ``(Hf, Wf, K)`` side offsets ``o``.
        stride, heights, anchor_width: anchor geometry.
        max_side_offset: ``o`` is clipped to ``[-max_side_offset, max_side_offset]``.

    Returns:
        ``boxes (Hf, Wf, K, 4) float32`` (anchor columns, decoded rows), ``scores (Hf, Wf, K)
        float32`` (text probability) and ``side_x (Hf, Wf, K) float32`` (predicted x of the
        line end for this anchor).
    """
    logits = np.asarray(cls_logits, np.float32)
    vertical = np.asarray(vertical, np.float32)
    side = np.asarray(side, np.float32)
    hf, wf, k = logits.shape[:3]
    z = logits[..., 1] - logits[..., 0]
    scores = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
    cx = ((np.arange(wf, dtype=np.float32) + 0.5) * stride)[None, :, None]
    cy_a = ((np.arange(hf, dtype=np.float32) + 0.5) * stride)[:, None, None]
    ha = np.asarray(heights, np.float32)[None, None, :]
    cy = vertical[..., 0] * ha + cy_a
    h = np.exp(np.clip(vertical[..., 1], -10, 10)) * ha
    shape = (hf, wf, k)
    boxes = np.stack(
        [
            np.broadcast_to(cx - anchor_width / 2, shape),
            cy - h / 2,
            np.broadcast_to(cx + anchor_width / 2, shape),
            cy + h / 2,
        ],
        axis=-1,
    )
    side_x = cx + np.clip(side, -max_side_offset, max_side_offset) * anchor_width
    return boxes.astype(np.float32), scores.astype(np.float32), side_x.astype(np.float32)


@functools.cache
def _nms_jit(size: int) -> ExportedJit:
    """``kernels.nms`` keeping at most ``size`` boxes, jitted (its programs kept on disk)."""
    from kernels import nms

    return ExportedJit(jax.jit(functools.partial(nms, max_output_size=size)), f"nms {size}")


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS of ``(N, 4)`` boxes through ``kernels.nms``; returns kept indices, best first.

    The inputs are padded to a power of two (at least 64) so that the jitted NMS compiles
    once per size class.
    """
    n = int(boxes.shape[0])
    if n == 0:
        return np.zeros((0,), np.int64)
    size = max(64, 1 << (n - 1).bit_length())
    b = np.zeros((size, 4), np.float32)
    b[:n] = boxes
    s = np.full((size,), -np.inf, np.float32)
    s[:n] = scores
    keep, num = _nms_jit(size)(b, s, np.float32(iou_threshold))
    keep = np.asarray(keep)[: int(num)]
    return keep[(keep >= 0) & (keep < n)].astype(np.int64)


def _candidate_pairs(boxes: np.ndarray, cfg: PostprocessConfig) -> tuple[np.ndarray, ...]:
    """Pairs ``(i, j, dx)`` with ``0 < dx = x1_j - x1_i <= reach_i`` (``max_gap``, or
    ``max_gap_rel`` times ``i``'s height when larger) that meet the vertical overlap and
    size-similarity rules; found with a sort and a window per proposal, so the work is
    ``O(N log N + pairs)`` instead of ``O(N^2)``."""
    n = boxes.shape[0]
    x1, y1, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 3]
    reach = np.maximum(cfg.max_gap, cfg.max_gap_rel * (y2 - y1))
    order = np.argsort(x1, kind="stable")
    xs = x1[order]
    lo = np.searchsorted(xs, xs, side="right")  # first proposal strictly to the right
    hi = np.searchsorted(xs, xs + reach[order], side="right")
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros((0,), np.int64)
        return empty, empty, np.zeros((0,), np.float64)
    rows = np.repeat(np.arange(n), counts)
    starts = np.cumsum(counts) - counts
    cols = lo[rows] + (np.arange(total) - starts[rows])
    i, j = order[rows], order[cols]
    h = np.maximum(y2 - y1, 1e-6)
    inter = np.maximum(np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j]), 0.0)
    hmin, hmax = np.minimum(h[i], h[j]), np.maximum(h[i], h[j])
    ok = (inter / hmin >= cfg.min_v_overlap) & (hmin / hmax >= cfg.min_size_similarity)
    return i[ok], j[ok], (x1[j] - x1[i])[ok]


def _pair_graph(boxes: np.ndarray, scores: np.ndarray, cfg: PostprocessConfig) -> np.ndarray:
    """``(N,) int64``: each proposal's successor in the text-line graph, -1 if none."""
    n = boxes.shape[0]
    succ_of = np.full(n, -1, np.int64)
    i, j, dx = _candidate_pairs(boxes, cfg)
    if i.size == 0:
        return succ_of
    # Successors of i: the candidates in the nearest column to its right; keep the best
    # scoring one (lowest index on ties).
    near_s = np.full(n, np.inf)
    np.minimum.at(near_s, i, dx)
    si, sj = i[dx == near_s[i]], j[dx == near_s[i]]
    o = np.lexsort((sj, -scores[sj], si))
    first = np.r_[True, si[o][1:] != si[o][:-1]]
    best = np.full(n, -1, np.int64)
    best[si[o][first]] = sj[o][first]
    # Precursors of j: the candidates in the nearest column to its left.
    near_p = np.full(n, np.inf)
    np.minimum.at(near_p, j, dx)
    pi, pj = i[dx == near_p[j]], j[dx == near_p[j]]
    max_prec = np.full(n, -np.inf)
    np.maximum.at(max_prec, pj, scores[pi])
    has = best >= 0
    edge = has & (scores >= max_prec[np.where(has, best, 0)])
    succ_of[edge] = best[edge]
    return succ_of


def _group_chains(succ: np.ndarray) -> np.ndarray:
    """Label each proposal with its chain: ``(N,) int64`` group ids, -1 for isolated ones."""
    n = succ.shape[0]
    if n == 0:
        return np.zeros((0,), np.int64)
    nxt = np.where(succ >= 0, succ, np.arange(n))
    for _ in range(max(1, int(np.ceil(np.log2(n))) + 1)):
        nxt = nxt[nxt]
    has_in = np.zeros(n, bool)
    has_in[succ[succ >= 0]] = True
    connected = (succ >= 0) | has_in
    _, gid = np.unique(nxt, return_inverse=True)
    return np.where(connected, gid, -1)


def _group_line_fit(
    x: np.ndarray, y: np.ndarray, gid: np.ndarray, num: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group least-squares line ``y = a x + b``: ``(num,)`` slopes and intercepts."""
    cnt = np.bincount(gid, minlength=num).astype(np.float64)
    sx = np.bincount(gid, x, minlength=num)
    sy = np.bincount(gid, y, minlength=num)
    mx, my = sx / np.maximum(cnt, 1), sy / np.maximum(cnt, 1)
    dxg, dyg = x - mx[gid], y - my[gid]
    sxx = np.bincount(gid, dxg * dxg, minlength=num)
    sxy = np.bincount(gid, dxg * dyg, minlength=num)
    a = np.where(sxx > 1e-9, sxy / np.where(sxx > 1e-9, sxx, 1.0), 0.0)
    return a, my - a * mx


def text_lines_from_proposals(
    boxes: np.ndarray,
    scores: np.ndarray,
    side_x: np.ndarray | None = None,
    cfg: PostprocessConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Connect proposals into text lines.

    Args:
        boxes: ``(N, 4) float32`` proposals ``x1, y1, x2, y2`` (after NMS).
        scores: ``(N,) float32`` text probabilities.
        side_x: ``(N,) float32`` predicted line-end x per proposal (``decode_proposals``);
            ``None`` disables side refinement.
        cfg: settings (mode, thresholds).

    Returns:
        ``quads (L, 4, 2) float32`` clockwise from top-left (top-left, top-right,
        bottom-right, bottom-left) and ``scores (L,) float32``, best first.
    """
    cfg = cfg or PostprocessConfig()
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    empty = (np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32))
    if boxes.shape[0] == 0:
        return empty
    gid = _group_chains(_pair_graph(boxes, scores, cfg))
    if cfg.min_proposals <= 1 or cfg.lone_min_score < 1:  # isolated proposals: lines too
        iso = gid < 0
        gid = np.where(iso, gid.max(initial=-1) + 1 + np.cumsum(iso) - 1, gid)
    member = gid >= 0
    if not member.any():
        return empty
    idx = np.nonzero(member)[0]
    _, g = np.unique(gid[idx], return_inverse=True)
    num = int(g.max()) + 1
    b, s = boxes[idx], scores[idx]
    cnt = np.bincount(g, minlength=num)
    line_score = np.bincount(g, s, minlength=num) / cnt

    x0 = np.full(num, np.inf)
    np.minimum.at(x0, g, b[:, 0])
    x1 = np.full(num, -np.inf)
    np.maximum.at(x1, g, b[:, 2])
    half = 0.5 * (b[:, 2] - b[:, 0]).mean()
    cx = 0.5 * (b[:, 0] + b[:, 2])

    # Side refinement: leftmost / rightmost proposal of each line (best score on ties).
    xl, xr = x0.copy(), x1.copy()
    if cfg.side_refinement and side_x is not None:
        sx = np.asarray(side_x, np.float64).reshape(-1)[idx]
        order = np.lexsort((-s, b[:, 0], g))  # by group, then x1, then best score
        first = order[np.r_[True, g[order][1:] != g[order][:-1]]]
        order_r = np.lexsort((-s, -b[:, 2], g))
        last = order_r[np.r_[True, g[order_r][1:] != g[order_r][:-1]]]
        xl[g[first]] = sx[first]
        xr[g[last]] = sx[last]
        bad = xr - xl < 1.0
        xl, xr = np.where(bad, x0, xl), np.where(bad, x1, xr)

    ta, tb = _group_line_fit(cx, b[:, 1], g, num)
    ba, bb = _group_line_fit(cx, b[:, 3], g, num)
    el, er = x0 + half, x1 - half  # centres of the end proposals
    if cfg.mode == "H":
        top = np.minimum(ta * el + tb, ta * er + tb)
        bottom = np.maximum(ba * el + bb, ba * er + bb)
        quads = np.stack(
            [
                np.stack([xl, top], -1),
                np.stack([xr, top], -1),
                np.stack([xr, bottom], -1),
                np.stack([xl, bottom], -1),
            ],
            axis=1,
        )
        heights = bottom - top
    elif cfg.mode == "O":
        ca, cb = _group_line_fit(cx, 0.5 * (b[:, 1] + b[:, 3]), g, num)
        hv = np.bincount(g, b[:, 3] - b[:, 1], minlength=num) / cnt
        cos = 1.0 / np.sqrt(1.0 + ca * ca)
        sin = ca * cos
        # A slab of width w through a band of thickness T tilted by theta is
        # T / cos + w |tan| high, so T = (hv - w |tan|) cos.
        thick = np.maximum(hv - 2 * half * np.abs(ca), 0.5 * hv) * cos
        # The ends of the rectangle: its extreme corners lie at xl / xr.
        pl_x = xl + 0.5 * thick * np.abs(sin)
        pr_x = xr - 0.5 * thick * np.abs(sin)
        pl = np.stack([pl_x, ca * pl_x + cb], -1)
        pr = np.stack([pr_x, ca * pr_x + cb], -1)
        nrm = np.stack([-sin, cos], -1) * (0.5 * thick)[:, None]  # points down
        quads = np.stack([pl - nrm, pr - nrm, pr + nrm, pl + nrm], axis=1)
        heights = thick
    else:
        raise ValueError(f"mode must be 'H' or 'O', got {cfg.mode!r}")

    widths = xr - xl
    keep = (
        (line_score > cfg.line_min_score)
        & ((cnt >= cfg.min_proposals) | (line_score > cfg.lone_min_score))
        & (widths / np.maximum(heights, 1e-6) > cfg.min_ratio)
        & (heights >= cfg.min_height)
    )
    quads, line_score = quads[keep], line_score[keep]
    if quads.shape[0] == 0:
        return empty
    aabb = bounding_boxes(quads)
    k = nms_numpy(aabb.astype(np.float32), line_score.astype(np.float32), cfg.line_nms_iou)
    if cfg.line_containment > 0:
        k = k[_not_contained(aabb[k], cfg.line_containment)]
    return quads[k].astype(np.float32), line_score[k].astype(np.float32)


def bounding_boxes(quads: np.ndarray) -> np.ndarray:
    """``(L, 4, 2)`` quadrilaterals -> ``(L, 4)`` enclosing boxes ``x1, y1, x2, y2``."""
    return np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1)


def covered_fraction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(A, B)``: the fraction of each box of ``a (A, 4)``'s area that each box of
    ``b (B, 4)`` covers (boxes ``x1, y1, x2, y2``)."""
    w = np.maximum(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0
    )
    h = np.maximum(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0
    )
    area = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-6)
    return w * h / area[:, None]


def _not_contained(boxes: np.ndarray, fraction: float) -> np.ndarray:
    """``(L,) bool``: boxes (sorted best first) not covered, for more than ``fraction`` of
    their area, by a better box that is itself kept."""
    n = boxes.shape[0]
    # covers[i, j]: box i covers box j
    covers = (covered_fraction(boxes, boxes).T > fraction) & (
        np.arange(n)[:, None] < np.arange(n)[None, :]
    )
    kept = np.ones(n, bool)
    for _ in range(n + 1):  # kept_j = no kept i < j covers j; the fixed point is the greedy pass
        new = ~np.any(covers & kept[:, None], axis=0)
        if np.array_equal(new, kept):
            break
        kept = new
    return kept


def detect_text_lines(
    cls_logits: np.ndarray,
    vertical: np.ndarray,
    side: np.ndarray,
    image_hw: tuple[int, int],
    cfg: PostprocessConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Network outputs of one image -> text lines.

    Args:
        cls_logits: ``(Hf, Wf, K, 2)``; vertical: ``(Hf, Wf, K, 2)``; side: ``(Hf, Wf, K)``.
        image_hw: ``(height, width)`` of the image content the network saw (padding beyond it
            is ignored).
        cfg: settings.

    Returns:
        ``quads (L, 4, 2) float32`` and ``scores (L,) float32`` in the pixels of the image
        the network saw, best first.
    """
    cfg = cfg or PostprocessConfig()
    boxes, scores, side_x = decode_proposals(
        cls_logits, vertical, side, max_side_offset=cfg.max_side_offset
    )
    hh, ww = float(image_hw[0]), float(image_hw[1])
    hf, wf, k = scores.shape
    cx = (np.arange(wf) + 0.5) * FEATURE_STRIDE
    cy = (np.arange(hf) + 0.5) * FEATURE_STRIDE
    inside = (cy[:, None, None] < hh) & (cx[None, :, None] < ww)
    keep = (scores > cfg.score_threshold) & inside
    boxes, scores, side_x = boxes[keep], scores[keep], side_x[keep]
    if scores.size > cfg.max_proposals:
        top = np.argpartition(-scores, cfg.max_proposals - 1)[: cfg.max_proposals]
        boxes, scores, side_x = boxes[top], scores[top], side_x[top]
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, ww)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, hh)
    k = nms_numpy(boxes, scores, cfg.nms_iou)
    boxes, scores, side_x = boxes[k], scores[k], side_x[k]
    quads, line_scores = text_lines_from_proposals(
        boxes, scores, side_x if cfg.side_refinement else None, cfg
    )
    quads[..., 0] = np.clip(quads[..., 0], 0, ww)
    quads[..., 1] = np.clip(quads[..., 1], 0, hh)
    return quads, line_scores
