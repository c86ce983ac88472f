"""Weight and activity regularizers of anysma.

The classes are registered as `"anysma>Name"`, so models using them save and
load without `custom_objects`. The names of the original anysma are kept:
`MinDistance`/`MaxDistance` (aliases of `MinValue`/`MaxValue`) and the
functions `min_distance`/`max_distance`, which return instances. `get`
resolves anysma's names and falls back to Keras for all others (`"l2"`,
`"L1L2"`, ...).
"""

import numbers

import keras
from keras import ops

from anysma._identifiers import public_classes
from anysma._identifiers import resolve_identifier
from anysma.api_export import anysma_export
from anysma.ops import linalg
from anysma.ops.reductions import selected_max
from anysma.ops.reductions import selected_min
from anysma.utils.validation import check_number


def _check_alpha(alpha):
    return check_number(alpha, "alpha", minimum=0, finite=False)


def _check_axis(axis):
    """Return `axis` as `None`, an int or a tuple of ints."""
    if axis is None:
        return None
    is_sequence = isinstance(axis, (list, tuple))
    items = tuple(axis) if is_sequence else (axis,)
    if not items or not all(
        isinstance(item, numbers.Integral) and not isinstance(item, bool)
        for item in items
    ):
        raise ValueError(
            "`axis` must be `None`, an integer or a non-empty tuple of "
            f"integers. Received: axis={axis!r}"
        )
    return tuple(int(item) for item in items) if is_sequence else int(axis)


@anysma_export
class LogDeterminant(keras.regularizers.Regularizer):
    """Penalize small determinants: `-alpha * sum(log(det(w)))`.

    The log-determinant is `anysma.ops.log_determinant` (the log of the
    absolute determinant, via `slogdet`). `w` is one square matrix or a stack
    of them, whose log-determinants are summed.

    Args:
        alpha: Regularization factor (a number >= 0).

    Example:

    >>> import numpy as np
    >>> round(float(LogDeterminant(alpha=1.0)(np.diag([1.0, np.e]))), 6)
    -1.0
    """

    def __init__(self, alpha=0.005):
        self.alpha = _check_alpha(alpha)

    def __call__(self, x):
        return -self.alpha * ops.sum(linalg.log_determinant(x))

    def get_config(self):
        return {"alpha": self.alpha}


@anysma_export
class OmegaRegularizer(keras.regularizers.Regularizer):
    """The GMLVQ regularizer against a collapsing relevance matrix.

    Computes `-alpha * sum(log(det(G)))`, where `G` is the smaller one of
    `Omega^T Omega` and `Omega Omega^T` (see
    `anysma.ops.omega_log_determinant`). It grows without bound as `Omega`
    loses rank, and so keeps all directions of the projection in use.
    Works on one matrix `(D, M)` (global) or a stack `(P, D, M)` (local),
    whose terms are summed. Do not combine it with `OmegaNormalization`,
    which fixes the scale this term pushes up.

    Args:
        alpha: Regularization factor (a number >= 0).

    Example:

    >>> import numpy as np
    >>> omega = np.array([[1.0, 0.0], [0.0, np.e], [0.0, 0.0]])
    >>> round(float(OmegaRegularizer(alpha=1.0)(omega)), 6)  # -log(e**2)
    -2.0
    """

    def __init__(self, alpha=0.005):
        self.alpha = _check_alpha(alpha)

    def __call__(self, x):
        return -self.alpha * ops.sum(linalg.omega_log_determinant(x))

    def get_config(self):
        return {"alpha": self.alpha}


@anysma_export
class MinValue(keras.regularizers.Regularizer):
    """Penalize large minima: `alpha * mean(min(x, axis))`.

    Used as an activity regularizer on dissimilarities, it pulls every input
    towards its closest prototype. The original anysma called it
    `MinDistance`, which remains an alias.

    Args:
        alpha: Regularization factor (a number >= 0).
        axis: Axis (int), axes (tuple) or `None` (all) of the minimum.

    Example:

    >>> import numpy as np
    >>> float(MinValue(alpha=1.0)(np.array([[1.0, 2.0], [3.0, 5.0]])))
    2.0
    """

    def __init__(self, alpha=0.001, axis=-1):
        self.alpha = _check_alpha(alpha)
        self.axis = _check_axis(axis)

    def __call__(self, x):
        return self.alpha * ops.mean(selected_min(x, axis=self.axis))

    def get_config(self):
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return {"alpha": self.alpha, "axis": axis}


@anysma_export
class MaxValue(keras.regularizers.Regularizer):
    """Penalize large maxima: `alpha * mean(max(x, axis))`.

    The original anysma (as `MaxDistance`, which remains an alias) puts it
    with `alpha=1e-4` on the dissimilarities of the final routing, as an
    activity regularizer.

    Args:
        alpha: Regularization factor (a number >= 0).
        axis: Axis (int), axes (tuple) or `None` (all) of the maximum.

    Example:

    >>> import numpy as np
    >>> float(MaxValue(alpha=1.0)(np.array([[1.0, 2.0], [3.0, 5.0]])))
    3.5
    """

    def __init__(self, alpha=0.0001, axis=-1):
        self.alpha = _check_alpha(alpha)
        self.axis = _check_axis(axis)

    def __call__(self, x):
        return self.alpha * ops.mean(selected_max(x, axis=self.axis))

    def get_config(self):
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return {"alpha": self.alpha, "axis": axis}


# The class names of the original anysma.
MinDistance = MinValue
MaxDistance = MaxValue


def log_determinant(alpha=0.005):
    """Return `LogDeterminant(alpha)`."""
    return LogDeterminant(alpha=alpha)


def omega_regularizer(alpha=0.005):
    """Return `OmegaRegularizer(alpha)`."""
    return OmegaRegularizer(alpha=alpha)


def min_value(alpha=0.001, axis=-1):
    """Return `MinValue(alpha, axis)`."""
    return MinValue(alpha=alpha, axis=axis)


def max_value(alpha=0.0001, axis=-1):
    """Return `MaxValue(alpha, axis)`."""
    return MaxValue(alpha=alpha, axis=axis)


def min_distance(alpha=0.001, axis=-1):
    """Return `MinValue(alpha, axis)`; the original anysma's name."""
    return MinValue(alpha=alpha, axis=axis)


def max_distance(alpha=0.0001, axis=-1):
    """Return `MaxValue(alpha, axis)`; the original anysma's name."""
    return MaxValue(alpha=alpha, axis=axis)


ALL_OBJECTS = (LogDeterminant, OmegaRegularizer, MinValue, MaxValue)
# Names map to classes (not to the functions above): Keras deserializes a
# function entry as the function itself, while a class with its default
# arguments equals what the function returns.
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update(
    MinDistance=MinValue,
    MaxDistance=MaxValue,
    log_determinant=LogDeterminant,
    omega_regularizer=OmegaRegularizer,
    min_value=MinValue,
    max_value=MaxValue,
    min_distance=MinValue,
    max_distance=MaxValue,
)


def _keras_objects():
    """Keras' public regularizer classes and aliases, by name."""
    return public_classes(keras.regularizers, keras.regularizers.Regularizer)


def serialize(regularizer):
    """Serialize a regularizer to a JSON-safe config dict.

    Args:
        regularizer: A `keras.regularizers.Regularizer` instance.

    Returns:
        The config dict of `keras.saving.serialize_keras_object`.
    """
    return keras.saving.serialize_keras_object(regularizer)


def deserialize(config, custom_objects=None):
    """Create a regularizer from a config dict or a name.

    anysma's names and Keras' regularizer names both resolve.

    Args:
        config: A dict from `serialize`, or the name of a regularizer.
        custom_objects: Optional dict of further names to classes.

    Returns:
        A regularizer instance. An unknown name is returned unchanged (as
        `keras.regularizers.deserialize` does); `get` raises on it.
    """
    return keras.saving.deserialize_keras_object(
        config,
        module_objects={**_keras_objects(), **ALL_OBJECTS_DICT},
        custom_objects=custom_objects,
    )


def get(identifier):
    """Resolve a regularizer identifier to a regularizer.

    Args:
        identifier: `None`, a regularizer instance or callable, a regularizer
            class, a config dict, or a name: anysma's (`"OmegaRegularizer"`,
            `"max_distance"`, `"MinValue"`, ...) or Keras' (`"l2"`,
            `"L1L2"`, ...).

    Returns:
        A regularizer instance (or the given callable); `None` for `None`.

    Raises:
        ValueError: if `identifier` cannot be interpreted.

    Example:

    >>> get("max_distance").alpha
    0.0001
    """
    return resolve_identifier(
        identifier, "regularizer", keras.regularizers.Regularizer, deserialize
    )


def __getattr__(name):
    # The original's `from keras.regularizers import *`: Keras' names stay reachable.
    import keras

    from anysma._identifiers import keras_attribute

    return keras_attribute(keras.regularizers, __name__, name)
