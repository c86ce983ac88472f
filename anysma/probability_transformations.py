"""Probability transformations: turn dissimilarities or scores into probabilities.

Every transformation exists twice, as in the original anysma: as a snake_case
**function** `f(tensors, axis=-1, ...)` and as a CamelCase **class** that
stores the options and is called as `instance(tensors)`. The classes are
registered for Keras serialization, so they round-trip through `get_config`,
JSON and `.keras` files.

`d` below denotes dissimilarities (small value = high probability); all
transformations except `softmax` expect such inputs. The flips expect
non-negative dissimilarities.

| function          | class           | formula                                      |
|-------------------|-----------------|----------------------------------------------|
| `softmax`         | `Softmax`       | `exp(t - max t) / sum`                       |
| `neg_softmax`     | `NegSoftmax`    | `softmax(-d)`                                |
| `neg_exp`         | `NegExp`        | `exp(-d)` or `exp(-d + min d)`               |
| `flipmax`         | `Flipmax`       | `(max d - d + min d + lb) / sum`             |
| `flip`            | `Flip`          | `(max d + lb - d + min d) / (max d + lb)`    |
| `margin_flip`     | `MarginFlip`    | `min(M - d + margin, M) / M`, `M = max d + lb` |
| `margin_log_flip` | `MarginLogFlip` | `margin_flip` idea on `log(d + 1 + lb)`      |

`get(identifier)` resolves a lower-case name to the function (default
arguments), a CamelCase name to an instance of the class (default
configuration), a dict to a deserialized instance, and passes callables
through.

Half-precision inputs (`float16`, `bfloat16`) are computed in `float32` and
cast back: the default `lower_bound=1e-7` is below the smallest normal
`float16` number and would otherwise be flushed to zero.
"""

import numbers

import keras
from keras import ops

from anysma.api_export import anysma_export
from anysma.ops.reductions import selected_max
from anysma.ops.reductions import selected_min
from anysma.utils.validation import check_bool
from anysma.utils.validation import check_number

_HALF_DTYPES = ("float16", "bfloat16")

# === Argument checks ===


def _check_axis(axis):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"`axis` must be an integer. Received: axis={axis!r}")
    return int(axis)


def _check_lower_bound(lower_bound):
    # A positive lower bound keeps the denominators of the flips away from 0
    # when all dissimilarities are 0.
    return check_number(
        lower_bound,
        "lower_bound",
        minimum=0,
        include_minimum=False,
        finite=False,
        reason="(it keeps the normalization away from zero)",
    )


def _check_margin(margin):
    return check_number(margin, "margin", minimum=0, finite=False)


# === Dtype handling ===


def _to_compute_dtype(tensors):
    """Return `(tensors in the compute dtype, dtype of the result)`."""
    tensors = ops.convert_to_tensor(tensors)
    dtype = keras.backend.standardize_dtype(tensors.dtype)
    if "float" not in dtype:
        dtype = keras.config.floatx()
    compute_dtype = "float32" if dtype in _HALF_DTYPES else dtype
    return ops.cast(tensors, compute_dtype), dtype


# === Functions ===


def softmax(tensors, axis=-1, max_stabilization=True):
    """Softmax `exp(t) / sum(exp(t))` along `axis`.

    Args:
        tensors: Scores (large value = high probability).
        axis: The axis to normalize.
        max_stabilization: Subtract the maximum before the exponential. This
            does not change the result but avoids overflow.

    Returns:
        Probabilities of the same shape, summing to 1 along `axis`.

    Example:

    >>> import numpy as np
    >>> p = softmax(np.array([[1.0, 2.0, 3.0]]))
    >>> print(np.round(np.asarray(p), 3))
    [[0.09  0.245 0.665]]
    """
    axis = _check_axis(axis)
    check_bool(max_stabilization, "max_stabilization")
    tensors, dtype = _to_compute_dtype(tensors)
    if max_stabilization:
        # The shift cancels in the result; its gradient is exactly 0.
        tensors = tensors - ops.stop_gradient(
            ops.max(tensors, axis=axis, keepdims=True)
        )
    exponentials = ops.exp(tensors)
    probabilities = exponentials / ops.sum(exponentials, axis=axis, keepdims=True)
    return ops.cast(probabilities, dtype)


def neg_softmax(tensors, axis=-1, max_stabilization=True):
    """Softmax of negated dissimilarities, `softmax(-d)`.

    With squared Euclidean distances this is the class posterior of RSLVQ
    with one prototype per class.

    Args:
        tensors: Dissimilarities (small value = high probability).
        axis: The axis to normalize.
        max_stabilization: Subtract the maximum of `-d` before the exponential.

    Returns:
        Probabilities of the same shape, summing to 1 along `axis`.

    Example:

    >>> import numpy as np
    >>> p = neg_softmax(np.array([[0.0, 1.0]]))
    >>> print(np.round(np.asarray(p), 3))
    [[0.731 0.269]]
    """
    # Negate in the compute dtype: unsigned integers would wrap around.
    tensors, dtype = _to_compute_dtype(tensors)
    return ops.cast(softmax(-tensors, axis, max_stabilization), dtype)


def neg_exp(tensors, axis=-1, max_normalization=False):
    """Elementwise `exp(-d)`; a multi-label "possibility" vector.

    Args:
        tensors: Non-negative dissimilarities.
        axis: The axis of the minimum when `max_normalization` is set.
        max_normalization: Compute `exp(-d + min d)`, so that the best entry
            gets exactly 1.

    Returns:
        Values in `(0, 1]` of the same shape.

    Example:

    >>> import numpy as np
    >>> p = neg_exp(np.array([[1.0, 2.0]]), max_normalization=True)
    >>> print(np.round(np.asarray(p), 3))
    [[1.    0.368]]
    """
    axis = _check_axis(axis)
    check_bool(max_normalization, "max_normalization")
    tensors, dtype = _to_compute_dtype(tensors)
    exponents = -tensors
    if max_normalization:
        exponents = exponents + selected_min(tensors, axis=axis, keepdims=True)
    return ops.cast(ops.exp(exponents), dtype)


def flipmax(tensors, axis=-1, lower_bound=1e-7):
    """Flip the order of dissimilarities and normalize to a probability vector.

    Computes `(max d - d + min d + lower_bound) / sum(...)`: the smallest
    dissimilarity gets the largest value, e.g. `[3, 1, 2, 4]` is mapped to
    `[2, 4, 3, 1] / 10` (without the lower bound).

    Args:
        tensors: Non-negative dissimilarities.
        axis: The axis to flip and normalize.
        lower_bound: A number > 0 added to every entry, so that the
            normalization never divides by zero.

    Returns:
        Probabilities of the same shape, summing to 1 along `axis`.

    Example:

    >>> import numpy as np
    >>> p = flipmax(np.array([[3.0, 1.0, 2.0, 4.0]]))
    >>> print(np.round(np.asarray(p), 3))
    [[0.2 0.4 0.3 0.1]]
    """
    axis = _check_axis(axis)
    lower_bound = _check_lower_bound(lower_bound)
    tensors, dtype = _to_compute_dtype(tensors)
    flipped = (
        selected_max(tensors, axis=axis, keepdims=True)
        - tensors
        + selected_min(tensors, axis=axis, keepdims=True)
        + lower_bound
    )
    return ops.cast(flipped / ops.sum(flipped, axis=axis, keepdims=True), dtype)


def flip(tensors, axis=-1, lower_bound=1e-7):
    """Flip dissimilarities into a possibility vector whose best entry is 1.

    Computes `(M - d + min d) / M` with `M = max d + lower_bound`. Fed to
    `anysma.losses.glvq_loss`, this gives exactly the classic GLVQ cost
    `(d+ - d-) / (d+ + d- + 2 lower_bound)`.

    Args:
        tensors: Non-negative dissimilarities.
        axis: The axis to flip.
        lower_bound: A number > 0 added to the maximum, so that the division
            is safe when all dissimilarities are 0.

    Returns:
        Values in `(0, 1]` of the same shape; the smallest dissimilarity
        gets 1.

    Example:

    >>> import numpy as np
    >>> p = flip(np.array([[3.0, 1.0, 2.0, 4.0]]))
    >>> print(np.round(np.asarray(p), 3))
    [[0.5  1.   0.75 0.25]]
    """
    axis = _check_axis(axis)
    lower_bound = _check_lower_bound(lower_bound)
    tensors, dtype = _to_compute_dtype(tensors)
    maximum = selected_max(tensors, axis=axis, keepdims=True) + lower_bound
    flipped = maximum - tensors + selected_min(tensors, axis=axis, keepdims=True)
    return ops.cast(flipped / maximum, dtype)


def margin_flip(tensors, axis=-1, margin=1e-4, lower_bound=1e-7):
    """Flip dissimilarities with a margin: `min(M - d + margin, M) / M`.

    `M = max d + lower_bound`. All entries with `d <= margin` get exactly 1,
    so several classes can be "fully possible" at once.

    Args:
        tensors: Non-negative dissimilarities.
        axis: The axis of the maximum.
        margin: A number >= 0; dissimilarities up to it map to 1.
        lower_bound: A number > 0 added to the maximum.

    Returns:
        Values in `[0, 1]` of the same shape.

    Example:

    >>> import numpy as np
    >>> p = margin_flip(np.array([[0.0, 1.0, 4.0]]), margin=0.0)
    >>> print(np.round(np.asarray(p), 3))
    [[1.   0.75 0.  ]]
    """
    axis = _check_axis(axis)
    margin = _check_margin(margin)
    lower_bound = _check_lower_bound(lower_bound)
    tensors, dtype = _to_compute_dtype(tensors)
    maximum = selected_max(tensors, axis=axis, keepdims=True) + lower_bound
    flipped = ops.minimum(maximum - tensors + margin, maximum)
    return ops.cast(flipped / maximum, dtype)


def margin_log_flip(tensors, axis=-1, margin=1e-4, lower_bound=1e-7):
    """`margin_flip` on log-compressed dissimilarities.

    With `d' = log(d + 1 + lower_bound)` and `M = max d'` this computes
    `min(M - d' + margin, M) / M`. As in the original anysma, the lower bound
    enters through the logarithm only: `d' >= log(1 + lower_bound) > 0`, so
    `M` is positive without adding it again.

    Args:
        tensors: Non-negative dissimilarities.
        axis: The axis of the maximum.
        margin: A number >= 0.
        lower_bound: A number > 0.

    Returns:
        Values in `[0, 1]` of the same shape.

    Example:

    >>> import numpy as np
    >>> p = margin_log_flip(np.array([[0.0, np.e - 1.0]]), margin=0.0)
    >>> print(np.round(np.asarray(p), 3))
    [[1. 0.]]
    """
    axis = _check_axis(axis)
    margin = _check_margin(margin)
    lower_bound = _check_lower_bound(lower_bound)
    tensors, dtype = _to_compute_dtype(tensors)
    # log1p(d + lb) == log(d + 1 + lb), but stays > 0 at d = 0 even where
    # `1 + lower_bound` would round to 1.
    compressed = ops.log1p(tensors + lower_bound)
    maximum = selected_max(compressed, axis=axis, keepdims=True)
    flipped = ops.minimum(maximum - compressed + margin, maximum)
    return ops.cast(flipped / maximum, dtype)


# === Classes ===


class ProbabilityTransformation:
    """Base class of the probability transformations.

    Subclasses store their options, implement `__call__(tensors)` and extend
    `get_config`. They must be registered with `anysma_export` (or
    `keras.saving.register_keras_serializable`) to be serializable.

    Args:
        axis: The axis the transformation normalizes along.
    """

    def __init__(self, axis=-1):
        self.axis = _check_axis(axis)

    def __call__(self, tensors):
        raise NotImplementedError(
            f"{type(self).__name__} must implement `__call__(tensors)`."
        )

    def get_config(self):
        return {"axis": self.axis}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        options = ", ".join(
            f"{key}={value!r}" for key, value in self.get_config().items()
        )
        return f"{type(self).__name__}({options})"


@anysma_export
class Softmax(ProbabilityTransformation):
    """Softmax along `axis`; the class form of `softmax`.

    Args:
        axis: The axis to normalize.
        max_stabilization: Subtract the maximum before the exponential.

    Example:

    >>> import numpy as np
    >>> p = Softmax()(np.array([[0.0, 0.0]]))
    >>> np.asarray(p).tolist()
    [[0.5, 0.5]]
    """

    def __init__(self, axis=-1, max_stabilization=True):
        super().__init__(axis=axis)
        self.max_stabilization = check_bool(max_stabilization, "max_stabilization")

    def __call__(self, tensors):
        return softmax(tensors, self.axis, self.max_stabilization)

    def get_config(self):
        return {**super().get_config(), "max_stabilization": self.max_stabilization}


@anysma_export
class NegSoftmax(Softmax):
    """Softmax of negated dissimilarities; the class form of `neg_softmax`.

    Args:
        axis: The axis to normalize.
        max_stabilization: Subtract the maximum of `-d` before the exponential.
    """

    def __call__(self, tensors):
        return neg_softmax(tensors, self.axis, self.max_stabilization)


@anysma_export
class NegExp(ProbabilityTransformation):
    """Elementwise `exp(-d)`; the class form of `neg_exp`.

    Args:
        axis: The axis of the minimum when `max_normalization` is set.
        max_normalization: Compute `exp(-d + min d)`.
    """

    def __init__(self, axis=-1, max_normalization=False):
        super().__init__(axis=axis)
        self.max_normalization = check_bool(max_normalization, "max_normalization")

    def __call__(self, tensors):
        return neg_exp(tensors, self.axis, self.max_normalization)

    def get_config(self):
        return {**super().get_config(), "max_normalization": self.max_normalization}


class _LowerBounded(ProbabilityTransformation):
    """Shared storage and validation of `lower_bound`."""

    def __init__(self, axis=-1, lower_bound=1e-7):
        super().__init__(axis=axis)
        self.lower_bound = _check_lower_bound(lower_bound)

    def get_config(self):
        return {**super().get_config(), "lower_bound": self.lower_bound}


@anysma_export
class Flipmax(_LowerBounded):
    """Flip and normalize to a probability vector; the class form of `flipmax`.

    Args:
        axis: The axis to flip and normalize.
        lower_bound: A number > 0.
    """

    def __call__(self, tensors):
        return flipmax(tensors, self.axis, self.lower_bound)


@anysma_export
class Flip(_LowerBounded):
    """Flip into a possibility vector; the class form of `flip`.

    Args:
        axis: The axis to flip.
        lower_bound: A number > 0.
    """

    def __call__(self, tensors):
        return flip(tensors, self.axis, self.lower_bound)


class _MarginLowerBounded(_LowerBounded):
    """Shared storage and validation of `margin` and `lower_bound`."""

    def __init__(self, axis=-1, margin=1e-4, lower_bound=1e-7):
        super().__init__(axis=axis, lower_bound=lower_bound)
        self.margin = _check_margin(margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@anysma_export
class MarginFlip(_MarginLowerBounded):
    """Flip with a margin; the class form of `margin_flip`.

    Args:
        axis: The axis of the maximum.
        margin: A number >= 0.
        lower_bound: A number > 0.
    """

    def __call__(self, tensors):
        return margin_flip(tensors, self.axis, self.margin, self.lower_bound)


@anysma_export
class MarginLogFlip(_MarginLowerBounded):
    """Flip log-compressed dissimilarities; the class form of `margin_log_flip`.

    Args:
        axis: The axis of the maximum.
        margin: A number >= 0.
        lower_bound: A number > 0.
    """

    def __call__(self, tensors):
        return margin_log_flip(tensors, self.axis, self.margin, self.lower_bound)


# === Lookup and serialization ===

ALL_FUNCTIONS = {
    function.__name__: function
    for function in (
        softmax,
        neg_softmax,
        neg_exp,
        flipmax,
        flip,
        margin_flip,
        margin_log_flip,
    )
}
ALL_CLASSES = {
    cls.__name__: cls
    for cls in (Softmax, NegSoftmax, NegExp, Flipmax, Flip, MarginFlip, MarginLogFlip)
}
ALL_OBJECTS = {**ALL_FUNCTIONS, **ALL_CLASSES}


def _unknown(identifier):
    return ValueError(
        "Could not interpret the probability transformation identifier. "
        f"Expected one of {sorted(ALL_OBJECTS)}, a configuration dict or a "
        f"callable. Received: identifier={identifier!r}"
    )


def serialize(probability_transformation):
    """Serialize a probability transformation.

    Args:
        probability_transformation: An anysma function (serialized as its
            name), a `ProbabilityTransformation` instance or another
            serializable callable.

    Returns:
        A name string or a JSON-compatible configuration dict.
    """
    for name, function in ALL_FUNCTIONS.items():
        if probability_transformation is function:
            return name
    return keras.saving.serialize_keras_object(probability_transformation)


def deserialize(config, custom_objects=None):
    """Inverse of `serialize`.

    Args:
        config: A name string or a configuration dict.
        custom_objects: Optional dict of further names to objects.

    Returns:
        A function or a `ProbabilityTransformation` instance.
    """
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict):
        raise _unknown(config)
    try:
        probability_transformation = keras.saving.deserialize_keras_object(
            config,
            module_objects=ALL_OBJECTS,
            custom_objects=custom_objects,
        )
    except (TypeError, ValueError) as error:
        raise _unknown(config) from error
    # Keras returns unknown class names unchanged instead of raising.
    if not callable(probability_transformation):
        raise _unknown(config)
    return probability_transformation


def get(identifier, allow_none=True):
    """Resolve a probability transformation identifier.

    Args:
        identifier: `None`; a lower-case name (the function with default
            arguments, e.g. `"flip"`); a CamelCase name (an instance with
            default configuration, e.g. `"Flip"`); a configuration dict; or a
            callable, which is returned unchanged.
        allow_none: Whether `None` is accepted (and returned). The modules
            that weight with the transformation pass `False`.

    Returns:
        A callable, or `None` for `None`.

    Raises:
        ValueError: For an unknown identifier, or `None` with
            `allow_none=False`.

    Example:

    >>> get("flip") is flip
    True
    >>> get("MarginFlip").margin
    0.0001
    """
    if identifier is None:
        if not allow_none:
            raise ValueError(
                "`probability_transformation` must be a name such as 'flipmax', "
                "a configuration dict or a callable. Received: "
                "probability_transformation=None"
            )
        return None
    if isinstance(identifier, str):
        if identifier in ALL_FUNCTIONS:
            return ALL_FUNCTIONS[identifier]
        if identifier in ALL_CLASSES:
            return ALL_CLASSES[identifier]()
        raise _unknown(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise _unknown(identifier)


__all__ = [
    "Flip",
    "Flipmax",
    "MarginFlip",
    "MarginLogFlip",
    "NegExp",
    "NegSoftmax",
    "ProbabilityTransformation",
    "Softmax",
    "deserialize",
    "flip",
    "flipmax",
    "get",
    "margin_flip",
    "margin_log_flip",
    "neg_exp",
    "neg_softmax",
    "serialize",
    "softmax",
]
