"""Input side of training: examples rendered per second by one data worker, against what the
train step consumes.

    python bench/render_rate.py [--models densenet ctpn] [--count 200]
        [--config densenet=configs/densenet-v8.json] [--step-seconds densenet=1.2 ctpn=2.0]

One process renders `--count` consecutive training examples of the synthetic stream (what a
grain worker does: one thread, `source[i]`, then the batch function) with the model's default
settings or a recipe's. The table gives examples per second and the share of one core a
worker spends to keep up with a train step of `--step-seconds` per batch: on a 2-core
machine that share is taken from the step's XLA threads. Timing starts after every face's
glyph coverage is read and `--warmup` examples are rendered (a long run's steady state).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import train  # noqa: E402
from ocr_common.fonts import font_charset, list_fonts, list_latin_fonts  # noqa: E402


def build_source(model: str, config: str | None):
    """`(source, batch function, batch size)` of `model`'s synthetic training stream."""
    task = train.load_task(model)
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--model", model, "--run-dir", tmp] + (["--config", config] if config else [])
        cfg, tcfg = train.build_configs(task, train.parse_args(argv))
    if model == "densenet":
        from densenet_jax.data.pipeline import Collate, SynthLines, train_widths

        source = SynthLines(cfg.data, task.charset_of(cfg), 0, 0, group_size=tcfg.batch_size)
        collate = Collate(train_widths(cfg.data), cfg.data.max_label_len)
    else:
        from ctpn_jax.data.pipeline import Collate as PageCollate
        from ctpn_jax.data.pipeline import data_source

        source, _ = data_source(cfg.data, "synth", 0)
        collate = PageCollate(cfg.data.bucket_sizes)
    return source, collate, tcfg.batch_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["densenet", "ctpn"])
    p.add_argument("--config", nargs="*", default=[], metavar="MODEL=FILE")
    p.add_argument("--count", type=int, default=200, help="examples rendered per model")
    p.add_argument("--warmup", type=int, default=32, help="examples rendered before timing")
    p.add_argument("--step-seconds", nargs="*", default=[], metavar="MODEL=SECONDS")
    args = p.parse_args()
    configs = dict(item.split("=", 1) for item in args.config)
    step_s = {k: float(v) for k, v in (item.split("=", 1) for item in args.step_seconds)}

    print("| model | recipe | examples/s (one worker) | batch | step s | worker share of a core |")
    print("|---|---|---:|---:|---:|---:|")
    for model in args.models:
        source, collate, batch = build_source(model, configs.get(model))
        # A long run's steady state: every face's glyph coverage read (once per process,
        # about 85 ms a face) and the first examples' caches filled.
        for face in list_fonts() + list_latin_fonts():
            font_charset(face)
        for i in range(args.warmup):
            source[args.count + 1 + i]
        count = max(batch, args.count // batch * batch)
        t = time.perf_counter()
        for start in range(1, 1 + count, batch):
            collate([source[i] for i in range(start, start + batch)])
        rate = count / (time.perf_counter() - t)
        need = f"{batch / step_s[model] / rate:.2f}" if model in step_s else "-"
        seconds = f"{step_s[model]:.2f}" if model in step_s else "-"
        recipe = configs.get(model, "defaults")
        print(f"| {model} | {recipe} | {rate:.1f} | {batch} | {seconds} | {need} |")


if __name__ == "__main__":
    main()
