"""Font collections split into faces, family weights, coverage: built from pip's fonts only."""

from __future__ import annotations

import numpy as np
import pytest

from ocr_common import fonts


def dejavu(name: str):
    mpl = fonts.matplotlib_fonts_dir()
    if mpl is None or not (mpl / name).is_file():
        pytest.fail(f"matplotlib (a dependency of mplfonts) should ship {name}")
    return mpl / name


def build_collection(path, faces):
    """A .ttc of `faces`: (font file, new full name) pairs."""
    from fontTools.ttLib import TTCollection, TTFont

    collection = TTCollection()
    for src, full_name in faces:
        font = TTFont(str(src))
        font["name"].setName(full_name, 4, 3, 1, 0x409)
        collection.fonts.append(font)
    collection.save(str(path))


def test_collections_are_split_into_faces_without_japanese_and_korean(tmp_path, monkeypatch):
    monkeypatch.setenv("CHINESE_OCR_JAX_FONT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "fonts"
    folder.mkdir()
    sans, serif = dejavu("DejaVuSans.ttf"), dejavu("DejaVuSerif.ttf")
    build_collection(
        folder / "Pack.ttc",
        [(sans, "Pack Sans SC"), (serif, "Pack Serif JP"), (serif, "Pack Serif TC")],
    )
    files = fonts._font_files(folder)
    assert [f.name.rsplit("-", 1)[1] for f in files] == ["0.ttf", "2.ttf"]  # JP face left out
    assert all(f.parent == tmp_path / "cache" for f in files)
    # Each face file is a real font with the glyphs of its source.
    assert set("abcXYZ019") <= fonts.font_charset(files[0])
    assert fonts.font_charset(files[0]) == fonts.font_charset(sans)
    assert fonts.font_charset(files[1]) == fonts.font_charset(serif)
    # Split once: a second listing reuses the files (the same paths, not rewritten).
    mtime = files[0].stat().st_mtime_ns
    fonts.split_collection.cache_clear()
    assert fonts._font_files(folder) == files
    assert files[0].stat().st_mtime_ns == mtime
    assert fonts.font_family(files[0]) == fonts.font_family(files[1]) == "Pack"


def test_a_damaged_collection_gives_no_faces(tmp_path, monkeypatch):
    monkeypatch.setenv("CHINESE_OCR_JAX_FONT_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.ttc"
    bad.write_bytes(b"ttcf" + bytes(40))
    assert fonts.split_collection(bad) == ()


def test_sampling_weights_count_families_by_square_root():
    paths = [f"/f/Big-{w}.otf" for w in ("Thin", "Regular", "Bold", "Black")] + ["/f/Solo.ttf"]
    w = fonts.sampling_weights(paths)
    # Four faces of one family at 1/2 each, one single face at 1: family shares 2 : 1.
    np.testing.assert_allclose(w, np.asarray([0.5, 0.5, 0.5, 0.5, 1.0]) / 3.0)
    assert fonts.sampling_weights([]).shape == (0,)


def test_coverage_report_orders_faces_by_share_of_the_charset():
    sans = dejavu("DejaVuSans.ttf")
    cjk = fonts.list_fonts(system=False)[0]
    rows = fonts.coverage_report([sans, cjk], "中国abc")
    assert [r[0] for r in rows] == [cjk, sans]
    assert rows[0][1] == 1.0 and rows[1][1] == pytest.approx(3 / 5)


def test_segment_display_faces_are_not_latin_text_fonts():
    assert fonts._NOT_TEXT_FONTS.search("DSEG7Classic-Bold")
    assert not fonts._NOT_TEXT_FONTS.search("LiberationSans-Regular")
