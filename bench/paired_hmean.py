"""Is one detector better than another on the same pages, beyond the noise of the sample?

    python -m ctpn_jax.evaluate --weights OLD --data SET --json old-SET.json
    python -m ctpn_jax.evaluate --weights NEW --data SET --json new-SET.json
    python bench/paired_hmean.py old-test232.json new-test232.json old-test242.json new-test242.json

Takes pairs of `ctpn_jax.evaluate --json` files (old, new) of the same folders and prints,
per set and pooled over all of them, both H-means, their difference and its 95% interval
from a paired bootstrap over pages (pages resampled within each set, both detectors' counts
of a page kept together). An interval above zero: the new file detects better beyond
sampling noise. The detector's twin of `bench/paired_cer.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def read_page_counts(path: Path) -> tuple[list[str], np.ndarray]:
    """(image names, ``(N, 3)`` counts (true positives, false positives, ground-truth lines)
    per page) of a `ctpn_jax.evaluate --json` file."""
    pages = json.loads(path.read_text(encoding="utf-8")).get("per_image")
    if not pages:
        raise ValueError(f"{path}: no per-image counts (written by an older ctpn_jax.evaluate?)")
    names = sorted(pages)
    return names, np.array(
        [[pages[n]["tp"], pages[n]["fp"], pages[n]["gt"]] for n in names], dtype=np.int64
    ).reshape(-1, 3)


def main() -> None:
    from ocr_common.stats import detection_hmean, paired_bootstrap_interval, paired_files_cli

    args, p, pairs, rng = paired_files_cli(__doc__.split("\n\n")[0])
    sets = []
    for old, new in pairs:
        try:
            names_a, a = read_page_counts(old)
            names_b, b = read_page_counts(new)
        except (OSError, ValueError, KeyError) as e:
            p.error(str(e))
        if names_a != names_b or not np.array_equal(a[:, 2], b[:, 2]):
            p.error(f"{old} and {new} do not hold the same pages")
        sets.append((old.stem, a, b))

    print("\n| set | pages | lines | old P / R / H | new P / R / H | new - old H | 95% interval |")
    print("|---|---:|---:|---|---|---:|---|")
    rows = [(name, [(a, b)]) for name, a, b in sets]
    if len(sets) > 1:
        rows.append(("pooled", [(a, b) for _, a, b in sets]))

    def prh(c: np.ndarray) -> str:
        tp, fp, gt = (int(v) for v in c)
        return (
            f"{tp / max(tp + fp, 1):.3f} / {tp / max(gt, 1):.3f} / {float(detection_hmean(c)):.4f}"
        )

    for name, groups in rows:
        sa = sum(a.sum(0) for a, _ in groups)
        sb = sum(b.sum(0) for _, b in groups)
        lo, hi = paired_bootstrap_interval(groups, detection_hmean, rng, args.samples)
        diff = float(detection_hmean(sb) - detection_hmean(sa))
        print(
            f"| {name} | {sum(len(a) for a, _ in groups)} | {int(sa[2])} | {prh(sa)} | "
            f"{prh(sb)} | {diff:+.4f} | {lo:+.4f} .. {hi:+.4f} |"
        )


if __name__ == "__main__":
    main()
