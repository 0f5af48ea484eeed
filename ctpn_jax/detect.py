"""Text detection on whole images: resize, pad to a bucket, run CTPN, build text lines.

``TextDetector(model, variables)(image)`` returns the text lines of an ``(H, W, 3) uint8`` RGB
image as quadrilaterals in the image's own pixels.  Weights exported by training load with
``TextDetector.from_weights(path)``.

Large text: CTPN's tallest anchor is 283 px, and lettering near or past it (a sign filling a
photo) is found in pieces or not at all at the main test scale.  With ``coarse_scale`` set
(e.g. 0.5: half the main resize, a quarter of the pixels), a second pass runs at that scale,
and its lines that would stand at least ``coarse_min_height`` px tall at the main scale replace
the main pass's lines they cover (``merge_coarse_lines``).  The coarse pass runs only where the
main pass hints at such text: at least ``coarse_min_proposals`` of its confident proposals
(those the line builder would use) stand ``coarse_min_height`` px tall (``tall_proposals``).
Elsewhere its lines would all be too short to be kept; an image that skips it saves about a
fifth of its detection time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ctpn_jax.anchors import FEATURE_STRIDE
from ctpn_jax.model import CTPN
from ctpn_jax.postprocess import (
    PostprocessConfig,
    bounding_boxes,
    covered_fraction,
    decode_proposals,
    detect_text_lines,
)
from ctpn_jax.preprocess import bucket_size, pad_to, resize_image
from ctpn_jax.weights import load_detector, postprocess_from_meta
from ocr_common.exported import ExportedJit

#: The main pass's confident proposals at least ``coarse_min_height`` tall that it takes to run
#: the coarse pass. Chosen on 160 held-out rendered pages (seeds 114 and 115,
#: ``bench/coarse_gate.py``): at 40 the coarse pass runs on 104 of them, and detection matches
#: running it everywhere (1,814 true positives either way, 129 false positives against 128).
COARSE_MIN_PROPOSALS = 40


def tall_proposals(
    out: dict[str, np.ndarray], hw: tuple[int, int], min_height: float, score_threshold: float
) -> int:
    """How many proposals of one image's network outputs score above ``score_threshold`` and
    stand at least ``min_height`` tall (decoded, in the pixels the network saw) with their
    anchor centre inside the ``hw = (h, w)`` content."""
    boxes, scores, _ = decode_proposals(out["cls_logits"], out["vertical"], out["side"])
    hf, wf = scores.shape[:2]
    centre = (np.arange(max(hf, wf)) + 0.5) * FEATURE_STRIDE
    inside = (centre[:hf, None, None] < hw[0]) & (centre[None, :wf, None] < hw[1])
    tall = boxes[..., 3] - boxes[..., 1] >= min_height
    return int(np.count_nonzero(inside & tall & (scores > score_threshold)))


def coarse_pass_runs(
    out: dict[str, np.ndarray],
    hw: tuple[int, int],
    min_height: float,
    score_threshold: float,
    min_proposals: int,
) -> bool:
    """Whether the coarse pass runs after a main pass whose network outputs are ``out`` and
    ``hw``: always for ``min_proposals`` 0, else when at least that many ``tall_proposals``."""
    return not min_proposals or (
        tall_proposals(out, hw, min_height, score_threshold) >= min_proposals
    )


def default_buckets(short_side: int, long_side: int) -> tuple[int, int, int]:
    """Three padding sizes per side for a test-time resize: the short side, the middle and
    the long side, each rounded up to the feature stride (900 / 1500: 912, 1200, 1504)."""

    def up(n: float) -> int:
        return -(-int(round(n)) // FEATURE_STRIDE) * FEATURE_STRIDE

    return up(short_side), up((short_side + long_side) / 2), up(long_side)


def merge_coarse_lines(
    fine_quads: np.ndarray,
    fine_scores: np.ndarray,
    coarse_quads: np.ndarray,
    coarse_scores: np.ndarray,
    min_height: float,
    cover: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Lines of a main ("fine") and a coarse pass, both in the same (input) pixels.

    A coarse line at least ``min_height`` tall is kept, and every fine line whose box lies
    inside the box of a kept coarse line for more than ``cover`` of its area is dropped (the
    fine pass splits or misplaces large text); shorter coarse lines are dropped (the fine
    pass reads small text better).

    Args:
        fine_quads, coarse_quads: ``(L, 4, 2) float32``; fine_scores, coarse_scores: ``(L,)``.
        min_height: the coarse lines' height threshold, in the same pixels.
        cover: fraction of a fine line's area that a kept coarse line must cover to drop it.

    Returns:
        ``quads (L, 4, 2) float32`` and ``scores (L,) float32``, best first.
    """
    cb = bounding_boxes(coarse_quads)
    big = (cb[:, 3] - cb[:, 1]) >= min_height
    cq, cs = coarse_quads[big], coarse_scores[big]
    keep = ~np.any(covered_fraction(bounding_boxes(fine_quads), cb[big]) > cover, axis=1)
    quads = np.concatenate([fine_quads[keep], cq]).astype(np.float32).reshape(-1, 4, 2)
    scores = np.concatenate([fine_scores[keep], cs]).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    return quads[order], scores[order]


@dataclasses.dataclass
class Detection:
    """Text lines of one image: ``quads (L, 4, 2) float32`` clockwise from top-left in the
    input image's pixels, ``scores (L,) float32``, the time spent (seconds) and whether it
    included compiling the network."""

    quads: np.ndarray
    scores: np.ndarray
    seconds: float = 0.0
    compiled: bool = False  # True when this call compiled the network for a new shape


class TextDetector:
    """CTPN plus post-processing for single images.

    Args:
        model: the network.
        variables: its variables (``{"params": ...}``).
        post: post-processing settings (mode "H" or "O", thresholds).
        short_side, long_side: the test-time resize (the original's 900 / 1500).
        bucket_sizes: padding sizes per side, so that few shapes are compiled.
        coarse_scale: resize of a second pass for large text, relative to the main one
            (0 = none; e.g. 0.5 = shorter side ``short_side / 2``).
        coarse_min_height: the second pass's lines at least this tall, in pixels of the
            main scale, replace the main pass's lines they cover (``merge_coarse_lines``).
        coarse_min_proposals: run the second pass only when the main one has at least this
            many confident proposals ``coarse_min_height`` tall (``tall_proposals``; 0: on
            every image).
        max_upscale: most enlargement of a small image (both passes; the coarse one at most
            ``max_upscale * coarse_scale``). Infinite: always resize to ``short_side``.
    """

    def __init__(
        self,
        model: CTPN,
        variables: dict,
        post: PostprocessConfig | None = None,
        short_side: int = 900,
        long_side: int = 1500,
        bucket_sizes: Sequence[int] = (912, 1200, 1504),
        coarse_scale: float = 0.0,
        coarse_min_height: float = 120.0,
        max_upscale: float = np.inf,
        coarse_min_proposals: int = COARSE_MIN_PROPOSALS,
    ):
        if not 0.0 <= coarse_scale < 1.0:
            raise ValueError(f"coarse_scale must be 0 (off) or in (0, 1), got {coarse_scale}")
        self.model = model
        self.variables = jax.device_put(variables)
        self.post = post or PostprocessConfig()
        self.short_side, self.long_side = short_side, long_side
        self.bucket_sizes = tuple(bucket_sizes)
        self.coarse_scale, self.coarse_min_height = float(coarse_scale), float(coarse_min_height)
        if coarse_min_proposals < 0:
            raise ValueError(f"coarse_min_proposals must be >= 0, got {coarse_min_proposals}")
        self.coarse_min_proposals = int(coarse_min_proposals)
        if not max_upscale > 0:
            raise ValueError(f"max_upscale must be positive, got {max_upscale}")
        self.max_upscale = float(max_upscale)
        self.coarse_side = round(short_side * coarse_scale)
        self.coarse_long_side = round(long_side * coarse_scale)
        self.coarse_buckets = (
            default_buckets(self.coarse_side, self.coarse_long_side) if coarse_scale else ()
        )

        def forward(v, images, valid_width):
            return model.apply(v, images, valid_width=valid_width)

        self._forward = ExportedJit(jax.jit(forward), f"ctpn_jax forward {model!r}")
        self._shapes: set[tuple[int, int]] = set()
        self._last_compiled = False

    @classmethod
    def from_weights(
        cls,
        path: str | os.PathLike,
        post: PostprocessConfig | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TextDetector:
        """A detector from an exported weights file (``export_detector``).

        The test-time resize and the post-processing default to the ones the file records
        (its training run's, or a calibration's: ``python -m ctpn_jax.calibrate``).  ``post``
        replaces them (a ``PostprocessConfig``) or overrides some fields (a dict, e.g.
        ``{"mode": "O"}``); ``kwargs`` (``short_side``, ``long_side``, ``bucket_sizes``,
        ``coarse_scale``, ``coarse_min_height``, ``coarse_min_proposals``) override the
        resize.
        """
        config, variables, meta = load_detector(path)
        if not isinstance(post, PostprocessConfig):
            post = dataclasses.replace(postprocess_from_meta(meta), **(post or {}))
        scale = meta.get("test_scale") or {}
        short = int(kwargs.pop("short_side", scale.get("short_side", 900)))
        long = int(kwargs.pop("long_side", scale.get("long_side", 1500)))
        kwargs.setdefault("bucket_sizes", default_buckets(short, long))
        for key in ("coarse_scale", "coarse_min_height", "coarse_min_proposals"):
            if key in scale:
                kwargs.setdefault(key, scale[key])
        return cls(CTPN.from_config(config), variables, post, short, long, **kwargs)

    def network_outputs(
        self, image: np.ndarray, coarse: bool = False
    ) -> tuple[dict[str, np.ndarray], tuple[int, int], tuple[float, float]]:
        """Raw outputs for one image, at the main test scale or (``coarse``) the coarse one.

        Returns:
            the outputs of the first batch entry (``cls_logits (Hf, Wf, K, 2)``, ...), the
            content ``(h, w)`` after resizing, and the ``(scale_y, scale_x)`` used.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        if coarse and not self.coarse_scale:
            raise ValueError("this detector has no coarse pass (coarse_scale=0)")
        short, long, buckets, most = (
            (
                self.coarse_side,
                self.coarse_long_side,
                self.coarse_buckets,
                self.max_upscale * self.coarse_scale,
            )
            if coarse
            else (self.short_side, self.long_side, self.bucket_sizes, self.max_upscale)
        )
        resized, scale = resize_image(image.astype(np.uint8), short, long, most)
        h, w = resized.shape[:2]
        hb, wb = bucket_size(h, buckets), bucket_size(w, buckets)
        batch = pad_to(resized, hb, wb)[None]
        vw = np.asarray([-(-w // FEATURE_STRIDE)], np.int32)
        self._last_compiled = (hb, wb) not in self._shapes
        self._shapes.add((hb, wb))
        out = self._forward(self.variables, batch, vw)
        return {k: np.asarray(v[0]) for k, v in out.items()}, (h, w), scale

    def __call__(self, image: np.ndarray) -> Detection:
        """Text lines of an ``(H, W, 3) uint8`` RGB image."""
        import time

        t0 = time.perf_counter()
        fine = self.network_outputs(image)
        compiled = self._last_compiled
        quads, scores = self.lines_from_outputs(*fine)
        if self.wants_coarse(*fine[:2]):
            coarse = self.network_outputs(image, coarse=True)
            compiled |= self._last_compiled
            quads, scores = self.merge_coarse(
                quads, scores, *self.lines_from_outputs(*coarse), fine[2]
            )
        return Detection(quads, scores, time.perf_counter() - t0, compiled)

    def wants_coarse(self, out: dict[str, np.ndarray], hw: tuple[int, int]) -> bool:
        """Whether the coarse pass should run after a main pass whose ``network_outputs``
        gave ``out`` and ``hw``: it exists and the main pass has ``coarse_min_proposals``
        tall confident proposals."""
        return bool(self.coarse_scale) and coarse_pass_runs(
            out, hw, self.coarse_min_height, self.post.score_threshold, self.coarse_min_proposals
        )

    def merge_coarse(
        self,
        quads: np.ndarray,
        scores: np.ndarray,
        coarse_quads: np.ndarray,
        coarse_scores: np.ndarray,
        fine_scale: tuple[float, float],
        min_height: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``merge_coarse_lines`` with the height threshold (``self.coarse_min_height`` or
        ``min_height``, in main-scale pixels) taken to input pixels by the main pass's
        ``fine_scale``."""
        h = self.coarse_min_height if min_height is None else min_height
        return merge_coarse_lines(quads, scores, coarse_quads, coarse_scores, h / fine_scale[0])

    def lines_from_outputs(
        self,
        out: dict[str, np.ndarray],
        hw: tuple[int, int],
        scale: tuple[float, float],
        post: PostprocessConfig | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Text lines from ``network_outputs``' results, in the input image's pixels:
        ``quads (L, 4, 2) float32``, ``scores (L,)``.  ``post`` replaces ``self.post`` (so
        several settings can reuse one forward pass)."""
        quads, scores = detect_text_lines(
            out["cls_logits"], out["vertical"], out["side"], hw, post or self.post
        )
        sy, sx = scale
        return (quads / np.asarray([sx, sy], np.float32)).astype(np.float32), scores
