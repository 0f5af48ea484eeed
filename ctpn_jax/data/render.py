"""Synthetic pages with line-level ground truth for training and testing the detector.

Seven kinds of page, each a plain layout routine over one canvas:

- ``document``: title, paragraphs in one or two columns, headings, page numbers;
- ``form``: a ruled table of short fields plus "label: value" lines with underlines;
- ``receipt``: a narrow slip, item names left and prices right, dashed rules, a barcode;
- ``sign``: a few lines of large text on a coloured panel, stronger rotation;
- ``screenshot``: a title bar, a sidebar menu, list rows with icons, buttons, input boxes;
- ``card``: an ID / bank / member card photographed on a busy surface: security line
  patterns, a portrait, "label value" rows, a long number;
- ``web`` (only where ``kinds`` names it): an e-commerce product picture: a photograph or
  colour field, a product, a large headline over tightly stacked lines of other sizes,
  text on bands, outlined or shadowed, a price and round badges.

Every page gets a background texture (paper noise, gradients, ruled paper, blotches,
security line patterns), text in several sizes and colours, distractors that are not text
(lines, boxes, circles, stamps, barcodes, hatching, photos), a slight rotation of the whole
page and photometric noise (blur, noise, JPEG).  Some pages are laid on a busy surface
(fabric, wood grain, stone, tiles, a blurred scene), as in photos of a sheet or a card on a
table: texture that a detector must learn is not text.  A text line whose words are
separated by a wide space (over 20 px and 0.8 em) is labelled as separate boxes, since
CTPN's line construction (a 30 px neighbour gap, or a gap relative to the text height)
splits there too.

Command line: ``python -m ctpn_jax.data.render --out DIR --count N [--format json|icdar2015]``
writes ``DIR/images/<stem>.jpg`` and ``DIR/gt/<label file>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ctpn_jax.data.labels import (
    DONT_CARE,
    TextLine,
    format_icdar2015,
    format_json,
    label_name,
)
from ocr_common import degrade
from ocr_common.photos import maybe_photo, photo_or_surface
from ocr_common.textures import (
    background,
    contrasting,
    guilloche,
    luminance,
    portrait,
    random_colour,
    saturated_colour,
    surface,
)

KINDS = ("document", "form", "receipt", "sign", "screenshot", "card")
#: Every layout; ``web`` pages are drawn only where a config names them (``kinds``), so
#: the default mix and its random stream stay those of the recipes trained before it.
ALL_KINDS = (*KINDS, "web")
#: Tallest line (px at the training scale) a zoom-in crop may make: under CTPN's tallest
#: anchor (``ctpn_jax.anchors.ANCHOR_HEIGHTS[-1]``, 283 px), with room for the box padding.
MAX_ZOOMED_LINE_PX = 250.0


@dataclasses.dataclass(frozen=True)
class PageRenderConfig:
    """Page renderer settings.

    Attributes:
        kinds: page kinds to draw from.
        kind_weights: their probabilities (normalised).
        max_rotation: largest rotation of a page in degrees (signs get twice this).
        split_gap, split_gap_em: a space run wider than both ``split_gap`` px and
            ``split_gap_em`` times the font size splits a line into two boxes (so a word
            space in large sign lettering does not, a column gap does).
        box_pad: padding of the boxes around the ink, as a fraction of the font size.
        fonts: extra font files or folders (besides mplfonts' and the system's CJK fonts).
        min_text_px, max_text_px: range of body-text sizes once the page is resized to the
            training scale (log-uniform; titles are larger).  CTPN's anchors are 11 .. 283 px
            high; text under about 11 px is hardly learnable at stride 16.
        reference_side, reference_long: the training resize (shorter side to
            ``reference_side``, longer side at most ``reference_long``).
        crop_prob: probability of cropping a page to a random window (zooming in, so that
            text sizes cover large text as in photos of cards and signs).
        min_crop: smallest window side as a fraction of the page side.
        surface_prob: probability of laying a (non-card) page on a busy surface.
        tracking_prob: probability that a sign or card label is drawn letter-spaced.
        latin_font_prob: probability that a line of ASCII text (English words, codes,
            numbers) is drawn in a Latin font rather than in the CJK one it was laid out with.
        photo_prob: probability that a surface, a photo among the clutter or (at a third of
            it) a page's background is cut from a real photograph (``ocr_common.photos``;
            nothing changes where none are installed). 0 keeps the procedural imagery and the
            random stream of earlier recipes.
        receipt_columns: probability that a receipt is itemised in columns as shops print
            them (quantity, unit price, amount, a tax code), each cell its own line: a lone
            "1" or "SR" is a line to find. 0 keeps the random stream of earlier recipes.
    """

    kinds: tuple[str, ...] = KINDS
    kind_weights: tuple[float, ...] = (0.23, 0.14, 0.11, 0.2, 0.14, 0.18)
    max_rotation: float = 3.0
    split_gap: float = 20.0
    split_gap_em: float = 0.8
    box_pad: float = 0.06
    fonts: tuple[str, ...] = ()
    min_text_px: float = 12.0
    max_text_px: float = 48.0
    reference_side: float = 600.0
    reference_long: float = 1000.0
    crop_prob: float = 0.4
    min_crop: float = 0.35
    surface_prob: float = 0.2
    tracking_prob: float = 0.3
    latin_font_prob: float = 0.5
    photo_prob: float = 0.0
    receipt_columns: float = 0.0


#: Tax codes printed after a receipt's amounts (one per row).
TAX_CODES = ("SR", "S", "Z", "T", "E", "ZR", "*", "A")
#: Column headings of an itemised receipt: quantity, unit price, amount.
RECEIPT_HEADINGS = (("QTY", "PRICE", "AMT"), ("Qty", "U.Price", "Amount"), ("数量", "单价", "金额"))


@dataclasses.dataclass
class Page:
    """A rendered page: ``image (H, W, 3) uint8`` RGB, its lines and its kind."""

    image: np.ndarray
    lines: list[TextLine]
    kind: str


# ----------------------------------------------------------------------------- canvas


class _Canvas:
    """A PIL image plus the boxes of everything drawn on it."""

    def __init__(self, image: np.ndarray, renderer: PageRenderer, rng: np.random.Generator):
        self.im = Image.fromarray(image)
        self.draw = ImageDraw.Draw(self.im)
        self.w, self.h = self.im.size
        self.r = renderer
        self.rng = rng
        self.lines: list[TextLine] = []
        # smallest font size on this page, so that text is >= min_text_px once resized
        cfg = renderer.cfg
        scale = min(
            cfg.reference_side / min(self.w, self.h), cfg.reference_long / max(self.w, self.h)
        )
        self.min_size = cfg.min_text_px / scale
        self.scale = scale
        self.occupied: list[tuple[float, float, float, float]] = []

    def body_size(self) -> float:
        """A body-text font size in page pixels: log-uniform between ``min_text_px`` and
        ``max_text_px`` once the page is resized to the training scale."""
        cfg = self.r.cfg
        px = math.exp(self.rng.uniform(math.log(cfg.min_text_px), math.log(cfg.max_text_px)))
        return px / self.scale

    # -- text ---------------------------------------------------------------------------
    def font(self, size: float, font_path: Path | None = None) -> ImageFont.FreeTypeFont:
        from ocr_common.fonts import load_font

        path = font_path or self.r.fonts[int(self.rng.integers(len(self.r.fonts)))]
        return load_font(path, max(6, int(round(max(size, self.min_size)))))

    def fit(
        self, font: ImageFont.FreeTypeFont, max_w: float, n: int | None = None, fill: bool = False
    ) -> str:
        """Sample text of about ``n`` characters (or enough to fill ``max_w``) that fits."""
        size = font.size
        if n is None or fill:
            n = max(1, int(max_w / size * (1.6 if fill else 1.0)))
        text = self.r.sampler.sample(self.rng, max(1, n))
        if font.getlength(text) <= max_w:
            return text
        lo, hi = 0, len(text)  # longest prefix that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if font.getlength(text[:mid]) <= max_w:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo].rstrip()

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        font: ImageFont.FreeTypeFont,
        fill: Sequence[int],
        label: bool = True,
        tracking: float = 0.0,
        stroke: int = 0,
        stroke_fill: Sequence[int] | None = None,
    ) -> tuple[float, float, float, float] | None:
        """Draw ``text`` with its top-left at ``xy``; label it (split at wide spaces).

        ``tracking`` > 0 spaces the characters that many pixels apart (s i g n s): the
        whole text is then one box. ``stroke`` > 0 outlines the letters that many pixels
        wide in ``stroke_fill`` (poster lettering); the box holds the outline.

        Returns the union box ``(x0, y0, x1, y1)`` of the ink, or None for empty text.
        """
        text = text.rstrip()
        if not text.strip():
            return None
        font, ref = self._latin_face(text, font)
        if tracking > 0:
            return self._tracked_text(xy, text, font, fill, tracking, label, ref)
        x, y = xy
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        groups = [[words[0][0], words[0][1]]]
        for s0, s1 in words[1:]:
            gap = font.getlength(text[groups[-1][1] : s0])
            if gap > max(self.r.cfg.split_gap, self.r.cfg.split_gap_em * font.size):
                groups.append([s0, s1])
            else:
                groups[-1][1] = s1
        fill = tuple(int(c) for c in fill)
        boxes = []
        for g0, g1 in groups:
            seg_text = text[g0:g1]
            gx0 = x + (font.getlength(text[:g0]) if g0 else 0.0)
            outline = {"stroke_width": stroke, "stroke_fill": stroke_fill} if stroke else {}
            self.draw.text((gx0, y), seg_text, font=font, fill=fill, **outline)
            bb = self.draw.textbbox((gx0, y), seg_text, font=font, stroke_width=stroke)
            if bb[2] <= bb[0]:
                continue
            pad = self.r.cfg.box_pad * font.size
            x0, x1 = bb[0] - pad * 0.5, bb[2] + pad * 0.5
            y0 = min(bb[1], y + ref[1] - stroke) - pad
            y1 = max(bb[3], y + ref[3] + stroke) + pad
            boxes.append((x0, y0, x1, y1))
            if label:
                quad = np.asarray([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
                self.lines.append(TextLine(quad, seg_text))
        if not boxes:
            return None
        b = np.asarray(boxes)
        box = (
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        )
        self.occupied.append(box)
        return box

    def _latin_face(
        self, text: str, font: ImageFont.FreeTypeFont
    ) -> tuple[ImageFont.FreeTypeFont, tuple[float, float, float, float]]:
        """The face to draw ``text`` with, and the reference box of a hanzi in the CJK font
        at that size (the vertical extent of a line's label).

        With probability ``latin_font_prob`` an ASCII text gets a Latin font, at a size
        that keeps it no wider than in ``font`` (the layout was fitted with ``font``)."""
        from ocr_common.fonts import load_font

        cfg, fonts = self.r.cfg, self.r.latin_fonts
        if not fonts or not text.isascii() or self.rng.random() >= cfg.latin_font_prob:
            return font, font.getbbox("中")
        path = fonts[int(self.rng.integers(len(fonts)))]
        latin = load_font(path, font.size)
        width, latin_width = font.getlength(text), latin.getlength(text)
        if latin_width > width > 0:
            latin = load_font(path, max(6, int(font.size * width / latin_width)))
        return latin, load_font(font.path, latin.size).getbbox("中")

    def _tracked_text(self, xy, text, font, fill, tracking, label, ref):
        x, y = xy
        fill = tuple(int(c) for c in fill)
        inks = []
        for ch in text:
            if not ch.isspace():
                self.draw.text((x, y), ch, font=font, fill=fill)
                bb = self.draw.textbbox((x, y), ch, font=font)
                if bb[2] > bb[0]:
                    inks.append(bb)
            x += font.getlength(ch) + tracking
        if not inks:
            return None
        b = np.asarray(inks, np.float32)
        pad = self.r.cfg.box_pad * font.size
        box = (
            float(b[:, 0].min() - pad * 0.5),
            float(min(b[:, 1].min(), xy[1] + ref[1]) - pad),
            float(b[:, 2].max() + pad * 0.5),
            float(max(b[:, 3].max(), xy[1] + ref[3]) + pad),
        )
        if label:
            quad = np.asarray(
                [[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]], np.float32
            )
            self.lines.append(TextLine(quad, text))
        self.occupied.append(box)
        return box

    # -- distractors ----------------------------------------------------------------------
    def free(self, box: tuple[float, float, float, float], margin: float = 4.0) -> bool:
        x0, y0, x1, y1 = box
        if x0 < 0 or y0 < 0 or x1 > self.w or y1 > self.h:
            return False
        for a in self.occupied:
            if (
                x0 < a[2] + margin
                and a[0] - margin < x1
                and y0 < a[3] + margin
                and a[1] - margin < y1
            ):
                return False
        return True

    def distractors(self, count: int) -> None:
        """Non-text clutter placed where there is no text."""
        rng = self.rng
        for _ in range(count):
            for _try in range(10):
                kind = rng.choice(
                    ["line", "rect", "circle", "stamp", "barcode", "hatch", "icon", "photo"]
                )
                w = float(rng.uniform(20, max(30, self.w * 0.4)))
                h = float(rng.uniform(10, max(20, self.h * 0.25)))
                if kind in ("circle", "stamp", "icon"):
                    h = w = float(rng.uniform(12, max(20, min(self.w, self.h) * 0.25)))
                if kind == "photo":
                    w = float(rng.uniform(30, max(40, self.w * 0.3)))
                    h = w * float(rng.uniform(0.7, 1.5))
                if kind == "line":
                    h = float(rng.uniform(1, 4)) if rng.random() < 0.5 else h
                    w = float(rng.uniform(1, 4)) if h > 5 else w
                x0 = float(rng.uniform(0, max(1, self.w - w)))
                y0 = float(rng.uniform(0, max(1, self.h - h)))
                box = (x0, y0, x0 + w, y0 + h)
                if self.free(box):
                    self._shape(kind, box)
                    self.occupied.append(box)
                    break

    def _shape(self, kind: str, box: tuple[float, float, float, float]) -> None:
        rng, d = self.rng, self.draw
        col = random_colour(rng)
        x0, y0, x1, y1 = box
        width = int(rng.integers(1, 4))
        if kind == "line":
            d.line(
                [(x0, y0), (x1, y1)]
                if rng.random() < 0.3
                else [(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)]
                if x1 - x0 > y1 - y0
                else [((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)],
                fill=col,
                width=width,
            )
        elif kind == "rect":
            if rng.random() < 0.5:
                d.rectangle(box, outline=col, width=width)
            else:
                d.rectangle(box, fill=col)
        elif kind == "circle":
            d.ellipse(box, outline=col, width=width) if rng.random() < 0.5 else d.ellipse(
                box, fill=col
            )
        elif kind == "stamp":
            red = (int(rng.integers(180, 240)), int(rng.integers(0, 60)), int(rng.integers(0, 60)))
            d.ellipse(box, outline=red, width=int(rng.integers(2, 5)))
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            r = (x1 - x0) / 6
            pts = [
                (cx + r * math.cos(a), cy + r * math.sin(a))
                for a in np.linspace(-math.pi / 2, 1.5 * math.pi, 11)[:-1]
            ]
            star = [pts[(2 * i) % 10] for i in range(5)]
            d.polygon(star, fill=red)
        elif kind == "barcode":
            x, xe, ya, yb = int(x0), int(x1), int(y0), int(y1)
            bar = col if luminance(col) < 120 else (0, 0, 0)
            while x < xe:
                bw = int(rng.integers(1, 5))
                if rng.random() < 0.5:
                    d.rectangle((x, ya, min(xe, x + bw - 1), yb), fill=bar)
                x += bw
        elif kind == "photo":
            pw, ph = max(4, int(x1 - x0)), max(4, int(y1 - y0))
            patch = self.r.photo(rng, ph, pw)
            patch = portrait(rng, ph, pw) if patch is None else patch
            self.im.paste(Image.fromarray(patch), (int(x0), int(y0)))
        elif kind == "hatch":
            step = float(rng.uniform(4, 12))
            for t in np.arange(-(y1 - y0), x1 - x0, step):
                d.line([(x0 + t, y1), (x0 + t + (y1 - y0), y0)], fill=col, width=1)
        else:  # icon: a rounded square with a symbol
            d.rounded_rectangle(box, radius=(x1 - x0) / 4, fill=col)
            inner = contrasting(rng, col)
            m = (x1 - x0) / 4
            d.ellipse((x0 + m, y0 + m, x1 - m, y1 - m), outline=inner, width=2)


# ----------------------------------------------------------------------------- the renderer


class PageRenderer:
    """Renders synthetic pages (deterministic given the ``rng`` passed to ``render``).

    Args:
        cfg: settings.
        sampler: text source with ``sample(rng, length) -> str``; default
            ``ocr_common.corpus.TextSampler`` over the recogniser's 5990 characters.
        fonts: font files; default ``ocr_common.fonts.list_fonts(cfg.fonts)``.
        latin_fonts: Latin text fonts; default
            ``ocr_common.fonts.list_latin_fonts(cfg.fonts)`` (may be empty).
    """

    def __init__(
        self,
        cfg: PageRenderConfig | None = None,
        sampler=None,
        fonts: Sequence[Path] | None = None,
        latin_fonts: Sequence[Path] | None = None,
    ):
        self.cfg = cfg or PageRenderConfig()
        if sampler is None:
            # Pages print what the recogniser can read, so that end-to-end tests on them
            # score text it knows (a training-data import: inference never comes here).
            from densenet_jax.charset import Charset
            from ocr_common.corpus import TextSampler

            sampler = TextSampler("".join(Charset.default().chars))
        if fonts is None:
            from ocr_common.fonts import list_fonts

            fonts = list_fonts(self.cfg.fonts)
        if latin_fonts is None:
            from ocr_common.fonts import list_latin_fonts

            latin_fonts = list_latin_fonts(self.cfg.fonts)
        self.sampler = sampler
        self.fonts = [Path(f) for f in fonts]
        self.latin_fonts = [Path(f) for f in latin_fonts]
        if not self.fonts:
            raise ValueError("PageRenderer needs at least one font")
        for k in self.cfg.kinds:
            if k not in ALL_KINDS:
                raise ValueError(f"unknown page kind {k!r}; expected one of {ALL_KINDS}")
        if len(self.cfg.kind_weights) < len(self.cfg.kinds):
            raise ValueError(
                f"{len(self.cfg.kinds)} page kinds {self.cfg.kinds} need as many kind_weights, "
                f"got {self.cfg.kind_weights}"
            )
        p = np.asarray(self.cfg.kind_weights[: len(self.cfg.kinds)], np.float64)
        self.kind_p = p / p.sum()

    def render(self, rng: np.random.Generator, kind: str | None = None) -> Page:
        """One page of ``kind`` (random when None)."""
        kind = kind or str(self.cfg.kinds[rng.choice(len(self.cfg.kinds), p=self.kind_p)])
        layout = getattr(self, f"_{kind}")
        canvas = layout(rng)
        canvas.distractors(int(rng.integers(0, 8)))
        image, lines = np.asarray(canvas.im.convert("RGB")), canvas.lines
        return self.finish(rng, image, lines, kind, canvas.scale)

    def finish(
        self,
        rng: np.random.Generator,
        image: np.ndarray,
        lines: list[TextLine],
        kind: str,
        scale: float = 1.0,
    ) -> Page:
        """A laid-out page photographed: on a surface, cropped, rotated, blurred, noisy,
        JPEG-compressed, each at random (also for pages laid out elsewhere, e.g.
        ``ctpn_jax.data.engine``). ``scale``: the layout's text scale (``min_text_px`` is
        divided by it for the surface's shrink)."""
        if kind != "card" and rng.random() < self.cfg.surface_prob:
            min_height = 0.75 * self.cfg.min_text_px / scale
            image, lines = _on_surface(rng, image, lines, min_height, self.surface)
        h, w = image.shape[:2]
        window = (0, 0, w, h)
        if rng.random() < self.cfg.crop_prob:  # zoom in: larger text once resized
            cw = int(w * rng.uniform(self.cfg.min_crop, 1.0))
            ch = int(h * rng.uniform(self.cfg.min_crop, 1.0))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            # ... but not past the tallest anchor at the training scale.
            tallest = max((float(np.ptp(np.asarray(t.quad)[:, 1])) for t in lines), default=0.0)
            zoom = min(self.cfg.reference_side / min(cw, ch), self.cfg.reference_long / max(cw, ch))
            if tallest * zoom <= MAX_ZOOMED_LINE_PX:
                window = (x0, y0, x0 + cw, y0 + ch)
        image, lines = _crop(image, lines, window)
        max_rot = self.cfg.max_rotation * (2.0 if kind == "sign" else 1.0)
        angle = float(rng.uniform(-max_rot, max_rot)) if rng.random() < 0.7 else 0.0
        image, lines = _rotate(rng, image, lines, angle)
        image = _photometric(rng, image)
        return Page(image, lines, kind)

    # -- layouts --------------------------------------------------------------------------
    def _new_canvas(self, rng, w, h, base=None) -> _Canvas:
        if base is None:
            lo = 215 if rng.random() < 0.85 else 150
            base = random_colour(rng, lo, 256)
        image = background(rng, h, w, base)
        photo = self.photo(rng, h, w, share=1 / 3)
        if photo is not None:  # a picture behind the text, faded towards the base colour
            a = float(rng.uniform(0.1, 0.4))
            image = (image * (1 - a) + photo * a).astype(np.uint8)
        return _Canvas(image, self, rng)

    # -- real photographs (ocr_common.photos) ---------------------------------------------
    def photo(
        self, rng: np.random.Generator, h: int, w: int, share: float = 1.0
    ) -> np.ndarray | None:
        """A ``(h, w, 3) uint8`` patch of a real photograph with probability ``photo_prob *
        share`` (and photographs installed), else ``None``. Draws nothing from ``rng`` when
        ``photo_prob`` is 0."""
        return maybe_photo(rng, h, w, self.cfg.photo_prob * share)

    def surface(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        """What a sheet or a card lies on: a photograph (``photo``) or a procedural surface."""
        return photo_or_surface(rng, h, w, self.cfg.photo_prob)

    def _document(self, rng: np.random.Generator) -> _Canvas:
        w, h = int(rng.integers(500, 1300)), int(rng.integers(500, 1300))
        c = self._new_canvas(rng, w, h)
        bg = c.im.getpixel((w // 2, h // 2))
        ink = contrasting(rng, bg, 110)
        size = c.body_size()
        mx, my = w * rng.uniform(0.04, 0.12), h * rng.uniform(0.04, 0.1)
        y = my
        if rng.random() < 0.8:  # title
            tf = c.font(size * rng.uniform(1.4, 2.4))
            t = c.fit(tf, w - 2 * mx, n=int(rng.integers(4, 16)))
            tw = tf.getlength(t)
            c.text(((w - tw) / 2, y), t, tf, contrasting(rng, bg, 110))
            y += tf.size * rng.uniform(1.6, 2.4)
        ncol = 2 if (w > 800 and rng.random() < 0.35) else 1
        gutter = size * rng.uniform(1.5, 3)
        col_w = (w - 2 * mx - (ncol - 1) * gutter) / ncol
        spacing = rng.uniform(1.35, 2.2)
        font = c.font(size)
        y_start = y
        for col in range(ncol):
            x0 = mx + col * (col_w + gutter)
            y = y_start
            while y + size * 1.5 < h - my and len(c.lines) < 150:
                r = rng.random()
                if r < 0.08:  # heading
                    hf = c.font(size * rng.uniform(1.1, 1.5))
                    c.text(
                        (x0, y),
                        c.fit(hf, col_w, n=int(rng.integers(3, 12))),
                        hf,
                        contrasting(rng, bg, 110),
                    )
                    y += hf.size * spacing
                    continue
                n_lines = int(rng.integers(1, 7))
                for i in range(n_lines):
                    if y + size * 1.5 >= h - my:
                        break
                    indent = 2 * size if i == 0 and rng.random() < 0.6 else 0.0
                    last = i == n_lines - 1
                    avail = col_w - indent
                    if last:
                        avail *= rng.uniform(0.15, 1.0)
                    c.text((x0 + indent, y), c.fit(font, avail, fill=True), font, ink)
                    y += size * spacing
                y += size * rng.uniform(0.3, 1.2)
        if rng.random() < 0.5:  # page number
            pf = c.font(size * 0.8)
            c.text((w / 2 - pf.size, h - my * 0.7), str(int(rng.integers(1, 300))), pf, ink)
        return c

    def _form(self, rng: np.random.Generator) -> _Canvas:
        w, h = int(rng.integers(600, 1300)), int(rng.integers(500, 1200))
        c = self._new_canvas(rng, w, h)
        bg = c.im.getpixel((w // 2, h // 2))
        ink = contrasting(rng, bg, 110)
        rule = contrasting(rng, bg, 60)
        size = c.body_size()
        font = c.font(size)
        mx = w * rng.uniform(0.04, 0.1)
        y = h * rng.uniform(0.03, 0.08)
        tf = c.font(size * rng.uniform(1.3, 2.0))
        t = c.fit(tf, w - 2 * mx, n=int(rng.integers(4, 12)))
        c.text(((w - tf.getlength(t)) / 2, y), t, tf, ink)
        y += tf.size * 2
        # label: value lines with underlines
        for _ in range(int(rng.integers(0, 4))):
            if y + size * 2 > h:
                break
            lab = c.fit(font, w * 0.3, n=int(rng.integers(2, 6))) + rng.choice(["：", ":", ""])
            bx = c.text((mx, y), lab, font, ink)
            x1 = (bx[2] if bx else mx) + size * 0.5
            if rng.random() < 0.7:
                c.text((x1, y), c.fit(font, w - mx - x1, n=int(rng.integers(2, 14))), font, ink)
            c.draw.line([(x1, y + size * 1.3), (w - mx, y + size * 1.3)], fill=rule, width=1)
            y += size * 2.2
        # the table
        ncols = int(rng.integers(2, 6))
        row_h = size * rng.uniform(1.8, 2.8)
        nrows = int(min(rng.integers(3, 20), max(1, (h - y - size) // row_h)))
        widths = rng.dirichlet(np.ones(ncols) * 2) * (w - 2 * mx)
        xs = mx + np.concatenate([[0], np.cumsum(widths)])
        lw = int(rng.integers(1, 3))
        header_fill = random_colour(rng, 180, 250) if rng.random() < 0.5 else None
        for r in range(nrows):
            y0 = y + r * row_h
            if r == 0 and header_fill is not None:
                c.draw.rectangle((xs[0], y0, xs[-1], y0 + row_h), fill=header_fill)
            for k in range(ncols):
                c.draw.rectangle((xs[k], y0, xs[k + 1], y0 + row_h), outline=rule, width=lw)
                if rng.random() < 0.15 and r > 0:
                    continue
                cell_w = xs[k + 1] - xs[k] - size
                if cell_w < size:
                    continue
                t = c.fit(font, cell_w, n=int(rng.integers(1, 10)))
                tw = font.getlength(t)
                tx = xs[k] + size / 2 if rng.random() < 0.6 else (xs[k] + xs[k + 1] - tw) / 2
                c.text((tx, y0 + (row_h - size) / 2 - size * 0.1), t, font, ink)
        return c

    def _receipt(self, rng: np.random.Generator) -> _Canvas:
        w, h = int(rng.integers(300, 620)), int(rng.integers(600, 1300))
        c = self._new_canvas(rng, w, h, base=random_colour(rng, 225, 256))
        bg = c.im.getpixel((w // 2, h // 2))
        ink = contrasting(rng, bg, 120)
        size = c.body_size()
        mono = [f for f in self.fonts if "Mono" in f.name]
        fpath = mono[int(rng.integers(len(mono)))] if mono and rng.random() < 0.6 else None
        font = c.font(size, fpath)
        mx = size * rng.uniform(0.8, 2)
        y = size * rng.uniform(1, 3)
        hf = c.font(size * rng.uniform(1.3, 2.0), fpath)
        t = c.fit(hf, w - 2 * mx, n=int(rng.integers(3, 10)))
        c.text(((w - hf.getlength(t)) / 2, y), t, hf, ink)
        y += hf.size * 1.8
        columns = self.cfg.receipt_columns and rng.random() < self.cfg.receipt_columns
        if columns:
            cells = self._receipt_columns(c, rng, font, ink, mx)
            heading = rng.random() < 0.5
        while y + size * 4 < h * 0.85:
            if columns:
                y, heading = cells(y, heading), False
                continue
            r = rng.random()
            if r < 0.12:  # dashed rule
                x = mx
                while x < w - mx:
                    c.draw.line([(x, y + size / 2), (x + size / 2, y + size / 2)], fill=ink)
                    x += size
                y += size * 1.2
                continue
            item = c.fit(font, (w - 2 * mx) * 0.6, n=int(rng.integers(2, 10)))
            c.text((mx, y), item, font, ink)
            price = f"{rng.integers(0, 9999) / 100:.2f}"
            if rng.random() < 0.3:
                price = f"{int(rng.integers(1, 10))} x {price}"
            c.text((w - mx - font.getlength(price), y), price, font, ink)
            y += size * rng.uniform(1.3, 1.8)
        if rng.random() < 0.8 and y + size * 4 < h:
            bw = (w - 2 * mx) * rng.uniform(0.5, 0.9)
            box = ((w - bw) / 2, y + size, (w + bw) / 2, y + size * 4)
            c._shape("barcode", box)
            c.occupied.append(box)
        return c

    def _receipt_columns(self, c, rng, font, ink, mx):
        """A row writer for an itemised receipt: ``row(y)`` draws a row at ``y`` (an item
        name, then quantity, unit price, amount and tax code, each its own line, right-
        aligned in columns at least two ems apart), ``row(y, heading=True)`` the columns'
        headings, and returns the next row's ``y``."""
        w = c.im.size[0]
        em = font.size
        optional = {"tax": rng.random() < 0.5, "unit": rng.random() < 0.6}
        widest_price = font.getlength("888.88")
        widths = {"tax": font.getlength("SR"), "amount": widest_price, "unit": widest_price}

        def layout() -> tuple[list[tuple[str, float]], float]:
            # Column right edges from the right margin leftwards, cells 2 ems apart.
            keys = [k for k in ("tax", "amount", "unit") if optional.get(k, True)]
            rights, x = [], w - mx
            for k in keys:
                rights.append((k, x))
                x -= widths[k] + 2 * em
            rights.append(("qty", x))
            return rights, x - font.getlength("88") - 2 * em - mx

        rights, item_w = layout()
        for key in ("unit", "tax"):  # a narrow slip drops columns until the items fit
            if item_w < 3 * em and optional[key]:
                optional[key] = False
                rights, item_w = layout()

        def row(y: float, heading: bool = False) -> float:
            if item_w < em:  # too narrow even for quantity and amount: prices only
                price = f"{int(rng.integers(10, 99999)) / 100:.2f}"
                c.text((w - mx - font.getlength(price), y), price, font, ink)
                return y + em * rng.uniform(1.3, 1.8)
            if heading:
                names = RECEIPT_HEADINGS[int(rng.integers(len(RECEIPT_HEADINGS)))]
                heads = {"qty": names[0], "unit": names[1], "amount": names[2]}
                for key, right in rights:
                    if key in heads:
                        c.text((right - font.getlength(heads[key]), y), heads[key], font, ink)
                return y + em * rng.uniform(1.4, 1.9)
            item = c.fit(font, item_w, n=int(rng.integers(2, 10)))
            c.text((mx, y), item, font, ink)
            qty = int(rng.integers(1, 4)) if rng.random() < 0.8 else int(rng.integers(1, 30))
            price = int(rng.integers(10, 99999)) / 100
            cells = {
                "qty": str(qty),
                "unit": f"{price:.2f}",
                "amount": f"{qty * price:.2f}",
                "tax": TAX_CODES[int(rng.integers(len(TAX_CODES)))],
            }
            for key, right in rights:
                t = cells[key]
                if font.getlength(t) <= widest_price * 1.2:
                    c.text((right - font.getlength(t), y), t, font, ink)
            return y + em * rng.uniform(1.3, 1.8)

        return row

    def _sign(self, rng: np.random.Generator) -> _Canvas:
        w, h = int(rng.integers(500, 1300)), int(rng.integers(400, 1000))
        c = self._new_canvas(rng, w, h, base=random_colour(rng, 60, 256))
        panel = random_colour(rng)
        px0, py0 = w * rng.uniform(0.02, 0.15), h * rng.uniform(0.02, 0.2)
        px1, py1 = w - w * rng.uniform(0.02, 0.15), h - h * rng.uniform(0.02, 0.2)
        if rng.random() < 0.5:
            c.draw.rounded_rectangle(
                (px0, py0, px1, py1),
                radius=float(rng.uniform(0, 30)),
                fill=panel,
                outline=contrasting(rng, panel, 60),
                width=int(rng.integers(0, 6)),
            )
        else:
            c.draw.rectangle((px0, py0, px1, py1), fill=panel)
        ink = contrasting(rng, panel, 100)
        n = int(rng.integers(1, 5))
        avail_h = py1 - py0
        # Up to 200 px once resized for training (CTPN's tallest anchor is 283 px): posters
        # and shop signs photographed up close, text far taller than body text.
        size = float(np.clip(avail_h / (n * rng.uniform(1.3, 2.5)), 20, 200 / c.scale))
        y = py0 + (avail_h - n * size * 1.5) / 2
        tracked = rng.random() < self.cfg.tracking_prob
        for i in range(n):
            s = size * (rng.uniform(0.4, 0.7) if i > 0 and rng.random() < 0.4 else 1.0)
            f = c.font(s)
            t = c.fit(f, (px1 - px0) * 0.9, n=int(rng.integers(2, 10)))
            track = s * rng.uniform(0.1, 0.6) if tracked and len(t) > 1 else 0.0
            tw = f.getlength(t) + track * (len(t) - 1)
            if tw > (px1 - px0) * 0.95:
                track, tw = 0.0, f.getlength(t)
            c.text(((w - tw) / 2, y), t, f, ink, tracking=track)
            y += s * 1.5
        return c

    def _screenshot(self, rng: np.random.Generator) -> _Canvas:
        w, h = int(rng.integers(500, 1300)), int(rng.integers(450, 1000))
        dark = rng.random() < 0.3
        base = random_colour(rng, 20, 60) if dark else random_colour(rng, 235, 256)
        c = self._new_canvas(rng, w, h, base=base)
        ink = contrasting(rng, base, 120)
        grey = tuple(int(0.6 * a + 0.4 * b) for a, b in zip(ink, base, strict=True))
        size = c.body_size()
        bar_h = size * rng.uniform(2.2, 3.5)
        bar = random_colour(rng, 0, 200)
        c.draw.rectangle((0, 0, w, bar_h), fill=bar)
        tf = c.font(size * 1.2)
        c.text(
            (size, (bar_h - tf.size) / 2),
            c.fit(tf, w * 0.5, n=int(rng.integers(2, 10))),
            tf,
            contrasting(rng, bar, 110),
        )
        x_main = 0.0
        if rng.random() < 0.5 and w > 700:  # sidebar menu
            sb_w = w * rng.uniform(0.15, 0.25)
            sb = tuple(max(0, min(255, v + (12 if dark else -12))) for v in base)
            c.draw.rectangle((0, bar_h, sb_w, h), fill=sb)
            f = c.font(size)
            y = bar_h + size
            while y + size * 2 < h:
                c.text((size, y), c.fit(f, sb_w - 2 * size, n=int(rng.integers(2, 6))), f, ink)
                y += size * rng.uniform(2, 3)
            x_main = sb_w
        y = bar_h + size
        pf, sf = c.font(size * 1.1), c.font(size * 0.85)
        while y + size * 3 < h:
            r = rng.random()
            if r < 0.15:  # buttons
                x = x_main + size
                for _ in range(int(rng.integers(1, 4))):
                    t = c.fit(pf, w * 0.2, n=int(rng.integers(2, 5)))
                    bw = pf.getlength(t) + size * 2
                    if x + bw > w - size:
                        break
                    btn = random_colour(rng, 0, 230)
                    c.draw.rounded_rectangle(
                        (x, y, x + bw, y + size * 2.2), radius=size * 0.4, fill=btn
                    )
                    c.text((x + size, y + size * 0.45), t, pf, contrasting(rng, btn, 110))
                    x += bw + size
                y += size * 3.2
            elif r < 0.25:  # input box with placeholder
                bw = (w - x_main) * rng.uniform(0.4, 0.9)
                c.draw.rectangle((x_main + size, y, x_main + size + bw, y + size * 2), outline=grey)
                c.text(
                    (x_main + size * 1.5, y + size * 0.4),
                    c.fit(sf, bw - size, n=int(rng.integers(3, 12))),
                    sf,
                    grey,
                )
                y += size * 3
            else:  # list row: icon, title, subtitle, separator
                icon = size * 2
                if rng.random() < 0.6:
                    c._shape(
                        "icon" if rng.random() < 0.5 else "circle",
                        (x_main + size, y, x_main + size + icon, y + icon),
                    )
                tx = x_main + size * 2 + icon
                c.text((tx, y), c.fit(pf, w - tx - size, n=int(rng.integers(2, 20))), pf, ink)
                if rng.random() < 0.7:
                    c.text(
                        (tx, y + pf.size * 1.4),
                        c.fit(sf, w - tx - size, n=int(rng.integers(4, 30))),
                        sf,
                        grey,
                    )
                if rng.random() < 0.4:
                    c.text(
                        (w - size - sf.getlength("12:30"), y),
                        f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}",
                        sf,
                        grey,
                    )
                y += size * 3.2
                c.draw.line([(tx, y - size * 0.5), (w, y - size * 0.5)], fill=grey, width=1)
        return c

    def _card(self, rng: np.random.Generator) -> _Canvas:
        w = int(rng.integers(700, 1400))
        h = int(w * rng.uniform(0.5, 0.8))
        c = _Canvas(self.surface(rng, h, w), self, rng)
        cw = w * rng.uniform(0.7, 0.97)
        ch = min(h * 0.97, cw / rng.uniform(1.45, 1.75))
        x0, y0 = float(rng.uniform(0, w - cw)), float(rng.uniform(0, h - ch))
        base = random_colour(rng, 170, 256)
        card = background(rng, int(ch), int(cw), base)
        if rng.random() < 0.7:
            card = np.clip(guilloche(rng, card.astype(np.float32)), 0, 255).astype(np.uint8)
        mask = Image.new("L", (int(cw), int(ch)), 0)
        radius = float(ch * rng.uniform(0.02, 0.08))
        ImageDraw.Draw(mask).rounded_rectangle(
            (0, 0, int(cw) - 1, int(ch) - 1), radius=radius, fill=255
        )
        if rng.random() < 0.5:  # a soft shadow under the card
            d = float(rng.uniform(2, 12))
            c.draw.rounded_rectangle(
                (x0 + d, y0 + d, x0 + cw + d, y0 + ch + d),
                radius=radius,
                fill=random_colour(rng, 0, 60),
            )
        c.im.paste(Image.fromarray(card), (int(x0), int(y0)), mask)
        ink = contrasting(rng, base, 110)
        label_ink = contrasting(rng, base, 70)
        fpath = self.fonts[int(rng.integers(len(self.fonts)))]
        size = ch / rng.uniform(9, 15)
        font, num_font = c.font(size, fpath), c.font(size * rng.uniform(1.0, 1.3), fpath)
        right = x0 + cw * 0.95
        if rng.random() < 0.65:  # the portrait
            pw = cw * rng.uniform(0.22, 0.32)
            ph = min(ch * 0.7, pw * rng.uniform(1.15, 1.4))
            px, py = x0 + cw - pw - cw * rng.uniform(0.04, 0.1), y0 + ch * rng.uniform(0.1, 0.2)
            c._shape("photo", (px, py, px + pw, py + ph))
            c.occupied.append((px, py, px + pw, py + ph))
            right = px - size
        mx = x0 + cw * rng.uniform(0.05, 0.1)
        y = y0 + ch * rng.uniform(0.07, 0.14)
        if rng.random() < 0.35:  # issuer name across the top
            hf = c.font(size * rng.uniform(1.1, 1.5), fpath)
            c.text((mx, y), c.fit(hf, right - mx, n=int(rng.integers(4, 12))), hf, ink)
            y += hf.size * 1.6
        tracked = rng.random() < self.cfg.tracking_prob
        while y + size * 1.6 < y0 + ch * 0.78:
            x = mx
            for _pair in range(int(rng.integers(1, 3))):
                lab = self.sampler.sample(rng, int(rng.integers(2, 5)))
                track = size * rng.uniform(0.3, 0.9) if tracked else 0.0
                value = _card_value(rng, self.sampler)
                if track == 0.0 and rng.random() < 0.5:  # "label value" as one line
                    box = c.text((x, y), c.fit(font, right - x, n=len(lab + value) + 1), font, ink)
                else:
                    box = c.text((x, y), lab, font, label_ink, tracking=track)
                    if box is None:
                        break
                    vx = box[2] + size * rng.uniform(0.6, 1.5)
                    if vx + font.getlength(value) < right:
                        box = c.text((vx, y), value, font, ink)
                if box is None:
                    break
                x = box[2] + size * rng.uniform(1.5, 3)
                if x + size * 4 > right:
                    break
            y += size * rng.uniform(1.5, 2.3)
        if rng.random() < 0.8:  # the long number at the bottom
            digits = "".join(str(int(d)) for d in rng.integers(0, 10, int(rng.integers(12, 19))))
            ny = y0 + ch * rng.uniform(0.8, 0.88) - num_font.size
            nx = mx
            if rng.random() < 0.6:
                box = c.text(
                    (mx, ny), self.sampler.sample(rng, int(rng.integers(2, 7))), font, label_ink
                )
                nx = (box[2] if box else mx) + size * rng.uniform(1.0, 3.0)
            track = num_font.size * rng.uniform(0.05, 0.35) if rng.random() < 0.5 else 0.0
            if nx + (num_font.getlength("0") + track) * len(digits) < x0 + cw * 0.97:
                c.text((nx, ny), digits, num_font, ink, tracking=track)
        return c

    def _web(self, rng: np.random.Generator) -> _Canvas:
        w = int(rng.integers(600, 1100))
        h = int(w * rng.uniform(0.4, 1.3))  # banners to square product pictures
        photo = self.photo(rng, h, w)
        if photo is not None:
            c = _Canvas(photo, self, rng)
        else:
            c = self._new_canvas(rng, w, h, base=random_colour(rng, 0, 256))
        xa, xb = w * rng.uniform(0.03, 0.08), w * (1 - rng.uniform(0.03, 0.08))
        if rng.random() < 0.6:  # the product, on one side; the lettering beside it
            pw, ph = w * rng.uniform(0.25, 0.5), h * rng.uniform(0.35, 0.8)
            left = rng.random() < 0.5
            px = w * rng.uniform(0.0, 0.05) if left else w - pw - w * rng.uniform(0.0, 0.05)
            py = float(rng.uniform(0, h - ph))
            c._shape("photo", (px, py, px + pw, py + ph))
            c.occupied.append((px, py, px + pw, py + ph))
            xa, xb = (px + pw + w * 0.03, xb) if left else (xa, px - w * 0.03)
        top = 200 / c.scale  # CTPN's tallest anchor is 283 px at the training scale
        y = h * rng.uniform(0.03, 0.12)
        for _block in range(int(rng.integers(2, 6))):
            head = float(np.clip((xb - xa) / rng.uniform(3, 12), c.min_size * 2, top))
            y = self._web_block(c, rng, xa, xb, y, head)
            y += head * rng.uniform(0.2, 0.8)
            if y > h * 0.85:
                break
        for _badge in range(int(rng.integers(0, 3))):  # round badges: 包邮, 新品, 热卖
            r = float(np.clip(min(w, h) * rng.uniform(0.06, 0.12), c.min_size * 1.5, top))
            cx, cy = float(rng.uniform(r, w - r)), float(rng.uniform(r, h - r))
            if not c.free((cx - r, cy - r, cx + r, cy + r)):
                continue
            disc = saturated_colour(rng, 140, 120)
            c.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=disc)
            f = c.font(r * 0.6)
            t = c.fit(f, 1.5 * r, n=int(rng.integers(2, 4)))
            tw = f.getlength(t)
            c.text((cx - tw / 2, cy - f.size * 0.55), t, f, contrasting(rng, disc, 100))
        return c

    def _web_block(self, c: _Canvas, rng, xa: float, xb: float, y: float, head: float) -> float:
        """A headline of size ``head`` and up to five lines under it in other sizes, set
        tightly (leading 1.1-1.4 em) between ``xa`` and ``xb`` from ``y``; each line plain,
        on a band, outlined or drop-shadowed. Returns the y under the block."""
        centred = rng.random() < 0.5
        fpath = self.fonts[int(rng.integers(len(self.fonts)))]
        for i in range(int(rng.integers(1, 7))):
            size = head if i == 0 else head * float(rng.uniform(0.2, 0.9))
            f = c.font(size, fpath if rng.random() < 0.7 else None)
            if y + f.size * 1.5 > c.h:
                break
            if rng.random() < 0.15:  # a price: ￥ and an amount
                t = f"￥{int(rng.integers(9, 2000))}" + (".9" if rng.random() < 0.3 else "")
            else:
                t = c.fit(f, xb - xa, n=int(rng.integers(2, 12)))
            tw = f.getlength(t)
            if not t.strip() or tw > xb - xa:
                continue
            x = xa + (xb - xa - tw) / 2 if centred else xa
            style = rng.random()
            if style < 0.3:  # a coloured band behind the line
                band = saturated_colour(rng, 140, 120)
                m = f.size * rng.uniform(0.15, 0.5)
                box = (x - m, y - 0.1 * f.size, x + tw + m, y + 1.25 * f.size)
                c.draw.rounded_rectangle(box, radius=float(rng.uniform(0, f.size / 2)), fill=band)
                c.text((x, y), t, f, contrasting(rng, band, 110))
            else:
                ground = np.asarray(
                    c.im.crop((int(x), int(y), int(x + tw) + 1, int(y + f.size) + 1))
                ).reshape(-1, 3)
                mean = tuple(float(v) for v in ground.mean(axis=0))
                ink = contrasting(rng, mean, 100)
                if style < 0.6:  # outlined, the outline contrasting with the letters
                    k = max(1, int(round(f.size * rng.uniform(0.03, 0.08))))
                    c.text((x, y), t, f, ink, stroke=k, stroke_fill=contrasting(rng, ink, 100))
                else:
                    if style < 0.8 and not t.isascii():  # a hard drop shadow (same face)
                        d = max(1.0, f.size * float(rng.uniform(0.03, 0.08)))
                        shadow = contrasting(rng, ink, 80)
                        c.text((x + d, y + d), t, f, shadow, label=False)
                        c.occupied.pop()
                    c.text((x, y), t, f, ink)
            y += f.size * float(rng.uniform(1.1, 1.4))
        return y


# ----------------------------------------------------------------------------- whole-page effects


def _card_value(rng: np.random.Generator, sampler) -> str:
    """A field value on a card: words, a date or a number."""
    r = rng.random()
    if r < 0.2:
        return f"{rng.integers(1950, 2030)}年{rng.integers(1, 13)}月{rng.integers(1, 29)}日"
    if r < 0.3:
        return f"{rng.integers(1, 13):02d}/{rng.integers(20, 40)}"
    return sampler.sample(rng, int(rng.integers(1, 12)))


def _on_surface(
    rng: np.random.Generator,
    image: np.ndarray,
    lines: Sequence[TextLine],
    min_height: float,
    make_surface=surface,
) -> tuple[np.ndarray, list[TextLine]]:
    """Shrink the page and lay it on a busy surface of the same size (a sheet on a desk).

    Lines shrunk under ``min_height`` px become don't-care ("###")."""
    h, w = image.shape[:2]
    f = float(rng.uniform(0.6, 0.92))
    nw, nh = max(8, int(w * f)), max(8, int(h * f))
    page = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    out = make_surface(rng, h, w)
    ox, oy = int(rng.integers(0, w - nw + 1)), int(rng.integers(0, h - nh + 1))
    if rng.random() < 0.5:  # shadow
        d = int(rng.integers(2, 12))
        sy0, sx0 = min(h, oy + d), min(w, ox + d)
        out[sy0 : oy + nh + d, sx0 : ox + nw + d] = (
            out[sy0 : oy + nh + d, sx0 : ox + nw + d] * 0.55
        ).astype(np.uint8)
    out[oy : oy + nh, ox : ox + nw] = page
    moved = []
    for t in lines:
        q = np.asarray(t.quad, np.float32) * np.float32([nw / w, nh / h]) + np.float32([ox, oy])
        small = q[:, 1].max() - q[:, 1].min() < min_height
        moved.append(TextLine(q, DONT_CARE if small else t.text))
    return out, moved


def _crop(
    image: np.ndarray, lines: Sequence[TextLine], window: tuple[int, int, int, int]
) -> tuple[np.ndarray, list[TextLine]]:
    """Cut ``image`` to ``window = (x0, y0, x1, y1)`` and clip the (axis-aligned) lines.

    Lines (nearly) outside are dropped; lines cut through their height, or cut so that less
    than half a character height of them remains, become don't-care ("###").
    """
    x0, y0, x1, y1 = window
    out = []
    for t in lines:
        q = np.asarray(t.quad, np.float32) - np.float32([x0, y0])
        bx0, by0 = q.min(axis=0)
        bx1, by1 = q.max(axis=0)
        cx0, cy0 = max(bx0, 0.0), max(by0, 0.0)
        cx1, cy1 = min(bx1, x1 - x0), min(by1, y1 - y0)
        if cx1 - cx0 < 2 or cy1 - cy0 < 2:
            continue
        height = by1 - by0
        text = t.text
        if cy1 - cy0 < by1 - by0 - 0.15 * height or (
            cx1 - cx0 < bx1 - bx0 - 1e-3 and cx1 - cx0 < 0.5 * height
        ):
            text = DONT_CARE
        quad = np.float32([[cx0, cy0], [cx1, cy0], [cx1, cy1], [cx0, cy1]])
        out.append(TextLine(quad, text))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), out


def _rotate(rng: np.random.Generator, image: np.ndarray, lines: list[TextLine], angle: float):
    """Rotate the page by ``angle`` degrees, enlarging the canvas so nothing is cut."""
    if abs(angle) < 1e-3:
        return image, lines
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(math.ceil(h * sin + w * cos)), int(math.ceil(h * cos + w * sin))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    border = tuple(int(v) for v in np.median(image.reshape(-1, 3)[::97], axis=0))
    if rng.random() < 0.5:
        border = random_colour(rng)
    out = cv2.warpAffine(
        image,
        m,
        (nw, nh),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )
    new_lines = []
    for t in lines:
        q = np.asarray(t.quad, np.float64)
        q = q @ m[:, :2].T + m[:, 2]
        new_lines.append(TextLine(q.astype(np.float32), t.text))
    return out, new_lines


def _photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Blur, exposure, noise and JPEG (`ocr_common.degrade`), each at random.
    `(H, W, 3) uint8` RGB -> same."""
    img = image
    if rng.random() < 0.4:
        img = degrade.gaussian_blur(img, float(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.5:
        img = degrade.gain_bias(img, rng.uniform(0.7, 1.2), rng.uniform(-30, 30))
    if rng.random() < 0.4:  # field, then sigma, in float32: as the page data was made
        noise = rng.standard_normal(img.shape).astype(np.float32) * rng.uniform(2, 10)
        img = degrade.add_noise(img, noise)
    if rng.random() < 0.5:
        img = degrade.jpeg(img, int(rng.integers(30, 95)))
    return np.ascontiguousarray(img)


# ----------------------------------------------------------------------------- writing sets


def write_page(page: Page, out_dir: str | Path, stem: str, fmt: str = "json") -> tuple[Path, Path]:
    """Write ``images/<stem>.jpg`` and its labels under ``out_dir`` (atomically)."""
    from ocr_common.io import atomic_write_bytes, atomic_write_text

    out = Path(out_dir)
    name = f"{stem}.jpg"
    ok, enc = cv2.imencode(".jpg", page.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError(f"cannot encode {name}")
    img_path = out / "images" / name
    atomic_write_bytes(img_path, enc.tobytes())
    lab_path = out / "gt" / label_name(name, fmt)
    if fmt == "json":
        h, w = page.image.shape[:2]
        atomic_write_text(lab_path, format_json(page.lines, name, w, h, ("synth", page.kind)))
    elif fmt == "icdar2015":
        atomic_write_text(lab_path, format_icdar2015(page.lines))
    else:
        raise ValueError(f"cannot write label format {fmt!r} (json or icdar2015)")
    return img_path, lab_path


def page_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for page ``index`` of a stream seeded with ``seed``."""
    return np.random.default_rng([int(seed), int(index)])


def write_dataset(
    out_dir: str | Path,
    count: int,
    seed: int = 0,
    fmt: str = "json",
    renderer: PageRenderer | None = None,
) -> list[Path]:
    """Render ``count`` pages into ``out_dir``; returns the image paths."""
    renderer = renderer or PageRenderer()
    paths = []
    for i in range(count):
        page = renderer.render(page_rng(seed, i))
        paths.append(write_page(page, out_dir, f"synth_{seed}_{i:05d}", fmt)[0])
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Render synthetic pages with text-line labels.")
    ap.add_argument("--out", required=True, help="output folder (images/ and gt/ inside)")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", choices=("json", "icdar2015"), default="json")
    ap.add_argument("--fonts", nargs="*", default=(), help="extra font files or folders")
    ap.add_argument(
        "--receipt-columns",
        type=float,
        default=0.0,
        help="share of receipts itemised in columns (PageRenderConfig.receipt_columns)",
    )
    ap.add_argument(
        "--photo-prob",
        type=float,
        default=0.0,
        help="share of surfaces and clutter cut from real photographs (as training's "
        "photo_prob; PageRenderConfig.photo_prob)",
    )
    args = ap.parse_args(argv)
    config = PageRenderConfig(
        fonts=tuple(args.fonts),
        receipt_columns=args.receipt_columns,
        photo_prob=args.photo_prob,
    )
    renderer = PageRenderer(config)
    paths = write_dataset(args.out, args.count, args.seed, args.format, renderer)
    print(f"wrote {len(paths)} pages to {args.out}")


if __name__ == "__main__":
    main()
