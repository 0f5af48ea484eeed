"""Real photographs for the training data: found, deduplicated, cached, cut into patches."""

import cv2
import numpy as np
import pytest

from ocr_common import photos


def _write(path, h, w, bgr):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((h, w, 3), np.uint8)
    image[:] = bgr
    image[: h // 2, : w // 2] = (255 - np.asarray(bgr)).astype(np.uint8)  # some structure
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def photo_dir(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    monkeypatch.setenv("CHINESE_OCR_JAX_PHOTOS", str(root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _write(root / "red.png", 300, 400, (0, 0, 250))  # BGR on disk
    # KDE: one picture in two sizes and a preview; MATE: one picture in two files.
    _write(root / "Kite/contents/images/640x480.jpg", 480, 640, (0, 200, 0))
    _write(root / "Kite/contents/images/1600x1200.jpg", 1200, 1600, (0, 200, 0))
    _write(root / "Kite/contents/screenshot.png", 60, 80, (0, 200, 0))
    _write(root / "mate/Dune.jpg", 200, 300, (100, 150, 200))
    _write(root / "mate/Dune_2400x1600.jpg", 1600, 2400, (100, 150, 200))
    _write(root / "focal-ubuntukylin.png", 100, 100, (9, 9, 9))  # has lettering
    (root / "notes.txt").write_text("not a picture")
    return root


def test_one_file_a_picture_the_largest(photo_dir):
    found = photos.list_photos()
    assert found == tuple(
        sorted(
            [
                photo_dir / "red.png",
                photo_dir / "Kite/contents/images/1600x1200.jpg",
                photo_dir / "mate/Dune_2400x1600.jpg",
            ]
        )
    )
    assert photos.list_photos([photo_dir / "missing"]) == ()


def test_loaded_downscaled_rgb_and_cached(photo_dir, tmp_path):
    path = photo_dir / "mate/Dune_2400x1600.jpg"
    image = photos.load_photo(path)
    assert image.dtype == np.uint8 and image.shape == (683, 1024, 3)
    # RGB order: the file's BGR (100, 150, 200) in the unaltered quarter.
    np.testing.assert_allclose(image[-50, -50], (200, 150, 100), atol=3)
    cached = list((tmp_path / "cache/chinese-ocr-jax/photos").glob("*.png"))
    assert len(cached) == 1
    photos.load_photo.cache_clear()
    np.testing.assert_array_equal(photos.load_photo(path), image)  # read from the copy
    broken = photo_dir / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    assert photos.load_photo(broken) is None


def test_patches_are_cut_from_the_photographs(photo_dir):
    red = (photo_dir / "red.png",)
    a = photos.photo_patch(np.random.default_rng(4), 48, 96, red)
    b = photos.photo_patch(np.random.default_rng(4), 48, 96, red)
    assert a.shape == (48, 96, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)  # a function of the rng
    # The picture is red with a cyan quarter: under the brightness, contrast and colour
    # changes every pixel but those the resize blends at the edge is one or the other.
    r, bl = a[..., 0].astype(int), a[..., 2].astype(int)
    assert np.mean(np.abs(r - bl) > 40) > 0.9
    many = [photos.photo_patch(np.random.default_rng(s), 32, 32) for s in range(12)]
    assert len({p.tobytes() for p in many}) == 12
    assert photos.photo_patch(np.random.default_rng(0), 32, 32, ()) is None


def test_renderer_uses_photos_only_when_asked(photo_dir):
    from ctpn_jax.data.render import PageRenderConfig, PageRenderer, page_rng

    # photo_prob 0: the pages of earlier recipes, photographs installed or not.
    with_photos = PageRenderer(PageRenderConfig()).render(page_rng(2, 3))
    renderer = PageRenderer(PageRenderConfig(photo_prob=1.0))
    rng = np.random.default_rng(9)
    surface = renderer.surface(rng, 60, 80)
    rng = np.random.default_rng(9)
    rng.random()  # the draw that decides for a photograph
    np.testing.assert_array_equal(surface, photos.photo_patch(rng, 60, 80))
    page = renderer.render(page_rng(2, 3))
    assert page.image.shape[2] == 3 and len(page.lines) >= 1
    assert not np.array_equal(page.image, with_photos.image)


def test_photo_prob_zero_draws_nothing_from_the_stream(photo_dir, monkeypatch):
    from ctpn_jax.data.render import PageRenderConfig, PageRenderer, page_rng

    # Pages of the earlier recipes stay what they were: no draw, no photograph.
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    assert PageRenderer(PageRenderConfig()).photo(rng, 40, 40) is None
    assert rng.bit_generator.state == state
    # photo_prob set but no photographs installed: the procedural imagery, still a page.
    photos_gone = PageRenderer(PageRenderConfig(photo_prob=1.0))
    monkeypatch.setenv("CHINESE_OCR_JAX_PHOTOS", str(photo_dir / "none-here"))
    assert photos_gone.photo(np.random.default_rng(0), 40, 40) is None
    assert len(photos_gone.render(page_rng(1, 5)).lines) >= 1


def test_line_renderer_grounds_from_photos_only_when_asked(photo_dir):
    from densenet_jax.data.render import LineRenderConfig, LineRenderer
    from ocr_common.fonts import list_fonts

    pip_fonts = list_fonts(system=False)  # what CI has

    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    procedural = photos.photo_or_surface(rng, 32, 90, 0.0)
    rng.bit_generator.state = state
    assert np.array_equal(procedural, photos.photo_or_surface(rng, 32, 90, 0.0))  # no extra draw
    rng = np.random.default_rng(3)
    ground = photos.photo_or_surface(rng, 32, 90, 1.0)
    rng = np.random.default_rng(3)
    rng.random()
    np.testing.assert_array_equal(ground, photos.photo_patch(rng, 32, 90))
    # Non-text crops: the default recipe unchanged, photo=1 changes the busy ones.
    plain = LineRenderer(pip_fonts[:1], LineRenderConfig())
    with_photos = LineRenderer(pip_fonts[:1], LineRenderConfig(photo=1.0))
    a = [plain.non_text(np.random.default_rng(s)) for s in range(20)]
    b = [with_photos.non_text(np.random.default_rng(s)) for s in range(20)]
    assert all(x.shape[0] == 32 and x.dtype == np.uint8 for x in b)
    assert 0 < sum(not np.array_equal(x, y) for x, y in zip(a, b, strict=True)) < 20
