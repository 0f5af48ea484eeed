"""How often recognisers read crops that hold no text as empty, against how often they
drop real text lines: the two sides of the line filter `infer.OCR(min_text_score=...)`.

    python bench/non_text.py --weights densenet_jax/assets/densenet.npz \
        ~/runs/densenet-v1/weights.npz

Non-text crops are rendered by `LineRenderer.non_text` (surfaces, security print, photos,
marks) from a seed that training does not use; text lines come from the evaluation stream
of the same seed. Per weights file, the table gives the share of non-text crops read as
empty, the share the filter drops (empty, or mean character confidence under the
threshold), and the share of text lines the filter drops (these are lost lines).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--weights", type=Path, nargs="+", required=True, help="recogniser weight files to compare"
    )
    p.add_argument("--count", type=int, default=500, help="crops of each kind")
    p.add_argument("--seed", type=int, default=9001)
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="line filter threshold (default: infer.DEFAULT_MIN_TEXT_SCORE)",
    )
    args = p.parse_args()

    from tqdm import tqdm

    from densenet_jax.data.pipeline import EVAL_STREAM, TRAIN_STREAM, LineDataConfig, SynthLines
    from densenet_jax.recognizer import Recognizer
    from infer import DEFAULT_MIN_TEXT_SCORE, keeps_line

    threshold = DEFAULT_MIN_TEXT_SCORE if args.threshold is None else args.threshold
    recs = [Recognizer.from_file(w) for w in args.weights]
    cfg = LineDataConfig(non_text=1.0)  # every training-stream line is non-text
    empty = SynthLines(cfg, recs[0].charset, args.seed, TRAIN_STREAM)
    text = SynthLines(cfg, recs[0].charset, args.seed, EVAL_STREAM)
    crops = [empty[i]["image"] for i in tqdm(range(args.count), desc="non-text crops")]
    lines = [text[i]["image"] for i in tqdm(range(args.count), desc="text lines")]

    def dropped(results) -> float:
        return sum(not keeps_line(r.text, r.score, threshold) for r in results) / len(results)

    print(
        f"\n{args.count} non-text crops and {args.count} text lines, seed {args.seed}, "
        f"filter threshold {threshold}\n"
    )
    print("| weights | non-text read as empty | non-text dropped | text lines dropped |")
    print("|---|---:|---:|---:|")
    for w, rec in zip(args.weights, recs, strict=True):
        on_crops, on_lines = rec.recognize(crops), rec.recognize(lines)
        read_empty = sum(not r.text.strip() for r in on_crops) / len(on_crops)
        print(f"| {w} | {read_empty:.3f} | {dropped(on_crops):.3f} | {dropped(on_lines):.3f} |")


if __name__ == "__main__":
    main()
