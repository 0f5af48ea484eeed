"""Benchmark kernels.nms against OpenCV and a numpy NMS.

CPU: the jnp path vs ``cv2.dnn.NMSBoxes`` vs a classic numpy NMS, N = 100 ... 10000, on two
box sets: "uniform" (boxes spread over a 1024 x 1024 image, most survive) and "clustered"
(about 20 jittered boxes per object, as a detector's proposals, most are suppressed).
GPU (when JAX has one): the Pallas kernel vs the jnp path.

Fairness: every method gets the same boxes, the same IoU threshold and no cap on the output
(``max_output_size = N``, OpenCV ``top_k = 0``); OpenCV gets (x, y, w, h) boxes and a score
threshold of 0 below every score; the kept indices are compared. Each timing is the median of
repeated calls, the methods interleaved so that load on the machine hits them alike; a call
includes converting the numpy inputs. The first jitted call (trace + compile) is reported
apart.

    python bench/nms.py [--iou 0.5] [--sizes 100 1000 3000 10000] [--repeats 21]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time
from collections.abc import Callable

import cv2
import jax
import numpy as np

import kernels
from kernels.nms_reference import nms_reference

try:  # run as `python bench/nms.py` (bench/ on the path) or as a module
    from timing import interleaved_times
except ImportError:
    from bench.timing import interleaved_times


def uniform_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    centre = rng.uniform(0, 1024, (n, 2))
    size = np.exp(rng.uniform(np.log(16), np.log(128), (n, 2)))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    return boxes.astype(np.float32), rng.uniform(0.01, 1, n).astype(np.float32)


def clustered_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    objects = max(1, n // 20)
    centre = rng.uniform(0, 1024, (objects, 2))
    size = np.exp(rng.uniform(np.log(16), np.log(128), (objects, 2)))
    which = rng.integers(0, objects, n)
    c = centre[which] + rng.normal(0, 0.1, (n, 2)) * size[which]
    s = size[which] * np.exp(rng.normal(0, 0.1, (n, 2)))
    boxes = np.concatenate([c - s / 2, c + s / 2], axis=1)
    return boxes.astype(np.float32), rng.uniform(0.01, 1, n).astype(np.float32)


def opencv_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    xywh = xywh.astype(np.float64)  # Rect2d, so no rounding to integer pixels
    keep = cv2.dnn.NMSBoxes(xywh, scores, 0.0, iou_threshold, top_k=0)
    return np.asarray(keep, np.int64).reshape(-1)


def jax_nms(implementation: str, n: int, iou_threshold: float) -> Callable:
    fn = jax.jit(
        functools.partial(
            kernels.nms,
            iou_threshold=iou_threshold,
            max_output_size=n,
            implementation=implementation,
        )
    )

    def run(boxes, scores):
        keep, num_valid = jax.block_until_ready(fn(boxes, scores))
        return np.asarray(keep)[: int(num_valid)].astype(np.int64)

    return run


def interleaved_medians(methods: dict[str, Callable[[], object]], repeats: int) -> dict:
    """Median seconds per method, calling the methods in turn ``repeats`` times."""
    times = interleaved_times(methods, repeats)
    return {name: float(np.median(t)) for name, t in times.items()}


def first_call(fn: Callable, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def cpu_table(sizes: list[int], iou_threshold: float, repeats: int) -> list[str]:
    rows = [
        "| boxes | N | kept | jnp ms | OpenCV ms | numpy ms | OpenCV / jnp | numpy / jnp "
        "| jnp compile s | same keep |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    print("\n".join(rows), flush=True)
    for name, make in [("uniform", uniform_boxes), ("clustered", clustered_boxes)]:
        for n in sizes:
            boxes, scores = make(np.random.default_rng(n), n)
            run_jnp = jax_nms("jnp", n, iou_threshold)
            compile_s, keep_jnp = first_call(run_jnp, boxes, scores)
            keep_cv = opencv_nms(boxes, scores, iou_threshold)
            keep_np = nms_reference(boxes, scores, iou_threshold)
            same = np.array_equal(keep_jnp, keep_cv) and np.array_equal(keep_jnp, keep_np)
            t = interleaved_medians(
                {
                    "jnp": functools.partial(run_jnp, boxes, scores),
                    "cv": functools.partial(opencv_nms, boxes, scores, iou_threshold),
                    "np": functools.partial(nms_reference, boxes, scores, iou_threshold),
                },
                repeats,
            )
            rows.append(
                f"| {name} | {n} | {len(keep_cv)} | {t['jnp'] * 1e3:.3f} | {t['cv'] * 1e3:.3f} "
                f"| {t['np'] * 1e3:.3f} | {t['cv'] / t['jnp']:.2f} | {t['np'] / t['jnp']:.2f} "
                f"| {compile_s:.2f} | {'yes' if same else 'NO'} |"
            )
            print(rows[-1], flush=True)
    return rows


def gpu_table(sizes: list[int], iou_threshold: float, repeats: int) -> list[str]:
    rows = [
        "| boxes | N | kept | Pallas ms | jnp ms | jnp / Pallas | Pallas compile s | same keep |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    print("\n".join(rows), flush=True)
    for name, make in [("uniform", uniform_boxes), ("clustered", clustered_boxes)]:
        for n in sizes:
            boxes, scores = make(np.random.default_rng(n), n)
            boxes, scores = jax.device_put(boxes), jax.device_put(scores)
            run_pallas = jax_nms("pallas", n, iou_threshold)
            run_jnp = jax_nms("jnp", n, iou_threshold)
            compile_s, keep_pallas = first_call(run_pallas, boxes, scores)
            keep_jnp = run_jnp(boxes, scores)
            t = interleaved_medians(
                {
                    "pallas": functools.partial(run_pallas, boxes, scores),
                    "jnp": functools.partial(run_jnp, boxes, scores),
                },
                repeats,
            )
            rows.append(
                f"| {name} | {n} | {len(keep_pallas)} | {t['pallas'] * 1e3:.3f} "
                f"| {t['jnp'] * 1e3:.3f} | {t['jnp'] / t['pallas']:.2f} | {compile_s:.2f} "
                f"| {'yes' if np.array_equal(keep_pallas, keep_jnp) else 'NO'} |"
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000, 10000])
    parser.add_argument("--repeats", type=int, default=21, help="timed calls per method")
    args = parser.parse_args()

    print(
        f"jax {jax.__version__}, OpenCV {cv2.__version__}, numpy {np.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, IoU threshold {args.iou}, "
        f"median of {args.repeats}\n"
    )
    print("## CPU (jax backend: cpu)\n")
    with jax.default_device(jax.devices("cpu")[0]):
        cpu_table(args.sizes, args.iou, args.repeats)
    print("\n## GPU\n")
    if jax.default_backend() == "gpu":
        print(f"device: {jax.devices()[0].device_kind}\n")
        gpu_table(args.sizes, args.iou, args.repeats)
    else:
        print("No GPU backend available to JAX: GPU section skipped.")


if __name__ == "__main__":
    main()
