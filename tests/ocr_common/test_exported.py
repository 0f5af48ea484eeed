"""Saved compiled programs (`ocr_common.exported`): same values as the jitted function, no
tracing in a later process, keyed by name, shapes and machine, a damaged file compiled
again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ocr_common import exported
from ocr_common.exported import ExportedJit


def _affine(traces: list):
    """A jitted `(params {"w", "b"}, x) -> tanh(x @ w + b)` that counts its tracings."""

    def fn(params, x):
        traces.append(x.shape)
        return jnp.tanh(x @ params["w"] + params["b"])

    return jax.jit(fn)


def _reference(params, x):
    return np.tanh(x.astype(np.float64) @ params["w"].astype(np.float64) + params["b"])


@pytest.fixture
def params():
    rng = np.random.default_rng(0)
    return {"w": rng.normal(size=(5, 3)).astype(np.float32), "b": np.float32([0.5, -1, 2])}


def test_saved_program_is_loaded_without_tracing(tmp_path, params):
    x = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    traces = []
    first = ExportedJit(_affine(traces), "affine", folder=tmp_path)
    np.testing.assert_allclose(first(params, x), _reference(params, x), rtol=1e-5, atol=1e-6)
    assert (first.exported, first.loaded, len(traces)) == (1, 0, 1)
    assert len(list(tmp_path.glob(f"*{exported.SUFFIX}"))) == 1

    # A fresh instance (as in a new process) reads the program and never traces.
    second = ExportedJit(_affine(traces), "affine", folder=tmp_path)
    for _ in range(2):
        np.testing.assert_allclose(second(params, x), first(params, x), rtol=0, atol=0)
    assert (second.exported, second.loaded, len(traces)) == (0, 1, 1)


def test_programs_are_keyed_by_shape_dtype_and_name(tmp_path, params):
    traces = []
    fn = ExportedJit(_affine(traces), "affine", folder=tmp_path)
    for rows in (2, 7):
        x = np.ones((rows, 5), np.float32)
        np.testing.assert_allclose(fn(params, x), _reference(params, x), rtol=1e-5, atol=1e-6)
    fn(params, np.ones((7, 5), np.float32))  # a shape seen before: no new program
    assert fn.shapes_seen() == 2
    fn(params, np.ones((2, 5), np.float16))  # another dtype: another program
    assert fn.shapes_seen() == 3
    other = ExportedJit(_affine(traces), "affine, other model", folder=tmp_path)
    other(params, np.ones((2, 5), np.float32))
    assert fn.exported == 3 and other.exported == 1
    assert len(list(tmp_path.glob(f"*{exported.SUFFIX}"))) == 4


def test_damaged_file_is_compiled_again_and_replaced(tmp_path, params, caplog):
    x = np.ones((3, 5), np.float32)
    fn = ExportedJit(_affine([]), "affine", folder=tmp_path)
    fn(params, x)
    (path,) = tmp_path.glob(f"*{exported.SUFFIX}")
    path.write_bytes(b"not a program")
    again = ExportedJit(_affine([]), "affine", folder=tmp_path)
    np.testing.assert_allclose(again(params, x), _reference(params, x), rtol=1e-5, atol=1e-6)
    assert again.exported == 1 and "ignoring the saved program" in caplog.text
    third = ExportedJit(_affine([]), "affine", folder=tmp_path)
    np.testing.assert_allclose(third(params, x), _reference(params, x), rtol=1e-5, atol=1e-6)
    assert third.loaded == 1  # the replaced file loads


def test_programs_are_keyed_by_machine(tmp_path, params, monkeypatch):
    """An executable compiled on another machine (another CPU's instruction set) is never
    loaded: its key differs, so this machine compiles and saves its own."""
    x = np.ones((2, 5), np.float32)
    ExportedJit(_affine([]), "affine", folder=tmp_path)(params, x)
    monkeypatch.setattr(exported, "machine_key", lambda device=None: "another machine")
    elsewhere = ExportedJit(_affine([]), "affine", folder=tmp_path)
    np.testing.assert_allclose(elsewhere(params, x), _reference(params, x), rtol=1e-5, atol=1e-6)
    assert (elsewhere.exported, elsewhere.loaded) == (1, 0)
    assert len(list(tmp_path.glob(f"*{exported.SUFFIX}"))) == 2


def test_program_that_fails_to_run_is_compiled_again(tmp_path, params, monkeypatch, caplog):
    x = np.ones((3, 5), np.float32)
    ExportedJit(_affine([]), "affine", folder=tmp_path)(params, x)

    def broken(*args):
        raise RuntimeError("Function fusion_kernel not found")

    fn = ExportedJit(_affine([]), "affine", folder=tmp_path)
    monkeypatch.setattr(fn, "_load", lambda path: broken)
    np.testing.assert_allclose(fn(params, x), _reference(params, x), rtol=1e-5, atol=1e-6)
    assert fn.exported == 1 and "failed (Function fusion_kernel not found)" in caplog.text
    np.testing.assert_allclose(fn(params, x), _reference(params, x), rtol=1e-5, atol=1e-6)


_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import jax, jax.numpy as jnp
    from ocr_common.runtime import enable_compilation_cache
    from ocr_common.exported import ExportedJit

    enable_compilation_cache(sys.argv[1])

    def net(ws, x):  # convolutions and concatenations: fused kernels of their own
        for w in ws:
            dims = ("NHWC", "HWIO", "NHWC")
            y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dims)
            x = jnp.concatenate([jax.nn.relu(y), x[..., :2] * 0.5], -1)
        return x.mean((1, 2))

    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(3, 3, c, 4)).astype(np.float32) * 0.1 for c in (3, 6)]
    x = rng.normal(size=(1, 32, 32, 3)).astype(np.float32)
    f = jax.jit(net)
    out = f(ws, x) if sys.argv[2] == "plain" else ExportedJit(f, "net")(ws, x)
    print(repr(np.asarray(out).tolist()))
    """
)


def test_saved_program_runs_in_a_new_process_after_the_compilation_cache(tmp_path):
    """A program compiled where JAX's persistent cache already holds it (an earlier plain
    run) is saved from a fresh compilation, so a third process can load and run it (an
    executable read from the cache and saved again lacks its kernels on XLA:CPU)."""
    root = Path(__file__).resolve().parents[2]
    cache = tmp_path / "jax"

    def run(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _PROCESS, str(cache), mode],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    plain = run("plain")  # fills the compilation cache
    assert run("saved") == plain  # compiles (the cache holds it) and saves the executable
    assert len(list((tmp_path / "jax-exported").glob(f"*{exported.SUFFIX}"))) == 1
    assert run("saved") == plain  # loads the saved executable and runs it


def test_cache_off_means_plain_jit(tmp_path, params, monkeypatch):
    monkeypatch.setattr(exported, "exported_folder", lambda: None)
    traces = []
    fn = ExportedJit(_affine(traces), "affine")
    x = np.ones((2, 5), np.float32)
    np.testing.assert_allclose(fn(params, x), _reference(params, x), rtol=1e-5, atol=1e-6)
    assert (fn.exported, fn.loaded, len(traces), fn.shapes_seen()) == (0, 0, 1, 1)
    fn(params, x)
    fn(params, np.ones((3, 5), np.float32))
    assert fn.shapes_seen() == 2


def test_folder_beside_compilation_cache(tmp_path):
    before = jax.config.jax_compilation_cache_dir
    try:
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax"))
        assert exported.exported_folder() == tmp_path / "jax-exported"
        jax.config.update("jax_compilation_cache_dir", None)
        assert exported.exported_folder() is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_fingerprint_covers_the_model_sources():
    fingerprint = exported.source_fingerprint()
    assert len(fingerprint) == 64 and fingerprint == exported.source_fingerprint()
    assert len(exported.machine_key()) == 64


def test_recognizer_reads_the_same_through_saved_programs(tiny_weights, tmp_path, monkeypatch):
    """The recogniser's logits through a saved and reloaded program equal plain jit's."""
    from densenet_jax.recognizer import Recognizer

    _, rec = tiny_weights
    lines = np.random.default_rng(2).integers(0, 256, size=(3, 32, 100, 1), dtype=np.uint8)
    monkeypatch.setattr(exported, "exported_folder", lambda: None)
    plain = Recognizer.from_file(rec).logits(lines)
    monkeypatch.setattr(exported, "exported_folder", lambda: tmp_path)
    saving = Recognizer.from_file(rec)
    np.testing.assert_array_equal(saving.logits(lines), plain)
    loading = Recognizer.from_file(rec)
    np.testing.assert_array_equal(loading.logits(lines), plain)
    assert (saving._predict.exported, loading._predict.loaded) == (1, 1)
