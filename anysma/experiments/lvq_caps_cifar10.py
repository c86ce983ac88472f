"""The LVQ-capsule network on CIFAR-10 (original `lvq_caps_cifar10.py`).

`anysma.models.LVQCapsuleNetwork` for 32 x 32 x 3 images (498,550
parameters), generalized KL divergence on the probabilities, Adam. Training
images are augmented with Keras preprocessing layers: shifts up to 10 %,
rotations up to 15 degrees and horizontal flips. The test set is the
validation set (as in the original). The paper trained 200 epochs with a
stepped learning rate (restart with `-w` and a lower `--lr` every 50 epochs:
1e-3, 5e-4, 1e-4, 5e-5) and reported 9.5 % (early stopping) / 9.7 % test
error.

`-t -w WEIGHTS` evaluates and plots the spectral lines of the Caps3 input
dissimilarities and the dissimilarity heatmaps.
"""

import sys

import keras

from anysma.experiments import common
from anysma.experiments import data as data_lib
from anysma.experiments import lvq_caps

NAME = "lvq_caps_cifar10"
DATASET = "cifar10"
EXPECTED = "9.5% (early stopping) / 9.7% test error (paper)"
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    return lvq_caps.build_parser(prog, __doc__, lr=1e-3, weights=("cifar10",))


def augmentation():
    """Shifts (10 %), rotations (15 degrees) and horizontal flips.

    The random draws come from the generator of each batch (`--seed`).
    """
    return data_lib.keras_augmentation(
        [
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
            keras.layers.RandomRotation(15 / 360, fill_mode="nearest"),
            keras.layers.RandomFlip("horizontal"),
        ]
    )


def run(args, data=None):
    """Train and evaluate; return the final metrics as a dict.

    Args:
        args: The parsed flags (`build_parser().parse_args(...)`).
        data: Your own data in place of the CIFAR-10 files, an
            `anysma.experiments.ExperimentData`: images `(n, 32, 32, 3)` in
            [0, 1] with one-hot targets `(n, 10)`; the training data as
            arrays or a `keras.utils.PyDataset`, the test data as arrays.
            `None` (the default) reads CIFAR-10.
    """
    from anysma.datasets import cifar10
    from anysma.models import LVQCapsuleNetwork

    keras.utils.set_random_seed(args.seed)
    if data is None:
        train, test = common.load_image_data(cifar10, args)
    else:
        train, test = common.user_image_data(data, args, (32, 32, 3), 10)
    network = LVQCapsuleNetwork(
        image_shape=(32, 32, 3), num_classes=10, name="lvq_capsule_network"
    )
    lvq_caps.compile_network(network, args.lr, metrics=["accuracy"])
    directory, started, metrics = lvq_caps.fit_and_evaluate(
        args, NAME, network, train, test, augmentation()
    )
    metrics["test_accuracy"] = metrics.pop("validation_accuracy")
    metrics["data"] = common.describe_data(data)
    plots, _ = lvq_caps.analysis_plots(
        args, directory, network, test, (network, test[0]), CLASS_NAMES
    )
    return common.finish(directory, NAME, args, started, metrics, plots)


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
