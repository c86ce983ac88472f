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
