import keras
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma.visualization import plot_spectral_lines  # noqa: E402


def test_one_panel_per_class_with_every_sample(tmp_path, check_png):
    random = np.random.RandomState(0)
    dissimilarities = random.rand(30, 16)
    labels = random.randint(0, 3, size=30)
    labels[:3] = [0, 1, 2]
    path = str(tmp_path / "lines.png")
    figure = plot_spectral_lines(dissimilarities, labels, path=path)
    check_png(path)
    assert len(figure.axes) == 3
    for class_index, axes in enumerate(figure.axes):
        members = dissimilarities[labels == class_index]
        (collection,) = axes.collections
        segments = collection.get_segments()
        assert len(segments) == len(members)
        for segment, member in zip(segments, members):
            np.testing.assert_array_equal(segment[:, 0], np.arange(1, 17))
            np.testing.assert_allclose(segment[:, 1], member, rtol=1e-6)
        (mean_line,) = axes.get_lines()
        np.testing.assert_allclose(mean_line.get_ydata(), members.mean(0), rtol=1e-5)
        assert axes.get_title() == f"class {class_index} ({len(members)})"


def test_one_hot_labels_and_class_names():
    labels = keras.utils.to_categorical([0, 0, 2, 2], 4)
    figure = plot_spectral_lines(
        np.random.rand(4, 5), labels, class_names=["zero", "one", "two", "three"]
    )
    # Empty classes keep their panel; panels beyond the classes are hidden.
    titles = [axes.get_title() for axes in figure.axes if axes.axison]
    assert titles == ["zero (2)", "one (0)", "two (2)", "three (0)"]


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="dissimilarities"):
        plot_spectral_lines(np.ones(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="labels"):
        plot_spectral_lines(np.ones((4, 2)), [0, 1])
    with pytest.raises(ValueError, match="labels"):
        plot_spectral_lines(np.ones((2, 2)), [0.5, 1])
    with pytest.raises(ValueError, match="class_names"):
        plot_spectral_lines(np.ones((2, 2)), [0, 3], class_names=["a", "b"])
