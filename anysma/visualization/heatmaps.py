"""Dissimilarity heatmaps of the LVQ-capsule network (Saralajew et al., 2018)."""

import numpy as np

from anysma.visualization import _capsule_network as network
from anysma.visualization._figures import check_image_batch
from anysma.visualization._figures import check_positive_int
from anysma.visualization._figures import display_stack
from anysma.visualization._figures import finish
from anysma.visualization._figures import hide_ticks
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import to_numpy


def _dissimilarity_tensors(model):
    return {
        "d_in_caps1": model.get_layer(network.CAPS1_INPUT_DISSIMILARITIES).output,
        "d_in_caps2": model.get_layer(network.CAPS1_ROUTING).output[1],
        "d_in_caps3": model.get_layer(network.CAPS2_ROUTING).output[1],
        "d_out": model.get_layer(network.CAPS3_ROUTING).output[1],
        "p_out": model.get_layer(network.OUTPUT).output[2],
    }


def capsule_dissimilarities(model, images, batch_size=None):
    """The input and output dissimilarities of every capsule layer of an LVQ-CN.

    The tensors are fetched by the layer names of
    `anysma.models.LVQCapsuleNetwork` with one sub-model and one forward
    pass (inference mode). A model with a fixed resolution is rebuilt for
    the size of `images` (`model.with_image_shape`), so any image size
    works.

    Args:
        model: An `anysma.models.LVQCapsuleNetwork`.
        images: `(batch, height, width[, channels])`.
        batch_size: Batch size of the forward pass.

    Returns:
        A dict of NumPy arrays:

        - `"d_in_caps1"`: `(batch, height', width', dissimilarity_channels)`,
            the ReLU'd dissimilarity channels of the last trunk convolution
            (half the image resolution), one value per Caps1 input vector:
            a saliency-like map obtained in the forward pass;
        - `"d_in_caps2"`: `(batch, 8, 8)`, the 64 Caps1 output
            dissimilarities, laid out as the 8 x 8 map Caps2 reads;
        - `"d_in_caps3"`: `(batch, 4, 4)`, the 16 Caps2 output
            dissimilarities as the 4 x 4 map Caps3 reads;
        - `"d_out"`: `(batch, num_classes)`, the Caps3 (class) dissimilarities;
        - `"p_out"`: `(batch, num_classes)`, the class probabilities (the
            model's output).

    Example:

    >>> import anysma
    >>> import numpy as np
    >>> from anysma.visualization import capsule_dissimilarities
    >>> model = anysma.models.LVQCapsuleNetwork(image_shape=(None, None, 1))
    >>> values = capsule_dissimilarities(model, np.zeros((2, 28, 28, 1)))
    >>> values["d_in_caps1"].shape, values["d_in_caps2"].shape
    ((2, 14, 14, 1), (2, 8, 8))
    """
    network.check_capsule_network(model)
    images = check_image_batch(images, "images")
    batch_size = check_positive_int(batch_size, "batch_size", allow_none=True)
    model = network.model_for_images(model, images)
    extractor = network.feature_model(model, "dissimilarities", _dissimilarity_tensors)
    values = extractor.predict(images, batch_size=batch_size, verbose=0)
    values = {name: np.asarray(value) for name, value in values.items()}
    # Row-major, as the Reshape at the start of the next capsule layer.
    for name in ("d_in_caps2", "d_in_caps3"):
        value = values[name]
        values[name] = value.reshape((-1,) + network.square_grid(value.shape[1]))
    return values


def plot_heatmaps(model, images, reconstructions=None, probabilities=None, path=None):
    """Plot the dissimilarity maps of an LVQ-capsule network, one row per image.

    The columns (Saralajew et al., 2018, Fig. 4, 6 and 7): the input image;
    "d_in Caps1", the ReLU'd dissimilarity map of the last trunk
    convolution (half the image resolution; one column per dissimilarity
    channel), which the paper reads as a saliency map obtained for free;
    "d_in Caps2", the Caps1 output dissimilarities as 8 x 8; "d_in Caps3",
    the Caps2 output dissimilarities as 4 x 4; "d_out" and "p_out", the
    class dissimilarities and probabilities as columns (class 0 at the
    top); and, when given, the reconstructions. Low dissimilarities are
    dark.

    Args:
        model: An `anysma.models.LVQCapsuleNetwork` (any resolution; see
            `capsule_dissimilarities`).
        images: `(batch, height, width[, channels])`; keep the batch small
            (one row each).
        reconstructions: Optional images to show in a last column, one per
            input (e.g. a decoder's output), of any size.
        probabilities: Optional `(batch, num_classes)` to show as "p_out"
            instead of the model's output (e.g. averaged over augmentations).
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> import anysma
    >>> import numpy as np
    >>> from anysma.visualization import plot_heatmaps
    >>> model = anysma.models.LVQCapsuleNetwork(image_shape=(None, None, 1))
    >>> figure = plot_heatmaps(model, np.random.rand(2, 28, 28, 1))
    >>> [axes.get_title() for axes in figure.axes[:6]]
    ['input', 'd_in Caps1', 'd_in Caps2', 'd_in Caps3', 'd_out', 'p_out']

    Reference:
        Saralajew, Nooka, Kaden and Villmann, "Learning Vector Quantization
        Capsules", Machine Learning Reports 02/2018.
    """
    network.check_capsule_network(model)
    images = check_image_batch(images, "images")
    batch = images.shape[0]
    # Check the arguments before the forward pass.
    num_classes = model.get_layer(network.CAPS3_ROUTING).capsule_number
    if probabilities is not None:
        probabilities = to_numpy(probabilities, "probabilities")
        if probabilities.shape != (batch, num_classes):
            raise ValueError(
                f"`probabilities` must be {(batch, num_classes)}, one row of "
                "class probabilities per image. Received: probabilities of "
                f"shape {probabilities.shape}"
            )
    if reconstructions is not None:
        reconstructions = check_image_batch(reconstructions, "reconstructions")
        if reconstructions.shape[0] != batch:
            raise ValueError(
                f"`reconstructions` must hold one image per input ({batch}). "
                f"Received: reconstructions of shape {reconstructions.shape}"
            )
    values = capsule_dissimilarities(model, images)
    if probabilities is not None:
        values["p_out"] = probabilities

    # (title, images (batch, h, w[, 3]), imshow arguments, width ratio)
    columns = [("input", display_stack(images), {"cmap": "gray"}, 1.0)]
    caps1 = values["d_in_caps1"]
    for channel in range(caps1.shape[-1]):
        title = "d_in Caps1" if caps1.shape[-1] == 1 else f"d_in Caps1 [{channel}]"
        columns.append((title, caps1[..., channel], {"cmap": "viridis"}, 1.0))
    columns += [
        ("d_in Caps2", values["d_in_caps2"], {"cmap": "viridis"}, 1.0),
        ("d_in Caps3", values["d_in_caps3"], {"cmap": "viridis"}, 1.0),
        ("d_out", values["d_out"][..., None], {"cmap": "viridis"}, 0.3),
        (
            "p_out",
            values["p_out"][..., None],
            {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0},
            0.3,
        ),
    ]
    if reconstructions is not None:
        columns.append(
            ("reconstruction", display_stack(reconstructions), {"cmap": "gray"}, 1.0)
        )

    ratios = [column[3] for column in columns]
    figure = new_figure((1.5 * sum(ratios) + 0.3, 1.5 * batch + 0.4))
    grid = figure.subplots(
        batch, len(columns), squeeze=False, gridspec_kw={"width_ratios": ratios}
    )
    figure.subplots_adjust(
        left=0.02, right=0.98, bottom=0.02, top=1 - 0.4 / (1.5 * batch + 0.4)
    )
    for column, (title, panels, imshow_kwargs, ratio) in enumerate(columns):
        for row in range(batch):
            axes = grid[row, column]
            axes.imshow(
                panels[row],
                interpolation="nearest",
                aspect="auto" if ratio < 1 else "equal",
                **imshow_kwargs,
            )
            hide_ticks(axes)
        grid[0, column].set_title(title, fontsize=9)
    return finish(figure, path)
