"""Argument checks with one message format for the whole package.

Every check raises early, names the argument, says what was expected and
shows what was received:

    `beta` must be a finite number > 0. Received: beta=-1

Numbers of the wrong kind or out of range raise `ValueError`; `check_bool`
and `check_type`, whose mistakes are about the kind of object only, raise
`TypeError`. `bool` is never accepted as a number, and NaN fails every
range.
"""

import math
import numbers


def _received(name, value):
    return f"Received: {name}={value!r}"


def is_int(value):
    """Whether `value` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """Whether `value` is a real number (not a bool, not NaN)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and value == value  # NaN is not equal to itself.
    )


def _bounds(minimum, maximum, include_minimum, include_maximum):
    if minimum is not None and maximum is not None:
        left = "[" if include_minimum else "("
        right = "]" if include_maximum else ")"
        return f" in {left}{minimum}, {maximum}{right}"
    if minimum is not None:
        return f" {'>=' if include_minimum else '>'} {minimum}"
    if maximum is not None:
        return f" {'<=' if include_maximum else '<'} {maximum}"
    return ""


def _in_range(value, minimum, maximum, include_minimum, include_maximum):
    if minimum is not None and (
        value < minimum or (value == minimum and not include_minimum)
    ):
        return False
    return maximum is None or not (
        value > maximum or (value == maximum and not include_maximum)
    )


def check_int(value, name, minimum=None, maximum=None, allow_none=False):
    """Return `value` as an `int` in `[minimum, maximum]`, else raise.

    Args:
        value: The argument.
        name: Its name, for the message.
        minimum: The smallest allowed value, or `None`.
        maximum: The largest allowed value, or `None`.
        allow_none: Accept (and return) `None`.

    Raises:
        ValueError: `value` is not an integer or out of range.

    Example:

    >>> check_int(3, "units", minimum=1)
    3
    >>> check_int(0, "units", minimum=1)
    Traceback (most recent call last):
        ...
    ValueError: `units` must be an int >= 1. Received: units=0
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or not _in_range(value, minimum, maximum, True, True):
        expected = f"an int{_bounds(minimum, maximum, True, True)}"
        if allow_none:
            expected += " or None"
        raise ValueError(f"`{name}` must be {expected}. {_received(name, value)}")
    return int(value)


def check_int_pair(value, name, minimum=1):
    """Return an int or a pair of ints, each `>= minimum`, as a pair.

    For kernel sizes and strides: `3` means `(3, 3)`.

    Args:
        value: The argument, an int or a list or tuple of two ints.
        name: Its name, for the message.
        minimum: The smallest allowed entry.

    Raises:
        ValueError: `value` is neither, or an entry is out of range.

    Example:

    >>> check_int_pair(3, "kernel_size")
    (3, 3)
    >>> check_int_pair((2, 0), "stride")
    Traceback (most recent call last):
        ...
    ValueError: `stride` must be an int >= 1 or a pair of them. Received: stride=(2, 0)
    """
    pair = (value, value) if is_int(value) else value
    if (
        not isinstance(pair, (list, tuple))
        or len(pair) != 2
        or not all(is_int(entry) and entry >= minimum for entry in pair)
    ):
        raise ValueError(
            f"`{name}` must be an int >= {minimum} or a pair of them. "
            f"{_received(name, value)}"
        )
    return tuple(int(entry) for entry in pair)


def check_image_shape(image_shape, any_resolution=False):
    """Return `(height, width, channels)` as a tuple of positive ints.

    Args:
        image_shape: The argument, a list or tuple of three sizes.
        any_resolution: Also accept `None` for the height and width (a
            model that takes images of any resolution).

    Raises:
        ValueError: `image_shape` is not three positive sizes.

    Example:

    >>> check_image_shape([28, 28, 1])
    (28, 28, 1)
    >>> check_image_shape((None, None, 3), any_resolution=True)
    (None, None, 3)
    """

    def is_size(dim, allow_none):
        return (allow_none and dim is None) or (is_int(dim) and dim > 0)

    if (
        not isinstance(image_shape, (list, tuple))
        or len(image_shape) != 3
        or not is_size(image_shape[2], False)
        or not all(is_size(dim, any_resolution) for dim in image_shape[:2])
    ):
        sizes = (
            "a known number of channels; height and width may be None (any resolution)"
            if any_resolution
            else "known positive sizes"
        )
        raise ValueError(
            f"`image_shape` must be (height, width, channels) with {sizes}. "
            f"{_received('image_shape', image_shape)}"
        )
    return tuple(None if dim is None else int(dim) for dim in image_shape)


def check_number(
    value,
    name,
    minimum=None,
    maximum=None,
    include_minimum=True,
    include_maximum=True,
    finite=True,
    allow_none=False,
    reason="",
):
    """Return `value` as a `float` in the given range, else raise.

    Args:
        value: The argument.
        name: Its name, for the message.
        minimum, maximum: The bounds, or `None` for none.
        include_minimum, include_maximum: Whether the bounds are allowed.
        finite: Reject infinite values.
        allow_none: Accept (and return) `None`.
        reason: Optional explanation appended to the expectation, e.g.
            `"(it keeps the normalization away from zero)"`.

    Raises:
        ValueError: `value` is not a number, NaN, infinite (when `finite`)
            or out of range.

    Example:

    >>> check_number(0.5, "rate", minimum=0, maximum=1, include_maximum=False)
    0.5
    >>> check_number(float("nan"), "beta", minimum=0, include_minimum=False)
    Traceback (most recent call last):
        ...
    ValueError: `beta` must be a finite number > 0. Received: beta=nan
    """
    if value is None and allow_none:
        return None
    valid = (
        is_real(value)
        and (not finite or math.isfinite(value))
        and _in_range(value, minimum, maximum, include_minimum, include_maximum)
    )
    if not valid:
        bounds = _bounds(minimum, maximum, include_minimum, include_maximum)
        expected = f"a {'finite ' if finite else ''}number{bounds}"
        if allow_none:
            expected += " or None"
        if reason:
            expected += f" {reason}"
        raise ValueError(f"`{name}` must be {expected}. {_received(name, value)}")
    return float(value)


def check_bool(value, name):
    """Return `value` if it is a `bool`, else raise `TypeError`.

    Example:

    >>> check_bool(True, "center")
    True
    """
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool. {_received(name, value)}")
    return value


def check_option(value, name, options):
    """Return `value` if it is one of the strings `options`, else raise.

    Example:

    >>> check_option("max", "mode", ("max", "min"))
    'max'
    """
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"`{name}` must be one of {list(options)}. {_received(name, value)}"
        )
    return value
