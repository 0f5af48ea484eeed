"""Detection precision / recall / H-mean on a folder of images with labels.

``python -m ctpn_jax.evaluate --weights W --data FOLDER [--mode H|O] [--preds out.json]``

Protocol (ICDAR 2015 style, and the same rules as ``shared/dev/ocr_eval.py``): predictions
are matched one-to-one to cared-for ground-truth lines, highest quadrilateral IoU first,
when IoU >= 0.5; a prediction left unmatched that has IoU >= 0.5 with a don't-care ("###")
line, or has at least half of its own area inside one, is ignored (neither true nor false
positive).  ``P = TP / (TP + FP)``, ``R = TP / #cared-for lines``, ``H = 2PR / (P + R)``.
Label files may be in any format of ``ctpn_jax.data.labels``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ctpn_jax.metrics import MatchResult, match_detections


def evaluate_folder(
    detector,
    samples: Sequence,
    iou: float = 0.5,
    per_image: bool = False,
    out=sys.stdout,
    fmt: str | None = None,
) -> dict:
    """Run ``detector`` (a ``TextDetector``) over ``samples`` (``Sample`` list) and score it.

    ``fmt`` forces a label format (``ctpn_jax.data.labels.FORMATS``); None guesses per file.

    Returns:
        dict with ``precision``, ``recall``, ``hmean``, counts, ``seconds_per_image``
        (median over calls that did not compile), ``compile_seconds``, ``per_image``
        (``{image name: {"gt", "tp", "fp", "ignored"}}``, the counts a paired comparison of
        two detectors resamples: ``bench/paired_hmean.py``) and ``predictions``
        (``{image name: [{"box": [8 numbers], "score": s}]}``).
    """
    from ctpn_jax.data.labels import lines_to_arrays, read_labels
    from ocr_common.io import read_image

    total = MatchResult()
    times, compile_times, preds, counts = [], [], {}, {}
    for s in samples:
        gt_quads, gt_ignore = lines_to_arrays(read_labels(s.label, fmt))
        image = read_image(s.image)
        det = detector(image)
        (compile_times if det.compiled else times).append(det.seconds)
        r = match_detections(gt_quads, gt_ignore, det.quads, iou)
        total = total + r
        counts[s.image.name] = {"gt": r.num_gt, "tp": r.tp, "fp": r.fp, "ignored": r.ignored}
        preds[s.image.name] = [
            {
                "box": [round(float(v), 1) for v in q.reshape(-1)],
                "text": "",
                "score": round(float(sc), 4),
            }
            for q, sc in zip(det.quads, det.scores, strict=True)
        ]
        if per_image:
            print(
                f"{s.image.name:32s} {image.shape[1]:5d}x{image.shape[0]:<5d} "
                f"gt {r.num_gt:3d} det {len(det.quads):3d} tp {r.tp:3d} fp {r.fp:3d} "
                f"P {r.precision:.3f} R {r.recall:.3f} H {r.hmean:.3f} "
                f"{det.seconds * 1000:8.1f} ms{' (compile)' if det.compiled else ''}",
                file=out,
            )
    all_times = times or compile_times
    return {
        "images": len(samples),
        "gt_lines": total.num_gt,
        "true_positives": total.tp,
        "false_positives": total.fp,
        "ignored": total.ignored,
        "precision": total.precision,
        "recall": total.recall,
        "hmean": total.hmean,
        "iou": iou,
        "seconds_per_image": float(np.median(all_times)) if all_times else 0.0,
        "mean_seconds_per_image": float(np.mean(all_times)) if all_times else 0.0,
        "timed_images": len(times),
        "compile_seconds": float(np.sum(compile_times)),
        "per_image": counts,
        "predictions": preds,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Detection precision/recall/H-mean of CTPN weights on a labelled folder "
        "(images/ + gt/, or images with gt_<name>.txt / <name>.json beside them)."
    )
    ap.add_argument("--weights", required=True, help="exported detector weights (.npz)")
    ap.add_argument("--data", required=True, help="folder of images and label files")
    ap.add_argument("--mode", choices=("H", "O"), default="H", help="text-line mode")
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument(
        "--format",
        choices=("icdar2015", "icdar2013", "json"),
        help="label format (guessed per file when omitted)",
    )
    ap.add_argument(
        "--score",
        type=float,
        help="proposal score threshold (default: the weights file's, else the original's 0.7)",
    )
    ap.add_argument(
        "--line-score", type=float, help="line score threshold (default: the file's, else 0.6)"
    )
    ap.add_argument(
        "--line-containment",
        type=float,
        help="also drop lines lying inside a better line for more than this "
        "fraction of their area (0 = off, as the original; default: the file's)",
    )
    ap.add_argument("--no-side-refinement", action="store_true")
    ap.add_argument(
        "--short-side",
        type=int,
        help="test-time resize (default: the file's, else the original's 900)",
    )
    ap.add_argument("--long-side", type=int, help="(default: the file's, else 1500)")
    ap.add_argument(
        "--coarse-scale",
        type=float,
        help="resize of a second pass for large text, "
        "relative to the main one (0 = none; default: the file's, else none)",
    )
    ap.add_argument(
        "--coarse-min-height",
        type=float,
        help="height (px at the main scale) "
        "from which the second pass's lines replace the main pass's (default: "
        "the file's, else 120)",
    )
    ap.add_argument("--limit", type=int, help="evaluate only the first N images")
    ap.add_argument("--per-image", action="store_true", help="print a line per image")
    ap.add_argument("--preds", type=Path, help="write predictions as JSON (ocr_eval format)")
    ap.add_argument("--json", type=Path, help="write the metrics as JSON")
    args = ap.parse_args(argv)

    from ctpn_jax.data.labels import LabelError, find_samples
    from ctpn_jax.detect import TextDetector
    from ocr_common.io import ImageError, atomic_write_text
    from ocr_common.weights import WeightsError

    post = {"mode": args.mode}  # the rest: the weights file's settings unless given here
    if args.no_side_refinement:
        post["side_refinement"] = False
    for name, value in (
        ("score_threshold", args.score),
        ("line_min_score", args.line_score),
        ("line_containment", args.line_containment),
    ):
        if value is not None:
            post[name] = value
    scale = {
        k: v
        for k, v in (
            ("short_side", args.short_side),
            ("long_side", args.long_side),
            ("coarse_scale", args.coarse_scale),
            ("coarse_min_height", args.coarse_min_height),
        )
        if v is not None
    }
    try:
        samples = find_samples(args.data)
        if args.limit:
            samples = samples[: args.limit]
        detector = TextDetector.from_weights(args.weights, post=post, **scale)
        res = evaluate_folder(detector, samples, args.iou, args.per_image, fmt=args.format)
    except (FileNotFoundError, LabelError, ImageError, WeightsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"images {res['images']}  gt lines {res['gt_lines']}  "
        f"tp {res['true_positives']}  fp {res['false_positives']}  "
        f"ignored {res['ignored']}  (IoU >= {args.iou}, mode {args.mode})"
    )
    print(f"precision {res['precision']:.4f}  recall {res['recall']:.4f}  hmean {res['hmean']:.4f}")
    print(
        f"time per image: median {res['seconds_per_image'] * 1000:.1f} ms, mean "
        f"{res['mean_seconds_per_image'] * 1000:.1f} ms over {res['timed_images']} images "
        f"(+ {res['compile_seconds']:.1f} s in calls that compiled a new shape)"
    )
    preds = res.pop("predictions")
    if args.preds:
        atomic_write_text(args.preds, json.dumps(preds, ensure_ascii=False))
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
