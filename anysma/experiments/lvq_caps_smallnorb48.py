"""The LVQ-capsule network on smallNORB at 48 x 48 (original `lvq_caps_smallnorb48.py`).

The 96 x 96 stereo pairs are downscaled to 48 x 48 (2 x 2 averages) and
scaled to [0, 1]. Training batches get a random brightness (x U(0.2, 1.8))
and contrast (x U(0.3, 3)) change, the same for both stereo images, and a
random 32 x 32 crop; validation and test images the central 32 x 32 crop.
`anysma.models.LVQCapsuleNetwork` with 5 classes and two dissimilarity
channels (one 32-D vector per position and stereo image; 442,387
parameters), generalized KL divergence, Adam.

Settings (`-s`), as in the paper: `normal` (official train / test split,
the test set is the validation set), `elevation` (train and validate on
elevations 30-40 degrees, test on 45-70) and `azimuth` (train and validate
on azimuths 0, 20, 40, 300, 320, 340 degrees, test on 60-280). The paper's
corrected results: 2.8 % test error (normal), 13.0 % (novel azimuths) and
15.1 % (novel elevations), after 200 epochs (lr 5e-4, 1e-4, 5e-5, 1e-5 per
50 epochs, restarting with `-w`).
"""

import sys

import keras
import numpy as np

from anysma.experiments import common
from anysma.experiments import data as data_lib
from anysma.experiments import lvq_caps

NAME = "lvq_caps_smallnorb48"
DATASET = "smallnorb"
EXPECTED = "2.8% (normal) / 13.0% (azimuth) / 15.1% (elevation) test error"
SETTINGS = ("normal", "elevation", "azimuth")
CLASS_NAMES = ("animal", "human", "airplane", "truck", "car")
CROP_SIZE = (32, 32)


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    return lvq_caps.build_parser(
        prog,
        __doc__,
        lr=5e-4,
        setting=SETTINGS,
        weights=("smallnorb48", "smallnorb48_el", "smallnorb48_az"),
    )


def downscale(images):
    """`(n, 96, 96, 2)` uint8 -> `(n, 48, 48, 2)` float32 in [0, 1]."""
    count, height, width, channels = images.shape
    blocks = images.reshape(count, height // 2, 2, width // 2, 2, channels)
    return (blocks.mean(axis=(2, 4), dtype="float32") / 255.0).astype("float32")


def augment(images, rng):
    return data_lib.brightness_contrast_crop(images, rng, CROP_SIZE)


def run(args, data=None):
    """Train and evaluate; return the final metrics as a dict.

    Args:
        args: The parsed flags (`build_parser().parse_args(...)`).
        data: Your own data in place of the smallNORB files, an
            `anysma.experiments.ExperimentData`: stereo images
            `(n, 48, 48, 2)` in [0, 1] (the training images are cropped at
            random to 32 x 32, the test images at the centre) with one-hot
            targets `(n, 5)`; the training data as arrays or a
            `keras.utils.PyDataset`, the test (validation) data as arrays.
            `--setting` must then be `normal` (the others pick splits of
            the smallNORB files). `None` (the default) reads smallNORB.
    """
    from anysma.models import LVQCapsuleNetwork

    keras.utils.set_random_seed(args.seed)
    if data is None:
        splits = _smallnorb_splits(args)
    else:
        if args.setting != "normal":
            raise ValueError(
                "--setting picks splits of the smallNORB files, so with `data` "
                f"it must be 'normal'. Received: setting={args.setting!r}"
            )
        train, (images, labels) = common.user_image_data(
            data, args, (48, 48, 2), len(CLASS_NAMES)
        )
        splits = {
            "train": train,
            "validation": (data_lib.centre_crop(images, CROP_SIZE), labels),
        }
    network = LVQCapsuleNetwork(
        image_shape=CROP_SIZE + (2,),
        num_classes=5,
        dissimilarity_channels=2,
        name="lvq_capsule_network",
    )
    lvq_caps.compile_network(network, args.lr, metrics=["accuracy"])
    tests = [("test",) + splits["test"]] if "test" in splits else []
    # Each setting gets its own output folder (and resumable backup).
    name = NAME if args.setting == "normal" else f"{NAME}_{args.setting}"
    directory, started, metrics = lvq_caps.fit_and_evaluate(
        args, name, network, splits["train"], splits["validation"], augment, tests
    )
    metrics["setting"] = args.setting
    metrics["data"] = common.describe_data(data)
    plots, _ = lvq_caps.analysis_plots(
        args,
        directory,
        network,
        splits["validation"],
        (network, splits.get("test", splits["validation"])[0]),
        CLASS_NAMES,
    )
    return common.finish(directory, name, args, started, metrics, plots)


def _smallnorb_splits(args):
    """The splits of `--setting` from the smallNORB files, 48 x 48 (crops)."""
    from anysma.datasets import smallnorb

    train, test = smallnorb.load_data(data_dir=args.data_dir)
    train, validation, novel = smallnorb.split(args.setting, train, test)
    splits = {}
    for key, split in (("train", train), ("validation", validation), ("test", novel)):
        if split is None:
            continue
        images, labels = common.subset(split[:2], args.max_samples, args.seed)
        images = downscale(images)
        if key != "train":
            images = data_lib.centre_crop(images, CROP_SIZE)
        splits[key] = (images, np.asarray(labels).astype("int64"))
    return splits


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
