"""DenseNet train-step throughput, ours (JAX) vs the same network in PyTorch, in one run.

    python bench/train_step.py [--batch-size 32] [--width 280] [--repeats 10] [--torch-compile]
    python bench/train_step.py --breakdown      # where our step spends its time
    python bench/train_step.py --frozen-blocks 1,2   # fine-tuning steps with blocks frozen

Our step is the one training runs, built by train.py (`make_optimizer`, `create_state`,
`make_train_step`) with the recogniser's defaults: forward, CTC loss, backward, gradient
clipping to global norm 5, Adam (peak learning rate 1e-3, warm-up + cosine schedule) and the
moving average of the weights and batch statistics (decay 0.999), jitted with the state
donated, of the original `DenseNet()` (5990 classes) on one fixed random batch of uint8
lines (no input pipeline), float32 on the CPU, training mode (batch statistics, dropout).
The PyTorch peer (`bench/torch_densenet.py`) has the same layers, CTC loss, clipping, Adam
(at a constant learning rate of 1e-3) and moving average; before timing, both are given the
same weights and must agree on logits and CTC loss (`--no-check` skips that).

Timing: the steps of the two implementations alternate, so that load on the machine hits
both alike; each figure is the median of `--repeats` steps, after one warm-up step each. The
JAX compile time and PyTorch's first step (`torch.compile` included, with --torch-compile)
are reported apart. GFLOP per step comes from XLA's cost analysis of the compiled step and is
used for both (the same network); the peak is the faster of a 2048 x 2048 float32 matmul in
JAX and in PyTorch, measured in the same run.

`--breakdown` times the parts of our step apart (each jitted alone, median of repeats): the
whole train step, the convolutional trunk forward + backward (the network with an 8-class
output layer), the 768 -> 5990 output layer forward + backward, the CTC loss forward +
backward on fixed logits, and the optimizer update (clipping + Adam).

`--frozen-blocks N,...` adds, for each N, the fine-tuning step with the task's
`frozen_blocks=N` (the first N dense blocks and the layers before them not trained, so
that no backward pass runs through them) and the PyTorch peer with the same layers'
`requires_grad` off; these rows are not the full step's computation (their GFLOP/s and
fraction of peak are computed with the full step's FLOP: an effective rate).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import train
from densenet_jax import DenseNet, task
from densenet_jax.ctc import ctc_loss
from densenet_jax.preprocess import normalize

try:  # run as `python bench/train_step.py` (bench/ on the path) or as a module
    import torch_densenet
    from timing import interleaved_times, time_jitted
except ImportError:
    from bench import torch_densenet
    from bench.timing import interleaved_times, time_jitted

# The loop's settings with the recogniser's defaults: learning rate, clipping, EMA decay.
TRAIN_CONFIG = dataclasses.replace(train.TrainConfig(), **task.TRAIN_DEFAULTS)
LEARNING_RATE = TRAIN_CONFIG.lr


def make_batch(batch_size: int, width: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A fixed random batch of uint8 lines with 10-character labels (all feasible for CTC)."""
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, (batch_size, 32, width, 1), dtype=np.uint8),
        "width": np.full((batch_size,), width, np.int32),
        "labels": rng.integers(1, 5990, (batch_size, 10), dtype=np.int32),
        "label_length": np.full((batch_size,), 10, np.int32),
    }


@dataclasses.dataclass
class TrainSetup:
    """train.py's pieces for the default recogniser task: what training builds."""

    cfg: task.Config
    model: DenseNet
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    state: train.TrainState


def train_setup(width: int, implementation: str = "fast", frozen_blocks: int = 0) -> TrainSetup:
    """The default task (the original 5990-class `DenseNet()`) at lines of `width` pixels,
    its optimizer and its initial state (seed 0), as `train.train_and_evaluate` makes them;
    `implementation` of the dense blocks ("fast" or "reference": the same function);
    `frozen_blocks` as the task's setting."""
    cfg = task.Config(implementation=implementation, frozen_blocks=frozen_blocks)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, widths=(width,)))
    model = task.build_model(cfg)
    tx, schedule = train.make_optimizer(TRAIN_CONFIG)
    state = train.create_state(task, cfg, model, tx, jax.random.PRNGKey(0))
    return TrainSetup(cfg, model, tx, schedule, state)


def variables_of(state: train.TrainState) -> dict:
    """`{"params": ..., "batch_stats": ...}` of a state, as numpy arrays (copies: the state
    is donated to the step)."""
    return jax.device_get({"params": state.params, **state.model_state})


def compile_train_step(
    setup: TrainSetup, batch: dict[str, np.ndarray]
) -> tuple[Callable, train.TrainState, dict, float, float]:
    """train.py's step for `setup`, compiled for `batch`: `(compiled step, state and batch
    placed as it expects them, compile seconds, FLOP per step)`."""
    step = train.make_train_step(
        task, setup.cfg, setup.model, setup.tx, setup.schedule, TRAIN_CONFIG.ema_decay
    )
    mesh = train.data_mesh()
    # A copy: the step donates its state, and `setup.state` stays usable.
    state = jax.device_put(jax.tree.map(jnp.array, setup.state), NamedSharding(mesh, P()))
    batch = jax.device_put(batch, NamedSharding(mesh, P(train.DATA_AXIS)))
    t = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - t
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return compiled, state, batch, compile_s, float(cost.get("flops", float("nan")))


def jax_train_step(
    batch: dict[str, np.ndarray], setup: TrainSetup
) -> tuple[Callable[[], None], float, float]:
    """`(step, compile seconds, FLOP per step)`; `step()` runs one step of train.py's train
    step and waits for it."""
    compiled, state, batch, compile_s, flops = compile_train_step(setup, batch)
    carry = {"state": state}

    def run() -> None:
        carry["state"], metrics = compiled(carry["state"], batch)  # the state is donated
        metrics["loss"].block_until_ready()

    return run, compile_s, flops


def torch_train_step(
    batch: dict[str, np.ndarray], variables: dict, compile_model: bool, frozen_blocks: int = 0
) -> Callable[[], None]:
    """`step()` runs one PyTorch train step (the same batch, weights, loss and optimiser);
    with `frozen_blocks`, the layers our `frozen_blocks` leaves untrained do not require
    gradients."""
    model = torch_densenet.TorchDenseNet()
    torch_densenet.load_flax_variables(model, variables)
    if frozen_blocks:
        frozen = [model.conv0] + [getattr(model, f"block{b}") for b in range(frozen_blocks)]
        frozen += [getattr(model, f"trans{b}") for b in range(frozen_blocks - 1)]
        for module in frozen:
            module.requires_grad_(False)
    model.train()
    forward = torch.compile(model) if compile_model else model
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=LEARNING_RATE)
    # The moving average of the weights and float buffers (BatchNorm statistics), as ours.
    current = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    average = [t.detach().clone() for t in current]
    step = {"i": 0}
    image = batch["image"]
    steps = torch.full((len(image),), DenseNet().output_length(image.shape[2]), dtype=torch.long)
    labels = torch.from_numpy(batch["labels"]).long()
    label_lengths = torch.from_numpy(batch["label_length"]).long()

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        logits = forward(torch_densenet.to_input(image))
        loss = torch_densenet.ctc_loss(logits, steps, labels, label_lengths)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN_CONFIG.clip_norm)
        opt.step()
        i = step["i"]
        d = min(TRAIN_CONFIG.ema_decay, (1 + i) / (10 + i))  # train.ema_update's warm-up
        with torch.no_grad():
            for a, x in zip(average, current, strict=True):
                a.lerp_(x, 1 - d)
        step["i"] = i + 1

    return run


def matmul_peak_jax(n: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of an (n x n) @ (n x n) float32 matmul in JAX (median of repeats)."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def matmul_peak_torch(n: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of the same matmul in PyTorch."""
    a = torch.from_numpy(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32))
    a @ a
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def time_train_step(
    setup: TrainSetup, batch: dict[str, np.ndarray], repeats: int
) -> tuple[float, float]:
    """`(median seconds, GFLOP)` of train.py's step, the state carried from step to step (it
    is donated), after one warm-up step."""
    run, _, flops = jax_train_step(batch, setup)
    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times), flops / 1e9


def breakdown(batch: dict[str, np.ndarray], setup: TrainSetup, repeats: int, peak: float) -> None:
    """Prints a table of the parts of our train step, timed apart."""
    B, W = batch["image"].shape[0], batch["image"].shape[2]
    model = setup.model
    T = model.output_length(W)
    params = variables_of(setup.state)["params"]
    key = jax.random.key(1)
    rng = np.random.default_rng(1)
    trunk_vars = DenseNet(num_classes=8).init(jax.random.key(0), jnp.zeros((1, 32, W, 1)))

    def trunk_grad(p, implementation):
        trunk = DenseNet(num_classes=8, implementation=implementation)

        def loss(p):
            y, _ = trunk.apply(
                {"params": p, "batch_stats": trunk_vars["batch_stats"]},
                normalize(batch["image"]),
                train=True,
                rngs={"dropout": key},
                mutable=["batch_stats"],
            )
            return jnp.sum(y**2)

        return jax.grad(loss)(p)

    features = jnp.asarray(rng.normal(size=(B, T, 768)), jnp.float32)
    logits = jnp.asarray(rng.normal(size=(B, T, model.num_classes)), jnp.float32)
    steps = jnp.full((B,), T)
    tx = setup.tx
    opt = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    parts = {
        "trunk forward + backward (8-class output)": (
            lambda p: trunk_grad(p, "fast"),
            (trunk_vars["params"],),
        ),
        "trunk forward + backward, reference dense blocks": (
            lambda p: trunk_grad(p, "reference"),
            (trunk_vars["params"],),
        ),
        "output layer 768 -> 5990 forward + backward": (
            lambda x, k: jax.grad(lambda x, k: jnp.sum((x @ k) ** 2), argnums=(0, 1))(x, k),
            (features, params["out"]["kernel"]),
        ),
        "CTC loss forward + backward": (
            lambda z: jax.grad(
                lambda z: ctc_loss(z, steps, batch["labels"], batch["label_length"]).mean()
            )(z),
            (logits,),
        ),
        "clip + Adam update": (
            lambda g, o, p: optax.apply_updates(p, tx.update(g, o, p)[0]),
            (grads, opt, params),
        ),
    }
    print(
        f"\n| part of our step (batch {B} x {W}) | ms (median of {repeats}) | GFLOP "
        f"| GFLOP/s | fraction of matmul peak |"
    )
    print("|---|---:|---:|---:|---:|")
    timed = {
        "full train step (train.py: grad, clip + Adam, EMA)": time_train_step(setup, batch, repeats)
    }
    for name, (f, args) in parts.items():
        timed[name] = time_jitted(f, *args, repeats=repeats)
    for name, (seconds, gflop) in timed.items():
        print(
            f"| {name} | {seconds * 1000:.0f} | {gflop:.1f} | {gflop / seconds:.1f} "
            f"| {gflop / seconds / peak:.2f} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=int, default=280)
    p.add_argument("--repeats", type=int, default=10, help="timed steps of each implementation")
    p.add_argument(
        "--torch-compile",
        action="store_true",
        help="also time the PyTorch model under torch.compile (inductor)",
    )
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="only time the parts of our step apart (no PyTorch)",
    )
    p.add_argument(
        "--frozen-blocks",
        default="",
        help="comma-separated frozen_blocks settings: also time those fine-tuning steps",
    )
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip checking that both implementations give the same logits",
    )
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    B, W = args.batch_size, args.width
    batch = make_batch(B, W)
    setup = train_setup(W)
    variables = variables_of(setup.state)  # the same starting weights for both sides
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"jax {jax.__version__} ({jax.devices()[0].device_kind}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    if args.breakdown:
        peak = max(matmul_peak_jax(), matmul_peak_torch())
        print(f"matmul peak {peak:.1f} GFLOP/s")
        breakdown(batch, setup, args.repeats, peak)
        return
    if not args.no_check:
        r = torch_densenet.check_same_network(
            variables, batch["image"][:4], batch["labels"][:4], batch["label_length"][:4]
        )
        print(
            f"same network: max |logit diff| {r['max_abs_diff']:.1e}, CTC loss jax "
            f"{r['jax_loss']:.4f} / torch {r['torch_loss']:.4f}"
        )
        if r["max_rel_diff"] > 1e-4:
            raise SystemExit("the two implementations disagree: not benchmarking")

    jax_run, compile_s, flops = jax_train_step(batch, setup)
    ref_run, ref_compile_s, _ = jax_train_step(batch, train_setup(W, "reference"))
    runs = {
        "JAX (ours, fast dense blocks)": jax_run,
        "JAX, reference dense blocks (the previous code)": ref_run,
        "PyTorch eager": torch_train_step(batch, variables, False),
    }
    if args.torch_compile:
        runs["PyTorch torch.compile"] = torch_train_step(batch, variables, True)
    compiles = {
        "JAX (ours, fast dense blocks)": compile_s,
        "JAX, reference dense blocks (the previous code)": ref_compile_s,
    }
    for n in [int(v) for v in args.frozen_blocks.split(",") if v]:
        name = f"JAX (ours), first {n} dense blocks frozen"
        runs[name], compiles[name], _ = jax_train_step(batch, train_setup(W, frozen_blocks=n))
        runs[f"PyTorch eager, first {n} dense blocks frozen"] = torch_train_step(
            batch, variables, False, n
        )
    first = {}
    for name, run in runs.items():  # warm-up; for PyTorch this is its first-step cost
        t = time.perf_counter()
        run()
        first[name] = compiles.get(name, time.perf_counter() - t)
    times = interleaved_times(runs, args.repeats)
    peak_jax, peak_torch = matmul_peak_jax(), matmul_peak_torch()
    peak = max(peak_jax, peak_torch)

    median = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"\nbatch {B} x width {W}, {flops / 1e9:.1f} GFLOP/step (XLA cost analysis); "
        f"matmul peak {peak:.1f} GFLOP/s (JAX {peak_jax:.1f}, PyTorch {peak_torch:.1f})\n"
    )
    print(
        f"| implementation | compile / first step s | step s (median of {args.repeats}) "
        f"| min-max s | samples/s | GFLOP/s | fraction of matmul peak | speed vs PyTorch eager |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in times.items():
        m = median[name]
        print(
            f"| {name} | {first[name]:.1f} | {m:.3f} | {min(t):.3f}-{max(t):.3f} "
            f"| {B / m:.1f} | {flops / m / 1e9:.1f} | {flops / m / 1e9 / peak:.2f} "
            f"| {median['PyTorch eager'] / m:.2f}x |"
        )


if __name__ == "__main__":
    main()
