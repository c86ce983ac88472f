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


def run(args):
    """Train and evaluate; return the final metrics as a dict."""

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
    )


def train_on_flat_mnist(args, name, model, extra_callbacks=()):
    """Pre-train, fit and evaluate a compiled LVQ model on flattened MNIST.

    Shared by `lvq_mnist`, `rtlvq_mnist` and `robustness_mnist`: loads the
    data, loads `-w` weights, pre-trains by k-means on 10,000 training images
    (unless weights were given), trains (unless `-t`), saves the final
    weights and evaluates on both splits.

    Args:
        args: The parsed flags.
        name: The output subfolder.
        model: A compiled LVQ model on 784 features, 10 classes.
        extra_callbacks: Callbacks added to the common ones.

    Returns:
        `(directory, started, (x_train, y_train), (x_test, y_test),
        metrics)` with flattened images and integer labels.
    """
    from anysma.datasets import mnist

    directory, started = common.start(args, name)
    (x_train, y_train), (x_test, y_test) = common.load_image_data(
        mnist, args, channels_last=False
    )
    x_train = x_train.reshape(len(x_train), -1)
    x_test = x_test.reshape(len(x_test), -1)
    y_train_onehot = keras.utils.to_categorical(y_train, 10)
    y_test_onehot = keras.utils.to_categorical(y_test, 10)

    if args.weights:
        common.load_weights(model, args.weights)
    if not args.testing:
        if not args.weights:
            rows = np.random.default_rng(args.seed).choice(
                len(x_train), min(PRE_TRAINING_SAMPLES, len(x_train)), replace=False
            )
            model.pre_training(
                x_train[rows], y_train[rows], random_state=args.seed, n_init=1
            )
        model.fit(
            x_train,
            y_train_onehot,
            batch_size=args.batch_size,
            epochs=args.epochs,
            validation_data=(x_test, y_test_onehot),
            callbacks=common.training_callbacks(directory, debug=args.debug)
            + list(extra_callbacks),
            verbose=args.verbose,
        )
        common.save_final_weights(model, directory)
    metrics = {
        **common.evaluate(model, x_train, y_train_onehot, 256, "train"),
        **common.evaluate(model, x_test, y_test_onehot, 256, "test"),
    }
    return directory, started, (x_train, y_train), (x_test, y_test), metrics


def run_on_flat_mnist(args, name, model, plot, extra_callbacks=()):
    """`train_on_flat_mnist`, then the plots and `summary.json`.

    Shared by `lvq_mnist` and `rtlvq_mnist`.

    Args:
        args: The parsed flags.
        name: The experiment name (output subfolder).
        model: A compiled LVQ model on 784 features, 10 classes.
        plot: Function `(visualization, model, directory) -> [file names]`.
        extra_callbacks: Callbacks added to the common ones.
    """
    directory, started, _, _, metrics = train_on_flat_mnist(
        args, name, model, extra_callbacks
    )
    plots = []
    if not args.no_plots:
        visualization = common.optional_visualization()
        if visualization is not None:
            plots = plot(visualization, model, directory)
    return common.finish(directory, name, args, started, metrics, plots)


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
