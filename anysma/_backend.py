"""Choose a Keras backend before Keras is imported.

Keras defaults to TensorFlow, which is often not installed. When neither
``KERAS_BACKEND`` nor a ``keras.json`` file names a backend, anysma picks the
first installed one of JAX, PyTorch and TensorFlow, in that order.
"""

import importlib.util
import json
import os
import sys

_PREFERENCE = ("jax", "torch", "tensorflow")


def _backend_from_keras_json():
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    path = os.path.join(keras_home, "keras.json")
    try:
        with open(path) as config_file:
            return json.load(config_file).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def select_backend():
    """Set ``KERAS_BACKEND`` when the user has not chosen a backend.

    Returns:
        The name of the backend Keras will use, or `None` when Keras was
        imported before anysma (then Keras' own choice stands).

    Raises:
        ImportError: if no backend is chosen and none of JAX, PyTorch or
            TensorFlow is installed.
    """
    if "keras" in sys.modules:
        return None
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    configured = _backend_from_keras_json()
    if configured:
        return configured
    for name in _PREFERENCE:
        if importlib.util.find_spec(name) is not None:
            os.environ["KERAS_BACKEND"] = name
            return name
    raise ImportError(
        "anysma needs a Keras backend, but none of JAX, PyTorch or TensorFlow "
        "is installed. Install one, e.g. `pip install anysma[jax]` (or "
        "`anysma[torch]`, `anysma[tensorflow]`), or set the environment "
        "variable KERAS_BACKEND to a backend that is installed."
    )
