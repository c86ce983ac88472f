"""Bookkeeping of capsule signals and prototype distributions.

Two kinds of helpers live here:

* `list_to_dict` / `dict_to_list` convert between the original anysma's
  module signal (a dict with integer keys `{0: signals, 1: dissimilarities,
  2: probabilities}`) and a sequence. New code passes tuples
  `(signals, dissimilarities[, probabilities])` between modules, because
  Keras 3 turns integer dict keys into strings when it loads a `.keras` file;
  the helpers stay for old user code such as `capsule(list_to_dict([v, d]))`.
* `prototype_index_tables` resolves a `prototype_distribution` once into the
  static index tables that the routing and competition functions use.

Everything here is static Python/NumPy bookkeeping: no tensors are created.
"""

import collections
import numbers

import keras
import numpy as np

PrototypeIndexTables = collections.namedtuple(
    "PrototypeIndexTables",
    [
        "capsule_number",
        "proto_number",
        "prototypes_per_capsule",
        "capsule_extension",
        "index_table",
        "valid_mask",
        "max_proto_number_in_capsule",
        "equally_distributed",
    ],
)
PrototypeIndexTables.__doc__ = """The resolved form of a `prototype_distribution`.

Attributes:
    capsule_number: Number of capsules `K`.
    proto_number: Number of prototypes `P` (summed over all capsules).
    prototypes_per_capsule: Tuple of length `K`: how many prototypes each
        capsule owns.
    capsule_extension: Int array of shape `(P,)`: the capsule of each
        prototype (gathers capsule inputs to the prototypes).
    index_table: Int array of shape `(K, max_proto_number_in_capsule)`. Row
        `i` lists the prototypes of capsule `i`, padded by repeating its last
        prototype (the original `_proto_extension`, reshaped).
    valid_mask: Bool array of the shape of `index_table`; `False` marks the
        padding. Every row is a prefix of `True` values.
    max_proto_number_in_capsule: The largest number of prototypes in a
        capsule.
    equally_distributed: Whether all capsules own the same number of
        prototypes (then `index_table` is `arange(P)` reshaped and no entry
        is padding).
"""


def _is_positive_int(value):
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and int(value) >= 1
    )


def _prototypes_per_capsule(prototype_distribution):
    """Validate a distribution and return the prototype count per capsule."""
    distribution = prototype_distribution
    if _is_positive_int(distribution):
        return (1,) * int(distribution)
    if (
        isinstance(distribution, tuple)
        and len(distribution) == 2
        and all(_is_positive_int(value) for value in distribution)
    ):
        prototypes, capsules = (int(value) for value in distribution)
        return (prototypes,) * capsules
    if (
        isinstance(distribution, list)
        and distribution
        and all(_is_positive_int(value) for value in distribution)
    ):
        return tuple(int(value) for value in distribution)
    raise ValueError(
        "`prototype_distribution` must be a positive int `n` (n capsules with "
        "one prototype each), a tuple `(k, n)` of positive ints (n capsules "
        "with k prototypes each) or a non-empty list `[k_0, k_1, ...]` of "
        "positive ints (capsule i owns k_i prototypes). "
        f"Received: prototype_distribution={prototype_distribution!r}"
    )


def prototype_index_tables(prototype_distribution):
    """Resolve a prototype distribution into static index tables.

    Prototypes are numbered capsule-major: capsule `i` owns a consecutive
    block of prototypes, and for a tuple `(k, n)` that block is
    `[i * k, ..., (i + 1) * k - 1]`.

    Args:
        prototype_distribution: One of
            - an int `n`: `n` capsules with one prototype each;
            - a tuple `(k, n)`: `n` capsules with `k` prototypes each;
            - a list `[k_0, k_1, ...]`: capsule `i` owns `k_i` prototypes.

    Returns:
        A `PrototypeIndexTables` named tuple (`capsule_number`,
        `proto_number`, `prototypes_per_capsule`, `capsule_extension`,
        `index_table`, `valid_mask`, `max_proto_number_in_capsule`,
        `equally_distributed`); the arrays are NumPy arrays.

    Example:

    >>> tables = prototype_index_tables([1, 3, 2])
    >>> tables.capsule_number, tables.proto_number
    (3, 6)
    >>> tables.capsule_extension.tolist()
    [0, 1, 1, 1, 2, 2]
    >>> tables.index_table.tolist()
    [[0, 0, 0], [1, 2, 3], [4, 5, 5]]
    >>> tables.valid_mask.tolist()
    [[True, False, False], [True, True, True], [True, True, False]]
    """
    counts = _prototypes_per_capsule(prototype_distribution)
    capsule_number = len(counts)
    proto_number = sum(counts)
    max_count = max(counts)
    starts = np.cumsum((0,) + counts[:-1])
    columns = np.arange(max_count)
    counts_array = np.asarray(counts)
    valid_mask = columns[None, :] < counts_array[:, None]
    # Padding repeats the capsule's last prototype (as the original's
    # `_proto_extension`), so every entry of the table is a valid index.
    index_table = starts[:, None] + np.minimum(
        columns[None, :], counts_array[:, None] - 1
    )
    capsule_extension = np.repeat(np.arange(capsule_number), counts)
    return PrototypeIndexTables(
        capsule_number=capsule_number,
        proto_number=proto_number,
        prototypes_per_capsule=counts,
        capsule_extension=capsule_extension.astype("int32"),
        index_table=index_table.astype("int32"),
        valid_mask=valid_mask,
        max_proto_number_in_capsule=max_count,
        equally_distributed=len(set(counts)) == 1,
    )


def list_to_dict(values):
    """Turn `[signals, dissimilarities, ...]` into the original signal dict.

    Args:
        values: A list or tuple. A dict is returned unchanged (as a new dict),
            so the helper can be applied to either form.

    Returns:
        A dict `{0: values[0], 1: values[1], ...}`.

    Example:

    >>> list_to_dict(["signals", "dissimilarities"])
    {0: 'signals', 1: 'dissimilarities'}
    """
    if isinstance(values, dict):
        return dict(values)
    if not isinstance(values, (list, tuple)):
        raise ValueError(
            "`values` must be a list or tuple such as `[signals, "
            f"dissimilarities]`. Received: values={values!r}"
        )
    return dict(enumerate(values))


def dict_to_list(signal_dict):
    """Turn the original signal dict `{0: ..., 1: ..., ...}` into a list.

    String keys `"0"`, `"1"`, ... are accepted as well: they are what Keras 3
    makes of integer keys when it loads a `.keras` file.

    Args:
        signal_dict: A dict with keys `0, ..., n - 1`. A list or tuple is
            returned as a list, so the helper can be applied to either form.

    Returns:
        The list `[signal_dict[0], signal_dict[1], ...]`.

    Example:

    >>> dict_to_list({1: "dissimilarities", 0: "signals"})
    ['signals', 'dissimilarities']
    """
    if isinstance(signal_dict, (list, tuple)):
        return list(signal_dict)
    if not isinstance(signal_dict, dict):
        raise ValueError(
            "`signal_dict` must be a dict with the keys 0, ..., n - 1. "
            f"Received: signal_dict={signal_dict!r}"
        )
    by_index = {}
    for key, value in signal_dict.items():
        is_integer_key = isinstance(key, numbers.Integral) and not isinstance(key, bool)
        if isinstance(key, str) and key.isdigit():
            key, is_integer_key = int(key), True
        if not is_integer_key or int(key) in by_index:
            by_index = None
            break
        by_index[int(key)] = value
    if by_index is None or sorted(by_index) != list(range(len(by_index))):
        raise ValueError(
            "`signal_dict` must have the keys 0, ..., n - 1 (one per signal). "
            f"Received: signal_dict keys={list(signal_dict)!r}"
        )
    return [by_index[index] for index in range(len(by_index))]


def mixed_shape(x):
    """The shape of `x`: static sizes where known, tensors where not.

    The original's helper for reshaping tensors with an unknown batch size;
    on Keras 3 it is `keras.ops.shape`, as a tuple.

    Args:
        x: A tensor (symbolic or eager) or an array.

    Returns:
        A tuple with one entry per axis: an int where the size is known,
        a scalar tensor where it is known only at run time.

    Example:

    >>> import numpy as np
    >>> mixed_shape(np.zeros((2, 3)))
    (2, 3)
    """
    return tuple(keras.ops.shape(x))


def equal_shape(shape_a, shape_b):
    """Whether two shapes can describe the same tensor (`None` matches any size).

    Args:
        shape_a: A shape: a tuple or list of ints and `None`.
        shape_b: Another shape.

    Returns:
        `True` if both have the same rank and every pair of sizes is equal or
        contains `None`.

    Example:

    >>> equal_shape((None, 3), (8, 3)), equal_shape((2, 3), (2, 4))
    (True, False)
    """
    for name, shape in (("shape_a", shape_a), ("shape_b", shape_b)):
        if not isinstance(shape, (tuple, list)):
            raise TypeError(
                f"`{name}` must be a tuple or list of sizes. Received: {name}={shape!r}"
            )
    return len(shape_a) == len(shape_b) and all(
        a is None or b is None or a == b for a, b in zip(shape_a, shape_b)
    )
