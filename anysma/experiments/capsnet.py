"""Sabour et al.'s CapsNet on MNIST, as in the original `capsnet.py`.

`conv1` (256 9 x 9 filters, ReLU) -> PrimaryCaps (32 maps of 8-D capsules,
squashed) -> DigitCaps (16-D, dynamic routing, `--routings` iterations),
whose lengths are the class probabilities, plus a decoder that reconstructs
the image from the masked digit capsules. Margin loss + `--lam_recon` x MSE,
Adam, training images shifted by up to two pixels (the decoder reconstructs
the shifted image, as in Sabour et al.). The original reported ">99% in a
few epochs"; the MNIST test set doubles as the validation set, as in the
original.

`-t -w WEIGHTS` evaluates and writes the reconstructions and the latent
manipulation of `--digit` (each of the 16 dimensions perturbed from -0.25 to
0.25 in steps of 0.05).
"""

import os
import sys

import keras
import numpy as np

from anysma.experiments import common
from anysma.experiments import data as data_lib

NAME = "capsnet"
DATASET = "mnist"
EXPECTED = ">99% test accuracy in a few epochs (original)"
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    return common.build_parser(
        prog,
        __doc__,
        epochs=50,
        batch_size=128,
        lr=1e-3,
        lam_recon=0.392,
        routings=3,
        digit=True,
    )


def build_model(args):
    from anysma import losses
    from anysma.models import CapsNet

    model = CapsNet(routings=args.routings, name="capsnet")
    compile_capsnet(model, losses.MarginLoss(), args)
    return model


def compile_capsnet(model, loss, args):
    """Compile a CapsNet-like model: `loss` on the probabilities + MSE."""
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss={"probabilities": loss, "reconstruction": "mse"},
        loss_weights={"probabilities": 1.0, "reconstruction": args.lam_recon},
        metrics={"probabilities": ["accuracy"]},
    )


def _pack(augmented, original, labels):
    del original  # The decoder reconstructs what the network sees.
    onehot = keras.utils.to_categorical(labels, NUM_CLASSES)
    return (
        {"images": augmented, "labels": onehot},
        {"probabilities": onehot, "reconstruction": augmented},
    )


def run_capsnet_experiment(
    args,
    name,
    model,
    pre_train=None,
    data=None,
    augment=data_lib.random_shift,
    extra_callbacks=(),
    latent_plot=True,
):
    """Train/evaluate/plot a model with the CapsNet inputs and outputs.

    Args:
        args: The parsed flags.
        name: The experiment name (output subfolder).
        model: A compiled `CapsNet`, `CapsNetLVQ` or `EfficientCapsNet`.
        pre_train: Optional function `(model, train)` run before training
            when no weights are given; `train` is `(images, integer labels)`
            arrays or the user's `keras.utils.PyDataset`.
        data: An `anysma.experiments.ExperimentData` in place of the MNIST
            files (see `run`), or `None`.
        augment: The augmentation of every training batch, a function
            `(images, rng)` (see `anysma.experiments.data`).
        extra_callbacks: Keras callbacks added to the training callbacks,
            e.g. a learning rate schedule.
        latent_plot: Also plot the latent manipulation of `--digit` (needs
            the CapsNet decoder's layer names).
    """
    if data is None:
        from anysma.datasets import mnist

        (x_train, y_train), (x_test, y_test) = common.load_image_data(mnist, args)
        train = (x_train, y_train)
    else:
        train, (x_test, y_test) = common.user_image_data(
            data, args, IMAGE_SHAPE, NUM_CLASSES
        )
    directory, started = common.start(args, name)
    test_inputs = {
        "images": x_test,
        "labels": keras.utils.to_categorical(y_test, NUM_CLASSES),
    }
    test_targets = {"probabilities": test_inputs["labels"], "reconstruction": x_test}
    if args.weights:
        common.load_weights(model, args.weights)
    if not args.testing:
        if pre_train is not None and not args.weights:
            pre_train(model, train)
        batches = data_lib.training_batches(
            train,
            NUM_CLASSES,
            args.batch_size,
            augment=augment,
            pack=_pack,
            seed=args.seed,
        )
        model.fit(
            batches,
            epochs=args.epochs,
            validation_data=(test_inputs, test_targets),
            callbacks=common.training_callbacks(
                directory, monitor="val_probabilities_accuracy", debug=args.debug
            )
            + list(extra_callbacks),
            # A stream of the user keeps its own order.
            shuffle=common.is_array_pair(train),
            verbose=args.verbose,
        )
        common.save_final_weights(model, directory)
    outputs = model.predict(
        {"images": x_test, "labels": None}, batch_size=args.batch_size, verbose=0
    )
    reconstructions = outputs["reconstruction"]
    metrics = {
        "test_accuracy": common.accuracy(outputs["probabilities"], y_test),
        "test_reconstruction_mse": float(
            np.mean((reconstructions - x_test[: len(reconstructions)]) ** 2)
        ),
        "data": common.describe_data(data),
    }
    plots = []
    if not args.no_plots:
        visualization = common.optional_visualization()
        if visualization is not None:
            visualization.plot_reconstructions(
                x_test[: len(reconstructions)],
                reconstructions,
                labels=y_test[: len(reconstructions)],
                path=os.path.join(directory, "reconstructions.png"),
            )
            digit_rows = np.flatnonzero(y_test == args.digit) if latent_plot else []
            if len(digit_rows):
                visualization.plot_latent_manipulation(
                    model,
                    x_test[digit_rows[0]],
                    args.digit,
                    path=os.path.join(directory, f"manipulate-{args.digit}.png"),
                )
                plots.append(f"manipulate-{args.digit}.png")
            plots.append("reconstructions.png")
            plots += extra_plots(model, directory, visualization)
    return common.finish(directory, name, args, started, metrics, plots)


def extra_plots(model, directory, visualization):
    """Plots only some models have: decoded LVQ prototypes (CapsNetLVQ)."""
    if "minkowski_distance" not in [layer.name for layer in model.layers]:
        return []
    prototypes = keras.ops.convert_to_numpy(
        model.get_layer("minkowski_distance").prototypes
    )
    num_classes, dim = prototypes.shape
    masked = np.zeros((num_classes, num_classes * dim), dtype="float32")
    for index in range(num_classes):
        masked[index, index * dim : (index + 1) * dim] = prototypes[index]
    images = decode(model, masked)
    visualization.plot_reconstructions(
        images,
        images,
        labels=np.arange(num_classes),
        path=os.path.join(directory, "protos_reconstructed.png"),
    )
    return ["protos_reconstructed.png"]


def decode(model, masked_capsules):
    """Run the decoder layers of a CapsNet-like model on masked capsules."""
    outputs = keras.ops.convert_to_tensor(masked_capsules)
    for layer in model.layers:
        if layer.name.startswith("decoder_") or layer.name == "reconstruction":
            outputs = layer(outputs)
    return keras.ops.convert_to_numpy(outputs)


def run(args, data=None):
    """Train and evaluate; return the final metrics as a dict.

    Args:
        args: The parsed flags (`build_parser().parse_args(...)`).
        data: Your own data in place of the MNIST files, an
            `anysma.experiments.ExperimentData`: images `(n, 28, 28, 1)` in
            [0, 1] with one-hot targets `(n, 10)`; the training data as
            arrays or a `keras.utils.PyDataset`, the test data as arrays.
            `None` (the default) reads MNIST.
    """
    return run_capsnet_experiment(args, NAME, build_model(args), data=data)


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
