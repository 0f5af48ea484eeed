"""Greedy non-maximum suppression: one function, a Pallas kernel on GPU, jnp elsewhere."""

from __future__ import annotations

import functools
import operator
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from kernels.nms_jnp import nms_jnp
from kernels.nms_pallas import nms_pallas

Implementation = Literal["pallas", "jnp"]


def nms(
    boxes: jax.Array,
    scores: jax.Array,
    iou_threshold: float | jax.Array,
    max_output_size: int,
    *,
    implementation: Implementation | None = None,
    interpret: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Greedy non-maximum suppression with static shapes (jittable, vmappable).

    Boxes are visited in order of decreasing score, ties broken by the lower index; a box is
    kept unless its IoU with an already kept box is greater than ``iou_threshold`` (an IoU
    equal to the threshold does not suppress). This is the original chinese_ocr / Faster R-CNN
    NMS (``py_cpu_nms``, the CUDA ``gpu_nms``), except for the IoU convention, which here is
    the continuous one: ``area = (x2 - x1) * (y2 - y1)`` with no ``+ 1``, and
    ``IoU = inter / (area_a + area_b - inter)`` in float32. Zero-area boxes have IoU 0 with
    everything (the division is guarded), so they are never suppressed. Boxes must have
    ``x1 <= x2`` and ``y1 <= y2``; scores must not be NaN.

    Both implementations return the same result whenever the float32 IoUs agree; they do for
    coordinates whose products are exact in float32 (see ``kernels.nms_jnp.iou``). For
    general floats a compiler may fuse a multiply-add, so a pair whose IoU lies within an
    ulp of the threshold can go either way on different backends.

    For a batch of images, ``jax.vmap`` over ``boxes`` and ``scores``.

    Args:
      boxes: ``(N, 4) float32``, ``x1, y1, x2, y2``. N may be 0.
      scores: ``(N,) float32``.
      iou_threshold: scalar, Python float or a traced float32.
      max_output_size: static int, the length of ``keep``. When more boxes survive, the
        ``max_output_size`` highest-scoring ones are returned.
      implementation: ``None`` picks inside jit with ``lax.platform_dependent``: the Pallas
        kernel on CUDA GPUs, the jnp path elsewhere. ``"pallas"`` or ``"jnp"`` forces one.
      interpret: with ``implementation="pallas"``, run the kernel in the Pallas interpreter
        (what makes it run on CPU). Ignored otherwise.

    Returns:
      keep: ``(max_output_size,) int32`` indices into ``boxes``, highest score first, padded
        with -1.
      num_valid: ``() int32``, the number of non-padding entries of ``keep``.
    """
    max_output_size = operator.index(max_output_size)  # static: it is the output's shape
    if max_output_size < 0:
        raise ValueError(f"max_output_size must be >= 0, got {max_output_size}")
    boxes = jnp.asarray(boxes, jnp.float32)
    scores = jnp.asarray(scores, jnp.float32)
    threshold = jnp.asarray(iou_threshold, jnp.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"expected boxes (N, 4) and scores (N,), got {boxes.shape} {scores.shape}")
    if implementation == "jnp":
        return nms_jnp(boxes, scores, threshold, max_output_size)
    if implementation == "pallas":
        return nms_pallas(boxes, scores, threshold, max_output_size, interpret=interpret)
    if implementation is not None:
        raise ValueError(f"implementation must be None, 'pallas' or 'jnp', got {implementation!r}")
    # Branches get arrays only; the static size is bound with partial.
    return lax.platform_dependent(
        boxes,
        scores,
        threshold,
        cuda=functools.partial(nms_pallas, max_output_size=max_output_size),
        default=functools.partial(nms_jnp, max_output_size=max_output_size),
    )
