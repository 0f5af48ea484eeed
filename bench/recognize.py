"""Recognition throughput on real line crops, ours (JAX) vs the same network in PyTorch.

    python bench/recognize.py [--labels ../shared/dev/lines.tsv] [--repeats 10]

The 105 real line crops of the dev set, at their own widths, are read by
`densenet_jax.recognizer.Recognizer` with the shipped weights: gray 32-pixel lines
(`preprocess.to_line_image`), sorted by width, batched per width bucket, softmax, greedy
decoding. The PyTorch peer (`bench/torch_densenet.py`, the same weights copied in) runs
inside the very same Recognizer pipeline, only the jitted network function swapped for
PyTorch's forward + softmax, so both see identical batches and decode alike.

Two rows per implementation:
  - pipeline: `Recognizer.recognize(crops)`, from RGB crops to texts;
  - network: the network alone on the exact batches the pipeline made (uint8 in,
    probabilities out as numpy).
Every figure is the median of `--repeats` passes over all crops, the implementations taking
turns; our first pass (it compiles a few batch shapes) is reported apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import jax
import numpy as np
import torch

from densenet_jax.recognizer import Recognizer
from densenet_jax.weights import load_recognizer

try:  # run as `python bench/recognize.py` (bench/ on the path) or as a module
    import torch_densenet
except ImportError:
    from bench import torch_densenet

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LABELS = REPO.parent / "shared" / "dev" / "lines.tsv"
DEFAULT_WEIGHTS = REPO / "densenet_jax" / "assets" / "densenet.npz"


def read_crops(labels: Path) -> tuple[list[np.ndarray], list[str]]:
    """RGB crops and their texts from a `filename<TAB>text` file (crops in `lines/` beside it)."""
    crops, texts = [], []
    for row in labels.read_text(encoding="utf-8").splitlines():
        if not row.strip():
            continue
        name, text = row.split("\t", 1)
        path = labels.parent / "lines" / name
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {path}")
        crops.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        texts.append(text)
    return crops, texts


def torch_predict_probs(model: torch_densenet.TorchDenseNet) -> Callable:
    """A drop-in for the Recognizer's jitted `(variables, uint8 batch) -> probabilities`."""

    def predict(_variables: dict, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.softmax(model(torch_densenet.to_input(batch)), dim=-1).numpy()

    return predict


def record_batches(
    rec: Recognizer, crops: list[np.ndarray], batch_size: int | None
) -> list[np.ndarray]:
    """The uint8 batches `rec.recognize(crops)` hands to its network."""
    if not hasattr(rec, "_predict_probs"):
        raise SystemExit("Recognizer no longer has _predict_probs: update bench/recognize.py")
    batches: list[np.ndarray] = []
    inner = rec._predict_probs

    def spy(variables: dict, batch: np.ndarray) -> np.ndarray:
        batches.append(np.asarray(batch))
        return inner(variables, batch)

    rec._predict_probs = spy
    try:
        rec.recognize(crops, batch_size=batch_size)
    finally:
        rec._predict_probs = inner
    return batches


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--labels",
        type=Path,
        default=DEFAULT_LABELS,
        help="filename<TAB>text file with the crops in lines/ beside it (default: %(default)s)",
    )
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="most lines per batch (default as infer.py: 8 on a CPU, 32 on an accelerator)",
    )
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    crops, _ = read_crops(args.labels)
    model, variables, charset, _ = load_recognizer(args.weights)
    ours = Recognizer(model, variables, charset)
    peer_net = torch_densenet.TorchDenseNet().eval()
    torch_densenet.load_flax_variables(peer_net, jax.device_get(variables))
    peer = Recognizer(model, variables, charset)
    peer._predict_probs = torch_predict_probs(peer_net)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs; jax {jax.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )

    t = time.perf_counter()
    ours_texts = [d.text for d in ours.recognize(crops, batch_size=args.batch_size)]
    first_s = time.perf_counter() - t
    peer_texts = [d.text for d in peer.recognize(crops, batch_size=args.batch_size)]
    same = sum(a == b for a, b in zip(ours_texts, peer_texts, strict=True))
    batches = record_batches(ours, crops, args.batch_size)
    padded = sum(len(b) for b in batches)
    shapes = sorted({b.shape[:3] for b in batches}, key=lambda s: (s[2], s[0]))
    print(
        f"{len(crops)} lines in {len(batches)} batches ({padded} rows with padding), "
        f"shapes (B, H, W): {', '.join(f'{s[0]}x{s[1]}x{s[2]}' for s in shapes)}"
    )
    print(
        f"same text from both: {same} of {len(crops)} lines; our first pass (compiles): "
        f"{first_s:.2f} s"
    )

    def pipeline(rec: Recognizer) -> Callable[[], None]:
        return lambda: rec.recognize(crops, batch_size=args.batch_size)

    def network(predict: Callable) -> Callable[[], None]:
        def run() -> None:
            for b in batches:
                np.asarray(predict(ours.variables, b))

        return run

    runs = {
        ("pipeline", "JAX (ours)"): pipeline(ours),
        ("pipeline", "PyTorch eager"): pipeline(peer),
        ("network", "JAX (ours)"): network(ours._predict_probs),
        ("network", "PyTorch eager"): network(peer._predict_probs),
    }
    for run in runs.values():  # warm-up
        run()
    times: dict[tuple[str, str], list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for key, run in runs.items():
            t = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - t)

    print(
        f"\n| what | implementation | s per pass (median of {args.repeats}) | min-max s "
        f"| lines/s | speed vs PyTorch |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for (what, name), t in times.items():
        m = statistics.median(t)
        ref = statistics.median(times[(what, "PyTorch eager")])
        print(
            f"| {what} | {name} | {m:.3f} | {min(t):.3f}-{max(t):.3f} | {len(crops) / m:.1f} "
            f"| {ref / m:.2f}x |"
        )


if __name__ == "__main__":
    main()
