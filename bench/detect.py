"""CTPN forward pass at 600 x 900, ours (JAX) vs the same network in PyTorch, in one run.

    python bench/detect.py [--size 600 900] [--widths 1.0 0.25] [--repeats 10]

For each channel width (1.0 = the original VGG16 / 512 / 2 x 128 LSTM / 512 network; the
shipped `ctpn_jax/assets/ctpn.npz` has 0.25) it times one image, batch 1, float32, through VGG16
conv1_1 .. conv5_3, the 3x3 sliding window, the bidirectional LSTM along every feature-map
row, the fully connected layer and the three heads: our jitted `ctpn_jax.CTPN` against the
same layers in PyTorch eager (`nn.LSTM`, max pools with `ceil_mode`, as our SAME pools).
The PyTorch LSTM has two bias vectors per gate where Flax has one, so it holds a few more
parameters; weights are random on both sides (speed does not depend on them).

Each figure is the median of `--repeats` forward passes, the implementations taking turns;
our compile time and PyTorch's first call are reported apart. GFLOP per pass comes from
XLA's cost analysis and is used for both.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import jax
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ctpn_jax.model import CTPN, PIXEL_MEAN, PIXEL_STD, VGG16_STAGES, init_ctpn, scaled_channels

NUM_ANCHORS = 10


class TorchCTPN(nn.Module):
    """`(B, 3, H, W)` RGB 0..255 -> cls `(B, Hf, Wf, 2k)`, vertical `(B, Hf, Wf, 2k)`, side
    `(B, Hf, Wf, k)`, the layers of `ctpn_jax.CTPN` at channel multiplier `width`."""

    def __init__(
        self,
        width: float = 1.0,
        rnn_units: int = 128,
        fc_units: int = 512,
        window_units: int = 512,
        k: int = NUM_ANCHORS,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for s, (channels, n_convs) in enumerate(VGG16_STAGES):
            c = scaled_channels(channels, width)
            for _ in range(n_convs):
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = c
            if s < len(VGG16_STAGES) - 1:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        self.vgg = nn.Sequential(*layers)
        window = scaled_channels(window_units, width)
        self.rpn_conv = nn.Conv2d(c_in, window, 3, padding=1)
        units = scaled_channels(rnn_units, width)
        self.blstm = nn.LSTM(window, units, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * units, scaled_channels(fc_units, width))
        self.cls = nn.Linear(self.fc.out_features, 2 * k)
        self.vertical = nn.Linear(self.fc.out_features, 2 * k)
        self.side = nn.Linear(self.fc.out_features, k)
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.vgg((images - self.mean) / self.std)
        x = F.relu(self.rpn_conv(x))
        b, c, hf, wf = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(b * hf, wf, c)  # one sequence per feature-map row
        rows, _ = self.blstm(rows)
        x = F.relu(self.fc(rows.reshape(b, hf, wf, -1)))
        return self.cls(x), self.vertical(x), self.side(x)


def jax_forward(width: float, image: np.ndarray) -> tuple[Callable[[], None], float, float, int]:
    """`(run, compile seconds, FLOP per pass, parameters)` of our CTPN on `image (1, H, W, 3)`."""
    model = CTPN(width=width)
    variables = init_ctpn(model, jax.random.key(0), image.shape)
    params = sum(x.size for x in jax.tree.leaves(variables))
    x = jax.device_put(image)
    t = time.perf_counter()
    compiled = jax.jit(model.apply).lower(variables, x).compile()
    compile_s = time.perf_counter() - t
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", float("nan")))

    def run() -> None:
        jax.block_until_ready(compiled(variables, x))

    return run, compile_s, flops, params


def torch_forward(width: float, image: np.ndarray) -> tuple[Callable[[], None], int]:
    """`(run, parameters)` of the PyTorch peer on the same image."""
    model = TorchCTPN(width).eval()
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2))).float()

    def run() -> None:
        with torch.inference_mode():
            model(x)

    return run, sum(p.numel() for p in model.parameters())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, nargs=2, default=(600, 900), metavar=("H", "W"))
    p.add_argument(
        "--widths",
        type=float,
        nargs="+",
        default=(1.0, 0.25),
        help="channel multipliers to time (default: 1.0 and the shipped 0.25)",
    )
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    h, w = args.size
    image = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs; jax {jax.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); image {h} x {w}"
    )
    rows = []
    for width in args.widths:
        jax_run, compile_s, flops, jax_params = jax_forward(width, image)
        torch_run, torch_params = torch_forward(width, image)
        jax_run()
        t = time.perf_counter()
        torch_run()
        torch_first = time.perf_counter() - t
        times: dict[str, list[float]] = {"JAX (ours)": [], "PyTorch eager": []}
        for _ in range(args.repeats):
            for name, run in (("JAX (ours)", jax_run), ("PyTorch eager", torch_run)):
                t = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t)
        ref = statistics.median(times["PyTorch eager"])
        for name, first, n_params in (
            ("JAX (ours)", compile_s, jax_params),
            ("PyTorch eager", torch_first, torch_params),
        ):
            m = statistics.median(times[name])
            rows.append(
                f"| {width:g} | {name} | {n_params:,} | {flops / 1e9:.1f} "
                f"| {first:.1f} | {m * 1000:.0f} | {min(times[name]) * 1000:.0f}-"
                f"{max(times[name]) * 1000:.0f} | {flops / m / 1e9:.1f} | {ref / m:.2f}x |"
            )
    print(
        f"\n| width | implementation | parameters | GFLOP | compile / first call s "
        f"| ms (median of {args.repeats}) | min-max ms | GFLOP/s | speed vs PyTorch |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
