"""Plots of classification-by-components: the components and the reasoning."""

import math

from anysma.visualization._figures import finish
from anysma.visualization._figures import hide_ticks
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import to_numpy

_REASONING_KINDS = ("positive", "negative", "indefinite")


def _components_of(components_or_model):
    if hasattr(components_or_model, "reasoning_probabilities") and hasattr(
        components_or_model, "components"
    ):
        return to_numpy(components_or_model.components, "components")
    if hasattr(components_or_model, "components_"):  # `CBCClassifier`
        return to_numpy(components_or_model.components_, "components_")
    if hasattr(components_or_model, "layers"):
        raise TypeError(
            "`components_or_model` must be a CBC model (`anysma.models.CBC`, "
            "`PatchCBC`), a fitted `CBCClassifier` or an array. Received: a "
            f"{type(components_or_model).__name__} without components"
        )
    return to_numpy(components_or_model, "components_or_model")


def plot_components(
    components_or_model, image_shape=None, path=None, title="Components"
):
    """Plot the components of a CBC, as images or as curves.

    Components of rank 3 or 4 (`PatchCBC`: `(K, height, width, channels)`)
    or flat components with an `image_shape` are drawn as images, one per
    panel; flat components without one as one curve each.

    Args:
        components_or_model: A `CBC` or `PatchCBC` model, a fitted
            `anysma.sklearn.CBCClassifier` or an array `(K, ...)`.
        image_shape: Optional `(height, width)` or `(height, width,
            channels)` to show flat components as images.
        path: Optional `.png` path to save the figure at.
        title: The figure title.

    Returns:
        A `matplotlib.figure.Figure`.

    Example:

    >>> import anysma
    >>> from anysma.visualization import plot_components
    >>> model = anysma.models.CBC(input_dim=16, num_classes=2, num_components=3)
    >>> figure = plot_components(model, image_shape=(4, 4))
    >>> len(figure.axes)
    3
    """
    components = _components_of(components_or_model)
    if components.ndim < 2 or components.shape[0] == 0:
        raise ValueError(
            "The components must be an array (components, ...). Received: an "
            f"array of shape {components.shape}"
        )
    if image_shape is not None:
        if math.prod(image_shape) != math.prod(components.shape[1:]):
            raise ValueError(
                f"`image_shape` must hold {math.prod(components.shape[1:])} "
                f"values per component. Received: image_shape={image_shape!r}"
            )
        components = components.reshape((len(components),) + tuple(image_shape))
    if components.ndim == 4 and components.shape[-1] == 1:
        components = components[..., 0]
    count = len(components)
    if components.ndim == 2:
        figure = new_figure((6, 3.5), layout="constrained")
        axes = figure.add_subplot()
        for index, component in enumerate(components):
            axes.plot(component, label=f"component {index}")
        axes.set_xlabel("feature")
        axes.set_title(title)
        if count <= 12:
            axes.legend(fontsize="small")
        return finish(figure, path)
    columns = min(count, 8)
    rows = math.ceil(count / columns)
    figure = new_figure((1.4 * columns + 0.4, 1.4 * rows + 0.6), layout="constrained")
    for index, component in enumerate(components):
        axes = figure.add_subplot(rows, columns, index + 1)
        if component.ndim == 3:  # colour: stretch to [0, 1] for display
            low, high = component.min(), component.max()
            component = (component - low) / (high - low if high > low else 1.0)
            axes.imshow(component)
        else:
            axes.imshow(component, cmap="gray")
        axes.set_title(str(index), fontsize="small")
        hide_ticks(axes)
    figure.suptitle(title)
    return finish(figure, path)


def _reasoning_of(reasoning_or_model):
    if hasattr(reasoning_or_model, "reasoning_probabilities"):
        reasoning = reasoning_or_model.reasoning_probabilities()
    elif hasattr(reasoning_or_model, "positive_reasoning_"):  # `CBCClassifier`
        reasoning = (
            reasoning_or_model.positive_reasoning_,
            reasoning_or_model.negative_reasoning_,
            reasoning_or_model.indefinite_reasoning_,
        )
    elif hasattr(reasoning_or_model, "layers"):
        raise TypeError(
            "`reasoning_or_model` must be a CBC model, a fitted "
            "`CBCClassifier` or a tuple (positive, negative, indefinite). "
            f"Received: a {type(reasoning_or_model).__name__}"
        )
    else:
        reasoning = reasoning_or_model
    if not isinstance(reasoning, (tuple, list)) or len(reasoning) not in (2, 3):
        raise TypeError(
            "The reasoning must be a tuple (positive, negative[, indefinite]) "
            f"of arrays (components, classes). Received: {type(reasoning).__name__}"
        )
    arrays = [to_numpy(array, kind) for array, kind in zip(reasoning, _REASONING_KINDS)]
    shapes = {array.shape for array in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(
            "The reasoning arrays must all be (components, classes). Received "
            f"shapes {[array.shape for array in arrays]}"
        )
    if len(arrays) == 2:
        arrays.append(1.0 - arrays[0] - arrays[1])
    return arrays


def plot_reasoning(reasoning_or_model, class_names=None, path=None, title="Reasoning"):
    """Plot the positive, negative and indefinite reasoning of every class.

    Three matrices side by side (components down, classes across), each
    entry a probability in `[0, 1]`: how much class `c` needs component `k`
    to be detected (positive), not detected (negative), or does not care
    (indefinite). The three sum to one entry by entry.

    Args:
        reasoning_or_model: A `CBC` or `PatchCBC` model, a fitted
            `anysma.sklearn.CBCClassifier` or a tuple `(positive, negative,
            indefinite)` of arrays `(components, classes)` (the indefinite
            one may be left out: it is one minus the others).
        class_names: Optional labels of the classes.
        path: Optional `.png` path to save the figure at.
        title: The figure title.

    Returns:
        A `matplotlib.figure.Figure`.

    Example:

    >>> import anysma
    >>> from anysma.visualization import plot_reasoning
    >>> model = anysma.models.CBC(input_dim=4, num_classes=3, num_components=5)
    >>> figure = plot_reasoning(model, class_names=["a", "b", "c"])
    >>> [axes.get_title() for axes in figure.axes[:3]]
    ['positive', 'negative', 'indefinite']
    """
    arrays = _reasoning_of(reasoning_or_model)
    components, classes = arrays[0].shape
    if class_names is not None and len(class_names) != classes:
        raise ValueError(
            f"`class_names` must name the {classes} classes. Received: "
            f"{len(class_names)} names"
        )
    width = 3 * (0.45 * classes + 1.2) + 1
    height = 0.3 * components + 1.6
    figure = new_figure((width, height), layout="constrained")
    grid = figure.subplots(1, 3, sharey=True)
    for axes, array, kind in zip(grid, arrays, _REASONING_KINDS):
        image = axes.imshow(array, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        axes.set_title(kind)
        axes.set_xlabel("class")
        axes.set_xticks(range(classes))
        axes.set_xticklabels(
            class_names if class_names is not None else range(classes),
            rotation=90 if class_names is not None else 0,
        )
    grid[0].set_ylabel("component")
    # One tick per component (every fifth for many), never fractions.
    grid[0].set_yticks(range(0, components, 1 if components <= 30 else 5))
    figure.colorbar(image, ax=list(grid), shrink=0.8)
    figure.suptitle(title)
    return finish(figure, path)
