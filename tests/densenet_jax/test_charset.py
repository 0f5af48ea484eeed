import pytest

from densenet_jax.charset import DEFAULT_CHARSET_FILE, Charset, UnknownCharacterError


def test_default_charset_layout():
    cs = Charset.default()
    lines = DEFAULT_CHARSET_FILE.read_text(encoding="utf-8").split("\n")
    assert cs.num_classes == 5990
    assert cs.lines[0] == " "
    # Class k is line k of the file, for every k >= 1.
    for k in (1, 2, 100, 5989):
        assert cs.lines[k] == lines[k]
        assert cs.decode([k]) == lines[k]


def test_duplicates_map_to_first_line():
    cs = Charset.default()
    for ch, first, second in [
        ("1", 19, 5565),
        ("3", 48, 5745),
        ("■", 2111, 4105),
        ("荼", 3390, 5464),
        ("崂", 4409, 5539),
    ]:
        assert cs.lines[first] == cs.lines[second] == ch
        assert cs.encode(ch) == [first]
        assert cs.decode([second]) == ch
    assert len(cs.chars) == 5989 - 5


def test_round_trip_and_blank():
    cs = Charset.default()
    text = "出生1986年2月1日，住址天津市"
    ids = cs.encode(text)
    assert 0 not in ids and cs.decode(ids) == text
    assert cs.decode([0] + ids + [0]) == text  # blanks are skipped
    assert cs.encode("a b") == cs.encode("ab")  # whitespace is not a class


def test_unknown_characters_are_reported_not_dropped():
    cs = Charset.default()
    with pytest.raises(UnknownCharacterError) as e:
        cs.encode("中国😀人€", where="labels.txt:3")
    assert e.value.unknown == ["😀", "€"]
    assert "labels.txt:3" in str(e.value)
    assert cs.unknown_chars("中国") == []


def test_from_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Charset.from_file(tmp_path / "none.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text(" \na\nbc\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt:3"):
        Charset.from_file(bad)
    with pytest.raises(ValueError, match="out of range"):
        Charset.from_chars("ab").decode([3])


def test_small_charset(small_charset):
    assert small_charset.encode("的一") == [1, 2]
    assert small_charset.sha256 != Charset.default().sha256
