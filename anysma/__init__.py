"""anysma: prototype-based learning and capsule networks for Keras 3."""

from anysma._backend import configure_jax_compilation_cache as _configure_cache
from anysma._backend import select_backend as _select_backend

_select_backend()

from anysma import callbacks  # noqa: E402
from anysma import constraints  # noqa: E402
from anysma import datasets  # noqa: E402
from anysma import layers  # noqa: E402
from anysma import losses  # noqa: E402
from anysma import models  # noqa: E402
from anysma import modules  # noqa: E402
from anysma import ops  # noqa: E402
from anysma import probability_transformations  # noqa: E402
from anysma import regularizers  # noqa: E402
from anysma import reject  # noqa: E402
from anysma import robustness  # noqa: E402
from anysma import utils  # noqa: E402
from anysma.capsule import Capsule  # noqa: E402
from anysma.version import __version__  # noqa: E402

_configure_cache()

__all__ = [
    "Capsule",
    "__version__",
    "modules",
    "callbacks",
    "constraints",
    "datasets",
    "layers",
    "losses",
    "models",
    "ops",
    "probability_transformations",
    "regularizers",
    "reject",
    "robustness",
    "utils",
]
