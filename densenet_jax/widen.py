"""Widen a trained recogniser's dense blocks without changing what it computes.

`widen(model, variables, growth, key)` returns a `DenseNet` whose dense layers add `growth`
channels instead of `model.growth`, and variables with which it computes the same logits
(train and eval mode, up to float rounding). Each dense layer keeps its old output channels
with their old kernels and gains new ones with fresh random kernels; every weight that
reads a new channel (later dense layers, transitions, the output layer) starts at zero, so
the new channels change nothing until training moves those weights. This is how the
capacity question of issue 39 is put at fine-tune cost: the wider network starts where the
shipped one is and the two are trained side by side on the same data (docs/models.md).

Channel layout of a dense block with `c0` input channels and growth `g`: the input, then
layer 0's `g` outputs, layer 1's, ... Old channel `c0 + l * g_old + k` goes to
`c0 + l * g_new + k`.

Command line: ``python -m densenet_jax.widen IN.npz OUT.npz --growth 12`` writes the widened
weights, which ``train.py --model densenet --init-from OUT.npz --set growth=12`` trains on.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from densenet_jax.model import DenseNet

INPUT_HEIGHT = 32


def channel_map(c0: int, depth: int, old_growth: int, new_growth: int) -> np.ndarray:
    """Where each channel of a dense block's output goes when the growth widens.

    Returns:
      `(c0 + depth * old_growth,)` int64: the new index of each old channel.
    """
    old = np.arange(c0 + depth * old_growth)
    layer, k = np.divmod(old - c0, old_growth)
    return np.where(old < c0, old, c0 + layer * new_growth + k)


def _embed(
    fresh: np.ndarray, old: np.ndarray, index: tuple[Any, ...], zero_rest: bool
) -> np.ndarray:
    """`fresh` with `old` written at `index`; with `zero_rest`, everything else zero."""
    out = np.zeros_like(fresh) if zero_rest else np.array(fresh, copy=True)
    out[index] = old
    return out


def widen(model: DenseNet, variables: dict, growth: int, key: jax.Array) -> tuple[DenseNet, dict]:
    """`model` with `growth` channels per dense layer, and variables computing the same function.

    Args:
      model: a `DenseNet`.
      variables: its `{'params': ..., 'batch_stats': ...}`.
      growth: the new growth, at least `model.growth`.
      key: PRNG key for the new channels' kernels (he-normal, as a fresh network's).

    Returns:
      `(wider_model, wider_variables)` as numpy float32 arrays.
    """
    if growth < model.growth:
        raise ValueError(f"growth {growth} is narrower than the model's {model.growth}")
    wide = dataclasses.replace(model, growth=growth)
    dummy = jnp.zeros((1, INPUT_HEIGHT, 16, 1), jnp.float32)
    fresh = jax.tree_util.tree_map(np.asarray, wide.init(key, dummy, train=False))
    old = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), variables)
    params, stats = fresh["params"], fresh["batch_stats"]
    old_params, old_stats = old["params"], old["batch_stats"]
    depth, g_old = model.depth, model.growth

    def norm(new_p, new_s, old_p, old_s, index) -> None:
        for name in ("scale", "bias"):
            new_p[name] = _embed(new_p[name], old_p[name], (index,), zero_rest=False)
        for name in ("mean", "var"):
            new_s[name] = _embed(new_s[name], old_s[name], (index,), zero_rest=False)

    params["Conv_0"] = old_params["Conv_0"]
    for b in range(3):
        c0 = model.first_features if b == 0 else model.transition_features
        block, p, s = f"DenseBlock_{b}", params[f"DenseBlock_{b}"], stats[f"DenseBlock_{b}"]
        op, os_ = old_params[block], old_stats[block]
        for i in range(depth):
            index = channel_map(c0, i, g_old, growth)  # the channels layer i reads
            norm(
                p[f"BatchNorm_{i}"],
                s[f"BatchNorm_{i}"],
                op[f"BatchNorm_{i}"],
                os_[f"BatchNorm_{i}"],
                index,
            )
            conv, old_conv = p[f"Conv_{i}"], op[f"Conv_{i}"]
            # Old outputs read only old channels; new outputs keep their fresh kernels.
            kernel = np.array(conv["kernel"], copy=True)
            kernel[:, :, :, :g_old] = 0.0
            kernel[:, :, index, :g_old] = old_conv["kernel"]
            conv["kernel"] = kernel
            conv["bias"] = _embed(conv["bias"], old_conv["bias"], (slice(0, g_old),), False)
        out_index = channel_map(c0, depth, g_old, growth)  # the block's output channels
        if b < 2:
            t, tp, ts = f"Transition_{b}", params[f"Transition_{b}"], stats[f"Transition_{b}"]
            norm(
                tp["BatchNorm_0"],
                ts["BatchNorm_0"],
                old_params[t]["BatchNorm_0"],
                old_stats[t]["BatchNorm_0"],
                out_index,
            )
            tp["Conv_0"]["kernel"] = _embed(
                tp["Conv_0"]["kernel"],
                old_params[t]["Conv_0"]["kernel"],
                (slice(None), slice(None), out_index),
                True,
            )
    norm(
        params["BatchNorm_0"],
        stats["BatchNorm_0"],
        old_params["BatchNorm_0"],
        old_stats["BatchNorm_0"],
        out_index,
    )
    # The output layer reads (height, channel) per time step, flattened height-major.
    c_old, c_new = len(out_index), c0 + depth * growth
    rows = old_params["out"]["kernel"].shape[0]
    height = rows // c_old
    row_index = (np.arange(height)[:, None] * c_new + out_index[None, :]).reshape(-1)
    params["out"] = {
        "kernel": _embed(params["out"]["kernel"], old_params["out"]["kernel"], (row_index,), True),
        "bias": old_params["out"]["bias"],
    }
    return wide, {"params": params, "batch_stats": stats}


def main(argv: list[str] | None = None) -> None:
    from densenet_jax.weights import export_recognizer, load_recognizer

    parser = argparse.ArgumentParser(
        prog="python -m densenet_jax.widen",
        description="Write a recogniser's weights widened to a larger growth rate, computing "
        "the same function (new channels start with zero outgoing weights). Train it with "
        "`train.py --model densenet --init-from OUT --set growth=G`.",
    )
    parser.add_argument("weights", help="exported recogniser weights (.npz)")
    parser.add_argument("out", help="where to write the widened weights (.npz)")
    parser.add_argument("--growth", type=int, required=True, help="the new growth rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new channels' kernels")
    args = parser.parse_args(argv)
    model, variables, charset, meta = load_recognizer(args.weights)
    wide, wide_vars = widen(model, variables, args.growth, jax.random.PRNGKey(args.seed))
    keep = {k: meta[k] for k in ("step", "total_steps") if k in meta}
    path = export_recognizer(
        args.out, wide, wide_vars, charset, widened_from=str(args.weights), **keep
    )
    print(f"wrote {path}: growth {model.growth} -> {wide.growth}")


if __name__ == "__main__":
    main()
