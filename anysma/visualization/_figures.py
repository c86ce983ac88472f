"""Figure plumbing shared by the plots: Agg figures, atomic PNG files, images.

Every figure is a `matplotlib.figure.Figure` with its own Agg canvas, never
a pyplot figure: nothing global (the pyplot state, the backend) changes,
and a figure is freed as soon as the caller drops it.
"""

import os

import keras
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from anysma.utils.files import write_atomically
from anysma.utils.validation import check_int


def new_figure(figsize, layout=None):
    """A `Figure` of `figsize` inches drawn by a private Agg canvas."""
    figure = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def check_path(path):
    """Validate an output path: `None` or a path ending in `.png`."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            "`path` must be None or a file path ending in '.png'. "
            f"Received: path={path!r} of type {type(path).__name__}"
        )
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(
            f"`path` must end in '.png' (the plots are saved as PNG). "
            f"Received: path={path!r}"
        )
    return path


def save_figure(figure, path, dpi=100):
    """Save `figure` as a PNG at `path`, atomically.

    The image is written to a hidden file next to `path` and moved into
    place with `os.replace` (`anysma.utils.files.write_atomically`), so
    `path` is either the old file or the complete new one, never a
    half-written image. Missing parent folders are created.
    """
    path = check_path(path)

    def write(temporary):
        # Mode "xb" keeps the usual file permissions (unlike mkstemp's 0600).
        with open(temporary, "xb") as stream:
            figure.savefig(stream, format="png", dpi=dpi)

    write_atomically(path, write)


def finish(figure, path):
    """Save `figure` when `path` is given; return it."""
    if path is not None:
        save_figure(figure, path)
    return figure


def to_numpy(value, name):
    """`value` (array-like or backend tensor) as a float NumPy array."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value))
    except Exception as error:  # any backend's conversion error
        raise TypeError(
            f"`{name}` must be an array or a tensor. Received: {name} of type "
            f"{type(value).__name__}"
        ) from error
    if not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(
            f"`{name}` must hold numbers. Received: {name} with dtype {array.dtype}"
        )
    return array.astype("float32")


def check_positive_int(value, name, allow_none=False):
    return check_int(value, name, minimum=1, allow_none=allow_none)


def check_image_batch(images, name):
    """`images` as a float array `(batch, height, width, channels)`."""
    images = to_numpy(images, name)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            f"`{name}` must be a non-empty batch of images, (batch, height, "
            f"width) or (batch, height, width, channels). Received: {name} of "
            f"shape {images.shape}"
        )
    return images


def class_indices(labels, num_samples, name="labels"):
    """Integer class labels from integers `(samples,)` or one-hot rows."""
    labels = np.asarray(keras.ops.convert_to_numpy(labels))
    if labels.ndim == 2:
        labels = np.argmax(labels, axis=-1)
    if (
        labels.ndim != 1
        or labels.shape[0] != num_samples
        or not np.all(np.equal(np.mod(labels, 1), 0))
        or np.any(labels < 0)
    ):
        raise ValueError(
            f"`{name}` must be {num_samples} non-negative integer labels, "
            f"(samples,) or one-hot (samples, classes). Received: {name} of "
            f"shape {labels.shape}"
        )
    return labels.astype("int64")


def display_stack(images, normalize=False):
    """Images `(batch, height, width, channels)` in a form `imshow` draws.

    One channel gives gray images `(batch, height, width)`; three or four
    give RGB(A) images, clipped to [0, 1] (or min-max scaled per image when
    `normalize`); any other number of channels (e.g. the stereo pairs of
    smallNORB) is laid out side by side as gray images.
    """
    batch, height, width, channels = images.shape
    if channels == 1:
        return images[..., 0]
    if channels in (3, 4):
        if normalize:
            low = images.min(axis=(1, 2, 3), keepdims=True)
            span = images.max(axis=(1, 2, 3), keepdims=True) - low
            images = (images - low) / np.where(span > 0, span, 1.0)
        return np.clip(images, 0.0, 1.0)
    return images.transpose(0, 1, 3, 2).reshape(batch, height, channels * width)


def hide_ticks(axes):
    axes.set_xticks([])
    axes.set_yticks([])


def show_mosaic(
    axes,
    mosaic,
    rows,
    tile_height,
    row_labels=None,
    separator_width=None,
    **imshow_kwargs,
):
    """Draw a tiled image, with one label per row of tiles.

    Thin lines separate the rows of tiles and, every `separator_width`
    pixels, the columns (e.g. every tile, or every pair of tiles).
    """
    axes.imshow(mosaic, cmap="gray", interpolation="nearest", **imshow_kwargs)
    axes.set_xticks([])
    if row_labels is None:
        axes.set_yticks([])
    else:
        axes.set_yticks(
            tile_height * np.arange(rows) + (tile_height - 1) / 2,
            [str(label) for label in row_labels],
        )
        axes.tick_params(axis="y", length=0)
    height, width = mosaic.shape[:2]
    line = {"colors": "tab:blue", "linewidths": 0.6}
    axes.hlines(np.arange(1, rows) * tile_height - 0.5, -0.5, width - 0.5, **line)
    if separator_width:
        axes.vlines(
            np.arange(separator_width, width, separator_width) - 0.5,
            -0.5,
            height - 0.5,
            **line,
        )
