"""Traced programs kept on disk, so that a fresh process does not trace the models again.

JAX's persistent compilation cache (``ocr_common.runtime.enable_compilation_cache``) saves
the compilation, but a fresh process still traces every function once per input shape to
find the program it looks up: 0.3-0.7 s for each of the recogniser's width buckets and the
detector's image buckets on this project's 2-core CPU, most of a one-image run's start-up.
``ExportedJit`` keeps each traced program (``jax.export``, StableHLO) in a folder beside the
compilation cache, and a later process calls the saved program without tracing.

The saved program is keyed by the function's name (which should name the model and its
configuration), the argument shapes and dtypes, the JAX version, the platform and a
fingerprint of this project's source files, so an edited model never runs a stale program.
With the compilation cache off (``jax_compilation_cache_dir`` unset), ``ExportedJit`` is the
plain jitted function.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

log = logging.getLogger(__name__)

#: Packages whose source files make up the fingerprint of a saved program.
SOURCE_PACKAGES = ("ctpn_jax", "densenet_jax", "kernels", "ocr_common")
SUFFIX = ".jaxexport"


@functools.cache
def source_fingerprint() -> str:
    """A hash of every ``.py`` file of ``SOURCE_PACKAGES`` (paths and contents)."""
    import importlib.util

    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def exported_folder() -> Path | None:
    """The folder of saved programs: beside JAX's compilation cache folder ``.../jax``,
    ``.../jax-exported``; None while the compilation cache is off."""
    cache = jax.config.jax_compilation_cache_dir
    if not cache:
        return None
    cache = Path(cache)
    return cache.parent / f"{cache.name}-exported"


def _signature(args: tuple) -> str:
    leaves, tree = jax.tree.flatten(args)
    shapes = ",".join(f"{jax.numpy.dtype(x.dtype).str}{tuple(x.shape)}" for x in leaves)
    return f"{tree}|{shapes}"


class ExportedJit:
    """``fn`` (a ``jax.jit`` function of arrays only) whose program per input signature is
    saved to and loaded from ``exported_folder()``.

    Args:
      fn: the jitted function; positional array arguments (pytrees of arrays), no static ones.
      name: what distinguishes this function from others of the same signature, e.g. the
        model's ``repr`` (its configuration) and which output it computes.
      folder: where the programs are kept; default ``exported_folder()`` at each call.
    """

    def __init__(self, fn: Callable, name: str, folder: str | os.PathLike | None = None):
        self.fn, self.name = fn, name
        self.folder = None if folder is None else Path(folder)
        self._calls: dict[str, Callable] = {}
        self.loaded = self.exported = 0  # programs read from disk / traced and saved

    def __call__(self, *args: Any) -> Any:
        folder = self.folder or exported_folder()
        if folder is None:
            return self.fn(*args)
        signature = _signature(args)
        call = self._calls.get(signature)
        if call is None:
            call = self._calls[signature] = self._program(folder, signature, args)
        return call(*args)

    def shapes_seen(self) -> int:
        """How many input signatures this function has prepared a program for so far (a
        call with a new one traces, loads or compiles)."""
        return len(self._calls) + self.fn._cache_size()

    def path(self, folder: Path, signature: str) -> Path:
        """The file of the program for ``signature`` in ``folder``."""
        key = "|".join(
            (self.name, signature, jax.__version__, jax.default_backend(), source_fingerprint())
        )
        return folder / (hashlib.sha256(key.encode()).hexdigest()[:40] + SUFFIX)

    def _program(self, folder: Path, signature: str, args: tuple) -> Callable:
        path = self.path(folder, signature)
        try:
            exported = jax.export.deserialize(bytearray(path.read_bytes()))
            self.loaded += 1
            return jax.jit(exported.call)
        except FileNotFoundError:
            pass
        except Exception as e:  # a damaged or foreign file: trace again and replace it
            log.warning("ignoring the saved program %s (%s); tracing again", path, e)
        try:
            exported = jax.export.export(self.fn)(*args)
            data = exported.serialize()
        except Exception as e:  # e.g. an op export cannot save: run the function as it is
            log.warning("cannot save the program of %s (%s); using plain jit", self.name, e)
            return self.fn
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: another process may save the same program
            self.exported += 1
        except OSError as e:  # a read-only cache costs only the next process's tracing
            log.warning("cannot write %s (%s)", path, e)
        return jax.jit(exported.call)
