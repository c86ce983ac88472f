"""Access to the parts of an `LVQCapsuleNetwork` by their layer names.

The plots fetch intermediate tensors by the layer names that
`anysma.models.LVQCapsuleNetwork` defines as class attributes (the original
fetched them by Keras' auto-generated names, which change with every model
built in a process).
"""

import weakref

import keras
import numpy as np

from anysma.capsule import Capsule
from anysma.models import LVQCapsuleNetwork
from anysma.visualization._figures import check_image_batch
from anysma.visualization._figures import to_numpy

# The layer names belong to the model (see `LVQCapsuleNetwork`).
CAPS1_INPUT_DISSIMILARITIES = LVQCapsuleNetwork.INPUT_DISSIMILARITIES_LAYER
CAPS1_ROUTING = LVQCapsuleNetwork.CAPS1_ROUTING_LAYER
CAPS2_ROUTING = LVQCapsuleNetwork.CAPS2_ROUTING_LAYER
CAPS3_ROUTING = LVQCapsuleNetwork.CAPS3_ROUTING_LAYER
CAPS2_MEASURING = LVQCapsuleNetwork.CAPS2_MEASURING_LAYER
CAPS3_MEASURING = LVQCapsuleNetwork.CAPS3_MEASURING_LAYER
OUTPUT = LVQCapsuleNetwork.OUTPUT_LAYER
CAPS3_PREFIX = LVQCapsuleNetwork.CAPS3_PREFIX

# Sub-models and resized copies per model, so that repeated plots reuse
# their compiled predict functions; entries vanish with the model.
_CACHE = weakref.WeakKeyDictionary()

REQUIRED_LAYERS = (
    CAPS1_INPUT_DISSIMILARITIES,
    CAPS1_ROUTING,
    CAPS2_ROUTING,
    CAPS2_MEASURING,
    CAPS3_MEASURING,
    CAPS3_ROUTING,
    OUTPUT,
)


def check_capsule_network(model, argument="model"):
    """Raise unless `model` has the layers of an `LVQCapsuleNetwork`."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`{argument}` must be an `anysma.models.LVQCapsuleNetwork`. "
            f"Received: {argument} of type {type(model).__name__}"
        )
    names = {layer.name for layer in model.layers}
    missing = [name for name in REQUIRED_LAYERS if name not in names]
    if missing:
        raise ValueError(
            f"`{argument}` must be an `anysma.models.LVQCapsuleNetwork` (or a "
            f"model with its layer names {list(REQUIRED_LAYERS)}). Received: "
            f"model {model.name!r} without the layers {missing}"
        )


def _cached(model, key, build):
    entries = _CACHE.setdefault(model, {})
    if key not in entries:
        entries[key] = build()
    return entries[key]


def feature_model(model, key, outputs):
    """A cached `keras.Model` from the model's input to `outputs(model)`."""
    return _cached(model, key, lambda: keras.Model(model.inputs, outputs(model)))


def model_for_images(model, images):
    """`model`, or the same network built for the size of `images`.

    A network with a fixed resolution is rebuilt for the images with
    `model.with_image_shape` (no weight depends on the resolution); the
    copy is kept and gets the current weights on every use.
    """
    expected = tuple(model.inputs[0].shape[1:])
    actual = tuple(images.shape[1:])
    if len(expected) != 3 or expected[2] != actual[2]:
        raise ValueError(
            f"The images must have the {expected[-1]} channels of the model's "
            f"input {expected}. Received: images of shape {images.shape}"
        )
    if all(dim is None or dim == size for dim, size in zip(expected, actual)):
        return model
    if not hasattr(model, "with_image_shape"):
        raise ValueError(
            f"The model takes images of shape {expected}. Received: images of "
            f"shape {images.shape}"
        )
    resized = _cached(
        model, ("image_shape", actual), lambda: model.with_image_shape(actual)
    )
    resized.set_weights(model.get_weights())
    return resized


def square_grid(count):
    """`(side, side)` when `count` is a square number, else `(1, count)`."""
    side = int(round(np.sqrt(count)))
    return (side, side) if side * side == count else (1, count)


def class_prototype_index(model, class_index):
    """The index of the first Caps3 prototype of class (capsule) `class_index`."""
    tables = model.get_layer(CAPS3_MEASURING).prototype_tables
    return int(tables.index_table[class_index, 0])


def subspace_of(module, prototype_index):
    """`(w, W, b)` of a tangent-distance prototype as NumPy arrays.

    `w` is the prototype `(features,)`, `W` the basis of its subspace
    `(features, subspace_dim)` and `b` its bounds `(subspace_dim,)`, or
    `None` for an unbounded (`TangentDistance`) prototype.
    """
    tables = module.prototype_tables
    if not 0 <= prototype_index < tables.proto_number:
        raise ValueError(
            f"`prototype_index` must be in [0, {tables.proto_number}) for the "
            f"{tables.proto_number} prototypes of `{module.name}`. Received: "
            f"prototype_index={prototype_index}"
        )
    prototypes = to_numpy(module.prototypes, "prototypes")
    prototype = prototypes.reshape(prototypes.shape[0], -1)[prototype_index]

    def per_prototype(weight):
        weight = to_numpy(weight, weight.name)
        if module.matrix_scope == "local":
            return weight[prototype_index]
        if module.matrix_scope == "capsule_wise":
            return weight[tables.capsule_extension[prototype_index]]
        return weight

    basis = per_prototype(module.matrices)
    bounds = per_prototype(module.bounds) if hasattr(module, "bounds") else None
    return prototype, basis, bounds


def caps3_capsule(model):
    """A `Capsule` chaining the model's Caps3 modules (shared weights)."""
    layers = [
        layer
        for layer in model.layers
        if layer.name.startswith(CAPS3_PREFIX) or layer.name == OUTPUT
    ]
    distribution = model.get_layer(CAPS3_ROUTING).prototype_distribution
    return Capsule(prototype_distribution=distribution, modules=layers)


def mask_to_class(signals, class_index, num_classes):
    """Flat decoder inputs: `signals` in the slot of one class, zeros else.

    Args:
        signals: `(batch, signal_dim)`.
        class_index: The slot.
        num_classes: The number of slots.

    Returns:
        `(batch, num_classes * signal_dim)`.
    """
    batch, signal_dim = signals.shape
    masked = np.zeros((batch, num_classes, signal_dim), dtype="float32")
    masked[:, class_index] = signals
    return masked.reshape(batch, num_classes * signal_dim)


def decode(decoder, inputs):
    """Images `(batch, height, width, channels)` decoded from flat inputs."""
    if isinstance(decoder, keras.Model):
        expected = decoder.inputs[0].shape[-1] if decoder.inputs else None
        if expected is not None and expected != inputs.shape[-1]:
            raise ValueError(
                f"`decoder` must take (batch, num_classes * signal_dim) = "
                f"(batch, {inputs.shape[-1]}) inputs. Received: a decoder with "
                f"input shape {tuple(decoder.inputs[0].shape)}"
            )
        outputs = decoder.predict(inputs, verbose=0)
    elif callable(decoder):
        outputs = decoder(inputs)
    else:
        raise TypeError(
            "`decoder` must be a Keras model or a callable mapping (batch, "
            "num_classes * signal_dim) to images. Received: decoder of type "
            f"{type(decoder).__name__}"
        )
    images = check_image_batch(outputs, "the decoder's output")
    if images.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"`decoder` must return one image per input ({inputs.shape[0]}). "
            f"Received: an output of shape {images.shape}"
        )
    return images
