"""Self-attention routing of Efficient-CapsNet (Mazzia et al., 2021)."""

import math

import keras
from keras import ops

from anysma.ops._validation import check_epsilon
from anysma.ops.norms import safe_root
from anysma.ops.squash import _compute_dtype
from anysma.ops.squash import efficient_squash


def self_attention_routing(
    predictions, log_priors=None, epsilon=1e-7, norm_epsilon=1e-7
):
    """Route prediction vectors by self-attention, in one non-iterative pass.

    With the prediction vectors `u[b, k, c]` (the vote of input capsule `c`
    for output capsule `k`, flattened to `D` values), every output capsule
    `k` forms the agreement matrix `A_k = U_k U_k^T / sqrt(D)` of its votes
    (`U_k` is `(C, D)`). The routing logits are its row sums,
    `a[b, k, c] = sum_c' <u[b, k, c], u[b, k, c']> / sqrt(D)`, computed as
    `<u[b, k, c], sum_c' u[b, k, c']> / sqrt(D)` without forming the
    `C x C` matrix. The coupling coefficients are
    `c[b, k, c] = softmax_k(a[b, :, c])`, over the output capsules, as in the
    official implementation. With the log priors `p[k, c]` (added after the
    softmax, as in the official implementation),
    `s[b, k] = sum_c u[b, k, c] (c[b, k, c] + p[k, c])` and
    `v = efficient_squash(s)`.

    Args:
        predictions: `(B, K, C, *A)`, the prediction vectors `u_hat`.
        log_priors: `None` (zeros) or priors that broadcast to `(B, K, C)`,
            e.g. a learned `(K, C)` weight.
        epsilon: Clamp of the squared norm inside `efficient_squash`.
        norm_epsilon: Clamp of the squared norm of the output lengths.

    Returns:
        A tuple `(outputs, similarities, lengths)`: the capsule outputs `v`
        `(B, K, *A)`; the similarities `sum_c c * a` (large = good, as those
        of `anysma.ops.dynamic_routing`) `(B, K)`; and the lengths `||v||`
        `(B, K)`, the class probabilities of an Efficient-CapsNet.

    Example:

    >>> import numpy as np
    >>> outputs, similarities, lengths = self_attention_routing(
    ...     np.random.rand(2, 10, 16, 16))
    >>> tuple(outputs.shape), tuple(lengths.shape)
    ((2, 10, 16), (2, 10))

    Reference:
        Mazzia, Salvetti and Chiaberge, "Efficient-CapsNet: capsule network
        with self-attention routing", Scientific Reports 11, 14634 (2021),
        section "Self-attention routing".
    """
    check_epsilon(epsilon)
    check_epsilon(norm_epsilon, "norm_epsilon")
    predictions = ops.convert_to_tensor(predictions)
    if "float" not in keras.backend.standardize_dtype(predictions.dtype):
        predictions = ops.cast(predictions, keras.config.floatx())
    shape = predictions.shape
    if len(shape) < 4:
        raise ValueError(
            "`predictions` must have the shape (batch, capsules, channels, "
            f"*atom) with at least one atom axis. Received: shape={shape}"
        )
    atom_shape = tuple(shape[3:])
    if any(dim is None for dim in atom_shape):
        raise ValueError(
            "The atom axes of `predictions` (axes 3 and up) must be known. "
            f"Received: shape={shape}"
        )
    dim = math.prod(atom_shape)
    dtype = predictions.dtype
    batch, capsules, channels = (
        ops.shape(predictions)[axis] if shape[axis] is None else shape[axis]
        for axis in range(3)
    )
    # Half precision is routed in float32: the logits sum C * D products.
    votes = ops.reshape(
        ops.cast(predictions, _compute_dtype(dtype)), (batch, capsules, channels, dim)
    )
    total = ops.sum(votes, axis=2, keepdims=True)
    logits = ops.sum(votes * total, axis=-1) / ops.cast(math.sqrt(dim), votes.dtype)
    if shape[1] == 1:
        # A softmax over one output capsule is 1 (Keras warns about it).
        coupling = ops.ones_like(logits)
    else:
        coupling = ops.softmax(logits, axis=1)
    weights = coupling
    if log_priors is not None:
        log_priors = ops.convert_to_tensor(log_priors)
        if not _broadcasts(tuple(log_priors.shape), tuple(shape[:3])):
            raise ValueError(
                "`log_priors` must broadcast to (batch, capsules, channels) = "
                f"{tuple(shape[:3])}, e.g. a (capsules, channels) weight. "
                f"Received: log_priors.shape={tuple(log_priors.shape)}"
            )
        weights = weights + ops.cast(log_priors, votes.dtype)
    summed = ops.sum(votes * ops.expand_dims(weights, -1), axis=2)
    outputs = efficient_squash(summed, axis=-1, epsilon=epsilon)
    lengths = safe_root(ops.sum(ops.square(outputs), axis=-1), 2, norm_epsilon)
    similarities = ops.sum(coupling * logits, axis=-1)
    outputs = ops.reshape(outputs, (batch, capsules) + atom_shape)
    return (
        ops.cast(outputs, dtype),
        ops.cast(similarities, dtype),
        ops.cast(lengths, dtype),
    )


def capsule_votes(inputs, kernel):
    """The prediction vectors `u[b, k, c] = W[k, c]^T x[b, c]`.

    Args:
        inputs: Input capsules `(B, C, D_in)`.
        kernel: One matrix per output and input capsule `(K, C, D_in, D)`.

    Returns:
        The votes `(B, K, C, D)`.

    Example:

    >>> import numpy as np
    >>> votes = capsule_votes(np.ones((2, 3, 4)), np.ones((5, 3, 4, 6)))
    >>> tuple(votes.shape)
    (2, 5, 3, 6)
    """
    inputs, kernel = ops.convert_to_tensor(inputs), ops.convert_to_tensor(kernel)
    if len(inputs.shape) != 3 or len(kernel.shape) != 4:
        raise ValueError(
            "`inputs` must be (batch, channels, input_dim) and `kernel` "
            "(capsules, channels, input_dim, dim). Received: "
            f"inputs.shape={tuple(inputs.shape)}, kernel.shape={tuple(kernel.shape)}"
        )
    for axis, meaning in ((1, "channels"), (2, "input_dim")):
        if None not in (inputs.shape[axis], kernel.shape[axis]) and (
            inputs.shape[axis] != kernel.shape[axis]
        ):
            raise ValueError(
                f"`inputs` and `kernel` need the same {meaning} (axis {axis} "
                f"of both). Received: inputs.shape={tuple(inputs.shape)}, "
                f"kernel.shape={tuple(kernel.shape)}"
            )
    return ops.einsum("bci,kcid->bkcd", inputs, kernel)


def _broadcasts(shape, target):
    """Whether `shape` broadcasts to `target` (unknown sizes match anything)."""
    if len(shape) > len(target):
        return False
    for size, wanted in zip(reversed(shape), reversed(target)):
        if size not in (1, None) and wanted is not None and size != wanted:
            return False
    return True
