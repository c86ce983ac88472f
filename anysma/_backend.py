"""Choose a Keras backend before Keras is imported.

Keras defaults to TensorFlow, which is often not installed. When
``KERAS_BACKEND`` is not set, anysma picks the first installed one of JAX,
PyTorch and TensorFlow, in that order. (``keras.json`` is not consulted:
Keras writes ``"backend": "tensorflow"`` into it on first use, so it does not
tell a user's choice from Keras' default.)

TensorFlow's C++ start-up messages (INFO and WARNING lines printed when it is
loaded, as the backend or by any code that imports it, such as the CPU
feature notice) are quieted by defaulting ``TF_CPP_MIN_LOG_LEVEL`` to ``2``;
errors still print. (TensorFlow 2.21 prints its oneDNN notice before its
logging reads the variable, so that one line remains.) TensorFlow reads the
variable once, when it is first imported, so this happens here, before
Keras is imported. A value the user has set is kept.

On JAX, anysma also turns on JAX's persistent compilation cache (see
`configure_jax_compilation_cache`), so that a second process, a new model of
the same shapes or the next fold of a cross-validation loads its compiled
training step from disk instead of compiling it again.
"""

import importlib.util
import os
import sys
import warnings

_PREFERENCE = ("jax", "torch", "tensorflow")
#: Environment variable: `0`/`false`/`off` turns the JAX compilation cache
#: off; a path puts it there.
JAX_CACHE_ENV = "ANYSMA_JAX_COMPILATION_CACHE"
_OFF = ("0", "false", "off", "no")
# JAX caches only compilations that took longer than this. Its default, 1 s,
# skips every step of an LVQ model, which compiles in 0.01-1 s; storing them
# all cut the first fit of a GMLVQ on Tecator from 2.1 s to 0.7 s (0.1 s
# gave 1.2 s), for about 8 kB per program.
_MIN_CACHED_COMPILE_SECONDS = 0.0
# Least recently used entries are evicted above this size.
_MAX_CACHE_BYTES = 1 << 30


def select_backend():
    """Set ``KERAS_BACKEND`` when the user has not chosen a backend.

    Returns:
        The name of the backend Keras will use, or `None` when Keras was
        imported before anysma (then Keras' own choice stands).

    Raises:
        ImportError: if no backend is chosen and none of JAX, PyTorch or
            TensorFlow is installed.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules:
        return None
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    for name in _PREFERENCE:
        if importlib.util.find_spec(name) is not None:
            os.environ["KERAS_BACKEND"] = name
            if name != _PREFERENCE[0]:
                warnings.warn(
                    f"JAX is not installed and KERAS_BACKEND is not set: anysma "
                    f"uses the {name} backend. Set KERAS_BACKEND to choose.",
                    stacklevel=3,
                )
            return name
    raise ImportError(
        "anysma needs a Keras backend, but none of JAX, PyTorch or TensorFlow "
        "is installed. Install one, e.g. `pip install anysma[jax]` (or "
        "`anysma[torch]`, `anysma[tensorflow]`), or set the environment "
        "variable KERAS_BACKEND to a backend that is installed."
    )


def configure_jax_compilation_cache():
    """Turn on JAX's persistent compilation cache in anysma's cache folder.

    Only on the JAX backend, and only when the user has not configured the
    cache (`JAX_COMPILATION_CACHE_DIR` or `jax.config`): compiled programs
    are then stored in `<ANYSMA_CACHE_DIR or ~/.anysma>/jax_compilation_cache`
    and reused by every later compilation of the same program, in this
    process (a new model of the same shapes, the next cross-validation fold)
    and in the next ones. Every compilation is stored (JAX's default skips
    those under 1 s, i.e. all steps of the LVQ models), and the least
    recently used entries are evicted above 1 GiB (when the `filelock`
    package, which JAX needs for that, is installed).
    JAX keys the entries by the program, the JAX version and the device,
    so a stale entry is never used.

    Set `ANYSMA_JAX_COMPILATION_CACHE=0` to turn it off, or to a folder to
    put the cache there.

    Returns:
        The cache folder in use, or `None` when the cache is off or the
        backend is not JAX.
    """
    setting = os.environ.get(JAX_CACHE_ENV, "").strip()
    if setting.lower() in _OFF:
        return None
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    configured = jax.config.jax_compilation_cache_dir
    if configured or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return configured
    if setting:
        folder = os.path.abspath(os.path.expanduser(setting))
    else:
        from anysma.utils.downloads import cache_dir

        folder = cache_dir("jax_compilation_cache")
    jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update(
            "jax_persistent_cache_min_compile_time_secs", _MIN_CACHED_COMPILE_SECONDS
        )
    # JAX evicts only with the `filelock` package (it raises without it).
    if "JAX_COMPILATION_CACHE_MAX_SIZE" not in os.environ and importlib.util.find_spec(
        "filelock"
    ):
        jax.config.update("jax_compilation_cache_max_size", _MAX_CACHE_BYTES)
    return folder
