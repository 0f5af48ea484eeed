"""The shared print and camera degradations, against float64 references and statistics."""

import numpy as np
import pytest

from ocr_common import degrade


def _reference_blur(img: np.ndarray, sigma: float, radius_sigmas: float) -> np.ndarray:
    """Separable Gaussian blur in float64 with reflect-101 borders; the kernel reaches
    `radius_sigmas * sigma` px each side (OpenCV's rule: 3 for uint8, 4 for float)."""
    k = int(round(sigma * radius_sigmas * 2 + 1)) | 1
    x = np.arange(k) - (k - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    r = k // 2
    out = np.pad(img.astype(np.float64), ((r, r), (r, r)), mode="reflect")  # reflect-101
    out = sum(g[i] * out[i : i + img.shape[0], :] for i in range(k))
    return sum(g[i] * out[:, i : i + img.shape[1]] for i in range(k))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def _smooth_image(h: int = 64, w: int = 96) -> np.ndarray:
    """A `(h, w) uint8` gradient with a low-frequency wave: what JPEG keeps well."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.clip(60 + 1.2 * xx + 20 * np.sin(yy / 7.0), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [0.3, 0.8, 1.2, 2.5])
def test_gaussian_blur_matches_a_float64_reference(sigma):
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (37, 53)).astype(np.float32)
    out = degrade.gaussian_blur(img, sigma)
    assert out.shape == img.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, _reference_blur(img, sigma, 4), atol=1e-3)
    # uint8 input: OpenCV's fixed-point path (8-bit kernel weights, rounded passes), within
    # 1.5 grey levels of the exact value on white noise, and unbiased.
    img8 = img.astype(np.uint8)
    out8 = degrade.gaussian_blur(img8, sigma)
    assert out8.dtype == np.uint8
    diff = out8.astype(np.float64) - _reference_blur(img8, sigma, 3)
    assert np.abs(diff).max() <= 1.5 and abs(diff.mean()) < 0.05


def test_gaussian_blur_of_rgb_blurs_each_channel_alone():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    out = degrade.gaussian_blur(img, 1.0)
    assert out.shape == img.shape and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], degrade.gaussian_blur(img[..., c], 1.0))


def test_jpeg_round_trip_loses_more_at_lower_quality():
    img = _smooth_image()
    p95, p50, p20 = (_psnr(degrade.jpeg(img, q), img) for q in (95, 50, 20))
    assert 50.0 < p95 < 99.0  # close, not lossless
    assert 36.0 < p20 < p50 < p95
    out = degrade.jpeg(img, 20)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_jpeg_keeps_rgb_channel_order():
    img = np.zeros((32, 48, 3), np.uint8)
    img[..., 0] = 220  # red
    img[:, 24:, 2] = 200  # the right half magenta
    out = degrade.jpeg(img, 60)
    assert out.shape == img.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    assert out[:, :16, 0].mean() > 200 and out[:, :16, 2].mean() < 20
    assert out[:, 32:, 2].mean() > 180 and _psnr(out, img) > 30.0


def test_noise_statistics_with_a_fixed_seed():
    rng = np.random.default_rng(0)
    img = np.full((256, 256), 100, np.uint8)
    out = degrade.add_noise(img, rng.normal(0, 8.0, img.shape))
    assert out.shape == img.shape and out.dtype == np.uint8
    # Truncation to uint8 lowers the mean by half a level; the spread is the noise's.
    assert abs(out.mean() - 99.5) < 0.1
    assert abs(out.std() - 8.0) < 0.1
    # float32 noise on RGB, clipped at both ends
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:32] = 255
    noisy = degrade.add_noise(rgb, rng.standard_normal(rgb.shape).astype(np.float32) * 20)
    assert noisy.dtype == np.uint8
    assert noisy[:32].min() < 255 and (noisy[:32] == 255).mean() > 0.4
    assert noisy[32:].max() > 0 and (noisy[32:] == 0).mean() > 0.4


def test_gain_bias_clips_and_truncates():
    img = np.array([[0, 100, 250, 7]], np.uint8)
    np.testing.assert_array_equal(degrade.gain_bias(img, 1.2, -10.0), [[0, 110, 255, 0]])
    np.testing.assert_array_equal(degrade.gain_bias(img, 0.5, 0.9), [[0, 50, 125, 4]])


def test_downscale_keeps_the_size_and_loses_fine_detail():
    flat = np.full((32, 100), 77, np.uint8)
    np.testing.assert_array_equal(degrade.downscale(flat, 0.5), flat)
    checker = ((np.indices((32, 100)).sum(0) % 2) * 255).astype(np.uint8)
    out = degrade.downscale(checker, 0.5)
    assert out.shape == checker.shape and out.dtype == np.uint8
    assert out.std() < 0.1 * checker.std()  # 1-px detail averaged away
    rgb = np.repeat(checker[..., None], 3, axis=2)
    assert degrade.downscale(rgb, 0.4).shape == rgb.shape


def test_motion_blur_spreads_a_dot_along_its_direction():
    img = np.zeros((31, 31), np.uint8)
    img[15, 15] = 255
    horizontal = degrade.motion_blur(img, 9, 0.0)
    assert horizontal.dtype == np.uint8 and horizontal.shape == img.shape
    row = horizontal[15].astype(int)
    assert (row[11:20] > 0).all() and row[:10].sum() == 0 and row[21:].sum() == 0
    assert horizontal[:14].sum() == 0 and horizontal[17:].sum() == 0  # stays on its row
    vertical = degrade.motion_blur(img, 9, 90.0)
    np.testing.assert_array_equal(vertical, horizontal.T)
    # Mass is kept (up to rounding of the nine ~28-level taps).
    assert abs(int(horizontal.sum()) - 255) <= 9
    rgb = np.repeat(img[..., None], 3, axis=2)
    np.testing.assert_array_equal(degrade.motion_blur(rgb, 9, 0.0)[..., 1], horizontal)


def test_uneven_light_ramp_and_vignette():
    img = np.full((21, 101), 200, np.uint8)
    flat = degrade.uneven_light(img, 1.0, 1.0, 0.0)
    np.testing.assert_array_equal(flat, img)
    ramp = degrade.uneven_light(img, 0.5, 1.0, 0.0).astype(float)
    np.testing.assert_allclose(ramp[:, 0], 100, atol=1)
    np.testing.assert_allclose(ramp[:, -1], 200, atol=1)
    np.testing.assert_allclose(ramp[:, 50], 150, atol=1)
    vig = degrade.uneven_light(img, 1.0, 1.0, 0.5).astype(float)
    assert vig[10, 50] >= 199 and vig[0, 0] == pytest.approx(100, abs=1)  # corners halved
    bright = degrade.uneven_light(np.full((4, 4, 3), 200, np.uint8), 2.0, 2.0, 0.0)
    assert bright.dtype == np.uint8 and (bright == 255).all()  # clipped, not wrapped
