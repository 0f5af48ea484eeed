"""Which trimmed views of a line to read again (`Recognizer(trims=...)`): every candidate
view of every line of some label files is read once, then views are chosen greedily by the
mean over the `--choose-on` sets of each set's CER relative to reading every line once,
the most confident of a line's readings kept (`preprocess.trim_line`; a view `h:S` is the
line scaled horizontally by S instead). Then the chosen views under several bars on the
first reading's score (`trim_below`), with the share of lines read again.

    V=~/runs/val
    python bench/trim_views.py --every 4 \
        --choose-on lines305 mixed-natural latin-narrow lines-long lines306-pip -- \
        $V/lines305/labels.tsv $V/mixed-natural/labels.tsv $V/latin-narrow/labels.tsv \
        $V/lines-long/labels.tsv $V/lines306-pip/labels.tsv \
        ../shared/real/lines.tsv ../shared/dev/lines.tsv

A set is named by its label file's folder. Choose on held-out rendered sets only; the real
sets are for measuring. Vertical crops are left out (they are read as stacked lines).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from densenet_jax.data.labels import read_labels  # noqa: E402
from densenet_jax.metrics import text_metrics  # noqa: E402
from densenet_jax.preprocess import (  # noqa: E402
    is_vertical,
    stretch_line,
    to_line_image,
    trim_line,
)
from densenet_jax.recognizer import Recognizer  # noqa: E402
from densenet_jax.weights import shipped_weights  # noqa: E402
from ocr_common.io import read_image  # noqa: E402

DEFAULT_VIEWS = (
    "0.05:0.05,0.1:0.1,0.15:0.15,-0.05:-0.05,-0.1:-0.1,-0.2:-0.2,-0.3:-0.3,"
    "-0.1:0,0:-0.1,0.1:0,0:0.1,h:0.85,h:1.2"
)


def make_view(line: np.ndarray, view: str) -> np.ndarray:
    """`line (32, w) uint8` seen as `view`: "TOP:BOTTOM" trim shares or "h:SCALE"."""
    a, b = view.split(":")
    if a == "h":
        return stretch_line(line, float(b))
    return trim_line(line, float(a), float(b))


def pick(readings: dict, views: list[str], below: float) -> list[str]:
    """Each line's most confident reading among the first one and `views` (only for lines
    whose first reading scores under `below`)."""
    out = []
    for i, best in enumerate(readings["once"]):
        if best[1] < below:
            for v in views:
                if readings[v][i][1] > best[1]:
                    best = readings[v][i]
        out.append(best[0])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("labels", nargs="+", type=Path, help="path<TAB>text label files of crops")
    p.add_argument("--weights", type=Path, default=None, help="default: the shipped file")
    p.add_argument("--every", type=int, default=1, help="read every n-th crop of each set")
    p.add_argument(
        "--views",
        default=DEFAULT_VIEWS,
        help="comma-separated TOP:BOTTOM shares or h:SCALE (give as --views=...)",
    )
    p.add_argument("--choose-on", nargs="+", required=True, help="set names to choose on")
    p.add_argument("--steps", type=int, default=5, help="views to choose")
    p.add_argument("--bars", type=float, nargs="+", default=[1.0, 0.98, 0.95, 0.9])
    args = p.parse_args()
    args.views = args.views.split(",")
    rec = Recognizer.from_file(args.weights or shipped_weights(), trims=())
    sets = {}
    for labels in args.labels:
        rows = read_labels(labels, rec.charset, encode=False)[:: args.every]
        images = [read_image(r.path) for r in rows]
        keep = [i for i, im in enumerate(images) if not is_vertical(im)]
        lines = [to_line_image(images[i]) for i in keep]
        texts = [rows[i].text for i in keep]
        readings = {"once": [(r.text, r.score) for r in rec.recognize_lines(lines)]}
        for v in args.views:
            got = rec.recognize_lines([make_view(line, v) for line in lines])
            readings[v] = [(r.text, r.score) for r in got]
        sets[labels.parent.name] = (texts, readings)
        print(f"read {labels} ({len(lines)} lines)", file=sys.stderr, flush=True)
    missing = set(args.choose_on) - set(sets)
    if missing:
        p.error(f"--choose-on names no set read: {sorted(missing)}")

    def cers(views: list[str], below: float = 1.0) -> dict[str, float]:
        return {
            name: text_metrics(pick(readings, views, below), texts)["cer"]
            for name, (texts, readings) in sets.items()
        }

    once = cers([])

    def relative(c: dict[str, float]) -> float:
        return float(np.mean([c[n] / max(once[n], 1e-9) for n in args.choose_on]))

    names = list(sets)
    print("| views | chosen on (relative CER) | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    print("| once | 1.000 | " + " | ".join(f"{once[n]:.4f}" for n in names) + " |")
    chosen: list[str] = []
    for _ in range(min(args.steps, len(args.views))):
        best = min(
            (v for v in args.views if v not in chosen), key=lambda v: relative(cers(chosen + [v]))
        )
        chosen.append(best)
        c = cers(chosen)
        cells = " | ".join(f"{c[n]:.4f}" for n in names)
        print(f"| + {best} | {relative(c):.3f} | {cells} |")
    for k in (2, 3):
        for below in args.bars:
            c = cers(chosen[:k], below)
            again = {
                n: np.mean([s < below for _, s in readings["once"]])
                for n, (_, readings) in sets.items()
            }
            cells = " | ".join(f"{c[n]:.4f} ({again[n]:.2f})" for n in names)
            print(f"| first {k}, bar {below:g} | {relative(c):.3f} | {cells} |")


if __name__ == "__main__":
    main()
