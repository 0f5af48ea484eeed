"""Optical character recognition of whole images: CTPN text lines + DenseNet-CTC text.

Command line::

    python infer.py photo.jpg scans/ list.txt --out results/      # files, folders, list files
    python infer.py --help

Python::

    from infer import OCR
    ocr = OCR()                                   # the shipped weights/ctpn.npz, densenet.npz
    for line in ocr("photo.jpg"):                 # a path or an (H, W[, 3|4]) array
        print(line["box"], line["text"], line["score"], line["text_score"])

The pipeline (the original's ``ocr.py``, batched): detect text lines, put them in reading
order (rows top to bottom, left to right within a row), crop every quadrilateral (optionally
wider at both ends, ``crop_margin``) from the original pixels with a perspective warp, turn
the crop into a 32-pixel-high gray line (``densenet_jax.preprocess.to_line_image``) and
recognise the lines of one or several images together in width-bucketed batches, so that
jit compiles a handful of shapes.

Every output file is written atomically: ``<name>.json`` (the records below), ``<name>.txt``
(the text in reading order) and ``<name>.jpg`` (boxes and text drawn). A line record is
``{"box": [x1, y1, ..., x4, y4], "text", "score", "text_score"}`` with the box clockwise from
the top-left corner in original-image pixels, ``score`` the detection score and
``text_score`` the recognition confidence.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ocr_common.io import IMAGE_SUFFIXES, ImageError, atomic_write_bytes, atomic_write_text
from ocr_common.weights import WeightsError

REPO_DIR = Path(__file__).resolve().parent
DEFAULT_DET_WEIGHTS = REPO_DIR / "weights" / "ctpn.npz"
DEFAULT_REC_WEIGHTS = REPO_DIR / "weights" / "densenet.npz"
DEFAULT_OUT_DIR = Path("ocr_results")
#: Lines read with a lower mean character confidence (or read as empty) are dropped; chosen
#: on held-out rendered pages (bench/text_filter.py), see docs/models.md.
DEFAULT_MIN_TEXT_SCORE = 0.3
#: Each detected line is cropped this many line heights wider at both ends (0: as detected).
#: A margin of 0.1 read held-out rendered pages better and the real images of
#: ../shared/dev worse (bench/crop_margin.py, docs/models.md), so the default stays 0.
DEFAULT_CROP_MARGIN = 0.0
MAX_CROP_MARGIN = 10.0
#: Environment variable naming the compilation-cache folder ("off" disables the cache).
CACHE_ENV = "CHINESE_OCR_JAX_CACHE"
#: Files with these suffixes given as inputs are lists of images, one path a line.
LIST_SUFFIXES = (".txt", ".lst", ".list")
#: Largest side of the annotated image (each of its two panels), to keep the JPEG small.
DRAW_MAX_SIDE = 1600

ImageInput = str | os.PathLike | np.ndarray


class InputError(ValueError):
    """Nothing to process (no images found); the message says where we looked."""


class DeviceError(RuntimeError):
    """The requested JAX platform is not available."""


# ----------------------------------------------------------------------------- set-up


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turns on JAX's persistent compilation cache, so that a second run starts fast.

    The folder is ``path``, else the environment variable ``CHINESE_OCR_JAX_CACHE`` (``off``,
    ``0`` or an empty value disable the cache), else ``$XDG_CACHE_HOME/chinese-ocr-jax/jax``
    (``~/.cache/...``). A folder already configured through JAX's own settings is kept. Takes
    effect only if called before the process compiles anything.

    Returns:
      The cache folder, or None when the cache stays off.
    """
    import jax

    if path is None:
        if jax.config.jax_compilation_cache_dir:
            return Path(jax.config.jax_compilation_cache_dir)
        path = os.environ.get(CACHE_ENV)
        if path is None:
            base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
            path = Path(base) / "chinese-ocr-jax" / "jax"
        elif path.strip().lower() in ("", "0", "off", "none", "false"):
            return None
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home must not stop OCR; it only costs compile time
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Our models compile in ~1-10 s; keep every program that took noticeable time.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    return folder


def select_device(device: str) -> None:
    """Makes ``"cpu"`` or ``"gpu"`` the JAX platform; call before any JAX computation.

    Raises:
      DeviceError: ``"gpu"`` was asked for and JAX sees none (or an unknown name).
    """
    import jax

    if device == "cpu":
        try:
            from jax._src import xla_bridge

            initialised = xla_bridge.backends_are_initialized()
        except (ImportError, AttributeError):  # private API moved: just set the default
            initialised = True
        if not initialised:  # don't even start CUDA when the CPU is asked for
            jax.config.update("jax_platforms", "cpu")
        jax.config.update("jax_default_device", jax.devices("cpu")[0])
    elif device == "gpu":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError as e:
            raise DeviceError(
                "--device gpu: JAX finds no GPU on this machine (install a CUDA build of "
                f"JAX, e.g. pip install 'jax[cuda12]', or use --device cpu); JAX says: {e}"
            ) from e
        jax.config.update("jax_default_device", gpus[0])
    else:
        raise DeviceError(f"unknown device {device!r}: expected 'cpu' or 'gpu'")


def require_weights(path: str | os.PathLike, what: str) -> Path:
    """Checks that a weights file exists, with a message that says how to get one.

    Args:
      what: ``"det"`` (detector) or ``"rec"`` (recogniser).

    Raises:
      WeightsError: the file does not exist.
    """
    path = Path(path)
    if path.is_file():
        return path
    model, name, default = (("ctpn", "detector", DEFAULT_DET_WEIGHTS) if what == "det"
                            else ("densenet", "recogniser", DEFAULT_REC_WEIGHTS))
    train = f"python train.py --model {model} --run-dir runs/{model} --export {default}"
    if path == default:
        raise WeightsError(
            f"{name} weights {path} not found: the repository's trained weights belong there "
            f"and this checkout has none. Train and export them there with `{train}`, or pass "
            f"--weights-{what} PATH with the weights.npz of a training run (Python: "
            f"OCR({what}_weights=PATH)).")
    raise WeightsError(
        f"{name} weights {path} not found (no such file). Pass --weights-{what} an exported "
        f"weights file, such as the weights.npz of a training run (`{train}`).")


# ----------------------------------------------------------------------------- geometry


def order_quad(quad: np.ndarray) -> np.ndarray:
    """Puts 4 corner points in the order top-left, top-right, bottom-right, bottom-left.

    That is clockwise on screen (image ``y`` points down), starting at the corner where the
    edge closest to pointing right (+x) begins: the text's top-left for lines that are
    tilted by less than 45 degrees.

    Args:
      quad: ``(4, 2)`` points ``(x, y)`` in any order.

    Returns:
      ``(4, 2) float32``.
    """
    q = np.asarray(quad, np.float64).reshape(4, 2)
    centre = q.mean(axis=0)
    # Increasing angle around the centre is clockwise on screen, because y points down.
    q = q[np.argsort(np.arctan2(q[:, 1] - centre[1], q[:, 0] - centre[0]), kind="stable")]
    edges = np.roll(q, -1, axis=0) - q
    rightward = edges[:, 0] / np.maximum(np.linalg.norm(edges, axis=1), 1e-9)
    return np.roll(q, -int(np.argmax(rightward)), axis=0).astype(np.float32)


def reading_order(quads: np.ndarray, row_overlap: float = 0.5) -> np.ndarray:
    """The order in which to read text lines: rows top to bottom, left to right in a row.

    The dominant direction of the lines (median angle of their top edges) is turned to the
    horizontal first, so that a tilted page is read by rows too. Lines are then taken in the
    order of their vertical centres; a line joins the current row when it overlaps the row
    vertically by at least ``row_overlap`` of the smaller height, else it starts a new row.

    Args:
      quads: ``(L, 4, 2)`` lines, clockwise from top-left.
      row_overlap: see above.

    Returns:
      ``(L,) int64`` indices into ``quads``.
    """
    q = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    if len(q) <= 1:
        return np.arange(len(q), dtype=np.int64)
    top_edges = q[:, 1] - q[:, 0]
    angles = np.arctan2(top_edges[:, 1], top_edges[:, 0])
    angles = angles[np.abs(angles) < math.pi / 4]
    theta = float(np.median(angles)) if angles.size else 0.0
    c, s = math.cos(theta), math.sin(theta)
    u = q[..., 0] * c + q[..., 1] * s  # along the text direction
    v = -q[..., 0] * s + q[..., 1] * c  # across it (down)
    top, bottom, left = v.min(axis=1), v.max(axis=1), u.min(axis=1)
    centre = 0.5 * (top + bottom)

    rows: list[list[int]] = []
    row_top = row_bottom = 0.0
    for i in np.lexsort((left, centre)):
        if rows:
            inter = min(bottom[i], row_bottom) - max(top[i], row_top)
            smaller = max(min(bottom[i] - top[i], row_bottom - row_top), 1e-6)
            if inter >= row_overlap * smaller:
                rows[-1].append(int(i))
                # The row's band is the mean of its members', so one odd box can't stretch it.
                row_top = float(np.mean(top[rows[-1]]))
                row_bottom = float(np.mean(bottom[rows[-1]]))
                continue
        rows.append([int(i)])
        row_top, row_bottom = float(top[i]), float(bottom[i])
    return np.asarray([i for row in rows for i in sorted(row, key=lambda k: left[k])], np.int64)


def widen_quad(quad: np.ndarray, margin: float) -> np.ndarray:
    """Lengthens a line's quadrilateral at both ends along its own direction.

    Each end moves outwards by ``margin`` times the quad's height (the mean length of its
    left and right sides), parallel to its top and bottom edges; tilted lines stay tilted.

    Args:
      quad: ``(4, 2)`` corners clockwise from the text's top-left (``order_quad``).
      margin: in line heights; 0 returns the quad unchanged, a negative value shortens it.

    Returns:
      ``(4, 2) float64``.
    """
    q = np.asarray(quad, np.float64).reshape(4, 2).copy()
    height = 0.5 * (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1]))
    for start, end in ((0, 1), (3, 2)):  # top edge, bottom edge
        edge = q[end] - q[start]
        step = edge / max(float(np.linalg.norm(edge)), 1e-9) * margin * height
        q[start] -= step
        q[end] += step
    return q


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Cuts a quadrilateral out of an image and warps it to an upright rectangle.

    Coordinates are continuous: pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, so the
    box ``(x0, y0)-(x1, y1)`` of integers crops exactly ``image[y0:y1, x0:x1]``. The output
    is as wide as the longer of the top and bottom edges and as high as the longer of the
    two sides; the quad's first corner lands at the output's top-left.

    Args:
      image: ``(H, W)`` or ``(H, W, C)`` uint8.
      quad: ``(4, 2)`` corners clockwise from the text's top-left, in image pixels.

    Returns:
      ``(h, w)`` or ``(h, w, C)`` uint8 with ``h, w >= 1``.
    """
    q = np.asarray(quad, np.float64).reshape(4, 2)
    width = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    height = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
    w, h = max(1, int(round(width))), max(1, int(round(height)))
    # Work on the quad's bounding region only: cheap on huge images, and keeps OpenCV's
    # remap coordinates well inside its 32767-pixel limit.
    x0 = int(np.clip(math.floor(q[:, 0].min()) - 1, 0, image.shape[1] - 1))
    y0 = int(np.clip(math.floor(q[:, 1].min()) - 1, 0, image.shape[0] - 1))
    x1 = int(np.clip(math.ceil(q[:, 0].max()) + 1, x0 + 1, image.shape[1]))
    y1 = int(np.clip(math.ceil(q[:, 1].max()) + 1, y0 + 1, image.shape[0]))
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    # OpenCV puts pixel centres at integer coordinates: shift corners by half a pixel.
    src = q - np.asarray([x0, y0], np.float64) - 0.5
    dst = np.asarray([[0, 0], [w, 0], [w, h], [0, h]], np.float64) - 0.5
    m = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    return cv2.warpPerspective(region, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


# ----------------------------------------------------------------------------- images


def as_rgb(image: ImageInput) -> np.ndarray:
    """A path or an array as ``(H, W, 3) uint8`` RGB.

    Arrays may be ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (composited on
    white), of dtype uint8, uint16 (scaled by 1/257) or float (0..1 or 0..255).

    Raises:
      ImageError: unreadable file, or an array of another shape.
    """
    if not isinstance(image, np.ndarray):
        from ocr_common.io import read_image

        return read_image(image)
    img = image
    if img.size == 0:
        raise ImageError(f"empty image array of shape {image.shape}")
    if img.dtype == np.uint16:
        img = (img.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif img.dtype != np.uint8:
        scale = 255.0 if np.issubdtype(img.dtype, np.floating) and img.max(initial=0) <= 1 else 1
        img = np.clip(np.asarray(img, np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[..., 3:].astype(np.float32) / 255.0
        return (img[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {image.shape}")
    return np.ascontiguousarray(img)


def fit_within(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscales ``(H, W, 3) uint8`` so that its longer side is at most ``max_side``.

    Returns:
      The image and the scale applied (1.0 when it already fits).
    """
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s == 1.0:
        return image, 1.0
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), s


# ----------------------------------------------------------------------------- the pipeline


def keeps_line(text: str, text_score: float, min_text_score: float | None) -> bool:
    """The line filter: False for a line read as empty (blank only) or with a recognition
    confidence under ``min_text_score``; ``None`` keeps every line."""
    return min_text_score is None or (bool(text.strip()) and text_score >= min_text_score)


def make_records(quads: np.ndarray, scores: np.ndarray, texts: Sequence[Any],
                 min_text_score: float | None = None) -> list[dict]:
    """JSON line records from ``quads (L, 4, 2)``, detection ``scores (L,)`` and ``Decoded``s.

    With ``min_text_score`` set, a line read as empty (blank only) or with a recognition
    confidence under it is dropped: a box the recogniser cannot read is most often not text
    (a texture, a photo, a fragment). ``None`` keeps every detected line.
    """
    return [{"box": [round(float(v), 1) for v in np.asarray(quad).reshape(-1)],
             "text": t.text, "score": round(float(sc), 4), "text_score": round(float(t.score), 4)}
            for quad, sc, t in zip(quads, scores, texts, strict=True)
            if keeps_line(t.text, t.score, min_text_score)]


class OCR:
    """Text detector + recogniser: images in, line records (as in the JSON outputs) out.

    Args:
      det_weights: exported CTPN weights (``ctpn_jax.detect.export_detector``); default
        ``weights/ctpn.npz`` beside this file.
      rec_weights: exported DenseNet weights (``densenet_jax.weights.export_recognizer``);
        default ``weights/densenet.npz``.
      mode: ``"H"`` (axis-aligned boxes) or ``"O"`` (oriented rectangles).
      batch_size: most lines recognised in one batch.
      decoder: ``"greedy"`` or ``"beam"``.
      detector_options: more arguments of ``ctpn_jax.detect.TextDetector`` (``short_side``,
        ``long_side``, ``bucket_sizes``).
      recognizer_options: more arguments of ``densenet_jax.recognizer.Recognizer``
        (``lookalike_weight``, ``reread_scales``, ``reread_density``).
      detector: use this callable ``(H, W, 3) uint8 -> Detection`` instead of loading one.
      recognizer: use this ``densenet_jax.recognizer.Recognizer`` instead of loading one.
      compilation_cache: enable JAX's persistent compilation cache (``enable_compilation_cache``).
      min_text_score: drop lines read as empty or with a lower recognition confidence
        (``make_records``); ``None`` keeps every detected line.
      crop_margin: crop each line this many line heights wider at both ends
        (``widen_quad``); the records keep the detected boxes.

    Raises:
      WeightsError: a weights file is missing or unusable (the message says what to do).
    """

    def __init__(self, det_weights: str | os.PathLike | None = None,
                 rec_weights: str | os.PathLike | None = None, *, mode: str = "H",
                 batch_size: int = 32, decoder: str = "greedy",
                 detector_options: dict[str, Any] | None = None,
                 recognizer_options: dict[str, Any] | None = None,
                 detector: Callable[[np.ndarray], Any] | None = None,
                 recognizer: Any | None = None, compilation_cache: bool = True,
                 min_text_score: float | None = DEFAULT_MIN_TEXT_SCORE,
                 crop_margin: float = DEFAULT_CROP_MARGIN):
        if mode not in ("H", "O"):
            raise ValueError(f"mode must be 'H' or 'O', got {mode!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0.0 <= crop_margin <= MAX_CROP_MARGIN:
            raise ValueError(f"crop_margin must be in [0, {MAX_CROP_MARGIN:g}] line heights, "
                             f"got {crop_margin}")
        if decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be 'greedy' or 'beam', got {decoder!r}")
        if compilation_cache:
            enable_compilation_cache()
        self.batch_size, self.decoder = batch_size, decoder
        self.min_text_score, self.crop_margin = min_text_score, crop_margin
        if detector is None:
            from ctpn_jax.detect import TextDetector

            path = require_weights(det_weights or DEFAULT_DET_WEIGHTS, "det")
            detector = TextDetector.from_weights(path, post={"mode": mode},
                                                 **(detector_options or {}))
        if recognizer is None:
            from densenet_jax.recognizer import Recognizer

            recognizer = Recognizer.from_file(require_weights(rec_weights or DEFAULT_REC_WEIGHTS,
                                                              "rec"), **(recognizer_options or {}))
        self.detector, self.recognizer = detector, recognizer

    def detect(self, image: ImageInput) -> Any:
        """Text lines of one image, in reading order.

        Returns:
          A ``ctpn_jax.detect.Detection``: ``quads (L, 4, 2) float32`` clockwise from
          top-left in the image's pixels, ``scores (L,) float32``.
        """
        rgb = as_rgb(image)
        det = self.detector(rgb)
        quads = np.stack([order_quad(q) for q in det.quads]) if len(det.quads) else \
            np.zeros((0, 4, 2), np.float32)
        order = reading_order(quads)
        return dataclasses.replace(det, quads=quads[order], scores=np.asarray(det.scores)[order])

    def crop_lines(self, image: np.ndarray, quads: np.ndarray) -> list[np.ndarray]:
        """``(H, W, 3) uint8`` and ``quads (L, 4, 2)`` -> L recogniser lines ``(32, w) uint8``,
        each cropped ``crop_margin`` line heights wider at both ends."""
        from densenet_jax.preprocess import to_line_image

        # Gray 32-pixel lines right away: a few KB each, where crops of a huge image are MBs.
        return [to_line_image(crop_quad(image, widen_quad(q, self.crop_margin))) for q in quads]

    def recognize(self, lines: Sequence[np.ndarray]) -> list[Any]:
        """Reads line images (any size, RGB or gray) in width-bucketed batches.

        Returns:
          One ``densenet_jax.ctc.Decoded`` (``.text``, ``.confidences``, ``.score``) a line.
        """
        if not lines:
            return []
        return self.recognizer.recognize(list(lines), decoder=self.decoder,
                                         batch_size=self.batch_size)

    def read_many(self, images: Sequence[ImageInput]) -> list[list[dict]]:
        """Line records of several images; their lines are recognised in shared batches."""
        dets, lines = [], []
        for image in images:
            rgb = as_rgb(image)
            det = self.detect(rgb)
            dets.append(det)
            lines += self.crop_lines(rgb, det.quads)
        texts = iter(self.recognize(lines))
        return [make_records(d.quads, d.scores, [next(texts) for _ in d.quads],
                             self.min_text_score) for d in dets]

    def __call__(self, image: ImageInput) -> list[dict]:
        """Line records of one image (a path or an array), in reading order."""
        return self.read_many([image])[0]


# ----------------------------------------------------------------------------- drawing

_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 200, 200), (240, 50, 230), (128, 128, 0), (0, 0, 128), (170, 110, 40))


def draw_results(image: np.ndarray, records: Sequence[dict],
                 font_path: str | os.PathLike | None = None,
                 max_side: int = DRAW_MAX_SIDE) -> np.ndarray:
    """The image with its lines outlined (left) beside the recognised text drawn at the same
    places on white (right).

    Args:
      image: ``(H, W, 3) uint8`` RGB, the original.
      records: line records with boxes in ``image``'s pixels.
      font_path: a CJK font (default ``ocr_common.fonts.default_font()``).
      max_side: each panel is downscaled so that its longer side is at most this.

    Returns:
      ``(h, 2 w, 3) uint8`` RGB.
    """
    from PIL import Image, ImageDraw

    from ocr_common.fonts import default_font, load_font

    small, s = fit_within(image, max_side)
    h, w = small.shape[:2]
    left = Image.fromarray(small).convert("RGBA")
    overlay = Image.new("RGBA", left.size, (0, 0, 0, 0))
    right = Image.new("RGB", (w, h), (255, 255, 255))
    draw_o, draw_r = ImageDraw.Draw(overlay), ImageDraw.Draw(right)
    font_path = font_path or default_font()
    for k, rec in enumerate(records):
        colour = _COLOURS[k % len(_COLOURS)]
        q = np.asarray(rec["box"], np.float64).reshape(4, 2) * s
        pts = [tuple(p) for p in q]
        draw_o.polygon(pts, fill=colour + (48,), outline=colour + (255,), width=2)
        draw_r.polygon(pts, outline=colour, width=1)
        text = rec["text"]
        if not text:
            continue
        box_w = max(np.linalg.norm(q[1] - q[0]), 1.0)
        box_h = max(np.linalg.norm(q[3] - q[0]), 1.0)
        size = int(np.clip(box_h * 0.8, 8, 256))
        length = load_font(font_path, size).getlength(text)
        if length > box_w:  # shrink to the box width, but stay legible
            size = max(8, int(size * box_w / length))
        centre_left = 0.5 * (q[0] + q[3])
        draw_r.text((float(centre_left[0]) + 1, float(centre_left[1])), text, fill=(0, 0, 0),
                    font=load_font(font_path, size), anchor="lm")
    left = Image.alpha_composite(left, overlay).convert("RGB")
    return np.concatenate([np.asarray(left), np.asarray(right)], axis=1)


def format_document(doc: dict) -> str:
    """The JSON text of an image's results: one line record a line, like the dev set's files."""
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                      for k, v in doc.items() if k != "lines")
    lines = ",\n".join(f"  {json.dumps(r, ensure_ascii=False)}" for r in doc["lines"])
    return f"{{\n{head},\n \"lines\": [\n{lines}\n ]\n}}\n" if lines else \
        f"{{\n{head},\n \"lines\": []\n}}\n"


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """``(H, W, 3) uint8`` RGB -> JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


# ----------------------------------------------------------------------------- inputs


@dataclasses.dataclass
class Failure:
    """An input that could not be processed: ``path`` and the reason (one line)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return self.reason if self.reason.startswith(self.path) else f"{self.path}: {self.reason}"


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def collect_inputs(paths: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None
                   ) -> tuple[list[Path], list[Failure]]:
    """Expands the command-line inputs into image files.

    Folders are searched recursively for ``IMAGE_SUFFIXES`` files (sorted by path), leaving
    out the folder ``exclude`` (the output folder: its drawings are no inputs); a file
    ending in ``LIST_SUFFIXES`` lists one image (or folder) a line, relative to the list's
    folder, blank lines and ``#`` comments ignored; any other file is taken as an image
    (reading it tells whether it is one). A path seen twice is processed once.

    Returns:
      ``(images, failures)``: failures are missing paths, folders without images and
      unreadable or empty list files.
    """
    images: list[Path] = []
    failures: list[Failure] = []
    seen: set[Path] = set()
    skip = Path(exclude).resolve() if exclude is not None else None

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            images.append(p)

    def expand(p: Path, from_list: bool) -> None:
        if p.is_dir():
            found = sorted((f for f in p.rglob("*") if f.is_file() and _is_image_name(f)
                            and not (skip and f.resolve().is_relative_to(skip))),
                           key=lambda f: f.relative_to(p).as_posix())
            if not found:
                failures.append(Failure(str(p), f"{p}: folder contains no images "
                                                f"({', '.join(IMAGE_SUFFIXES)})"))
            for f in found:
                add(f)
        elif p.suffix.lower() in LIST_SUFFIXES and p.is_file() and not from_list:
            try:
                entries = [ln.strip() for ln in p.read_text(encoding="utf-8-sig").splitlines()]
            except (OSError, UnicodeDecodeError) as e:
                failures.append(Failure(str(p), f"{p}: cannot read the image list ({e})"))
                return
            entries = [e for e in entries if e and not e.startswith("#")]
            if not entries:
                failures.append(Failure(str(p), f"{p}: the image list is empty"))
            for e in entries:
                q = Path(e).expanduser()
                expand(q if q.is_absolute() else p.parent / q, True)
        elif p.exists():
            add(p)
        else:
            failures.append(Failure(str(p), f"{p}: no such file or folder"))

    for path in paths:
        expand(Path(path), False)
    return images, failures


def output_names(paths: Sequence[Path]) -> list[str]:
    """Unique output names (without suffix) for the inputs, compared case-insensitively.

    A name is the file's stem; stems that clash get their parent folders in front, as many
    as tell them apart (``a/x.png``, ``b/x.jpg`` -> ``a_x``, ``b_x``), else their suffix
    (``x.png``, ``x.jpg`` -> ``x_png``, ``x_jpg``), else a counter.
    """
    names = [p.stem for p in paths]
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n.casefold(), []).append(i)
    for idx in groups.values():
        if len(idx) == 1:
            continue
        parents = [paths[i].resolve().parent.parts for i in idx]
        for depth in range(1, max(len(p) for p in parents) + 1):
            cand = ["_".join((*p[-depth:], paths[i].stem)).lstrip("/\\") for p, i in
                    zip(parents, idx, strict=True)]
            if len({c.casefold() for c in cand}) == len(cand):
                break
        else:
            cand = [f"{paths[i].stem}_{paths[i].suffix.lstrip('.')}" for i in idx]
        for i, c in zip(idx, cand, strict=True):
            names[i] = c
    taken: set[str] = set()
    for i, n in enumerate(names):  # last resort, also against other stems: a counter
        name, k = n, 1
        while name.casefold() in taken:
            k += 1
            name = f"{n}-{k}"
        taken.add(name.casefold())
        names[i] = name
    return names


# ----------------------------------------------------------------------------- running


@dataclasses.dataclass
class Summary:
    """What a run did: counts, seconds per stage (sums over images) and the failures."""

    images: int = 0
    lines: int = 0
    seconds: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"load": 0.0, "detect": 0.0, "recognise": 0.0, "write": 0.0})
    total_seconds: float = 0.0
    failures: list[Failure] = dataclasses.field(default_factory=list)

    def add(self, load: float, detect: float, recognise: float, write: float,
            lines: int) -> None:
        """Counts one image that was written."""
        self.images += 1
        self.lines += lines
        for key, v in (("load", load), ("detect", detect), ("recognise", recognise),
                       ("write", write)):
            self.seconds[key] += v

    def report(self, out_dir: Path) -> str:
        """A few lines for the terminal."""
        n = max(self.images, 1)
        per = ", ".join(f"{k} {v / n:.3f} s" for k, v in self.seconds.items())
        text = (f"{self.images} image(s) read, {self.lines} line(s), {len(self.failures)} "
                f"failed; results in {out_dir}/\n"
                f"time per image: {per} (total {self.total_seconds:.1f} s; the first image "
                f"includes compiling)")
        if self.failures:
            text += "\nfailed:\n" + "\n".join(f"  {f}" for f in self.failures)
        return text


@dataclasses.dataclass
class _Pending:
    """An image between detection and recognition."""

    path: Path
    name: str
    width: int
    height: int
    preview: np.ndarray | None  # downscaled copy for drawing (None with --no-draw)
    preview_scale: float
    det: Any
    lines: list[np.ndarray]
    load_s: float
    detect_s: float


def _write_outputs(p: _Pending, records: list[dict], out_dir: Path, draw: bool) -> None:
    """Builds all three files in memory, then writes them, each atomically: a failure while
    drawing leaves no file of this image behind."""
    doc = {"image": str(p.path), "width": p.width, "height": p.height, "lines": records}
    payload = {".json": format_document(doc),
               ".txt": "".join(r["text"] + "\n" for r in records)}
    if draw:
        assert p.preview is not None
        scaled = [{**r, "box": [v * p.preview_scale for v in r["box"]]} for r in records]
        payload[".jpg"] = encode_jpeg(draw_results(p.preview, scaled))
    for suffix, data in payload.items():
        target = out_dir / f"{p.name}{suffix}"
        if isinstance(data, str):
            atomic_write_text(target, data)
        else:
            atomic_write_bytes(target, data)


class _Runner:
    """The loop of ``run``: load and detect image after image, recognise the lines of a few
    images together, write each image's files; failures are reported and counted."""

    def __init__(self, ocr: OCR, out_dir: Path, draw: bool, bar: Any, summary: Summary):
        self.ocr, self.out_dir, self.draw, self.bar, self.summary = ocr, out_dir, draw, bar, summary

    def fail(self, path: Path, e: BaseException) -> None:
        reason = str(e) if isinstance(e, ImageError) else f"{type(e).__name__}: {e}"
        self.summary.failures.append(Failure(str(path), reason))
        self.bar.write(f"error: {self.summary.failures[-1]}", file=sys.stderr)

    def prepare(self, path: Path, name: str) -> _Pending | None:
        """Loads, detects and crops one image (None when that fails)."""
        try:
            t0 = time.perf_counter()
            rgb = as_rgb(path)
            t1 = time.perf_counter()
            det = self.ocr.detect(rgb)
            lines = self.ocr.crop_lines(rgb, det.quads)
            t2 = time.perf_counter()
        except Exception as e:  # one bad image must not stop the others
            self.fail(path, e)
            self.bar.update(1)
            return None
        # Only a (downscaled) copy for drawing is kept until the batch is recognised.
        preview, scale = fit_within(rgb, DRAW_MAX_SIDE) if self.draw else (None, 1.0)
        return _Pending(path, name, rgb.shape[1], rgb.shape[0], preview, scale, det, lines,
                        t1 - t0, t2 - t1)

    def flush(self, pending: list[_Pending]) -> None:
        """Recognises the lines of ``pending`` images in shared batches; writes their files."""
        t0 = time.perf_counter()
        try:
            texts = self.ocr.recognize([ln for p in pending for ln in p.lines])
        except Exception as e:  # report it against every image of the batch
            for p in pending:
                self.fail(p.path, e)
                self.bar.update(1)
            return
        rec_s = time.perf_counter() - t0
        total_lines = sum(len(p.lines) for p in pending)
        k = 0
        for p in pending:
            mine = texts[k:k + len(p.lines)]
            k += len(p.lines)
            t1 = time.perf_counter()
            try:
                records = make_records(p.det.quads, p.det.scores, mine, self.ocr.min_text_score)
                _write_outputs(p, records, self.out_dir, self.draw)
            except Exception as e:  # a write error fails this image only
                self.fail(p.path, e)
            else:
                # The shared batches' time is attributed to the images by their lines.
                share = rec_s * (len(p.lines) / total_lines if total_lines else 1 / len(pending))
                self.summary.add(p.load_s, p.detect_s, share, time.perf_counter() - t1,
                                 len(records))
            self.bar.update(1)


def run(inputs: Sequence[str | os.PathLike], ocr: OCR, out_dir: str | os.PathLike = DEFAULT_OUT_DIR,
        draw: bool = True, quiet: bool = False, images_per_batch: int = 8) -> Summary:
    """Reads every input image and writes its ``.json``, ``.txt`` and (``draw``) ``.jpg``.

    An image that fails (unreadable, or an error while processing or writing it) gets one
    line on stderr naming it and the reason; the others are processed all the same. The
    lines of up to ``images_per_batch`` images (or ``4 * batch_size`` lines) are recognised
    together.

    Raises:
      InputError: the inputs hold no image at all.
    """
    from tqdm import tqdm

    t_start = time.perf_counter()
    images, failures = collect_inputs(inputs, exclude=out_dir)
    if not images:
        raise InputError("; ".join(str(f) for f in failures) or "no input paths given")
    summary = Summary(failures=list(failures))
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    bar = tqdm(total=len(images), unit="img", desc="OCR", disable=quiet, file=sys.stderr,
               dynamic_ncols=True)
    runner = _Runner(ocr, Path(out_dir), draw, bar, summary)
    try:
        pending: list[_Pending] = []
        for path, name in zip(images, output_names(images), strict=True):
            item = runner.prepare(path, name)
            if item is not None:
                pending.append(item)
            if pending and (len(pending) >= images_per_batch
                            or sum(len(p.lines) for p in pending) >= 4 * ocr.batch_size):
                runner.flush(pending)
                pending = []
        if pending:
            runner.flush(pending)
    finally:  # also on Ctrl-C: leave the terminal tidy
        bar.close()
    summary.total_seconds = time.perf_counter() - t_start
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="infer.py", description="Detect and read the text lines of images (Chinese OCR).",
        epilog=f"Writes <name>.json, <name>.txt and <name>.jpg per image. Environment: "
               f"{CACHE_ENV}=DIR|off sets the JAX compilation cache (default "
               f"~/.cache/chinese-ocr-jax/jax).")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image files, folders (searched recursively) or .txt files listing "
                        "images, one a line")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR,
                   help="output folder (default: %(default)s)")
    p.add_argument("--weights-det", type=Path, default=DEFAULT_DET_WEIGHTS,
                   help="exported CTPN weights (default: weights/ctpn.npz of the repository)")
    p.add_argument("--weights-rec", type=Path, default=DEFAULT_REC_WEIGHTS,
                   help="exported DenseNet weights (default: weights/densenet.npz)")
    p.add_argument("--mode", choices=("H", "O"), default="H",
                   help="boxes: H = horizontal, O = oriented (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="most lines per recognition batch (default: %(default)s)")
    p.add_argument("--min-text-score", type=float, default=DEFAULT_MIN_TEXT_SCORE,
                   help="drop lines read as empty or with a lower mean character confidence, "
                        "0..1; a negative value keeps every detected line "
                        "(default: %(default)s)")
    p.add_argument("--crop-margin", type=float, default=DEFAULT_CROP_MARGIN,
                   help="crop each detected line this many line heights wider at both ends "
                        "before reading it (default: %(default)s)")
    p.add_argument("--reread-scales", metavar="F[,F...]",
                   help="read dense lines (condensed Latin type) again stretched by these "
                        "factors and keep the more confident reading; 'none' reads every line "
                        "once (default: the recogniser's, 1.25,1.5)")
    p.add_argument("--device", choices=("cpu", "gpu"),
                   help="JAX platform (default: a GPU if JAX has one, else the CPU)")
    p.add_argument("--no-draw", action="store_true", help="do not write the annotated .jpg")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    if not 0.0 <= args.crop_margin <= MAX_CROP_MARGIN:
        p.error(f"--crop-margin must be between 0 and {MAX_CROP_MARGIN:g} line heights")
    if args.reread_scales is not None:
        from densenet_jax.recognizer import parse_reread_scales

        try:
            args.reread_scales = parse_reread_scales(args.reread_scales)
        except ValueError as e:
            p.error(f"--reread-scales: {e}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Returns the exit status: 0 all images read, 1 some failed, 2 nothing
    could be done (no images, missing weights, no such device)."""
    args = parse_args(argv)
    t0 = time.perf_counter()
    images, failures = collect_inputs(args.paths, exclude=args.out)
    if not images:  # say so before loading any model
        print(f"error: {'; '.join(str(f) for f in failures)}", file=sys.stderr)
        return 2
    try:
        if args.device:
            select_device(args.device)
        ocr = OCR(args.weights_det, args.weights_rec, mode=args.mode, batch_size=args.batch_size,
                  min_text_score=None if args.min_text_score < 0 else args.min_text_score,
                  crop_margin=args.crop_margin,
                  recognizer_options=None if args.reread_scales is None
                  else {"reread_scales": args.reread_scales})
    except (WeightsError, DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    load_s = time.perf_counter() - t0
    try:
        summary = run(args.paths, ocr, args.out, draw=not args.no_draw, quiet=args.quiet)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(summary.report(args.out) + f"\nmodel loading: {load_s:.1f} s", file=sys.stderr)
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
