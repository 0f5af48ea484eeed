"""End-to-end speed of two checkouts of this project on the same images, taking turns.

    git worktree add /tmp/before <commit>
    python bench/versions.py /tmp/before . --images examples/ --rounds 3 --turns 3

Each turn starts one process per checkout, in turn (``A B A B ...``): the process imports
``infer.OCR`` from its checkout, reads every image once to compile (timed apart), then reads
them ``--rounds`` times, one image per call (``OCR()(path)``), and reports the seconds of
each call. The table gives, per checkout, the median warm seconds per image over all turns,
the first (compiling) pass and the import + model loading time, and the ratio to the first
checkout. Both use an empty compilation cache of their own, so compiling is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from infer import OCR
ocr = OCR()
load = time.perf_counter() - t0
paths = sys.argv[3:]
t0 = time.perf_counter()
texts = [[r["text"] for r in ocr(p)] for p in paths]
first = time.perf_counter() - t0
warm = []
for _ in range(int(sys.argv[2])):
    for p in paths:
        t0 = time.perf_counter()
        ocr(p)
        warm.append(time.perf_counter() - t0)
print(json.dumps({"load": load, "first": first, "warm": warm, "texts": texts}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkouts", type=Path, nargs=2, metavar="CHECKOUT", help="BEFORE AFTER")
    p.add_argument("--images", type=Path, default=Path("examples"))
    p.add_argument("--rounds", type=int, default=3, help="warm passes per process")
    p.add_argument("--turns", type=int, default=3, help="processes per checkout")
    args = p.parse_args()
    images = sorted(
        str(f.resolve())
        for f in args.images.iterdir()
        if f.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    runs: dict[int, list[dict]] = {0: [], 1: []}
    for turn in range(args.turns):
        for k, checkout in enumerate(args.checkouts):
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "CHINESE_OCR_JAX_CACHE": cache}
                env.pop("PYTHONPATH", None)
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        str(checkout.resolve()),
                        str(args.rounds),
                        *images,
                    ],
                    env=env,
                    cwd=tempfile.gettempdir(),
                    capture_output=True,
                    text=True,
                    check=True,
                )
            runs[k].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"turn {turn + 1}: {checkout} done", file=sys.stderr)

    same = runs[0][0]["texts"] == runs[1][0]["texts"]
    print(
        f"\n{len(images)} images of {args.images}, {args.turns} processes x {args.rounds} "
        f"warm passes per checkout; same texts: {same}\n"
    )
    print("| checkout | warm s/image (median) | ratio | first pass s | import + load s |")
    print("|---|---:|---:|---:|---:|")
    base = None
    for k, checkout in enumerate(args.checkouts):
        warm = statistics.median(t for r in runs[k] for t in r["warm"])
        first = statistics.median(r["first"] for r in runs[k])
        load = statistics.median(r["load"] for r in runs[k])
        base = base or warm
        print(f"| {checkout} | {warm:.3f} | {warm / base:.2f} | {first:.1f} | {load:.1f} |")


if __name__ == "__main__":
    main()
