"""Recognition metrics: edit distance, character error rate, exact-line accuracy."""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def text_metrics(predictions: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
    """CER = total edits / total target characters; exact = fraction of lines read exactly.

    Whitespace is ignored (spaces are not a recogniser class).
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    edits = chars = exact = 0
    for p, t in zip(predictions, targets, strict=True):
        p, t = "".join(p.split()), "".join(t.split())
        edits += edit_distance(p, t)
        chars += len(t)
        exact += p == t
    n = max(1, len(targets))
    return {"cer": edits / max(1, chars), "exact": exact / n, "lines": float(len(targets))}
