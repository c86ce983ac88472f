"""Latent manipulation of CapsNet digit capsules (Sabour et al., 2017, Fig. 4)."""

import re

import keras
import numpy as np

from anysma.models import CapsNet
from anysma.visualization._figures import check_image_batch
from anysma.visualization._figures import display_stack
from anysma.visualization._figures import finish
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import show_mosaic
from anysma.visualization._figures import to_numpy
from anysma.visualization.tiling import combine_images

# The layer names belong to the models (see `CapsNet`, `CapsNetLVQ`).
IMAGES = CapsNet.IMAGES_LAYER
MASK = CapsNet.MASK_LAYER
DENSE_PATTERN = re.compile(re.escape(CapsNet.DECODER_DENSE_PREFIX) + r"(\d+)$")
DECODER_OUTPUT = CapsNet.DECODER_OUTPUT_LAYER
RECONSTRUCTION = CapsNet.RECONSTRUCTION_LAYER


def _decoder_layers(model):
    """The decoder of a CapsNet model: hidden Dense layers, output, Reshape."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`model` must be an `anysma.models.CapsNet` or `CapsNetLVQ`. "
            f"Received: model of type {type(model).__name__}"
        )
    names = {layer.name for layer in model.layers}
    missing = [
        name
        for name in (IMAGES, MASK, DECODER_OUTPUT, RECONSTRUCTION)
        if name not in names
    ]
    if missing:
        raise ValueError(
            "`model` must be an `anysma.models.CapsNet` or `CapsNetLVQ` (layers "
            f"'{IMAGES}', '{MASK}', '{CapsNet.DECODER_DENSE_PREFIX}<i>', "
            f"'{DECODER_OUTPUT}', "
            f"'{RECONSTRUCTION}'). Received: model {model.name!r} without the "
            f"layers {missing}"
        )
    hidden = sorted(
        (int(match.group(1)), layer)
        for layer in model.layers
        if (match := DENSE_PATTERN.match(layer.name))
    )
    return [layer for _, layer in hidden] + [
        model.get_layer(DECODER_OUTPUT),
        model.get_layer(RECONSTRUCTION),
    ]


def _class_index(label, num_classes):
    """An int class from an int or a one-hot vector."""
    value = np.asarray(keras.ops.convert_to_numpy(label))
    if value.ndim == 1 and value.size == num_classes:
        value = np.argmax(value)
    if (
        value.ndim != 0
        or not np.issubdtype(value.dtype, np.number)
        or value != np.round(value)
        or not 0 <= value < num_classes
    ):
        raise ValueError(
            f"`label` must be a class in [0, {num_classes}) or a one-hot vector "
            f"of length {num_classes}. Received: label={label!r}"
        )
    return int(value)


def default_perturbations():
    """-0.25 to 0.25 in steps of 0.05 (11 values), as Sabour et al."""
    return np.linspace(-0.25, 0.25, 11).astype("float32")


def manipulate_latent(model, image, label, perturbations=None):
    """Decode an image's digit capsule with each dimension perturbed in turn.

    The capsule of class `label` is computed for `image`; for every
    dimension `k` and perturbation `r`, `r` is added to its coordinate `k`
    (the other capsules are masked to zero, as in the decoder) and the
    result is decoded by the model's own decoder layers.

    Args:
        model: An `anysma.models.CapsNet` or `CapsNetLVQ`.
        image: `(height, width[, channels])` or a batch of one.
        label: The class whose capsule is perturbed: an int or a one-hot
            vector.
        perturbations: The values added to each coordinate; defaults to
            `default_perturbations()`, -0.25 to 0.25 in steps of 0.05.

    Returns:
        The decoded images, `(capsule_dim, perturbations, height, width,
        channels)`.
    """
    decoder_layers = _decoder_layers(model)
    expected = tuple(model.get_layer(IMAGES).output.shape[1:])
    image = to_numpy(image, "image")
    if image.shape == (1,) + expected:
        image = image[0]
    if image.shape == expected[:2] and expected[2] == 1:
        image = image[..., None]
    if image.shape != expected:
        raise ValueError(
            f"`image` must be one image of the model's shape {expected}. "
            f"Received: image of shape {image.shape}"
        )
    capsules_model = keras.Model(
        model.get_layer(IMAGES).output, model.get_layer(MASK).input[0]
    )
    capsules = np.asarray(capsules_model.predict(image[None], verbose=0))[0]
    num_classes, capsule_dim = capsules.shape
    label = _class_index(label, num_classes)
    perturbations = (
        default_perturbations()
        if perturbations is None
        else to_numpy(perturbations, "perturbations")
    )
    if perturbations.ndim != 1 or perturbations.size == 0:
        raise ValueError(
            "`perturbations` must be a non-empty vector. Received: perturbations "
            f"of shape {perturbations.shape}"
        )
    steps = perturbations.size
    # (capsule_dim, steps, capsule_dim): the capsule with coordinate k moved.
    manipulated = np.broadcast_to(
        capsules[label], (capsule_dim, steps, capsule_dim)
    ).copy()
    dims = np.arange(capsule_dim)
    manipulated[dims, :, dims] += perturbations
    masked = np.zeros((capsule_dim * steps, num_classes, capsule_dim), "float32")
    masked[:, label] = manipulated.reshape(-1, capsule_dim)
    outputs = keras.ops.convert_to_tensor(masked.reshape(capsule_dim * steps, -1))
    for layer in decoder_layers:
        outputs = layer(outputs)
    images = check_image_batch(keras.ops.convert_to_numpy(outputs), "reconstruction")
    return images.reshape((capsule_dim, steps) + images.shape[1:])


def plot_latent_manipulation(model, image, label, perturbations=None, path=None):
    """Plot the decoded latent manipulations of one image's digit capsule.

    One row per capsule dimension, one column per perturbation (see
    `manipulate_latent`), as in Sabour et al. (2017, Fig. 4): each row shows
    what the dimension encodes (stroke width, skew, scale, ...).

    Args:
        model: An `anysma.models.CapsNet` or `CapsNetLVQ`.
        image: `(height, width[, channels])`.
        label: The class of the capsule to perturb (int or one-hot).
        perturbations: The values added to each coordinate; defaults to
            -0.25 to 0.25 in steps of 0.05.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NeurIPS 2017, Section 5.1.
    """
    if perturbations is None:
        perturbations = default_perturbations()
    images = manipulate_latent(model, image, label, perturbations)
    label = _class_index(label, model.get_layer(MASK).input[0].shape[1])
    dims, steps = images.shape[:2]
    tiles = display_stack(images.reshape((-1,) + images.shape[2:]))
    height, width = tiles.shape[1:3]
    mosaic = combine_images(tiles, ncols=steps)
    inches = 0.45
    figure = new_figure(
        (inches * steps * width / height + 0.9, inches * dims + 1.0),
        layout="constrained",
    )
    axes = figure.add_subplot()
    show_mosaic(
        axes,
        mosaic,
        dims,
        height,
        row_labels=range(dims),
        separator_width=width,
        vmin=0,
        vmax=1,
    )
    perturbations = to_numpy(perturbations, "perturbations")
    axes.set_xticks(
        width * np.arange(steps) + (width - 1) / 2,
        [f"{value:+.2f}" for value in perturbations],
        fontsize=7,
        rotation=90,
    )
    axes.set_xlabel("perturbation")
    axes.set_ylabel("capsule dimension")
    axes.set_title(f"Latent manipulation of the class-{label} capsule")
    return finish(figure, path)
