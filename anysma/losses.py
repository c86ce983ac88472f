"""Losses for prototype-based learning (LVQ) and capsule networks.

Every loss exists as a stateless function `loss(y_true, y_pred, ...)` and as
a `keras.losses.Loss` subclass that stores the options; both are registered
for Keras serialization, so models compiled with them save to and load from
`.keras` files without `custom_objects`.

`y_true` holds one of two label formats, checked against `y_pred` (static
shapes, so also in compiled and traced code) before anything is computed:

- one-hot labels of `y_pred`'s shape (one column per class), any dtype;
- integer class ids of shape `y_pred.shape[:-1]` or `y_pred.shape[:-1] + (1,)`
  (Keras' rule for sparse labels, which `metrics=["accuracy"]` follows, too).
  They are converted to one-hot labels; ids outside `[0, num_classes)` give a
  row of zeros. Float labels of these shapes raise a `ValueError`: they are
  never taken for class ids.

Labels of any other shape raise a `ValueError` naming both shapes. Keras casts
`y_true` to float before a loss *function* passed to `compile` sees it, so
train on integer class ids with the loss classes (e.g. `GlvqLoss()`).
`rslvq_loss` and `RSLVQLoss` with `prototype_labels` get one value per
prototype: there the classes are `0, ..., max(prototype_labels)`, and one-hot
labels may have further columns (classes without prototypes).

What `y_pred` holds depends on the loss:

| loss                             | `y_pred`                               |
|----------------------------------|----------------------------------------|
| `glvq_loss`, `GlvqLoss`          | flipped probabilities, e.g. `flip(d)`  |
| `glvq_loss_over_dissimilarities` | dissimilarities, one per class         |
| `rslvq_loss`, `RSLVQLoss`        | dissimilarities, one per prototype     |
| `margin_loss`, `spread_loss`     | class probabilities or activations     |
| `cbc_loss`, `CBCLoss`            | class probabilities                    |
| the two divergences              | probabilities or possibility vectors   |

All losses reduce the last axis and return one value per sample. The
functions compute half-precision inputs in `float32` (their epsilons are
below the `float16` resolution) and return `float32` then.

`get(identifier)` resolves the anysma names and falls back to
`keras.losses.get`, so `"categorical_crossentropy"` keeps working.
"""

import numbers

import keras
import numpy as np
from keras import ops

from anysma.api_export import anysma_export
from anysma.ops._validation import static_shape
from anysma.ops.competition import class_log_posterior
from anysma.ops.reductions import selected_max
from anysma.ops.reductions import selected_min
from anysma.utils.validation import check_number

_HALF_DTYPES = ("float16", "bfloat16")
SQUASH_FUNCTIONS = ("identity", "sigmoid", "relu")

# === Argument checks ===


def _check_squashing(squash_func, beta, margin):
    if isinstance(squash_func, dict):  # A serialized callable (from a config).
        squash_func = keras.saving.deserialize_keras_object(squash_func)
    valid = squash_func is None or callable(squash_func)
    if isinstance(squash_func, str):
        valid = squash_func in SQUASH_FUNCTIONS
        if not valid:
            try:  # Any Keras activation by name, e.g. "tanh".
                keras.activations.get(squash_func)
                valid = True
            except ValueError:
                pass
    if not valid:
        raise ValueError(
            f"`squash_func` must be None, one of {list(SQUASH_FUNCTIONS)}, the "
            "name of a Keras activation or a callable written with "
            f"`keras.ops`. Received: squash_func={squash_func!r}"
        )
    return (
        squash_func,
        check_number(beta, "beta", minimum=0, include_minimum=False),
        check_number(margin, "margin", minimum=0, maximum=1, include_maximum=False),
    )


def _check_prototype_labels(prototype_labels):
    if prototype_labels is None:
        return None
    if isinstance(prototype_labels, np.ndarray):
        prototype_labels = prototype_labels.tolist()
    if (
        not isinstance(prototype_labels, (list, tuple))
        or len(prototype_labels) == 0
        or any(
            isinstance(label, bool)
            or not isinstance(label, numbers.Integral)
            or label < 0
            for label in prototype_labels
        )
    ):
        raise ValueError(
            "`prototype_labels` must be None or a non-empty list of non-negative "
            "integers (the class index of each prototype). "
            f"Received: prototype_labels={prototype_labels!r}"
        )
    return [int(label) for label in prototype_labels]


# === Helpers ===


def _to_float(y_true, y_pred):
    """Cast both to the float dtype of `y_pred`; half precision to float32."""
    y_pred = ops.convert_to_tensor(y_pred)
    dtype = keras.backend.standardize_dtype(y_pred.dtype)
    if "float" not in dtype:
        dtype = keras.config.floatx()
    if dtype in _HALF_DTYPES:
        dtype = "float32"
    return ops.cast(y_true, dtype), ops.cast(y_pred, dtype)


def _shapes_match(shape, other):
    """Whether two static shapes agree where both dims are known."""
    return len(shape) == len(other) and all(
        a is None or b is None or a == b for a, b in zip(shape, other)
    )


def _standardize_labels(y_true, y_pred, prototype_labels=None, hint=""):
    """Check `y_true` against `y_pred` and return it as one-hot labels.

    Integer class ids of shape `y_pred.shape[:-1]`, or with a last axis of 1
    where there is more than one class, become one-hot labels (Keras' rule
    for sparse labels); any other `y_true` must be one-hot with `y_pred`'s
    shape. Only static shapes are compared (unknown dims are skipped), so
    this works on symbolic and traced tensors of every backend.

    Args:
        y_true: The labels.
        y_pred: The predictions; its last axis is the class axis.
        prototype_labels: `None`, or the (checked) class of every entry of
            `y_pred`'s last axis: then the classes are
            `0, ..., max(prototype_labels)`, and one-hot labels need at least
            that many columns (further ones are classes without prototypes).
        hint: A sentence put in front of the error message.

    Returns:
        `y_true` unchanged (one-hot labels) or the one-hot form of the ids.
    """
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    true_shape = static_shape(y_true)
    pred_shape = static_shape(y_pred)
    true_dtype = keras.backend.standardize_dtype(y_true.dtype)
    if prototype_labels is None:
        num_classes = pred_shape[-1] if pred_shape else None
    else:
        num_classes = max(prototype_labels) + 1
    has_id_rank = len(true_shape) == len(pred_shape) - 1
    has_id_axis = (
        len(true_shape) == len(pred_shape) > 0
        and true_shape[-1] == 1
        and num_classes is not None
        and num_classes > 1
    )
    received = (
        f"Received: y_true.shape={true_shape}, y_true.dtype={true_dtype}, "
        f"y_pred.shape={pred_shape}"
    )
    if prototype_labels is None:
        expected = (
            f"{hint}`y_true` must be one-hot labels of `y_pred`'s shape (one "
            "column per class) or integer class ids of shape "
            "`y_pred.shape[:-1]` or `y_pred.shape[:-1] + (1,)`."
        )
    else:
        expected = (
            f"{hint}`y_true` must be one-hot labels of `y_pred`'s leading shape "
            f"with at least max(prototype_labels) + 1 = {num_classes} columns, "
            "or integer class ids of shape `y_pred.shape[:-1]` or "
            "`y_pred.shape[:-1] + (1,)`."
        )

    if has_id_rank or has_id_axis:
        if "int" not in true_dtype:
            # Not rounded to ids: float labels of these shapes may as well be
            # soft or binary targets, and traced values cannot be checked.
            raise ValueError(
                f"{expected} Integer class ids are accepted, but these labels "
                f"are {true_dtype}: cast them to an integer dtype or one-hot "
                "encode them. (Keras casts the labels to float before a loss "
                "function passed to `compile` sees them; compile with the loss "
                "class, e.g. `GlvqLoss()`, to train on integer class ids.) "
                f"{received}"
            )
        class_ids = y_true if has_id_rank else ops.squeeze(y_true, axis=-1)
        if not _shapes_match(static_shape(class_ids), pred_shape[:-1]):
            raise ValueError(f"{expected} {received}")
        if num_classes is None:
            raise ValueError(
                "Integer class ids need a known number of classes, the last "
                f"axis of `y_pred`. {received}"
            )
        # Comparing with every class index instead of `ops.one_hot`: ids
        # outside [0, num_classes) give a row of zeros on every backend
        # (torch's `one_hot` raises for ids >= num_classes), which is also
        # what one-hot labels of a class without prototypes give in
        # `rslvq_loss`.
        class_ids = ops.expand_dims(ops.cast(class_ids, "int32"), axis=-1)
        classes = ops.arange(num_classes, dtype="int32")
        return ops.cast(ops.equal(class_ids, classes), "float32")

    if prototype_labels is None:
        valid = _shapes_match(true_shape, pred_shape)
    else:
        valid = len(true_shape) == len(pred_shape) > 0 and _shapes_match(
            true_shape[:-1], pred_shape[:-1]
        )
        if valid and true_shape[-1] is not None and true_shape[-1] < num_classes:
            raise ValueError(
                f"`prototype_labels` must be class indices below {true_shape[-1]}"
                ", the number of columns of the one-hot `y_true`. Received: "
                f"prototype_labels={prototype_labels!r}, "
                f"y_true.shape={true_shape}, y_pred.shape={pred_shape}"
            )
    if not valid:
        raise ValueError(f"{expected} {received}")
    return y_true


def _is_correct_class(y_true):
    return ops.greater(y_true, 0.5)


def _safe_divide(numerator, denominator):
    """`numerator / denominator`, and 0 (with a finite gradient) where it is 0/0.

    Dividing by a substituted 1 (instead of masking the quotient only) keeps
    the untaken branch of `where` finite, so its gradient is 0 and not NaN.
    """
    nonzero = ops.not_equal(denominator, 0)
    safe_denominator = ops.where(nonzero, denominator, ops.ones_like(denominator))
    return ops.where(nonzero, numerator / safe_denominator, ops.zeros_like(numerator))


def _squash(mu, squash_func, beta, margin):
    shifted = mu + margin
    if squash_func == "sigmoid":
        return ops.sigmoid(beta * shifted)
    if squash_func == "relu":
        return ops.relu(shifted)
    if callable(squash_func):
        return squash_func(shifted)
    if isinstance(squash_func, str) and squash_func != "identity":
        return keras.activations.get(squash_func)(shifted)
    return shifted


def _serialize_squashing(squash_func):
    """`squash_func` in a JSON-safe form for `get_config`.

    Names stay names; a callable must be serializable (a Keras activation or
    a function registered with `keras.saving.register_keras_serializable`).
    A lambda cannot be saved: say so when saving, not when training.
    """
    if squash_func is None or isinstance(squash_func, str):
        return squash_func
    if getattr(squash_func, "__name__", "") == "<lambda>":
        raise ValueError(
            "A loss with a lambda as `squash_func` cannot be saved: use a "
            "named function registered with "
            "`@keras.saving.register_keras_serializable()`, a Keras activation "
            f"name or one of {list(SQUASH_FUNCTIONS)}. "
            f"Received: squash_func={squash_func!r}"
        )
    return keras.saving.serialize_keras_object(squash_func)


def _standardize_rslvq_labels(y_true, y_pred, prototype_labels):
    """`_standardize_labels` for `y_pred` with one value per prototype."""
    if prototype_labels is None:
        return _standardize_labels(
            y_true,
            y_pred,
            hint="Without `prototype_labels`, prototype i has class i, so "
            "`y_pred` needs one dissimilarity per class. ",
        )
    proto_number = ops.convert_to_tensor(y_pred).shape[-1]
    if proto_number is not None and proto_number != len(prototype_labels):
        raise ValueError(
            "`prototype_labels` needs one label per prototype (last axis of "
            f"`y_pred`, {proto_number}). Received: "
            f"prototype_labels={prototype_labels!r}"
        )
    return _standardize_labels(y_true, y_pred, prototype_labels)


# === Loss functions ===


def _best_of_groups(values, is_correct, best="max", keepdims=False):
    """The best `values` of the correct and of the wrong entries, per row.

    `best` is `"max"` (activations, probabilities) or `"min"` (distances).
    Each group's best entry gets the whole gradient (`selected_max` /
    `selected_min`). The other group is masked with a filler strictly worse
    than every entry and without gradient, so a tie between the groups
    (e.g. equal prototypes, or activations that all underflow to 0) cannot
    move the gradient of one group's best to an entry of the other.

    Returns:
        A tuple `(correct, wrong)`.
    """
    if best == "max":
        select = selected_max
        filler = ops.stop_gradient(ops.min(values, axis=-1, keepdims=True)) - 1.0
    else:
        select = selected_min
        filler = ops.stop_gradient(ops.max(values, axis=-1, keepdims=True)) + 1.0
    correct = select(ops.where(is_correct, values, filler), -1, keepdims)
    wrong = select(ops.where(is_correct, filler, values), -1, keepdims)
    return correct, wrong


@anysma_export
def glvq_loss(y_true, y_pred, squash_func=None, beta=10.0, margin=0.0):
    """GLVQ cost on flipped probabilities (the anysma formulation of GLVQ).

    With `p+` the probability of the correct class and `p-` the highest
    probability among the wrong classes:

    `mu = (p- - p+) / (2 max p + 2 min p - p- - p+)`

    If `y_pred = flip(d)` (or `flipmax(d)`) for dissimilarities `d`, this is
    exactly the classic GLVQ relative distance difference
    `(d+ - d-) / (d+ + d- + 2 lower_bound)`, because both flips are affine in
    `d`. `mu` lies in `(-1, 1)` and is negative for correct classifications.
    Where the denominator is 0 (only possible if `p- = p+ = max p` and
    `min p = 0`) the cost is 0.

    Args:
        y_true: One-hot labels `(..., K)` or integer class ids `(...)` or
            `(..., 1)`.
        y_pred: Flipped probabilities `(..., K)`.
        squash_func: `None` or `"identity"` (return `mu + margin`),
            `"sigmoid"` (`sigmoid(beta (mu + margin))`, Sato and Yamada's
            squashing) or `"relu"` (`relu(mu + margin)`: samples classified
            correctly with a relative margin stop contributing); or, as in
            the original, any other squashing `f(mu + margin)`: the name of
            a Keras activation (e.g. `"tanh"`) or a callable written with
            `keras.ops` (to save the loss class in a `.keras` file, a
            function registered with
            `keras.saving.register_keras_serializable`).
        beta: Slope of the sigmoid, > 0. Unused by the other squashings.
            The default 10 makes the sigmoid non-linear on `mu`'s range
            `(-1, 1)`; with 1 it is almost linear there.
        margin: A number in `[0, 1)` added to `mu` before squashing.

    Returns:
        The (squashed) cost per sample, shape `(...)`.

    Example:

    >>> import numpy as np
    >>> from anysma.probability_transformations import flip
    >>> distances = np.array([[1.0, 3.0]])
    >>> y_true = np.array([[1.0, 0.0]])
    >>> print(np.round(np.asarray(glvq_loss(y_true, flip(distances))), 3))
    [-0.5]

    Reference:
        Sato and Yamada, "Generalized learning vector quantization",
        NIPS 1995.
    """
    squash_func, beta, margin = _check_squashing(squash_func, beta, margin)
    y_true = _standardize_labels(y_true, y_pred)
    y_true, y_pred = _to_float(y_true, y_pred)
    is_correct = _is_correct_class(y_true)
    highest = selected_max(y_pred, axis=-1)
    lowest = selected_min(y_pred, axis=-1, keepdims=True)
    correct, best_wrong = _best_of_groups(y_pred, is_correct, "max")
    lowest = ops.squeeze(lowest, -1)
    denominator = 2 * highest + 2 * lowest - best_wrong - correct
    mu = _safe_divide(best_wrong - correct, denominator)
    return _squash(mu, squash_func, beta, margin)


@anysma_export
def glvq_loss_over_dissimilarities(
    y_true, y_pred, squash_func=None, beta=10.0, margin=0.0
):
    """Classic GLVQ cost on dissimilarities, one per class.

    `mu = (d+ - d-) / (d+ + d-)` with `d+` the dissimilarity of the correct
    class and `d-` the smallest dissimilarity of a wrong class. Where
    `d+ = d- = 0` the cost is 0, with a finite gradient.

    Args:
        y_true: One-hot labels `(..., K)` or integer class ids `(...)` or
            `(..., 1)`.
        y_pred: Non-negative dissimilarities `(..., K)`, e.g. the distances
            to the closest prototype of each class.
        squash_func: `None`, `"identity"`, `"sigmoid"`, `"relu"`, a Keras
            activation name or a callable; see `glvq_loss`.
        beta: Slope of the sigmoid, > 0.
        margin: A number in `[0, 1)` added to `mu` before squashing.

    Returns:
        The (squashed) cost per sample, shape `(...)`.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[1.0, 0.0, 0.0]])
    >>> distances = np.array([[1.0, 3.0, 2.0]])
    >>> loss = glvq_loss_over_dissimilarities(y_true, distances)
    >>> print(np.round(np.asarray(loss), 3))
    [-0.333]

    Reference:
        Sato and Yamada, "Generalized learning vector quantization",
        NIPS 1995.
    """
    squash_func, beta, margin = _check_squashing(squash_func, beta, margin)
    y_true = _standardize_labels(y_true, y_pred)
    y_true, y_pred = _to_float(y_true, y_pred)
    is_correct = _is_correct_class(y_true)
    correct, closest_wrong = _best_of_groups(y_pred, is_correct, "min")
    mu = _safe_divide(correct - closest_wrong, correct + closest_wrong)
    return _squash(mu, squash_func, beta, margin)


@anysma_export
def margin_loss(y_true, y_pred, lamb=0.5, margin=0.1):
    """Margin loss of capsule networks.

    `sum_k [y relu(1 - margin - p)^2 + lamb (1 - y) relu(p - margin)^2]`.
    The defaults are Sabour et al.'s `m+ = 0.9`, `m- = 0.1`, `lambda = 0.5`.

    Args:
        y_true: One-hot labels `(..., K)` or integer class ids `(...)` or
            `(..., 1)`.
        y_pred: Class probabilities (e.g. capsule lengths) `(..., K)`.
        lamb: Down-weighting of the wrong classes, >= 0.
        margin: A number in `[0, 0.5)`: the correct class should exceed
            `1 - margin`, the wrong classes should stay below `margin`.

    Returns:
        The loss per sample, shape `(...)`.

    Example:

    >>> import numpy as np
    >>> loss = margin_loss(np.array([[1.0, 0.0]]), np.array([[0.8, 0.3]]))
    >>> print(np.round(np.asarray(loss), 3))
    [0.03]

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NIPS 2017.
    """
    lamb = check_number(lamb, "lamb", minimum=0)
    margin = check_number(
        margin, "margin", minimum=0, maximum=0.5, include_maximum=False
    )
    y_true = _standardize_labels(y_true, y_pred)
    y_true, y_pred = _to_float(y_true, y_pred)
    present = y_true * ops.square(ops.relu(1 - margin - y_pred))
    absent = lamb * (1 - y_true) * ops.square(ops.relu(y_pred - margin))
    return ops.sum(present + absent, axis=-1)


@anysma_export
def spread_loss(y_true, y_pred, margin=0.2):
    """Spread loss of matrix capsules: `sum_{k != t} relu(m - (p_t - p_k))^2`.

    Every wrong class whose activation is closer than `margin` to the
    activation `p_t` of the correct class `t` is penalized. Hinton et al.
    increase the margin from 0.2 to 0.9 during training; see
    `anysma.callbacks.SpreadLossMarginScheduler`.

    Args:
        y_true: One-hot labels `(..., K)` or integer class ids `(...)` or
            `(..., 1)`.
        y_pred: Class activations `(..., K)`.
        margin: A number >= 0.

    Returns:
        The loss per sample, shape `(...)`.

    Example:

    >>> import numpy as np
    >>> loss = spread_loss(np.array([[1.0, 0.0]]), np.array([[0.6, 0.5]]))
    >>> print(np.round(np.asarray(loss), 3))
    [0.01]

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing",
        ICLR 2018.
    """
    margin = check_number(margin, "margin", minimum=0)
    y_true = _standardize_labels(y_true, y_pred)
    y_true, y_pred = _to_float(y_true, y_pred)
    is_correct = _is_correct_class(y_true)
    correct, _ = _best_of_groups(y_pred, is_correct, "max", keepdims=True)
    penalties = ops.square(ops.relu(margin - (correct - y_pred)))
    return ops.sum(ops.where(is_correct, ops.zeros_like(penalties), penalties), -1)


@anysma_export
def cbc_loss(y_true, y_pred, margin=0.3):
    """Margin loss of classification-by-components on class probabilities.

    `relu(max_{k != t} p_k - p_t + margin)`: the probability `p_t` of the
    correct class `t` should exceed that of every other class by at least
    `margin`. Unlike `margin_loss` (Sabour et al.), which pushes every
    probability towards 0 or 1 separately, only the gap counts, as in the
    CBC paper.

    Args:
        y_true: One-hot labels `(..., K)` or integer class ids `(...)` or
            `(..., 1)`.
        y_pred: Class probabilities `(..., K)`, e.g. of `anysma.models.CBC`.
        margin: A number >= 0 (the paper uses 0.3).

    Returns:
        The loss per sample, shape `(...)`.

    Example:

    >>> import numpy as np
    >>> loss = cbc_loss(np.array([[1.0, 0.0]]), np.array([[0.6, 0.5]]))
    >>> print(np.round(np.asarray(loss), 3))
    [0.2]

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019, Eq. (2) with `phi = relu`.
    """
    margin = check_number(margin, "margin", minimum=0)
    y_true = _standardize_labels(y_true, y_pred)
    y_true, y_pred = _to_float(y_true, y_pred)
    correct, wrong = _best_of_groups(y_pred, _is_correct_class(y_true), "max")
    return ops.relu(wrong - correct + margin)


@anysma_export
def generalized_kullback_leibler_divergence(y_true, y_pred, epsilon=1e-7):
    """Generalized Kullback-Leibler divergence `sum [y log(y / p) - y + p]`.

    Unlike the Kullback-Leibler divergence it is defined for unnormalized
    vectors, so it also applies to possibility vectors (e.g. `flip` outputs).
    `y` and `p` are clamped to at least `epsilon`.

    Args:
        y_true: Targets `(..., K)`, e.g. one-hot labels, or integer class
            ids `(...)` or `(..., 1)` (converted to one-hot labels).
        y_pred: Probabilities or possibilities `(..., K)`.
        epsilon: Lower clamp, > 0.

    Returns:
        The divergence per sample, shape `(...)`.

    Example:

    >>> import numpy as np
    >>> loss = generalized_kullback_leibler_divergence(
    ...     np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])
    ... )
    >>> print(np.round(np.asarray(loss), 3))
    [0.693]

    Reference:
        Cichocki, Zdunek, Phan and Amari, "Nonnegative matrix and tensor
        factorizations", Wiley 2009.
    """
    epsilon = check_number(epsilon, "epsilon", minimum=0, include_minimum=False)
    y_true = _standardize_labels(y_true, y_pred)
    y_true, y_pred = _to_float(y_true, y_pred)
    y_true = ops.maximum(y_true, epsilon)
    y_pred = ops.maximum(y_pred, epsilon)
    # log(y) - log(p) instead of log(y / p): the quotient can overflow.
    divergence = y_true * (ops.log(y_true) - ops.log(y_pred)) - y_true + y_pred
    return ops.sum(divergence, axis=-1)


@anysma_export
def itakura_saito_divergence(y_true, y_pred, epsilon=1e-7):
    """Itakura-Saito divergence `sum [log(p / y) + y / p - 1]`.

    `y` and `p` are clamped to at least `epsilon`.

    Args:
        y_true: Targets `(..., K)`, e.g. one-hot labels, or integer class
            ids `(...)` or `(..., 1)` (converted to one-hot labels).
        y_pred: Probabilities or possibilities `(..., K)`.
        epsilon: Lower clamp, > 0.

    Returns:
        The divergence per sample, shape `(...)`.

    Example:

    >>> import numpy as np
    >>> loss = itakura_saito_divergence(np.array([[1.0]]), np.array([[0.5]]))
    >>> print(np.round(np.asarray(loss), 3))
    [0.307]

    Reference:
        Itakura and Saito, "Analysis synthesis telephony based on the maximum
        likelihood method", 1968.
    """
    epsilon = check_number(epsilon, "epsilon", minimum=0, include_minimum=False)
    y_true = _standardize_labels(y_true, y_pred)
    y_true, y_pred = _to_float(y_true, y_pred)
    y_true = ops.maximum(y_true, epsilon)
    y_pred = ops.maximum(y_pred, epsilon)
    divergence = ops.log(y_pred) - ops.log(y_true) + y_true / y_pred - 1
    return ops.sum(divergence, axis=-1)


@anysma_export
def rslvq_loss(y_true, y_pred, prototype_labels=None, beta=1.0):
    """Robust soft LVQ cost: negative log-likelihood of the correct class.

    The prototypes' posteriors are `softmax(-beta d)`; the class posterior is
    the sum over the prototypes of that class, and the cost is its negative
    logarithm:

    `-log sum_{j: c(j) = t} softmax(-beta d)_j`

    It is computed as the difference of two log-sum-exps
    (`anysma.ops.class_log_posterior`), so it stays finite for large
    distances. With squared Euclidean distances and
    `beta = 1 / (2 sigma^2)` this is Seo and Obermayer's RSLVQ.

    Args:
        y_true: One-hot labels `(..., K)` or integer class ids `(...)` or
            `(..., 1)`. With `prototype_labels`, `K` may exceed the largest
            prototype label (classes without prototypes) and the ids are
            one-hot encoded over `max(prototype_labels) + 1` classes.
        y_pred: Dissimilarities to the prototypes `(..., P)`.
        prototype_labels: The class index of every prototype (a list of `P`
            non-negative integers below `K`). `None` means that prototype `i`
            has class `i` (then `P` must equal `K`).
        beta: Inverse temperature, > 0.

    Returns:
        The cost per sample, shape `(...)`.

    Example:

    >>> import numpy as np
    >>> y_true = np.array([[1.0, 0.0]])
    >>> distances = np.array([[0.0, 1.0, 0.5]])
    >>> loss = rslvq_loss(y_true, distances, prototype_labels=[0, 1, 0])
    >>> print(np.round(np.asarray(loss), 3))
    [0.206]

    Reference:
        Seo and Obermayer, "Soft learning vector quantization", Neural
        Computation 15(7), 2003.
    """
    prototype_labels = _check_prototype_labels(prototype_labels)
    beta = check_number(beta, "beta", minimum=0, include_minimum=False)
    y_true = _standardize_rslvq_labels(y_true, y_pred, prototype_labels)
    y_true, y_pred = _to_float(y_true, y_pred)
    if prototype_labels is None:
        membership = y_true
    else:
        # membership[..., j] = y_true[..., label of prototype j].
        membership = ops.take(y_true, prototype_labels, axis=-1)
    # One group per sample: the prototypes of its correct class(es).
    correct = ops.expand_dims(_is_correct_class(membership), -1)
    return -ops.squeeze(class_log_posterior(y_pred, correct, beta=beta), -1)


# === Loss classes ===


class _OptionsLoss(keras.losses.Loss):
    """A `Loss` that calls `self._function` with the options it stores.

    Subclasses set `_function` and implement `_options()`, the keyword
    arguments of the function; these are also their configuration.
    """

    _function = None

    def __init__(self, reduction, name, dtype):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        # `Loss.get_config` drops `dtype`; keep a JSON-safe form of it.
        if dtype is None or isinstance(dtype, str):
            self._dtype_config = dtype
        else:
            self._dtype_config = keras.dtype_policies.serialize(
                keras.dtype_policies.get(dtype)
            )

    def _options(self):
        raise NotImplementedError

    def _standardize_labels(self, y_true, y_pred):
        return _standardize_labels(y_true, y_pred)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # `Loss.__call__` casts `y_true` to the loss dtype, which would turn
        # integer class ids into float labels that the function rejects.
        y_true = self._standardize_labels(y_true, y_pred)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return type(self)._function(y_true, y_pred, **self._options())

    def get_config(self):
        options = self._options()
        if "squash_func" in options:
            options["squash_func"] = _serialize_squashing(options["squash_func"])
        return {**super().get_config(), "dtype": self._dtype_config, **options}


@anysma_export
class GlvqLoss(_OptionsLoss):
    """GLVQ cost on flipped probabilities; the class form of `glvq_loss`.

    `y_true` holds one-hot labels or integer class ids (module docstring).

    Classic GLVQ is a model whose output is `flip(distances)`, trained with
    this loss. `GLVQLoss` is an alias of this class.

    Args:
        squash_func: `None`, `"identity"`, `"sigmoid"`, `"relu"`, a Keras
            activation name or a callable; see `glvq_loss`.
        beta: Slope of the sigmoid, > 0.
        margin: A number in `[0, 1)` added to `mu` before squashing.
        reduction: Reduction over the samples, see `keras.losses.Loss`.
        name: Name of the loss.
        dtype: Dtype of the loss computation, see `keras.losses.Loss`.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile(loss=GlvqLoss(squash_func="sigmoid"), optimizer="sgd")
    """

    _function = glvq_loss

    def __init__(
        self,
        squash_func=None,
        beta=10.0,
        margin=0.0,
        reduction="sum_over_batch_size",
        name="glvq_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.squash_func, self.beta, self.margin = _check_squashing(
            squash_func, beta, margin
        )

    def _options(self):
        return {
            "squash_func": self.squash_func,
            "beta": self.beta,
            "margin": self.margin,
        }


GLVQLoss = GlvqLoss


@anysma_export
class GlvqLossOverDissimilarities(_OptionsLoss):
    """Classic GLVQ cost on dissimilarities; see `glvq_loss_over_dissimilarities`.

    `y_true` holds one-hot labels or integer class ids (module docstring).

    Args:
        squash_func: `None`, `"identity"`, `"sigmoid"`, `"relu"`, a Keras
            activation name or a callable; see `glvq_loss`.
        beta: Slope of the sigmoid, > 0.
        margin: A number in `[0, 1)` added to `mu` before squashing.
        reduction: Reduction over the samples, see `keras.losses.Loss`.
        name: Name of the loss.
        dtype: Dtype of the loss computation, see `keras.losses.Loss`.
    """

    _function = glvq_loss_over_dissimilarities

    def __init__(
        self,
        squash_func=None,
        beta=10.0,
        margin=0.0,
        reduction="sum_over_batch_size",
        name="glvq_loss_over_dissimilarities",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.squash_func, self.beta, self.margin = _check_squashing(
            squash_func, beta, margin
        )

    def _options(self):
        return {
            "squash_func": self.squash_func,
            "beta": self.beta,
            "margin": self.margin,
        }


@anysma_export
class MarginLoss(_OptionsLoss):
    """Margin loss of capsule networks; the class form of `margin_loss`.

    `y_true` holds one-hot labels or integer class ids (module docstring).

    Args:
        lamb: Down-weighting of the wrong classes, >= 0.
        margin: A number in `[0, 0.5)`.
        reduction: Reduction over the samples, see `keras.losses.Loss`.
        name: Name of the loss.
        dtype: Dtype of the loss computation, see `keras.losses.Loss`.
    """

    _function = margin_loss

    def __init__(
        self,
        lamb=0.5,
        margin=0.1,
        reduction="sum_over_batch_size",
        name="margin_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.lamb = check_number(lamb, "lamb", minimum=0)
        self.margin = check_number(
            margin, "margin", minimum=0, maximum=0.5, include_maximum=False
        )

    def _options(self):
        return {"lamb": self.lamb, "margin": self.margin}


@anysma_export
class SpreadLoss(_OptionsLoss):
    """Spread loss of matrix capsules; the class form of `spread_loss`.

    `y_true` holds one-hot labels or integer class ids (module docstring).

    `margin` can be changed between epochs (it is validated on assignment);
    `anysma.callbacks.SpreadLossMarginScheduler` does that and makes the
    compiled training step pick up the new value.

    Args:
        margin: A number >= 0.
        reduction: Reduction over the samples, see `keras.losses.Loss`.
        name: Name of the loss.
        dtype: Dtype of the loss computation, see `keras.losses.Loss`.
    """

    _function = spread_loss

    def __init__(
        self,
        margin=0.2,
        reduction="sum_over_batch_size",
        name="spread_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.margin = margin

    @property
    def margin(self):
        return self._margin

    @margin.setter
    def margin(self, value):
        self._margin = check_number(value, "margin", minimum=0)

    def _options(self):
        return {"margin": self.margin}


@anysma_export
class CBCLoss(_OptionsLoss):
    """Margin loss of classification-by-components; the class of `cbc_loss`.

    `y_true` holds one-hot labels or integer class ids (module docstring).

    Args:
        margin: A number >= 0.
        reduction: Reduction over the samples, see `keras.losses.Loss`.
        name: Name of the loss.
        dtype: Dtype of the loss computation, see `keras.losses.Loss`.
    """

    _function = cbc_loss

    def __init__(
        self, margin=0.3, reduction="sum_over_batch_size", name="cbc_loss", dtype=None
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.margin = check_number(margin, "margin", minimum=0)

    def _options(self):
        return {"margin": self.margin}


@anysma_export
class GeneralizedKullbackLeiblerDivergence(_OptionsLoss):
    """Generalized Kullback-Leibler divergence; see the function form.

    `y_true` holds one-hot labels or integer class ids (module docstring).

    Args:
        epsilon: Lower clamp of both inputs, > 0.
        reduction: Reduction over the samples, see `keras.losses.Loss`.
        name: Name of the loss.
        dtype: Dtype of the loss computation, see `keras.losses.Loss`.
    """

    _function = generalized_kullback_leibler_divergence

    def __init__(
        self,
        epsilon=1e-7,
        reduction="sum_over_batch_size",
        name="generalized_kullback_leibler_divergence",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.epsilon = check_number(
            epsilon, "epsilon", minimum=0, include_minimum=False
        )

    def _options(self):
        return {"epsilon": self.epsilon}


@anysma_export
class ItakuraSaitoDivergence(_OptionsLoss):
    """Itakura-Saito divergence; see `itakura_saito_divergence`.

    `y_true` holds one-hot labels or integer class ids (module docstring).

    Args:
        epsilon: Lower clamp of both inputs, > 0.
        reduction: Reduction over the samples, see `keras.losses.Loss`.
        name: Name of the loss.
        dtype: Dtype of the loss computation, see `keras.losses.Loss`.
    """

    _function = itakura_saito_divergence

    def __init__(
        self,
        epsilon=1e-7,
        reduction="sum_over_batch_size",
        name="itakura_saito_divergence",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.epsilon = check_number(
            epsilon, "epsilon", minimum=0, include_minimum=False
        )

    def _options(self):
        return {"epsilon": self.epsilon}


@anysma_export
class RSLVQLoss(_OptionsLoss):
    """Robust soft LVQ cost on prototype dissimilarities; see `rslvq_loss`.

    `y_true` holds one-hot labels or integer class ids (module docstring).

    `RslvqLoss` is an alias of this class.

    Args:
        prototype_labels: The class index of every prototype, or `None`
            (prototype `i` has class `i`).
        beta: Inverse temperature, > 0.
        reduction: Reduction over the samples, see `keras.losses.Loss`.
        name: Name of the loss.
        dtype: Dtype of the loss computation, see `keras.losses.Loss`.

    Example:

    >>> loss = RSLVQLoss(prototype_labels=[0, 0, 1, 1], beta=0.5)
    """

    _function = rslvq_loss

    def __init__(
        self,
        prototype_labels=None,
        beta=1.0,
        reduction="sum_over_batch_size",
        name="rslvq_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.prototype_labels = _check_prototype_labels(prototype_labels)
        self.beta = check_number(beta, "beta", minimum=0, include_minimum=False)

    def _options(self):
        return {"prototype_labels": self.prototype_labels, "beta": self.beta}

    def _standardize_labels(self, y_true, y_pred):
        return _standardize_rslvq_labels(y_true, y_pred, self.prototype_labels)


RslvqLoss = RSLVQLoss

# === Lookup and serialization ===

ALL_OBJECTS = {
    "GlvqLoss": GlvqLoss,
    "GLVQLoss": GLVQLoss,
    "GlvqLossOverDissimilarities": GlvqLossOverDissimilarities,
    "MarginLoss": MarginLoss,
    "SpreadLoss": SpreadLoss,
    "CBCLoss": CBCLoss,
    "GeneralizedKullbackLeiblerDivergence": GeneralizedKullbackLeiblerDivergence,
    "ItakuraSaitoDivergence": ItakuraSaitoDivergence,
    "RSLVQLoss": RSLVQLoss,
    "RslvqLoss": RslvqLoss,
    "glvq_loss": glvq_loss,
    "glvq_loss_over_dissimilarities": glvq_loss_over_dissimilarities,
    "margin_loss": margin_loss,
    "spread_loss": spread_loss,
    "cbc_loss": cbc_loss,
    "generalized_kullback_leibler_divergence": (
        generalized_kullback_leibler_divergence
    ),
    "itakura_saito_divergence": itakura_saito_divergence,
    "rslvq_loss": rslvq_loss,
}


def _unknown(identifier):
    return ValueError(
        "Could not interpret the loss identifier. Expected an anysma loss "
        f"({sorted(ALL_OBJECTS)}), a Keras loss name, a configuration dict or "
        f"a callable. Received: identifier={identifier!r}"
    )


def serialize(loss):
    """Serialize a loss function or `Loss` instance to a JSON-compatible dict.

    Args:
        loss: An anysma or Keras loss (function or instance).

    Returns:
        The configuration dict.
    """
    return keras.saving.serialize_keras_object(loss)


def deserialize(config, custom_objects=None):
    """Inverse of `serialize`; also accepts the names `get` accepts.

    Args:
        config: A configuration dict or a loss name.
        custom_objects: Optional dict of further names to objects.

    Returns:
        A loss function or `Loss` instance.
    """
    if isinstance(config, str):
        return get(config)
    try:
        loss = keras.losses.deserialize(
            config, custom_objects={**ALL_OBJECTS, **(custom_objects or {})}
        )
    except (TypeError, ValueError) as error:
        raise _unknown(config) from error
    # Keras returns unknown class names unchanged instead of raising.
    if not callable(loss):
        raise _unknown(config)
    return loss


def get(identifier):
    """Resolve a loss identifier: anysma names first, then Keras.

    Args:
        identifier: `None`; a name (a snake_case name gives the function, a
            CamelCase name an instance with default configuration, e.g.
            `"glvq_loss"` or `"GlvqLoss"`; other names are looked up by
            `keras.losses.get`, e.g. `"categorical_crossentropy"`); a
            configuration dict; or a callable, which is returned unchanged.

    Returns:
        A loss function or `Loss` instance, or `None` for `None`.

    Example:

    >>> get("glvq_loss") is glvq_loss
    True
    >>> type(get("SpreadLoss")).__name__
    'SpreadLoss'
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        if identifier in ALL_OBJECTS:
            found = ALL_OBJECTS[identifier]
            return found() if isinstance(found, type) else found
        try:
            return keras.losses.get(identifier)
        except ValueError as error:
            raise _unknown(identifier) from error
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise _unknown(identifier)


__all__ = [*ALL_OBJECTS, "deserialize", "get", "serialize"]


def __getattr__(name):
    # The original's `from keras.losses import *`: Keras' names stay reachable.
    import keras

    from anysma._identifiers import keras_attribute

    return keras_attribute(keras.losses, __name__, name)
