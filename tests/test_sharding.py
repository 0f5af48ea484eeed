"""Data parallelism in train.py: a batch split over two host devices trains like one device.

XLA's host device count is fixed when JAX starts, so each run is a subprocess with its own
`XLA_FLAGS=--xla_force_host_platform_device_count=N`.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ALPHABET = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工"

# Trains the tiny recogniser for 3 steps in `run_dir`, recording how every batch handed to
# the train step is laid out over the devices.
SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_disable_most_optimizations", True)
    import train
    from densenet_jax import task
    from densenet_jax.data.pipeline import LineDataConfig

    charset_file, run_dir, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = task.Config(charset_file=charset_file, growth=4, depth=2, first_features=16,
                      transition_features=16, dropout_rate=0.0, eval_size=8,
                      data=LineDataConfig(widths=(96,), min_chars=2, max_chars=4,
                                          max_label_len=8, system_fonts=False, workers=0))
    tcfg = train.TrainConfig(steps=3, batch_size=batch_size, lr=1e-3, warmup_steps=1,
                             log_every=1, eval_every=0, ckpt_every=100)
    layouts = []
    make_array = jax.make_array_from_process_local_data

    def recording(sharding, data, *args, **kwargs):
        out = make_array(sharding, data, *args, **kwargs)
        layouts.append({k: [len(v.addressable_shards), list(v.addressable_shards[0].data.shape),
                            list(v.shape)] for k, v in out.items()})
        return out

    jax.make_array_from_process_local_data = recording
    train.train_and_evaluate(task, cfg, tcfg, run_dir, quiet=True)
    print(json.dumps({"devices": jax.device_count(), "layouts": layouts}))
""")


def _start(tmp_path: Path, name: str, devices: int) -> tuple[subprocess.Popen, Path]:
    """Starts SCRIPT on `devices` host devices, batch size 4, in run directory `name`."""
    charset = tmp_path / "charset.txt"
    charset.write_text(" \n" + "\n".join(ALPHABET) + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    run_dir = tmp_path / name
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(charset), str(run_dir), "4"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, run_dir


def _finish(proc: subprocess.Popen, run_dir: Path) -> tuple[dict, Path]:
    """The report of a started run and its run directory."""
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), run_dir


def _losses(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharding")
    started = [_start(tmp, "one", 1), _start(tmp, "two", 2)]  # side by side
    return tuple(_finish(*s) for s in started)


def test_batch_is_split_over_two_devices(runs):
    (one, _), (two, _) = runs
    assert one["devices"] == 1 and two["devices"] == 2
    assert len(two["layouts"]) == 3  # one batch per step
    for layout in two["layouts"]:
        shards, shard_shape, shape = layout["image"]
        assert shards == 2 and shape == [4, 32, 96, 1] and shard_shape == [2, 32, 96, 1]
        assert all(v[0] == 2 and v[1][0] == 2 for v in layout.values())
    assert all(v[0] == 1 for layout in one["layouts"] for v in layout.values())


def test_two_devices_train_like_one(runs):
    """Same data, same steps: the losses and the final weights agree (float16 export)."""
    from densenet_jax.weights import load_recognizer

    (_, dir1), (_, dir2) = runs
    m1, m2 = _losses(dir1), _losses(dir2)
    assert [r["step"] for r in m1] == [r["step"] for r in m2] == [1, 2, 3]
    for a, b in zip(m1, m2, strict=True):
        for key in ("loss", "grad_norm"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, err_msg=key)
    _, v1, _, _ = load_recognizer(dir1 / "weights.npz")
    _, v2, _, _ = load_recognizer(dir2 / "weights.npz")
    leaves1, leaves2 = _leaves(v1), _leaves(v2)
    assert leaves1.keys() == leaves2.keys() and len(leaves1) > 20
    for path, x in leaves1.items():
        if "DenseBlock" in path and path.endswith("bias"):
            # The biases of the dense-block convolutions feed BatchNorms only, which remove
            # them: their gradient is rounding noise (~1e-7), which Adam's normalised step
            # turns into +-lr either way.
            continue
        np.testing.assert_allclose(
            np.float32(x), np.float32(leaves2[path]), rtol=2e-3, atol=2e-4, err_msg=path
        )


def test_batch_size_must_divide_by_the_device_count():
    import train

    assert train.check_batch_size(32, 2) == 32
    assert train.check_batch_size(32, 4, num_processes=2) == 16
    with pytest.raises(train.BatchSizeError, match=r"multiple of the number of devices \(2\)"):
        train.check_batch_size(3, 2)


def _leaves(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """`{"params/out/kernel": array, ...}` of a nested dict of arrays."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out
