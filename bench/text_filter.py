"""Choose `infer.OCR(min_text_score=...)`: end-to-end scores on a labelled folder when lines
read as empty, or read with a mean character confidence under a threshold, are dropped.

    python -m ctpn_jax.data.render --out ~/runs/val/cal101 --count 40 --seed 101
    python bench/text_filter.py --data ~/runs/val/cal101 [--thresholds 0.3 0.5 0.7]

Run it on held-out rendered pages (or your own labelled images), never on the images the
result will be reported on. The folder holds `images/` and `gt/` in the format of
../shared/dev/ocr_eval.py (`ctpn_jax.data.render` writes it). The pipeline runs once with
the filter off; each row re-scores the same predictions with the filter applied
(`ocr_eval.py e2e`: detection P/R/H at IoU 0.5, normalised CER, exact lines).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_EVALUATOR = REPO.parent / "shared" / "dev" / "ocr_eval.py"


def load_evaluator(path: Path):
    spec = importlib.util.spec_from_file_location("ocr_eval", path)
    if spec is None or not path.is_file():
        raise SystemExit(f"error: no evaluator at {path} (give --evaluator)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The arguments of a sweep over a labelled folder: --data, the weights, --evaluator."""
    p.add_argument("--data", type=Path, required=True, help="folder with images/ and gt/")
    p.add_argument("--weights-det", type=Path)
    p.add_argument("--weights-rec", type=Path)
    p.add_argument("--evaluator", type=Path, default=DEFAULT_EVALUATOR)


def labelled_set(evaluator: Path, data: Path):
    """The evaluator module and the ground truth of `data/gt` (exits when there is none)."""
    ev = load_evaluator(evaluator)
    gt = ev.load_gt(str(data / "gt"))
    if not gt:
        raise SystemExit(f"error: no labels (*.json) in {data / 'gt'}")
    return ev, gt


def keep(records: list[dict], threshold: float | None) -> list[dict]:
    """The records `infer.make_records(..., min_text_score=threshold)` would have kept."""
    from infer import keeps_line

    return [r for r in records if keeps_line(r["text"], r["text_score"], threshold)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(p)
    p.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    )
    args = p.parse_args()

    from infer import OCR

    ev, gt = labelled_set(args.evaluator, args.data)
    images = sorted(args.data / "images" / g["image"] for g in gt.values())
    ocr = OCR(args.weights_det, args.weights_rec, min_text_score=None)
    preds = {}
    for i in range(0, len(images), 8):
        batch = images[i : i + 8]
        preds.update(zip((im.name for im in batch), ocr.read_many(batch), strict=True))

    print(f"{len(images)} images of {args.data}")
    print("| min_text_score | P | R | H | CER | exact lines |")
    print("|---|---:|---:|---:|---:|---:|")
    for t in [None, *args.thresholds]:
        r = ev.evaluate_e2e(gt, {k: keep(v, t) for k, v in preds.items()})
        e = r["e2e_norm"]
        label = "off" if t is None else ("empty only" if t <= 0 else f"{t:.2f}")
        print(
            f"| {label} | {r['det_precision']:.3f} | {r['det_recall']:.3f} | "
            f"{r['det_hmean']:.3f} | {e['cer']:.3f} | {e['exact_line_frac']:.3f} |"
        )


if __name__ == "__main__":
    main()
