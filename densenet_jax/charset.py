"""The recogniser's character set: text <-> class ids.

Class 0 is the CTC blank and class k is line k of the character file, so the original
dataset labels (`name.jpg k1 ... k10`, k = line number) are used as they are. Line 0 of the
original file is a space: it shares its index with the blank, so spaces are not a class
(the original never predicted them either); `encode` drops whitespace explicitly.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CHARSET_FILE = Path(__file__).with_name("char_std_5990.txt")
BLANK_ID = 0


class UnknownCharacterError(ValueError):
    """Text holds characters that the charset cannot encode."""

    def __init__(self, text: str, unknown: Sequence[str], where: str = ""):
        self.text, self.unknown = text, list(unknown)
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}characters not in the charset: {''.join(self.unknown)!r} in {text!r}"
        )


@dataclass(frozen=True)
class Charset:
    """Maps text to class ids (1..len(lines)-1) and back; 0 is the CTC blank.

    Attributes:
      lines: the lines of the character file; `lines[k]` is the text of class k (k >= 1).
    """

    lines: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        index: dict[str, int] = {}
        for k, ch in enumerate(self.lines):
            # Duplicates ('1', '3', '■', '荼', '崂' in the 5990 file) map to their first line.
            if k >= 1 and ch and ch not in index:
                index[ch] = k
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_file(cls, path: str | Path) -> Charset:
        """Reads a character file: one character per line, line 0 reserved for the blank."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"charset file {path} does not exist")
        text = path.read_text(encoding="utf-8-sig")
        lines = text.split("\n")
        if lines and lines[-1] == "":  # trailing newline
            lines = lines[:-1]
        lines = [ln.rstrip("\r") for ln in lines]
        for k, ln in enumerate(lines[1:], start=1):
            if len(ln) != 1:
                raise ValueError(f"{path}:{k + 1}: expected one character per line, got {ln!r}")
        return cls(tuple(lines))

    @classmethod
    def from_chars(cls, chars: str) -> Charset:
        """A charset whose class k (k >= 1) is `chars[k - 1]`."""
        return cls((" ",) + tuple(chars))

    @staticmethod
    @functools.cache
    def default() -> Charset:
        """The original 5990-line character set shipped with the package."""
        return Charset.from_file(DEFAULT_CHARSET_FILE)

    @property
    def num_classes(self) -> int:
        """Number of output classes including the blank."""
        return len(self.lines)

    @property
    def chars(self) -> list[str]:
        """The distinct encodable characters, in class order."""
        return list(self._index)

    @property
    def sha256(self) -> str:
        """A hash identifying the exact class order (stored with exported weights)."""
        return hashlib.sha256("\n".join(self.lines).encode("utf-8")).hexdigest()

    def __contains__(self, ch: str) -> bool:
        return ch in self._index

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of `text` (whitespace aside) that are not in the charset, in order."""
        return list(dict.fromkeys(c for c in text if not c.isspace() and c not in self._index))

    def encode(self, text: str, where: str = "") -> list[int]:
        """Class ids of the characters of `text`; whitespace is skipped (it is not a class).

        Raises:
          UnknownCharacterError: some character is not in the charset (never dropped silently).
        """
        unknown = self.unknown_chars(text)
        if unknown:
            raise UnknownCharacterError(text, unknown, where)
        return [self._index[c] for c in text if not c.isspace()]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of class ids; blanks (0) are skipped, no repeat collapsing here."""
        n = len(self.lines)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise ValueError(f"class id {i} out of range [0, {n})")
            if i != BLANK_ID:
                out.append(self.lines[i])
        return "".join(out)
