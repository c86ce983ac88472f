"""`plot_relevance_matrix`: the classification correlation matrix of GMLVQ."""

import numpy as np

from anysma.visualization._figures import finish
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import to_numpy


def relevance_matrix_of(matrix_or_model):
    """The relevance matrix `Lambda` of a model, or a validated array.

    Args:
        matrix_or_model: A `GMLVQ` model (its `relevance_matrix`, `Omega
            Omega^T`), a `GRLVQ` model (the diagonal matrix of its
            `relevances`) or a square array.

    Returns:
        A float NumPy array `(features, features)`.
    """
    if hasattr(matrix_or_model, "relevance_matrix"):
        matrix = to_numpy(matrix_or_model.relevance_matrix, "relevance_matrix")
    elif hasattr(matrix_or_model, "relevances"):
        matrix = np.diag(to_numpy(matrix_or_model.relevances, "relevances"))
    elif hasattr(matrix_or_model, "omegas"):
        raise TypeError(
            "A localized model has one relevance matrix per prototype or "
            "class; pass one of them, e.g. `omegas[i] @ omegas[i].T`. "
            f"Received: a {type(matrix_or_model).__name__}"
        )
    elif hasattr(matrix_or_model, "layers"):
        raise TypeError(
            "`matrix_or_model` must be a GMLVQ or GRLVQ model or a square "
            f"array. Received: a {type(matrix_or_model).__name__} without "
            "`relevance_matrix` or `relevances`"
        )
    else:
        matrix = to_numpy(matrix_or_model, "matrix_or_model")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(
            "The relevance matrix must be square, (features, features). "
            f"Received: a matrix of shape {matrix.shape}"
        )
    return matrix


def plot_relevance_matrix(
    matrix_or_model, path=None, title="Classification correlation matrix Λ"
):
    """Plot the relevance matrix `Lambda = Omega Omega^T` as an image.

    The "classification correlation matrix" (CCM) of the original
    `gmlvq_tecator` example: entry `(i, j)` weighs the product of feature
    differences `i` and `j` in the distance, so the diagonal gives the
    relevance of each feature and the rest how features act together. A
    diverging colour map centred at zero shows the signs.

    Args:
        matrix_or_model: A `GMLVQ` or `GRLVQ` model of `anysma.models`, or a
            square array.
        path: Optional `.png` file to save the figure to.
        title: The title of the plot.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> import anysma
    >>> from anysma.visualization import plot_relevance_matrix
    >>> model = anysma.models.GMLVQ(input_dim=6, num_classes=2)
    >>> figure = plot_relevance_matrix(model)
    >>> figure.axes[0].images[0].get_array().shape
    (6, 6)
    """
    matrix = relevance_matrix_of(matrix_or_model)
    if not isinstance(title, str):
        raise TypeError(
            f"`title` must be a string. Received: title of type {type(title).__name__}"
        )
    figure = new_figure((6.0, 5.0), layout="constrained")
    axes = figure.add_subplot()
    limit = float(np.max(np.abs(matrix))) or 1.0
    image = axes.imshow(
        matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
    )
    figure.colorbar(image, ax=axes)
    axes.set_title(title)
    axes.set_xlabel("feature")
    axes.set_ylabel("feature")
    return finish(figure, path)
