"""Plots of prototypes: images, spectra, and prototypes with their tangents."""

import math
import numbers

import keras
import numpy as np

from anysma.visualization._figures import check_positive_int
from anysma.visualization._figures import display_stack
from anysma.visualization._figures import finish
from anysma.visualization._figures import hide_ticks
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import to_numpy


def _check_image_shape(image_shape):
    if (
        not isinstance(image_shape, (list, tuple))
        or len(image_shape) not in (2, 3)
        or not all(
            isinstance(dim, numbers.Integral) and not isinstance(dim, bool) and dim > 0
            for dim in image_shape
        )
    ):
        raise ValueError(
            "`image_shape` must be (height, width) or (height, width, channels) "
            f"with positive ints. Received: image_shape={image_shape!r}"
        )
    return tuple(int(dim) for dim in image_shape)


def _as_images(vectors, image_shape, name):
    """Reshape `(count, features)` vectors to `(count, h, w, c)` images."""
    image_shape = _check_image_shape(image_shape)
    features = math.prod(vectors.shape[1:])
    if features != math.prod(image_shape):
        raise ValueError(
            f"`image_shape`={image_shape} holds {math.prod(image_shape)} values, "
            f"but each of the {name} has {features}. Received: {name} of shape "
            f"{vectors.shape}"
        )
    images = vectors.reshape((vectors.shape[0],) + image_shape)
    return images if len(image_shape) == 3 else images[..., None]


def _model_prototypes(model, need_subspaces=False):
    """`(prototypes, labels[, subspaces])` of an `anysma.models` LVQ model."""
    required = ("prototypes", "prototype_labels") + (
        ("subspaces",) if need_subspaces else ()
    )
    missing = [name for name in required if not hasattr(model, name)]
    if missing:
        kind = "a GTLVQ or RTLVQ model" if need_subspaces else "an LVQ model"
        raise TypeError(
            f"Expected {kind} from `anysma.models` (with the properties "
            f"{list(required)}) or arrays. Received: a {type(model).__name__} "
            f"without {missing}"
        )
    values = [
        to_numpy(model.prototypes, "prototypes"),
        list(model.prototype_labels),
    ]
    if need_subspaces:
        values.append(to_numpy(model.subspaces, "subspaces"))
    return values


def _check_labels(labels, count):
    if labels is None:
        return None
    labels = list(np.asarray(keras.ops.convert_to_numpy(labels)).tolist())
    if len(labels) != count:
        raise ValueError(
            f"`labels` must hold one label per prototype ({count}). "
            f"Received: {len(labels)} labels"
        )
    return labels


def plot_prototypes(
    prototypes_or_model, image_shape=None, labels=None, ncols=None, path=None
):
    """Plot prototypes as images or, for 1-D features, as spectra.

    Images get one panel each, in a grid of `ncols` columns (gray, scaled
    per prototype). Prototypes that are flat feature vectors and no
    `image_shape` give one line plot with a line per prototype, coloured by
    label: the "prototype spectra" of the Tecator experiment.

    Args:
        prototypes_or_model: An LVQ model of `anysma.models` (its
            `prototypes` and `prototype_labels` are used) or an array of
            prototypes, `(prototypes, features)` or images `(prototypes,
            height, width[, channels])`.
        image_shape: `(height, width[, channels])` to reshape flat
            prototypes to images, or `None`.
        labels: One label per prototype (titles, or the line colours of
            spectra); defaults to the model's `prototype_labels`.
        ncols: Panels per row of the image grid; defaults to
            `ceil(sqrt(prototypes))`.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> import anysma
    >>> from anysma.visualization import plot_prototypes
    >>> model = anysma.models.GLVQ(input_dim=16, num_classes=2)
    >>> figure = plot_prototypes(model, image_shape=(4, 4))
    >>> len(figure.axes)
    2
    """
    if isinstance(prototypes_or_model, keras.Model) or hasattr(
        prototypes_or_model, "prototype_labels"
    ):
        prototypes, model_labels = _model_prototypes(prototypes_or_model)
        labels = model_labels if labels is None else labels
    else:
        prototypes = to_numpy(prototypes_or_model, "prototypes_or_model")
    if prototypes.ndim < 2 or prototypes.shape[0] == 0:
        raise ValueError(
            "The prototypes must be an array (prototypes, features) or "
            "(prototypes, height, width[, channels]). Received: prototypes of "
            f"shape {prototypes.shape}"
        )
    labels = _check_labels(labels, prototypes.shape[0])
    ncols = check_positive_int(ncols, "ncols", allow_none=True)
    if image_shape is None and prototypes.ndim == 2:
        return _plot_spectra(prototypes, labels, path)
    if image_shape is not None:
        images = _as_images(prototypes, image_shape, "prototypes")
    elif prototypes.ndim in (3, 4):
        images = prototypes if prototypes.ndim == 4 else prototypes[..., None]
    else:
        raise ValueError(
            "Prototypes with more than three axes need an `image_shape`. "
            f"Received: prototypes of shape {prototypes.shape}"
        )
    return _plot_image_grid(display_stack(images, normalize=True), labels, ncols, path)


def _plot_spectra(prototypes, labels, path):
    figure = new_figure((8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    features = np.arange(1, prototypes.shape[1] + 1)
    classes = [] if labels is None else list(dict.fromkeys(labels))
    seen = set()
    for index, prototype in enumerate(prototypes):
        if labels is None:
            axes.plot(features, prototype, linewidth=1.2)
            continue
        label = labels[index]
        colour = f"C{classes.index(label) % 10}"
        axes.plot(
            features,
            prototype,
            color=colour,
            linewidth=1.2,
            label=None if label in seen else f"class {label}",
        )
        seen.add(label)
    axes.set_xlabel("feature")
    axes.set_ylabel("value")
    axes.set_title("Prototype spectra")
    if labels is not None:
        axes.legend()
    return finish(figure, path)


def _plot_image_grid(images, labels, ncols, path):
    count = images.shape[0]
    ncols = ncols or math.ceil(math.sqrt(count))
    rows = math.ceil(count / ncols)
    aspect = images.shape[2] / images.shape[1]
    figure = new_figure((1.3 * ncols * aspect + 0.2, 1.45 * rows + 0.2))
    grid = figure.subplots(rows, ncols, squeeze=False)
    for index, axes in enumerate(grid.flat):
        hide_ticks(axes)
        if index >= count:
            axes.set_axis_off()
            continue
        axes.imshow(images[index], cmap="gray", interpolation="nearest")
        if labels is not None:
            axes.set_title(str(labels[index]), fontsize=9)
    return finish(figure, path)


def plot_prototypes_with_tangents(model_or_prototypes, image_shape, path=None):
    """Plot every prototype followed by its tangent vectors, as images.

    One row per prototype: the prototype `w` (gray), then the basis vectors
    `W[:, k]` of its subspace (a diverging colour map centred at zero,
    since their sign carries the direction), as in the original
    `rtlvq_mnist` example (12 tangents per prototype).

    Args:
        model_or_prototypes: A `GTLVQ` or `RTLVQ` model of `anysma.models`,
            or a pair `(prototypes, tangents)` of arrays: prototypes
            `(prototypes, features)` and tangents `(prototypes, features,
            subspace_dim)` (the layout of `model.subspaces`) or `(features,
            subspace_dim)` when all prototypes share one subspace.
        image_shape: `(height, width[, channels])` of the images.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> import anysma
    >>> from anysma.visualization import plot_prototypes_with_tangents
    >>> model = anysma.models.RTLVQ(input_dim=16, num_classes=2,
    ...                             subspace_dim=3)
    >>> figure = plot_prototypes_with_tangents(model, image_shape=(4, 4))
    >>> len(figure.axes)
    8
    """
    if isinstance(model_or_prototypes, (tuple, list)):
        if len(model_or_prototypes) != 2:
            raise ValueError(
                "`model_or_prototypes` must be a model or a pair (prototypes, "
                f"tangents). Received: a sequence of length "
                f"{len(model_or_prototypes)}"
            )
        prototypes = to_numpy(model_or_prototypes[0], "prototypes")
        tangents = to_numpy(model_or_prototypes[1], "tangents")
        labels = None
    else:
        prototypes, labels, tangents = _model_prototypes(
            model_or_prototypes, need_subspaces=True
        )
    if prototypes.ndim != 2 or prototypes.shape[0] == 0:
        raise ValueError(
            "`prototypes` must be (prototypes, features). Received: prototypes "
            f"of shape {prototypes.shape}"
        )
    count, features = prototypes.shape
    if tangents.ndim == 2:
        tangents = np.broadcast_to(tangents, (count,) + tangents.shape)
    if tangents.ndim != 3 or tangents.shape[:2] != (count, features):
        raise ValueError(
            f"`tangents` must be ({count}, {features}, subspace_dim) or "
            f"({features}, subspace_dim) for prototypes of shape "
            f"{prototypes.shape}. Received: tangents of shape {tangents.shape}"
        )
    subspace_dim = tangents.shape[2]
    prototype_images = display_stack(
        _as_images(prototypes, image_shape, "prototypes"), normalize=True
    )
    # (prototypes, features, r) -> (prototypes * r, features) -> images.
    tangent_vectors = tangents.transpose(0, 2, 1).reshape(-1, features)
    tangent_images = _as_images(tangent_vectors, image_shape, "tangents")
    # Tangents are signed; show every channel side by side, centred at 0.
    batch, height, width, channels = tangent_images.shape
    tangent_images = tangent_images.transpose(0, 1, 3, 2).reshape(
        count, subspace_dim, height, channels * width
    )

    ncols = 1 + subspace_dim
    aspect = prototype_images.shape[2] / prototype_images.shape[1]
    figure = new_figure((1.1 * ncols * aspect + 0.6, 1.2 * count + 0.4))
    grid = figure.subplots(count, ncols, squeeze=False)
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.02, top=0.92)
    for row in range(count):
        grid[row, 0].imshow(prototype_images[row], cmap="gray")
        grid[row, 0].set_ylabel(
            str(labels[row]) if labels is not None else str(row), fontsize=9
        )
        for column in range(subspace_dim):
            tangent = tangent_images[row, column]
            limit = float(np.max(np.abs(tangent))) or 1.0
            grid[row, column + 1].imshow(
                tangent, cmap="RdBu_r", vmin=-limit, vmax=limit
            )
        for axes in grid[row]:
            hide_ticks(axes)
    grid[0, 0].set_title("w", fontsize=9)
    for column in range(subspace_dim):
        grid[0, column + 1].set_title(f"W[:, {column + 1}]", fontsize=9)
    return finish(figure, path)
