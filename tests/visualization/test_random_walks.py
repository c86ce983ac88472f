import keras
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma.visualization import plot_random_walk_caps2  # noqa: E402
from anysma.visualization import plot_random_walk_caps3  # noqa: E402
from anysma.visualization import random_walk_caps2  # noqa: E402
from anysma.visualization import random_walk_caps3  # noqa: E402
from anysma.visualization import sample_restricted_parameters  # noqa: E402

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
# The network runs at any resolution; small images keep Caps1 cheap.
SMALL_IMAGE = (12, 12, 1)


@pytest.fixture(scope="module")
def walk_network(capsule_network):
    """The shared network with Caps3 bounds of different widths."""
    measuring = capsule_network.get_layer("caps3_restricted_tangent_distance")
    bounds = np.linspace(0.05, 1.0, 16)[None] * np.arange(1, 11)[:, None] / 10
    measuring.bounds.assign(bounds.astype("float32"))
    return capsule_network


def weights(model, name):
    return [np.asarray(weight.numpy()) for weight in model.get_layer(name).weights]


def masked(signals, class_index, num_classes=10):
    inputs = np.zeros((len(signals), num_classes, signals.shape[-1]))
    inputs[:, class_index] = signals
    return inputs.reshape(len(signals), -1)


def test_sample_restricted_parameters_follows_the_recipe():
    bounds = np.array([0.1, 0.5, 2.0])
    theta = sample_restricted_parameters(bounds, 4000, seed=7)
    assert theta.shape == (4000, 3)
    assert np.all(np.abs(theta) <= bounds + 1e-7)
    # The widest coordinate is uniform on [-max b, max b] ...
    assert theta[:, 2].min() < -1.9 and theta[:, 2].max() > 1.9
    assert abs(theta[:, 2].mean()) < 0.1
    # ... the others sit at their bound unless |u - 0.5| * 2 * max b < b.
    at_bound = np.isclose(np.abs(theta[:, 0]), 0.1)
    assert 0.93 < at_bound.mean() < 0.97  # expected 1 - 0.1 / 2 = 0.95
    uniform = np.random.default_rng(7).uniform(size=(4000, 3))
    np.testing.assert_allclose(
        theta, np.clip((uniform - 0.5) * 4.0, -bounds, bounds), rtol=1e-6
    )
    np.testing.assert_array_equal(
        theta, sample_restricted_parameters(bounds, 4000, seed=7)
    )


def test_sample_restricted_parameters_rejects_bad_bounds():
    with pytest.raises(ValueError, match="bounds"):
        sample_restricted_parameters(np.array([-0.1, 1.0]), 3)
    with pytest.raises(ValueError, match="bounds"):
        sample_restricted_parameters(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="num_samples"):
        sample_restricted_parameters(np.ones(2), 0)


def test_random_walk_caps3_decodes_points_of_the_orthotopes(walk_network, make_decoder):
    decoder, numpy_decoder = make_decoder(image_shape=SMALL_IMAGE)
    images, theta = random_walk_caps3(walk_network, decoder, num_samples=5, seed=3)
    assert images.shape == (10, 5, 12, 12, 1)
    assert theta.shape == (10, 5, 16)
    prototypes, bases, bounds = weights(
        walk_network, "caps3_restricted_tangent_distance"
    )
    for class_index in range(10):
        assert np.all(np.abs(theta[class_index]) <= bounds[class_index] + 1e-6)
        points = prototypes[class_index] + theta[class_index] @ bases[class_index].T
        expected = numpy_decoder(masked(points, class_index))
        np.testing.assert_allclose(images[class_index], expected, **TOLERANCE)
    # The walk moves: points differ, and the seed reproduces them.
    assert np.ptp(theta[9], axis=0).max() > 0.5
    _, same = random_walk_caps3(walk_network, decoder, num_samples=5, seed=3)
    _, other = random_walk_caps3(walk_network, decoder, num_samples=5, seed=4)
    np.testing.assert_array_equal(theta, same)
    assert not np.allclose(theta, other)


def test_random_walk_caps2_follows_the_four_steps(
    walk_network, make_decoder, run_caps3
):
    decoder, numpy_decoder = make_decoder(image_shape=SMALL_IMAGE)
    prototype_index = 3
    ideal, images, theta = random_walk_caps2(
        walk_network, decoder, prototype_index, num_samples=4, scale=2.0, seed=1
    )
    assert ideal.shape == (10, 12, 12, 1)
    assert images.shape == (10, 4, 12, 12, 1)
    assert theta.shape == (4, 16)
    assert np.all(np.abs(theta) <= 2.0) and np.abs(theta).max() > 1.0

    # 1. The ideal images decode the Caps3 prototypes.
    caps3_prototypes = weights(walk_network, "caps3_restricted_tangent_distance")[0]
    expected_ideal = np.concatenate(
        [numpy_decoder(masked(caps3_prototypes[[c]], c)) for c in range(10)]
    )
    np.testing.assert_allclose(ideal, expected_ideal, **TOLERANCE)

    # 2.-4. Caps2 outputs of the ideal images, one capsule replaced, Caps3.
    caps2_outputs = keras.Model(
        walk_network.inputs, list(walk_network.get_layer("caps2_routing").output)
    ).predict(ideal, verbose=0)
    signals, dissimilarities = (np.asarray(value) for value in caps2_outputs)
    prototype, basis = weights(walk_network, "caps2_tangent_distance")
    points = prototype[prototype_index] + theta @ basis[prototype_index].T
    for class_index in range(10):
        walked_signals = np.repeat(signals[[class_index]], 4, axis=0)
        walked_dissimilarities = np.repeat(dissimilarities[[class_index]], 4, axis=0)
        walked_signals[:, prototype_index] = points
        walked_dissimilarities[:, prototype_index] = 0
        caps3_signals = run_caps3(walk_network, walked_signals, walked_dissimilarities)[
            0
        ]
        expected = numpy_decoder(masked(caps3_signals[:, class_index], class_index))
        np.testing.assert_allclose(images[class_index], expected, **TOLERANCE)


def test_plots_save_pngs(walk_network, make_decoder, tmp_path, check_png):
    _, numpy_decoder = make_decoder(image_shape=SMALL_IMAGE)
    # A plain callable works as a decoder too.
    path = str(tmp_path / "caps3.png")
    figure = plot_random_walk_caps3(
        walk_network, numpy_decoder, num_samples=6, path=path
    )
    check_png(path)
    mosaic = figure.axes[0].images[0].get_array()
    assert mosaic.shape == (10 * 12, 6 * 12)
    path = str(tmp_path / "caps2.png")
    figure = plot_random_walk_caps2(
        walk_network, numpy_decoder, 15, num_samples=3, path=path
    )
    check_png(path)
    # The ideal image, then the walk.
    assert figure.axes[0].images[0].get_array().shape == (10 * 12, 4 * 12)


def test_bad_arguments_are_reported(walk_network, make_decoder):
    decoder, _ = make_decoder(image_shape=SMALL_IMAGE)
    small_decoder, _ = make_decoder(signal_dim=64, image_shape=SMALL_IMAGE)
    with pytest.raises(ValueError, match="decoder"):
        random_walk_caps3(walk_network, small_decoder, num_samples=2)
    with pytest.raises(TypeError, match="decoder"):
        random_walk_caps3(walk_network, "decoder", num_samples=2)
    with pytest.raises(ValueError, match="prototype_index"):
        random_walk_caps2(walk_network, decoder, 16, num_samples=2)
    with pytest.raises(ValueError, match="scale"):
        random_walk_caps2(walk_network, decoder, 0, num_samples=2, scale=-1.0)
    with pytest.raises(ValueError, match="num_samples"):
        plot_random_walk_caps3(walk_network, decoder, num_samples=0)
