"""Routing of capsule signals, as pure functions of `keras.ops`.

Shapes follow the original anysma (B = batch, P = prototypes, K = capsules,
C = channels, i.e. the input vectors routed to a prototype, A = atom shape):

* **routing** (`gibbs_routing`, `routing`) contracts the channel axis:
  signals `(B, P, C, *A)` and dissimilarities `(B, P, C)` become
  `(B, P, *A)` and `(B, P)`, weighted by routing probabilities. Signals
  shared by all prototypes may be passed once, `(B, 1, C, *A)`.
  `measured_gibbs_routing` measures and routes in one call, with memory
  `O(B P C)` besides the inputs and outputs.
* **dynamic routing** (`dynamic_routing`) is the routing-by-agreement of
  Sabour et al.; there similarities are large for good matches.

The competition of the prototypes within each capsule lives in
`anysma.ops.competition`, as the modules live in `anysma.modules.routing`
and `anysma.modules.competition`.

Atoms of any rank are flattened to vectors for the contractions and restored
afterwards. Iteration counts are static Python ints and no shape depends on
data, so every function can be traced and compiled (`jit_compile=True`).
"""

import numbers

from keras import ops

from anysma.ops._kernels import beta_column
from anysma.ops._kernels import check_callable
from anysma.ops._kernels import check_signals_and_dissimilarities
from anysma.ops._kernels import check_weights
from anysma.ops._kernels import contract
from anysma.ops._kernels import flatten_atoms
from anysma.ops._kernels import restore_atoms
from anysma.ops._kernels import stable_softmax
from anysma.ops._validation import check_epsilon
from anysma.ops._validation import check_min_rank
from anysma.ops._validation import check_rank
from anysma.ops._validation import static_shape
from anysma.ops._validation import to_common_float
from anysma.ops.norms import safe_root
from anysma.ops.squash import _compute_dtype
from anysma.ops.squash import squash

_ROUTING_LAYOUT = " (batch, prototypes, channels, *atom)"
_ROUTING_DISSIMILARITY_LAYOUT = " (batch, prototypes, channels)"

# `norm_axis` values of the original `GibbsRouting` (1 = capsules, i.e. the
# prototype axis; 2 = channels).
_ROUTING_AXES = {1: 1, 2: 2, -1: 2, "capsules": 1, "channels": 2}


def _route(signals, dissimilarities, weights, return_probabilities):
    flat_signals, atom_shape = flatten_atoms(signals, 3)
    routed_signals, routed_dissimilarities = contract(
        weights, flat_signals, dissimilarities
    )
    outputs = (restore_atoms(routed_signals, atom_shape), routed_dissimilarities)
    return outputs + (weights,) if return_probabilities else outputs


# === Routing: (B, P, C, *A), (B, P, C) -> (B, P, *A), (B, P) ===


def gibbs_routing(
    signals, dissimilarities, beta=None, axis=2, return_probabilities=False
):
    """The routing of LVQ-capsules: a Gibbs-weighted sum over the channels.

    The routing probabilities are a max-stabilized softmax of `-beta * d`,
    normalized over `axis`:

    * `axis=2` (`"channels"`, the default and the paper's Eq. (3)):
      `p[b, p, c] = exp(-beta_p d[b, p, c]) / sum_c' exp(-beta_p d[b, p, c'])`;
    * `axis=1` (`"capsules"`): normalized over the prototypes instead.

    In both cases, as in the original, the contraction runs over the channels:
    `signals_out[b, p] = sum_c p[b, p, c] x[b, p, c]` and
    `dissimilarities_out[b, p] = sum_c p[b, p, c] d[b, p, c]`. With `axis=1`
    the weights of a prototype therefore need not sum to 1 over its channels.

    Args:
        signals: `(B, P, C, *A)`, the `C` signals routed to each prototype,
            or `(B, 1, C, *A)` when they are the same for every prototype
            (shared signals are contracted without being copied).
        dissimilarities: `(B, P, C)`.
        beta: Inverse temperature per prototype: `None` (1), a scalar, or
            shape `(P,)` or `(P, 1)` (the `beta` weight of `GibbsRouting`).
        axis: The softmax axis: `2`, `-1` or `"channels"`; or `1` or
            `"capsules"`.
        return_probabilities: Also return the routing probabilities.

    Returns:
        The tuple `(signals, dissimilarities)` of shapes `(B, P, *A)` and
        `(B, P)`; with `return_probabilities=True` followed by the
        probabilities `(B, P, C)`.

    Example:

    >>> import numpy as np
    >>> signals = np.random.rand(2, 3, 5, 4)
    >>> dissimilarities = np.random.rand(2, 3, 5)
    >>> routed, routed_dissimilarities = gibbs_routing(signals, dissimilarities)
    >>> tuple(routed.shape), tuple(routed_dissimilarities.shape)
    ((2, 3, 4), (2, 3))

    Reference:
        Saralajew, Nooka, Kaden and Villmann, "Learning Vector Quantization
        Capsules", Machine Learning Reports 02/2018, Algorithm 1 (routing).
    """
    try:
        # `True == 1` and hashes alike: exclude booleans explicitly.
        softmax_axis = None if isinstance(axis, bool) else _ROUTING_AXES[axis]
    except (KeyError, TypeError):
        softmax_axis = None
    if softmax_axis is None:
        raise ValueError(
            "`axis` must be 2, -1 or 'channels' (softmax over the channels) or "
            f"1 or 'capsules' (softmax over the prototypes). Received: axis={axis!r}"
        )
    signals, dissimilarities = to_common_float(signals, dissimilarities)
    check_signals_and_dissimilarities(
        signals,
        dissimilarities,
        3,
        _ROUTING_LAYOUT,
        _ROUTING_DISSIMILARITY_LAYOUT,
        shared_axis=1,
    )
    beta = beta_column(
        beta, "beta", static_shape(dissimilarities)[1], dissimilarities.dtype
    )
    logits = -dissimilarities if beta is None else -beta * dissimilarities
    probabilities = stable_softmax(logits, axis=softmax_axis)
    return _route(signals, dissimilarities, probabilities, return_probabilities)


def routing(
    signals, dissimilarities, probability_transformation, return_probabilities=False
):
    """Route over the channels with weights from a probability transformation.

    `weights = probability_transformation(dissimilarities)` must normalize
    along the last (channel) axis, as the original `Routing` module's
    transformations (e.g. `flipmax`) do. Then
    `signals_out[b, p] = sum_c w[b, p, c] x[b, p, c]` and
    `dissimilarities_out[b, p] = sum_c w[b, p, c] d[b, p, c]`.

    Args:
        signals: `(B, P, C, *A)`, or shared `(B, 1, C, *A)`.
        dissimilarities: `(B, P, C)`.
        probability_transformation: A callable mapping `(B, P, C)`
            dissimilarities to weights of the same shape.
        return_probabilities: Also return the weights.

    Returns:
        The tuple `(signals, dissimilarities)` of shapes `(B, P, *A)` and
        `(B, P)`; with `return_probabilities=True` followed by the weights
        `(B, P, C)`.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> uniform = lambda d: ops.ones_like(d) / d.shape[-1]
    >>> routed, _ = routing(np.ones((2, 3, 5, 4)), np.ones((2, 3, 5)), uniform)
    >>> tuple(routed.shape)
    (2, 3, 4)
    """
    check_callable(probability_transformation)
    signals, dissimilarities = to_common_float(signals, dissimilarities)
    check_signals_and_dissimilarities(
        signals,
        dissimilarities,
        3,
        _ROUTING_LAYOUT,
        _ROUTING_DISSIMILARITY_LAYOUT,
        shared_axis=1,
    )
    weights = ops.cast(
        probability_transformation(dissimilarities), dissimilarities.dtype
    )
    check_weights(weights, dissimilarities)
    return _route(signals, dissimilarities, weights, return_probabilities)


def check_linear_factor(linear_factor):
    """Validate the `alpha` of the dissimilarity update; return a float or None."""
    if linear_factor is None:
        return None
    if (
        isinstance(linear_factor, bool)
        or not isinstance(linear_factor, numbers.Real)
        or not 0 < linear_factor < 1
    ):
        raise ValueError(
            "`linear_factor` must be None (add the new dissimilarity) or a "
            "number in the open interval (0, 1) (mix old and new). "
            f"Received: linear_factor={linear_factor!r}"
        )
    return float(linear_factor)


def mix_dissimilarities(dissimilarities, distances, linear_factor=None):
    """The dissimilarity update of the measuring modules.

    `(1 - alpha) * d_in + alpha * d` with `alpha = linear_factor`, or
    `d_in + d` when `linear_factor` is `None`.

    Args:
        dissimilarities: The incoming dissimilarities `d_in`, broadcastable
            to `distances`.
        distances: The new distances `d`.
        linear_factor: `alpha`, a number in the open interval (0, 1), or
            `None`.

    Returns:
        The updated dissimilarities, of the shape of `distances`.
    """
    linear_factor = check_linear_factor(linear_factor)
    dissimilarities = ops.cast(dissimilarities, distances.dtype)
    if linear_factor is None:
        return dissimilarities + distances
    return (1.0 - linear_factor) * dissimilarities + linear_factor * distances


def measured_gibbs_routing(
    signals,
    prototypes,
    distance,
    dissimilarities=None,
    linear_factor=None,
    beta=None,
    axis=2,
    return_probabilities=False,
):
    """Measuring and Gibbs routing in one call, in `O(B P C)` memory.

    Computes `d = distance(signals, prototypes)`, mixes it into the incoming
    dissimilarities (see `mix_dissimilarities`) and routes with
    `gibbs_routing`. With signals shared by all prototypes,
    `(B, 1, C, *A)`, and a distance in GEMM form (the Euclidean, Omega with
    a global matrix and tangent distances of `anysma.ops`), no intermediate
    has more than `O(B P C + B C D + B P D)` entries, in the forward and in
    the backward pass: the `(B, P, C, D)` differences or tiled signals are
    never built. This is the computation of a capsule `InputModule(
    sparse_signal=True)` -> measuring module -> `GibbsRouting`.

    Args:
        signals: `(B, P, C, *A)` or shared `(B, 1, C, *A)`.
        prototypes: `(P, *A)` (passed to `distance` only).
        distance: A callable `(signals, prototypes) -> (B, P, C)`, e.g.
            `functools.partial(anysma.ops.capsule_tangent_distance,
            subspaces=W)`.
        dissimilarities: Optional incoming dissimilarities, broadcastable to
            `(B, P, C)`; `None` routes the distances alone.
        linear_factor: `alpha` of the update, in (0, 1), or `None` for
            `d_in + d`.
        beta: Inverse temperature, as in `gibbs_routing`.
        axis: The softmax axis, as in `gibbs_routing`.
        return_probabilities: Also return the routing probabilities.

    Returns:
        The tuple `(signals, dissimilarities)` of shapes `(B, P, *A)` and
        `(B, P)`; with `return_probabilities=True` followed by the
        probabilities `(B, P, C)`.

    Example:

    >>> import functools
    >>> import numpy as np
    >>> from anysma.ops import capsule_minkowski_distance
    >>> shared = np.random.rand(2, 1, 50, 8)  # 50 inputs for 10 prototypes
    >>> routed, routed_dissimilarities = measured_gibbs_routing(
    ...     shared, np.random.rand(10, 8), capsule_minkowski_distance)
    >>> tuple(routed.shape), tuple(routed_dissimilarities.shape)
    ((2, 10, 8), (2, 10))
    """
    if not callable(distance):
        raise ValueError(
            "`distance` must be a callable (signals, prototypes) -> "
            "(batch, prototypes, channels), e.g. "
            "`anysma.ops.capsule_minkowski_distance`. "
            f"Received: distance={distance!r}"
        )
    distances = distance(signals, prototypes)
    check_rank(
        distances, "distance(signals, prototypes)", 3, _ROUTING_DISSIMILARITY_LAYOUT
    )
    if dissimilarities is not None:
        distances = mix_dissimilarities(dissimilarities, distances, linear_factor)
    else:
        check_linear_factor(linear_factor)
    return gibbs_routing(
        signals, distances, beta, axis=axis, return_probabilities=return_probabilities
    )


# === Dynamic routing (Sabour et al., 2017) ===


def dynamic_routing(
    predictions,
    logits=None,
    iterations=3,
    epsilon=1e-7,
    norm_epsilon=1e-14,
    axis=1,
):
    """Routing by agreement between capsules (Sabour et al., 2017).

    With predictions `u[b, k, c]` of output capsule `k` from input capsule
    `c`, each iteration computes coupling coefficients
    `c = softmax(logits, axis=axis)` (by default over the output capsules),
    the weighted sums `s[b, k] = sum_c c[b, k, c] u[b, k, c]`, the outputs
    `v = squash(s)` and, except in the last iteration, the agreement update
    `logits += <v[b, k], u[b, k, c]>`. Atoms of any shape work: the squash
    and the agreement take all atom axes as one vector.

    Args:
        predictions: `(B, K, C, *A)`, the prediction vectors `u_hat`.
        logits: Initial routing logits `(B, K, C)`; `None` means zeros.
        iterations: Number of routing iterations, a Python int >= 1
            (unrolled, so it must be static).
        epsilon: Clamp of the squared norm inside `squash`.
        norm_epsilon: Clamp of the squared norm of the output lengths; the
            original uses 1e-14 because "otherwise the network learns
            nothing".
        axis: The softmax axis of the coupling coefficients: `1` or
            `"capsules"` (Sabour et al.: each input capsule distributes its
            vote over the output capsules), or `2`, `-1` or `"channels"`
            (each output capsule normalizes over its inputs), as the
            `norm_axis` of the original `DynamicRouting` module.

    Returns:
        A tuple `(outputs, similarities, lengths)`: the capsule outputs `v`
        `(B, K, *A)`; the similarities `sum_c c * logits` of the last
        iteration `(B, K)` (large = good, unlike dissimilarities); and the
        lengths `||v||` `(B, K)`, the class probabilities of a CapsNet.

    Example:

    >>> import numpy as np
    >>> outputs, similarities, lengths = dynamic_routing(
    ...     np.random.rand(2, 10, 32, 16), iterations=3)
    >>> tuple(outputs.shape), tuple(lengths.shape)
    ((2, 10, 16), (2, 10))

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NeurIPS 2017, Procedure 1.
    """
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, int)
        or iterations < 1
    ):
        raise ValueError(
            "`iterations` must be a Python int >= 1 (the routing loop is "
            f"unrolled). Received: iterations={iterations!r}"
        )
    try:
        # `True == 1` and hashes alike: exclude booleans explicitly.
        softmax_axis = None if isinstance(axis, bool) else _ROUTING_AXES[axis]
    except (KeyError, TypeError):
        softmax_axis = None
    if softmax_axis is None:
        raise ValueError(
            "`axis` must be 1 or 'capsules' (softmax over the output capsules) "
            f"or 2, -1 or 'channels' (over the inputs). Received: axis={axis!r}"
        )
    check_epsilon(epsilon)
    check_epsilon(norm_epsilon, "norm_epsilon")
    predictions_layout = " (batch, capsules, input_capsules, *atom)"
    if logits is None:
        (predictions,) = to_common_float(predictions)
        check_min_rank(predictions, "predictions", 3, predictions_layout)
    else:
        predictions, logits = to_common_float(predictions, logits)
        check_signals_and_dissimilarities(
            predictions,
            logits,
            3,
            predictions_layout,
            " (batch, capsules, input_capsules)",
            names=("predictions", "logits"),
        )
    flat_predictions, atom_shape = flatten_atoms(predictions, 3)
    if logits is None:
        logits = ops.zeros_like(flat_predictions[..., 0])
    for iteration in range(iterations):
        coupling = stable_softmax(logits, axis=softmax_axis)
        weighted_sums = ops.einsum("bkc,bkcd->bkd", coupling, flat_predictions)
        outputs = squash(weighted_sums, axis=-1, epsilon=epsilon)
        if iteration < iterations - 1:
            logits = logits + ops.einsum("bkd,bkcd->bkc", outputs, flat_predictions)
    similarities = ops.sum(coupling * logits, axis=-1)
    # As in `squash`, half precision would flush 1e-14 to zero: use float32.
    computed = ops.cast(outputs, _compute_dtype(outputs.dtype))
    lengths = safe_root(ops.sum(ops.square(computed), axis=-1), 2, norm_epsilon)
    return (
        restore_atoms(outputs, atom_shape),
        similarities,
        ops.cast(lengths, outputs.dtype),
    )
