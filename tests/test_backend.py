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
