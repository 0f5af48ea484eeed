"""The network: shapes, sizes, the valid-width option."""

import jax
import jax.numpy as jnp
import numpy as np

from ctpn_jax import CTPN
from ctpn_jax.model import init_ctpn, scaled_channels


def n_params(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_width_1_is_the_original_size():
    shapes = jax.eval_shape(CTPN(width=1.0).init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    p = shapes["params"]
    assert n_params(p["vgg16"]) == 14_714_688  # VGG16 conv1_1 .. conv5_3
    assert p["rpn_conv"]["kernel"].shape == (3, 3, 512, 512)
    assert p["fc"]["kernel"].shape == (256, 512)  # 2 x 128 LSTM units -> 512
    assert p["cls"]["kernel"].shape == (512, 20)
    assert p["vertical"]["kernel"].shape == (512, 20)
    assert p["side"]["kernel"].shape == (512, 10)
    lstm = n_params(p["lstm_fw"])
    assert lstm == 4 * (512 * 128 + 128 * 128 + 128)  # input, recurrent, bias for 4 gates


def test_scaled_channels():
    assert scaled_channels(512, 1.0) == 512 and scaled_channels(64, 0.25) == 16
    assert scaled_channels(64, 0.05) == 8


def test_output_shapes_and_valid_width():
    m = CTPN(width=0.125)
    x = jax.random.uniform(jax.random.key(1), (2, 64, 100, 3), maxval=255.0)
    v = init_ctpn(m, jax.random.PRNGKey(0))
    apply = jax.jit(m.apply)
    out = apply(v, x)
    assert out["cls_logits"].shape == (2, 4, 7, 10, 2)  # ceil(64/16), ceil(100/16)
    assert out["vertical"].shape == (2, 4, 7, 10, 2)
    assert out["side"].shape == (2, 4, 7, 10)
    assert all(a.dtype == jnp.float32 for a in out.values())
    full = apply(v, x, valid_width=jnp.array([7, 7]))
    for k in out:
        np.testing.assert_allclose(out[k], full[k], rtol=1e-5, atol=1e-6)
    part = apply(v, x, valid_width=jnp.array([7, 3]))
    np.testing.assert_allclose(part["side"][0], full["side"][0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(part["side"][1, :, :3], full["side"][1, :, :3])
    # uint8 input is accepted and means the same as float pixels
    xi = jnp.round(x).astype(jnp.uint8)
    np.testing.assert_allclose(
        apply(v, xi)["side"], apply(v, xi.astype(jnp.float32))["side"], rtol=1e-6
    )


def test_config_and_module_list_the_same_hyper_parameters():
    import dataclasses

    from ctpn_jax.model import CTPNConfig

    module_fields = {
        f.name: f.default
        for f in dataclasses.fields(CTPN)
        if f.name not in ("parent", "name", "dtype")
    }
    assert module_fields == CTPNConfig().to_dict()
    m = CTPN(width=0.125, rnn_units=64, dtype=jnp.bfloat16)
    assert m.to_config() == CTPNConfig(width=0.125, rnn_units=64)
    assert CTPN.from_config(m.to_config(), dtype=jnp.bfloat16) == m
