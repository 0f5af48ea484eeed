"""File I/O shared by training and inference: atomic writes, the one image reader and the
one conversion of any input image to RGB (``as_rgb``).

Every output file is written to a temporary file in the same folder and then renamed over the
target, so a crash or Ctrl-C never leaves a half-written file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

#: An image given as a file path or as an array (see ``as_rgb``).
ImageInput = str | os.PathLike | np.ndarray
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageError(ValueError):
    """An input file that is not a readable image; the message names the file."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        scale = 255.0 if img.max(initial=0) <= 1.0 else 1.0
        return np.clip(img * scale, 0, 255).astype(np.uint8)
    return np.clip(img, 0, 255).astype(np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as `(H, W, 3) uint8` RGB.

    Handles grayscale, RGBA (composited on white), 16-bit and EXIF orientation.

    Raises:
      ImageError: the file is missing, empty or not a decodable image (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ImageError(f"{path}: empty file")
    # IMREAD_UNCHANGED keeps alpha and 16 bits but ignores EXIF; apply orientation ourselves.
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{path}: not a readable image (unknown or corrupt format)")
    img = _to_uint8(img)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        rgb = img[..., 2::-1].astype(np.float32)
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        img = (rgb * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    else:
        img = np.ascontiguousarray(img[..., 2::-1])
    return _apply_exif_orientation(data, img)


def _apply_exif_orientation(data: np.ndarray, img: np.ndarray) -> np.ndarray:
    """Rotates/flips `img` as the EXIF orientation tag of the encoded `data` says."""
    if data[:2].tobytes() != b"\xff\xd8":  # EXIF orientation only matters for JPEG here
        return img
    try:
        import io

        from PIL import Image

        orientation = Image.open(io.BytesIO(data.tobytes())).getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF: keep pixels as stored
        return img
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.transpose(a, (1, 0, 2)),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.transpose(a, (1, 0, 2))[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(img)) if op else img


def as_rgb(image: ImageInput) -> np.ndarray:
    """A path or an array as ``(H, W, 3) uint8`` RGB.

    Arrays may be ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (composited on
    white), of dtype uint8, uint16 (scaled by 1/257) or float (0..1 or 0..255).

    Raises:
      ImageError: unreadable file, or an array of another shape.
    """
    if not isinstance(image, np.ndarray):
        return read_image(image)
    img = image
    if img.size == 0:
        raise ImageError(f"empty image array of shape {image.shape}")
    if img.dtype == np.uint16:
        img = (img.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif img.dtype != np.uint8:
        scale = 255.0 if np.issubdtype(img.dtype, np.floating) and img.max(initial=0) <= 1 else 1
        img = np.clip(np.asarray(img, np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[..., 3:].astype(np.float32) / 255.0
        return (img[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {image.shape}")
    return np.ascontiguousarray(img)
