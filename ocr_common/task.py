"""The interface between a model and the shared training loop (`train.py`): a *task*.

A task is a module (`densenet_jax.task`, `ctpn_jax.task`) whose top-level names match the
`Task` protocol below; `train.py` takes such a module and knows nothing else of the model.
A module satisfies a protocol structurally (PEP 544): nothing subclasses `Task`, and
`tests/test_task_protocol.py` checks both task modules against it (`isinstance(module,
Task)` checks only that the names exist; the test also compares the signatures).

This module imports no model package: the shared layer stays below both models.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import flax.linen as nn
import jax

#: One training or evaluation batch: numpy arrays (or jax arrays in the step) by name.
Batch = dict[str, Any]
#: The loss function's auxiliary output: the new non-parameter collections and the metrics.
LossAux = tuple[dict[str, Any], dict[str, jax.Array]]


@runtime_checkable
class Task(Protocol):
    """What a task module provides to `train.py` (module-level names).

    `Config` is a frozen dataclass of plain data (numbers, strings, tuples and nested frozen
    dataclasses): `train.py` writes it to `config.json`, reads it back to resume, and sets
    its fields from `--config` files and `--set KEY=VALUE`.
    """

    #: The `--model` name, also the `model` entry of the exported weights' metadata.
    NAME: str
    #: Defaults of `train.TrainConfig` fields for this model (e.g. `{"batch_size": 2}`).
    TRAIN_DEFAULTS: Mapping[str, Any]
    #: The frozen dataclass of model, data and loss settings; `Config()` is the default.
    Config: type

    def build_model(self, cfg: Any) -> nn.Module:
        """The Flax module of `cfg` (its architecture and compute dtype)."""
        ...

    def init_variables(self, model: nn.Module, cfg: Any, key: jax.Array) -> dict[str, Any]:
        """Fresh variables `{'params': ..., other collections ...}` of `model` from `key`."""
        ...

    def make_train_iter(
        self, cfg: Any, data: str, batch_size: int, seed: int, start_step: int
    ) -> Iterator[Batch]:
        """Training batches of `batch_size` examples (numpy arrays) for steps `start_step,
        start_step + 1, ...`; batch i is a pure function of `(seed, i)`, so that a resumed
        run sees the data of an uninterrupted one. `data` is "synth" or a path."""
        ...

    def loss_fn(
        self,
        cfg: Any,
        model: nn.Module,
        params: Any,
        model_state: dict[str, Any],
        batch: Batch,
        key: jax.Array,
    ) -> tuple[jax.Array, LossAux]:
        """`(loss, (new_model_state, metrics))` of one batch in training mode.

        `loss` is a `()` float32 scalar to minimise, `model_state` the non-parameter
        collections (e.g. `{'batch_stats': ...}`, or `{}`), `metrics` a dict of `()` arrays
        with at least `'loss'`; `key` drives dropout and sampling. Traced under `jax.jit`
        and `jax.value_and_grad` (differentiated with respect to `params`).
        """
        ...

    def make_evaluator(
        self, cfg: Any, model: nn.Module, seed: int
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """A function of the variables to evaluate (`{'params': ..., ...}`, on one device)
        returning metrics named `eval_*` (floats, or short strings to print)."""
        ...

    def export(
        self, path: str | Path, cfg: Any, model: nn.Module, variables: dict[str, Any], **extra: Any
    ) -> Path:
        """Writes `variables` as a weights file that loads without the run directory; the
        keyword arguments go into its metadata. Returns the path written."""
        ...

    def check_init_weights(self, meta: dict[str, Any], model: nn.Module, path: str) -> None:
        """Raises ValueError when the exported weights with metadata `meta` (read from
        `path`) cannot initialise `model` (`train.py --init-from`)."""
        ...


def frozen(params: dict, names: Collection[str]) -> dict:
    """``params`` with its top-level entries ``names`` behind ``stop_gradient``, for a
    task's ``loss_fn`` to leave a model's first layers untrained: their gradient is zero,
    and when nothing before them is trained autodiff forms no backward pass through them
    at all (Adam then leaves them unchanged)."""
    if not names:
        return params
    return {k: jax.lax.stop_gradient(v) if k in names else v for k, v in params.items()}
