"""Greedy non-maximum suppression with a Pallas suppression-bitmask kernel: the GPU path.

As in the original CUDA ``nms_kernel.cu``: the boxes are sorted by score, and each kernel
program compares ``block_size`` row boxes with ``block_size`` column boxes and writes that tile
of the bitmask ``mask[i, j] = i < j and IoU(i, j) > threshold``, packed 32 columns to a uint32
word (the original packs 64 to a uint64; JAX has no uint64 without x64). Then a
``lax.while_loop`` over the row blocks makes the sequential greedy pass: settle the block's own
boxes, OR the rows of the kept ones into the ``removed`` bits, stop once ``max_output_size``
are kept. The mask takes ``N * N / 8`` bytes (12.5 MB for N = 10000).

The kernel targets the Triton backend of Pallas (``pallas_call`` with
``pltriton.CompilerParams``), which runs on Ampere and newer GPUs; Mosaic GPU, the default
backend, is Hopper-only and wants a warpgroup-level kernel (``plgpu.kernel``). Off GPU the
kernel runs with ``interpret=True``.

Numerics: Triton lowers float32 ``/`` to the approximate ``div.full.f32``, which can turn an
exact tie such as IoU == 0.5 into 0.50000006. The compiled kernel therefore divides with PTX
``div.rn.f32`` (IEEE, as ``/`` in the original's CUDA), so for coordinates whose products are
exact it computes the same IoU bits as the jnp path; that makes the compiled kernel CUDA-only.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from kernels.nms_jnp import append_kept, empty_result, iou, resolve_block, round_up

BITS = 32  # bits per mask word


def _divide_rn(x: jax.Array, y: jax.Array) -> jax.Array:
    """Correctly rounded float32 division on NVIDIA GPUs (inside a Triton kernel)."""
    [quotient] = pltriton.elementwise_inline_asm(
        "div.rn.f32 $0, $1, $2;",
        args=[x, y],
        constraints="=f,f,f",
        pack=1,
        result_shape_dtypes=[jax.ShapeDtypeStruct(x.shape, jnp.float32)],
    )
    return quotient


def _mask_kernel(threshold_ref, row_ref, col_ref, mask_ref, *, block_size: int, interpret: bool):
    """One ``(block_size, block_size)`` tile of the suppression bitmask.

    threshold_ref: ``(1,) float32``. row_ref, col_ref: ``(4, block_size) float32`` score-sorted
    x1, y1, x2, y2 of the tile's rows and columns. mask_ref: ``(block_size, block_size // 32)
    uint32``; bit b of word w of row i is column ``w * 32 + b`` of the tile.
    """
    # Inline PTX has no interpreter; there XLA's division is already correctly rounded.
    divide = jnp.divide if interpret else _divide_rn
    threshold = threshold_ref[0]
    row0 = pl.program_id(0) * block_size
    col0 = pl.program_id(1) * block_size
    rows = tuple(row_ref[k, :][:, None] for k in range(4))
    row_pos = row0 + lax.broadcasted_iota(jnp.int32, (block_size, BITS), 0)
    col_in_word = lax.broadcasted_iota(jnp.int32, (block_size, BITS), 1)
    bit = jnp.left_shift(jnp.uint32(1), col_in_word.astype(jnp.uint32))
    for w in range(block_size // BITS):  # static: one 32-column word per step
        cols = tuple(col_ref[k, pl.ds(w * BITS, BITS)][None, :] for k in range(4))
        col_pos = col0 + w * BITS + col_in_word
        # Only j > i: boxes are suppressed by higher-scoring ones; this also leaves out the
        # diagonal. (Tiles below the diagonal come out all zero: skipping them would halve
        # the kernel's work, worth doing once the kernel has been timed on a GPU.)
        over = (iou(rows, cols, divide) > threshold) & (col_pos > row_pos)
        # The bits are distinct, so their sum is their OR.
        mask_ref[:, w] = jnp.sum(jnp.where(over, bit, jnp.uint32(0)), axis=1)


def suppression_mask(
    coords: jax.Array, threshold: jax.Array, *, block_size: int = 64, interpret: bool = False
) -> jax.Array:
    """Packed bitmask of pairs that suppress each other.

    Args:
      coords: ``(4, Np) float32`` score-sorted boxes, Np a multiple of ``block_size``.
      threshold: ``() float32`` IoU threshold.

    Returns:
      ``(Np, Np // 32) uint32``; bit ``j % 32`` of word ``[i, j // 32]`` is set iff
      ``i < j`` and IoU(i, j) > threshold.
    """
    np_ = coords.shape[1]
    nb = np_ // block_size
    return pl.pallas_call(
        functools.partial(_mask_kernel, block_size=block_size, interpret=interpret),
        out_shape=jax.ShapeDtypeStruct((np_, np_ // BITS), jnp.uint32),
        grid=(nb, nb),
        in_specs=[
            pl.BlockSpec((1,), lambda i, j: (0,)),
            pl.BlockSpec((4, block_size), lambda i, j: (0, i)),
            pl.BlockSpec((4, block_size), lambda i, j: (0, j)),
        ],
        out_specs=pl.BlockSpec((block_size, block_size // BITS), lambda i, j: (i, j)),
        compiler_params=pltriton.CompilerParams(num_warps=4, num_stages=1),
        interpret=interpret,
    )(threshold.reshape(1), coords, coords)


def _unpack(words: jax.Array) -> jax.Array:
    """``(..., W) uint32`` -> ``(..., W * 32) bool``, bit b of word w at ``w * 32 + b``."""
    bits = (words[..., None] >> jnp.arange(BITS, dtype=jnp.uint32)) & 1
    return bits.reshape(*words.shape[:-1], -1).astype(bool)


def _pack(bits: jax.Array) -> jax.Array:
    """``(W * 32,) bool`` -> ``(W,) uint32``, the inverse of :func:`_unpack`."""
    shifted = bits.reshape(-1, BITS).astype(jnp.uint32) << jnp.arange(BITS, dtype=jnp.uint32)
    return jnp.sum(shifted, axis=1, dtype=jnp.uint32)


def nms_pallas(
    boxes: jax.Array,
    scores: jax.Array,
    iou_threshold: float | jax.Array,
    max_output_size: int,
    *,
    block_size: int = 64,
    interpret: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Greedy NMS: the Pallas bitmask kernel, then a blockwise pass; same contract as
    :func:`kernels.nms`.

    Args:
      boxes: ``(N, 4) float32``, ``x1, y1, x2, y2``.
      scores: ``(N,) float32``.
      iou_threshold: scalar; suppress when IoU with a kept, higher-scoring box is greater.
      max_output_size: static int, length of ``keep``.
      block_size: static multiple of 32 (and a power of two for Triton), the tile edge.
      interpret: run the kernel in the Pallas interpreter (the only way on CPU).

    Returns:
      ``keep (max_output_size,) int32`` (-1 padded) and ``num_valid () int32``.
    """
    n = boxes.shape[0]
    if n == 0 or max_output_size == 0:
        return empty_result(max_output_size)
    if block_size % BITS:
        raise ValueError(f"block_size must be a multiple of {BITS}, got {block_size}")
    # A plain argsort: GPUs sort key-value pairs fast (the jnp path's trick is for XLA:CPU).
    order = jnp.argsort(-scores, stable=True).astype(jnp.int32)
    coords = boxes.astype(jnp.float32).T[:, order]  # (4, n): one row per coordinate
    np_ = round_up(n, block_size)
    # Padding boxes have zero area, so IoU 0 with everything; they start out removed.
    coords = jnp.pad(coords, ((0, 0), (0, np_ - n)))
    order = jnp.pad(order, (0, np_ - n), constant_values=-1)
    threshold = jnp.asarray(iou_threshold, jnp.float32)
    mask = suppression_mask(coords, threshold, block_size=block_size, interpret=interpret)

    words_per_block = block_size // BITS

    def block_step(state):
        b, removed, keep, num_kept = state
        rows = lax.dynamic_slice_in_dim(mask, b * block_size, block_size, axis=0)
        own = lax.dynamic_slice_in_dim(rows, b * words_per_block, words_per_block, axis=1)
        alive = ~_unpack(lax.dynamic_slice_in_dim(removed, b * words_per_block, words_per_block))
        kept = resolve_block(_unpack(own), alive)
        keep, num_kept = append_kept(
            keep, num_kept, kept, lax.dynamic_slice_in_dim(order, b * block_size, block_size)
        )
        # Everything a kept box suppresses is removed for the later blocks.
        hits = jnp.where(kept[:, None], rows, jnp.uint32(0))
        removed = removed | lax.reduce(hits, jnp.uint32(0), lax.bitwise_or, (0,))
        return b + 1, removed, keep, num_kept

    removed = _pack(jnp.arange(np_) >= n)
    keep, num_kept = empty_result(max_output_size)
    state = (jnp.int32(0), removed, keep, num_kept)
    _, _, keep, num_kept = lax.while_loop(
        lambda state: (state[0] < np_ // block_size) & (state[3] < max_output_size),
        block_step,
        state,
    )
    return keep, num_kept
