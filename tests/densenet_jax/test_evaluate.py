import cv2
import jax
import numpy as np
import pytest

from densenet_jax import evaluate, task
from densenet_jax.metrics import edit_distance, text_metrics
from densenet_jax.recognizer import Recognizer


def test_metrics_hand_worked():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    m = text_metrics(["中国人", "ab c", ""], ["中国", "abc", "xy"])
    # edits: 1 (insertion) + 0 (spaces ignored) + 2 (deletions) over 2 + 3 + 2 chars
    assert m["cer"] == pytest.approx(3 / 7) and m["exact"] == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, small_charset_file):
    from densenet_jax.data.pipeline import LineDataConfig
    from densenet_jax.task import Config

    cfg = Config(charset_file=str(small_charset_file), growth=4, depth=2, first_features=16,
                 transition_features=16, data=LineDataConfig(widths=(96,), system_fonts=False))
    model = task.build_model(cfg)
    variables = task.init_variables(model, cfg, jax.random.key(0))
    return task.export(tmp_path_factory.mktemp("w") / "tiny.npz", cfg, model, variables)


def test_batched_recognition_equals_one_by_one(tiny_weights):
    rec = Recognizer.from_file(tiny_weights)
    rng = np.random.default_rng(0)
    lines = [rng.integers(0, 255, (32, w), dtype=np.uint8) for w in (40, 100, 130, 300, 90)]
    lines.append(rng.integers(0, 255, (64, 120, 3), dtype=np.uint8))  # colour, other height
    batched = rec.recognize(lines, batch_size=4)
    single = [rec.recognize([x])[0] for x in lines]
    for b, s in zip(batched, single, strict=True):
        assert b.ids == s.ids
        np.testing.assert_allclose(b.confidences, s.confidences, rtol=1e-4, atol=1e-5)
    beam = rec.recognize(lines[:2], decoder="beam")
    assert len(beam) == 2
    with pytest.raises(ValueError, match="decoder"):
        rec.recognize(lines, decoder="nope")


def test_lookalike_weight_one_is_the_plain_best_path(tiny_weights):
    from densenet_jax.ctc import greedy_decode
    from densenet_jax.preprocess import pad_lines

    rec = Recognizer.from_file(tiny_weights, lookalike_weight=1.0)
    line = np.random.default_rng(3).integers(0, 255, (32, 128), dtype=np.uint8)
    batch, widths = pad_lines([line], 128)
    logits = rec.logits(batch)[0, : int(rec.model.output_length(int(widths[0])))]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    assert rec.recognize([line])[0].ids == greedy_decode(probs, rec.charset).ids
    with pytest.raises(ValueError, match="lookalike_weight"):
        Recognizer.from_file(tiny_weights, lookalike_weight=0.5)


def test_evaluate_command(tmp_path, tiny_weights, capsys):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"l{i}.png"), np.full((32, 80), 255 - 40 * i, np.uint8))
    labels = tmp_path / "lines.tsv"
    # References may hold characters the model cannot output (they count as errors).
    labels.write_text("l0.png\t的一\nl1.png\t是在\nl2.png\t€\n", encoding="utf-8")
    assert evaluate.main(["--weights", str(tiny_weights), "--labels", str(labels),
                          "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "lines 3" in out and "CER" in out and (tmp_path / "r.json").is_file()
    assert evaluate.main(["--weights", str(tmp_path / "none.npz"), "--labels",
                          str(labels)]) == 2
    assert "none.npz does not exist" in capsys.readouterr().err
    (tmp_path / "bad.tsv").write_text("missing.png\t的\n", encoding="utf-8")
    assert evaluate.main(["--weights", str(tiny_weights), "--labels",
                          str(tmp_path / "bad.tsv")]) == 2
    assert "bad.tsv:1: image" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(["--weights", str(tiny_weights), "--labels", str(labels),
                       "--lookalike-weight", "0"])
    assert "--lookalike-weight must be >= 1" in capsys.readouterr().err
