"""Target assignment against a brute-force numpy version (loops, generic polygon clipping)."""

import math

import cv2
import jax
import numpy as np
import pytest

from ctpn_jax.anchors import ANCHOR_HEIGHTS, anchor_grid
from ctpn_jax.targets import (
    TargetConfig,
    assign_labels,
    ctpn_targets,
    quad_strips,
    sample_labels,
)

FEAT = (12, 14)  # 192 x 224 pixels
CFG = TargetConfig()
assign = jax.jit(assign_labels, static_argnums=(4, 5))
targets = jax.jit(ctpn_targets, static_argnums=(5, 6))


def random_quads(rng, n, img_hw=(192, 224)):
    """Rotated rectangles (text lines), some thin, some tall, some partly outside."""
    quads = []
    for _ in range(n):
        w = rng.uniform(10, 150)
        h = rng.uniform(6, 60)
        c = np.array([rng.uniform(0, img_hw[1]), rng.uniform(0, img_hw[0])])
        a = math.radians(rng.uniform(-15, 15))
        r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        quads.append(pts @ r.T + c)
    return np.asarray(quads, np.float32)


def ref_strips(quad, feat_w, stride=16):
    """Strips by clipping the polygon with each column rectangle (OpenCV), as (j, box, width)."""
    out = []
    for j in range(feat_w):
        col = np.float32(
            [
                [j * stride, -1e4],
                [(j + 1) * stride, -1e4],
                [(j + 1) * stride, 1e4],
                [j * stride, 1e4],
            ]
        )
        area, poly = cv2.intersectConvexConvex(np.float32(quad), col)
        if poly is None or area <= 0:
            continue
        p = poly.reshape(-1, 2).astype(np.float64)
        x0, x1 = p[:, 0].min(), p[:, 0].max()
        out.append((j, np.array([x0, p[:, 1].min(), x1, p[:, 1].max()]), x1 - x0))
    return out


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_assign(quads, valid, ignore, image_hw, feat, cfg):
    """Labels, max IoU and the best strip of every anchor, by brute force over all pairs."""
    anchors = anchor_grid(*feat).reshape(-1, 4).astype(np.float64)
    care, dc = [], []  # (g, box)
    for g in range(len(quads)):
        if not valid[g]:
            continue
        for _, box, w in ref_strips(quads[g], feat[1]):
            if ignore[g] and w > 0:
                dc.append((g, box))
            elif not ignore[g] and w >= cfg.min_strip_width:
                care.append((g, box))
    n = len(anchors)
    inside = (
        (anchors[:, 0] >= 0)
        & (anchors[:, 1] >= 0)
        & (anchors[:, 2] <= image_hw[1])
        & (anchors[:, 3] <= image_hw[0])
    )
    m = np.array([[iou(a, s) for _, s in care] for a in anchors]).reshape(n, len(care))
    touches_dc = np.array(
        [
            any(
                min(a[2], s[2]) - max(a[0], s[0]) > 0 and min(a[3], s[3]) - max(a[1], s[1]) > 0
                for _, s in dc
            )
            for a in anchors
        ]
    )
    max_iou = m.max(axis=1) if care else np.zeros(n)
    labels = np.full(n, -1)
    labels[inside & (max_iou < cfg.negative_iou) & ~touches_dc] = 0
    best = np.zeros(n, bool)
    for s in range(len(care)):
        col = np.where(inside, m[:, s], 0.0)
        if col.max() > 0:
            best |= inside & (col == col.max())
    labels[inside & ((max_iou > cfg.positive_iou) | best)] = 1
    # near-ties (float32 vs float64) are reported so the comparison can skip them
    ambiguous = (np.abs(max_iou - cfg.positive_iou) < 1e-4) | (
        np.abs(max_iou - cfg.negative_iou) < 1e-4
    )
    for s in range(len(care)):
        col = np.where(inside, m[:, s], 0.0)
        ambiguous |= inside & (np.abs(col - col.max()) < 1e-4) & (col != col.max())
    best_strip = [care[k] if care else None for k in (m.argmax(axis=1) if care else [0] * n)]
    return labels, max_iou, best_strip, ambiguous


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    g = 8
    quads = random_quads(rng, g)
    valid = np.arange(g) < 7  # the last entry is padding
    ignore = np.zeros(g, bool)
    ignore[1] = True
    image_hw = np.float32([180, 210])  # a little padding at the bottom / right
    got = assign(quads, valid, ignore, image_hw, FEAT, CFG)
    labels = np.asarray(got["labels"]).reshape(-1)
    ref, ref_iou, best, amb = ref_assign(quads, valid, ignore, image_hw, FEAT, CFG)
    assert amb.sum() < 10
    np.testing.assert_array_equal(labels[~amb], ref[~amb])
    np.testing.assert_allclose(np.asarray(got["max_iou"]).reshape(-1), ref_iou, atol=1e-4)
    assert (ref == 1).sum() > 0 and (ref == 0).sum() > 0
    # vertical targets of the sampled positives encode the best strip of the brute force
    t = targets(quads, valid, ignore, image_hw, jax.random.key(seed), FEAT, CFG)
    anchors = anchor_grid(*FEAT).reshape(-1, 4)
    vw = np.asarray(t["vertical_weight"]).reshape(-1)
    vert = np.asarray(t["vertical"]).reshape(-1, 2)
    checked = 0
    for a in np.nonzero((vw > 0) & ~amb)[0]:
        _, s = best[a]
        ha, cya = anchors[a, 3] - anchors[a, 1], (anchors[a, 1] + anchors[a, 3]) / 2
        expect = [((s[1] + s[3]) / 2 - cya) / ha, np.log((s[3] - s[1]) / ha)]
        np.testing.assert_allclose(vert[a], expect, atol=2e-4)
        checked += 1
    assert checked > 0


def test_strips_match_polygon_clipping():
    rng = np.random.default_rng(5)
    quads = random_quads(rng, 6)
    strips, width = quad_strips(quads, FEAT[1])
    strips, width = np.asarray(strips), np.asarray(width)
    for g in range(len(quads)):
        ref = {j: (box, w) for j, box, w in ref_strips(quads[g], FEAT[1])}
        for j in range(FEAT[1]):
            if j in ref:
                np.testing.assert_allclose(strips[g, j], ref[j][0], atol=2e-3)
                np.testing.assert_allclose(width[g, j], ref[j][1], atol=2e-3)
            else:
                assert width[g, j] == 0


def test_dont_care_never_negative_and_never_positive():
    quads = np.float32([[[40, 40], [150, 40], [150, 80], [40, 80]]])
    got = assign(quads, np.array([True]), np.array([True]), np.float32([192, 224]), FEAT, CFG)
    labels = np.asarray(got["labels"])
    a = anchor_grid(*FEAT)
    overl = (np.minimum(a[..., 2], 150) - np.maximum(a[..., 0], 40) > 0) & (
        np.minimum(a[..., 3], 80) - np.maximum(a[..., 1], 40) > 0
    )
    assert (labels[overl] == -1).all()
    assert (labels == 1).sum() == 0
    assert (labels[~overl] != -1).any()


def test_targets_encode_the_matched_strip():
    # one axis-aligned line, columns 2..5 fully covered: y 50..80 (height 30, centre 65)
    quads = np.float32([[[32, 50], [96, 50], [96, 80], [32, 80]]])
    t = targets(
        quads,
        np.array([True]),
        np.array([False]),
        np.float32([192, 224]),
        jax.random.key(0),
        FEAT,
        CFG,
    )
    w = np.asarray(t["vertical_weight"])
    assert w.sum() > 0
    hs = np.float32(ANCHOR_HEIGHTS)
    for i, j, k in zip(*np.nonzero(w), strict=True):
        assert 2 <= j <= 5
        cy = 16 * i + 8
        np.testing.assert_allclose(
            t["vertical"][i, j, k], [(65 - cy) / hs[k], np.log(30 / hs[k])], rtol=1e-5, atol=1e-6
        )
    # side targets: left end x=32 (centre of column 2 is 40 -> -0.5), right end 96
    sw = np.asarray(t["side_weight"])
    for i, j, k in zip(*np.nonzero(sw), strict=True):
        cx = 16 * j + 8
        expect = (32 - cx) / 16 if abs(cx - 32) <= abs(96 - cx) else (96 - cx) / 16
        np.testing.assert_allclose(t["side"][i, j, k], expect, rtol=1e-6)
        assert min(abs(cx - 32), abs(96 - cx)) <= CFG.side_distance
    assert set(np.nonzero(sw)[1]) == {2, 3, 4, 5}
    # every anchor given a side target is a positive of the line
    labels = np.asarray(
        assign(quads, np.array([True]), np.array([False]), np.float32([192, 224]), FEAT, CFG)[
            "labels"
        ]
    )
    assert (labels[sw > 0] == 1).all()


def test_sampling_counts_and_subset():
    rng = np.random.default_rng(0)
    labels = rng.choice([-1, 0, 1], size=(20, 30, 10), p=[0.2, 0.7, 0.1]).astype(np.int32)
    n_pos = (labels == 1).sum()
    sample = jax.jit(sample_labels, static_argnums=(2, 3))
    s = np.asarray(sample(labels, jax.random.key(3), 300, 0.3))
    assert ((s == 1) <= (labels == 1)).all() and ((s == 0) <= (labels == 0)).all()
    assert (s == 1).sum() == min(n_pos, 90)
    assert (s == 0).sum() == 300 - (s == 1).sum()
    s2 = np.asarray(sample(labels, jax.random.key(4), 300, 0.3))
    assert not np.array_equal(s, s2)
    np.testing.assert_array_equal(s, np.asarray(sample(labels, jax.random.key(3), 300, 0.3)))
    few = np.where(labels == 1, 1, -1).astype(np.int32)  # positives only, fewer than the cap
    few[0, 0, 0] = 0
    s3 = np.asarray(sample(few[:2], jax.random.key(0), 128, 0.5))
    assert (s3 == 1).sum() == min((few[:2] == 1).sum(), 64)
    assert (s3 == 0).sum() == 1


def test_jittable_with_static_shapes():
    rng = np.random.default_rng(1)
    quads = random_quads(rng, 4)
    t = targets(
        quads,
        np.ones(4, bool),
        np.zeros(4, bool),
        np.float32([192, 224]),
        jax.random.key(0),
        FEAT,
        CFG,
    )
    assert t["labels"].shape == (*FEAT, 10) and t["vertical"].shape == (*FEAT, 10, 2)
    assert ((np.asarray(t["labels"]) >= 0).sum()) <= CFG.batch_size
