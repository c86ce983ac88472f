"""`plot_certified_accuracy`: certified robust accuracy against the budget."""

import math
import numbers

import numpy as np

from anysma.visualization._figures import finish
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import to_numpy
from anysma.visualization.reject import _check_values


def _norm_label(norm):
    if isinstance(norm, str) and norm.lower() == "inf":
        norm = math.inf
    if isinstance(norm, bool) or not isinstance(norm, numbers.Real):
        norm = None
    if norm not in (1, 2, math.inf):
        raise ValueError(
            f"`norm` must be 1, 2, numpy.inf or 'inf'. Received: norm={norm!r}"
        )
    return "\u221e" if norm == math.inf else str(int(norm))


def _check_attacked(attacked, names):
    """`{name: (epsilons, accuracies)}` as 1-D arrays, names among `names`."""
    if attacked is None:
        return {}
    if not isinstance(attacked, dict):
        raise TypeError(
            "`attacked` must be None or a dict from curve name to "
            "`(epsilon, accuracy)`. Received: attacked of type "
            f"{type(attacked).__name__}"
        )
    points = {}
    for name, value in attacked.items():
        if name not in names:
            raise ValueError(
                f"`attacked` names a curve that is not plotted: {name!r}. "
                f"Expected one of {sorted(names)}"
            )
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ValueError(
                "Every value of `attacked` must be a pair `(epsilon, accuracy)`"
                f". Received: {value!r} for {name!r}"
            )
        epsilon = np.atleast_1d(to_numpy(value[0], "epsilon")).astype("float64")
        accuracy = _check_values(np.atleast_1d(value[1]), "accuracy")
        if epsilon.shape != accuracy.shape:
            raise ValueError(
                "`attacked` needs as many accuracies as epsilons. Received: "
                f"{epsilon.size} epsilons and {accuracy.size} accuracies for "
                f"{name!r}"
            )
        points[name] = (epsilon, accuracy)
    return points


def plot_certified_accuracy(
    epsilon, curves, norm=2, attacked=None, title=None, path=None
):
    """Plot the certified robust accuracy against the perturbation size.

    Each curve is `anysma.robustness.certified_accuracy(model, x, y,
    epsilon, norm)` over an array of `epsilon`: the fraction of samples
    that are classified correctly and cannot be misclassified by any
    perturbation of that size (a lower bound on the robust accuracy). The
    accuracy under an attack at some sizes (an upper bound, e.g.
    `anysma.robustness.empirical_robust_accuracy`) can be marked on the
    same axes; the true robust accuracy lies between the two.

    Args:
        epsilon: The perturbation sizes, a 1-D array (the x axis).
        curves: A dict from name to certified accuracies, one per `epsilon`.
        norm: The norm of the perturbations (axis label): 1, 2,
            `numpy.inf` or `"inf"`.
        attacked: Optional dict from a curve name to `(epsilon, accuracy)`
            (numbers or 1-D arrays): accuracies under attack, drawn as
            markers in the curve's color.
        title: The title of the plot; a default when `None`.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> import numpy as np
    >>> from anysma.visualization import plot_certified_accuracy
    >>> epsilon = np.linspace(0.0, 0.6, 7)
    >>> figure = plot_certified_accuracy(
    ...     epsilon, {"GLVQ": np.linspace(0.9, 0.3, 7)}, norm="inf",
    ...     attacked={"GLVQ": (0.3, 0.8)})
    >>> figure.axes[0].get_xlabel()
    'perturbation size \u03b5 (L\u221e norm)'
    """
    norm_label = _norm_label(norm)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"`title` must be None or a string. Received: title={title!r}")
    epsilon = to_numpy(epsilon, "epsilon").astype("float64")
    if epsilon.ndim != 1 or epsilon.size == 0 or not np.all(np.isfinite(epsilon)):
        raise ValueError(
            "`epsilon` must be a non-empty 1-D array of finite sizes. "
            f"Received: epsilon with shape {epsilon.shape}"
        )
    if not isinstance(curves, dict) or not curves:
        raise TypeError(
            "`curves` must be a non-empty dict from name to certified "
            f"accuracies. Received: curves of type {type(curves).__name__}"
        )
    checked = {}
    for name, values in curves.items():
        values = _check_values(values, "accuracy")
        if values.shape != epsilon.shape:
            raise ValueError(
                f"Every curve needs one accuracy per epsilon ({epsilon.size}). "
                f"Received: {values.size} for {name!r}"
            )
        checked[str(name)] = values
    points = _check_attacked(attacked, set(curves))

    figure = new_figure((5.0, 3.8), layout="constrained")
    axes = figure.subplots()
    for name, values in checked.items():
        (line,) = axes.plot(epsilon, values, label=f"{name}: certified")
        if name in points:
            axes.plot(
                *points[name],
                linestyle="none",
                marker="x",
                markersize=8,
                color=line.get_color(),
                label=f"{name}: under attack",
            )
    axes.set_xlim(float(epsilon.min()), float(epsilon.max()))
    axes.set_ylim(0.0, 1.01)
    axes.set_xlabel(f"perturbation size \u03b5 (L{norm_label} norm)")
    axes.set_ylabel("robust accuracy")
    axes.set_title("Certified robust accuracy" if title is None else title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    return finish(figure, path)
