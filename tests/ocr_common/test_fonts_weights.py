import numpy as np
import pytest

from ocr_common.fonts import (
    default_font,
    font_charset,
    has_cjk_glyphs,
    is_latin_text_font,
    list_fonts,
    list_latin_fonts,
)
from ocr_common.weights import (
    WeightsError,
    interpolate_weights,
    load_weights,
    save_weights,
)
from ocr_common.weights import (
    main as weights_main,
)


def test_pip_installed_fonts_cover_chinese():
    fonts = list_fonts(system=False)
    assert len(fonts) == 6  # mplfonts' six
    for f in fonts:
        assert has_cjk_glyphs(str(f))
        assert {"中", "国", "1", "A"} <= font_charset(f)
    assert default_font() in fonts


def test_latin_fonts_from_pip_are_text_fonts_without_hanzi(tmp_path):
    fonts = list_latin_fonts(system=False)  # matplotlib's, as in CI
    names = {f.name for f in fonts}
    assert {"DejaVuSans.ttf", "DejaVuSerif.ttf", "STIXGeneral.ttf"} <= names
    assert not names & {
        "cmsy10.ttf",
        "cmex10.ttf",
        "STIXSizOneSymReg.ttf",
        "LastResortHE-Regular.ttf",
    }  # symbols / placeholders, not text
    for f in fonts:
        assert set("AZaz09") <= font_charset(f) and not has_cjk_glyphs(str(f))
    assert not any(is_latin_text_font(str(f)) for f in list_fonts(system=False))
    (tmp_path / "fake.ttf").write_bytes(b"not a font")
    assert not is_latin_text_font(str(tmp_path / "fake.ttf"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_latin_fonts(extra=[tmp_path / "nope.ttf"], system=False)


def test_list_fonts_rejects_missing_and_non_cjk(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_fonts(extra=[tmp_path / "nope.ttf"], system=False)
    (tmp_path / "fake.ttf").write_bytes(b"not a font")
    assert tmp_path / "fake.ttf" not in list_fonts(extra=[tmp_path], system=False)


def test_weights_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    variables = {
        "params": {
            "a": {"kernel": rng.normal(size=(3, 4)).astype(np.float32)},
            "b": rng.normal(size=(5,)).astype(np.float32),
        },
        "batch_stats": {"mean": np.arange(3, dtype=np.float32)},
    }
    path = save_weights(tmp_path / "w.npz", variables, {"model": "m", "note": "中文"})
    loaded, meta = load_weights(path, expect_model="m")
    assert meta["model"] == "m" and meta["note"] == "中文" and meta["format_version"] == 1
    np.testing.assert_allclose(
        loaded["params"]["a"]["kernel"], variables["params"]["a"]["kernel"], rtol=1e-3
    )
    with np.load(path) as raw:
        assert raw["params/a/kernel"].dtype == np.float16
    with pytest.raises(WeightsError, match="holds weights for model 'm', expected 'other'"):
        load_weights(path, expect_model="other")
    with pytest.raises(WeightsError, match="overflow float16"):
        save_weights(tmp_path / "big.npz", {"x": np.array([1e6], np.float32)}, {"model": "m"})
    assert not (tmp_path / "big.npz").exists()


def test_interpolated_weights_are_the_mix_of_the_two_files(tmp_path):
    rng = np.random.default_rng(1)
    tree = lambda: {  # noqa: E731
        "params": {"k": rng.normal(size=(4, 3)).astype(np.float32)},
        "batch_stats": {"var": rng.uniform(0.5, 2, size=3).astype(np.float32)},
    }
    a, b = tree(), tree()
    pa = save_weights(tmp_path / "a.npz", a, {"model": "m", "step": 1})
    pb = save_weights(tmp_path / "b.npz", b, {"model": "m", "step": 2, "calibrated": True})
    a16, _ = load_weights(pa)
    b16, _ = load_weights(pb)
    for t in (0.0, 0.3, 1.0):
        mixed, meta = interpolate_weights(pa, pb, t)
        for group, name in (("params", "k"), ("batch_stats", "var")):
            want = (1 - t) * a16[group][name].astype(np.float64) + t * b16[group][name]
            np.testing.assert_allclose(mixed[group][name], want, rtol=1e-6, atol=1e-7)
        assert meta["step"] == 2 and meta["calibrated"] and meta["interpolated"]["t"] == t
    # The command line writes the mix as a weights file.
    assert weights_main([str(pa), str(pb), "--t", "0.5", "--out", str(tmp_path / "m.npz")]) == 0
    half, _ = load_weights(tmp_path / "m.npz")
    np.testing.assert_allclose(
        half["params"]["k"], (a16["params"]["k"] + b16["params"]["k"]) / 2, rtol=2e-3, atol=1e-3
    )
    other = save_weights(tmp_path / "o.npz", {"params": {"k": np.zeros((4, 4))}}, {"model": "m"})
    with pytest.raises(WeightsError, match="differ in variables or shapes"):
        interpolate_weights(pa, other, 0.5)
    model = save_weights(tmp_path / "x.npz", a, {"model": "x"})
    with pytest.raises(WeightsError, match="'m' weights"):
        interpolate_weights(pa, model, 0.5)
    with pytest.raises(WeightsError, match="t must be in"):
        interpolate_weights(pa, pb, 1.5)
