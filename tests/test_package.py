"""The project as a user gets it: a built wheel installed into a fresh virtual environment
reads an example image from outside the checkout with the weights it carries, and inference
loads no training code. Also: the tree is ruff-clean (check and format)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = "card"
#: Modules that belong to training only: none of them may be loaded by inference.
TRAINING_MODULES = (
    "grain",
    "optax",
    "orbax",
    "jieba",
    "train",
    "ocr_common.corpus",
    "ocr_common.textures",
    "ocr_common.degrade",
    "ctpn_jax.data",
    "densenet_jax.data",
    "ctpn_jax.task",
    "densenet_jax.task",
    "ctpn_jax.losses",
    "ctpn_jax.targets",
)
READ_AND_LIST_MODULES = """
import json, sys
from infer import OCR
records = OCR()(sys.argv[1])
loaded = sorted(m for m in sys.modules if any(m == t or m.startswith(t + ".") for t in {t!r}))
import ctpn_jax, infer
print(json.dumps({{"texts": [r["text"] for r in records], "training_modules": loaded,
                  "infer": infer.__file__, "ctpn_jax": ctpn_jax.__file__}}))
"""


def expected_texts(name: str) -> list[str]:
    doc = json.loads((REPO / "examples" / "expected" / f"{name}.json").read_text("utf-8"))
    return [line["text"] for line in doc["lines"]]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """A fresh virtual environment with the project's wheel installed (not editable).

    The wheel is built from a copy of the source (the build writes ``build/`` and
    ``*.egg-info`` beside it). The dependencies (jax, opencv, ...) come from the test's own
    environment through a ``.pth`` line: a path listed there is added to ``sys.path`` but not
    scanned for ``.pth`` files, so the checkout's editable-install hook stays out and the
    project can only come from the wheel.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            "ocr_results",
            "tests",
            "bench",
            "docs",
            ".ruff_cache",
            ".pytest_cache",
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", src],
        check=True,
        timeout=600,
    )
    wheels = list((tmp / "dist").glob("chinese_ocr_jax-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (Path(site) / "test_dependencies.pth").write_text("\n".join(deps) + "\n")
    subprocess.run(
        [py, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheels[0]],
        check=True,
        timeout=600,
    )
    return env_dir


def run_outside(env_dir: Path, args: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(CHINESE_OCR_JAX_CACHE="off", PATH=f"{env_dir / 'bin'}:{env.get('PATH', '')}")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_installed_wheel_reads_an_example_from_anywhere(installed_wheel, tmp_path):
    image = tmp_path / f"{EXAMPLE}.jpg"
    shutil.copy(REPO / "examples" / f"{EXAMPLE}.jpg", image)
    # The command line, from a folder that is not the checkout.
    run = run_outside(installed_wheel, ["ocr", image.name, "--out", "results"], tmp_path)
    assert run.returncode == 0, run.stderr
    doc = json.loads((tmp_path / "results" / f"{EXAMPLE}.json").read_text("utf-8"))
    assert [line["text"] for line in doc["lines"]] == expected_texts(EXAMPLE)
    assert (tmp_path / "results" / f"{EXAMPLE}.jpg").stat().st_size > 0

    # The Python API with the shipped weights, found inside the installed packages; reading
    # an image loads none of the training stack.
    code = READ_AND_LIST_MODULES.format(t=TRAINING_MODULES)
    run = run_outside(
        installed_wheel, [installed_wheel / "bin" / "python", "-c", code, str(image)], tmp_path
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["texts"] == expected_texts(EXAMPLE)
    assert out["training_modules"] == []
    for module in ("infer", "ctpn_jax"):
        assert str(installed_wheel) in out[module] and str(REPO) not in out[module]


def test_reading_an_image_loads_no_training_code():
    """The same check in the checkout (the code under test, without building a wheel)."""
    code = READ_AND_LIST_MODULES.format(t=TRAINING_MODULES)
    env = {**os.environ, "CHINESE_OCR_JAX_CACHE": "off"}
    run = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "examples" / "receipt.jpg")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["training_modules"] == []
    assert out["texts"] == expected_texts("receipt")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command):
    run = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
