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


class ImageTooLarge(ImageError):
    """An image with more pixels than allowed (a guard against decompression bombs)."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as `(H, W, 3) uint8` RGB.

    Handles grayscale, RGBA (composited on white), 16-bit and EXIF orientation.

    Raises:
      ImageError: the file is missing, empty or not a decodable image (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    return decode_image(np.fromfile(path, dtype=np.uint8), str(path))


def header_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` from an encoded image's header without decoding its pixels, or
    None when Pillow cannot tell (OpenCV may still decode it).

    Raises:
      PIL.Image.DecompressionBombError: the header claims far more pixels than Pillow's own
        limit (``Image.MAX_IMAGE_PIXELS``).
    """
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():  # DecompressionBombWarning: the caller decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(data))) as im:  # lazy: reads the header only
                return im.size
    except Image.DecompressionBombError:
        raise
    except Exception:
        return None


def decode_image(data: bytes | np.ndarray, name: str, max_pixels: int | None = None) -> np.ndarray:
    """Decodes an encoded image (the bytes of a file or an upload) as `(H, W, 3) uint8` RGB.

    Handles grayscale, RGBA (composited on white), 16-bit and EXIF orientation, as
    ``read_image`` (which reads files through this).

    Args:
      name: names the image in error messages.
      max_pixels: refuse larger images; checked on the header before decoding when Pillow
        can read it (so a small file that would decode into gigabytes is never decoded),
        else after decoding.

    Raises:
      ImageError: empty data, or not a decodable image (the message names it).
      ImageTooLarge: more than ``max_pixels`` pixels.
    """
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else data
    if data.size == 0:
        raise ImageError(f"{name}: empty file")

    def check(width: int, height: int) -> None:
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLarge(
                f"{name}: {width}x{height} pixels is more than the limit of {max_pixels:,}"
            )

    if max_pixels is not None:
        from PIL import Image

        try:
            size = header_size(data)
        except Image.DecompressionBombError as e:
            raise ImageTooLarge(
                f"{name}: more than the limit of {max_pixels:,} pixels ({e})"
            ) from None
        if size is not None:
            check(*size)
    # IMREAD_UNCHANGED keeps alpha and 16 bits but ignores EXIF; apply orientation ourselves.
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. over OpenCV's own pixel limit
        img = None
    if img is None:
        raise ImageError(f"{name}: not a readable image (unknown or corrupt format)")
    check(img.shape[1], img.shape[0])
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
