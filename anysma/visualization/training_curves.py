"""`plot_training_curves`: loss and metrics per epoch, training and validation."""

import csv
import math
import os

import numpy as np
from matplotlib.ticker import MaxNLocator

from anysma.visualization._figures import finish
from anysma.visualization._figures import new_figure

VALIDATION_PREFIX = "val_"


def _as_float(value, column):
    try:
        return float(value)
    except (TypeError, ValueError):
        # CSVLogger writes "NA" for values missing in an epoch.
        if value in ("", "NA", "nan", None):
            return math.nan
        raise ValueError(
            f"The training log column {column!r} must hold numbers. Received: {value!r}"
        ) from None


def load_training_log(log):
    """The per-epoch values of a training log, as a dict of NumPy arrays.

    Args:
        log: The path of a `keras.callbacks.CSVLogger` file, a
            `keras.callbacks.History` (what `fit` returns) or a dict of
            lists, `{"loss": [...], "val_loss": [...], ...}`.

    Returns:
        A dict from metric name to a float array with one value per epoch;
        an `"epoch"` column is dropped (the epochs are the positions).
    """
    if isinstance(log, (str, os.PathLike)):
        path = os.fspath(log)
        if not os.path.isfile(path):
            raise ValueError(
                "`log` must be an existing CSVLogger file. Received: "
                f"log={path!r}, which is not a file"
            )
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
            columns = reader.fieldnames or []
        values = {
            column: [_as_float(row.get(column), column) for row in rows]
            for column in columns
        }
    elif hasattr(log, "history") and isinstance(log.history, dict):
        values = log.history
    elif isinstance(log, dict):
        values = log
    else:
        raise TypeError(
            "`log` must be a CSVLogger file path, a keras.callbacks.History or a "
            f"dict of lists. Received: log of type {type(log).__name__}"
        )
    curves = {}
    for name, series in values.items():
        if name == "epoch":
            continue
        array = np.asarray(series, dtype="float64").reshape(-1)
        curves[str(name)] = array
    if not curves or all(curve.size == 0 for curve in curves.values()):
        raise ValueError(
            "`log` holds no values to plot (no metric with at least one epoch). "
            f"Received: columns {list(values)}"
        )
    return curves


def plot_training_curves(log, path=None):
    """Plot the loss and metric curves of a training run.

    One panel per quantity (`loss`, `accuracy`, ...), with the training
    values and, where logged, the validation values (`val_<name>`), over
    the epochs (numbered from 1).

    Args:
        log: The path of a `keras.callbacks.CSVLogger` file, a
            `keras.callbacks.History` or a dict of lists (see
            `load_training_log`).
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> from anysma.visualization import plot_training_curves
    >>> figure = plot_training_curves(
    ...     {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]})
    >>> [axes.get_title() for axes in figure.axes]
    ['loss', 'accuracy']
    """
    curves = load_training_log(log)
    names = list(
        dict.fromkeys(
            name[len(VALIDATION_PREFIX) :]
            if name.startswith(VALIDATION_PREFIX)
            else name
            for name in curves
        )
    )
    ncols = min(len(names), 3)
    rows = math.ceil(len(names) / ncols)
    figure = new_figure((4.2 * ncols, 3.2 * rows), layout="constrained")
    grid = figure.subplots(rows, ncols, squeeze=False)
    for index, axes in enumerate(grid.flat):
        if index >= len(names):
            axes.set_axis_off()
            continue
        name = names[index]
        for key, label, style in (
            (name, "training", "-"),
            (VALIDATION_PREFIX + name, "validation", "--"),
        ):
            if key in curves and curves[key].size:
                epochs = np.arange(1, curves[key].size + 1)
                axes.plot(epochs, curves[key], style, marker=".", label=label)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend()
    return finish(figure, path)
