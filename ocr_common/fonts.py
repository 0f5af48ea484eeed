"""Finding fonts for the renderers and for drawing results.

CJK fonts (`list_fonts`), in order: the six fonts that the `mplfonts` package ships (always
present after `pip install`), CJK fonts in the system font folders (e.g. Debian's
`fonts-wqy-*`, `fonts-arphic-*`, `fonts-noto-cjk`), and any files or folders the caller names.

Latin fonts (`list_latin_fonts`) draw the ASCII characters of a line, as Latin text is set on
documents, signs and screenshots: matplotlib's DejaVu and STIX faces (matplotlib comes with
mplfonts) and the system's (e.g. Debian's `fonts-liberation2`, `fonts-croscore`,
`fonts-freefont-ttf`, `fonts-urw-base35`).
"""

from __future__ import annotations

import functools
import os
import re
import string
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import ImageFont

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
SYSTEM_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    os.path.expanduser("~/.fonts"),
    os.path.expanduser("~/.local/share/fonts"),
)
# Probe characters: common hanzi that every Simplified Chinese font has.
_PROBE = "中国的人"
# A Latin font must map all of these; fonts whose names match `_NOT_TEXT_FONTS` map ASCII
# codes to symbols, dingbats, math or placeholder glyphs instead.
_LATIN_PROBE = string.ascii_letters + string.digits
_NOT_TEXT_FONTS = re.compile(
    r"symbol|dingbat|D050000L|math|LastResort|NonUni|STIXSiz|^cm|display", re.IGNORECASE
)


def mplfonts_dir() -> Path:
    """The folder of fonts shipped by the `mplfonts` package."""
    import importlib.util

    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'mplfonts' package is not installed (pip install mplfonts)")
    return Path(next(iter(spec.submodule_search_locations))) / "fonts"


def _font_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)


def _candidates(
    first: Iterable[Path], extra: Iterable[str | os.PathLike], system: bool
) -> list[Path]:
    """Font files of the `first` folders, then of the system's, then of `extra`."""
    candidates = [f for root in first for f in _font_files(root)]
    if system:
        for d in SYSTEM_FONT_DIRS:
            candidates += _font_files(Path(d))
    for e in extra:
        p = Path(e)
        if not p.exists():
            raise FileNotFoundError(f"font path {p} does not exist")
        candidates += _font_files(p)
    return candidates


@functools.cache
def has_cjk_glyphs(path: str) -> bool:
    """True when the font at `path` draws real glyphs (not the missing-glyph box) for hanzi."""
    try:
        font = ImageFont.truetype(path, 24)
    except OSError:
        return False
    # A missing glyph renders as the same .notdef box for every character, so distinct
    # hanzi giving distinct, non-empty masks means the font covers them.
    masks = []
    for ch in _PROBE:
        mask = font.getmask(ch)
        if mask.getbbox() is None:
            return False
        masks.append(np.asarray(mask).tobytes())
    return len(set(masks)) == len(masks)


def list_fonts(extra: Iterable[str | os.PathLike] = (), system: bool = True) -> list[Path]:
    """CJK-capable font files: mplfonts', then the system's, then `extra` (files or folders).

    Args:
      extra: more font files or folders to search.
      system: also search the system font folders.

    Returns:
      Sorted, de-duplicated paths, each verified to draw hanzi.

    Raises:
      FileNotFoundError: a path in `extra` does not exist, or no CJK font is found at all.
    """
    candidates = _candidates([mplfonts_dir()], extra, system)
    seen, fonts = set(), []
    for p in candidates:
        key = p.resolve()
        if key not in seen and has_cjk_glyphs(str(p)):
            seen.add(key)
            fonts.append(p)
    if not fonts:
        raise FileNotFoundError("no CJK-capable font found; install mplfonts or pass --fonts")
    return fonts


def matplotlib_fonts_dir() -> Path | None:
    """The folder of TrueType fonts that matplotlib ships, or None without matplotlib."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.cache
def is_latin_text_font(path: str) -> bool:
    """True for a text font that maps every ASCII letter and digit and draws no hanzi."""
    if _NOT_TEXT_FONTS.search(Path(path).stem):
        return False
    try:
        return set(_LATIN_PROBE) <= font_charset(path) and not has_cjk_glyphs(path)
    except Exception:  # unreadable or not a font: fontTools raises many kinds
        return False


def list_latin_fonts(extra: Iterable[str | os.PathLike] = (), system: bool = True) -> list[Path]:
    """Latin text fonts without hanzi: matplotlib's, then the system's, then `extra`.

    Args:
      extra: more font files or folders to search.
      system: also search the system font folders.

    Returns:
      De-duplicated paths (by file name: matplotlib and Debian both ship DejaVu), possibly
      empty: a renderer then draws Latin characters with its CJK fonts only.
    """
    mpl = matplotlib_fonts_dir()
    candidates = _candidates([mpl] if mpl is not None else [], extra, system)
    seen, fonts = set(), []
    for p in candidates:
        if p.name not in seen and is_latin_text_font(str(p)):
            seen.add(p.name)
            fonts.append(p)
    return fonts


def default_font() -> Path:
    """A sans-serif CJK font for drawing results (Noto Sans CJK SC from mplfonts)."""
    path = mplfonts_dir() / "NotoSansCJKsc-Regular.otf"
    return path if path.exists() else list_fonts(system=False)[0]


@functools.lru_cache(maxsize=256)
def load_font(path: str | os.PathLike, size: int) -> ImageFont.FreeTypeFont:
    """A cached PIL font object for `path` at pixel `size`."""
    return ImageFont.truetype(str(path), int(size))


@functools.cache  # one small set per font file; renderers ask on every line
def font_charset(path: str | os.PathLike) -> frozenset[str]:
    """The characters that the font at `path` maps to glyphs (from its cmap table)."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(path), fontNumber=0, lazy=True)
    try:
        return frozenset(chr(c) for c in font.getBestCmap())
    finally:
        font.close()
