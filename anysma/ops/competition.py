"""Competition of the prototypes of each capsule, as pure functions of `keras.ops`.

Shapes follow the original anysma (B = batch, P = prototypes, K = capsules,
A = atom shape). Competition comes after routing:

* **competition** (`nearest_competition`, `gibbs_competition`,
  `competition`) lets the prototypes of each capsule compete: `(B, P, *A)`
  and `(B, P)` become `(B, K, *A)` and `(B, K)`. Capsule `i` owns the
  prototypes in row `i` of a static `prototype_index_table` of shape
  `(K, max_k)`; a `valid_mask` of the same shape marks the padding of
  capsules with fewer than `max_k` prototypes. Both come from
  `anysma.utils.prototype_index_tables(prototype_distribution)`. Every
  capsule is processed at once (no loop over capsules).
* **class posteriors** (`class_log_posterior`): the probability mass that
  the Gibbs distribution `softmax(-beta d)` of the prototypes gives each
  class (group of prototypes), the posterior of RSLVQ, in log space.

Atoms of any rank are flattened to vectors for the contractions and restored
afterwards. No shape depends on data, so every function can be traced and
compiled (`jit_compile=True`).
"""

import collections
import math
import numbers

import keras
import numpy as np
from keras import ops

from anysma.ops._kernels import beta_column
from anysma.ops._kernels import check_callable
from anysma.ops._kernels import check_signals_and_dissimilarities
from anysma.ops._kernels import check_weights
from anysma.ops._kernels import contract
from anysma.ops._kernels import flatten_atoms
from anysma.ops._kernels import restore_atoms
from anysma.ops._kernels import stable_softmax
from anysma.ops._validation import check_min_rank
from anysma.ops._validation import static_shape
from anysma.ops._validation import to_common_float
from anysma.ops.reductions import selected_max
from anysma.ops.reductions import selected_min

_COMPETITION_LAYOUT = " (batch, prototypes, *atom)"
_COMPETITION_DISSIMILARITY_LAYOUT = " (batch, prototypes)"

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
    check_signals_and_dissimilarities(
        signals,
        dissimilarities,
        2,
        _COMPETITION_LAYOUT,
        _COMPETITION_DISSIMILARITY_LAYOUT,
        shared_axis=1,
    )
    return signals, dissimilarities


def _is_shared(signals, dissimilarities):
    """One signal for all prototypes: `(B, 1, *A)` with `(B, P)`, `P > 1`."""
    return static_shape(signals)[1] == 1 and static_shape(dissimilarities)[1] != 1


def _contract_shared(weights, flat_signals, dissimilarities):
    """`contract` for one signal `(B, 1, D)` shared by every prototype.

    Each capsule's weighted sum of equal signals is the signal times the sum
    of its weights, so no `(B, K, max_k, D)` block is ever formed.
    """
    return (
        flat_signals * ops.sum(weights, axis=-1, keepdims=True),
        ops.sum(weights * dissimilarities, axis=-1),
    )


def _gather_blocks(flat_signals, dissimilarities, tables):
    """Gather each capsule's prototypes: `(B, K, max_k, D)` and `(B, K, max_k)`.

    Shared signals (`flat_signals` `(B, 1, D)`) have nothing to gather and
    come back as they are.
    """
    capsule_number, max_count = tables.index_table.shape
    shared = _is_shared(flat_signals, dissimilarities)
    if tables.layout == "blocks":
        atom_size = tuple(ops.shape(flat_signals))[-1]
        return (
            flat_signals
            if shared
            else ops.reshape(flat_signals, (-1, capsule_number, max_count, atom_size)),
            ops.reshape(dissimilarities, (-1, capsule_number, max_count)),
        )
    indices = ops.convert_to_tensor(tables.index_table, dtype="int32")
    return (
        flat_signals if shared else ops.take(flat_signals, indices, axis=1),
        ops.take(dissimilarities, indices, axis=1),
    )


def _compete(signals, dissimilarities, tables, block_weights, return_probabilities):
    """Gather the capsules' blocks, weight them with `block_weights`, contract."""
    shared = _is_shared(signals, dissimilarities)
    if tables.layout == "identity":
        if shared:
            signals = ops.broadcast_to(
                signals, tuple(ops.shape(dissimilarities)) + tuple(signals.shape[2:])
            )
        outputs = (signals, dissimilarities)
        if return_probabilities:
            outputs += (ops.expand_dims(ops.ones_like(dissimilarities), -1),)
        return outputs
    flat_signals, atom_shape = flatten_atoms(signals, 2)
    blocks_signals, blocks_dissimilarities = _gather_blocks(
        flat_signals, dissimilarities, tables
    )
    weights = block_weights(blocks_dissimilarities)
    competed_signals, competed_dissimilarities = (
        _contract_shared if shared else contract
    )(weights, blocks_signals, blocks_dissimilarities)
    outputs = (restore_atoms(competed_signals, atom_shape), competed_dissimilarities)
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
        signals: `(B, P, *A)`, or `(B, 1, *A)`: one signal shared by all
            prototypes.
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

    def winner_weights(blocks_dissimilarities):
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
        signals, dissimilarities, tables, winner_weights, return_probabilities
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
        signals: `(B, P, *A)`, or `(B, 1, *A)`: one signal shared by all
            prototypes.
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
    beta = beta_column(beta, "beta", tables.index_table.shape[0], dissimilarities.dtype)

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
        return stable_softmax(logits, axis=-1)

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
        signals: `(B, P, *A)`, or `(B, 1, *A)`: one signal shared by all
            prototypes.
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
    check_callable(probability_transformation)
    signals, dissimilarities = _check_competition_inputs(signals, dissimilarities)
    tables = _resolve_tables(
        prototype_index_table, valid_mask, static_shape(dissimilarities)[1]
    )

    def transform(blocks_dissimilarities):
        weights = ops.cast(
            probability_transformation(blocks_dissimilarities),
            blocks_dissimilarities.dtype,
        )
        check_weights(weights, blocks_dissimilarities)
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
    shared = _is_shared(signals, dissimilarities)
    flat_signals, atom_shape = flatten_atoms(signals, 2)
    max_count = tables.index_table.shape[1]
    order, grouped_signals, grouped_dissimilarities, grouped_weights = [], [], [], []
    for count in sorted(set(tables.counts.tolist())):
        rows = np.flatnonzero(tables.counts == count)
        indices = ops.convert_to_tensor(tables.index_table[rows, :count], "int32")
        blocks_dissimilarities = ops.take(dissimilarities, indices, axis=1)
        weights = transform(blocks_dissimilarities)
        if shared:
            competed_signals, competed_dissimilarities = _contract_shared(
                weights, flat_signals, blocks_dissimilarities
            )
        else:
            competed_signals, competed_dissimilarities = contract(
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
        restore_atoms(reorder(grouped_signals), atom_shape),
        reorder(grouped_dissimilarities),
    )
    return outputs + (reorder(grouped_weights),) if return_probabilities else outputs


# === Class posteriors: (B, P) -> (B, K) ===


def class_log_posterior(dissimilarities, membership, beta=1.0):
    """Log-probability of each class under the prototypes' Gibbs distribution.

    The prototypes' posteriors are `softmax(-beta d)`; the posterior of a
    class `k` is the sum over the prototypes `j` that belong to it
    (`membership[..., j, k]`), computed in log space as a difference of two
    log-sum-exps:

    `log p(k | x) = logsumexp_{j: m[j, k]}(-beta d_j) - logsumexp_j(-beta d_j)`

    This is the class posterior of Seo and Obermayer's RSLVQ (`beta =
    1 / (2 sigma^2)` for squared Euclidean distances). The maximum of each
    class's logits is factored out (read by `selected_max`, so compilers
    that recompute the logits cannot make its gradient NaN), so the result
    is finite for any finite distances, also where they are 0 or very
    large. A class without prototypes gets the finite
    `min_j(-beta d_j) + log(tiny) - logsumexp_j(-beta d_j)` instead of
    `-inf`, with a finite gradient.

    Args:
        dissimilarities: `(..., P)`, one value per prototype.
        membership: Booleans (or numbers: nonzero is True) of a shape that
            broadcasts against `(..., P, K)`: whether prototype `j` belongs
            to class `k`. A static `(P, K)` table of prototype labels, or
            per-sample masks `(..., P, 1)` (e.g. the prototypes of each
            sample's correct class).
        beta: Inverse temperature: a number > 0 or a scalar tensor.

    Returns:
        The log-posteriors `(..., K)`, in the float dtype of the
        dissimilarities (compute half precision in float32 yourself).

    Example:

    >>> import numpy as np
    >>> membership = np.array([[True, False], [True, False], [False, True]])
    >>> log_posteriors = class_log_posterior(
    ...     np.array([[0.0, 1.0, 0.5]]), membership)
    >>> print(np.round(np.exp(np.asarray(log_posteriors)), 3))
    [[0.693 0.307]]

    Reference:
        Seo and Obermayer, "Soft learning vector quantization", Neural
        Computation 15(7), 2003.
    """
    if isinstance(beta, bool) or (
        isinstance(beta, numbers.Real) and not (math.isfinite(beta) and beta > 0)
    ):
        raise ValueError(f"`beta` must be a number > 0. Received: beta={beta!r}")
    (dissimilarities,) = to_common_float(dissimilarities)
    check_min_rank(dissimilarities, "dissimilarities", 1, " (..., prototypes)")
    membership = ops.convert_to_tensor(membership)
    if keras.backend.standardize_dtype(membership.dtype) != "bool":
        membership = ops.not_equal(membership, 0)
    check_min_rank(membership, "membership", 2, " (..., prototypes, classes)")
    prototypes = static_shape(dissimilarities)[-1]
    rows = static_shape(membership)[-2]
    if None not in (prototypes, rows) and rows not in (1, prototypes):
        raise ValueError(
            "`membership` needs one row per prototype (axis -2) of the "
            f"`dissimilarities` ({prototypes}). Received: "
            f"membership.shape={static_shape(membership)}, "
            f"dissimilarities.shape={static_shape(dissimilarities)}"
        )
    logits = -ops.cast(beta, dissimilarities.dtype) * dissimilarities
    # (..., P, 1) against (..., P, K): the logits of each class's prototypes.
    expanded = ops.expand_dims(logits, -1)
    # The shift of a class without prototypes: any finite logit will do.
    lowest = ops.expand_dims(selected_min(logits, axis=-1, keepdims=True), -1)
    maximum = selected_max(
        ops.where(membership, expanded, lowest), axis=-2, keepdims=True
    )
    # Non-members are exponentiated as exp(0) and then dropped, so nothing
    # overflows and no `-inf * 0` reaches the gradient.
    shifted = ops.where(membership, expanded - maximum, ops.zeros_like(expanded))
    exponentials = ops.where(membership, ops.exp(shifted), ops.zeros_like(shifted))
    total = ops.sum(exponentials, axis=-2)
    tiny = float(np.finfo(keras.backend.standardize_dtype(logits.dtype)).tiny)
    class_logits = ops.squeeze(maximum, -2) + ops.log(ops.maximum(total, tiny))
    return class_logits - ops.logsumexp(logits, axis=-1, keepdims=True)
