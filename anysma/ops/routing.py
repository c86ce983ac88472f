"""Routing and competition of capsule signals, as pure functions of `keras.ops`.

Shapes follow the original anysma (B = batch, P = prototypes, K = capsules,
C = channels, i.e. the input vectors routed to a prototype, A = atom shape):

* **routing** (`gibbs_routing`, `routing`) contracts the channel axis:
  signals `(B, P, C, *A)` and dissimilarities `(B, P, C)` become
  `(B, P, *A)` and `(B, P)`, weighted by routing probabilities. Signals
  shared by all prototypes may be passed once, `(B, 1, C, *A)`.
  `measured_gibbs_routing` measures and routes in one call, with memory
  `O(B P C)` besides the inputs and outputs.
* **competition** (`nearest_competition`, `gibbs_competition`,
  `competition`) lets the prototypes of each capsule compete: `(B, P, *A)`
  and `(B, P)` become `(B, K, *A)` and `(B, K)`. Capsule `i` owns the
  prototypes in row `i` of a static `prototype_index_table` of shape
  `(K, max_k)`; a `valid_mask` of the same shape marks the padding of
  capsules with fewer than `max_k` prototypes. Both come from
  `anysma.utils.prototype_index_tables(prototype_distribution)`. Every
  capsule is processed at once (no loop over capsules).
* **dynamic routing** (`dynamic_routing`) is the routing-by-agreement of
  Sabour et al.; there similarities are large for good matches.

Atoms of any rank are flattened to vectors for the contractions and restored
afterwards. Iteration counts are static Python ints and no shape depends on
data, so every function can be traced and compiled (`jit_compile=True`).
"""

import collections
import math
import numbers

import numpy as np
from keras import ops

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
_COMPETITION_LAYOUT = " (batch, prototypes, *atom)"
_COMPETITION_DISSIMILARITY_LAYOUT = " (batch, prototypes)"

# `norm_axis` values of the original `GibbsRouting` (1 = capsules, i.e. the
# prototype axis; 2 = channels).
_ROUTING_AXES = {1: 1, 2: 2, -1: 2, "capsules": 1, "channels": 2}


# === Shared helpers ===


def _softmax(logits, axis):
    """Softmax along `axis`, with the maximum subtracted before `exp`.

    Unlike `keras.ops.softmax` it does not warn on axes of size 1 (a capsule
    with one prototype, a single channel), which are legitimate here. The
    shift does not change the result, so its gradient can be stopped.
    """
    shifted = logits - ops.stop_gradient(ops.max(logits, axis=axis, keepdims=True))
    exponentials = ops.exp(shifted)
    return exponentials / ops.sum(exponentials, axis=axis, keepdims=True)


def _all_static(dims):
    return all(isinstance(dim, int) for dim in dims)


def _flatten_atoms(tensor, leading_rank):
    """Reshape `(*leading, *atom)` to `(*leading, D)`; also return the atom shape.

    The batch dimension is left to `-1` so that an unknown batch size works
    inside traced functions.
    """
    shape = tuple(ops.shape(tensor))
    leading, atom_shape = shape[1:leading_rank], shape[leading_rank:]
    if _all_static(leading + atom_shape):
        new_shape = (-1,) + leading + (math.prod(atom_shape),)
    else:
        new_shape = shape[:leading_rank] + (-1,)
    return ops.reshape(tensor, new_shape), atom_shape


def _restore_atoms(tensor, atom_shape):
    """Inverse of `_flatten_atoms` for a tensor `(*leading, D)`."""
    shape = tuple(ops.shape(tensor))
    leading = shape[1:-1]
    if _all_static(leading + tuple(atom_shape)):
        return ops.reshape(tensor, (-1,) + leading + tuple(atom_shape))
    return ops.reshape(tensor, shape[:-1] + tuple(atom_shape))


def _check_signals_and_dissimilarities(
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


def _check_callable(probability_transformation):
    if not callable(probability_transformation):
        raise ValueError(
            "`probability_transformation` must be a callable that maps "
            "dissimilarities to weights along the last axis (resolve names "
            "with `anysma.probability_transformations.get`). Received: "
            f"probability_transformation={probability_transformation!r}"
        )


def _check_weights(weights, dissimilarities):
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


def _beta_column(beta, name, num_rows, dtype):
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


def _contract(weights, flat_signals, dissimilarities):
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


def _route(signals, dissimilarities, weights, return_probabilities):
    flat_signals, atom_shape = _flatten_atoms(signals, 3)
    routed_signals, routed_dissimilarities = _contract(
        weights, flat_signals, dissimilarities
    )
    outputs = (_restore_atoms(routed_signals, atom_shape), routed_dissimilarities)
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
    _check_signals_and_dissimilarities(
        signals,
        dissimilarities,
        3,
        _ROUTING_LAYOUT,
        _ROUTING_DISSIMILARITY_LAYOUT,
        shared_axis=1,
    )
    beta = _beta_column(
        beta, "beta", static_shape(dissimilarities)[1], dissimilarities.dtype
    )
    logits = -dissimilarities if beta is None else -beta * dissimilarities
    probabilities = _softmax(logits, axis=softmax_axis)
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
    _check_callable(probability_transformation)
    signals, dissimilarities = to_common_float(signals, dissimilarities)
    _check_signals_and_dissimilarities(
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
    _check_weights(weights, dissimilarities)
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


# === Competition: (B, P, *A), (B, P) -> (B, K, *A), (B, K) ===

_Tables = collections.namedtuple(
    "_Tables", ["index_table", "valid_mask", "counts", "all_valid", "layout"]
)


def _resolve_tables(prototype_index_table, valid_mask, proto_number):
    """Validate the static index tables and find a cheaper layout if any.

    `layout` is `"identity"` (one prototype per capsule, in order: competition
    does nothing), `"blocks"` (consecutive blocks of equal size: a reshape
    instead of a gather) or `"gather"`.
    """
    try:
        table = np.asarray(prototype_index_table)
    except Exception:  # Any non-static value gets the one message below.
        table = None
    if (
        table is None
        or table.ndim != 2
        or table.size == 0
        or not np.issubdtype(table.dtype, np.integer)
    ):
        raise ValueError(
            "`prototype_index_table` must be a static (NumPy or nested list) "
            "integer array of shape (capsule_number, "
            "max_proto_number_in_capsule), e.g. "
            "`anysma.utils.prototype_index_tables(prototype_distribution)"
            ".index_table`. Received: "
            f"prototype_index_table={prototype_index_table!r}"
        )
    if table.min() < 0 or (proto_number is not None and table.max() >= proto_number):
        raise ValueError(
            "`prototype_index_table` must hold prototype indices in "
            f"[0, {proto_number}). Received: prototype_index_table={table.tolist()}"
        )
    if valid_mask is None:
        mask = np.ones(table.shape, dtype=bool)
    else:
        try:
            mask = np.asarray(valid_mask)
        except Exception:
            mask = None
        if (
            mask is None
            or mask.shape != table.shape
            or mask.dtype != bool
            or not mask[:, 0].all()
            or (mask[:, 1:] & ~mask[:, :-1]).any()
        ):
            raise ValueError(
                "`valid_mask` must be a static boolean array of the shape of "
                f"`prototype_index_table` {table.shape} whose rows start with "
                "True and have no True after a False (valid entries first). "
                f"Received: valid_mask={valid_mask!r}"
            )
    table = table.astype("int32")
    capsule_number, max_count = table.shape
    all_valid = bool(mask.all())
    layout = "gather"
    if all_valid and proto_number == table.size:
        if np.array_equal(table.ravel(), np.arange(table.size)):
            layout = "identity" if max_count == 1 else "blocks"
    return _Tables(table, mask, mask.sum(axis=1), all_valid, layout)


def _check_competition_inputs(signals, dissimilarities):
    signals, dissimilarities = to_common_float(signals, dissimilarities)
    _check_signals_and_dissimilarities(
        signals,
        dissimilarities,
        2,
        _COMPETITION_LAYOUT,
        _COMPETITION_DISSIMILARITY_LAYOUT,
    )
    return signals, dissimilarities


def _gather_blocks(flat_signals, dissimilarities, tables):
    """Gather each capsule's prototypes: `(B, K, max_k, D)` and `(B, K, max_k)`."""
    capsule_number, max_count = tables.index_table.shape
    if tables.layout == "blocks":
        atom_size = tuple(ops.shape(flat_signals))[-1]
        return (
            ops.reshape(flat_signals, (-1, capsule_number, max_count, atom_size)),
            ops.reshape(dissimilarities, (-1, capsule_number, max_count)),
        )
    indices = ops.convert_to_tensor(tables.index_table, dtype="int32")
    return (
        ops.take(flat_signals, indices, axis=1),
        ops.take(dissimilarities, indices, axis=1),
    )


def _compete(signals, dissimilarities, tables, block_weights, return_probabilities):
    """Gather the capsules' blocks, weight them with `block_weights`, contract."""
    if tables.layout == "identity":
        outputs = (signals, dissimilarities)
        if return_probabilities:
            outputs += (ops.expand_dims(ops.ones_like(dissimilarities), -1),)
        return outputs
    flat_signals, atom_shape = _flatten_atoms(signals, 2)
    blocks_signals, blocks_dissimilarities = _gather_blocks(
        flat_signals, dissimilarities, tables
    )
    weights = block_weights(blocks_dissimilarities)
    competed_signals, competed_dissimilarities = _contract(
        weights, blocks_signals, blocks_dissimilarities
    )
    outputs = (_restore_atoms(competed_signals, atom_shape), competed_dissimilarities)
    return outputs + (weights,) if return_probabilities else outputs


def nearest_competition(
    signals,
    dissimilarities,
    prototype_index_table,
    valid_mask=None,
    return_probabilities=False,
):
    """Winner-takes-all within each capsule: keep its closest prototype.

    For every capsule `k` the prototype with the smallest dissimilarity among
    `prototype_index_table[k]` (ignoring entries where `valid_mask` is False)
    passes its signal and dissimilarity on; ties go to the first prototype.
    Gradients flow only to the winners.

    Args:
        signals: `(B, P, *A)`.
        dissimilarities: `(B, P)`.
        prototype_index_table: Static int array `(K, max_k)`: the prototypes
            of each capsule (see `anysma.utils.prototype_index_tables`).
        valid_mask: Static bool array `(K, max_k)` marking real entries
            (valid entries first in each row); `None` means all are valid.
        return_probabilities: Also return the one-hot winner weights.

    Returns:
        The tuple `(signals, dissimilarities)` of shapes `(B, K, *A)` and
        `(B, K)`; with `return_probabilities=True` followed by the one-hot
        weights `(B, K, max_k)`.

    Example:

    >>> import numpy as np
    >>> from anysma.utils import prototype_index_tables
    >>> tables = prototype_index_tables((2, 3))  # 3 capsules, 2 prototypes each
    >>> signals, dissimilarities = nearest_competition(
    ...     np.random.rand(4, 6, 8), np.random.rand(4, 6),
    ...     tables.index_table, tables.valid_mask)
    >>> tuple(signals.shape), tuple(dissimilarities.shape)
    ((4, 3, 8), (4, 3))
    """
    signals, dissimilarities = _check_competition_inputs(signals, dissimilarities)
    tables = _resolve_tables(
        prototype_index_table, valid_mask, static_shape(dissimilarities)[1]
    )

    def block_weights(blocks_dissimilarities):
        if not tables.all_valid:
            # Padding must never win; `inf` only enters the argmin, never a sum.
            blocks_dissimilarities = ops.where(
                ops.convert_to_tensor(tables.valid_mask),
                blocks_dissimilarities,
                ops.cast(math.inf, blocks_dissimilarities.dtype),
            )
        winners = ops.argmin(blocks_dissimilarities, axis=-1)
        return ops.one_hot(
            winners,
            tables.index_table.shape[1],
            dtype=blocks_dissimilarities.dtype,
        )

    return _compete(
        signals, dissimilarities, tables, block_weights, return_probabilities
    )


def gibbs_competition(
    signals,
    dissimilarities,
    prototype_index_table,
    valid_mask=None,
    beta=None,
    return_probabilities=False,
):
    """Soft competition within each capsule by Gibbs probabilities.

    For capsule `k` with prototypes `j`:
    `q[b, k, j] = softmax_j(-beta_k d[b, j])` over the capsule's own
    prototypes (padding gets probability 0), and the outputs are
    `sum_j q x[b, j]` and `sum_j q d[b, j]`.

    Args:
        signals: `(B, P, *A)`.
        dissimilarities: `(B, P)`.
        prototype_index_table: Static int array `(K, max_k)` (see
            `anysma.utils.prototype_index_tables`).
        valid_mask: Static bool array `(K, max_k)`; `None` means all valid.
        beta: Inverse temperature per capsule: `None` (1), a scalar, or
            shape `(K,)` (the `beta` weight of `GibbsCompetition`).
        return_probabilities: Also return `q`.

    Returns:
        The tuple `(signals, dissimilarities)` of shapes `(B, K, *A)` and
        `(B, K)`; with `return_probabilities=True` followed by `q`
        `(B, K, max_k)`.

    Example:

    >>> import numpy as np
    >>> from anysma.utils import prototype_index_tables
    >>> tables = prototype_index_tables([1, 3])
    >>> signals, dissimilarities = gibbs_competition(
    ...     np.random.rand(4, 4, 8), np.random.rand(4, 4),
    ...     tables.index_table, tables.valid_mask, beta=np.ones(2))
    >>> tuple(signals.shape), tuple(dissimilarities.shape)
    ((4, 2, 8), (4, 2))
    """
    signals, dissimilarities = _check_competition_inputs(signals, dissimilarities)
    tables = _resolve_tables(
        prototype_index_table, valid_mask, static_shape(dissimilarities)[1]
    )
    beta = _beta_column(
        beta, "beta", tables.index_table.shape[0], dissimilarities.dtype
    )

    def block_weights(blocks_dissimilarities):
        logits = (
            -blocks_dissimilarities if beta is None else -beta * blocks_dissimilarities
        )
        if not tables.all_valid:
            # exp(-inf) = 0: padding gets no probability. Every row has a
            # valid entry, so the maximum subtracted by the softmax is finite.
            logits = ops.where(
                ops.convert_to_tensor(tables.valid_mask),
                logits,
                ops.cast(-math.inf, logits.dtype),
            )
        return _softmax(logits, axis=-1)

    return _compete(
        signals, dissimilarities, tables, block_weights, return_probabilities
    )


def competition(
    signals,
    dissimilarities,
    prototype_index_table,
    valid_mask,
    probability_transformation,
    return_probabilities=False,
):
    """Competition within each capsule with a generic probability transformation.

    For capsule `k`, `w = probability_transformation(d)` is computed on the
    dissimilarities of its own prototypes only (a `(B, n, k_i)` tensor for
    the `n` capsules with `k_i` prototypes), and the outputs are
    `sum_j w x[b, j]` and `sum_j w d[b, j]`. For unequal distributions the
    capsules are grouped by their number of prototypes, so there is one
    vectorized step per distinct size, never one per capsule, and any
    transformation (normalized or not) sees exactly the capsule's prototypes.

    Args:
        signals: `(B, P, *A)`.
        dissimilarities: `(B, P)`.
        prototype_index_table: Static int array `(K, max_k)` (see
            `anysma.utils.prototype_index_tables`).
        valid_mask: Static bool array `(K, max_k)` (valid entries first in
            each row); `None` means all valid.
        probability_transformation: A callable mapping dissimilarities
            `(B, n, k)` to weights of the same shape along the last axis.
        return_probabilities: Also return the weights, zero-padded to
            `(B, K, max_k)`.

    Returns:
        The tuple `(signals, dissimilarities)` of shapes `(B, K, *A)` and
        `(B, K)`; with `return_probabilities=True` followed by the weights.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> from anysma.utils import prototype_index_tables
    >>> tables = prototype_index_tables([2, 1, 3])
    >>> signals, _ = competition(
    ...     np.random.rand(4, 6, 8), np.random.rand(4, 6),
    ...     tables.index_table, tables.valid_mask,
    ...     lambda d: ops.exp(-d) / ops.sum(ops.exp(-d), axis=-1, keepdims=True))
    >>> tuple(signals.shape)
    (4, 3, 8)
    """
    _check_callable(probability_transformation)
    signals, dissimilarities = _check_competition_inputs(signals, dissimilarities)
    tables = _resolve_tables(
        prototype_index_table, valid_mask, static_shape(dissimilarities)[1]
    )

    def transform(blocks_dissimilarities):
        weights = ops.cast(
            probability_transformation(blocks_dissimilarities),
            blocks_dissimilarities.dtype,
        )
        _check_weights(weights, blocks_dissimilarities)
        return weights

    if tables.all_valid:
        return _compete(
            signals, dissimilarities, tables, transform, return_probabilities
        )
    return _compete_grouped(
        signals, dissimilarities, tables, transform, return_probabilities
    )


def _compete_grouped(signals, dissimilarities, tables, transform, return_probabilities):
    """`competition` for padded tables: one step per distinct capsule size."""
    flat_signals, atom_shape = _flatten_atoms(signals, 2)
    max_count = tables.index_table.shape[1]
    order, grouped_signals, grouped_dissimilarities, grouped_weights = [], [], [], []
    for count in sorted(set(tables.counts.tolist())):
        rows = np.flatnonzero(tables.counts == count)
        indices = ops.convert_to_tensor(tables.index_table[rows, :count], "int32")
        blocks_dissimilarities = ops.take(dissimilarities, indices, axis=1)
        weights = transform(blocks_dissimilarities)
        competed_signals, competed_dissimilarities = _contract(
            weights,
            ops.take(flat_signals, indices, axis=1),
            blocks_dissimilarities,
        )
        order.extend(rows.tolist())
        grouped_signals.append(competed_signals)
        grouped_dissimilarities.append(competed_dissimilarities)
        grouped_weights.append(
            ops.pad(weights, [[0, 0], [0, 0], [0, max_count - count]])
        )
    # Put the capsules back into their order.
    inverse = ops.convert_to_tensor(np.argsort(order), "int32")

    def reorder(pieces):
        return ops.take(ops.concatenate(pieces, axis=1), inverse, axis=1)

    outputs = (
        _restore_atoms(reorder(grouped_signals), atom_shape),
        reorder(grouped_dissimilarities),
    )
    return outputs + (reorder(grouped_weights),) if return_probabilities else outputs


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
        _check_signals_and_dissimilarities(
            predictions,
            logits,
            3,
            predictions_layout,
            " (batch, capsules, input_capsules)",
            names=("predictions", "logits"),
        )
    flat_predictions, atom_shape = _flatten_atoms(predictions, 3)
    if logits is None:
        logits = ops.zeros_like(flat_predictions[..., 0])
    for iteration in range(iterations):
        coupling = _softmax(logits, axis=softmax_axis)
        weighted_sums = ops.einsum("bkc,bkcd->bkd", coupling, flat_predictions)
        outputs = squash(weighted_sums, axis=-1, epsilon=epsilon)
        if iteration < iterations - 1:
            logits = logits + ops.einsum("bkd,bkcd->bkc", outputs, flat_predictions)
    similarities = ops.sum(coupling * logits, axis=-1)
    # As in `squash`, half precision would flush 1e-14 to zero: use float32.
    computed = ops.cast(outputs, _compute_dtype(outputs.dtype))
    lengths = safe_root(ops.sum(ops.square(computed), axis=-1), 2, norm_epsilon)
    return (
        _restore_atoms(outputs, atom_shape),
        similarities,
        ops.cast(lengths, outputs.dtype),
    )
