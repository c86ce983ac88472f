import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma import models  # noqa: E402
from anysma.visualization import plot_components  # noqa: E402
from anysma.visualization import plot_reasoning  # noqa: E402


def drawn_images(figure):
    return [np.asarray(axes.images[0].get_array()) for axes in figure.axes]


def test_flat_components_as_images(tmp_path, check_png):
    model = models.CBC(input_dim=16, num_classes=2, num_components=3)
    components = np.random.RandomState(0).uniform(size=(3, 16)).astype("float32")
    model.components_layer.components.assign(components)
    path = str(tmp_path / "components.png")
    figure = plot_components(model, image_shape=(4, 4), path=path)
    check_png(path)
    for drawn, component in zip(drawn_images(figure), components):
        np.testing.assert_allclose(drawn, component.reshape(4, 4), rtol=1e-6)


def test_patch_components_and_curves():
    model = models.PatchCBC(
        image_shape=(8, 8, 1), num_classes=2, num_components=2, kernel_size=3
    )
    drawn = drawn_images(plot_components(model))
    np.testing.assert_allclose(drawn[0], model.components[0, ..., 0], rtol=1e-6)
    curves = plot_components(np.arange(6.0).reshape(2, 3), title="curves")
    lines = curves.axes[0].get_lines()
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[1].get_ydata(), [3.0, 4.0, 5.0])
    assert curves.axes[0].get_title() == "curves"


def test_reasoning_matrices(tmp_path, check_png):
    model = models.CBC(input_dim=4, num_classes=3, num_components=5)
    path = str(tmp_path / "reasoning.png")
    figure = plot_reasoning(model, class_names=["a", "b", "c"], path=path)
    check_png(path)
    expected = model.reasoning_probabilities()
    for axes, array in zip(figure.axes[:3], expected):
        np.testing.assert_allclose(axes.images[0].get_array(), array, rtol=1e-6)
    assert [label.get_text() for label in figure.axes[0].get_xticklabels()] == [
        "a",
        "b",
        "c",
    ]
    # The indefinite reasoning may be left out: one minus the others.
    positive, negative, indefinite = expected
    figure = plot_reasoning((positive, negative))
    np.testing.assert_allclose(
        figure.axes[2].images[0].get_array(), indefinite, atol=1e-6
    )


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="`image_shape` must hold"):
        plot_components(np.ones((2, 6)), image_shape=(2, 2))
    with pytest.raises(TypeError, match="CBC model"):
        plot_components(models.GLVQ(input_dim=3, num_classes=2))
    with pytest.raises(ValueError, match=r"\(components, classes\)"):
        plot_reasoning((np.ones((2, 3)), np.ones((3, 2))))
    with pytest.raises(ValueError, match="`class_names` must name"):
        plot_reasoning((np.ones((2, 3)) / 3, np.ones((2, 3)) / 3), class_names=["a"])
