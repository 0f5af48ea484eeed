"""Training-loop throughput: `train.py` with its synthetic data, this tree against an earlier
commit, the two taking turns.

    python bench/train_loop.py --compare REV [--models densenet ctpn] [--steps 60] [--rounds 2]
    python bench/train_loop.py --compare REV --models ctpn --this-extra "--set frozen_stages=2"

Each run is a fresh `python train.py --model M --steps N` in a temporary run directory, with
the model's default recipe and data (rendered on the fly by its worker processes), no
evaluation and no checkpoints, logging every 5 steps. Samples per second are read from the
run's `metrics.jsonl` in the steady state: the median over the log windows after step
`--skip` (compilation, the first batches and the workers' start-up excluded; the median
also leaves out a later window that compiled a new line width). `data_wait_frac` is the
fraction of a window's time the loop waited for data. The table gives
medians over the rounds and each tree's speed as a multiple of the compared commit's.
`--compare REV` checks REV out with `git worktree` into a temporary folder and runs its
`train.py` there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from worktree import checkout  # noqa: E402

LOG_EVERY = 5


def steady_rate(metrics: Path, skip: int) -> tuple[float, float]:
    """`(samples/s, data_wait_frac)`: medians over the log windows (5 steps each) after
    step `skip` (the median leaves out a window that compiled a new line width)."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    late = [r for r in rows if "samples_per_s" in r and r["step"] > skip]
    if not late:
        raise SystemExit(f"{metrics}: no log line after step {skip}")
    rate = statistics.median(r["samples_per_s"] for r in late)
    return rate, statistics.median(r["data_wait_frac"] for r in late)


def run_loop(tree: Path, model: str, steps: int, run_dir: Path, extra: list[str]) -> Path:
    """Runs `train.py` of `tree` for `steps` steps; returns its metrics file."""
    cmd = [sys.executable, str(tree / "train.py"), "--model", model, "--steps", str(steps)]
    cmd += ["--run-dir", str(run_dir), "--eval-every", "0", "--ckpt-every", str(10 * steps)]
    cmd += ["--log-every", str(LOG_EVERY), "--seed", "0", "--quiet", *extra]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=tree, stdout=subprocess.DEVNULL)
    print(f"  {tree.name} {model}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return run_dir / "metrics.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--compare", metavar="REV", required=True, help="the earlier commit")
    p.add_argument("--models", nargs="+", default=["densenet", "ctpn"])
    p.add_argument("--steps", type=int, default=60, help="steps per run")
    p.add_argument("--skip", type=int, default=20, help="steps left out of the rate")
    p.add_argument("--rounds", type=int, default=2, help="runs of each tree (medians)")
    p.add_argument(
        "--extra", default="", help="more train.py arguments for every run, e.g. '--set x=y'"
    )
    p.add_argument(
        "--this-extra",
        default="",
        help="more train.py arguments for this tree's runs only (a setting the old one lacks)",
    )
    args = p.parse_args()
    extra = args.extra.split()

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        rev, old_tree = stack.enter_context(checkout(args.compare, tmp))
        trees = {"this tree": REPO, rev: old_tree}
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for model in args.models:
            for k in range(args.rounds):
                for name, tree in trees.items():
                    run_dir = tmp / f"run-{model}-{k}-{name.replace(' ', '-')}"
                    more = args.this_extra.split() if tree == REPO else []
                    metrics = run_loop(tree, model, args.steps, run_dir, extra + more)
                    rate, wait = steady_rate(metrics, args.skip)
                    results.setdefault((model, name), []).append((rate, wait))
                    print(f"  {name} {model} round {k + 1}: {rate:.1f} samples/s", file=sys.stderr)

    print(
        f"\nSteady-state training loop, steps {args.skip}-{args.steps} of a fresh run, "
        f"median of {args.rounds} runs\n"
    )
    if args.this_extra:
        print(f"This tree's runs with `{args.this_extra}`.\n")
    print("| model | code | samples/s | data_wait_frac | vs " + rev + " |")
    print("|---|---|---:|---:|---:|")
    for model in args.models:
        base = statistics.median(r for r, _ in results[(model, rev)])
        for name in trees:
            rates = [r for r, _ in results[(model, name)]]
            waits = [w for _, w in results[(model, name)]]
            med = statistics.median(rates)
            print(
                f"| {model} | {name} | {med:.1f} ({min(rates):.1f}-{max(rates):.1f}) "
                f"| {statistics.median(waits):.3f} | {med / base:.2f}x |"
            )


if __name__ == "__main__":
    main()
