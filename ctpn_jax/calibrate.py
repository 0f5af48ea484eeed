"""Choose a detector's test-time settings on a labelled validation folder, and store them.

    python -m ctpn_jax.data.render --out /tmp/val --count 48 --seed 101   # held-out pages
    python -m ctpn_jax.calibrate --weights ctpn_jax/assets/ctpn.npz --data /tmp/val \
        --out ctpn_jax/assets/ctpn.npz

For every test-time scale the network runs once per image; every combination of the
post-processing settings on the grid then reuses those outputs, so a grid of dozens costs
little more than one evaluation.  The combination with the best H-mean (IoU 0.5) is written
into the weights file's metadata (``test_scale``, ``postprocess``, ``calibration``), where
``TextDetector.from_weights`` and ``infer.py`` read it.  The arrays are copied unchanged.

Calibrate on pages the model did not train on and that are not your test set (e.g. rendered
pages of another seed, or a validation split of your own labelled data).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ctpn_jax.detect import TextDetector, coarse_pass_runs, default_buckets
from ctpn_jax.metrics import MatchResult, match_detections
from ctpn_jax.weights import postprocess_from_meta

#: The grid searched by default: the original's values and their neighbours.
DEFAULT_GRID: dict[str, tuple] = {
    # The shipped file's calibration chose 0.97 (session 26); 0.9 was the old grid's edge.
    "score_threshold": (0.7, 0.8, 0.9, 0.95, 0.97, 0.98),
    "max_gap": (30.0, 50.0),
    "max_gap_rel": (0.0, 1.0),
    "line_containment": (0.0, 0.7),
    # The original keeps lines of at least 2 proposals; 1 keeps a lone digit or letter (a
    # receipt's quantity column), which 2 drops.
    "min_proposals": (2,),
    # Lines of fewer proposals kept above this score (1 = never).
    "lone_min_score": (1.0,),
}


def parse_scales(text: str) -> list[tuple[int, int]]:
    """``"600:1000,900:1500"`` -> ``[(600, 1000), (900, 1500)]``."""
    out = []
    for part in text.split(","):
        short, _, long = part.partition(":")
        try:
            out.append((int(short), int(long)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad scale {part!r}: expected SHORT:LONG, e.g. 900:1500"
            ) from None
    return out


def grid_settings(grid: dict[str, Sequence]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, as dicts of ``PostprocessConfig`` fields."""
    names = list(grid)
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(grid[n] for n in names))
    ]


def calibrate(
    weights: str | Path,
    samples: Sequence,
    scales: Sequence[tuple[int, int]],
    grid: dict[str, Sequence],
    iou: float = 0.5,
    progress: bool = True,
    coarse_scales: Sequence[float] = (0.0,),
    coarse_heights: Sequence[float] = (120.0,),
) -> list[dict[str, Any]]:
    """Score every (scale, coarse pass, grid setting) on ``samples``
    (``ctpn_jax.data.labels.Sample``).

    ``coarse_scales`` are the coarse passes tried, relative to each main scale (0 = none; see
    ``ctpn_jax.detect``), each with every height of ``coarse_heights``; a page's coarse lines
    count only where inference would run the pass (``TextDetector.wants_coarse``: enough tall
    confident proposals in the main pass), so that a stored setting reads as calibrated.

    Returns:
        one dict per combination, best H-mean first: ``short_side``, ``long_side``,
        ``coarse_scale``, ``coarse_min_height``, the grid fields, ``precision``, ``recall``,
        ``hmean``.
    """
    from tqdm import tqdm

    from ctpn_jax.data.labels import lines_to_arrays, read_labels
    from ocr_common.io import read_image

    images = [read_image(s.image) for s in samples]
    gts = [lines_to_arrays(read_labels(s.label)) for s in samples]
    settings = grid_settings(grid)
    results = []
    for short, long in scales:
        det = TextDetector.from_weights(
            weights,
            short_side=short,
            long_side=long,
            bucket_sizes=default_buckets(short, long),
            coarse_scale=0.0,
        )
        passes = [(0.0, 0.0)] + [(c, h) for c in coarse_scales if c for h in coarse_heights]
        coarse_dets = {}
        for c in sorted({c for c, _ in passes if c}):
            if not 0.0 < c < 1.0:
                raise ValueError(f"coarse scales must be in (0, 1) (or 0 = none), got {c}")
            cs, cl = round(short * c), round(long * c)
            coarse_dets[c] = TextDetector(
                det.model, det.variables, det.post, cs, cl, default_buckets(cs, cl)
            )
        totals = {(p, i): MatchResult() for p in passes for i in range(len(settings))}
        for image, (gt_quads, gt_ignore) in tqdm(
            list(zip(images, gts, strict=True)),
            desc=f"scale {short}/{long}",
            disable=not progress,
            leave=False,
        ):
            outputs = det.network_outputs(image)
            coarse_out = {c: d.network_outputs(image) for c, d in coarse_dets.items()}
            for i, s in enumerate(settings):
                post = dataclasses.replace(det.post, **s)
                fine = det.lines_from_outputs(*outputs, post)
                coarse = {
                    c: d.lines_from_outputs(*coarse_out[c], post) for c, d in coarse_dets.items()
                }
                for c, h in passes:
                    # The coarse lines count only where inference runs the pass.
                    runs = c and coarse_pass_runs(
                        *outputs[:2], h, post.score_threshold, det.coarse_min_proposals
                    )
                    quads = (
                        det.merge_coarse(*fine, *coarse[c], outputs[2], min_height=h)[0]
                        if runs
                        else fine[0]
                    )
                    totals[(c, h), i] = totals[(c, h), i] + match_detections(
                        gt_quads, gt_ignore, quads, iou
                    )
        for (c, h), i in totals:
            t = totals[(c, h), i]
            results.append(
                {
                    "short_side": short,
                    "long_side": long,
                    "coarse_scale": c,
                    "coarse_min_height": h,
                    **settings[i],
                    "precision": t.precision,
                    "recall": t.recall,
                    "hmean": t.hmean,
                }
            )
    return sorted(results, key=lambda r: -r["hmean"])


def write_calibrated(
    weights: str | Path, out: str | Path, best: dict[str, Any], data: str, num_images: int
) -> Path:
    """Copy ``weights`` to ``out`` with ``best``'s scale and post-processing in its metadata."""
    from ocr_common.weights import load_weights, save_weights

    variables, meta = load_weights(weights, expect_model="ctpn", dtype=np.float16)
    post = postprocess_from_meta(meta)
    fields = {f.name for f in dataclasses.fields(post)}
    post = dataclasses.replace(post, **{k: v for k, v in best.items() if k in fields})
    meta["postprocess"] = dataclasses.asdict(post)
    meta["test_scale"] = {"short_side": best["short_side"], "long_side": best["long_side"]}
    if best.get("coarse_scale"):
        meta["test_scale"].update(
            coarse_scale=float(best["coarse_scale"]),
            coarse_min_height=float(best["coarse_min_height"]),
        )
    meta["calibration"] = {
        "data": data,
        "images": num_images,
        **{k: round(best[k], 4) for k in ("precision", "recall", "hmean")},
    }
    meta.pop("format_version", None)
    return save_weights(out, variables, meta)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Pick a detector's test-time scale and post-processing thresholds on a "
        "labelled validation folder (best H-mean) and write them into a weights file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--weights", required=True, help="exported detector weights (.npz)")
    ap.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="labelled folders (as ctpn_jax.evaluate reads), pooled",
    )
    ap.add_argument(
        "--scales",
        type=parse_scales,
        default=parse_scales("600:1000,900:1500"),
        help="test-time resizes to try, SHORT:LONG[,SHORT:LONG...]",
    )
    ap.add_argument(
        "--scores",
        default=",".join(map(str, DEFAULT_GRID["score_threshold"])),
        help="proposal score thresholds to try",
    )
    ap.add_argument(
        "--gaps",
        default=",".join(map(str, DEFAULT_GRID["max_gap"])),
        help="largest gaps (px) between neighbouring proposals to try",
    )
    ap.add_argument(
        "--gap-rels",
        default=",".join(map(str, DEFAULT_GRID["max_gap_rel"])),
        help="largest gaps relative to the text height to try (0 = off)",
    )
    ap.add_argument(
        "--containments",
        default=",".join(map(str, DEFAULT_GRID["line_containment"])),
        help="line containment thresholds to try (0 = off)",
    )
    ap.add_argument(
        "--min-proposals",
        default=",".join(map(str, DEFAULT_GRID["min_proposals"])),
        help="least proposals a line needs to try (the original: 2)",
    )
    ap.add_argument(
        "--lone-scores",
        default=",".join(map(str, DEFAULT_GRID["lone_min_score"])),
        help="scores above which a line of fewer than --min-proposals proposals is kept, "
        "to try (1 = never)",
    )
    ap.add_argument(
        "--coarse-scales",
        default="0",
        help="resizes of a second pass for large text, relative to the main one, "
        "to try (0 = none), e.g. 0,0.5",
    )
    ap.add_argument(
        "--coarse-heights",
        default="120",
        help="heights (px at the main scale) from which the second pass's lines "
        "replace the main pass's, to try",
    )
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument("--limit", type=int, help="use only the first N images")
    ap.add_argument("--top", type=int, default=10, help="rows of the table to print")
    ap.add_argument(
        "--out", type=Path, help="write the weights with the best settings here (may be --weights)"
    )
    args = ap.parse_args(argv)

    from ctpn_jax.data.labels import LabelError, find_samples
    from ocr_common.io import ImageError
    from ocr_common.weights import WeightsError

    try:
        grid = {
            "score_threshold": tuple(float(v) for v in args.scores.split(",")),
            "max_gap": tuple(float(v) for v in args.gaps.split(",")),
            "max_gap_rel": tuple(float(v) for v in args.gap_rels.split(",")),
            "line_containment": tuple(float(v) for v in args.containments.split(",")),
            "min_proposals": tuple(int(v) for v in args.min_proposals.split(",")),
            "lone_min_score": tuple(float(v) for v in args.lone_scores.split(",")),
        }
        coarse_scales = [float(v) for v in args.coarse_scales.split(",")]
        coarse_heights = [float(v) for v in args.coarse_heights.split(",")]
    except ValueError as e:
        ap.error(f"grid values must be comma-separated numbers ({e})")
    try:
        samples = [s for folder in args.data for s in find_samples(folder)][: args.limit]
        results = calibrate(
            args.weights,
            samples,
            args.scales,
            grid,
            args.iou,
            coarse_scales=coarse_scales,
            coarse_heights=coarse_heights,
        )
    except (FileNotFoundError, LabelError, ImageError, WeightsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(samples)} images, {len(results)} settings, IoU >= {args.iou}; best first:")
    print(
        "| short/long | coarse pass | score | gap | relative gap | containment "
        "| min proposals | lone score | P | R | H |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results[: args.top]:
        coarse = (
            f"x{r['coarse_scale']:g} from {r['coarse_min_height']:g} px"
            if r["coarse_scale"]
            else "none"
        )
        print(
            f"| {r['short_side']}/{r['long_side']} | {coarse} | {r['score_threshold']} "
            f"| {r['max_gap']} "
            f"| {r['max_gap_rel']} | {r['line_containment']} | {r['min_proposals']} "
            f"| {r['lone_min_score']} | {r['precision']:.3f} "
            f"| {r['recall']:.3f} "
            f"| {r['hmean']:.3f} |"
        )
    if args.out:
        data = ",".join(map(str, args.data))
        path = write_calibrated(args.weights, args.out, results[0], data, len(samples))
        print(f"wrote {path} with the best settings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
