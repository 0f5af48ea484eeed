"""Finding fonts for the renderers and for drawing results.

CJK fonts (`list_fonts`), in order: the six fonts that the `mplfonts` package ships (always
present after `pip install`), CJK fonts in the system font folders (e.g. Debian's
`fonts-wqy-*`, `fonts-arphic-*`, `fonts-noto-cjk`), and any files or folders the caller names.

Latin fonts (`list_latin_fonts`) draw the ASCII characters of a line, as Latin text is set on
documents, signs and screenshots: matplotlib's DejaVu and STIX faces (matplotlib comes with
mplfonts) and the system's (e.g. Debian's `fonts-liberation2`, `fonts-croscore`,
`fonts-freefont-ttf`, `fonts-urw-base35`).

Font collections (``.ttc``, ``.otc``: Debian's Noto CJK packs Japanese, Korean, Simplified
and Traditional Chinese faces of one weight in one file) are split into one file a face in a
cache folder (``split_collection``), so that every face is a path like any other font; faces
for Japanese or Korean are left out, their forms of shared characters differ from Chinese.
``python -m ocr_common.fonts`` lists the faces found and how much of the charset each covers
(``scripts/install_fonts.sh`` installs Debian's free CJK and Latin faces).
"""

from __future__ import annotations

import functools
import os
import re
import string
from collections.abc import Iterable, Sequence
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
    r"symbol|dingbat|D050000L|math|LastResort|NonUni|STIXSiz|^cm|display|DSEG", re.IGNORECASE
)


def mplfonts_dir() -> Path:
    """The folder of fonts shipped by the `mplfonts` package."""
    import importlib.util

    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'mplfonts' package is not installed (pip install mplfonts)")
    return Path(next(iter(spec.submodule_search_locations))) / "fonts"


COLLECTION_SUFFIXES = (".ttc", ".otc")
#: Faces of a collection whose names hold one of these words are not for Chinese text.
_OTHER_LANGUAGE_FACE = re.compile(r"\b(JP|KR|Japanese|Korean)\b")


def fonts_cache_dir() -> Path:
    """Where the faces of font collections are written: ``$XDG_CACHE_HOME/chinese-ocr-jax/
    fonts`` (``~/.cache/...``), or ``$CHINESE_OCR_JAX_FONT_CACHE``."""
    if os.environ.get("CHINESE_OCR_JAX_FONT_CACHE"):
        return Path(os.environ["CHINESE_OCR_JAX_FONT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chinese-ocr-jax" / "fonts"


@functools.cache
def split_collection(
    path: str | os.PathLike, out_dir: str | os.PathLike | None = None
) -> tuple[Path, ...]:
    """The faces of a font collection as single-face files, written once to ``out_dir``
    (default ``fonts_cache_dir()``) and reused after; Japanese and Korean faces left out.

    Returns:
      The face files, in the collection's order (empty for an unreadable collection).
    """
    from fontTools.ttLib import TTCollection

    path = Path(path)
    out = Path(out_dir) if out_dir is not None else fonts_cache_dir()
    stat = path.stat()
    # The source's size and time in the name: an updated package gets new face files.
    stem = f"{path.stem}-{stat.st_size:x}{int(stat.st_mtime):x}"
    done = out / f"{stem}.faces"
    if done.is_file():
        return tuple(out / name for name in done.read_text("utf-8").split())
    try:
        collection = TTCollection(str(path), lazy=True)
    except Exception:  # not a collection after all, or damaged: fontTools raises many kinds
        return ()
    out.mkdir(parents=True, exist_ok=True)
    faces = []
    for index, face in enumerate(collection.fonts):
        name = face["name"].getDebugName(4) or f"face {index}"
        if _OTHER_LANGUAGE_FACE.search(name):
            continue
        suffix = ".otf" if "CFF " in face or "CFF2" in face else ".ttf"
        target = out / f"{stem}-{index}{suffix}"
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        face.save(str(tmp))
        os.replace(tmp, target)  # atomic: another process may be splitting the same file
        faces.append(target)
    tmp = done.with_name(f".{done.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(f.name for f in faces) + "\n", "utf-8")
    os.replace(tmp, done)
    return tuple(faces)


def _font_files(root: Path) -> list[Path]:
    """Font files below `root` (or `root` itself), collections split into their faces."""
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)
    else:
        return []
    out: list[Path] = []
    for f in files:
        out += split_collection(f) if f.suffix.lower() in COLLECTION_SUFFIXES else [f]
    return out


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


@functools.cache
def is_monospace(path: str | os.PathLike) -> bool:
    """True for a face whose letters all advance alike ('i' as wide as 'W'): the faces of
    receipts, tickets, terminals and code."""
    font = load_font(path, 40)
    return abs(font.getlength("i") - font.getlength("W")) < 0.5


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


def font_family(path: str | os.PathLike) -> str:
    """A font file's family as its file name says it: the stem up to the first ``-``
    (``NotoSansCJK-Bold-...-2.otf`` and ``NotoSansCJK-Thin-...-3.otf`` are one family)."""
    return Path(path).stem.split("-")[0]


def sampling_weights(fonts: Sequence[str | os.PathLike]) -> np.ndarray:
    """Probabilities of drawing each font: ``1 / sqrt(faces of its family)``, normalised.

    A family of many weights (Noto CJK: 27 Sans faces) is drawn more often than a
    single-face family, as real print uses its weights, but not 27 times as often.

    Returns:
      ``(len(fonts),) float64`` summing to 1 (empty for no fonts).
    """
    families = [font_family(f) for f in fonts]
    size = {f: families.count(f) for f in set(families)}
    w = np.asarray([1.0 / np.sqrt(size[f]) for f in families], np.float64)
    return w / w.sum() if len(w) else w


def coverage_report(fonts: Iterable[str | os.PathLike], chars: str) -> list[tuple[Path, float]]:
    """``(font, fraction of the distinct characters of chars that it maps)``, best first."""
    wanted = set(chars) - set(string.whitespace)
    rows = [(Path(f), len(wanted & font_charset(f)) / max(1, len(wanted))) for f in fonts]
    return sorted(rows, key=lambda r: (-r[1], str(r[0])))


def main(argv: list[str] | None = None) -> None:
    """``python -m ocr_common.fonts [--charset FILE]``: the CJK and Latin faces the renderers
    find (collections split into faces) and the share of the charset each one maps."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument(
        "--charset",
        type=Path,
        default=None,
        help="a text file whose characters to check (e.g. "
        "densenet_jax/char_std_5990.txt); default: the CJK probe only",
    )
    p.add_argument("--fonts", nargs="*", default=(), help="more font files or folders")
    args = p.parse_args(argv)
    chars = args.charset.read_text("utf-8") if args.charset else _PROBE
    cjk = list_fonts(args.fonts)
    print(
        f"{len(cjk)} CJK faces (share of the {len(set(chars) - set(string.whitespace))} "
        f"characters of {args.charset or 'the probe'} mapped):"
    )
    for path, share in coverage_report(cjk, chars):
        print(f"  {share:6.1%}  {path}")
    latin = list_latin_fonts(args.fonts)
    print(f"{len(latin)} Latin faces:")
    for path in latin:
        print(f"  {path}")


if __name__ == "__main__":
    main()
