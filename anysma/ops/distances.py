"""Distances between inputs and prototypes, as pure functions of `keras.ops`.

Two shape contracts are offered:

* **pairwise** (`squared_euclidean_distance`, `minkowski_distance`, ...):
  inputs `(..., D)` against prototypes `(P, D)` give `(..., P)`: every input
  is compared with every prototype. Euclidean, Omega and tangent distances
  are written in GEMM form (`|x|^2 - 2 x.w + |w|^2`), so the
  `(..., P, D)` difference tensor is never built.
* **capsule** (`capsule_minkowski_distance`, ...), the form used inside
  capsules: signals `(B, P, C, *A)` against prototypes `(P, *A)` give
  `(B, P, C)`: prototype `p` is compared with the `C` signals routed to it.

"Squared" follows the original anysma: the final root is skipped (so for
p = 1 and p = inf the norm is squared). Roots are taken of
`max(value, epsilon)`, which keeps gradients finite when an input equals a
prototype.
"""

import math

from keras import ops

from anysma.ops._validation import check_dims_match
from anysma.ops._validation import check_epsilon
from anysma.ops._validation import check_min_rank
from anysma.ops._validation import check_order_p
from anysma.ops._validation import check_rank
from anysma.ops._validation import static_shape
from anysma.ops._validation import to_common_float
from anysma.ops.norms import p_norm
from anysma.ops.norms import safe_root


def _finish(squared_distances, squared, epsilon):
    squared_distances = ops.maximum(squared_distances, 0)
    if squared:
        return squared_distances
    return safe_root(squared_distances, 2, epsilon)


# === Pairwise form: (..., D) x (P, D) -> (..., P) ===


def _check_pairwise(x, prototypes):
    check_min_rank(x, "x", 1, " (..., features)")
    check_rank(prototypes, "prototypes", 2, " (num_prototypes, features)")
    check_dims_match(
        static_shape(x)[-1],
        static_shape(prototypes)[-1],
        "The feature dimensions of `x` and `prototypes` must match. Received: "
        f"x.shape={static_shape(x)}, prototypes.shape={static_shape(prototypes)}",
    )


def _flatten_leading(x):
    """Reshape `(..., D)` to `(N, D)`; return it and the leading shape."""
    leading = ops.shape(x)[:-1]
    return ops.reshape(x, (-1, ops.shape(x)[-1])), leading


def _restore_leading(values, leading):
    return ops.reshape(values, tuple(leading) + tuple(ops.shape(values)[1:]))


def squared_euclidean_distance(x, prototypes):
    """Squared Euclidean distances of inputs to prototypes, in GEMM form.

    Computes `|x|^2 - 2 x.w^T + |w|^2`, clamped at 0 against rounding.

    Args:
        x: Inputs of shape `(..., D)`.
        prototypes: Prototypes of shape `(P, D)`.

    Returns:
        Distances of shape `(..., P)`.

    Example:

    >>> import numpy as np
    >>> squared_euclidean_distance(np.zeros((2, 3)), np.ones((4, 3))).shape
    (2, 4)
    """
    x, prototypes = to_common_float(x, prototypes)
    _check_pairwise(x, prototypes)
    x_squared = ops.sum(ops.square(x), axis=-1, keepdims=True)
    prototypes_squared = ops.sum(ops.square(prototypes), axis=-1)
    cross = ops.matmul(x, ops.transpose(prototypes))
    return ops.maximum(x_squared - 2 * cross + prototypes_squared, 0)


def euclidean_distance(x, prototypes, epsilon=1e-7):
    """Euclidean distances `sqrt(max(squared_euclidean_distance, epsilon))`.

    Args:
        x: Inputs of shape `(..., D)`.
        prototypes: Prototypes of shape `(P, D)`.
        epsilon: Clamp before the root (finite gradients at zero distance).

    Returns:
        Distances of shape `(..., P)`.
    """
    check_epsilon(epsilon)
    return safe_root(squared_euclidean_distance(x, prototypes), 2, epsilon)


def minkowski_distance(x, prototypes, order_p=2, squared=False, epsilon=1e-7):
    """Minkowski distances `||x - w||_p` of inputs to prototypes.

    p = 2 uses the GEMM form; other orders broadcast the difference.

    Args:
        x: Inputs of shape `(..., D)`.
        prototypes: Prototypes of shape `(P, D)`.
        order_p: Any number > 0, or `math.inf`.
        squared: Skip the root (squared norm for p in {1, 2, inf}).
        epsilon: Clamp before the root.

    Returns:
        Distances of shape `(..., P)`.
    """
    check_order_p(order_p)
    check_epsilon(epsilon)
    if order_p == 2:
        return _finish(squared_euclidean_distance(x, prototypes), squared, epsilon)
    x, prototypes = to_common_float(x, prototypes)
    _check_pairwise(x, prototypes)
    differences = ops.expand_dims(x, -2) - prototypes
    return p_norm(differences, order_p, axis=-1, squared=squared, epsilon=epsilon)


def _check_matrices(matrices, name, prototypes, description):
    check_rank(matrices, name, (2, 3), description)
    shape = static_shape(matrices)
    prototypes_shape = static_shape(prototypes)
    check_dims_match(
        shape[-2],
        prototypes_shape[-1],
        f"`{name}` must map the {prototypes_shape[-1]} input features, i.e. "
        f"have shape (D, M) or (P, D, M) with D={prototypes_shape[-1]}. "
        f"Received: {name}.shape={shape}",
    )
    if len(shape) == 3:
        check_dims_match(
            shape[0],
            prototypes_shape[0],
            f"Local `{name}` must hold one matrix per prototype "
            f"({prototypes_shape[0]}). Received: {name}.shape={shape}",
        )


def _project(x_flat, prototypes, matrices):
    """Project inputs and prototypes by global or per-prototype matrices.

    Returns `(projected_x, projected_prototypes)` with shapes `(N, M)` and
    `(P, M)` (global) or `(N, P, M)` and `(P, M)` (local).
    """
    if len(matrices.shape) == 2:
        return ops.matmul(x_flat, matrices), ops.matmul(prototypes, matrices)
    return (
        ops.einsum("nd,pdm->npm", x_flat, matrices),
        ops.einsum("pd,pdm->pm", prototypes, matrices),
    )


def omega_distance(x, prototypes, omegas, order_p=2, squared=False, epsilon=1e-7):
    """Matrix (Omega) distances `||(x - w) Omega||_p` (GMLVQ, LGMLVQ, LiRaM).

    `Omega` is stored "transposed" as in the original: it maps row vectors,
    so `Lambda = Omega Omega^T`. A rectangular `Omega` of shape `(D, M)` with
    `M < D` gives a limited-rank metric. A global `Omega` projects the inputs
    once and reuses the GEMM form; local matrices (one per prototype) are
    applied in one batched einsum.

    Args:
        x: Inputs of shape `(..., D)`.
        prototypes: Prototypes of shape `(P, D)`.
        omegas: `(D, M)` (global) or `(P, D, M)` (local, one per prototype).
        order_p: Order of the norm in the projected space.
        squared: Skip the root.
        epsilon: Clamp before the root.

    Returns:
        Distances of shape `(..., P)`.
    """
    check_order_p(order_p)
    check_epsilon(epsilon)
    x, prototypes, omegas = to_common_float(x, prototypes, omegas)
    _check_pairwise(x, prototypes)
    _check_matrices(omegas, "omegas", prototypes, " (D, M) or (P, D, M)")
    if len(omegas.shape) == 2:
        projected_x, projected_prototypes = _project(x, prototypes, omegas)
        return minkowski_distance(
            projected_x, projected_prototypes, order_p, squared, epsilon
        )
    x_flat, leading = _flatten_leading(x)
    projected_x, projected_prototypes = _project(x_flat, prototypes, omegas)
    distances = p_norm(
        projected_x - projected_prototypes,
        order_p,
        axis=-1,
        squared=squared,
        epsilon=epsilon,
    )
    return _restore_leading(distances, leading)


def _tangent_terms(x, prototypes, subspaces):
    """`(|x - w|^2, theta, W^T W)` for the GEMM-form tangent distances."""
    squared_distances = squared_euclidean_distance(x, prototypes)
    x_flat, leading = _flatten_leading(x)
    projected_x, projected_prototypes = _project(x_flat, prototypes, subspaces)
    if len(subspaces.shape) == 2:
        projected_x = ops.expand_dims(projected_x, 1)
        gram = ops.matmul(ops.transpose(subspaces), subspaces)
    else:
        gram = ops.einsum("pdr,pds->prs", subspaces, subspaces)
    theta = projected_x - projected_prototypes  # (N, P, r) = W^T (x - w)
    return _flatten_leading_keep(squared_distances), theta, gram, leading


def _flatten_leading_keep(values):
    return ops.reshape(values, (-1, ops.shape(values)[-1]))


def _residual_from_terms(squared_distances, theta, used_theta, gram):
    """`|v - W t|^2 = |v|^2 - 2 t.(W^T v) + t^T (W^T W) t` with `t=used_theta`."""
    cross = ops.sum(used_theta * theta, axis=-1)
    if len(gram.shape) == 2:
        quadratic = ops.sum(ops.matmul(used_theta, gram) * used_theta, axis=-1)
    else:
        quadratic = ops.einsum("npr,prs,nps->np", used_theta, gram, used_theta)
    return squared_distances - 2 * cross + quadratic


def _check_subspaces(x, prototypes, subspaces):
    _check_pairwise(x, prototypes)
    _check_matrices(subspaces, "subspaces", prototypes, " (D, r) or (P, D, r)")


def tangent_distance(x, prototypes, subspaces, squared=False, epsilon=1e-7):
    """Tangent distances to the affine subspaces `w + W theta` (GTLVQ).

    Computes `||(I - W W^T)(x - w)||` in GEMM form. For `W` with orthonormal
    columns (what the `Orthogonalization` constraint maintains) this is the
    distance from `x` to the closest point of the affine subspace.

    Args:
        x: Inputs of shape `(..., D)`.
        prototypes: Subspace origins of shape `(P, D)`.
        subspaces: Bases `(D, r)` (global) or `(P, D, r)` (local).
        squared: Skip the root.
        epsilon: Clamp before the root.

    Returns:
        Distances of shape `(..., P)`.

    Reference:
        Saralajew and Villmann, "Adaptive tangent distances in generalized
        learning vector quantization", WSOM 2016.
    """
    check_epsilon(epsilon)
    x, prototypes, subspaces = to_common_float(x, prototypes, subspaces)
    _check_subspaces(x, prototypes, subspaces)
    squared_distances, theta, gram, leading = _tangent_terms(x, prototypes, subspaces)
    # (I - W W^T) v = v - W theta with theta = W^T v.
    residual = _residual_from_terms(squared_distances, theta, theta, gram)
    return _restore_leading(_finish(residual, squared, epsilon), leading)


def restricted_tangent_distance(
    x, prototypes, subspaces, bounds, squared=False, epsilon=1e-7
):
    """Distances to bounded affine subspaces (r-orthotopes; rTD in the paper).

    The subspace parameters are clipped, `theta = clip(W^T (x - w), -b, b)`,
    and the distance is `||x - (w + W theta)||`. With `b = 0` this is the
    distance to the point `w`, with `b = inf` the tangent distance.

    Args:
        x: Inputs of shape `(..., D)`.
        prototypes: Origins of shape `(P, D)`.
        subspaces: Bases `(D, r)` (global) or `(P, D, r)` (local).
        bounds: Non-negative bounds `(r,)` (global) or `(P, r)` (local).
        squared: Skip the root.
        epsilon: Clamp before the root.

    Returns:
        Distances of shape `(..., P)`.
    """
    check_epsilon(epsilon)
    x, prototypes, subspaces, bounds = to_common_float(x, prototypes, subspaces, bounds)
    _check_subspaces(x, prototypes, subspaces)
    check_rank(bounds, "bounds", (1, 2), " (r,) or (P, r)")
    check_dims_match(
        static_shape(bounds)[-1],
        static_shape(subspaces)[-1],
        "`bounds` must hold one bound per subspace dimension. Received: "
        f"bounds.shape={static_shape(bounds)}, "
        f"subspaces.shape={static_shape(subspaces)}",
    )
    squared_distances, theta, gram, leading = _tangent_terms(x, prototypes, subspaces)
    clipped = ops.clip(theta, -bounds, bounds)
    residual = _residual_from_terms(squared_distances, theta, clipped, gram)
    return _restore_leading(_finish(residual, squared, epsilon), leading)


# === Capsule form: (B, P, C, *A) x (P, *A) -> (B, P, C) ===


def _capsule_differences(signals, prototypes):
    """Check the capsule shapes and return `signals - prototypes` as (B,P,C,D)."""
    signals, prototypes = to_common_float(signals, prototypes)
    check_min_rank(signals, "signals", 4, " (batch, prototypes, channels, *atom)")
    signals_shape = static_shape(signals)
    prototypes_shape = static_shape(prototypes)
    expected = (signals_shape[1],) + signals_shape[3:]
    if len(prototypes_shape) != len(expected) or any(
        a is not None and b is not None and a != b
        for a, b in zip(prototypes_shape, expected)
    ):
        raise ValueError(
            "`prototypes` must have shape (num_prototypes, *atom_shape) matching "
            f"signals of shape (batch, num_prototypes, channels, *atom_shape), "
            f"i.e. {expected}. Received: signals.shape={signals_shape}, "
            f"prototypes.shape={prototypes_shape}"
        )
    atom_size = math.prod(prototypes_shape[1:])
    shape = ops.shape(signals)
    flat_signals = ops.reshape(signals, (-1, shape[1], shape[2], atom_size))
    flat_prototypes = ops.reshape(prototypes, (-1, atom_size))
    return flat_signals - flat_prototypes[None, :, None, :]


def capsule_minkowski_distance(
    signals, prototypes, order_p=2, squared=False, epsilon=1e-7
):
    """Minkowski distances in the capsule layout (see the module docstring).

    Args:
        signals: `(B, P, C, *A)`: the `C` signals routed to each prototype.
        prototypes: `(P, *A)`.
        order_p: Any number > 0, or `math.inf`.
        squared: Skip the root.
        epsilon: Clamp before the root.

    Returns:
        Distances of shape `(B, P, C)`, the norm taken over all atom axes.
    """
    check_order_p(order_p)
    check_epsilon(epsilon)
    differences = _capsule_differences(signals, prototypes)
    return p_norm(differences, order_p, axis=-1, squared=squared, epsilon=epsilon)


def _flat_matrices(matrices, atom_size, name):
    check_rank(matrices, name, (2, 3), " (D, M) or (P, D, M)")
    check_dims_match(
        static_shape(matrices)[-2],
        atom_size,
        f"`{name}` must map the flattened atom of size {atom_size}. "
        f"Received: {name}.shape={static_shape(matrices)}",
    )
    return matrices


def _capsule_apply(differences, matrices):
    if len(matrices.shape) == 2:
        return ops.matmul(differences, matrices)
    return ops.einsum("bpcd,pdm->bpcm", differences, matrices)


def capsule_omega_distance(
    signals, prototypes, omegas, order_p=2, squared=False, epsilon=1e-7
):
    """Omega distances in the capsule layout.

    Args:
        signals: `(B, P, C, *A)`.
        prototypes: `(P, *A)`.
        omegas: `(D, M)` or `(P, D, M)` with `D = prod(A)`.
        order_p: Order of the norm in the projected space.
        squared: Skip the root.
        epsilon: Clamp before the root.

    Returns:
        Distances of shape `(B, P, C)`.
    """
    check_order_p(order_p)
    check_epsilon(epsilon)
    signals, prototypes, omegas = to_common_float(signals, prototypes, omegas)
    differences = _capsule_differences(signals, prototypes)
    omegas = _flat_matrices(omegas, static_shape(differences)[-1], "omegas")
    projected = _capsule_apply(differences, omegas)
    return p_norm(projected, order_p, axis=-1, squared=squared, epsilon=epsilon)


def _capsule_tangent_residual(signals, prototypes, subspaces, bounds=None):
    signals, prototypes, subspaces = to_common_float(signals, prototypes, subspaces)
    differences = _capsule_differences(signals, prototypes)
    subspaces = _flat_matrices(subspaces, static_shape(differences)[-1], "subspaces")
    theta = _capsule_apply(differences, subspaces)  # (B, P, C, r)
    if bounds is not None:
        bounds = ops.cast(bounds, theta.dtype)
        if len(bounds.shape) == 2:
            bounds = bounds[None, :, None, :]
        theta = ops.clip(theta, -bounds, bounds)
    if len(subspaces.shape) == 2:
        reconstruction = ops.matmul(theta, ops.transpose(subspaces))
    else:
        reconstruction = ops.einsum("bpcr,pdr->bpcd", theta, subspaces)
    return differences - reconstruction


def capsule_tangent_distance(
    signals, prototypes, subspaces, squared=False, epsilon=1e-7
):
    """Tangent distances in the capsule layout.

    Args:
        signals: `(B, P, C, *A)`.
        prototypes: `(P, *A)`.
        subspaces: `(D, r)` or `(P, D, r)` with `D = prod(A)`.
        squared: Skip the root.
        epsilon: Clamp before the root.

    Returns:
        Distances of shape `(B, P, C)`.
    """
    check_epsilon(epsilon)
    residual = _capsule_tangent_residual(signals, prototypes, subspaces)
    return p_norm(residual, 2, axis=-1, squared=squared, epsilon=epsilon)


def capsule_restricted_tangent_distance(
    signals, prototypes, subspaces, bounds, squared=False, epsilon=1e-7
):
    """Restricted tangent distances in the capsule layout.

    Args:
        signals: `(B, P, C, *A)`.
        prototypes: `(P, *A)`.
        subspaces: `(D, r)` or `(P, D, r)` with `D = prod(A)`.
        bounds: `(r,)` or `(P, r)`, non-negative.
        squared: Skip the root.
        epsilon: Clamp before the root.

    Returns:
        Distances of shape `(B, P, C)`.
    """
    check_epsilon(epsilon)
    residual = _capsule_tangent_residual(signals, prototypes, subspaces, bounds)
    return p_norm(residual, 2, axis=-1, squared=squared, epsilon=epsilon)
