"""Pages laid out by a real layout engine: headless Chromium, with the line boxes from its DOM.

Our renderer (`ctpn_jax.data.render`) places every line itself; real documents, tables and
screenshots come from layout engines, with their line breaking, justification, font
fallback, kerning and table geometry. Here each page is an HTML page (a document, a table or
an app screen, text from Debian's Chinese manual pages, ``ocr_common.prose``, and numbers as
tickets print them) that Chromium lays out; a script in the page reads back every visual
line (one ``Range`` per character, grouped into lines where the engine broke them) and
Chromium takes a screenshot. The boxes are then tightened to the ink in the screenshot, and
the page goes through the renderer's photo steps (surface, crop, rotation, blur, noise, JPEG).

One Chromium call lays out a batch of pages stacked in one tall window and logs their lines
on the console. About 0.45 s a page on this project's 2-core CPU (the ink tightening 0.02
s of it, the rest Chromium), slow next to our renderer, so training reads a pool made
beforehand::

    python -m ctpn_jax.data.engine --out ~/pools/engine --count 2000 [--crops]

writes ``images/`` and ``gt/`` (the detector's ``--data`` folder format) and, with
``--crops``, ``lines/`` and ``labels.tsv`` of line crops for the recogniser.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ctpn_jax.data.labels import DONT_CARE, TextLine
from ctpn_jax.data.render import Page, PageRenderer, page_rng, write_page

KINDS = ("document", "table", "screen")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
LINES_MARK = "ENGINE-LINES:"

# Reads every visual line of the text nodes under each page <div class="pg">: one Range a
# character, a new line where the engine moved down or back. Whitespace ends no line and
# extends no box. Logs the JSON on the console, which Chromium's log (stderr) prints.
LINES_JS = r"""
<script>
function pageLines(pg) {
  const origin = pg.getBoundingClientRect(), out = [];
  const walker = document.createTreeWalker(pg, NodeFilter.SHOW_TEXT, {acceptNode: n =>
    /^(STYLE|SCRIPT)$/.test(n.parentNode.nodeName) ? NodeFilter.FILTER_REJECT
                                                   : NodeFilter.FILTER_ACCEPT});
  let node;
  while ((node = walker.nextNode())) {
    const s = node.textContent;
    let cur = null;
    const flush = () => { if (cur && cur.t.trim()) out.push(cur); cur = null; };
    for (let i = 0; i < s.length; i++) {
      const r = document.createRange();
      r.setStart(node, i); r.setEnd(node, i + 1);
      const b = r.getBoundingClientRect();
      if (/\s/.test(s[i])) { if (cur) cur.t += " "; continue; }
      if (b.width === 0 || b.height === 0) continue;
      const x0 = b.left - origin.left, y0 = b.top - origin.top;
      const x1 = b.right - origin.left, y1 = b.bottom - origin.top;
      if (cur && (y0 > (cur.b[1] + cur.b[3]) / 2 || x0 < cur.b[2] - 2)) flush();
      if (!cur) cur = {t: "", b: [x0, y0, x1, y1]};
      cur.t += s[i];
      cur.b = [Math.min(cur.b[0], x0), Math.min(cur.b[1], y0),
               Math.max(cur.b[2], x1), Math.max(cur.b[3], y1)];
    }
    flush();
  }
  return out.map(l => ({t: l.t.trim(), b: l.b}));
}
const MARK = "__LINES_MARK__";
window.addEventListener("load", () => {
  const pages = Array.from(document.querySelectorAll(".pg")).map(pageLines);
  console.log(MARK + JSON.stringify(pages));
});
</script>
""".replace("__LINES_MARK__", LINES_MARK)


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """What the engine pages look like.

    Attributes:
      kinds, kind_weights: the layouts and how often each is drawn.
      width, height: page size ranges in CSS pixels (= screenshot pixels).
      font_px: body text size range in pixels.
      batch: pages laid out by one Chromium call.
    """

    kinds: tuple[str, ...] = KINDS
    kind_weights: tuple[float, ...] = (0.45, 0.3, 0.25)
    width: tuple[int, int] = (560, 1200)
    height: tuple[int, int] = (560, 1300)
    font_px: tuple[float, float] = (13.0, 30.0)
    batch: int = 8


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None."""
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


# ----------------------------------------------------------------------------- text


def _number(rng: np.random.Generator) -> str:
    """A number as tickets, tables and app screens print it."""
    r = int(rng.integers(8))
    y, m, d = int(rng.integers(1995, 2031)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    if r == 0:
        return f"{y}年{m}月{d}日"
    if r == 1:
        return f"{y}-{m:02d}-{d:02d}"
    if r == 2:
        return f"¥{rng.integers(0, 10**6) / 100:,.2f}"
    if r == 3:
        return f"{rng.integers(0, 10**4) / 100:.2f}"
    if r == 4:
        return f"{rng.integers(1, 100)}%"
    if r == 5:
        return f"1{rng.integers(3, 10)}{rng.integers(0, 10**9):09d}"  # mobile number
    if r == 6:
        return f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}"
    return str(int(rng.integers(1, 10 ** int(rng.integers(1, 7)))))


class Text:
    """Sentences, clauses and short labels drawn from `ocr_common.prose` sentences."""

    def __init__(self, sentences: Sequence[str]):
        if not sentences:
            raise ValueError(
                "no Chinese prose: install Debian's manpages-zh (scripts/install_fonts.sh)"
            )
        self.sentences = list(sentences)

    def sentence(self, rng: np.random.Generator) -> str:
        return self.sentences[int(rng.integers(len(self.sentences)))]

    def paragraph(self, rng: np.random.Generator, count: int) -> str:
        start = int(rng.integers(len(self.sentences)))  # neighbours: one page's topic
        return "".join(self.sentences[(start + k) % len(self.sentences)] for k in range(count))

    def label(self, rng: np.random.Generator, most: int = 8) -> str:
        """A short run of words from a sentence (a heading, a table cell, a menu entry)."""
        words = [w for w in re.split(r"[\s，。、：；！？“”（）,.:;()]+", self.sentence(rng)) if w]
        if not words:
            return "说明"
        word = words[int(rng.integers(len(words)))]
        return word[: int(rng.integers(2, most + 1))]


# ----------------------------------------------------------------------------- pages


def _colour(rng: np.random.Generator, lo: int, hi: int) -> str:
    r, g, b = (int(v) for v in rng.integers(lo, hi, size=3))
    return f"#{r:02x}{g:02x}{b:02x}"


def _style(rng: np.random.Generator, font: Path, cfg: EngineConfig, key: str) -> str:
    """The CSS of page ``#key``: ``font`` (a file, through ``@font-face``) at a random size,
    spacing, weight and colours; Chromium falls back to its own faces for glyphs ``font``
    lacks."""
    size = rng.uniform(*cfg.font_px)
    return (
        f"<style>@font-face {{ font-family: '{key}-face';"
        f" src: url('{font.resolve().as_uri()}') }}"
        f"#{key} {{ font-family: '{key}-face', sans-serif; font-size: {size:.1f}px;"
        f" line-height: {rng.uniform(1.35, 2.0):.2f}; color: {_colour(rng, 0, 90)};"
        f" letter-spacing: {rng.choice([0, 0, 0.03, 0.08]):.2f}em;"
        f" background: {_colour(rng, 215, 256)};"
        f" font-weight: {int(rng.choice([300, 400, 400, 500, 700]))} }}</style>"
    )


def _document(rng: np.random.Generator, text: Text, sel: str) -> str:
    e = html.escape
    level = int(rng.integers(1, 4))
    parts = [f"<h{level}>{e(text.label(rng, 14))}</h{level}>"]
    for _ in range(int(rng.integers(3, 13))):
        if rng.random() < 0.15:
            parts.append(f"<h3>{e(text.label(rng, 10))}</h3>")
        body = text.paragraph(rng, int(rng.integers(1, 5)))
        if rng.random() < 0.3:
            body += f" {_number(rng)}"
        parts.append(f"<p>{e(body)}</p>")
    columns = 2 if rng.random() < 0.25 else 1
    align = rng.choice(["justify", "left"])
    indent = "2em" if rng.random() < 0.5 else "0"
    return (
        f"<div style='column-count: {columns}; column-gap: 3em; text-align: {align}'>"
        f"<style>{sel} p {{ text-indent: {indent}; margin: 0.5em 0 }}</style>"
        + "".join(parts)
        + "</div>"
    )


def _table(rng: np.random.Generator, text: Text, sel: str) -> str:
    e = html.escape
    cols, rows = int(rng.integers(2, 7)), int(rng.integers(5, 25))
    numeric = rng.random(cols) < 0.45
    numeric[0] = False
    border = rng.choice(["1px solid #444", "1px solid #bbb", "none"])
    pad = int(rng.integers(3, 13))
    head = "".join(f"<th>{e(text.label(rng, 6))}</th>" for _ in range(cols))
    body = []
    for r in range(rows):
        shade = " style='background: #eef'" if border == "none" and r % 2 else ""
        cells = (_number(rng) if numeric[c] else text.label(rng, 9) for c in range(cols))
        body.append(f"<tr{shade}>" + "".join(f"<td>{e(v)}</td>" for v in cells) + "</tr>")
    return (
        f"<style>{sel} table {{ border-collapse: collapse }}"
        f" {sel} td, {sel} th {{ border: {border};"
        f" padding: {pad}px {2 * pad}px; text-align: left }}</style>"
        f"<p>{e(text.label(rng, 16))}</p><table><tr>{head}</tr>{''.join(body)}</table>"
        + (f"<p>{e(text.sentence(rng))}</p>" if rng.random() < 0.5 else "")
    )


def _screen(rng: np.random.Generator, text: Text, sel: str) -> str:
    e = html.escape
    bar = _colour(rng, 0, 120)
    accent = _colour(rng, 0, 200)
    items = []
    for _ in range(int(rng.integers(4, 15))):
        icon = _colour(rng, 40, 230)
        sub = _number(rng) if rng.random() < 0.4 else text.label(rng, 16)
        items.append(
            "<div style='display: flex; align-items: center; padding: 0.6em 0;"
            " border-bottom: 1px solid #ddd'>"
            f"<div style='width: 2.2em; height: 2.2em; border-radius: 0.4em; background: {icon};"
            " margin-right: 0.8em; flex: none'></div>"
            f"<div><div>{e(text.label(rng, 12))}</div>"
            f"<div style='font-size: 0.8em; color: #888'>{e(sub)}</div></div></div>"
        )
    buttons = "".join(
        f"<span style='display: inline-block; background: {accent}; color: #fff;"
        f" padding: 0.4em 1.2em; border-radius: 0.3em; margin: 0.6em 0.6em 0 0'>"
        f"{e(text.label(rng, 4))}</span>"
        for _ in range(int(rng.integers(1, 4)))
    )
    return (
        f"<div style='background: {bar}; color: #fff; padding: 0.6em 1em; margin: -1em -1em 1em;"
        f" font-size: 1.1em'>{e(text.label(rng, 10))}</div>"
        + "".join(items)
        + f"<div>{buttons}</div>"
    )


def page_html(
    rng: np.random.Generator,
    kind: str,
    text: Text,
    font: Path,
    size: tuple[int, int],
    cfg: EngineConfig,
    key: str = "p0",
) -> str:
    """The ``<div class="pg" id="{key}">`` of one page of ``kind`` in ``font`` (a font file),
    ``size = (width, height)`` px; its CSS applies to this page only (``#key``)."""
    layout = {"document": _document, "table": _table, "screen": _screen}[kind]
    content = layout(rng, text, f"#{key}")
    w, h = size
    pad = int(rng.integers(16, 70))
    return (
        f"<div class='pg' id='{key}' style='width: {w}px; height: {h}px; overflow: hidden;"
        f" box-sizing: border-box; padding: {pad}px'>{_style(rng, font, cfg, key)}{content}</div>"
    )


def _document_html(pages: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>"
        "body { margin: 0; background: #fff } .pg { position: relative; margin: 0 }"
        "</style></head><body>" + "".join(pages) + LINES_JS + "</body></html>"
    )


# ----------------------------------------------------------------------------- layout


class EngineError(RuntimeError):
    """Chromium is missing or failed."""


def _run(cmd: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EngineError(f"{cmd[0]} failed: {e}") from e
    if done.returncode != 0:
        raise EngineError(f"{cmd[0]} exited with {done.returncode}: {done.stderr[-500:]}")
    return done.stderr


def lay_out(
    pages: Sequence[str], sizes: Sequence[tuple[int, int]], chromium: str, workdir: Path
) -> list[tuple[np.ndarray, list[dict]]]:
    """Chromium's screenshot and lines of ``pages`` (``page_html`` results of ``sizes``).

    Returns:
      per page ``(image (h, w, 3) uint8 RGB, [{"t": text, "b": [x0, y0, x1, y1]}, ...])``,
      the boxes in page pixels as the engine reports them (font ascent to descent).
    """
    path = workdir / "pages.html"
    path.write_text(_document_html(pages), encoding="utf-8")
    width = max(w for w, _ in sizes)
    height = sum(h for _, h in sizes)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
        "--virtual-time-budget=5000",
        "--enable-logging=stderr",
        "--v=0",
    ]
    # One call: the screenshot, and the page's console (the lines) in Chromium's log.
    shot = workdir / "pages.png"
    log = _run([chromium, *flags, f"--screenshot={shot}", path.as_uri()], timeout=120)
    start = log.find(LINES_MARK)
    if start < 0:
        raise EngineError("the page's line script logged nothing (JavaScript disabled?)")
    end = log.find("\n", start)
    message = log[start + len(LINES_MARK) : end if end >= 0 else len(log)]
    lines = json.loads(message[: message.rindex('", source:')])
    image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    if image is None:
        raise EngineError(f"Chromium wrote no screenshot {shot}")
    image = image[..., ::-1]
    out, top = [], 0
    for (w, h), page_lines in zip(sizes, lines, strict=True):
        out.append((np.ascontiguousarray(image[top : top + h, :w]), page_lines))
        top += h
    return out


def ink_boxes(
    image: np.ndarray, lines: Sequence[dict], min_contrast: float = 60.0
) -> list[TextLine]:
    """The engine's line boxes tightened to the ink they hold, as ``TextLine`` quads.

    A box is first cut where it overlaps a neighbour above or below (at the middle of the
    overlap: the engine's boxes span the font's ascent and descent, which overlap at tight
    line spacing), then shrunk to the pixels that differ from the median colour of the
    box's edge by more than ``min_contrast``. Boxes without ink are dropped; boxes cut by
    the page edge keep their text as don't-care (``###``).
    """
    h, w = image.shape[:2]
    boxes = np.asarray([line["b"] for line in lines], np.float64).reshape(-1, 4)
    cut = boxes.copy()
    for i in range(len(boxes)):
        for j in range(len(boxes)):
            a, b = boxes[i], boxes[j]
            x_overlap = min(a[2], b[2]) - max(a[0], b[0])
            if i == j or x_overlap <= 0 or not (a[1] < b[1] < a[3] <= b[3]):
                continue
            middle = (b[1] + a[3]) / 2  # b starts inside a, below a's top
            cut[i, 3] = min(cut[i, 3], middle)
            cut[j, 1] = max(cut[j, 1], middle)
    gray = image.astype(np.float32).mean(axis=2) if image.ndim == 3 else image.astype(np.float32)
    out = []
    for line, (x0, y0, x1, y1), raw in zip(lines, cut, boxes, strict=True):
        clipped = raw[0] < 0 or raw[1] < 0 or raw[2] > w or raw[3] > h
        ix0, iy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        ix1, iy1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
        if ix1 - ix0 < 2 or iy1 - iy0 < 2:
            continue
        patch = gray[iy0:iy1, ix0:ix1]
        ring = np.concatenate([patch[0], patch[-1], patch[:, 0], patch[:, -1]])
        ink = np.abs(patch - np.median(ring)) > min_contrast  # the box's edge is background
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        if not len(rows):
            continue
        qx0, qx1 = ix0 + cols[0], ix0 + cols[-1] + 1
        qy0, qy1 = iy0 + rows[0], iy0 + rows[-1] + 1
        quad = np.float32([[qx0, qy0], [qx1, qy0], [qx1, qy1], [qx0, qy1]])
        out.append(TextLine(quad, DONT_CARE if clipped else line["t"]))
    return out


class EnginePages:
    """Batches of engine pages, each finished by the renderer's photo steps."""

    def __init__(
        self,
        cfg: EngineConfig | None = None,
        renderer: PageRenderer | None = None,
        sentences: Sequence[str] | None = None,
        chromium: str | None = None,
        fonts: Sequence[str | Path] | None = None,
    ):
        """``sentences``: the prose (default ``ocr_common.prose.sentences()``); ``fonts``:
        font files, one drawn per page (default ``ocr_common.fonts.list_fonts()``)."""
        from ocr_common import prose
        from ocr_common.fonts import list_fonts

        self.cfg = cfg or EngineConfig()
        self.renderer = renderer or PageRenderer()
        self.text = Text(prose.sentences() if sentences is None else sentences)
        self.chromium = chromium or find_chromium()
        if self.chromium is None:
            raise EngineError(
                "no Chromium found (apt-get install chromium, or put it on PATH as chromium)"
            )
        self.fonts = list_fonts() if fonts is None else [Path(f) for f in fonts]
        p = np.asarray(self.cfg.kind_weights, np.float64)
        self.kind_p = p / p.sum()

    def clean_pages(self, rngs: Sequence[np.random.Generator]) -> list[Page]:
        """One page a generator, as the engine drew it (tight boxes, no photo steps)."""
        kinds, sizes, pages = [], [], []
        for rng in rngs:
            kind = str(self.cfg.kinds[rng.choice(len(self.cfg.kinds), p=self.kind_p)])
            size = (int(rng.integers(*self.cfg.width)), int(rng.integers(*self.cfg.height)))
            font = self.fonts[int(rng.integers(len(self.fonts)))]
            key = f"p{len(pages)}"
            pages.append(page_html(rng, kind, self.text, font, size, self.cfg, key))
            kinds.append(kind)
            sizes.append(size)
        with tempfile.TemporaryDirectory(prefix="engine-") as tmp:
            laid = lay_out(pages, sizes, self.chromium, Path(tmp))
        return [
            Page(image, ink_boxes(image, lines), f"engine-{kind}")
            for (image, lines), kind in zip(laid, kinds, strict=True)
        ]

    def pages(self, rngs: Sequence[np.random.Generator]) -> list[Page]:
        """``clean_pages`` after the renderer's surface, crop, rotation and photometric steps
        (each page's generator continues into them)."""
        return [
            self.renderer.finish(rng, page.image, page.lines, page.kind, scale=1.0)
            for rng, page in zip(rngs, self.clean_pages(rngs), strict=True)
        ]


def pad_quad(quad: np.ndarray, along: float, across: float) -> np.ndarray:
    """``quad`` (``(4, 2)``, clockwise from the text's top-left) grown by ``along`` line
    heights at both ends and ``across`` line heights above and below, tilt kept."""
    q = np.asarray(quad, np.float64).reshape(4, 2).copy()
    height = 0.5 * (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1]))
    right = q[1] - q[0]
    right /= max(float(np.linalg.norm(right)), 1e-9)
    down = np.array([-right[1], right[0]])  # image y points down: a quarter turn clockwise
    outwards = np.array([-1.0, 1.0, 1.0, -1.0])[:, None]  # left corners left, right right
    downwards = np.array([-1.0, -1.0, 1.0, 1.0])[:, None]  # top corners up, bottom down
    return q + (outwards * right * along + downwards * down * across) * height


def write_crops(
    page: Page, out_dir: Path, stem: str, rng: np.random.Generator, margin=(0.0, 0.3)
) -> list[str]:
    """Line crops of ``page`` as ``lines/<stem>_k.png`` and their ``labels.tsv`` rows in
    ``lines/<stem>.tsv``; returns the rows. Each labelled line's quad is grown by a random
    ``margin`` (line heights, at each side; a detector's boxes are not tight to the ink)."""
    from ocr_common.geometry import crop_quad
    from ocr_common.io import atomic_write_bytes, atomic_write_text

    rows = []
    for k, line in enumerate(page.lines):
        if line.ignore or not line.text.strip():
            continue
        quad = pad_quad(line.quad, *rng.uniform(*margin, size=2))
        crop = crop_quad(page.image, quad)
        if min(crop.shape[:2]) < 4:
            continue
        ok, enc = cv2.imencode(".png", crop[..., ::-1])
        if ok:
            name = f"lines/{stem}_{k:03d}.png"
            atomic_write_bytes(out_dir / name, enc.tobytes())
            rows.append(f"{name}\t{line.text}")
    atomic_write_text(out_dir / "lines" / f"{stem}.tsv", "".join(r + "\n" for r in rows))
    return rows


def write_pool(out_dir: str | Path, count: int, seed: int = 0, progress: bool = True) -> int:
    """Writes ``count`` engine pages under ``out_dir`` (``images/``, ``gt/``); returns the
    number of pages. Pages already written (an earlier, interrupted call) are kept."""
    from tqdm import tqdm

    out = Path(out_dir)
    engine = EnginePages()
    bar = tqdm(total=count, desc="engine pages", unit="page", disable=not progress)
    for start in range(0, count, engine.cfg.batch):
        stop = min(count, start + engine.cfg.batch)
        todo = [
            i
            for i in range(start, stop)
            if not (out / "images" / f"engine_{seed}_{i:05d}.jpg").is_file()
        ]
        if todo:
            for i, page in zip(todo, engine.pages([page_rng(seed, i) for i in todo]), strict=True):
                write_page(page, out, f"engine_{seed}_{i:05d}")
        bar.update(stop - start)
    bar.close()
    return count


def write_pool_crops(out_dir: str | Path, seed: int = 0, progress: bool = True) -> int:
    """Line crops of every page under ``out_dir`` (``write_crops``) and ``labels.tsv`` of
    them all, for the recogniser's ``pool``; returns the number of crops."""
    from tqdm import tqdm

    from ctpn_jax.data.labels import find_samples, read_labels
    from ocr_common.io import atomic_write_text, read_image

    out = Path(out_dir)
    rows = []
    for k, sample in enumerate(tqdm(find_samples(out), desc="crops", disable=not progress)):
        page = Page(read_image(sample.image), read_labels(sample.label), "engine")
        rng = np.random.default_rng([seed, k, 7])
        rows += write_crops(page, out, sample.image.stem, rng)
    atomic_write_text(out / "labels.tsv", "".join(r + "\n" for r in rows))
    return len(rows)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="Lay out pages with headless Chromium (documents, tables, app screens of "
        "Debian's Chinese manual pages) and write them with their line labels."
    )
    ap.add_argument("--out", required=True, help="output folder (images/, gt/; lines/)")
    ap.add_argument("--count", type=int, default=100, help="pages to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--crops",
        action="store_true",
        help="also write the pages' line crops and labels.tsv (the recogniser's pool)",
    )
    args = ap.parse_args(argv)
    try:
        n = write_pool(args.out, args.count, args.seed)
    except EngineError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"{n} pages in {args.out}")
    if args.crops:
        print(f"{write_pool_crops(args.out, args.seed)} line crops in {args.out}/labels.tsv")


if __name__ == "__main__":
    main()
