"""The `compute_dtype` setting shared by both models' training configs."""

from __future__ import annotations

import jax.numpy as jnp

COMPUTE_DTYPES = ("float32", "bfloat16")


def compute_dtype(name: str) -> jnp.dtype:
    """The dtype of a `compute_dtype` setting ("float32" or "bfloat16": mixed precision, with
    float32 parameters, updates, outputs and loss).

    Raises:
      ValueError: an unsupported name.
    """
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {name!r}")
    return jnp.dtype(name)
