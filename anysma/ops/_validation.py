"""Argument checks shared by the math functions (static shapes only)."""

import math
import numbers

import keras
from keras import ops


def static_shape(tensor):
    """The static shape as a tuple of ints, with `None` for unknown dims.

    Symbolic dims (the batch of JAX's shape inference for `keras.Input`) are
    unknown too: they cannot be converted to `int`.
    """
    return tuple(
        int(dim) if isinstance(dim, numbers.Integral) else None
        for dim in tuple(tensor.shape)
    )


def to_common_float(*tensors):
    """Convert to tensors of one float dtype (the promoted float dtypes)."""
    tensors = [ops.convert_to_tensor(tensor) for tensor in tensors]
    float_dtypes = [
        keras.backend.standardize_dtype(tensor.dtype)
        for tensor in tensors
        if "float" in keras.backend.standardize_dtype(tensor.dtype)
    ]
    dtype = (
        keras.backend.result_type(*float_dtypes)
        if float_dtypes
        else keras.config.floatx()
    )
    return [ops.cast(tensor, dtype) for tensor in tensors]


def check_order_p(order_p, name="order_p"):
    if (
        isinstance(order_p, bool)
        or not isinstance(order_p, numbers.Real)
        or math.isnan(order_p)
        or order_p <= 0
    ):
        raise ValueError(
            f"`{name}` must be a number > 0 or `math.inf`. Received: {name}={order_p!r}"
        )


def check_epsilon(epsilon, name="epsilon", positive=False):
    """Raise unless `epsilon` is a number >= 0 (> 0 with `positive`).

    `positive` is for the formulas that divide by, or take the log of, a
    quantity clamped by `epsilon`: there 0 would give NaN.
    """
    if (
        isinstance(epsilon, bool)
        or not isinstance(epsilon, numbers.Real)
        or not epsilon >= 0
        or (positive and not epsilon > 0)
    ):
        wanted = "> 0" if positive else ">= 0"
        raise ValueError(
            f"`{name}` must be a number {wanted}. Received: {name}={epsilon!r}"
        )


def check_rank(tensor, name, expected, description=""):
    """Raise a `ValueError` if `tensor`'s rank is not in `expected`."""
    expected = (expected,) if isinstance(expected, int) else tuple(expected)
    rank = len(tensor.shape)
    if rank not in expected:
        wanted = " or ".join(str(r) for r in expected)
        raise ValueError(
            f"`{name}` must have rank {wanted}{description}. "
            f"Received: {name}.shape={static_shape(tensor)}"
        )


def check_min_rank(tensor, name, minimum, description=""):
    rank = len(tensor.shape)
    if rank < minimum:
        raise ValueError(
            f"`{name}` must have rank >= {minimum}{description}. "
            f"Received: {name}.shape={static_shape(tensor)}"
        )


def check_dims_match(dim_a, dim_b, message):
    """Raise `ValueError(message)` when two static dims are known and differ."""
    if dim_a is not None and dim_b is not None and int(dim_a) != int(dim_b):
        raise ValueError(message)
