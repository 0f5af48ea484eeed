"""Proposal decoding and text-line construction on synthetic proposals."""

import math

import cv2
import numpy as np
import pytest

from ctpn_jax.anchors import ANCHOR_HEIGHTS
from ctpn_jax.metrics import quad_iou
from ctpn_jax.postprocess import (
    PostprocessConfig,
    decode_proposals,
    detect_text_lines,
    nms_numpy,
    text_lines_from_proposals,
)


def ideal_proposals(quads, score=0.95, stride=16):
    """Proposals a perfect network would give: the part of each line in each 16-px column
    (clipped with OpenCV), with the line's nearer end as the side prediction."""
    boxes, scores, side = [], [], []
    for q in np.asarray(quads, np.float32):
        xmin, xmax = q[:, 0].min(), q[:, 0].max()
        for j in range(int(xmin // stride), int(math.ceil(xmax / stride))):
            col = np.float32(
                [
                    [j * stride, -1e4],
                    [(j + 1) * stride, -1e4],
                    [(j + 1) * stride, 1e4],
                    [j * stride, 1e4],
                ]
            )
            area, poly = cv2.intersectConvexConvex(q, col)
            if poly is None or area <= 1.0:
                continue
            p = poly.reshape(-1, 2)
            boxes.append([j * stride, p[:, 1].min(), (j + 1) * stride, p[:, 1].max()])
            scores.append(score)
            cx = j * stride + stride / 2
            side.append(xmin if abs(cx - xmin) <= abs(xmax - cx) else xmax)
    return np.float32(boxes), np.float32(scores), np.float32(side)


def rect(x0, y0, x1, y1):
    return np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def rotated(cx, cy, w, h, deg):
    a = math.radians(deg)
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return (pts @ r.T + [cx, cy]).astype(np.float32)


def test_decode_inverts_the_target_encoding():
    hf, wf, k = 3, 4, 10
    logits = np.zeros((hf, wf, k, 2), np.float32)
    logits[1, 2, 4] = [0.0, 2.0]
    vertical = np.zeros((hf, wf, k, 2), np.float32)
    side = np.zeros((hf, wf, k), np.float32)
    # anchor (1, 2, 4): centre (40, 24), height 48; target line y 30..60 -> cy 45, h 30
    vertical[1, 2, 4] = [(45 - 24) / 48, np.log(30 / 48)]
    side[1, 2, 4] = (35 - 40) / 16
    boxes, scores, side_x = decode_proposals(logits, vertical, side)
    np.testing.assert_allclose(boxes[1, 2, 4], [32, 30, 48, 60], rtol=1e-6)
    np.testing.assert_allclose(scores[1, 2, 4], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    np.testing.assert_allclose(scores[0, 0, 0], 0.5)
    np.testing.assert_allclose(side_x[1, 2, 4], 35.0)
    h0 = ANCHOR_HEIGHTS[0]
    np.testing.assert_allclose(boxes[0, 0, 0], [0, 8 - h0 / 2, 16, 8 + h0 / 2])


def test_two_lines_split_at_a_wide_gap_and_joined_at_a_narrow_one():
    wide = [rect(20, 30, 200, 60), rect(250, 32, 400, 58)]  # gap 50 px > 30
    b, s, x = ideal_proposals(wide)
    quads, scores = text_lines_from_proposals(b, s, x)
    assert len(quads) == 2
    order = np.argsort(quads[:, 0, 0])
    for q, gt in zip(quads[order], wide, strict=True):
        assert quad_iou(q, gt) > 0.95
    narrow = [rect(20, 30, 200, 60), rect(216, 32, 400, 58)]  # neighbouring columns
    b, s, x = ideal_proposals(narrow)
    quads, _ = text_lines_from_proposals(b, s, x)
    assert len(quads) == 1
    assert quads[:, :, 0].min() == pytest.approx(20, abs=1) and quads[
        :, :, 0
    ].max() == pytest.approx(400, abs=1)


def test_vertically_separate_lines_stay_separate():
    lines = [rect(20, 30, 300, 60), rect(20, 64, 300, 94), rect(40, 100, 200, 110)]
    b, s, x = ideal_proposals(lines)
    quads, _ = text_lines_from_proposals(b, s, x)
    assert len(quads) == 3
    for gt in lines:
        assert max(quad_iou(q, gt) for q in quads) > 0.9


def test_tilted_line_gives_tilted_quad_in_O_mode_and_box_in_H_mode():
    gt = rotated(300, 200, 320, 30, 6.0)
    b, s, x = ideal_proposals([gt])
    quads, _ = text_lines_from_proposals(b, s, x, PostprocessConfig(mode="O"))
    assert len(quads) == 1
    q = quads[0]
    top_slope = (q[1, 1] - q[0, 1]) / (q[1, 0] - q[0, 0])
    assert top_slope == pytest.approx(math.tan(math.radians(6.0)), abs=0.01)
    assert quad_iou(q, gt) > 0.9
    # clockwise from top-left: TL is left of TR, BL below TL
    assert q[0, 0] < q[1, 0] and q[3, 1] > q[0, 1] and q[2, 1] > q[1, 1]
    hq, _ = text_lines_from_proposals(b, s, x, PostprocessConfig(mode="H"))
    h = hq[0]
    assert h[0, 1] == pytest.approx(h[1, 1]) and h[0, 0] == pytest.approx(h[3, 0])


@pytest.mark.parametrize("mode, max_deg", [("H", 0.0), ("O", 8.0)])
def test_round_trip_recovers_boxes(mode, max_deg):
    rng = np.random.default_rng(0)
    gts = []
    y = 20.0
    while y < 900:  # non-overlapping lines of various sizes, one or two per row
        h = float(rng.uniform(12, 60))
        x0 = float(rng.uniform(0, 100))
        w = float(rng.uniform(60, 500))
        gts.append(rotated(x0 + w / 2, y + h / 2, w, h, rng.uniform(-max_deg, max_deg)))
        if rng.random() < 0.5:
            x1 = x0 + w + rng.uniform(60, 120)
            w2 = float(rng.uniform(40, 300))
            gts.append(rotated(x1 + w2 / 2, y + h / 2, w2, h, rng.uniform(-max_deg, max_deg)))
        y += h + 20 + abs(math.sin(math.radians(max_deg))) * 520
    b, s, x = ideal_proposals(gts)
    quads, scores = text_lines_from_proposals(b, s, x, PostprocessConfig(mode=mode))
    assert len(quads) == len(gts)
    for gt in gts:
        assert max(quad_iou(q, gt) for q in quads) >= 0.9
    np.testing.assert_allclose(scores, 0.95, rtol=1e-5)


def test_side_refinement_moves_the_ends():
    gt = rect(37, 30, 171, 60)  # ends inside columns 2 and 10
    b, s, x = ideal_proposals([gt])
    refined, _ = text_lines_from_proposals(b, s, x)
    plain, _ = text_lines_from_proposals(b, s, None)
    assert refined[0, 0, 0] == pytest.approx(37, abs=1e-3)
    assert refined[0, 1, 0] == pytest.approx(171, abs=1e-3)
    assert plain[0, 0, 0] == pytest.approx(32) and plain[0, 1, 0] == pytest.approx(176)


def test_filters_single_proposals_low_scores_and_duplicates():
    b = np.float32([[32, 10, 48, 40]])
    assert len(text_lines_from_proposals(b, np.float32([0.99]))[0]) == 0
    one, _ = text_lines_from_proposals(
        b, np.float32([0.99]), None, PostprocessConfig(min_proposals=1)
    )
    assert len(one) == 1
    line, s, x = ideal_proposals([rect(20, 30, 200, 60)], score=0.5)
    assert len(text_lines_from_proposals(line, s, x)[0]) == 0  # mean score 0.5 <= 0.6
    # the best neighbour rule: a weaker parallel chain shifted by 2 px joins nothing twice
    b1, s1, x1 = ideal_proposals([rect(20, 30, 200, 60)], score=0.95)
    b2, s2, x2 = ideal_proposals([rect(20, 32, 200, 62)], score=0.8)
    quads, scores = text_lines_from_proposals(
        np.concatenate([b1, b2]), np.concatenate([s1, s2]), np.concatenate([x1, x2])
    )
    assert len(quads) == 1 and scores[0] == pytest.approx(0.95)


def test_lone_proposals_are_kept_only_above_lone_min_score():
    # Two lone proposals far apart (a quantity "1" and a tax code) and one 5-column line.
    lone = np.float32([[32, 10, 48, 30], [400, 10, 416, 30]])
    lone_scores = np.float32([0.999, 0.985])
    line, s, x = ideal_proposals([rect(100, 60, 164, 80)], score=0.99)
    boxes = np.concatenate([lone, line])
    scores = np.concatenate([lone_scores, s])
    side = np.concatenate([np.float32([32, 416]), x])

    def found(**kw):
        quads, line_scores = text_lines_from_proposals(boxes, scores, side, PostprocessConfig(**kw))
        return sorted(round(float(q[:, 0].min())) for q in quads), line_scores

    assert found()[0] == [100]  # the original: lines of two proposals or more
    assert found(lone_min_score=0.99)[0] == [32, 100]  # only the confident lone one
    assert found(lone_min_score=0.98)[0] == [32, 100, 400]
    assert found(min_proposals=1)[0] == [32, 100, 400]
    # a lone line's score is its proposal's
    xs, line_scores = found(lone_min_score=0.98)
    assert sorted(np.round(line_scores, 3)) == [0.985, 0.99, 0.999]
    # 6 proposals needed: the 5-column line is short too, and under the bar
    assert found(min_proposals=6, lone_min_score=0.995)[0] == [32]


def test_nms_numpy_against_hand_example():
    boxes = np.float32([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10], [0, 0, 10, 10]])
    scores = np.float32([0.9, 0.8, 0.7, 0.95])
    np.testing.assert_array_equal(nms_numpy(boxes, scores, 0.5), [3, 2])
    assert nms_numpy(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3).shape == (0,)


def test_detect_text_lines_ignores_padding_and_low_scores():
    hf, wf, k = 6, 12, 10
    logits = np.zeros((hf, wf, k, 2), np.float32)
    logits[..., 0] = 5.0  # everything "not text"
    vertical = np.zeros((hf, wf, k, 2), np.float32)
    side = np.zeros((hf, wf, k), np.float32)
    logits[2, 1:6, 3] = [-5.0, 5.0]  # a line over columns 1..5, anchor 33 px at row 2 (cy 40)
    logits[2, 8:11, 3] = [-5.0, 5.0]  # another one in columns 8..10, beyond the content width
    side[2, 1, 3], side[2, 5, 3] = -0.5, 0.5  # ends at the outer column edges: x 16 and 96
    quads, scores = detect_text_lines(logits, vertical, side, (96, 120))
    assert len(quads) == 1
    np.testing.assert_allclose(quads[0], rect(16, 23.5, 96, 56.5), atol=1e-3)


def ref_successors(boxes, scores, gap=30.0, min_v=0.6, min_sim=0.6, gap_rel=0.0):
    """The original's graph rule, by brute force: i -> best successor if mutual best. A pair
    (left a, right b) is in reach when b is at most max(gap, gap_rel * height of a) right."""
    n = len(boxes)

    def reach(a):
        return max(gap, gap_rel * (boxes[a, 3] - boxes[a, 1]))

    def meets(a, b):
        ha, hb = boxes[a, 3] - boxes[a, 1], boxes[b, 3] - boxes[b, 1]
        inter = max(0.0, min(boxes[a, 3], boxes[b, 3]) - max(boxes[a, 1], boxes[b, 1]))
        return inter / min(ha, hb) >= min_v and min(ha, hb) / max(ha, hb) >= min_sim

    def nearest(i, sign):
        c = [
            j
            for j in range(n)
            if 0 < sign * (boxes[j, 0] - boxes[i, 0]) <= reach(i if sign > 0 else j) and meets(i, j)
        ]
        if not c:
            return []
        d = min(abs(boxes[j, 0] - boxes[i, 0]) for j in c)
        return [j for j in c if abs(boxes[j, 0] - boxes[i, 0]) == d]

    out = np.full(n, -1)
    for i in range(n):
        s = nearest(i, +1)
        if not s:
            continue
        best = max(s, key=lambda j: (scores[j], -j))
        if scores[i] >= max(scores[k] for k in nearest(best, -1)):
            out[i] = best
    return out


@pytest.mark.parametrize("seed,gap_rel", [(0, 0.0), (1, 0.0), (2, 1.5)])
def test_graph_matches_brute_force(seed, gap_rel):
    from ctpn_jax.postprocess import _pair_graph

    rng = np.random.default_rng(seed)
    n = 150
    col = rng.integers(0, 12, n)
    cy = rng.uniform(20, 120, n)
    h = rng.choice([12.0, 14.0, 20.0, 30.0, 40.0], n)
    boxes = np.stack([col * 16.0, cy - h / 2, col * 16.0 + 16, cy + h / 2], 1)
    scores = rng.choice([0.8, 0.9, 0.95], n)  # many ties
    got = _pair_graph(boxes, scores, PostprocessConfig(max_gap_rel=gap_rel))
    np.testing.assert_array_equal(got, ref_successors(boxes, scores, gap_rel=gap_rel))
    assert (got >= 0).sum() > 10


def test_relative_gap_joins_large_spaced_letters_only():
    # Letters 100 px high, 70 px apart (a letter-spaced sign): the original's absolute
    # 30 px gap cuts the line at every letter; a gap of 1x the height keeps it whole...
    letters = [rect(20 + 130 * k, 50, 80 + 130 * k, 150) for k in range(4)]
    b, s, x = ideal_proposals(letters)
    assert len(text_lines_from_proposals(b, s, x)[0]) == 4
    quads, _ = text_lines_from_proposals(b, s, x, PostprocessConfig(max_gap_rel=1.0))
    assert len(quads) == 1 and quad_iou(quads[0], rect(20, 50, 470, 150)) > 0.95
    # ... while body text 30 px high keeps splitting at a 50 px gap.
    body = [rect(20, 30, 200, 60), rect(250, 32, 400, 58)]
    b, s, x = ideal_proposals(body)
    assert len(text_lines_from_proposals(b, s, x, PostprocessConfig(max_gap_rel=1.0))[0]) == 2


def test_many_proposals_are_fast():
    import time

    rng = np.random.default_rng(0)
    lines = [
        rect(
            16 + 400 * (k % 3),
            12 + 24 * (k // 3),
            16 + 400 * (k % 3) + 380,
            12 + 24 * (k // 3) + 20,
        )
        for k in range(3 * 60)
    ]
    b, s, x = ideal_proposals(lines)
    s = s * rng.uniform(0.9, 1.0, s.shape).astype(np.float32)
    t = time.perf_counter()
    quads, _ = text_lines_from_proposals(b, s, x)
    # ~0.1 s vectorised; a per-pair Python loop over 4,000+ proposals (~10^7 pairs) takes
    # minutes. The bound is loose so that a loaded machine does not fail it.
    assert time.perf_counter() - t < 10.0 and len(b) > 4000
    assert len(quads) == len(lines)


def test_line_containment_option():
    big = rect(20, 30, 300, 60)
    frag = rect(100, 34, 150, 46)  # inside the big line, IoU with it well under 0.3
    b1, s1, x1 = ideal_proposals([big], score=0.95)
    b2, s2, x2 = ideal_proposals([frag], score=0.9)
    b2[:, 0] += 1.0  # a different column phase, so the fragment does not join the big line
    b2[:, 2] += 1.0
    args = (np.concatenate([b1, b2]), np.concatenate([s1, s2]), np.concatenate([x1, x2]))
    assert len(text_lines_from_proposals(*args)[0]) == 2  # the original keeps the fragment
    quads, scores = text_lines_from_proposals(*args, PostprocessConfig(line_containment=0.7))
    assert len(quads) == 1 and scores[0] == pytest.approx(0.95)
