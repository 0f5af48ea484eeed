"""Training: a short run lowers the loss on a fixed page; train.py runs the ctpn task."""

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

from ctpn_jax import task
from ctpn_jax.data.pipeline import collate, prepare_example
from ctpn_jax.data.render import PageRenderer, page_rng
from ctpn_jax.model import CTPN, CTPNConfig
from ctpn_jax.targets import TargetConfig
from ctpn_jax.weights import load_detector, shipped_weights

TINY = [
    "--set",
    "width=0.125",
    "--set",
    "data.short_side=128",
    "--set",
    "data.long_side=192",
    "--set",
    "data.bucket_sizes=128,192",
    "--set",
    "data.workers=0",
    "--set",
    "data.test_short_side=128",
    "--set",
    "data.test_long_side=192",
    "--set",
    "data.test_bucket_sizes=128,192",
    "--set",
    "data.eval_pages=1",
    "--set",
    "data.max_boxes=64",
]


@pytest.fixture(scope="module")
def page_batch():
    page = PageRenderer().render(page_rng(11, 0), kind="document")
    ex = prepare_example(page.image, page.lines, 128, 192, max_boxes=64)
    return collate([ex], (128, 192))


def test_short_training_lowers_the_loss(page_batch):
    cfg = task.Config(width=0.125)
    model = task.build_model(cfg)
    params = task.init_variables(model, cfg, jax.random.PRNGKey(0))["params"]
    tx = optax.adam(2e-3)
    opt = tx.init(params)

    def loss(p, key, batch):  # the batch is an argument: no constant folding of targets
        return task.loss_fn(cfg, model, p, {}, batch, key)

    @jax.jit
    def step(p, o, key, batch):
        (val, (_, m)), g = jax.value_and_grad(loss, has_aux=True)(p, key, batch)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, val, m

    fixed = jax.random.key(123)
    eval_loss = jax.jit(lambda p, batch: loss(p, fixed, batch)[0])
    before = float(eval_loss(params, page_batch))
    for i in range(50):
        params, opt, val, m = step(params, opt, jax.random.key(i), page_batch)
        assert np.isfinite(float(val))
    after = float(eval_loss(params, page_batch))
    assert float(m["num_positive"]) > 0
    assert after < 0.7 * before, (before, after)


def test_train_py_runs_the_ctpn_task(tmp_path):
    train = pytest.importorskip("train")
    run = tmp_path / "run"
    args = [
        "--model",
        "ctpn",
        "--run-dir",
        str(run),
        "--batch-size",
        "1",
        "--quiet",
        "--eval-every",
        "2",
        "--log-every",
        "1",
        "--ckpt-every",
        "2",
        *TINY,
    ]
    assert train.main([*args, "--steps", "2"]) == 0
    assert (run / "weights.npz").is_file() and (run / "checkpoints").is_dir()
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "loss" in r] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in recs if "loss" in r)
    assert any("eval_hmean" in r for r in recs)
    config, variables, meta = load_detector(run / "weights.npz")
    assert config.width == 0.125 and meta["step"] == 2
    assert variables["params"]["vgg16"]["conv1_1"]["kernel"].shape == (3, 3, 3, 8)


def test_the_network_settings_are_the_models_own():
    """The task config extends CTPNConfig: one list of network settings, flat names in
    configs, --set and old run directories' config.json; the model is a plain CTPN."""
    train = pytest.importorskip("train")
    cfg = task.Config()
    assert isinstance(cfg, CTPNConfig) and cfg.width == 0.25
    model = task.build_model(cfg)
    assert type(model) is CTPN and model.to_config() == CTPNConfig(width=0.25)
    assert train.override(cfg, "width", "1.0").width == 1.0
    # The config of a run from before num_anchors existed (the shipped file's without it, as
    # the shipped files of sessions 5-32 recorded it) still reads.
    old = dict(load_detector(shipped_weights())[2]["task_config"])
    old.pop("num_anchors", None)
    assert "rnn_units" in old
    assert train.config_from_dict(task.Config, old).to_dict() == CTPNConfig(width=0.25).to_dict()
    for recipe in sorted((Path(train.__file__).parent / "configs").glob("ctpn*.json")):
        d = json.loads(recipe.read_text())["task"]
        assert (
            train.config_from_dict(task.Config, {**train.config_to_dict(cfg), **d}).width
            == d["width"]
        )
    fewer = dataclasses.replace(cfg, targets=TargetConfig(heights=(11.0, 16.0)))
    with pytest.raises(ValueError, match="num_anchors"):
        task.build_model(fewer)


def test_shipped_weights_initialise_the_default_run():
    """--init-from with the shipped detector: its architecture is the default config's."""
    _, _, meta = load_detector(shipped_weights())
    task.check_init_weights(meta, task.build_model(task.Config()), str(shipped_weights()))
    with pytest.raises(ValueError, match="architecture"):
        task.check_init_weights(meta, task.build_model(task.Config(width=0.125)), "x.npz")


def test_frozen_stages_train_only_the_later_layers(page_batch):
    """frozen_stages=2: conv1_* and conv2_* get a zero gradient and stay unchanged through a
    train.py step; every other gradient is the one of the fully trained network."""
    train = pytest.importorskip("train")
    full = task.Config(width=0.125)
    frozen = dataclasses.replace(full, frozen_stages=2)
    model = task.build_model(full)
    params = task.init_variables(model, full, jax.random.PRNGKey(0))["params"]
    key = jax.random.key(5)

    def grads(cfg):
        g = jax.grad(lambda p: task.loss_fn(cfg, model, p, {}, page_batch, key)[0])(params)
        return jax.tree_util.tree_flatten_with_path(g)[0]

    n_frozen = 0
    for (path, g_full), (_, g_frozen) in zip(grads(full), grads(frozen), strict=True):
        name = jax.tree_util.keystr(path)
        if "conv1_" in name or "conv2_" in name:
            n_frozen += 1
            assert not np.any(np.asarray(g_frozen)), name
            assert np.any(np.asarray(g_full)), name
        else:
            np.testing.assert_allclose(
                g_frozen, g_full, rtol=1e-4, atol=1e-6 * float(np.abs(g_full).max()), err_msg=name
            )
    assert n_frozen == 8  # two convolutions per stage, kernel and bias

    tcfg = train.TrainConfig(lr=1e-3, warmup_steps=0, steps=2)
    tx, schedule = train.make_optimizer(tcfg)
    state = train.create_state(task, frozen, model, tx, jax.random.PRNGKey(0))
    before = jax.device_get(state.params["vgg16"])
    step = train.make_train_step(task, frozen, model, tx, schedule, tcfg.ema_decay)
    state, _ = step(state, page_batch)
    state, _ = step(state, page_batch)
    after = jax.device_get(state.params["vgg16"])
    for name in before:
        same = all(np.array_equal(before[name][k], after[name][k]) for k in before[name])
        assert same == name.startswith(("conv1_", "conv2_")), name


@pytest.mark.parametrize("stages", [-1, 6])
def test_frozen_stages_out_of_range_fail(stages):
    with pytest.raises(ValueError, match="frozen_stages"):
        task.build_model(task.Config(frozen_stages=stages))
