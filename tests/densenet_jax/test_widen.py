"""Widening the dense blocks keeps the function: same logits, then the new channels can learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from densenet_jax import DenseNet
from densenet_jax.widen import channel_map, main, widen

SMALL = dict(num_classes=11, growth=4, depth=3, first_features=8, transition_features=12)


def _random_variables(model, seed=0):
    """Variables with random BatchNorm affines and running statistics, not the initial ones."""
    x = jnp.zeros((1, 32, 40, 1))
    variables = model.init(jax.random.key(seed), x)
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    noisy = [
        leaf + 0.3 * jax.random.normal(k, leaf.shape)
        if leaf.ndim == 1  # scales, biases, means
        else leaf
        for leaf, k in zip(leaves, keys, strict=True)
    ]
    variables = jax.tree.unflatten(tree, noisy)
    # Running variances must stay positive.
    variables["batch_stats"] = jax.tree.map(jnp.abs, variables["batch_stats"])
    return variables


def test_channel_map_brute_force():
    c0, depth, g_old, g_new = 5, 4, 3, 7
    # Old layout: input, then each layer's g_old outputs; the new one leaves gaps after each.
    expected = list(range(c0))
    for layer in range(depth):
        expected += [c0 + layer * g_new + k for k in range(g_old)]
    np.testing.assert_array_equal(channel_map(c0, depth, g_old, g_new), expected)
    np.testing.assert_array_equal(
        channel_map(c0, depth, g_old, g_old), np.arange(c0 + depth * g_old)
    )


@pytest.mark.parametrize("implementation", ["fast", "reference"])
def test_widened_network_computes_the_same_logits(implementation):
    model = DenseNet(implementation=implementation, **SMALL)
    variables = _random_variables(model)
    wide, wide_vars = widen(model, variables, 7, jax.random.key(3))
    assert wide.growth == 7 and wide.implementation == implementation
    # Every variable has the shape a fresh network of the new growth has.
    fresh = wide.init(jax.random.key(0), jnp.zeros((1, 32, 40, 1)))
    assert jax.tree.map(jnp.shape, fresh) == jax.tree.map(np.shape, wide_vars)
    x = jax.random.uniform(jax.random.key(1), (3, 32, 56, 1), minval=-0.5, maxval=0.5)
    a, b = model.apply(variables, x), wide.apply(wide_vars, x)
    np.testing.assert_allclose(b, a, atol=1e-5 * float(jnp.abs(a).max()), rtol=0)

    def train(m, v):
        return m.apply(
            v, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(5)}
        )

    (a, stats_a), (b, stats_b) = train(model, variables), train(wide, wide_vars)
    np.testing.assert_allclose(b, a, atol=1e-5 * float(jnp.abs(a).max()), rtol=0)
    # The running statistics of the old channels move as before (the first block's last
    # BatchNorm reads channels 0..15 of the narrow block; their new places in the wide one).
    index = channel_map(8, 2, 4, 7)
    old = stats_a["batch_stats"]["DenseBlock_0"]["BatchNorm_2"]["mean"]
    new = stats_b["batch_stats"]["DenseBlock_0"]["BatchNorm_2"]["mean"]
    np.testing.assert_allclose(new[index], old, atol=1e-5)


def test_new_channels_are_live_and_learn():
    model = DenseNet(**SMALL)
    variables = _random_variables(model)
    wide, wide_vars = widen(model, variables, 6, jax.random.key(3))
    kernel = wide_vars["params"]["DenseBlock_1"]["Conv_2"]["kernel"]  # (3, 3, 20, 6)
    assert np.abs(kernel[..., 4:]).max() > 0.05  # the new outputs have fresh kernels
    x = jax.random.uniform(jax.random.key(1), (2, 32, 48, 1), minval=-0.5, maxval=0.5)

    def loss(params):
        logits, _ = wide.apply(
            {**wide_vars, "params": params},
            x,
            train=True,
            mutable=["batch_stats"],
            rngs={"dropout": jax.random.key(5)},
        )
        return jnp.sum(jnp.sin(jnp.arange(logits.size)).reshape(logits.shape) * logits)

    grads = jax.grad(loss)(wide_vars["params"])
    # The weights that read a new channel start at zero but get a gradient.
    new_rows = np.setdiff1d(np.arange(12 + 3 * 6), channel_map(12, 3, 4, 6))
    out_rows = (np.arange(4)[:, None] * 30 + new_rows[None, :]).reshape(-1)
    assert np.all(wide_vars["params"]["out"]["kernel"][out_rows] == 0)
    assert np.abs(np.asarray(grads["out"]["kernel"])[out_rows]).max() > 0
    step = jax.tree.map(lambda p, g: p - 0.01 * g, wide_vars["params"], grads)
    moved = wide.apply({**wide_vars, "params": step}, x) - wide.apply(wide_vars, x)
    assert float(jnp.abs(moved).max()) > 0


def test_narrower_growth_is_refused():
    model = DenseNet(**SMALL)
    with pytest.raises(ValueError, match="narrower"):
        widen(model, _random_variables(model), 3, jax.random.key(0))


def test_command_line_round_trip(tmp_path):
    from densenet_jax.charset import Charset
    from densenet_jax.weights import export_recognizer, load_recognizer

    charset = Charset(tuple(" " + "一二三四五六七八九"))
    model = DenseNet(**{**SMALL, "num_classes": charset.num_classes})
    variables = _random_variables(model)
    src = export_recognizer(tmp_path / "narrow.npz", model, variables, charset, total_steps=77)
    main([str(src), str(tmp_path / "wide.npz"), "--growth", "6", "--seed", "1"])
    wide, wide_vars, wide_charset, meta = load_recognizer(tmp_path / "wide.npz")
    narrow, narrow_vars, _, _ = load_recognizer(src)
    assert wide.growth == 6 and wide_charset.lines == charset.lines
    assert meta["total_steps"] == 77 and meta["widened_from"] == str(src)
    x = jax.random.uniform(jax.random.key(1), (2, 32, 40, 1), minval=-0.5, maxval=0.5)
    a, b = narrow.apply(narrow_vars, x), wide.apply(wide_vars, x)
    np.testing.assert_allclose(b, a, atol=1e-4 * float(jnp.abs(a).max()), rtol=0)
