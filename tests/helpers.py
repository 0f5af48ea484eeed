"""What the end-to-end tests share (tests/conftest.py's fixtures, test_infer.py,
test_serve.py): the tiny models' sizes and charset, and a synthetic page."""

from __future__ import annotations

import numpy as np

# Small detection sizes keep the CTPN shapes (and compile times) small.
SMALL_DET = {"short_side": 64, "long_side": 128, "bucket_sizes": (64, 128)}
# The tiny recogniser's charset.
ALPHABET = "的一是在不了有和人这中大0123456789abc"


def page(h: int = 96, w: int = 160, seed: int = 0) -> np.ndarray:
    """`(h, w, 3) uint8` RGB: light paper with a few dark bars (text-like content)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 235, np.uint8)
    for _ in range(4):
        y, x = int(rng.integers(0, max(1, h - 8))), int(rng.integers(0, max(1, w - 20)))
        img[y : y + 6, x : x + int(rng.integers(5, 20))] = rng.integers(0, 80, 3)
    return img
