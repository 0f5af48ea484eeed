"""JAX runtime set-up for inference: the persistent compilation cache and the device."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the compilation-cache folder ("off" disables the cache).
CACHE_ENV = "CHINESE_OCR_JAX_CACHE"


class DeviceError(RuntimeError):
    """The requested JAX platform is not available."""


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turns on JAX's persistent compilation cache, so that a second run starts fast.

    The folder is ``path``, else the environment variable ``CHINESE_OCR_JAX_CACHE`` (``off``,
    ``0`` or an empty value disable the cache), else ``$XDG_CACHE_HOME/chinese-ocr-jax/jax``
    (``~/.cache/...``). A folder already configured through JAX's own settings is kept. Takes
    effect only if called before the process compiles anything.

    Returns:
      The cache folder, or None when the cache stays off.
    """
    import jax

    if path is None:
        if jax.config.jax_compilation_cache_dir:
            return Path(jax.config.jax_compilation_cache_dir)
        path = os.environ.get(CACHE_ENV)
        if path is None:
            base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
            path = Path(base) / "chinese-ocr-jax" / "jax"
        elif path.strip().lower() in ("", "0", "off", "none", "false"):
            return None
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home must not stop OCR; it only costs compile time
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Keep every program, the small eager ones of post-processing too: a fresh process
    # reading one image with a filled cache took 8.2 s instead of 8.6 (a busy machine).
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


def select_device(device: str) -> None:
    """Makes ``"cpu"`` or ``"gpu"`` the JAX platform; call before any JAX computation.

    Raises:
      DeviceError: ``"gpu"`` was asked for and JAX sees none (or an unknown name).
    """
    import jax

    if device == "cpu":
        try:
            from jax._src import xla_bridge

            initialised = xla_bridge.backends_are_initialized()
        except (ImportError, AttributeError):  # private API moved: just set the default
            initialised = True
        if not initialised:  # don't even start CUDA when the CPU is asked for
            jax.config.update("jax_platforms", "cpu")
        jax.config.update("jax_default_device", jax.devices("cpu")[0])
    elif device == "gpu":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError as e:
            raise DeviceError(
                "--device gpu: JAX finds no GPU on this machine (install a CUDA build of "
                f"JAX, e.g. pip install 'jax[cuda12]', or use --device cpu); JAX says: {e}"
            ) from e
        jax.config.update("jax_default_device", gpus[0])
    else:
        raise DeviceError(f"unknown device {device!r}: expected 'cpu' or 'gpu'")
