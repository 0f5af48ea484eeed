"""Crop CER of recognisers on ../shared/real by the tags of the crops' images.

    python bench/cer_by_tag.py old-real.json new-real.json [--gt ../shared/real/gt]
    python bench/cer_by_tag.py old-real.json new-real.json --by height
    python bench/cer_by_tag.py old-real.json new-real.json --by case

Takes `python -m densenet_jax.evaluate --json` files of `../shared/real/lines.tsv` (crop
`lines/<stem>_<k>.jpg` belongs to image `<stem>`, whose `gt/<stem>.json` lists its tags:
script, source, kind) and prints one table: the CER (whitespace ignored, as `evaluate`)
of each file per tag, with the characters and the share of all errors of the first file,
so that a data change can be traced to the kinds of images it helped or hurt. `--by
height`: rows by bands of the crops' height in pixels instead (the recogniser enlarges a
crop under 32 px and shrinks a taller one); `--by case`: by the Latin letters of the label
(none, mixed case, all capitals: at least three letters and no small one).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from paired_cer import read_line_edits  # noqa: E402

HEIGHT_BANDS = (0, 16, 20, 24, 32, 48, 64, 96)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path, help="evaluate --json files")
    p.add_argument("--gt", type=Path, default=REPO.parent / "shared" / "real" / "gt")
    p.add_argument("--by", choices=("tag", "height", "case"), default="tag", help="rows")
    args = p.parse_args()
    if args.by == "height":
        import cv2

        @functools.cache
        def groups(crop: str, label: str) -> list[str]:
            image = cv2.imread(crop, cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise SystemExit(f"{crop}: not a readable image")
            low = max((b for b in HEIGHT_BANDS if b <= image.shape[0]), default=0)
            high = next((b for b in HEIGHT_BANDS if b > image.shape[0]), None)
            return ["all", f"{low:3d}-{high} px" if high else f"{low:3d}+ px"]
    elif args.by == "case":

        def groups(crop: str, label: str) -> list[str]:
            letters = [c for c in label if c.isascii() and c.isalpha()]
            if not letters:
                return ["all", "no Latin letter"]
            if len(letters) >= 3 and not any(c.islower() for c in letters):
                return ["all", "Latin in capitals"]
            return ["all", "Latin, mixed case"]
    else:
        tags = {
            f.stem: json.loads(f.read_text(encoding="utf-8"))["tags"] for f in args.gt.glob("*")
        }

        def groups(crop: str, label: str) -> list[str]:
            return ["all", *tags[Path(crop).stem.rsplit("_", 1)[0]]]

    tables = []
    for path in args.files:
        paths, edits, chars = read_line_edits(path)
        labels = [r[1] for r in json.loads(path.read_text(encoding="utf-8"))["predictions"]]
        per = collections.defaultdict(lambda: [0, 0])
        for crop, label, e, n in zip(paths, labels, edits, chars, strict=True):
            for tag in groups(crop, label):
                per[tag][0] += int(e)
                per[tag][1] += int(n)
        tables.append(per)
    first = tables[0]
    names = " | ".join(f.stem for f in args.files)
    print(f"| tag | chars | share of errors | {names} |")
    print("|---|---:|---:|" + "---:|" * len(args.files))
    by_name = args.by == "height"
    order = (lambda t: (t != "all", t)) if by_name else (lambda t: (t != "all", -first[t][0]))
    for tag in sorted(first, key=order):
        e, n = first[tag]
        cers = " | ".join(f"{t[tag][0] / max(1, t[tag][1]):.4f}" for t in tables)
        print(f"| {tag} | {n} | {e / max(1, first['all'][0]):.3f} | {cers} |")


if __name__ == "__main__":
    main()
