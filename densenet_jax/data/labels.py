"""Readers for labelled line images.

Two formats:
- the original's: an image folder and `data_train.txt` lines `name.jpg k1 k2 ... kn`, each k
  a line number of the charset file (= our class id);
- the common `path<TAB>text` file (paths relative to the label file's folder).

Both give a list of `LabeledLine`. Any malformed line, missing image or character outside the
charset raises `LabelFileError` naming the file and line number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from densenet_jax.charset import Charset, UnknownCharacterError


class LabelFileError(ValueError):
    """A problem in a label file; the message names the file and line."""


@dataclass(frozen=True)
class LabeledLine:
    path: Path
    text: str
    labels: tuple[int, ...]


def _lines(path: Path):
    if not path.is_file():
        raise LabelFileError(f"label file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise LabelFileError(f"{path}: not UTF-8 text ({e})") from e
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield n, line


def read_original_labels(
    label_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    charset: Charset,
    check_images: bool = True,
) -> list[LabeledLine]:
    """Reads `name.jpg k1 ... kn` lines (class ids = charset line numbers)."""
    label_file, image_dir = Path(label_file), Path(image_dir)
    out = []
    for n, line in _lines(label_file):
        parts = line.split()
        where = f"{label_file}:{n}"
        if len(parts) < 2:
            raise LabelFileError(f"{where}: expected 'image k1 k2 ...', got {line!r}")
        try:
            ids = tuple(int(k) for k in parts[1:])
        except ValueError:
            raise LabelFileError(f"{where}: class ids must be integers, got {line!r}") from None
        bad = [k for k in ids if not 1 <= k < charset.num_classes]
        if bad:
            raise LabelFileError(f"{where}: class ids {bad} outside 1..{charset.num_classes - 1}")
        path = image_dir / parts[0]
        if check_images and not path.is_file():
            raise LabelFileError(f"{where}: image {path} does not exist")
        out.append(LabeledLine(path, charset.decode(ids), ids))
    if not out:
        raise LabelFileError(f"{label_file}: no labelled lines")
    return out


def _find_image(name: str, folders: list[Path]) -> Path:
    if os.path.isabs(name):
        return Path(name)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return folders[0] / name


def read_tsv_labels(
    label_file: str | os.PathLike,
    charset: Charset | None,
    check_images: bool = True,
    image_dir: str | os.PathLike | None = None,
) -> list[LabeledLine]:
    """Reads `path<TAB>text` lines.

    Relative paths are looked up in `image_dir` if given, else in the label file's folder
    and its `lines/` and `images/` subfolders.

    With `charset=None` the texts are not encoded (`labels` stays empty): for references
    that may hold characters a model cannot output, which then count as errors.
    """
    label_file = Path(label_file)
    folders = (
        [Path(image_dir)]
        if image_dir is not None
        else [label_file.parent, label_file.parent / "lines", label_file.parent / "images"]
    )
    out = []
    for n, line in _lines(label_file):
        where = f"{label_file}:{n}"
        if "\t" not in line:
            raise LabelFileError(f"{where}: expected 'path<TAB>text', got {line!r}")
        name, text = line.split("\t", 1)
        text = text.strip()
        if not text:
            raise LabelFileError(f"{where}: empty text for {name!r}")
        path = _find_image(name, folders)
        if check_images and not path.is_file():
            raise LabelFileError(f"{where}: image {path} does not exist")
        try:
            ids = tuple(charset.encode(text)) if charset is not None else ()
        except UnknownCharacterError as e:
            raise LabelFileError(f"{where}: {e}") from None
        out.append(LabeledLine(path, text, ids))
    if not out:
        raise LabelFileError(f"{label_file}: no labelled lines")
    return out


def read_labels(
    label_file: str | os.PathLike,
    charset: Charset,
    image_dir: str | os.PathLike | None = None,
    check_images: bool = True,
    encode: bool = True,
) -> list[LabeledLine]:
    """Reads either format: TAB-separated lines mean `path<TAB>text`, else the original's.

    For the original format the images are in `image_dir` (default: an `images/` folder
    beside the label file, else the label file's folder). `encode=False` keeps texts with
    characters outside `charset` (TAB format only; see `read_tsv_labels`).
    """
    label_file = Path(label_file)
    first = next((line for _, line in _lines(label_file)), "")
    if "\t" in first:
        return read_tsv_labels(label_file, charset if encode else None, check_images, image_dir)
    if image_dir is None:
        image_dir = label_file.parent / "images"
        if not image_dir.is_dir():
            image_dir = label_file.parent
    return read_original_labels(label_file, image_dir, charset, check_images)
