import json

import cv2
import jax
import numpy as np
import pytest

from densenet_jax import evaluate, task
from densenet_jax.metrics import (
    char_class,
    edit_distance,
    edit_operations,
    errors_by_class,
    text_metrics,
)
from densenet_jax.preprocess import stretch_line, trim_line
from densenet_jax.recognizer import Recognizer, parse_reread_scales, parse_trims


def test_metrics_hand_worked():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    m = text_metrics(["中国人", "ab c", ""], ["中国", "abc", "xy"])
    # edits: 1 (insertion) + 0 (spaces ignored) + 2 (deletions) over 2 + 3 + 2 chars
    assert m["cer"] == pytest.approx(3 / 7) and m["exact"] == pytest.approx(1 / 3)


def _apply(target: str, ops: list[tuple[str, str, str]], prediction: str) -> bool:
    """Whether walking `target` with `ops` (matches implied) can produce `prediction`."""

    # Brute force: try every way to interleave the edits with matched characters.
    def walk(i: int, j: int, k: int) -> bool:
        if k == len(ops):
            return target[i:] == prediction[j:]
        op, t, p = ops[k]
        ok = False
        if op == "sub" and i < len(target) and j < len(prediction):
            ok = target[i] == t and prediction[j] == p and t != p and walk(i + 1, j + 1, k + 1)
        if not ok and op == "del" and i < len(target):
            ok = target[i] == t and walk(i + 1, j, k + 1)
        if not ok and op == "ins" and j < len(prediction):
            ok = prediction[j] == p and walk(i, j + 1, k + 1)
        if not ok and i < len(target) and j < len(prediction) and target[i] == prediction[j]:
            ok = walk(i + 1, j + 1, k)
        return ok

    return walk(0, 0, 0)


def test_edit_operations_are_a_minimal_alignment():
    assert edit_operations("abc", "abc") == []
    assert edit_operations("中国人", "中人") == [("del", "国", "")]
    assert edit_operations("W1", "w1x") == [("sub", "W", "w"), ("ins", "", "x")]
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = "".join(rng.choice(list("ab中1"), size=rng.integers(0, 7)))
        p = "".join(rng.choice(list("ab中1"), size=rng.integers(0, 7)))
        ops = edit_operations(t, p)
        assert len(ops) == edit_distance(t, p), (t, p, ops)
        assert _apply(t, ops, p), (t, p, ops)


def test_errors_by_class_add_up_to_the_cer():
    assert [char_class(c) for c in "国W7，.€"] == [
        "hanzi",
        "latin",
        "digit",
        "other",
        "other",
        "other",
    ]
    preds, targets = ["中国人w", "a b1", "", "12，"], ["中国W", "ab7", "xy", "12"]
    by = errors_by_class(preds, targets)
    assert by["hanzi"] == {"chars": 2, "sub": 0, "del": 0, "ins": 1, "cer": 0.5}
    assert by["latin"] == {"chars": 5, "sub": 1, "del": 2, "ins": 0, "cer": 0.6}
    assert by["digit"] == {"chars": 3, "sub": 1, "del": 0, "ins": 0, "cer": pytest.approx(1 / 3)}
    assert by["other"] == {"chars": 0, "sub": 0, "del": 0, "ins": 1, "cer": 0.0}
    edits = sum(v["sub"] + v["del"] + v["ins"] for v in by.values())
    chars = sum(v["chars"] for v in by.values())
    assert edits / chars == pytest.approx(text_metrics(preds, targets)["cer"])
    with pytest.raises(ValueError, match="targets"):
        errors_by_class(["a"], [])


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, small_charset_file):
    from densenet_jax.data.pipeline import LineDataConfig
    from densenet_jax.task import Config

    cfg = Config(
        charset_file=str(small_charset_file),
        growth=4,
        depth=2,
        first_features=16,
        transition_features=16,
        data=LineDataConfig(widths=(96,), system_fonts=False),
    )
    model = task.build_model(cfg)
    variables = task.init_variables(model, cfg, jax.random.key(0))
    return task.export(tmp_path_factory.mktemp("w") / "tiny.npz", cfg, model, variables)


def test_batched_recognition_equals_one_by_one(tiny_weights):
    rec = Recognizer.from_file(tiny_weights)
    rng = np.random.default_rng(0)
    lines = [rng.integers(0, 255, (32, w), dtype=np.uint8) for w in (40, 100, 130, 300, 90)]
    lines.append(rng.integers(0, 255, (64, 120, 3), dtype=np.uint8))  # colour, other height
    batched = rec.recognize(lines, batch_size=4)
    single = [rec.recognize([x])[0] for x in lines]
    for b, s in zip(batched, single, strict=True):
        assert b.ids == s.ids
        np.testing.assert_allclose(b.confidences, s.confidences, rtol=1e-4, atol=1e-5)
    beam = rec.recognize(lines[:2], decoder="beam")
    assert len(beam) == 2
    with pytest.raises(ValueError, match="decoder"):
        rec.recognize(lines, decoder="nope")


def test_lookalike_weight_one_is_the_plain_best_path(tiny_weights):
    from densenet_jax.ctc import greedy_decode
    from densenet_jax.preprocess import pad_lines

    rec = Recognizer.from_file(tiny_weights, lookalike_weight=1.0)
    line = np.random.default_rng(3).integers(0, 255, (32, 128), dtype=np.uint8)
    batch, widths = pad_lines([line], 128)
    logits = rec.logits(batch)[0, : int(rec.model.output_length(int(widths[0])))]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    assert rec.recognize([line])[0].ids == greedy_decode(probs, rec.charset).ids
    with pytest.raises(ValueError, match="lookalike_weight"):
        Recognizer.from_file(tiny_weights, lookalike_weight=0.5)


def test_stretch_line_scales_horizontally_only():
    line = np.full((32, 40), 255, np.uint8)
    line[:, 10:14] = 0  # a dark bar at x 10..13
    wide = stretch_line(line, 1.5)
    assert wide.shape == (32, 60) and wide.dtype == np.uint8
    dark = np.nonzero(wide[16] < 128)[0]
    assert dark.min() >= 14 and dark.max() <= 21  # the bar at 1.5 x (15..20), blurred a pixel
    assert (wide[:, 30:] == 255).all()  # white stays white
    assert stretch_line(line, 1.0) is line
    assert stretch_line(line, 0.01).shape == (32, 8)  # never narrower than MIN_WIDTH
    with pytest.raises(ValueError, match="positive"):
        stretch_line(line, 0)


def test_dense_lines_are_read_again_keeping_the_most_confident_reading(tiny_weights):
    once = Recognizer.from_file(tiny_weights, reread_scales=(), trims=())
    scales, density = (1.25, 1.5), 0.2
    twice = Recognizer.from_file(
        tiny_weights, reread_scales=scales, reread_density=density, reread_below=1.0, trims=()
    )
    rng = np.random.default_rng(5)
    lines = [rng.integers(0, 255, (32, w), dtype=np.uint8) for w in (40, 64, 100, 130, 200, 90)]
    got = twice.recognize(lines, batch_size=4)
    rereads = changed = 0
    for line, r in zip(lines, got, strict=True):
        # Reference: each line alone, every reading made separately, the best score kept
        # (the first reading on ties).
        first = once.recognize([line])[0]
        readings = [first]
        if len(first.ids) > density * once.model.output_length(line.shape[1]):
            readings += [once.recognize([stretch_line(line, s)])[0] for s in scales]
            rereads += 1
        best = max(readings, key=lambda d: d.score)
        assert r.ids == best.ids and r.score == pytest.approx(best.score, rel=1e-5)
        changed += r.ids != first.ids
    assert rereads >= 2 and changed >= 1  # the second readings were made and won somewhere
    # A density no reading reaches: every line read once.
    never = Recognizer.from_file(tiny_weights, reread_density=100.0, trims=()).recognize(lines)
    assert [r.ids for r in never] == [r.ids for r in once.recognize(lines)]


def test_only_dense_lines_read_with_a_score_under_reread_below_are_read_again(tiny_weights):
    scales, density = (1.25, 1.5), 0.2
    once = Recognizer.from_file(tiny_weights, reread_scales=(), trims=())
    always = Recognizer.from_file(
        tiny_weights, reread_scales=scales, reread_density=density, reread_below=1.0, trims=()
    )
    rng = np.random.default_rng(5)
    lines = [rng.integers(0, 255, (32, w), dtype=np.uint8) for w in (40, 64, 100, 130, 200, 90)]
    first, best = once.recognize(lines), always.recognize(lines)
    dense = [always.is_dense(f, ln.shape[1]) for f, ln in zip(first, lines, strict=True)]
    # Lines whose second reading wins; the bar at the most confident of them, so that it is
    # read once (its score is not under the bar) while a less confident one is read again.
    changed = [k for k in range(len(lines)) if dense[k] and best[k].ids != first[k].ids]
    below = max(first[k].score for k in changed)
    gated = Recognizer.from_file(
        tiny_weights, reread_scales=scales, reread_density=density, reread_below=below, trims=()
    )
    got = gated.recognize(lines)
    again = [d and f.score < below for f, d in zip(first, dense, strict=True)]
    assert any(again[k] for k in changed) and not all(again[k] for k in changed)
    for g, f, b, a in zip(got, first, best, again, strict=True):
        want = b if a else f
        assert g.ids == want.ids and g.score == pytest.approx(want.score, rel=1e-5)
    with pytest.raises(ValueError, match="reread_below"):
        Recognizer.from_file(tiny_weights, reread_below=-1.0)


def test_trim_line_cuts_or_pads_rows_and_keeps_the_aspect_ratio():
    line = np.full((32, 64), 255, np.uint8)
    line[:4] = 0  # a dark strip at the top (a neighbouring line's descenders)
    line[12:20, 10:54] = 100  # the text
    cut = trim_line(line, 0.125, 0.0)  # the 4 top rows off: 28 rows scaled back to 32
    assert cut.shape == (32, round(64 * 32 / 28)) and cut.dtype == np.uint8
    rows = np.nonzero((cut < 200).any(axis=1))[0]  # the strip gone, the text taller by 32/28
    assert rows.min() in (8, 9, 10) and rows.max() in (17, 18, 19)  # 8..15 of 28 rows
    assert abs(int(cut[16, 40]) - 100) < 10
    padded = trim_line(line, -0.25, -0.25)  # 8 rows repeated at each edge: 48 -> 32
    assert padded.shape == (32, round(64 * 32 / 48))
    # Reference: the padded image built with numpy, then scaled as to_line_image does.
    ref = np.concatenate([np.repeat(line[:1], 8, 0), line, np.repeat(line[-1:], 8, 0)])
    ref = cv2.resize(ref, (padded.shape[1], 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(padded, ref)
    assert trim_line(line, 0.0, 0.0) is line
    assert trim_line(line, 0.45, 0.45) is line  # fewer than 8 rows would be left
    with pytest.raises(ValueError, match="trim shares"):
        trim_line(line, 1.0, 0.0)


def test_unsure_lines_are_read_again_trimmed_keeping_the_most_confident_reading(tiny_weights):
    trims = ((0.1, 0.1), (-0.1, -0.1), (0.2, 0.0))
    once = Recognizer.from_file(tiny_weights, reread_scales=(), trims=())
    rng = np.random.default_rng(7)
    lines = []
    for w in (40, 64, 100, 130, 200, 90):
        line = np.full((32, w), 255, np.uint8)  # noise ("text") with a dark strip on top
        line[10:22] = rng.integers(0, 255, (12, w))
        line[:4] = rng.integers(0, 80, (4, w))
        lines.append(line)
        line = np.full((32, w), 255, np.uint8)
        line[2:30] = rng.integers(0, 255, (28, w))
        lines.append(line)
    first = once.recognize(lines)
    # Reference: each line alone, each view read separately, the best score kept (the
    # first on ties).
    best = []
    for line, f in zip(lines, first, strict=True):
        views = [f] + [once.recognize([trim_line(line, t, b)])[0] for t, b in trims]
        best.append(max(views, key=lambda d: d.score))
    # The bar at the most confident line that a view improves: that line is read once,
    # the less confident ones that a view improves again.
    changed = [k for k in range(len(lines)) if best[k].score > first[k].score]
    assert len(changed) >= 2
    below = max(first[k].score for k in changed)
    got = Recognizer.from_file(
        tiny_weights, reread_scales=(), trims=trims, trim_below=below
    ).recognize(lines, batch_size=4)
    again = [f.score < below for f in first]
    assert any(again[k] for k in changed) and not all(again[k] for k in changed)
    for g, f, b, a in zip(got, first, best, again, strict=True):
        want = b if a else f
        assert g.ids == want.ids and g.score == pytest.approx(want.score, rel=1e-5)
    with pytest.raises(ValueError, match="trims"):
        Recognizer.from_file(tiny_weights, trims=((0.5, 0.3),))
    with pytest.raises(ValueError, match="trim_below"):
        Recognizer.from_file(tiny_weights, trim_below=-0.5)


def test_trims_are_parsed():
    assert parse_trims("0.05,0.1") == ((0.05, 0.05), (0.1, 0.1))
    assert parse_trims("0.2:0,-0.1") == ((0.2, 0.0), (-0.1, -0.1))
    assert parse_trims("none") == () and parse_trims("") == ()
    for bad in ("0.1,x", "0.1:0.2:0.3"):
        with pytest.raises(ValueError):
            parse_trims(bad)


def test_reread_scales_are_checked():
    assert parse_reread_scales("1.25,1.5") == (1.25, 1.5)
    assert parse_reread_scales("none") == () and parse_reread_scales("") == ()
    for bad in ("1.25,x", "0", "-1"):
        with pytest.raises(ValueError):
            parse_reread_scales(bad)


def test_recognizer_refuses_bad_reread_settings(tiny_weights):
    with pytest.raises(ValueError, match="reread_scales"):
        Recognizer.from_file(tiny_weights, reread_scales=(1.25, 0.0))
    with pytest.raises(ValueError, match="reread_density"):
        Recognizer.from_file(tiny_weights, reread_density=-0.1)


def test_evaluate_command(tmp_path, tiny_weights, capsys):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"l{i}.png"), np.full((32, 80), 255 - 40 * i, np.uint8))
    labels = tmp_path / "lines.tsv"
    # References may hold characters the model cannot output (they count as errors).
    labels.write_text("l0.png\t的一\nl1.png\t是在\nl2.png\t€\n", encoding="utf-8")
    assert (
        evaluate.main(
            [
                "--weights",
                str(tiny_weights),
                "--labels",
                str(labels),
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "lines 3" in out and "CER" in out and (tmp_path / "r.json").is_file()
    assert "CER by kind: hanzi" in out and "(4 chars)" in out and "(1 chars)" in out
    saved = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert saved["by_class"]["hanzi"]["chars"] == 4 and len(saved["predictions"]) == 3
    assert evaluate.main(["--weights", str(tmp_path / "none.npz"), "--labels", str(labels)]) == 2
    assert "none.npz does not exist" in capsys.readouterr().err
    (tmp_path / "bad.tsv").write_text("missing.png\t的\n", encoding="utf-8")
    assert (
        evaluate.main(["--weights", str(tiny_weights), "--labels", str(tmp_path / "bad.tsv")]) == 2
    )
    assert "bad.tsv:1: image" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(
            ["--weights", str(tiny_weights), "--labels", str(labels), "--lookalike-weight", "0"]
        )
    assert "--lookalike-weight must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(
            ["--weights", str(tiny_weights), "--labels", str(labels), "--reread-scales", "1.5,no"]
        )
    assert "--reread-scales" in capsys.readouterr().err
    assert (
        evaluate.main(
            ["--weights", str(tiny_weights), "--labels", str(labels), "--reread-scales", "none"]
        )
        == 0
    )


def _column(text: str, size: int = 40, pitch: int = 50) -> np.ndarray:
    """`text` set vertically (dark on white), one character every `pitch` px."""
    from PIL import Image, ImageDraw

    from ocr_common.fonts import default_font, load_font

    font = load_font(default_font(), size)
    img = Image.new("L", (size + 16, pitch * len(text) + 16), 255)
    draw = ImageDraw.Draw(img)
    for i, c in enumerate(text):
        draw.text((8, 8 + i * pitch), c, font=font, fill=0)
    return np.asarray(img)


def test_stack_vertical_cuts_a_column_into_its_characters():
    from densenet_jax.preprocess import is_vertical, stack_vertical, vertical_lines

    text = "古树精华温度"
    column = _column(text)
    assert is_vertical(column) and not is_vertical(column.T)
    line = stack_vertical(column)
    cell, gap = 32, 32 // 8
    assert line.shape == (32, gap + len(text) * (cell + gap)) and line.dtype == np.uint8
    cells = [line[:, gap + i * (cell + gap) : (i + 1) * (cell + gap)] for i in range(len(text))]
    # Each cell holds its own character: it matches that glyph, cut from the column at its
    # known place, better than any other glyph.
    glyphs = [stack_vertical(_column(c))[:, gap : gap + cell] for c in text]

    def ink_box(x):  # the ink, cropped and scaled to 24 x 24 (placement left out)
        ys, xs = np.nonzero(x < 128)
        return 255.0 - cv2.resize(x[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], (24, 24))

    def similarity(a, b):
        a, b = ink_box(a), ink_box(b)
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    for i, c in enumerate(cells):
        scores = [similarity(c, g) for g in glyphs]
        assert int(np.argmax(scores)) == i, (i, scores)
    # The other readings: the crop turned a quarter either way, as wide lines.
    stacked, cw, ccw = vertical_lines(column)
    assert np.array_equal(stacked, line)
    assert cw.shape[0] == ccw.shape[0] == 32 and cw.shape[1] > 32 * 4
    np.testing.assert_array_equal(cw, ccw[::-1, ::-1])


def test_vertical_crops_are_read_as_their_best_stacked_or_turned_reading(tiny_weights):
    from densenet_jax.preprocess import to_line_image, vertical_lines

    rec = Recognizer.from_file(tiny_weights, reread_scales=())
    rng = np.random.default_rng(8)
    images = [
        rng.integers(0, 255, (200, 40), dtype=np.uint8),  # vertical
        rng.integers(0, 255, (32, 120), dtype=np.uint8),  # horizontal
        _column("古树精华"),  # vertical
        rng.integers(0, 255, (60, 50, 3), dtype=np.uint8),  # squarish: read as it is
    ]
    got = rec.recognize(images)
    for k, image in enumerate(images):
        # Reference: each reading made alone; a non-empty reading beats an empty one, then
        # the higher score wins (the as-is reading on ties).
        readings = [rec.recognize_lines([to_line_image(image)])[0]]
        if k in (0, 2):
            readings += [rec.recognize_lines([x])[0] for x in vertical_lines(image)]
        best = readings[0]
        for r in readings[1:]:
            if r.text and (not best.text or r.score > best.score):
                best = r
        assert got[k].ids == best.ids and got[k].score == pytest.approx(best.score, rel=1e-4)


def test_lines_of_a_bucket_are_batched_with_few_padded_rows(tiny_weights):
    from densenet_jax.recognizer import batch_rows, default_batch_size

    assert {m: batch_rows(m, 8) for m in (0, 1, 3, 5, 6, 7, 8, 20)} == {
        0: [],
        1: [1],
        3: [4],
        5: [4, 1],
        6: [8],
        7: [8],
        8: [8],
        20: [8, 8, 4],
    }
    assert batch_rows(9, 32) == [8, 1] and batch_rows(25, 32) == [32]
    assert batch_rows(7, 6) == [4, 4]  # the cap: the largest power of two <= batch_size
    for m in range(1, 100):
        for cap in (1, 2, 5, 8, 32):
            rows = batch_rows(m, cap)
            assert all(r & (r - 1) == 0 and r <= cap for r in rows)
            assert sum(rows[:-1]) < m <= sum(rows)  # every batch holds a line of its own
            assert sum(rows) - m <= rows[-1] // 4  # at most a quarter of the last is padding
    with pytest.raises(ValueError):
        batch_rows(3, 0)
    assert default_batch_size() == 8  # the tests run on a CPU
    # The batches read as one line at a time does.
    rec = Recognizer.from_file(tiny_weights, reread_scales=())
    rng = np.random.default_rng(11)
    lines = [rng.integers(0, 255, (32, int(w)), dtype=np.uint8) for w in rng.integers(90, 128, 20)]
    together = rec.recognize(lines, batch_size=32)
    for line, r in zip(lines, together, strict=True):
        alone = rec.recognize([line])[0]
        assert r.ids == alone.ids and r.score == pytest.approx(alone.score, rel=1e-4)
