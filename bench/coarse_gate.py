"""When does the detector's coarse pass change anything? Chooses `coarse_min_proposals`.

    python -m ctpn_jax.data.render --out ~/runs/pages/gate114 --count 80 --seed 114
    python bench/coarse_gate.py ~/runs/pages/gate114            # rendered pages: choose here
    python bench/coarse_gate.py ../shared/dev ../shared/real --every 1 8   # then only measure

For every image of each folder (`images/` and `gt/`, the render and `../shared` layout) the
shipped detector runs its main and its coarse pass, and the table says, for each threshold
on the main pass's tall confident proposals (`ctpn_jax.detect.tall_proposals`), how many
images would skip the coarse pass, how many of the skipped ones the coarse pass would have
changed, and the detection TP / FP (IoU 0.5, `ctpn_jax.metrics`) of the lines with the
gate against always running it. A threshold that skips no image whose lines the coarse
pass changes gives the same lines, without the pass, on the images it skips.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

THRESHOLDS = (0, 1, 10, 20, 40, 60, 100)


def image_rows(folder: Path, every: int) -> list[dict]:
    from tqdm import tqdm

    from ctpn_jax.detect import TextDetector, tall_proposals
    from ctpn_jax.metrics import match_detections
    from ctpn_jax.weights import shipped_weights
    from ocr_common.io import as_rgb

    det = TextDetector.from_weights(shipped_weights(), post={"mode": "H"})
    images = sorted(
        f for f in (folder / "images").iterdir() if f.suffix.lower() in (".jpg", ".png")
    )
    rows = []
    for path in tqdm(images[::every], desc=folder.name, unit="image"):
        gt = json.loads((folder / "gt" / f"{path.stem}.json").read_text())["lines"]
        gt_quads = np.asarray([g["box"] for g in gt], np.float32).reshape(-1, 4, 2)
        ignore = np.asarray([g["text"] == "###" for g in gt], bool)
        image = as_rgb(str(path))
        fine = det.network_outputs(image)
        quads, scores = det.lines_from_outputs(*fine)
        coarse = det.lines_from_outputs(*det.network_outputs(image, coarse=True))
        merged, _ = det.merge_coarse(quads, scores, *coarse, fine[2])
        a, b = (match_detections(gt_quads, ignore, q) for q in (quads, merged))
        same = merged.shape == quads.shape and np.array_equal(
            np.sort(merged.reshape(-1)), np.sort(quads.reshape(-1))
        )
        tall = tall_proposals(fine[0], fine[1], det.coarse_min_height, det.post.score_threshold)
        rows.append(
            {"image": path.name, "tall": tall, "changed": not same}
            | {"tp": (a.tp, b.tp), "fp": (a.fp, b.fp)}
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--every", type=int, nargs="+", default=[1], help="per folder")
    args = p.parse_args()
    every = args.every + [args.every[-1]] * (len(args.folders) - len(args.every))
    print(
        "| images | threshold | coarse passes run | skipped that it would change "
        "| TP gate / always | FP gate / always |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for folder, n in zip(args.folders, every, strict=True):
        rows = image_rows(folder, n)
        for t in THRESHOLDS:
            run = [r["tall"] >= t for r in rows]
            lost = sum(r["changed"] and not k for r, k in zip(rows, run, strict=True))
            tp = sum(r["tp"][k] for r, k in zip(rows, run, strict=True))
            fp = sum(r["fp"][k] for r, k in zip(rows, run, strict=True))
            tp1, fp1 = sum(r["tp"][1] for r in rows), sum(r["fp"][1] for r in rows)
            print(
                f"| {folder.name} ({len(rows)}) | {t} | {sum(run)} | {lost} "
                f"| {tp} / {tp1} | {fp} / {fp1} |"
            )


if __name__ == "__main__":
    main()
