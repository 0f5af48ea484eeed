"""How much the rows at a crop's top and bottom edges cost a recogniser: crop CER of line
crops read as they are and with a share of their height cut off at the top and at the
bottom (vertical crops are read as they are).

    python bench/crop_trim.py --weights W ../shared/real/lines.tsv \
        ~/runs/val/lines305/labels.tsv --every 4 [--trims 0 0.05 0.1]

Rendered lines are cropped as the recogniser was trained, so trimming them only loses
ink; where trimming a set's crops makes them read better, its crops hold what the
training crops do not (more margin, strips of the neighbouring lines, frame edges). This
measures a difference between data sets, it does not choose a setting: `infer` and
`densenet_jax.evaluate` always read a crop as it is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from densenet_jax.data.labels import read_labels
from densenet_jax.metrics import text_metrics
from densenet_jax.preprocess import is_vertical
from densenet_jax.recognizer import Recognizer
from densenet_jax.weights import shipped_weights
from ocr_common.io import read_image


def trim(image: np.ndarray, share: float) -> np.ndarray:
    """`image (h, w, ...)` without `share` of its height at the top and at the bottom (as
    it is when vertical, or when fewer than 8 rows would be left)."""
    h = image.shape[0]
    k = int(round(h * share))
    if k == 0 or is_vertical(image) or h - 2 * k < 8:
        return image
    return np.ascontiguousarray(image[k : h - k])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("labels", nargs="+", type=Path, help="path<TAB>text label files of crops")
    p.add_argument("--weights", type=Path, default=None, help="default: the shipped file")
    p.add_argument("--every", type=int, default=1, help="read every n-th crop of each set")
    p.add_argument("--trims", type=float, nargs="+", default=[0.0, 0.05, 0.1])
    args = p.parse_args()
    rec = Recognizer.from_file(args.weights or shipped_weights())
    print("| crops | lines | " + " | ".join(f"trim {t:g}" for t in args.trims) + " |")
    print("|---|---:|" + "---:|" * len(args.trims))
    for labels in args.labels:
        rows = read_labels(labels, rec.charset, encode=False)[:: args.every]
        images = [read_image(r.path) for r in rows]
        texts = [r.text for r in rows]
        cers = []
        for share in args.trims:
            readings = rec.recognize([trim(im, share) for im in images])
            cers.append(text_metrics([r.text for r in readings], texts)["cer"])
        cells = " | ".join(f"{c:.4f}" for c in cers)
        print(f"| {labels} | {len(rows)} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
