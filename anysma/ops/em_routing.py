"""EM routing of matrix capsules (Hinton, Sabour and Frosst, 2018).

Shapes (B = batch, N = routing groups, i.e. output positions, C = input
capsules per group, O = output capsule types, D = pose entries, 16 for
4 x 4 matrices):

* votes `(B, N, C, O, D)`: the vote of input capsule `c` for the pose of
  output capsule `o` at position `n`;
* input activations `(B, N, C)`;
* output poses `(B, N, O, D)` and activations `(B, N, O)`.

A convolutional capsule layer has one group per output position and the
`K * K * I` input capsules of its receptive field as `C`; a class capsule
layer has one group (`N = 1`) with every input capsule.

The implementation follows the paper's Procedure 1 and handles the pitfalls
that Gritzman (2019) lists:

* **Responsibilities across all parents.** In a convolutional layer an input
  capsule lies in the receptive fields of several output positions. Its
  responsibilities are normalized over all the output capsules it votes for,
  at every position (pass `child_ids`, see `capsule_patch_ids`), not only
  over the types of one position; they start uniform over the same set.
* **Log domain.** The E-step computes Gaussian log-likelihoods and takes the
  softmax of `log a_j + log p_j` with the per-input maximum subtracted;
  `log a_j` is the log-sigmoid of the activation logit, so a zero activation
  gives a very negative number, not `log(0)`.
* **Variance floor.** `epsilon` is added to every variance: identical votes
  (zero variance) give a finite cost and likelihood, and no square root is
  taken (its gradient is infinite at zero).
* **Amount of data per parent.** The cost of an output capsule grows with
  the number of inputs it receives: 9 * 8 in a ConvCaps layer, but every
  position of the last grid in the class capsules. It is scaled by
  `cost_normalization * O / C` so that one `beta_a`, `beta_u` and `lambda`
  suit every layer.
* **Inverse temperature schedule.** `lambda_t = final_lambda (1 -
  0.95^(t+1))` for iterations `t = 0, 1, ...`, as the authors stated on
  OpenReview (`final_lambda = 0.01`).
* **No zero division.** Sums of responsibilities are clamped below by
  `1e-9` before dividing, so output capsules whose inputs are all inactive
  get zero means and finite gradients, not NaN.

The gradient flows through all iterations (no stop-gradient), as in the
paper. Iteration counts are static Python ints and no shape depends on data,
so every function can be traced and compiled.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from anysma.ops._validation import check_epsilon
from anysma.ops._validation import check_rank
from anysma.ops._validation import static_shape
from anysma.ops._validation import to_common_float

_HALF_DTYPES = ("float16", "bfloat16")
_VOTES_LAYOUT = " (batch, groups, input_capsules, output_capsules, pose)"
_ACTIVATIONS_LAYOUT = " (batch, groups, input_capsules)"
#: The decay of the inverse temperature schedule (Hinton et al., OpenReview).
LAMBDA_DECAY = 0.95


def _compute_dtype(dtype):
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in _HALF_DTYPES else dtype


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    return int(value)


def _check_number(value, name, allow_none=False, positive=False):
    if allow_none and value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or (positive and value <= 0)
        or value < 0
    ):
        wanted = "a finite number > 0" if positive else "a finite number >= 0"
        if allow_none:
            wanted += " or None"
        raise ValueError(f"`{name}` must be {wanted}. Received: {name}={value!r}")
    return float(value)


def inverse_temperatures(iterations, final_lambda=0.01):
    """The inverse temperatures `lambda_t` of the EM routing iterations.

    `lambda_t = final_lambda * (1 - 0.95 ** (t + 1))` for `t = 0, ...,
    iterations - 1`: small in the first iterations, where the assignment is
    still uncertain, and growing towards `final_lambda`.

    Args:
        iterations: The number of iterations, an int >= 1.
        final_lambda: The limit of the schedule, a number > 0.

    Returns:
        A list of `iterations` floats.

    Example:

    >>> [round(value, 5) for value in inverse_temperatures(3)]
    [0.0005, 0.00098, 0.00143]

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing", ICLR
        2018, and the authors' answer on OpenReview (forum HJWLfGWRb).
    """
    iterations = _check_positive_int(iterations, "iterations")
    final_lambda = _check_number(final_lambda, "final_lambda", positive=True)
    return [
        final_lambda * (1.0 - LAMBDA_DECAY ** (step + 1)) for step in range(iterations)
    ]


# The smallest amount of data an output capsule divides by. Not the smallest
# normal number: with all inputs inactive the gradient of the mean is
# `votes / amount`, which must stay finite (times zero it must give zero).
_MIN_AMOUNT = 1e-9


def _safe_divide(numerator, denominator):
    return numerator / ops.maximum(denominator, _MIN_AMOUNT)


def em_m_step(
    responsibilities,
    votes,
    activations,
    beta_u,
    beta_a,
    inverse_temperature,
    epsilon=1e-4,
    cost_normalization=100.0,
):
    """The M-step of EM routing: Gaussians and activations of the outputs.

    With `r'[b, n, c, o] = r[b, n, c, o] * a[b, n, c]` and
    `R[b, n, o] = sum_c r'`:

    * `mu[o, h] = sum_c r' V[c, o, h] / R`,
    * `sigma^2[o, h] = sum_c r' (V[c, o, h] - mu[o, h])^2 / R + epsilon`,
    * `cost[o, h] = (beta_u[o] + log sigma[o, h]) * R * s`, with
      `s = cost_normalization * O / C` (or 1 if `cost_normalization` is
      `None`),
    * `a_out[o] = sigmoid(lambda * (beta_a[o] - sum_h cost[o, h]))`.

    Args:
        responsibilities: `r`, `(B, N, C, O)`.
        votes: `V`, `(B, N, C, O, D)`.
        activations: Input activations `a`, `(B, N, C)`.
        beta_u: Cost offsets per output type, `(O,)`.
        beta_a: Activation offsets per output type, `(O,)`.
        inverse_temperature: `lambda`, a number or scalar tensor.
        epsilon: The variance floor, > 0.
        cost_normalization: The `100` of Gritzman's normalization of the
            amount of data per output capsule, or `None` for the paper's
            unnormalized cost.

    Returns:
        A tuple `(means, variances, logits)` of shapes `(B, N, O, D)`,
        `(B, N, O, D)` and `(B, N, O)`; the output activations are
        `sigmoid(logits)`.

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing", ICLR
        2018, Procedure 1; Gritzman, "Avoiding implementation pitfalls of
        matrix capsules with EM routing", 2019.
    """
    weights = responsibilities * ops.expand_dims(activations, -1)
    amount = ops.sum(weights, axis=2)  # (B, N, O)
    weights = ops.expand_dims(weights, -1)
    total = ops.expand_dims(amount, -1)
    means = _safe_divide(ops.sum(weights * votes, axis=2), total)
    deviations = ops.square(votes - ops.expand_dims(means, 2))
    variances = _safe_divide(ops.sum(weights * deviations, axis=2), total) + epsilon
    if cost_normalization is not None:
        num_inputs, num_outputs = static_shape(votes)[2:4]
        amount = amount * (cost_normalization * num_outputs / num_inputs)
    # log sigma = 0.5 log sigma^2: the square root is never taken.
    costs = ops.sum(
        (ops.reshape(beta_u, (1, 1, -1, 1)) + 0.5 * ops.log(variances))
        * ops.expand_dims(amount, -1),
        axis=-1,
    )
    logits = inverse_temperature * (ops.reshape(beta_a, (1, 1, -1)) - costs)
    return means, variances, logits


def _reduce_over_parents(reduce, values, child_ids, num_children):
    """Reduce `(B, N, C)` over all slots of each child; broadcast it back.

    `reduce` is `ops.segment_sum` or `ops.segment_max`.
    """
    batch_first = ops.reshape(
        ops.transpose(values, (1, 2, 0)), (-1, ops.shape(values)[0])
    )
    flat_ids = np.reshape(child_ids, (-1,))
    per_child = reduce(batch_first, flat_ids, num_segments=num_children)
    return _back_to_slots(per_child, flat_ids, values)


def _back_to_slots(per_child, flat_ids, like):
    slots = ops.take(per_child, ops.convert_to_tensor(flat_ids), axis=0)
    num_groups, num_inputs = static_shape(like)[1:3]
    return ops.transpose(
        ops.reshape(slots, (num_groups, num_inputs, ops.shape(like)[0])), (2, 0, 1)
    )


def em_e_step(votes, means, variances, logits, child_ids=None, num_children=None):
    """The E-step of EM routing: new responsibilities of the outputs.

    `log p[c, o] = -sum_h (V[c, o, h] - mu[o, h])^2 / (2 sigma^2[o, h])
    - 1/2 sum_h log(2 pi sigma^2[o, h])` and
    `r[c, o] = softmax(log a_out[o] + log p[c, o])`, normalized over every
    output capsule the input capsule votes for: the `O` types of its group,
    or, with `child_ids`, the types of all groups (positions) that share the
    input capsule.

    Args:
        votes: `(B, N, C, O, D)`.
        means: `(B, N, O, D)`.
        variances: `(B, N, O, D)`, positive.
        logits: Output activation logits `(B, N, O)`; `log a_out` is their
            log-sigmoid.
        child_ids: `None`, or an int NumPy array `(N, C)` naming the input
            capsule in every slot (see `capsule_patch_ids`).
        num_children: The number of distinct input capsules (required with
            `child_ids`).

    Returns:
        The responsibilities `(B, N, C, O)`.
    """
    centred = votes - ops.expand_dims(means, 2)
    variances = ops.expand_dims(variances, 2)
    log_likelihoods = -ops.sum(
        ops.square(centred) / (2.0 * variances)
        + 0.5 * ops.log((2.0 * math.pi) * variances),
        axis=-1,
    )
    scores = ops.expand_dims(ops.log_sigmoid(logits), 2) + log_likelihoods
    # The softmax is shift invariant: the shift carries no gradient.
    shift = ops.stop_gradient(ops.max(scores, axis=-1))
    if child_ids is not None:
        shift = ops.stop_gradient(
            _reduce_over_parents(ops.segment_max, shift, child_ids, num_children)
        )
    exponentials = ops.exp(scores - ops.expand_dims(shift, -1))
    totals = ops.sum(exponentials, axis=-1)
    if child_ids is not None:
        totals = _reduce_over_parents(ops.segment_sum, totals, child_ids, num_children)
    # The largest term is exp(0) = 1, so the totals are >= 1.
    return exponentials / ops.expand_dims(totals, -1)


def _check_child_ids(child_ids, num_children, votes_shape):
    if child_ids is None:
        if num_children is not None:
            raise ValueError(
                "`num_children` needs `child_ids`. Received: "
                f"num_children={num_children!r}, child_ids=None"
            )
        return None, None
    child_ids = np.asarray(child_ids)
    expected = tuple(votes_shape[1:3])
    if (
        child_ids.dtype.kind not in "iu"
        or child_ids.shape != expected
        or child_ids.size == 0
        or child_ids.min() < 0
    ):
        raise ValueError(
            "`child_ids` must be a NumPy array of non-negative ints of shape "
            f"(groups, input_capsules) = {expected}, as `capsule_patch_ids` "
            f"returns. Received: child_ids of shape {child_ids.shape} and dtype "
            f"{child_ids.dtype}"
        )
    if num_children is None:
        num_children = int(child_ids.max()) + 1
    num_children = _check_positive_int(num_children, "num_children")
    if child_ids.max() >= num_children:
        raise ValueError(
            f"`child_ids` holds ids up to {int(child_ids.max())}, but "
            f"`num_children` is {num_children}. Received: num_children="
            f"{num_children}"
        )
    return child_ids.astype("int32"), num_children


def initial_responsibilities(votes_shape, child_ids=None, num_children=None):
    """The uniform responsibilities that EM routing starts from, in NumPy.

    Every input capsule spreads its vote evenly over the output capsules it
    votes for: `1 / O` without `child_ids`, and `1 / (O * parents)` with
    them, where `parents` is the number of groups (positions) that share the
    input capsule.

    Args:
        votes_shape: `(B, N, C, O, D)` (the batch size may be `None`).
        child_ids: `None` or an int array `(N, C)`.
        num_children: The number of distinct input capsules.

    Returns:
        A float64 array `(1, N, C, O)`.
    """
    num_groups, num_inputs, num_outputs = votes_shape[1:4]
    shares = np.ones((num_groups, num_inputs))
    if child_ids is not None:
        counts = np.bincount(np.reshape(child_ids, (-1,)), minlength=num_children)
        shares = counts[child_ids].astype("float64")
    values = 1.0 / (shares * num_outputs)
    return np.broadcast_to(values[None, :, :, None], (1,) + tuple(votes_shape[1:4]))


def em_routing(
    votes,
    activations,
    beta_u,
    beta_a,
    iterations=3,
    final_lambda=0.01,
    epsilon=1e-4,
    cost_normalization=100.0,
    child_ids=None,
    num_children=None,
    return_responsibilities=False,
):
    """EM routing between matrix capsules (Hinton et al., 2018, Procedure 1).

    Starting from uniform responsibilities (see
    `initial_responsibilities`), each iteration `t` runs the M-step
    (`em_m_step`, with the inverse temperature `lambda_t` of
    `inverse_temperatures`) and, except in the last one, the E-step
    (`em_e_step`). The output poses are the means of the last M-step and the
    output activations its sigmoids. See the module docstring for the
    implementation pitfalls this handles.

    Args:
        votes: `(B, N, C, O, D)`, e.g. the 16 entries of `M_i W_ij`.
        activations: Input activations `(B, N, C)` in [0, 1].
        beta_u: Cost offsets per output type, `(O,)`.
        beta_a: Activation offsets per output type, `(O,)`.
        iterations: The number of iterations, a Python int >= 1 (unrolled).
        final_lambda: The limit of the inverse temperature schedule, > 0.
        epsilon: The variance floor, a number > 0 (identical votes have
            zero variance, and its log would be -inf).
        cost_normalization: Gritzman's normalization of the amount of data
            per output capsule (`100`), or `None` (the paper's cost).
        child_ids: `None`, or an int NumPy array `(N, C)` with the input
            capsule of every slot, so that an input capsule shared by
            several groups distributes one unit of responsibility over all
            of them (see `capsule_patch_ids`).
        num_children: The number of input capsules named by `child_ids`;
            default: the largest id + 1.
        return_responsibilities: Also return the last responsibilities.

    Returns:
        A tuple `(poses, activations)` of shapes `(B, N, O, D)` and
        `(B, N, O)`; with `return_responsibilities=True` followed by the
        responsibilities `(B, N, C, O)` of the last M-step.

    Example:

    >>> import numpy as np
    >>> votes = np.random.rand(2, 1, 6, 3, 16)
    >>> poses, activations = em_routing(
    ...     votes, np.ones((2, 1, 6)), np.zeros(3), np.zeros(3))
    >>> tuple(poses.shape), tuple(activations.shape)
    ((2, 1, 3, 16), (2, 1, 3))

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing", ICLR
        2018, Procedure 1; Gritzman, "Avoiding implementation pitfalls of
        matrix capsules with EM routing", arXiv:1907.00652, 2019.
    """
    lambdas = inverse_temperatures(iterations, final_lambda)
    check_epsilon(epsilon, positive=True)
    cost_normalization = _check_number(
        cost_normalization, "cost_normalization", allow_none=True, positive=True
    )
    votes, activations, beta_u, beta_a = to_common_float(
        votes, activations, beta_u, beta_a
    )
    check_rank(votes, "votes", 5, _VOTES_LAYOUT)
    check_rank(activations, "activations", 3, _ACTIVATIONS_LAYOUT)
    votes_shape = static_shape(votes)
    if None in votes_shape[1:]:
        raise ValueError(
            "`votes` needs known sizes except for the batch axis. Received: "
            f"votes.shape={votes_shape}"
        )
    if tuple(static_shape(activations)[1:]) != votes_shape[1:3]:
        raise ValueError(
            "`activations` must have shape (batch, groups, input_capsules) = "
            f"(batch, {votes_shape[1]}, {votes_shape[2]}) to match `votes`. "
            f"Received: activations.shape={static_shape(activations)}"
        )
    for beta, name in ((beta_u, "beta_u"), (beta_a, "beta_a")):
        if static_shape(beta) != (votes_shape[3],):
            raise ValueError(
                f"`{name}` must have shape (output_capsules,) = "
                f"({votes_shape[3]},). Received: {name}.shape={static_shape(beta)}"
            )
    child_ids, num_children = _check_child_ids(child_ids, num_children, votes_shape)
    # Half precision would flush the variance floor and the exponentials.
    dtype = votes.dtype
    compute_dtype = _compute_dtype(dtype)
    votes, activations, beta_u, beta_a = (
        ops.cast(tensor, compute_dtype)
        for tensor in (votes, activations, beta_u, beta_a)
    )
    responsibilities = ops.cast(
        initial_responsibilities(votes_shape, child_ids, num_children), compute_dtype
    )
    # Broadcast the batch axis (the first M-step multiplies by activations).
    responsibilities = responsibilities * ops.ones_like(
        ops.expand_dims(activations, -1)
    )
    for step, inverse_temperature in enumerate(lambdas):
        means, variances, logits = em_m_step(
            responsibilities,
            votes,
            activations,
            beta_u,
            beta_a,
            inverse_temperature,
            epsilon=epsilon,
            cost_normalization=cost_normalization,
        )
        if step < iterations - 1:
            responsibilities = em_e_step(
                votes, means, variances, logits, child_ids, num_children
            )
    outputs = (ops.cast(means, dtype), ops.cast(ops.sigmoid(logits), dtype))
    if return_responsibilities:
        outputs += (ops.cast(responsibilities, dtype),)
    return outputs


# === Convolutional capsules: patches, ids, coordinates ===


def _check_grid(kernel_size, strides, height, width):
    kernel_size = _check_positive_int(kernel_size, "kernel_size")
    strides = _check_positive_int(strides, "strides")
    if height is None or width is None or height < kernel_size or width < kernel_size:
        raise ValueError(
            f"A capsule grid of known size >= kernel_size={kernel_size} is "
            f"needed. Received: height={height}, width={width}"
        )
    return (
        kernel_size,
        strides,
        (height - kernel_size) // strides + 1,
        (width - kernel_size) // strides + 1,
    )


def capsule_patches(inputs, kernel_size, strides=1):
    """The receptive fields of a capsule convolution ("valid" padding).

    Args:
        inputs: A grid `(B, H, W, *rest)`, e.g. poses `(B, H, W, I, 4, 4)` or
            activations `(B, H, W, I)`.
        kernel_size: `K`, an int.
        strides: The stride `s`, an int.

    Returns:
        `(B, OH, OW, K * K, *rest)` with `OH = (H - K) // s + 1` (and `OW`
        alike); the kernel positions in row-major order.

    Example:

    >>> import numpy as np
    >>> patches = capsule_patches(np.zeros((2, 6, 6, 8, 16)), 3, strides=2)
    >>> tuple(patches.shape)
    (2, 2, 2, 9, 8, 16)
    """
    shape = static_shape(inputs)
    if len(shape) < 3:
        raise ValueError(
            "`inputs` must have rank >= 3 (batch, height, width, *rest). "
            f"Received: inputs.shape={shape}"
        )
    kernel_size, strides, out_height, out_width = _check_grid(
        kernel_size, strides, shape[1], shape[2]
    )
    patches = []
    for row in range(kernel_size):
        for column in range(kernel_size):
            patches.append(
                inputs[
                    :,
                    row : row + strides * (out_height - 1) + 1 : strides,
                    column : column + strides * (out_width - 1) + 1 : strides,
                ]
            )
    return ops.stack(patches, axis=3)


def capsule_patch_ids(height, width, capsule_types, kernel_size, strides=1):
    """The input capsule in every slot of `capsule_patches`, for `em_routing`.

    The input capsule `(h, w, i)` gets id `(h * W + w) * I + i`; slot
    `(oh, ow, k, i)` holds input `(oh * s + k // K, ow * s + k % K, i)`.

    Args:
        height: `H` of the input grid.
        width: `W` of the input grid.
        capsule_types: `I`, the capsule types per position.
        kernel_size: `K`.
        strides: `s`.

    Returns:
        An int32 array `(OH * OW, K * K * I)` (the `child_ids` of
        `em_routing` for votes `(B, OH * OW, K * K * I, O, D)`).

    Example:

    >>> ids = capsule_patch_ids(4, 4, 1, 3, strides=1)
    >>> ids.shape, ids[0].tolist()
    ((4, 9), [0, 1, 2, 4, 5, 6, 8, 9, 10])
    """
    capsule_types = _check_positive_int(capsule_types, "capsule_types")
    kernel_size, strides, out_height, out_width = _check_grid(
        kernel_size, strides, height, width
    )
    ids = np.arange(height * width * capsule_types).reshape(
        (height, width, capsule_types)
    )
    rows = strides * np.arange(out_height)
    columns = strides * np.arange(out_width)
    # ids[oh, ow, kr, kc, i] = ids of input (oh * s + kr, ow * s + kc, i).
    kernel = np.arange(kernel_size)
    patches = ids[
        (rows[:, None] + kernel[None, :])[:, None, :, None],
        (columns[:, None] + kernel[None, :])[None, :, None, :],
    ]
    return patches.reshape(out_height * out_width, -1).astype("int32")


def coordinate_addition(votes):
    """Add the scaled position of each receptive field to its votes.

    Hinton et al. add "the scaled coordinate (row, column) of the centre of
    the receptive field of each capsule to the first two elements of the
    right-hand column of its vote matrix": `((h + 0.5) / H, (w + 0.5) / W)`
    to the entries `[0, 3]` and `[1, 3]` of the 4 x 4 votes, so that the
    class capsules, whose transformation matrices are shared over positions,
    still see where a part is.

    Args:
        votes: `(B, H, W, *rest, 4, 4)`.

    Returns:
        The votes with the coordinates added, same shape.

    Example:

    >>> import numpy as np
    >>> votes = coordinate_addition(np.zeros((1, 2, 2, 4, 4)))
    >>> np.asarray(votes)[0, 1, 0, :2, 3].tolist()
    [0.75, 0.25]
    """
    votes = ops.convert_to_tensor(votes)
    shape = static_shape(votes)
    if len(shape) < 5 or shape[-2:] != (4, 4) or None in shape[1:3]:
        raise ValueError(
            "`votes` must have shape (batch, height, width, *rest, 4, 4) with "
            f"known height and width. Received: votes.shape={shape}"
        )
    height, width = shape[1:3]
    offsets = np.zeros((height, width, 4, 4))
    offsets[:, :, 0, 3] = ((np.arange(height) + 0.5) / height)[:, None]
    offsets[:, :, 1, 3] = ((np.arange(width) + 0.5) / width)[None, :]
    offsets = offsets.reshape((1, height, width) + (1,) * (len(shape) - 5) + (4, 4))
    return votes + ops.cast(offsets, votes.dtype)


__all__ = [
    "capsule_patch_ids",
    "capsule_patches",
    "coordinate_addition",
    "em_e_step",
    "em_m_step",
    "em_routing",
    "initial_responsibilities",
    "inverse_temperatures",
]
