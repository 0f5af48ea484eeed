"""The fast dense block (hand-written backward pass) against flax's layers: the same function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from densenet_jax import DenseNet, dense_block
from densenet_jax.model import BN_EPSILON
from densenet_jax.weights import load_recognizer, shipped_weights

SMALL = dict(num_classes=11, growth=4, depth=3, first_features=8, transition_features=12)


def _images(shape, seed=1):
    return jax.random.uniform(jax.random.key(seed), shape, minval=-0.5, maxval=0.5)


def _train_apply(model, variables, params, x):
    logits, updates = model.apply(
        {**variables, "params": params},
        x,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": jax.random.key(7)},
    )
    # A loss that weighs every logit differently, so that every gradient is exercised.
    weights = jnp.sin(jnp.arange(logits.size, dtype=jnp.float32)).reshape(logits.shape)
    return jnp.sum(weights * logits), (updates, logits, jnp.sum(jnp.abs(weights * logits)))


def _compare(variables, x, arch, rtol):
    """Eval logits, train logits, updated batch statistics and gradients of the two
    implementations on the same variables, within `rtol` of each quantity's largest value."""
    ref = DenseNet(implementation="reference", **arch)
    fast = DenseNet(implementation="fast", **arch)

    def close(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = max(np.abs(a).max(), 1e-6)
        np.testing.assert_allclose(b, a, atol=rtol * scale, rtol=0)

    close(ref.apply(variables, x), fast.apply(variables, x))
    grad = jax.value_and_grad(_train_apply, argnums=2, has_aux=True)
    (loss_r, (stats_r, logits_r, terms)), grads_r = grad(ref, variables, variables["params"], x)
    (loss_f, (stats_f, logits_f, _)), grads_f = grad(fast, variables, variables["params"], x)
    close(logits_r, logits_f)
    # The loss sums terms of both signs that mostly cancel: its float32 rounding scales with
    # the terms' magnitudes, not with the (small) sum.
    np.testing.assert_allclose(loss_f, loss_r, atol=rtol * float(terms) / logits_r.size**0.5)
    assert jax.tree.structure(stats_r) == jax.tree.structure(stats_f)
    for a, b in zip(jax.tree.leaves(stats_r), jax.tree.leaves(stats_f), strict=True):
        close(a, b)
    # Gradients within rtol of the largest gradient of the model (a bias whose gradient is
    # near zero, as a convolution bias before a BatchNorm, is compared at that scale too).
    top = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_r))
    for path, g in jax.tree_util.tree_flatten_with_path(grads_r)[0]:
        h = grads_f
        for key in path:
            h = h[key.key]
        np.testing.assert_allclose(h, g, atol=rtol * top, rtol=0, err_msg=str(path))
        assert float(jnp.abs(g).max()) == 0 or float(jnp.abs(h).max()) > 0


def test_same_variables_and_initial_values():
    x = jnp.zeros((1, 32, 40, 1))
    ref = DenseNet(implementation="reference", **SMALL).init(jax.random.key(0), x)
    fast = DenseNet(implementation="fast", **SMALL).init(jax.random.key(0), x)
    assert jax.tree.structure(ref) == jax.tree.structure(fast)
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(fast), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_same_function_random_weights_with_trained_statistics():
    arch = dict(SMALL, dropout_rate=0.0)
    x = _images((3, 32, 48, 1))
    variables = DenseNet(implementation="reference", **arch).init(jax.random.key(0), x)
    # Running statistics that differ per layer and from the batch's, as in a trained model.
    keys = iter(jax.random.split(jax.random.key(3), 200))
    stats = jax.tree.map(
        lambda v: v + 0.3 * jax.random.uniform(next(keys), v.shape), variables["batch_stats"]
    )
    _compare({**variables, "batch_stats": stats}, x, arch, rtol=2e-5)


def test_same_function_shipped_weights():
    model, variables, _, _ = load_recognizer(shipped_weights())
    x = _images((2, 32, 64, 1), seed=4)
    _compare(variables, x, model.architecture(), rtol=1e-4)


def test_dropout_and_pooltype1_follow_the_reference():
    arch = dict(SMALL, pooltype=1, dropout_rate=0.5)
    x = _images((2, 32, 40, 1))
    variables = DenseNet(implementation="reference", **arch).init(jax.random.key(0), x)
    _compare(variables, x, arch, rtol=2e-5)


def test_custom_backward_equals_autodiff_of_the_forward():
    """The hand-written VJP of `dense_block_train` against JAX's derivative of the same
    forward computation, for cotangents on every output channel."""
    k = iter(jax.random.split(jax.random.key(5), 20))
    c0, growth, depth = 5, 3, 3
    x = jax.random.normal(next(k), (2, 6, 7, c0)) * 2 + 0.5
    layers = []
    for i in range(depth):
        c = c0 + i * growth
        layers.append(
            (
                1 + 0.5 * jax.random.normal(next(k), (c,)),
                0.3 * jax.random.normal(next(k), (c,)),
                0.3 * jax.random.normal(next(k), (3, 3, c, growth)),
                0.2 * jax.random.normal(next(k), (growth,)),
            )
        )
    cotangent = jax.random.normal(next(k), (2, 6, 7, c0 + depth * growth))

    def fast(x, layers):
        return jnp.sum(dense_block.dense_block_train(x, layers, BN_EPSILON)[0] * cotangent)

    def autodiff(x, layers):
        return jnp.sum(dense_block._forward(x, layers, BN_EPSILON)[0] * cotangent)

    with jax.enable_x64():
        x64 = x.astype(jnp.float64)
        layers64 = jax.tree.map(lambda a: a.astype(jnp.float64), layers)
        g_fast = jax.grad(fast, argnums=(0, 1))(x64, layers64)
        g_ref = jax.grad(autodiff, argnums=(0, 1))(x64, layers64)
    for a, b in zip(jax.tree.leaves(g_ref), jax.tree.leaves(g_fast), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9 * float(jnp.abs(a).max()))


def test_batch_statistics_are_not_differentiable():
    x = jax.random.normal(jax.random.key(0), (2, 4, 5, 3))
    layer = (jnp.ones(3), jnp.zeros(3), jnp.ones((3, 3, 3, 2)) * 0.1, jnp.zeros(2))

    def mean_of_stats(x):
        _, (mean, var) = dense_block.dense_block_train(x, [layer], BN_EPSILON)
        return mean.sum() + var.sum()

    np.testing.assert_array_equal(jax.grad(mean_of_stats)(x), 0.0)


def test_unknown_implementation_is_refused():
    with pytest.raises(ValueError, match="implementation"):
        DenseNet(implementation="winograd", **SMALL).init(
            jax.random.key(0), jnp.zeros((1, 32, 40, 1))
        )
