"""Exported weight files: one float16 `.npz` holding the variables and a JSON metadata record.

Layout: one array per variable, keyed by its path (`params/Conv_0/kernel`), stored as
float16, plus `__meta__`, a UTF-8 JSON document as a uint8 array (what model, its config,
for the recogniser the charset and blank id, training step, ...). The file loads with numpy
alone and needs no run directory.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from flax import traverse_util

FORMAT_VERSION = 1
_META_KEY = "__meta__"


class WeightsError(ValueError):
    """A weights file that is missing, unreadable or for another model."""


def save_weights(path: str | os.PathLike, variables: dict, meta: dict[str, Any]) -> Path:
    """Writes `variables` (nested dict of arrays) as float16 with `meta`, atomically.

    Returns:
      The path written.
    """
    from ocr_common.io import atomic_write_bytes

    flat = traverse_util.flatten_dict(variables, sep="/")
    with np.errstate(over="ignore"):  # overflow is reported below, with the variable's name
        arrays = {k: np.asarray(v, dtype=np.float16) for k, v in flat.items()}
    for k, v in flat.items():
        if np.isfinite(np.asarray(v, np.float32)).all() and not np.isfinite(arrays[k]).all():
            raise WeightsError(f"{k}: values overflow float16 (max |x| = {np.abs(v).max()})")
    meta = {"format_version": FORMAT_VERSION, **meta}
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_weights(
    path: str | os.PathLike, expect_model: str | None = None, dtype: Any = np.float32
) -> tuple[dict, dict[str, Any]]:
    """Reads a weights file written by `save_weights`.

    Args:
      path: the `.npz` file.
      expect_model: if given, the `meta["model"]` the file must hold.
      dtype: dtype of the returned arrays.

    Returns:
      `(variables, meta)`: a nested dict of numpy arrays and the metadata dict.

    Raises:
      WeightsError: missing file, not a weights file, or a file for another model.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _META_KEY not in data.files:
                raise WeightsError(
                    f"{path}: not a chinese-ocr-jax weights file (no {_META_KEY} record)"
                )
            meta = json.loads(data[_META_KEY].tobytes().decode())
            flat = {k: data[k].astype(dtype) for k in data.files if k != _META_KEY}
    except WeightsError:
        raise
    except Exception as e:  # zip/npy/json errors all mean the same thing to the user
        raise WeightsError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from e
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise WeightsError(
            f"{path}: format version {meta['format_version']} is newer than "
            f"this code supports ({FORMAT_VERSION}); upgrade chinese-ocr-jax"
        )
    if expect_model is not None and meta.get("model") != expect_model:
        raise WeightsError(
            f"{path}: holds weights for model {meta.get('model')!r}, expected {expect_model!r}"
        )
    return traverse_util.unflatten_dict(flat, sep="/"), meta


def interpolate_weights(
    start: str | os.PathLike, end: str | os.PathLike, t: float
) -> tuple[dict, dict[str, Any]]:
    """`(1 - t) * start + t * end`, variable by variable, of two weights files of one model
    and architecture (e.g. a fine-tune and the file it started from: the mean of the two
    keeps much of what a fine-tune gains while undoing some of what it costs elsewhere).

    Returns:
      `(variables, meta)`: float32 variables, and `end`'s metadata with the mix recorded
      under "interpolated".

    Raises:
      WeightsError: unreadable files, other models, or different variables or shapes.
    """
    if not 0.0 <= t <= 1.0:
        raise WeightsError(f"t must be in [0, 1], got {t}")
    (va, ma), (vb, mb) = load_weights(start), load_weights(end)
    if ma.get("model") != mb.get("model"):
        raise WeightsError(
            f"{start} holds {ma.get('model')!r} weights, {end} {mb.get('model')!r} ones"
        )
    fa, fb = traverse_util.flatten_dict(va, sep="/"), traverse_util.flatten_dict(vb, sep="/")
    differ = sorted(set(fa) ^ set(fb)) or [k for k in fa if fa[k].shape != fb[k].shape]
    if differ:
        raise WeightsError(f"{start} and {end} differ in variables or shapes: {differ[:5]}")
    mixed = {k: (1.0 - t) * fa[k] + t * fb[k] for k in fa}
    meta = {**mb, "interpolated": {"start": str(start), "end": str(end), "t": t}}
    return traverse_util.unflatten_dict(mixed, sep="/"), meta


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        description="Write (1 - t) * START + t * END of two weights files of one model "
        "(float16, END's metadata, calibration included)."
    )
    p.add_argument("start", type=Path)
    p.add_argument("end", type=Path)
    p.add_argument("--t", type=float, default=0.5, help="weight of END (default 0.5)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        variables, meta = interpolate_weights(args.start, args.end, args.t)
        save_weights(args.out, variables, meta)
    except WeightsError as e:
        p.exit(2, f"error: {e}\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
