"""CTC loss and decoders for the recogniser (blank = class 0).

Loss: `optax.ctc_loss` with logit and label paddings built from true lengths, so a batch of
lines padded to one width gives exactly the per-line losses of unpadded lines.

Decoders work on one line's `(T, C)` probabilities (numpy) and return a `Decoded` record:
text, class ids, per-character confidences and a line score (the mean character confidence;
for an empty result, the mean blank probability).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from densenet_jax.charset import BLANK_ID, Charset


def lengths_to_paddings(lengths: jnp.ndarray, max_len: int) -> jnp.ndarray:
    """`(B,)` int lengths -> `(B, max_len)` float32 paddings (1.0 past each length)."""
    return (jnp.arange(max_len)[None, :] >= lengths[:, None]).astype(jnp.float32)


def ctc_loss(
    logits: jnp.ndarray,
    logit_lengths: jnp.ndarray,
    labels: jnp.ndarray,
    label_lengths: jnp.ndarray,
) -> jnp.ndarray:
    """Per-line CTC negative log-likelihood.

    Args:
      logits: `(B, T, C)` float32 unnormalised scores, blank = class 0.
      logit_lengths: `(B,)` int32 valid time steps of each line.
      labels: `(B, N)` int32 class ids, right-padded (padding values are ignored).
      label_lengths: `(B,)` int32 number of valid labels of each line.

    Returns:
      `(B,)` float32 losses.
    """
    import optax  # here, not at the top: inference imports this module's decoders only

    logit_pad = lengths_to_paddings(logit_lengths, logits.shape[1])
    label_pad = lengths_to_paddings(label_lengths, labels.shape[1])
    return optax.ctc_loss(logits, logit_pad, labels, label_pad, blank_id=BLANK_ID)


def min_ctc_steps(
    labels: np.ndarray | jax.Array, label_length: np.ndarray | jax.Array
) -> np.ndarray | jax.Array:
    """Fewest CTC time steps that can emit each label row: one per label, plus a blank
    between each pair of equal neighbours.

    Args:
      labels: `(B, L)` int class ids, right-padded (padding values are ignored).
      label_length: `(B,)` int number of valid labels of each row.

    Returns:
      `(B,)` steps of `label_length`'s dtype: a numpy array for numpy inputs (no device
      round trip, e.g. in a data pipeline), else a jax array (works on traced arrays).
    """
    xp = np if isinstance(labels, np.ndarray) and isinstance(label_length, np.ndarray) else jnp
    labels, label_length = xp.asarray(labels), xp.asarray(label_length)
    valid = xp.arange(labels.shape[1])[None, :] < label_length[:, None]
    repeats = (labels[:, 1:] == labels[:, :-1]) & valid[:, 1:]
    return label_length + repeats.sum(axis=1, dtype=label_length.dtype)


@jax.jit
def best_path(logits: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """`(B, T, C)` logits -> argmax ids `(B, T)` int32 and their probabilities `(B, T)`."""
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    ids = jnp.argmax(probs, axis=-1).astype(jnp.int32)
    return ids, jnp.take_along_axis(probs, ids[..., None], axis=-1)[..., 0]


@dataclass
class Decoded:
    """One decoded line."""

    text: str
    ids: list[int]
    confidences: list[float] = field(default_factory=list)
    score: float = 0.0


def _line_score(confidences: Sequence[float], blank_probs: np.ndarray) -> float:
    if confidences:
        return float(np.mean(confidences))
    return float(np.mean(blank_probs)) if blank_probs.size else 0.0


def collapse_path(ids: np.ndarray, probs: np.ndarray, charset: Charset) -> Decoded:
    """Greedy CTC collapse of one best path: merge repeats, then drop blanks.

    Args:
      ids: `(T,)` argmax class per step. probs: `(T,)` its probability.

    A character's confidence is the highest probability over the steps of its run
    ("a a _ a" gives "aa" with two confidences).
    """
    out_ids: list[int] = []
    confs: list[float] = []
    prev = BLANK_ID
    for k, p in zip(ids.tolist(), probs.tolist(), strict=True):
        if k != BLANK_ID:
            if k != prev:
                out_ids.append(k)
                confs.append(p)
            else:
                confs[-1] = max(confs[-1], p)
        prev = k
    blank_probs = probs[ids == BLANK_ID]
    return Decoded(charset.decode(out_ids), out_ids, confs, _line_score(confs, blank_probs))


def greedy_decode(probs: np.ndarray, charset: Charset) -> Decoded:
    """Greedy decoding of one line's `(T, C)` probabilities."""
    probs = np.asarray(probs)
    ids = probs.argmax(-1)
    return collapse_path(ids, probs[np.arange(len(ids)), ids], charset)


def decode_batch(logits: jnp.ndarray, lengths: Sequence[int], charset: Charset) -> list[Decoded]:
    """Greedy decoding of a padded batch: `(B, T, C)` logits, valid steps per line."""
    ids, probs = jax.device_get(best_path(logits))
    return [collapse_path(ids[b, :n], probs[b, :n], charset) for b, n in enumerate(lengths)]


def beam_search_decode(
    probs: np.ndarray, charset: Charset, beam_width: int = 10, prune: float = 1e-4
) -> Decoded:
    """CTC prefix beam search over one line's `(T, C)` probabilities.

    Keeps the `beam_width` most probable prefixes, summing over all alignments of each
    (blank-ending and non-blank-ending probabilities kept apart, as in Graves' algorithm).
    Classes with probability below `prune` at a step are not extended. A character's
    confidence is its probability where it was emitted, raised by later repeats of it.
    """
    probs = np.asarray(probs, dtype=np.float64)
    # prefix -> [p ending in blank, p ending in its last char, confidences]
    beams: dict[tuple[int, ...], list] = {(): [1.0, 0.0, []]}
    for p_t in probs:
        cands = [int(c) for c in np.nonzero(p_t >= prune)[0] if c != BLANK_ID]
        nxt: dict[tuple[int, ...], list] = {}
        for prefix, (pb, pnb, confs) in beams.items():
            # Same prefix: a blank, or the last character repeated without a blank.
            stay = nxt.setdefault(prefix, [0.0, 0.0, confs])
            stay[0] += (pb + pnb) * p_t[BLANK_ID]
            if prefix:
                stay[1] += pnb * p_t[prefix[-1]]
                stay[2] = confs[:-1] + [max(confs[-1], float(p_t[prefix[-1]]))]
            for c in cands:
                # Emitting the last character again needs a blank in between.
                p_new = pb * p_t[c] if prefix and c == prefix[-1] else (pb + pnb) * p_t[c]
                ext = nxt.setdefault(prefix + (c,), [0.0, 0.0, confs + [float(p_t[c])]])
                ext[1] += p_new
        ranked = sorted(nxt.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)
        beams = dict(ranked[:beam_width])
        # Renormalise so that long lines do not underflow (the ranking is unchanged).
        z = sum(v[0] + v[1] for v in beams.values())
        if z > 0:
            for v in beams.values():
                v[0] /= z
                v[1] /= z
    best, (_, _, confs) = max(beams.items(), key=lambda kv: kv[1][0] + kv[1][1])
    ids = list(best)
    return Decoded(charset.decode(ids), ids, list(confs), _line_score(confs, probs[:, BLANK_ID]))
