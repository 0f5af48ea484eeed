"""Measurements behind the optimisation switches of issue #8 (bench/RESULTS.md, "Optimisations").

    python bench/optimisations.py train  [--configs fp32,fp32-2dev,bf16,...] [--repeats 6]
    python bench/optimisations.py infer  [--configs fp32,bf16,...] [--repeats 5]
    python bench/optimisations.py list   # the named configurations

Every configuration runs in a fresh process, because XLA reads `XLA_FLAGS` (host device count,
CPU code generation) once, when JAX starts; the parent prints one markdown table.

- train: the step that training runs, built by `train.py` (`make_optimizer`, `create_state`,
  `make_train_step`, the recogniser's default settings): forward, CTC loss, backward, clip +
  Adam update and moving average of the faithful `DenseNet()` (5990 classes) on a fixed
  random batch (default 32 x 280), over a 'data' mesh of all devices, the batch split over
  it, the state replicated and donated. Median step time over `--repeats` after one warm-up
  step.
- infer: with the shipped weights, the recogniser (`Recognizer.recognize` on the 105 real
  dev-set line crops, and its network alone on fixed batches) and the detector (the CTPN
  network on one padded 912 x 1200 page, and the whole `TextDetector` call). In the same
  process, the recogniser is timed both as is and with its inference BatchNorms folded to
  one precomputed per-channel affine each (`fold_batchnorm` below), turn by turn.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "dev"

# name -> (host devices, compute dtype, extra XLA flags)
TRAIN_CONFIGS: dict[str, tuple[int, str, str]] = {
    "fp32": (1, "float32", ""),
    "fp32-2dev": (2, "float32", ""),
    "fp32-2dev-eigen1": (2, "float32", "--xla_cpu_multi_thread_eigen=false"),
    "bf16": (1, "bfloat16", ""),
    "bf16-2dev": (2, "bfloat16", ""),
    "fast-math": (1, "float32", "--xla_cpu_enable_fast_math=true"),
    "vector512": (1, "float32", "--xla_cpu_prefer_vector_width=512"),
    "no-xnnpack": (1, "float32", "--xla_cpu_use_xnnpack=false"),
    "xnn-greedy": (
        1,
        "float32",
        "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    ),
    "xnn-dot": (1, "float32", "--xla_cpu_experimental_xnn_fusion_type=dot,eltwise,reduce"),
    "ynn": (1, "float32", "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce"),
    "onednn": (1, "float32", "--xla_cpu_use_onednn=true"),
    "onednn-fusion": (1, "float32", "--xla_cpu_experimental_onednn_fusion_type=dot,eltwise,reduce"),
    "eigen1": (1, "float32", "--xla_cpu_multi_thread_eigen=false"),
}
INFER_CONFIGS = {k: v for k, v in TRAIN_CONFIGS.items() if v[0] == 1}


# ----------------------------------------------------------------------------- children
# A child builds one configuration, prints one JSON line {"ready": ..., facts}, then runs one
# timed call per line it reads ("<name>"), answering {"s": seconds, ...}: the parent takes
# turns between configurations, so that load from other jobs hits all of them alike.


def train_workload(dtype: str, batch_size: int, width: int) -> tuple[dict, dict]:
    """train.py's train step in this process (devices as XLA_FLAGS made them)."""
    import dataclasses

    import jax
    import numpy as np
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import train
    from densenet_jax import task

    tcfg = dataclasses.replace(train.TrainConfig(), **task.TRAIN_DEFAULTS)
    cfg = task.Config(compute_dtype=dtype)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, widths=(width,)))
    model = task.build_model(cfg)  # the original DenseNet(), 5990 classes
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.integers(0, 255, (batch_size, 32, width, 1), dtype=np.uint8),
        "width": np.full((batch_size,), width, np.int32),
        "labels": rng.integers(1, 5990, (batch_size, 10), dtype=np.int32),
        "label_length": np.full((batch_size,), 10, np.int32),
    }
    tx, schedule = train.make_optimizer(tcfg)
    mesh = train.data_mesh()
    train.check_batch_size(batch_size, mesh.size)
    state = train.create_state(task, cfg, model, tx, jax.random.PRNGKey(0))
    holder = {"state": jax.device_put(state, NamedSharding(mesh, P()))}
    step = train.make_train_step(task, cfg, model, tx, schedule, tcfg.ema_decay, mesh)
    batch = jax.device_put(batch, NamedSharding(mesh, P(train.DATA_AXIS)))
    t = time.perf_counter()
    compiled = step.lower(holder["state"], batch).compile()
    compile_s = time.perf_counter() - t

    def run() -> dict:
        holder["state"], metrics = compiled(holder["state"], batch)  # the state is donated
        return {"loss": float(metrics["loss"])}  # float() waits for the step

    facts = {
        "devices": mesh.size,
        "compile_s": compile_s,
        "batch_sharding": str(batch["image"].sharding.spec),
    }
    return {"step": run}, facts


def fold_batchnorm(variables: dict) -> dict:
    """Inference variables of a DenseNet with every BatchNorm reduced to one affine.

    At inference a BatchNorm computes `(x - mean) / sqrt(var + eps) * scale + bias`, that is
    `x * a + b` with `a = scale / sqrt(var + eps)` and `b = bias - mean * a`. In this DenseNet
    every BatchNorm comes before a ReLU (BN-ReLU-Conv), and a dense block feeds each channel
    to several BatchNorms with different statistics, so none can be merged exactly into a
    neighbouring convolution; precomputing `a` and `b` once is all that folding can do.

    Returns:
      `{"params": ...}`: each BatchNorm's `scale` / `bias` replaced by `a` / `b`, float32
      `(C,)`; every other parameter unchanged. For `apply_folded`.
    """
    import jax
    import jax.numpy as jnp

    from densenet_jax.model import BN_EPSILON

    def walk(params: dict, stats: dict) -> dict:
        out = {}
        for name, p in params.items():
            if name.startswith("BatchNorm"):
                a = jnp.asarray(p["scale"], jnp.float32) * jax.lax.rsqrt(
                    jnp.asarray(stats[name]["var"], jnp.float32) + BN_EPSILON
                )
                out[name] = {"scale": a, "bias": p["bias"] - stats[name]["mean"] * a}
            elif isinstance(p, dict):
                out[name] = walk(p, stats.get(name, {}))
            else:
                out[name] = p
        return out

    return {"params": walk(variables["params"], variables["batch_stats"])}


def apply_folded(model: Any, folded: dict, x: Any) -> Any:
    """`model.apply(variables, x, train=False)` with `fold_batchnorm(variables)` instead:
    every BatchNorm call is intercepted and computes `x * a + b`."""
    import flax.linen as nn

    def affine(next_fun, args, kwargs, context):
        m = context.module
        if not (isinstance(m, nn.BatchNorm) and context.method_name == "__call__"):
            return next_fun(*args, **kwargs)
        dtype = m.dtype or args[0].dtype
        a, b = m.get_variable("params", "scale"), m.get_variable("params", "bias")
        return args[0].astype(dtype) * a.astype(dtype) + b.astype(dtype)

    with nn.intercept_methods(affine):
        return model.apply(folded, x, train=False)


def infer_workload(dtype: str, full: bool) -> tuple[dict, dict]:
    """Recogniser (as is and BN-folded) and detector calls in this process; without `full`,
    the networks alone (no `Recognizer.recognize` / `TextDetector` calls)."""
    import cv2
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ctpn_jax.detect import TextDetector
    from ctpn_jax.model import CTPN
    from ctpn_jax.weights import load_detector
    from ctpn_jax.weights import shipped_weights as shipped_detector
    from densenet_jax.preprocess import normalize
    from densenet_jax.recognizer import Recognizer
    from densenet_jax.weights import load_recognizer
    from densenet_jax.weights import shipped_weights as shipped_recognizer

    dt = jnp.dtype(dtype)
    model, variables, charset, _ = load_recognizer(shipped_recognizer())
    model = model.clone(dtype=dt)
    rec = Recognizer(model, variables, charset)
    folded_rec = Recognizer(model, variables, charset)  # the same, with BatchNorms folded
    folded_rec.variables = jax.device_put(fold_batchnorm(jax.tree.map(jnp.asarray, variables)))
    folded_rec._predict_probs = jax.jit(
        lambda v, images: jax.nn.softmax(apply_folded(model, v, normalize(images)), axis=-1)
    )

    crops = []
    for row in (DEV / "lines.tsv").read_text(encoding="utf-8").splitlines():
        name = row.split("\t", 1)[0]
        crops.append(cv2.cvtColor(cv2.imread(str(DEV / "lines" / name)), cv2.COLOR_BGR2RGB))
    texts = [d.text for d in rec.recognize(crops)] if full else []
    texts_folded = [d.text for d in folded_rec.recognize(crops)] if full else []
    x = np.random.default_rng(0).integers(0, 255, (32, 32, 384, 1), dtype=np.uint8)
    fusions = [
        r._predict_probs.lower(r.variables, x).compile().as_text().count(" fusion(")
        for r in (rec, folded_rec)
    ]
    p1 = np.asarray(rec._predict_probs(rec.variables, x))
    p2 = np.asarray(folded_rec._predict_probs(folded_rec.variables, x))

    config, det_vars, _ = load_detector(shipped_detector())
    det = TextDetector(CTPN.from_config(config, dtype=dt), det_vars)
    page = cv2.cvtColor(cv2.imread(str(sorted((DEV / "images").iterdir())[0])), cv2.COLOR_BGR2RGB)
    page_batch = np.zeros((1, 912, 1200, 3), np.uint8)
    vw = np.asarray([1200 // 16], np.int32)

    def net(r: Recognizer) -> Callable[[], None]:
        def run() -> None:
            np.asarray(r._predict_probs(r.variables, x))

        return run

    def det_net() -> None:
        jax.block_until_ready(det._forward(det.variables, page_batch, vw))

    def pipeline(r: Recognizer) -> Callable[[], None]:
        def run() -> None:
            r.recognize(crops)

        return run

    def det_call() -> None:
        det(page)

    runs = {"rec_net": net(rec), "rec_net_folded": net(folded_rec), "det_net": det_net}
    if full:
        runs.update(
            {
                "rec_pipeline": pipeline(rec),
                "rec_pipeline_folded": pipeline(folded_rec),
                "det_call": det_call,
            }
        )
    for run in runs.values():  # compile every shape before the timing starts
        run()
    facts = {
        "lines": len(crops),
        "rec_net_lines": len(x),
        "rec_same_text_folded": sum(a == b for a, b in zip(texts, texts_folded, strict=True)),
        "rec_max_prob_diff_folded": float(np.abs(p1 - p2).max()),
        "rec_fusions": fusions,
    }
    return runs, facts


def serve(runs: dict[str, Callable[[], Any]], facts: dict) -> None:
    """The child's side of the protocol above."""
    print(json.dumps({"ready": True, "names": list(runs), **facts}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        t = time.perf_counter()
        out = runs[name]()
        extra = out if isinstance(out, dict) else {}
        print(json.dumps({"s": time.perf_counter() - t, **extra}), flush=True)


# ----------------------------------------------------------------------------- parent
class Child:
    """A configuration's process: started with its XLA_FLAGS, asked for timed calls."""

    def __init__(self, args: list[str], devices: int, flags: str):
        import tempfile

        env = dict(os.environ)
        env["XLA_FLAGS"] = " ".join(
            f for f in (f"--xla_force_host_platform_device_count={devices}", flags) if f
        )
        env.setdefault("JAX_PLATFORMS", "cpu")
        self.stderr = tempfile.TemporaryFile("w+")  # a file, not a pipe: never blocks
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args],
            env=env,
            cwd=REPO,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        self.facts = self._answer()

    def _answer(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.stderr.seek(0)
            err = self.stderr.read().strip().splitlines()
            raise RuntimeError(err[-1] if err else "child exited")
        return json.loads(line)

    def call(self, name: str) -> dict[str, Any]:
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self.stderr.close()


def measure(children: dict[str, Child], repeats: int) -> dict[str, dict[str, list[dict]]]:
    """One warm-up round, then `repeats` rounds; in each round every child runs each of its
    calls once, children taking turns. Every other round runs in reverse order, so that no
    call always follows the same one (a call right after its twin finds warm caches)."""
    out: dict[str, dict[str, list[dict]]] = {
        c: {n: [] for n in ch.facts["names"]} for c, ch in children.items()
    }
    calls = [(c, n) for c, ch in children.items() for n in ch.facts["names"]]
    for r in range(repeats + 1):
        for c, n in calls if r % 2 == 0 else calls[::-1]:
            answer = children[c].call(n)
            if r:
                out[c][n].append(answer)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["train", "infer", "list", "child-train", "child-infer"])
    p.add_argument("--configs", help="comma-separated config names (default: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=int, default=280)
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--dtype", default="float32")
    p.add_argument(
        "--full",
        action="store_true",
        help="infer: also time Recognizer.recognize on the dev crops and whole "
        "TextDetector calls (slower: compiles every bucket shape)",
    )
    args = p.parse_args()
    if args.what == "child-train":
        serve(*train_workload(args.dtype, args.batch_size, args.width))
        return
    if args.what == "child-infer":
        serve(*infer_workload(args.dtype, args.full))
        return
    table = TRAIN_CONFIGS if args.what in ("train", "list") else INFER_CONFIGS
    if args.what == "list":
        for name, (devices, dtype, flags) in table.items():
            print(f"{name}: {devices} device(s), {dtype}, XLA_FLAGS {flags or '(none)'}")
        return
    import platform

    names = args.configs.split(",") if args.configs else list(table)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}; "
        f"configurations take turns, median of {args.repeats} rounds",
        flush=True,
    )
    children: dict[str, Child] = {}
    try:
        for name in names:  # one at a time, so that compile times are not shared
            devices, dtype, flags = table[name]
            base = ["--dtype", dtype]
            if args.what == "train":
                base += ["--batch-size", str(args.batch_size), "--width", str(args.width)]
            elif args.full:
                base.append("--full")
            try:
                children[name] = Child([f"child-{args.what}", *base], devices, flags)
            except RuntimeError as e:
                print(f"{name}: failed to start: {e}", flush=True)
        results = measure(children, args.repeats)
    finally:
        for ch in children.values():
            ch.close()
    med = {
        c: {n: statistics.median(a["s"] for a in runs) for n, runs in r.items()}
        for c, r in results.items()
    }
    if args.what == "train":
        print(
            f"\n| config | devices | dtype | extra XLA_FLAGS | compile s | step s | min-max s "
            f"| samples/s | loss, round 1 -> {args.repeats} |"
        )
        print("|---|---:|---|---|---:|---:|---:|---:|---|")
        for c, ch in children.items():
            runs = results[c]["step"]
            ts = [a["s"] for a in runs]
            devices, dtype, flags = table[c]
            print(
                f"| {c} | {ch.facts['devices']} | {dtype} | `{flags}` "
                f"| {ch.facts['compile_s']:.1f} | {med[c]['step']:.3f} "
                f"| {min(ts):.2f}-{max(ts):.2f} | {args.batch_size / med[c]['step']:.2f} "
                f"| {runs[0]['loss']:.2f} -> {runs[-1]['loss']:.2f} |"
            )
        return
    print(
        "\n| config | dtype | extra XLA_FLAGS | recogniser network s (32 x 384) | BN folded "
        "| lines/s (Recognizer, dev crops) | BN folded | detector network s (912 x 1200) "
        "| TextDetector call s |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    nan = float("nan")
    for c, ch in children.items():
        m, n = med[c], ch.facts["lines"]
        devices, dtype, flags = table[c]
        print(
            f"| {c} | {dtype} | `{flags}` | {m['rec_net']:.3f} | {m['rec_net_folded']:.3f} "
            f"| {n / m.get('rec_pipeline', nan):.1f} "
            f"| {n / m.get('rec_pipeline_folded', nan):.1f} | {m['det_net']:.3f} "
            f"| {m.get('det_call', nan):.3f} |"
        )
    for c, ch in children.items():
        f = ch.facts
        same = (
            f", same text on {f['rec_same_text_folded']}/{f['lines']} dev lines"
            if args.full
            else ""
        )
        print(
            f"\n{c}: BN folded vs as is: max probability difference "
            f"{f['rec_max_prob_diff_folded']:.1e}{same}; XLA fusions in the compiled "
            f"recogniser: {f['rec_fusions'][0]} as is, {f['rec_fusions'][1]} folded"
        )


if __name__ == "__main__":
    main()
