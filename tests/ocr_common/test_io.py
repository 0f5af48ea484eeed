import io

import cv2
import numpy as np
import pytest
from PIL import Image

from ocr_common.io import ImageError, atomic_write_bytes, atomic_write_text, read_image


def _gradient(h=20, w=30):
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w)[None, :] * 8
    img[..., 1] = np.arange(h)[:, None] * 12
    img[..., 2] = 77
    return img


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_formats_round_trip(tmp_path, ext):
    rgb = _gradient()
    path = tmp_path / f"x{ext}"
    Image.fromarray(rgb).save(path, **({"lossless": True} if ext == ".webp" else {}))
    np.testing.assert_array_equal(read_image(path), rgb)


def test_jpeg_gray_rgba_and_16bit(tmp_path):
    rgb = _gradient()
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "a.jpg").astype(int) - rgb).mean() < 4
    gray = rgb[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (20, 30, 3) and (out == gray[..., None]).all()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 0, np.uint8)])
    rgba[:10, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    out = read_image(tmp_path / "t.png")
    np.testing.assert_array_equal(out[:10], rgb[:10])
    assert (out[10:] == 255).all()  # transparent -> white
    img16 = (rgb.astype(np.uint16) * 257)[..., ::-1]  # BGR for OpenCV
    cv2.imwrite(str(tmp_path / "d.png"), img16)
    np.testing.assert_array_equal(read_image(tmp_path / "d.png"), rgb)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    from PIL import ImageOps

    rgb = np.zeros((16, 40, 3), np.uint8)
    rgb[:8, :10] = 255  # a bright block in the top-left corner: orientation is visible
    rgb[8:, 30:, 1] = 200
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=100, exif=exif.tobytes())
    path = tmp_path / "o.jpg"
    path.write_bytes(buf.getvalue())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    got = read_image(path)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).mean() < 3


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="missing.png: no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")
    (tmp_path / "notes.jpg").write_text("hello, not an image")
    with pytest.raises(ImageError, match="notes.jpg: not a readable image"):
        read_image(tmp_path / "notes.jpg")


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first")
    assert target.read_text() == "first"

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # fails while writing
    assert target.read_text() == "first"  # the old content survives
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]  # no temp files left
