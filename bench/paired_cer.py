"""Is one recogniser better than another on the same lines, beyond the noise of the sample?

    python -m densenet_jax.evaluate --weights OLD --labels SET/labels.tsv --json old-SET.json
    python -m densenet_jax.evaluate --weights NEW --labels SET/labels.tsv --json new-SET.json
    python bench/paired_cer.py old-lines306.json new-lines306.json old-long.json new-long.json

Takes pairs of `evaluate --json` files (old, new) of the same label files and prints, per
set and pooled over all of them, both CERs, their difference and its 95% interval from a
paired bootstrap over lines (lines resampled within each set, both readings of a line kept
together). An interval below zero: the new file reads better beyond sampling noise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def read_line_edits(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(image paths, edits per line, target characters per line) of an evaluate --json file."""
    from densenet_jax.metrics import line_edits

    rows = json.loads(path.read_text(encoding="utf-8"))["predictions"]
    per_line = np.asarray(
        line_edits([r[2] for r in rows], [r[1] for r in rows]), dtype=np.int64
    ).reshape(-1, 2)
    return [r[0] for r in rows], per_line[:, 0], per_line[:, 1]


def main() -> None:
    from ocr_common.stats import error_rate, paired_bootstrap_interval, paired_files_cli

    args, p, pairs, rng = paired_files_cli(__doc__.split("\n\n")[0])
    sets = []
    for old, new in pairs:
        paths_a, a, chars = read_line_edits(old)
        paths_b, b, _ = read_line_edits(new)
        if paths_a != paths_b:
            p.error(f"{old} and {new} do not hold the same lines")
        sets.append((old.stem, a, b, chars))

    def interval(groups) -> tuple[float, float]:
        return paired_bootstrap_interval(
            [(np.stack([a, c], 1), np.stack([b, c], 1)) for _, a, b, c in groups],
            error_rate,
            rng,
            args.samples,
        )

    print("\n| set | chars | old CER | new CER | new - old | 95% interval |")
    print("|---|---:|---:|---:|---:|---|")
    rows = [(name, [(name, a, b, c)]) for name, a, b, c in sets]
    if len(sets) > 1:
        rows.append(("pooled", sets))
    for name, groups in rows:
        ea = sum(int(g[1].sum()) for g in groups)
        eb = sum(int(g[2].sum()) for g in groups)
        c = max(1, sum(int(g[3].sum()) for g in groups))
        lo, hi = interval(groups)
        print(
            f"| {name} | {c} | {ea / c:.4f} | {eb / c:.4f} | {(eb - ea) / c:+.4f} | "
            f"{lo:+.4f} .. {hi:+.4f} |"
        )


if __name__ == "__main__":
    main()
