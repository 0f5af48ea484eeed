"""Export and load of trained recogniser weights (one float16 file, no run directory needed)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import jax

from densenet_jax.charset import BLANK_ID, Charset
from densenet_jax.model import DenseNet
from ocr_common.weights import WeightsError, load_weights, save_weights

MODEL_NAME = "densenet"


def model_config(model: DenseNet) -> dict[str, Any]:
    """The architecture of `model` as plain data: the `config` entry of the metadata, from
    which `DenseNet(**config)` rebuilds it (`DenseNet.architecture`)."""
    return model.architecture()


def export_recognizer(
    path: str | os.PathLike, model: DenseNet, variables: dict, charset: Charset, **extra: Any
) -> Path:
    """Writes `variables` of `model` with its config, charset and blank id as float16."""
    if model.num_classes != charset.num_classes:
        raise ValueError(f"model has {model.num_classes} classes, charset {charset.num_classes}")
    meta = {
        "model": MODEL_NAME,
        "config": model_config(model),
        "charset": list(charset.lines),
        "charset_sha256": charset.sha256,
        "blank_id": BLANK_ID,
        "input_height": 32,
        "input_scaling": "x/255-0.5",
        **extra,
    }
    return save_weights(path, jax.device_get(variables), meta)


def load_recognizer(path: str | os.PathLike) -> tuple[DenseNet, dict, Charset, dict]:
    """Loads an exported recogniser: `(model, variables, charset, meta)`.

    Raises:
      WeightsError: missing file, another model, or a config/charset that does not match the
        stored arrays.
    """
    variables, meta = load_weights(path, expect_model=MODEL_NAME)
    if meta.get("blank_id", BLANK_ID) != BLANK_ID:
        raise WeightsError(f"{path}: blank id {meta['blank_id']}, this code expects {BLANK_ID}")
    try:
        charset = Charset(tuple(meta["charset"]))
        model = DenseNet(**meta["config"])
    except (KeyError, TypeError) as e:
        raise WeightsError(f"{path}: incomplete metadata ({e})") from e
    if model.num_classes != charset.num_classes:
        raise WeightsError(
            f"{path}: config has {model.num_classes} classes but the charset {charset.num_classes}"
        )
    out_kernel = variables.get("params", {}).get("out", {}).get("kernel")
    if out_kernel is None or out_kernel.shape[-1] != model.num_classes:
        raise WeightsError(f"{path}: output layer does not have {model.num_classes} classes")
    return model, variables, charset, meta


def shipped_weights() -> Path:
    """The trained recogniser that comes with the package (``densenet_jax/assets/densenet.npz``)."""
    return Path(str(resources.files("densenet_jax") / "assets" / "densenet.npz"))
