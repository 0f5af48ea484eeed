"""`DenseNet` is the original chinese_ocr network, shown without trusting our own code.

The original's layer list (../shared/reference/original-system.md, i.e. the Keras code of
chinese_ocr's `densenet.py`) is rebuilt here with Keras 3 on its JAX backend, given random
weights that keep every activation in a realistic range, and saved in the Keras 2 HDF5
layout of the original's `weights_densenet.h5` (written with h5py, layer by layer). The file
goes through `densenet_jax.import_keras`; our logits must then give Keras's softmax outputs
(original class order mapped to ours) and the same greedy text, on random and rendered
lines of several widths.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections import Counter

os.environ["KERAS_BACKEND"] = "jax"  # must precede the first import of keras

import h5py  # noqa: E402
import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

assert keras.backend.backend() == "jax", "keras was imported before KERAS_BACKEND was set"
keras.config.set_floatx("float32")

from densenet_jax import Charset, DenseNet  # noqa: E402
from densenet_jax import model as model_module  # noqa: E402
from densenet_jax.ctc import greedy_decode  # noqa: E402
from densenet_jax.data.render import LineRenderer  # noqa: E402
from densenet_jax.import_keras import (  # noqa: E402
    KerasImportError,
    import_keras,
    import_keras_weights,
    main,
)
from densenet_jax.preprocess import pad_lines  # noqa: E402
from densenet_jax.weights import load_recognizer  # noqa: E402

TOL = 1e-5  # max abs difference of probabilities, float32
WIDTHS = (64, 128, 280)
NCLASS = 5990
L = keras.layers


# ---- the original network, in Keras --------------------------------------------------------


def build_original(nclass: int, init: str = "he_normal", pooltype: int = 2) -> keras.Model:
    """chinese_ocr's `dense_cnn` (BN epsilon 1.1e-5), input `(B, 32, W, 1)`.

    `init` only changes the starting weights (the tests overwrite every weight; "zeros"
    builds faster). `pooltype` 2 is the shipped model; 1 pads the width and pools with
    stride (2, 1).
    """

    def bn_relu(x):
        x = L.BatchNormalization(axis=-1, epsilon=1.1e-5)(x)
        return L.Activation("relu")(x)

    def dense_block(x, layers=8, growth=8):
        for _ in range(layers):
            y = L.Conv2D(growth, (3, 3), padding="same", kernel_initializer=init)(bn_relu(x))
            x = L.Concatenate(axis=-1)([x, y])
        return x

    def transition(x, filters=128):
        x = L.Conv2D(filters, (1, 1), padding="same", use_bias=False, kernel_initializer=init)(
            bn_relu(x)
        )
        x = L.Dropout(0.2)(x)
        if pooltype == 1:
            x = L.ZeroPadding2D(padding=(0, 1))(x)
            return L.AveragePooling2D((2, 2), strides=(2, 1))(x)
        return L.AveragePooling2D((2, 2), strides=(2, 2))(x)

    inp = keras.Input(shape=(32, None, 1), name="the_input")
    x = L.Conv2D(
        64, (5, 5), strides=(2, 2), padding="same", use_bias=False, kernel_initializer=init
    )(inp)
    x = dense_block(x)
    x = transition(x)
    x = dense_block(x)
    x = transition(x)
    x = dense_block(x)
    x = bn_relu(x)
    x = L.Permute((2, 1, 3), name="permute")(x)
    x = L.TimeDistributed(L.Flatten(), name="flatten")(x)
    y = L.Dense(nclass, activation="softmax", name="out", kernel_initializer=init)(x)
    return keras.Model(inp, y)


def keras2_names(model: keras.Model) -> list[str]:
    """Layer names as Keras 2 gave them (`conv2d_1`, `conv2d_2`, ...; named layers kept)."""
    counts: Counter[str] = Counter()
    names = []
    for layer in model.layers:
        if layer.name in ("the_input", "permute", "flatten", "out"):
            names.append(layer.name)
            continue
        base = re.sub(r"_\d+$", "", layer.name)
        counts[base] += 1
        names.append(f"{base}_{counts[base]}")
    return names


def save_keras2_h5(model: keras.Model, path, whole_model: bool = False) -> None:
    """Writes `model`'s weights in the Keras 2 HDF5 layout of the original's checkpoints.

    The original saved its training model: the network plus the CTC inputs and layer, which
    hold no weights. `whole_model`: the layout of `model.save` (tree under `model_weights`),
    with `layer_names` split into chunks as Keras 2 does for lists too long for one
    HDF5 attribute.
    """
    names = keras2_names(model) + ["the_labels", "input_length", "label_length", "ctc"]
    layers = model.layers + [None] * 4
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if whole_model else f
        # Fixed-length byte strings, as h5py 2 stored Keras 2's lists of `bytes`.
        layer_names = np.array([n.encode() for n in names])
        if whole_model:
            for i, chunk in enumerate(np.array_split(layer_names, 3)):
                root.attrs[f"layer_names{i}"] = chunk
        else:
            root.attrs["layer_names"] = layer_names
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.1.5"
        for name, layer in zip(names, layers, strict=True):
            group = root.create_group(name)
            weights = layer.weights if layer is not None else []
            weight_names = [f"{name}/{w.name}:0" for w in weights]
            group.attrs["weight_names"] = (
                np.array([n.encode() for n in weight_names]) if weight_names else []
            )  # h5py stores Keras 2's `[]` as an empty float array
            for wn, w in zip(weight_names, weights, strict=True):
                group.create_dataset(wn, data=np.asarray(w.value, np.float32))


def randomize(model: keras.Model, rng: np.random.Generator, calibration: np.ndarray) -> None:
    """Random weights with realistic activations, so that every detail shows in the output.

    Convolutions: he-normal with per-channel scales over 1.5 decades (BatchNorm variances
    then span three, which makes the epsilon matter). BatchNorm: random gamma/beta; moving
    statistics measured on `calibration` (one training-mode pass with momentum 0), then
    perturbed. Output: peaked softmax with the blank often winning, like a trained model.
    """
    for layer in model.layers:
        if isinstance(layer, L.Conv2D):
            k = layer.kernel.shape
            std = np.sqrt(2.0 / np.prod(k[:3]))
            scale = 10.0 ** rng.uniform(-1.5, 0.0, size=k[3])
            values = [rng.normal(0, std, k) * scale]
            if layer.use_bias:
                values.append(rng.normal(0, 0.05, k[3]) * scale)
            layer.set_weights(values)
        elif isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.25, c), np.zeros(c), np.ones(c)]
            )
            layer.momentum = 0.0
        elif isinstance(layer, L.Dense):
            n_in, n_out = layer.kernel.shape
            bias = rng.normal(0, 1.0, n_out)
            bias[-1] += 9.0  # the original's blank is its last class
            layer.set_weights([rng.normal(0, 0.25, (n_in, n_out)), bias])

    @jax.jit
    def batch_statistics(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=True)[1]

    stats = batch_statistics(
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        calibration,
    )
    for v, value in zip(model.non_trainable_variables, stats, strict=True):
        v.assign(value)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.momentum = 0.99
            gamma, beta, mean, var = (np.asarray(w.value) for w in layer.weights)
            mean = mean + rng.normal(0, 0.2, mean.shape) * np.sqrt(var)
            var = var * rng.uniform(0.7, 1.4, var.shape)
            layer.set_weights([gamma, beta, mean, var])


def original_greedy(probs: np.ndarray, lines: tuple[str, ...]) -> str:
    """The original's greedy decoding of `(T, nclass)` probabilities in its own class order
    (argmax, merge repeats, drop the blank = last class; class j is line j + 1)."""
    blank = probs.shape[-1] - 1
    out, prev = [], blank
    for j in probs.argmax(-1).tolist():
        if j != prev and j != blank:
            out.append(lines[j + 1])
        prev = j
    return "".join(out)


def to_our_order(probs: np.ndarray) -> np.ndarray:
    """Original class j (line j + 1) -> our class j + 1; original blank (last) -> our 0."""
    n = probs.shape[-1]
    ours = np.empty_like(probs)
    ours[..., 0] = probs[..., n - 1]
    ours[..., 1:] = probs[..., : n - 1]
    return ours


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(pip_fonts) -> dict[int, np.ndarray]:
    """Per width: `(2, 32, W, 1)` float32 `x / 255 - 0.5`, a random and a rendered line."""
    rng = np.random.default_rng(0)
    renderer = LineRenderer(pip_fonts)
    chars = Charset.default().chars
    out = {}
    for w in WIDTHS:
        noise = rng.integers(0, 256, (32, w), dtype=np.uint8)
        text = "".join(rng.choice(chars, size=max(2, w // 30)))
        batch, _ = pad_lines([noise, renderer(text, rng)], w)
        out[w] = batch.astype(np.float32) / 255.0 - 0.5
    return out


@pytest.fixture(scope="module")
def original(tmp_path_factory, inputs):
    """`(keras_model, path of its weights in the Keras 2 layout)`."""
    keras.utils.set_random_seed(0)
    model = build_original(NCLASS, init="zeros")
    randomize(model, np.random.default_rng(1), inputs[WIDTHS[-1]])
    path = tmp_path_factory.mktemp("keras") / "weights_densenet.h5"
    save_keras2_h5(model, path)
    return model, path


@pytest.fixture(scope="module")
def keras_probs(original, inputs) -> dict[int, np.ndarray]:
    """Keras's `(2, W/8, 5990)` softmax outputs per width, in the original class order."""
    model, _ = original
    return {w: np.asarray(model.predict(x, batch_size=2, verbose=0)) for w, x in inputs.items()}


@pytest.fixture(scope="module")
def imported(original):
    return import_keras_weights(original[1])


def our_probs(apply, variables: dict, inputs: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Softmax of our logits per width, `(2, W/8, C)` (float64 from our float32 logits)."""
    return {w: softmax(np.asarray(apply(variables, x), np.float64)) for w, x in inputs.items()}


@pytest.fixture(scope="module")
def apply(imported):
    return jax.jit(imported[0].apply)


@pytest.fixture(scope="module")
def ours(imported, apply, inputs) -> dict[int, np.ndarray]:
    return our_probs(apply, imported[1], inputs)


# ---- equivalence ---------------------------------------------------------------------------


def test_probabilities_match_keras(imported, ours, keras_probs):
    model, _, charset = imported
    assert model == DenseNet() and charset == Charset.default()
    for w in WIDTHS:
        ref = to_our_order(keras_probs[w].astype(np.float64))
        assert ours[w].shape == ref.shape == (2, w // 8, NCLASS)
        diff = np.abs(ours[w] - ref).max()
        # Small probabilities too: log-probabilities agree where they are above 1e-12.
        big = ref > 1e-12
        log_diff = np.abs(np.log(ours[w][big]) - np.log(ref[big])).max()
        print(
            f"width {w}: max |p_ours - p_keras| = {diff:.2e}, max |log p diff| = "
            f"{log_diff:.2e}, max p = {ref.max(-1).mean():.2f} (mean over steps)"
        )
        assert diff <= TOL, (w, diff)
        assert log_diff <= 1e-3, (w, log_diff)
        # The comparison is not vacuous: outputs are peaked, and differ between lines.
        assert ref.max(-1).mean() > 0.3
        assert np.abs(ref[0] - ref[1]).max() > 0.5


def test_greedy_text_matches_keras(imported, ours, keras_probs):
    charset = imported[2]
    texts = []
    for w in WIDTHS:
        for b in range(2):
            mine = greedy_decode(ours[w][b], charset).text
            assert mine == original_greedy(keras_probs[w][b], charset.lines), (w, b)
            texts.append(mine)
    print("decoded:", texts)
    assert all(texts) and len(set(texts)) == len(texts)
    # Blanks and merged repeats occur (so the comparison covers them): fewer characters
    # than time steps over the lines (a random-weight model need not drop one in every line).
    assert sum(map(len, texts)) < sum(w // 8 for w in np.repeat(WIDTHS, 2))


def test_the_comparison_detects_unfaithful_details(
    imported, apply, inputs, keras_probs, monkeypatch
):
    """Each known pitfall, planted in our side, breaks the tolerance many times over."""
    model, variables, _ = imported
    w = WIDTHS[0]
    ref = to_our_order(keras_probs[w].astype(np.float64))

    def max_diff(fn, vs):
        return np.abs(our_probs(fn, vs, {w: inputs[w]})[w] - ref).max()

    out = variables["params"]["out"]
    k = out["kernel"]
    wrong = {
        "class order not permuted": {
            "kernel": np.roll(k, -1, -1),
            "bias": np.roll(out["bias"], -1),
        },
        "flatten order (channel, height)": {
            "kernel": k.reshape(4, 192, -1).transpose(1, 0, 2).reshape(768, -1),
            "bias": out["bias"],
        },
    }
    for what, new_out in wrong.items():
        vs = {**variables, "params": {**variables["params"], "out": new_out}}
        d = max_diff(apply, vs)
        print(f"{what}: max diff {d:.2e}")
        assert d > 100 * TOL, what
    for eps in (1e-3, 1e-5):  # Keras's and Flax's default epsilons
        monkeypatch.setattr(model_module, "BN_EPSILON", eps)
        # A new function, so jit traces again and reads the new epsilon.
        d = max_diff(jax.jit(lambda v, x: model.apply(v, x)), variables)
        print(f"epsilon {eps}: max diff {d:.2e}")
        assert d > 100 * TOL, eps


def test_pooltype1_matches_keras(tmp_path, inputs, small_charset):
    """The unshipped pooltype 1 and another class count, on one width."""
    w = WIDTHS[0]
    keras_model = build_original(small_charset.num_classes, init="zeros", pooltype=1)
    randomize(keras_model, np.random.default_rng(2), inputs[w])
    save_keras2_h5(keras_model, tmp_path / "pooltype1.h5")
    model, variables, _ = import_keras_weights(tmp_path / "pooltype1.h5", small_charset, pooltype=1)
    ref = to_our_order(keras_model.predict(inputs[w], verbose=0).astype(np.float64))
    mine = our_probs(jax.jit(model.apply), variables, {w: inputs[w]})[w]
    assert mine.shape == ref.shape == (2, model.output_length(w), small_charset.num_classes)
    diff = np.abs(mine - ref).max()
    print(f"pooltype 1, width {w}: max diff {diff:.2e}")
    assert diff <= TOL and ref.max(-1).mean() > 0.3


# ---- the importer --------------------------------------------------------------------------


def test_export_file_round_trip(original, imported, tmp_path, capsys):
    _, h5 = original
    _, variables, _ = imported
    out = tmp_path / "original.npz"
    assert main([str(h5), "--out", str(out)]) == 0
    assert "5990 classes" in capsys.readouterr().out
    model, loaded, charset, meta = load_recognizer(out)
    assert model == DenseNet() and charset.sha256 == Charset.default().sha256
    assert meta["imported_from"] == "weights_densenet.h5" and meta["blank_id"] == 0
    flat = jax.tree_util.tree_leaves_with_path(variables)
    assert len(flat) == len(jax.tree.leaves(loaded)) == 4 * 27 + (1 + 2 * 24 + 2) + 2
    for path, v in flat:
        got = loaded
        for p in path:
            got = got[p.key]
        np.testing.assert_array_equal(got, v.astype(np.float16).astype(np.float32))
    # A whole-model file (`model.save`) holds the same weights under `model_weights`.
    whole = tmp_path / "model.h5"
    save_keras2_h5(original[0], whole, whole_model=True)
    _, again, _, meta = load_recognizer(import_keras(whole, tmp_path / "again.npz"))
    assert meta["imported_from"] == "model.h5"
    jax.tree.map(np.testing.assert_array_equal, again, loaded)


def _edit_copy(src, dst, edit) -> str:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return str(dst)


def test_clear_errors(original, tmp_path, capsys):
    _, h5 = original
    with pytest.raises(
        KerasImportError,
        match=r"'out' .* 5990 output classes, but the "
        r"charset has 4",
    ):
        import_keras_weights(h5, Charset.from_chars("abc"))

    def wider_conv(f):  # another architecture: growth 12 in the first dense layer
        del f["conv2d_2/conv2d_2/kernel:0"]
        f["conv2d_2"].create_dataset("conv2d_2/kernel:0", data=np.zeros((3, 3, 64, 12)))

    bad = _edit_copy(h5, tmp_path / "wide.h5", wider_conv)
    with pytest.raises(
        KerasImportError,
        match=r"layer 'conv2d_2' \(weight-bearing layer 3: "
        r"kernel \(3, 3, 64, 12\), bias \(8,\)\)",
    ):
        import_keras_weights(bad)

    def drop_layer(f):  # a batchnorm missing: the next layer is reported
        names = f.attrs["layer_names"]
        f.attrs["layer_names"] = names[names != b"batch_normalization_3"]

    bad = _edit_copy(h5, tmp_path / "short.h5", drop_layer)
    with pytest.raises(KerasImportError, match=r"'conv2d_4' .* expected a batchnorm"):
        import_keras_weights(bad)
    assert main([bad, "--out", str(tmp_path / "x.npz")]) == 2
    assert "'conv2d_4'" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()

    def truncate(f):  # (written as variable-length strings, which must read as well)
        names = [n.decode() for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = names[: names.index("out")]

    bad = _edit_copy(h5, tmp_path / "cut.h5", truncate)
    with pytest.raises(KerasImportError, match="ends after 54 weight-bearing layers.*dense"):
        import_keras_weights(bad)

    keras3 = tmp_path / "model.weights.h5"
    with h5py.File(keras3, "w") as f:
        f.create_group("layers")
    with pytest.raises(KerasImportError, match="not a Keras 2 HDF5"):
        import_keras_weights(keras3)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(KerasImportError, match="not an HDF5 file"):
        import_keras_weights(tmp_path / "text.h5")
    with pytest.raises(KerasImportError, match="does not exist"):
        import_keras_weights(tmp_path / "missing.h5")


def test_missing_h5py_is_explained(original, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if not installed
    assert main([str(original[1]), "--out", str(tmp_path / "x.npz")]) == 2
    assert "pip install 'chinese-ocr-jax[import]'" in capsys.readouterr().err
