"""DenseNet + CTC text-line recogniser (the original chinese_ocr network), as a linen module.

Layer list of the original Keras model (BatchNorm epsilon 1.1e-5, he-normal convolutions):

  conv 64 5x5 /2 (no bias)                                    (B, 16, W/2, 64)
  dense block: 8 x [BN, ReLU, conv 8 3x3]  +concat             (B, 16, W/2, 128)
  transition: BN, ReLU, conv 128 1x1 (no bias), dropout 0.2, avgpool 2x2 /2
                                                               (B, 8, W/4, 128)
  dense block                                                  (B, 8, W/4, 192)
  transition                                                   (B, 4, W/8, 128)
  dense block                                                  (B, 4, W/8, 192)
  BN, ReLU, permute to (B, W/8, 4, 192), flatten to (B, W/8, 768)
  dense to num_classes                                         (B, W/8, num_classes)

The model returns logits (the original's softmax is left to the loss and the decoders).

The dense blocks have two formulations of one function with the same variables, chosen by
`DenseNet(implementation=...)`: "fast" (the default; `dense_block.py`: batch statistics once
per channel and a hand-written backward pass, which trains faster on a CPU) and "reference"
(`DenseBlock`, flax's BatchNorm and Conv layers as listed above). Tests hold them equal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from densenet_jax import dense_block

BN_EPSILON = 1.1e-5
#: Dense blocks of the network (a transition between each two).
NUM_DENSE_BLOCKS = 3
he_normal = nn.initializers.he_normal()


@dataclasses.dataclass(frozen=True)
class DenseNetConfig:
    """The layer sizes of a `DenseNet` as plain data; the defaults are the original's.

    The number of output classes is not here: it is the charset's size (`num_classes` of
    the module). The recogniser's training config extends this class, so that these
    settings are written once; `DenseNet` has the same fields (a test keeps them equal).

    Attributes:
      growth: channels added by each dense layer.
      depth: layers per dense block.
      first_features: channels of the first convolution.
      transition_features: channels after each transition.
      dropout_rate: dropout in the transitions (training only).
      pooltype: transition pooling (2: stride 2, original; 1: stride (2, 1)).
      last_pooltype: the last transition's pooling (None: ``pooltype``). 1 under pooltype 2
        halves the time step to 4 px (T ~ W/4), so that thin and doubled characters get
        steps of their own, while only the last dense block and the output layer run on
        the doubled steps.
    """

    growth: int = 8
    depth: int = 8
    first_features: int = 64
    transition_features: int = 128
    dropout_rate: float = 0.2
    pooltype: int = 2
    last_pooltype: int | None = None


class DenseBlock(nn.Module):
    """`depth` x [BN, ReLU, 3x3 conv with `growth` outputs], each concatenated to its input.

    The readable reference (`implementation="reference"` of `DenseNet`); `DenseBlockFast` is
    the same function with the same variables, faster to train.
    """

    depth: int
    growth: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        for _ in range(self.depth):
            y = nn.BatchNorm(use_running_average=not train, epsilon=BN_EPSILON, dtype=self.dtype)(x)
            y = nn.relu(y)
            y = nn.Conv(
                self.growth, (3, 3), padding="SAME", kernel_init=he_normal, dtype=self.dtype
            )(y)
            x = jnp.concatenate([x, y], axis=-1)
        return x


class _BatchNormVariables(nn.Module):
    """The variables of `nn.BatchNorm(features)` (same names, shapes and initial values)
    and its running-average update, without its computation."""

    features: int
    momentum: float = 0.99  # nn.BatchNorm's default, as in the reference

    def setup(self) -> None:
        shape = (self.features,)
        self.scale = self.param("scale", nn.initializers.ones, shape, jnp.float32)
        self.bias = self.param("bias", nn.initializers.zeros, shape, jnp.float32)
        self.mean = self.variable("batch_stats", "mean", jnp.zeros, shape, jnp.float32)
        self.var = self.variable("batch_stats", "var", jnp.ones, shape, jnp.float32)

    def __call__(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        """`(scale, bias)`, `(features,)` float32 each."""
        return self.scale, self.bias

    def update(self, mean: jnp.ndarray, var: jnp.ndarray) -> None:
        """Moves the running averages towards the batch's `mean` and `var`."""
        if not self.is_initializing():
            m = self.momentum
            self.mean.value = m * self.mean.value + (1 - m) * mean
            self.var.value = m * self.var.value + (1 - m) * var


class _ConvVariables(nn.Module):
    """The variables of `nn.Conv(features, (3, 3))` over `in_features` channels."""

    in_features: int
    features: int

    @nn.compact
    def __call__(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        """`(kernel, bias)`: `(3, 3, in_features, features)` and `(features,)` float32."""
        kernel = self.param("kernel", he_normal, (3, 3, self.in_features, self.features))
        return kernel, self.param("bias", nn.initializers.zeros, (self.features,))


class DenseBlockFast(nn.Module):
    """`DenseBlock`'s function and variables, computed by `dense_block.py`
    (`implementation="fast"`): batch statistics once per channel and a hand-written
    backward pass, which trains faster on a CPU (bench/RESULTS.md, issue 38). Same results up
    to float rounding.
    """

    depth: int
    growth: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        c0 = x.shape[-1]
        norms = [
            _BatchNormVariables(c0 + i * self.growth, name=f"BatchNorm_{i}")
            for i in range(self.depth)
        ]
        convs = [
            _ConvVariables(c0 + i * self.growth, self.growth, name=f"Conv_{i}")
            for i in range(self.depth)
        ]
        layers = [(*norm(), *conv()) for norm, conv in zip(norms, convs, strict=True)]
        if not train:
            stats = [(norm.mean.value, norm.var.value) for norm in norms]
            return dense_block.dense_block_inference(x, layers, stats, BN_EPSILON)
        out, (mean, var) = dense_block.dense_block_train(x, layers, BN_EPSILON)
        for norm in norms:
            norm.update(mean[: norm.features], var[: norm.features])
        return out


class Transition(nn.Module):
    """BN, ReLU, 1x1 conv (no bias), dropout, 2x2 average pooling.

    pooltype 2 (the shipped model): stride 2 in both axes. pooltype 1: zero-pad the width
    by 1 on each side and pool with stride (2, 1), which keeps more time steps.
    """

    features: int
    dropout_rate: float
    pooltype: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = nn.BatchNorm(use_running_average=not train, epsilon=BN_EPSILON, dtype=self.dtype)(x)
        x = nn.relu(x)
        x = nn.Conv(self.features, (1, 1), use_bias=False, kernel_init=he_normal, dtype=self.dtype)(
            x
        )
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        if self.pooltype == 2:
            return nn.avg_pool(x, (2, 2), strides=(2, 2))
        if self.pooltype == 1:
            x = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
            return nn.avg_pool(x, (2, 2), strides=(2, 1))
        raise ValueError(f"pooltype must be 1 or 2, got {self.pooltype}")


#: The dense block of each `DenseNet.implementation`: one function, two formulations.
DENSE_BLOCKS = {"reference": DenseBlock, "fast": DenseBlockFast}


class DenseNet(nn.Module):
    """The DenseNet-CTC recogniser. `DenseNet()` is the original 5990-class model.

    Attributes:
      num_classes: output classes including the CTC blank (class 0).
      growth, depth, first_features, transition_features, dropout_rate, pooltype,
        last_pooltype: the layer sizes, as `DenseNetConfig` describes them.
      dtype: computation dtype (parameters stay float32).
      implementation: how the dense blocks compute, the same function and variables either
        way: "fast" (`DenseBlockFast`, the default) or "reference" (`DenseBlock`, flax's
        layers).
    """

    num_classes: int = 5990
    # DenseNetConfig's fields, with its defaults (Flax needs them as fields of the module).
    growth: int = DenseNetConfig.growth
    depth: int = DenseNetConfig.depth
    first_features: int = DenseNetConfig.first_features
    transition_features: int = DenseNetConfig.transition_features
    dropout_rate: float = DenseNetConfig.dropout_rate
    pooltype: int = DenseNetConfig.pooltype
    last_pooltype: int | None = DenseNetConfig.last_pooltype
    dtype: Any = jnp.float32
    implementation: str = "fast"

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        """Logits per time step.

        Args:
          x: `(B, 32, W, 1)` float32 line images scaled to `pixel / 255 - 0.5`.
          train: batch statistics and dropout on (needs a 'dropout' rng, mutable 'batch_stats').

        Returns:
          `(B, T, num_classes)` logits with `T = self.output_length(W)` (W/8 for pooltype 2,
          W/4 + 1 with last_pooltype 1).
        """
        x = x.astype(self.dtype)
        x = nn.Conv(
            self.first_features,
            (5, 5),
            strides=(2, 2),
            padding="SAME",
            use_bias=False,
            kernel_init=he_normal,
            dtype=self.dtype,
        )(x)
        if self.implementation not in DENSE_BLOCKS:
            raise ValueError(
                f"implementation must be one of {sorted(DENSE_BLOCKS)}, got {self.implementation!r}"
            )
        block = DENSE_BLOCKS[self.implementation]
        for i in range(NUM_DENSE_BLOCKS):
            if i:
                x = Transition(
                    self.transition_features, self.dropout_rate, self.pooltypes[i - 1], self.dtype
                )(x, train)
            x = block(self.depth, self.growth, self.dtype, name=f"DenseBlock_{i}")(x, train)
        x = nn.BatchNorm(use_running_average=not train, epsilon=BN_EPSILON, dtype=self.dtype)(x)
        x = nn.relu(x)
        b, h, w, c = x.shape
        # Keras Permute((2, 1, 3)) + Flatten: features ordered (height, channel) per time step.
        x = jnp.transpose(x, (0, 2, 1, 3)).reshape(b, w, h * c)
        logits = nn.Dense(
            self.num_classes,
            kernel_init=nn.initializers.xavier_uniform(),
            dtype=self.dtype,
            name="out",
        )(x)
        return logits.astype(jnp.float32)

    @classmethod
    def from_config(
        cls,
        config: DenseNetConfig,
        num_classes: int,
        dtype: Any = jnp.float32,
        implementation: str = "fast",
    ) -> DenseNet:
        """The network of `config`'s layer sizes (any object with `DenseNetConfig`'s fields,
        e.g. the training config) with `num_classes` outputs."""
        sizes = {f.name: getattr(config, f.name) for f in dataclasses.fields(DenseNetConfig)}
        return cls(num_classes=num_classes, dtype=dtype, implementation=implementation, **sizes)

    def to_config(self) -> DenseNetConfig:
        """This network's layer sizes (all but `num_classes` and `dtype`)."""
        return DenseNetConfig(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(DenseNetConfig)}
        )

    def architecture(self) -> dict[str, Any]:
        """Everything that fixes the parameters' shapes and meaning, as plain data (the
        `config` of exported weights: `DenseNet(**model.architecture())` rebuilds it)."""
        return {"num_classes": self.num_classes, **dataclasses.asdict(self.to_config())}

    @property
    def pooltypes(self) -> tuple[int, ...]:
        """The pooling of each transition, first to last."""
        last = self.pooltype if self.last_pooltype is None else self.last_pooltype
        return (self.pooltype,) * (NUM_DENSE_BLOCKS - 2) + (last,)

    def output_length(self, width: int) -> int:
        """Number of time steps T for an input of `width` pixels."""
        w = -(-width // 2)  # conv stride 2, SAME padding
        for pooltype in self.pooltypes:
            w = w // 2 if pooltype == 2 else w + 1
        return w
