"""Reading dense lines a second time, stretched: character error rate per setting.

    python bench/reread.py --weights densenet_jax/assets/densenet.npz \
        --labels ~/runs/val/lines306/labels.tsv ~/runs/val/latin-narrow/labels.tsv \
        [--settings 1.25,1.5@0.4 1.5,2@0.4]

`Recognizer(reread_scales, reread_density)` reads a line again, stretched horizontally by
each factor, when its first reading has more than `reread_density` characters per time
step, and keeps the reading of highest mean confidence. Per label set, the table gives the
CER of one reading and of each setting, and the share of lines read again. Choose the
setting on rendered lines (`densenet_jax.data.pipeline --out`), not on real ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SETTINGS = [
    ((), 0.0),
    ((1.25,), 0.4),
    ((1.5,), 0.4),
    ((1.25, 1.5), 0.4),
    ((1.25,), 0.3),
    ((1.25, 1.5), 0.3),
    ((1.25, 1.5), 0.0),
]


def parse_setting(text: str) -> tuple[tuple[float, ...], float]:
    """ "1.25,1.5@0.4" -> ((1.25, 1.5), 0.4); "none@0" -> ((), 0.0)."""
    from densenet_jax.recognizer import parse_reread_scales

    scales, sep, density = text.partition("@")
    try:
        return parse_reread_scales(scales), float(density) if sep else 0.4
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, required=True, help="recogniser weights (.npz)")
    p.add_argument(
        "--labels", type=Path, nargs="+", required=True, help="label files (path<TAB>text)"
    )
    p.add_argument(
        "--settings",
        type=parse_setting,
        nargs="+",
        default=SETTINGS,
        help="settings to compare, each SCALES@DENSITY (e.g. 1.25,1.5@0.4; 'none@0' reads "
        "once); default: the table of docs/models.md",
    )
    args = p.parse_args()

    from densenet_jax.data.labels import read_labels
    from densenet_jax.metrics import text_metrics
    from densenet_jax.preprocess import to_line_image
    from densenet_jax.recognizer import Recognizer
    from ocr_common.io import read_image

    recs = [
        Recognizer.from_file(args.weights, reread_scales=s, reread_density=d)
        for s, d in args.settings
    ]
    default = Recognizer(recs[0].model, recs[0].variables, recs[0].charset)  # its density rule
    names = ["once" if not s else f"{'/'.join(map(str, s))} if > {d:g}" for s, d in args.settings]
    print(
        f"\nCER by second-reading setting (stretch factors if characters per step > "
        f"density), {args.weights}\n"
    )
    print(
        "| set | lines | " + " | ".join(names) + f" | read again (> {default.reread_density:g}) |"
    )
    print("|---|---:|" + "---:|" * (len(names) + 1))
    for labels in args.labels:
        records = read_labels(labels, recs[0].charset, encode=False)
        images = [read_image(r.path) for r in records]
        targets = [r.text for r in records]
        readings = [rec.recognize(images) for rec in recs]
        cers = [text_metrics([d.text for d in r], targets)["cer"] for r in readings]
        widths = [to_line_image(im).shape[1] for im in images]
        again = sum(default.is_dense(d, w) for d, w in zip(readings[0], widths, strict=True))
        print(
            f"| {labels.parent.name} | {len(images)} | "
            + " | ".join(f"{c:.4f}" for c in cers)
            + f" | {again / len(images):.2f} |"
        )


if __name__ == "__main__":
    main()
