"""Calibration of test-time settings, and weights files that carry their own settings."""

import dataclasses

import numpy as np
import pytest

from ctpn_jax.calibrate import calibrate, grid_settings, main, parse_scales, write_calibrated
from ctpn_jax.detect import TextDetector, default_buckets
from ctpn_jax.evaluate import evaluate_folder
from ctpn_jax.weights import shipped_weights

SHIPPED = shipped_weights()


def test_default_buckets_are_the_original_sizes():
    assert default_buckets(900, 1500) == (912, 1200, 1504)
    assert default_buckets(600, 1000) == (608, 800, 1008)


def test_grid_and_scales_parsing():
    g = grid_settings({"a": (1, 2), "b": (3,), "c": (4, 5)})
    assert g == [
        {"a": 1, "b": 3, "c": 4},
        {"a": 1, "b": 3, "c": 5},
        {"a": 2, "b": 3, "c": 4},
        {"a": 2, "b": 3, "c": 5},
    ]
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

    from ctpn_jax.model import CTPN, CTPNConfig, init_ctpn
    from ctpn_jax.postprocess import PostprocessConfig
    from ctpn_jax.weights import export_detector

    cfg = CTPNConfig(width=0.125)
    path = export_detector(
        tmp_path / "bare.npz", cfg, init_ctpn(CTPN.from_config(cfg), jax.random.PRNGKey(0))
    )
    det = TextDetector.from_weights(path)
    assert (det.short_side, det.long_side, det.bucket_sizes) == (900, 1500, (912, 1200, 1504))
    assert dataclasses.asdict(det.post) == dataclasses.asdict(PostprocessConfig())


def test_command_line_pools_folders_and_tries_min_proposals(pages, tmp_path, capsys):
    folder, _ = pages
    out = tmp_path / "cal.npz"
    args = ["--weights", str(SHIPPED), "--data", str(folder), str(folder), "--scales", "320:560"]
    args += ["--scores", "0.9", "--gaps", "30", "--gap-rels", "0", "--containments", "0"]
    assert main([*args, "--min-proposals", "1,2", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("4 images, 2 settings")  # the folder twice, pooled
    from ocr_common.weights import load_weights

    _, meta = load_weights(out)
    assert meta["calibration"]["images"] == 4
    assert meta["postprocess"]["min_proposals"] in (1, 2)
    rows = [r for r in table.splitlines() if r.startswith("| 320/560")]
    assert sorted(r.split("|")[7].strip() for r in rows) == ["1", "2"]


def test_command_line_errors_name_the_problem(tmp_path, capsys):
    assert main(["--weights", str(tmp_path / "missing.npz"), "--data", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err


def _flatten(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}/")
        else:
            yield f"{prefix}{k}", v


def _box(x1, y1, x2, y2):
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)


def _merge_reference(fq, fs, cq, cs, min_height, cover=0.5):
    """Line-by-line version of ``merge_coarse_lines`` (axis-aligned boxes)."""
    kept_c = [
        (q, s) for q, s in zip(cq, cs, strict=True) if q[:, 1].max() - q[:, 1].min() >= min_height
    ]
    out = []
    for q, s in zip(fq, fs, strict=True):
        x1, y1, x2, y2 = q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()
        covered = False
        for c, _ in kept_c:
            w = max(0.0, min(x2, c[:, 0].max()) - max(x1, c[:, 0].min()))
            h = max(0.0, min(y2, c[:, 1].max()) - max(y1, c[:, 1].min()))
            covered |= w * h / max((x2 - x1) * (y2 - y1), 1e-6) > cover
        if not covered:
            out.append((q, s))
    out += kept_c
    out.sort(key=lambda t: -t[1])
    return [t[0] for t in out], [t[1] for t in out]


def test_coarse_lines_replace_the_fragments_of_large_text():
    from ctpn_jax.detect import merge_coarse_lines

    # Fine pass: two fragments of a large word, one small line elsewhere.
    fine = np.stack([_box(10, 10, 60, 110), _box(70, 20, 120, 100), _box(10, 300, 200, 320)])
    fine_s = np.array([0.9, 0.8, 0.95], np.float32)
    # Coarse pass: the whole large word (100 px tall) and a small line (20 px, ignored).
    coarse = np.stack([_box(5, 5, 130, 110), _box(10, 298, 120, 318)])
    coarse_s = np.array([0.85, 0.99], np.float32)
    q, s = merge_coarse_lines(fine, fine_s, coarse, coarse_s, min_height=50)
    np.testing.assert_allclose(q, np.stack([fine[2], coarse[0]]))
    np.testing.assert_allclose(s, [0.95, 0.85])
    # Above every coarse line's height: the fine pass alone.
    q, s = merge_coarse_lines(fine, fine_s, coarse, coarse_s, min_height=500)
    np.testing.assert_allclose(q, fine[[2, 0, 1]])
    # Nothing from either pass.
    q, s = merge_coarse_lines(fine[:0], fine_s[:0], coarse[:0], coarse_s[:0], 50)
    assert q.shape == (0, 4, 2) and s.shape == (0,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_matches_line_by_line_reference(seed):
    from ctpn_jax.detect import merge_coarse_lines

    rng = np.random.default_rng(seed)

    def boxes(n):
        xy = rng.uniform(0, 400, (n, 2))
        wh = rng.uniform(5, 150, (n, 2))
        return np.stack([_box(*p, *(p + d)) for p, d in zip(xy, wh, strict=True)])

    fq, cq = boxes(30), boxes(12)
    fs, cs = rng.uniform(0.5, 1, 30).astype(np.float32), rng.uniform(0.5, 1, 12).astype(np.float32)
    for h in (0.0, 60.0, 120.0):
        q, s = merge_coarse_lines(fq, fs, cq, cs, h)
        rq, rs = _merge_reference(fq, fs, cq, cs, h)
        assert len(q) == len(rq)
        np.testing.assert_allclose(s, rs)
        if len(q):
            np.testing.assert_allclose(q, np.stack(rq))


def test_detector_with_a_coarse_pass_merges_two_resizes(pages):
    from ocr_common.io import read_image

    _, samples = pages
    image = read_image(samples[0].image)
    det = TextDetector.from_weights(
        SHIPPED,
        short_side=320,
        long_side=560,
        coarse_scale=0.5,
        coarse_min_height=40,
        coarse_min_proposals=0,  # always run it
    )
    assert (det.coarse_side, det.coarse_long_side) == (160, 280)
    # The shipped file may hold a coarse pass of its own: these two are single passes.
    plain = TextDetector.from_weights(SHIPPED, short_side=320, long_side=560, coarse_scale=0)
    half = TextDetector.from_weights(SHIPPED, short_side=160, long_side=280, coarse_scale=0)
    fine, coarse = plain(image), half(image)
    from ctpn_jax.detect import merge_coarse_lines

    scale = plain.network_outputs(image)[2][0]
    want = merge_coarse_lines(fine.quads, fine.scores, coarse.quads, coarse.scores, 40 / scale)
    got = det(image)
    np.testing.assert_allclose(got.quads, want[0], atol=1e-4)
    np.testing.assert_allclose(got.scores, want[1], atol=1e-6)
    for bad in (-0.5, 1.0):
        with pytest.raises(ValueError, match="coarse_scale"):
            TextDetector.from_weights(SHIPPED, coarse_scale=bad)
    with pytest.raises(ValueError, match="no coarse pass"):
        plain.network_outputs(image, coarse=True)


def test_tall_proposals_against_a_loop_over_anchors():
    from ctpn_jax.anchors import ANCHOR_HEIGHTS
    from ctpn_jax.detect import tall_proposals

    rng = np.random.default_rng(7)
    hf, wf, k = 6, 9, len(ANCHOR_HEIGHTS)
    out = {
        "cls_logits": rng.normal(0, 4, (hf, wf, k, 2)).astype(np.float32),
        "vertical": rng.normal(0, 0.6, (hf, wf, k, 2)).astype(np.float32),
        "side": np.zeros((hf, wf, k), np.float32),
    }
    hw, min_height, threshold = (70, 110), 40.0, 0.9
    want = 0
    for y in range(hf):
        for x in range(wf):
            for a in range(k):
                z = float(out["cls_logits"][y, x, a, 1]) - float(out["cls_logits"][y, x, a, 0])
                height = ANCHOR_HEIGHTS[a] * np.exp(float(out["vertical"][y, x, a, 1]))
                inside = (y + 0.5) * 16 < hw[0] and (x + 0.5) * 16 < hw[1]
                want += inside and 1 / (1 + np.exp(-z)) > threshold and height >= min_height
    assert 0 < want < hf * wf * k // 4  # the draw tests both sides of each condition
    assert tall_proposals(out, hw, min_height, threshold) == want


def test_coarse_pass_runs_only_where_the_main_pass_has_tall_proposals(pages, monkeypatch):
    from ctpn_jax.detect import tall_proposals
    from ocr_common.io import read_image

    _, samples = pages
    image = read_image(samples[0].image)
    kwargs = dict(short_side=320, long_side=560, coarse_scale=0.5, coarse_min_height=20)
    always = TextDetector.from_weights(SHIPPED, coarse_min_proposals=0, **kwargs)
    fine = always.network_outputs(image)
    n = tall_proposals(fine[0], fine[1], 20, always.post.score_threshold)
    assert n > 0  # a rendered page: some text at least 20 px tall at this scale
    plain = TextDetector.from_weights(SHIPPED, short_side=320, long_side=560, coarse_scale=0)
    coarse_calls = []
    original = TextDetector.network_outputs

    def counting(self, image, coarse=False):
        coarse_calls.append(coarse)
        return original(self, image, coarse)

    monkeypatch.setattr(TextDetector, "network_outputs", counting)
    for min_proposals, runs in ((0, True), (n, True), (n + 1, False)):
        det = TextDetector.from_weights(SHIPPED, coarse_min_proposals=min_proposals, **kwargs)
        coarse_calls.clear()
        got = det(image)
        assert coarse_calls == ([False, True] if runs else [False])
        want = always(image) if runs else plain(image)
        np.testing.assert_allclose(got.quads, want.quads, atol=1e-4)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-6)
    with pytest.raises(ValueError, match="coarse_min_proposals"):
        TextDetector.from_weights(SHIPPED, coarse_min_proposals=-1)


def test_calibrated_coarse_pass_is_stored_and_reproduced(pages, tmp_path):
    folder, samples = pages
    grid = {"score_threshold": (0.9,), "max_gap": (30.0,), "line_containment": (0.7,)}
    results = calibrate(
        SHIPPED,
        samples,
        [(320, 560)],
        grid,
        progress=False,
        coarse_scales=(0.0, 0.5),
        coarse_heights=(30.0, 60.0),
    )
    assert len(results) == 3
    assert {(r["coarse_scale"], r["coarse_min_height"]) for r in results} == {
        (0.0, 0.0),
        (0.5, 30.0),
        (0.5, 60.0),
    }
    # Store the best coarse row (whatever won) and check the file reproduces it.
    best = max((r for r in results if r["coarse_scale"]), key=lambda r: r["hmean"])
    out = write_calibrated(SHIPPED, tmp_path / "coarse.npz", best, str(folder), len(samples))
    det = TextDetector.from_weights(out)
    assert (det.coarse_scale, det.coarse_min_height) == (0.5, best["coarse_min_height"])
    res = evaluate_folder(det, samples)
    assert res["hmean"] == pytest.approx(best["hmean"], abs=1e-9)
    assert res["recall"] == pytest.approx(best["recall"], abs=1e-9)
    # An override of the main resize keeps the relative coarse pass.
    assert TextDetector.from_weights(out, short_side=600, long_side=1000).coarse_side == 300
    with pytest.raises(ValueError, match="coarse scales"):
        calibrate(SHIPPED, samples, [(320, 560)], grid, progress=False, coarse_scales=(1.5,))
