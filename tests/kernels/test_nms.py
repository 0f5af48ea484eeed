"""Tests for kernels.nms: both implementations against a plain numpy greedy NMS.

Box coordinates are drawn on a 1/4-pixel grid in [0, 200], so every width, height, area and
intersection is exact in float32 and only the final division rounds. Then the IoU has the same
bits on every backend, whether or not the compiler fuses multiply-adds (XLA:CPU does), and the
results must agree exactly, ties at the threshold included.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kernels
from kernels.nms_jnp import score_order
from kernels.nms_pallas import suppression_mask
from kernels.nms_reference import nms_reference

IMPLEMENTATIONS = ["jnp", "pallas"]
ON_GPU = jax.default_backend() == "gpu"


def padded_reference(boxes, scores, iou_threshold, max_output_size):
    """``kernels.nms_reference`` in the kernels' output form: ``(max_output_size,)`` indices
    padded with -1, and the count."""
    kept = nms_reference(boxes, scores, iou_threshold, max_output_size)
    keep = np.full(max_output_size, -1, np.int32)
    keep[: len(kept)] = kept
    return keep, len(kept)


def grid_boxes(rng, n, extent=160.0, max_size=40.0):
    """(n, 4) float32 boxes on a 1/4-pixel grid; some have zero width or height."""
    xy = rng.integers(0, int(extent * 4), (n, 2)) / 4
    wh = rng.integers(0, int(max_size * 4), (n, 2)) / 4
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def clustered_boxes(rng, n):
    """Boxes jittered around a few centres, with exact duplicates and tied scores."""
    centres = grid_boxes(rng, 6, extent=120.0, max_size=30.0)
    jitter = rng.integers(-8, 9, (n, 4)) / 4
    boxes = centres[rng.integers(0, len(centres), n)] + jitter
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])  # keep x1 <= x2, y1 <= y2
    dup = rng.integers(0, n, n // 4)
    boxes[rng.integers(0, n, n // 4)] = boxes[dup]
    scores = rng.choice(np.array([0.0, -0.0, 0.25, 0.5, 0.75], np.float32), n)
    return boxes.astype(np.float32), scores


@functools.cache
def jitted_nms(implementation, max_output_size, interpret=True):
    """One compilation per (implementation, shape); the threshold is traced."""
    return jax.jit(
        functools.partial(
            kernels.nms,
            max_output_size=max_output_size,
            implementation=implementation,
            interpret=interpret,
        )
    )


def check(implementation, boxes, scores, threshold, max_output_size, interpret=True):
    fn = jitted_nms(implementation, max_output_size, interpret)
    keep, num_valid = fn(boxes, scores, np.float32(threshold))
    assert keep.shape == (max_output_size,) and keep.dtype == jnp.int32
    assert num_valid.shape == () and num_valid.dtype == jnp.int32
    want_keep, want_num = padded_reference(boxes, scores, threshold, max_output_size)
    np.testing.assert_array_equal(np.asarray(keep), want_keep)
    assert int(num_valid) == want_num
    return want_num


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("n", [0, 1, 17, 300, 1000])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_random_boxes_match_reference(implementation, n, threshold):
    rng = np.random.default_rng(1000 * n + int(threshold * 10))
    boxes = grid_boxes(rng, n)
    scores = rng.random(n, dtype=np.float32)
    num = check(implementation, boxes, scores, threshold, n + 5)  # + 5: padding with -1
    if n >= 300:
        assert 0 < num < n  # the case is not trivial: some boxes are suppressed


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_clustered_duplicates_and_ties_match_reference(implementation, threshold):
    rng = np.random.default_rng(7)
    boxes, scores = clustered_boxes(rng, 200)
    num = check(implementation, boxes, scores, threshold, 200)
    assert num < 100  # heavy suppression


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_max_output_size_smaller_than_kept(implementation):
    rng = np.random.default_rng(3)
    boxes = grid_boxes(rng, 300)
    scores = rng.random(300, dtype=np.float32)
    assert check(implementation, boxes, scores, 0.5, 7) == 7


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_zero_area_boxes_are_never_suppressed(implementation):
    boxes = np.array(
        [[0, 0, 10, 10], [5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 0], [2, 2, 9, 9]], np.float32
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)
    keep, num_valid = jitted_nms(implementation, 6)(boxes, scores, 0.5)
    # The zero-area boxes (1, 2, 3) survive even on top of each other; box 4 (IoU 0.49 with
    # box 0) survives at 0.5 too.
    np.testing.assert_array_equal(keep, [0, 1, 2, 3, 4, -1])
    assert int(num_valid) == 5


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_exact_tie_at_threshold_is_not_suppressed(implementation):
    # IoU of the two boxes is exactly 50 / 100 = 0.5: suppressed only when strictly greater.
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.5, 0.9], np.float32)
    fn = jitted_nms(implementation, 2)
    keep, num_valid = fn(boxes, scores, 0.5)
    np.testing.assert_array_equal(keep, [1, 0])
    keep, num_valid = fn(boxes, scores, 0.49)
    np.testing.assert_array_equal(keep, [1, -1])
    assert int(num_valid) == 1


@pytest.mark.parametrize("implementation", [None, *IMPLEMENTATIONS])
def test_vmap_over_images(implementation):
    rng = np.random.default_rng(11)
    boxes = np.stack([grid_boxes(rng, 64) for _ in range(3)])
    scores = rng.random((3, 64), dtype=np.float32)
    batched = jax.jit(
        jax.vmap(
            functools.partial(
                kernels.nms,
                iou_threshold=0.4,
                max_output_size=40,
                implementation=implementation,
                interpret=True,
            )
        )
    )
    keep, num_valid = batched(boxes, scores)
    assert keep.shape == (3, 40) and num_valid.shape == (3,)
    for b in range(3):
        want_keep, want_num = padded_reference(boxes[b], scores[b], 0.4, 40)
        np.testing.assert_array_equal(keep[b], want_keep)
        assert int(num_valid[b]) == want_num


def test_default_dispatch_runs_jnp_off_gpu_and_pallas_on_cuda():
    rng = np.random.default_rng(5)
    boxes = grid_boxes(rng, 100)
    scores = rng.random(100, dtype=np.float32)
    fn = jax.jit(functools.partial(kernels.nms, max_output_size=100))
    keep, num_valid = fn(boxes, scores, 0.5)
    want_keep, want_num = padded_reference(boxes, scores, 0.5, 100)
    np.testing.assert_array_equal(keep, want_keep)
    assert int(num_valid) == want_num
    # Lowering for CUDA works without a GPU: it must hold the Triton kernel, and the lowering
    # for this machine must hold it exactly when this machine has a (CUDA) GPU.
    traced = fn.trace(boxes, scores, 0.5)
    assert "triton" in traced.lower(lowering_platforms=("cuda",)).as_text()
    assert ("triton" in traced.lower().as_text()) == ON_GPU


def test_rejects_unknown_implementation_and_bad_shapes():
    boxes = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="implementation"):
        kernels.nms(boxes, np.zeros(3), 0.5, 3, implementation="cuda")
    with pytest.raises(ValueError, match="expected boxes"):
        kernels.nms(boxes, np.zeros(4), 0.5, 3)


def test_suppression_mask_bits_match_numpy_iou():
    rng = np.random.default_rng(2)
    coords = grid_boxes(rng, 128).T  # already "sorted": the mask only looks at positions
    mask = np.asarray(suppression_mask(jnp.asarray(coords), jnp.float32(0.3), interpret=True))
    bits = np.unpackbits(mask.view(np.uint8), axis=1, bitorder="little").astype(bool)
    x1, y1, x2, y2 = coords[:, :, None]
    u1, v1, u2, v2 = coords[:, None, :]
    inter = np.maximum(np.minimum(x2, u2) - np.maximum(x1, u1), 0) * np.maximum(
        np.minimum(y2, v2) - np.maximum(y1, v1), 0
    )
    union = (x2 - x1) * (y2 - y1) + (u2 - u1) * (v2 - v1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = np.where(union > 0, inter / union, np.float32(0))
    want = (overlap > np.float32(0.3)) & np.triu(np.ones((128, 128), bool), k=1)
    np.testing.assert_array_equal(bits, want)


@pytest.mark.parametrize("n", [1, 100, 1000])
def test_score_order_is_stable_descending(n):
    rng = np.random.default_rng(n)
    scores = rng.choice(np.array([-np.inf, -1.5, -0.0, 0.0, 2.0, np.inf], np.float32), n)
    scores[: n // 2] = rng.standard_normal(n // 2).astype(np.float32)
    want = np.lexsort((np.arange(n), -scores))  # last key first: score desc, then index
    np.testing.assert_array_equal(jax.jit(score_order)(scores), want)


@pytest.mark.skipif(not ON_GPU, reason="compiled Pallas needs a GPU")
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("n", [17, 1000, 5000])
def test_compiled_pallas_on_gpu_matches_reference(n, threshold):
    rng = np.random.default_rng(n)
    boxes = grid_boxes(rng, n)
    scores = rng.random(n, dtype=np.float32)
    check("pallas", boxes, scores, threshold, n, interpret=False)


def test_kernels_package_is_this_repository():
    # A different PyPI package is also called `kernels`; ours must be the one imported.
    repo_root = Path(__file__).resolve().parents[2]
    assert Path(kernels.__file__).resolve() == repo_root / "kernels" / "__init__.py"


def test_reference_on_a_hand_worked_example():
    """Boxes 0 and 1 overlap by IoU 50/150 = 1/3; box 2 is apart; box 3 has zero area."""
    boxes = np.float32([[0, 0, 10, 10], [5, 0, 15, 10], [30, 30, 40, 40], [1, 1, 1, 9]])
    scores = np.float32([0.9, 0.95, 0.5, 0.99])
    assert nms_reference(boxes, scores, 0.3).tolist() == [3, 1, 2]  # 1/3 > 0.3: 0 goes
    assert nms_reference(boxes, scores, 0.34).tolist() == [3, 1, 0, 2]
    assert nms_reference(boxes, scores, 0.3, max_output_size=2).tolist() == [3, 1]
    assert nms_reference(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
