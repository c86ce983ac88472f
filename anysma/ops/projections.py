"""Projections of capsule signals onto prototypes' matrices and subspaces.

The measuring modules output transformed signals besides distances: the
signals mapped by an Omega matrix (`OmegaDistance`), the coordinates of a
signal in a prototype's tangent subspace, and the closest point of that
(possibly bounded) subspace (`TangentDistance`,
`RestrictedTangentDistance`). These are pure functions of `keras.ops` in the
capsule layout of `anysma.ops.distances`: signals `(B, P, C, *A)`,
prototypes `(P, *A)`, matrices `(D, M)` (one for all prototypes) or
`(P, D, M)` (one per prototype) with `D = prod(A)`, stored "transposed" so
that they map row vectors, `x -> x M`.

The differences `x - w` and the matrix product are the helpers that the
capsule distances use, so a distance and the projection it minimizes over
are computed from the same expressions.
"""

import math

from keras import ops

from anysma.ops._validation import check_dims_match
from anysma.ops._validation import check_min_rank
from anysma.ops._validation import check_rank
from anysma.ops._validation import static_shape
from anysma.ops._validation import to_common_float
from anysma.ops.distances import _capsule_apply
from anysma.ops.distances import _capsule_differences
from anysma.ops.distances import _flat_matrices


def capsule_projection(signals, matrices):
    """Map capsule signals by matrices: `x M` (the projected signals of GMLVQ).

    Args:
        signals: `(B, P, C, *A)`: the `C` signals routed to each prototype.
        matrices: `(D, M)` (one matrix for all prototypes) or `(P, D, M)`
            (one per prototype), with `D = prod(A)`.

    Returns:
        The projected signals, of shape `(B, P, C, M)` (flat: reshape the last
        axis to restore a multi-dimensional projected atom).

    Example:

    >>> import numpy as np
    >>> signals = np.ones((2, 3, 4, 5), dtype="float32")
    >>> tuple(capsule_projection(signals, np.ones((5, 2))).shape)
    (2, 3, 4, 2)
    """
    signals, matrices = to_common_float(signals, matrices)
    check_min_rank(signals, "signals", 4, " (batch, prototypes, channels, *atom)")
    shape = ops.shape(signals)
    atom_size = math.prod(static_shape(signals)[3:])
    flat = ops.reshape(signals, (shape[0], shape[1], shape[2], atom_size))
    matrices = _flat_matrices(matrices, atom_size, "matrices")
    if len(matrices.shape) == 3:
        check_dims_match(
            static_shape(matrices)[0],
            static_shape(signals)[1],
            "Per-prototype `matrices` (P, D, M) need one matrix per prototype "
            f"axis entry of `signals`. Received: matrices.shape="
            f"{static_shape(matrices)}, signals.shape={static_shape(signals)}",
        )
    return _capsule_apply(flat, matrices)


def prototype_projection(prototypes, matrices):
    """Map prototypes by matrices: `w M`.

    Args:
        prototypes: `(P, *A)`.
        matrices: `(D, M)` or `(P, D, M)` with `D = prod(A)`.

    Returns:
        The projected prototypes, of shape `(P, M)`.

    Example:

    >>> import numpy as np
    >>> tuple(prototype_projection(np.ones((3, 5)), np.ones((3, 5, 2))).shape)
    (3, 2)
    """
    prototypes, matrices = to_common_float(prototypes, matrices)
    check_min_rank(prototypes, "prototypes", 2, " (prototypes, *atom)")
    atom_size = math.prod(static_shape(prototypes)[1:])
    flat = ops.reshape(prototypes, (-1, atom_size))
    matrices = _flat_matrices(matrices, atom_size, "matrices")
    if len(matrices.shape) == 2:
        return ops.matmul(flat, matrices)
    check_dims_match(
        static_shape(matrices)[0],
        static_shape(prototypes)[0],
        "Per-prototype `matrices` (P, D, M) need one matrix per prototype. "
        f"Received: matrices.shape={static_shape(matrices)}, "
        f"prototypes.shape={static_shape(prototypes)}",
    )
    return ops.einsum("pd,pdm->pm", flat, matrices)


def _clip_to_bounds(theta, bounds):
    """Clip `theta (B, P, C, r)` to `[-b, b]` with `bounds` `(r,)` or `(P, r)`."""
    bounds = ops.cast(bounds, theta.dtype)
    check_rank(bounds, "bounds", (1, 2), " (r,) or (P, r)")
    check_dims_match(
        static_shape(bounds)[-1],
        static_shape(theta)[-1],
        "`bounds` must hold one bound per subspace dimension. Received: "
        f"bounds.shape={static_shape(bounds)}, subspace dimension "
        f"{static_shape(theta)[-1]}",
    )
    if len(bounds.shape) == 2:
        bounds = bounds[None, :, None, :]
    return ops.clip(theta, -bounds, bounds)


def capsule_tangent_parameters(signals, prototypes, subspaces, bounds=None):
    """Coordinates `theta = W^T (x - w)` of the signals in the tangent subspaces.

    For `W` with orthonormal columns, `w + W theta` is the point of the affine
    subspace `w + span(W)` closest to `x`. With `bounds`, `theta` is clipped to
    `[-b, b]` (the restricted tangent distance's r-orthotope).

    Args:
        signals: `(B, P, C, *A)`.
        prototypes: Subspace origins `(P, *A)`.
        subspaces: Bases `(D, r)` or `(P, D, r)` with `D = prod(A)`.
        bounds: Optional non-negative bounds `(r,)` or `(P, r)`.

    Returns:
        `theta`, of shape `(B, P, C, r)`.

    Example:

    >>> import numpy as np
    >>> signals = np.ones((1, 2, 1, 3), dtype="float32")
    >>> basis = np.eye(3, 1, dtype="float32")
    >>> np.asarray(
    ...     capsule_tangent_parameters(signals, np.zeros((2, 3)), basis)
    ... ).ravel().tolist()
    [1.0, 1.0]
    """
    signals, prototypes, subspaces = to_common_float(signals, prototypes, subspaces)
    differences = _capsule_differences(signals, prototypes)
    subspaces = _flat_matrices(subspaces, static_shape(differences)[-1], "subspaces")
    theta = _capsule_apply(differences, subspaces)
    if bounds is not None:
        theta = _clip_to_bounds(theta, bounds)
    return theta


def capsule_tangent_projection(signals, prototypes, subspaces, bounds=None):
    """The closest point `w + W theta` of each prototype's (bounded) subspace.

    With `theta = W^T (x - w)` this is `w + W W^T (x - w)`, the orthogonal
    projection of `x` onto the affine subspace when `W` has orthonormal
    columns; with `bounds`, `theta` is clipped first.

    Args:
        signals: `(B, P, C, *A)`.
        prototypes: Subspace origins `(P, *A)`.
        subspaces: Bases `(D, r)` or `(P, D, r)` with `D = prod(A)`.
        bounds: Optional non-negative bounds `(r,)` or `(P, r)`.

    Returns:
        The projected signals, of the shape of `signals`.

    Example:

    >>> import numpy as np
    >>> signals = np.array([[[[1.0, 2.0, 3.0]]]], dtype="float32")
    >>> basis = np.eye(3, 1, dtype="float32")
    >>> np.asarray(
    ...     capsule_tangent_projection(signals, np.zeros((1, 3)), basis)
    ... ).ravel().tolist()
    [1.0, 0.0, 0.0]
    """
    signals, prototypes, subspaces = to_common_float(signals, prototypes, subspaces)
    theta = capsule_tangent_parameters(signals, prototypes, subspaces, bounds)
    atom_size = math.prod(static_shape(prototypes)[1:])
    if len(subspaces.shape) == 2:
        offsets = ops.matmul(theta, ops.transpose(subspaces))
    else:
        offsets = ops.einsum("bpcr,pdr->bpcd", theta, subspaces)
    flat_prototypes = ops.reshape(prototypes, (-1, atom_size))
    projected = flat_prototypes[None, :, None, :] + offsets
    return ops.reshape(projected, ops.shape(signals))
