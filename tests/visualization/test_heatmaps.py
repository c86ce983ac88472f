import keras
import numpy as np
import pytest

pytest.importorskip("matplotlib")

import anysma  # noqa: E402
from anysma.visualization import capsule_dissimilarities  # noqa: E402
from anysma.visualization import plot_heatmaps  # noqa: E402

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def random_images(count, height, width, seed=0):
    return np.random.RandomState(seed).rand(count, height, width, 1).astype("float32")


def test_values_equal_a_layer_by_layer_forward_pass(capsule_network, forward):
    images = random_images(2, 28, 28)
    values = capsule_dissimilarities(capsule_network, images)
    reference = forward(capsule_network, images)
    assert values["d_in_caps1"].shape == (2, 14, 14, 1)
    np.testing.assert_allclose(
        values["d_in_caps1"], reference["d_in_caps1"], **TOLERANCE
    )
    assert np.all(values["d_in_caps1"] >= 0)  # after the ReLU
    # Row-major 8 x 8 and 4 x 4 maps, as Caps2 and Caps3 read them.
    np.testing.assert_allclose(
        values["d_in_caps2"], reference["caps1"][1].reshape(2, 8, 8), **TOLERANCE
    )
    np.testing.assert_allclose(
        values["d_in_caps3"], reference["caps2"][1].reshape(2, 4, 4), **TOLERANCE
    )
    np.testing.assert_allclose(values["d_out"], reference["caps3"][1], **TOLERANCE)
    np.testing.assert_allclose(values["p_out"], reference["caps3"][2], **TOLERANCE)


def test_probabilities_are_neg_softmax_of_the_class_dissimilarities(
    capsule_network,
):
    values = capsule_dissimilarities(capsule_network, random_images(2, 28, 28, 1))
    expected = np.exp(-values["d_out"])
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(values["p_out"], expected, **TOLERANCE)


def test_any_image_size(capsule_network):
    values = capsule_dissimilarities(capsule_network, random_images(2, 20, 26))
    assert values["d_in_caps1"].shape == (2, 10, 13, 1)
    assert values["d_in_caps2"].shape == (2, 8, 8)
    assert values["d_in_caps3"].shape == (2, 4, 4)
    assert values["d_out"].shape == values["p_out"].shape == (2, 10)


@pytest.mark.large
def test_fixed_resolution_model_is_rebuilt_for_other_sizes(capsule_network):
    fixed = anysma.models.LVQCapsuleNetwork(image_shape=(16, 16, 1))
    fixed.set_weights(capsule_network.get_weights())
    images = random_images(2, 20, 20, seed=2)
    values = capsule_dissimilarities(fixed, images)
    reference = capsule_dissimilarities(capsule_network, images)
    for name, value in reference.items():
        np.testing.assert_allclose(values[name], value, **TOLERANCE)


def test_plot_heatmaps(capsule_network, tmp_path, check_png):
    images = random_images(2, 28, 28, seed=3)
    reconstructions = random_images(2, 28, 28, seed=4)
    probabilities = np.full((2, 10), 0.1, "float32")
    probabilities[:, 4] = 0.9
    path = str(tmp_path / "heatmaps.png")
    figure = plot_heatmaps(
        capsule_network,
        images,
        reconstructions=reconstructions,
        probabilities=probabilities,
        path=path,
    )
    check_png(path, min_width=400, min_height=200)
    titles = [axes.get_title() for axes in figure.axes[:7]]
    assert titles == [
        "input",
        "d_in Caps1",
        "d_in Caps2",
        "d_in Caps3",
        "d_out",
        "p_out",
        "reconstruction",
    ]
    assert len(figure.axes) == 2 * 7
    values = capsule_dissimilarities(capsule_network, images)
    for row in range(2):
        panels = [
            np.asarray(axes.images[0].get_array())
            for axes in figure.axes[7 * row : 7 * (row + 1)]
        ]
        np.testing.assert_array_equal(panels[0], images[row, ..., 0])
        np.testing.assert_allclose(panels[1], values["d_in_caps1"][row, ..., 0])
        np.testing.assert_allclose(panels[2], values["d_in_caps2"][row])
        np.testing.assert_allclose(panels[4], values["d_out"][row][:, None])
        np.testing.assert_array_equal(panels[5], probabilities[row][:, None])
        np.testing.assert_array_equal(panels[6], reconstructions[row, ..., 0])


@pytest.mark.large
def test_two_dissimilarity_channels_get_two_columns():
    keras.utils.set_random_seed(1)
    model = anysma.models.LVQCapsuleNetwork(
        image_shape=(16, 16, 2), num_classes=5, dissimilarity_channels=2
    )
    images = np.random.RandomState(0).rand(1, 16, 16, 2).astype("float32")
    values = capsule_dissimilarities(model, images)
    assert values["d_in_caps1"].shape == (1, 8, 8, 2)
    figure = plot_heatmaps(model, images)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[1:3] == ["d_in Caps1 [0]", "d_in Caps1 [1]"]
    # The stereo input is shown as its two channels side by side.
    assert figure.axes[0].images[0].get_array().shape == (16, 32)


def test_bad_arguments_are_reported(capsule_network):
    images = random_images(2, 8, 8)
    with pytest.raises(ValueError, match="LVQCapsuleNetwork"):
        capsule_dissimilarities(anysma.models.GLVQ(input_dim=4, num_classes=2), images)
    with pytest.raises(TypeError, match="LVQCapsuleNetwork"):
        plot_heatmaps("model", images)
    with pytest.raises(ValueError, match="channels"):
        capsule_dissimilarities(capsule_network, np.ones((1, 28, 28, 3)))
    with pytest.raises(ValueError, match="images"):
        capsule_dissimilarities(capsule_network, np.ones((28, 28)))
    with pytest.raises(ValueError, match="reconstructions"):
        plot_heatmaps(capsule_network, images, reconstructions=images[:1])
    with pytest.raises(ValueError, match="probabilities"):
        plot_heatmaps(capsule_network, images, probabilities=np.ones((2, 3)))


def test_repeated_calls_see_new_weights(capsule_network):
    images = random_images(2, 28, 28, seed=5)
    before = capsule_dissimilarities(capsule_network, images)
    prototypes = capsule_network.get_layer(
        "caps3_restricted_tangent_distance"
    ).prototypes
    original = np.asarray(keras.ops.convert_to_numpy(prototypes))
    try:
        prototypes.assign(original + 1.0)
        after = capsule_dissimilarities(capsule_network, images)
    finally:
        prototypes.assign(original)
    np.testing.assert_allclose(after["d_in_caps3"], before["d_in_caps3"], rtol=1e-5)
    assert not np.allclose(after["d_out"], before["d_out"])
