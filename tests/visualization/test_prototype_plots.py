import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.colors import to_rgba  # noqa: E402

from anysma import models  # noqa: E402
from anysma.visualization import plot_prototypes  # noqa: E402
from anysma.visualization import plot_prototypes_with_tangents  # noqa: E402


def drawn_images(figure):
    return [
        np.asarray(axes.images[0].get_array()) for axes in figure.axes if axes.images
    ]


def test_model_prototypes_as_images(tmp_path, check_png):
    model = models.GLVQ(input_dim=16, num_classes=3, prototypes_per_class=2)
    path = str(tmp_path / "prototypes.png")
    figure = plot_prototypes(model, image_shape=(4, 4), ncols=3, path=path)
    check_png(path)
    images = drawn_images(figure)
    assert len(images) == 6
    for image, prototype in zip(images, model.prototypes):
        np.testing.assert_allclose(image, prototype.reshape(4, 4), rtol=1e-6)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == [str(label) for label in model.prototype_labels]


def test_image_arrays_and_empty_grid_cells():
    prototypes = np.random.RandomState(0).rand(5, 6, 7)
    figure = plot_prototypes(prototypes, labels=list("abcde"), ncols=2)
    assert len(figure.axes) == 6
    assert not figure.axes[-1].axison
    for image, prototype in zip(drawn_images(figure), prototypes):
        np.testing.assert_allclose(image, prototype, rtol=1e-6)


def test_rgb_prototypes_are_scaled_to_unit_range():
    prototypes = np.random.RandomState(0).normal(size=(2, 4 * 4 * 3)) * 5
    figure = plot_prototypes(prototypes, image_shape=(4, 4, 3))
    for image, prototype in zip(drawn_images(figure), prototypes):
        expected = (prototype - prototype.min()) / np.ptp(prototype)
        np.testing.assert_allclose(image, expected.reshape(4, 4, 3), atol=1e-6)


def test_flat_prototypes_plot_as_spectra(tmp_path, check_png):
    model = models.GMLVQ(input_dim=20, num_classes=2, prototypes_per_class=2)
    path = str(tmp_path / "spectra.png")
    figure = plot_prototypes(model, path=path)
    check_png(path)
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert len(lines) == 4
    for line, prototype in zip(lines, model.prototypes):
        np.testing.assert_allclose(line.get_ydata(), prototype, rtol=1e-6)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 21))
    # One colour and one legend entry per class.
    colours = [to_rgba(line.get_color()) for line in lines]
    assert colours[0] == colours[1] != colours[2] == colours[3]
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["class 0", "class 1"]


def test_prototypes_with_tangents_of_a_model(tmp_path, check_png):
    model = models.RTLVQ(input_dim=16, num_classes=2, subspace_dim=3)
    path = str(tmp_path / "tangents.png")
    figure = plot_prototypes_with_tangents(model, image_shape=(4, 4), path=path)
    check_png(path)
    images = drawn_images(figure)
    assert len(images) == 2 * (1 + 3)
    subspaces = model.subspaces
    for row, prototype in enumerate(model.prototypes):
        np.testing.assert_allclose(images[4 * row], prototype.reshape(4, 4), rtol=1e-6)
        for column in range(3):
            np.testing.assert_allclose(
                images[4 * row + 1 + column],
                subspaces[row, :, column].reshape(4, 4),
                rtol=1e-6,
            )


def test_prototypes_with_a_shared_tangent_basis():
    random = np.random.RandomState(0)
    prototypes = random.rand(3, 12)
    basis = random.rand(12, 2)
    figure = plot_prototypes_with_tangents((prototypes, basis), image_shape=(3, 4))
    images = drawn_images(figure)
    assert len(images) == 3 * 3
    np.testing.assert_allclose(images[3 * 2 + 2], basis[:, 1].reshape(3, 4), rtol=1e-6)


def test_bad_arguments_are_reported():
    model = models.GLVQ(input_dim=16, num_classes=2)
    with pytest.raises(ValueError, match="image_shape"):
        plot_prototypes(model, image_shape=(5, 4))
    with pytest.raises(ValueError, match="labels"):
        plot_prototypes(model, image_shape=(4, 4), labels=[0])
    with pytest.raises(ValueError, match="ncols"):
        plot_prototypes(model, image_shape=(4, 4), ncols=0)
    with pytest.raises(TypeError, match="subspaces"):
        plot_prototypes_with_tangents(model, image_shape=(4, 4))
    with pytest.raises(ValueError, match="tangents"):
        plot_prototypes_with_tangents(
            (np.ones((2, 16)), np.ones((3, 16, 2))), image_shape=(4, 4)
        )
