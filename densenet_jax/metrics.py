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


def without_spaces(text: str) -> str:
    """`text` without whitespace: spaces are not a recogniser class, so no metric counts them."""
    return "".join(text.split())


def line_edits(predictions: Sequence[str], targets: Sequence[str]) -> list[tuple[int, int]]:
    """(edits, target characters) of each line, whitespace ignored."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    out = []
    for p, t in zip(predictions, targets, strict=True):
        p, t = without_spaces(p), without_spaces(t)
        out.append((edit_distance(p, t), len(t)))
    return out


def text_metrics(predictions: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
    """CER = total edits / total target characters; exact = fraction of lines read exactly.

    Whitespace is ignored (spaces are not a recogniser class).
    """
    per_line = line_edits(predictions, targets)
    edits = sum(e for e, _ in per_line)
    chars = sum(c for _, c in per_line)
    exact = sum(e == 0 for e, _ in per_line)
    n = max(1, len(targets))
    return {"cer": edits / max(1, chars), "exact": exact / n, "lines": float(len(targets))}


CHAR_CLASSES = ("hanzi", "latin", "digit", "other")


def char_class(c: str) -> str:
    """'hanzi' (CJK ideographs), 'latin' (ASCII letters), 'digit' (0-9) or 'other'
    (punctuation, symbols, full-width forms)."""
    o = ord(c)
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "hanzi"
    if c.isascii() and c.isalpha():
        return "latin"
    if c.isascii() and c.isdigit():
        return "digit"
    return "other"


def edit_operations(target: str, prediction: str) -> list[tuple[str, str, str]]:
    """The edits of one minimal alignment of `prediction` to `target`, left to right:
    ("sub", t, p), ("del", t, "") for a target character not read, ("ins", "", p) for a
    predicted character not in the target. `len(...) == edit_distance(target, prediction)`.
    """
    n, m = len(target), len(prediction)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(
                d[i - 1][j] + 1,
                d[i][j - 1] + 1,
                d[i - 1][j - 1] + (target[i - 1] != prediction[j - 1]),
            )
    ops = []
    i, j = n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (target[i - 1] != prediction[j - 1]):
            if target[i - 1] != prediction[j - 1]:
                ops.append(("sub", target[i - 1], prediction[j - 1]))
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            ops.append(("del", target[i - 1], ""))
            i -= 1
        else:
            ops.append(("ins", "", prediction[j - 1]))
            j -= 1
    return ops[::-1]


def errors_by_class(predictions: Sequence[str], targets: Sequence[str]) -> dict[str, dict]:
    """Where the edits of `text_metrics` fall, by `char_class`. For each class: "chars" (in
    the targets), "sub" and "del" (of its target characters), "ins" (predicted characters
    of the class that the target lacks) and "cer" (their sum over "chars"; 0 without
    chars). The edits of all classes add up to those of `text_metrics`; whitespace is
    ignored likewise.
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    out = {k: {"chars": 0, "sub": 0, "del": 0, "ins": 0} for k in CHAR_CLASSES}
    for p, t in zip(predictions, targets, strict=True):
        p, t = without_spaces(p), without_spaces(t)
        for c in t:
            out[char_class(c)]["chars"] += 1
        for op, tc, pc in edit_operations(t, p):
            out[char_class(tc or pc)][op] += 1
    for v in out.values():
        v["cer"] = (v["sub"] + v["del"] + v["ins"]) / v["chars"] if v["chars"] else 0.0
    return out
