"""Shared parts of the LVQ-capsule network experiments (MNIST, CIFAR-10, smallNORB).

Not an experiment itself: `lvq_caps_mnist`, `lvq_caps_cifar10` and
`lvq_caps_smallnorb48` build on it.
"""

import os

import keras
import numpy as np

from anysma.experiments import common
from anysma.experiments import data as data_lib

#: Number of validation samples in the spectral-lines plot (as the original).
SPECTRAL_LINE_SAMPLES = 1000
#: Number of random samples in the heatmap plot.
HEATMAP_SAMPLES = 6


def build_parser(prog, description, lr, lam_recon=None, setting=None, weights=()):
    """The flags of the LVQ-capsule experiments."""
    return common.build_parser(
        prog,
        description,
        epochs=50,
        batch_size=128,
        lr=lr,
        lam_recon=lam_recon,
        setting=setting,
        weights_names=weights,
    )


def compile_network(model, lr, **kwargs):
    """Adam and the generalized KL divergence on the probabilities."""
    from anysma import losses

    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=kwargs.pop("loss", losses.GeneralizedKullbackLeiblerDivergence()),
        **kwargs,
    )
    return model


def fit_and_evaluate(args, name, model, train, validation, augment, tests=()):
    """Train a probabilities-only LVQ-capsule network and evaluate it.

    Args:
        args: The parsed flags.
        name: The experiment name.
        model: A compiled `LVQCapsuleNetwork`.
        train: `(images, integer labels)` of the training split, or the
            user's `keras.utils.PyDataset` of `(images, one-hot labels)`.
        validation: `(images, labels)` of the validation split.
        augment: The training augmentation `(images, rng) -> images`.
        tests: Further `(prefix, images, labels)` splits to evaluate.

    Returns:
        `(directory, started, metrics)`.
    """
    directory, started = common.start(args, name)
    num_classes = model.num_classes
    if args.weights:
        common.load_weights(model, args.weights)
    validation_onehot = keras.utils.to_categorical(validation[1], num_classes)
    if not args.testing:
        batches = data_lib.training_batches(
            train, num_classes, args.batch_size, augment=augment, seed=args.seed
        )
        model.fit(
            batches,
            epochs=args.epochs,
            validation_data=(validation[0], validation_onehot),
            callbacks=common.training_callbacks(directory, debug=args.debug),
            # A stream of the user keeps its own order.
            shuffle=common.is_array_pair(train),
            verbose=args.verbose,
        )
        common.save_final_weights(model, directory)
    metrics = {
        "validation_accuracy": accuracy(model, validation[0], validation[1], args)
    }
    for prefix, images, labels in tests:
        metrics[f"{prefix}_accuracy"] = accuracy(model, images, labels, args)
    return directory, started, metrics


def accuracy(model, images, labels, args):
    """Accuracy of the argmax of `model`'s probabilities."""
    probabilities = common.predict(model, images, args.batch_size)
    return common.accuracy(probabilities, labels)


def caps3_input_dissimilarities(network, images, batch_size):
    """The 16 dissimilarities Caps2 passes to Caps3, `(samples, 16)`."""
    model = keras.Model(network.input, network.get_layer("caps2_routing").output[1])
    return common.predict(model, images, batch_size)


def analysis_plots(args, directory, network, spectral, heatmap, class_names=None):
    """The `-t` plots every LVQ-capsule experiment shares.

    Args:
        args: The parsed flags.
        directory: The output folder.
        network: The `LVQCapsuleNetwork` for the spectral lines.
        spectral: `(images, labels)` of the spectral lines (validation).
        heatmap: `(network, images)` of the heatmaps.
        class_names: Optional class names.

    Returns:
        The names of the written PNG files, and the visualization module
        (or `None` without matplotlib).
    """
    if args.no_plots:
        return [], None
    visualization = common.optional_visualization()
    if visualization is None:
        return [], None
    images, labels = spectral
    images, labels = images[:SPECTRAL_LINE_SAMPLES], labels[:SPECTRAL_LINE_SAMPLES]
    dissimilarities = caps3_input_dissimilarities(network, images, args.batch_size)
    visualization.plot_spectral_lines(
        dissimilarities,
        labels[: len(dissimilarities)],
        class_names=class_names,
        path=os.path.join(directory, "spectral_lines.png"),
    )
    heatmap_network, heatmap_images = heatmap
    rows = np.random.default_rng(args.seed).choice(
        len(heatmap_images), min(HEATMAP_SAMPLES, len(heatmap_images)), replace=False
    )
    visualization.plot_heatmaps(
        heatmap_network,
        heatmap_images[np.sort(rows)],
        path=os.path.join(directory, "heatmaps.png"),
    )
    return ["spectral_lines.png", "heatmaps.png"], visualization
