"""Vector p-norms with the original anysma's ``squared`` and ε semantics."""

import math

from keras import ops

from anysma.ops._validation import check_order_p
from anysma.ops.reductions import selected_max


def safe_root(values, order_p, epsilon=1e-7):
    """The `order_p`-th root of non-negative `values` with finite gradients.

    With `epsilon > 0` this is `max(values, epsilon) ** (1 / order_p)`, the
    clamp of the original anysma. With `epsilon == 0`, zeros map to zero and
    their gradient is zero instead of infinite.
    """
    if epsilon > 0:
        clamped = ops.maximum(values, ops.cast(epsilon, values.dtype))
        return ops.sqrt(clamped) if order_p == 2 else ops.power(clamped, 1.0 / order_p)
    positive = ops.greater(values, 0)
    safe = ops.where(positive, values, ops.ones_like(values))
    root = ops.sqrt(safe) if order_p == 2 else ops.power(safe, 1.0 / order_p)
    return ops.where(positive, root, ops.zeros_like(values))


def powered_magnitude(values, order_p):
    """`|values| ** order_p` elementwise, with a finite gradient at zero."""
    if order_p == 2:
        return ops.square(values)
    if float(order_p).is_integer() and int(order_p) % 2 == 0:
        return ops.power(values, int(order_p))
    magnitude = ops.abs(values)
    if order_p > 1:
        return ops.power(magnitude, order_p)
    # For p <= 1 the derivative of |x| ** p is unbounded at 0: mask it out.
    positive = ops.greater(magnitude, 0)
    safe = ops.where(positive, magnitude, ops.ones_like(magnitude))
    return ops.where(positive, ops.power(safe, order_p), ops.zeros_like(magnitude))


def p_norm(vectors, order_p=2, axis=-1, squared=False, keepdims=False, epsilon=1e-7):
    """Minkowski p-norm of `vectors` along `axis`, as in the original anysma.

    "Squared" means: skip the final root. Hence for p = 2 it is the squared
    Euclidean norm, for p = 1 and p = inf the norm is squared explicitly, and
    for other p it is `sum(|x| ** p)`. When the root is taken, its argument is
    clamped to at least `epsilon` (the original's ε clamp), which keeps the
    gradient finite at zero.

    Args:
        vectors: Tensor.
        order_p: Any number > 0, or `math.inf`.
        axis: Axis (int) or axes (tuple) to reduce.
        squared: Skip the root (see above).
        keepdims: Keep the reduced axes with length 1.
        epsilon: Lower clamp before the root; `0` disables it.

    Returns:
        The norms, with `axis` reduced.

    Example:

    >>> import numpy as np
    >>> float(p_norm(np.array([3.0, 4.0])))  # doctest: +ELLIPSIS
    5.0...
    """
    check_order_p(order_p)
    vectors = ops.convert_to_tensor(vectors)
    if order_p == 1:
        norm = ops.sum(ops.abs(vectors), axis=axis, keepdims=keepdims)
        return ops.square(norm) if squared else norm
    if math.isinf(order_p):
        norm = selected_max(ops.abs(vectors), axis=axis, keepdims=keepdims)
        return ops.square(norm) if squared else norm
    powered = ops.sum(powered_magnitude(vectors, order_p), axis=axis, keepdims=keepdims)
    if squared:
        return powered
    return safe_root(powered, order_p, epsilon)


def euclidean_norm(vectors, axis=-1, squared=False, keepdims=False, epsilon=1e-7):
    """Euclidean norm; `p_norm` with `order_p=2`."""
    return p_norm(
        vectors,
        order_p=2,
        axis=axis,
        squared=squared,
        keepdims=keepdims,
        epsilon=epsilon,
    )
