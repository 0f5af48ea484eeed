import dataclasses
import re
import unicodedata

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from densenet_jax.charset import Charset
from densenet_jax.data.labels import LabelFileError, read_labels
from densenet_jax.data.pipeline import (
    EVAL_STREAM,
    TRAIN_STREAM,
    LabeledLines,
    LineDataConfig,
    SynthLines,
    collate,
    pool_lines,
    train_batches,
    widen_for_ctc,
    write_line_set,
)
from densenet_jax.data.render import (
    FULL_WIDTH_FORMS,
    LineRenderConfig,
    LineRenderer,
    dot_matrix,
    faded_print,
    glyph_style,
    poster_lettering,
    printed_forms,
    printer_bitmap,
)
from densenet_jax.preprocess import bucket_width, pad_lines, to_line_image
from ocr_common.corpus import TextSampler, english_words
from ocr_common.fonts import is_monospace, list_latin_fonts, load_font
from ocr_common.textures import luminance

# The recogniser's characters, the alphabet of the samplers that do not choose their own.
ALPHABET = "".join(Charset.default().chars)
# Rendering without any augmentation: the ink must then be exactly the text.
CLEAN = LineRenderConfig(
    font_size=(40, 40),
    spacing=(0.1, 0.1),
    dark_background=0.0,
    colour=0.0,
    margin_y=(0.1, 0.1),
    margin_x=(0.2, 0.2),
    stretch=(1.0, 1.0),
    max_rotation=0.0,
    max_shear=0.0,
    perspective=0.0,
    distractors=0.0,
    blur=0.0,
    low_res=0.0,
    noise=0.0,
    jpeg=0.0,
    ink_crop=0.0,
)


def _ink_columns(line: np.ndarray) -> np.ndarray:
    bg = np.median(line)
    return (np.abs(line.astype(int) - bg) > 60).any(axis=0)


def test_renderer_draws_the_text(pip_fonts):
    r = LineRenderer(pip_fonts[:1], CLEAN)
    rng = np.random.default_rng(0)
    one = r("国", rng)
    four = r("国国国国", rng)
    assert one.dtype == np.uint8 and one.shape[0] == 32 and four.shape[0] == 32
    # Ink inside the line, not at its edges, and four glyphs are about four times wider.
    for line in (one, four):
        cols = np.nonzero(_ink_columns(line))[0]
        assert cols.size > 0 and cols[0] > 0 and cols[-1] < line.shape[1] - 1
    assert 3.0 < four.shape[1] / one.shape[1] < 4.5
    # Four identical glyphs give four separate ink runs.
    runs = np.diff(_ink_columns(four).astype(int))
    assert (runs == 1).sum() == 4
    # Dark text on light ground (the clean config never inverts).
    assert np.median(four) > 150 and four.min() < 80


def test_renderer_augmented_lines_are_valid(pip_fonts):
    r = LineRenderer(pip_fonts)
    s = TextSampler("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出0123")
    rng = np.random.default_rng(1)
    for i in range(20):
        text = s.sample(rng, 6, index=i)
        assert len(text.replace(" ", "")) == 6
        line = r(text, rng)
        assert line.shape[0] == 32 and line.shape[1] >= 8 and line.dtype == np.uint8
        assert line.std() > 5  # something is drawn


def test_camera_effects_change_lines_only_when_switched_on(pip_fonts):
    """Off (the default), the effects draw nothing from the generator: the lines are those
    of a renderer without them. On, they change the pixels and keep the line valid."""
    base = LineRenderConfig()
    off = dataclasses.replace(base, motion_blur=0.0, uneven_light=0.0)
    on = dataclasses.replace(base, motion_blur=1.0, uneven_light=1.0)
    assert (base.motion_blur, base.uneven_light) == (0.0, 0.0)
    texts = ["的一是在不了", "有和人这中大", "0123abc"]

    def lines(cfg):
        r, rng = LineRenderer(pip_fonts[:2], cfg), np.random.default_rng(7)
        return [r(t, rng) for t in texts]

    for a, b in zip(lines(base), lines(off), strict=True):
        np.testing.assert_array_equal(a, b)
    changed = 0
    for a, b in zip(lines(base), lines(on), strict=True):
        assert b.shape[0] == 32 and b.dtype == np.uint8 and b.std() > 5
        changed += a.shape != b.shape or not np.array_equal(a, b)
    assert changed == len(texts)
    assert (on.clean().motion_blur, on.clean().uneven_light) == (0.0, 0.0)


def test_poster_lettering_changes_lines_only_when_switched_on(pip_fonts):
    """Off (the default), poster lettering draws nothing from the generator; on, every line
    changes and stays a valid line."""
    base = LineRenderConfig()
    on = dataclasses.replace(base, poster=1.0)
    assert base.poster == 0.0 and on.clean().poster == 0.0
    texts = ["的一是在不了", "有和人这中大", "0123abc"]

    def lines(cfg, seed):
        r, rng = LineRenderer(pip_fonts[:2], cfg), np.random.default_rng(seed)
        return [r(t, rng) for t in texts]

    off = lines(dataclasses.replace(base, poster=0.0), 3)
    for a, b in zip(lines(base, 3), off, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(lines(base, 3), lines(on, 3), strict=True):
        assert b.shape[0] == 32 and b.dtype == np.uint8 and b.std() > 5
        assert a.shape != b.shape or not np.array_equal(a, b)


def test_poster_lettering_layers_cover_the_glyphs_and_contrast_with_the_ground():
    mask = np.zeros((60, 200), np.float32)
    mask[20:40, 30:170:10] = 1.0  # vertical strokes
    seen = {"bold": 0, "shadow": 0, "outline": 0, "gradient": 0}
    for seed in range(200):
        ground, layers, ink = poster_lettering(mask, 40, np.random.default_rng(seed))
        assert ground.shape == (60, 200, 3) and ground.dtype == np.float32
        letters, fill = layers[-1]
        # The letters hold every glyph pixel; the ink holds the letters (and the outline).
        assert (letters >= mask).all() and (ink >= letters).all()
        for alpha, colour in layers:
            assert alpha.shape == mask.shape and 0 <= alpha.min() and alpha.max() <= 1
            assert np.shape(colour) in [(3,), (60, 1, 3)]
        top = np.reshape(fill, (-1, 3))[0]
        assert abs(luminance(top) - luminance(ground.mean(axis=(0, 1)))) >= 70 or (
            len(layers) > 1  # a contrasting outline may carry the contrast instead
        )
        seen["bold"] += letters.sum() > mask.sum()
        seen["outline"] += (ink > letters).any()
        seen["shadow"] += len(layers) - 1 - int((ink > letters).any())
        seen["gradient"] += np.shape(fill) == (60, 1, 3)
    # Each effect with its probability (0.3, 0.35, 0.45, 0.3 of 200 lines).
    for name, expected in [("bold", 60), ("shadow", 70), ("outline", 90), ("gradient", 60)]:
        assert abs(seen[name] - expected) < 30, (name, seen)


def test_printed_marks_set_lines_as_print_and_are_off_by_default():
    plain = TextSampler(ALPHABET, kind_weights=(0.4, 0.25, 0.1, 0.25))
    zero = TextSampler(ALPHABET, kind_weights=(0.4, 0.25, 0.1, 0.25), printed_marks=0.0)
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    assert [plain.sample(r1, 8, index=i) for i in range(50)] == [
        zero.sample(r2, 8, index=i) for i in range(50)
    ]
    s = TextSampler(ALPHABET, coverage_per_sample=0, printed_marks=1.0)
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(600):
        n = int(rng.integers(2, 13))
        line = s.sample(rng, n)
        assert len(line.replace(" ", "")) == n and set(line) - {" "} <= set(ALPHABET)
        lines.append(line)
    text = "".join(lines)
    for mark in ["【", "】", "《", "》", "——", "…", "****", "～", "●"]:
        assert mark in text, mark
    # Pairs stay whole where the line has room: most opened brackets are closed.
    opened = sum(line.count("【") for line in lines)
    closed = sum(line.count("【") and line.count("】") for line in lines)
    assert closed > 0.6 * opened
    masked = [w for line in lines for w in line.split() if "****" in w]
    assert any(len(w) >= 11 and w[:1].isdigit() and w[-4:].isdigit() for w in masked)


def test_receipt_print_changes_lines_only_when_switched_on(pip_fonts):
    base = LineRenderConfig()
    assert (base.mono_latin, base.dot_matrix, base.faded_print) == (0.0, 0.0, 0.0)
    on = dataclasses.replace(base, mono_latin=1.0, dot_matrix=1.0, faded_print=1.0)
    assert (on.clean().dot_matrix, on.clean().faded_print) == (0.0, 0.0)
    texts = ["的一是在不了", "TOTAL 12.50", "Qty 3"]
    latin = list_latin_fonts(system=False)

    def lines(cfg, seed):
        r, rng = LineRenderer(pip_fonts[:2], cfg, latin), np.random.default_rng(seed)
        return [r(t, rng) for t in texts]

    off = dataclasses.replace(base, mono_latin=0.0, dot_matrix=0.0, faded_print=0.0)
    for a, b in zip(lines(base, 5), lines(off, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(lines(base, 5), lines(on, 5), strict=True):
        assert b.shape[0] == 32 and b.dtype == np.uint8 and b.std() > 3
        assert a.shape != b.shape or not np.array_equal(a, b)


def test_monospace_faces_are_told_from_proportional_ones():
    latin = {f.name: f for f in list_latin_fonts(system=False)}
    assert is_monospace(latin["DejaVuSansMono.ttf"])
    assert not is_monospace(latin["DejaVuSans.ttf"])
    cfg = dataclasses.replace(LineRenderConfig(), latin_font=1.0, mono_latin=1.0)
    r = LineRenderer([latin["DejaVuSans.ttf"]], cfg, list(latin.values()))
    assert r.mono_fonts and all(is_monospace(f) for f in r.mono_fonts)
    rng = np.random.default_rng(0)
    assert all(r._pick_latin_font("TOTAL", rng) in r.mono_fonts for _ in range(20))


def test_dot_matrix_prints_the_glyphs_as_separate_dots():
    mask = np.zeros((240, 600), np.float32)
    mask[60:180, 60:90] = 1.0  # a vertical bar, 120 x 30 px, drawn at size 150
    mask[60:90, 180:540] = 1.0  # a horizontal bar
    out = dot_matrix(mask, 150, np.random.default_rng(1))
    assert out.shape == mask.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    # The dots lie on the glyphs (within a dot's radius) and cover a good part of them.
    near = cv2.dilate(mask, np.ones((19, 19), np.uint8))
    assert out[near == 0].max() == 0
    assert 0.2 < out[mask > 0].mean() < 0.95
    # Separate dots: the bar's column profile has gaps between them.
    n, _ = cv2.connectedComponents((out > 0.5).astype(np.uint8))
    assert n - 1 >= 10


def test_faded_print_lightens_the_ink_and_never_adds_any():
    mask = np.zeros((40, 300), np.float32)
    mask[10:30, 10:290] = 1.0
    means = []
    for seed in range(30):
        out = faded_print(mask, np.random.default_rng(seed))
        assert out.shape == mask.shape and out.dtype == np.float32
        assert (out <= mask + 1e-6).all() and (out[mask == 0] == 0).all()
        means.append(out[mask > 0].mean())
    assert 0.3 < np.mean(means) < 0.95 and np.std(means) > 0.03


def test_glyph_style_bends_and_reweights_the_strokes_near_where_they_were():
    mask = np.zeros((144, 400), np.float32)
    mask[48:96, 48:56] = 1.0  # a vertical stroke, 48 x 8 px, text drawn at size 48
    mask[68:76, 100:352] = 1.0  # a horizontal stroke
    size, moved, heavier, lighter = 48, 0, 0, 0
    for seed in range(40):
        out = glyph_style(mask, size, np.random.default_rng(seed))
        assert out.shape == mask.shape and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 1 + 1e-6
        # The ink stays within the displacement (6%) plus the weight change (4%) of the size.
        reach = int(np.ceil(0.1 * size)) + 1
        near = cv2.dilate(mask, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
        assert out[near == 0].max(initial=0) < 1e-3
        # Most of the stroke is still there: the glyph is bent, not erased.
        assert (out > 0.5).sum() > 0.4 * (mask > 0.5).sum()
        # The straight horizontal stroke's centre line no longer lies on one row.
        rows = [np.average(np.arange(144), weights=out[:, x]) for x in range(110, 340, 10)]
        moved += np.ptp(rows) > 0.5
        ratio = out.sum() / mask.sum()
        heavier += ratio > 1.15
        lighter += ratio < 0.85
    assert moved >= 30 and heavier >= 8 and lighter >= 3


def test_printer_bitmap_sets_the_glyphs_in_whole_square_dots_near_where_they_were(pip_fonts):
    font = load_font(pip_fonts[0], 48)
    img = Image.new("L", (400, 100), 0)
    ImageDraw.Draw(img).text((20, 20), "TOTAL 12.50", font=font, fill=255)
    mask = np.asarray(img, np.float32) / 255
    emphasised = 0
    for seed in range(20):
        out = printer_bitmap(mask, 48, np.random.default_rng(seed), dots=(12, 12))
        assert out.shape == mask.shape and out.dtype == np.float32
        assert set(np.unique(out)) <= {0.0, 1.0}
        # Dots of 4 px (48 / 12): along a row every run of ink or paper between two
        # changes is a whole number of dots long (up to the grid's rounding).
        runs = []
        for row in out[::3]:
            edges = np.flatnonzero(np.diff(row)) + 1
            runs += list(np.diff(edges))
        assert min(runs) >= 3 and np.mean(np.array(runs) % 4 <= 1) > 0.8
        # The ink stays within a dot of the glyphs and covers most of them.
        near = cv2.dilate((mask > 0.1).astype(np.uint8), np.ones((11, 11), np.uint8))
        assert out[near == 0].max(initial=0) == 0
        assert (out * (mask > 0.5)).sum() > 0.7 * (mask > 0.5).sum()
        emphasised += out.sum() > 1.25 * (mask > 0.5).sum()
    assert 1 <= emphasised <= 12


@pytest.mark.parametrize("option", ["glyph_style", "printer_bitmap"])
def test_glyph_options_change_lines_only_when_switched_on(pip_fonts, option):
    base = LineRenderConfig()
    assert getattr(base, option) == 0.0
    on = dataclasses.replace(base, **{option: 1.0})
    assert getattr(on.clean(), option) == 0.0
    texts = ["的一是在不了", "极速发货 TOTAL 12.50"]

    def lines(cfg, seed):
        r, rng = LineRenderer(pip_fonts[:2], cfg), np.random.default_rng(seed)
        return [r(t, rng) for t in texts]

    # Switched on, the option draws from the stream even where it does not fire; switched
    # off it draws nothing, so the lines of earlier recipes stay as they were.
    rare = dataclasses.replace(base, **{option: 1e-12})
    assert any(
        a.shape != b.shape or not np.array_equal(a, b)
        for a, b in zip(lines(base, 3), lines(rare, 3), strict=True)
    )
    for a, b in zip(lines(base, 3), lines(on, 3), strict=True):
        assert b.shape[0] == 32 and b.dtype == np.uint8 and b.std() > 3
        assert a.shape != b.shape or not np.array_equal(a, b)


def test_receipt_lines_are_latin_receipt_text():
    s = TextSampler(ALPHABET, coverage_per_sample=1, receipt_lines=1.0)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(300):
        n = int(rng.integers(1, 13))
        line = s.sample(rng, n, index=i)
        assert len(line.replace(" ", "")) == n and set(line) - {" "} <= set(ALPHABET)
        assert line.isascii()  # no hanzi coverage character inside
        lines.append(line)
    text = " ".join(lines)
    assert sum(c.isupper() for c in text) > 2 * sum(c.islower() for c in text)
    assert any(re.search(r"\d+\.\d\d", line) for line in lines)  # amounts
    assert any(w in text for w in ("TOTAL", "GST", "RM", "QTY", "CASH"))
    off = TextSampler(ALPHABET, receipt_lines=0.0)
    r1, r2 = np.random.default_rng(2), np.random.default_rng(2)
    plain = TextSampler(ALPHABET)
    assert [off.sample(r1, 6, index=i) for i in range(40)] == [
        plain.sample(r2, 6, index=i) for i in range(40)
    ]


def test_ink_crops_fit_the_ink_and_keep_the_line_box_for_flat_text(pip_fonts):
    def ink_rows(line):
        bg = np.median(line)
        return int((np.abs(line.astype(int) - bg) > 60).any(axis=1).sum())

    tight = LineRenderer(pip_fonts[:1], dataclasses.replace(CLEAN, ink_crop=1.0))
    box = LineRenderer(pip_fonts[:1], CLEAN)
    # Ascender to descender is about 1 em of the CJK font's ~1.45 em line box; fitted to the
    # ink, with 10% margins above and below, it fills 1 / 1.2 of the crop (26-27 of 32 rows).
    a, b = tight("Hypo", np.random.default_rng(0)), box("Hypo", np.random.default_rng(0))
    assert 24 <= ink_rows(a) <= 29
    assert ink_rows(b) <= 21
    # Flat text and x-height-only letters keep the line box (the same random draws, so
    # the same line).
    for i, text in enumerate(["一一", "xoxo"]):
        c, d = tight(text, np.random.default_rng(i)), box(text, np.random.default_rng(i))
        assert c.shape == d.shape and np.array_equal(c, d)


def test_text_sampler_covers_the_alphabet():
    alphabet = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年"
    # Without Latin lines (which skip hanzi coverage characters) the cover is complete.
    s = TextSampler(alphabet, kind_weights=(0.6, 0.3, 0.1, 0.0), coverage_per_sample=1)
    rng = np.random.default_rng(0)
    seen = set()
    for i in range(len(alphabet)):
        seen |= set(s.sample(rng, 5, index=i))
    assert seen - {" "} <= set(alphabet)
    assert set(alphabet) <= seen  # every character within len(alphabet) samples


def test_chinese_lines_are_punctuated_as_printed_text():
    from ocr_common.corpus import ZH_PUNCT, ZH_PUNCT_WEIGHTS

    s = TextSampler(ALPHABET, kind_weights=(1.0, 0.0, 0.0, 0.0), coverage_per_sample=0)
    rng = np.random.default_rng(0)
    lines = [s.sample(rng, int(rng.integers(2, 13))) for _ in range(3000)]
    # The charset holds ':' but not '：': such marks are labelled by their ASCII (NFKC) form.
    weights = {
        unicodedata.normalize("NFKC", c) if c not in s.alphabet else c: w
        for c, w in zip(ZH_PUNCT, ZH_PUNCT_WEIGHTS, strict=True)
    }
    assert "：" not in s.alphabet and {":", ";", "?", "!"} <= set(weights) <= set(s.alphabet)
    chars = "".join(lines)
    marks = [c for c in chars if c in weights]
    # About one character in nine (clauses of ~8 characters), in many lines, some at the end.
    assert 0.06 < len(marks) / len(chars) < 0.12
    assert 0.35 < np.mean([any(c in weights for c in line) for line in lines]) < 0.65
    assert 0.05 < np.mean([line[-1] in weights for line in lines]) < 0.2
    # Marks follow their weights; none is outside the alphabet.
    assert set(chars) <= set(s.alphabet)
    for c in "，。、:":
        assert marks.count(c) / len(marks) == pytest.approx(
            weights[c] / sum(weights.values()), abs=0.03
        )


def test_marks_after_hanzi_are_printed_full_width_under_their_ascii_label():
    rng = np.random.default_rng(0)
    assert printed_forms("姓名:王 a:b 好?!", rng, 1.0) == "姓名：王 a:b 好？！"
    # p = 0 prints ASCII; text without such marks is returned without a draw from rng.
    assert printed_forms("姓名:王", rng, 0.0) == "姓名:王"
    state = rng.bit_generator.state
    assert printed_forms("a:b, 中文", rng, 1.0) == "a:b, 中文"
    assert rng.bit_generator.state == state
    # One draw per line: about a fraction p of lines are printed full width, all marks alike.
    out = [printed_forms("甲:乙;丙", rng, 0.8) for _ in range(2000)]
    assert set(out) == {"甲:乙;丙", "甲：乙；丙"}
    assert out.count("甲：乙；丙") / len(out) == pytest.approx(0.8, abs=0.03)
    assert all(
        unicodedata.normalize("NFKC", c) in FULL_WIDTH_FORMS for c in FULL_WIDTH_FORMS.values()
    )


def test_renderer_draws_full_width_marks_wider(pip_fonts):
    # The same draws but the printed form: a full-width colon takes a hanzi's advance.
    full = LineRenderer(pip_fonts[:1], dataclasses.replace(CLEAN, full_width_marks=1.0))
    ascii_ = LineRenderer(pip_fonts[:1], dataclasses.replace(CLEAN, full_width_marks=0.0))
    a, b = full("名:国", np.random.default_rng(0)), ascii_("名:国", np.random.default_rng(0))
    c = ascii_("名国国", np.random.default_rng(0))
    assert a.shape[1] > b.shape[1] and abs(a.shape[1] - c.shape[1]) <= 2


def test_latin_lines_are_english_words_without_hanzi():
    s = TextSampler(ALPHABET, kind_weights=(0.0, 0.0, 0.0, 1.0), coverage_per_sample=1)
    rng = np.random.default_rng(0)
    lines = [s.sample(rng, 12, index=i) for i in range(300)]
    assert all(line.isascii() and len(line.replace(" ", "")) == 12 for line in lines)
    words, cdf = english_words()
    assert len(words) > 1000 and {"the", "value", "function"} <= set(words)
    assert all(w.isalpha() and w.islower() and w.isascii() for w in words)
    assert np.all(np.diff(cdf) > 0) and cdf[-1] == pytest.approx(1.0)
    # Real English words appear (whole, in any case) among the sampled ones.
    seen = {t.strip(".,:;?!()-/%&+#*@'\"").lower() for line in lines for t in line.split()}
    assert len(seen & set(words)) > 100


def test_text_kinds_of_the_data_config_set_the_mix():
    # All-Latin weights give ASCII-only lines; all-Chinese weights give no Latin letter.
    latin = SynthLines(
        LineDataConfig(system_fonts=False, text_kinds=(0, 0, 0, 1)),
        Charset.default(),
        seed=0,
        stream=TRAIN_STREAM,
    )
    zh = SynthLines(
        LineDataConfig(system_fonts=False, text_kinds=(1, 0, 0, 0)),
        Charset.default(),
        seed=0,
        stream=TRAIN_STREAM,
    )
    rng = np.random.default_rng(0)
    assert all(latin.sampler.sample(rng, 8).isascii() for _ in range(50))
    assert not any(
        c.isascii() and c.isalpha() for _ in range(50) for c in zh.sampler.sample(rng, 8)
    )
    for bad in [(1.0, 0.0, 0.0), (1.0, -1.0, 0.0, 0.5), (0, 0, 0, 0)]:
        with pytest.raises(ValueError, match="kind_weights must be 4"):
            TextSampler(ALPHABET, kind_weights=bad)


def test_renderer_draws_ascii_in_a_latin_font_on_the_same_baseline(pip_fonts):
    latin = [f for f in list_latin_fonts(system=False) if f.name == "DejaVuSerif-Bold.ttf"]
    assert latin, "matplotlib ships DejaVu fonts"
    with_latin = LineRenderer(pip_fonts[:1], dataclasses.replace(CLEAN, latin_font=1.0), latin)
    without = LineRenderer(pip_fonts[:1], dataclasses.replace(CLEAN, latin_font=0.0), latin)
    a, b = with_latin("HxH", np.random.default_rng(0)), without("HxH", np.random.default_rng(0))
    assert a.shape[0] == b.shape[0] == 32
    assert a.shape != b.shape or np.abs(a.astype(int) - b).max() > 100  # another face

    # Both faces stand on the CJK font's baseline: "HxH" has no descender, so on the canvas
    # (size 40, before the crop) its last ink row is the baseline, pad + ascent.
    mask, (x0, y0, x1, y1), size = with_latin._draw_text(
        "HxH", np.random.default_rng(0), with_latin.cfg.font_size
    )
    ascent, _ = load_font(pip_fonts[0], size).getmetrics()
    rows = np.nonzero((mask > 0.5).any(axis=1))[0]
    assert abs(rows[-1] + 1 - (y0 + ascent)) <= 1
    # Hanzi-only text never takes the Latin face.
    c, d = with_latin("国国", np.random.default_rng(3)), without("国国", np.random.default_rng(3))
    assert c.shape == d.shape and np.abs(c.astype(int) - d).max() <= 1


def test_write_line_set_round_trips_through_the_label_reader(tmp_path, small_charset):
    cfg = LineDataConfig(system_fonts=False)
    labels = write_line_set(tmp_path / "set", 12, seed=7, cfg=cfg, charset=small_charset)
    records = read_labels(labels, small_charset)
    source = SynthLines(cfg, small_charset, seed=7, stream=EVAL_STREAM)
    assert len(records) == 12
    for i, r in enumerate(records):
        expected = source[i]
        assert r.text == expected["text"] and r.labels == tuple(expected["labels"])
        assert np.array_equal(cv2.imread(str(r.path), cv2.IMREAD_GRAYSCALE), expected["image"])
    ascii_only = read_labels(tmp_path / "set" / "labels-ascii.tsv", small_charset)
    assert [r.text for r in ascii_only] == [r.text for r in records if r.text.isascii()]


def test_line_set_cli_rejects_a_crop_probability_outside_0_1(tmp_path, capsys):
    from densenet_jax.data.pipeline import main

    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "set"), "--count", "2", "--ink-crop", "1.5"])
    assert "--ink-crop must be a probability" in capsys.readouterr().err
    assert not (tmp_path / "set").exists()


def test_line_set_cli_draws_the_asked_lines_and_their_clean_twins(tmp_path):
    from densenet_jax.data.pipeline import main
    from densenet_jax.data.render import LineRenderConfig

    args = [
        "--count",
        "4",
        "--seed",
        "5",
        "--chars",
        "3",
        "3",
        "--text-kinds",
        "1,0,0,0",
        "--width",
        "64",
    ]
    main(["--out", str(tmp_path / "full"), *args])
    main(["--out", str(tmp_path / "clean"), *args, "--clean"])
    full = (tmp_path / "full" / "labels.tsv").read_text(encoding="utf-8").splitlines()
    clean = (tmp_path / "clean" / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert full == clean and len(full) == 4  # the same texts
    images = []
    for row in full:
        name, text = row.split("\t")
        assert len(text) == 3 and all("\u4e00" <= c <= "\u9fff" for c in text)
        pair = [
            cv2.imread(str(tmp_path / d / name), cv2.IMREAD_GRAYSCALE) for d in ("full", "clean")
        ]
        assert all(im.shape[0] == 32 and im.shape[1] <= 64 for im in pair)
        images.append(pair)
    assert any(not np.array_equal(a, b) for a, b in images)
    c = LineRenderConfig().clean()
    assert (c.colour, c.distractors, c.low_res, c.blur, c.noise, c.jpeg) == (0,) * 6
    assert c.ink_crop == LineRenderConfig().ink_crop and c.font_size == LineRenderConfig().font_size


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--chars", "5", "2"], "--chars must be"),
        (["--text-kinds", "1,2"], "--text-kinds must be 4"),
        (["--stretch", "1.2,x"], "numbers separated by commas"),
        (["--stretch", "1.2,0.5"], "--stretch must be LO,HI"),
        (["--width", "4"], "--width must be at least"),
    ],
)
def test_line_set_cli_rejects_bad_shapes_of_lines(tmp_path, capsys, flags, message):
    from densenet_jax.data.pipeline import main

    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "set"), "--count", "2", *flags])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "set").exists()


def test_synth_lines_label_matches_text(small_charset_file, small_charset, pip_fonts):
    cfg = LineDataConfig(widths=(160,), max_chars=6, system_fonts=False)
    src = SynthLines(cfg, small_charset, seed=0, stream=TRAIN_STREAM, fonts=pip_fonts)
    for i in range(5):
        ex = src[i]
        assert small_charset.decode(ex["labels"]) == ex["text"].replace(" ", "")
        assert ex["image"].shape[0] == 32 and ex["image"].shape[1] <= 160
    # A pure function of (seed, index).
    np.testing.assert_array_equal(src[3]["image"], src[3]["image"])
    other = SynthLines(cfg, small_charset, seed=1, stream=TRAIN_STREAM, fonts=pip_fonts)
    assert other[3]["text"] != src[3]["text"] or other[3]["image"].shape != src[3]["image"].shape


def test_non_text_lines_read_as_empty_in_training_only(small_charset, pip_fonts):
    def source(non_text, stream=TRAIN_STREAM):
        cfg = LineDataConfig(widths=(280,), system_fonts=False, non_text=non_text)
        return SynthLines(cfg, small_charset, seed=0, stream=stream, fonts=pip_fonts)

    every, half, never = source(1.0), source(0.5), source(0.0)
    for i in range(4):
        ex = every[i]
        assert ex["text"] == "" and ex["labels"] == []
        assert ex["image"].shape[0] == 32 and 8 <= ex["image"].shape[1] <= 280
        assert ex["image"].dtype == np.uint8
        np.testing.assert_array_equal(ex["image"], every[i]["image"])  # pure in (seed, i)
    # The choice is its own draw: the text lines of a mix are those of a text-only stream.
    mixed = [half[i] for i in range(24)]
    assert 0 < sum(ex["text"] == "" for ex in mixed) < 24
    for i, ex in enumerate(mixed):
        if ex["text"]:
            assert ex["text"] == never[i]["text"]
            np.testing.assert_array_equal(ex["image"], never[i]["image"])
    # Evaluation lines always hold text.
    assert all(source(1.0, EVAL_STREAM)[i]["text"] for i in range(4))
    # Empty labels batch like the others.
    batch = collate([every[0], never[0]], (280,), 48)
    assert batch["label_length"].tolist() == [0, len(never[0]["labels"])]


def test_pool_lines_mix_into_training_lines_by_their_own_draw(tmp_path, small_charset, pip_fonts):
    """`pool_share` of the training lines come from a label file of crops (short lines in
    short groups, long in long ones, lines the charset cannot encode left out); the
    rendered lines of the mix are those of a stream without the pool; eval never pools."""
    (tmp_path / "lines").mkdir()
    texts = {"a.png": "的一是", "b.png": "中国" * 10, "c.png": "的Z一"}  # Z: not in the charset
    for k, name in enumerate(texts):
        cv2.imwrite(str(tmp_path / "lines" / name), np.full((40, 90 + 200 * k), 60, np.uint8))
    label_file = tmp_path / "labels.tsv"
    label_file.write_text("".join(f"lines/{n}\t{t}\n" for n, t in texts.items()), "utf-8")
    short, long = pool_lines(label_file, small_charset, max_chars=12)
    assert [r.text for r in short] == ["的一是"] and [r.text for r in long] == ["中国" * 10]
    assert long[0].labels == tuple(small_charset.encode("中国" * 10))

    def source(share, stream=TRAIN_STREAM):
        cfg = LineDataConfig(
            widths=(280,), system_fonts=False, pool=str(label_file), pool_share=share,
            long_lines=0.5, long_width=800,
        )  # fmt: skip
        return SynthLines(cfg, small_charset, seed=0, stream=stream, fonts=pip_fonts, group_size=4)

    half, never = source(0.5), source(0.0)
    pooled = 0
    for i in range(32):
        ex = half[i]
        if ex["text"] in ("的一是", "中国" * 10):
            pooled += 1
            assert ex["text"] == ("中国" * 10 if half.is_long(i) else "的一是")
            assert ex["image"].shape[0] == 32 and ex["labels"] == small_charset.encode(ex["text"])
        else:
            assert ex["text"] == never[i]["text"]
            np.testing.assert_array_equal(ex["image"], never[i]["image"])
    assert 4 <= pooled <= 28
    assert not any(source(1.0, EVAL_STREAM)[i]["text"] == "的一是" for i in range(4))
    bad = tmp_path / "bad.tsv"
    bad.write_text("lines/c.png\t的Z一\n", "utf-8")
    with pytest.raises(ValueError, match="no line the charset can encode"):
        pool_lines(bad, small_charset, 12)


def test_non_text_crops_vary_in_width_and_texture(pip_fonts):
    r = LineRenderer(pip_fonts[:1], LineRenderConfig())
    rng = np.random.default_rng(0)
    crops = [r.non_text(rng) for _ in range(40)]
    assert all(c.shape[0] == 32 and c.shape[1] >= 8 and c.dtype == np.uint8 for c in crops)
    assert len({c.shape[1] for c in crops}) > 20  # many widths
    assert np.median([c.std() for c in crops]) > 5  # textured, not flat


def _batches(src, cfg, start, n, seed=0):
    it = train_batches(src, cfg, batch_size=4, seed=seed, start_step=start)
    return [next(it) for _ in range(n)]


def test_pipeline_determinism_and_resume(small_charset, pip_fonts):
    cfg = LineDataConfig(
        widths=(96, 192), max_chars=6, max_label_len=10, system_fonts=False, workers=0
    )
    src = SynthLines(cfg, small_charset, seed=0, stream=TRAIN_STREAM, fonts=pip_fonts)
    a = _batches(src, cfg, 0, 3)
    b = _batches(src, cfg, 0, 3)
    resumed = _batches(src, cfg, 2, 1)
    for x, y in zip(a, b, strict=True):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    for k in a[2]:
        np.testing.assert_array_equal(a[2][k], resumed[0][k])
    batch = a[0]
    assert batch["image"].shape[0] == 4 and batch["image"].shape[2] in (96, 192)
    assert batch["image"].dtype == np.uint8 and batch["labels"].shape == (4, 10)
    for i in range(4):
        n = batch["label_length"][i]
        assert (batch["labels"][i, n:] == 0).all() and (batch["labels"][i, :n] > 0).all()
    # Worker processes give the same batches as the in-process pipeline.
    mp = _batches(src, dataclasses.replace(cfg, workers=1), 1, 1)
    for k in a[1]:
        np.testing.assert_array_equal(a[1][k], mp[0][k])


def test_preprocess_shapes():
    img = np.full((64, 300, 3), 255, np.uint8)
    line = to_line_image(img)
    assert line.shape == (32, 150)
    assert to_line_image(img, max_width=100).shape == (32, 100)
    assert to_line_image(np.zeros((100, 3), np.uint8)).shape == (32, 8)
    with pytest.raises(ValueError):
        to_line_image(np.zeros((0, 5), np.uint8))
    assert bucket_width(100, (96, 192)) == 192 and bucket_width(500, (96, 192)) == 576
    batch, widths = pad_lines([np.full((32, 10), 200, np.uint8), np.zeros((32, 20), np.uint8)], 24)
    assert batch.shape == (2, 32, 24, 1) and list(widths) == [10, 20]
    assert (batch[0, :, 10:] == 200).all()


def test_lines_too_narrow_for_ctc_are_widened():
    # "1111" needs 7 steps (a blank between equal neighbours): 40 px (5 steps of 8 px) is
    # stretched to 8 * (7 + 1) px; "12" needs 2 steps and 90 px are plenty.
    assert widen_for_ctc(np.zeros((32, 40), np.uint8), [1, 1, 1, 1]).shape == (32, 64)
    assert widen_for_ctc(np.zeros((32, 40), np.uint8), [1, 2, 1, 2]).shape == (32, 40)
    assert widen_for_ctc(np.zeros((32, 90), np.uint8), [1, 2]).shape == (32, 90)
    assert widen_for_ctc(np.zeros((32, 4), np.uint8), []).shape == (32, 8)  # a non-text line


# -- label files -------------------------------------------------------------------------------
def _write_image(path, value=128):
    cv2.imwrite(str(path), np.full((32, 64), value, np.uint8))


def test_read_original_and_tsv_formats(tmp_path, small_charset):
    (tmp_path / "images").mkdir()
    _write_image(tmp_path / "images" / "a.jpg")
    (tmp_path / "data_train.txt").write_text("a.jpg 1 2 3\n", encoding="utf-8")
    [rec] = read_labels(tmp_path / "data_train.txt", small_charset)
    assert rec.labels == (1, 2, 3) and rec.text == "的一是"
    _write_image(tmp_path / "b.png")
    (tmp_path / "lines.tsv").write_text("\ufeffb.png\t的一 是\n\n", encoding="utf-8")
    [rec] = read_labels(tmp_path / "lines.tsv", small_charset)
    assert rec.labels == (1, 2, 3) and rec.path == tmp_path / "b.png"
    ex = LabeledLines([rec], LineDataConfig(widths=(96,)))[0]
    assert ex["image"].shape == (32, 64) and ex["labels"] == [1, 2, 3]


@pytest.mark.parametrize(
    "content,message",
    [
        ("a.jpg\n", "data_train.txt:1: expected 'image k1 k2"),
        ("a.jpg 1 x\n", "data_train.txt:1: class ids must be integers"),
        ("a.jpg 1 2\nmissing.jpg 1\n", "data_train.txt:2: image"),
        ("a.jpg 1 99999\n", "data_train.txt:1: class ids [99999] outside"),
        ("", "no labelled lines"),
    ],
)
def test_original_format_errors(tmp_path, small_charset, content, message):
    _write_image(tmp_path / "a.jpg")
    (tmp_path / "data_train.txt").write_text(content, encoding="utf-8")
    with pytest.raises(LabelFileError) as e:
        read_labels(tmp_path / "data_train.txt", small_charset)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "content,message",
    [
        ("a.jpg\t的\nb.jpg 的\n", "lines.tsv:2: expected 'path<TAB>text'"),
        ("a.jpg\t的😀\n", "lines.tsv:1: characters not in the charset: '😀'"),
        ("nope.jpg\t的\n", "lines.tsv:1: image"),
        ("a.jpg\t \n", "lines.tsv:1: empty text"),
    ],
)
def test_tsv_format_errors(tmp_path, small_charset, content, message):
    _write_image(tmp_path / "a.jpg")
    (tmp_path / "lines.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(LabelFileError) as e:
        read_labels(tmp_path / "lines.tsv", small_charset)
    assert message in str(e.value)


def test_missing_and_non_utf8_label_files(tmp_path, small_charset):
    with pytest.raises(LabelFileError, match="does not exist"):
        read_labels(tmp_path / "none.txt", small_charset)
    (tmp_path / "latin1.tsv").write_bytes("a.jpg\t\xe9\n".encode("latin-1"))
    with pytest.raises(LabelFileError, match="not UTF-8"):
        read_labels(tmp_path / "latin1.tsv", small_charset)


def test_long_line_batches_are_whole_and_leave_the_short_stream_as_it_was(small_charset, pip_fonts):
    base = LineDataConfig(
        widths=(160,),
        max_chars=6,
        system_fonts=False,
        non_text=0.0,
        text_kinds=(1.0, 0.0, 0.0, 0.0),
        workers=0,
    )
    cfg = dataclasses.replace(base, long_lines=0.5, long_chars=(14, 18), long_width=480)
    src = SynthLines(cfg, small_charset, seed=0, stream=TRAIN_STREAM, fonts=pip_fonts, group_size=4)
    plain = SynthLines(base, small_charset, seed=0, stream=TRAIN_STREAM, fonts=pip_fonts)
    groups = [[src.is_long(g * 4 + k) for k in range(4)] for g in range(8)]
    assert all(len(set(g)) == 1 for g in groups)  # a group is all long or all short
    assert 0 < sum(g[0] for g in groups) < 8
    batches = _batches(src, cfg, 0, 8)
    for g, batch in zip(groups, batches, strict=True):
        lengths = batch["label_length"]
        if g[0]:
            assert (lengths >= 14).all() and (lengths <= 18).all()
            assert batch["image"].shape[2] == 480 and (batch["width"] <= 480).all()
        else:
            assert (lengths >= 2).all() and (lengths <= 6).all()
            assert batch["image"].shape[2] == 160
    # The short lines are those of a stream without long batches; evaluation has none.
    for i in range(32):
        if not src.is_long(i):
            assert src[i]["text"] == plain[i]["text"]
    evaluation = SynthLines(
        cfg, small_charset, seed=0, stream=EVAL_STREAM, fonts=pip_fonts, group_size=4
    )
    assert not any(evaluation.is_long(i) for i in range(64))


def test_poster_hollow_and_extruded_lettering():
    """Hollow letters keep only a contour inside the glyphs (thick strokes lose their
    middle); extruded letters gain a darker solid side on one side of them, which the ink
    covers; both off draw the same letters from the same generator state."""
    mask = np.zeros((80, 200), np.float32)
    mask[20:60, 30:170:20] = 1.0
    for x in range(30, 170, 20):
        mask[20:60, x : x + 12] = 1.0  # strokes 12 px wide
    for seed in range(20):
        plain = poster_lettering(mask, 40, np.random.default_rng(seed))
        off = poster_lettering(mask, 40, np.random.default_rng(seed), hollow=0.0, extrude=0.0)
        np.testing.assert_array_equal(plain[0], off[0])
        for (a, _), (b, _) in zip(plain[1], off[1], strict=True):
            np.testing.assert_array_equal(a, b)

        _, layers, ink = poster_lettering(mask, 40, np.random.default_rng(seed), hollow=1.0)
        contour = layers[-1][0]
        bold = plain[1][-1][0]  # the same letters before hollowing (same draws up to here)
        assert (contour <= bold + 1e-6).all() and 0 < contour.sum() < 0.8 * bold.sum()
        assert contour[40, 36] == 0.0 and bold[40, 36] == 1.0  # a stroke's middle is open
        assert (ink >= bold).all()  # the ink still spans the whole letters

        _, layers, ink = poster_lettering(mask, 40, np.random.default_rng(seed), extrude=1.0)
        letters, fill = layers[-1]
        top = np.reshape(fill, (-1, 3))[0]  # the fill before any gradient (t = 0 at the top)
        if top.sum() < 30:
            continue  # a black fill: its darker side is black too, nothing to tell apart
        # The side: the layer in the fill's colour darkened by 0.25-0.6.
        side = [
            a
            for a, c in layers[:-1]
            if np.shape(c) == (3,)
            and 0.25 - 1e-3 <= c.sum() / top.sum() <= 0.6 + 1e-3
            and np.allclose(c, top * c.sum() / top.sum(), atol=1e-3)
        ]
        assert side, "an extruded side in the fill's darker colour"
        outside = side[0] * (1 - letters)
        assert outside.sum() >= 0.03 * 40 * 40  # at least (1.2 px of depth) x (40 px strokes)
        assert (ink >= np.maximum(letters, side[0]) - 1e-6).all()


def test_small_text_is_drawn_small_and_enlarged_by_the_readers_path(pip_fonts):
    """Off (the default) nothing is drawn from the generator. On, a line is set at a small
    font size and enlarged to 32 rows only at the end, so it holds no detail finer than its
    small grid: shrunk to 16 rows and enlarged again by `to_line_image` it hardly changes,
    while a line drawn large loses its fine strokes that way."""
    assert LineRenderConfig().small_text == 0.0
    texts = ["的一是在不了", "有和人这中大", "贵州省遵义市", "0123abcXYZ"]
    off = dataclasses.replace(CLEAN, small_font_size=(11, 11))
    on = dataclasses.replace(CLEAN, small_text=1.0, small_font_size=(11, 13))

    def lines(cfg, seed=5):
        r, rng = LineRenderer(pip_fonts[:1], cfg), np.random.default_rng(seed)
        return [r(t, rng) for t in texts]

    for a, b in zip(lines(CLEAN), lines(off), strict=True):
        np.testing.assert_array_equal(a, b)

    def lost_detail(line):
        w16 = max(8, line.shape[1] // 2)
        small = cv2.resize(line, (w16, 16), interpolation=cv2.INTER_AREA)
        again = cv2.resize(to_line_image(small), (line.shape[1], 32))
        return np.abs(again.astype(float) - line).mean()

    large, small = lines(CLEAN), lines(on)
    for text, a, b in zip(texts, large, small, strict=True):
        assert b.shape[0] == 32 and b.dtype == np.uint8
        assert _ink_columns(b).sum() > 0.4 * _ink_columns(a).sum(), text  # the text is there
        assert lost_detail(b) < 0.6 * lost_detail(a), text


def test_capital_lines_set_whole_latin_lines_in_capitals_only_when_switched_on():
    latin = (0.0, 0.0, 0.0, 1.0)
    plain = TextSampler(ALPHABET, kind_weights=latin, coverage_per_sample=0)
    off = TextSampler(ALPHABET, kind_weights=latin, coverage_per_sample=0, capital_lines=0.0)
    on = TextSampler(ALPHABET, kind_weights=latin, coverage_per_sample=0, capital_lines=1.0)

    def lines(s):
        rng = np.random.default_rng(4)
        return [s.sample(rng, 14) for _ in range(200)]

    assert lines(plain) == lines(off)  # off: nothing drawn, the stream of earlier recipes
    capitals = lines(on)
    assert all(len(t.replace(" ", "")) == 14 and set(t) <= set(ALPHABET) | {" "} for t in capitals)
    assert not any(c.islower() for t in capitals for c in t)
    assert sum(any(c.islower() for c in t) for t in lines(plain)) > 150  # mixed case otherwise
    # The same words: a first line in capitals is the plain first line, upper-cased.
    for seed in range(5):
        a = plain.sample(np.random.default_rng(seed), 10)
        assert on.sample(np.random.default_rng(seed), 10) == a.upper(), a


def test_line_case_sets_a_latin_lines_case_as_a_whole_only_when_switched_on():
    """Word by word (the default) a fifth of the words are in capitals, so dictionary words
    in capitals sit among small ones; cased as a line, no dictionary word is in capitals
    (codes such as "AB-123" keep theirs), and every line's first word is capitalised or
    the line is in small letters as drawn."""
    latin = (0.0, 0.0, 0.0, 1.0)
    plain = TextSampler(ALPHABET, kind_weights=latin, coverage_per_sample=0)
    off = TextSampler(ALPHABET, kind_weights=latin, coverage_per_sample=0, line_case=0.0)
    on = TextSampler(ALPHABET, kind_weights=latin, coverage_per_sample=0, line_case=1.0)
    vocabulary = set(english_words()[0])

    def lines(s):
        rng = np.random.default_rng(6)
        return [s.sample(rng, 16) for _ in range(300)]

    def shouted(line):  # dictionary words of 3+ letters set in capitals
        words = [t.strip(".,:;?!()-/%&+#*@'\"") for t in line.split()]
        return [w for w in words if len(w) >= 3 and w.isupper() and w.lower() in vocabulary]

    assert lines(plain) == lines(off)  # off: nothing drawn, the stream of earlier recipes
    assert sum(bool(shouted(t)) for t in lines(plain)) > 30  # 51 of 300 with this seed
    cased = lines(on)
    assert all(len(t.replace(" ", "")) == 16 for t in cased)
    assert not any(shouted(t) for t in cased)
    titled = sum(all(w[:1].isupper() for w in t.split() if w[:1].isalpha()) for t in cased)
    assert 0.2 < titled / len(cased) < 0.6  # title case (30%) and one-word sentence lines


def test_prose_lines_are_stretches_of_the_given_prose_only_when_switched_on():
    sentences = [
        "打印机名和要恢复的打印任务号：",
        "如果指定一个目录作为参数，",
        "就好像提供了启动参数一样。",
    ]
    zh = (1.0, 0.0, 0.0, 0.0)
    plain = TextSampler(ALPHABET, kind_weights=zh, coverage_per_sample=0)
    off = TextSampler(ALPHABET, kind_weights=zh, coverage_per_sample=0, prose=sentences)
    on = TextSampler(
        ALPHABET, kind_weights=zh, coverage_per_sample=0, prose=sentences, prose_lines=1.0
    )

    def lines(s, n):
        rng = np.random.default_rng(2)
        return [s.sample(rng, n) for _ in range(60)]

    assert lines(plain, 6) == lines(off, 6)  # off: nothing drawn, the stream unchanged
    # The text as the alphabet holds it ('：' folded to ':'), twice over for a wrap-around.
    text = "".join(sentences).replace("：", ":")
    starts = 0
    for n in (1, 6, 30):
        for line in lines(on, n):
            assert len(line) == n and line in text + text, line
            starts += any(line.startswith(s[:n].replace("：", ":")) for s in sentences)
    assert starts > 30  # half the lines start a sentence
    with pytest.raises(ValueError, match="manpages-zh"):
        TextSampler(ALPHABET, kind_weights=zh, prose_lines=0.5)


def test_neighbour_lines_put_other_lines_ink_at_the_crops_edge(pip_fonts):
    """Clean dark-on-light lines: without neighbours the rows at the crop's top and bottom
    edges rarely hold ink; with them most crops take in a strip of another line there."""
    base = dataclasses.replace(LineRenderConfig().clean(), dark_background=0.0, ink_crop=0.0)
    assert base.neighbour_lines == 0.0
    on = dataclasses.replace(base, neighbour_lines=1.0)
    assert on.clean().neighbour_lines == 0.0

    def edge_ink(cfg):
        r, rng = LineRenderer(pip_fonts[:2], cfg), np.random.default_rng(4)
        lines = [r("的一是在不了有", rng) for _ in range(40)]
        for line in lines:
            assert line.shape[0] == 32 and line.dtype == np.uint8
        return np.mean([min(ln[:3].min(), ln[-3:].min()) < 110 for ln in lines])

    assert edge_ink(base) < 0.2 and edge_ink(on) > 0.6
    # Switched on, the draw is made even where no neighbour is drawn: off draws nothing.
    rare = dataclasses.replace(base, neighbour_lines=1e-12)
    r = LineRenderer(pip_fonts[:2], base)
    s = LineRenderer(pip_fonts[:2], rare)
    a = [r("的一是在", np.random.default_rng(k)) for k in range(3)]
    b = [s("的一是在", np.random.default_rng(k)) for k in range(3)]
    assert any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, b, strict=True))
