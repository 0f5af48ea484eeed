"""Paired bootstrap: is one model better than another on the same items, beyond the noise
of the sample?

Both models are scored on the same items (lines, pages), each item giving a small vector of
counts (edits and characters; true positives, false positives and ground-truth lines). A
resample draws items with replacement within each set, the same items for both models, sums
their counts over the items and the sets, and applies the statistic (CER, H-mean) to the
sums. The interval is the percentile interval of the new-minus-old differences.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def paired_bootstrap_interval(
    groups: Sequence[tuple[np.ndarray, np.ndarray]],
    statistic: Callable[[np.ndarray], np.ndarray],
    rng: np.random.Generator,
    samples: int = 5000,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(new sums) - statistic(old sums)``.

    Args:
        groups: per set, ``(old, new)`` counts per item, each ``(N_i, K)`` (the same items
            in the same order); items are resampled within their set.
        statistic: maps summed counts ``(samples, K)`` to ``(samples,)`` values.
        rng: the random generator (one ``(samples, N_i)`` index draw per set, in order).
        samples: bootstrap resamples.
        level: coverage of the interval.

    Returns:
        ``(low, high)`` of the difference.
    """
    if not groups:
        raise ValueError("paired_bootstrap_interval needs at least one set")
    old_sum = new_sum = 0
    for old, new in groups:
        old, new = np.asarray(old), np.asarray(new)
        if old.shape != new.shape or old.ndim != 2:
            raise ValueError(
                f"old and new counts must have the same (N, K) shape, got "
                f"{old.shape} and {new.shape}"
            )
        idx = rng.integers(0, len(old), (samples, len(old)))
        old_sum = old_sum + old[idx].sum(1)
        new_sum = new_sum + new[idx].sum(1)
    diff = statistic(new_sum) - statistic(old_sum)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(diff, tail)), float(np.percentile(diff, 100 - tail))


def error_rate(sums: np.ndarray) -> np.ndarray:
    """CER of summed ``(..., 2)`` counts ``(edits, reference characters)``."""
    return sums[..., 0] / np.maximum(sums[..., 1], 1)


def detection_hmean(sums: np.ndarray) -> np.ndarray:
    """H-mean of summed ``(..., 3)`` counts ``(true positives, false positives, ground-truth
    lines)``: 2PR / (P + R) = 2 TP / (TP + FP + GT), 0 where there is nothing."""
    tp, fp, gt = sums[..., 0], sums[..., 1], sums[..., 2]
    return 2 * tp / np.maximum(tp + fp + gt, 1)


def paired_files_cli(
    description: str,
) -> tuple[
    argparse.Namespace, argparse.ArgumentParser, list[tuple[Path, Path]], np.random.Generator
]:
    """The command line shared by the paired-comparison scripts in ``bench/``.

    Parses ``OLD NEW [OLD NEW ...] [--samples N] [--seed S]`` and returns (the arguments,
    the parser for error messages, the ``(old, new)`` file pairs, the bootstrap RNG).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("json", type=Path, nargs="+", help="OLD NEW [OLD NEW ...] evaluate --json files")
    p.add_argument("--samples", type=int, default=5000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if len(args.json) % 2:
        p.error("give the --json files in pairs: OLD NEW [OLD NEW ...]")
    pairs = list(zip(args.json[::2], args.json[1::2], strict=True))
    return args, p, pairs, np.random.default_rng(args.seed)
