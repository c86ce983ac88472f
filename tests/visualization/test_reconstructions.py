import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma.visualization import plot_reconstructions  # noqa: E402


def tile(mosaic, row, column, size):
    return mosaic[row * size : (row + 1) * size, column * size : (column + 1) * size]


def test_pairs_per_class(tmp_path, check_png):
    random = np.random.RandomState(0)
    images = random.rand(12, 6, 6, 1).astype("float32")
    reconstructions = random.rand(12, 6, 6, 1).astype("float32")
    labels = np.array([2, 0, 2, 1, 0, 2, 2, 0, 1, 2, 0, 0])
    path = str(tmp_path / "reconstructions.png")
    figure = plot_reconstructions(
        images, reconstructions, labels=labels, per_class=3, path=path
    )
    check_png(path)
    mosaic = np.asarray(figure.axes[0].images[0].get_array())
    assert mosaic.shape == (3 * 6, 2 * 3 * 6)
    for class_index in range(3):
        members = np.flatnonzero(labels == class_index)[:3]
        for pair, index in enumerate(members):
            np.testing.assert_array_equal(
                tile(mosaic, class_index, 2 * pair, 6), images[index, ..., 0]
            )
            np.testing.assert_array_equal(
                tile(mosaic, class_index, 2 * pair + 1, 6),
                reconstructions[index, ..., 0],
            )
    # Class 1 has two samples: its third pair stays empty.
    assert np.all(tile(mosaic, 1, 4, 6) == 0) and np.all(tile(mosaic, 1, 5, 6) == 0)
    labels_drawn = [text.get_text() for text in figure.axes[0].get_yticklabels()]
    assert labels_drawn == ["0", "1", "2"]


def test_rows_in_order_without_labels():
    images = np.random.RandomState(1).rand(5, 4, 4)
    figure = plot_reconstructions(images, 1 - images, per_class=2)
    mosaic = np.asarray(figure.axes[0].images[0].get_array())
    assert mosaic.shape == (3 * 4, 4 * 4)
    np.testing.assert_allclose(tile(mosaic, 2, 0, 4), images[4], rtol=1e-6)
    np.testing.assert_allclose(tile(mosaic, 2, 1, 4), 1 - images[4], rtol=1e-6)
    np.testing.assert_allclose(tile(mosaic, 0, 3, 4), 1 - images[1], rtol=1e-6)


def test_bad_input_is_reported():
    images = np.ones((4, 5, 5, 1))
    with pytest.raises(ValueError, match="reconstructions"):
        plot_reconstructions(images, np.ones((4, 5, 6, 1)))
    with pytest.raises(ValueError, match="labels"):
        plot_reconstructions(images, images, labels=[0, 1])
    with pytest.raises(ValueError, match="per_class"):
        plot_reconstructions(images, images, per_class=0)
