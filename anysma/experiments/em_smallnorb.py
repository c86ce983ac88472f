"""Matrix capsules with EM routing on smallNORB (Hinton et al., 2018).

The 96 x 96 stereo pairs are downscaled to 48 x 48 (2 x 2 averages) and
scaled to [0, 1]. Training batches get a random brightness and contrast
change and a random 32 x 32 crop; validation and test images the central
32 x 32 crop, as in the paper. `anysma.models.MatrixCapsNet` (`--config
paper`: A = 64, B = 8, C = D = 16; `--config small`: A = 32, B = 8,
C = D = 8) with `-r/--routings` EM iterations, both stereo images as two
input channels, the spread loss with its margin rising linearly from 0.2 to
0.9 over `--margin_epochs` epochs (default: all), Adam.

Settings (`-s`): `normal` (official train / test split, the test set is
the validation set), `elevation` and `azimuth` (novel viewpoints, as in
`lvq_caps_smallnorb48`). The paper reports 1.8 % test error on the normal
split with 3 routing iterations.
"""

import os
import sys

import keras
import numpy as np

from anysma.experiments import common
from anysma.experiments import data as data_lib
from anysma.experiments import lvq_caps_smallnorb48

NAME = "em_smallnorb"
DATASET = "smallnorb"
EXPECTED = "1.8% test error (paper, normal split, 3 iterations)"
SETTINGS = lvq_caps_smallnorb48.SETTINGS
CROP_SIZE = lvq_caps_smallnorb48.CROP_SIZE
NUM_CLASSES = 5


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    from anysma.experiments.common import _checked
    from anysma.models.matrix_capsnet import CONFIGS
    from anysma.utils.validation import check_int

    parser = common.build_parser(
        prog,
        __doc__,
        epochs=50,
        batch_size=32,
        lr=3e-3,
        routings=3,
        setting=SETTINGS,
    )
    parser.add_argument(
        "--config",
        choices=tuple(CONFIGS),
        default="paper",
        help="capsule numbers: the paper's (A=64, B=8, C=D=16) or a small one",
    )
    parser.add_argument(
        "--margin_epochs",
        type=_checked(int, check_int, minimum=1),
        default=None,
        help="epochs of the spread-loss margin ramp 0.2 -> 0.9 (default: --epochs)",
    )
    return parser


def build_model(args):
    """The compiled network and its spread loss."""
    from anysma import losses
    from anysma.models import MatrixCapsNet

    model = MatrixCapsNet(
        image_shape=CROP_SIZE + (2,),
        num_classes=NUM_CLASSES,
        config=args.config,
        iterations=args.routings,
        name="matrix_capsnet",
    )
    loss = losses.SpreadLoss()
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr), loss=loss, metrics=["accuracy"]
    )
    return model, loss


def output_name(args):
    """The output subfolder: the name plus every non-default setting.

    An interrupted run resumes from the backup in its folder, so runs of
    another split, network or number of iterations must not share it.
    """
    parts = [NAME]
    if args.setting != "normal":
        parts.append(args.setting)
    if args.config != "paper":
        parts.append(args.config)
    if args.routings != 3:
        parts.append(f"r{args.routings}")
    return "_".join(parts)


def run(args, data=None):
    """Train and evaluate; return the final metrics as a dict.

    Args:
        args: The parsed flags (`build_parser().parse_args(...)`).
        data: Your own data in place of the smallNORB files, an
            `anysma.experiments.ExperimentData`: stereo images
            `(n, 48, 48, 2)` in [0, 1] (training images are cropped at random
            to 32 x 32, test images at the centre) with one-hot targets
            `(n, 5)`; the training data as arrays or a
            `keras.utils.PyDataset`, the test (validation) data as arrays.
            `--setting` must then be `normal`. `None` (the default) reads
            smallNORB.
    """
    from anysma import callbacks

    keras.utils.set_random_seed(args.seed)
    if data is None:
        splits = lvq_caps_smallnorb48._smallnorb_splits(args)
    else:
        if args.setting != "normal":
            raise ValueError(
                "--setting picks splits of the smallNORB files, so with `data` "
                f"it must be 'normal'. Received: setting={args.setting!r}"
            )
        train, (images, labels) = common.user_image_data(
            data, args, (48, 48, 2), NUM_CLASSES
        )
        splits = {
            "train": train,
            "validation": (data_lib.centre_crop(images, CROP_SIZE), labels),
        }
    model, loss = build_model(args)
    name = output_name(args)
    directory, started = common.start(args, name)
    if args.weights:
        common.load_weights(model, args.weights)
    validation_images, validation_labels = splits["validation"]
    if not args.testing:
        train = splits["train"]
        schedule = callbacks.linear_margin_schedule(args.margin_epochs or args.epochs)
        model.fit(
            data_lib.training_batches(
                train,
                NUM_CLASSES,
                args.batch_size,
                augment=lvq_caps_smallnorb48.augment,
                seed=args.seed,
            ),
            epochs=args.epochs,
            validation_data=(
                validation_images,
                keras.utils.to_categorical(validation_labels, NUM_CLASSES),
            ),
            callbacks=[callbacks.SpreadLossMarginScheduler(loss, schedule)]
            + common.training_callbacks(directory, debug=args.debug),
            # A stream of the user keeps its own order.
            shuffle=common.is_array_pair(train),
            verbose=args.verbose,
        )
        common.save_final_weights(model, directory)
    metrics = {}
    plots = []
    for key in ("validation", "test"):
        if key in splits:
            images, labels = splits[key]
            scores = common.predict(model, images, args.batch_size)
            metrics[f"{key}_accuracy"] = common.accuracy(scores, labels)
            if not args.no_plots and common.optional_visualization() is not None:
                plots.append(
                    plot_confusion_matrix(
                        scores, labels, os.path.join(directory, f"confusion_{key}.png")
                    )
                )
    metrics["setting"] = args.setting
    metrics["config"] = args.config
    metrics["routings"] = args.routings
    metrics["parameters"] = int(model.count_params())
    metrics["data"] = common.describe_data(data)
    return common.finish(directory, name, args, started, metrics, plots)


def plot_confusion_matrix(scores, labels, path):
    """Save the confusion matrix of the class activations; return the name."""
    from anysma.visualization._figures import new_figure
    from anysma.visualization._figures import save_figure

    predicted = np.argmax(scores, axis=-1)
    labels = np.asarray(labels)[: len(predicted)]
    counts = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype="int64")
    np.add.at(counts, (labels, predicted), 1)
    figure = new_figure((4.5, 4))
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="viridis")
    names = lvq_caps_smallnorb48.CLASS_NAMES
    axes.set_xticks(range(NUM_CLASSES), names, rotation=45)
    axes.set_yticks(range(NUM_CLASSES), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    save_figure(figure, path)
    return os.path.basename(path)


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
