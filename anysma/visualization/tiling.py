"""`combine_images`: tile a batch of images into one image."""

import math

import numpy as np

from anysma.visualization._figures import check_positive_int
from anysma.visualization._figures import to_numpy


def combine_images(images, ncols=None):
    """Tile a batch of images into one image, row by row.

    Image `i` goes to tile row `i // ncols`, column `i % ncols`; tiles left
    over in the last row are zero. The helper of the original CapsNet
    examples.

    Args:
        images: `(batch, height, width)` or `(batch, height, width,
            channels)`.
        ncols: Tiles per row; defaults to `ceil(sqrt(batch))` (a square
            grid when `batch` is a square number).

    Returns:
        A NumPy array `(rows * height, ncols * width)` for gray images (no
        or one channel), or `(rows * height, ncols * width, channels)`, with
        `rows = ceil(batch / ncols)` and the dtype of `images`.

    Example:

    >>> import numpy as np
    >>> combine_images(np.ones((5, 2, 3)), ncols=2).shape
    (6, 6)
    """
    array = np.asarray(images)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        array = to_numpy(images, "images")
    if array.ndim not in (3, 4) or array.shape[0] == 0:
        raise ValueError(
            "`images` must be a non-empty batch (batch, height, width) or "
            f"(batch, height, width, channels). Received: images of shape "
            f"{array.shape}"
        )
    batch = array.shape[0]
    ncols = check_positive_int(ncols, "ncols", allow_none=True)
    if ncols is None:
        ncols = math.ceil(math.sqrt(batch))
    rows = math.ceil(batch / ncols)
    if array.ndim == 3:
        array = array[..., None]
    height, width, channels = array.shape[1:]
    padded = np.zeros((rows * ncols, height, width, channels), dtype=array.dtype)
    padded[:batch] = array
    # (rows, ncols, h, w, c) -> (rows, h, ncols, w, c): tiles side by side.
    tiled = padded.reshape(rows, ncols, height, width, channels)
    tiled = tiled.transpose(0, 2, 1, 3, 4).reshape(
        rows * height, ncols * width, channels
    )
    return tiled[..., 0] if channels == 1 else tiled
