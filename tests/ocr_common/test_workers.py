"""Data workers end with the trainer: a ``kill -9`` of the training process leaves no orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAINER = """
import os, sys, time
from densenet_jax.charset import Charset
from densenet_jax.data.pipeline import LineDataConfig, SynthLines, TRAIN_STREAM, train_batches

cfg = LineDataConfig(system_fonts=False, workers=1, widths=(64,), max_chars=4)
batches = train_batches(SynthLines(cfg, Charset.default(), 0, TRAIN_STREAM), cfg, 2, 0)
next(batches)  # the worker is running and has delivered
print("READY", flush=True)
time.sleep(600)
"""


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Field 4 is the parent id; the command name (field 2) may hold spaces.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_worker_exits_when_the_trainer_is_killed():
    trainer = subprocess.Popen(
        [sys.executable, "-c", TRAINER], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert trainer.stdout.readline().strip() == "READY"
        # grain's worker runs python too (the resource tracker is a child as well).
        workers = [p for p in children(trainer.pid) if alive(p)]
        assert workers, "the trainer started no worker process"
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in workers if alive(p)]
        for p in left:  # don't leave them to the next test either
            os.kill(p, signal.SIGKILL)
        assert not left, f"orphaned worker processes {left} outlived the killed trainer"
    finally:
        if trainer.poll() is None:
            trainer.kill()
