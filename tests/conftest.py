"""Test-wide settings: compile fast (tests run tiny shapes, where XLA's optimisations cost
more compile time than they save)."""

import jax

jax.config.update("jax_disable_most_optimizations", True)
