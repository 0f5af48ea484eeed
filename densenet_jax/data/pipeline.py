"""grain input pipelines for the recogniser.

Every example is a pure function of `(seed, index)`, and batch `b` holds examples
`b * B ... (b + 1) * B - 1`, so a resumed run that starts at step `s` sees exactly the
batches it would have seen: the pipeline is rebuilt from `start_step` instead of having its
iterator state checkpointed. Rendering runs in grain worker processes.

`python -m densenet_jax.data.pipeline --out DIR --count N --seed S` writes a held-out set of
rendered lines (PNG files and a `path<TAB>text` label file) for `densenet_jax.evaluate`
(`--help`: lengths, widths, kinds of text, a clean twin without degradations).

A batch is a dict of numpy arrays:
  image         (B, 32, W, 1) uint8   W = the width bucket of the batch
  width         (B,) int32            true width of each line before padding
  labels        (B, L) int32          class ids, right-padded with 0, L = max_label_len
  label_length  (B,) int32
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import grain
import numpy as np

from densenet_jax.charset import Charset
from densenet_jax.ctc import min_ctc_steps
from densenet_jax.data.labels import LabeledLine
from densenet_jax.data.render import LineRenderConfig, LineRenderer
from densenet_jax.preprocess import bucket_width, pad_lines, to_line_image
from ocr_common.corpus import TextSampler
from ocr_common.io import atomic_write_bytes, atomic_write_text, read_image
from ocr_common.workers import prefetch_in_workers

# Offsets that keep the train, eval and test streams of one seed apart.
TRAIN_STREAM, EVAL_STREAM = 0, 1


@dataclass(frozen=True)
class LineDataConfig:
    """What the recogniser trains on (plain data)."""

    widths: tuple[int, ...] = (280,)  # width buckets; (280,) = the original fixed width
    min_chars: int = 2
    max_chars: int = 12
    max_label_len: int = 48
    fonts: tuple[str, ...] = ()  # extra font files/folders (CJK or Latin)
    system_fonts: bool = True  # also use the fonts of the system folders
    latin_fonts: bool = True  # draw ASCII in Latin fonts too (LineRenderConfig)
    # Text mix: weights of the TextSampler kinds ("zh", "zh_mixed", "numeric", "latin").
    text_kinds: tuple[float, ...] = (0.5, 0.25, 0.1, 0.15)
    printed_marks: float = 0.0  # lines set with the marks of print (TextSampler)
    receipt_lines: float = 0.0  # lines of till receipts (TextSampler)
    capital_lines: float = 0.0  # Latin lines wholly in capitals (TextSampler)
    line_case: float = 0.0  # Latin lines cased as a line, not word by word (TextSampler)
    # Chinese lines cut from real prose (Debian's Chinese manual pages, `ocr_common.prose`)
    # instead of dictionary words (TextSampler)
    prose_lines: float = 0.0
    # Fraction of training lines that hold no text (read as ""): the recogniser learns to
    # read nothing in a detector's false boxes, and `infer` drops what reads as empty.
    non_text: float = 0.05
    # Fraction of training batches made of long lines (`long_chars` characters, drawn at
    # their natural width up to `long_width` px): 2-12-character lines squeezed into 280 px
    # leave the model unpractised on the 20-40-character lines that `infer` reads at
    # natural width. Whole batches, so the short ones keep their narrow (cheap) bucket.
    long_lines: float = 0.0
    long_chars: tuple[int, int] = (13, 28)
    long_width: int = 800
    # Line crops from disk mixed into the training lines (a `path<TAB>text` label file, e.g.
    # the engine pages' `labels.tsv`, `ctpn_jax.data.engine`): `pool_share` of the lines,
    # short or long as their group; lines with characters outside the charset are left out.
    pool: str = ""
    pool_share: float = 0.0
    workers: int = 1  # grain worker processes (0 = threads only)
    render: LineRenderConfig = field(default_factory=LineRenderConfig)


class SynthLines:
    """Random-access source of rendered lines: `synth[i]` is a pure function of (seed, i)."""

    def __init__(
        self,
        cfg: LineDataConfig,
        charset: Charset,
        seed: int,
        stream: int,
        fonts: Sequence[str] | None = None,
        group_size: int = 1,
    ):
        """`group_size`: lines `k * group_size ... (k + 1) * group_size - 1` are all long or
        all short (pass the batch size, so that a batch is one or the other)."""
        from ocr_common import prose
        from ocr_common.fonts import list_fonts, list_latin_fonts

        self.cfg, self.charset, self.seed, self.stream = cfg, charset, seed, stream
        self.group_size = group_size
        fonts = list(fonts) if fonts is not None else list_fonts(cfg.fonts, cfg.system_fonts)
        latin = list_latin_fonts(cfg.fonts, cfg.system_fonts) if cfg.latin_fonts else []
        self.renderer = LineRenderer(fonts, cfg.render, latin)
        self.sampler = TextSampler(
            "".join(charset.chars),
            kind_weights=cfg.text_kinds,
            printed_marks=cfg.printed_marks,
            receipt_lines=cfg.receipt_lines,
            capital_lines=cfg.capital_lines,
            line_case=cfg.line_case,
            prose=prose.sentences() if cfg.prose_lines else (),
            prose_lines=cfg.prose_lines,
        )
        # Characters per pixel of width: ~1 char per `height` px, so the widest bucket fits.
        self.max_width = max(cfg.widths)
        self.pool = ([], [])  # (short, long) crops
        if cfg.pool and cfg.pool_share > 0 and stream == TRAIN_STREAM:
            self.pool = pool_lines(cfg.pool, charset, cfg.max_chars)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng((self.seed, self.stream, index))
        long = self.is_long(index)
        pooled = self._pool_line(index, long)
        if pooled is not None:
            return pooled
        if self._holds_no_text(index):
            text, line = "", self.renderer.non_text(rng)
        else:
            lo, hi = self.cfg.long_chars if long else (self.cfg.min_chars, self.cfg.max_chars)
            n = int(rng.integers(lo, hi + 1))
            text = self.sampler.sample(rng, n, index=index if self.stream == TRAIN_STREAM else None)
            line = self.renderer(text, rng)
        max_width = self.cfg.long_width if long else self.max_width
        if line.shape[1] > max_width:
            line = to_line_image(line, max_width=max_width)
        return {"image": line, "labels": self.charset.encode(text), "text": text}

    def is_long(self, index: int) -> bool:
        """Whether training line `index` belongs to a group of long lines (its own draw per
        group, so that `long_lines = 0` leaves the stream as it was)."""
        if self.stream != TRAIN_STREAM or self.cfg.long_lines <= 0:
            return False
        group = index // self.group_size
        draw = np.random.default_rng((self.seed, self.stream, group, 2)).random()
        return bool(draw < self.cfg.long_lines)

    def _pool_line(self, index: int, long: bool) -> dict | None:
        """Training line `index` from the pool (`cfg.pool_share` of them, their own draw, so
        that the rendered lines stay those of `pool_share = 0`), or None."""
        short_pool, long_pool = self.pool
        if not (short_pool or long_pool):
            return None
        draw = np.random.default_rng((self.seed, self.stream, index, 3)).random(2)
        if draw[0] >= self.cfg.pool_share:
            return None
        records = (long_pool if long else short_pool) or short_pool or long_pool
        r = records[int(draw[1] * len(records))]
        return labeled_example(r, self.cfg.long_width if long else self.max_width)

    def _holds_no_text(self, index: int) -> bool:
        """Whether training line `index` is a non-text crop (never in other streams). Its
        own draw, so that the text lines stay those of `non_text = 0`."""
        if self.stream != TRAIN_STREAM or self.cfg.non_text <= 0:
            return False
        draw = np.random.default_rng((self.seed, self.stream, index, 1)).random()
        return bool(draw < self.cfg.non_text)


def labeled_example(record: LabeledLine, max_width: int) -> dict:
    """A training example of a labelled line image read from disk (at most `max_width` px
    wide once `to_line_image` has scaled it to the line height)."""
    line = to_line_image(read_image(record.path), max_width=max_width)
    return {"image": line, "labels": list(record.labels), "text": record.text}


def pool_lines(
    label_file: str | Path, charset: Charset, max_chars: int
) -> tuple[list[LabeledLine], list[LabeledLine]]:
    """The lines of `label_file` that `charset` can encode, split into those of at most
    `max_chars` characters and the longer ones."""
    from densenet_jax.data.labels import read_tsv_labels

    short, long = [], []
    for r in read_tsv_labels(Path(label_file).expanduser(), None, check_images=False):
        if charset.unknown_chars(r.text):
            continue
        labels = tuple(charset.encode(r.text))
        record = LabeledLine(r.path, r.text, labels)
        (short if len(labels) <= max_chars else long).append(record)
    if not (short or long):
        raise ValueError(f"{label_file}: no line the charset can encode")
    return short, long


class LabeledLines:
    """Random-access source over labelled line images (read from disk when indexed)."""

    def __init__(self, records: Sequence[LabeledLine], cfg: LineDataConfig):
        self.records, self.max_width = list(records), max(cfg.widths)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        return labeled_example(self.records[index], self.max_width)


def widen_for_ctc(line: np.ndarray, labels: Sequence[int], px_per_step: int = 8) -> np.ndarray:
    """Stretches a line that is too narrow for its label (e.g. "1111" in a narrow font) so
    that the model has enough time steps (`px_per_step` input pixels per step) to emit it."""
    steps = int(min_ctc_steps(np.asarray([labels]), np.asarray([len(labels)]))[0])
    need = px_per_step * (steps + 1)
    if line.shape[1] >= need:
        return line
    return cv2.resize(line, (need, line.shape[0]), interpolation=cv2.INTER_LINEAR)


def collate(examples: Sequence[dict], widths: Sequence[int], max_label_len: int) -> dict:
    """Pads examples into one batch (see the module docstring for the layout)."""
    lines = [widen_for_ctc(e["image"], e["labels"][:max_label_len]) for e in examples]
    width = bucket_width(max(x.shape[1] for x in lines), widths)
    image, true_w = pad_lines(lines, width)
    labels = np.zeros((len(examples), max_label_len), np.int32)
    lengths = np.zeros((len(examples),), np.int32)
    for i, e in enumerate(examples):
        ids = e["labels"][:max_label_len]
        labels[i, : len(ids)] = ids
        lengths[i] = len(ids)
    return {"image": image, "width": true_w, "labels": labels, "label_length": lengths}


def train_widths(cfg: LineDataConfig) -> tuple[int, ...]:
    """Width buckets of training batches: `cfg.widths`, plus `long_width` for long lines."""
    return cfg.widths + ((cfg.long_width,) if cfg.long_lines > 0 else ())


class Collate:
    """Picklable batch function for grain workers."""

    def __init__(self, widths: Sequence[int], max_label_len: int):
        self.widths, self.max_label_len = tuple(widths), max_label_len

    def __call__(self, examples: Sequence[dict]) -> dict:
        return collate(examples, self.widths, self.max_label_len)


def train_batches(
    source,
    cfg: LineDataConfig,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    shuffle: bool = False,
) -> Iterator[dict]:
    """Endless batches from `source`, starting at batch `start_step`.

    `shuffle` (for finite label-file sources) reshuffles every epoch from `seed`.
    """
    ds = grain.MapDataset.source(source)
    if shuffle:
        ds = ds.seed(seed).shuffle().repeat()
    ds = ds.batch(
        batch_size, drop_remainder=True, batch_fn=Collate(train_widths(cfg), cfg.max_label_len)
    )
    ds = ds[start_step:]
    it = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=1 if cfg.workers else 2, prefetch_buffer_size=4)
    )
    if cfg.workers > 0:
        it = prefetch_in_workers(it, cfg.workers, buffer_size=4)
    return iter(it)


def fixed_batches(source, n: int, batch_size: int, cfg: LineDataConfig) -> list[dict]:
    """The first `n` examples of `source` as a list of batches, with their texts."""
    batches = []
    for start in range(0, n, batch_size):
        examples = [source[i] for i in range(start, min(n, start + batch_size))]
        batch = collate(examples, cfg.widths, cfg.max_label_len)
        batch["text"] = [e["text"] for e in examples]
        batches.append(batch)
    return batches


def write_line_set(
    out_dir: str | Path, count: int, seed: int, cfg: LineDataConfig, charset: Charset
) -> Path:
    """Renders lines `0 .. count-1` of the evaluation stream of `seed` into `out_dir`:
    `lines/*.png`, `labels.tsv` (every line) and `labels-ascii.tsv` (the lines without
    hanzi: Latin words, codes and numbers). Use a seed other than the training run's.

    Returns:
      The path of `labels.tsv`.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    (out / "lines").mkdir(parents=True, exist_ok=True)
    source = SynthLines(cfg, charset, seed, EVAL_STREAM)
    rows = []
    for i in tqdm(range(count), desc="render lines", unit="line"):
        example = source[i]
        ok, png = cv2.imencode(".png", example["image"])
        if not ok:
            raise RuntimeError(f"could not encode line {i} as PNG")
        name = f"lines/synth_{seed}_{i:05d}.png"
        atomic_write_bytes(out / name, png.tobytes())
        rows.append((name, example["text"]))
    atomic_write_text(
        out / "labels-ascii.tsv", "".join(f"{n}\t{t}\n" for n, t in rows if t.isascii())
    )
    atomic_write_text(out / "labels.tsv", "".join(f"{n}\t{t}\n" for n, t in rows))
    return out / "labels.tsv"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="Render a held-out set of synthetic text lines with their labels, for "
        "python -m densenet_jax.evaluate --labels OUT/labels.tsv.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--out", required=True, help="output folder (lines/ and labels.tsv inside)")
    ap.add_argument("--count", type=int, default=1000, help="number of lines")
    ap.add_argument(
        "--seed",
        type=int,
        default=303,
        help="stream seed; keep it apart from the training run's (0)",
    )
    ap.add_argument("--fonts", nargs="*", default=(), help="extra font files or folders")
    ap.add_argument(
        "--ink-crop",
        type=float,
        default=LineRenderConfig.ink_crop,
        help="probability of a crop fitted to the ink rather than the font's line "
        "box (1: every line as a tight annotation; 0: line boxes only)",
    )
    ap.add_argument(
        "--chars",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=(LineDataConfig.min_chars, LineDataConfig.max_chars),
        help="characters per line (spaces not counted)",
    )
    ap.add_argument(
        "--width",
        type=int,
        default=LineDataConfig.widths[0],
        help="largest line width in px: lines are drawn at their natural width "
        "and squeezed to it when wider (280: the original's input)",
    )
    ap.add_argument(
        "--text-kinds",
        default=",".join(map(str, LineDataConfig.text_kinds)),
        help="weights of the kinds of text: Chinese, Chinese with numbers, "
        "numbers, Latin (ocr_common.corpus.TextSampler)",
    )
    ap.add_argument(
        "--stretch",
        default=",".join(map(str, LineRenderConfig.stretch)),
        help="range of the horizontal scale of a line after cropping (LO,HI)",
    )
    ap.add_argument(
        "--clean",
        action="store_true",
        help="no colour, rules, low resolution, blur, noise or JPEG: the same "
        "texts and fonts as without it (LineRenderConfig.clean)",
    )
    ap.add_argument(
        "--no-system-fonts",
        action="store_true",
        help="draw with the pip-installed fonts (and --fonts) only, not the system's: the "
        "faces every machine has",
    )
    args = ap.parse_args(argv)
    if args.count <= 0:
        ap.error("--count must be positive")
    if not 0.0 <= args.ink_crop <= 1.0:
        ap.error("--ink-crop must be a probability in [0, 1]")
    lo, hi = args.chars
    if not 1 <= lo <= hi:
        ap.error(f"--chars must be 1 <= MIN <= MAX, got {lo} {hi}")
    if args.width < 8:
        ap.error(f"--width must be at least 8 px, got {args.width}")
    try:
        kinds = tuple(float(x) for x in args.text_kinds.split(","))
        stretch = tuple(float(x) for x in args.stretch.split(","))
    except ValueError as e:
        ap.error(f"--text-kinds and --stretch take numbers separated by commas: {e}")
    if len(kinds) != len(TextSampler.KINDS) or min(kinds) < 0 or sum(kinds) <= 0:
        ap.error(
            f"--text-kinds must be {len(TextSampler.KINDS)} non-negative weights "
            f"({', '.join(TextSampler.KINDS)}), not all zero; got {args.text_kinds}"
        )
    if len(stretch) != 2 or not 0 < stretch[0] <= stretch[1]:
        ap.error(f"--stretch must be LO,HI with 0 < LO <= HI, got {args.stretch}")
    render = LineRenderConfig(ink_crop=args.ink_crop, stretch=stretch)
    cfg = LineDataConfig(
        widths=(args.width,),
        min_chars=lo,
        max_chars=hi,
        text_kinds=kinds,
        fonts=tuple(args.fonts),
        system_fonts=not args.no_system_fonts,
        render=render.clean() if args.clean else render,
    )
    labels = write_line_set(args.out, args.count, args.seed, cfg, Charset.default())
    print(f"wrote {args.count} lines and {labels}")


if __name__ == "__main__":
    main()
