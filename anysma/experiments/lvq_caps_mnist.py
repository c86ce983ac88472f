"""The LVQ-capsule network on MNIST, tested on affNIST (original `lvq_caps_mnist.py`).

The network of Saralajew et al. (2018), Fig. 2 (`anysma.models.LVQCapsuleNetwork`,
497,956 parameters) plus a reconstruction network (RN): the Caps3 vectors
masked by the true label -> Dense 512 -> 1024 -> 784 (sigmoid), trained to
reconstruct the un-shifted image. Loss: generalized KL divergence on the
probabilities + `--lam_recon` x MSE; Adam; training images shifted by up to
two pixels. The MNIST test set is the validation set (as in the original);
the affNIST test set (40 x 40, never trained on) is the test set: the
trained weights are copied into the same network built for 40 x 40 inputs.

The paper trained 200 epochs, restarting with `-w` and a lower `--lr` every
50 epochs (1e-3, 5e-4, 1e-4, 5e-5), and reported 0.28 % (early stopping) /
0.30 % MNIST test error and 2.4 % affNIST error.

`-t -w WEIGHTS` evaluates and plots: spectral lines of the Caps3 input
dissimilarities, heatmaps on affNIST, random walks in the Caps3 prototypes
and in Caps2 prototypes 1 and 16, and decoder reconstructions.
"""

import os
import sys

import keras
import numpy as np

from anysma.experiments import common
from anysma.experiments import data as data_lib
from anysma.experiments import lvq_caps

NAME = "lvq_caps_mnist"
DATASET = "mnist + affnist (test)"
EXPECTED = "0.28-0.30% MNIST / 2.4% affNIST test error (paper)"
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
AFFNIST_SHAPE = (40, 40, 1)
#: What a run without the affNIST test set says (and writes to summary.json).
AFFNIST_MISSING = (
    "the affNIST test set was not found and could not be downloaded; put "
    "test.mat.zip into --data_dir, ANYSMA_DATA_DIR or ~/.anysma/datasets/affnist "
    "(`anysma datasets` lists the URL and the searched folders)"
)
#: Caps2 prototypes of the paper's random-walk figures (1-based 1 and 16).
RANDOM_WALK_CAPS2_PROTOTYPES = (0, 15)


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    return lvq_caps.build_parser(
        prog, __doc__, lr=1e-3, lam_recon=0.392, weights=("mnist",)
    )


def build_models(args):
    """`(network, decoder, training model)`; the last is compiled."""
    from anysma.models import LVQCapsuleNetwork

    network = LVQCapsuleNetwork(image_shape=IMAGE_SHAPE, name="lvq_capsule_network")
    signal_dim = network.get_layer("lvq_caps").output[0].shape[-1]
    decoder = keras.Sequential(
        [
            keras.Input((NUM_CLASSES * signal_dim,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(1024, activation="relu"),
            keras.layers.Dense(int(np.prod(IMAGE_SHAPE)), activation="sigmoid"),
            keras.layers.Reshape(IMAGE_SHAPE),
        ],
        name="decoder",
    )
    images = keras.Input(IMAGE_SHAPE, name="images")
    labels = keras.Input((NUM_CLASSES,), name="labels")
    capsules = keras.Model(network.input, network.get_layer("lvq_caps").output)
    signals, _, probabilities = capsules(images)
    # The RN sees only the capsule of the true class, also when testing.
    masked = keras.layers.Multiply(name="mask")(
        [signals, keras.layers.Reshape((NUM_CLASSES, 1))(labels)]
    )
    reconstruction = decoder(keras.layers.Flatten()(masked))
    model = keras.Model(
        {"images": images, "labels": labels},
        {
            "probabilities": keras.layers.Identity(name="probabilities")(probabilities),
            "reconstruction": keras.layers.Identity(name="reconstruction")(
                reconstruction
            ),
        },
        name="lvq_caps_mnist",
    )
    lvq_caps.compile_network(
        model,
        args.lr,
        loss={
            "probabilities": _generalized_kl(),
            "reconstruction": "mse",
        },
        loss_weights={"probabilities": 1.0, "reconstruction": args.lam_recon},
        metrics={"probabilities": ["accuracy"]},
    )
    return network, decoder, model


def _generalized_kl():
    from anysma import losses

    return losses.GeneralizedKullbackLeiblerDivergence()


def _pack(augmented, original, labels):
    onehot = keras.utils.to_categorical(labels, NUM_CLASSES)
    # The RN reconstructs the un-shifted image.
    return (
        {"images": augmented, "labels": onehot},
        {"probabilities": onehot, "reconstruction": original},
    )


def run(args, data=None):
    """Train and evaluate; return the final metrics as a dict.

    `data` (your own data in place of the MNIST files) is as in
    `capsnet.run`; the affNIST test is skipped then.
    """
    from anysma.datasets import mnist

    if data is None:
        train, (x_val, y_val) = common.load_image_data(mnist, args)
    else:
        train, (x_val, y_val) = common.user_image_data(
            data, args, IMAGE_SHAPE, NUM_CLASSES
        )
    directory, started = common.start(args, NAME)
    network, decoder, model = build_models(args)
    onehot_val = keras.utils.to_categorical(y_val, NUM_CLASSES)
    if args.weights:
        common.load_weights(model, args.weights)
    if not args.testing:
        model.fit(
            data_lib.training_batches(
                train,
                NUM_CLASSES,
                args.batch_size,
                augment=data_lib.random_shift,
                pack=_pack,
                seed=args.seed,
            ),
            epochs=args.epochs,
            validation_data=(
                {"images": x_val, "labels": onehot_val},
                {"probabilities": onehot_val, "reconstruction": x_val},
            ),
            callbacks=common.training_callbacks(
                directory, monitor="val_probabilities_accuracy", debug=args.debug
            ),
            # A stream of the user keeps its own order.
            shuffle=common.is_array_pair(train),
            verbose=args.verbose,
        )
        common.save_final_weights(model, directory)

    metrics = {
        "validation_accuracy": lvq_caps.accuracy(network, x_val, y_val, args),
        "data": common.describe_data(data),
    }
    # affNIST tests MNIST digits moved into 40 x 40 images, not your data.
    affnist_test = _load_affnist(args) if data is None else None
    if affnist_test is None:
        # No affNIST test: the heatmaps show validation images instead.
        heatmap = (network, x_val)
        metrics["affnist_test"] = (
            f"skipped: {AFFNIST_MISSING}"
            if data is None
            else "skipped: the run used its own data"
        )
    else:
        network_40 = network.with_image_shape(AFFNIST_SHAPE)
        heatmap = (network_40, affnist_test[0])
        metrics["affnist_test_accuracy"] = lvq_caps.accuracy(
            network_40, *affnist_test, args
        )
    plots, visualization = lvq_caps.analysis_plots(
        args, directory, network, (x_val, y_val), heatmap
    )
    if visualization is not None:
        plots += _decoder_plots(
            args, directory, visualization, (network, decoder, model), x_val, y_val
        )
    return common.finish(directory, NAME, args, started, metrics, plots)


def _load_affnist(args):
    """The affNIST test set `(images, labels)`, or `None` when it is missing.

    Training and MNIST validation must not be lost because the second
    dataset is absent: a missing affNIST is reported in one line and the
    run goes on.
    """
    from anysma.datasets import DatasetNotFoundError
    from anysma.datasets import affnist

    try:
        images, labels = affnist.load_data(data_dir=args.data_dir)
    except DatasetNotFoundError:
        print(f"{NAME}: affNIST test skipped: {AFFNIST_MISSING}", flush=True)
        return None
    images, labels = common.subset((images, labels), args.max_samples)
    images = images.astype("float32")[..., None] / 255.0
    return images, np.asarray(labels).astype("int64")


def _decoder_plots(args, directory, visualization, models, images, labels):
    network, decoder, model = models
    reconstructions = model.predict(
        {"images": images, "labels": keras.utils.to_categorical(labels, NUM_CLASSES)},
        batch_size=args.batch_size,
        verbose=0,
    )["reconstruction"]
    count = len(reconstructions)
    visualization.plot_reconstructions(
        images[:count],
        reconstructions,
        labels=labels[:count],
        path=os.path.join(directory, "reconstructions.png"),
    )
    visualization.plot_random_walk_caps3(
        network,
        decoder,
        seed=args.seed,
        path=os.path.join(directory, "random_walk_caps3.png"),
    )
    plots = ["reconstructions.png", "random_walk_caps3.png"]
    for index in RANDOM_WALK_CAPS2_PROTOTYPES:
        name = f"random_walk_caps2_prototype{index + 1}.png"
        visualization.plot_random_walk_caps2(
            network,
            decoder,
            index,
            seed=args.seed,
            path=os.path.join(directory, name),
        )
        plots.append(name)
    return plots


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
