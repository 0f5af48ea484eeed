"""Evaluate a recogniser on labelled line images.

    python -m densenet_jax.evaluate --weights W --labels ../shared/dev/lines.tsv

Prints character error rate, exact-line accuracy and lines/s (greedy or beam decoding), and
the error rate of each kind of character (hanzi, Latin letters, digits, other marks).
Labels: `path<TAB>text` lines, or the original `name.jpg k1 ... kn` with --image-dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from densenet_jax.recognizer import (
    LOOKALIKE_WEIGHT,
    REREAD_BELOW,
    REREAD_SCALES,
    TRIM_BELOW,
    Recognizer,
    parse_reread_scales,
    parse_trims,
)


def evaluate(
    recognizer: Recognizer,
    labels: str | Path,
    image_dir: str | None = None,
    decoder: str = "greedy",
    batch_size: int | None = None,
    show_progress: bool = False,
) -> dict:
    """Reads every labelled line and scores the recogniser's text against the label.

    Returns:
      {"cer", "exact", "lines", "lines_per_s", "by_class": `metrics.errors_by_class`,
       "predictions": [(path, target, prediction)]}
    """
    from densenet_jax.data.labels import read_labels
    from densenet_jax.metrics import errors_by_class, text_metrics
    from ocr_common.io import read_image

    # References may hold characters outside the model's charset: they count as errors.
    records = [
        (r.path, r.text) for r in read_labels(labels, recognizer.charset, image_dir, encode=False)
    ]
    images = [read_image(p) for p, _ in records]
    recognizer.recognize(images, decoder=decoder, batch_size=batch_size)  # compile every shape
    t0 = time.perf_counter()
    results = recognizer.recognize(
        images, decoder=decoder, batch_size=batch_size, show_progress=show_progress
    )
    dt = time.perf_counter() - t0
    preds = [r.text for r in results]
    targets = [t for _, t in records]
    m = text_metrics(preds, targets)
    return {
        **m,
        "lines_per_s": len(images) / dt,
        "by_class": errors_by_class(preds, targets),
        "predictions": [(str(p), t, r) for (p, t), r in zip(records, preds, strict=True)],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--weights", required=True, help="exported recogniser weights (.npz)")
    p.add_argument("--labels", required=True, help="label file (path<TAB>text or original)")
    p.add_argument("--image-dir", help="image folder for the original label format")
    p.add_argument("--decoder", choices=("greedy", "beam"), default="greedy")
    p.add_argument(
        "--lookalike-weight",
        type=float,
        default=LOOKALIKE_WEIGHT,
        help="context prior for o/O/0, l/I/1, c/C, ... in greedy decoding "
        "(densenet_jax.lookalikes; 1 = the plain best path)",
    )
    p.add_argument(
        "--reread-scales",
        default=",".join(map(str, REREAD_SCALES)),
        help="read dense lines again stretched by these factors and keep the more "
        "confident reading ('none': read every line once)",
    )
    p.add_argument(
        "--reread-below",
        type=float,
        default=REREAD_BELOW,
        help="read a dense line again only when its first reading's mean confidence is "
        "under this (1: every dense line)",
    )
    p.add_argument(
        "--trims",
        default="default",
        help="read a line again with these shares of its height cut off (SHARE for both "
        "edges or TOP:BOTTOM, comma-separated) and keep the most confident reading "
        "('default': the recogniser's views; 'none': read every line as it is)",
    )
    p.add_argument(
        "--trim-below",
        type=float,
        default=TRIM_BELOW,
        help="read trimmed views only of lines whose first reading's mean confidence is "
        "under this (1: every line)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="most lines per batch (default: 8 on a CPU, 32 on an accelerator)",
    )
    p.add_argument("--errors", type=int, default=10, help="print this many misread lines")
    p.add_argument("--json", type=Path, help="write all predictions and metrics here")
    args = p.parse_args(argv)
    if args.lookalike_weight < 1:
        p.error(f"--lookalike-weight must be >= 1, got {args.lookalike_weight}")
    try:
        reread_scales = parse_reread_scales(args.reread_scales)
    except ValueError as e:
        p.error(f"--reread-scales: {e}")
    try:
        trims = parse_trims(args.trims)
    except ValueError as e:
        p.error(f"--trims: {e}")
    from densenet_jax.data.labels import LabelFileError
    from densenet_jax.metrics import without_spaces
    from ocr_common.io import ImageError
    from ocr_common.weights import WeightsError

    try:
        rec = Recognizer.from_file(
            args.weights,
            lookalike_weight=args.lookalike_weight,
            reread_scales=reread_scales,
            reread_below=args.reread_below,
            trims=trims,
            trim_below=args.trim_below,
        )
        res = evaluate(
            rec, args.labels, args.image_dir, args.decoder, args.batch_size, show_progress=True
        )
    except (WeightsError, LabelFileError, ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wrong = [x for x in res["predictions"] if without_spaces(x[1]) != without_spaces(x[2])]
    for path, target, pred in wrong[: args.errors]:
        print(f"  {Path(path).name}: {target!r} -> {pred!r}")
    print(
        "CER by kind: "
        + "  ".join(
            f"{k} {v['cer']:.4f} ({v['chars']} chars)"
            for k, v in res["by_class"].items()
            if v["chars"]
        )
    )
    print(
        f"lines {int(res['lines'])}  CER {res['cer']:.4f}  exact {res['exact']:.4f}  "
        f"lines/s {res['lines_per_s']:.1f}"
    )
    if args.json:
        from ocr_common.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
