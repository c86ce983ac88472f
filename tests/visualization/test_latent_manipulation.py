import keras
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma import models  # noqa: E402
from anysma.visualization import manipulate_latent  # noqa: E402
from anysma.visualization import plot_latent_manipulation  # noqa: E402

SMALL_CAPSNET = {
    "image_shape": (12, 12, 1),
    "num_classes": 3,
    "conv_filters": 8,
    "conv_kernel_size": 3,
    "primary_capsule_channels": 2,
    "primary_capsule_dim": 4,
    "digit_capsule_dim": 4,
    "decoder_units": [16],
}


def numpy_decoder(model, masked):
    """The CapsNet decoder (Dense ReLU -> Dense sigmoid -> Reshape) in NumPy."""
    kernel, bias = model.get_layer("decoder_dense_1").get_weights()
    hidden = np.maximum(masked @ kernel + bias, 0)
    kernel, bias = model.get_layer("decoder_output").get_weights()
    outputs = 1 / (1 + np.exp(-(hidden @ kernel + bias)))
    return outputs.reshape((-1, 12, 12, 1))


@pytest.fixture(scope="module")
def capsnet():
    keras.utils.set_random_seed(0)
    return models.CapsNet(**SMALL_CAPSNET)


def check_manipulations(model):
    image = np.random.RandomState(0).rand(12, 12, 1).astype("float32")
    outputs = model.predict({"images": image[None], "labels": None}, verbose=0)
    label = int(np.argmax(outputs["probabilities"][0]))
    perturbations = np.linspace(-0.25, 0.25, 11)
    images = manipulate_latent(model, image, label)
    assert images.shape == (4, 11, 12, 12, 1)
    # Zero perturbation: the model's own reconstruction (masked by argmax).
    for dimension in range(4):
        np.testing.assert_allclose(
            images[dimension, 5], outputs["reconstruction"][0], rtol=1e-4, atol=1e-5
        )
    capsules = keras.Model(
        model.get_layer("images").output, model.get_layer("mask").input[0]
    ).predict(image[None], verbose=0)[0]
    for dimension in range(4):
        for step, value in enumerate(perturbations):
            capsule = capsules[label].copy()
            capsule[dimension] += value
            masked = np.zeros((3, 4))
            masked[label] = capsule
            np.testing.assert_allclose(
                images[dimension, step],
                numpy_decoder(model, masked.reshape(1, -1))[0],
                rtol=1e-4,
                atol=1e-5,
            )


def test_manipulations_decode_the_perturbed_capsule(capsnet):
    check_manipulations(capsnet)


@pytest.mark.large
def test_manipulations_of_capsnet_lvq():
    keras.utils.set_random_seed(0)
    check_manipulations(models.CapsNetLVQ(**SMALL_CAPSNET))


def test_plot_latent_manipulation(capsnet, tmp_path, check_png):
    model = capsnet
    image = np.random.RandomState(1).rand(1, 12, 12, 1)
    path = str(tmp_path / "latent.png")
    figure = plot_latent_manipulation(
        model, image, keras.utils.to_categorical(2, 3), path=path
    )
    check_png(path)
    (axes,) = figure.axes
    assert axes.images[0].get_array().shape == (4 * 12, 11 * 12)
    ticks = [text.get_text() for text in axes.get_xticklabels()]
    assert ticks[0] == "-0.25" and ticks[5] == "+0.00" and ticks[-1] == "+0.25"
    assert "class-2" in axes.get_title()


def test_bad_arguments_are_reported(capsnet):
    model = capsnet
    image = np.zeros((12, 12, 1))
    with pytest.raises(ValueError, match="image"):
        manipulate_latent(model, np.zeros((10, 10, 1)), 0)
    with pytest.raises(ValueError, match="label"):
        manipulate_latent(model, image, 3)
    with pytest.raises(ValueError, match="label"):
        manipulate_latent(model, image, 1.5)
    with pytest.raises(ValueError, match="perturbations"):
        manipulate_latent(model, image, 0, perturbations=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="CapsNet"):
        manipulate_latent(models.GLVQ(input_dim=4, num_classes=2), image, 0)
    with pytest.raises(TypeError, match="CapsNet"):
        manipulate_latent("model", image, 0)
