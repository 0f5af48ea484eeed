"""Tests of `infer.py` and what it composes: geometry, reading order, the pipeline's contracts
and the command line (`ocr_app.cli`).

The models are tiny and untrained, exported through the real export functions
(tests/conftest.py: the `tiny_weights` and `ocr` fixtures). The detector
is made deterministic by its class bias: every feature-map cell holds "text" for the 16-px
anchor only, so each 16-px row of the (resized) image becomes one text line spanning the
image. That gives known boxes without training; recognition accuracy is not tested.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import infer
from ocr_app import cli
from ocr_common import draw as drawing
from ocr_common import geometry, outputs, runtime
from ocr_common.weights import WeightsError
from tests.helpers import ALPHABET, SMALL_DET, page

REPO = Path(infer.__file__).resolve().parent


@pytest.fixture(autouse=True)
def _no_user_cache(monkeypatch):
    """`main()` must not write compiled programs into the user's ~/.cache during tests."""
    monkeypatch.setenv(runtime.CACHE_ENV, "off")


@pytest.fixture
def small_ocr_cli(monkeypatch, tiny_weights):
    """`infer.main` with the small detection sizes; returns the weight arguments."""
    monkeypatch.setattr(cli, "OCR", functools.partial(infer.OCR, detector_options=SMALL_DET))
    det, rec = tiny_weights
    return ["--weights-det", str(det), "--weights-rec", str(rec)]


def write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def shoelace(quad: np.ndarray) -> float:
    """Twice the signed area; positive for clockwise corners on screen (y down)."""
    x, y = quad[:, 0], quad[:, 1]
    return float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def rect(x0, y0, x1, y1) -> np.ndarray:
    return np.asarray([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def rotate(points: np.ndarray, degrees: float, centre=(0.0, 0.0)) -> np.ndarray:
    """Rotates points clockwise on screen by `degrees` around `centre`."""
    a = math.radians(degrees)
    m = np.asarray([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    c = np.asarray(centre)
    return ((np.asarray(points, np.float64) - c) @ m.T + c).astype(np.float32)


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("degrees", [0.0, 12.0, -30.0])
def test_order_quad_any_order_gives_clockwise_from_top_left(degrees):
    expected = rotate(rect(10, 20, 110, 50), degrees, (60, 35))
    for perm in ([0, 1, 2, 3], [2, 0, 3, 1], [3, 2, 1, 0], [1, 3, 0, 2]):
        got = geometry.order_quad(expected[perm])
        np.testing.assert_allclose(got, expected, atol=1e-4)
        assert shoelace(got) > 0


def test_reading_order_rows_then_left_to_right():
    # Two rows of three boxes with jittered heights, plus a row of one; given shuffled.
    expected = [
        rect(10, 10, 60, 30),
        rect(80, 12, 150, 31),
        rect(170, 8, 200, 29),
        rect(12, 50, 90, 72),
        rect(110, 47, 140, 69),
        rect(160, 53, 230, 74),
        rect(40, 100, 120, 118),
    ]
    shuffle = [4, 6, 0, 2, 5, 1, 3]
    order = geometry.reading_order(np.stack([expected[i] for i in shuffle]))
    assert [shuffle[i] for i in order] == list(range(7))


def test_reading_order_two_columns_with_offset_lines():
    # The right column's lines sit 10 px lower than the left's: still one row each.
    left = [rect(10, 10 + 40 * k, 100, 30 + 40 * k) for k in range(3)]
    right = [rect(150, 20 + 40 * k, 260, 40 + 40 * k) for k in range(3)]
    quads = np.stack([right[2], left[0], right[0], left[2], right[1], left[1]])
    names = ["r2", "l0", "r0", "l2", "r1", "l1"]
    assert [names[i] for i in geometry.reading_order(quads)] == ["l0", "r0", "l1", "r1", "l2", "r2"]


def test_reading_order_of_a_tilted_page():
    # A 2 x 2 grid rotated by 8 degrees: the right box of the top row ends up lower than
    # the left box of the second row, so sorting by y alone would read it third.
    grid = [
        rect(0, 0, 300, 20),
        rect(500, 0, 800, 20),
        rect(0, 40, 300, 60),
        rect(500, 40, 800, 60),
    ]
    tilted = [rotate(q, 8.0) for q in grid]
    assert tilted[1][:, 1].mean() > tilted[2][:, 1].mean()
    shuffle = [3, 1, 2, 0]
    order = geometry.reading_order(np.stack([tilted[i] for i in shuffle]))
    assert [shuffle[i] for i in order] == [0, 1, 2, 3]


def test_reading_order_edge_cases():
    assert geometry.reading_order(np.zeros((0, 4, 2))).tolist() == []
    assert geometry.reading_order(rect(0, 0, 5, 5)[None]).tolist() == [0]


def test_crop_axis_aligned_box_is_exact():
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    np.testing.assert_array_equal(geometry.crop_quad(img, rect(10, 20, 40, 30)), img[20:30, 10:40])
    gray = img[..., 0]
    np.testing.assert_array_equal(geometry.crop_quad(gray, rect(0, 0, 80, 60)), gray)


def test_crop_quarter_turned_text_is_upright():
    # A "line" P turned a quarter clockwise into the image; its corners, from P's own
    # top-left, are then (x0 + h, y0), (x0 + h, y0 + w), (x0, y0 + w), (x0, y0).
    rng = np.random.default_rng(1)
    p = rng.integers(0, 256, (7, 25, 3), dtype=np.uint8)
    img = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    x0, y0 = 11, 6
    img[y0 : y0 + 25, x0 : x0 + 7] = np.rot90(p, k=-1)
    quad = np.asarray([[x0 + 7, y0], [x0 + 7, y0 + 25], [x0, y0 + 25], [x0, y0]], np.float32)
    np.testing.assert_array_equal(geometry.crop_quad(img, quad), p)


def test_crop_rotated_quad_samples_the_right_pixels():
    # A smooth image f(x, y); a 20-degree rotated rectangle. Output pixel (i, j) must hold f
    # at the point (j + 0.5, i + 0.5) of the rectangle, mapped into the image.
    h, w = 200, 260
    yy, xx = np.mgrid[0:h, 0:w] + 0.5

    def f(x, y):
        return 128 + 90 * np.sin(x / 9.0) * np.cos(y / 13.0)

    img = np.clip(f(xx, yy), 0, 255).astype(np.uint8)
    origin, angle, rw, rh = np.asarray([70.0, 40.0]), math.radians(20.0), 120, 30
    ux = np.asarray([math.cos(angle), math.sin(angle)])
    uy = np.asarray([-math.sin(angle), math.cos(angle)])
    quad = np.stack([origin, origin + rw * ux, origin + rw * ux + rh * uy, origin + rh * uy])
    out = geometry.crop_quad(img, quad)
    assert out.shape == (rh, rw)
    jj, ii = np.meshgrid(np.arange(rw) + 0.5, np.arange(rh) + 0.5)
    pts = origin + jj[..., None] * ux + ii[..., None] * uy
    expected = f(pts[..., 0], pts[..., 1])
    assert np.abs(out.astype(np.float64) - expected).mean() < 2.0
    assert np.abs(out.astype(np.float64) - expected).max() < 12.0


def test_crop_degenerate_and_outside_quads():
    img = np.full((20, 30, 3), 7, np.uint8)
    assert geometry.crop_quad(img, rect(5, 5, 5.2, 5.2)).shape == (1, 1, 3)
    out = geometry.crop_quad(img, rect(-10, -4, 45, 12))  # sticks out: edge pixels repeat
    assert out.shape == (16, 55, 3) and (out == 7).all()


def test_widen_quad_axis_aligned_and_identity():
    np.testing.assert_allclose(
        geometry.widen_quad(rect(10, 20, 40, 30), 0.25), rect(7.5, 20, 42.5, 30)
    )
    np.testing.assert_allclose(
        geometry.widen_quad(rect(10, 20, 40, 30), -0.5), rect(15, 20, 35, 30)
    )
    q = np.asarray([[3, 4], [50, 9], [49, 21], [2, 15]], np.float64)
    np.testing.assert_allclose(geometry.widen_quad(q, 0.0), q)


def test_widen_quad_follows_a_tilted_line():
    # A 30-degree rectangle 100 x 20: widened by 0.1 it is the 104 x 20 rectangle whose
    # origin moved 2 units back along the line.
    a = math.radians(30.0)
    ux, uy = np.asarray([math.cos(a), math.sin(a)]), np.asarray([-math.sin(a), math.cos(a)])

    def rotated(origin, w, h):
        return np.stack([origin, origin + w * ux, origin + w * ux + h * uy, origin + h * uy])

    o = np.asarray([40.0, 10.0])
    np.testing.assert_allclose(
        geometry.widen_quad(rotated(o, 100, 20), 0.1), rotated(o - 2 * ux, 104, 20), atol=1e-9
    )


def test_crop_lines_use_the_widened_quads():
    img = np.random.default_rng(4).integers(0, 256, (60, 120, 3), dtype=np.uint8)
    quads = np.stack([rect(20, 10, 90, 30), rect(30, 34, 60, 50)]).astype(np.float32)
    ocr = infer.OCR(
        detector=lambda im: None, recognizer=object(), compilation_cache=False, crop_margin=0.5
    )
    from densenet_jax.preprocess import to_line_image

    lines = ocr.crop_lines(img, quads)
    np.testing.assert_array_equal(lines[0], to_line_image(img[10:30, 10:100]))
    np.testing.assert_array_equal(lines[1], to_line_image(img[34:50, 22:68]))


# ----------------------------------------------------------------------------- pipeline


def check_records(records: list[dict], width: int, height: int) -> None:
    """The JSON line-record contract."""
    for r in records:
        assert set(r) == {"box", "text", "score", "text_score"}
        assert len(r["box"]) == 8 and all(isinstance(v, float) for v in r["box"])
        assert isinstance(r["text"], str) and set(r["text"]) <= set(ALPHABET)
        assert 0.0 <= r["score"] <= 1.0 and 0.0 <= r["text_score"] <= 1.0
        q = np.asarray(r["box"]).reshape(4, 2)
        assert shoelace(q) > 0  # clockwise on screen
        tl, tr, br, bl = q
        assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]
        assert (q[:, 0] >= 0).all() and (q[:, 0] <= width).all()
        assert (q[:, 1] >= 0).all() and (q[:, 1] <= height).all()


def assert_same_records(got: list[dict], expected: list[dict]) -> None:
    """Same boxes and texts; scores equal up to float noise of other batch shapes."""
    assert [(r["box"], r["text"]) for r in got] == [(r["box"], r["text"]) for r in expected]
    for key in ("score", "text_score"):
        np.testing.assert_allclose([r[key] for r in got], [r[key] for r in expected], atol=2e-4)


def test_records_schema_box_order_and_reading_order(ocr):
    img = page(120, 200)
    records = ocr(img)
    # The tiny detector finds one line per 16-px row of the 64 x 107 resized image: 4 rows,
    # mapped back to this image's pixels (x 1.875).
    assert len(records) == 4
    check_records(records, 200, 120)
    tops = [r["box"][1] for r in records]
    assert tops == sorted(tops) and tops[-1] > 60
    assert max(r["box"][2] for r in records) > 150  # lines span the image: original pixels


def test_detect_and_recognize_alone(ocr):
    img = page(96, 160, seed=3)
    det = ocr.detect(img)
    assert det.quads.shape[1:] == (4, 2) and det.scores.shape == (len(det.quads),)
    lines = ocr.crop_lines(img, det.quads)
    assert all(ln.dtype == np.uint8 and ln.ndim == 2 and ln.shape[0] == 32 for ln in lines)
    decoded = ocr.recognize(lines)
    assert [d.text for d in decoded] == [r["text"] for r in ocr(img)]
    assert ocr.recognize([]) == []


def test_batching_gives_the_same_text_as_one_by_one(ocr):
    rng = np.random.default_rng(5)
    lines = [
        rng.integers(
            0, 256, (int(rng.integers(12, 40)), int(rng.integers(10, 300))), dtype=np.uint8
        )
        for _ in range(11)
    ]
    together = ocr.recognize(lines)
    alone = [ocr.recognize([ln])[0] for ln in lines]
    assert [d.text for d in together] == [d.text for d in alone]
    np.testing.assert_allclose([d.score for d in together], [d.score for d in alone], atol=1e-4)
    # Lines of several images recognised together give each image's own records.
    a, b = page(96, 160, seed=1), page(64, 128, seed=2)
    for shared, own in zip(ocr.read_many([a, b]), [ocr(a), ocr(b)], strict=True):
        assert_same_records(shared, own)


def test_unread_lines_are_dropped():
    from densenet_jax.ctc import Decoded

    quads = np.stack([rect(0, 10 * i, 50, 10 * i + 8) for i in range(4)])
    scores = np.float32([0.9, 0.8, 0.7, 0.95])
    texts = [
        Decoded("abc", [1, 2, 3], [0.9, 0.8, 0.7], 0.8),
        Decoded("", [], [], 0.99),
        Decoded(" ", [0], [0.9], 0.9),
        Decoded("x", [4], [0.2], 0.2),
    ]
    read = lambda t: [r["text"] for r in infer.make_records(quads, scores, texts, t)]  # noqa: E731
    assert read(None) == ["abc", "", " ", "x"]
    assert read(0.0) == ["abc", "x"]
    assert read(0.5) == ["abc"]
    kept = infer.make_records(quads, scores, texts, 0.5)[0]
    assert kept["box"] == [0.0, 0.0, 50.0, 0.0, 50.0, 8.0, 0.0, 8.0]
    assert kept["score"] == pytest.approx(0.9) and kept["text_score"] == pytest.approx(0.8)


def test_ocr_min_text_score_filters_what_it_read(
    ocr, tiny_weights, tmp_path, capsys, small_ocr_cli
):
    img = page(120, 200, seed=6)
    everything = ocr(img)
    det, rec = tiny_weights
    t = float(np.median([r["text_score"] for r in everything]))
    filtered = infer.OCR(
        det,
        rec,
        batch_size=8,
        detector_options=SMALL_DET,
        compilation_cache=False,
        min_text_score=t,
    )(img)
    assert filtered == [r for r in everything if r["text"].strip() and r["text_score"] >= t]
    # the command line: a negative --min-text-score keeps every line
    path = write(tmp_path / "p.png", img)
    assert (
        infer.main(
            [
                str(path),
                "--out",
                str(tmp_path / "o"),
                "--no-draw",
                "--quiet",
                "--min-text-score",
                "-1",
                *small_ocr_cli,
            ]
        )
        == 0
    )
    written = json.loads((tmp_path / "o" / "p.json").read_text(encoding="utf-8"))
    assert [r["box"] for r in written["lines"]] == [r["box"] for r in ocr(path)]


def capture_ocr_arguments(monkeypatch) -> dict:
    """Replaces ``infer.OCR`` by a stub that records its keyword arguments and then fails
    as a missing weights file would (``main`` returns 2)."""
    seen = {}

    def fake_ocr(*args, **kwargs):
        seen.update(kwargs)
        raise infer.WeightsError("stop here")

    monkeypatch.setattr(cli, "OCR", fake_ocr)
    return seen


def test_cli_crop_margin_reaches_the_pipeline(monkeypatch, tmp_path):
    assert cli.parse_args(["a.png"]).crop_margin == infer.DEFAULT_CROP_MARGIN
    with pytest.raises(ValueError, match="crop_margin"):
        infer.OCR(
            detector=lambda im: None, recognizer=object(), compilation_cache=False, crop_margin=-0.2
        )
    seen = capture_ocr_arguments(monkeypatch)
    write(tmp_path / "a.png", page(40, 60))
    assert infer.main([str(tmp_path / "a.png"), "--crop-margin", "0.35", "--quiet"]) == 2
    assert seen["crop_margin"] == pytest.approx(0.35)
    with pytest.raises(SystemExit):
        cli.parse_args(["a.png", "--crop-margin", "-0.2"])


def test_cli_reread_scales_reach_the_recognizer(monkeypatch, tmp_path, capsys):
    assert cli.parse_args(["a.png"]).reread_scales is None  # the recogniser's default
    seen = capture_ocr_arguments(monkeypatch)
    write(tmp_path / "a.png", page(40, 60))
    assert infer.main([str(tmp_path / "a.png"), "--quiet"]) == 2
    assert seen["recognizer_options"] is None
    assert infer.main([str(tmp_path / "a.png"), "--reread-scales", "none", "--quiet"]) == 2
    assert seen["recognizer_options"] == {"reread_scales": ()}
    assert infer.main([str(tmp_path / "a.png"), "--reread-scales", "1.3", "--quiet"]) == 2
    assert seen["recognizer_options"] == {"reread_scales": (1.3,)}
    with pytest.raises(SystemExit):
        cli.parse_args(["a.png", "--reread-scales", "wide"])
    assert "--reread-scales" in capsys.readouterr().err


def test_cli_trims_reach_the_recognizer(monkeypatch, tmp_path, capsys):
    assert cli.parse_args(["a.png"]).trims is None  # the recogniser's default
    seen = capture_ocr_arguments(monkeypatch)
    write(tmp_path / "a.png", page(40, 60))
    assert infer.main([str(tmp_path / "a.png"), "--trims", "none", "--quiet"]) == 2
    assert seen["recognizer_options"] == {"trims": ()}
    args = [str(tmp_path / "a.png"), "--trims", "0.1,0.2:0", "--reread-scales", "1.3", "--quiet"]
    assert infer.main(args) == 2
    assert seen["recognizer_options"] == {"reread_scales": (1.3,), "trims": ((0.1, 0.1), (0.2, 0))}
    from densenet_jax.recognizer import TRIMS

    assert cli.parse_args(["a.png", "--trims", "default"]).trims == TRIMS
    with pytest.raises(SystemExit):
        cli.parse_args(["a.png", "--trims", "top"])
    assert "--trims" in capsys.readouterr().err


def test_path_and_array_inputs_agree(ocr, tmp_path):
    img = page(80, 150, seed=4)
    path = write(tmp_path / "p.png", img)
    assert ocr(path) == ocr(img) == ocr(str(path))
    gray = img[..., 0]
    assert ocr(gray) == ocr(np.repeat(gray[..., None], 3, axis=2))


def test_the_pipeline_reads_without_trimmed_views_unless_asked(tiny_weights):
    from densenet_jax.recognizer import TRIMS

    det, rec = tiny_weights
    assert infer.DEFAULT_TRIMS == () and TRIMS
    plain = infer.OCR(det, rec, detector_options=SMALL_DET, compilation_cache=False)
    assert plain.recognizer.trims == ()
    views = infer.OCR(
        det,
        rec,
        detector_options=SMALL_DET,
        recognizer_options={"trims": TRIMS, "reread_scales": ()},
        compilation_cache=False,
    )
    assert views.recognizer.trims == TRIMS and views.recognizer.reread_scales == ()


def test_mode_o_gives_clockwise_boxes(tiny_weights):
    det, rec = tiny_weights
    ocr_o = infer.OCR(det, rec, mode="O", detector_options=SMALL_DET, compilation_cache=False)
    check_records(ocr_o(page(64, 128)), 128, 64)
    with pytest.raises(ValueError, match="mode"):
        infer.OCR(det, rec, mode="X")


def test_every_input_kind(ocr, tmp_path):
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    base = page(90, 150, seed=7)
    write(src / "color.jpg", base)
    write(src / "gray.png", base[..., :1].repeat(3, axis=2))
    cv2.imwrite(str(src / "gray1.png"), base[..., 0])  # a 1-channel file
    rgba = np.dstack([base[..., ::-1], np.full(base.shape[:2], 128, np.uint8)])
    cv2.imwrite(str(src / "rgba.png"), rgba)
    cv2.imwrite(str(src / "deep16.png"), base[..., ::-1].astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 150 x 90, shown turned a quarter: 90 wide, 150 high
    Image.fromarray(base).save(src / "exif.jpg", exif=exif)
    write(src / "bitmap.bmp", base)
    write(src / "scan.tiff", base)
    write(src / "photo.webp", base)
    write(src / "tiny.png", base[:5, :5])
    big = np.full((1800, 3200, 3), 240, np.uint8)
    big[200:260, 100:3000] = 20
    write(src / "big.png", big)

    summary = cli.run([src], ocr, tmp_path / "out", draw=True, quiet=True)
    assert summary.failures == [] and summary.images == 11
    sizes = {"exif": (90, 150), "tiny": (5, 5), "big": (3200, 1800)}
    for f in sorted(src.iterdir()):
        doc = json.loads((tmp_path / "out" / f"{f.stem}.json").read_text(encoding="utf-8"))
        assert doc["image"] == str(f)
        assert (doc["width"], doc["height"]) == sizes.get(f.stem, (150, 90)), f.name
        assert doc["lines"], f.name
        check_records(doc["lines"], doc["width"], doc["height"])
        txt = (tmp_path / "out" / f"{f.stem}.txt").read_text(encoding="utf-8")
        assert txt.splitlines() == [r["text"] for r in doc["lines"]]
        drawn = cv2.imread(str(tmp_path / "out" / f"{f.stem}.jpg"))
        assert drawn is not None and drawn.shape[1] >= drawn.shape[0] // 2
    big_doc = json.loads((tmp_path / "out" / "big.json").read_text(encoding="utf-8"))
    # Detected at 114 x 64, reported in the original 3200 x 1800 pixels.
    assert max(max(r["box"][0::2]) for r in big_doc["lines"]) > 2800
    assert max(max(r["box"][1::2]) for r in big_doc["lines"]) > 1500
    assert cv2.imread(str(tmp_path / "out" / "big.jpg")).shape[1] <= 2 * drawing.DRAW_MAX_SIDE


def test_unique_output_names(ocr, tmp_path):
    names = outputs.output_names
    p = Path
    assert names([p("a/x.png"), p("b/x.jpg"), p("b/y.png")]) == ["a_x", "b_x", "y"]
    assert names([p("d/x.png"), p("d/x.jpg")]) == ["x_png", "x_jpg"]
    assert (
        len(
            {
                n.casefold()
                for n in names([p("d/X.png"), p("d/x.jpg"), p("e/x.png"), p("x_png.png")])
            }
        )
        == 4
    )

    a = write(tmp_path / "a" / "x.png", page(64, 128, seed=1))
    b = write(tmp_path / "b" / "x.jpg", page(64, 128, seed=2))
    summary = cli.run([a, b], ocr, tmp_path / "out", draw=False, quiet=True)
    assert summary.images == 2
    docs = sorted((tmp_path / "out").glob("*.json"))
    assert [d.name for d in docs] == ["a_x.json", "b_x.json"]
    assert [json.loads(d.read_text())["image"] for d in docs] == [str(a), str(b)]
    assert not list((tmp_path / "out").glob("*.jpg"))  # draw=False


def test_output_folder_inside_an_input_folder_is_no_input(ocr, tmp_path):
    write(tmp_path / "x.png", page(64, 128, seed=1))
    for _ in range(2):  # the second run must not read the first run's x.jpg drawing
        summary = cli.run([tmp_path], ocr, tmp_path / "ocr_results", quiet=True)
        assert summary.images == 1 and summary.failures == []
    assert sorted(f.name for f in (tmp_path / "ocr_results").iterdir()) == [
        "x.jpg",
        "x.json",
        "x.txt",
    ]


def test_text_file_list_input(ocr, tmp_path):
    write(tmp_path / "imgs" / "one.png", page(64, 128, seed=1))
    write(tmp_path / "two.png", page(64, 128, seed=2))
    listing = tmp_path / "imgs" / "list.txt"
    listing.write_text(f"# my images\none.png\n\n{tmp_path / 'two.png'}\nmissing.png\n")
    summary = cli.run([listing], ocr, tmp_path / "out", draw=False, quiet=True)
    assert summary.images == 2
    assert sorted(d.name for d in (tmp_path / "out").glob("*.json")) == ["one.json", "two.json"]
    assert len(summary.failures) == 1 and "missing.png" in str(summary.failures[0])


def test_atomic_writes_leave_nothing_behind_on_failure(ocr, tmp_path, monkeypatch):
    write(tmp_path / "in" / "good.png", page(64, 128, seed=1))
    write(tmp_path / "in" / "bad.png", page(128, 64, seed=2))  # tall: the one that fails
    real = drawing.draw_results

    def draw(image, records, *args, **kwargs):
        if image.shape[0] > image.shape[1]:
            raise RuntimeError("drawing exploded")
        return real(image, records, *args, **kwargs)

    monkeypatch.setattr(drawing, "draw_results", draw)
    out = tmp_path / "out"
    summary = cli.run([tmp_path / "in"], ocr, out, quiet=True)
    assert [f.path for f in summary.failures] == [str(tmp_path / "in" / "bad.png")]
    assert "drawing exploded" in str(summary.failures[0])
    assert sorted(f.name for f in out.iterdir()) == ["good.jpg", "good.json", "good.txt"]

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    # Interrupted in the middle of a write: the target is not created, no temp file stays.
    monkeypatch.setattr("ocr_common.io.os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        cli.run([tmp_path / "in" / "good.png"], ocr, tmp_path / "out2", quiet=True)
    assert list((tmp_path / "out2").iterdir()) == []


def test_cli_corrupt_files_are_reported_and_others_written(small_ocr_cli, tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "good.png", page(64, 128, seed=1))
    write(src / "sub" / "fine.jpg", page(64, 128, seed=2))
    (src / "empty.png").write_bytes(b"")
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(200)))
    (src / "notes.png").write_text("not an image at all")
    (src / "readme.md").write_text("not an input: skipped in folders")
    out = tmp_path / "out"
    status = infer.main([str(src), "--out", str(out), "--no-draw", *small_ocr_cli])
    err = capsys.readouterr().err
    assert status == 1
    for name, reason in (
        ("empty.png", "empty"),
        ("corrupt.jpg", "not a readable image"),
        ("notes.png", "not a readable image"),
    ):
        lines = [ln for ln in err.splitlines() if name in ln]
        assert len(lines) == 2, err  # its error line, and again in the summary
        assert reason in lines[0]
    assert "readme.md" not in err
    assert sorted(f.name for f in out.iterdir()) == [
        "fine.json",
        "fine.txt",
        "good.json",
        "good.txt",
    ]
    assert "2 image(s) read" in err and "3 failed" in err
    assert all(k in err for k in ("load", "detect", "recognise"))


def test_cli_success_quiet_and_device(small_ocr_cli, tmp_path, capsys):
    import jax

    write(tmp_path / "a.png", page(64, 128, seed=1))
    status = infer.main(
        [
            str(tmp_path / "a.png"),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            "--device",
            "cpu",
            "--mode",
            "O",
            "--batch-size",
            "4",
            *small_ocr_cli,
        ]
    )
    jax.config.update("jax_default_device", None)  # undo --device for the other tests
    assert status == 0 and capsys.readouterr().err == ""
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == ["a.jpg", "a.json", "a.txt"]


def test_cli_empty_folder_and_missing_path(small_ocr_cli, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt.bak").write_text("x")
    assert infer.main([str(empty), "--out", str(tmp_path / "out"), *small_ocr_cli]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "contains no images" in err
    assert infer.main([str(tmp_path / "nope.jpg"), *small_ocr_cli]) == 2
    assert "nope.jpg: no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_weights_say_what_to_do(tiny_weights, tmp_path, monkeypatch, capsys):
    det, rec = tiny_weights
    missing = tmp_path / "nowhere" / "ctpn.npz"
    image = write(tmp_path / "x.png", page(32, 32))
    assert infer.main([str(image), "--weights-det", str(missing), "--weights-rec", str(rec)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "train.py --model ctpn" in err and "--weights-det" in err
    import densenet_jax.weights

    monkeypatch.setattr(
        densenet_jax.weights, "shipped_weights", lambda: tmp_path / "assets" / "densenet.npz"
    )
    with pytest.raises(WeightsError, match=r"densenet\.npz.*package.*train\.py --model dense"):
        infer.OCR(det_weights=det, compilation_cache=False)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="bad.npz"):
        infer.OCR(bad, rec, compilation_cache=False)


def test_gpu_request_without_gpu_is_a_clear_error(small_ocr_cli, tmp_path, capsys):
    import jax

    try:
        jax.devices("gpu")
        pytest.skip("this machine has a GPU")
    except RuntimeError:
        pass
    with pytest.raises(runtime.DeviceError, match="no GPU"):
        runtime.select_device("gpu")
    write(tmp_path / "a.png", page(32, 32))
    assert infer.main([str(tmp_path / "a.png"), "--device", "gpu", *small_ocr_cli]) == 2
    assert "--device gpu" in capsys.readouterr().err


def test_compilation_cache_settings(tmp_path, monkeypatch):
    import jax

    before = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        assert runtime.enable_compilation_cache() is None  # CACHE_ENV=off (autouse fixture)
        monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "cache"))
        assert runtime.enable_compilation_cache() == tmp_path / "cache"
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
        assert jax.config.jax_persistent_cache_min_compile_time_secs < 1.0
        monkeypatch.delenv(runtime.CACHE_ENV)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        jax.config.update("jax_compilation_cache_dir", None)
        assert runtime.enable_compilation_cache() == tmp_path / "xdg" / "chinese-ocr-jax" / "jax"
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])


def test_draw_results_shows_boxes_and_text():
    img = np.full((60, 200, 3), 255, np.uint8)
    records = [{"box": [20, 10, 180, 10, 180, 50, 20, 50], "text": "中文abc"}]
    out = drawing.draw_results(img, records)
    assert out.shape == (60, 400, 3)
    text_panel = out[12:48, 222:378]
    assert (text_panel.min(axis=2) < 100).mean() > 0.05  # dark glyph pixels inside the box
    assert (out[12:48, 22:178] != 255).any()  # the box is tinted on the image side


def test_import_loads_no_model_and_starts_no_backend():
    code = (
        "import sys, infer; from jax._src import xla_bridge; "
        "assert not xla_bridge.backends_are_initialized(); "
        "assert 'densenet_jax.recognizer' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


class _HalfTurnAwareReader:
    """A stand-in recogniser: a line whose dark part is on its left reads as that part's
    gray level (confidence 0.95), one turned half a turn (dark part on the right) as "?"
    (confidence 0.5), as a real recogniser reads upside-down text: poorly."""

    def __init__(self, upright_confidence=0.95):
        self.calls, self.upright_confidence = 0, upright_confidence
        self.single_readings = 0  # calls with reread=False
        self.single_widths = []  # the widths of the lines they read

    def recognize_lines(self, lines, decoder="greedy", batch_size=32, reread=True):
        from densenet_jax.ctc import Decoded

        self.calls += 1
        self.single_readings += not reread
        self.single_widths += [] if reread else [ln.shape[1] for ln in lines]
        out = []
        for ln in lines:
            third = ln.shape[1] // 3
            left, right = ln[:, :third].mean(), ln[:, -third:].mean()
            if left < right:
                c = self.upright_confidence
                out.append(Decoded(str(int(round(left / 10)) * 10), [1], [c], c))
            else:
                out.append(Decoded("?", [1], [0.5], 0.5))
        return out


def test_upside_down_pages_are_read_turned_in_reading_order():
    """A page turned half a turn reads like the upright page, lines in the same order; an
    upright page is read once; `upside_down=False` keeps the poor reading."""
    from ctpn_jax.detect import Detection

    image = np.full((200, 300, 3), 255, np.uint8)
    rows = [(20, 50), (85, 115), (150, 180)]  # symmetric: a half turn maps rows onto rows
    for (y0, y1), gray in zip(rows, (20, 60, 100), strict=True):
        image[y0:y1, :120] = gray
    quads = np.asarray([rect(0, y0, 300, y1) for y0, y1 in rows], np.float32)

    def detector(rgb):
        return Detection(quads=quads, scores=np.ones(len(quads), np.float32))

    def read(img, confidence=0.95, widths=None, **options):
        reader = _HalfTurnAwareReader(confidence)
        ocr = infer.OCR(
            detector=detector,
            recognizer=reader,
            compilation_cache=False,
            min_text_score=None,
            crop_margin=0.0,
            **options,
        )
        texts = [r["text"] for r in ocr(img)]
        if widths is not None:
            assert sorted(reader.single_widths) == sorted(widths)
        return texts, reader.calls, reader.single_readings

    assert read(image) == (["20", "60", "100"], 1, 0)
    turned = np.ascontiguousarray(image[::-1, ::-1])
    # Read, read turned once to decide, and the turned page read again in full.
    assert read(turned, upside_down_lines=0) == (["20", "60", "100"], 3, 1)
    # The decision on the two widest lines only (the middle one is narrower) decides alike.
    quads[1] = rect(10, 85, 290, 115)
    crops = infer.OCR(
        detector=detector, recognizer=_HalfTurnAwareReader(), compilation_cache=False, crop_margin=0
    ).crop_lines(turned, quads)
    full, narrow = crops[0].shape[1], crops[1].shape[1]
    assert narrow < full == crops[2].shape[1]
    assert read(turned, upside_down_lines=2, widths=[full, full]) == (
        ["20", "60", "100"],
        3,
        1,
    )
    assert read(turned, upside_down=False) == (["?", "?", "?"], 1, 0)
    # Turned, the page reads better (0.75 against 0.5) but not well: it stays as read.
    assert read(turned, confidence=0.75) == (["?", "?", "?"], 2, 1)
    assert infer.page_confidence([]) == 0.0
    assert infer.OCR.__init__.__kwdefaults__["upside_down_lines"] == infer.UPSIDE_DOWN_LINES > 0


def test_widest_picks_the_k_largest_widths_in_page_order():
    rng = np.random.default_rng(0)
    for _ in range(200):
        widths = rng.integers(1, 6, size=rng.integers(0, 10)).tolist()
        k = int(rng.integers(0, 12))
        got = infer.widest(widths, k)
        if k == 0 or k >= len(widths):
            assert got == list(range(len(widths)))
            continue
        # brute force: the first k of the indices ordered by (-width, index)
        expect = sorted(sorted(range(len(widths)), key=lambda i: (-widths[i], i))[:k])
        assert got == expect
    assert cli.parse_args(["a.png", "--no-upside-down"]).upside_down is False
    assert cli.parse_args(["a.png"]).upside_down is True
