import os
import subprocess
import sys
from unittest import mock

import keras
import pytest

from anysma import _backend


def test_keras_runs_on_the_selected_backend():
    assert keras.backend.backend() == os.environ["KERAS_BACKEND"]


def test_jax_is_the_default_when_installed():
    pytest.importorskip("jax")
    environment = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", "import anysma, keras; print(keras.backend.backend())"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "jax"


def test_clear_error_without_any_backend():
    with (
        mock.patch.dict(os.environ, {}, clear=True),
        mock.patch.dict(sys.modules) as modules,
    ):
        modules.pop("keras", None)
        with (
            mock.patch.object(_backend.importlib.util, "find_spec", return_value=None),
            pytest.raises(ImportError, match=r"pip install anysma\[jax\]"),
        ):
            _backend.select_backend()


def test_fallback_is_announced():
    def only_torch(name):
        return object() if name == "torch" else None

    with (
        mock.patch.dict(os.environ, {}, clear=True),
        mock.patch.dict(sys.modules) as modules,
    ):
        modules.pop("keras", None)
        with (
            mock.patch.object(
                _backend.importlib.util, "find_spec", side_effect=only_torch
            ),
            pytest.warns(UserWarning, match="uses the torch backend"),
        ):
            assert _backend.select_backend() == "torch"


# Records the variable at the moment Keras is first imported.
_LOG_LEVEL_WHEN_KERAS_LOADS = """
import os, sys

class Spy:
    seen = None

    def find_spec(self, name, path=None, target=None):
        if name == "keras" and Spy.seen is None:
            Spy.seen = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "unset")
        return None

sys.meta_path.insert(0, Spy())
import anysma.cli
print(Spy.seen)
"""


@pytest.mark.parametrize("preset", [None, "0"])
def test_tensorflow_log_level_is_set_before_keras_is_imported(preset):
    # TensorFlow reads the variable once, when it loads (Keras may load it).
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if preset is not None:
        environment["TF_CPP_MIN_LOG_LEVEL"] = preset
    result = subprocess.run(
        [sys.executable, "-c", _LOG_LEVEL_WHEN_KERAS_LOADS],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = "2" if preset is None else preset
    assert result.stdout.strip().splitlines()[-1] == expected


_CACHE_PROBE = """
import os, jax, anysma
import jax.numpy as jnp
print("DIR", jax.config.jax_compilation_cache_dir)
jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((8, 8))).block_until_ready()
folder = jax.config.jax_compilation_cache_dir
print("ENTRIES", len(os.listdir(folder)) if folder and os.path.isdir(folder) else 0)
"""


def _probe_jax_cache(tmp_path, **variables):
    pytest.importorskip("jax")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JAX_", "ANYSMA_JAX"))
    }
    environment.update(
        KERAS_BACKEND="jax",
        ANYSMA_CACHE_DIR=str(tmp_path / "cache"),
        **variables,
    )
    result = subprocess.run(
        [sys.executable, "-c", _CACHE_PROBE],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = dict(
        line.split(" ", 1) for line in result.stdout.splitlines() if " " in line
    )
    return lines["DIR"], int(lines["ENTRIES"])


def test_jax_compilation_cache_is_on_in_the_anysma_cache(tmp_path):
    folder, entries = _probe_jax_cache(tmp_path)
    assert folder == str(tmp_path / "cache" / "jax_compilation_cache")
    assert entries > 0


def test_jax_compilation_cache_opt_out_and_user_choice(tmp_path):
    folder, entries = _probe_jax_cache(tmp_path, ANYSMA_JAX_COMPILATION_CACHE="0")
    assert (folder, entries) == ("None", 0)
    chosen = tmp_path / "mine"
    folder, entries = _probe_jax_cache(
        tmp_path, ANYSMA_JAX_COMPILATION_CACHE=str(chosen)
    )
    assert folder == str(chosen) and entries > 0
    users = tmp_path / "users"
    folder, _ = _probe_jax_cache(tmp_path, JAX_COMPILATION_CACHE_DIR=str(users))
    assert folder == str(users)
