"""Text detection on whole images: resize, pad to a bucket, run CTPN, build text lines.

``TextDetector(model, variables)(image)`` returns the text lines of an ``(H, W, 3) uint8`` RGB
image as quadrilaterals in the image's own pixels.  Weights exported by training load with
``TextDetector.from_weights(path)``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ctpn_jax.anchors import ANCHOR_HEIGHTS, FEATURE_STRIDE
from ctpn_jax.data.pipeline import bucket_size, pad_to, resize_image
from ctpn_jax.model import CTPN, PIXEL_MEAN, PIXEL_STD, CTPNConfig
from ctpn_jax.postprocess import PostprocessConfig, detect_text_lines

MODEL_NAME = "ctpn"


def export_detector(path: str | os.PathLike, config: CTPNConfig, variables: dict,
                    **extra: Any) -> Path:
    """Write ``variables`` with the architecture and preprocessing facts as float16 ``.npz``."""
    from ocr_common.weights import save_weights

    meta = {"model": MODEL_NAME, "config": config.to_dict(), "pixel_mean": list(PIXEL_MEAN),
            "pixel_std": list(PIXEL_STD), "input": "RGB 0..255", "stride": FEATURE_STRIDE,
            "anchor_heights": list(ANCHOR_HEIGHTS), **extra}
    return save_weights(path, jax.device_get(variables), meta)


def load_detector(path: str | os.PathLike) -> tuple[CTPNConfig, dict, dict]:
    """``(config, variables, meta)`` of an exported detector.

    Raises:
        ocr_common.weights.WeightsError: missing file, another model or bad metadata.
    """
    from ocr_common.weights import WeightsError, load_weights

    variables, meta = load_weights(path, expect_model=MODEL_NAME)
    try:
        config = CTPNConfig.from_dict(meta["config"])
    except (KeyError, TypeError) as e:
        raise WeightsError(f"{path}: incomplete metadata ({e})") from e
    if tuple(meta.get("anchor_heights", ANCHOR_HEIGHTS)) != tuple(ANCHOR_HEIGHTS):
        raise WeightsError(f"{path}: trained with other anchor heights {meta['anchor_heights']}")
    return config, variables, meta


def postprocess_from_meta(meta: dict[str, Any]) -> PostprocessConfig:
    """The ``PostprocessConfig`` a weights file records (defaults for fields it lacks)."""
    known = {f.name for f in dataclasses.fields(PostprocessConfig)}
    return PostprocessConfig(**{k: v for k, v in (meta.get("postprocess") or {}).items()
                                if k in known})


def default_buckets(short_side: int, long_side: int) -> tuple[int, int, int]:
    """Three padding sizes per side for a test-time resize: the short side, the middle and
    the long side, each rounded up to the feature stride (900 / 1500: 912, 1200, 1504)."""
    def up(n: float) -> int:
        return -(-int(round(n)) // FEATURE_STRIDE) * FEATURE_STRIDE

    return up(short_side), up((short_side + long_side) / 2), up(long_side)


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
    """

    def __init__(self, model: CTPN, variables: dict, post: PostprocessConfig | None = None,
                 short_side: int = 900, long_side: int = 1500,
                 bucket_sizes: Sequence[int] = (912, 1200, 1504)):
        self.model = model
        self.variables = jax.tree.map(jnp.asarray, variables)
        self.post = post or PostprocessConfig()
        self.short_side, self.long_side = short_side, long_side
        self.bucket_sizes = tuple(bucket_sizes)

        def forward(v, images, valid_width):
            return model.apply(v, images, valid_width=valid_width)

        self._forward = jax.jit(forward)
        self._shapes: set[tuple[int, int]] = set()
        self._last_compiled = False

    @classmethod
    def from_weights(cls, path: str | os.PathLike,
                     post: PostprocessConfig | dict[str, Any] | None = None,
                     **kwargs: Any) -> TextDetector:
        """A detector from an exported weights file (``export_detector``).

        The test-time resize and the post-processing default to the ones the file records
        (its training run's, or a calibration's: ``python -m ctpn_jax.calibrate``).  ``post``
        replaces them (a ``PostprocessConfig``) or overrides some fields (a dict, e.g.
        ``{"mode": "O"}``); ``kwargs`` (``short_side``, ``long_side``, ``bucket_sizes``)
        override the resize.
        """
        config, variables, meta = load_detector(path)
        if not isinstance(post, PostprocessConfig):
            post = dataclasses.replace(postprocess_from_meta(meta), **(post or {}))
        scale = meta.get("test_scale") or {}
        short = int(kwargs.pop("short_side", scale.get("short_side", 900)))
        long = int(kwargs.pop("long_side", scale.get("long_side", 1500)))
        kwargs.setdefault("bucket_sizes", default_buckets(short, long))
        return cls(CTPN.from_config(config), variables, post, short, long, **kwargs)

    def network_outputs(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], tuple[int, int],
                                                          tuple[float, float]]:
        """Raw outputs for one image.

        Returns:
            the outputs of the first batch entry (``cls_logits (Hf, Wf, K, 2)``, ...), the
            content ``(h, w)`` after resizing, and the ``(scale_y, scale_x)`` used.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        resized, scale = resize_image(image.astype(np.uint8), self.short_side, self.long_side)
        h, w = resized.shape[:2]
        hb, wb = bucket_size(h, self.bucket_sizes), bucket_size(w, self.bucket_sizes)
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
        quads, scores = self.lines_from_outputs(*self.network_outputs(image))
        return Detection(quads, scores, time.perf_counter() - t0, self._last_compiled)

    def lines_from_outputs(self, out: dict[str, np.ndarray], hw: tuple[int, int],
                           scale: tuple[float, float], post: PostprocessConfig | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Text lines from ``network_outputs``' results, in the input image's pixels:
        ``quads (L, 4, 2) float32``, ``scores (L,)``.  ``post`` replaces ``self.post`` (so
        several settings can reuse one forward pass)."""
        quads, scores = detect_text_lines(out["cls_logits"], out["vertical"], out["side"], hw,
                                          post or self.post)
        sy, sx = scale
        return (quads / np.asarray([sx, sy], np.float32)).astype(np.float32), scores
