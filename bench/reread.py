"""Reading dense lines a second time, stretched: character error rate per setting.

    python bench/reread.py --weights densenet_jax/assets/densenet.npz \
        --labels ~/runs/val/lines306/labels.tsv ~/runs/val/latin-narrow/labels.tsv \
        [--settings 1.25,1.5@0.4 1.5,2@0.4]

`Recognizer(reread_scales, reread_density, reread_below)` reads a line again, stretched
horizontally by each factor, when its first reading has more than `reread_density`
characters per time step and a mean confidence under `reread_below`, and keeps the reading
of highest mean confidence. A setting is written SCALES@DENSITY[<BELOW] (`1.25,1.5@0.4<0.95`).
Per label set, the table gives the CER of each setting and, in brackets, the share of the
lines it read again. Choose the setting on rendered lines (`densenet_jax.data.pipeline
--out`), not on real ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SETTINGS = [
    ((), 0.0, 1.0),
    ((1.25,), 0.4, 1.0),
    ((1.5,), 0.4, 1.0),
    ((1.25, 1.5), 0.4, 1.0),
    ((1.25,), 0.3, 1.0),
    ((1.25, 1.5), 0.3, 1.0),
    ((1.25, 1.5), 0.0, 1.0),
]


def parse_setting(text: str) -> tuple[tuple[float, ...], float, float]:
    """ "1.25,1.5@0.4" -> ((1.25, 1.5), 0.4, 1.0); "1.5@0.4<0.9" -> ((1.5,), 0.4, 0.9);
    "none@0" -> ((), 0.0, 1.0)."""
    from densenet_jax.recognizer import parse_reread_scales

    text_, _, below = text.partition("<")
    scales, sep, density = text_.partition("@")
    try:
        return (
            parse_reread_scales(scales),
            float(density) if sep else 0.4,
            float(below) if below else 1.0,
        )
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
        help="settings to compare, each SCALES@DENSITY[<BELOW] (e.g. 1.25,1.5@0.4<0.95; "
        "'none@0' reads once); default: the table of docs/models.md",
    )
    p.add_argument(
        "--below",
        type=float,
        nargs="+",
        help="instead: the default scales and density with each of these reread_below "
        "thresholds (every reading made once, each threshold picks among them)",
    )
    args = p.parse_args()
    if args.below:
        return sweep_below(args.weights, args.labels, args.below)

    from densenet_jax.data.labels import read_labels
    from densenet_jax.metrics import text_metrics
    from densenet_jax.preprocess import to_line_image
    from densenet_jax.recognizer import Recognizer
    from ocr_common.io import read_image

    recs = [
        Recognizer.from_file(args.weights, reread_scales=s, reread_density=d, reread_below=b)
        for s, d, b in args.settings
    ]
    names = [
        "once" if not s else f"{'/'.join(map(str, s))} if > {d:g}" + (f", < {b:g}" if b < 1 else "")
        for s, d, b in args.settings
    ]
    print(
        f"\nCER by second-reading setting (stretch factors if characters per step > "
        f"density and score < below), [share of lines read again], {args.weights}\n"
    )
    print("| set | lines | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for labels in args.labels:
        records = read_labels(labels, recs[0].charset, encode=False)
        images = [read_image(r.path) for r in records]
        targets = [r.text for r in records]
        lines = [to_line_image(im) for im in images]
        first = recs[0].recognize_lines(lines, reread=False)  # where every setting starts
        cells = []
        for rec in recs:
            cer = text_metrics([d.text for d in rec.recognize(images)], targets)["cer"]
            again = sum(
                bool(rec.reread_scales) and rec.wants_reread(d, ln.shape[1])
                for d, ln in zip(first, lines, strict=True)
            )
            cells.append(f"{cer:.4f} [{again / len(images):.2f}]")
        print(f"| {labels.parent.name} | {len(images)} | " + " | ".join(cells) + " |")


def sweep_below(weights: Path, label_files: list[Path], thresholds: list[float]) -> None:
    """CER and share of lines read again per `reread_below` threshold, the other settings the
    defaults: the first reading and the stretched ones of every dense line made once."""
    from densenet_jax.data.labels import read_labels
    from densenet_jax.metrics import text_metrics
    from densenet_jax.preprocess import to_line_image
    from densenet_jax.recognizer import Recognizer
    from ocr_common.io import read_image

    rec = Recognizer.from_file(weights, reread_below=1.0)  # every dense line read again
    thresholds = sorted(thresholds, reverse=True)
    print(
        f"\nCER [share of lines read again, share whose text the second reading changed] by "
        f"reread_below; scales {rec.reread_scales}, density {rec.reread_density}, {weights}\n"
    )
    print("| set | lines | once | " + " | ".join(f"< {t:g}" for t in thresholds) + " |")
    print("|---|---:|---:|" + "---:|" * len(thresholds))
    for labels in label_files:
        records = read_labels(labels, rec.charset, encode=False)
        targets = [r.text for r in records]
        lines = [to_line_image(read_image(r.path)) for r in records]
        first = rec.recognize_lines(lines, reread=False)
        best = rec.recognize_lines(lines)  # a dense line's best reading, stretched or not
        dense = [k for k, d in enumerate(first) if rec.is_dense(d, lines[k].shape[1])]
        cells = [f"{text_metrics([d.text for d in first], targets)['cer']:.4f}"]
        for t in thresholds:
            chosen = [best[k] if d.score < t else d for k, d in enumerate(first)]
            n = sum(first[k].score < t for k in dense)
            changed = sum(chosen[k].text != first[k].text for k in dense)
            cer = text_metrics([d.text for d in chosen], targets)["cer"]
            cells.append(f"{cer:.4f} [{n / len(lines):.2f}, {changed / len(lines):.2f}]")
        print(f"| {labels.parent.name} | {len(lines)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
