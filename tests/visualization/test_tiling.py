import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma.visualization import combine_images  # noqa: E402


def tile_by_tile(images, ncols):
    """Reference: copy every image to its block with explicit slicing."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    count, height, width, channels = images.shape
    rows = math.ceil(count / ncols)
    result = np.zeros((rows * height, ncols * width, channels), images.dtype)
    for index in range(count):
        row, column = divmod(index, ncols)
        result[
            row * height : (row + 1) * height, column * width : (column + 1) * width
        ] = images[index]
    return result


@pytest.mark.parametrize(
    "shape, ncols",
    [
        ((5, 2, 3), 2),
        ((7, 4, 3, 1), None),
        ((6, 3, 2, 3), 4),
        ((1, 5, 5), None),
        ((3, 2, 2), 5),
    ],
)
def test_combine_images_matches_tile_by_tile_copy(shape, ncols):
    images = np.random.RandomState(0).rand(*shape).astype("float32")
    combined = combine_images(images, ncols=ncols)
    expected_ncols = ncols or math.ceil(math.sqrt(shape[0]))
    expected = tile_by_tile(images, expected_ncols)
    if len(shape) == 3 or shape[-1] == 1:
        expected = expected[..., 0]
    assert combined.shape == expected.shape
    assert combined.dtype == images.dtype
    np.testing.assert_array_equal(combined, expected)


def test_default_grid_is_square_for_square_counts():
    combined = combine_images(np.ones((9, 2, 3)))
    assert combined.shape == (6, 9)
    assert np.all(combined == 1)


def test_combine_images_rejects_bad_input():
    with pytest.raises(ValueError, match="images"):
        combine_images(np.ones((2, 3)))
    with pytest.raises(ValueError, match="images"):
        combine_images(np.ones((0, 3, 3)))
    with pytest.raises(ValueError, match="ncols"):
        combine_images(np.ones((2, 3, 3)), ncols=0)
    with pytest.raises(TypeError, match="images"):
        combine_images([["a", "b"]])
