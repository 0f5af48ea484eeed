"""Text for the synthetic renderers: realistic Chinese with digits, Latin and punctuation.

Chinese comes from the word-frequency dictionary that `jieba` ships (about 350 k words with
counts), so the character statistics follow real usage. English words come from the prose of
Python's own reference manual (`pydoc_data`, part of the standard library), so Latin lines
have real English spelling, next to a small vocabulary of signs and tickets and web
addresses.

Every sample may also carry `c` "coverage" characters taken in turn from a fixed permutation
of the alphabet: sample `i` gets characters `c*i ... c*i + c - 1` of that permutation, so
every character appears about once in every `len(alphabet) / c` consecutive samples, however
rare it is. Latin lines take only their ASCII coverage characters (a hanzi would not belong
in them), so a character is covered in 85% of those windows rather than in all.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ZH_PUNCT = "，。、：；？！“”（）《》·—"
# How often each mark follows a word in Chinese lines: clauses of modern prose run about 8
# characters (3 words of the dictionary), and the comma and full stop are most of the marks,
# so punctuation is about one character in nine, as in printed text.
ZH_PUNCT_RATE = 0.3
ZH_PUNCT_WEIGHTS = (40, 18, 10, 7, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1)
ASCII_PUNCT = ",.:;?!()-/%&+#*@'\""
# A small vocabulary of Latin words seen on signs, tickets, forms and screenshots.
LATIN_WORDS = (
    "the of and to in is for on with by at from this that you are not or be as it all new more "
    "open close exit entry push pull sale free hot cold total price tax cash card change date "
    "time name no tel fax email www http com cn org net user login password search home help "
    "about contact service shop store hotel bank taxi bus metro station airport gate seat class "
    "ticket order item qty amount paid due invoice receipt model type size color made china "
    "road street park center office room floor level north south east west left right up down "
    "stop slow danger warning caution smoking wifi parking toilet coffee tea water menu rice "
    "beef chicken pork fish noodle soup milk juice beer wine phone mobile power battery file "
    "edit view tools window settings start cancel save delete copy paste print next back ok"
).split()
# Labels of till receipts (what `_receipt` mixes with item names, amounts and dates).
RECEIPT_LABELS = (
    "TOTAL", "SUBTOTAL", "Sub Total", "GST", "GST @ 6%", "SST", "TAX", "Total Tax", "CASH",
    "CHANGE", "CHANGE DUE", "Rounding Adj.", "Rounding", "QTY", "Qty", "UNIT PRICE", "AMOUNT",
    "Amount (RM)", "Amt", "DISC", "Discount", "NETT", "NET TOTAL", "BILL NO", "Invoice No:",
    "Receipt No:", "Tel:", "Fax:", "Cashier:", "Date:", "Time:", "Table:", "Pax:", "Item",
    "Description", "VISA", "MASTER", "Card No:", "Thank You", "Please Come Again",
    "GOODS SOLD ARE NOT RETURNABLE", "Inclusive of GST", "SDN BHD", "Co. Reg. No:",
    "GST Reg No:", "Summary", "Member", "Points", "Balance", "Total Qty:",
)  # fmt: skip
WEB_SUFFIXES = (".com", ".cn", ".com.cn", ".net", ".org", ".co.uk", ".gov.cn", ".edu.cn")
SYLLABLES = "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zi zo an en in on un er ar or".split()  # noqa: E501


@functools.lru_cache(maxsize=4)
def _jieba_words(alphabet: str) -> tuple[list[str], np.ndarray]:
    """Chinese words of jieba's dictionary whose characters are all in `alphabet`, with the
    cumulative distribution of sampling probabilities proportional to sqrt(count)
    (flattened so that rarer words appear)."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the 'jieba' package is not installed (pip install jieba)")
    path = Path(spec.origin).parent / "dict.txt"
    allowed = set(alphabet)
    words, counts = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            w = parts[0]
            if any("\u4e00" <= c <= "\u9fff" for c in w) and all(c in allowed for c in w):
                words.append(w)
                counts.append(float(parts[1]))
    p = np.sqrt(np.asarray(counts))
    return words, np.cumsum(p / p.sum())


@functools.lru_cache(maxsize=1)
def english_words() -> tuple[list[str], np.ndarray]:
    """Lower-case English words (2-15 letters, seen at least twice) from the prose of the
    standard library's `pydoc_data.topics`, with the cumulative distribution of sampling
    probabilities proportional to sqrt(count); LATIN_WORDS, uniform, where that module is
    missing (some distributions strip it)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return list(LATIN_WORDS), np.arange(1, len(LATIN_WORDS) + 1) / len(LATIN_WORDS)
    # Whole words only: not parts of identifiers such as "sys.path" or "__init__".
    found = re.findall(r"(?<![\w.])[A-Za-z]{2,15}(?![\w(])", " ".join(topics.values()))
    counts = Counter(w.lower() for w in found)
    words = sorted(w for w, n in counts.items() if n >= 2)
    p = np.sqrt(np.asarray([counts[w] for w in words], np.float64))
    return words, np.cumsum(p / p.sum())


def _alphabet_form(c: str, allowed: set[str]) -> str | None:
    """`c` if it is in `allowed`, else its NFKC form ('：' -> ':') if that is, else None."""
    if c in allowed:
        return c
    folded = unicodedata.normalize("NFKC", c)
    return folded if folded in allowed else None


class TextSampler:
    """Samples text lines of an exact length from a mix of realistic kinds.

    Args:
      alphabet: the characters allowed in the output, e.g. a recogniser's charset
        (`"".join(Charset.default().chars)`); whitespace and repeats are dropped.
      kind_weights: probabilities of the kinds "zh", "zh_mixed", "numeric", "latin"
        (Latin: words, names, codes and web addresses, as on signs and screenshots).
      coverage_per_sample: characters of the alphabet permutation inserted per sample.
      printed_marks: probability that a line is set as shop signs, web images, tickets and
        receipts set text (`_printed`): 【titles】, 《books》, “quotes”, the dash ——, the
        ellipsis …, bullets and stars, circled numbers, masked card and phone numbers
        (6222****0417), prices, ranges and units. 0 (the default) draws nothing extra, so
        the text stream stays that of earlier recipes.
      receipt_lines: probability that a line is a till receipt's (`_receipt`): item names,
        quantities, amounts with tax codes, totals, dates, times, registration numbers,
        mostly in capitals. 0 (the default) draws nothing extra.
      capital_lines: probability that a Latin line is set wholly in capitals, as slogans,
        brand names and pinyin are on product images and signs ("FIFTH GENERATION"): a
        line's words otherwise take their case one by one, so that a capital S, C, O or W
        is almost never told from a small one by its neighbours. 0 (the default) draws
        nothing extra.
      line_case: probability that a Latin line takes its case as a line (sentence case,
        title case or small letters) instead of word by word, where a fifth of the words
        are in capitals, so that a capital among small letters is rare, as in print.
        0 (the default) draws nothing extra.
      prose: real Chinese sentences (`ocr_common.prose.sentences()`), read as one text;
        with probability `prose_lines` a Chinese line is a stretch of it (from a sentence's
        start or anywhere, running on into the next sentence) instead of dictionary words:
        real word order, function words and punctuation, characters as often as prose
        uses them. Characters outside the alphabet are folded (NFKC) or left out.
        0 (the default) draws nothing extra.
    """

    KINDS = ("zh", "zh_mixed", "numeric", "latin")

    def __init__(
        self,
        alphabet: str | Sequence[str],
        kind_weights: Sequence[float] = (0.5, 0.25, 0.1, 0.15),
        coverage_per_sample: int = 1,
        printed_marks: float = 0.0,
        receipt_lines: float = 0.0,
        capital_lines: float = 0.0,
        line_case: float = 0.0,
        prose: Sequence[str] = (),
        prose_lines: float = 0.0,
    ):
        self.alphabet = "".join(dict.fromkeys(c for c in alphabet if not c.isspace()))
        self._allowed = set(self.alphabet)
        self.words, self.word_cdf = _jieba_words(self.alphabet)
        self.english, self.english_cdf = english_words()
        if not self.words:
            raise ValueError("the alphabet contains no Chinese word of the dictionary")
        w = np.asarray(kind_weights, dtype=np.float64)
        if w.shape != (len(self.KINDS),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"kind_weights must be {len(self.KINDS)} non-negative weights for "
                f"{', '.join(self.KINDS)} (not all zero); got {list(kind_weights)}"
            )
        self.kind_p = w / w.sum()
        self.coverage_per_sample = coverage_per_sample
        self.printed_marks = printed_marks
        self.receipt_lines = receipt_lines
        self.capital_lines = capital_lines
        self.line_case = line_case
        self.prose_lines = prose_lines
        self._prose, self._prose_starts = self._prose_text(prose)
        if prose_lines and not self._prose:
            raise ValueError(
                "prose_lines > 0 needs Chinese prose: install Debian's manpages-zh "
                "(scripts/install_fonts.sh) or pass the sentences"
            )
        self.coverage_order = np.random.default_rng(0).permutation(len(self.alphabet))
        # A mark outside the alphabet is labelled by its compatibility form when that is in
        # it: the 5990 charset has ':' but not '：' (renderers print it full width).
        marks = [
            (_alphabet_form(c, self._allowed), w)
            for c, w in zip(ZH_PUNCT, ZH_PUNCT_WEIGHTS, strict=True)
        ]
        self._zh_punct = [c for c, _ in marks if c is not None]
        weights = np.array([w for c, w in marks if c is not None], np.float64)
        self._zh_punct_p = weights / max(weights.sum(), 1e-9)
        self._ascii_punct = [c for c in ASCII_PUNCT if c in self._allowed]

    def _prose_text(self, sentences: Sequence[str]) -> tuple[str, np.ndarray]:
        """The sentences as one text in the alphabet, and where each sentence starts."""
        parts, starts, offset = [], [], 0
        for sentence in sentences:
            chars = (_alphabet_form(c, self._allowed) for c in " ".join(sentence.split()))
            text = "".join(c if c is not None else "" for c in chars)
            text = " ".join(text.split())
            if text:
                parts.append(text)
                starts.append(offset)
                offset += len(text)
        return "".join(parts), np.asarray(starts, np.int64)

    # -- pieces -------------------------------------------------------------------------
    def _prose_line(self, rng: np.random.Generator, n: int) -> str:
        """At least `n` non-space characters of the prose, from a sentence's start (half
        the lines) or from anywhere in it."""
        if rng.random() < 0.5:
            start = int(self._prose_starts[rng.integers(len(self._prose_starts))])
        else:
            start = int(rng.integers(len(self._prose)))
        text = self._prose[start : start + 3 * n + 8].strip()
        if sum(c != " " for c in text) < n:  # the end of the text: wrap to its start
            text = (text + self._prose[: 3 * n + 8]).strip()
        return text

    def _zh(self, rng: np.random.Generator, n: int) -> str:
        """Words of the dictionary with punctuation between clauses, at least `n` characters."""
        out: list[str] = []
        count = 0
        while count < n:
            for w in _draw_words(self.words, self.word_cdf, rng, max(1, min(16, n // 2))):
                out.append(w)
                count += len(w)
                if count >= n:
                    break
                if self._zh_punct and rng.random() < ZH_PUNCT_RATE:
                    out.append(self._zh_punct[rng.choice(len(self._zh_punct), p=self._zh_punct_p)])
                    count += 1
        return "".join(out)

    def _number(self, rng: np.random.Generator) -> str:
        r = rng.integers(9)
        if r == 0:
            return f"{rng.integers(1950, 2031)}年{rng.integers(1, 13)}月{rng.integers(1, 29)}日"
        if r == 1:
            sep = "-/."[rng.integers(3)]
            return f"{rng.integers(1990, 2031)}{sep}{rng.integers(1, 13):02d}{sep}{rng.integers(1, 29):02d}"  # noqa: E501
        if r == 2:
            return f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}"
        if r == 3:
            return f"¥{rng.integers(0, 100000) / 100:.2f}"
        if r == 4:
            return "1" + "".join(str(d) for d in rng.integers(0, 10, size=10))
        if r == 5:
            return f"{rng.integers(1, 1000)}号"
        if r == 6:
            return f"{rng.integers(0, 100)}.{rng.integers(0, 10)}%"
        if r == 7:
            return "".join(str(d) for d in rng.integers(0, 10, size=rng.integers(4, 19)))
        return str(rng.integers(0, 10 ** rng.integers(1, 7)))

    def _masked_number(self, rng: np.random.Generator) -> str:
        """A card, phone or ID number with its middle masked, as receipts print them."""
        digits = lambda n: "".join(str(d) for d in rng.integers(0, 10, size=n))  # noqa: E731
        r = rng.integers(3)
        if r == 0:  # bank card
            return digits(4) + "*" * int(rng.integers(4, 11)) + digits(4)
        if r == 1:  # mobile phone
            return "1" + digits(2) + "****" + digits(4)
        return digits(6) + "*" * 8 + digits(4)  # identity card

    def _printed(self, rng: np.random.Generator, n: int) -> str:
        """At least `n` characters of Chinese set with the marks of print (see __init__)."""
        out, count = "", 0
        while count < n:
            r = rng.random()
            zh = self._zh(rng, int(rng.integers(2, 7)))
            if r < 0.2:
                pair = ("【】", "《》", "“”", "「」", "（）", "[]")[rng.integers(6)]
                piece = pair[0] + zh[: max(1, n - count - 2)] + pair[1]  # whole pairs
            elif r < 0.35:
                piece = zh + ("——" if rng.random() < 0.7 else "—") + self._zh(rng, 2)
            elif r < 0.45:
                piece = zh + ("…" if rng.random() < 0.3 else "……")
            elif r < 0.6:
                bullets = "●★■◆▲※√·①②③④⑤→"
                piece = bullets[rng.integers(len(bullets))] + zh
            elif r < 0.75:
                piece = self._masked_number(rng)
            elif r < 0.85:
                lo = int(rng.integers(1, 100))
                piece = f"{lo}{'～~-'[rng.integers(3)]}{lo + int(rng.integers(1, 100))}"
                piece += ("℃", "元", "cm", "ml", "kg", "g", "天", "")[rng.integers(8)]
            elif r < 0.93:
                piece = f"{'￥¥'[rng.integers(2)]}{rng.integers(1, 100000) / 100:.2f}"
            else:
                piece = f"{rng.integers(1, 50)}{'×x*'[rng.integers(3)]}{rng.integers(1, 50)}"
            if out and count + len(piece) > n:  # keep pairs whole: end with plain words
                piece = self._zh(rng, n - count)
            out += piece
            count += len(piece)
        return out

    def _receipt(self, rng: np.random.Generator, n: int) -> str:
        """At least `n` non-space characters of a till receipt's lines."""
        words: list[str] = []
        while sum(len(w.replace(" ", "")) for w in words) < n:
            r = rng.random()
            if r < 0.3:  # item or field name
                k = int(rng.integers(1, 4))
                words += [self._latin_word(rng) for _ in range(k)]
            elif r < 0.45:
                words.append(RECEIPT_LABELS[rng.integers(len(RECEIPT_LABELS))])
            elif r < 0.7:  # an amount, possibly with its currency and tax code
                amount = f"{rng.integers(0, 100000) / 100:.2f}"
                if rng.random() < 0.1:
                    amount = "-" + amount
                if rng.random() < 0.3:
                    amount = ("RM", "$", "RM ", "$ ")[rng.integers(4)] + amount
                words.append(amount)
                if rng.random() < 0.3:
                    words.append(("SR", "ZR", "S", "Z", "T", "*")[rng.integers(6)])
            elif r < 0.8:  # quantity
                q = int(rng.integers(1, 25))
                words.append((f"{q}", f"{q} x", f"{q}x", f"{q} @", f"x{q}")[rng.integers(5)])
            elif r < 0.87:
                d, m, y = rng.integers(1, 29), rng.integers(1, 13), rng.integers(2010, 2031)
                words.append((f"{d:02d}/{m:02d}/{y}", f"{d:02d}-{m:02d}-{y}")[rng.integers(2)])
            elif r < 0.93:
                hms = rng.integers(0, 24), rng.integers(0, 60), rng.integers(0, 60)
                words.append(":".join(f"{v:02d}" for v in hms[: int(rng.integers(2, 4))]))
            else:  # registration and document numbers
                digits = "".join(str(d) for d in rng.integers(0, 10, size=rng.integers(5, 9)))
                letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
                tag = letters[rng.integers(len(letters))]
                words.append((f"({digits}-{tag})", f"{tag}{digits}", f"#{digits}")[rng.integers(3)])
        case = rng.random()
        line = " ".join(words)
        return line.upper() if case < 0.65 else line.title() if case < 0.9 else line

    def _english_word(self, rng: np.random.Generator) -> str:
        return _draw_words(self.english, self.english_cdf, rng, 1)[0]

    def _latin_word(self, rng: np.random.Generator, case: str | None = None) -> str:
        """A Latin word, code or address; `case` "title" or "as drawn" sets its case,
        None draws it for the word alone."""
        r = rng.random()
        if r < 0.3:
            w = LATIN_WORDS[rng.integers(len(LATIN_WORDS))]
        elif r < 0.65:
            w = self._english_word(rng)
        elif r < 0.72:  # web addresses, as on signs, tickets and watermarks
            w = (
                ("www." if rng.random() < 0.5 else "")
                + self._english_word(rng)
                + WEB_SUFFIXES[rng.integers(len(WEB_SUFFIXES))]
            )
        elif r < 0.85:
            w = "".join(SYLLABLES[i] for i in rng.integers(len(SYLLABLES), size=rng.integers(2, 5)))
        else:  # product codes, plate-like strings
            letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
            w = "".join(letters[i] for i in rng.integers(len(letters), size=rng.integers(1, 4)))
            w += "-" * int(rng.random() < 0.5) + str(rng.integers(10, 100000))
        if case is not None:
            return w.capitalize() if case == "title" else w
        r = rng.random()
        return w.upper() if r < 0.2 else w.capitalize() if r < 0.5 else w

    # -- public -------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, length: int, index: int | None = None) -> str:
        """A line of exactly `length` non-space characters, all in the alphabet.

        Args:
          rng: the source of randomness (the result is a pure function of its state).
          length: the number of non-space characters.
          index: the sample's position in the stream; when given, coverage characters
            `coverage_order[index * c : (index + 1) * c]` are inserted (c per sample).
        """
        kind = self.KINDS[rng.choice(4, p=self.kind_p)]
        if self.printed_marks and rng.random() < self.printed_marks:
            text = self._printed(rng, length)
        elif self.receipt_lines and rng.random() < self.receipt_lines:
            text, kind = self._receipt(rng, length), "latin"  # no hanzi coverage inside
        elif kind == "zh":
            if self.prose_lines and rng.random() < self.prose_lines:
                text = self._prose_line(rng, length)
            else:
                text = self._zh(rng, length)
        elif kind == "zh_mixed":
            parts = []
            while sum(len(p) for p in parts) < length:
                parts.append(self._number(rng) if rng.random() < 0.4 else self._zh(rng, 3))
            text = "".join(parts)
        elif kind == "numeric":
            text = "".join(
                self._number(rng) + (" " if rng.random() < 0.5 else "") for _ in range(length)
            )
        else:
            words, line_case = [], None
            if self.line_case and rng.random() < self.line_case:
                line_case = ("sentence", "title", "as drawn")[rng.choice(3, p=(0.5, 0.3, 0.2))]
            while sum(len(w) for w in words) < length:
                if line_case == "sentence":
                    case = "as drawn" if words else "title"
                else:
                    case = line_case
                words.append(self._latin_word(rng, case))
                if self._ascii_punct and rng.random() < 0.15:
                    words[-1] += self._ascii_punct[rng.integers(len(self._ascii_punct))]
            text = " ".join(words)
            if self.capital_lines and rng.random() < self.capital_lines:
                text = "".join(_capital(c, self._allowed) for c in text)
        text = "".join(c for c in text if c in self._allowed or c == " ")
        chars = list(_cut_non_space(text.strip(), length))
        # Fill up if the kind produced too little (e.g. an alphabet without Latin letters).
        while sum(c != " " for c in chars) < length:
            chars.append(self.alphabet[rng.integers(len(self.alphabet))])
        if index is not None and self.coverage_per_sample:
            c = self.coverage_per_sample
            n = len(self.alphabet)
            positions = [i for i, x in enumerate(chars) if x != " "]
            for j, pos in enumerate(
                rng.choice(positions, size=min(c, len(positions)), replace=False)
            ):
                ch = self.alphabet[self.coverage_order[(index * c + j) % n]]
                if kind != "latin" or ch.isascii():
                    chars[pos] = ch
        return "".join(chars).strip()


def _draw_words(words: list[str], cdf: np.ndarray, rng: np.random.Generator, k: int) -> list[str]:
    """`k` words drawn by inverse-CDF sampling (`rng.choice(p=...)` would re-check all 350 k
    probabilities of the Chinese dictionary on every call)."""
    idx = np.searchsorted(cdf, rng.random(k) * cdf[-1], side="right")
    return [words[min(i, len(words) - 1)] for i in idx]


def _capital(c: str, allowed: set[str]) -> str:
    """`c` as a capital where that is one character of `allowed` ("ß" and the like stay)."""
    up = c.upper()
    return up if len(up) == 1 and up in allowed else c


def _cut_non_space(text: str, n: int) -> str:
    """The shortest prefix of `text` with `n` non-space characters."""
    count = 0
    for i, c in enumerate(text):
        count += c != " "
        if count == n:
            return text[: i + 1]
    return text
