"""The DenseNet's dense block as plain functions, with a hand-written backward pass in training.

A dense block is `depth` layers of [BatchNorm, ReLU, 3x3 convolution with `growth` outputs],
each layer's output concatenated to its input. `model.DenseBlock` writes it with flax's
layers, the readable reference; this file computes the same function faster on a CPU, where
the block is bound by memory traffic, not arithmetic (its convolutions have only 8 outputs):

* The batch statistics of a channel are computed once, when the channel is written. A
  channel's values never change afterwards; only each layer's scale and offset differ.
* The backward pass is written by hand (`jax.custom_vjp`) instead of derived by autodiff.
  The forward keeps only the block's output (the normalised activations are recomputed from
  it); the input gradient of each convolution and its kernel gradient are two well-shaped
  matmuls over the nine shifted copies of the output gradient; the gradients that flow
  through the batch mean and variance of a channel are summed over all the layers that read
  the channel and applied once, when the channel's gradient is complete.

Layer parameters, per layer l reading `C_l = C_0 + l * growth` channels:
  scale, bias: `(C_l,)` float32, the BatchNorm's; kernel: `(3, 3, C_l, growth)`, bias of
  the convolution: `(growth,)`. The BatchNorm epsilon is the module's (`BN_EPSILON`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp

#: (scale, bias, kernel, conv_bias) of one dense layer.
Layer = tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray]

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def channel_stats(x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Batch mean and variance per channel of `(B, H, W, C)` `x`, `(C,)` float32 each, as
    `nn.BatchNorm` computes them (E[x^2] - E[x]^2, clipped at 0)."""
    x = x.astype(_stats_dtype(x))
    mean = x.mean(axis=(0, 1, 2))
    mean2 = jnp.square(x).mean(axis=(0, 1, 2))
    return mean, jnp.maximum(0.0, mean2 - jnp.square(mean))


def _stats_dtype(x: jnp.ndarray) -> jnp.dtype:
    """float32, or wider if `x` is: statistics and gradients are summed at least in float32."""
    return jnp.promote_types(x.dtype, jnp.float32)


def _affine(scale, bias, mean, var, eps) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per-channel `(a, b)` with `BatchNorm(x) = a * x + b` for statistics `mean`, `var`."""
    a = scale * jax.lax.rsqrt(var + eps)
    return a, bias - mean * a


def _conv3x3(z: jnp.ndarray, kernel: jnp.ndarray, conv_bias: jnp.ndarray) -> jnp.ndarray:
    """SAME 3x3 convolution, `(B, H, W, C)` -> `(B, H, W, F)` in `z`'s dtype."""
    kernel, conv_bias = kernel.astype(z.dtype), conv_bias.astype(z.dtype)
    y = jax.lax.conv_general_dilated(z, kernel, (1, 1), "SAME", dimension_numbers=_DIMENSIONS)
    return y + conv_bias


def dense_block_inference(
    x: jnp.ndarray,
    layers: Sequence[Layer],
    stats: Sequence[tuple[jnp.ndarray, jnp.ndarray]],
    eps: float,
) -> jnp.ndarray:
    """The block with fixed statistics (inference: each layer's running averages).

    Args:
      x: `(B, H, W, C_0)` block input.
      layers: per layer (scale, bias, kernel, conv_bias).
      stats: per layer `(mean, var)`, `(C_l,)` each.
      eps: the BatchNorm epsilon.

    Returns:
      `(B, H, W, C_0 + depth * growth)` in `x`'s dtype.
    """
    for (scale, bias, kernel, conv_bias), (mean, var) in zip(layers, stats, strict=True):
        a, b = _affine(scale, bias, mean, var, eps)
        z = jax.nn.relu(x * a.astype(x.dtype) + b.astype(x.dtype))
        x = jnp.concatenate([x, _conv3x3(z, kernel, conv_bias)], axis=-1)
    return x


def dense_block_train(
    x: jnp.ndarray, layers: Sequence[Layer], eps: float
) -> tuple[jnp.ndarray, tuple[jnp.ndarray, jnp.ndarray]]:
    """The block in training mode (batch statistics), with its hand-written backward pass.

    Args:
      x: `(B, H, W, C_0)` block input.
      layers: per layer (scale, bias, kernel, conv_bias).
      eps: the BatchNorm epsilon.

    Returns:
      The block output `(B, H, W, C_0 + depth * growth)` in `x`'s dtype, and the batch
      `(mean, var)` of each of its channels (float32, for the running averages; no gradient
      flows through them).
    """
    out, mean, var = _block(x, tuple(tuple(layer) for layer in layers), eps)
    return out, (jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var))


def _forward(x, layers, eps):
    stats = [channel_stats(x)]
    groups = [x]
    for scale, bias, kernel, conv_bias in layers:
        mean, var = (jnp.concatenate(s) for s in zip(*stats, strict=True))
        a, b = _affine(scale, bias, mean, var, eps)
        z = jax.nn.relu(jnp.concatenate(groups, axis=-1) * a.astype(x.dtype) + b.astype(x.dtype))
        y = _conv3x3(z, kernel, conv_bias)
        groups.append(y)
        stats.append(channel_stats(y))
    mean, var = (jnp.concatenate(s) for s in zip(*stats, strict=True))
    return jnp.concatenate(groups, axis=-1), mean, var


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _block(x, layers, eps):
    return _forward(x, layers, eps)


def _block_fwd(x, layers, eps):
    out, mean, var = _forward(x, layers, eps)
    return (out, mean, var), (out, mean, var, layers)


def _shifted_taps(d: jnp.ndarray) -> jnp.ndarray:
    """`(B, H, W, F)` -> `(B, H, W, 9 F)`: for tap (i, j) of the 3x3 window, `d` at
    `(h - i + 1, w - j + 1)` (zero outside), the taps in the kernel's (i, j) order.

    A convolution's input gradient is `taps @ kernel^T` and its kernel gradient
    `input^T @ taps`, both over the `B H W` positions."""
    _, h, w, _ = d.shape
    padded = jnp.pad(d, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return jnp.concatenate(
        [padded[:, 2 - i : 2 - i + h, 2 - j : 2 - j + w] for i in range(3) for j in range(3)],
        axis=-1,
    )


def _block_bwd(eps, residuals, cotangents):
    out, mean, var, layers = residuals
    acc = _stats_dtype(out)
    d_out = cotangents[0].astype(acc)  # the statistics' cotangents are zero
    b, h, w, c_all = out.shape
    n = b * h * w
    rstd = jax.lax.rsqrt(var + eps)
    # Gradient of the loss through the batch mean and the inverse standard deviation of
    # each channel, summed over the layers that read it; applied to the channel's values
    # once all of those layers are done (`complete`).
    d_mean = jnp.zeros((c_all,), acc)
    d_rstd = jnp.zeros((c_all,), acc)
    # mean2 - mean^2 was clipped at zero in the forward: no gradient where it was.
    var_grad = jnp.where(var > 0, -0.5 * rstd**3, 0.0)

    def complete(lo, hi):
        """The finished gradient of channels [lo, hi) of the block output."""
        centred = out[..., lo:hi].astype(acc) - mean[lo:hi]
        d_var = d_rstd[lo:hi] * var_grad[lo:hi]
        return d_out[..., lo:hi] + d_mean[lo:hi] / n + d_var * (2.0 / n) * centred

    layer_grads = []
    for scale, bias, kernel, _ in reversed(layers):
        c, f = kernel.shape[2], kernel.shape[3]
        dy = complete(c, c + f)
        # Recompute this layer's normalised input from the block output.
        x = out[..., :c].astype(acc)
        a, offset = _affine(scale, bias, mean[:c], var[:c], eps)
        z = jax.nn.relu(x * a + offset)
        taps = _shifted_taps(dy).reshape(n, 9 * f)
        kernel_matrix = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(c, 9 * f)
        d_kernel = (z.reshape(n, c).T @ taps).reshape(c, 3, 3, f).transpose(1, 2, 0, 3)
        d_z = (taps @ kernel_matrix.T).reshape(b, h, w, c)
        d_pre = jnp.where(z > 0, d_z, 0.0)
        d_bias = d_pre.sum(axis=(0, 1, 2))
        d_scale = ((d_pre * x).sum(axis=(0, 1, 2)) - mean[:c] * d_bias) * rstd[:c]
        d_out = d_out.at[..., :c].add(d_pre * a)
        d_mean = d_mean.at[:c].add(-rstd[:c] * scale * d_bias)
        d_rstd = d_rstd.at[:c].add(scale * d_scale / rstd[:c])
        layer_grads.append((d_scale, d_bias, d_kernel.astype(kernel.dtype), dy.sum(axis=(0, 1, 2))))
    c0 = out.shape[-1] - sum(kernel.shape[3] for _, _, kernel, _ in layers)
    d_x = complete(0, c0).astype(out.dtype)
    return d_x, tuple(reversed(layer_grads))


_block.defvjp(_block_fwd, _block_bwd)
