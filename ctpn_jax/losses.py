"""CTPN losses: classification, vertical-coordinate and side-refinement terms.

``L = cls_weight * L_cls + vertical_weight * L_v + side_weight * L_o`` with

- ``L_cls``: softmax cross-entropy averaged over the sampled anchors (label >= 0);
- ``L_v``: smooth-L1 over ``(v_c, v_h)`` (summed over the two), averaged over the sampled
  positives;
- ``L_o``: smooth-L1 over the side offset, averaged over the side anchors.

Counts are pooled over the batch; a term with no anchors to average over is 0 (with a zero
gradient).  Defaults follow the CTPN paper (lambda_1 = 1, lambda_2 = 2).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Loss weights and the smooth-L1 transition point ``beta``."""

    cls_weight: float = 1.0
    vertical_weight: float = 1.0
    side_weight: float = 2.0
    beta: float = 1.0


def smooth_l1(x: jax.Array, beta: float = 1.0) -> jax.Array:
    """Elementwise smooth-L1: ``0.5 x^2 / beta`` for ``|x| < beta``, else ``|x| - beta / 2``."""
    ax = jnp.abs(x)
    return jnp.where(ax < beta, 0.5 * x * x / beta, ax - 0.5 * beta)


def ctpn_loss(
    outputs: dict[str, jax.Array],
    targets: dict[str, jax.Array],
    cfg: LossConfig | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total loss and its parts.

    Args:
        outputs: model outputs with ``cls_logits (..., K, 2)``, ``vertical (..., K, 2)`` and
            ``side (..., K)`` (any leading axes, e.g. ``(B, Hf, Wf)``).
        targets: ``ctpn_targets`` outputs with the same leading axes: ``labels``,
            ``vertical``, ``vertical_weight``, ``side``, ``side_weight``.
        cfg: weights; defaults to ``LossConfig()``.

    Returns:
        ``loss () float32`` and a dict of scalar float32 ``cls_loss``, ``vertical_loss``,
        ``side_loss``, ``cls_accuracy`` (on the sampled anchors), ``num_sampled``,
        ``num_vertical``, ``num_side``.
    """
    cfg = cfg or LossConfig()
    labels = targets["labels"]
    sampled = (labels >= 0).astype(jnp.float32)
    logits = outputs["cls_logits"].astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(labels, 0))
    n_cls = sampled.sum()
    cls_loss = (ce * sampled).sum() / jnp.maximum(n_cls, 1.0)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    accuracy = (correct * sampled).sum() / jnp.maximum(n_cls, 1.0)

    vw = targets["vertical_weight"].astype(jnp.float32)
    v = smooth_l1(outputs["vertical"].astype(jnp.float32) - targets["vertical"], cfg.beta)
    n_v = vw.sum()
    v_loss = (v.sum(axis=-1) * vw).sum() / jnp.maximum(n_v, 1.0)

    sw = targets["side_weight"].astype(jnp.float32)
    o = smooth_l1(outputs["side"].astype(jnp.float32) - targets["side"], cfg.beta)
    n_o = sw.sum()
    o_loss = (o * sw).sum() / jnp.maximum(n_o, 1.0)

    total = cfg.cls_weight * cls_loss + cfg.vertical_weight * v_loss + cfg.side_weight * o_loss
    parts = {
        "cls_loss": cls_loss,
        "vertical_loss": v_loss,
        "side_loss": o_loss,
        "cls_accuracy": accuracy,
        "num_sampled": n_cls,
        "num_vertical": n_v,
        "num_side": n_o,
    }
    return total, parts
