"""CTPN training targets: strips, anchor labels, sampling, vertical and side targets.

Every function here is jittable with static shapes: ground-truth boxes come padded to a
fixed count ``G`` with a validity mask; the feature-map size is static.

Conventions (see ``ctpn_jax.anchors``): continuous pixel coordinates, boxes ``x1, y1, x2, y2``
with no ``+1``.  Ground-truth lines are quadrilaterals ``(G, 4, 2)`` (points in order around
the polygon, clockwise from top-left for the readers of ``ctpn_jax.data``).

A ground-truth line is cut into strips on the anchor grid: the strip of line ``g`` in
feature-map column ``j`` is the part of the line's polygon inside the column
``[16 j, 16 j + 16)``; its box spans that horizontal overlap and the polygon's vertical extent
there (so tilted lines give strips that follow the tilt).  End strips can be narrower than
16 px (as in the original), strips narrower than ``min_strip_width`` are dropped.  Anchors
only overlap strips of their own column, so IoUs are computed per column:
``(Hf, Wf, K, G)`` instead of ``(Hf * Wf * K, G * Wf)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ctpn_jax.anchors import ANCHOR_HEIGHTS, ANCHOR_WIDTH, FEATURE_STRIDE


@dataclasses.dataclass(frozen=True)
class TargetConfig:
    """Target-assignment settings (defaults: the original CTPN's).

    Attributes:
        positive_iou: an anchor is positive when its IoU with a strip is above this.
        negative_iou: an anchor is negative when its IoU with every strip is below this.
        batch_size: anchors sampled per image for the classification loss.
        positive_fraction: at most this fraction of the sampled anchors is positive.
        side_distance: anchors whose centre is within this many pixels of a line's left or
            right end get a side-refinement target.
        min_strip_width: strips narrower than this (px) are dropped.
        allowed_border: anchors may stick out of the image by this many pixels; anchors
            further outside are ignored (neither positive nor negative).
        stride: feature stride in pixels.
        heights: anchor heights.
        anchor_width: anchor width in pixels.
    """

    positive_iou: float = 0.7
    negative_iou: float = 0.3
    batch_size: int = 300
    positive_fraction: float = 0.3
    side_distance: float = 32.0
    min_strip_width: float = 2.0
    allowed_border: float = 0.0
    stride: int = FEATURE_STRIDE
    heights: tuple[float, ...] = ANCHOR_HEIGHTS
    anchor_width: float = ANCHOR_WIDTH


def quad_strips(
    quads: jax.Array, feat_w: int, stride: int = FEATURE_STRIDE
) -> tuple[jax.Array, jax.Array]:
    """Cut quadrilaterals into per-column strips.

    Args:
        quads: ``(G, 4, 2) float32`` convex quadrilaterals (points in polygon order).
        feat_w: number of feature-map columns (static).
        stride: column width in pixels.

    Returns:
        ``strips (G, feat_w, 4) float32`` boxes ``x1, y1, x2, y2`` (the part of each polygon
        inside each column) and ``width (G, feat_w) float32``, the strip width (0 where the
        polygon does not reach the column; the box is then meaningless).
    """
    quads = jnp.asarray(quads, jnp.float32)
    px, py = quads[..., 0], quads[..., 1]  # (G, 4)
    qx, qy = jnp.roll(px, -1, axis=1), jnp.roll(py, -1, axis=1)
    xmin, xmax = px.min(axis=1), px.max(axis=1)  # (G,)
    col0 = jnp.arange(feat_w, dtype=jnp.float32) * stride  # (Wf,)
    sx0 = jnp.maximum(col0[None, :], xmin[:, None])  # (G, Wf)
    sx1 = jnp.minimum(col0[None, :] + stride, xmax[:, None])
    width = jnp.maximum(sx1 - sx0, 0.0)

    # Candidate points of polygon n slab: edge crossings at both slab borders, and vertices.
    xb = jnp.stack([sx0, sx1], axis=-1)[..., None]  # (G, Wf, 2, 1)
    e_px, e_py = px[:, None, None, :], py[:, None, None, :]  # (G, 1, 1, 4)
    e_qx, e_qy = qx[:, None, None, :], qy[:, None, None, :]
    lo, hi = jnp.minimum(e_px, e_qx), jnp.maximum(e_px, e_qx)
    slanted = hi > lo
    crosses = (xb >= lo) & (xb <= hi) & slanted
    t = (xb - e_px) / jnp.where(slanted, e_qx - e_px, 1.0)
    y_cross = e_py + t * (e_qy - e_py)  # (G, Wf, 2, 4)
    y_cross = y_cross.reshape(*y_cross.shape[:2], 8)
    crosses = crosses.reshape(*crosses.shape[:2], 8)
    v_in = (px[:, None, :] >= sx0[..., None]) & (px[:, None, :] <= sx1[..., None])  # (G, Wf, 4)
    v_y = jnp.broadcast_to(py[:, None, :], v_in.shape)
    ys = jnp.concatenate([y_cross, v_y], axis=-1)
    ok = jnp.concatenate([crosses, v_in], axis=-1)
    y0 = jnp.min(jnp.where(ok, ys, jnp.inf), axis=-1)
    y1 = jnp.max(jnp.where(ok, ys, -jnp.inf), axis=-1)
    has = jnp.any(ok, axis=-1) & (width > 0)
    y0 = jnp.where(has, y0, 0.0)
    y1 = jnp.where(has, y1, 0.0)
    width = jnp.where(has & (y1 > y0), width, 0.0)
    return jnp.stack([sx0, y0, sx1, y1], axis=-1), width


def _anchor_rows(feat_h: int, cfg: TargetConfig) -> tuple[jax.Array, jax.Array]:
    """Anchor ``y1, y2`` as ``(Hf, 1, K, 1)`` arrays."""
    cy = (jnp.arange(feat_h, dtype=jnp.float32) + 0.5) * cfg.stride
    h = jnp.asarray(cfg.heights, jnp.float32)
    y1 = cy[:, None] - h[None, :] / 2
    y2 = cy[:, None] + h[None, :] / 2
    return y1[:, None, :, None], y2[:, None, :, None]


def strip_anchor_iou(
    strips: jax.Array, strip_width: jax.Array, feat_h: int, cfg: TargetConfig
) -> tuple[jax.Array, jax.Array]:
    """IoU of every anchor with the strip of every line in the anchor's own column.

    Args:
        strips: ``(G, Wf, 4) float32`` from ``quad_strips``.
        strip_width: ``(G, Wf) float32`` strip widths (0 = no strip).
        feat_h: feature-map rows (static).
        cfg: anchor geometry.

    Returns:
        ``iou (Hf, Wf, K, G) float32`` (0 where there is no strip) and
        ``inter_h (Hf, Wf, K, G) float32``, the vertical overlap in pixels.
    """
    ay1, ay2 = _anchor_rows(feat_h, cfg)
    sy1 = strips[..., 1].T[None, :, None, :]  # (1, Wf, 1, G)
    sy2 = strips[..., 3].T[None, :, None, :]
    sw = strip_width.T[None, :, None, :]
    inter_h = jnp.maximum(jnp.minimum(ay2, sy2) - jnp.maximum(ay1, sy1), 0.0)
    inter = inter_h * sw
    union = cfg.anchor_width * (ay2 - ay1) + sw * (sy2 - sy1) - inter
    iou = jnp.where(sw > 0, inter / jnp.maximum(union, 1e-6), 0.0)
    return iou, jnp.where(sw > 0, inter_h, 0.0)


def anchor_inside(feat_h: int, feat_w: int, image_hw: jax.Array, cfg: TargetConfig) -> jax.Array:
    """``(Hf, Wf, K) bool``: anchors lying inside the ``image_hw = (height, width)`` image."""
    ay1, ay2 = _anchor_rows(feat_h, cfg)
    ay1, ay2 = ay1[..., 0], ay2[..., 0]  # (Hf, 1, K)
    cx = (jnp.arange(feat_w, dtype=jnp.float32) + 0.5) * cfg.stride
    ax1 = (cx - cfg.anchor_width / 2)[None, :, None]
    ax2 = (cx + cfg.anchor_width / 2)[None, :, None]
    hw = jnp.asarray(image_hw, jnp.float32)
    b = cfg.allowed_border
    return (ax1 >= -b) & (ay1 >= -b) & (ax2 <= hw[1] + b) & (ay2 <= hw[0] + b)


def assign_labels(
    quads: jax.Array,
    valid: jax.Array,
    ignore: jax.Array,
    image_hw: jax.Array,
    feat_shape: tuple[int, int],
    cfg: TargetConfig = TargetConfig(),
) -> dict[str, jax.Array]:
    """Label every anchor before sampling.

    Rules (the original's): among anchors inside the image, negative (0) when the IoU with
    every strip of a cared-for line is below ``negative_iou``; positive (1) when the IoU with
    some strip is above ``positive_iou``, and for each strip the anchors with the highest IoU
    (ties included, IoU > 0) are positive; everything else is ignored (-1).  Anchors that
    overlap a strip of a don't-care line are never negative.

    Args:
        quads: ``(G, 4, 2) float32`` ground-truth lines in (resized) image pixels.
        valid: ``(G,) bool``, False for padding entries.
        ignore: ``(G,) bool``, True for don't-care ("###") lines.
        image_hw: ``(2,)`` height and width of the image content (padding excluded).
        feat_shape: ``(Hf, Wf)`` static feature-map size.
        cfg: settings.

    Returns:
        dict of ``labels (Hf, Wf, K) int32`` in {-1, 0, 1}, ``matched (Hf, Wf, K) int32``
        (index of the line whose strip has the highest IoU with the anchor),
        ``max_iou (Hf, Wf, K) float32``, ``strips (G, Wf, 4)``, ``strip_width (G, Wf)``.
    """
    feat_h, feat_w = feat_shape
    valid = jnp.asarray(valid, bool)
    ignore = jnp.asarray(ignore, bool)
    strips, width = quad_strips(quads, feat_w, cfg.stride)
    width = jnp.where(valid[:, None], width, 0.0)
    care = valid & ~ignore
    care_w = jnp.where(care[:, None] & (width >= cfg.min_strip_width), width, 0.0)
    dc_w = jnp.where(ignore[:, None], width, 0.0)

    iou, _ = strip_anchor_iou(strips, care_w, feat_h, cfg)  # (Hf, Wf, K, G)
    _, dc_inter = strip_anchor_iou(strips, dc_w, feat_h, cfg)
    inside = anchor_inside(feat_h, feat_w, image_hw, cfg)  # (Hf, Wf, K)

    max_iou = iou.max(axis=-1)
    matched = jnp.argmax(iou, axis=-1).astype(jnp.int32)
    touches_dc = jnp.any(dc_inter > 0, axis=-1)

    # Best anchors of each strip (over the anchors inside the image).
    iou_in = jnp.where(inside[..., None], iou, 0.0)
    best = iou_in.max(axis=(0, 2), keepdims=True)  # (1, Wf, 1, G)
    is_best = jnp.any((iou_in == best) & (best > 0), axis=-1)

    labels = jnp.full(max_iou.shape, -1, jnp.int32)
    labels = jnp.where(inside & (max_iou < cfg.negative_iou) & ~touches_dc, 0, labels)
    labels = jnp.where(inside & ((max_iou > cfg.positive_iou) | is_best), 1, labels)
    return {
        "labels": labels,
        "matched": matched,
        "max_iou": max_iou,
        "strips": strips,
        "strip_width": care_w,
    }


def sample_labels(
    labels: jax.Array, key: jax.Array, batch_size: int = 300, positive_fraction: float = 0.3
) -> jax.Array:
    """Randomly subsample labelled anchors, as the original does.

    At most ``int(positive_fraction * batch_size)`` positives are kept (chosen uniformly at
    random), then negatives fill the batch up to ``batch_size``; the others become -1.

    Args:
        labels: ``(...,) int32`` in {-1, 0, 1}.
        key: PRNG key.
        batch_size: anchors per image (static).
        positive_fraction: cap on the positive share (static).

    Returns:
        ``labels`` with the same shape and dtype, subsampled.
    """
    shape = labels.shape
    flat = labels.reshape(-1)
    n = flat.shape[0]
    kp, kn = jax.random.split(key)
    max_pos = min(int(positive_fraction * batch_size), n)
    max_neg = min(int(batch_size), n)

    def pick(k: jax.Array, mask: jax.Array, count: int, limit: jax.Array) -> jax.Array:
        r = jnp.where(mask, jax.random.uniform(k, (n,)), -1.0)
        vals, idx = jax.lax.top_k(r, count)
        take = (vals >= 0) & (jnp.arange(count) < limit)
        return jnp.zeros((n,), bool).at[idx].max(take)

    pos = pick(kp, flat == 1, max_pos, jnp.asarray(max_pos))
    neg = pick(kn, flat == 0, max_neg, batch_size - pos.sum())
    out = jnp.where(pos, 1, jnp.where(neg, 0, -1)).astype(jnp.int32)
    return out.reshape(shape)


def ctpn_targets(
    quads: jax.Array,
    valid: jax.Array,
    ignore: jax.Array,
    image_hw: jax.Array,
    key: jax.Array,
    feat_shape: tuple[int, int],
    cfg: TargetConfig = TargetConfig(),
) -> dict[str, jax.Array]:
    """All training targets of one image (``jax.vmap`` it over a batch).

    Args:
        quads: ``(G, 4, 2) float32`` ground-truth lines (padded).
        valid: ``(G,) bool`` padding mask.
        ignore: ``(G,) bool`` don't-care lines.
        image_hw: ``(2,)`` content height and width in pixels.
        key: PRNG key for the sampling.
        feat_shape: ``(Hf, Wf)`` static.
        cfg: settings.

    Returns:
        dict with ``Hf, Wf, K`` the feature-map and anchor axes:

        - ``labels (Hf, Wf, K) int32``: sampled labels (1 text, 0 non-text, -1 unused);
        - ``vertical (Hf, Wf, K, 2) float32``: ``(v_c, v_h)`` of the matched strip;
        - ``vertical_weight (Hf, Wf, K) float32``: 1 on sampled positives;
        - ``side (Hf, Wf, K) float32``: ``(x_side - c_x^a) / w^a`` toward the nearer end;
        - ``side_weight (Hf, Wf, K) float32``: 1 on positives (before sampling) whose centre
          lies within ``side_distance`` of the matched line's left or right end;
        - ``num_positive () int32``: positives before sampling.
    """
    feat_h, feat_w = feat_shape
    a = assign_labels(quads, valid, ignore, image_hw, feat_shape, cfg)
    labels, matched = a["labels"], a["matched"]
    sampled = sample_labels(labels, key, cfg.batch_size, cfg.positive_fraction)

    strips = a["strips"]  # (G, Wf, 4)
    s_cy = ((strips[..., 1] + strips[..., 3]) / 2).T  # (Wf, G)
    s_h = jnp.maximum(strips[..., 3] - strips[..., 1], 1e-3).T
    idx = matched.transpose(1, 0, 2).reshape(feat_w, -1)  # (Wf, Hf*K)
    m_cy = jnp.take_along_axis(s_cy, idx, axis=1).reshape(feat_w, feat_h, -1).transpose(1, 0, 2)
    m_h = jnp.take_along_axis(s_h, idx, axis=1).reshape(feat_w, feat_h, -1).transpose(1, 0, 2)

    cy = ((jnp.arange(feat_h, dtype=jnp.float32) + 0.5) * cfg.stride)[:, None, None]
    cx = ((jnp.arange(feat_w, dtype=jnp.float32) + 0.5) * cfg.stride)[None, :, None]
    ha = jnp.asarray(cfg.heights, jnp.float32)[None, None, :]
    vertical = jnp.stack([(m_cy - cy) / ha, jnp.log(m_h / ha)], axis=-1)

    qx = jnp.asarray(quads, jnp.float32)[..., 0]
    xl = qx.min(axis=1)[matched]
    xr = qx.max(axis=1)[matched]
    dl, dr = jnp.abs(cx - xl), jnp.abs(xr - cx)
    side = jnp.where(dl <= dr, xl - cx, xr - cx) / cfg.anchor_width
    near = jnp.minimum(dl, dr) <= cfg.side_distance
    pos = labels == 1
    return {
        "labels": sampled,
        "vertical": jnp.where(pos[..., None], vertical, 0.0),
        "vertical_weight": (sampled == 1).astype(jnp.float32),
        "side": jnp.where(pos & near, side, 0.0),
        "side_weight": (pos & near).astype(jnp.float32),
        "num_positive": pos.sum().astype(jnp.int32),
    }
