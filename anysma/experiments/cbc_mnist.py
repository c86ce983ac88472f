"""Classification-by-components on MNIST or Fashion-MNIST.

A CBC (Saralajew et al., NeurIPS 2019): components are detected in the
input, and the positive, negative and indefinite reasoning of every class
turns the detections into class probabilities. `--setting siamese` (the
default) is the paper's MNIST model: 9 component images, passed with the
input through the same CNN feature extractor (four 3 x 3 convolutions with
swish, two max poolings), detected by the rectified cosine similarity of
the feature maps. `--setting flat` learns 20 whole-image components on the
pixels, detected by `exp(-||x - w||^2 / sigma)`; `--setting patch` learns
20 patch components of 7 x 7 pixels, detected at every position (the
maximum over the positions counts). Both pixel settings are much cheaper
and much less accurate. Trained with the CBC margin loss (margin 0.3),
Adam (lr 0.003 for siamese as in the paper, 0.05 for flat, 0.01 for patch
unless `--lr` is given), batch 64, without the paper's data augmentation.
As in the other experiments, the test set doubles as the validation set.

Outputs in `<save_dir>/cbc_mnist/` (`cbc_mnist_fashion_mnist`,
`cbc_mnist_flat`, `cbc_mnist_fashion_mnist_patch`, ... for the other datasets
and settings, so that a run never resumes or replaces one of another model
or dataset): log.csv, best/final weights, summary.json, components.png,
reasoning.png and training_curves.png.
"""

import os
import sys

import keras
import numpy as np

from anysma.experiments import common

NAME = "cbc_mnist"
DATASET = "mnist or fashion_mnist"
EXPECTED = "no MNIST figure used (paper: Siamese CBC, 150 epochs, augmented)"
IMAGE_SHAPE = (28, 28, 1)
NUM_COMPONENTS = {"siamese": 9, "flat": 20, "patch": 20}
KERNEL_SIZE = 7
LEARNING_RATES = {"siamese": 0.003, "flat": 0.05, "patch": 0.01}
SETTINGS = ("siamese", "flat", "patch")
CLASS_NAMES = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": [
        "T-shirt",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "boot",
    ],
}


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    parser = common.build_parser(
        prog, __doc__, epochs=30, batch_size=64, lr=None, setting=SETTINGS
    )
    parser.add_argument(
        "--dataset",
        choices=tuple(CLASS_NAMES),
        default="mnist",
        help="the data set (both are 28 x 28 grey-scale, 10 classes)",
    )
    return parser


def build_model(setting, lr):
    from anysma import losses
    from anysma.models import CBC
    from anysma.models import PatchCBC
    from anysma.models import SiameseCBC

    if setting == "siamese":
        model = SiameseCBC(
            image_shape=IMAGE_SHAPE,
            num_classes=10,
            num_components=NUM_COMPONENTS[setting],
            name="siamese_cbc",
        )
    elif setting == "patch":
        model = PatchCBC(
            image_shape=IMAGE_SHAPE,
            num_classes=10,
            num_components=NUM_COMPONENTS[setting],
            kernel_size=KERNEL_SIZE,
            name="patch_cbc",
        )
    else:
        model = CBC(
            input_dim=int(np.prod(IMAGE_SHAPE)),
            num_classes=10,
            num_components=NUM_COMPONENTS[setting],
            name="cbc",
        )
    model.compile(
        optimizer=keras.optimizers.Adam(lr or LEARNING_RATES[setting]),
        loss=losses.CBCLoss(margin=0.3),
        metrics=["accuracy"],
    )
    return model


def _load(args, data, setting):
    """`(train, test)` as `(inputs, one-hot targets)` arrays of the setting."""
    input_shape = IMAGE_SHAPE if setting != "flat" else (int(np.prod(IMAGE_SHAPE)),)
    if data is not None:
        return common.check_experiment_data(data, args, input_shape, 10)
    if args.dataset == "fashion_mnist":
        from anysma.datasets import fashion_mnist as dataset
    else:
        from anysma.datasets import mnist as dataset
    splits = common.load_image_data(dataset, args, channels_last=True)
    return tuple(
        (
            images.reshape((len(images),) + input_shape),
            keras.utils.to_categorical(labels, 10),
        )
        for images, labels in splits
    )


def output_name(args, data=None):
    """The output subfolder: the name plus every non-default dataset or setting.

    Runs of different models or data must not share a folder: an
    interrupted run resumes from the backup in its folder.
    """
    parts = [NAME]
    if data is None and args.dataset != "mnist":
        parts.append(args.dataset)
    if args.setting != "siamese":
        parts.append(args.setting)
    return "_".join(parts)


def run(args, data=None):
    """Train and evaluate; return the final metrics as a dict.

    Args:
        args: The parsed flags (`build_parser().parse_args(...)`).
        data: Your own data in place of the dataset files, an
            `anysma.experiments.ExperimentData` of `(inputs, targets)`
            arrays or streams: inputs in [0, 1], `(n, 784)` for
            `--setting flat` and `(n, 28, 28, 1)` for `siamese` and
            `patch`, one-hot
            targets `(n, 10)`. `None` (the default) reads `--dataset`.
    """
    setting = args.setting
    train, test = _load(args, data, setting)
    name = output_name(args, data)
    directory, started = common.start(args, name)
    model = build_model(setting, args.lr)
    if args.weights:
        common.load_weights(model, args.weights)
    if not args.testing:
        model.fit(
            **common.fit_arguments(train, args.batch_size),
            epochs=args.epochs,
            validation_data=test,
            callbacks=common.training_callbacks(directory, debug=args.debug),
            shuffle=common.is_array_pair(train),
            verbose=args.verbose,
        )
        common.save_final_weights(model, directory)
    metrics = {
        "data": common.describe_data(data),
        "dataset": args.dataset if data is None else "user data",
        "setting": setting,
        # The siamese detection (a cosine) has no width.
        **({} if setting == "siamese" else {"sigma": model.sigma}),
        **common.evaluate(model, train, 256, "train"),
        **common.evaluate(model, test, 256, "test"),
    }
    plots = []
    if not args.no_plots:
        visualization = common.optional_visualization()
        if visualization is not None:
            visualization.plot_components(
                model,
                image_shape=IMAGE_SHAPE if setting == "flat" else None,
                path=os.path.join(directory, "components.png"),
            )
            visualization.plot_reasoning(
                model,
                class_names=CLASS_NAMES[args.dataset],
                path=os.path.join(directory, "reasoning.png"),
            )
            plots = ["components.png", "reasoning.png"]
    return common.finish(directory, name, args, started, metrics, plots)


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
