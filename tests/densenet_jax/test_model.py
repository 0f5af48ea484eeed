import jax
import jax.numpy as jnp
import numpy as np
import pytest

from densenet_jax import DenseNet


def _param_count(model, width=280):
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, width, 1)))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


def test_default_model_is_the_original():
    m = DenseNet()
    assert (m.num_classes, m.growth, m.depth, m.pooltype, m.dropout_rate) == (5990, 8, 8, 2, 0.2)
    n = _param_count(m)
    assert 4.8e6 <= n <= 5.0e6
    # Hand count: conv0 5*5*64, three dense blocks, two transitions, BN, dense 768 -> 5990.
    dense_layers = sum(
        9 * c * 8 + 8 + 2 * c for start in (64, 128, 128) for c in range(start, start + 64, 8)
    )
    transitions = (2 * 128 + 128 * 128) + (2 * 192 + 192 * 128)
    expected = 5 * 5 * 64 + dense_layers + transitions + 2 * 192 + 768 * 5990 + 5990
    assert n == expected


@pytest.mark.parametrize(
    "shape,out", [((2, 32, 280, 1), (2, 35, 5990)), ((1, 32, 800, 1), (1, 100, 5990))]
)
def test_output_shapes(shape, out):
    m = DenseNet()
    variables = jax.eval_shape(m.init, jax.random.key(0), jnp.zeros((1, 32, 280, 1)))
    y = jax.eval_shape(m.apply, variables, jnp.zeros(shape))
    assert y.shape == out and y.dtype == jnp.float32
    assert m.output_length(shape[2]) == out[1]


def test_pooltype1_keeps_more_time_steps():
    m = DenseNet(pooltype=1, num_classes=11)
    variables = jax.eval_shape(m.init, jax.random.key(0), jnp.zeros((1, 32, 64, 1)))
    y = jax.eval_shape(m.apply, variables, jnp.zeros((1, 32, 280, 1)))
    assert y.shape == (1, 142, 11) == (1, m.output_length(280), 11)


@pytest.mark.parametrize("width", [64, 280, 801])
def test_last_pooltype1_halves_the_time_step_in_the_last_transition_only(width):
    """last_pooltype=1: the first transition pools 2x2 / 2, the last one pads the width by a
    zero column each side and pools 2x2 with stride (2, 1) (numpy reference), so T ~ W / 4."""
    m = DenseNet(num_classes=11, growth=2, depth=2, first_features=4, transition_features=4)
    m4 = m.clone(last_pooltype=1)
    assert (m4.pooltypes, m.pooltypes, m.clone(pooltype=1).pooltypes) == ((2, 1), (2, 2), (1, 1))
    x = jax.random.normal(jax.random.key(1), (1, 32, width, 1))
    variables = m.init(jax.random.key(0), x)  # the same variables serve both
    y, inter = m4.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    assert y.shape == (1, m4.output_length(width), 11)
    assert m4.output_length(width) == -(-width // 2) // 2 + 1
    assert m.output_length(width) == -(-width // 2) // 2 // 2
    first, last = inter["intermediates"]["Transition_0"], inter["intermediates"]["Transition_1"]
    for t, stride in ((first, 2), (last, 1)):
        conv = np.asarray(t["Conv_0"]["__call__"][0], np.float64)  # (1, h, w, c) before pooling
        if stride == 1:
            conv = np.pad(conv, ((0, 0), (0, 0), (1, 1), (0, 0)))
        h, w = conv.shape[1] // 2, (conv.shape[2] - 2) // stride + 1
        ref = np.stack(
            [
                np.stack(
                    [
                        conv[0, 2 * i : 2 * i + 2, stride * j : stride * j + 2].mean((0, 1))
                        for j in range(w)
                    ]
                )
                for i in range(h)
            ]
        )
        np.testing.assert_allclose(np.asarray(t["__call__"][0][0]), ref, rtol=1e-5, atol=1e-6)
    assert DenseNet(**m4.architecture()) == m4


def test_flatten_order_is_width_height_channel():
    """Each time step sees only its own column of the last feature map, ordered (h, c)."""
    m = DenseNet(
        num_classes=7, growth=2, depth=1, first_features=4, transition_features=4, dropout_rate=0.0
    )
    x = jax.random.normal(jax.random.key(1), (1, 32, 64, 1))
    variables = m.init(jax.random.key(0), x)
    base = m.apply(variables, x)
    # Changing the input far to the right must not change the leftmost time step.
    x2 = x.at[:, :, 48:, :].set(3.0)
    out2 = m.apply(variables, x2)
    np.testing.assert_allclose(out2[0, 0], base[0, 0], atol=1e-5)
    assert not np.allclose(out2[0, -1], base[0, -1])
    # The dense layer reads features in (height, channel) order: check against a manual
    # computation from the intermediate feature map.
    _, inter = m.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    feat = jax.nn.relu(inter["intermediates"]["BatchNorm_0"]["__call__"][0])  # (1, 4, 8, C)
    k = variables["params"]["out"]["kernel"]
    b = variables["params"]["out"]["bias"]
    manual = (
        np.einsum(
            "hc,hck->k",
            np.asarray(feat[0, :, 3, :]),
            np.asarray(k).reshape(feat.shape[1], feat.shape[3], -1),
        )
        + b
    )
    np.testing.assert_allclose(base[0, 3], manual, rtol=1e-4, atol=1e-4)


def test_batchnorm_epsilon_and_init():
    m = DenseNet(num_classes=5)
    variables = m.init(jax.random.key(0), jnp.zeros((1, 32, 64, 1)))
    kernel = np.asarray(variables["params"]["Conv_0"]["kernel"])  # (5, 5, 1, 64) he-normal
    assert kernel.shape == (5, 5, 1, 64)
    assert abs(kernel.std() - np.sqrt(2 / 25)) < 0.03  # he-normal: std sqrt(2 / fan_in)
    assert "bias" not in variables["params"]["Conv_0"]
    from densenet_jax.model import BN_EPSILON

    assert BN_EPSILON == 1.1e-5


def test_config_and_module_list_the_same_layer_sizes():
    """`DenseNetConfig` and the module's fields agree (names and defaults); the exported
    `config` (`architecture`) rebuilds the module."""
    import dataclasses

    from densenet_jax.model import DenseNetConfig

    module_fields = {
        f.name: f.default
        for f in dataclasses.fields(DenseNet)
        if f.name not in ("parent", "name", "num_classes", "dtype", "implementation")
    }
    assert module_fields == dataclasses.asdict(DenseNetConfig())
    m = DenseNet(num_classes=11, growth=4, pooltype=1, dtype=jnp.bfloat16)
    assert m.to_config() == DenseNetConfig(growth=4, pooltype=1)
    assert DenseNet.from_config(m.to_config(), 11, jnp.bfloat16) == m
    # How the blocks compute is not part of the architecture (the same function).
    ref = DenseNet.from_config(m.to_config(), 11, jnp.bfloat16, "reference")
    assert ref.implementation == "reference" and ref.architecture() == m.architecture()
    assert DenseNet(**m.architecture()) == m.clone(dtype=jnp.float32)
    assert DenseNet().architecture() == {"num_classes": 5990, **module_fields}
