"""Mazzia et al.'s Efficient-CapsNet on MNIST, with the official flags.

Four convolutions with batch normalization -> 16 primary capsules from a
depthwise convolution -> 10 16-D class capsules routed by self-attention
(`anysma.models.EfficientCapsNet`, 161,824 weights without the decoder),
plus the decoder that reconstructs the image from the masked class capsules.
Margin loss + `--lam_recon` x MSE, Adam with the learning rate decayed by
`--lr_decay` per epoch (never below 5e-5), batch size 16, as in the official
configuration. Training images are shifted as in the official MNIST
pipeline: each image moves by a random fraction (|N(0, 0.33)|, below 1) of
its empty margin, left or right and up or down, so the digit never leaves
the frame; the official rotations, squishes and erasures are not applied.
The MNIST test set doubles as the validation set, as in the original
capsule experiments.

`-t -w WEIGHTS` evaluates and plots the reconstructions.
"""

import sys

import keras
import numpy as np

from anysma.experiments import capsnet
from anysma.experiments import common
from anysma.utils.validation import check_number

NAME = "efficient_capsnet_mnist"
DATASET = "mnist"
EXPECTED = "0.26% test error, mean of single models (Mazzia et al., 2021)"
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
#: The official schedule's floor of the learning rate.
MIN_LEARNING_RATE = 5e-5


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    parser = common.build_parser(
        prog, __doc__, epochs=150, batch_size=16, lr=5e-4, lam_recon=0.392
    )
    parser.add_argument(
        "--lr_decay",
        type=common._checked(
            float, check_number, minimum=0, maximum=1, include_minimum=False
        ),
        default=0.97,
        help="learning rate factor per epoch (lr * lr_decay ** epoch)",
    )
    return parser


def learning_rate_schedule(lr, lr_decay):
    """`lr * lr_decay ** epoch`, never below `MIN_LEARNING_RATE`."""
    if not 0 < lr_decay <= 1:
        raise ValueError(
            f"`lr_decay` must be in (0, 1]. Received: lr_decay={lr_decay!r}"
        )

    def schedule(epoch, current=None):
        del current
        return max(lr * lr_decay**epoch, min(lr, MIN_LEARNING_RATE))

    return schedule


def margin_shift(images, rng, scale=0.33):
    """Shift every digit by a random fraction of its empty margins.

    For each image and axis, a direction is drawn uniformly and the amount
    is `floor(a * margin)` with `a = min(|N(0, scale)|, 0.9999)`: the left
    (top) margin when shifting left (up), the right (bottom) margin plus one
    otherwise, as in the official MNIST pipeline of Efficient-CapsNet. The
    digit stays inside the frame; blank images are left as they are.

    Args:
        images: `(batch, height, width, channels)`.
        rng: A `numpy.random.Generator`.
        scale: Standard deviation of the fraction.
    """
    shifted = np.empty_like(images)
    for index, image in enumerate(images):
        amounts = []
        for axis in (0, 1):
            filled = np.flatnonzero(np.abs(image).sum(axis=(1 - axis, 2)) > 0)
            if filled.size == 0:
                amounts.append(0)
                continue
            size = image.shape[axis]
            fraction = min(abs(rng.normal(0.0, scale)), 0.9999)
            if rng.uniform() < 0.5:
                amounts.append(-int(np.floor(fraction * filled[0])))
            else:
                amounts.append(int(np.floor(fraction * (size - filled[-1]))))
        shifted[index] = np.roll(image, amounts, axis=(0, 1))
    return shifted


def build_model(args):
    from anysma import losses
    from anysma.models import EfficientCapsNet

    model = EfficientCapsNet(name="efficient_capsnet")
    capsnet.compile_capsnet(model, losses.MarginLoss(), args)
    return model


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
    schedule = learning_rate_schedule(args.lr, args.lr_decay)
    return capsnet.run_capsnet_experiment(
        args,
        NAME,
        build_model(args),
        data=data,
        augment=margin_shift,
        extra_callbacks=[keras.callbacks.LearningRateScheduler(schedule)],
        latent_plot=False,
    )


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
