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
"""

import importlib.util
import os
import sys
import warnings

_PREFERENCE = ("jax", "torch", "tensorflow")


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
