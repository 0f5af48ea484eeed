"""Engine pages (`ctpn_jax.data.engine`): the boxes Chromium reports match the text it drew,
tightened to the ink; Debian's manual pages as prose (`ocr_common.prose`)."""

from __future__ import annotations

import numpy as np
import pytest

from ctpn_jax.data import engine
from ctpn_jax.data.labels import DONT_CARE
from ctpn_jax.data.render import page_rng
from ocr_common import prose

SENTENCES = (
    "列出指定文件的信息，默认为当前目录。",
    "如果既没有指定排序方式，也没有指定格式，则按字母排序项目。",
    "必选参数对长短选项同时适用。",
    "与 -l 同时使用时，列出每个文件的作者 2024年3月5日。",
    "不要忽略以点号起始的条目。",
)


# ----------------------------------------------------------------------------- prose


def test_plain_text_of_troff():
    troff = "\n".join(
        [
            '.TH LS 1 2022年9月 "GNU coreutils 9.1" 用户命令',
            ".SH 名称",
            r"ls \- 列出目录内容",
            ".PP",
            r"列出指定“文件”的信息。如果没有指定 \fB\-cftuvSUX\fP 中任何一个，",
            r"也没有指定 \fB\-\-sort\fP，则按字母排序项目\(em完。",
            "",
            r"\fI\,选项\/\fP 与 \e 和\&点",
        ]
    )
    assert prose.plain_text(troff) == [
        "名称",
        "ls - 列出目录内容",
        "列出指定“文件”的信息。如果没有指定 -cftuvSUX 中任何一个，"
        "也没有指定 --sort，则按字母排序项目—完。",
        "选项 与 \\ 和点",
    ]


def test_sentences_split_after_marks_and_share():
    assert prose.split_sentences("第一句。第二句！第三；尾巴") == [
        "第一句。",
        "第二句！",
        "第三；",
        "尾巴",
    ]
    assert prose.cjk_share("ab 中文") == pytest.approx(0.5)
    assert prose.cjk_share("") == 0.0


def test_sentences_from_gzipped_pages(tmp_path):
    import gzip

    (tmp_path / "man1").mkdir()
    page = ".SH 描述\n这是第一句。这是第二句。\n.PP\nplain English only.\n\n本页面由计划提供。\n"
    for name in ("a.1.gz", "b.1.gz"):  # the same footer on two pages is kept once
        (tmp_path / "man1" / name).write_bytes(gzip.compress(page.encode()))
    assert prose.sentences(dirs=(tmp_path,)) == (
        "描述",
        "这是第一句。",
        "这是第二句。",
        "本页面由计划提供。",
    )
    assert prose.sentences(dirs=(tmp_path / "missing",)) == ()


# ----------------------------------------------------------------------------- ink boxes


def test_ink_boxes_tighten_split_and_drop():
    image = np.full((120, 200, 3), 240, np.uint8)
    image[10:30, 20:90] = 20  # line a's ink
    image[36:56, 20:150] = 20  # line b's ink, close below
    image[8:20, 185:200] = 20  # a line running off the page
    image[95:115, 150:195] = (200, 30, 30)  # a red button ...
    image[100:110, 160:185] = 255  # ... with white text filling most of its box
    lines = [
        {"t": "a", "b": [15, 5, 95, 42]},  # the engine's box reaches into b's ink
        {"t": "b", "b": [15, 30, 155, 60]},
        {"t": "blank", "b": [100, 60, 140, 90]},  # no ink: dropped
        {"t": "btn", "b": [155, 98, 190, 112]},
        {"t": "cut", "b": [180, 5, 210, 25]},  # past the right edge: don't care
    ]
    out = engine.ink_boxes(image, lines)
    boxes = {t.text: (t.quad[0].tolist(), t.quad[2].tolist()) for t in out}
    assert boxes["a"] == ([20, 10], [90, 30])
    assert boxes["b"] == ([20, 36], [150, 56])
    assert boxes["btn"] == ([160, 100], [185, 110])
    assert "blank" not in boxes and DONT_CARE in boxes


# ----------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="module")
def pages():
    """Four clean engine pages of each kind drawn with a pip-installed font."""
    if engine.find_chromium() is None:
        pytest.skip("needs Chromium (apt-get install chromium; .ci/run installs it)")
    from ocr_common.fonts import list_fonts

    fonts = list_fonts(system=False)[:2]
    pages = engine.EnginePages(sentences=SENTENCES, fonts=fonts)
    return pages.clean_pages([page_rng(7, i) for i in range(6)])


def _visible_text(page_html: str) -> str:
    """The text of a page's HTML outside <style> and <script>, whitespace removed."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.skip, self.parts = 0, []

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("style", "script")

        def handle_endtag(self, tag):
            self.skip -= tag in ("style", "script")

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(page_html)
    return "".join("".join(parser.parts).split())


@pytest.mark.parametrize("kind", engine.KINDS)
def test_engine_lines_are_the_text_drawn_in_order(kind, tmp_path):
    """The lines the engine reports, read in order up to the first one cut by the page's
    edge, spell the page's text from its start: nothing lost, doubled or reordered."""
    if engine.find_chromium() is None:
        pytest.skip("needs Chromium (apt-get install chromium; .ci/run installs it)")
    from ocr_common.fonts import list_fonts

    font = list_fonts(system=False)[0]
    text, cfg = engine.Text(SENTENCES), engine.EngineConfig()
    sizes = [(700, 900), (500, 400)]
    htmls = [
        engine.page_html(page_rng(3, i), kind, text, font, size, cfg, key=f"p{i}")
        for i, size in enumerate(sizes)
    ]
    laid = engine.lay_out(htmls, sizes, engine.find_chromium(), tmp_path)
    for html, (w, h), (image, lines) in zip(htmls, sizes, laid, strict=True):
        assert image.shape[:2] == (h, w)
        read = []
        for line in engine.ink_boxes(image, lines):
            if line.ignore:
                break
            read.append("".join(line.text.split()))
        assert len(read) >= 3
        assert _visible_text(html).startswith("".join(read))


def test_engine_boxes_cover_the_ink(pages):
    """The ink of a document page lies inside its line boxes, and every box holds ink at
    its edges (tight: the first and last row and column)."""
    for page in (p for p in pages if p.kind == "engine-document"):
        gray = page.image.astype(np.float32).mean(axis=2)
        background = np.median(gray)
        ink = np.abs(gray - background) > 60
        inside = np.zeros_like(ink)
        for line in page.lines:
            (x0, y0), (x1, y1) = line.quad[0].astype(int), line.quad[2].astype(int)
            inside[y0:y1, x0:x1] = True
            box = ink[y0:y1, x0:x1]
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
            assert 4 <= y1 - y0 <= 80, line  # one line of 13-30 px type, not two
        assert ink[~inside].sum() <= 0.002 * ink.sum()


def test_pad_quad_grows_a_tilted_line_by_line_heights():
    angle = np.deg2rad(30)
    right, down = (
        np.array([np.cos(angle), np.sin(angle)]),
        np.array([-np.sin(angle), np.cos(angle)]),
    )
    corners = np.array([[0, 0], [100, 0], [100, 20], [0, 20]], np.float64)
    quad = corners[:, :1] * right + corners[:, 1:] * down + [50, 60]
    grown = engine.pad_quad(quad, along=0.5, across=0.25)
    expect = np.array([[-10, -5], [110, -5], [110, 25], [-10, 25]], np.float64)
    np.testing.assert_allclose(grown, expect[:, :1] * right + expect[:, 1:] * down + [50, 60])


def test_engine_pages_finish_and_write_with_crops(tmp_path, pages):
    """Pages go through the renderer's photo steps, are written in the detector's folder
    format, and their line crops (a margin around each line) are labelled for the
    recogniser's pool."""
    from ctpn_jax.data.labels import find_samples, read_labels
    from ctpn_jax.data.render import PageRenderer, write_page
    from densenet_jax.data.labels import read_tsv_labels

    renderer = PageRenderer()
    for k, page in enumerate(pages[:2]):
        finished = renderer.finish(page_rng(1, k), page.image, page.lines, page.kind)
        write_page(finished, tmp_path, f"engine_0_{k:05d}")
        labels = read_labels(find_samples(tmp_path)[k].label)
        assert [t.text for t in labels] == [t.text for t in finished.lines]
    count = engine.write_pool_crops(tmp_path, progress=False)
    records = read_tsv_labels(tmp_path / "labels.tsv", None)
    texts = [t.text for p in pages[:2] for t in p.lines if not t.ignore]
    assert count == len(records) > 0 and {r.text for r in records} <= set(texts)
    first = engine.write_pool_crops(tmp_path, progress=False)  # again: the same crops
    assert first == count


def test_missing_chromium_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(engine, "find_chromium", lambda: None)
    with pytest.raises(engine.EngineError, match="no Chromium"):
        engine.EnginePages(sentences=SENTENCES, fonts=["x.ttf"])
    with pytest.raises(ValueError, match="manpages-zh"):
        engine.Text([])
