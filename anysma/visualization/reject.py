"""`plot_accuracy_coverage`: accuracy on the accepted samples against coverage."""

import numpy as np

from anysma.visualization._figures import finish
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import to_numpy


def _is_curve(value):
    return hasattr(value, "coverage") and hasattr(value, "accuracy")


def _check_values(values, name):
    """A non-empty 1-D float array of values in [0, 1]."""
    array = to_numpy(values, name).astype("float64")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"`{name}` must be a non-empty 1-D array. "
            f"Received: {name}.shape={array.shape}"
        )
    if not np.all((array >= 0) & (array <= 1)):
        raise ValueError(
            f"`{name}` must hold fractions in [0, 1]. Received: {name} with "
            f"values from {np.nanmin(array)} to {np.nanmax(array)}"
            f"{' and NaN' if np.isnan(array).any() else ''}"
        )
    return array


def _check_curve(coverage, accuracy, label):
    coverage = _check_values(coverage, "coverage")
    accuracy = _check_values(accuracy, "accuracy")
    if coverage.shape != accuracy.shape:
        raise ValueError(
            "`coverage` and `accuracy` must have the same length. Received: "
            f"coverage.shape={coverage.shape}, accuracy.shape={accuracy.shape}"
            + (f" for the curve {label!r}" if label is not None else "")
        )
    return coverage, accuracy


def _labelled_curves(curves_or_coverage, accuracy, labels):
    """`[(label or None, coverage, accuracy), ...]` from the accepted inputs."""
    if accuracy is not None:
        if _is_curve(curves_or_coverage) or isinstance(curves_or_coverage, dict):
            raise ValueError(
                "`accuracy` must be None when the first argument holds curves "
                "(they carry their own accuracy). Received: accuracy of type "
                f"{type(accuracy).__name__}"
            )
        pairs = [(curves_or_coverage, accuracy)]
    else:
        if _is_curve(curves_or_coverage):
            curves = [curves_or_coverage]
        elif isinstance(curves_or_coverage, dict):
            if labels is not None:
                raise ValueError(
                    "`labels` must be None when the curves come in a dict (its "
                    f"keys are the labels). Received: labels={labels!r}"
                )
            labels = [str(key) for key in curves_or_coverage]
            curves = list(curves_or_coverage.values())
        elif isinstance(curves_or_coverage, (list, tuple)) and curves_or_coverage:
            curves = list(curves_or_coverage)
        else:
            raise TypeError(
                "`curves_or_coverage` must be an accuracy-coverage curve (with "
                "`coverage` and `accuracy`, e.g. from "
                "`anysma.reject.accuracy_coverage_curve`), a non-empty list or "
                "dict of them, or a coverage array together with `accuracy`. "
                "Received: curves_or_coverage of type "
                f"{type(curves_or_coverage).__name__}"
            )
        for curve in curves:
            if not _is_curve(curve):
                raise TypeError(
                    "Every curve must have `coverage` and `accuracy` (e.g. an "
                    "`anysma.reject.AccuracyCoverageCurve`); pass a coverage "
                    "array together with `accuracy` instead. Received: a curve "
                    f"of type {type(curve).__name__}"
                )
        if not curves:
            raise ValueError("`curves_or_coverage` must hold at least one curve.")
        pairs = [(curve.coverage, curve.accuracy) for curve in curves]
    if labels is None:
        labels = [None] * len(pairs)
    elif isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, (list, tuple)) or len(labels) != len(pairs):
        raise ValueError(
            f"`labels` must be one name per curve ({len(pairs)}). "
            f"Received: labels={labels!r}"
        )
    labels = [None if label is None else str(label) for label in labels]
    return [
        (label, *_check_curve(coverage, accuracy, label))
        for label, (coverage, accuracy) in zip(labels, pairs)
    ]


def plot_accuracy_coverage(
    curves_or_coverage, accuracy=None, labels=None, title=None, path=None
):
    """Plot the accuracy on the accepted samples against the coverage.

    Each curve comes from a classifier with a reject option (see
    `anysma.reject`): at every threshold, the fraction of accepted samples
    (coverage, x axis) and the accuracy on them (y axis). Rejecting more
    (moving left) should raise the accuracy if the confidence is useful;
    the rightmost point (coverage 1) is the plain accuracy.

    Args:
        curves_or_coverage: One curve (an object with `coverage` and
            `accuracy`, such as the result of
            `anysma.reject.accuracy_coverage_curve`), a list of curves, a
            dict from name to curve (the names become the legend), or a
            coverage array (then pass `accuracy`).
        accuracy: The accuracy array for a coverage array; otherwise `None`.
        labels: Optional legend names, one per curve (not with a dict).
        title: The title of the plot; a default when `None`.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> from anysma.visualization import plot_accuracy_coverage
    >>> figure = plot_accuracy_coverage([1.0, 0.5, 0.25], [0.8, 0.9, 1.0])
    >>> figure.axes[0].get_xlabel()
    'coverage (fraction of accepted samples)'
    """
    if title is not None and not isinstance(title, str):
        raise TypeError(f"`title` must be None or a string. Received: title={title!r}")
    curves = _labelled_curves(curves_or_coverage, accuracy, labels)
    figure = new_figure((5.0, 3.8), layout="constrained")
    axes = figure.subplots()
    for label, coverage, values in curves:
        order = np.argsort(coverage, kind="stable")
        axes.plot(
            coverage[order],
            values[order],
            marker="." if coverage.size <= 50 else None,
            label=label,
        )
    lowest = min(float(values.min()) for _, _, values in curves)
    axes.set_xlim(0.0, 1.02)
    axes.set_ylim(max(0.0, lowest - 0.05), 1.01)
    axes.set_xlabel("coverage (fraction of accepted samples)")
    axes.set_ylabel("accuracy on accepted samples")
    axes.set_title("Accuracy-coverage curve" if title is None else title)
    axes.grid(True, alpha=0.3)
    if any(label is not None for label, _, _ in curves):
        axes.legend()
    return finish(figure, path)
