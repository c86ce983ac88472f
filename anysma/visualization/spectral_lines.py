"""`plot_spectral_lines`: dissimilarity vectors of the samples, per class."""

import math

import keras
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.ticker import MaxNLocator

from anysma.visualization._figures import class_indices
from anysma.visualization._figures import finish
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import to_numpy


def plot_spectral_lines(dissimilarities, labels, class_names=None, path=None):
    """Plot each sample's dissimilarities to the prototypes as a line.

    One panel per class; in it, every sample of the class is a thin line
    over the prototypes (x axis, numbered from 1), and the class mean is
    drawn on top. Saralajew et al. (2018, Fig. 8, 11 and 13) plot the
    dissimilarities of the Caps3 inputs (the Caps2 outputs) this way and
    read off which Caps2 prototypes each class uses.

    Args:
        dissimilarities: `(samples, prototypes)`, e.g.
            `capsule_dissimilarities(model, images)["d_in_caps3"]` flattened,
            or `model.prototype_dissimilarities(x)` of an LVQ model.
        labels: Class labels, integers `(samples,)` or one-hot `(samples,
            classes)`.
        class_names: Optional names of the classes (panel titles); their
            number sets the number of panels.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> import numpy as np
    >>> from anysma.visualization import plot_spectral_lines
    >>> figure = plot_spectral_lines(np.random.rand(20, 16), np.arange(20) % 2)
    >>> len(figure.axes)
    2

    Reference:
        Saralajew, Nooka, Kaden and Villmann, "Learning Vector Quantization
        Capsules", Machine Learning Reports 02/2018.
    """
    dissimilarities = to_numpy(dissimilarities, "dissimilarities")
    if dissimilarities.ndim != 2 or dissimilarities.shape[0] == 0:
        raise ValueError(
            "`dissimilarities` must be (samples, prototypes). Received: "
            f"dissimilarities of shape {dissimilarities.shape}"
        )
    samples, prototypes = dissimilarities.shape
    labels = np.asarray(keras.ops.convert_to_numpy(labels))
    one_hot_width = labels.shape[1] if labels.ndim == 2 else 0
    labels = class_indices(labels, samples)
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        num_classes = len(class_names)
        if num_classes == 0 or labels.max() >= num_classes:
            raise ValueError(
                f"`class_names` must name every class (labels go up to "
                f"{labels.max()}). Received: {num_classes} class names"
            )
    else:
        num_classes = max(int(labels.max()) + 1, one_hot_width)
        class_names = [f"class {index}" for index in range(num_classes)]

    ncols = min(num_classes, 5)
    rows = math.ceil(num_classes / ncols)
    figure = new_figure((3.2 * ncols, 2.6 * rows), layout="constrained")
    grid = figure.subplots(rows, ncols, squeeze=False, sharex=True, sharey=True)
    positions = np.arange(1, prototypes + 1, dtype="float32")
    for index, axes in enumerate(grid.flat):
        if index >= num_classes:
            axes.set_axis_off()
            continue
        members = dissimilarities[labels == index]
        if len(members):
            lines = np.stack(
                [np.broadcast_to(positions, members.shape), members], axis=-1
            )
            # Thin, translucent lines: a thousand samples still show a density.
            axes.add_collection(
                LineCollection(lines, linewidths=0.5, alpha=0.15, colors=f"C{index}")
            )
            axes.plot(positions, members.mean(axis=0), color="black", linewidth=1.2)
        axes.set_title(f"{class_names[index]} ({len(members)})", fontsize=9)
        axes.set_xlim(0.5, prototypes + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    low, high = float(dissimilarities.min()), float(dissimilarities.max())
    margin = 0.05 * (high - low) or 0.5
    grid[0, 0].set_ylim(low - margin, high + margin)
    figure.supxlabel("prototype")
    figure.supylabel("dissimilarity")
    return finish(figure, path)
