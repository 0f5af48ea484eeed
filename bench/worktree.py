"""Earlier commits checked out beside this tree, for benchmarks that compare code."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checkout(rev: str, folder: Path) -> Iterator[tuple[str, Path]]:
    """Checks `rev` out with `git worktree` under `folder`; yields `(short hash, path)` and
    removes the worktree afterwards."""
    short = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    path = folder / short
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), short],
        check=True,
        capture_output=True,
    )
    try:
        yield short, path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False
        )
