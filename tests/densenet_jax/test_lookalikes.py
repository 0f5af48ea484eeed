import numpy as np
import pytest

from densenet_jax.charset import Charset
from densenet_jax.ctc import greedy_decode
from densenet_jax.lookalikes import emission_spans, resolve_lookalikes, word_breaks

CS = Charset.from_chars("abdefhilnprtvxoO0cCsSI1LEGHT25.:%")


def _line(frames, charset=CS, blank_steps=1):
    """`(T, C)` probabilities: one step per dict in `frames` ({char: prob}, rest to blank),
    `blank_steps` blank steps after each. Returns (probs, greedy path)."""
    rows = []
    for spec in frames:
        p = np.zeros(charset.num_classes)
        for ch, v in spec.items():
            p[charset.encode(ch)[0]] = v
        p[0] = 1 - p.sum()
        rows.append(p)
        for _ in range(blank_steps if isinstance(blank_steps, int) else blank_steps.pop(0)):
            b = np.zeros(charset.num_classes)
            b[0] = 1.0
            rows.append(b)
    probs = np.array(rows)
    return probs, probs.argmax(-1)


def _read(frames, weight=3.0, blank_steps=1):
    probs, path = _line(frames, blank_steps=blank_steps)
    return resolve_lookalikes(greedy_decode(probs, CS), path, probs, CS, weight).text


def _word(text, **split):
    """Frames of `text`, each character certain, except those given as {index: {c: p}}."""
    return [split.get(f"c{i}", {ch: 0.99}) for i, ch in enumerate(text)]


def test_emission_spans_match_the_greedy_collapse():
    rng = np.random.default_rng(0)
    for _ in range(200):
        path = rng.integers(0, 4, size=rng.integers(0, 15))
        spans = emission_spans(path)
        emitted = [k for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1])]
        assert len(spans) == len(emitted)
        for (s, e), k in zip(spans, emitted, strict=True):
            assert (path[s:e] == k).all()  # a run of the emitted class ...
            assert s == 0 or path[s - 1] != k  # ... that is maximal
            assert e == len(path) or path[e] != k


def test_weight_one_and_random_lines_keep_the_best_path():
    rng = np.random.default_rng(1)
    for _ in range(50):
        probs = rng.dirichlet(np.full(CS.num_classes, 0.3), size=12)
        path = probs.argmax(-1)
        greedy = greedy_decode(probs, CS)
        assert resolve_lookalikes(greedy, path, probs, CS, 1.0) == greedy
        # Whatever the weight, only look-alikes change, and only within their group.
        out = resolve_lookalikes(greedy, path, probs, CS, 8.0)
        assert len(out.text) == len(greedy.text) and out.confidences == greedy.confidences
        for a, b in zip(greedy.text, out.text, strict=True):
            assert (
                a == b
                or {a, b} <= set("oO0")
                or {a, b} <= set("lI1")
                or {a, b} <= set("cC")
                or {a, b} <= set("sS")
            )
    with pytest.raises(ValueError, match="weight"):
        resolve_lookalikes(greedy, path, probs, CS, 0.5)


def test_split_readings_follow_their_neighbours():
    split_o = {"O": 0.5, "o": 0.3, "0": 0.1}
    assert _read(_word("hOnered", c1=split_o)) == "honered"  # among lower case
    assert _read(_word("ETHo", c3={"o": 0.5, "O": 0.3})) == "ETHO"  # after capitals
    assert _read(_word("2O5", c1=split_o)) == "205"  # among digits: 0.1 * 9 > 0.5
    assert _read(_word("5.O5", c2=split_o)) == "5.05"  # digits across number punctuation
    split_1 = {"1": 0.5, "l": 0.35, "I": 0.1}
    assert _read(_word("leve1", c4=split_1)) == "level"
    assert _read(_word("TIT1E", c3=split_1)) == "TITIE"


def test_confident_readings_and_word_starts_survive():
    sure_o = {"O": 0.95, "o": 0.05}
    assert _read(_word("hOne", c1=sure_o)) == "hOne"  # 0.05 * 9 < 0.95
    # A capital before lower case is a word's first letter: context supports both cases.
    assert _read(_word("Close", c0={"C": 0.6, "c": 0.4})) == "Close"
    assert _read(_word("close", c0={"c": 0.6, "C": 0.4})) == "close"
    # No context at all (punctuation on both sides): the model's reading.
    assert _read(_word(":O:", c1={"O": 0.5, "0": 0.4})) == ":O:"


def test_a_wide_step_is_a_word_break():
    # "Local Abc S": the space is not a class, but it leaves a wider step before "S".
    frames = _word("abcS", c3={"S": 0.55, "s": 0.45})
    assert _read(frames) == "abcs"  # one word: lower case context
    assert _read(frames, blank_steps=[1, 1, 4, 1]) == "abcS"  # "abc S": no context
    assert word_breaks([(0, 1), (2, 3), (4, 5), (9, 10)]) == {2}
    assert word_breaks([(0, 1), (2, 3)]) == frozenset()  # too short to know a median step
