"""Compiled programs kept on disk, so that a fresh process neither traces nor compiles again.

JAX's persistent compilation cache (``ocr_common.runtime.enable_compilation_cache``) saves
the compilation, but a fresh process still traces and lowers every function once per input
shape to find the program it looks up: 0.3-0.7 s for each of the recogniser's width buckets
and the detector's image buckets on this project's 2-core CPU, most of a one-image run's
start-up. ``ExportedJit`` keeps each compiled executable
(``jax.experimental.serialize_executable``) in a folder beside the compilation cache, and a
later process loads it and calls it: no tracing, lowering or cache lookup (about 12 ms a
program less than a saved ``jax.export`` program, which still had to be lowered).

The saved program is keyed by the function's name (which should name the model and its
configuration), the argument shapes and dtypes, the JAX version, the platform and the
machine (an executable is compiled for this CPU's instruction set) and a fingerprint of this
project's source files, so an edited model never runs a stale program. With the compilation
cache off (``jax_compilation_cache_dir`` unset), ``ExportedJit`` is the plain jitted
function. Like JAX's own cache, the folder is trusted: a saved executable runs as it is.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import pickle
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
from jax.experimental import serialize_executable
from jax.experimental.compilation_cache import compilation_cache

log = logging.getLogger(__name__)

#: Packages whose source files make up the fingerprint of a saved program.
SOURCE_PACKAGES = ("ctpn_jax", "densenet_jax", "kernels", "ocr_common")
SUFFIX = ".jaxexec"


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


def target_device() -> jax.Device:
    """The device programs compile for: JAX's default device (``--device`` sets it), else
    the first one."""
    device = jax.config.jax_default_device
    if isinstance(device, str):
        return jax.devices(device)[0]
    return device or jax.devices()[0]


@functools.cache
def machine_key(device: jax.Device | None = None) -> str:
    """What a compiled executable depends on besides JAX: the backend's version and device
    kind and, for CPUs, the instruction-set flags (an executable compiled with AVX-512 must
    not run where it is missing, e.g. a cache folder copied to another machine)."""
    device = device or target_device()
    parts = [device.platform, device.device_kind, str(device.client.platform_version)]
    if device.platform == "cpu":
        parts.append(platform.machine())
        try:
            with open("/proc/cpuinfo") as f:
                parts += sorted({line for line in f if line.startswith("flags")})[:1]
        except OSError:
            parts.append(platform.processor())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


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
        self.loaded = self.exported = 0  # programs read from disk / compiled and saved

    def __call__(self, *args: Any) -> Any:
        folder = self.folder or exported_folder()
        if folder is None:
            return self.fn(*args)
        signature = _signature(args)
        call = self._calls.get(signature)
        if call is not None:
            return call(*args)
        path = self.path(folder, signature)
        call = self._load(path)
        if call is not None:
            try:
                out = call(*args)
                self._calls[signature] = call
                return out
            except Exception as e:  # an executable that loads but cannot run here
                log.warning("the saved program %s failed (%s); compiling again", path, e)
        call = self._calls[signature] = self._compile_and_save(path, args)
        return call(*args)

    def shapes_seen(self) -> int:
        """How many input signatures this function has prepared a program for so far (a
        call with a new one traces, loads or compiles)."""
        return len(self._calls) + self.fn._cache_size()

    def path(self, folder: Path, signature: str) -> Path:
        """The file of the program for ``signature`` in ``folder``."""
        machine = machine_key(target_device())
        key = "|".join((self.name, signature, jax.__version__, machine, source_fingerprint()))
        return folder / (hashlib.sha256(key.encode()).hexdigest()[:40] + SUFFIX)

    def _load(self, path: Path) -> Callable | None:
        """The saved executable at ``path``, or None where there is none or it is damaged."""
        try:
            data, in_tree, out_tree = pickle.loads(path.read_bytes())
            device = target_device()
            compiled = serialize_executable.deserialize_and_load(
                data, in_tree, out_tree, backend=device.client, execution_devices=[device]
            )
        except FileNotFoundError:
            return None
        except Exception as e:  # a damaged or foreign file: compile again and replace it
            log.warning("ignoring the saved program %s (%s); compiling again", path, e)
            return None
        self.loaded += 1
        return compiled

    def _compile_and_save(self, path: Path, args: tuple) -> Callable:
        """Compile ``fn`` for ``args`` and save the executable at ``path`` (atomically)."""
        try:
            with _without_persistent_cache():
                compiled = self.fn.lower(*args).compile()
            data = pickle.dumps(serialize_executable.serialize(compiled))
        except Exception as e:  # e.g. a backend that cannot serialise: the plain jitted function
            log.warning("cannot save the program of %s (%s); using plain jit", self.name, e)
            return self.fn
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: another process may save the same program
            self.exported += 1
        except OSError as e:  # a read-only cache costs only the next process's compilation
            log.warning("cannot write %s (%s)", path, e)
        return compiled


@contextlib.contextmanager
def _without_persistent_cache() -> Iterator[None]:
    """Compile afresh, not from JAX's persistent compilation cache: an XLA:CPU executable read
    from that cache serialises without its kernels (jax 0.10: a later process that loads it
    fails with "Function ..._kernel not found"), so only a fresh compilation is saved."""
    enabled = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()  # the cache's on/off state is decided once, at first use
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", enabled)
        compilation_cache.reset_cache()
