"""The synthetic page renderer and the data sets it writes."""

import numpy as np
import pytest

from ctpn_jax.data.labels import find_samples, read_labels
from ctpn_jax.data.render import (
    ALL_KINDS,
    KINDS,
    TAX_CODES,
    PageRenderConfig,
    PageRenderer,
    page_rng,
    write_dataset,
)


@pytest.fixture(scope="module")
def renderer():
    return PageRenderer()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_each_kind_renders_labelled_text(renderer, kind):
    page = renderer.render(page_rng(0, ALL_KINDS.index(kind)), kind=kind)
    h, w = page.image.shape[:2]
    assert page.image.dtype == np.uint8 and page.image.ndim == 3 and min(h, w) >= 300
    assert page.kind == kind and len(page.lines) >= 1
    for t in page.lines:
        q = t.quad
        assert q.shape == (4, 2) and t.text.strip()
        assert q[:, 0].min() >= -1 and q[:, 1].min() >= -1
        assert q[:, 0].max() <= w + 1 and q[:, 1].max() <= h + 1
        # text is drawn inside the box: the box region is not a flat colour
        x0, y0 = np.floor(q.min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(q.max(0)).astype(int)
        assert page.image[y0:y1, x0:x1].std() > 3


def test_deterministic(renderer):
    a = renderer.render(page_rng(3, 7))
    b = renderer.render(page_rng(3, 7))
    np.testing.assert_array_equal(a.image, b.image)
    assert [t.text for t in a.lines] == [t.text for t in b.lines]


@pytest.mark.parametrize("fmt", ["json", "icdar2015"])
def test_written_sets_read_back(tmp_path, renderer, fmt):
    write_dataset(tmp_path, 2, seed=1, fmt=fmt, renderer=renderer)
    samples = find_samples(tmp_path)
    assert len(samples) == 2
    page = renderer.render(page_rng(1, 0))
    lines = read_labels(samples[0].label)
    assert [t.text for t in lines] == [t.text for t in page.lines]
    np.testing.assert_allclose(
        np.stack([t.quad for t in lines]), np.stack([t.quad for t in page.lines]), atol=0.01
    )


def _assert_boxes_hold_ink(page):
    h, w = page.image.shape[:2]
    for t in page.lines:
        q = t.quad
        assert q[:, 0].min() >= -1 and q[:, 1].min() >= -1
        assert q[:, 0].max() <= w + 1 and q[:, 1].max() <= h + 1
        if t.text == "###":
            continue
        x0, y0 = np.floor(q.min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(q.max(0)).astype(int)
        assert page.image[y0:y1, x0:x1].std() > 3


def test_pages_on_a_surface_keep_their_boxes_on_the_text():
    from ctpn_jax.data.render import PageRenderConfig

    r = PageRenderer(
        PageRenderConfig(surface_prob=1.0, crop_prob=0.0, kinds=("document",), kind_weights=(1.0,))
    )
    plain = PageRenderer(
        PageRenderConfig(surface_prob=0.0, crop_prob=0.0, kinds=("document",), kind_weights=(1.0,))
    )
    for i in range(3):
        page = r.render(page_rng(5, i))
        _assert_boxes_hold_ink(page)
        # the page is shrunk onto a surface of its own size: same texts, smaller boxes
        ref = plain.render(page_rng(5, i))
        texts = [t.text for t in page.lines]
        assert len(texts) == len(ref.lines)
        # (a line the page edge cuts is don't-care on the page alone, not on the surface)
        kept = [
            (a, b)
            for a, b in zip(page.lines, ref.lines, strict=True)
            if "###" not in (a.text, b.text)
        ]
        assert len(kept) >= 0.8 * len(texts)
        assert all(a.text == b.text for a, b in kept)
        widths = [(np.ptp(a.quad[:, 0]), np.ptp(b.quad[:, 0])) for a, b in kept]
        assert all(0.55 * wb <= wa <= 0.95 * wb for wa, wb in widths)


def test_tracked_text_is_one_box_wider_than_plain_text(renderer):
    from ctpn_jax.data.render import _Canvas

    rng = np.random.default_rng(0)
    c = _Canvas(np.full((200, 900, 3), 255, np.uint8), renderer, rng)
    font = c.font(40, renderer.fonts[0])
    plain = c.text((10, 10), "营业执照", font, (0, 0, 0))
    spaced = c.text((10, 100), "营业执照", font, (0, 0, 0), tracking=30.0)
    assert [t.text for t in c.lines] == ["营业执照", "营业执照"]
    # 3 gaps of 30 px more than the plain text, one box despite gaps wider than split_gap
    assert abs((spaced[2] - spaced[0]) - (plain[2] - plain[0]) - 90) < 2
    ink = np.asarray(c.im)[100:150, int(spaced[0]) : int(spaced[2])].min(axis=0).min(axis=1)
    assert (ink < 128).sum() > 40


def test_ascii_lines_in_a_latin_font_stay_inside_their_box_and_layout():
    from ctpn_jax.data.render import _Canvas
    from ocr_common.fonts import list_fonts, list_latin_fonts

    cjk = list_fonts(system=False)[:1]
    latin = [f for f in list_latin_fonts(system=False) if f.name == "DejaVuSans-Bold.ttf"]
    assert latin, "matplotlib ships DejaVu fonts"
    always = PageRenderer(PageRenderConfig(latin_font_prob=1.0), fonts=cjk, latin_fonts=latin)
    never = PageRenderer(PageRenderConfig(latin_font_prob=0.0), fonts=cjk, latin_fonts=latin)
    drawn = {}
    for name, r in (("latin", always), ("cjk", never)):
        c = _Canvas(np.full((120, 900, 3), 255, np.uint8), r, np.random.default_rng(0))
        font = c.font(40, cjk[0])
        box = c.text((10, 20), "WWW Hello 2024", font, (0, 0, 0))
        ink = np.nonzero(np.asarray(c.im).min(axis=2) < 128)
        # Every ink pixel lies inside the labelled box.
        assert box is not None and [t.text for t in c.lines] == ["WWW Hello 2024"]
        assert box[0] <= ink[1].min() and ink[1].max() <= box[2]
        assert box[1] <= ink[0].min() and ink[0].max() <= box[3]
        drawn[name] = (np.asarray(c.im), font.getlength("WWW Hello 2024"), ink[1].max())
    assert np.abs(drawn["latin"][0].astype(int) - drawn["cjk"][0]).max() > 100  # another face
    # The layout was fitted with the CJK face: the Latin one is never wider.
    assert drawn["latin"][2] <= 10 + drawn["cjk"][1] + 2
    # Text with hanzi keeps the CJK face.
    c = _Canvas(np.full((120, 900, 3), 255, np.uint8), always, np.random.default_rng(0))
    assert c._latin_face("营业 2024", c.font(40, cjk[0]))[0].path == str(cjk[0])


def test_sign_text_reaches_large_sizes_within_the_anchor_range(renderer):
    # Signs photographed up close: text far taller than body text, yet (zoomed-in crops
    # included) never past CTPN's tallest anchor, 283 px, at the training scale.
    from ctpn_jax.preprocess import resize_scale

    heights = []
    for i in range(30):
        page = renderer.render(page_rng(5, i), kind="sign")
        s = resize_scale(*page.image.shape[:2], 600, 1000)
        heights += [float(np.ptp(t.quad[:, 1])) * s for t in page.lines if t.text != "###"]
    assert max(heights) <= 283
    assert sum(h > 120 for h in heights) >= 3


def test_word_spaces_split_small_text_only_at_wide_gaps(renderer):
    from ctpn_jax.data.render import _Canvas

    c = _Canvas(np.full((700, 2400, 3), 255, np.uint8), renderer, np.random.default_rng(0))
    big = c.font(150, renderer.fonts[0])
    c.text((10, 10), "AB CD", big, (0, 0, 0))  # a word space of large lettering
    small = c.font(20, renderer.fonts[0])
    c.text((10, 400), "AB        CD", small, (0, 0, 0))  # a column gap in body text
    space = big.getlength(" ")
    assert 20 < space < 0.8 * 150  # wider than split_gap, narrower than 0.8 em
    assert [t.text for t in c.lines] == ["AB CD", "AB", "CD"]


def test_web_pages_stack_lines_of_other_sizes_tightly_in_separate_boxes(renderer):
    """E-commerce pictures set a headline over lines of other sizes with little leading:
    each line its own box (boxes barely overlap), and such stacked pairs are common."""
    assert "web" not in KINDS and "web" in ALL_KINDS  # the default mix is unchanged
    stacked = 0
    for i in range(12):
        page = renderer.render(page_rng(2, i), kind="web")
        boxes = [(*t.quad.min(0), *t.quad.max(0)) for t in page.lines if t.text != "###"]
        for k, a in enumerate(boxes):
            for b in boxes[k + 1 :]:
                iw = min(a[2], b[2]) - max(a[0], b[0])
                ih = min(a[3], b[3]) - max(a[1], b[1])
                inter = max(iw, 0) * max(ih, 0)
                area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
                assert inter / (area_a + area_b - inter) < 0.2
                ha, hb = a[3] - a[1], b[3] - b[1]
                gap = max(b[1] - a[3], a[1] - b[3])
                if iw > 0 and gap < 0.5 * min(ha, hb) and max(ha, hb) > 1.5 * min(ha, hb):
                    stacked += 1
    assert stacked >= 5


def test_itemised_receipts_label_each_cell_as_its_own_line():
    """With ``receipt_columns`` a receipt prints quantity, prices and tax codes in columns:
    lone digits and codes are lines of their own, apart from their row's other cells; at 0
    (the default) receipts are drawn as before."""
    columns = PageRenderer(PageRenderConfig(receipt_columns=1.0, crop_prob=0.0))
    plain = PageRenderer()
    lone = 0
    for i in range(6):
        page = columns.render(page_rng(5, i), kind="receipt")
        lines = [t for t in page.lines if t.text != "###"]
        for t in lines:
            if t.text.isdigit() and len(t.text) <= 2 or t.text in TAX_CODES:
                lone += 1
                x0, y0 = t.quad.min(0)
                x1, y1 = t.quad.max(0)
                assert x1 - x0 < 3 * (y1 - y0)  # a short cell, not a row
                # no other line of its row runs into it
                for o in lines:
                    if o is not t and min(y1, o.quad[:, 1].max()) > max(y0, o.quad[:, 1].min()):
                        assert o.quad[:, 0].min() >= x1 or o.quad[:, 0].max() <= x0
        before = plain.render(page_rng(5, i), kind="receipt")
        unchanged = PageRenderer(PageRenderConfig(receipt_columns=0.0))
        again = unchanged.render(page_rng(5, i), kind="receipt")
        assert np.array_equal(before.image, again.image)
        assert [t.text for t in before.lines] == [t.text for t in again.lines]
    assert lone >= 20


def test_unknown_page_kind_is_refused():
    with pytest.raises(ValueError, match="unknown page kind 'poster'"):
        PageRenderer(PageRenderConfig(kinds=("document", "poster"), kind_weights=(1, 1)))
