"""Checks that a written plot is a real picture."""

import os

import numpy as np


def check_nontrivial_png(path, min_height=100, min_width=100):
    """Raise `AssertionError` unless `path` is a PNG with content.

    The image must be at least `min_height x min_width` pixels and not one
    colour. Needs matplotlib to read the file.

    Args:
        path: The PNG file.
        min_height: Smallest accepted height in pixels.
        min_width: Smallest accepted width in pixels.

    Returns:
        The image as a float array `(height, width, channels)` in [0, 1].
    """
    from matplotlib import image as matplotlib_image

    if not os.path.isfile(path):
        raise AssertionError(f"No plot was written at {path}")
    pixels = matplotlib_image.imread(path)
    height, width = pixels.shape[:2]
    if height < min_height or width < min_width:
        raise AssertionError(
            f"{path} is {height} x {width} pixels; expected at least "
            f"{min_height} x {min_width}"
        )
    colours = pixels.reshape(height * width, -1)
    if np.all(colours == colours[0]):
        raise AssertionError(f"{path} is a single colour")
    return pixels
