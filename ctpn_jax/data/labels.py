"""Text-line label files: readers, writers and folder discovery.

Formats (all UTF-8, with or without a byte-order mark):

- ICDAR 2015 (``gt_<name>.txt``): one line per box, ``x1,y1,x2,y2,x3,y3,x4,y4,text``; the text
  may itself contain commas; ``###`` marks a don't-care region.
- ICDAR 2013 (``gt_<name>.txt``): ``xmin ymin xmax ymax "text"`` (training set, spaces) or
  ``xmin, ymin, xmax, ymax, "text"`` (test set, commas).  Boxes become axis-aligned quads.
- JSON (``<name>.json``, the format of ``shared/dev/gt``): ``{"image", "width", "height",
  "tags", "lines": [{"box": [x1, y1, ..., x4, y4], "text"}]}``.

Quadrilaterals are ``(4, 2) float32`` points, clockwise from the top-left for the files we
write; read quads are kept in the file's order except that ICDAR 2013 boxes are expanded
clockwise.  Malformed files raise ``LabelError`` naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DONT_CARE = "###"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FORMATS = ("icdar2015", "icdar2013", "json")


class LabelError(ValueError):
    """A malformed label file; the message names the file (and line, where there is one)."""


@dataclasses.dataclass
class TextLine:
    """One annotated text line.

    Attributes:
        quad: ``(4, 2) float32`` corner points in image pixels.
        text: the transcription; ``"###"`` means don't care.
    """

    quad: np.ndarray
    text: str

    @property
    def ignore(self) -> bool:
        """True for don't-care regions."""
        return self.text == DONT_CARE


@dataclasses.dataclass
class Sample:
    """An image file and its label file."""

    image: Path
    label: Path


def _num(tok: str, path: Path, lineno: int) -> float:
    try:
        v = float(tok)
    except ValueError:
        raise LabelError(f"{path}:{lineno}: {tok.strip()!r} is not a number") from None
    if not np.isfinite(v):
        raise LabelError(f"{path}:{lineno}: coordinate {tok.strip()!r} is not finite")
    return v


def _read_text(path: Path) -> str:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise LabelError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise LabelError(f"{path}:{line}: not valid UTF-8") from None


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def read_icdar2015(path: str | os.PathLike) -> list[TextLine]:
    """Read an ICDAR 2015 ``x1,y1,...,x4,y4,text`` file (blank lines are skipped)."""
    path = Path(path)
    out = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(",", 8)
        if len(parts) < 8:
            raise LabelError(
                f"{path}:{lineno}: expected 8 coordinates and a text "
                f"(x1,y1,...,x4,y4,text), got {len(parts)} fields: {line.strip()!r}"
            )
        coords = [_num(t, path, lineno) for t in parts[:8]]
        text = _strip_quotes(parts[8]) if len(parts) > 8 else ""
        out.append(TextLine(np.asarray(coords, np.float32).reshape(4, 2), text))
    return out


_IC13 = re.compile(r"^\s*([^\s,]+)[\s,]+([^\s,]+)[\s,]+([^\s,]+)[\s,]+([^\s,]+)(?:[\s,]+(.*))?$")


def read_icdar2013(path: str | os.PathLike) -> list[TextLine]:
    """Read an ICDAR 2013 ``xmin ymin xmax ymax "text"`` file (spaces or commas)."""
    path = Path(path)
    out = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        m = _IC13.match(line)
        if m is None:
            raise LabelError(
                f"{path}:{lineno}: expected 'xmin ymin xmax ymax \"text\"', got {line.strip()!r}"
            )
        x0, y0, x1, y1 = (_num(m.group(i), path, lineno) for i in range(1, 5))
        if x1 < x0 or y1 < y0:
            raise LabelError(f"{path}:{lineno}: xmax < xmin or ymax < ymin in {line.strip()!r}")
        quad = np.asarray([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        out.append(TextLine(quad, _strip_quotes(m.group(5) or "")))
    return out


def read_json(path: str | os.PathLike) -> list[TextLine]:
    """Read a JSON label file (the ``shared/dev/gt`` format)."""
    path = Path(path)
    try:
        doc = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise LabelError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("lines"), list):
        raise LabelError(f"{path}: expected an object with a 'lines' list")
    out = []
    for i, item in enumerate(doc["lines"]):
        box = item.get("box") if isinstance(item, dict) else None
        if not isinstance(box, list) or len(box) != 8:
            raise LabelError(f"{path}: lines[{i}]: 'box' must be a list of 8 numbers")
        try:
            coords = np.asarray(box, np.float64)
        except (TypeError, ValueError):
            raise LabelError(f"{path}: lines[{i}]: 'box' must be a list of 8 numbers") from None
        if coords.dtype.kind not in "fiu" or not np.isfinite(coords).all():
            raise LabelError(f"{path}: lines[{i}]: 'box' must be a list of 8 finite numbers")
        text = item.get("text", "")
        if not isinstance(text, str):
            raise LabelError(f"{path}: lines[{i}]: 'text' must be a string")
        out.append(TextLine(coords.astype(np.float32).reshape(4, 2), text))
    return out


def detect_format(path: str | os.PathLike) -> str:
    """Guess a label file's format: ``"json"``, ``"icdar2015"`` or ``"icdar2013"``.

    A ``.json`` file is JSON; a text file is ICDAR 2015 when any line starts with eight
    numbers, else ICDAR 2013 (so a malformed line in an ICDAR 2015 file is reported by the
    ICDAR 2015 reader, not read as ICDAR 2013).
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        return "json"
    for line in _read_text(path).splitlines():
        n = 0
        for tok in re.split(r"[\s,]+", line.strip())[:8]:
            try:
                float(tok)
            except ValueError:
                break
            n += 1
        if n >= 8:
            return "icdar2015"
    return "icdar2013"


def read_labels(path: str | os.PathLike, fmt: str | None = None) -> list[TextLine]:
    """Read a label file in ``fmt`` (one of ``FORMATS``; guessed when None)."""
    fmt = fmt or detect_format(path)
    readers = {"icdar2015": read_icdar2015, "icdar2013": read_icdar2013, "json": read_json}
    if fmt not in readers:
        raise ValueError(f"unknown label format {fmt!r}; expected one of {FORMATS}")
    return readers[fmt](path)


def lines_to_arrays(lines: Sequence[TextLine]) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 4, 2) float32`` quads and ``(N,) bool`` don't-care flags."""
    if not lines:
        return np.zeros((0, 4, 2), np.float32), np.zeros((0,), bool)
    quads = np.stack([np.asarray(t.quad, np.float32).reshape(4, 2) for t in lines])
    return quads, np.asarray([t.ignore for t in lines], bool)


def _fmt_num(v: float) -> str:
    return str(int(round(v))) if abs(v - round(v)) < 1e-6 else f"{v:.2f}"


def format_icdar2015(lines: Sequence[TextLine]) -> str:
    """The text of an ICDAR 2015 label file."""
    rows = []
    for t in lines:
        coords = ",".join(_fmt_num(v) for v in np.asarray(t.quad, np.float64).reshape(-1))
        rows.append(f"{coords},{t.text}")
    return "".join(r + "\n" for r in rows)


def format_json(
    lines: Sequence[TextLine], image: str, width: int, height: int, tags: Sequence[str] = ()
) -> str:
    """The text of a JSON label file."""
    doc = {
        "image": image,
        "width": int(width),
        "height": int(height),
        "tags": list(tags),
        "lines": [
            {"box": [round(float(v), 2) for v in np.asarray(t.quad).reshape(-1)], "text": t.text}
            for t in lines
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def label_name(image_name: str, fmt: str) -> str:
    """Label file name for ``image_name`` in ``fmt``: ``gt_<stem>.txt`` or ``<stem>.json``."""
    stem = Path(image_name).stem
    return f"{stem}.json" if fmt == "json" else f"gt_{stem}.txt"


def find_samples(folder: str | os.PathLike, require_labels: bool = True) -> list[Sample]:
    """Pair the images of a folder with their label files.

    Images are taken from ``folder/images`` when it exists, else from ``folder``; labels are
    looked for in ``folder/gt``, ``folder/labels``, ``folder/annotations``, the image folder
    and ``folder``, as ``<stem>.json``, ``gt_<stem>.txt`` or ``<stem>.txt``.

    Raises:
        FileNotFoundError: no folder, no images, or (with ``require_labels``) an image
            without labels (the message names it).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    img_dir = root / "images" if (root / "images").is_dir() else root
    images = sorted(
        p for p in img_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {img_dir}")
    label_dirs = [
        d for d in (root / "gt", root / "labels", root / "annotations", img_dir, root) if d.is_dir()
    ]
    out, missing = [], []
    for img in images:
        label = None
        for d in label_dirs:
            for name in (f"{img.stem}.json", f"gt_{img.stem}.txt", f"{img.stem}.txt"):
                if (d / name).is_file():
                    label = d / name
                    break
            if label is not None:
                break
        if label is None:
            missing.append(img.name)
        else:
            out.append(Sample(img, label))
    if missing and require_labels:
        raise FileNotFoundError(
            f"{len(missing)} image(s) in {img_dir} have no label file "
            f"(looked for <stem>.json, gt_<stem>.txt, <stem>.txt): {', '.join(missing[:5])}"
        )
    return out
