"""The original DenseNet-CTC recogniser in PyTorch: the peer of `densenet_jax.DenseNet` in the
benchmarks (same layers, BatchNorm epsilon, padding, dropout, CTC loss and Adam).

    python bench/torch_densenet.py --check     # parameter count and logits vs the Flax model

Layout is NCHW (PyTorch's own); `(B, 32, W, 1) uint8` batches are converted by `to_input`.
`load_flax_variables` copies Flax variables (`{"params", "batch_stats"}`) into the module, so
both sides can be checked to compute the same network: `--check` does that with random
weights and, when present, with the shipped `densenet_jax/assets/densenet.npz`.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BN_EPSILON = 1.1e-5
BN_MOMENTUM = 0.1  # Flax's momentum 0.9 is PyTorch's 0.1 (weight of the new batch)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow / XLA "SAME" padding of one axis: `(before, after)`, the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class DenseLayer(nn.Module):
    """BN, ReLU, 3x3 conv with `growth` outputs (with bias); the caller concatenates."""

    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)
        self.conv = nn.Conv2d(channels, growth, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.bn(x)))


class DenseBlock(nn.Module):
    def __init__(self, channels: int, depth: int, growth: int):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(channels + i * growth, growth) for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class Transition(nn.Module):
    """BN, ReLU, 1x1 conv (no bias), dropout, 2x2 average pooling with stride 2."""

    def __init__(self, channels: int, features: int, dropout_rate: float):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)
        self.conv = nn.Conv2d(channels, features, 1, bias=False)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.conv(F.relu(self.bn(x))))
        return F.avg_pool2d(x, 2, 2)


class TorchDenseNet(nn.Module):
    """`(B, 1, 32, W) float32` scaled to `x / 255 - 0.5` -> `(B, W/8, num_classes)` logits."""

    def __init__(
        self,
        num_classes: int = 5990,
        growth: int = 8,
        depth: int = 8,
        first_features: int = 64,
        transition_features: int = 128,
        dropout_rate: float = 0.2,
    ):
        super().__init__()
        self.conv0 = nn.Conv2d(1, first_features, 5, stride=2, bias=False)  # padded in forward
        c = first_features
        self.block0 = DenseBlock(c, depth, growth)
        c += depth * growth
        self.trans0 = Transition(c, transition_features, dropout_rate)
        c = transition_features
        self.block1 = DenseBlock(c, depth, growth)
        c += depth * growth
        self.trans1 = Transition(c, transition_features, dropout_rate)
        c = transition_features
        self.block2 = DenseBlock(c, depth, growth)
        c += depth * growth
        self.bn = nn.BatchNorm2d(c, eps=BN_EPSILON, momentum=BN_MOMENTUM)
        self.out = nn.Linear(4 * c, num_classes)  # height 4 x channels per time step
        for m in self.modules():  # the original's initialisers (he-normal, Glorot uniform)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[2], 5, 2)
        left, right = same_padding(x.shape[3], 5, 2)
        x = self.conv0(F.pad(x, (left, right, top, bottom)))
        x = self.trans0(self.block0(x))
        x = self.trans1(self.block1(x))
        x = F.relu(self.bn(self.block2(x)))
        b, c, h, w = x.shape
        # (B, C, H, W) -> (B, W, H, C): features ordered (height, channel), as the Keras
        # Permute + Flatten and the Flax model.
        x = x.permute(0, 3, 2, 1).reshape(b, w, h * c)
        return self.out(x)


def to_input(batch: np.ndarray) -> torch.Tensor:
    """`(B, 32, W, 1) uint8` -> `(B, 1, 32, W) float32` scaled to `x / 255 - 0.5`."""
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(batch).transpose(0, 3, 1, 2)))
    return x.float() / 255.0 - 0.5


def ctc_loss(
    logits: torch.Tensor,
    logit_lengths: torch.Tensor,
    labels: torch.Tensor,
    label_lengths: torch.Tensor,
) -> torch.Tensor:
    """Mean over the batch of the per-line CTC negative log-likelihood (blank = class 0)."""
    log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)  # (T, B, C)
    losses = F.ctc_loss(
        log_probs,
        labels,
        logit_lengths,
        label_lengths,
        blank=0,
        reduction="none",
        zero_infinity=False,
    )
    return losses.mean()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _modules_in_flax_order(model: TorchDenseNet) -> list[tuple[str, nn.Module]]:
    """(Flax path, module) of every layer with variables."""
    pairs: list[tuple[str, nn.Module]] = [("Conv_0", model.conv0)]
    for b, block in enumerate((model.block0, model.block1, model.block2)):
        for i, layer in enumerate(block.layers):
            pairs += [
                (f"DenseBlock_{b}/BatchNorm_{i}", layer.bn),
                (f"DenseBlock_{b}/Conv_{i}", layer.conv),
            ]
    for t, trans in enumerate((model.trans0, model.trans1)):
        pairs += [(f"Transition_{t}/BatchNorm_0", trans.bn), (f"Transition_{t}/Conv_0", trans.conv)]
    pairs += [("BatchNorm_0", model.bn), ("out", model.out)]
    return pairs


def load_flax_variables(model: TorchDenseNet, variables: Mapping[str, Any]) -> None:
    """Copies Flax `DenseNet` variables into `model` (kernels transposed to PyTorch layout)."""

    def get(tree: Mapping[str, Any], path: str) -> Mapping[str, Any]:
        for key in path.split("/"):
            tree = tree[key]
        return tree

    def tensor(a: Any) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32))

    with torch.no_grad():
        for path, m in _modules_in_flax_order(model):
            p = get(variables["params"], path)
            if isinstance(m, nn.BatchNorm2d):
                s = get(variables["batch_stats"], path)
                m.weight.copy_(tensor(p["scale"]))
                m.bias.copy_(tensor(p["bias"]))
                m.running_mean.copy_(tensor(s["mean"]))
                m.running_var.copy_(tensor(s["var"]))
            elif isinstance(m, nn.Conv2d):  # (kh, kw, in, out) -> (out, in, kh, kw)
                m.weight.copy_(tensor(p["kernel"]).permute(3, 2, 0, 1))
                if m.bias is not None:
                    m.bias.copy_(tensor(p["bias"]))
            else:  # Linear: (in, out) -> (out, in)
                m.weight.copy_(tensor(p["kernel"]).T)
                m.bias.copy_(tensor(p["bias"]))


def check_same_network(
    variables: Mapping[str, Any], batch: np.ndarray, labels: np.ndarray, label_lengths: np.ndarray
) -> dict[str, float]:
    """Runs the Flax model (inference mode) and the PyTorch one with the same `variables` on
    one uint8 batch; returns the largest logit difference (absolute, and relative to the
    largest logit) and both mean CTC losses, each computed by its own library."""
    import jax.numpy as jnp

    from densenet_jax import DenseNet
    from densenet_jax.ctc import ctc_loss as jax_ctc_loss
    from densenet_jax.preprocess import normalize

    model = DenseNet()
    jax_logits = np.asarray(model.apply(dict(variables), normalize(jnp.asarray(batch))))
    peer = TorchDenseNet().eval()
    load_flax_variables(peer, variables)
    with torch.inference_mode():
        torch_logits = peer(to_input(batch))
        steps = torch.full((len(batch),), torch_logits.shape[1], dtype=torch.long)
        torch_loss = float(
            ctc_loss(
                torch_logits,
                steps,
                torch.from_numpy(labels).long(),
                torch.from_numpy(label_lengths).long(),
            )
        )
    jax_loss = float(
        jnp.mean(
            jax_ctc_loss(
                jnp.asarray(jax_logits),
                jnp.full((len(batch),), jax_logits.shape[1]),
                jnp.asarray(labels),
                jnp.asarray(label_lengths),
            )
        )
    )
    diff = np.abs(jax_logits - torch_logits.numpy())
    return {
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(diff.max() / np.abs(jax_logits).max()),
        "jax_loss": jax_loss,
        "torch_loss": torch_loss,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--check",
        action="store_true",
        help="check parameter count and logits against the Flax model",
    )
    p.add_argument("--width", type=int, default=280)
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"parameters: {count_parameters(TorchDenseNet()):,}")
    if not args.check:
        return
    import jax

    from densenet_jax import DenseNet

    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (4, 32, args.width, 1), dtype=np.uint8)
    labels = rng.integers(1, 5990, (4, 10)).astype(np.int32)
    lengths = np.full((4,), 10, np.int32)
    flax_vars = jax.device_get(DenseNet().init(jax.random.key(0), np.zeros((1, 32, 64, 1))))
    sources = [("random init", flax_vars)]
    from densenet_jax.weights import shipped_weights

    shipped = shipped_weights()
    if os.path.exists(shipped):
        from densenet_jax.weights import load_recognizer

        sources.append(("densenet_jax/assets/densenet.npz", load_recognizer(shipped)[1]))
    for name, variables in sources:
        r = check_same_network(variables, batch, labels, lengths)
        print(
            f"{name}: max |logit diff| {r['max_abs_diff']:.2e} "
            f"(relative {r['max_rel_diff']:.2e}), CTC loss jax {r['jax_loss']:.5f} "
            f"torch {r['torch_loss']:.5f}"
        )


if __name__ == "__main__":
    main()
