"""The recogniser as a task of the shared training loop in `train.py`.

This module provides the `ocr_common.task.Task` interface (module-level names).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from densenet_jax.charset import DEFAULT_CHARSET_FILE, Charset
from densenet_jax.ctc import ctc_loss, decode_batch, min_ctc_steps
from densenet_jax.data.labels import read_labels
from densenet_jax.data.pipeline import (
    EVAL_STREAM,
    TRAIN_STREAM,
    LabeledLines,
    LineDataConfig,
    SynthLines,
    fixed_batches,
    train_batches,
)
from densenet_jax.metrics import text_metrics
from densenet_jax.model import NUM_DENSE_BLOCKS, DenseNet, DenseNetConfig
from densenet_jax.preprocess import normalize
from densenet_jax.recognizer import make_predict
from densenet_jax.weights import export_recognizer
from ocr_common.precision import compute_dtype
from ocr_common.task import frozen

NAME = "densenet"
# Defaults of the shared loop's settings for this model (Adam as the original, with warm-up).
TRAIN_DEFAULTS = {
    "batch_size": 32,
    "lr": 1e-3,
    "warmup_steps": 300,
    "steps": 20000,
    "eval_every": 500,
}


@dataclass(frozen=True)
class Config(DenseNetConfig):
    """Model and data settings of the recogniser (plain data; the defaults are the original).

    The layer sizes are `DenseNetConfig`'s fields (growth, depth, first_features,
    transition_features, dropout_rate, pooltype, last_pooltype), inherited: settings such as
    `growth` are top-level names in config files and `--set`. The number of classes is the
    charset's.
    """

    charset_file: str = str(DEFAULT_CHARSET_FILE)
    data: LineDataConfig = field(default_factory=LineDataConfig)
    eval_size: int = 256  # held-out synthetic lines for the in-training evaluation
    # Dtype of activations and matmuls/convolutions: "float32" or "bfloat16" (mixed
    # precision: parameters, their updates, BatchNorm statistics, logits and the CTC loss
    # stay float32). bench/RESULTS.md "Optimisations" says when bfloat16 pays.
    compute_dtype: str = "float32"
    # How the dense blocks compute, the same function either way (`DenseNet.implementation`):
    # "fast" (hand-written backward pass) or "reference" (flax's layers).
    implementation: str = "fast"
    # The first dense blocks left as they are, with everything before them (the first
    # convolution, the transitions between them; 0: train every layer, as from scratch).
    # Their gradient is then never formed, which skips their backward pass, the largest part
    # of the step; fine-tuning a trained recogniser can keep its first blocks' features.
    # Their batch statistics are still each batch's in training mode, and their moving
    # averages still updated.
    frozen_blocks: int = 0


def charset_of(cfg: Config) -> Charset:
    path = Path(cfg.charset_file)
    return Charset.default() if path == DEFAULT_CHARSET_FILE else Charset.from_file(path)


def build_model(cfg: Config) -> DenseNet:
    """The network of `cfg`.

    Raises:
        ValueError: `frozen_blocks` is not a number of dense blocks.
    """
    if not 0 <= cfg.frozen_blocks <= NUM_DENSE_BLOCKS:
        raise ValueError(f"frozen_blocks={cfg.frozen_blocks}: expected 0 .. {NUM_DENSE_BLOCKS}")
    return DenseNet.from_config(
        cfg, charset_of(cfg).num_classes, compute_dtype(cfg.compute_dtype), cfg.implementation
    )


def init_variables(model: DenseNet, cfg: Config, key: jax.Array) -> dict:
    """`{'params': ..., 'batch_stats': ...}` (shapes do not depend on the line width)."""
    dummy = jnp.zeros((1, 32, max(cfg.data.widths), 1), jnp.float32)
    return jax.jit(model.init)({"params": key}, dummy)


def _data_source(cfg: Config, data: str, seed: int, batch_size: int):
    if data == "synth":
        return SynthLines(
            cfg.data, charset_of(cfg), seed, TRAIN_STREAM, group_size=batch_size
        ), False
    return LabeledLines(read_labels(data, charset_of(cfg)), cfg.data), True


def make_train_iter(
    cfg: Config, data: str, batch_size: int, seed: int, start_step: int
) -> Iterator[dict]:
    """Batches for steps `start_step, start_step + 1, ...` ("synth" or a label file)."""
    source, shuffle = _data_source(cfg, data, seed, batch_size)
    return train_batches(source, cfg.data, batch_size, seed, start_step, shuffle)


def logit_lengths(model: DenseNet, widths: jnp.ndarray) -> jnp.ndarray:
    """`(B,)` time steps of lines of `widths` pixels (works on traced arrays)."""
    return model.output_length(widths)


def freeze_blocks(params: dict, blocks: int) -> dict:
    """`params` with the first `blocks` dense blocks and the layers before them (the first
    convolution, the transitions between the blocks) frozen (`ocr_common.task.frozen`)."""
    if blocks == 0:
        return params
    names = {"Conv_0"} | {f"DenseBlock_{b}" for b in range(blocks)}
    return frozen(params, names | {f"Transition_{b}" for b in range(blocks - 1)})


def loss_fn(
    cfg: Config, model: DenseNet, params: Any, model_state: dict, batch: dict, key: jax.Array
) -> tuple[jnp.ndarray, tuple[dict, dict]]:
    """Mean CTC loss of a batch in training mode (dropout on, batch statistics updated).

    `batch`: `image (B, 32, W, 1) uint8`, `width (B,) int32` (true widths), `labels (B, L)
    int32` (right-padded) and `label_length (B,) int32`, as `densenet_jax.data.pipeline`
    collates them; `key` drives dropout. The network's settings are in `model`;
    `cfg.frozen_blocks` says which of its first layers are not trained.

    Returns:
      `(loss, ({'batch_stats': ...}, {'loss', 'feasible_frac'}))`, `()` float32 scalars.
    """
    logits, new_state = model.apply(
        {"params": freeze_blocks(params, cfg.frozen_blocks), **model_state},
        normalize(batch["image"]),
        train=True,
        rngs={"dropout": key},
        mutable=["batch_stats"],
    )
    steps = logit_lengths(model, batch["width"])
    losses = ctc_loss(logits, steps, batch["labels"], batch["label_length"])
    # A label that needs more time steps than the line has cannot be emitted at all; its
    # loss (~1e5) would swamp the batch, so such lines are left out of the mean.
    feasible = steps >= min_ctc_steps(batch["labels"], batch["label_length"])
    loss = jnp.sum(jnp.where(feasible, losses, 0.0)) / jnp.maximum(1, feasible.sum())
    return loss, (dict(new_state), {"loss": loss, "feasible_frac": feasible.mean()})


def make_evaluator(
    cfg: Config, model: DenseNet, seed: int, batch_size: int = 64
) -> Callable[[dict], dict[str, float]]:
    """Greedy-decoding CER and exact-line accuracy on a fixed held-out synthetic set."""
    charset = charset_of(cfg)
    source = SynthLines(cfg.data, charset, seed, EVAL_STREAM)
    batches = fixed_batches(source, cfg.eval_size, batch_size, cfg.data)
    predict = make_predict(model)

    def evaluate(variables: dict) -> dict[str, float]:
        t0 = time.perf_counter()
        preds, targets = [], []
        for b in batches:
            logits = predict(variables, b["image"])
            lengths = np.asarray(logit_lengths(model, b["width"]))
            preds += [d.text for d in decode_batch(logits, lengths, charset)]
            targets += b["text"]
        m = text_metrics(preds, targets)
        return {
            "eval_cer": m["cer"],
            "eval_exact": m["exact"],
            "eval_lines_per_s": len(targets) / (time.perf_counter() - t0),
            "eval_example": f"{targets[0]} -> {preds[0]}",
        }

    return evaluate


def export(path: str | Path, cfg: Config, model: DenseNet, variables: dict, **extra: Any) -> Path:
    return export_recognizer(path, model, variables, charset_of(cfg), **extra)


#: Architecture settings that leave the variables as they are: weights trained with other
#: values can start a run (e.g. the shipped 8-px-step file a run with `last_pooltype` 1).
VARIABLE_FREE_SETTINGS = ("dropout_rate", "pooltype", "last_pooltype")


def check_init_weights(meta: dict, model: DenseNet, path: str) -> None:
    """Raises ValueError when exported weights cannot initialise `model`: another model, or
    an architecture with other variables (settings other than `VARIABLE_FREE_SETTINGS`)."""
    if meta.get("model") != NAME:
        raise ValueError(f"{path}: weights of model {meta.get('model')!r}, not {NAME!r}")

    def shaping(arch: dict) -> dict:
        full = {**DenseNet().architecture(), **arch}
        return {k: v for k, v in full.items() if k not in VARIABLE_FREE_SETTINGS}

    config = meta.get("config")
    if not isinstance(config, dict) or shaping(config) != shaping(model.architecture()):
        raise ValueError(
            f"{path}: architecture {config} differs from the run's {model.architecture()}"
        )
