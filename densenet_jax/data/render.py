"""Synthetic text-line renderer: real CJK fonts, then OpenCV augmentation towards real crops.

`LineRenderer(fonts)(text, rng)` returns a `(32, W) uint8` gray line image whose width
follows the text (height 32, aspect kept). What varies, each drawn from `rng`: font and size
(the ASCII characters of a line possibly in a Latin font, as documents, signs and
screenshots set them; ':' ';' '?' '!' after hanzi mostly printed full width, as Chinese
text prints them, under the label's ASCII form); letter spacing; dark-on-light or
light-on-dark, gray or coloured; background (flat, gradient, paper-like noise, stains);
distractors (underlines, table rules, parts of the neighbouring lines); italic shear, small
rotation and perspective; tight and loose crops as a detector produces them; horizontal
stretch; blur, low resolution, noise, JPEG.

`LineRenderer.non_text(rng)` returns a crop with no text in it (fabric, wood, security print,
a photo, bars and rules), whose reading is the empty string: what a detector's false boxes
hold, so that the recogniser learns to read nothing there and `infer` drops such boxes.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from densenet_jax.preprocess import LINE_HEIGHT, to_line_image
from ocr_common import degrade
from ocr_common.fonts import font_charset, is_monospace, load_font, sampling_weights
from ocr_common.photos import photo_or_surface
from ocr_common.textures import (
    background,
    contrasting,
    guilloche,
    portrait,
    random_colour,
    saturated_colour,
    smooth_noise,
)

# First code point of the CJK blocks (radicals, punctuation, ideographs, full-width forms).
CJK_START = 0x2E80


@dataclass(frozen=True)
class LineRenderConfig:
    """Ranges of the line renderer's random choices (plain data)."""

    height: int = LINE_HEIGHT
    font_size: tuple[int, int] = (24, 48)  # canvas pixels before scaling to `height`
    spacing: tuple[float, float] = (-0.05, 0.25)  # extra letter spacing, x font size
    dark_background: float = 0.15  # probability of light text on dark ground
    colour: float = 0.35  # probability of a coloured (not gray) scheme
    # Vertical crop reference: the font's line box (ascent + descent), or with probability
    # `ink_crop` the ink's own extent, as annotators and detectors draw boxes. Latin text
    # then fills the height as in real tight crops (x-height ~17 of 32 px, not ~12), which
    # the model must tell from capitals by context rather than by size.
    ink_crop: float = 0.35
    margin_y: tuple[float, float] = (-0.06, 0.3)  # crop margin above/below, x box height
    margin_x: tuple[float, float] = (0.0, 0.5)  # crop margin left/right, x text height
    stretch: tuple[float, float] = (0.75, 1.3)  # horizontal scale after cropping
    max_rotation: float = 2.0  # degrees
    max_shear: float = 0.25  # italic slant
    perspective: float = 0.04  # corner jitter, x height
    distractors: float = 0.4  # probability of rules / neighbour lines
    blur: float = 0.5  # probability of a Gaussian blur
    low_res: float = 0.25  # probability of a down- and up-scale
    noise: float = 0.5  # probability of Gaussian noise
    jpeg: float = 0.5  # probability of JPEG compression
    # Camera effects, off by default (the shipped recipe never saw them): probability of a
    # motion blur of 1.5-5 px, and of light falling unevenly (a ramp and a vignette).
    motion_blur: float = 0.0
    uneven_light: float = 0.0
    # Poster lettering, off by default: probability that a line is set as e-commerce
    # images, posters and signs set it (`poster_lettering`).
    poster: float = 0.0
    # Of the poster lines, the share drawn as outline (hollow) lettering and as letters
    # with a solid 3-D side, as shop signs are; both 0 by default.
    poster_hollow: float = 0.0
    poster_extrude: float = 0.0
    low_res_scale: tuple[float, float] = (0.4, 0.8)  # factor of the low-resolution pass
    # Receipt print, off by default: probability that a line's Latin face is a monospace
    # one (when a Latin face is drawn), that the glyphs are printed as dot-matrix dots
    # (`dot_matrix`), and that the ink is faded as thermal print fades (`faded_print`).
    mono_latin: float = 0.0
    dot_matrix: float = 0.0
    faded_print: float = 0.0
    # Printer bitmap fonts, off by default: probability that the glyphs are set on a
    # coarse grid of square dots (`printer_bitmap`), as thermal receipt printers and old
    # screens draw their bitmap faces.
    printer_bitmap: float = 0.0
    latin_font: float = 0.5  # probability of drawing ASCII in a Latin font
    latin_italic: float = 0.2  # of those, probability of an italic face
    # Probability that a line prints the ASCII marks of FULL_WIDTH_FORMS that follow a
    # non-ASCII character in their full-width form, as Chinese text does (label unchanged).
    full_width_marks: float = 0.8
    # Real photographs (`ocr_common.photos`), off by default: probability that the busy
    # ground of poster lettering and of a non-text crop is cut from a photograph (where
    # installed) rather than drawn; 0 draws nothing from the random stream.
    photo: float = 0.0
    # Small print set natively, off by default: probability that a line is drawn at a small
    # font size (`small_font_size`, canvas pixels), cropped at about its own height, degraded
    # there (noise and JPEG at the small size, as in web images and screenshots) and only
    # then enlarged to `height` by `preprocess.to_line_image`, the reader's own path for a
    # small crop. The default lines are drawn large and shrunk, so their small print is
    # never hinted to the pixel grid, nor compressed before it is enlarged.
    small_text: float = 0.0
    small_font_size: tuple[int, int] = (10, 18)
    # Glyph style, off by default: probability that a line's glyphs are bent and their
    # weight changed (`glyph_style`), as faces that no installed font matches draw them.
    glyph_style: float = 0.0
    # Neighbouring lines, off by default: probability that the line above, below or both
    # (other text, 0.6-1.6x the size, shifted sideways, 5-45% of a line height away) stand
    # so close that the crop takes in a strip of them (8-45% of a line height), as the
    # padded boxes of real detectors and annotators cut lines out of dense pages and web
    # images. The old distractor neighbour (`distractors`) is a ghost of the line itself.
    neighbour_lines: float = 0.0

    def clean(self) -> LineRenderConfig:
        """These settings without the degradations (colour, rules and neighbour lines, low
        resolution, blur, noise, JPEG). Text and font are drawn before any of them, so a
        clean set of a seed holds the same texts in the same fonts as the full one: the
        difference in error between the two is what the degradations cost."""
        return dataclasses.replace(
            self,
            colour=0.0,
            distractors=0.0,
            low_res=0.0,
            blur=0.0,
            noise=0.0,
            jpeg=0.0,
            motion_blur=0.0,
            uneven_light=0.0,
            poster=0.0,
            dot_matrix=0.0,
            printer_bitmap=0.0,
            faded_print=0.0,
            photo=0.0,
            glyph_style=0.0,
            neighbour_lines=0.0,
        )


def _contrasting_colours(rng: np.random.Generator, cfg: LineRenderConfig) -> tuple[tuple, tuple]:
    dark_bg = rng.random() < cfg.dark_background
    bg_l = rng.uniform(20, 90) if dark_bg else rng.uniform(150, 255)
    fg_l = rng.uniform(180, 255) if dark_bg else rng.uniform(0, 90)
    if rng.random() < cfg.colour:

        def tint(level):
            c = level + rng.normal(0, 45, size=3)
            return tuple(int(v) for v in np.clip(c, 0, 255))

        return tint(bg_l), tint(fg_l)
    return (int(bg_l),) * 3, (int(fg_l),) * 3


def _background(rng: np.random.Generator, h: int, w: int, colour: tuple) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:] = colour
    kind = rng.integers(4)
    if kind == 1:  # gradient
        g = np.linspace(0, rng.uniform(-60, 60), w, dtype=np.float32)
        img += g[None, :, None] if rng.random() < 0.5 else np.linspace(0, g[-1], h)[:, None, None]
    elif kind == 2:  # paper-like low-frequency noise
        small = rng.normal(0, rng.uniform(5, 25), size=(max(2, h // 8), max(2, w // 8), 1))
        img += cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)[
            ..., None
        ]
    elif kind == 3:  # stains
        for _ in range(rng.integers(1, 4)):
            c = (int(rng.integers(w)), int(rng.integers(h)))
            r = int(rng.integers(h // 4 + 1, h + 2))
            cv2.circle(img, c, r, tuple(float(v) for v in rng.uniform(-40, 40, 3) + colour), -1)
        img = cv2.GaussianBlur(img, (0, 0), h / 6)
    return img


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def poster_lettering(
    mask: np.ndarray,
    size: int,
    rng: np.random.Generator,
    photo: float = 0.0,
    hollow: float = 0.0,
    extrude: float = 0.0,
):
    """Lettering as e-commerce images, posters and signs set it, around the glyph mask
    `mask (h, w) float32` of text drawn at `size` px.

    The ground is a busy surface (fabric, wood, stone, tiles, a blurred scene, or with
    probability `photo` a real photograph) or a saturated band (flat or graded); the
    letters are emboldened (a weight heavier than the face's), drop-shadowed, outlined in a
    contrasting colour and/or filled with a vertical gradient, each with its probability.
    With probability `extrude` they stand out of the ground as sign letters do (a solid
    side of 3-12% of the size in a darker colour), with probability `hollow` only their
    contour is drawn (outline lettering, the ground showing through the strokes). Both 0
    draw nothing from `rng`.

    Returns `(ground (h, w, 3) float32, layers, ink (h, w) float32)`: `layers` are
    `(alpha (h, w), colour (3,) or (h, 1, 3))` pairs to composite over the ground, bottom to
    top, the letters' fill last; `ink` is what the lettering covers (the outline included),
    for ink-tight crops.
    """
    h, w = mask.shape
    r = rng.random()
    if r < 0.4:
        ground = photo_or_surface(rng, h, w, photo).astype(np.float32)
    else:
        ground = np.empty((h, w, 3), np.float32)
        ground[:] = np.float32(saturated_colour(rng))
        if rng.random() < 0.5:  # graded band
            t = np.linspace(0.0, 1.0, w if rng.random() < 0.5 else h, dtype=np.float32)
            t = t[None, :, None] if t.size == w else t[:, None, None]
            ground = ground * (1 - t) + np.float32(saturated_colour(rng)) * t
    mean = tuple(float(c) for c in ground.mean(axis=(0, 1)))
    fill = np.asarray(contrasting(rng, mean, min_diff=70.0), np.float32)
    letters = mask
    if rng.random() < 0.3:  # emboldened
        letters = cv2.dilate(mask, _disc(max(1, round(size * rng.uniform(0.02, 0.05)))))
    layers, ink = [], letters
    if rng.random() < 0.35:  # drop shadow, possibly soft
        angle, dist = rng.uniform(0, 2 * np.pi), size * rng.uniform(0.03, 0.1)
        shift = np.float32([[1, 0, dist * np.cos(angle)], [0, 1, dist * np.sin(angle)]])
        shadow = cv2.warpAffine(letters, shift, (w, h))
        sigma = size * rng.uniform(0.0, 0.08)
        if sigma > 0.5:
            shadow = cv2.GaussianBlur(shadow, (0, 0), sigma)
        layers.append((shadow * rng.uniform(0.5, 1.0), np.float32(random_colour(rng, 0, 80))))
    if extrude and rng.random() < extrude:  # the letters' solid side, as on 3-D signs
        angle, depth = rng.uniform(0, 2 * np.pi), size * rng.uniform(0.03, 0.12)
        side, steps = np.zeros_like(letters), max(2, int(np.ceil(depth)))
        for d in np.linspace(depth / steps, depth, steps):  # a copy every pixel of depth
            shift = np.float32([[1, 0, d * np.cos(angle)], [0, 1, d * np.sin(angle)]])
            side = np.maximum(side, cv2.warpAffine(letters, shift, (w, h)))
        layers.append((side, fill * np.float32(rng.uniform(0.25, 0.6))))
        ink = np.maximum(ink, side)
    if rng.random() < 0.45:  # outline
        rim = cv2.dilate(letters, _disc(max(1, round(size * rng.uniform(0.04, 0.12)))))
        edge = contrasting(rng, tuple(float(c) for c in fill), min_diff=70.0)
        layers.append((rim, np.asarray(edge, np.float32)))
        ink = np.maximum(ink, rim)
    if rng.random() < 0.3:  # vertical gradient fill
        other = np.clip(fill + rng.normal(0, 70, 3), 0, 255).astype(np.float32)
        t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        fill = fill * (1 - t) + other * t
    if hollow and rng.random() < hollow:  # the contour alone, 3-7% of the size thick
        inner = cv2.erode(letters, _disc(max(1, round(size * rng.uniform(0.03, 0.07)))))
        letters = np.clip(letters - inner, 0.0, 1.0)
    layers.append((letters, fill))
    return ground, layers, ink


def dot_matrix(mask: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The glyphs of `mask (h, w) float32` (text drawn at `size` px) printed as a dot-matrix
    printer prints them: round dots on a grid of 10-20 dots to the em (7-14 to a capital's
    height), where the glyph covers the grid cell. Same shape and dtype."""
    h, w = mask.shape
    pitch = size * rng.uniform(0.05, 0.1)
    gh, gw = max(1, round(h / pitch)), max(1, round(w / pitch))
    cells = cv2.resize(mask, (gw, gh), interpolation=cv2.INTER_AREA)
    out = np.zeros((h, w), np.float32)
    # In quarter pixels (cv2's `shift`): dots of 0.6-0.9 pitch with gaps between them.
    radius = max(2, round(4 * pitch * rng.uniform(0.3, 0.45)))
    threshold = rng.uniform(0.2, 0.4)
    for gy, gx in zip(*np.nonzero(cells > threshold), strict=True):
        centre = (round(4 * (gx + 0.5) * w / gw), round(4 * (gy + 0.5) * h / gh))
        cv2.circle(out, centre, radius, 1.0, -1, cv2.LINE_AA, shift=2)
    return out


def printer_bitmap(
    mask: np.ndarray, size: int, rng: np.random.Generator, dots: tuple[float, float] = (12, 22)
) -> np.ndarray:
    """The glyphs of `mask (h, w) float32` (text drawn at `size` px) as a bitmap face draws
    them: whole square dots on a grid of `dots` to the em (a thermal receipt printer's
    faces have 12-24 dots to the line; Chinese bitmap faces 16-24, drawn by hand, so a
    finer grid stands in for them here), a dot inked where the glyph covers enough of its
    cell, in a quarter of the lines struck twice a dot apart as printers embolden. Hard
    stair-stepped edges and strokes of whole dots, unlike the smooth outlines of the
    TrueType faces. Same shape and dtype; values 0 or 1."""
    h, w = mask.shape
    pitch = max(1.0, size / rng.uniform(*dots))  # at least a pixel: aliased small print
    gh, gw = max(1, round(h / pitch)), max(1, round(w / pitch))
    cells = cv2.resize(mask, (gw, gh), interpolation=cv2.INTER_AREA)
    out = (cells > rng.uniform(0.3, 0.45)).astype(np.float32)
    if rng.random() < 0.25:  # emphasised: each dot printed again one dot to the right
        out[:, 1:] = np.maximum(out[:, 1:], out[:, :-1])
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_NEAREST)


def faded_print(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The ink of `mask (h, w) float32` faded as thermal receipts fade: lighter overall,
    unevenly along the line, and possibly cut by the white columns of dead print-head
    dots (the head spans the paper, which moves past it across the line). Same shape."""
    h, w = mask.shape
    field = smooth_noise(rng, h, w, max(4, int(h * rng.uniform(0.5, 3))))
    alpha = rng.uniform(0.45, 0.9) + rng.uniform(0.1, 0.4) * field
    out = mask * np.clip(alpha, 0.15, 1.0)
    if rng.random() < 0.4:
        for x in rng.integers(0, w, size=int(rng.integers(1, 6))):
            out[:, x : x + int(rng.integers(1, 3))] = 0.0
    return out.astype(np.float32)


def glyph_style(mask: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The glyphs of `mask (h, w) float32` (text drawn at `size` px) as another typeface
    would draw them: strokes bent by a smooth random displacement field (2-6% of the size,
    varying over a third of a glyph, so that each glyph and stroke bends its own way), and
    with probability 0.6 a heavier or lighter weight (strokes 2-8% of the size thicker, or
    up to 4% thinner). Display faces of e-commerce images and signs are commercial ones that
    no free font package holds; this keeps the model from learning only the free faces'
    exact shapes. Same shape and dtype."""
    h, w = mask.shape
    cell = max(2, int(size * rng.uniform(0.2, 0.45)))
    amp = size * rng.uniform(0.02, 0.06)
    dx = smooth_noise(rng, h, w, cell) * amp
    dy = smooth_noise(rng, h, w, cell) * amp
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if rng.random() < 0.6:
        if rng.random() < 0.65:  # heavier
            out = cv2.dilate(out, _disc(max(1, round(size * rng.uniform(0.01, 0.04)))))
        else:  # lighter, unless that would erase thin strokes
            thin = cv2.erode(out, _disc(max(1, round(size * rng.uniform(0.005, 0.02)))))
            if thin.sum() > 0.4 * out.sum():
                out = thin
    return out.astype(np.float32)


def _paste_max(canvas: np.ndarray, piece: np.ndarray, top: int, left: int) -> None:
    """`canvas[top:, left:] = max(canvas, piece)` where they overlap, in place."""
    h, w = canvas.shape
    ph, pw = piece.shape
    ys, xs = max(0, top), max(0, left)
    ye, xe = min(h, top + ph), min(w, left + pw)
    if ys < ye and xs < xe:
        region = canvas[ys:ye, xs:xe]
        np.maximum(region, piece[ys - top : ye - top, xs - left : xe - left], out=region)


def _ink_rows(mask: np.ndarray, y0: int, y1: int) -> tuple[int, int]:
    """The rows `[top, bottom)` of the ink in `mask (h, w) float32`, or `(y0, y1)` (the line
    box) where the ink is under half its height: flat text ("一", "--") and lower-case
    letters without ascenders ("o", "x": the ink alone would look like capitals) keep the
    line box."""
    rows = np.nonzero((mask > 0.3).any(axis=1))[0]
    if rows.size == 0 or rows[-1] + 1 - rows[0] < 0.5 * (y1 - y0):
        return y0, y1
    return int(rows[0]), int(rows[-1]) + 1


# What neighbouring lines say does not matter, only that they look like text: common hanzi,
# Latin letters and digits.
NEIGHBOUR_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下"
    "过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两"
    "体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线"
    "ABCDEFGHKLMNPRSTabcdeghkmnoprstuy0123456789"
)

_ITALIC = re.compile(r"italic|oblique|ita$", re.IGNORECASE)

# Marks that Chinese text prints full width but the 5990 charset holds only in their ASCII
# form (NFKC folds the one to the other): a line labelled "姓名:" is drawn "姓名：".
FULL_WIDTH_FORMS = {":": "：", ";": "；", "?": "？", "!": "！"}


def printed_forms(text: str, rng: np.random.Generator, p: float) -> str:
    """`text` as printed: with probability `p` (one draw per line, made only when the line
    has such a mark), each mark of FULL_WIDTH_FORMS right after a non-ASCII character (a
    replaced mark included) is replaced by its full-width form; as long as `text`."""
    chars = list(text)
    for i in range(1, len(chars)):  # left to right: "好?!" -> "好？！"
        if chars[i] in FULL_WIDTH_FORMS and not chars[i - 1].isascii():
            chars[i] = FULL_WIDTH_FORMS[chars[i]]
    printed = "".join(chars)
    if printed == text or rng.random() >= p:
        return text
    return printed


class LineRenderer:
    """Renders text lines with the given fonts; see the module docstring.

    Args:
      fonts: CJK fonts; each line is drawn with one that has all its glyphs.
      cfg: the ranges of the random choices.
      latin_fonts: Latin text fonts (`ocr_common.fonts.list_latin_fonts`); with probability
        `cfg.latin_font` the ASCII characters of a line are drawn with one of them, on the
        same baseline as the rest.
    """

    def __init__(
        self,
        fonts: Sequence[str | os.PathLike],
        cfg: LineRenderConfig | None = None,
        latin_fonts: Sequence[str | os.PathLike] = (),
    ):
        if not fonts:
            raise ValueError("LineRenderer needs at least one font")
        self.fonts = [Path(f) for f in fonts]
        self.cfg = cfg or LineRenderConfig()
        latin = [Path(f) for f in latin_fonts]
        self.latin_fonts = (
            [f for f in latin if not _ITALIC.search(f.stem)],
            [f for f in latin if _ITALIC.search(f.stem)],
        )
        # Faces are drawn by family (`sampling_weights`): the many weights of one family
        # must not crowd out the single-face families.
        self.font_weights = sampling_weights(self.fonts)
        self.latin_weights = tuple(sampling_weights(faces) for faces in self.latin_fonts)
        self.mono_fonts = [f for f in self.latin_fonts[0] if is_monospace(f)]
        self.mono_weights = sampling_weights(self.mono_fonts) if self.mono_fonts else None

    def _pick_latin_font(self, text: str, rng: np.random.Generator) -> Path | None:
        """A Latin font for the ASCII characters of `text`, or None (drawn with the CJK one)."""
        upright, italic = self.latin_fonts
        if not (upright or italic) or not any(c.isascii() and not c.isspace() for c in text):
            return None
        if rng.random() >= self.cfg.latin_font:
            return None
        if self.cfg.mono_latin and self.mono_fonts and rng.random() < self.cfg.mono_latin:
            return self.mono_fonts[rng.choice(len(self.mono_fonts), p=self.mono_weights)]
        k = int(bool(italic) and (not upright or rng.random() < self.cfg.latin_italic))
        faces = self.latin_fonts[k]
        return faces[rng.choice(len(faces), p=self.latin_weights[k])]

    def _pick_font(self, text: str, rng: np.random.Generator) -> Path:
        needed = set(text) - {" "}
        order = rng.choice(len(self.fonts), len(self.fonts), replace=False, p=self.font_weights)
        for i in order:
            if needed <= font_charset(self.fonts[i]):
                return self.fonts[i]
        # No single font has every glyph: take the one missing the fewest.
        return min(self.fonts, key=lambda f: len(needed - font_charset(f)))

    def _draw_text(self, text: str, rng: np.random.Generator, sizes: tuple[int, int]):
        """Draws `text` (its printed forms) at a font size drawn from `sizes` on a canvas;
        returns the ink mask `(h, w) float32`, the text box `(x0, y0, x1, y1)` of the line
        box and the font size."""
        cfg = self.cfg
        text = printed_forms(text, rng, cfg.full_width_marks)
        size = int(rng.integers(sizes[0], sizes[1] + 1))
        font = load_font(self._pick_font(text, rng), size)
        latin_path = self._pick_latin_font(text, rng)
        fonts = [font] * len(text)
        if latin_path is not None:
            latin, covered = load_font(latin_path, size), font_charset(latin_path)
            fonts = [latin if c.isascii() and c in covered else font for c in text]
        spacing = rng.uniform(*cfg.spacing) * size
        advances = [f.getlength(c) + spacing for c, f in zip(text, fonts, strict=True)]
        ascent, descent = font.getmetrics()
        pad = size
        w = int(sum(advances) + 2 * pad)
        h = int(ascent + descent + 2 * pad)
        mask = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(mask)
        x = float(pad)
        for c, f, adv in zip(text, fonts, advances, strict=True):
            # Every face on the CJK font's baseline ("ls": left, baseline).
            draw.text((x, pad + ascent), c, font=f, fill=255, anchor="ls")
            x += adv
        mask = np.asarray(mask, dtype=np.float32) / 255.0
        # Text box: the font's line box (ascent + descent) rather than the ink, so that
        # lines of flat characters ("一一") get the same height as the others.
        box = (pad, pad, int(x - spacing), pad + ascent + descent)
        return mask, box, size

    def __call__(self, text: str, rng: np.random.Generator) -> np.ndarray:
        """Renders `text`. Returns `(height, W) uint8`, dark or light text on any ground."""
        cfg = self.cfg
        small = bool(cfg.small_text) and rng.random() < cfg.small_text
        sizes = cfg.small_font_size if small else cfg.font_size
        mask, (x0, y0, x1, y1), size = self._draw_text(text, rng, sizes)
        h, w = mask.shape
        # Glyph style, receipt print and poster lettering draw only when switched on, so
        # that the data of a recipe without them stays as it was.
        if cfg.glyph_style and rng.random() < cfg.glyph_style:
            mask = glyph_style(mask, size, rng)
        if cfg.dot_matrix and rng.random() < cfg.dot_matrix:
            mask = dot_matrix(mask, size, rng)
        if cfg.printer_bitmap and rng.random() < cfg.printer_bitmap:
            # Finer grids for CJK glyphs (ideographs and the full-width forms drawn in the
            # CJK face), and none for small ones: a grid of whole pixels makes small hanzi
            # illegible, where real bitmap faces are drawn by hand.
            cjk = any(ord(c) >= CJK_START for c in text)
            if not (cjk and small):
                mask = printer_bitmap(mask, size, rng, (20, 28) if cjk else (12, 22))
        if cfg.faded_print and rng.random() < cfg.faded_print:
            mask = faded_print(mask, rng)
        near = None
        if cfg.neighbour_lines and rng.random() < cfg.neighbour_lines:
            mask, (y0, y1), near, reach = self._neighbours(text, rng, mask, (x0, y0, x1, y1))
            h, w = mask.shape
        if cfg.poster and rng.random() < cfg.poster:
            img, layers, ink = poster_lettering(
                mask, size, rng, cfg.photo, cfg.poster_hollow, cfg.poster_extrude
            )
            fg_col = tuple(float(c) for c in np.reshape(layers[-1][1], (-1, 3))[0])
        else:
            bg_col, fg_col = _contrasting_colours(rng, cfg)
            img = _background(rng, h, w, bg_col)
            layers, ink = [(mask, np.asarray(fg_col, np.float32))], mask
        if rng.random() < cfg.ink_crop:
            y0, y1 = _ink_rows(ink, y0, y1)
        th = y1 - y0
        if rng.random() < cfg.distractors:
            self._distractors(img, mask, rng, (x0, y0, x1, y1), fg_col)
        if near is not None:  # under the line's own letters
            layers.insert(-1, (near * rng.uniform(0.7, 1.0), np.asarray(fg_col, np.float32)))
        for alpha, colour in layers:  # bottom to top
            a = alpha[..., None]
            img = img * (1 - a) + colour * a

        # Geometry: shear, rotation and perspective around the text box, then the crop.
        my = rng.uniform(*cfg.margin_y, size=2) * th
        if near is not None:  # the crop reaches into each neighbour drawn
            my = np.maximum(my, [y0 - reach[0], reach[1] - y1])
        mx = rng.uniform(*cfg.margin_x, size=2) * th
        src = np.float32(
            [
                [x0 - mx[0], y0 - my[0]],
                [x1 + mx[1], y0 - my[0]],
                [x1 + mx[1], y1 + my[1]],
                [x0 - mx[0], y1 + my[1]],
            ]
        )
        src_w = src[1, 0] - src[0, 0]
        src_h = src[3, 1] - src[0, 1]
        out_h = cfg.height
        if small:  # about the crop's own height: no resampling of the small glyphs
            out_h = int(np.clip(round(src_h * rng.uniform(0.85, 1.0)), 8, cfg.height))
        out_w = max(4, int(round(src_w * out_h / src_h * rng.uniform(*cfg.stretch))))
        jitter = rng.normal(0, cfg.perspective * src_h, size=(4, 2)).astype(np.float32)
        shear = rng.uniform(-cfg.max_shear, cfg.max_shear) if rng.random() < 0.3 else 0.0
        angle = np.deg2rad(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
        centre = src.mean(0)
        rot = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        quad = (src - centre) @ rot.T + centre + jitter
        quad[:, 0] += shear * (quad[:, 1] - centre[1])
        dst = np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]])
        m = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
        line = cv2.warpPerspective(
            img,
            m,
            (out_w, out_h),
            flags=cv2.INTER_AREA if src_h > 2 * out_h else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        gray = cv2.cvtColor(np.clip(line, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        if small:  # already low resolution: no second shrink
            return to_line_image(self._degrade(gray, rng, low_res=False), cfg.height)
        return self._degrade(gray, rng)

    def non_text(self, rng: np.random.Generator) -> np.ndarray:
        """A `(height, W) uint8` gray crop without text: a busy surface (fabric, wood, stone,
        tiles, a blurred scene), security print, part of a photo, or marks (bars, hatching,
        rules, rings, dots), degraded like the text lines."""
        cfg = self.cfg
        h = int(rng.integers(cfg.height, 4 * cfg.height))
        w = max(8, int(h * rng.uniform(0.5, 10.0)))
        kind = rng.choice(["surface", "print", "photo", "marks"], p=[0.35, 0.25, 0.15, 0.25])
        if kind == "surface":
            img = photo_or_surface(rng, h, w, cfg.photo)
            if rng.random() < 0.3:  # the edge of a sheet or card lying on it
                y = int(rng.integers(0, h))
                img[y:] = background(rng, h - y, w, random_colour(rng, 150, 256))
        elif kind == "print":
            ground = background(rng, h, w, random_colour(rng, 150, 256)).astype(np.float32)
            img = np.clip(guilloche(rng, ground), 0, 255).astype(np.uint8)
        elif kind == "photo":  # a band across a head-and-shoulders photo
            w = min(w, 3 * h)
            tall = portrait(rng, int(w * rng.uniform(1.1, 1.5)), w)
            y = int(rng.integers(0, tall.shape[0] - h + 1)) if tall.shape[0] > h else 0
            img = tall[y : y + h]
        else:
            img = background(rng, h, w, random_colour(rng, 120, 256))
            self._marks(img, rng)
        out_w = max(8, int(round(img.shape[1] * cfg.height / img.shape[0])))
        gray = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
        gray = cv2.resize(gray, (out_w, cfg.height), interpolation=cv2.INTER_AREA)
        return self._degrade(gray, rng)

    @staticmethod
    def _marks(img: np.ndarray, rng: np.random.Generator) -> None:
        """Draws non-text marks on `img (h, w, 3) uint8` in place."""
        h, w = img.shape[:2]
        col = tuple(int(c) for c in random_colour(rng, 0, 110))
        kind = rng.integers(5)
        if kind == 0:  # barcode
            x = int(rng.integers(0, max(1, w // 4)))
            while x < w:
                bw = int(rng.integers(1, 5))
                if rng.random() < 0.5:
                    cv2.rectangle(img, (x, 0), (x + bw - 1, h), col, -1)
                x += bw
        elif kind == 1:  # hatching
            step = int(rng.integers(4, 14))
            for t in range(-h, w, step):
                cv2.line(img, (t, h), (t + h, 0), col, 1, cv2.LINE_AA)
        elif kind == 2:  # rules and box edges (a lone vertical rule could be "|" or "l")
            vertical = rng.random() < 0.5
            for _ in range(int(rng.integers(2 if vertical else 1, 5))):
                if not vertical:
                    y = int(rng.integers(0, h))
                    cv2.line(img, (0, y), (w, y), col, int(rng.integers(1, 4)))
                else:
                    x = int(rng.integers(0, w))
                    cv2.line(img, (x, 0), (x, h), col, int(rng.integers(1, 4)))
        elif kind == 3:  # arcs of large rings (stamps, logos); small ones would be "O"
            for _ in range(int(rng.integers(1, 4))):
                c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                axes = (int(rng.integers(h, 3 * h)), int(rng.integers(h, 3 * h)))
                cv2.ellipse(
                    img,
                    c,
                    axes,
                    float(rng.uniform(0, 180)),
                    0,
                    360,
                    col,
                    int(rng.integers(1, 4)),
                    cv2.LINE_AA,
                )
        else:  # dots and specks
            for _ in range(int(rng.integers(5, 40))):
                c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.circle(img, c, int(rng.integers(1, max(2, h // 6))), col, -1)

    def _neighbours(self, text: str, rng: np.random.Generator, mask: np.ndarray, box: tuple):
        """Lines above and/or below the line of `mask (h, w)` (text box `box`), on a canvas
        grown to hold them. Returns the grown mask, the line box's new rows `(y0, y1)`, the
        neighbours' ink `(h', w) float32` and the rows `(top, bottom)` to which the crop
        must reach so that it takes in a strip of each neighbour drawn (`(y0, y1)` on a
        side without one)."""
        x0, y0, x1, y1 = box
        th = y1 - y0
        grow = 2 * th
        mask = np.pad(mask, ((grow, grow), (0, 0)))
        y0, y1 = y0 + grow, y1 + grow
        near = np.zeros_like(mask)
        reach = [y0, y1]
        side = rng.choice(3, p=(0.4, 0.4, 0.2))  # above, below, both
        for above in (True, False):
            if side != 2 and above != (side == 0):
                continue
            n = int(rng.integers(2, max(3, int(1.5 * len(text))) + 1))
            other = "".join(NEIGHBOUR_CHARS[i] for i in rng.integers(len(NEIGHBOUR_CHARS), size=n))
            scale = rng.uniform(0.6, 1.6)
            size = max(8, round(th / 1.45 * scale))
            ghost, (gx0, gy0, _, gy1), _ = self._draw_text(other, rng, (size, size))
            gap = int(th * rng.uniform(0.05, 0.45))
            strip = int(th * rng.uniform(0.08, 0.45))
            # Where the neighbour's line box starts on the canvas, top-left of its mask.
            left = int(x0 + rng.uniform(-0.5, 0.5) * (x1 - x0)) - gx0
            top = (y0 - gap - gy1) if above else (y1 + gap - gy0)
            _paste_max(near, ghost, top, left)
            reach[0 if above else 1] = y0 - gap - strip if above else y1 + gap + strip
        return mask, (y0, y1), near, tuple(reach)

    def _distractors(self, img, mask, rng, box, fg_col) -> None:
        x0, y0, x1, y1 = box
        th = y1 - y0
        col = tuple(float(c) for c in np.clip(np.asarray(fg_col) + rng.normal(0, 30, 3), 0, 255))
        kind = rng.integers(3)
        if kind == 0:  # underline or table rules
            for y in [y1 + int(th * rng.uniform(0.05, 0.3))] + (
                [y0 - int(th * rng.uniform(0.1, 0.3))] if rng.random() < 0.5 else []
            ):
                cv2.line(img, (0, y), (img.shape[1], y), col, int(rng.integers(1, 3)))
        elif kind == 1:  # vertical rules (table cells)
            for x in (x0 - int(th * rng.uniform(0.1, 0.4)), x1 + int(th * rng.uniform(0.1, 0.4))):
                cv2.line(img, (x, 0), (x, img.shape[0]), col, int(rng.integers(1, 3)))
        else:  # ink of the neighbouring lines, cut by the crop
            shift = int(th * rng.uniform(1.0, 1.4))
            ghost = np.zeros_like(mask)
            if rng.random() < 0.5:
                ghost[:-shift] = mask[shift:]
            else:
                ghost[shift:] = mask[:-shift]
            ghost = ghost[..., None] * rng.uniform(0.5, 1.0)
            img[:] = img * (1 - ghost) + np.asarray(col, np.float32) * ghost

    def _degrade(
        self, gray: np.ndarray, rng: np.random.Generator, low_res: bool = True
    ) -> np.ndarray:
        """Uneven light, motion blur, low resolution (unless `low_res` is false), blur, noise
        and JPEG (`ocr_common.degrade`), each with its probability in `cfg`. `(h, w) uint8`
        -> same."""
        cfg = self.cfg
        # The camera effects draw only when switched on, so the data of a recipe without
        # them stays as it was.
        if cfg.uneven_light and rng.random() < cfg.uneven_light:
            gains = rng.uniform(0.55, 1.15, 2)
            gray = degrade.uneven_light(gray, gains[0], gains[1], rng.uniform(0.0, 0.5))
        if cfg.motion_blur and rng.random() < cfg.motion_blur:
            gray = degrade.motion_blur(gray, rng.uniform(1.5, 5), rng.uniform(-20, 20))
        if low_res and rng.random() < cfg.low_res:
            gray = degrade.downscale(gray, rng.uniform(*cfg.low_res_scale))
        if rng.random() < cfg.blur:
            gray = degrade.gaussian_blur(gray, rng.uniform(0.3, 1.2))
        if rng.random() < cfg.noise:  # sigma, then field, in float64: as the line data was made
            gray = degrade.add_noise(gray, rng.normal(0, rng.uniform(2, 12), gray.shape))
        if rng.random() < cfg.jpeg:
            gray = degrade.jpeg(gray, int(rng.integers(20, 95)))
        return gray
