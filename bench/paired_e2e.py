"""Is one end-to-end reading better than another on the same images, beyond sampling noise?

    python bench/paired_e2e.py --gt GT_DIR old-preds.json new-preds.json [OLD NEW ...]

Prediction files are what `ocr_eval.py e2e --pred` reads (``{image: [{box, text, score}]}``).
Each image is scored alone by the shared scorer (`../shared/dev/ocr_eval.py`, or
`--scorer`), giving its counts: edits and ground-truth characters (normalised text), true and
false positive boxes and ground-truth lines. Prints, per pair and pooled, e2e CER and the
detection H-mean of both, their differences and 95% intervals from a paired bootstrap over
images (`ocr_common.stats`). The end-to-end twin of `bench/paired_cer.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_SCORER = REPO.parent / "shared" / "dev" / "ocr_eval.py"


def load_scorer(path: Path):
    spec = importlib.util.spec_from_file_location("ocr_eval", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_counts(scorer, gt: dict, preds: dict) -> np.ndarray:
    """``(N, 5)`` int64 per image (sorted by name): edits, ground-truth characters, true
    positives, false positives, ground-truth lines."""
    rows = []
    for name in sorted(gt):
        r = scorer.evaluate_e2e({name: gt[name]}, preds)
        t = r["e2e_norm"]
        rows.append([t["edits"], t["gt_chars"], r["tp"], r["fp"], r["n_gt"]])
    return np.asarray(rows, np.int64).reshape(-1, 5)


def main() -> None:
    from ocr_common.stats import detection_hmean, error_rate, paired_bootstrap_interval

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("preds", type=Path, nargs="+", help="OLD NEW [OLD NEW ...] prediction files")
    p.add_argument("--gt", type=Path, required=True, help="ground-truth folder of the images")
    p.add_argument("--scorer", type=Path, default=DEFAULT_SCORER, help="ocr_eval.py to score with")
    p.add_argument("--samples", type=int, default=5000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if len(args.preds) % 2:
        p.error("give the prediction files in pairs: OLD NEW [OLD NEW ...]")
    if not args.scorer.is_file():
        p.error(f"scorer {args.scorer} not found (--scorer)")
    scorer = load_scorer(args.scorer)
    gt = scorer.load_gt(str(args.gt))
    if not gt:
        p.error(f"{args.gt}: no ground truth")
    rng = np.random.default_rng(args.seed)
    pairs = []
    for old, new in zip(args.preds[::2], args.preds[1::2], strict=True):
        try:
            a = image_counts(scorer, gt, json.loads(old.read_text(encoding="utf-8")))
            b = image_counts(scorer, gt, json.loads(new.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            p.error(str(e))
        pairs.append((f"{old.stem} -> {new.stem}", a, b))
    rows = [(name, [(a, b)]) for name, a, b in pairs]
    if len(pairs) > 1:
        rows.append(("pooled", [(a, b) for _, a, b in pairs]))
    print(f"\n{len(gt)} images of {args.gt}")
    print(
        "| pair | old CER | new CER | new - old | 95% interval "
        "| old H | new H | new - old H | 95% interval |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---|")
    for name, groups in rows:
        sa = sum(a.sum(0) for a, _ in groups)
        sb = sum(b.sum(0) for _, b in groups)
        cer = [(a[:, :2], b[:, :2]) for a, b in groups]
        det = [(a[:, 2:], b[:, 2:]) for a, b in groups]
        clo, chi = paired_bootstrap_interval(cer, error_rate, rng, args.samples)
        hlo, hhi = paired_bootstrap_interval(det, detection_hmean, rng, args.samples)
        ca, cb = float(error_rate(sa[:2])), float(error_rate(sb[:2]))
        ha, hb = float(detection_hmean(sa[2:])), float(detection_hmean(sb[2:]))
        print(
            f"| {name} | {ca:.4f} | {cb:.4f} | {cb - ca:+.4f} | {clo:+.4f} .. {chi:+.4f} "
            f"| {ha:.4f} | {hb:.4f} | {hb - ha:+.4f} | {hlo:+.4f} .. {hhi:+.4f} |"
        )


if __name__ == "__main__":
    main()
