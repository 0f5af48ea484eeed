"""The CTPN network (Tian et al., 2016) as a Flax linen module.

VGG16 conv1_1 .. conv5_3 (stride 16), a 3x3 "sliding window" convolution, a bidirectional
LSTM along every feature-map row, a fully connected layer and three heads per position for
``K`` anchors: text/non-text logits, vertical coordinates and side-refinement offsets.

``width`` multiplies every channel count (VGG stages, sliding window, LSTM units, fully
connected layer); ``width=1.0`` is the original network, ``CPU_WIDTH`` the narrow one we use
on CPUs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ctpn_jax.anchors import NUM_ANCHORS

#: (channels, convolutions) of the five VGG16 stages; a 2x2 max-pool follows stages 1-4.
VGG16_STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
#: Per-channel RGB mean and scale used to normalise the 0..255 input inside the model.
PIXEL_MEAN: tuple[float, float, float] = (123.68, 116.78, 103.94)
PIXEL_STD: tuple[float, float, float] = (58.4, 57.1, 57.4)
#: The width multiplier we use on CPUs (about 1/16 of the original's convolution FLOPs).
CPU_WIDTH: float = 0.25


def scaled_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to a multiple of 8 (at least 8)."""
    return max(8, int(round(channels * width / 8.0)) * 8)


@dataclasses.dataclass(frozen=True)
class CTPNConfig:
    """Hyper-parameters of the network (everything needed to rebuild it from metadata).

    The detector's training config extends this class, so that these settings are written
    once; ``CTPN`` has the same fields (a test keeps them equal).

    Attributes:
        width: channel multiplier (1.0 = original).
        num_anchors: anchors per position (k).
        rnn_units: LSTM units per direction at ``width=1``.
        fc_units: fully connected units at ``width=1``.
        window_units: sliding-window convolution channels at ``width=1``.
    """

    width: float = 1.0
    num_anchors: int = NUM_ANCHORS
    rnn_units: int = 128
    fc_units: int = 512
    window_units: int = 512

    def to_dict(self) -> dict[str, Any]:
        """These fields alone as plain data (of a subclass too, e.g. a training config)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(CTPNConfig)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CTPNConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def normalize_images(images: jax.Array) -> jax.Array:
    """``(B, H, W, 3)`` 0..255 RGB (any dtype) -> ``(B, H, W, 3) float32`` about zero mean."""
    x = jnp.asarray(images, jnp.float32)
    return (x - jnp.asarray(PIXEL_MEAN, jnp.float32)) / jnp.asarray(PIXEL_STD, jnp.float32)


class VGG16Features(nn.Module):
    """VGG16 conv1_1 .. conv5_3 with ReLU; ``(B, H, W, C)`` -> ``(B, ceil(H/16), ceil(W/16), C')``.

    Max-pools use ``SAME`` padding, so any input size works; sizes that are multiples of 16
    give exactly ``H/16 x W/16`` features.
    """

    width: float = 1.0
    stages: Sequence[tuple[int, int]] = VGG16_STAGES
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
        for s, (channels, n_convs) in enumerate(self.stages):
            c = scaled_channels(channels, self.width)
            for i in range(n_convs):
                x = nn.Conv(
                    c,
                    (3, 3),
                    padding="SAME",
                    kernel_init=init,
                    dtype=self.dtype,
                    name=f"conv{s + 1}_{i + 1}",
                )(x)
                x = nn.relu(x)
            if s < len(self.stages) - 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
        return x


class CTPN(nn.Module):
    """Connectionist Text Proposal Network.

    Attributes:
        width: channel multiplier (1.0 = the original VGG16 / 512 / 2x128 / 512 network).
        num_anchors: anchors per feature-map position (k = 10).
        rnn_units: LSTM units per direction at width 1 (128).
        fc_units: units of the fully connected layer at width 1 (512).
        window_units: channels of the 3x3 sliding-window convolution at width 1 (512).
        dtype: computation dtype (parameters stay float32; outputs are float32).
    """

    # CTPNConfig's fields, with its defaults (Flax needs them as fields of the module).
    width: float = CTPNConfig.width
    num_anchors: int = CTPNConfig.num_anchors
    rnn_units: int = CTPNConfig.rnn_units
    fc_units: int = CTPNConfig.fc_units
    window_units: int = CTPNConfig.window_units
    dtype: Any = jnp.float32

    @classmethod
    def from_config(cls, config: CTPNConfig, dtype: Any = jnp.float32) -> CTPN:
        """The network of ``config`` (a ``CTPNConfig``, or a subclass such as the training
        config: only ``CTPNConfig``'s fields are read)."""
        return cls(**config.to_dict(), dtype=dtype)

    def to_config(self) -> CTPNConfig:
        """This network's hyper-parameters (all but ``dtype``)."""
        return CTPNConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(CTPNConfig)})

    @nn.compact
    def __call__(
        self, images: jax.Array, valid_width: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """Run the network.

        Args:
            images: ``(B, H, W, 3)`` RGB pixel values in 0..255 (uint8 or float); H and W
                should be multiples of 16.
            valid_width: optional ``(B,) int32`` number of valid feature-map columns per image
                (images padded on the right); the LSTM then runs over those columns only.

        Returns:
            A dict with ``Hf = ceil(H/16)``, ``Wf = ceil(W/16)``, ``K = num_anchors``:

            - ``"cls_logits"``: ``(B, Hf, Wf, K, 2) float32``, index 1 = text;
            - ``"vertical"``: ``(B, Hf, Wf, K, 2) float32``, ``(v_c, v_h)`` relative to the
              anchor: ``v_c = (c_y - c_y^a) / h^a``, ``v_h = log(h / h^a)``;
            - ``"side"``: ``(B, Hf, Wf, K) float32``, ``o = (x_side - c_x^a) / w^a``.
        """
        x = normalize_images(images).astype(self.dtype)
        x = VGG16Features(self.width, dtype=self.dtype, name="vgg16")(x)
        init = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
        x = nn.Conv(
            scaled_channels(self.window_units, self.width),
            (3, 3),
            padding="SAME",
            kernel_init=init,
            dtype=self.dtype,
            name="rpn_conv",
        )(x)
        x = nn.relu(x)

        b, hf, wf, c = x.shape
        rows = x.reshape(b * hf, wf, c)
        seq_lengths = None
        if valid_width is not None:
            vw = jnp.clip(jnp.asarray(valid_width, jnp.int32), 1, wf)
            seq_lengths = jnp.repeat(vw, hf)
        units = scaled_channels(self.rnn_units, self.width)
        blstm = nn.Bidirectional(
            nn.RNN(nn.OptimizedLSTMCell(units, dtype=self.dtype, name="lstm_fw")),
            nn.RNN(nn.OptimizedLSTMCell(units, dtype=self.dtype, name="lstm_bw")),
            name="blstm",
        )
        rows = blstm(rows, seq_lengths=seq_lengths)
        x = rows.reshape(b, hf, wf, 2 * units)

        x = nn.Dense(scaled_channels(self.fc_units, self.width), dtype=self.dtype, name="fc")(x)
        x = nn.relu(x)

        k = self.num_anchors
        head_init = nn.initializers.normal(0.01)
        cls = nn.Dense(2 * k, kernel_init=head_init, dtype=self.dtype, name="cls")(x)
        vert = nn.Dense(2 * k, kernel_init=head_init, dtype=self.dtype, name="vertical")(x)
        side = nn.Dense(k, kernel_init=head_init, dtype=self.dtype, name="side")(x)
        return {
            "cls_logits": cls.reshape(b, hf, wf, k, 2).astype(jnp.float32),
            "vertical": vert.reshape(b, hf, wf, k, 2).astype(jnp.float32),
            "side": side.astype(jnp.float32),
        }


def init_ctpn(model: CTPN, key: jax.Array, image_shape: tuple[int, ...] = (1, 64, 64, 3)) -> dict:
    """Initialise ``model``'s variables from ``key`` (jitted, compiled once per model and
    key type); parameters do not depend on ``image_shape``.

    The initialisers draw from an ``rbg`` key derived deterministically from ``key``: XLA:CPU
    compiles the ~50 unrolled threefry draws of this network slowly (about 20 s against 6 s).

    Returns:
        ``{"params": ...}``.
    """
    return _init_jit(model, key, tuple(image_shape))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init_jit(model: CTPN, key: jax.Array, image_shape: tuple[int, ...]) -> dict:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    data = jnp.asarray(data, jnp.uint32).reshape(-1)[:2]
    rbg = jax.random.wrap_key_data(
        jnp.concatenate([data, data ^ jnp.uint32(0x9E3779B9)]), impl="rbg"
    )
    return model.init(rbg, jnp.zeros(image_shape, jnp.float32))
