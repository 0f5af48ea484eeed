"""Greedy non-maximum suppression in plain ``jax.numpy``: the CPU path.

The boxes are sorted by score once. Then a ``lax.while_loop`` over blocks takes the first
``block_size`` candidates still alive, settles the suppression inside that block, and removes
every later candidate that a box kept by the block overlaps. The survivors are packed to the
front of the candidate buffer as they are visited, so a block is only compared with boxes
still alive and the work shrinks as boxes get suppressed; the loop stops as soon as
``max_output_size`` boxes are kept. No N x N matrix is built: the largest temporary is
``block_size x chunk_size``.

``iou``, ``resolve_block`` and ``append_kept`` are shared with the Pallas path
(``kernels.nms_pallas``), so both compute the IoU with the same float32 operations.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

Coords = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


def iou(
    a: Coords, b: Coords, divide: Callable[[jax.Array, jax.Array], jax.Array] = jnp.divide
) -> jax.Array:
    """IoU of boxes ``a`` and boxes ``b``, broadcast against each other; float32.

    Continuous convention: ``area = (x2 - x1) * (y2 - y1)`` (no ``+ 1``) and
    ``IoU = inter / (area_a + area_b - inter)``. Where the union is not positive (two zero-area
    boxes) the IoU is 0: a zero-area box never suppresses and is never suppressed.

    Compilers may fuse ``area_a + area_b - w * h`` into a fused multiply-add (XLA:CPU does), so
    for general float coordinates the last bit of the IoU can depend on the backend. With
    coordinates whose products are exact in float32 (integers, or sub-pixel grids of moderate
    range) only the division rounds, and every backend gives the same bits.

    Args:
      a: ``(x1, y1, x2, y2)``, four float32 arrays of one shape.
      b: ``(x1, y1, x2, y2)``, four float32 arrays broadcastable against ``a``'s.
      divide: float32 division, correctly rounded (the Pallas kernel passes its own on GPU).
    """
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    w = jnp.maximum(jnp.minimum(ax2, bx2) - jnp.maximum(ax1, bx1), 0.0)
    h = jnp.maximum(jnp.minimum(ay2, by2) - jnp.maximum(ay1, by1), 0.0)
    inter = w * h
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    positive = union > 0.0
    return jnp.where(positive, divide(inter, jnp.where(positive, union, 1.0)), 0.0)  # no 0 / 0


def score_order(scores: jax.Array) -> jax.Array:
    """``(N,) int32`` indices of ``scores (N,) float32``, highest first, ties by lower index.

    Equals ``jnp.argsort(-scores, stable=True)``, computed faster on CPU: XLA:CPU sorts one
    int32 array several times faster than it argsorts (a two-operand sort). So we count, for
    each score, the scores above it by binary search in the sorted scores, then sort
    ``count * N + index``: exact while ``N * N < 2**31``, and argsort beyond that.
    """
    n = scores.shape[0]
    if n * n >= 2**31:
        return jnp.argsort(-scores, stable=True).astype(jnp.int32)
    # float32 -> int32 keys in the same order; -0.0 is made +0.0 first so that they tie.
    bits = lax.bitcast_convert_type(jnp.where(scores == 0, 0.0, scores), jnp.int32)
    keys = jnp.where(bits < 0, bits ^ jnp.int32(0x7FFFFFFF), bits)
    above = n - jnp.searchsorted(jnp.sort(keys), keys, side="right", method="scan")
    return jnp.sort(above.astype(jnp.int32) * n + jnp.arange(n, dtype=jnp.int32)) % n


def resolve_block(suppresses: jax.Array, alive: jax.Array) -> jax.Array:
    """Greedy NMS inside one block of score-sorted boxes.

    Args:
      suppresses: ``(B, B) bool``; ``[i, j]`` is true when ``i < j`` and IoU(i, j) > threshold.
        Strictly upper triangular: with a diagonal the iteration below would not settle.
      alive: ``(B,) bool``; the boxes not suppressed by earlier blocks (and not padding).

    Returns:
      ``(B,) bool``, the boxes of the block that greedy NMS keeps.

    Box j is kept iff it is alive and no kept box i < j suppresses it. Rather than B
    sequential steps, iterate ``kept <- alive & ~any(suppresses & kept)`` to its fixed point:
    after t rounds the first t entries are final, so it takes at most B + 1 rounds, and in
    practice (longest chain of suppressions) + 1, which is a handful.
    """

    def step(carry):
        kept, _ = carry
        new = alive & ~jnp.any(suppresses & kept[:, None], axis=0)
        return new, jnp.any(new != kept)

    kept, _ = lax.while_loop(lambda carry: carry[1], step, (alive, jnp.array(True)))
    return kept


def append_kept(
    keep: jax.Array, num_kept: jax.Array, kept: jax.Array, indices: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Writes ``indices[kept]``, in order, into ``keep`` from slot ``num_kept`` on.

    Args:
      keep: ``(M,) int32`` output buffer. num_kept: ``() int32``.
      kept: ``(B,) bool``. indices: ``(B,) int32``.

    Returns:
      The new ``keep`` (what does not fit is dropped) and ``num_kept``, capped at M.
    """
    max_output_size = keep.shape[0]
    slot = jnp.where(kept, num_kept + jnp.cumsum(kept) - 1, max_output_size)
    keep = keep.at[slot].set(indices, mode="drop")
    num_kept = jnp.minimum(num_kept + jnp.sum(kept, dtype=jnp.int32), max_output_size)
    return keep, num_kept


def empty_result(max_output_size: int) -> tuple[jax.Array, jax.Array]:
    """``keep`` all -1 and ``num_valid`` 0."""
    return jnp.full((max_output_size,), -1, jnp.int32), jnp.zeros((), jnp.int32)


def round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def nms_jnp(
    boxes: jax.Array,
    scores: jax.Array,
    iou_threshold: float | jax.Array,
    max_output_size: int,
    *,
    block_size: int = 32,
    chunk_size: int = 1024,
) -> tuple[jax.Array, jax.Array]:
    """Blockwise greedy NMS in jnp; same contract as :func:`kernels.nms`.

    Args:
      boxes: ``(N, 4) float32``, ``x1, y1, x2, y2``.
      scores: ``(N,) float32``.
      iou_threshold: scalar; a box is suppressed when its IoU with a kept, higher-scoring box
        is greater.
      max_output_size: static int, the length of ``keep``.
      block_size: static; boxes settled per step of the outer loop. 32 because XLA:CPU splits
        reductions over more than 32 elements into reduce-window trees that no longer fuse
        with the IoU computation (64 measured 3-4x slower).
      chunk_size: static; later candidates compared with a block per step of the inner loop.

    Returns:
      ``keep (max_output_size,) int32``, indices into ``boxes``, highest score first, padded
      with -1; ``num_valid () int32``.
    """
    n = boxes.shape[0]
    if n == 0 or max_output_size == 0:
        return empty_result(max_output_size)
    threshold = jnp.asarray(iou_threshold, jnp.float32)
    order = score_order(scores.astype(jnp.float32))
    coords = boxes.astype(jnp.float32).T[:, order]  # (4, n): one row per coordinate
    bs = block_size
    cs = min(chunk_size, round_up(n, bs))
    # Slack past the n candidates, so that slices of bs or cs columns are never clamped.
    size = n + max(bs, cs)
    cand = jnp.pad(coords, ((0, 0), (0, size - n)))
    cand_idx = jnp.pad(order, (0, size - n), constant_values=-1)
    lane_b = jnp.arange(bs)
    lane_c = jnp.arange(cs)
    earlier = lane_b[:, None] < lane_b[None, :]

    def block_step(state):
        cand, cand_idx, num_cand, keep, num_kept = state
        # 1. The first bs candidates survived every kept box so far: settle them.
        block = cand[:, :bs]
        rows = tuple(block[k][:, None] for k in range(4))
        suppresses = (iou(rows, tuple(block[k][None, :] for k in range(4))) > threshold) & earlier
        kept = resolve_block(suppresses, lane_b < num_cand)
        keep, num_kept = append_kept(keep, num_kept, kept, cand_idx[:bs])

        # 2. Drop the later candidates that a kept box overlaps; pack the survivors to the
        # front. In place: the write position never passes the read position.
        def chunk_step(carry):
            cand, cand_idx, read, write = carry
            chunk = lax.dynamic_slice_in_dim(cand, read, cs, axis=1)
            chunk_idx = lax.dynamic_slice_in_dim(cand_idx, read, cs)
            overlaps = iou(rows, tuple(chunk[k][None, :] for k in range(4))) > threshold
            hit = jnp.any(overlaps & kept[:, None], axis=0)
            survives = (read + lane_c < num_cand) & ~hit
            dest = jnp.where(survives, jnp.cumsum(survives) - 1, cs)
            chunk = jnp.zeros_like(chunk).at[:, dest].set(chunk, mode="drop")
            chunk_idx = jnp.zeros_like(chunk_idx).at[dest].set(chunk_idx, mode="drop")
            cand = lax.dynamic_update_slice_in_dim(cand, chunk, write, axis=1)
            cand_idx = lax.dynamic_update_slice_in_dim(cand_idx, chunk_idx, write, axis=0)
            return cand, cand_idx, read + cs, write + jnp.sum(survives, dtype=jnp.int32)

        carry = (cand, cand_idx, jnp.int32(bs), jnp.int32(0))
        cand, cand_idx, _, num_cand = lax.while_loop(
            lambda carry: carry[2] < num_cand, chunk_step, carry
        )
        return cand, cand_idx, num_cand, keep, num_kept

    keep, num_kept = empty_result(max_output_size)
    state = (cand, cand_idx, jnp.int32(n), keep, num_kept)
    *_, keep, num_kept = lax.while_loop(
        lambda state: (state[2] > 0) & (state[4] < max_output_size), block_step, state
    )
    return keep, num_kept
