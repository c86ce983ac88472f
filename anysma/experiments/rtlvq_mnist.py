"""Restricted tangent LVQ on MNIST, as in the original `rtlvq_mnist.py`.

One prototype per class, each a 12-dimensional orthotope (restricted tangent
distance) around a point; the class distances go through `neg_softmax`
into a categorical cross-entropy, which makes it a soft, RSLVQ-like cost
rather than the classic GLVQ one. Pre-training: per class, the k-means
centre and the 12 leading principal directions (truncated SVD). Adam
(lr 1e-3), 25 epochs, batch 32 (the original defined 128 but never passed
it to `fit`, so Keras used 32). The original reported "around 97%"; the MNIST
test set doubles as the validation set, as in the original.

Outputs in `<save_dir>/rtlvq_mnist/`: log.csv, best/final weights,
summary.json, prototypes_tangents.png and training_curves.png.
"""

import os
import sys

import keras
import numpy as np

from anysma.experiments import common

NAME = "rtlvq_mnist"
DATASET = "mnist"
EXPECTED = "about 97% test accuracy (original)"
IMAGE_SHAPE = (28, 28)
SUBSPACE_DIM = 12
PRE_TRAINING_SAMPLES = 10000


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    return common.build_parser(prog, __doc__, epochs=25, batch_size=32, lr=1e-3)


def build_model(lr):
    from anysma.models import RTLVQ

    model = RTLVQ(
        input_dim=int(np.prod(IMAGE_SHAPE)),
        num_classes=10,
        subspace_dim=SUBSPACE_DIM,
        probability_transformation="neg_softmax",
        name="rtlvq",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def run(args):
    """Train and evaluate; return the final metrics as a dict."""
    from anysma.datasets import mnist

    directory, started = common.start(args, NAME)
    (x_train, y_train), (x_test, y_test) = common.load_image_data(
        mnist, args, channels_last=False
    )
    x_train = x_train.reshape(len(x_train), -1)
    x_test = x_test.reshape(len(x_test), -1)
    y_train_onehot = keras.utils.to_categorical(y_train, 10)
    y_test_onehot = keras.utils.to_categorical(y_test, 10)

    model = build_model(args.lr)
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
            callbacks=common.training_callbacks(directory, debug=args.debug),
            verbose=args.verbose,
        )
        common.save_final_weights(model, directory)
    metrics = {
        **common.evaluate(model, x_train, y_train_onehot, 256, "train"),
        **common.evaluate(model, x_test, y_test_onehot, 256, "test"),
    }
    plots = []
    if not args.no_plots:
        visualization = common.optional_visualization()
        if visualization is not None:
            visualization.plot_prototypes_with_tangents(
                model,
                image_shape=IMAGE_SHAPE,
                path=os.path.join(directory, "prototypes_tangents.png"),
            )
            plots.append("prototypes_tangents.png")
    return common.finish(directory, NAME, args, started, metrics, plots)


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
