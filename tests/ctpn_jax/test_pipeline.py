"""Resizing as the original, shape buckets and batches."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import train
from ctpn_jax import task
from ctpn_jax.data.labels import TextLine
from ctpn_jax.data.pipeline import DetDataConfig, SynthPages, collate, prepare_example
from ctpn_jax.data.render import PageRenderConfig
from ctpn_jax.preprocess import PAD_VALUE, bucket_size, resize_image, resize_scale


def test_resize_scale_hand_values():
    assert resize_scale(480, 640, 600, 1000) == 1.25  # 600 x 800
    assert resize_scale(300, 2000, 600, 1000) == 0.5  # long side capped: 150 x 1000
    assert resize_scale(1200, 900, 900, 1500) == 1.0
    assert resize_scale(2000, 1000, 900, 1500) == 0.75
    # max_scale caps enlargement only.
    assert resize_scale(480, 640, 600, 1000, max_scale=1.0) == 1.0
    assert resize_scale(480, 640, 600, 1000, max_scale=1.1) == 1.1
    assert resize_scale(2000, 1000, 900, 1500, max_scale=1.0) == 0.75


def test_resize_image_reports_exact_scales():
    img = np.zeros((333, 500, 3), np.uint8)
    out, (sy, sx) = resize_image(img, 600, 1000)
    assert out.shape == (600, 901, 3)
    assert sy == 600 / 333 and sx == 901 / 500


def test_resize_image_never_enlarges_past_max_scale():
    img = np.zeros((333, 500, 3), np.uint8)
    out, scale = resize_image(img, 600, 1000, max_scale=1.0)
    assert out.shape == img.shape and scale == (1.0, 1.0)


def test_bucket_size():
    sizes = (608, 800, 1008)
    assert bucket_size(600, sizes) == 608 and bucket_size(608, sizes) == 608
    assert bucket_size(609, sizes) == 800 and bucket_size(1000, sizes) == 1008
    assert bucket_size(1009, sizes) == 1024  # beyond: multiple of 16


def test_prepare_and_collate():
    img = np.full((300, 400, 3), 255, np.uint8)
    lines = [
        TextLine(np.float32([[10, 20], [110, 20], [110, 40], [10, 40]]), "a"),
        TextLine(np.float32([[0, 0], [0.1, 0], [0.1, 50], [0, 50]]), "thin"),
        TextLine(np.float32([[200, 100], [300, 100], [300, 150], [200, 150]]), "###"),
    ]
    ex = prepare_example(img, lines, 600, 1000, max_boxes=4)
    assert ex["image"].shape == (600, 800, 3)
    np.testing.assert_array_equal(ex["image_hw"], [600, 800])
    np.testing.assert_array_equal(ex["valid"], [True, True, False, False])  # "thin" dropped
    np.testing.assert_array_equal(ex["ignore"], [False, True, False, False])
    np.testing.assert_allclose(ex["quads"][0], [[20, 40], [220, 40], [220, 80], [20, 80]])
    small = prepare_example(np.zeros((100, 100, 3), np.uint8), [], 600, 1000, max_boxes=4)
    b = collate([ex, small], (608, 800, 1008))
    assert b["image"].shape == (2, 608, 800, 3) and b["image"].dtype == np.uint8
    assert b["quads"].shape == (2, 4, 4, 2) and b["valid"].shape == (2, 4)
    np.testing.assert_array_equal(b["image_hw"], [[600, 800], [600, 600]])
    np.testing.assert_array_equal(b["image"][1, 0, 700], PAD_VALUE)
    np.testing.assert_array_equal(b["image"][0, 605, 0], PAD_VALUE)
    assert list(b)[0] == "image"


def test_pool_pages_mix_into_training_pages_by_their_own_draw(tmp_path):
    """`pool_share` of the training pages come from a folder of labelled pages (resized to
    the drawn scale, with their boxes); the rendered pages of the mix are those of a stream
    without the pool, and the evaluation stream never pools."""
    import cv2

    from ctpn_jax.data.pipeline import DetDataConfig, SynthPages

    (tmp_path / "images").mkdir()
    (tmp_path / "gt").mkdir()
    for name, color in (("p0", 40), ("p1", 200)):
        page = np.full((400, 700, 3), color, np.uint8)
        cv2.rectangle(page, (100, 50), (500, 90), (255 - color,) * 3, -1)
        cv2.imwrite(str(tmp_path / "images" / f"{name}.png"), page)
        (tmp_path / "gt" / f"gt_{name}.txt").write_text("100,50,500,50,500,90,100,90,abc\n")
    plain = DetDataConfig(kinds=("document",))
    mixed = DetDataConfig(kinds=("document",), pool=str(tmp_path), pool_share=0.5)
    synth, pooled = SynthPages(plain, seed=3), SynthPages(mixed, seed=3)
    from_pool = 0
    for i in range(8):
        got = pooled[i]
        draw = np.random.default_rng((3, 0, i, 2)).random()
        if draw < 0.5:
            from_pool += 1
            # 400 x 700 resized to the short side 600, the long side capped at 1000.
            assert tuple(got["image_hw"]) == (571, 1000)
            assert got["valid"].sum() == 1
            scale = got["image_hw"][1] / 700
            np.testing.assert_allclose(got["quads"][0, 0], [100 * scale, 50 * scale], rtol=1e-3)
            assert got["image"][0, 0, 0] in (40, 200)
        else:
            want = synth[i]
            np.testing.assert_array_equal(got["image"], want["image"])
            np.testing.assert_array_equal(got["quads"], want["quads"])
    assert 0 < from_pool < 8
    held_out = SynthPages(mixed, seed=3, train=False)
    assert held_out.pool == []


def test_recipe_kind_weights_reach_the_renderer():
    """A recipe that names the web kind with its weights draws web pages in that share;
    one without weights keeps the renderer's default mix; too few weights are refused."""
    recipe = Path(train.__file__).parent / "configs" / "ctpn-v5.json"
    d = json.loads(recipe.read_text())["task"]
    cfg = train.config_from_dict(task.Config, {**train.config_to_dict(task.Config()), **d})
    assert "web" in cfg.data.kinds and len(cfg.data.kind_weights) == len(cfg.data.kinds)
    r = SynthPages(cfg.data, seed=0).renderer
    w = np.asarray(cfg.data.kind_weights)
    np.testing.assert_allclose(r.kind_p, w / w.sum())
    assert r.cfg.photo_prob == cfg.data.photo_prob == 0.5
    assert r.kind_p[r.cfg.kinds.index("web")] > 0.15
    default = SynthPages(DetDataConfig(), seed=0).renderer
    assert "web" not in default.cfg.kinds
    assert default.cfg.kind_weights == PageRenderConfig().kind_weights
    bad = dataclasses.replace(DetDataConfig(), kinds=(*DetDataConfig().kinds, "web"))
    with pytest.raises(ValueError, match="7 page kinds"):
        _ = SynthPages(bad, seed=0).renderer
