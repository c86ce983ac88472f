"""Gradient checks that work on every trainable Keras backend.

`autodiff_gradient` differentiates a function written with `keras.ops` by the
active backend's automatic differentiation (`jax.grad`, `torch.autograd`,
`tf.GradientTape`); `numeric_gradient` approximates the same gradient by
central finite differences. Comparing both catches wrong custom gradients
and masked-out branches that leak NaN.

Example:

>>> import numpy as np
>>> from keras import ops
>>> x = np.array([1.0, 2.0])
>>> fn = lambda t: ops.sum(ops.square(t))
>>> np.allclose(autodiff_gradient(fn, x), numeric_gradient(fn, x), atol=1e-2)
True
"""

import keras
import numpy as np


def _as_array(x, dtype):
    return np.asarray(x, dtype=dtype or keras.config.floatx())


def _scalar(value):
    """Sum a tensor result to a Python float (float64)."""
    return float(np.sum(np.asarray(keras.ops.convert_to_numpy(value), "float64")))


def numeric_gradient(fn, x, delta=1e-3, dtype=None):
    """Central finite-difference gradient of `sum(fn(x))` with respect to `x`.

    Each entry is `(f(x + delta e_i) - f(x - delta e_i)) / (2 delta)`. The
    function values are accumulated in float64; the inputs are passed in
    `dtype`, so in float32 the error is about `1e-7 |f| / delta`.

    Args:
        fn: A function of one tensor written with `keras.ops`.
        x: The point, array-like.
        delta: The finite-difference step, > 0.
        dtype: Dtype of the tensors passed to `fn`; defaults to
            `keras.config.floatx()`.

    Returns:
        A float64 NumPy array of the shape of `x`.
    """
    if not delta > 0:
        raise ValueError(f"`delta` must be > 0. Received: delta={delta!r}")
    point = np.asarray(x, dtype="float64")
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        shifted = point.copy()
        shifted[index] = point[index] + delta
        upper = _scalar(fn(keras.ops.convert_to_tensor(_as_array(shifted, dtype))))
        shifted[index] = point[index] - delta
        lower = _scalar(fn(keras.ops.convert_to_tensor(_as_array(shifted, dtype))))
        gradient[index] = (upper - lower) / (2 * delta)
    return gradient


def autodiff_gradient(fn, x, dtype=None):
    """Gradient of `sum(fn(x))` with respect to `x` by the backend's autodiff.

    Args:
        fn: A function of one tensor written with `keras.ops`.
        x: The point, array-like.
        dtype: Dtype of the tensor passed to `fn`; defaults to
            `keras.config.floatx()`.

    Returns:
        A NumPy array of the shape of `x`.

    Raises:
        NotImplementedError: For backends without automatic differentiation
            (`numpy`, `openvino`).
    """
    backend = keras.backend.backend()
    point = _as_array(x, dtype)
    if backend == "jax":
        import jax

        gradient = jax.grad(lambda tensor: keras.ops.sum(fn(tensor)))(
            keras.ops.convert_to_tensor(point)
        )
    elif backend == "torch":
        import torch

        tensor = keras.ops.convert_to_tensor(point).detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(
            keras.ops.sum(fn(tensor)), tensor, allow_unused=True
        )
        if gradient is None:  # `fn` does not depend on `x`.
            gradient = torch.zeros_like(tensor)
    elif backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(point)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = keras.ops.sum(fn(tensor))
        gradient = tape.gradient(value, tensor)
        if gradient is None:  # `fn` does not depend on `x`.
            gradient = tf.zeros_like(tensor)
    else:
        raise NotImplementedError(
            f"autodiff_gradient does not support the {backend!r} backend."
        )
    return np.asarray(keras.ops.convert_to_numpy(gradient))
