"""Label readers and writers, folder discovery, and their error messages."""

import json

import numpy as np
import pytest

from ctpn_jax.data.labels import (
    LabelError,
    TextLine,
    detect_format,
    find_samples,
    format_icdar2015,
    format_json,
    read_icdar2013,
    read_icdar2015,
    read_json,
    read_labels,
)


def test_icdar2015_with_bom_commas_and_dont_care(tmp_path):
    p = tmp_path / "gt_img_1.txt"
    p.write_bytes(
        "\ufeff377,117,463,117,465,130,378,130,Genaxis Theatre\n"
        "493,115,519,115,519,131,493,131,[06]\n\n"
        "374,155,409,155,409,170,374,170,###\n"
        "1,2,3,2,3,4,1,4,a,b,c\n".encode()
    )
    lines = read_icdar2015(p)
    assert [t.text for t in lines] == ["Genaxis Theatre", "[06]", "###", "a,b,c"]
    np.testing.assert_allclose(lines[0].quad, [[377, 117], [463, 117], [465, 130], [378, 130]])
    assert [t.ignore for t in lines] == [False, False, True, False]
    assert detect_format(p) == "icdar2015"


def test_icdar2013_spaces_and_commas(tmp_path):
    a = tmp_path / "gt_a.txt"
    a.write_text('38 43 920 215 "Tiredness"\n275 264 759 349 "kills"\n', encoding="utf-8")
    b = tmp_path / "gt_b.txt"
    b.write_text('\ufeff38, 43, 920, 215, "Tired ness"\n', encoding="utf-8")
    la, lb = read_icdar2013(a), read_icdar2013(b)
    assert [t.text for t in la] == ["Tiredness", "kills"]
    assert lb[0].text == "Tired ness"
    np.testing.assert_allclose(la[0].quad, [[38, 43], [920, 43], [920, 215], [38, 215]])
    assert detect_format(a) == "icdar2013" and detect_format(b) == "icdar2013"
    assert read_labels(a)[1].text == "kills"


def test_json_format(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(
        json.dumps(
            {
                "image": "x.jpg",
                "width": 10,
                "height": 10,
                "tags": [],
                "lines": [
                    {"box": [1, 2, 5, 2, 5, 6, 1, 6], "text": "中文"},
                    {"box": [0, 0, 1, 0, 1, 1, 0, 1], "text": "###"},
                ],
            }
        ),
        encoding="utf-8",
    )
    lines = read_json(p)
    assert lines[0].text == "中文" and lines[1].ignore
    np.testing.assert_allclose(lines[0].quad, [[1, 2], [5, 2], [5, 6], [1, 6]])
    assert detect_format(p) == "json"


def test_writers_round_trip(tmp_path):
    lines = [
        TextLine(np.float32([[1, 2], [30, 2], [30, 12.5], [1, 12.5]]), "a, b"),
        TextLine(np.float32([[5, 5], [9, 5], [9, 9], [5, 9]]), "###"),
    ]
    p = tmp_path / "gt_r.txt"
    p.write_text(format_icdar2015(lines), encoding="utf-8")
    back = read_icdar2015(p)
    assert [t.text for t in back] == ["a, b", "###"]
    np.testing.assert_allclose(back[0].quad, lines[0].quad)
    j = tmp_path / "r.json"
    j.write_text(format_json(lines, "r.jpg", 40, 20), encoding="utf-8")
    back = read_json(j)
    np.testing.assert_allclose(back[1].quad, lines[1].quad)


@pytest.mark.parametrize(
    "reader, content, line, what",
    [
        (read_icdar2015, "1,2,3,4,5,6,7,8,ok\n1,2,3,4,x\n", 2, "expected 8 coordinates"),
        (read_icdar2015, "1,2,3,4,5,6,7,y,t\n", 1, "is not a number"),
        (read_icdar2015, "1,2,3,4,5,6,7,nan,t\n", 1, "not finite"),
        (read_icdar2013, '1 2 3 4 "a"\n\nfoo\n', 3, "expected 'xmin ymin xmax ymax"),
        (read_icdar2013, '1 2 3 z "a"\n', 1, "is not a number"),
        (read_icdar2013, '5 2 3 4 "a"\n', 1, "xmax < xmin"),
    ],
)
def test_malformed_text_files_name_file_and_line(tmp_path, reader, content, line, what):
    p = tmp_path / "gt_bad.txt"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(LabelError) as e:
        reader(p)
    assert f"{p}:{line}:" in str(e.value) and what in str(e.value)


def test_format_detection_is_not_fooled_by_a_bad_first_line(tmp_path):
    p = tmp_path / "gt_x.txt"
    p.write_text("1,2,3,4,oops\n1,2,3,4,5,6,7,8,fine\n", encoding="utf-8")
    assert detect_format(p) == "icdar2015"
    with pytest.raises(LabelError, match=r"gt_x.txt:1: expected 8 coordinates"):
        read_labels(p)
    q = tmp_path / "gt_y.txt"
    q.write_text('1 2 3 4 "a,b,c,d,e,f,g,h,i"\n', encoding="utf-8")
    assert detect_format(q) == "icdar2013" and read_labels(q)[0].text == "a,b,c,d,e,f,g,h,i"


def test_invalid_utf8_names_line(tmp_path):
    p = tmp_path / "gt_enc.txt"
    p.write_bytes(b"1,2,3,4,5,6,7,8,ok\n1,2,3,4,5,6,7,8,\xff\xfe\n")
    with pytest.raises(LabelError, match=r"gt_enc.txt:2: not valid UTF-8"):
        read_icdar2015(p)


@pytest.mark.parametrize(
    "doc, what",
    [
        ("{not json", ":1: invalid JSON"),
        ('{"lines": 3}', "expected an object with a 'lines' list"),
        ('{"lines": [{"box": [1, 2, 3], "text": "a"}]}', "lines[0]: 'box' must be a list of 8"),
        ('{"lines": [{"box": [1, 2, 3, 4, 5, 6, 7, "x"], "text": "a"}]}', "lines[0]: 'box'"),
        ('{"lines": [{"box": [1, 2, 3, 4, 5, 6, 7, 8], "text": 5}]}', "'text' must be a string"),
    ],
)
def test_malformed_json(tmp_path, doc, what):
    p = tmp_path / "bad.json"
    p.write_text(doc, encoding="utf-8")
    with pytest.raises(LabelError) as e:
        read_json(p)
    assert str(p) in str(e.value) and what in str(e.value)


def test_missing_label_file_is_a_label_error(tmp_path):
    with pytest.raises(LabelError, match="nope.txt"):
        read_icdar2015(tmp_path / "nope.txt")


def test_find_samples_layouts(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "gt").mkdir()
    for n in ("a.jpg", "b.png"):
        (tmp_path / "images" / n).write_bytes(b"")
    (tmp_path / "gt" / "a.json").write_text('{"lines": []}')
    (tmp_path / "gt" / "gt_b.txt").write_text("")
    s = find_samples(tmp_path)
    assert [(x.image.name, x.label.name) for x in s] == [("a.jpg", "a.json"), ("b.png", "gt_b.txt")]
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "c.jpg").write_bytes(b"")
    (flat / "d.jpg").write_bytes(b"")
    (flat / "c.txt").write_text("")
    with pytest.raises(FileNotFoundError, match="d.jpg"):
        find_samples(flat)
    assert [x.image.name for x in find_samples(flat, require_labels=False)] == ["c.jpg"]
