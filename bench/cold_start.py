"""Start-up: seconds of a fresh `python infer.py IMAGE` process, this tree against an earlier
commit and RapidOCR 3.10 in a fresh process, the three taking turns.

    python bench/cold_start.py [IMAGE ...] [--compare REV] [--compare-path DIR] [--runs 5]

For each image and each of `--runs` rounds: every variant of ours gets a new, empty
compilation cache and reads the image twice (empty cache, then the cache that run filled);
RapidOCR reads it once (it compiles nothing). The table gives medians over the rounds and
the filled-cache time as a multiple of RapidOCR's (issue 37's target: at most 1.5x).
`--compare REV` checks REV out with `git worktree` into a temporary folder and runs its
`infer.py` there (its own packages come first on `sys.path`); `--compare-path DIR` puts
DIR before them, e.g. other versions of dependencies installed with `pip install --target
DIR --no-deps ...` (the compared tree as it ran with what it used to install).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from e2e import PEER, RAPIDOCR_SCRIPT, fresh_process_seconds, progress  # noqa: E402
from worktree import checkout  # noqa: E402


def ours_seconds(tree: Path, image: Path, cache: Path, out: Path, path: str = "") -> float:
    cmd = [sys.executable, str(tree / "infer.py"), str(image), "--out", str(out)]
    cmd += ["--no-draw", "--quiet"]
    pythonpath = os.pathsep.join(p for p in (path, str(tree)) if p)
    env = {**os.environ, "CHINESE_OCR_JAX_CACHE": str(cache), "PYTHONPATH": pythonpath}
    return fresh_process_seconds(cmd, env)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("images", nargs="*", type=Path, default=[REPO / "examples" / "receipt.jpg"])
    p.add_argument("--compare", metavar="REV", help="also time infer.py of this commit")
    p.add_argument(
        "--compare-path", default="", metavar="DIR", help="first on sys.path of --compare's tree"
    )
    p.add_argument("--runs", type=int, default=5, help="rounds (medians are reported)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        trees = {"this tree": (REPO, "")}
        if args.compare:
            rev, tree = stack.enter_context(checkout(args.compare, tmp))
            label = f"{rev} with {args.compare_path}" if args.compare_path else rev
            trees[label] = (tree, args.compare_path)
        rows = []
        for image in args.images:
            times: dict[str, list[float]] = {PEER: []}
            for k in range(args.runs):
                for name, (tree, path) in trees.items():
                    cache = tmp / f"cache-{k}-{name.replace(' ', '-')}" / "jax"
                    out = tmp / "out"
                    times.setdefault(f"{name}, empty cache", []).append(
                        ours_seconds(tree, image, cache, out, path)
                    )
                    times.setdefault(f"{name}, filled cache", []).append(
                        ours_seconds(tree, image, cache, out, path)
                    )
                times[PEER].append(
                    fresh_process_seconds([sys.executable, "-c", RAPIDOCR_SCRIPT, str(image)])
                )
                progress(
                    f"{image.name} round {k + 1}: "
                    + ", ".join(f"{n} {v[-1]:.2f}" for n, v in times.items())
                )
            peer = statistics.median(times[PEER])
            for name, values in times.items():
                med = statistics.median(values)
                rows.append(
                    f"| {image.name} | {name} | {med:.2f} | {min(values):.2f} | {med / peer:.2f}x |"
                )
    print(f"Fresh one-image processes, median of {args.runs} rounds (seconds)\n")
    print("| image | system | median s | best s | / " + PEER + " |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
