"""Both task modules provide the `ocr_common.task.Task` interface that train.py relies on."""

import dataclasses
import importlib
import inspect
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from ocr_common.task import Task

TASK_MODULES = ["densenet_jax.task", "ctpn_jax.task"]
METHODS = [
    name
    for name, value in vars(Task).items()
    if inspect.isfunction(value) and not name.startswith("_")
]


def test_the_protocol_lists_the_interface():
    assert set(Task.__annotations__) == {"NAME", "TRAIN_DEFAULTS", "Config"}
    assert sorted(METHODS) == sorted(
        [
            "build_model",
            "init_variables",
            "make_train_iter",
            "loss_fn",
            "make_evaluator",
            "export",
            "check_init_weights",
        ]
    )


@pytest.mark.parametrize("name", TASK_MODULES)
def test_task_module_satisfies_the_protocol(name):
    import train

    module = importlib.import_module(name)
    assert isinstance(module, Task)  # every member exists
    assert isinstance(module.NAME, str) and train.TASKS[module.NAME] == name
    assert isinstance(module.TRAIN_DEFAULTS, Mapping)
    assert set(module.TRAIN_DEFAULTS) <= {f.name for f in dataclasses.fields(train.TrainConfig)}
    assert dataclasses.is_dataclass(module.Config)
    assert module.Config.__dataclass_params__.frozen
    cfg = module.Config()
    assert train.config_from_dict(module.Config, train.config_to_dict(cfg)) == cfg
    for method in METHODS:
        fn = getattr(module, method)
        assert callable(fn), method
        want = list(inspect.signature(getattr(Task, method)).parameters.values())[1:]  # self
        got = list(inspect.signature(fn).parameters.values())
        # The protocol's parameters, by name and kind, in order; extra ones need defaults.
        assert [(p.name, p.kind) for p in got[: len(want)]] == [(p.name, p.kind) for p in want], (
            method
        )
        assert all(p.default is not p.empty or p.kind is p.VAR_KEYWORD for p in got[len(want) :]), (
            method
        )


def test_the_shared_layer_imports_no_model():
    """ocr_common (the protocol included) sits below both models."""
    code = (
        "import sys, ocr_common.task; "
        "print([m for m in sys.modules if m.split('.')[0] in ('densenet_jax', 'ctpn_jax')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
