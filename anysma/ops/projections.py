"""Projections of capsule signals onto prototypes' matrices and subspaces.

The measuring modules output transformed signals besides distances: the
signals mapped by an Omega matrix (`OmegaDistance`), the coordinates of a
signal in a prototype's tangent subspace, and the closest point of that
(possibly bounded) subspace (`TangentDistance`,
`RestrictedTangentDistance`). These are pure functions of `keras.ops` in the
capsule layout of `anysma.ops.distances`: signals `(B, P, C, *A)`,
prototypes `(P, *A)`, matrices `(D, M)` (one for all prototypes) or
`(P, D, M)` (one per prototype) with `D = prod(A)`, stored "transposed" so
that they map row vectors, `x -> x M`. Signals shared by all prototypes,
`(B, 1, C, *A)`, are accepted too.

The matrix products are the helpers that the capsule distances use, so a
distance and the projection it minimizes over are computed from the same
expressions (`theta = x W - w W`: a global basis maps every signal once).
"""

import math

from keras import ops

from anysma.ops._validation import check_dims_match
from anysma.ops._validation import check_min_rank
from anysma.ops._validation import static_shape
from anysma.ops._validation import to_common_float
from anysma.ops.distances import _apply
from anysma.ops.distances import _apply_to_prototypes
from anysma.ops.distances import _broadcast_prototypes
from anysma.ops.distances import _check_bounds
from anysma.ops.distances import _clip_theta
from anysma.ops.distances import capsule_matrices
from anysma.ops.distances import capsule_operands


def capsule_projection(signals, matrices):
    """Map capsule signals by matrices: `x M` (the projected signals of GMLVQ).

    Args:
        signals: `(B, P, C, *A)`: the `C` signals routed to each prototype;
            or `(B, 1, C, *A)`: signals shared by all prototypes.
        matrices: `(D, M)` (one matrix for all prototypes) or `(P, D, M)`
            (one per prototype), with `D = prod(A)`.

    Returns:
        The projected signals, of shape `(B, P, C, M)` (flat: reshape the last
        axis to restore a multi-dimensional projected atom). Shared signals
        mapped by one global matrix stay shared, `(B, 1, C, M)`.

    Example:

    >>> import numpy as np
    >>> signals = np.ones((2, 3, 4, 5), dtype="float32")
    >>> tuple(capsule_projection(signals, np.ones((5, 2))).shape)
    (2, 3, 4, 2)
    """
    signals, matrices = to_common_float(signals, matrices)
    check_min_rank(signals, "signals", 4, " (batch, prototypes, channels, *atom)")
    shape = ops.shape(signals)
    signals_shape = static_shape(signals)
    atom_size = math.prod(signals_shape[3:])
    flat = ops.reshape(signals, tuple(shape[:3]) + (atom_size,))
    matrices = capsule_matrices(matrices, atom_size, "matrices")
    if len(matrices.shape) == 3 and signals_shape[1] != 1:
        check_dims_match(
            static_shape(matrices)[0],
            signals_shape[1],
            "Per-prototype `matrices` (P, D, M) need one matrix per prototype "
            f"axis entry of `signals`. Received: matrices.shape="
            f"{static_shape(matrices)}, signals.shape={signals_shape}",
        )
    return _apply(flat, matrices)


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
    matrices = capsule_matrices(matrices, atom_size, "matrices", flat)
    return _apply_to_prototypes(flat, matrices)


def _theta(signals, prototypes, subspaces, bounds):
    """Flat operands and `theta = W^T (x - w)` (clipped), `(B, P, C, r)`."""
    signals, prototypes, subspaces = to_common_float(signals, prototypes, subspaces)
    signals, prototypes = capsule_operands(signals, prototypes)
    subspaces = capsule_matrices(
        subspaces, static_shape(prototypes)[-1], "subspaces", prototypes
    )
    # W^T x - W^T w: a global basis maps every signal once.
    theta = _apply(signals, subspaces) - _broadcast_prototypes(
        _apply_to_prototypes(prototypes, subspaces)
    )
    if bounds is not None:
        bounds = ops.cast(ops.convert_to_tensor(bounds), theta.dtype)
        _check_bounds(bounds, subspaces)
        theta = _clip_theta(theta, bounds)
    return prototypes, subspaces, theta


def capsule_tangent_parameters(signals, prototypes, subspaces, bounds=None):
    """Coordinates `theta = W^T (x - w)` of the signals in the tangent subspaces.

    For `W` with orthonormal columns, `w + W theta` is the point of the affine
    subspace `w + span(W)` closest to `x`. With `bounds`, `theta` is clipped to
    `[-b, b]` (the restricted tangent distance's r-orthotope).

    Args:
        signals: `(B, P, C, *A)` or shared `(B, 1, C, *A)`.
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
    return _theta(signals, prototypes, subspaces, bounds)[2]


def capsule_tangent_projection(signals, prototypes, subspaces, bounds=None):
    """The closest point `w + W theta` of each prototype's (bounded) subspace.

    With `theta = W^T (x - w)` this is `w + W W^T (x - w)`, the orthogonal
    projection of `x` onto the affine subspace when `W` has orthonormal
    columns; with `bounds`, `theta` is clipped first.

    Args:
        signals: `(B, P, C, *A)` or shared `(B, 1, C, *A)`.
        prototypes: Subspace origins `(P, *A)`.
        subspaces: Bases `(D, r)` or `(P, D, r)` with `D = prod(A)`.
        bounds: Optional non-negative bounds `(r,)` or `(P, r)`.

    Returns:
        The projected signals, of shape `(B, P, C, *A)`.

    Example:

    >>> import numpy as np
    >>> signals = np.array([[[[1.0, 2.0, 3.0]]]], dtype="float32")
    >>> basis = np.eye(3, 1, dtype="float32")
    >>> np.asarray(
    ...     capsule_tangent_projection(signals, np.zeros((1, 3)), basis)
    ... ).ravel().tolist()
    [1.0, 0.0, 0.0]
    """
    atom_shape = static_shape(ops.convert_to_tensor(signals))[3:]
    flat_prototypes, subspaces, theta = _theta(signals, prototypes, subspaces, bounds)
    if len(subspaces.shape) == 2:
        offsets = ops.matmul(theta, ops.transpose(subspaces))
    else:
        offsets = ops.einsum("bpcr,pdr->bpcd", theta, subspaces)
    projected = _broadcast_prototypes(flat_prototypes) + offsets
    shape = ops.shape(projected)
    return ops.reshape(projected, tuple(shape[:3]) + tuple(atom_shape))
