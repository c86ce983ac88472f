"""Weight constraints of anysma, applied by the optimizer after each update.

The classes are registered as `"anysma>Name"`, so models using them save and
load without `custom_objects`. The lower-case aliases of the original anysma
(`orthogonalization`, ...) are kept; they name the classes, like Keras'
`non_neg`. `get` resolves anysma's names and falls back to Keras for all
others (`"NonNeg"`, `"max_norm"`, ...).
"""

import keras
from keras import ops

from anysma._identifiers import public_classes
from anysma._identifiers import resolve_identifier
from anysma.api_export import anysma_export
from anysma.ops import linalg
from anysma.ops._validation import check_epsilon


@anysma_export
class TraceNormalization(keras.constraints.Constraint):
    """Divide square matrices by the root of their trace.

    Computes `W / max(sqrt(trace(W)), epsilon)`, the formula of the original
    anysma, on one matrix `(n, n)` or a stack `(P, n, n)` (each matrix is
    scaled separately). The trace of the result is `sqrt(trace(W))`, not 1:
    for a relevance matrix `Lambda = Omega Omega^T` of unit trace, constrain
    `Omega` with `OmegaNormalization` instead.

    Args:
        epsilon: Lower bound of the divisor (a number >= 0).

    Example:

    >>> import numpy as np
    >>> constraint = TraceNormalization()
    >>> np.round(np.asarray(constraint(2.0 * np.eye(2))), 6).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """

    def __init__(self, epsilon=1e-7):
        check_epsilon(epsilon)
        self.epsilon = float(epsilon)

    def __call__(self, w):
        return linalg.trace_normalization(w, epsilon=self.epsilon)

    def get_config(self):
        return {"epsilon": self.epsilon}


@anysma_export
class OmegaNormalization(keras.constraints.Constraint):
    """Scale Omega matrices so that `trace(Omega Omega^T) = 1`.

    Computes `Omega / max(sqrt(trace(Omega Omega^T)), epsilon)`, i.e. divides
    by the Frobenius norm, on one matrix `(D, M)` (global) or a stack
    `(P, D, M)` (local, each matrix separately). As the original anysma
    notes, it works against `OmegaRegularizer`, which pushes the scale of
    `Omega` up; do not combine the two.

    Args:
        epsilon: Lower bound of the divisor (a number >= 0).

    Example:

    >>> import numpy as np
    >>> constraint = OmegaNormalization()
    >>> np.asarray(constraint(np.full((2, 2), 3.0))).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """

    def __init__(self, epsilon=1e-7):
        check_epsilon(epsilon)
        self.epsilon = float(epsilon)

    def __call__(self, w):
        return linalg.omega_normalization(w, epsilon=self.epsilon)

    def get_config(self):
        return {"epsilon": self.epsilon}


@anysma_export
class Orthogonalization(keras.constraints.Constraint):
    """Project matrices onto the Stiefel manifold: `W <- U V^T`.

    `U V^T` comes from the thin SVD `W = U S V^T`: the closest matrix with
    orthonormal columns (rows when `W` is wide). Works on one matrix
    `(n, r)` or a stack `(P, n, r)`. The tangent-distance modules keep their
    subspace bases orthonormal with it.

    Example:

    >>> import numpy as np
    >>> constraint = Orthogonalization()
    >>> basis = np.asarray(constraint(np.random.normal(size=(5, 2))))
    >>> bool(np.allclose(basis.T @ basis, np.eye(2), atol=1e-5))
    True
    """

    def __call__(self, w):
        return linalg.orthogonalization(w)


@anysma_export
class Positive(keras.constraints.Constraint):
    """Keep weights strictly positive: `max(w, epsilon)`.

    A deliberate change from the original anysma, whose `Positive` was
    `w * (w > 0)`, i.e. the same as `keras.constraints.NonNeg`, so that the
    bounds of a restricted tangent distance could collapse to exactly 0.
    With `epsilon=0` this is a non-negativity constraint.

    Args:
        epsilon: The smallest value kept (a number >= 0).

    Example:

    >>> import numpy as np
    >>> np.asarray(Positive(epsilon=0.5)(np.array([-1.0, 0.0, 2.0]))).tolist()
    [0.5, 0.5, 2.0]
    """

    def __init__(self, epsilon=1e-7):
        check_epsilon(epsilon)
        self.epsilon = float(epsilon)

    def __call__(self, w):
        w = ops.convert_to_tensor(w)
        return ops.maximum(w, ops.cast(self.epsilon, w.dtype))

    def get_config(self):
        return {"epsilon": self.epsilon}


# The lower-case names of the original anysma. They are class aliases (as
# Keras' `non_neg`); the math functions of the same names live in
# `anysma.ops`.
trace_normalization = TraceNormalization
omega_normalization = OmegaNormalization
orthogonalization = Orthogonalization
positive = Positive

ALL_OBJECTS = (TraceNormalization, OmegaNormalization, Orthogonalization, Positive)
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update(
    trace_normalization=TraceNormalization,
    omega_normalization=OmegaNormalization,
    orthogonalization=Orthogonalization,
    positive=Positive,
)


def _keras_objects():
    """Keras' public constraint classes and aliases, by name."""
    return public_classes(keras.constraints, keras.constraints.Constraint)


def serialize(constraint):
    """Serialize a constraint to a JSON-safe config dict.

    Args:
        constraint: A `keras.constraints.Constraint` instance.

    Returns:
        The config dict of `keras.saving.serialize_keras_object`.
    """
    return keras.saving.serialize_keras_object(constraint)


def deserialize(config, custom_objects=None):
    """Create a constraint from a config dict or a name.

    anysma's names and Keras' constraint names both resolve.

    Args:
        config: A dict from `serialize`, or the name of a constraint.
        custom_objects: Optional dict of further names to classes.

    Returns:
        A constraint instance. An unknown name is returned unchanged (as
        `keras.constraints.deserialize` does); `get` raises on it.
    """
    return keras.saving.deserialize_keras_object(
        config,
        module_objects={**_keras_objects(), **ALL_OBJECTS_DICT},
        custom_objects=custom_objects,
    )


def get(identifier):
    """Resolve a constraint identifier to a constraint.

    Args:
        identifier: `None`, a constraint instance or callable, a constraint
            class, a config dict, or a name: anysma's (`"Orthogonalization"`,
            `"orthogonalization"`, `"Positive"`, ...) or Keras'
            (`"NonNeg"`, `"non_neg"`, ...).

    Returns:
        A constraint instance (or the given callable); `None` for `None`.

    Raises:
        ValueError: if `identifier` cannot be interpreted.

    Example:

    >>> get("orthogonalization")  # doctest: +ELLIPSIS
    <...Orthogonalization object at ...>
    """
    return resolve_identifier(
        identifier, "constraint", keras.constraints.Constraint, deserialize
    )


def __getattr__(name):
    # The original's `from keras.constraints import *`: Keras' names stay reachable.
    import keras

    from anysma._identifiers import keras_attribute

    return keras_attribute(keras.constraints, __name__, name)
