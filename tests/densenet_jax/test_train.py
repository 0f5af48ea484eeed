"""The shared training loop with the recogniser: learning, resume, export, warm start, CLI."""

import dataclasses
import json
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

import train
from densenet_jax import task
from densenet_jax.ctc import decode_batch
from densenet_jax.data.pipeline import collate
from densenet_jax.data.render import LineRenderer
from densenet_jax.preprocess import normalize
from densenet_jax.recognizer import make_predict
from densenet_jax.weights import load_recognizer
from ocr_common.weights import WeightsError


def test_tiny_model_overfits_fixed_lines(tiny_config, small_charset, pip_fonts, fit_batch):
    """8 fixed rendered lines: the loss must fall far below its start, and they are read."""
    cfg = tiny_config()
    model = task.build_model(cfg)
    rng = np.random.default_rng(0)
    renderer = LineRenderer(pip_fonts[:1])
    texts = ["的一", "是在", "不了", "有和", "人这", "中大", "为上", "个国"]
    examples = [
        {"image": renderer(t, rng), "labels": small_charset.encode(t), "text": t} for t in texts
    ]
    for e in examples:
        e["image"] = e["image"][:, :96]
    batch = collate(examples, (96,), 8)
    losses, params, state = fit_batch(cfg, batch, 150)
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.1 * np.mean(losses[:3])
    # Read them back (batch statistics: 150 steps are too few for the running averages).
    logits, _ = model.apply(
        {"params": params, **state},
        normalize(batch["image"]),
        train=True,
        rngs={"dropout": jax.random.key(0)},
        mutable=["batch_stats"],
    )
    lengths = [model.output_length(int(w)) for w in batch["width"]]
    read = [d.text for d in decode_batch(logits, lengths, small_charset)]
    assert sum(r == t for r, t in zip(read, texts, strict=True)) >= 6, (read, losses[-5:])


@pytest.fixture
def tiny_run(tiny_config):
    cfg = tiny_config()
    tcfg = train.TrainConfig(
        steps=3, batch_size=4, lr=1e-3, warmup_steps=1, log_every=1, eval_every=3, ckpt_every=2
    )
    return cfg, tcfg


def test_train_checkpoints_resumes_and_exports(tmp_path, tiny_run, small_charset):
    cfg, tcfg = tiny_run
    run = tmp_path / "run"
    last = train.train_and_evaluate(task, cfg, tcfg, run, quiet=True)
    assert last["step"] == 3 and np.isfinite(last["loss"]) and "eval_cer" in last
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "3"]
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    # Resume: continues at step 3, runs steps 4 and 5 only.
    last = train.train_and_evaluate(task, cfg, dataclasses.replace(tcfg, steps=5), run, quiet=True)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5]
    # The export loads without the run dir and carries config, charset and blank id.
    model, variables, charset, meta = load_recognizer(run / "weights.npz")
    assert meta["step"] == meta["total_steps"] == 5 and meta["blank_id"] == 0
    assert charset == small_charset
    assert model == task.build_model(cfg)
    assert jax.tree.leaves(variables)[0].dtype == np.float32


def test_resume_equals_an_uninterrupted_run(tmp_path, tiny_run):
    """Stopping after step 2 and resuming gives the very weights of a run that never stopped."""
    cfg, tcfg = tiny_run
    # A constant learning rate, so that the schedule does not depend on `steps`.
    tcfg = dataclasses.replace(
        tcfg, steps=4, eval_every=0, ckpt_every=100, warmup_steps=1, end_lr_factor=1.0
    )
    train.train_and_evaluate(task, cfg, tcfg, tmp_path / "a", quiet=True)
    train.train_and_evaluate(
        task, cfg, dataclasses.replace(tcfg, steps=2), tmp_path / "b", quiet=True
    )
    train.train_and_evaluate(task, cfg, tcfg, tmp_path / "b", quiet=True)
    _, va, _, _ = load_recognizer(tmp_path / "a" / "weights.npz")
    _, vb, _, _ = load_recognizer(tmp_path / "b" / "weights.npz")
    for x, y in zip(jax.tree.leaves(va), jax.tree.leaves(vb), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)


def test_export_round_trip_and_init_from(tmp_path, tiny_run, small_charset):
    cfg, tcfg = tiny_run
    model = task.build_model(cfg)
    variables = task.init_variables(model, cfg, jax.random.key(1))
    path = task.export(tmp_path / "w.npz", cfg, model, variables, step=7)
    model2, variables2, charset, meta = load_recognizer(path)
    x = jnp.asarray(np.random.default_rng(0).integers(0, 255, (2, 32, 96, 1)), jnp.uint8)
    y1 = make_predict(model)(variables, x)
    y2 = make_predict(model2)(variables2, x)
    np.testing.assert_allclose(y1, y2, atol=2e-2, rtol=2e-2)  # float16 storage
    assert charset == small_charset and meta["step"] == 7
    # Warm start: a new run starts from the exported weights, at step 0.
    tcfg = dataclasses.replace(tcfg, steps=1, eval_every=0, lr=1e-9, warmup_steps=1)
    train.train_and_evaluate(task, cfg, tcfg, tmp_path / "warm", init_from=str(path), quiet=True)
    _, v3, _, m3 = load_recognizer(tmp_path / "warm" / "weights.npz")
    k2 = variables2["params"]["out"]["kernel"]
    np.testing.assert_allclose(v3["params"]["out"]["kernel"], k2, atol=1e-3)
    # The export counts the steps behind its starting weights, across resumes and chains.
    assert (m3["step"], m3["total_steps"]) == (1, 8)
    train.train_and_evaluate(
        task,
        cfg,
        dataclasses.replace(tcfg, steps=3),
        tmp_path / "warm",
        init_from=str(path),
        quiet=True,
    )  # resumed: init.json counts
    m4 = load_recognizer(tmp_path / "warm" / "weights.npz")[3]
    assert (m4["step"], m4["total_steps"]) == (3, 10)
    train.train_and_evaluate(
        task,
        cfg,
        tcfg,
        tmp_path / "warm2",
        init_from=str(tmp_path / "warm" / "weights.npz"),
        quiet=True,
    )
    m5 = load_recognizer(tmp_path / "warm2" / "weights.npz")[3]
    assert (m5["step"], m5["total_steps"]) == (1, 11)
    (tmp_path / "warm2" / "init.json").write_text("{not json")
    with pytest.raises(ValueError, match="init.json: malformed"):
        train.train_and_evaluate(task, cfg, tcfg, tmp_path / "warm2", quiet=True)
    # Weights of another architecture are refused with a clear message.
    other = dataclasses.replace(cfg, growth=6)
    with pytest.raises(ValueError, match="architecture"):
        train.train_and_evaluate(
            task, other, tcfg, tmp_path / "bad", init_from=str(path), quiet=True
        )


def test_weights_errors(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_recognizer(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(WeightsError, match="cannot read weights"):
        load_recognizer(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(WeightsError, match="not a chinese-ocr-jax weights file"):
        load_recognizer(tmp_path / "plain.npz")


def test_cli_help_and_overrides(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--model",
        "--steps",
        "--batch-size",
        "--lr",
        "--run-dir",
        "--data",
        "--init-from",
        "--eval-every",
        "--seed",
        "--set",
        "--ema-decay",
    ):
        assert flag in out
    cfg = train.override(task.Config(), "data.widths", "280,400")
    assert cfg.data.widths == (280, 400)
    assert train.override(cfg, "growth", "12").growth == 12
    with pytest.raises(ValueError, match="unknown setting"):
        train.override(cfg, "data.nope", "1")
    d = train.config_to_dict(cfg)
    assert train.config_from_dict(task.Config, d) == cfg


def test_shipped_recipe_loads(tmp_path):
    """The recipe in configs/ is valid input for --config and gives the documented settings."""
    recipe = Path(train.__file__).parent / "configs" / "densenet-v1.json"
    args = train.parse_args(
        [
            "--model",
            "densenet",
            "--config",
            str(recipe),
            "--run-dir",
            str(tmp_path / "r"),
            "--steps",
            "7",
        ]
    )
    cfg, tcfg = train.build_configs(task, args)
    assert (tcfg.steps, tcfg.batch_size, tcfg.lr, tcfg.warmup_steps) == (7, 32, 1e-3, 300)
    assert cfg.data.widths == (280,) and cfg.data.max_chars == 12 and cfg.eval_size == 256
    assert cfg.growth == 8 and cfg.data.max_label_len == task.Config().data.max_label_len
    assert tcfg.ema_decay == 0.999
    args = train.parse_args(
        ["--model", "densenet", "--run-dir", str(tmp_path / "r"), "--ema-decay", "0"]
    )
    assert train.build_configs(task, args)[1].ema_decay == 0.0


def test_ema_update_against_numpy():
    rng = np.random.default_rng(0)
    ema = {"w": rng.standard_normal((3, 4)).astype(np.float32), "n": np.int32(7)}
    ref = {k: np.asarray(v, np.float64) for k, v in ema.items()}
    for step in range(30):
        new = {"w": rng.standard_normal((3, 4)).astype(np.float32), "n": np.int32(step)}
        ema = train.ema_update(ema, new, 0.9, jnp.int32(step))
        d = min(0.9, (1 + step) / (10 + step))
        ref["w"] = d * ref["w"] + (1 - d) * new["w"]
        assert ema["w"].dtype == jnp.float32 and int(ema["n"]) == step  # ints are taken as is
        np.testing.assert_allclose(ema["w"], ref["w"], rtol=1e-5, atol=1e-6)
    assert train.ema_update(ema, new, 0.0, 3) is new


def _exported(path):
    return jax.tree.leaves(load_recognizer(path)[1])


def test_the_export_is_the_moving_average_and_old_checkpoints_resume(tmp_path, tiny_run):
    """A run with ema_decay 0 exports the weights of each step (float16); a run with 0.9
    exports their moving average. A checkpoint without the average (written before it
    existed) resumes, the average starting from its weights."""
    import orbax.checkpoint as ocp

    cfg, tcfg = tiny_run
    tcfg = dataclasses.replace(
        tcfg, eval_every=0, ckpt_every=100, warmup_steps=1, end_lr_factor=1.0, ema_decay=0.0
    )
    raw = []  # the weights after steps 1, 2, 3 (resuming gives the same weights)
    for steps in (1, 2, 3):
        train.train_and_evaluate(
            task, cfg, dataclasses.replace(tcfg, steps=steps), tmp_path / "raw", quiet=True
        )
        raw.append(_exported(tmp_path / "raw" / "weights.npz"))
    model = task.build_model(cfg)
    init_key = jax.random.split(jax.random.PRNGKey(tcfg.seed))[0]
    ema = jax.tree.leaves(task.init_variables(model, cfg, init_key))
    for step, weights in enumerate(raw):
        d = min(0.9, (1 + step) / (10 + step))
        ema = [d * e + (1 - d) * w for e, w in zip(ema, weights, strict=True)]
    averaged = dataclasses.replace(tcfg, steps=3, ema_decay=0.9)
    train.train_and_evaluate(task, cfg, averaged, tmp_path / "ema", quiet=True)
    got = _exported(tmp_path / "ema" / "weights.npz")
    assert max(float(np.abs(g - w).max()) for g, w in zip(got, raw[-1], strict=True)) > 1e-3
    for g, e in zip(got, ema, strict=True):
        np.testing.assert_allclose(g, e, rtol=5e-3, atol=2e-3)

    # An old checkpoint: the state at step 2 without its `ema` entry.
    old = tmp_path / "old" / "checkpoints"
    src = ocp.CheckpointManager(
        tmp_path / "raw" / "checkpoints", item_handlers=ocp.StandardCheckpointHandler()
    )
    tree = src.restore(3, args=ocp.args.StandardRestore())
    assert "ema" in tree
    mngr = ocp.CheckpointManager(old, options=ocp.CheckpointManagerOptions(create=True))
    mngr.save(3, args=ocp.args.StandardSave({k: v for k, v in tree.items() if k != "ema"}))
    mngr.wait_until_finished()
    train.train_and_evaluate(
        task, cfg, dataclasses.replace(averaged, steps=4), tmp_path / "old", quiet=True
    )
    train.train_and_evaluate(
        task, cfg, dataclasses.replace(tcfg, steps=4), tmp_path / "raw", quiet=True
    )
    step4 = _exported(tmp_path / "raw" / "weights.npz")
    d = min(0.9, (1 + 3) / (10 + 3))
    for g, w3, w4 in zip(_exported(tmp_path / "old" / "weights.npz"), raw[-1], step4, strict=True):
        np.testing.assert_allclose(g, d * w3 + (1 - d) * w4, rtol=5e-3, atol=2e-3)


def _random_batch(cfg, batch_size: int = 4) -> dict:
    """Random uint8 lines of the tiny config's width with 3-character labels."""
    rng = np.random.default_rng(0)
    width = cfg.data.widths[0]
    labels = np.zeros((batch_size, cfg.data.max_label_len), np.int32)
    labels[:, :3] = rng.integers(1, task.charset_of(cfg).num_classes, (batch_size, 3))
    return {
        "image": rng.integers(0, 256, (batch_size, 32, width, 1), dtype=np.uint8),
        "width": np.full((batch_size,), width, np.int32),
        "labels": labels,
        "label_length": np.full((batch_size,), 3, np.int32),
    }


def test_train_step_is_clipped_adam_with_a_moving_average(tiny_config):
    """train.make_train_step, the step that training runs: twice from the same state and
    batch it gives the same state; two steps equal clip + Adam + EMA written by hand."""
    import optax

    cfg = tiny_config()
    tcfg = train.TrainConfig(steps=10, lr=1e-2, warmup_steps=2, clip_norm=0.05, ema_decay=0.9)
    model = task.build_model(cfg)
    tx, schedule = train.make_optimizer(tcfg)
    state = train.create_state(task, cfg, model, tx, jax.random.PRNGKey(0))
    batch = _random_batch(cfg)
    step = train.make_train_step(task, cfg, model, tx, schedule, tcfg.ema_decay)
    copy = partial(jax.tree.map, jnp.array)  # the step donates its state: give it a copy
    a, metrics_a = step(copy(state), batch)
    b, metrics_b = step(copy(state), batch)
    assert int(a.step) == 1 and float(metrics_a["lr"]) == 0.0  # warm-up starts at 0
    for x, y in zip(jax.tree.leaves((a, metrics_a)), jax.tree.leaves((b, metrics_b)), strict=True):
        np.testing.assert_array_equal(x, y)
    two, metrics = step(a, batch)

    # By hand: gradient at fold_in(key, step), global-norm clipping, Adam, the schedule.
    @jax.jit
    def grad(params, model_state, i):
        key = jax.random.fold_in(state.key, i)
        return jax.value_and_grad(
            lambda p: task.loss_fn(cfg, model, p, model_state, batch, key), has_aux=True
        )(params)

    adam = optax.scale_by_adam()
    params, model_state, adam_state = state.params, state.model_state, adam.init(state.params)
    ema = {"params": params, **model_state}
    for i in range(2):
        (loss, (model_state, _)), g = grad(params, model_state, i)
        norm = optax.tree.norm(g)
        g = jax.tree.map(lambda x, n=norm: x * jnp.minimum(1.0, tcfg.clip_norm / n), g)
        u, adam_state = adam.update(g, adam_state)
        params = jax.tree.map(lambda p, u, i=i: p - schedule(i) * u, params, u)
        d = min(0.9, (1 + i) / (10 + i))
        ema = jax.tree.map(
            lambda e, x, d=d: d * e + (1 - d) * x, ema, {"params": params, **model_state}
        )
    assert float(norm) > tcfg.clip_norm  # the clipping was at work
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["grad_norm"], norm, rtol=1e-5)
    np.testing.assert_allclose(metrics["lr"], schedule(1), rtol=1e-6)
    for got, want in ((two.params, params), (two.model_state, model_state), (two.ema, ema)):
        got, want = flatten_dict(got, sep="/"), flatten_dict(want, sep="/")
        assert got.keys() == want.keys()
        for path, x in got.items():
            if "DenseBlock" in path and "Conv" in path and path.endswith("bias"):
                # These biases feed BatchNorms only, which remove them: their gradient is
                # rounding noise (~1e-7), which Adam's normalised step turns into +-lr.
                continue
            # atol: 2% of this step's learning rate (Adam scales float noise up to it).
            np.testing.assert_allclose(x, want[path], rtol=1e-4, atol=1e-4, err_msg=path)


def test_restore_round_trips_a_state(tmp_path, tiny_config):
    import orbax.checkpoint as ocp

    cfg = tiny_config()
    model = task.build_model(cfg)
    tx, _ = train.make_optimizer(train.TrainConfig())
    state = train.create_state(task, cfg, model, tx, jax.random.PRNGKey(0)).replace(
        step=jnp.int32(7)
    )
    mngr = train.checkpoint_manager(tmp_path, keep=2)
    mngr.save(7, args=ocp.args.StandardSave(state))
    mngr.wait_until_finished()
    other = train.create_state(task, cfg, model, tx, jax.random.PRNGKey(1))
    got = train.restore(mngr, 7, other)
    assert isinstance(got, train.TrainState) and int(got.step) == 7
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(x, y)
    mngr.close()


def test_config_holds_the_layer_sizes_once():
    """The task config extends DenseNetConfig (flat names, as in configs/ and old runs'
    config.json); build_model and the export use them; the shipped file can warm-start
    the default run (check_init_weights)."""
    from densenet_jax.model import DenseNet, DenseNetConfig
    from densenet_jax.weights import shipped_weights

    cfg = task.Config()
    assert isinstance(cfg, DenseNetConfig) and cfg.growth == 8
    assert task.build_model(train.override(cfg, "growth", "12")) == DenseNet(growth=12)
    model, _, _, meta = load_recognizer(shipped_weights())
    assert model == task.build_model(cfg)
    task.check_init_weights(meta, task.build_model(cfg), str(shipped_weights()))
    old = meta["task_config"]  # the shipped file's run: a config.json from before
    assert "growth" in old
    assert DenseNet.from_config(train.config_from_dict(task.Config, old), 5990) == DenseNet()


def test_weights_start_runs_whose_architecture_has_the_same_variables():
    """check_init_weights: the pooling and dropout do not shape the variables, so the shipped
    (8-px step) file can start a `last_pooltype` 1 run; other layer sizes or models cannot.
    Files written before `last_pooltype` existed (no such key) still start default runs."""
    from densenet_jax.weights import shipped_weights

    _, _, _, meta = load_recognizer(shipped_weights())
    cfg = task.Config()
    for key, value in (("last_pooltype", "1"), ("pooltype", "1"), ("dropout_rate", "0.1")):
        task.check_init_weights(meta, task.build_model(train.override(cfg, key, value)), "f")
    old = {**meta, "config": {k: v for k, v in meta["config"].items() if k != "last_pooltype"}}
    task.check_init_weights(old, task.build_model(cfg), "old.npz")
    for key, value in (("growth", "12"), ("depth", "6"), ("transition_features", "96")):
        with pytest.raises(ValueError, match="architecture"):
            task.check_init_weights(meta, task.build_model(train.override(cfg, key, value)), "f")
    with pytest.raises(ValueError, match="model"):
        task.check_init_weights({**meta, "model": "ctpn"}, task.build_model(cfg), "f")


@pytest.mark.parametrize(
    "recipe",
    sorted((Path(train.__file__).parent / "configs").glob("densenet-*.json")),
    ids=lambda p: p.name,
)
def test_every_recipe_builds_with_its_render_settings(recipe, tmp_path):
    """Each densenet recipe in configs/ is valid --config input, and every render setting
    it names reaches the line renderer's config with its value."""
    args = train.parse_args(
        ["--model", "densenet", "--config", str(recipe), "--run-dir", str(tmp_path / "r")]
    )
    cfg, _ = train.build_configs(task, args)
    render = json.loads(recipe.read_text())["task"].get("data", {}).get("render", {})
    for key, value in render.items():
        got = getattr(cfg.data.render, key)
        assert got == (tuple(value) if isinstance(value, list) else value), key


def test_frozen_blocks_train_only_the_later_layers(tiny_config):
    """frozen_blocks=2: the first convolution, the first two dense blocks and the transition
    between them get a zero gradient and keep their weights through train.py's steps, while
    their batch statistics still follow the batches; every other gradient is the one of the
    fully trained network."""
    full = tiny_config()
    frozen = dataclasses.replace(full, frozen_blocks=2)
    model = task.build_model(full)
    variables = task.init_variables(model, full, jax.random.PRNGKey(0))
    params, model_state = variables["params"], {"batch_stats": variables["batch_stats"]}
    batch = _random_batch(full)
    key = jax.random.key(3)
    frozen_names = {"Conv_0", "DenseBlock_0", "Transition_0", "DenseBlock_1"}

    def grads(cfg):
        return jax.grad(lambda p: task.loss_fn(cfg, model, p, model_state, batch, key)[0])(params)

    g_full, g_frozen = grads(full), grads(frozen)
    assert set(g_full) > frozen_names
    for name in g_full:
        for path, x in flatten_dict(g_frozen[name], sep="/").items():
            want = flatten_dict(g_full[name], sep="/")[path]
            if name in frozen_names:
                assert not np.any(np.asarray(x)), (name, path)
            elif not path.endswith("bias") or "Conv" not in path:  # biases before a BN: noise
                np.testing.assert_allclose(
                    x, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()), err_msg=name
                )

    tcfg = train.TrainConfig(steps=4, lr=1e-2, warmup_steps=0)
    tx, schedule = train.make_optimizer(tcfg)
    state = train.create_state(task, frozen, model, tx, jax.random.PRNGKey(0))
    before = jax.device_get((state.params, state.model_state))
    step = train.make_train_step(task, frozen, model, tx, schedule, tcfg.ema_decay)
    for _ in range(2):
        state, _ = step(state, batch)
    params_after, stats_after = jax.device_get((state.params, state.model_state))
    for name in before[0]:
        same = all(
            np.array_equal(x, y)
            for x, y in zip(
                jax.tree.leaves(before[0][name]), jax.tree.leaves(params_after[name]), strict=True
            )
        )
        assert same == (name in frozen_names), name
    old = jax.tree.leaves(before[1]["batch_stats"]["DenseBlock_0"])
    new = jax.tree.leaves(stats_after["batch_stats"]["DenseBlock_0"])
    assert not any(np.array_equal(x, y) for x, y in zip(old, new, strict=True))
    with pytest.raises(ValueError, match="frozen_blocks"):
        task.build_model(dataclasses.replace(full, frozen_blocks=4))
