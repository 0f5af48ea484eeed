"""Where a recogniser's errors on rendered lines come from: the kind of character, how often
training drew it, and the renderer's degradations.

    python bench/synthetic_errors.py --weights weights/densenet.npz --ablate

Reads `--count` lines of the evaluation stream of `--seed` (306 draws the model card's
lines306 set) rendered as usual ("full") and again without degradations ("clean": the same
texts in the same fonts, `LineRenderConfig.clean`); with `--ablate`, also clean plus each
degradation alone. Prints three tables:

1. CER per set, overall and by kind of character (`densenet_jax.metrics.errors_by_class`),
   and the share of all errors in the worst tenth of the lines.
2. The error rate of hanzi (substitutions and deletions) by how often the training text
   draws them, in occurrences per million hanzi of `--config`'s text mix (estimated from
   `--sample` lines of the sampler; the one coverage character per training line, which
   brings every character about once per 6,000 lines, is not counted).
3. (`--ablate`) what each degradation alone adds to the clean set's CER.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from densenet_jax.data.pipeline import LineDataConfig  # noqa: E402
from densenet_jax.weights import shipped_weights  # noqa: E402

DEGRADATIONS = ("colour", "distractors", "low_res", "blur", "noise", "jpeg")
FREQ_EDGES = (20, 100, 500)  # occurrences per million hanzi drawn


def training_hanzi_frequency(data: LineDataConfig, n_lines: int, seed: int = 0) -> dict[str, float]:
    """Occurrences per million hanzi of each hanzi in `n_lines` lines of the training text
    mix `data` (lengths as in training, long lines included)."""
    from densenet_jax.charset import Charset
    from densenet_jax.metrics import char_class
    from ocr_common.corpus import TextSampler

    sampler = TextSampler("".join(Charset.default().chars), kind_weights=data.text_kinds)
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    for _ in range(n_lines):
        lo, hi = (
            data.long_chars if rng.random() < data.long_lines else (data.min_chars, data.max_chars)
        )
        counts.update(
            c
            for c in sampler.sample(rng, int(rng.integers(lo, hi + 1)))
            if char_class(c) == "hanzi"
        )
    total = max(1, sum(counts.values()))
    return {c: 1e6 * n / total for c, n in counts.items()}


def hanzi_errors_by_frequency(
    predictions: list[str], targets: list[str], freq: dict[str, float]
) -> list[tuple[int, int]]:
    """(hanzi, errors) per bucket of FREQ_EDGES: errors are the target hanzi substituted or
    deleted."""
    from densenet_jax.metrics import char_class, edit_operations, without_spaces

    edges = (0, *FREQ_EDGES, float("inf"))
    chars, errors = [0] * (len(edges) - 1), [0] * (len(edges) - 1)

    def bucket(c: str) -> int:
        f = freq.get(c, 0.0)
        return next(i for i in range(len(edges) - 1) if edges[i] <= f < edges[i + 1])

    for p, t in zip(predictions, targets, strict=True):
        p, t = without_spaces(p), without_spaces(t)
        for c in t:
            if char_class(c) == "hanzi":
                chars[bucket(c)] += 1
        for op, tc, _ in edit_operations(t, p):
            if op != "ins" and char_class(tc) == "hanzi":
                errors[bucket(tc)] += 1
    return list(zip(chars, errors, strict=True))


def worst_tenth_share(predictions: list[str], targets: list[str]) -> float:
    """The share of all edits that fall in the 10% of lines with the highest CER."""
    from densenet_jax.metrics import line_edits

    rows = sorted(line_edits(predictions, targets), key=lambda r: -r[0] / max(1, r[1]))
    total = sum(e for e, _ in rows)
    return sum(e for e, _ in rows[: max(1, len(rows) // 10)]) / max(1, total)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=shipped_weights())
    p.add_argument("--count", type=int, default=1000, help="lines per set")
    p.add_argument("--seed", type=int, default=306, help="evaluation stream (not training's)")
    p.add_argument(
        "--config",
        type=Path,
        default=REPO / "configs" / "densenet-v4.json",
        help="training config whose text mix sets the hanzi frequencies",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=20000,
        help="training-text lines drawn to estimate the frequencies",
    )
    p.add_argument(
        "--ablate", action="store_true", help="also read clean lines with each degradation alone"
    )
    args = p.parse_args()

    from tqdm import tqdm

    from densenet_jax.data.pipeline import EVAL_STREAM, SynthLines
    from densenet_jax.data.render import LineRenderConfig
    from densenet_jax.metrics import CHAR_CLASSES, errors_by_class, text_metrics
    from densenet_jax.recognizer import Recognizer

    rec = Recognizer.from_file(args.weights)
    full = LineRenderConfig()
    clean = full.clean()
    sets = {"full": full, "clean": clean}
    if args.ablate:
        for k in DEGRADATIONS:
            sets[f"clean + {k}"] = dataclasses.replace(clean, **{k: getattr(full, k)})
    from train import config_from_dict

    data = json.loads(args.config.read_text(encoding="utf-8"))["task"].get("data", {})
    freq = training_hanzi_frequency(config_from_dict(LineDataConfig, data), args.sample)

    results = {}
    for name, render in sets.items():
        src = SynthLines(LineDataConfig(render=render), rec.charset, args.seed, EVAL_STREAM)
        examples = [src[i] for i in tqdm(range(args.count), desc=f"render {name}", leave=False)]
        targets = [e["text"] for e in examples]
        preds = [r.text for r in rec.recognize([e["image"] for e in examples])]
        results[name] = (preds, targets)

    print(f"\n{args.weights}: {args.count} lines of seed {args.seed} per set\n")
    print(
        "| set | CER | exact | "
        + " | ".join(f"{k} CER (chars)" for k in CHAR_CLASSES)
        + " | errors in the worst 10% of lines |"
    )
    print("|---|---:|---:|" + "---:|" * len(CHAR_CLASSES) + "---:|")
    for name, (preds, targets) in results.items():
        m, by = text_metrics(preds, targets), errors_by_class(preds, targets)
        cells = " | ".join(f"{by[k]['cer']:.4f} ({by[k]['chars']})" for k in CHAR_CLASSES)
        print(
            f"| {name} | {m['cer']:.4f} | {m['exact']:.3f} | {cells} | "
            f"{worst_tenth_share(preds, targets):.2f} |"
        )

    edges = (0, *FREQ_EDGES)
    labels = [f"{lo}-{hi}" for lo, hi in zip(edges, FREQ_EDGES, strict=False)]
    labels.append(f">= {FREQ_EDGES[-1]}")
    shown = [n for n in ("full", "clean") if n in results]
    print(
        f"\nHanzi error rate (hanzi in the set) by occurrences per million training hanzi "
        f"({args.config.name}, {args.sample} lines sampled)\n"
    )
    print("| per million | " + " | ".join(shown) + " |")
    print("|---|" + "---:|" * len(shown))
    rows = [hanzi_errors_by_frequency(*results[n], freq) for n in shown]
    for i, label in enumerate(labels):
        cells = " | ".join(f"{r[i][1] / max(1, r[i][0]):.3f} ({r[i][0]})" for r in rows)
        print(f"| {label} | {cells} |")

    if args.ablate:
        base = text_metrics(*results["clean"])["cer"]
        print("\n| degradation alone | CER | added to clean |\n|---|---:|---:|")
        for k in DEGRADATIONS:
            cer = text_metrics(*results[f"clean + {k}"])["cer"]
            print(f"| {k} | {cer:.4f} | {cer - base:+.4f} |")
        cer = text_metrics(*results["full"])["cer"]
        print(f"| all (full) | {cer:.4f} | {cer - base:+.4f} |")


if __name__ == "__main__":
    main()
