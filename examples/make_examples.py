"""Renders the example images of ``examples/`` with their ground truth.

    python examples/make_examples.py [--out examples]

Writes ``<name>.jpg`` (each under ``MAX_BYTES``) and ``gt/<name>.json`` in the schema of the
real dev set (``{"image", "width", "height", "tags", "lines": [{"box", "text"}]}``, boxes
clockwise from top-left in image pixels). The pages come from the detector's own synthetic
page renderer (``ctpn_jax.data.render``) with the fonts that ``pip install`` brings
(mplfonts), so the output depends on the seeds below only and not on the system's fonts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

#: (file name, page kind, seed): one page of each kind the renderer draws.
EXAMPLES: tuple[tuple[str, str, int], ...] = (
    ("document", "document", 11),
    ("receipt", "receipt", 3),
    ("sign", "sign", 5),
    ("screenshot", "screenshot", 2),
    ("form", "form", 7),
    ("card", "card", 5),
)
MAX_BYTES = 250_000
MAX_SIDE = 1100  # px: larger pages are scaled down (with their boxes) to stay small


def encode_small(image: np.ndarray, max_bytes: int = MAX_BYTES) -> bytes:
    """JPEG bytes of ``(H, W, 3) uint8`` RGB at the best quality that fits ``max_bytes``."""
    bgr = np.ascontiguousarray(image[..., ::-1])
    for quality in (90, 85, 80, 75, 70, 60, 50):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and buf.size <= max_bytes:
            return buf.tobytes()
    raise ValueError(f"cannot encode a {image.shape} image in {max_bytes} bytes")


def make_examples(out_dir: Path, examples: Sequence[tuple[str, str, int]] = EXAMPLES) -> list[Path]:
    """Renders ``examples`` into ``out_dir``; returns the image paths."""
    from ctpn_jax.data.labels import TextLine, format_json
    from ctpn_jax.data.render import PageRenderer, page_rng
    from ocr_common.fonts import list_fonts
    from ocr_common.io import atomic_write_bytes, atomic_write_text

    renderer = PageRenderer(fonts=list_fonts(system=False))
    paths = []
    for name, kind, seed in examples:
        page = renderer.render(page_rng(seed, 0), kind)
        image, lines = page.image, page.lines
        h, w = image.shape[:2]
        s = min(1.0, MAX_SIDE / max(h, w))
        if s < 1.0:
            size = (int(round(w * s)), int(round(h * s)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            lines = [
                TextLine(np.asarray(t.quad, np.float32) * np.float32(s), t.text) for t in lines
            ]
        path = out_dir / f"{name}.jpg"
        atomic_write_bytes(path, encode_small(image))
        atomic_write_text(
            out_dir / "gt" / f"{name}.json",
            format_json(
                lines, path.name, image.shape[1], image.shape[0], ("synth", kind, "example")
            ),
        )
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output folder (default: this script's folder)",
    )
    args = ap.parse_args(argv)
    for p in make_examples(args.out):
        print(f"{p}  {p.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
