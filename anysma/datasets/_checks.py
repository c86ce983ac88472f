"""Content checks of loaded dataset arrays.

Every loader passes what it decoded through these functions before returning
it, so that a file of the right format but the wrong content (another
dataset's images, labels outside the classes, arrays of different lengths)
fails loudly instead of being cast silently: `np.asarray(300).astype("uint8")`
is 44, so values are range-checked *before* any narrowing cast.

Each check raises `DamagedFileError` naming the file the array came from,
with the dataset's remedy (how to get a good copy).
"""

import numpy as np

from anysma.datasets._files import DamagedFileError


def _integer_values(array, path, what, low, high, remedy):
    """Check that `array` holds integers in `low..high`; return it unchanged."""
    if array.dtype.kind not in "iu":
        raise DamagedFileError(
            path,
            f"{what} must be integers in {low}-{high}. Received dtype: {array.dtype}",
            remedy,
        )
    if array.size:
        smallest, largest = int(array.min()), int(array.max())
        if smallest < low or largest > high:
            raise DamagedFileError(
                path,
                f"{what} must lie in {low}-{high}. Received values from "
                f"{smallest} to {largest}",
                remedy,
            )
    return array


def images(array, path, what, shape, remedy):
    """Check pixel values: integers 0-255 of shape `(n, *shape)`; return uint8.

    Args:
        array: The decoded images.
        path: The file they came from.
        what: What to call them in messages (`"MNIST training set images"`).
        shape: The shape of one image, e.g. `(28, 28)`.
        remedy: How to get a good copy (see `_files.remedy`).
    """
    array = _rows_of_shape(array, path, what, shape, remedy)
    _integer_values(array, path, what, 0, 255, remedy)
    return np.ascontiguousarray(array, dtype="uint8")


def _rows_of_shape(array, path, what, shape, remedy):
    """`array` as an ndarray of shape `(n, *shape)`, else `DamagedFileError`."""
    array = np.asarray(array)
    if array.ndim != 1 + len(shape) or tuple(array.shape[1:]) != tuple(shape):
        expected = "(n, " + ", ".join(str(size) for size in shape) + ")"
        raise DamagedFileError(
            path,
            f"{what} must have shape {expected}. Received shape: {array.shape}",
            remedy,
        )
    return array


def labels(array, path, what, num_classes, remedy):
    """Check class labels: a vector of integers `0..num_classes-1`; return uint8."""
    array = np.asarray(array)
    if array.ndim != 1:
        raise DamagedFileError(
            path, f"{what} must be a vector. Received shape: {array.shape}", remedy
        )
    _integer_values(array, path, what, 0, num_classes - 1, remedy)
    return array.astype("uint8")


def integers(array, path, what, shape, remedy, low=0, high=2**31 - 1):
    """Check an integer table of shape `(n, *shape)` within `low..high`; int32."""
    array = _rows_of_shape(array, path, what, shape, remedy)
    _integer_values(array, path, what, low, high, remedy)
    return array.astype("int32")
