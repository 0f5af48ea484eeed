"""Calibration of test-time settings, and weights files that carry their own settings."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ctpn_jax.calibrate import calibrate, grid_settings, main, parse_scales, write_calibrated
from ctpn_jax.detect import TextDetector, default_buckets
from ctpn_jax.evaluate import evaluate_folder

SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "ctpn.npz"


def test_default_buckets_are_the_original_sizes():
    assert default_buckets(900, 1500) == (912, 1200, 1504)
    assert default_buckets(600, 1000) == (608, 800, 1008)


def test_grid_and_scales_parsing():
    g = grid_settings({"a": (1, 2), "b": (3,), "c": (4, 5)})
    assert g == [{"a": 1, "b": 3, "c": 4}, {"a": 1, "b": 3, "c": 5},
                 {"a": 2, "b": 3, "c": 4}, {"a": 2, "b": 3, "c": 5}]
    assert parse_scales("600:1000,900:1500") == [(600, 1000), (900, 1500)]
    with pytest.raises(Exception, match="SHORT:LONG"):
        parse_scales("600x1000")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    from ctpn_jax.data.labels import find_samples
    from ctpn_jax.data.render import write_dataset

    out = tmp_path_factory.mktemp("val")
    write_dataset(out, count=2, seed=4242)
    return out, find_samples(out)


def test_calibration_agrees_with_evaluation_and_is_stored(pages, tmp_path):
    folder, samples = pages
    grid = {"score_threshold": (0.5, 0.9), "max_gap": (30.0,), "line_containment": (0.0,)}
    results = calibrate(SHIPPED, samples, [(320, 560)], grid, progress=False)
    assert len(results) == 2
    assert results[0]["hmean"] >= results[1]["hmean"]
    best = results[0]

    out = write_calibrated(SHIPPED, tmp_path / "cal.npz", best, str(folder), len(samples))
    # the arrays are copied bit for bit; only the metadata changed
    from ocr_common.weights import load_weights

    a, meta_a = load_weights(SHIPPED, dtype=np.float16)
    b, meta_b = load_weights(out, dtype=np.float16)
    fa = dict(_flatten(a))
    fb = dict(_flatten(b))
    assert fa.keys() == fb.keys()
    assert all(np.array_equal(fa[k], fb[k]) for k in fa)
    assert meta_b["test_scale"] == {"short_side": 320, "long_side": 560}
    assert meta_b["postprocess"]["score_threshold"] == best["score_threshold"]
    assert meta_b["calibration"]["images"] == 2
    assert meta_b["config"] == meta_a["config"]

    # a detector loaded from the calibrated file uses the stored settings, and the
    # independent evaluation code path reproduces the calibration's score
    det = TextDetector.from_weights(out)
    assert (det.short_side, det.long_side) == (320, 560)
    assert det.bucket_sizes == default_buckets(320, 560)
    assert det.post.score_threshold == best["score_threshold"]
    res = evaluate_folder(det, samples)
    assert res["hmean"] == pytest.approx(best["hmean"], abs=1e-9)
    assert res["precision"] == pytest.approx(best["precision"], abs=1e-9)
    # explicit arguments still override what the file says
    det2 = TextDetector.from_weights(out, post={"mode": "O"}, short_side=600, long_side=1000)
    assert det2.post.mode == "O" and det2.post.score_threshold == best["score_threshold"]
    assert (det2.short_side, det2.bucket_sizes) == (600, default_buckets(600, 1000))


def test_file_without_settings_gets_the_original_defaults(tmp_path):
    import jax

    from ctpn_jax.detect import export_detector
    from ctpn_jax.model import CTPN, CTPNConfig, init_ctpn
    from ctpn_jax.postprocess import PostprocessConfig

    cfg = CTPNConfig(width=0.125)
    path = export_detector(tmp_path / "bare.npz", cfg,
                           init_ctpn(CTPN.from_config(cfg), jax.random.PRNGKey(0)))
    det = TextDetector.from_weights(path)
    assert (det.short_side, det.long_side, det.bucket_sizes) == (900, 1500, (912, 1200, 1504))
    assert dataclasses.asdict(det.post) == dataclasses.asdict(PostprocessConfig())


def test_command_line_errors_name_the_problem(tmp_path, capsys):
    assert main(["--weights", str(tmp_path / "missing.npz"), "--data", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err


def _flatten(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}/")
        else:
            yield f"{prefix}{k}", v
