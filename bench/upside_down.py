"""Does the upside-down check need every line of a poor page? Chooses `infer.UPSIDE_DOWN_LINES`.

    python bench/upside_down.py ../shared/dev ../shared/real --every 1 8

`OCR.read_upside_down` reads a page again turned half a turn when its lines read poorly
(mean confidence under `infer.UPSIDE_DOWN_BELOW`). On real images that is most pages, and
reading every line turned costs a seventh of an image's time (bench/RESULTS.md), while
almost none turn. For every image of each folder, upright and turned a half turn (the
turned copy is what a page photographed upside down looks like), the shipped models detect
and read the lines as `infer.OCR` does; then every poor page's lines are read turned, one
reading each, and the table compares the decision made on all of them with the decision
made on the `k` widest lines only (their upright readings against their turned ones, the
same rule): how many decisions agree, how many upside-down copies are still turned, and
the share of the turned pixels (line widths) that the sample reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SAMPLES = (0, 2, 4, 6, 8, 12)  # 0: every line (the check before session 33)


def page_rows(folder: Path, every: int) -> list[dict]:
    """Per image and orientation: each line's width and its upright and turned readings'
    lengths and confidences (turned only for a poor page)."""
    from tqdm import tqdm

    import infer
    from ocr_common.io import as_rgb

    ocr = infer.OCR()
    images = sorted(
        f for f in (folder / "images").iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    rows = []
    for path in tqdm(images[::every], desc=folder.name, unit="image"):
        rgb = as_rgb(str(path))
        for orientation, image in (
            ("upright", rgb),
            ("turned", np.ascontiguousarray(rgb[::-1, ::-1])),
        ):
            lines = ocr.crop_lines(image, ocr.detect(image).quads)
            if not lines:
                continue
            upright = ocr.recognize_lines(lines)
            row = {
                "image": path.name,
                "orientation": orientation,
                "widths": [ln.shape[1] for ln in lines],
                "upright": upright,
                "poor": infer.page_confidence(upright) < infer.UPSIDE_DOWN_BELOW,
            }
            if row["poor"]:
                row["turned"] = ocr.recognize_lines(
                    [np.ascontiguousarray(ln[::-1, ::-1]) for ln in lines], reread=False
                )
            rows.append(row)
    return rows


def table(name: str, rows: list[dict]) -> None:
    import infer

    poor = [r for r in rows if r["poor"]]
    print(
        f"\n{name}: {len(rows)} pages ({sum(r['orientation'] == 'turned' for r in rows)} "
        f"turned copies), {len(poor)} read poorly\n"
    )
    print(
        "| lines read turned | decisions = every line | upright pages turned | "
        "turned copies turned | share of turned pixels read |"
    )
    print("|---|---:|---:|---:|---:|")
    full = {id(r): infer.reads_turned(r["upright"], r["turned"]) for r in poor}
    for k in SAMPLES:
        agree = upright_flips = turned_flips = 0
        read = total = 0
        for r in poor:
            idx = infer.widest(r["widths"], k)
            flip = infer.reads_turned([r["upright"][i] for i in idx], [r["turned"][i] for i in idx])
            agree += flip == full[id(r)]
            upright_flips += flip and r["orientation"] == "upright"
            turned_flips += flip and r["orientation"] == "turned"
            read += sum(r["widths"][i] for i in idx)
            total += sum(r["widths"])
        label = "every line" if k == 0 else f"{k} widest"
        turned_poor = sum(r["orientation"] == "turned" for r in poor)
        print(
            f"| {label} | {agree} / {len(poor)} | {upright_flips} | {turned_flips} / "
            f"{turned_poor} | {read / max(1, total):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders with images/ (and gt/)")
    parser.add_argument(
        "--every", type=int, nargs="+", default=[1], help="every n-th image, per folder"
    )
    args = parser.parse_args()
    every = args.every * len(args.folders) if len(args.every) == 1 else args.every
    for folder, n in zip(args.folders, every, strict=True):
        table(f"{folder.name} (every {n})", page_rows(folder, n))


if __name__ == "__main__":
    main()
