"""Helpers shared by the routing and competition kernels.

Private to `anysma.ops`: the max-stabilized softmax, flattening of atoms
of any rank to vectors and back, the weighted contraction of signals and
dissimilarities, and the argument checks these kernels have in common.
"""

import math

from keras import ops

from anysma.ops._validation import check_min_rank
from anysma.ops._validation import check_rank
from anysma.ops._validation import static_shape


def stable_softmax(logits, axis):
    """Softmax along `axis`, with the maximum subtracted before `exp`.

    Unlike `keras.ops.softmax` it does not warn on axes of size 1 (a capsule
    with one prototype, a single channel), which are legitimate here. The
    shift does not change the result, so its gradient can be stopped.
    """
    shifted = logits - ops.stop_gradient(ops.max(logits, axis=axis, keepdims=True))
    exponentials = ops.exp(shifted)
    return exponentials / ops.sum(exponentials, axis=axis, keepdims=True)


def all_static(dims):
    return all(isinstance(dim, int) for dim in dims)


def flatten_atoms(tensor, leading_rank):
    """Reshape `(*leading, *atom)` to `(*leading, D)`; also return the atom shape.

    The batch dimension is left to `-1` so that an unknown batch size works
    inside traced functions.
    """
    shape = tuple(ops.shape(tensor))
    leading, atom_shape = shape[1:leading_rank], shape[leading_rank:]
    if all_static(leading + atom_shape):
        new_shape = (-1,) + leading + (math.prod(atom_shape),)
    else:
        new_shape = shape[:leading_rank] + (-1,)
    return ops.reshape(tensor, new_shape), atom_shape


def restore_atoms(tensor, atom_shape):
    """Inverse of `flatten_atoms` for a tensor `(*leading, D)`."""
    shape = tuple(ops.shape(tensor))
    leading = shape[1:-1]
    if all_static(leading + tuple(atom_shape)):
        return ops.reshape(tensor, (-1,) + leading + tuple(atom_shape))
    return ops.reshape(tensor, shape[:-1] + tuple(atom_shape))


def check_signals_and_dissimilarities(
    signals,
    dissimilarities,
    rank,
    signals_layout,
    dissimilarities_layout,
    names=("signals", "dissimilarities"),
    shared_axis=None,
):
    """`dissimilarities` has rank `rank`, equal to the leading dims of `signals`.

    On `shared_axis` the signals may have size 1 (shared, broadcast).
    """
    signals_name, dissimilarities_name = names
    check_min_rank(signals, signals_name, rank, signals_layout)
    check_rank(dissimilarities, dissimilarities_name, rank, dissimilarities_layout)
    signals_shape = static_shape(signals)
    dissimilarities_shape = static_shape(dissimilarities)
    if any(
        a is not None and b is not None and a != b and not (axis == shared_axis == a)
        for axis, (a, b) in enumerate(zip(signals_shape[:rank], dissimilarities_shape))
    ):
        shared = (
            f" (axis {shared_axis} of `{signals_name}` may also be 1)"
            if shared_axis is not None
            else ""
        )
        raise ValueError(
            f"`{signals_name}`{signals_layout} and `{dissimilarities_name}`"
            f"{dissimilarities_layout} must agree in their first {rank} "
            f"dimensions{shared}. Received: {signals_name}.shape={signals_shape}, "
            f"{dissimilarities_name}.shape={dissimilarities_shape}"
        )


def check_callable(probability_transformation):
    if not callable(probability_transformation):
        raise ValueError(
            "`probability_transformation` must be a callable that maps "
            "dissimilarities to weights along the last axis (resolve names "
            "with `anysma.probability_transformations.get`). Received: "
            f"probability_transformation={probability_transformation!r}"
        )


def check_weights(weights, dissimilarities):
    weights_shape = static_shape(weights)
    dissimilarities_shape = static_shape(dissimilarities)
    if len(weights_shape) != len(dissimilarities_shape) or any(
        a is not None and b is not None and a != b
        for a, b in zip(weights_shape, dissimilarities_shape)
    ):
        raise ValueError(
            "`probability_transformation` must return weights of the shape of "
            f"the dissimilarities {dissimilarities_shape}. "
            f"Received: weights.shape={weights_shape}"
        )


def beta_column(beta, name, num_rows, dtype):
    """`beta` as a scalar or a `(num_rows, 1)` column that broadcasts per row.

    Accepts `None` (meaning 1), a scalar, `(num_rows,)`, `(num_rows, 1)`, and
    length-1 variants of the latter two.
    """
    if beta is None:
        return None
    beta = ops.cast(ops.convert_to_tensor(beta), dtype)
    shape = static_shape(beta)
    if len(shape) == 0:
        return beta
    rows_match = shape[0] is None or num_rows is None or shape[0] in (1, num_rows)
    if rows_match and (len(shape) == 1 or (len(shape) == 2 and shape[1] in (1, None))):
        return ops.reshape(beta, (-1, 1))
    raise ValueError(
        f"`{name}` must be a scalar or have shape ({num_rows},) or "
        f"({num_rows}, 1). Received: {name}.shape={shape}"
    )


def contract(weights, flat_signals, dissimilarities):
    """Weighted sums over the second-to-last axis of the (flattened) signals.

    `weights` and `dissimilarities` are `(B, N, M)`, `flat_signals` is
    `(B, N, M, D)`, or `(B, 1, M, D)` when shared by all `N`; the results are
    `(B, N, D)` and `(B, N)`. Both are batched matrix products, so no
    intermediate is larger than the inputs (shared signals are not copied).
    """
    if static_shape(flat_signals)[1] == 1:
        routed = ops.matmul(weights, ops.squeeze(flat_signals, 1))
    else:
        routed = ops.einsum("bnm,bnmd->bnd", weights, flat_signals)
    return routed, ops.sum(weights * dissimilarities, axis=-1)
