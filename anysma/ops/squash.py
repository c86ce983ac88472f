"""The squash non-linearity of capsule networks (Sabour et al., 2017)."""

import keras
from keras import ops

from anysma.api_export import anysma_export
from anysma.ops._validation import check_epsilon
from anysma.ops.norms import safe_root

# Half-precision norms are computed in float32: in float16 the clamps of the
# original (1e-7, and 1e-14 for the lengths of dynamic routing) underflow to
# zero, and a root of zero has an infinite gradient.
_HALF_DTYPES = ("float16", "bfloat16")


def _as_float(tensor):
    tensor = ops.convert_to_tensor(tensor)
    if "float" not in keras.backend.standardize_dtype(tensor.dtype):
        tensor = ops.cast(tensor, keras.config.floatx())
    return tensor


def _compute_dtype(dtype):
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in _HALF_DTYPES else dtype


# Registered so that `keras.layers.Lambda(squash)` (the original CapsNet's
# PrimaryCaps) saves by name and loads without `custom_objects`.
@anysma_export
def squash(vectors, axis=-1, epsilon=1e-7):
    """Squash vectors to lengths in [0, 1) keeping their directions.

    Computes `||s||^2 / (1 + ||s||^2) * s / ||s|| = ||s|| / (1 + ||s||^2) * s`
    with `||s|| = sqrt(max(||s||^2, epsilon))`. The clamp of the original
    anysma keeps the gradient finite at `s = 0` (there it is
    `sqrt(epsilon) * I`). Half-precision inputs are computed in float32 and
    cast back.

    Args:
        vectors: Tensor of vectors.
        axis: Axis (int) or axes (tuple) that span a vector.
        epsilon: Lower clamp of the squared norm before the root; `0`
            disables the clamp (then zero vectors get a zero gradient).

    Returns:
        The squashed vectors, of the shape and dtype of `vectors`.

    Example:

    >>> import numpy as np
    >>> squashed = squash(np.array([[3.0, 4.0]]))
    >>> float(np.linalg.norm(squashed))  # 25 / 26  # doctest: +ELLIPSIS
    0.961...

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NeurIPS 2017, Eq. (1).
    """
    check_epsilon(epsilon)
    vectors = _as_float(vectors)
    dtype = vectors.dtype
    computed = ops.cast(vectors, _compute_dtype(dtype))
    squared_norm = ops.sum(ops.square(computed), axis=axis, keepdims=True)
    norm = safe_root(squared_norm, 2, epsilon)
    return ops.cast(computed * (norm / (1 + squared_norm)), dtype)


# The original anysma name (`anysma.utils.normalization_funcs`).
dynamic_routing_squash = squash


@anysma_export
def efficient_squash(vectors, axis=-1, epsilon=1e-7):
    """The squash of Efficient-CapsNet: `(1 - exp(-||s||)) * s / ||s||`.

    Lengths lie in [0, 1) and directions are kept, as with `squash`, but
    the length grows faster for short vectors (Mazzia et al., 2021).
    `||s|| = sqrt(max(||s||^2, epsilon))`: near `s = 0` the function is
    about `s` (Jacobian `I`), so there is no NaN at zero. `1 - exp(-n)` is
    computed as `-expm1(-n)`, exact for short vectors. Half-precision inputs
    are computed in float32 and cast back.

    Args:
        vectors: Tensor of vectors.
        axis: Axis (int) or axes (tuple) that span a vector.
        epsilon: Lower clamp of the squared norm before the root; `0`
            disables the clamp (then zero vectors get a zero gradient).

    Returns:
        The squashed vectors, of the shape and dtype of `vectors`.

    Example:

    >>> import numpy as np
    >>> squashed = efficient_squash(np.array([[3.0, 4.0]]))
    >>> float(np.linalg.norm(squashed))  # 1 - exp(-5)  # doctest: +ELLIPSIS
    0.993...

    Reference:
        Mazzia, Salvetti and Chiaberge, "Efficient-CapsNet: capsule network
        with self-attention routing", Scientific Reports 11, 14634 (2021),
        section "Primary capsules".
    """
    check_epsilon(epsilon)
    vectors = _as_float(vectors)
    dtype = vectors.dtype
    computed = ops.cast(vectors, _compute_dtype(dtype))
    squared_norm = ops.sum(ops.square(computed), axis=axis, keepdims=True)
    norm = safe_root(squared_norm, 2, epsilon)
    if epsilon > 0:
        scale = -ops.expm1(-norm) / norm
    else:
        # Without the clamp, zero vectors get the limit 1 of the scale.
        positive = ops.greater(norm, 0)
        safe_norm = ops.where(positive, norm, ops.ones_like(norm))
        scale = ops.where(positive, -ops.expm1(-safe_norm) / safe_norm, 1.0)
    return ops.cast(computed * scale, dtype)
