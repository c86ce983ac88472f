"""The flat MNIST experiments on the user's own data: arrays and streams.

The learning check reads real MNIST through `ANYSMA_DATA_DIR` (set by
`scripts/test.sh`; skipped when absent): the same 2,000 training images as
a stream and as arrays, so the array run is the reference on the same
budget.
"""

import csv
import os

import keras
import numpy as np
import pytest

from anysma import experiments
from anysma.experiments import ExperimentData
from anysma.experiments import lvq_mnist
from anysma.experiments import robustness_mnist
from anysma.experiments import rtlvq_mnist
from anysma.testing.datasets import real_data_file

MNIST = real_data_file("mnist.npz")


class ArrayBatches(keras.utils.PyDataset):
    """Fixed batches of `(inputs, one-hot targets)`, read by index."""

    def __init__(self, inputs, targets, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.indices = []  # the batches read, in order

    @property
    def reads(self):
        return len(self.indices)

    def __len__(self):
        return -(-len(self.inputs) // self.batch_size)

    def __getitem__(self, index):
        self.indices.append(index)
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.inputs[rows], self.targets[rows]


def bright_pixel_digits(samples, seed):
    """Noise images whose class is one bright pixel: `(inputs, one-hot)`."""
    rng = np.random.default_rng(seed)
    labels = np.arange(samples) % 10
    images = rng.uniform(0.0, 0.1, (samples, 784)).astype("float32")
    images[np.arange(samples), labels * 78] = 1.0
    return images, keras.utils.to_categorical(labels, 10)


def flags(tmp_path, *extra):
    return ["--verbose", "0", "--no_plots", "--save_dir", str(tmp_path), *extra]


def run(module, argv, data):
    return module.run(module.build_parser().parse_args(argv), data=data)


@pytest.mark.requires_trainable_backend
def test_lvq_mnist_learns_from_a_stream_as_from_arrays(tmp_path):
    if MNIST is None:
        pytest.skip("the real mnist.npz was not found in ANYSMA_DATA_DIR")
    with np.load(MNIST) as data:
        rows = np.random.default_rng(0).choice(60000, 2000, replace=False)
        x_train = data["x_train"][rows].reshape(-1, 784).astype("float32") / 255
        y_train = keras.utils.to_categorical(data["y_train"][rows], 10)
        x_test = data["x_test"][:1000].reshape(-1, 784).astype("float32") / 255
        y_test = keras.utils.to_categorical(data["y_test"][:1000], 10)
    # lr 1e-3: the experiment's 1e-4 barely moves k-means prototypes in 2 epochs.
    args = flags(tmp_path / "stream", "--epochs", "2", "--lr", "1e-3")
    train = ArrayBatches(x_train, y_train, 32)
    streamed = run(
        lvq_mnist, args, data=ExperimentData(train, ArrayBatches(x_test, y_test, 500))
    )
    args = flags(tmp_path / "arrays", "--epochs", "2", "--lr", "1e-3")
    in_memory = run(
        lvq_mnist, args, data=ExperimentData((x_train, y_train), (x_test, y_test))
    )

    # Pre-training, two epochs and the final metrics: 4 passes over the
    # stream, not a copy in memory; the data check and Keras' look at the
    # input's structure (a few batches on TensorFlow) read a little more.
    assert train.reads // len(train) == 4
    # Every pass reads the stream in its own order (Keras does not shuffle
    # it): the index drops only where a pass or a look ahead starts again,
    # where a shuffled epoch of 63 batches would drop about 30 times.
    drops = np.sum(np.diff(train.indices) < 0)
    assert drops <= 8, train.indices
    assert streamed["data"] == {
        "train": "stream (ArrayBatches)",
        "test": "stream (ArrayBatches)",
    }
    assert in_memory["data"] == {
        "train": "arrays of 2000 samples",
        "test": "arrays of 1000 samples",
    }
    # GLVQ with k-means prototypes on 2,000 images reaches about 0.84-0.86.
    assert streamed["test_accuracy"] > 0.8
    assert streamed["test_accuracy"] == pytest.approx(
        in_memory["test_accuracy"], abs=0.03
    )
    with open(tmp_path / "stream" / "lvq_mnist" / "log.csv") as stream:
        losses = [float(row["loss"]) for row in csv.DictReader(stream)]
    assert losses[1] < losses[0]


@pytest.mark.requires_trainable_backend
def test_rtlvq_mnist_and_robustness_mnist_take_a_training_stream(tmp_path):
    train = ArrayBatches(*bright_pixel_digits(200, seed=0), 50)
    test = bright_pixel_digits(60, seed=1)
    summary = run(
        rtlvq_mnist, flags(tmp_path, "--epochs", "1"), data=ExperimentData(train, test)
    )
    assert summary["test_accuracy"] == 1.0
    summary = run(
        robustness_mnist,
        flags(
            tmp_path,
            "--epochs",
            "1",
            "--prototypes_per_class",
            "2",
            "--attack_steps",
            "2",
            "--attack_restarts",
            "1",
        ),
        data=ExperimentData(train, test),
    )
    assert summary["test_accuracy"] == 1.0
    assert summary["robustness_samples"] == 60
    assert summary["clean_test_error_cte"] == 0.0


def generator_of_batches():
    yield bright_pixel_digits(50, seed=0)


@pytest.mark.parametrize(
    "data, extra, error, match",
    [
        (
            bright_pixel_digits(50, 0),
            (),
            TypeError,
            "must be an anysma.experiments.ExperimentData",
        ),
        (
            ExperimentData(generator_of_batches(), bright_pixel_digits(20, 1)),
            (),
            ValueError,
            "`data.train` is an iterator",
        ),
        (
            ExperimentData(bright_pixel_digits(50, 0), bright_pixel_digits(20, 1)),
            ("--max_samples", "10"),
            ValueError,
            "--max_samples cuts the dataset files",
        ),
        (
            ExperimentData(
                (np.zeros((20, 28, 28), "float32"), np.eye(10)[np.arange(20) % 10]),
                bright_pixel_digits(20, 1),
            ),
            (),
            ValueError,
            r"inputs of `data.train` must have the shape \(samples, 784\). "
            r"Received: inputs of shape \(20, 28, 28\)",
        ),
        (
            ExperimentData(
                bright_pixel_digits(50, 0),
                ArrayBatches(np.zeros((20, 784)), np.arange(20) % 10, 10),
            ),
            (),
            ValueError,
            r"targets of `data.test` must be one-hot, of shape \(samples, 10\)",
        ),
        (
            ExperimentData(
                bright_pixel_digits(50, 0), ArrayBatches(np.zeros((0, 784)), [], 10)
            ),
            (),
            ValueError,
            "`data.test` is empty",
        ),
        (
            ExperimentData(
                (np.zeros((0, 784), "float32"), np.zeros((0, 10))),
                bright_pixel_digits(20, 1),
            ),
            (),
            ValueError,
            "`data.train` is empty: it has no samples",
        ),
        (
            ExperimentData(
                bright_pixel_digits(50, 0),
                (bright_pixel_digits(20, 1)[0], np.full((20, 10), 0.1)),
            ),
            (),
            ValueError,
            r"targets of `data.test` must be one-hot: a single 1 per row, 0 "
            r"elsewhere. Received: row 0 is \[0.1, ",
        ),
        (
            ExperimentData(
                ArrayBatches(
                    bright_pixel_digits(50, 0)[0] * 255, np.eye(10)[[0] * 50], 10
                ),
                bright_pixel_digits(20, 1),
            ),
            (),
            ValueError,
            r"inputs of `data.train` must lie in \[0, 1\] \(e.g. 8-bit images "
            r"divided by 255\). Received: values from 0.0",
        ),
        (
            ExperimentData(bright_pixel_digits(50, 0), lambda: iter([])),
            (),
            TypeError,
            "`data.test` must be an `\\(inputs, targets\\)` tuple of arrays or a "
            "stream",
        ),
    ],
)
def test_bad_data_is_refused_before_anything_is_written(
    tmp_path, data, extra, error, match
):
    with pytest.raises(error, match=match):
        run(lvq_mnist, flags(tmp_path, *extra), data=data)
    assert not (tmp_path / "lvq_mnist").exists()


def test_robustness_mnist_needs_test_arrays(tmp_path):
    test = ArrayBatches(*bright_pixel_digits(20, 1), 10)
    data = ExperimentData(bright_pixel_digits(50, 0), test)
    match = "`data.test` must be an `\\(inputs.* for this experiment"
    with pytest.raises(ValueError, match=match):
        run(robustness_mnist, flags(tmp_path), data=data)
    assert not os.listdir(tmp_path)


def image_data(shape, num_classes, samples, seed):
    """Random images in [0, 1] with one-hot targets, as float32."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 1.0, (samples, *shape)).astype("float32")
    labels = np.arange(samples) % num_classes
    return images, keras.utils.to_categorical(labels, num_classes)


#: Image experiment -> (image shape, classes, extra flags).
IMAGE_EXPERIMENTS = {
    "capsnet": ((28, 28, 1), 10, ["--routings", "1"]),
    "capsnet_lvq": ((28, 28, 1), 10, ["-p"]),
    "efficient_capsnet_mnist": ((28, 28, 1), 10, []),
    "em_smallnorb": ((48, 48, 2), 5, ["--config", "small", "--routings", "1"]),
    "lvq_caps_mnist": ((28, 28, 1), 10, []),
    "lvq_caps_cifar10": ((32, 32, 3), 10, []),
    "lvq_caps_smallnorb48": ((48, 48, 2), 5, []),
}


@pytest.mark.requires_trainable_backend
@pytest.mark.filterwarnings("ignore:Limiting steps_per_epoch")
@pytest.mark.parametrize("name", sorted(IMAGE_EXPERIMENTS))
def test_image_experiments_train_on_a_pydataset(name, tmp_path):
    shape, num_classes, extra = IMAGE_EXPERIMENTS[name]
    train = ArrayBatches(*image_data(shape, num_classes, 32, seed=0), 8)
    test = image_data(shape, num_classes, 12, seed=1)
    module = experiments.get(name)
    keras.config.set_max_steps_per_epoch(2)
    try:
        summary = run(
            module,
            flags(tmp_path, "--epochs", "1", "--batch_size", "8", *extra),
            data=ExperimentData(train, test),
        )
    finally:
        keras.config.set_max_steps_per_epoch(None)
    assert summary["data"] == {
        "train": "stream (ArrayBatches)",
        "test": "arrays of 12 samples",
    }
    (folder,) = os.listdir(tmp_path)
    assert (tmp_path / folder / "final.weights.h5").is_file()
    # The data check, Keras' look at the structure and the two training
    # steps read the stream; `-p` reads all of it first.
    assert train.reads >= 3 + (len(train) if "-p" in extra else 0)
    accuracies = [value for key, value in summary.items() if key.endswith("accuracy")]
    assert accuracies and all(0.0 <= value <= 1.0 for value in accuracies)
    if name == "lvq_caps_mnist":
        assert summary["affnist_test"] == "skipped: the run used its own data"


def test_augmented_stream_augments_each_batch_and_epoch_reproducibly():
    from anysma.experiments.data import AugmentedStream

    class Source(ArrayBatches):
        epochs_begun = epochs_ended = 0

        def on_epoch_begin(self):
            self.epochs_begun += 1

        def on_epoch_end(self):
            self.epochs_ended += 1

    images, targets = image_data((4, 4, 1), 3, 12, seed=0)
    source = Source(images, targets, 4)

    def augment(batch, rng):
        return batch + rng.integers(1, 1000)

    def pack(augmented, original, labels):
        return {"augmented": augmented, "original": original}, labels

    source.use_multiprocessing = True
    stream = AugmentedStream(source, augment=augment, pack=pack, seed=7)
    assert len(stream) == 3
    assert not stream.use_multiprocessing  # backend ops must not be forked
    inputs, labels = stream[1]
    np.testing.assert_array_equal(inputs["original"], images[4:8])
    np.testing.assert_array_equal(labels, np.arange(4, 8) % 3)
    shift = inputs["augmented"] - images[4:8]
    assert np.all(shift == shift.flat[0]) and shift.flat[0] >= 1
    # The same batch in the same epoch: the same augmentation.
    np.testing.assert_array_equal(stream[1][0]["augmented"], inputs["augmented"])
    stream.on_epoch_begin()
    stream.on_epoch_end()
    assert (source.epochs_begun, source.epochs_ended) == (1, 1)
    assert not np.array_equal(stream[1][0]["augmented"], inputs["augmented"])


def test_cifar10_augmentation_draws_from_the_batch_generator_only():
    from anysma.experiments import lvq_caps_cifar10

    augment = lvq_caps_cifar10.augmentation()
    images = image_data((32, 32, 3), 10, 4, seed=0)[0]
    first = augment(images, np.random.default_rng(1))
    assert first.shape == images.shape and first.dtype == images.dtype
    assert not np.array_equal(first, images)
    # Another augmentation function, the same generator: the same images.
    again = lvq_caps_cifar10.augmentation()(images, np.random.default_rng(1))
    np.testing.assert_array_equal(again, first)
    other = augment(images, np.random.default_rng(2))
    assert not np.array_equal(other, first)


class NotIndexed:
    """A re-iterable stream that is not a PyDataset (as a data loader)."""

    def __init__(self, batch):
        self.batch = batch

    def __iter__(self):
        return iter([self.batch])


@pytest.mark.parametrize(
    "name, data, extra, error, match",
    [
        (
            "capsnet",
            ExperimentData(
                NotIndexed(image_data((28, 28, 1), 10, 8, 0)),
                image_data((28, 28, 1), 10, 8, 1),
            ),
            (),
            TypeError,
            "`data.train` must be an `\\(inputs, targets\\)` tuple of arrays or a "
            "keras.utils.PyDataset for this experiment",
        ),
        (
            "lvq_caps_cifar10",
            ExperimentData(
                image_data((32, 32, 3), 10, 8, 0),
                ArrayBatches(*image_data((32, 32, 3), 10, 8, 1), 4),
            ),
            (),
            ValueError,
            "`data.test` must be an `\\(inputs, targets\\)` tuple of arrays for "
            "this experiment",
        ),
        (
            "lvq_caps_mnist",
            ExperimentData(
                image_data((28, 28), 10, 8, 0), image_data((28, 28, 1), 10, 8, 1)
            ),
            (),
            ValueError,
            r"must have the shape \(samples, 28, 28, 1\)",
        ),
        (
            "lvq_caps_smallnorb48",
            ExperimentData(
                image_data((48, 48, 2), 5, 8, 0), image_data((48, 48, 2), 5, 8, 1)
            ),
            ("--setting", "azimuth"),
            ValueError,
            "--setting picks splits of the smallNORB files",
        ),
    ],
)
def test_image_experiments_refuse_bad_data_before_writing(
    name, data, extra, error, match, tmp_path
):
    with pytest.raises(error, match=match):
        run(experiments.get(name), flags(tmp_path, *extra), data=data)
    assert not os.listdir(tmp_path)


@pytest.mark.requires_trainable_backend
def test_gmlvq_tecator_on_tecator_arrays_repeats_the_file_run(tmp_path):
    from anysma.datasets import tecator
    from anysma.experiments import gmlvq_tecator

    (x_train, y_train), (x_test, y_test) = tecator.load_data()
    data = ExperimentData(
        (x_train, keras.utils.to_categorical(y_train, 2)),
        (x_test, keras.utils.to_categorical(y_test, 2)),
    )
    argv = ["--epochs", "3"]
    from_files = run(gmlvq_tecator, flags(tmp_path / "files", *argv), data=None)
    given = run(gmlvq_tecator, flags(tmp_path / "given", *argv), data=data)
    assert given["data"] == {
        "train": f"arrays of {len(x_train)} samples",
        "test": f"arrays of {len(x_test)} samples",
    }
    for key in ("train_loss", "test_loss", "test_accuracy"):
        assert given[key] == pytest.approx(from_files[key], rel=1e-5), key

    stream = ArrayBatches(*data.train, 32)
    match = "`data.train` must be an .* arrays for this experiment: its preprocessing"
    with pytest.raises(ValueError, match=match):
        run(gmlvq_tecator, flags(tmp_path), data=ExperimentData(stream, data.test))


def test_bad_data_leaves_an_earlier_run_intact(tmp_path):
    folder = tmp_path / "lvq_mnist"
    folder.mkdir()
    earlier = {"log.csv": "epoch,loss\n0,0.5\n", "summary.json": '{"epochs": 3}'}
    for name, text in earlier.items():
        (folder / name).write_text(text)
    integer_targets = (bright_pixel_digits(20, 1)[0], np.arange(20) % 10)
    data = ExperimentData(bright_pixel_digits(50, 0), integer_targets)
    with pytest.raises(ValueError, match="targets of `data.test` must be one-hot"):
        run(lvq_mnist, flags(tmp_path, "--epochs", "1"), data=data)
    # Nothing moved to previous/, nothing replaced.
    assert sorted(os.listdir(folder)) == sorted(earlier)
    for name, text in earlier.items():
        assert (folder / name).read_text() == text
