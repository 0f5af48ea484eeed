import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from densenet_jax.charset import Charset
from densenet_jax.ctc import beam_search_decode, collapse_path, ctc_loss, greedy_decode


def ctc_nll_reference(log_probs: np.ndarray, labels) -> float:
    """-log P(labels) by summing over every alignment (brute force, float64)."""
    T, C = log_probs.shape
    total = 0.0
    for path in itertools.product(range(C), repeat=T):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1])]
        if collapsed == list(labels):
            total += math.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
    return -math.log(total)


def ctc_nll_forward(log_probs: np.ndarray, labels) -> float:
    """-log P(labels) by the CTC forward recursion in float64 (for longer sequences)."""
    ext = [0]
    for k in labels:
        ext += [k, 0]
    S = len(ext)
    alpha = np.full(S, -np.inf)
    alpha[0] = log_probs[0, 0]
    if S > 1:
        alpha[1] = log_probs[0, ext[1]]
    for t in range(1, log_probs.shape[0]):
        prev = alpha.copy()
        for s in range(S):
            cands = [prev[s]] + ([prev[s - 1]] if s >= 1 else [])
            if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2]:
                cands.append(prev[s - 2])
            alpha[s] = np.logaddexp.reduce(cands) + log_probs[t, ext[s]]
    return -float(np.logaddexp.reduce(alpha[-2:] if S > 1 else alpha[-1:]))


def test_forward_reference_matches_brute_force():
    rng = np.random.default_rng(0)
    lp = np.log(rng.dirichlet(np.ones(3), size=5))
    for labels in ([1], [1, 2], [1, 1], [2, 1, 2]):
        assert ctc_nll_forward(lp, labels) == pytest.approx(ctc_nll_reference(lp, labels))


def test_ctc_loss_matches_float64_reference_with_padding():
    rng = np.random.default_rng(1)
    B, T, C, N = 4, 9, 5, 6
    logits = rng.normal(size=(B, T, C)) * 2
    logit_len = np.array([9, 7, 5, 9])
    labels_list = [[1, 2, 2, 3], [4], [2, 3, 1], [1, 1, 1, 2, 3]]
    labels = np.zeros((B, N), np.int32)
    for b, lab in enumerate(labels_list):
        labels[b, : len(lab)] = lab
        labels[b, len(lab) :] = 3  # garbage in the padding must not matter
    losses = ctc_loss(
        jnp.asarray(logits, jnp.float32),
        jnp.asarray(logit_len),
        jnp.asarray(labels),
        jnp.asarray([len(x) for x in labels_list]),
    )
    for b in range(B):
        lp = jax.nn.log_softmax(logits[b, : logit_len[b]].astype(np.float64), axis=-1)
        ref = ctc_nll_forward(np.asarray(lp), labels_list[b])
        assert float(losses[b]) == pytest.approx(ref, rel=1e-4, abs=1e-4)


def test_ctc_loss_of_an_empty_label_is_all_blanks():
    # A line with no text (label length 0) has one alignment: blank at every valid step.
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, 7, 5)) * 2
    losses = ctc_loss(
        jnp.asarray(logits, jnp.float32),
        jnp.asarray([7, 4]),
        jnp.full((2, 3), 2, jnp.int32),
        jnp.asarray([0, 0]),
    )
    for b, t in enumerate([7, 4]):
        lp = jax.nn.log_softmax(logits[b, :t].astype(np.float64), axis=-1)
        assert float(losses[b]) == pytest.approx(-float(np.sum(lp[:, 0])), rel=1e-4)


def test_padded_batch_equals_unpadded_lines():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(1, 6, 4)).astype(np.float32)
    short = ctc_loss(logits, jnp.array([6]), jnp.array([[1, 2]]), jnp.array([2]))
    padded_logits = np.concatenate([logits, rng.normal(size=(1, 5, 4)).astype(np.float32)], 1)
    padded = ctc_loss(padded_logits, jnp.array([6]), jnp.array([[1, 2, 0, 0]]), jnp.array([2]))
    np.testing.assert_allclose(short, padded, rtol=1e-5)


CS = Charset.from_chars("ab")  # class 1 = 'a', 2 = 'b'


def _path_probs(ids, conf=0.9, C=3):
    p = np.full((len(ids), C), (1 - conf) / (C - 1))
    p[np.arange(len(ids)), ids] = conf
    return p


@pytest.mark.parametrize(
    "ids,text",
    [
        ([1, 1, 1], "a"),
        ([1, 0, 1], "aa"),
        ([0, 0, 0], ""),
        ([1, 2, 2, 0, 2, 1], "abba"),
        ([0, 1, 1, 0], "a"),
    ],
)
def test_greedy_collapse(ids, text):
    d = greedy_decode(_path_probs(ids), CS)
    assert d.text == text
    assert len(d.confidences) == len(text)
    assert d.ids == [CS.encode(c)[0] for c in text]


def test_greedy_confidences_and_score():
    probs = np.array([[0.1, 0.6, 0.3], [0.05, 0.9, 0.05], [0.8, 0.1, 0.1], [0.2, 0.1, 0.7]])
    d = greedy_decode(probs, CS)
    assert d.text == "ab"
    assert d.confidences == pytest.approx([0.9, 0.7])  # best step of each run
    assert d.score == pytest.approx(0.8)
    empty = collapse_path(np.array([0, 0]), np.array([0.9, 0.7]), CS)
    assert empty.text == "" and empty.score == pytest.approx(0.8)


def _best_labelling_brute_force(probs):
    T, C = probs.shape
    totals = {}
    for path in itertools.product(range(C), repeat=T):
        collapsed = tuple(k for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1]))
        totals[collapsed] = totals.get(collapsed, 0.0) + np.prod(probs[np.arange(T), path])
    return max(totals, key=totals.get)


def test_beam_search_finds_most_probable_labelling():
    rng = np.random.default_rng(3)
    disagreements = 0
    for _ in range(30):
        probs = rng.dirichlet(np.ones(3) * 0.7, size=5)
        best = _best_labelling_brute_force(probs)
        d = beam_search_decode(probs, CS, beam_width=64, prune=0.0)
        assert tuple(d.ids) == best
        disagreements += tuple(greedy_decode(probs, CS).ids) != best
        assert len(d.confidences) == len(d.ids)
        assert all(0 < c <= 1 for c in d.confidences)
    assert disagreements > 0  # the cases include ones where greedy is wrong


def test_beam_search_sums_alignments():
    # Greedy reads blank, blank, ... but "a" spread over several steps is more probable.
    probs = np.array([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25], [0.4, 0.35, 0.25]])
    assert greedy_decode(probs, CS).text == ""
    assert beam_search_decode(probs, CS).text == "a"


def test_infeasible_lines_are_left_out_of_the_loss():
    from densenet_jax.ctc import min_ctc_steps
    from densenet_jax.data.pipeline import widen_for_ctc

    labels = jnp.array([[1, 1, 1, 2], [1, 2, 0, 0]])
    assert list(min_ctc_steps(labels, jnp.array([4, 2]))) == [6, 2]
    # numpy in, numpy out (the data pipeline's use), an empty label included
    got = min_ctc_steps(np.array([[1, 1, 1, 2], [0, 0, 0, 0]]), np.array([4, 0]))
    assert isinstance(got, np.ndarray) and got.tolist() == [6, 0]
    # "1111" rendered 40 px wide (5 steps) gets stretched to 8 * (7 + 1) px.
    assert widen_for_ctc(np.zeros((32, 40), np.uint8), [1, 1, 1, 1]).shape == (32, 64)
    assert widen_for_ctc(np.zeros((32, 90), np.uint8), [1, 2]).shape == (32, 90)
