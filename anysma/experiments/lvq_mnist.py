"""GLVQ on MNIST, as in the original `lvq_mnist.py`.

Three prototypes per class, the squared Euclidean distance, the closest
prototype of each class competing, `flip` probabilities and the GLVQ cost.
The prototypes start as per-class k-means centres of 10,000 random training
images. Adam (lr 1e-4), batch 32, 25 epochs, early stopping on the training
loss (patience 5). The original reported "around 90%" test accuracy; as in
the original, the MNIST test set doubles as the validation set that selects
`best.weights.h5`, and the reported test accuracy is that of the final model.

Outputs in `<save_dir>/lvq_mnist/`: log.csv, best/final weights,
summary.json, prototypes.png and training_curves.png.
"""

import os
import sys

import keras
import numpy as np

from anysma.experiments import common

NAME = "lvq_mnist"
DATASET = "mnist"
EXPECTED = "about 90% test accuracy (original)"
IMAGE_SHAPE = (28, 28)
PROTOTYPES_PER_CLASS = 3
PRE_TRAINING_SAMPLES = 10000


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    return common.build_parser(prog, __doc__, epochs=25, batch_size=32, lr=1e-4)


def build_model(lr):
    from anysma import losses
    from anysma.models import GLVQ

    model = GLVQ(
        input_dim=int(np.prod(IMAGE_SHAPE)),
        num_classes=10,
        prototypes_per_class=PROTOTYPES_PER_CLASS,
        name="glvq",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=losses.GlvqLoss(),
        metrics=["accuracy"],
    )
    return model


def run(args, data=None):
    """Train and evaluate; return the final metrics as a dict.

    Args:
        args: The parsed flags (`build_parser().parse_args(...)`).
        data: Your own data in place of the MNIST files, an
            `anysma.experiments.ExperimentData` of `(inputs, targets)`
            arrays or streams: inputs `(n, 784)` in [0, 1], one-hot targets
            `(n, 10)`. `None` (the default) reads MNIST.
    """

    def plot(visualization, model, directory):
        visualization.plot_prototypes(
            model,
            image_shape=IMAGE_SHAPE,
            ncols=10,
            path=os.path.join(directory, "prototypes.png"),
        )
        return ["prototypes.png"]

    return run_on_flat_mnist(
        args,
        NAME,
        build_model(args.lr),
        plot,
        extra_callbacks=[keras.callbacks.EarlyStopping(monitor="loss", patience=5)],
        data=data,
    )


def train_on_flat_mnist(
    args, name, model, extra_callbacks=(), data=None, test_arrays=False
):
    """Pre-train, fit and evaluate a compiled LVQ model on flattened MNIST.

    Shared by `lvq_mnist`, `rtlvq_mnist` and `robustness_mnist`: loads the
    data, loads `-w` weights, pre-trains by k-means (unless weights were
    given), trains (unless `-t`), saves the final weights and evaluates on
    both splits.

    The k-means runs on 10,000 random training images of array data, and
    as `MiniBatchKMeans.partial_fit` over one pass of a stream.

    Args:
        args: The parsed flags.
        name: The output subfolder.
        model: A compiled LVQ model on 784 features, 10 classes.
        extra_callbacks: Callbacks added to the common ones.
        data: An `anysma.experiments.ExperimentData` in place of the MNIST
            files, or `None`.
        test_arrays: The test part of `data` must be arrays.

    Returns:
        `(directory, started, train, test, metrics)`; `train` and `test`
        are `(inputs, one-hot targets)` arrays, or the streams of `data`.
    """
    if data is None:
        train, test = _flat_mnist(args)
    else:
        train, test = common.check_experiment_data(
            data, args, (int(np.prod(IMAGE_SHAPE)),), 10, test_arrays=test_arrays
        )
    directory, started = common.start(args, name)

    if args.weights:
        common.load_weights(model, args.weights)
    if not args.testing:
        if not args.weights:
            _pre_train(model, train, args.seed)
        model.fit(
            **common.fit_arguments(train, args.batch_size),
            epochs=args.epochs,
            validation_data=test,
            callbacks=common.training_callbacks(directory, debug=args.debug)
            + list(extra_callbacks),
            # A stream of the user keeps its own order.
            shuffle=common.is_array_pair(train),
            verbose=args.verbose,
        )
        common.save_final_weights(model, directory)
    metrics = {
        "data": common.describe_data(data),
        **common.evaluate(model, train, 256, "train"),
        **common.evaluate(model, test, 256, "test"),
    }
    return directory, started, train, test, metrics


def _flat_mnist(args):
    """MNIST as `(images (n, 784), one-hot labels)` for training and test."""
    from anysma.datasets import mnist

    splits = common.load_image_data(mnist, args, channels_last=False)
    return tuple(
        (images.reshape(len(images), -1), keras.utils.to_categorical(labels, 10))
        for images, labels in splits
    )


def _pre_train(model, train, seed):
    """k-means on 10,000 random rows of arrays, or over one pass of a stream."""
    if not common.is_array_pair(train):
        model.pre_training(train, random_state=seed)
        return
    inputs, targets = train
    rows = np.random.default_rng(seed).choice(
        len(inputs), min(PRE_TRAINING_SAMPLES, len(inputs)), replace=False
    )
    model.pre_training(inputs[rows], targets[rows], random_state=seed, n_init=1)


def run_on_flat_mnist(args, name, model, plot, extra_callbacks=(), data=None):
    """`train_on_flat_mnist`, then the plots and `summary.json`.

    Shared by `lvq_mnist` and `rtlvq_mnist`.

    Args:
        args: The parsed flags.
        name: The experiment name (output subfolder).
        model: A compiled LVQ model on 784 features, 10 classes.
        plot: Function `(visualization, model, directory) -> [file names]`.
        extra_callbacks: Callbacks added to the common ones.
        data: An `anysma.experiments.ExperimentData`, or `None` for MNIST.
    """
    directory, started, _, _, metrics = train_on_flat_mnist(
        args, name, model, extra_callbacks, data
    )
    plots = []
    if not args.no_plots:
        visualization = common.optional_visualization()
        if visualization is not None:
            plots = plot(visualization, model, directory)
    return common.finish(directory, name, args, started, metrics, plots)


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
