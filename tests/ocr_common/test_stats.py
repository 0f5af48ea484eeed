"""The paired bootstrap against a loop written out by hand, and its statistics."""

import numpy as np
import pytest

from ocr_common.stats import detection_hmean, error_rate, paired_bootstrap_interval


def brute_force_interval(groups, statistic, seed, samples):
    """The same resampling, one resample and one item at a time, in float64."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(old), (samples, len(old))) for old, _ in groups]
    diffs = []
    for s in range(samples):
        old_sum = np.zeros(groups[0][0].shape[1])
        new_sum = np.zeros(groups[0][0].shape[1])
        for (old, new), idx in zip(groups, draws, strict=True):
            for i in idx[s]:
                old_sum += old[i]
                new_sum += new[i]
        diffs.append(float(statistic(new_sum) - statistic(old_sum)))
    return np.percentile(diffs, 2.5), np.percentile(diffs, 97.5)


def random_line_counts(rng, n):
    chars = rng.integers(1, 20, n)
    return np.stack([rng.integers(0, 5, n), chars], 1), np.stack([rng.integers(0, 5, n), chars], 1)


@pytest.mark.parametrize("statistic", ["cer", "hmean"])
def test_matches_the_loop_by_hand(statistic):
    rng = np.random.default_rng(1)
    if statistic == "cer":
        fn = error_rate
        groups = [random_line_counts(rng, 13), random_line_counts(rng, 7)]
    else:
        fn = detection_hmean
        groups = []
        for n in (9, 4):
            gt = rng.integers(0, 12, n)
            tp_a, tp_b = rng.integers(0, gt + 1), rng.integers(0, gt + 1)
            groups.append(
                (
                    np.stack([tp_a, rng.integers(0, 4, n), gt], 1),
                    np.stack([tp_b, rng.integers(0, 4, n), gt], 1),
                )
            )
    got = paired_bootstrap_interval(groups, fn, np.random.default_rng(5), samples=300)
    want = brute_force_interval(groups, fn, seed=5, samples=300)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_identical_and_uniformly_better_models():
    rng = np.random.default_rng(2)
    old, _ = random_line_counts(rng, 50)
    assert paired_bootstrap_interval([(old, old)], error_rate, rng, 500) == (0.0, 0.0)
    better = old.copy()
    better[:, 0] = np.maximum(old[:, 0] - 1, 0)
    better[0, 0] = 0
    old[0, 0] = max(old[0, 0], 1)  # at least one line strictly better
    lo, hi = paired_bootstrap_interval([(old, better)], error_rate, rng, 500)
    assert lo <= hi < 0


def test_hmean_is_the_harmonic_mean_of_precision_and_recall():
    rng = np.random.default_rng(3)
    gt = rng.integers(1, 50, 200)
    tp = rng.integers(0, gt + 1)
    fp = rng.integers(0, 30, 200)
    p = tp / np.maximum(tp + fp, 1)
    r = tp / gt
    want = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)
    np.testing.assert_allclose(detection_hmean(np.stack([tp, fp, gt], 1)), want, rtol=1e-12)
    assert detection_hmean(np.zeros(3)) == 0.0


def test_bad_shapes_are_an_error():
    a = np.zeros((4, 2))
    with pytest.raises(ValueError, match="same"):
        paired_bootstrap_interval([(a, np.zeros((5, 2)))], error_rate, np.random.default_rng())
    with pytest.raises(ValueError, match="at least one"):
        paired_bootstrap_interval([], error_rate, np.random.default_rng())
