"""Timing of jitted functions and of callables taking turns, shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def time_jitted(f: Callable, *args, repeats: int) -> tuple[float, float]:
    """`(median seconds, GFLOP)` of `jax.jit(f)(*args)` after one warm-up call; GFLOP from
    XLA's cost analysis of the compiled function."""
    compiled = jax.jit(f).lower(*args).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times), float(cost.get("flops", float("nan"))) / 1e9


def interleaved_times(runs: dict[Any, Callable[[], None]], repeats: int) -> dict[Any, list[float]]:
    """Seconds of each call, the callables taking turns `repeats` times."""
    times: dict[Any, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    return times
