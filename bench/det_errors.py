"""Why ground-truth lines go unmatched end to end: merged, split, misfit or missed.

    python bench/det_errors.py --gt ../shared/real/gt preds.json [more-preds.json ...]

Prediction files are what `ocr_eval.py e2e --pred` reads (``{image: [{box, text, ...}]}``);
only the images they hold are counted. Boxes are compared as their bounding rectangles.
A ground-truth line (``###`` lines left out) is *matched* when a predicted box overlaps it
with IoU >= 0.5 (the scorer's threshold); otherwise it is

- *merged*: one predicted box covers it and at least one other ground-truth line (more than
  half of each), side by side (``H``: a wider gap than the labels split at) or stacked
  (``V``: two lines read as one tall box, whose reading is garbage);
- *split*: two or more predicted boxes each cover over a fifth of it;
- *misfit*: one predicted box covers part of it, no other line;
- *missed*: no predicted box covers a fifth of it.

Predicted boxes that match nothing are counted as *merges* (covering 2+ lines),
*fragments* (mostly inside one line), *on don't-care* or *spurious* (no line under them).
The point is which detector change to make: stacked merges and misses are the detector's
errors; side-by-side merges and splits are mostly where the labels' segmentation differs.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

Rect = tuple[float, float, float, float]


def rect(box) -> Rect:
    """An 8-number quad (or 4-point list) -> its bounding rectangle ``(x0, y0, x1, y1)``."""
    q = np.asarray(box, np.float64).reshape(-1, 2)
    return float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())


def area(a: Rect) -> float:
    return max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)


def inter(a: Rect, b: Rect) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def iou(a: Rect, b: Rect) -> float:
    i = inter(a, b)
    return i / max(area(a) + area(b) - i, 1e-9)


def stacked(lines: list[Rect]) -> bool:
    """Lines one above the other (centres further apart than half their mean height)."""
    ys = [(r[1] + r[3]) / 2 for r in lines]
    hs = [r[3] - r[1] for r in lines]
    return max(ys) - min(ys) >= 0.5 * float(np.mean(hs))


def classify(gt: list[Rect], care: list[bool], preds: list[Rect]) -> tuple[Counter, Counter]:
    """Counts of the ground-truth lines' and the predicted boxes' categories on one image."""
    lines = Counter()
    boxes = Counter()
    real = [g for g, c in zip(gt, care, strict=True) if c]
    dont = [g for g, c in zip(gt, care, strict=True) if not c]
    for i, g in enumerate(real):
        if any(iou(g, p) >= 0.5 for p in preds):
            lines["matched"] += 1
            continue
        covering = [p for p in preds if inter(g, p) > 0.2 * area(g)]
        if len(covering) >= 2:
            lines["split"] += 1
        elif len(covering) == 1:
            p = covering[0]
            others = [o for k, o in enumerate(real) if k != i and inter(o, p) > 0.5 * area(o)]
            if others:
                lines["merged V" if stacked([g, *others]) else "merged H"] += 1
            else:
                lines["misfit"] += 1
        else:
            lines["missed"] += 1
    for p in preds:
        if any(iou(g, p) >= 0.5 for g in real):
            boxes["matched"] += 1
        elif sum(inter(g, p) > 0.5 * area(g) for g in real) >= 2:
            boxes["merge"] += 1
        elif any(inter(g, p) > 0.5 * area(p) for g in real):
            boxes["fragment"] += 1
        elif any(inter(g, p) > 0.5 * area(p) for g in dont):
            boxes["on don't-care"] += 1
        elif any(inter(g, p) > 0 for g in real):
            boxes["partial overlap"] += 1
        else:
            boxes["spurious"] += 1
    return lines, boxes


def load_gt(gt_dir: Path, image: str) -> tuple[list[Rect], list[bool]]:
    path = gt_dir / f"{Path(image).stem}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no ground truth for {image}")
    lines = json.loads(path.read_text())["lines"]
    return [rect(t["box"]) for t in lines], [t["text"] != "###" for t in lines]


def print_table(what: str, keys: list[str], rows: list[tuple[str, int | None, Counter]]) -> None:
    """A markdown table: a row per prediction file, each category's count and share."""
    images = rows[0][1] is not None
    print(f"| predictions |{' images |' if images else ''} {what} | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * (len(keys) + 1 + images))
    for name, n, counts in rows:
        total = sum(counts.values())
        cells = " | ".join(f"{counts[k]} ({counts[k] / max(total, 1):.1%})" for k in keys)
        print(f"| {name} |{f' {n} |' if images else ''} {total} | {cells} |")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gt", type=Path, required=True, help="folder of <stem>.json labels")
    p.add_argument("preds", nargs="+", type=Path, help="e2e prediction JSON files")
    args = p.parse_args(argv)
    line_keys = ["matched", "merged H", "merged V", "split", "misfit", "missed"]
    box_keys = ["matched", "merge", "fragment", "partial overlap", "on don't-care", "spurious"]
    rows = []
    for path in args.preds:
        preds = json.loads(path.read_text())
        lines, boxes = Counter(), Counter()
        for image, found in sorted(preds.items()):
            gt, care = load_gt(args.gt, image)
            a, b = classify(gt, care, [rect(x["box"]) for x in found])
            lines += a
            boxes += b
        rows.append((path.name, len(preds), lines, boxes))
    print_table("gt lines", line_keys, [(name, n, lines) for name, n, lines, _ in rows])
    print()
    print_table("boxes", box_keys, [(name, None, boxes) for name, _, _, boxes in rows])


if __name__ == "__main__":
    main()
