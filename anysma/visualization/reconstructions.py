"""`plot_reconstructions`: images next to their reconstructions."""

import numpy as np

from anysma.visualization._figures import check_image_batch
from anysma.visualization._figures import check_positive_int
from anysma.visualization._figures import class_indices
from anysma.visualization._figures import display_stack
from anysma.visualization._figures import finish
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import show_mosaic
from anysma.visualization.tiling import combine_images


def plot_reconstructions(images, reconstructions, labels=None, per_class=10, path=None):
    """Plot (image, reconstruction) pairs side by side.

    With `labels`, row `c` shows the first `per_class` samples of class `c`
    (the "decoder plot" of the original experiments: 10 pairs per class);
    without, the samples fill rows of `per_class` pairs in order. Each pair
    is the original followed by its reconstruction.

    Args:
        images: `(samples, height, width[, channels])`, values in [0, 1].
        reconstructions: The same shape as `images`.
        labels: Optional class labels, integers `(samples,)` or one-hot.
        per_class: Pairs per row.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> import numpy as np
    >>> from anysma.visualization import plot_reconstructions
    >>> images = np.random.rand(6, 8, 8)
    >>> figure = plot_reconstructions(images, images, labels=[0, 1] * 3,
    ...                               per_class=3)
    >>> figure.axes[0].images[0].get_array().shape
    (16, 48)
    """
    images = check_image_batch(images, "images")
    reconstructions = check_image_batch(reconstructions, "reconstructions")
    if reconstructions.shape != images.shape:
        raise ValueError(
            "`reconstructions` must have the shape of `images`, "
            f"{images.shape}. Received: reconstructions of shape "
            f"{reconstructions.shape}"
        )
    per_class = check_positive_int(per_class, "per_class")
    samples = images.shape[0]
    if labels is None:
        rows = [
            np.arange(start, min(start + per_class, samples))
            for start in range(0, samples, per_class)
        ]
        row_labels = None
    else:
        labels = class_indices(labels, samples)
        classes = np.unique(labels)
        rows = [np.flatnonzero(labels == label)[:per_class] for label in classes]
        row_labels = classes

    originals = display_stack(images)
    reconstructed = display_stack(reconstructions)
    tiles = np.zeros((len(rows), 2 * per_class) + originals.shape[1:], "float32")
    for row, indices in enumerate(rows):
        tiles[row, 0 : 2 * len(indices) : 2] = originals[indices]
        tiles[row, 1 : 2 * len(indices) : 2] = reconstructed[indices]
    height, width = originals.shape[1:3]
    mosaic = combine_images(
        tiles.reshape((-1,) + originals.shape[1:]), ncols=2 * per_class
    )

    inches = 0.45
    figure = new_figure(
        (inches * 2 * per_class * width / height + 0.8, inches * len(rows) + 0.7),
        layout="constrained",
    )
    axes = figure.add_subplot()
    show_mosaic(
        axes,
        mosaic,
        len(rows),
        height,
        row_labels=row_labels,
        separator_width=2 * width,
        vmin=min(0.0, float(mosaic.min())),
        vmax=max(1.0, float(mosaic.max())),
    )
    axes.set_title("Images (left) and reconstructions (right), in pairs")
    if row_labels is not None:
        axes.set_ylabel("class")
    return finish(figure, path)
