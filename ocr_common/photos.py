"""Real photographs for the training data's backgrounds and non-text patches.

The renderers' procedural surfaces (fabric, wood, blobs) are not real pixels, and the
detector took photo texture in real images for text (issue 39). Debian ships free
photographs as desktop wallpapers (landscapes, plants, water, cups, city views, wood;
``scripts/install_fonts.sh`` installs them); this module finds them, keeps a downscaled copy
of each in a cache folder (the originals are up to 5120 px wide and slow to decode) and cuts
random patches from them. With no photos installed, ``photo_patch`` returns ``None`` and
the renderers draw what they drew before; tests point ``$CHINESE_OCR_JAX_PHOTOS`` at a
folder of their own.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

import cv2
import numpy as np

from ocr_common.textures import surface

#: Where Debian's wallpaper packages put their pictures.
SYSTEM_PHOTO_DIRS = ("/usr/share/backgrounds", "/usr/share/wallpapers")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: Longest side of the cached copies: patches are cut at training-page scale or smaller.
CACHE_SIDE = 1024
# KDE keeps one picture in several sizes (``Name/contents/images/1920x1080.jpg``) and MATE
# some as ``Name_3840x2160.jpg``: one picture, one entry.
_SIZE_SUFFIX = re.compile(r"_\d+x\d+$")
#: Pictures with lettering in them (a logo, a product name): unlabelled text has no place in
#: a detector page's background.
_WITH_TEXT = frozenset({"focal-ubuntukylin", "Float-into-MATE"})


def photo_dirs() -> list[Path]:
    """``$CHINESE_OCR_JAX_PHOTOS`` (folders separated by ``os.pathsep``) if set, else the
    system's wallpaper folders."""
    env = os.environ.get("CHINESE_OCR_JAX_PHOTOS")
    if env is not None:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path(p) for p in SYSTEM_PHOTO_DIRS]


def _picture_key(path: Path) -> str:
    """The same string for every size of one picture."""
    parts = path.parts
    if "contents" in parts:  # KDE: the wallpaper's folder names the picture
        i = parts.index("contents")
        dark = "dark" if "images_dark" in parts else ""
        return str(Path(*parts[:i])) + dark
    return str(path.parent / _SIZE_SUFFIX.sub("", path.stem))


def list_photos(dirs: list[str | os.PathLike] | None = None) -> tuple[Path, ...]:
    """The photographs under ``dirs`` (default ``photo_dirs()``), one file a picture (its
    largest), sorted; KDE's ``screenshot`` previews and pictures with lettering left out."""
    return _list_photos(tuple(str(d) for d in (photo_dirs() if dirs is None else dirs)))


@functools.cache  # the renderers ask for every patch
def _list_photos(roots: tuple[str, ...]) -> tuple[Path, ...]:
    best: dict[str, tuple[int, Path]] = {}
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.suffix.lower() not in PHOTO_SUFFIXES or path.stem == "screenshot":
                continue
            if path.stem in _WITH_TEXT:
                continue
            if not path.is_file():
                continue
            key, size = _picture_key(path), path.stat().st_size
            if key not in best or size > best[key][0]:
                best[key] = (size, path)
    return tuple(sorted(p for _, p in best.values()))


def photos_cache_dir() -> Path:
    """Downscaled copies: ``$XDG_CACHE_HOME/chinese-ocr-jax/photos`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chinese-ocr-jax" / "photos"


@functools.lru_cache(maxsize=128)
def load_photo(path: str | os.PathLike) -> np.ndarray | None:
    """``(H, W, 3) uint8`` RGB, the longest side at most ``CACHE_SIDE``; ``None`` for a file
    that does not decode. The downscaled copy is written to ``photos_cache_dir()`` once."""
    from ocr_common.io import atomic_write_bytes

    path = Path(path)
    stat = path.stat()
    tag = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    cached = photos_cache_dir() / f"{tag.hexdigest()[:24]}.png"
    image = cv2.imread(str(cached), cv2.IMREAD_COLOR) if cached.is_file() else None
    if image is None:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < 16:
            return None
        s = CACHE_SIDE / max(image.shape[:2])
        if s < 1:
            size = (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".png", image)
        if ok:
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(cached, buf.tobytes())
    return np.ascontiguousarray(image[..., ::-1])


def photo_patch(
    rng: np.random.Generator, h: int, w: int, photos: tuple[Path, ...] | None = None
) -> np.ndarray | None:
    """A ``(h, w, 3) uint8`` RGB patch of a random photograph (a random window of it at a
    random zoom, perhaps mirrored, with its brightness, contrast and colour moved a little),
    or ``None`` when there are no photographs. A pure function of ``rng`` and the files."""
    photos = list_photos() if photos is None else photos
    if not photos or h < 1 or w < 1:
        return None
    image = load_photo(photos[int(rng.integers(len(photos)))])
    if image is None:
        return None
    ph, pw = image.shape[:2]
    # The largest window of the patch's aspect inside the photo, then a random part of it.
    fit = min(ph / h, pw / w)
    zoom = float(rng.uniform(0.2, 1.0))
    wh, ww = max(2, int(h * fit * zoom)), max(2, int(w * fit * zoom))
    y0, x0 = int(rng.integers(0, ph - wh + 1)), int(rng.integers(0, pw - ww + 1))
    window = image[y0 : y0 + wh, x0 : x0 + ww]
    interp = cv2.INTER_AREA if ww > w else cv2.INTER_LINEAR
    patch = cv2.resize(window, (w, h), interpolation=interp).astype(np.float32)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    gain = rng.uniform(0.7, 1.25) * rng.uniform(0.9, 1.1, size=3)
    patch = (patch - 128.0) * rng.uniform(0.7, 1.2) + 128.0 + rng.uniform(-30, 30)
    return np.clip(patch * gain, 0, 255).astype(np.uint8)


def maybe_photo(rng: np.random.Generator, h: int, w: int, prob: float) -> np.ndarray | None:
    """``photo_patch`` with probability ``prob`` (and photographs installed), else ``None``.
    Draws nothing from ``rng`` when ``prob`` is 0, so recipes without photographs keep
    their random stream."""
    if not prob or rng.random() >= prob:
        return None
    return photo_patch(rng, h, w)


def photo_or_surface(rng: np.random.Generator, h: int, w: int, prob: float) -> np.ndarray:
    """A busy ``(h, w, 3) uint8`` ground: a photograph (``maybe_photo``) or a procedural
    surface (``ocr_common.textures.surface``)."""
    patch = maybe_photo(rng, h, w, prob)
    return surface(rng, h, w) if patch is None else patch
