"""Random walks in the prototype subspaces of an LVQ-capsule network.

Saralajew et al. (2018, Fig. 9, 10 and 12) decode points of the tangent
subspaces of the Caps3 and Caps2 prototypes with the reconstruction
network to show what the prototypes have learned.

Decoder convention: `decoder` maps the Caps3 signals masked to one class
and flattened, `(batch, num_classes * signal_dim)`, to images `(batch,
height, width[, channels])` in [0, 1] (the reconstruction network of the
`lvq_caps_mnist` experiment). It is a Keras model (run with `predict`) or
any callable.
"""

import numbers

import numpy as np

from anysma.visualization import _capsule_network as network
from anysma.visualization._figures import check_positive_int
from anysma.visualization._figures import display_stack
from anysma.visualization._figures import finish
from anysma.visualization._figures import new_figure
from anysma.visualization._figures import show_mosaic
from anysma.visualization._figures import to_numpy
from anysma.visualization.tiling import combine_images


def sample_restricted_parameters(bounds, num_samples, seed=None):
    """Random coordinates inside an orthotope `[-b, b]`, the original's recipe.

    `theta_k = clip((u_k - 0.5) * 2 * max(b), -b_k, b_k)` with `u_k ~
    U(0, 1)`: every coordinate is drawn uniformly from `[-max(b), max(b)]`
    and clipped to its own bound, so the coordinates with the widest bound
    range uniformly and those with small bounds mostly sit at `+-b_k`, the
    faces of the prototype's orthotope.

    Args:
        bounds: The bounds `b >= 0` of one restricted-tangent prototype,
            `(subspace_dim,)` (`RestrictedTangentDistance.bounds[i]`).
        num_samples: The number of points.
        seed: Seed or `numpy.random.Generator` (`None`: fresh entropy).

    Returns:
        A NumPy array `theta` of shape `(num_samples, subspace_dim)`.

    Example:

    >>> import numpy as np
    >>> bounds = np.array([0.1, 2.0], dtype="float32")
    >>> theta = sample_restricted_parameters(bounds, 500, seed=0)
    >>> bool(np.all(np.abs(theta) <= bounds))
    True
    """
    bounds = to_numpy(bounds, "bounds")
    if bounds.ndim != 1 or bounds.size == 0 or np.any(bounds < 0):
        raise ValueError(
            "`bounds` must be a non-empty vector of non-negative bounds "
            f"(subspace_dim,). Received: bounds of shape {bounds.shape} and "
            f"minimum {bounds.min() if bounds.size else None}"
        )
    num_samples = check_positive_int(num_samples, "num_samples")
    uniform = np.random.default_rng(seed).uniform(size=(num_samples, bounds.size))
    return np.clip((uniform - 0.5) * 2.0 * bounds.max(), -bounds, bounds).astype(
        "float32"
    )


def _num_classes(model):
    return network.caps3_capsule(model).capsule_number


def random_walk_caps3(model, decoder, num_samples=20, seed=0):
    """Decode random points of every class's Caps3 prototype orthotope.

    For class `c` with restricted-tangent prototype `w` (origin), basis `W`
    and bounds `b` (`RestrictedTangentDistance` of Caps3): draw `theta`
    with `sample_restricted_parameters(b, num_samples)`, place `w + W theta`
    in slot `c` of a zero `(num_classes, signal_dim)` mask, flatten and
    decode.

    Args:
        model: An `anysma.models.LVQCapsuleNetwork`.
        decoder: See the module docstring.
        num_samples: Points per class.
        seed: Seed of the random points.

    Returns:
        A pair `(images, parameters)`: the decoded images `(num_classes,
        num_samples, height, width, channels)` and the coordinates `theta`,
        `(num_classes, num_samples, subspace_dim)`.
    """
    network.check_capsule_network(model)
    num_samples = check_positive_int(num_samples, "num_samples")
    measuring = model.get_layer(network.CAPS3_MEASURING)
    num_classes = _num_classes(model)
    rng = np.random.default_rng(seed)
    inputs, parameters = [], []
    for class_index in range(num_classes):
        prototype, basis, bounds = network.subspace_of(
            measuring, network.class_prototype_index(model, class_index)
        )
        theta = sample_restricted_parameters(bounds, num_samples, seed=rng)
        points = prototype + theta @ basis.T
        inputs.append(network.mask_to_class(points, class_index, num_classes))
        parameters.append(theta)
    images = network.decode(decoder, np.concatenate(inputs))
    images = images.reshape((num_classes, num_samples) + images.shape[1:])
    return images, np.stack(parameters)


def _walk_figure(mosaic_images, num_classes, title, first_column_title=None):
    rows, columns = mosaic_images.shape[:2]
    flat = display_stack(mosaic_images.reshape((-1,) + mosaic_images.shape[2:]))
    mosaic = combine_images(flat, ncols=columns)
    height, width = flat.shape[1:3]
    inches = 0.5
    figure = new_figure(
        (inches * columns * width / height + 0.8, inches * rows + 0.7),
        layout="constrained",
    )
    axes = figure.add_subplot()
    show_mosaic(
        axes,
        mosaic,
        rows,
        height,
        row_labels=range(num_classes),
        separator_width=width,
        vmin=0,
        vmax=1,
    )
    axes.set_ylabel("class")
    if first_column_title is not None:
        axes.set_xticks([(width - 1) / 2], [first_column_title])
    axes.set_title(title)
    return figure


def plot_random_walk_caps3(model, decoder, num_samples=20, seed=0, path=None):
    """Plot decoded random points of the Caps3 prototypes, one row per class.

    See `random_walk_caps3` for the recipe (Saralajew et al., 2018,
    Fig. 9 right).

    Args:
        model: An `anysma.models.LVQCapsuleNetwork`.
        decoder: A Keras model or callable from `(batch, num_classes *
            signal_dim)` to images in [0, 1] (see the module docstring).
        num_samples: Points per class (columns).
        seed: Seed of the random points.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Reference:
        Saralajew, Nooka, Kaden and Villmann, "Learning Vector Quantization
        Capsules", Machine Learning Reports 02/2018.
    """
    images, _ = random_walk_caps3(model, decoder, num_samples=num_samples, seed=seed)
    figure = _walk_figure(
        images, images.shape[0], "Random walk in the Caps3 prototype orthotopes"
    )
    return finish(figure, path)


def random_walk_caps2(
    model, decoder, prototype_index, num_samples=10, scale=5.0, seed=0
):
    """Decode digits whose Caps2 prototype `prototype_index` walks its subspace.

    The recipe of Saralajew et al. (2018, Fig. 9 and 10), per class `c`:

    1. decode the Caps3 prototype of class `c` (its origin `w` in slot `c`
       of a zero mask) into an "ideal" image;
    2. run the ideal image through the network up to Caps2;
    3. replace the Caps2 output of prototype `prototype_index` by `w' + W'
       theta` (its origin and tangent basis) and its dissimilarity by 0,
       with `theta = (U(0, 1) - 0.5) * 2 * scale` (the same `num_samples`
       draws for every class, so the columns compare);
    4. run Caps3 (the model's Caps3 modules, chained as an
       `anysma.Capsule`) on the new signals and decode its output signals,
       masked to class `c`.

    Args:
        model: An `anysma.models.LVQCapsuleNetwork`.
        decoder: See the module docstring.
        prototype_index: The Caps2 prototype, in `[0, 16)` (0-based; the
            paper's prototypes "1" and "16" are 0 and 15).
        num_samples: Points of the walk per class.
        scale: Half-width of the coordinate range (`5` gives the paper's
            `(U - 0.5) * 10`).
        seed: Seed of the random points.

    Returns:
        A triple `(ideal_images, images, parameters)`: the decoded Caps3
        prototypes `(num_classes, height, width, channels)`, the decoded
        walks `(num_classes, num_samples, height, width, channels)` and
        `theta`, `(num_samples, subspace_dim)`.
    """
    network.check_capsule_network(model)
    if isinstance(prototype_index, bool) or not isinstance(
        prototype_index, numbers.Integral
    ):
        raise ValueError(
            "`prototype_index` must be an int (a Caps2 prototype). Received: "
            f"prototype_index={prototype_index!r}"
        )
    num_samples = check_positive_int(num_samples, "num_samples")
    if (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not np.isfinite(scale)
        or scale < 0
    ):
        raise ValueError(
            f"`scale` must be a finite number >= 0. Received: scale={scale!r}"
        )
    caps2_measuring = model.get_layer(network.CAPS2_MEASURING)
    prototype, basis, _ = network.subspace_of(caps2_measuring, int(prototype_index))
    slot = int(caps2_measuring.prototype_tables.capsule_extension[prototype_index])
    num_classes = _num_classes(model)

    # 1. The ideal image of every class.
    caps3_measuring = model.get_layer(network.CAPS3_MEASURING)
    origins = np.stack(
        [
            network.subspace_of(
                caps3_measuring, network.class_prototype_index(model, class_index)
            )[0]
            for class_index in range(num_classes)
        ]
    )
    ideal_inputs = np.concatenate(
        [
            network.mask_to_class(origins[[c]], c, num_classes)
            for c in range(num_classes)
        ]
    )
    ideal_images = network.decode(decoder, ideal_inputs)

    # 2. Up to Caps2.
    caps2_model = network.feature_model(
        network.model_for_images(model, ideal_images),
        "caps2_outputs",
        lambda model: list(model.get_layer(network.CAPS2_ROUTING).output),
    )
    caps2_outputs = caps2_model.predict(ideal_images, verbose=0)
    signals, dissimilarities = (np.asarray(value) for value in caps2_outputs)

    # 3. Replace one Caps2 capsule by points of its prototype's subspace.
    uniform = np.random.default_rng(seed).uniform(size=(num_samples, basis.shape[1]))
    parameters = ((uniform - 0.5) * 2.0 * scale).astype("float32")
    points = prototype + parameters @ basis.T
    walked_signals = np.repeat(signals, num_samples, axis=0)
    walked_dissimilarities = np.repeat(dissimilarities, num_samples, axis=0)
    walked_signals[:, slot] = np.tile(points, (num_classes, 1))
    walked_dissimilarities[:, slot] = 0.0

    # 4. Caps3 and the decoder.
    caps3 = network.caps3_capsule(model)
    caps3_signals = caps3.get_module_output(
        network.OUTPUT, (walked_signals, walked_dissimilarities)
    )[0]
    inputs = np.concatenate(
        [
            network.mask_to_class(
                caps3_signals[c * num_samples : (c + 1) * num_samples, c],
                c,
                num_classes,
            )
            for c in range(num_classes)
        ]
    )
    images = network.decode(decoder, inputs)
    images = images.reshape((num_classes, num_samples) + images.shape[1:])
    return ideal_images, images, parameters


def plot_random_walk_caps2(
    model, decoder, prototype_index, num_samples=10, scale=5.0, seed=0, path=None
):
    """Plot how a Caps2 prototype's subspace changes the decoded digits.

    One row per class: the decoded Caps3 prototype ("ideal" image), then the
    images decoded after moving Caps2 prototype `prototype_index` through
    its tangent subspace; see `random_walk_caps2` for the recipe
    (Saralajew et al., 2018, Fig. 9 and 10).

    Args:
        model: An `anysma.models.LVQCapsuleNetwork`.
        decoder: A Keras model or callable from `(batch, num_classes *
            signal_dim)` to images in [0, 1] (see the module docstring).
        prototype_index: The Caps2 prototype, 0-based.
        num_samples: Points of the walk per class.
        scale: Half-width of the coordinate range.
        seed: Seed of the random points.
        path: Optional `.png` file to save the figure to.

    Returns:
        The `matplotlib.figure.Figure`.

    Reference:
        Saralajew, Nooka, Kaden and Villmann, "Learning Vector Quantization
        Capsules", Machine Learning Reports 02/2018.
    """
    ideal_images, images, _ = random_walk_caps2(
        model,
        decoder,
        prototype_index,
        num_samples=num_samples,
        scale=scale,
        seed=seed,
    )
    rows = np.concatenate([ideal_images[:, None], images], axis=1)
    figure = _walk_figure(
        rows,
        rows.shape[0],
        f"Random walk of Caps2 prototype {prototype_index}",
        first_column_title="ideal",
    )
    return finish(figure, path)
