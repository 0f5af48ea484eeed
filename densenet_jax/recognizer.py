"""Batched recognition of line images with a trained recogniser (the inference API).

    rec = Recognizer.from_file(shipped_weights())   # densenet_jax.weights
    results = rec.recognize([crop1, crop2, ...])      # -> list[Decoded]: text, confidences, score

Lines are converted by `preprocess.to_line_image`, sorted by width and recognised in
batches whose width is rounded up to a bucket and whose size is a power of two, so that jit
compiles a handful of shapes whatever the mix of line lengths. Lines read as dense (many
characters per time step, as condensed Latin type) are read again stretched, and lines read
with little confidence again with their top and bottom edges trimmed or padded; the most
confident reading is kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from densenet_jax.charset import Charset
from densenet_jax.ctc import Decoded, beam_search_decode, collapse_path
from densenet_jax.lookalikes import resolve_lookalikes
from densenet_jax.model import DenseNet
from densenet_jax.preprocess import (
    LINE_HEIGHT,
    bucket_width,
    is_vertical,
    normalize,
    pad_lines,
    stretch_line,
    to_line_image,
    trim_line,
    vertical_lines,
)
from ocr_common.exported import ExportedJit

WIDTH_BUCKETS = (128, 256, 384, 512, 768, 1024)
LOOKALIKE_WEIGHT = 3.0
# Second readings of dense lines (see `Recognizer`): chosen on held-out rendered lines
# (docs/models.md, "Reading dense lines twice").
REREAD_SCALES = (1.25, 1.5)
REREAD_DENSITY = 0.4
#: Dense lines whose first reading has a mean character confidence of at least this are not
#: read again (1.0: every dense line is). On five held-out rendered sets 0.95 read 19-28%
#: of the lines again instead of 31-42% at a CER change of -0.0001 .. +0.0008
#: (`bench/reread.py --below`), but real receipts lost digits and punctuation that the
#: second readings restore (real e2e +0.0010, +0.0004 .. +0.0018; bench/RESULTS.md): off.
REREAD_BELOW = 1.0
#: Views of a line read again when its first reading scores under TRIM_BELOW: (top, bottom)
#: shares of its height cut off, negative ones padded (`preprocess.trim_line`); the most
#: confident reading wins. Chosen greedily on five held-out rendered sets (`bench/trim_views.py`;
#: on the full sets 11% fewer errors, on the real crops 13%: docs/models.md, "Reading
#: trimmed views of a line"). `infer.OCR` reads without them (`infer.DEFAULT_TRIMS`).
TRIMS: tuple[tuple[float, float], ...] = ((-0.05, -0.05), (0.1, 0.1), (0.1, 0.0))
TRIM_BELOW = 0.95


def make_predict(model: DenseNet, probabilities: bool = False) -> Callable:
    """A jitted `(variables, (B, 32, W, 1) uint8) -> (B, T, C)` in inference mode: logits,
    or softmax probabilities when `probabilities` (computed inside the same jit). Its
    programs are kept on disk beside the compilation cache (`ocr_common.exported`)."""

    def predict(variables, images):
        logits = model.apply(variables, normalize(images), train=False)
        return jax.nn.softmax(logits, axis=-1) if probabilities else logits

    output = "probabilities" if probabilities else "logits"
    return ExportedJit(jax.jit(predict), f"densenet_jax {output} {model!r}")


def parse_trims(text: str) -> tuple[tuple[float, float], ...]:
    """Command-line form of `trims`: "0.05,0.1" -> ((0.05, 0.05), (0.1, 0.1)) (one share
    cuts both edges), "0.2:0" -> ((0.2, 0.0),) (top:bottom); "none" -> (); "default" ->
    `TRIMS`."""
    if text.strip().lower() in ("", "none", "off"):
        return ()
    if text.strip().lower() == "default":
        return TRIMS
    trims = []
    for item in text.split(","):
        parts = item.split(":")
        try:
            shares = [float(x) for x in parts]
        except ValueError:
            raise ValueError(
                f"expected comma-separated SHARE or TOP:BOTTOM items or 'none', got {text!r}"
            ) from None
        if len(shares) not in (1, 2):
            raise ValueError(f"expected SHARE or TOP:BOTTOM, got {item!r}")
        trims.append((shares[0], shares[-1]))
    return tuple(trims)


def parse_reread_scales(text: str) -> tuple[float, ...]:
    """Command-line form of `reread_scales`: "1.25,1.5" -> (1.25, 1.5); "none" -> ()."""
    if text.strip().lower() in ("", "none", "off"):
        return ()
    try:
        scales = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers or 'none', got {text!r}") from None
    if any(not s > 0 for s in scales):
        raise ValueError(f"stretch factors must be positive, got {text!r}")
    return scales


def default_batch_size() -> int:
    """Most lines in one recogniser batch where the caller gives none: 8 on a CPU, where a
    batch of 2-8 rows costs the least per pixel (32 rows cost 20-45% more per pixel on the
    2-core machine; bench/RESULTS.md), 32 on an accelerator."""
    return 8 if jax.default_backend() == "cpu" else 32


def batch_rows(lines: int, batch_size: int) -> list[int]:
    """The batches ``lines`` lines of one width bucket are read in: their row counts, each a
    power of two (few compiled shapes) of at most ``batch_size``, summing to at least
    ``lines``. Full batches first; the rest is padded up to a power of two where that pads at
    most a quarter of its rows, and halved otherwise (a padded row costs as much as a line:
    7 -> [8], 5 -> [4, 1], 20 with ``batch_size`` 8 -> [8, 8, 4])."""
    if lines < 0 or batch_size < 1:
        raise ValueError(f"need lines >= 0 and batch_size >= 1, got {lines}, {batch_size}")
    cap = 1 << (batch_size.bit_length() - 1)  # the largest power of two <= batch_size
    rows = []
    while lines > 0:
        if lines >= cap:
            rows.append(cap)
            lines -= cap
            continue
        p = 1 << (lines - 1).bit_length()  # the smallest power of two >= lines
        take = p if p - lines <= p // 4 else p // 2
        rows.append(take)
        lines -= min(take, lines)
    return rows


class Recognizer:
    """A DenseNet-CTC model with its variables and charset, ready to read line images."""

    def __init__(
        self,
        model: DenseNet,
        variables: dict,
        charset: Charset,
        width_buckets: Sequence[int] = WIDTH_BUCKETS,
        lookalike_weight: float = LOOKALIKE_WEIGHT,
        reread_scales: Sequence[float] = REREAD_SCALES,
        reread_density: float = REREAD_DENSITY,
        reread_below: float = REREAD_BELOW,
        trims: Sequence[tuple[float, float]] = TRIMS,
        trim_below: float = TRIM_BELOW,
    ):
        """`lookalike_weight`: context prior of greedy decoding for o/O/0, l/I/1, c/C, ...
        (see `densenet_jax.lookalikes`; 1 = the plain best path).

        `reread_scales`, `reread_density`: a line whose reading has more than
        `reread_density` characters per time step (8 input px) is read again stretched
        horizontally by each factor, keeping the reading of highest score. Narrow Latin
        letters (i, l, t, f) in condensed type share time steps and get dropped; stretched,
        they get steps of their own. `()` reads every line once. `reread_below`: only a
        dense line whose first reading's score is under this is read again (the time of
        second readings goes where they can change the text).

        `trims`, `trim_below`: a line whose reading scores under `trim_below` is read
        again as each `(top, bottom)` view of `trims` (`preprocess.trim_line`: those shares
        of its height cut off, negative shares padded), and the reading of highest score is
        kept. Crops cut with padded boxes hold strips of the lines above and below, which
        the model reads as characters. `()` reads every line as it is.
        """
        if lookalike_weight < 1:
            raise ValueError(f"lookalike_weight must be >= 1, got {lookalike_weight}")
        if any(not s > 0 for s in reread_scales):
            raise ValueError(f"reread_scales must be positive, got {tuple(reread_scales)}")
        if not reread_density >= 0:
            raise ValueError(f"reread_density must be >= 0, got {reread_density}")
        if not reread_below >= 0:
            raise ValueError(f"reread_below must be >= 0, got {reread_below}")
        trims = tuple((float(top), float(bottom)) for top, bottom in trims)
        if any(
            not (-1 < top < 1 and -1 < bottom < 1 and top + bottom < 0.75) for top, bottom in trims
        ):
            raise ValueError(
                "trims must be (top, bottom) shares in (-1, 1) leaving at least a quarter "
                f"of the line, got {trims}"
            )
        if not trim_below >= 0:
            raise ValueError(f"trim_below must be >= 0, got {trim_below}")
        self.trims, self.trim_below = trims, float(trim_below)
        self.reread_scales = tuple(float(s) for s in reread_scales)
        self.reread_density = float(reread_density)
        self.reread_below = float(reread_below)
        self.model, self.charset = model, charset
        self.lookalike_weight = float(lookalike_weight)
        self.variables = jax.device_put(variables)
        self.width_buckets = tuple(width_buckets)
        self._predict = make_predict(model)
        self._predict_probs = make_predict(model, probabilities=True)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> Recognizer:
        """Loads exported weights (see `densenet_jax.weights.load_recognizer`)."""
        from densenet_jax.weights import load_recognizer

        model, variables, charset, _ = load_recognizer(path)
        return cls(model, variables, charset, **kwargs)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """`(B, 32, W, 1) uint8` -> `(B, T, C)` float32 logits."""
        return np.asarray(self._predict(self.variables, batch))

    def recognize(
        self,
        images: Sequence[np.ndarray],
        decoder: str = "greedy",
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> list[Decoded]:
        """Reads line images (RGB or gray, any size). Returns one `Decoded` per image.

        `batch_size`: most lines in one batch (None: `default_batch_size()`).

        Dense lines (more than `reread_density` characters per time step) are read again
        stretched by each of `reread_scales`, and the reading with the highest score (mean
        character confidence) is kept. A vertical crop (`preprocess.is_vertical`) is also
        read as `preprocess.vertical_lines` (stacked, turned either way): the best-scoring
        non-empty reading wins.
        """
        results = self.recognize_lines(
            [to_line_image(im) for im in images], decoder, batch_size, show_progress
        )
        tall = [k for k, im in enumerate(images) if is_vertical(im)]
        if tall:
            options = [(k, line) for k in tall for line in vertical_lines(images[k])]
            again = self.recognize_lines([line for _, line in options], decoder, batch_size)
            for (k, _), r in zip(options, again, strict=True):
                best = results[k]
                if r.text and (not best.text or r.score > best.score):
                    results[k] = r
        return results

    def recognize_lines(
        self,
        lines: Sequence[np.ndarray],
        decoder: str = "greedy",
        batch_size: int | None = None,
        show_progress: bool = False,
        reread: bool = True,
    ) -> list[Decoded]:
        """``recognize`` for lines already turned into model inputs: ``(32, w) uint8`` gray
        (``preprocess.to_line_image``). ``reread=False``: one reading only, dense lines
        included."""
        if decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be 'greedy' or 'beam', got {decoder!r}")
        batch_size = default_batch_size() if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        lines = list(lines)
        bad = next(
            (
                ln.shape
                for ln in lines
                if ln.ndim != 2 or ln.shape[0] != LINE_HEIGHT or ln.dtype != np.uint8
            ),
            None,
        )
        if bad is not None:
            raise ValueError(
                f"recognize_lines takes ({LINE_HEIGHT}, w) uint8 lines, got {bad}; "
                "use recognize for other images"
            )
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(lines), desc="recognise", unit="line")
        results = self._read_stretched(lines, decoder, batch_size, bar, reread)
        unsure = [k for k, r in enumerate(results) if r.score < self.trim_below]
        if unsure and self.trims and reread:
            # Every trimmed view of every unsure line in one reading, so that they share
            # batches; the first of equal scores wins, as `trims` order.
            views = [trim_line(lines[k], top, bottom) for top, bottom in self.trims for k in unsure]
            again = self._read_stretched(views, decoder, batch_size, bar, reread)
            for i, r in enumerate(again):
                k = unsure[i % len(unsure)]
                if r.score > results[k].score:
                    results[k] = r
        if bar is not None:
            bar.close()
        return results

    def _read_stretched(
        self, lines: list[np.ndarray], decoder: str, batch_size: int, bar: Any, reread: bool
    ) -> list[Decoded]:
        """`_read`, then dense lines again stretched by each of `reread_scales` (when
        `reread`), keeping each line's highest-scoring reading."""
        results = self._read(lines, decoder, batch_size, bar)
        dense = [k for k, r in enumerate(results) if self.wants_reread(r, lines[k].shape[1])]
        if dense and self.reread_scales and reread:
            # Every stretch of every dense line in one reading, so that they share batches.
            stretched = [stretch_line(lines[k], s) for s in self.reread_scales for k in dense]
            again = self._read(stretched, decoder, batch_size, bar)
            for i, r in enumerate(again):  # the first of equal scores wins, as scale order
                k = dense[i % len(dense)]
                if r.score > results[k].score:
                    results[k] = r
        return results

    def is_dense(self, reading: Decoded, line_width: int) -> bool:
        """Whether `reading` of a line `line_width` px wide (at height 32) holds more than
        `reread_density` characters per time step, so that `recognize` reads it again."""
        return len(reading.ids) > self.reread_density * self.model.output_length(line_width)

    def wants_reread(self, reading: Decoded, line_width: int) -> bool:
        """Whether `recognize` reads a line again stretched: its first `reading` is dense
        (`is_dense`) and its score is under `reread_below`."""
        return reading.score < self.reread_below and self.is_dense(reading, line_width)

    def _read(
        self, lines: list[np.ndarray], decoder: str, batch_size: int, bar: Any = None
    ) -> list[Decoded]:
        """One reading of `(32, w) uint8` lines, in batches of one width bucket each
        (`batch_rows`; a batch's padded rows repeat its last line)."""
        if bar is not None and bar.n + len(lines) > bar.total:  # second readings
            bar.total = bar.n + len(lines)
            bar.refresh()
        order = sorted(range(len(lines)), key=lambda i: lines[i].shape[1])
        results: list[Decoded | None] = [None] * len(lines)
        buckets: dict[int, list[int]] = {}
        for k in order:
            buckets.setdefault(bucket_width(lines[k].shape[1], self.width_buckets), []).append(k)
        groups = []
        for w, idx in buckets.items():
            start = 0
            for n in batch_rows(len(idx), batch_size):
                groups.append((w, n, idx[start : start + n]))
                start += n
        for w, n, idx in groups:
            batch, widths = pad_lines(
                [lines[k] for k in idx] + [lines[idx[-1]]] * (n - len(idx)), w
            )
            probs = np.asarray(self._predict_probs(self.variables, batch))
            for b, k in enumerate(idx):
                t = int(self.model.output_length(int(widths[b])))
                p = probs[b, :t]
                if decoder == "greedy":
                    ids = p.argmax(-1)
                    greedy = collapse_path(ids, p[np.arange(t), ids], self.charset)
                    results[k] = resolve_lookalikes(
                        greedy, ids, p, self.charset, self.lookalike_weight
                    )
                else:
                    results[k] = beam_search_decode(p, self.charset)
            if bar is not None:
                bar.update(len(idx))
        return results  # type: ignore[return-value]
