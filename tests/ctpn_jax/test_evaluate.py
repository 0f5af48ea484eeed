"""Detection metrics against a hand-worked example; the evaluation command end to end."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from ctpn_jax.evaluate import main
from ctpn_jax.metrics import match_detections, quad_iou


def rect(x0, y0, x1, y1):
    return np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def test_quad_iou_hand_values():
    assert quad_iou(rect(0, 0, 10, 10), rect(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert quad_iou(rect(0, 0, 10, 10), rect(0, 0, 10, 10)) == pytest.approx(1.0)
    assert quad_iou(rect(0, 0, 10, 10), rect(20, 0, 30, 10)) == 0.0
    # a diamond inside a square: area 50 of 100
    diamond = np.float32([[5, 0], [10, 5], [5, 10], [0, 5]])
    assert quad_iou(rect(0, 0, 10, 10), diamond) == pytest.approx(0.5, abs=1e-4)


def test_hand_worked_example():
    gt = np.stack([rect(0, 0, 100, 20), rect(0, 40, 100, 60), rect(200, 0, 300, 50)])
    ignore = np.array([False, False, True])
    preds = np.stack(
        [
            rect(0, 0, 100, 20),  # IoU 1 with gt 0: TP
            rect(10, 40, 100, 60),  # IoU 0.9 with gt 1: TP
            rect(0, 42, 100, 62),  # IoU 0.82 with gt 1, already taken: FP (one-to-one)
            rect(210, 10, 240, 40),  # inside the don't-care box: ignored
            rect(500, 500, 550, 520),  # nothing there: FP
            rect(0, 0, 40, 20),  # IoU 0.4 with gt 0: FP
        ]
    )
    r = match_detections(gt, ignore, preds)
    assert (r.tp, r.fp, r.num_gt, r.ignored) == (2, 3, 2, 1)
    assert r.precision == pytest.approx(2 / 5)
    assert r.recall == pytest.approx(1.0)
    assert r.hmean == pytest.approx(2 * 0.4 * 1.0 / 1.4)
    # highest IoU first: a worse prediction listed first does not steal the match
    r2 = match_detections(
        gt[1:2], ignore[1:2], np.stack([rect(0, 42, 100, 62), rect(0, 40, 100, 60)])
    )
    assert (r2.tp, r2.fp) == (1, 1)
    empty = match_detections(gt, ignore, np.zeros((0, 4, 2), np.float32))
    assert (empty.tp, empty.fp, empty.precision, empty.recall, empty.hmean) == (0, 0, 0, 0, 0)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from ctpn_jax.model import CTPN, CTPNConfig, init_ctpn
    from ctpn_jax.weights import export_detector

    cfg = CTPNConfig(width=0.125)
    variables = init_ctpn(CTPN.from_config(cfg), jax.random.PRNGKey(0))
    path = tmp_path_factory.mktemp("w") / "ctpn.npz"
    export_detector(path, cfg, variables, step=0)
    return path


def test_command_on_a_rendered_set(tmp_path, tiny_weights, capsys):
    from ctpn_jax.data.render import write_dataset

    write_dataset(tmp_path / "set", 2, seed=4, fmt="icdar2015")
    preds = tmp_path / "preds.json"
    rc = main(
        [
            "--weights",
            str(tiny_weights),
            "--data",
            str(tmp_path / "set"),
            "--short-side",
            "128",
            "--long-side",
            "192",
            "--score",
            "0.0",
            "--per-image",
            "--preds",
            str(preds),
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "precision" in out and "recall" in out and "hmean" in out and "time per image" in out
    assert preds.is_file()
    metrics = json.loads((tmp_path / "m.json").read_text())
    pages = metrics["per_image"]
    assert sorted(pages) == sorted(json.loads(preds.read_text()))
    for key, total in (
        ("gt", "gt_lines"),
        ("tp", "true_positives"),
        ("fp", "false_positives"),
        ("ignored", "ignored"),
    ):
        assert sum(c[key] for c in pages.values()) == metrics[total]


def test_paired_hmean_script(tmp_path):
    """bench/paired_hmean.py on counts worked by hand: old TP 6 FP 2 GT 10 (H 12/18), new
    TP 8 FP 1 GT 10 (H 16/19); a mismatched pair of files is an error."""

    def write(name, pages):
        (tmp_path / name).write_text(
            json.dumps(
                {
                    "per_image": {
                        k: {"tp": tp, "fp": fp, "gt": gt, "ignored": 0}
                        for k, (tp, fp, gt) in pages.items()
                    }
                }
            )
        )

    write("old.json", {"a.jpg": (4, 0, 5), "b.jpg": (2, 2, 5)})
    write("new.json", {"a.jpg": (5, 0, 5), "b.jpg": (3, 1, 5)})
    write("other.json", {"a.jpg": (5, 0, 5), "c.jpg": (3, 1, 5)})
    script = Path(__file__).resolve().parents[2] / "bench" / "paired_hmean.py"
    run = subprocess.run(
        [sys.executable, script, tmp_path / "old.json", tmp_path / "new.json"],
        capture_output=True,
        text=True,
        check=True,
    )
    row = next(r for r in run.stdout.splitlines() if r.startswith("| old "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:3] == ["2", "10"]
    assert float(cells[3].split("/")[2]) == pytest.approx(12 / 18, abs=1e-4)
    assert float(cells[4].split("/")[2]) == pytest.approx(16 / 19, abs=1e-4)
    assert float(cells[5]) == pytest.approx(16 / 19 - 12 / 18, abs=1e-4)
    lo, hi = (float(v) for v in cells[6].split(".."))
    assert 0 < lo <= hi  # the new file is as good or better on both pages
    bad = subprocess.run(
        [sys.executable, script, tmp_path / "old.json", tmp_path / "other.json"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "same pages" in bad.stderr


DEV = Path(__file__).resolve().parents[3] / "shared" / "dev"


@pytest.mark.skipif(not (DEV / "gt").is_dir(), reason="no shared dev set here")
def test_command_on_the_dev_set(tiny_weights, capsys):
    rc = main(
        [
            "--weights",
            str(tiny_weights),
            "--data",
            str(DEV),
            "--short-side",
            "128",
            "--long-side",
            "192",
            "--limit",
            "3",
        ]
    )
    assert rc == 0 and "hmean" in capsys.readouterr().out


def test_command_reports_bad_inputs(tmp_path, tiny_weights, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "gt").mkdir()
    from PIL import Image

    Image.new("RGB", (40, 30)).save(tmp_path / "images" / "a.png")
    (tmp_path / "gt" / "gt_a.txt").write_text("1,2,3\n", encoding="utf-8")
    rc = main(
        [
            "--weights",
            str(tiny_weights),
            "--data",
            str(tmp_path),
            "--short-side",
            "64",
            "--long-side",
            "96",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "gt_a.txt:1:" in err
    rc = main(["--weights", str(tmp_path / "missing.npz"), "--data", str(tmp_path)])
    assert rc == 2 and "missing.npz" in capsys.readouterr().err


def test_det_errors_script_sorts_unmatched_lines_worked_by_hand(tmp_path):
    """bench/det_errors.py on one page built by hand: a side-by-side pair read as one box,
    a stacked pair read as one box, a line split in two, a line half covered, a line
    missed, a line matched, a don't-care line under a box and a box on nothing."""

    def quad(x0, y0, x1, y1):
        return [x0, y0, x1, y0, x1, y1, x0, y1]

    gt = {
        "side a": (0, 0, 100, 20),
        "side b": (120, 0, 200, 20),
        "stack a": (0, 60, 100, 80),
        "stack b": (0, 82, 100, 102),
        "split": (0, 140, 200, 160),
        "misfit": (0, 200, 100, 220),
        "missed": (300, 300, 350, 320),
        "matched": (0, 400, 100, 420),
    }
    lines = [{"box": quad(*b), "text": t} for t, b in gt.items()]
    lines.append({"box": quad(600, 0, 700, 20), "text": "###"})
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "page.json").write_text(json.dumps({"lines": lines}))
    preds = [
        (0, 0, 210, 20),  # side a + side b (IoU 0.48 and 0.38)
        (0, 60, 100, 102),  # stack a + stack b
        (0, 140, 90, 160),  # split, left
        (110, 140, 200, 160),  # split, right
        (0, 200, 40, 220),  # misfit (IoU 0.4)
        (0, 401, 100, 421),  # matched
        (600, 0, 690, 20),  # on the don't-care line
        (500, 500, 520, 520),  # spurious
    ]
    (tmp_path / "p.json").write_text(json.dumps({"page.jpg": [{"box": quad(*b)} for b in preds]}))
    script = Path(__file__).resolve().parents[2] / "bench" / "det_errors.py"
    out = subprocess.run(
        [sys.executable, script, "--gt", tmp_path / "gt", tmp_path / "p.json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [r for r in out.splitlines() if r.startswith("| p.json")]
    counts = [[int(c.split()[0]) for c in r.strip("|").split("|")[1:]] for r in rows]
    # images, gt lines | matched, merged H, merged V, split, misfit, missed
    assert counts[0] == [1, 8, 1, 2, 2, 1, 1, 1]
    # boxes | matched, merge, fragment, partial overlap, on don't-care, spurious
    assert counts[1] == [8, 1, 2, 3, 0, 1, 1]
