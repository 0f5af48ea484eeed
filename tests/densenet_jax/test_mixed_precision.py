"""The bfloat16 compute switch: float32 parameters and loss, a loss that behaves like float32."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from densenet_jax import task


@pytest.fixture
def fixed_batch(tiny_config):
    cfg = tiny_config()
    return cfg, next(task.make_train_iter(cfg, "synth", 8, 0, 0))


def _train(fit_batch, cfg: task.Config, batch: dict, steps: int):
    """The losses and final params of `steps` Adam steps, and the first step's logits."""
    model = task.build_model(cfg)
    v = task.init_variables(model, cfg, jax.random.key(0))  # the same init as fit_batch's
    logits = jax.jit(lambda v: model.apply(v, batch["image"] / 255.0 - 0.5))(v)
    losses, params, _ = fit_batch(cfg, batch, steps)
    return losses, params, logits


def test_bfloat16_step_is_finite_and_close_to_float32(fixed_batch, fit_batch):
    cfg, batch = fixed_batch
    bf16 = dataclasses.replace(cfg, compute_dtype="bfloat16")
    assert task.build_model(bf16).dtype == jnp.bfloat16
    l32, p32, y32 = _train(fit_batch, cfg, batch, 12)
    l16, p16, y16 = _train(fit_batch, bf16, batch, 12)
    # Master weights and outputs stay float32.
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(p16))
    assert y16.dtype == jnp.float32
    assert np.isfinite(l16).all()
    # Same start (bfloat16 keeps ~3 significant digits), and the loss falls as in float32.
    np.testing.assert_allclose(l16[0], l32[0], rtol=0.05)
    assert l16[-1] < 0.8 * l16[0] and l32[-1] < 0.8 * l32[0], (l32, l16)
    np.testing.assert_allclose(l16, l32, rtol=0.05)


def test_unknown_compute_dtype_is_refused(fixed_batch):
    cfg, _ = fixed_batch
    with pytest.raises(ValueError, match="compute_dtype"):
        task.build_model(dataclasses.replace(cfg, compute_dtype="float16"))
