"""Export and load of trained detector weights (one float16 file, no run directory needed),
and the weights shipped inside the package."""

from __future__ import annotations

import dataclasses
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jax

from ctpn_jax.anchors import ANCHOR_HEIGHTS, FEATURE_STRIDE
from ctpn_jax.model import PIXEL_MEAN, PIXEL_STD, CTPNConfig
from ctpn_jax.postprocess import PostprocessConfig
from ocr_common.weights import WeightsError, load_weights, save_weights

MODEL_NAME = "ctpn"


def export_detector(
    path: str | os.PathLike, config: CTPNConfig, variables: dict, **extra: Any
) -> Path:
    """Write ``variables`` with the architecture and preprocessing facts as float16 ``.npz``."""
    meta = {
        "model": MODEL_NAME,
        "config": config.to_dict(),
        "pixel_mean": list(PIXEL_MEAN),
        "pixel_std": list(PIXEL_STD),
        "input": "RGB 0..255",
        "stride": FEATURE_STRIDE,
        "anchor_heights": list(ANCHOR_HEIGHTS),
        **extra,
    }
    return save_weights(path, jax.device_get(variables), meta)


def load_detector(path: str | os.PathLike) -> tuple[CTPNConfig, dict, dict]:
    """``(config, variables, meta)`` of an exported detector.

    Raises:
        ocr_common.weights.WeightsError: missing file, another model or bad metadata.
    """
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
    return PostprocessConfig(
        **{k: v for k, v in (meta.get("postprocess") or {}).items() if k in known}
    )


def shipped_weights() -> Path:
    """The trained detector that comes with the package (``ctpn_jax/assets/ctpn.npz``)."""
    return Path(str(resources.files("ctpn_jax") / "assets" / "ctpn.npz"))
