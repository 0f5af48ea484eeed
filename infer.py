"""Optical character recognition of whole images: CTPN text lines + DenseNet-CTC text.

Command line (``ocr_app.cli``)::

    python infer.py photo.jpg scans/ list.txt --out results/      # files, folders, list files
    python infer.py --serve --port 8000                           # the web service (ocr_app.serve)
    python infer.py --help

Python::

    from infer import OCR
    ocr = OCR()                                   # the weights shipped in the packages
    for line in ocr("photo.jpg"):                 # a path or an (H, W[, 3|4]) array
        print(line["box"], line["text"], line["score"], line["text_score"])

The pipeline (the original's ``ocr.py``, batched), ``OCR.read_pages``: convert each image to
RGB once, detect its text lines (``ctpn_jax.detect``), put them in reading order (rows top to
bottom, left to right within a row), crop every quadrilateral (optionally wider at both ends,
``crop_margin``) from the original pixels with a perspective warp and turn it into a
32-pixel-high gray line once (``densenet_jax.preprocess.to_line_image``), then recognise the
lines of several images together in width-bucketed batches (``densenet_jax.recognizer``), so
that jit compiles a handful of shapes. The command line and ``OCR.read_many`` both consume
that one generator.

A line record is ``{"box": [x1, y1, ..., x4, y4], "text", "score", "text_score"}`` with the
box clockwise from the top-left corner in original-image pixels, ``score`` the detection
score and ``text_score`` the recognition confidence.

Nothing here imports training code (grain, optax, orbax, the renderers, the corpus).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocr_common.geometry import crop_quad, order_quad, reading_order, widen_quad
from ocr_common.io import ImageInput, as_rgb
from ocr_common.runtime import enable_compilation_cache
from ocr_common.weights import WeightsError

#: Lines read with a lower mean character confidence (or read as empty) are dropped; chosen
#: on held-out rendered pages (bench/text_filter.py), see docs/models.md.
DEFAULT_MIN_TEXT_SCORE = 0.3
#: Each detected line is cropped this many line heights wider at both ends (0: as detected).
#: A margin of 0.1 read held-out rendered pages better and the real images of
#: ../shared/dev worse (bench/crop_margin.py, docs/models.md), so the default stays 0.
DEFAULT_CROP_MARGIN = 0.0
MAX_CROP_MARGIN = 10.0
#: Trimmed second readings of poorly read lines (``Recognizer(trims=...)``) are off here:
#: the detector's boxes are tight, and end to end on real images they moved CER by -0.0024
#: (-0.0083 .. +0.0045) at 1.44x the warm time, while pre-cut padded crops read 13% better
#: (docs/models.md, "Reading trimmed views of a line"). ``recognizer_options={"trims":
#: densenet_jax.recognizer.TRIMS}`` (``--trims default``) turns them on.
DEFAULT_TRIMS: tuple = ()


def pipeline_recognizer_options(options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``Recognizer`` arguments as the pipeline reads: ``options`` over the pipeline's own
    defaults (``trims=DEFAULT_TRIMS``), which differ from the ``Recognizer``'s."""
    return {"trims": DEFAULT_TRIMS, **(options or {})}


def require_weights(path: str | os.PathLike | None, what: str) -> Path:
    """The weights file to load: ``path``, or the one shipped in the package when None.

    Args:
      what: ``"det"`` (detector) or ``"rec"`` (recogniser).

    Raises:
      WeightsError: the file does not exist (the message says how to get one).
    """
    if what == "det":
        from ctpn_jax.weights import shipped_weights
    else:
        from densenet_jax.weights import shipped_weights
    model, name = ("ctpn", "detector") if what == "det" else ("densenet", "recogniser")
    train = f"python train.py --model {model} --run-dir runs/{model}"
    if path is None:
        path = shipped_weights()
        if not path.is_file():
            raise WeightsError(
                f"{name} weights {path} not found: the package was installed without its "
                f"shipped weights. Reinstall it, or train with `{train}` and pass "
                f"--weights-{what} runs/{model}/weights.npz (Python: OCR({what}_weights=PATH))."
            )
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"{name} weights {path} not found (no such file). Pass --weights-{what} an exported "
            f"weights file, such as the weights.npz of a training run (`{train}`)."
        )
    return path


# ----------------------------------------------------------------------------- line records


def keeps_line(text: str, text_score: float, min_text_score: float | None) -> bool:
    """The line filter: False for a line read as empty (blank only) or with a recognition
    confidence under ``min_text_score``; ``None`` keeps every line."""
    return min_text_score is None or (bool(text.strip()) and text_score >= min_text_score)


#: A page whose lines read with a mean character confidence under this is read again
#: turned half a turn (``OCR.read_upside_down``) ...
UPSIDE_DOWN_BELOW = 0.8
#: ... and the turned reading is kept when its mean confidence reaches that bar and is
#: higher than the upright one's by this.
UPSIDE_DOWN_MARGIN = 0.1
#: The decision reads this many of a poor page's lines turned, the widest (the most text);
#: chosen on rendered pages (`bench/upside_down.py`: the same decisions as reading every
#: line, at 57% of its pixels there and 41% on real images). 0 reads every line.
UPSIDE_DOWN_LINES = 6
#: ``OCR.read_pages`` recognises the lines of several images together once they hold this
#: many lines (or ``images_per_batch`` images).
GROUP_LINES = 128


def page_confidence(readings: Sequence[Any]) -> float:
    """Mean character confidence of a page's ``Decoded`` lines, each weighted by its length
    (at least 1, so that lines read as empty count with their blank confidence)."""
    weights = [max(1, len(r.text)) for r in readings]
    return float(np.dot(weights, [r.score for r in readings]) / max(1, sum(weights)))


def reads_turned(upright: Sequence[Any], turned: Sequence[Any]) -> bool:
    """Whether lines read turned half a turn (``turned``, ``Decoded``s) read clearly better
    than the same lines upright (``upright``): well themselves (a mean confidence of at
    least ``UPSIDE_DOWN_BELOW``) and ``UPSIDE_DOWN_MARGIN`` above the upright mean."""
    confidence = page_confidence(turned)
    return confidence >= UPSIDE_DOWN_BELOW and confidence > (
        page_confidence(upright) + UPSIDE_DOWN_MARGIN
    )


def widest(widths: Sequence[int], k: int) -> list[int]:
    """Indices of the ``k`` largest ``widths`` (the first of equal ones), in page order;
    every index when ``k`` is 0 or at least their number."""
    if k <= 0 or k >= len(widths):
        return list(range(len(widths)))
    order = np.argsort(-np.asarray(widths), kind="stable")
    return sorted(order[:k].tolist())


def make_records(
    quads: np.ndarray, scores: np.ndarray, texts: Sequence[Any], min_text_score: float | None = None
) -> list[dict]:
    """JSON line records from ``quads (L, 4, 2)``, detection ``scores (L,)`` and ``Decoded``s.

    With ``min_text_score`` set, a line read as empty (blank only) or with a recognition
    confidence under it is dropped: a box the recogniser cannot read is most often not text
    (a texture, a photo, a fragment). ``None`` keeps every detected line.
    """
    return [
        {
            "box": [round(float(v), 1) for v in np.asarray(quad).reshape(-1)],
            "text": t.text,
            "score": round(float(sc), 4),
            "text_score": round(float(t.score), 4),
        }
        for quad, sc, t in zip(quads, scores, texts, strict=True)
        if keeps_line(t.text, t.score, min_text_score)
    ]


@dataclasses.dataclass
class Page:
    """One input image's way through ``OCR.read_pages``.

    Attributes:
      source: the input as given (a path or an array).
      records: line records in reading order (empty when ``error`` is set).
      width, height: the image's size in pixels (0 when it could not be read).
      error: why the image could not be read, else None.
      preview: with ``read_pages(preview_side=...)``, the image downscaled to fit that side
        ``(h, w, 3) uint8``, for drawing; else None.
      preview_scale: the scale of ``preview`` (1.0 when none).
      seconds: ``{"load", "detect", "recognise"}`` wall time of this image; the shared
        recognition batches are attributed to the images by their share of the lines.
    """

    source: ImageInput
    records: list[dict] = dataclasses.field(default_factory=list)
    width: int = 0
    height: int = 0
    error: Exception | None = None
    preview: np.ndarray | None = None
    preview_scale: float = 1.0
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    # Between detection and recognition: the detection and the model inputs of its lines.
    detection: Any = dataclasses.field(default=None, repr=False)
    lines: list[np.ndarray] = dataclasses.field(default_factory=list, repr=False)


# ----------------------------------------------------------------------------- the pipeline


class OCR:
    """Text detector + recogniser: images in, line records (as in the JSON outputs) out.

    Args:
      det_weights: exported CTPN weights (``ctpn_jax.weights.export_detector``); default the
        shipped ``ctpn_jax/assets/ctpn.npz``.
      rec_weights: exported DenseNet weights (``densenet_jax.weights.export_recognizer``);
        default the shipped ``densenet_jax/assets/densenet.npz``.
      mode: ``"H"`` (axis-aligned boxes) or ``"O"`` (oriented rectangles).
      batch_size: most lines recognised in one batch (None:
        ``densenet_jax.recognizer.default_batch_size()``, 8 on a CPU, 32 on an accelerator).
      decoder: ``"greedy"`` or ``"beam"``.
      detector_options: more arguments of ``ctpn_jax.detect.TextDetector`` (``short_side``,
        ``long_side``, ``bucket_sizes``).
      recognizer_options: more arguments of ``densenet_jax.recognizer.Recognizer``
        (``lookalike_weight``, ``reread_scales``, ``reread_density``, ``trims``,
        ``trim_below``); ``trims`` defaults to ``DEFAULT_TRIMS`` (none) here.
      detector: use this callable ``(H, W, 3) uint8 -> Detection`` instead of loading one.
      recognizer: use this ``densenet_jax.recognizer.Recognizer`` instead of loading one.
      compilation_cache: enable JAX's persistent compilation cache
        (``ocr_common.runtime.enable_compilation_cache``).
      min_text_score: drop lines read as empty or with a lower recognition confidence
        (``make_records``); ``None`` keeps every detected line.
      crop_margin: crop each line this many line heights wider at both ends
        (``widen_quad``); the records keep the detected boxes.
      upside_down: also read an image whose lines read poorly turned half a turn (a page
        photographed or scanned upside down; ``read_upside_down``).
      upside_down_lines: how many of a poor page's lines (the widest) that check reads
        turned to decide; 0 reads every line.

    Raises:
      WeightsError: a weights file is missing or unusable (the message says what to do).
    """

    def __init__(
        self,
        det_weights: str | os.PathLike | None = None,
        rec_weights: str | os.PathLike | None = None,
        *,
        mode: str = "H",
        batch_size: int | None = None,
        decoder: str = "greedy",
        detector_options: dict[str, Any] | None = None,
        recognizer_options: dict[str, Any] | None = None,
        detector: Callable[[np.ndarray], Any] | None = None,
        recognizer: Any | None = None,
        compilation_cache: bool = True,
        min_text_score: float | None = DEFAULT_MIN_TEXT_SCORE,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        upside_down: bool = True,
        upside_down_lines: int = UPSIDE_DOWN_LINES,
    ):
        if mode not in ("H", "O"):
            raise ValueError(f"mode must be 'H' or 'O', got {mode!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0.0 <= crop_margin <= MAX_CROP_MARGIN:
            raise ValueError(
                f"crop_margin must be in [0, {MAX_CROP_MARGIN:g}] line heights, got {crop_margin}"
            )
        if decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be 'greedy' or 'beam', got {decoder!r}")
        if compilation_cache:
            enable_compilation_cache()
        self.batch_size, self.decoder = batch_size, decoder
        self.min_text_score, self.crop_margin = min_text_score, crop_margin
        self.upside_down, self.upside_down_lines = upside_down, upside_down_lines
        if detector is None:
            from ctpn_jax.detect import TextDetector

            detector = TextDetector.from_weights(
                require_weights(det_weights, "det"), post={"mode": mode}, **(detector_options or {})
            )
        if recognizer is None:
            from densenet_jax.recognizer import Recognizer

            recognizer = Recognizer.from_file(
                require_weights(rec_weights, "rec"),
                **pipeline_recognizer_options(recognizer_options),
            )
        self.detector, self.recognizer = detector, recognizer

    # -- the three stages, each on what the one before gave

    def detect(self, image: ImageInput) -> Any:
        """Text lines of one image, in reading order.

        Returns:
          A ``ctpn_jax.detect.Detection``: ``quads (L, 4, 2) float32`` clockwise from
          top-left in the image's pixels, ``scores (L,) float32``.
        """
        return self._detect_rgb(as_rgb(image))

    def _detect_rgb(self, rgb: np.ndarray) -> Any:
        """``detect`` of an image already converted by ``as_rgb``."""
        det = self.detector(rgb)
        quads = (
            np.stack([order_quad(q) for q in det.quads])
            if len(det.quads)
            else np.zeros((0, 4, 2), np.float32)
        )
        order = reading_order(quads)
        return dataclasses.replace(det, quads=quads[order], scores=np.asarray(det.scores)[order])

    def crop_lines(self, image: np.ndarray, quads: np.ndarray) -> list[np.ndarray]:
        """``(H, W, 3) uint8`` and ``quads (L, 4, 2)`` -> L recogniser inputs ``(32, w) uint8``,
        each cropped ``crop_margin`` line heights wider at both ends."""
        from densenet_jax.preprocess import to_line_image

        # Gray 32-pixel lines right away: a few KB each, where crops of a huge image are MBs.
        return [to_line_image(crop_quad(image, widen_quad(q, self.crop_margin))) for q in quads]

    def recognize(self, lines: Sequence[np.ndarray]) -> list[Any]:
        """Reads line images (any size, RGB or gray) in width-bucketed batches.

        Returns:
          One ``densenet_jax.ctc.Decoded`` (``.text``, ``.confidences``, ``.score``) a line.
        """
        from densenet_jax.preprocess import to_line_image

        return self.recognize_lines([to_line_image(ln) for ln in lines])

    def recognize_lines(self, lines: Sequence[np.ndarray], reread: bool = True) -> list[Any]:
        """``recognize`` for the recogniser inputs ``crop_lines`` gives, ``(32, w) uint8``;
        ``reread=False`` reads dense lines once too (no stretched second readings)."""
        if not len(lines):
            return []
        return self.recognizer.recognize_lines(
            list(lines), decoder=self.decoder, batch_size=self.batch_size, reread=reread
        )

    # -- the pipeline: one generator that every caller consumes

    def read_pages(
        self,
        images: Iterable[ImageInput],
        images_per_batch: int = 8,
        preview_side: int | None = None,
    ) -> Iterator[Page]:
        """Reads images one after another, yielding a ``Page`` each, in input order.

        Each image is converted to RGB once, detected, and its lines cropped into model
        inputs once; the lines of up to ``images_per_batch`` images (or ``GROUP_LINES``
        lines) are recognised in shared batches. An image that fails (unreadable, or an error
        while processing it) yields a ``Page`` with ``error`` set; the others go on.

        Args:
          images: paths or arrays (any iterable: it is consumed lazily).
          images_per_batch: most images whose lines are recognised together.
          preview_side: keep a copy of each image downscaled to this longest side in
            ``Page.preview`` (for drawing); None keeps none, so that no image outlives its
            detection.
        """
        pending: list[Page] = []
        for source in images:
            pending.append(self._detect_page(source, preview_side))
            if (
                len(pending) >= images_per_batch
                or sum(len(p.lines) for p in pending) >= GROUP_LINES
            ):
                yield from self._recognise_pages(pending)
                pending = []
        if pending:
            yield from self._recognise_pages(pending)

    def _detect_page(self, source: ImageInput, preview_side: int | None) -> Page:
        """Loads, detects and crops one image (a ``Page`` with ``error`` if that fails)."""
        page = Page(source)
        try:
            t0 = time.perf_counter()
            rgb = as_rgb(source)
            t1 = time.perf_counter()
            page.height, page.width = rgb.shape[:2]
            page.detection = self._detect_rgb(rgb)
            page.lines = self.crop_lines(rgb, page.detection.quads)
            page.seconds = {"load": t1 - t0, "detect": time.perf_counter() - t1}
            if preview_side is not None:
                from ocr_common.draw import fit_within

                page.preview, page.preview_scale = fit_within(rgb, preview_side)
        except Exception as e:  # one bad image must not stop the others
            page.error, page.lines = e, []
        return page

    def _recognise_pages(self, pages: list[Page]) -> Iterator[Page]:
        """Recognises the lines of ``pages`` in shared batches and fills their records."""
        t0 = time.perf_counter()
        try:
            texts = self.recognize_lines([ln for p in pages for ln in p.lines])
        except Exception as e:  # the batch failed: report it against each of its images
            for p in pages:
                if p.error is None:
                    p.error = e
                p.lines, p.detection = [], None
                yield p
            return
        per_page, k = [], 0
        for p in pages:
            per_page.append(texts[k : k + len(p.lines)])
            k += len(p.lines)
        turned = [False] * len(pages)
        if self.upside_down:
            per_page, turned = self.read_upside_down([p.lines for p in pages], per_page)
        seconds = time.perf_counter() - t0
        total = sum(len(p.lines) for p in pages)
        ok = sum(p.error is None for p in pages)
        for p, mine, flip in zip(pages, per_page, turned, strict=True):
            if p.error is None:
                p.records = make_records(
                    p.detection.quads, p.detection.scores, mine, self.min_text_score
                )
                if flip:  # an upside-down page reads from the bottom right
                    p.records.reverse()
                p.seconds["recognise"] = seconds * (len(p.lines) / total if total else 1 / ok)
            p.lines, p.detection = [], None  # done with them: free the memory
            yield p

    def read_upside_down(
        self, pages: Sequence[Sequence[np.ndarray]], readings: Sequence[Sequence[Any]]
    ) -> tuple[list[list[Any]], list[bool]]:
        """Reads again, turned half a turn, the lines of each page that reads poorly, and
        keeps the turned reading where it is clearly more confident.

        A page is read again when the mean character confidence of its lines (weighted by
        their lengths) is under ``UPSIDE_DOWN_BELOW``; the turned reading wins when it reads
        well itself (a mean of at least ``UPSIDE_DOWN_BELOW``) and its mean is higher by
        ``UPSIDE_DOWN_MARGIN`` (a photo or texture read as garbage either way stays). The
        decision is per page: a single line's confidence does not tell upright from
        upside-down text (rendered lines turned half a turn often read with 0.6-0.8
        confidence), a page's lines together do. Most poor pages are upright, so the
        decision is cheap: it reads only the ``upside_down_lines`` widest lines turned,
        once each (no stretched second readings of dense lines), and compares them with
        the same lines' upright readings; a page that turns is read again in full.

        Args:
          pages: each page's recogniser inputs ``(32, w) uint8``.
          readings: each page's ``Decoded`` of those lines.

        Returns:
          ``(readings, turned)``: the readings kept per page, and whether they are the
          turned ones.
        """
        readings = [list(r) for r in readings]
        poor = [i for i, r in enumerate(readings) if r and page_confidence(r) < UPSIDE_DOWN_BELOW]
        turned = [False] * len(readings)
        if not poor:
            return readings, turned

        def turn(lines: Iterable[np.ndarray]) -> list[np.ndarray]:
            return [np.ascontiguousarray(ln[::-1, ::-1]) for ln in lines]

        samples = [widest([ln.shape[1] for ln in pages[i]], self.upside_down_lines) for i in poor]
        again = self.recognize_lines(
            turn(pages[i][j] for i, idx in zip(poor, samples, strict=True) for j in idx),
            reread=False,
        )
        k = 0
        for i, idx in zip(poor, samples, strict=True):
            mine, k = again[k : k + len(idx)], k + len(idx)
            turned[i] = reads_turned([readings[i][j] for j in idx], mine)
        flipped = [i for i in poor if turned[i]]
        full = self.recognize_lines(turn(ln for i in flipped for ln in pages[i]))
        k = 0
        for i in flipped:
            readings[i], k = full[k : k + len(pages[i])], k + len(pages[i])
        return readings, turned

    def read_many(self, images: Sequence[ImageInput]) -> list[list[dict]]:
        """Line records of several images; their lines are recognised in shared batches.

        Raises:
          The first image's error (e.g. ``ocr_common.io.ImageError``) if one fails.
        """
        results = []
        for page in self.read_pages(images, images_per_batch=max(1, len(images))):
            if page.error is not None:
                raise page.error
            results.append(page.records)
        return results

    def __call__(self, image: ImageInput) -> list[dict]:
        """Line records of one image (a path or an array), in reading order."""
        return self.read_many([image])[0]


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (``ocr_app.cli``); returns the exit status."""
    from ocr_app.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
