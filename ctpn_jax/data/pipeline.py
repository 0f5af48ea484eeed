"""Detector training pipeline: rendered or labelled pages in grain batches.

Pages are resized and padded to a shape bucket as at test time (``ctpn_jax.preprocess``,
which the detector's inference uses too), at the training sizes.

Every training example is a pure function of ``(seed, index)`` and batch ``b`` holds examples
``b * B ... (b + 1) * B - 1``, so a run resumed at step ``s`` sees the batches it would have
seen.  A batch is a dict of numpy arrays:

  image     (B, H, W, 3) uint8     RGB, padded with ``PAD_VALUE``; (H, W) a bucket
  image_hw  (B, 2) int32           content height and width (before padding)
  quads     (B, G, 4, 2) float32   ground-truth lines in resized pixels, G = max_boxes
  valid     (B, G) bool            False for padding entries
  ignore    (B, G) bool            don't-care ("###") lines
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import grain
import numpy as np

from ctpn_jax.data.labels import Sample, TextLine, lines_to_arrays, read_labels
from ctpn_jax.preprocess import bucket_size, pad_to, resize_image
from ocr_common.workers import prefetch_in_workers

TRAIN_STREAM, EVAL_STREAM = 0, 1


@dataclasses.dataclass(frozen=True)
class DetDataConfig:
    """What the detector trains and is tested on (plain data).

    Attributes:
        short_side, long_side: training resize (the original's 600 / 1000).
        bucket_sizes: training padding sizes per side.
        test_short_side, test_long_side: test-time resize (the original's 900 / 1500).
        test_bucket_sizes: test-time padding sizes per side.
        scale_jitter: training short side drawn uniformly from
            ``short_side * [1 - j, 1 + j]`` (0 = fixed, as the original).
        max_boxes: ground-truth lines per image (more are dropped).
        workers: grain worker processes rendering / reading (0 = threads only).
        fonts: extra font files or folders for the renderer.
        kinds: page kinds the renderer draws.
        kind_weights: their probabilities, one per kind (empty: the renderer's default mix
            of its six default kinds, ``PageRenderConfig.kind_weights``).
        max_rotation: largest page rotation in degrees.
        min_text_px, max_text_px: range of rendered body-text sizes at the training scale.
        eval_pages: held-out synthetic pages for the in-training evaluation.
        pool: a folder of pre-rendered labelled pages (e.g. the engine pages of
            ``ctpn_jax.data.engine``) mixed into the synthetic training stream; "" for none.
        pool_share: fraction of the training pages taken from ``pool``.
        photo_prob: share of surfaces, clutter photos and (a third of it) page backgrounds
            cut from real photographs (``PageRenderConfig.photo_prob``; 0: none).
        receipt_columns: share of receipts itemised in columns, each cell its own line
            (``PageRenderConfig.receipt_columns``; 0: none).
    """

    short_side: int = 600
    long_side: int = 1000
    bucket_sizes: tuple[int, ...] = (608, 800, 1008)
    test_short_side: int = 900
    test_long_side: int = 1500
    test_bucket_sizes: tuple[int, ...] = (912, 1200, 1504)
    scale_jitter: float = 0.0
    max_boxes: int = 192
    workers: int = 1
    fonts: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("document", "form", "receipt", "sign", "screenshot", "card")
    kind_weights: tuple[float, ...] = ()
    max_rotation: float = 3.0
    min_text_px: float = 12.0
    max_text_px: float = 48.0
    eval_pages: int = 16
    pool: str = ""
    pool_share: float = 0.0
    photo_prob: float = 0.0
    receipt_columns: float = 0.0


def prepare_example(
    image: np.ndarray,
    lines: Sequence[TextLine],
    short_side: float,
    long_side: float,
    max_boxes: int,
) -> dict[str, np.ndarray]:
    """Resize one image with its lines (not yet padded).

    Returns:
        dict with ``image (h, w, 3) uint8``, ``image_hw (2,) int32``, ``quads (G, 4, 2)
        float32``, ``valid (G,) bool``, ``ignore (G,) bool``, ``G = max_boxes``.  Lines that
        are degenerate after resizing (under 1 px wide or high) are dropped.
    """
    resized, (sy, sx) = resize_image(image, short_side, long_side)
    quads, ignore = lines_to_arrays(lines)
    quads = quads * np.asarray([sx, sy], np.float32)
    if len(quads):
        ext = quads.max(axis=1) - quads.min(axis=1)
        ok = (ext[:, 0] >= 1) & (ext[:, 1] >= 1)
        quads, ignore = quads[ok][:max_boxes], ignore[ok][:max_boxes]
    n = len(quads)
    q = np.zeros((max_boxes, 4, 2), np.float32)
    q[:n] = quads
    valid = np.zeros((max_boxes,), bool)
    valid[:n] = True
    ign = np.zeros((max_boxes,), bool)
    ign[:n] = ignore
    h, w = resized.shape[:2]
    return {
        "image": resized,
        "image_hw": np.asarray([h, w], np.int32),
        "quads": q,
        "valid": valid,
        "ignore": ign,
    }


def collate(examples: Sequence[dict], sizes: Sequence[int]) -> dict[str, np.ndarray]:
    """Pad examples to one bucket and stack them (layout in the module docstring)."""
    hb = bucket_size(max(int(e["image_hw"][0]) for e in examples), sizes)
    wb = bucket_size(max(int(e["image_hw"][1]) for e in examples), sizes)
    return {
        "image": np.stack([pad_to(e["image"], hb, wb) for e in examples]),
        "image_hw": np.stack([e["image_hw"] for e in examples]).astype(np.int32),
        "quads": np.stack([e["quads"] for e in examples]).astype(np.float32),
        "valid": np.stack([e["valid"] for e in examples]),
        "ignore": np.stack([e["ignore"] for e in examples]),
    }


class Collate:
    """Picklable batch function for grain workers."""

    def __init__(self, sizes: Sequence[int]):
        self.sizes = tuple(sizes)

    def __call__(self, examples: Sequence[dict]) -> dict:
        return collate(examples, self.sizes)


def _short_side(cfg: DetDataConfig, rng: np.random.Generator) -> float:
    if cfg.scale_jitter <= 0:
        return float(cfg.short_side)
    return float(cfg.short_side * rng.uniform(1 - cfg.scale_jitter, 1 + cfg.scale_jitter))


class SynthPages:
    """Random-access source of rendered pages: ``pages[i]`` is a pure function of (seed, i)."""

    def __init__(
        self, cfg: DetDataConfig, seed: int, stream: int = TRAIN_STREAM, train: bool = True
    ):
        self.cfg, self.seed, self.stream, self.train = cfg, int(seed), int(stream), train
        self._renderer = None
        self.pool: list[Sample] = []
        if cfg.pool and cfg.pool_share > 0 and train and stream == TRAIN_STREAM:
            from ctpn_jax.data.labels import find_samples

            self.pool = find_samples(Path(cfg.pool).expanduser())  # raises if none

    @property
    def renderer(self):
        if self._renderer is None:  # built lazily: cheap to pickle into grain workers
            from ctpn_jax.data.render import PageRenderConfig, PageRenderer

            c = self.cfg
            weights = {"kind_weights": tuple(c.kind_weights)} if c.kind_weights else {}
            self._renderer = PageRenderer(
                PageRenderConfig(
                    kinds=c.kinds,
                    **weights,
                    max_rotation=c.max_rotation,
                    fonts=c.fonts,
                    min_text_px=c.min_text_px,
                    max_text_px=c.max_text_px,
                    reference_side=c.short_side,
                    reference_long=c.long_side,
                    photo_prob=c.photo_prob,
                    receipt_columns=c.receipt_columns,
                )
            )
        return self._renderer

    def __getstate__(self):
        return {**self.__dict__, "_renderer": None}

    def __len__(self) -> int:
        return 2**62

    def page(self, index: int):
        """The rendered page ``index`` (``ctpn_jax.data.render.Page``)."""
        rng = np.random.default_rng((self.seed, self.stream, int(index)))
        return self.renderer.render(rng), rng

    def __getitem__(self, index: int) -> dict:
        pooled = self._pool_page(index)
        if pooled is not None:
            return pooled
        page, rng = self.page(index)
        short = _short_side(self.cfg, rng) if self.train else self.cfg.short_side
        return prepare_example(
            page.image, page.lines, short, self.cfg.long_side, self.cfg.max_boxes
        )

    def _pool_page(self, index: int) -> dict | None:
        """Training page `index` from the pool (`cfg.pool_share` of them, their own draw, so
        that the rendered pages stay those of `pool_share = 0`), or None."""
        if not self.pool:
            return None
        rng = np.random.default_rng((self.seed, self.stream, int(index), 2))
        if rng.random() >= self.cfg.pool_share:
            return None
        return labeled_page(self.pool[int(rng.integers(len(self.pool)))], self.cfg, rng)


class LabeledPages:
    """Random-access source over image files with label files (read when indexed)."""

    def __init__(self, samples: Sequence[Sample], cfg: DetDataConfig, seed: int = 0):
        self.samples, self.cfg, self.seed = list(samples), cfg, int(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng((self.seed, int(index)))
        return labeled_page(self.samples[index], self.cfg, rng)


def labeled_page(sample: Sample, cfg: DetDataConfig, rng: np.random.Generator) -> dict:
    """A training example of a labelled page read from disk, resized to a drawn scale."""
    from ocr_common.io import read_image

    return prepare_example(
        read_image(sample.image),
        read_labels(sample.label),
        _short_side(cfg, rng),
        cfg.long_side,
        cfg.max_boxes,
    )


def train_batches(
    source,
    cfg: DetDataConfig,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    shuffle: bool = False,
) -> Iterator[dict]:
    """Endless batches from ``source``, starting at batch ``start_step``.

    ``shuffle`` (for finite folders) reshuffles every epoch from ``seed``.
    """
    ds = grain.MapDataset.source(source)
    if shuffle:
        ds = ds.seed(seed).shuffle().repeat()
    ds = ds.batch(batch_size, drop_remainder=True, batch_fn=Collate(cfg.bucket_sizes))
    ds = ds[start_step:]
    it = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=1 if cfg.workers else 2, prefetch_buffer_size=2)
    )
    if cfg.workers > 0:
        it = prefetch_in_workers(it, cfg.workers, buffer_size=2)
    return iter(it)


def data_source(cfg: DetDataConfig, data: str, seed: int) -> tuple[object, bool]:
    """``(source, shuffle)`` for ``--data``: "synth" or a folder of images and labels."""
    if data == "synth":
        return SynthPages(cfg, seed, TRAIN_STREAM), False
    from ctpn_jax.data.labels import find_samples

    return LabeledPages(find_samples(Path(data)), cfg, seed), True
