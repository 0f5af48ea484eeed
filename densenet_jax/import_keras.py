"""Import the original chinese_ocr recogniser weights (Keras 2 HDF5, `weights_densenet.h5`).

    python -m densenet_jax.import_keras weights_densenet.h5 --out weights/original.npz
    python -m densenet_jax.import_keras my.h5 --charset my_chars.txt --out my.npz

Needs `h5py` (`pip install 'chinese-ocr-jax[import]'`).

A Keras 2 weights file (`model.save_weights`, or `model.save` with the same tree under
`model_weights`) lists its layers in the root attribute `layer_names`, in model order. Group
`<layer>` lists its weights in the attribute `weight_names` (`conv2d_3/kernel:0`, ...), each
the path of a dataset inside the group. Layer names are Keras auto-names (`conv2d_1`,
`batch_normalization_1`, ...) whose numbering depends on the session that built the model,
so layers are matched by position instead: the sequence of layers that hold weights, with
their kinds and shapes, must be the original network's (see `densenet_jax.model`):

  conv (kernel), then per dense layer [batchnorm, conv (kernel, bias)], per transition
  [batchnorm, conv (kernel)], then the final batchnorm and the dense `out` layer.

Weightless layers (input, activations, concatenations, pooling, the training model's CTC
layers) are skipped. Kernels keep their layout (Keras and Flax both use `(kh, kw, in, out)`
and `(in, out)`); BatchNorm `gamma`/`beta` become `scale`/`bias`, `moving_mean`/
`moving_variance` the batch statistics `mean`/`var`.

Class order: the original's output class j is line j + 1 of the character file and its CTC
blank is the last class; ours has the blank at class 0 and line k at class k. The output
layer's columns are rotated by one accordingly (`original_to_our_classes`).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from densenet_jax.charset import Charset
from densenet_jax.model import DenseNet
from densenet_jax.weights import export_recognizer
from ocr_common.weights import WeightsError

# Keras weight name -> (our collection, our variable name), per layer kind.
_KERAS_TO_OURS: dict[str, dict[str, tuple[str, str]]] = {
    "conv": {"kernel": ("params", "kernel"), "bias": ("params", "bias")},
    "batchnorm": {
        "gamma": ("params", "scale"),
        "beta": ("params", "bias"),
        "moving_mean": ("batch_stats", "mean"),
        "moving_variance": ("batch_stats", "var"),
    },
    "dense": {"kernel": ("params", "kernel"), "bias": ("params", "bias")},
}


class KerasImportError(WeightsError):
    """A Keras weights file that cannot be read or is not the expected network."""


@dataclass(frozen=True)
class KerasLayer:
    """One weight-bearing layer of a Keras file.

    Attributes:
      name: the layer's name in the file (e.g. `conv2d_3`).
      weights: short weight name (`kernel`, `gamma`, ...) -> float32 array, in file order.
    """

    name: str
    weights: dict[str, np.ndarray]

    def describe(self) -> str:
        """`kernel (3, 3, 72, 8), bias (8,)`."""
        return ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.weights.items())


@dataclass(frozen=True)
class Slot:
    """One weight-bearing layer of our network, in the original's layer order.

    Attributes:
      kind: "conv", "batchnorm" or "dense".
      path: our module path (`("DenseBlock_1", "Conv_3")`).
      role: where it sits, in words (for error messages).
      shapes: Keras weight name -> expected shape.
    """

    kind: str
    path: tuple[str, ...]
    role: str
    shapes: dict[str, tuple[int, ...]]

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.shapes.items())
        return f"{self.kind} ({parts}) [{self.role}]"


def _h5py():
    try:
        import h5py
    except ImportError as e:
        raise ImportError(
            "reading Keras .h5 files needs h5py: pip install "
            "'chinese-ocr-jax[import]' (or pip install h5py)"
        ) from e
    return h5py


def _str_list(attrs: Any, name: str) -> list[str] | None:
    """A list-of-strings attribute, also when Keras split it into `name0`, `name1`, ..."""
    if name in attrs:
        values = list(attrs[name])
    elif f"{name}0" in attrs:
        values, i = [], 0
        while f"{name}{i}" in attrs:
            values += list(attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _short_name(weight_name: str) -> tuple[str, str]:
    """`'block/conv2d_3/kernel:0'` -> `('block/conv2d_3', 'kernel')`."""
    prefix, _, last = weight_name.rpartition("/")
    return prefix, last.split(":")[0]


def read_keras_h5(path: str | os.PathLike) -> list[KerasLayer]:
    """The weight-bearing layers of a Keras 2 HDF5 weights file, in model order.

    Weights are grouped by the layer prefix of their names, so a model nested as one layer
    of another (its group then holds all its layers' weights) reads the same as a flat one.

    Raises:
      KerasImportError: missing file, not HDF5, or not the Keras 2 layout.
      ImportError: h5py is not installed.
    """
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise KerasImportError(f"Keras weights file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise KerasImportError(f"{path}: not an HDF5 file ({e})") from e
    with f:
        root = f["model_weights"] if "model_weights" in f else f  # whole-model files
        layer_names = _str_list(root.attrs, "layer_names")
        if layer_names is None:
            raise KerasImportError(
                f"{path}: no 'layer_names' attribute, so not a Keras 2 HDF5 weights file "
                "(Keras 3 '.weights.h5' files have another layout and are not supported)"
            )
        layers: list[KerasLayer] = []
        for layer_name in layer_names:
            if layer_name not in root:
                raise KerasImportError(f"{path}: layer '{layer_name}' is listed but has no group")
            group = root[layer_name]
            for weight_name in _str_list(group.attrs, "weight_names") or []:
                prefix, short = _short_name(weight_name)
                if weight_name not in group:
                    raise KerasImportError(
                        f"{path}: layer '{layer_name}' lists weight "
                        f"'{weight_name}' but has no such dataset"
                    )
                array = np.asarray(group[weight_name], dtype=np.float32)
                name = prefix or layer_name
                if not layers or layers[-1].name != name or short in layers[-1].weights:
                    layers.append(KerasLayer(name, {}))
                layers[-1].weights[short] = array
    return layers


def expected_layers(model: DenseNet) -> list[Slot]:
    """Our network's weight-bearing layers in the original Keras layer order, with shapes."""
    order: list[tuple[str, tuple[str, ...], str]] = [("conv", ("Conv_0",), "first convolution")]
    for b in range(3):
        for i in range(model.depth):
            role = f"dense block {b + 1}, layer {i + 1}"
            order += [
                ("batchnorm", (f"DenseBlock_{b}", f"BatchNorm_{i}"), role),
                ("conv", (f"DenseBlock_{b}", f"Conv_{i}"), role),
            ]
        if b < 2:
            role = f"transition {b + 1}"
            order += [
                ("batchnorm", (f"Transition_{b}", "BatchNorm_0"), role),
                ("conv", (f"Transition_{b}", "Conv_0"), role),
            ]
    order += [
        ("batchnorm", ("BatchNorm_0",), "final batchnorm"),
        ("dense", ("out",), "output layer"),
    ]

    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 64, 1)))
    slots, used = [], set()
    for kind, path, role in order:
        slot_shapes = {}
        for keras_name, (collection, ours) in _KERAS_TO_OURS[kind].items():
            node = shapes.get(collection, {})
            for p in path:
                node = node.get(p, {})
            if ours in node:
                slot_shapes[keras_name] = tuple(node[ours].shape)
                used.add((collection, *path, ours))
        slots.append(Slot(kind, path, role, slot_shapes))
    every = {
        tuple(str(getattr(k, "key", k)) for k in p)
        for p, _ in jax.tree_util.tree_flatten_with_path(shapes)[0]
    }
    if every != used:  # model.py changed its module layout: this table must follow
        raise RuntimeError(f"import_keras does not map {sorted(every - used)}")
    return slots


def original_to_our_classes(a: np.ndarray) -> np.ndarray:
    """Reorders the last axis from the original class order to ours.

    Original: class j is character line j + 1, the blank is last. Ours: the blank is class
    0, line k is class k. So ours[..., 0] = a[..., -1] and ours[..., k] = a[..., k - 1].
    """
    return np.concatenate([a[..., -1:], a[..., :-1]], axis=-1)


def _mismatch(layer: KerasLayer, index: int, slot: Slot, model: DenseNet) -> str:
    where = f"layer '{layer.name}' (weight-bearing layer {index + 1}: {layer.describe()})"
    if (
        slot.kind == "dense"
        and set(layer.weights) == set(slot.shapes)
        and layer.weights["kernel"].shape[:-1] == slot.shapes["kernel"][:-1]
    ):
        n = layer.weights["kernel"].shape[-1]
        return (
            f"{where} has {n} output classes, but the charset has {model.num_classes} "
            f"({model.num_classes - 1} characters + blank): pass the character file the "
            "weights were trained with (--charset)"
        )
    return f"{where} does not match the original DenseNet: expected a {slot.describe()}"


def convert_layers(layers: list[KerasLayer], model: DenseNet) -> dict:
    """Maps Keras layers onto `model`'s variables, output classes in our order.

    Returns:
      `{"params": ..., "batch_stats": ...}` nested dicts of float32 numpy arrays.

    Raises:
      KerasImportError: naming the first layer whose kind or shapes differ from `model`'s,
        or the first missing / extra layer.
    """
    slots = expected_layers(model)
    for i, (layer, slot) in enumerate(zip(layers, slots, strict=False)):
        shapes = {k: tuple(v.shape) for k, v in layer.weights.items()}
        if shapes != slot.shapes:
            raise KerasImportError(_mismatch(layer, i, slot, model))
        for k, v in layer.weights.items():
            if not np.isfinite(v).all():
                raise KerasImportError(f"layer '{layer.name}': {k} holds non-finite values")
    if len(layers) < len(slots):
        slot = slots[len(layers)]
        raise KerasImportError(
            f"the file ends after {len(layers)} weight-bearing layers; the "
            f"original DenseNet has {len(slots)}, next a {slot.describe()}"
        )
    if len(layers) > len(slots):
        extra = layers[len(slots)]
        raise KerasImportError(
            f"layer '{extra.name}' ({extra.describe()}) follows the output "
            f"layer: the original DenseNet has {len(slots)} weight-bearing "
            "layers"
        )

    variables: dict[str, dict] = {"params": {}, "batch_stats": {}}
    for layer, slot in zip(layers, slots, strict=True):
        for keras_name, array in layer.weights.items():
            collection, ours = _KERAS_TO_OURS[slot.kind][keras_name]
            if slot.kind == "dense":
                array = original_to_our_classes(array)
            node = variables[collection]
            for p in slot.path:
                node = node.setdefault(p, {})
            node[ours] = np.ascontiguousarray(array, dtype=np.float32)
    return variables


def import_keras_weights(
    path: str | os.PathLike, charset: Charset | None = None, pooltype: int = 2
) -> tuple[DenseNet, dict, Charset]:
    """Reads an original chinese_ocr `weights_densenet.h5` into our DenseNet.

    Args:
      path: the Keras 2 HDF5 weights (or whole-model) file.
      charset: the character file the weights were trained with (default: the original
        5990 lines); the model gets `charset.num_classes` classes.
      pooltype: the transitions' pooling (2 in the shipped original; not stored in the file).

    Returns:
      `(model, variables, charset)`; variables as float32 numpy arrays, ready for
      `model.apply(variables, x)`.
    """
    charset = charset or Charset.default()
    model = DenseNet(num_classes=charset.num_classes, pooltype=pooltype)
    return model, convert_layers(read_keras_h5(path), model), charset


def import_keras(
    path: str | os.PathLike,
    out: str | os.PathLike,
    charset: Charset | None = None,
    pooltype: int = 2,
) -> Path:
    """Converts an original `weights_densenet.h5` to our float16 weights file with charset."""
    model, variables, charset = import_keras_weights(path, charset, pooltype)
    return export_recognizer(
        out, model, variables, charset, imported_from=Path(path).name, source="keras-h5"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Convert the original chinese_ocr recogniser weights (Keras 2 .h5) to a "
        "chinese-ocr-jax weights file."
    )
    p.add_argument("h5", help="the original weights, e.g. weights_densenet.h5")
    p.add_argument("--out", required=True, help="the weights file to write (.npz)")
    p.add_argument(
        "--charset",
        help="character file the weights were trained with "
        "(default: the original char_std_5990.txt)",
    )
    p.add_argument(
        "--pooltype",
        type=int,
        choices=(1, 2),
        default=2,
        help="transition pooling of the trained model (default: 2, the original)",
    )
    args = p.parse_args(argv)
    try:
        charset = Charset.from_file(args.charset) if args.charset else Charset.default()
        out = import_keras(args.h5, args.out, charset, args.pooltype)
    except (WeightsError, ImportError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {out}: DenseNet (pooltype {args.pooltype}), {charset.num_classes} classes "
        "with the blank at class 0"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
