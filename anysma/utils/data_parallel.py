"""Array data in batches that split evenly over the devices of a distribution.

With a `keras.distribution` such as `DataParallel` on JAX, Keras cuts every
batch into one piece per device along the batch axis, and JAX refuses a
batch whose size does not divide by the number of devices (`IndivisibleError`
for the last batch of 5 of 197 samples over 4 devices). Keras does not pad.
These helpers give the ready-made models (`anysma.models`) batches that do
divide, without changing what is computed:

- `DivisibleBatches` serves array data to `fit` and completes an indivisible
  last batch by repeating all of its rows the same number of times. The mean
  loss, its gradient and the batch statistics of a batch normalization are
  those of the original rows, so every update equals the one on a single
  device.
- `split_divisible` splits array data into a part whose size divides by the
  number of devices and the remainder (fewer rows than devices), which
  `evaluate` runs without the distribution.
"""

import math

import keras
import numpy as np


def batch_shards():
    """The number of pieces the active distribution cuts every batch into.

    Returns:
        The size of the batch axis of the active `keras.distribution`'s
        device mesh, per process, on JAX; 1 without a distribution, on the
        other backends, or for a distribution without a batch axis.
    """
    if keras.backend.backend() != "jax":
        return 1
    distribution = keras.distribution.distribution()
    batch_axis = getattr(distribution, "batch_dim_name", None)
    mesh = getattr(distribution, "device_mesh", None)
    if batch_axis is None or mesh is None or batch_axis not in mesh.axis_names:
        return 1
    import jax

    shards = mesh.shape[list(mesh.axis_names).index(batch_axis)]
    return max(1, shards // jax.process_count())


def on_cpu_devices():
    """Whether the active distribution's devices are CPU devices."""
    mesh = getattr(keras.distribution.distribution(), "device_mesh", None)
    if mesh is None:
        return False
    return all(
        str(device).lower().startswith("cpu") for device in np.ravel(mesh.devices)
    )


class SynchronousLogs(keras.callbacks.Callback):
    """Makes Keras read the logs of every batch before the next one starts.

    On JAX, Keras converts the logs of a batch to Python numbers in a worker
    thread while the main thread already dispatches the next step. With a
    distribution over several (virtual) CPU devices this overlap can stall
    a step for good: the devices' threads meet in an all-reduce and one of
    them never arrives (XLA aborts with "Termination timeout for all
    reduce" after 40 seconds, or waits forever). It happened here in
    `fit` of an LVQ-capsule network and of a GMLVQ trained after a GLVQ in
    the same process, and not once with this callback. Keras dispatches
    synchronously as soon as one callback acts on every batch, which is
    all this callback does.
    """

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass


def is_array_data(data):
    """Whether `data` is arrays (possibly nested in lists, tuples or dicts).

    Data sets, generators and `keras.utils.PyDataset`s are not: they make
    their own batches.
    """
    leaves = [leaf for leaf in keras.tree.flatten(data) if leaf is not None]
    return bool(leaves) and all(
        hasattr(leaf, "shape") and len(leaf.shape) > 0 for leaf in leaves
    )


def as_numpy(data):
    """`data` with every array leaf as a NumPy array (`None` kept)."""
    return keras.tree.map_structure(
        lambda leaf: None if leaf is None else np.asarray(leaf), data
    )


def num_samples(data):
    """The common length of the array leaves of `data`."""
    return len(next(leaf for leaf in keras.tree.flatten(data) if leaf is not None))


def take(data, rows):
    """The rows `rows` (a slice or an index array) of every leaf of `data`."""
    return keras.tree.map_structure(
        lambda leaf: None if leaf is None else leaf[rows], data
    )


def check_batch_size(batch_size, shards, name="batch_size"):
    """Raise a `ValueError` unless `batch_size` divides by `shards`."""
    if batch_size % shards:
        raise ValueError(
            f"`{name}` must be a multiple of the {shards} devices the active "
            "keras.distribution splits every batch over (each device gets an "
            f"equal part). Received: {name}={batch_size}"
        )


def split_divisible(num_rows, shards):
    """`(head, tail)` slices: the head's length divides by `shards`.

    The tail has fewer than `shards` rows (none when `num_rows` divides).
    """
    head = num_rows - num_rows % shards
    return slice(0, head), slice(head, num_rows)


def class_weight_to_sample_weight(y, class_weight, sample_weight=None):
    """Per-sample weights from a `{class: weight}` dict, as Keras applies it.

    `y` holds integer labels or one-hot rows; the weights multiply
    `sample_weight` if given.
    """
    y = np.asarray(y)
    labels = np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y
    labels = labels.reshape(len(y)).astype("int64")
    missing = sorted(set(np.unique(labels).tolist()) - set(class_weight))
    if missing:
        raise ValueError(
            "`class_weight` must have a weight for every class in `y`. "
            f"Missing: {missing}. Received: class_weight={class_weight}"
        )
    weights = np.array([class_weight[label] for label in labels], dtype="float32")
    if sample_weight is not None:
        weights = weights * np.asarray(sample_weight, dtype="float32").reshape(len(y))
    return weights


class DivisibleBatches(keras.utils.PyDataset):
    """Array data in batches whose sizes divide by the number of devices.

    Serves `(x, y, sample_weight)` in batches of `batch_size` rows (a
    multiple of `shards`) in a fixed order, or in a new random order every
    epoch with `shuffle=True`. The last batch of an epoch, if its `n` rows do
    not divide by `shards`, is sent as `k = shards / gcd(n, shards)` copies of
    itself: a mean over it, its gradient and its batch statistics are those
    of the `n` rows, so a model trains exactly as on one device. (A
    running metric over the epoch counts these rows `k` times.)

    Args:
        x: Inputs: arrays, possibly nested in lists, tuples or dicts.
        y: Targets, like `x`, or `None`.
        sample_weight: Per-sample weights, or `None`.
        batch_size: Rows per batch, a multiple of `shards`.
        shards: The number of devices every batch is split over.
        shuffle: Draw a new order of the rows every epoch.
        seed: Seed of that order; by default drawn from NumPy's global
            generator (so `keras.utils.set_random_seed` fixes it).
        **kwargs: `keras.utils.PyDataset` arguments (`workers`, ...).

    Example:

    >>> import numpy as np
    >>> from anysma.utils.data_parallel import DivisibleBatches
    >>> batches = DivisibleBatches(np.arange(10.0)[:, None], np.arange(10),
    ...                            batch_size=4, shards=4)
    >>> len(batches)
    3
    >>> batches[2][0][:, 0]
    array([8., 9., 8., 9.])
    """

    def __init__(
        self,
        x,
        y=None,
        sample_weight=None,
        *,
        batch_size,
        shards,
        shuffle=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_batch_size(batch_size, shards)
        self.data = tuple(
            part for part in (x, y, sample_weight) if part is not None
        ) or (x,)
        self.batch_size = batch_size
        self.shards = shards
        self.shuffle = shuffle
        self.num_rows = num_samples(x)
        if seed is None:
            seed = int(np.random.randint(2**31 - 1))
        self._random = np.random.default_rng(seed)
        self._order = np.arange(self.num_rows)
        if shuffle:
            self._order = self._random.permutation(self.num_rows)

    def __len__(self):
        return math.ceil(self.num_rows / self.batch_size)

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        copies = self.shards // math.gcd(len(rows), self.shards)
        if copies > 1:
            rows = np.tile(rows, copies)
        return take(self.data, rows)

    def on_epoch_end(self):
        if self.shuffle:
            self._order = self._random.permutation(self.num_rows)
