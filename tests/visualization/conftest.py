import os

import keras
import numpy as np
import pytest


def assert_png_is_nontrivial(path, min_width=150, min_height=100):
    """The PNG at `path` exists, is large enough and is not one colour.

    Also checks that no temporary file was left next to it.
    """
    from matplotlib import image as matplotlib_image

    assert os.path.isfile(path), f"no file at {path}"
    pixels = matplotlib_image.imread(path)
    assert pixels.ndim == 3, pixels.shape
    height, width = pixels.shape[:2]
    assert width >= min_width and height >= min_height, (width, height)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 10, f"only {len(colours)} colours"
    leftovers = [
        name for name in os.listdir(os.path.dirname(path)) if name.endswith(".tmp")
    ]
    assert not leftovers, leftovers


@pytest.fixture
def check_png():
    return assert_png_is_nontrivial


def eager_capsule_network_forward(model, images):
    """Run an LVQCapsuleNetwork layer by layer, eagerly, in inference mode.

    An independent path to the tensors the plots fetch with sub-models:
    returns the ReLU'd trunk dissimilarities and the outputs of Caps1, Caps2
    and Caps3 as NumPy arrays.
    """
    import anysma

    names = [layer.name for layer in model.layers]
    features = keras.ops.convert_to_tensor(np.asarray(images, "float32"))
    for layer in model.layers[1 : names.index("split")]:
        features = layer(features, training=False)
    signals, dissimilarities = model.get_layer("split")(features)
    dissimilarities = model.get_layer("dissimilarity_relu")(dissimilarities)
    results = {"d_in_caps1": dissimilarities}
    outputs = (signals, dissimilarities)
    for index in (1, 2, 3):
        layers = [
            layer for layer in model.layers if layer.name.startswith(f"caps{index}_")
        ]
        if index == 3:
            layers.append(model.get_layer("lvq_caps"))
        distribution = model.get_layer(f"caps{index}_routing").prototype_distribution
        capsule = anysma.Capsule(prototype_distribution=distribution, modules=layers)
        outputs = capsule(outputs)
        results[f"caps{index}"] = outputs
    return keras.tree.map_structure(
        lambda tensor: np.asarray(keras.ops.convert_to_numpy(tensor)), results
    )


def run_caps3_layer_by_layer(model, signals, dissimilarities):
    """Caps3 of an LVQCapsuleNetwork on given Caps2 outputs, eagerly."""
    signals = model.get_layer("caps3_reshape")(signals)
    signals = model.get_layer("caps3_conv")(signals)
    outputs = model.get_layer("caps3_input")((signals, dissimilarities))
    for name in ("caps3_restricted_tangent_distance", "caps3_routing", "lvq_caps"):
        outputs = model.get_layer(name)(outputs)
    return [np.asarray(keras.ops.convert_to_numpy(tensor)) for tensor in outputs]


def dense_decoder(num_classes=10, signal_dim=128, image_shape=(28, 28, 1), seed=0):
    """A tiny decoder: Dense (sigmoid) -> Reshape, and its NumPy twin."""
    import math

    keras.utils.set_random_seed(seed)
    decoder = keras.Sequential(
        [
            keras.Input((num_classes * signal_dim,)),
            keras.layers.Dense(math.prod(image_shape), activation="sigmoid"),
            keras.layers.Reshape(image_shape),
        ]
    )
    kernel, bias = decoder.layers[0].get_weights()

    def numpy_decoder(inputs):
        logits = np.asarray(inputs, "float64") @ kernel + bias
        return (1 / (1 + np.exp(-logits))).reshape((-1,) + tuple(image_shape))

    return decoder, numpy_decoder


@pytest.fixture(scope="session")
def capsule_network():
    """An untrained LVQ-capsule network for images of any size.

    Built once: building it compiles every initializer on JAX (slow).
    """
    import anysma

    keras.utils.set_random_seed(0)
    return anysma.models.LVQCapsuleNetwork(image_shape=(None, None, 1))


@pytest.fixture
def forward():
    return eager_capsule_network_forward


@pytest.fixture
def run_caps3():
    return run_caps3_layer_by_layer


@pytest.fixture
def make_decoder():
    return dense_decoder
