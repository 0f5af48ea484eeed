"""What the command line reads and writes: input discovery, output names, result files.

Every output file is written atomically: ``<name>.json`` (the image's line records),
``<name>.txt`` (the text in reading order) and ``<name>.jpg`` (boxes and text drawn).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ocr_common.io import IMAGE_SUFFIXES, atomic_write_bytes, atomic_write_text

#: Files with these suffixes given as inputs are lists of images, one path a line.
LIST_SUFFIXES = (".txt", ".lst", ".list")


class InputError(ValueError):
    """Nothing to process (no images found); the message says where we looked."""


def format_document(doc: dict) -> str:
    """The JSON text of an image's results: one line record a line, like the dev set's files."""
    head = ",\n".join(
        f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in doc.items()
        if k != "lines"
    )
    lines = ",\n".join(f"  {json.dumps(r, ensure_ascii=False)}" for r in doc["lines"])
    return (
        f'{{\n{head},\n "lines": [\n{lines}\n ]\n}}\n'
        if lines
        else f'{{\n{head},\n "lines": []\n}}\n'
    )


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """``(H, W, 3) uint8`` RGB -> JPEG bytes."""
    ok, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


@dataclasses.dataclass
class Failure:
    """An input that could not be processed: ``path`` and the reason (one line)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return self.reason if self.reason.startswith(self.path) else f"{self.path}: {self.reason}"


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def collect_inputs(
    paths: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None
) -> tuple[list[Path], list[Failure]]:
    """Expands the command-line inputs into image files.

    Folders are searched recursively for ``IMAGE_SUFFIXES`` files (sorted by path), leaving
    out the folder ``exclude`` (the output folder: its drawings are no inputs); a file
    ending in ``LIST_SUFFIXES`` lists one image (or folder) a line, relative to the list's
    folder, blank lines and ``#`` comments ignored; any other file is taken as an image
    (reading it tells whether it is one). A path seen twice is processed once.

    Returns:
      ``(images, failures)``: failures are missing paths, folders without images and
      unreadable or empty list files.
    """
    images: list[Path] = []
    failures: list[Failure] = []
    seen: set[Path] = set()
    skip = Path(exclude).resolve() if exclude is not None else None

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            images.append(p)

    def expand(p: Path, from_list: bool) -> None:
        if p.is_dir():
            found = sorted(
                (
                    f
                    for f in p.rglob("*")
                    if f.is_file()
                    and _is_image_name(f)
                    and not (skip and f.resolve().is_relative_to(skip))
                ),
                key=lambda f: f.relative_to(p).as_posix(),
            )
            if not found:
                failures.append(
                    Failure(str(p), f"{p}: folder contains no images ({', '.join(IMAGE_SUFFIXES)})")
                )
            for f in found:
                add(f)
        elif p.suffix.lower() in LIST_SUFFIXES and p.is_file() and not from_list:
            try:
                entries = [ln.strip() for ln in p.read_text(encoding="utf-8-sig").splitlines()]
            except (OSError, UnicodeDecodeError) as e:
                failures.append(Failure(str(p), f"{p}: cannot read the image list ({e})"))
                return
            entries = [e for e in entries if e and not e.startswith("#")]
            if not entries:
                failures.append(Failure(str(p), f"{p}: the image list is empty"))
            for e in entries:
                q = Path(e).expanduser()
                expand(q if q.is_absolute() else p.parent / q, True)
        elif p.exists():
            add(p)
        else:
            failures.append(Failure(str(p), f"{p}: no such file or folder"))

    for path in paths:
        expand(Path(path), False)
    return images, failures


def output_names(paths: Sequence[Path]) -> list[str]:
    """Unique output names (without suffix) for the inputs, compared case-insensitively.

    A name is the file's stem; stems that clash get their parent folders in front, as many
    as tell them apart (``a/x.png``, ``b/x.jpg`` -> ``a_x``, ``b_x``), else their suffix
    (``x.png``, ``x.jpg`` -> ``x_png``, ``x_jpg``), else a counter.
    """
    names = [p.stem for p in paths]
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n.casefold(), []).append(i)
    for idx in groups.values():
        if len(idx) == 1:
            continue
        parents = [paths[i].resolve().parent.parts for i in idx]
        for depth in range(1, max(len(p) for p in parents) + 1):
            cand = [
                "_".join((*p[-depth:], paths[i].stem)).lstrip("/\\")
                for p, i in zip(parents, idx, strict=True)
            ]
            if len({c.casefold() for c in cand}) == len(cand):
                break
        else:
            cand = [f"{paths[i].stem}_{paths[i].suffix.lstrip('.')}" for i in idx]
        for i, c in zip(idx, cand, strict=True):
            names[i] = c
    taken: set[str] = set()
    for i, n in enumerate(names):  # last resort, also against other stems: a counter
        name, k = n, 1
        while name.casefold() in taken:
            k += 1
            name = f"{n}-{k}"
        taken.add(name.casefold())
        names[i] = name
    return names


def write_outputs(
    out_dir: Path,
    name: str,
    doc: dict,
    preview: np.ndarray | None = None,
    preview_scale: float = 1.0,
) -> None:
    """Writes ``<name>.json``, ``<name>.txt`` and, given a ``preview``, ``<name>.jpg``.

    All three are built in memory first and each is written atomically, so a failure while
    drawing leaves no file of this image behind.

    Args:
      doc: ``{"image", "width", "height", "lines": [line records]}``, boxes in the original
        image's pixels.
      preview: ``(h, w, 3) uint8`` RGB, the image scaled by ``preview_scale`` (see
        ``ocr_common.draw.fit_within``); None writes no drawing.
    """
    records = doc["lines"]
    payload: dict[str, str | bytes] = {
        ".json": format_document(doc),
        ".txt": "".join(r["text"] + "\n" for r in records),
    }
    if preview is not None:
        from ocr_common.draw import draw_results

        scaled = [{**r, "box": [v * preview_scale for v in r["box"]]} for r in records]
        payload[".jpg"] = encode_jpeg(draw_results(preview, scaled))
    for suffix, data in payload.items():
        target = Path(out_dir) / f"{name}{suffix}"
        if isinstance(data, str):
            atomic_write_text(target, data)
        else:
            atomic_write_bytes(target, data)
