"""The detector as a task of the shared training loop in ``train.py``.

This module provides the ``ocr_common.task.Task`` interface.  ``python train.py --model
ctpn [--data synth|FOLDER] [--set width=1.0] ...`` trains CTPN on rendered pages (default) or
on a folder of images with ICDAR 2015 / ICDAR 2013 / JSON labels.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from ctpn_jax.anchors import FEATURE_STRIDE
from ctpn_jax.data.pipeline import (
    EVAL_STREAM,
    DetDataConfig,
    SynthPages,
    data_source,
    train_batches,
)
from ctpn_jax.detect import TextDetector
from ctpn_jax.losses import LossConfig, ctpn_loss
from ctpn_jax.model import CPU_WIDTH, CTPN, VGG16_STAGES, CTPNConfig, init_ctpn
from ctpn_jax.postprocess import PostprocessConfig
from ctpn_jax.targets import TargetConfig, ctpn_targets
from ctpn_jax.weights import MODEL_NAME, export_detector
from ocr_common.precision import compute_dtype
from ocr_common.task import frozen

NAME = MODEL_NAME
# From-scratch training (no ImageNet VGG16 here): Adam at 1e-4 rather than the original's
# 1e-5 fine-tuning rate; two images per step instead of one to steady the gradient.
TRAIN_DEFAULTS = {
    "batch_size": 2,
    "lr": 1e-4,
    "warmup_steps": 500,
    "steps": 50000,
    "eval_every": 1000,
    "ckpt_every": 500,
    "clip_norm": 10.0,
}


@dataclass(frozen=True)
class Config(CTPNConfig):
    """Model, target, loss, post-processing and data settings of the detector (plain data).

    The network's hyper-parameters are ``CTPNConfig``'s fields (width, num_anchors,
    rnn_units, fc_units, window_units), inherited: they are top-level names in config files
    and ``--set``.  ``width`` defaults to the CPU width here; ``--set width=1.0`` trains the
    original network.  ``num_anchors`` must be the number of ``targets.heights``.
    """

    width: float = CPU_WIDTH
    targets: TargetConfig = field(default_factory=TargetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    post: PostprocessConfig = field(default_factory=PostprocessConfig)
    data: DetDataConfig = field(default_factory=DetDataConfig)
    # Dtype of activations and matmuls/convolutions: "float32" or "bfloat16" (mixed
    # precision: parameters, their updates, the network outputs and the loss stay float32).
    compute_dtype: str = "float32"
    # The first VGG stages whose convolutions are left as they are (0: train every layer, as
    # from scratch). Their gradient is then never formed, which skips the backward pass of the
    # full-resolution layers, the slowest part of the step; fine-tuning a trained detector
    # can keep its first stages' low-level filters.
    frozen_stages: int = 0


def build_model(cfg: Config) -> CTPN:
    """The network of ``cfg``.

    Raises:
        ValueError: ``num_anchors`` is not the number of anchor heights of the targets, or
            ``frozen_stages`` is not a number of VGG stages.
    """
    if not 0 <= cfg.frozen_stages <= len(VGG16_STAGES):
        raise ValueError(f"frozen_stages={cfg.frozen_stages}: expected 0 .. {len(VGG16_STAGES)}")
    if cfg.num_anchors != len(cfg.targets.heights):
        raise ValueError(
            f"num_anchors={cfg.num_anchors} but targets.heights has "
            f"{len(cfg.targets.heights)} heights: set both"
        )
    return CTPN.from_config(cfg, dtype=compute_dtype(cfg.compute_dtype))


def init_variables(model: CTPN, cfg: Config, key: jax.Array) -> dict:
    """``{'params': ...}`` (the detector has no other collections)."""
    return init_ctpn(model, key)


def make_train_iter(
    cfg: Config, data: str, batch_size: int, seed: int, start_step: int
) -> Iterator[dict]:
    """Batches for steps ``start_step, start_step + 1, ...`` ("synth" or a folder)."""
    source, shuffle = data_source(cfg.data, data, seed)
    return train_batches(source, cfg.data, batch_size, seed, start_step, shuffle)


def feature_shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(Hf, Wf)`` of a ``(B, H, W, 3)`` batch."""
    return -(-image_shape[1] // FEATURE_STRIDE), -(-image_shape[2] // FEATURE_STRIDE)


def batch_targets(target_cfg: TargetConfig, batch: dict, key: jax.Array) -> dict[str, jax.Array]:
    """``ctpn_targets`` for every image of a batch (``(B, Hf, Wf, K, ...)`` arrays)."""
    feat = feature_shape(batch["image"].shape)
    keys = jax.random.split(key, batch["image"].shape[0])

    def one(quads, valid, ignore, hw, k):
        return ctpn_targets(quads, valid, ignore, hw, k, feat, target_cfg)

    return jax.vmap(one)(
        batch["quads"], batch["valid"], batch["ignore"], batch["image_hw"].astype(jnp.float32), keys
    )


def freeze_stages(params: dict, stages: int) -> dict:
    """``params`` with the convolutions of the first ``stages`` VGG stages frozen
    (``ocr_common.task.frozen``)."""
    vgg = params["vgg16"]
    names = [n for n in vgg if any(n.startswith(f"conv{s + 1}_") for s in range(stages))]
    return {**params, "vgg16": frozen(vgg, names)} if names else params


def loss_fn(
    cfg: Config, model: CTPN, params: Any, model_state: dict, batch: dict, key: jax.Array
) -> tuple[jax.Array, tuple[dict, dict]]:
    """CTPN loss of a batch; targets are assigned (``cfg.targets``, anchors sampled) inside
    the step and weighted by ``cfg.loss``.

    ``batch`` is laid out as ``ctpn_jax.data.pipeline`` describes (``image (B, H, W, 3)
    uint8``, ``image_hw (B, 2)``, ``quads``, ``valid``, ``ignore``); ``key`` drives the
    anchor sampling.

    Returns:
        ``(loss, (model_state, metrics))``: ``()`` float32 loss, the unchanged (empty)
        model state and ``()`` float32 metrics (the loss parts, ``num_positive``).
    """
    valid_width = -(-batch["image_hw"][:, 1] // FEATURE_STRIDE)
    params = freeze_stages(params, cfg.frozen_stages)
    out = model.apply({"params": params, **model_state}, batch["image"], valid_width=valid_width)
    targets = batch_targets(cfg.targets, batch, key)
    loss, parts = ctpn_loss(out, targets, cfg.loss)
    metrics = {
        "loss": loss,
        **parts,
        "num_positive": targets["num_positive"].astype(jnp.float32).mean(),
    }
    return loss, (model_state, metrics)


def make_evaluator(cfg: Config, model: CTPN, seed: int) -> Callable[[dict], dict[str, Any]]:
    """P/R/H-mean at IoU 0.5 on a fixed set of held-out rendered pages (test-time scale)."""
    from ctpn_jax.data.labels import lines_to_arrays
    from ctpn_jax.metrics import MatchResult, match_detections

    source = SynthPages(cfg.data, seed, EVAL_STREAM, train=False)
    pages = [source.page(i)[0] for i in range(cfg.data.eval_pages)]
    gts = [lines_to_arrays(p.lines) for p in pages]
    d = cfg.data
    detector = TextDetector(
        model, {}, cfg.post, d.test_short_side, d.test_long_side, d.test_bucket_sizes
    )

    def evaluate(variables: dict) -> dict[str, Any]:
        detector.variables = variables
        total, t0 = MatchResult(), time.perf_counter()
        for page, (quads, ignore) in zip(pages, gts, strict=True):
            det = detector(page.image)
            total = total + match_detections(quads, ignore, det.quads)
        return {
            "eval_precision": total.precision,
            "eval_recall": total.recall,
            "eval_hmean": total.hmean,
            "eval_seconds_per_image": (time.perf_counter() - t0) / max(1, len(pages)),
        }

    return evaluate


def export(path: str | Path, cfg: Config, model: CTPN, variables: dict, **extra: Any) -> Path:
    post = dataclasses.asdict(cfg.post)
    scale = {"short_side": cfg.data.test_short_side, "long_side": cfg.data.test_long_side}
    return export_detector(
        path, model.to_config(), variables, postprocess=post, test_scale=scale, **extra
    )


def check_init_weights(meta: dict, model: CTPN, path: str) -> None:
    """Raises ValueError when exported weights cannot initialise ``model``."""
    if meta.get("model") != NAME:
        raise ValueError(f"{path}: weights of model {meta.get('model')!r}, not {NAME!r}")
    mine = model.to_config().to_dict()
    if meta.get("config") != mine:
        raise ValueError(f"{path}: architecture {meta.get('config')} differs from the run's {mine}")


__all__ = [
    "NAME",
    "TRAIN_DEFAULTS",
    "Config",
    "build_model",
    "init_variables",
    "freeze_stages",
    "make_train_iter",
    "loss_fn",
    "make_evaluator",
    "export",
    "check_init_weights",
]
