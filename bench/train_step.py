"""DenseNet train-step throughput: forward, CTC loss, backward, Adam update.

    python bench/train_step.py [--batch-size 32] [--width 280] [--repeats 10]

Prints compile time, the median step time over repeats and samples/s, achieved GFLOP/s (from
XLA's cost analysis of the compiled step) against a float32 matmul measured in the same run.
The PyTorch peer of the performance issue will be added beside it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from densenet_jax import DenseNet
from densenet_jax.task import loss_fn


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an (n x n) @ (n x n) float32 matmul (median of repeats)."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=int, default=280)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    B, W = args.batch_size, args.width
    model = DenseNet()
    rng = np.random.default_rng(0)
    batch = {"image": rng.integers(0, 255, (B, 32, W, 1), dtype=np.uint8),
             "width": np.full((B,), W, np.int32),
             "labels": rng.integers(1, 5990, (B, 10), dtype=np.int32),
             "label_length": np.full((B,), 10, np.int32)}
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, W, 1)))
    params, state = variables.pop("params"), variables
    tx = optax.adam(1e-3)
    opt = tx.init(params)

    @jax.jit
    def step(params, state, opt, batch, key):
        (loss, (state, _)), g = jax.value_and_grad(
            lambda p: loss_fn(model, p, state, batch, key), has_aux=True)(params)
        upd, opt = tx.update(g, opt)
        return optax.apply_updates(params, upd), state, opt, loss

    t = time.perf_counter()
    compiled = step.lower(params, state, opt, batch, jax.random.key(0)).compile()
    compile_s = time.perf_counter() - t
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", float("nan")))
    times = []
    for i in range(args.repeats + 1):
        t = time.perf_counter()
        params, state, opt, loss = compiled(params, state, opt, batch, jax.random.key(i))
        loss.block_until_ready()
        if i:  # the first run warms caches
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    peak = matmul_peak()
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    print(f"| batch x width | compile s | step s (median of {args.repeats}) | samples/s "
          f"| GFLOP/step | GFLOP/s | matmul peak GFLOP/s | fraction of peak |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {B} x {W} | {compile_s:.1f} | {med:.3f} | {B / med:.1f} | {flops / 1e9:.1f} "
          f"| {flops / med / 1e9:.1f} | {peak:.1f} | {flops / med / 1e9 / peak:.2f} |")


if __name__ == "__main__":
    main()
