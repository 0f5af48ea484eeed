"""Non-text imagery shared by the page and line renderers: colours, paper backgrounds,
security-print line patterns, busy surfaces (fabric, wood, stone, tiles, blurred scenes) and
portrait-like photo patches. Every function is a pure function of its ``rng``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# ----------------------------------------------------------------------------- colours


def luminance(c: Sequence[int]) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


def saturated_colour(
    rng: np.random.Generator, min_saturation: int = 128, min_value: int = 115
) -> tuple[int, int, int]:
    """A strong RGB colour of any hue (poster grounds, bands, badges): HSV saturation and
    value drawn from ``[min_saturation, 256)`` and ``[min_value, 256)``."""
    hsv = np.uint8(
        [[[rng.integers(0, 180), rng.integers(min_saturation, 256), rng.integers(min_value, 256)]]]
    )
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def contrasting(rng: np.random.Generator, bg: Sequence[int], min_diff: float = 90.0):
    """A colour whose luminance differs from ``bg``'s by at least ``min_diff``."""
    for _ in range(20):
        if luminance(bg) > 128:
            c = random_colour(rng, 0, 110) if rng.random() < 0.7 else random_colour(rng, 0, 200)
        else:
            c = random_colour(rng, 170, 256)
        if abs(luminance(c) - luminance(bg)) >= min_diff:
            return c
    return (0, 0, 0) if luminance(bg) > 128 else (255, 255, 255)


# ----------------------------------------------------------------------------- backgrounds


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1], ``(h, w) float32``."""
    small = rng.standard_normal((max(2, h // cells), max(2, w // cells))).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(big / 2.0, -1, 1)


def background(rng: np.random.Generator, h: int, w: int, base: Sequence[int]) -> np.ndarray:
    """A textured ``(h, w, 3) uint8`` background around colour ``base``."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = np.asarray(base, np.float32)
    r = rng.random()
    if r < 0.3:  # paper: low-frequency blotches
        img += smooth_noise(rng, h, w, int(rng.integers(20, 120)))[..., None] * rng.uniform(4, 18)
    elif r < 0.5:  # gradient
        d = rng.standard_normal(2)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        g = d[0] * yy / h + d[1] * xx / w
        img += (g - g.mean())[..., None] * rng.uniform(10, 40) * rng.choice([-1, 1], size=3)
    elif r < 0.6:  # ruled paper
        step = int(rng.integers(18, 40))
        col = np.asarray(random_colour(rng, 120, 220), np.float32)
        img[::step] = 0.6 * img[::step] + 0.4 * col
    elif r < 0.7:  # coloured texture (fabric / photo-like)
        for c in range(3):
            img[..., c] += smooth_noise(rng, h, w, int(rng.integers(4, 30))) * rng.uniform(10, 40)
    elif r < 0.8:  # security print: fine wavy lines
        img = guilloche(rng, img)
    img += rng.standard_normal((h, w, 1)).astype(np.float32) * rng.uniform(0, 6)
    return np.clip(img, 0, 255).astype(np.uint8)


def guilloche(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Draws security-print line patterns (bundles of thin sine curves, rosettes) on
    ``img (h, w, 3) float32`` in a tint close to its colour; returns it."""
    h, w = img.shape[:2]
    base = img[h // 2, w // 2]
    tint = np.clip(base + rng.uniform(-70, 40, size=3), 0, 255)
    xs = np.linspace(-0.05 * w, 1.05 * w, 240, dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):  # bundles of phase-shifted curves
        period, amp = rng.uniform(0.1, 0.6) * w, rng.uniform(0.02, 0.25) * h
        period2, amp2 = rng.uniform(0.03, 0.2) * w, amp * rng.uniform(0, 0.4)
        y0, step = rng.uniform(0, h), rng.uniform(2, 8)
        for k in range(int(rng.integers(8, 40))):
            ys = (
                y0
                + k * step
                + amp * np.sin(2 * np.pi * xs / period + 0.15 * k)
                + amp2 * np.sin(2 * np.pi * xs / period2)
            )
            pts = np.stack([xs, ys], axis=1).round().astype(np.int32)
            cv2.polylines(img, [pts], False, tint.tolist(), 1, cv2.LINE_AA)
    if rng.random() < 0.5:  # a rosette of rotated ellipses
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        a, b = rng.uniform(0.1, 0.4) * w, rng.uniform(0.05, 0.2) * h
        for ang in np.arange(0, 180, rng.uniform(4, 12)):
            cv2.ellipse(
                img,
                (int(cx), int(cy)),
                (int(a), int(b)),
                float(ang),
                0,
                360,
                tint.tolist(),
                1,
                cv2.LINE_AA,
            )
    return img


def surface(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A busy ``(h, w, 3) uint8`` surface a sheet or a card lies on: woven fabric, wood
    grain, stone, tiles or a blurred scene. Fine texture and no text."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = np.asarray(random_colour(rng, 30, 230), np.float32)
    kind = rng.choice(["weave", "wood", "stone", "tiles", "scene"])
    if kind == "weave":
        period, a = rng.uniform(3, 10), rng.uniform(0, np.pi)
        u, v = xx * np.cos(a) + yy * np.sin(a), yy * np.cos(a) - xx * np.sin(a)
        t = np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period)
        t += 0.6 * rng.standard_normal((h, w)).astype(np.float32)
        img += t[..., None] * rng.uniform(12, 40) * rng.uniform(0.6, 1.0, size=3)
        img += smooth_noise(rng, h, w, int(rng.integers(40, 200)))[..., None] * 25
    elif kind == "wood":
        warp = smooth_noise(rng, h, w, int(rng.integers(30, 150))) * rng.uniform(5, 25)
        t = np.sin((yy if rng.random() < 0.5 else xx) * rng.uniform(0.05, 0.4) + warp)
        img += t[..., None] * rng.uniform(10, 35) * np.float32([1.0, 0.8, 0.6])
    elif kind == "stone":
        s = cv2.GaussianBlur(
            rng.standard_normal((h, w)).astype(np.float32), (0, 0), float(rng.uniform(0.6, 2.5))
        )
        img += (s / (s.std() + 1e-6))[..., None] * rng.uniform(12, 40)
        img += smooth_noise(rng, h, w, int(rng.integers(20, 100)))[..., None] * 20
    elif kind == "tiles":
        step = int(rng.integers(20, 120))
        grout = np.asarray(random_colour(rng), np.float32)
        for ty in range(0, h, step):
            for tx in range(0, w, step):
                img[ty : ty + step, tx : tx + step] += rng.uniform(-20, 20, size=3).astype(
                    np.float32
                )
        lw = int(rng.integers(1, 5))
        for t in range(0, max(h, w), step):
            img[t : t + lw] = grout
            img[:, t : t + lw] = grout
    else:  # a blurred scene: overlapping coloured blobs
        for _ in range(int(rng.integers(6, 25))):
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            axes = (int(rng.uniform(0.05, 0.5) * w), int(rng.uniform(0.05, 0.5) * h))
            cv2.ellipse(
                img,
                centre,
                axes,
                float(rng.uniform(0, 180)),
                0,
                360,
                [float(c) for c in random_colour(rng)],
                -1,
            )
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(2, 12)))
    img += rng.standard_normal((h, w, 1)).astype(np.float32) * rng.uniform(0, 8)
    return np.clip(img, 0, 255).astype(np.uint8)


def portrait(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo-like ``(h, w, 3) uint8`` patch: a plain or blotched backdrop, a head and
    shoulders in smooth shading."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = np.asarray(random_colour(rng, 60, 256), np.float32)
    img += smooth_noise(rng, h, w, max(4, min(h, w) // 3))[..., None] * rng.uniform(0, 40)
    skin = [float(c) for c in (rng.uniform(150, 240), rng.uniform(110, 200), rng.uniform(90, 180))]
    cloth = [float(c) for c in random_colour(rng, 0, 200)]
    hair = [float(c) for c in random_colour(rng, 0, 90)]
    cx = w * rng.uniform(0.4, 0.6)
    cv2.ellipse(img, (int(cx), int(h * 1.05)), (int(w * 0.45), int(h * 0.35)), 0, 0, 360, cloth, -1)
    cv2.ellipse(img, (int(cx), int(h * 0.4)), (int(w * 0.26), int(h * 0.28)), 0, 0, 360, hair, -1)
    cv2.ellipse(img, (int(cx), int(h * 0.45)), (int(w * 0.2), int(h * 0.25)), 0, 0, 360, skin, -1)
    for dx in (-0.08, 0.08):  # eyes
        cv2.circle(img, (int(cx + dx * w), int(h * 0.42)), max(1, int(w * 0.02)), hair, -1)
    cv2.ellipse(
        img,
        (int(cx), int(h * 0.56)),
        (int(w * 0.06), max(1, int(h * 0.015))),
        0,
        0,
        360,
        [skin[0] * 0.8, skin[1] * 0.6, skin[2] * 0.6],
        -1,
    )
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.8, 3.0)))
    return np.clip(img, 0, 255).astype(np.uint8)
