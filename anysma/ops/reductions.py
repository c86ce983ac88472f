"""Maximum and minimum whose gradient reaches exactly one selected entry.

`keras.ops.max` differentiates by comparing every entry with the result
and dividing the cotangent among the equal ones. Under a compiler that
fuses and recomputes its operand (XLA under `jax.jit` or
`jit_compile=True`), the entries may be computed twice with different
rounding, so that none of them equals the maximum any more: the count of
maxima is then 0 and the gradient `0 / 0 = NaN`. Anysma's flips and GLVQ
losses take maxima of distances that XLA recomputes in exactly this way.

The functions here read the extremum at its `argmax` (`argmin`) instead.
The value is the same; the gradient goes to that one entry (the first of
tied ones), so no comparison of floats decides it.
"""

import keras
from keras import ops

from anysma.ops._validation import static_shape


def _normalized_axes(axis, rank):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if not axes:
        raise ValueError(f"`axis` must name at least one axis. Received: axis={axis}")
    normalized = []
    for single in axes:
        if not -rank <= single < rank:
            raise ValueError(
                f"`axis` must lie in [-{rank}, {rank}) for a tensor of rank "
                f"{rank}. Received: axis={axis}"
            )
        normalized.append(single % rank)
    return sorted(set(normalized))


def _selected_extremum(values, axis, keepdims, select):
    values = ops.convert_to_tensor(values)
    rank = len(static_shape(values))
    if axis is None:
        axis = tuple(range(rank))
    axes = _normalized_axes(axis, rank)
    result = values
    for single in axes:
        size = static_shape(result)[single]
        if size is None or keras.backend.backend() != "tensorflow":
            positions = select(result, axis=single, keepdims=True)
            result = ops.take_along_axis(result, positions, axis=single)
            continue
        # On TensorFlow, a mask of the selected entry and a sum over it: the
        # same value (every other term is an exact zero) and gradient as the
        # gather, whose traced gradient graph took most of a first `fit`
        # (GLVQ on Tecator: 1.6 s, 0.65 s with the mask). In eager PyTorch
        # the mask's extra operations cost more than the gather (+0.35 ms
        # per step), and XLA compiles both alike.
        # The new axis of `one_hot` is `single`; the last one must be -1.
        new_axis = -1 if single == rank - 1 else single
        selected = ops.one_hot(select(result, axis=single), size, axis=new_axis)
        result = ops.sum(
            ops.where(ops.cast(selected, "bool"), result, ops.zeros_like(result)),
            axis=single,
            keepdims=True,
        )
    if keepdims:
        return result
    return ops.squeeze(result, axis=tuple(axes))


def selected_max(values, axis=-1, keepdims=False):
    """The maximum along `axis`, with its whole gradient on one entry.

    Equal in value to `keras.ops.max`. Its gradient is 1 at the (first)
    position of the maximum and 0 elsewhere, which stays finite when a
    compiler recomputes `values` with slightly different rounding (see the
    module docstring).

    Args:
        values: Tensor.
        axis: An int, a tuple of ints, or `None` for all axes.
        keepdims: Keep the reduced axes with length 1.

    Returns:
        The maxima, with `axis` reduced.

    Example:

    >>> import numpy as np
    >>> float(selected_max(np.array([1.0, 3.0, 2.0])))
    3.0
    """
    return _selected_extremum(values, axis, keepdims, ops.argmax)


def selected_min(values, axis=-1, keepdims=False):
    """The minimum along `axis`, with its whole gradient on one entry.

    The counterpart of `selected_max`; equal in value to `keras.ops.min`.

    Args:
        values: Tensor.
        axis: An int, a tuple of ints, or `None` for all axes.
        keepdims: Keep the reduced axes with length 1.

    Returns:
        The minima, with `axis` reduced.

    Example:

    >>> import numpy as np
    >>> float(selected_min(np.array([1.0, 3.0, 2.0])))
    1.0
    """
    return _selected_extremum(values, axis, keepdims, ops.argmin)
