"""Real Chinese prose for training text: the Chinese manual pages Debian ships.

`manpages-zh` (installed by ``scripts/install_fonts.sh``) holds about a thousand manual pages
translated into Simplified Chinese: sentences written by people, with the punctuation, the
mixed Latin commands and the numbers of real technical prose, where the word lists of
`ocr_common.corpus` give only word statistics. ``sentences()`` reads them once (about a
second) and returns the sentences; without the package it returns an empty list.
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterable
from pathlib import Path

MAN_DIRS = (Path("/usr/share/man/zh_CN"),)
#: troff escapes: fonts (\fB, \f(CW, \f[I]), the zero-width ones, named characters.
_FONT = re.compile(r"\\f(\(..|\[[^\]]*\]|.)")
_NAMED = {r"\(em": "—", r"\(en": "-", r"\(lq": "“", r"\(rq": "”", r"\(bu": "·", r"\(co": "©"}
_ZERO_WIDTH = re.compile(r"\\[&,/:%|^]")
_OTHER = re.compile(r"\\(\(..|\*\(..|\*.|\[[^\]]*\]|s[-+]?\d|[a-zA-Z])")
_SENTENCE_END = re.compile(r"(?<=[。！？；])")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WIDE = re.compile(r"[\u2014\u2018-\u201d\u2026\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def plain_text(troff: str) -> list[str]:
    """The text paragraphs of a troff manual page: requests dropped (their arguments kept
    for headings), escapes resolved, lines of a paragraph joined."""
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraphs.append(_join(current))
            current.clear()

    for raw in troff.splitlines():
        line = raw.rstrip()
        if line.startswith((".", "'")):
            request, _, arg = line[1:].partition(" ")
            flush()
            if request in ("SH", "SS") and arg.strip():
                paragraphs.append(_clean(arg.strip().strip('"')))
            continue
        line = _clean(line)
        if line:
            current.append(line)
        else:
            flush()
    flush()
    return [p for p in paragraphs if p]


def _clean(line: str) -> str:
    line = _FONT.sub("", line)
    for escape, char in _NAMED.items():
        line = line.replace(escape, char)
    line = _ZERO_WIDTH.sub("", line).replace(r"\-", "-").replace("\\ ", " ")
    line = _OTHER.sub(lambda m: "\\" if m.group(0) == r"\e" else "", line)
    return " ".join(line.split())


def _join(lines: Iterable[str]) -> str:
    out = ""
    for line in lines:  # no space next to Chinese characters or marks across a line break
        if out and not (_WIDE.match(out[-1]) or _WIDE.match(line[0])):
            out += " "
        out += line
    return out


def split_sentences(paragraph: str) -> list[str]:
    """A paragraph cut after each 。！？； (the mark stays with its sentence)."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def cjk_share(text: str) -> float:
    """The fraction of the non-space characters of `text` that are CJK ideographs."""
    chars = [c for c in text if not c.isspace()]
    return sum(bool(_CJK.match(c)) for c in chars) / max(1, len(chars))


@functools.cache
def sentences(min_cjk: float = 0.4, dirs: tuple[Path, ...] = MAN_DIRS) -> tuple[str, ...]:
    """Sentences of the Chinese manual pages under `dirs` with at least `min_cjk` of their
    characters Chinese (the rest are commands and options), each once (the translators'
    footer repeats on every page), in file order; () when the pages are not installed."""
    out: list[str] = []
    for folder in dirs:
        for path in sorted(folder.rglob("*.gz")) if folder.is_dir() else ():
            try:
                text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
            except (OSError, EOFError):
                continue
            for paragraph in plain_text(text):
                out += [s for s in split_sentences(paragraph) if cjk_share(s) >= min_cjk]
    return tuple(dict.fromkeys(out))
