"""Compare `infer.OCR(crop_margin=...)` values: end-to-end scores on a labelled folder when
every detected line is cropped a number of line heights wider at both ends
(`ocr_common.geometry.widen_quad`).

    python -m ctpn_jax.data.render --out ~/runs/val/test232 --count 40 --seed 232
    python bench/crop_margin.py --data ~/runs/val/test232 [--margins 0 0.1 0.2 0.3]

Choose on held-out rendered pages (or your own labelled images); a run on the images a
result is reported on (../shared/dev) measures a choice, it does not make one. The folder
holds `images/` and `gt/` in the format of ../shared/dev/ocr_eval.py. The detector runs
once per image; each row crops its boxes with one margin and reads them again (the
records keep the detected boxes, so detection P/R/H change only through the line filter).
Columns: `ocr_eval.py e2e` normalised CER and exact lines, and the CER of the matched
lines alone (detection misses and false boxes left out), which isolates what the margin
does to reading.
"""

from __future__ import annotations

import argparse

from text_filter import add_data_args, labelled_set


def matched_cer(ev, gt: dict, preds: dict) -> float:
    """Normalised CER over the ground-truth lines that a prediction matched (IoU 0.5)."""
    edits = chars = 0
    for g in gt.values():
        p = preds.get(g["image"], [])
        pairs, _, _, _ = ev.match_image(g["lines"], p)
        for gi, pj, _ in pairs:
            truth = ev.norm_text(g["lines"][gi]["text"])
            edits += ev.edit_distance(truth, ev.norm_text(p[pj]["text"]))
            chars += len(truth)
    return edits / max(chars, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(p)
    p.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5])
    args = p.parse_args()

    from infer import OCR, make_records
    from ocr_common.io import as_rgb

    ev, gt = labelled_set(args.evaluator, args.data)
    ocr = OCR(args.weights_det, args.weights_rec)
    pages = []
    for g in gt.values():
        rgb = as_rgb(args.data / "images" / g["image"])
        pages.append((g["image"], rgb, ocr.detect(rgb)))

    print(f"{len(pages)} images of {args.data}")
    print("| crop margin | P | R | H | CER | exact lines | CER of matched lines |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for margin in args.margins:
        ocr.crop_margin = margin
        # The lines of every page in one call: shared width-bucketed batches, as infer.py reads.
        texts = iter(
            ocr.recognize([ln for _, rgb, det in pages for ln in ocr.crop_lines(rgb, det.quads)])
        )
        preds = {
            name: make_records(
                det.quads, det.scores, [next(texts) for _ in det.quads], ocr.min_text_score
            )
            for name, _, det in pages
        }
        r = ev.evaluate_e2e(gt, preds)
        e = r["e2e_norm"]
        print(
            f"| {margin:.2f} | {r['det_precision']:.3f} | {r['det_recall']:.3f} | "
            f"{r['det_hmean']:.3f} | {e['cer']:.3f} | {e['exact_line_frac']:.3f} | "
            f"{matched_cer(ev, gt, preds):.3f} |"
        )


if __name__ == "__main__":
    main()
