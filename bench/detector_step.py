"""CTPN train-step time and where it goes, with the shipped detector's recipe.

    python bench/detector_step.py [--config configs/ctpn-v3.json] [--repeats 7]
    python bench/detector_step.py --frozen-stages 0,1,2,3   # the step with stages frozen


The step is train.py's (`make_train_step`: gradient of the CTPN loss with the anchor targets
assigned inside the step, clipping, Adam, the moving average), jitted with the state donated,
on the first batch of the recipe's synthetic page stream (batch 2, width 0.25 for the
shipped detector; one fixed batch, so one compiled shape). The parts are timed apart, each
jitted alone (median of repeats): the VGG16 trunk and the 3x3 window convolution forward
+ backward, the whole network forward + backward (the bidirectional LSTM over the feature
rows, the fully connected layer and the heads are the difference), and the target
assignment + loss on fixed network outputs. GFLOP from XLA's cost analysis.

With ``--frozen-stages``, the full step only, once per setting of the task's
``frozen_stages`` (the first VGG stages left untrained), the settings taking turns,
with each one's speed against the first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from timing import interleaved_times, time_jitted  # noqa: E402

import train  # noqa: E402
from ctpn_jax import task  # noqa: E402
from ctpn_jax.losses import ctpn_loss  # noqa: E402
from ctpn_jax.model import VGG16Features, normalize_images  # noqa: E402


def compiled_step(config: str, *overrides: str):
    """``(cfg, tcfg, batch, state, compiled step, compile seconds, GFLOP)`` of a recipe."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--model", "ctpn", "--run-dir", tmp, "--config", config, "--set", "data.workers=0"]
        for o in overrides:
            argv += ["--set", o]
        cfg, tcfg = train.build_configs(task, train.parse_args(argv))
    batch = next(task.make_train_iter(cfg, "synth", tcfg.batch_size, 0, 0))
    batch = {k: np.asarray(v) for k, v in batch.items()}
    model = task.build_model(cfg)
    tx, schedule = train.make_optimizer(tcfg)
    state = train.create_state(task, cfg, model, tx, jax.random.PRNGKey(0))
    step = train.make_train_step(task, cfg, model, tx, schedule, tcfg.ema_decay)
    t = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - t
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    gflop = float(cost.get("flops", float("nan"))) / 1e9
    return cfg, tcfg, batch, state, compiled, compile_s, gflop


def runner(compiled, state, batch):
    """A function running one step of ``compiled`` on its own (donated) state."""
    carry = {"state": state}

    def run() -> None:
        carry["state"], metrics = compiled(carry["state"], batch)
        metrics["loss"].block_until_ready()

    return run


def compare_frozen(config: str, settings: list[int], repeats: int) -> None:
    """The full step with each ``frozen_stages`` setting, the settings taking turns."""
    runs, gflops = {}, {}
    for n in settings:
        *_, batch, state, compiled, _, gflop = compiled_step(config, f"frozen_stages={n}")
        runs[n], gflops[n] = runner(compiled, state, batch), gflop
        runs[n]()
    times = interleaved_times(runs, repeats)
    b, h, w, _ = batch["image"].shape
    base = statistics.median(times[settings[0]])
    print(f"CTPN train step, batch {b} x {h} x {w} ({config}), median of {repeats}\n")
    print(f"| frozen_stages | step ms | min-max ms | GFLOP | pages/s | vs {settings[0]} |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in settings:
        med = statistics.median(times[n])
        print(
            f"| {n} | {med * 1000:.0f} | {min(times[n]) * 1000:.0f}-{max(times[n]) * 1000:.0f} "
            f"| {gflops[n]:.1f} | {b / med:.2f} | {base / med:.2f}x |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(REPO / "configs" / "ctpn-v3.json"))
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument(
        "--frozen-stages",
        default=None,
        help="comma-separated settings of frozen_stages to time the full step with",
    )
    args = p.parse_args()

    if args.frozen_stages is not None:
        compare_frozen(args.config, [int(v) for v in args.frozen_stages.split(",")], args.repeats)
        return
    cfg, tcfg, batch, state, compiled, compile_s, gflop = compiled_step(args.config)
    model = task.build_model(cfg)
    params = jax.device_get(state.params)
    run = runner(compiled, state, batch)
    run()
    step_s = statistics.median(interleaved_times({"step": run}, args.repeats)["step"])

    b, h, w, _ = batch["image"].shape
    print(
        f"CTPN width {cfg.width}, batch {b} x {h} x {w} ({args.config}); compile {compile_s:.1f} s"
    )
    vgg = VGG16Features(cfg.width, name="vgg16")
    images = normalize_images(batch["image"])

    def trunk(p, x):
        y = vgg.apply({"params": p["vgg16"]}, x)
        k = p["rpn_conv"]
        y = jax.lax.conv_general_dilated(
            y, k["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return jnp.sum(jax.nn.relu(y + k["bias"]) ** 2)

    key = jax.random.key(1)
    out = model.apply({"params": params}, batch["image"])

    def network(p):
        o = model.apply({"params": p}, batch["image"])
        return sum(jnp.sum(v**2) for v in o.values())

    def targets_and_loss(o):
        return ctpn_loss(o, task.batch_targets(cfg.targets, batch, key), cfg.loss)[0]

    parts = {
        "full train step (train.py)": (step_s, gflop),
        "VGG16 trunk + window conv, forward + backward": time_jitted(
            jax.grad(trunk), params, images, repeats=args.repeats
        ),
        "whole network (trunk, BLSTM, FC, heads), forward + backward": time_jitted(
            jax.grad(network), params, repeats=args.repeats
        ),
        "targets + loss on fixed outputs, forward + backward": time_jitted(
            jax.grad(targets_and_loss), out, repeats=args.repeats
        ),
    }
    print(f"\n| part (batch {b} x {h} x {w}) | ms (median of {args.repeats}) | GFLOP | GFLOP/s |")
    print("|---|---:|---:|---:|")
    for name, (seconds, gflop) in parts.items():
        print(f"| {name} | {seconds * 1000:.0f} | {gflop:.1f} | {gflop / seconds:.1f} |")
    print(f"\nsteps/s {1 / step_s:.2f}, pages/s {b / step_s:.2f}")


if __name__ == "__main__":
    main()
