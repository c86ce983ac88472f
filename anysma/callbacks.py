"""Training callbacks.

The original anysma shipped a TensorFlow-1 `TensorBoard` variant here;
`TensorBoard` is its successor for every backend.
"""

import json
import math
import os
import time
import warnings

import keras
import numpy as np

from anysma.utils.files import write_atomically
from anysma.utils.files import write_json_atomically
from anysma.utils.validation import check_int
from anysma.utils.validation import check_number
from anysma.utils.validation import check_option


def linear_margin_schedule(num_epochs, initial_margin=0.2, final_margin=0.9):
    """A schedule that moves the margin linearly over `num_epochs` epochs.

    The defaults are Hinton et al.'s spread-loss schedule (0.2 -> 0.9). Epoch
    0 gets `initial_margin`, epoch `num_epochs - 1` and all later epochs get
    `final_margin`.

    Args:
        num_epochs: Number of epochs of the ramp, an integer >= 1.
        initial_margin: Margin of the first epoch, >= 0.
        final_margin: Margin from epoch `num_epochs - 1` on, >= 0.

    Returns:
        A function `epoch -> margin` for `SpreadLossMarginScheduler`.

    Example:

    >>> schedule = linear_margin_schedule(8)
    >>> [round(schedule(epoch), 2) for epoch in (0, 7, 20)]
    [0.2, 0.9, 0.9]

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing",
        ICLR 2018.
    """
    num_epochs = check_int(num_epochs, "num_epochs", minimum=1)
    initial_margin = check_number(initial_margin, "initial_margin", minimum=0)
    final_margin = check_number(final_margin, "final_margin", minimum=0)
    # With one epoch there is no ramp: the final margin applies at once.
    steps = max(int(num_epochs) - 1, 1)

    def schedule(epoch):
        fraction = min(max(epoch, 0) / steps, 1.0) if num_epochs > 1 else 1.0
        # Interpolated this way, the end points are reproduced exactly.
        return (1.0 - fraction) * initial_margin + fraction * final_margin

    return schedule


class SpreadLossMarginScheduler(keras.callbacks.Callback):
    """Set the margin of a spread loss at the start of every epoch.

    Hinton et al. start the spread loss with a small margin and increase it
    during training. Under `jit` (the default of JAX and TensorFlow) the
    margin is a constant baked into the compiled training step, so assigning
    `loss.margin` alone has no effect. This callback therefore rebuilds the
    training and evaluation functions whenever the margin changes (once per
    epoch at most), which costs one retrace.

    The new margin is logged as `"margin"` at the end of each epoch.

    Args:
        loss: The loss instance the model was compiled with: a
            `anysma.losses.SpreadLoss`, or any loss with a `margin`
            attribute that its `call` reads.
        schedule: A function `epoch -> margin` (epochs counted from 0), e.g.
            `linear_margin_schedule(num_epochs)`.
        verbose: If > 0, print the margin whenever it changes.

    Example:

    >>> import anysma
    >>> loss = anysma.losses.SpreadLoss()
    >>> scheduler = SpreadLossMarginScheduler(loss, linear_margin_schedule(10))
    >>> # model.compile(loss=loss, ...); model.fit(..., callbacks=[scheduler])
    """

    def __init__(self, loss, schedule, verbose=0):
        super().__init__()
        if not hasattr(loss, "margin"):
            raise TypeError(
                "`loss` must be a loss instance with a `margin` attribute, e.g. "
                f"`anysma.losses.SpreadLoss()`. Received: loss={loss!r}"
            )
        if not callable(schedule):
            raise TypeError(
                "`schedule` must be a function `epoch -> margin`. "
                f"Received: schedule={schedule!r}"
            )
        self.loss = loss
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        margin = check_number(self.schedule(epoch), f"schedule({epoch})")
        if margin == self.loss.margin:
            return
        self.loss.margin = margin
        # The compiled step functions captured the old margin as a constant.
        self.model.make_train_function(force=True)
        self.model.make_test_function(force=True)
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1}: SpreadLossMarginScheduler sets margin={margin}."
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["margin"] = float(self.loss.margin)


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that survives a kill while it writes.

    Keras' callback overwrites its backup in place, so a process killed
    while the weights file is written leaves a truncated HDF5 file, and
    every restart then fails until the folder is removed by hand. This
    variant never overwrites a checkpoint:

    - each backup is a new file `epoch-<E>.weights.h5` (written to a
      temporary name first, then renamed), and a small index
      `checkpoint.json` (also written and renamed atomically) lists the
      newest and the previous checkpoint; older files are removed only
      after the index points past them;
    - on restart the newest checkpoint is loaded; if it cannot be read, the
      previous one is loaded with a warning; if neither can be read, a
      `ValueError` names the folder (nothing is deleted).

    A kill at any moment therefore leaves a resumable folder, losing at most
    the epoch in progress. The folder is removed when training finishes
    (`delete_checkpoint=True`), as in Keras.

    Args:
        backup_dir: The folder of the backup; used by this callback only.
        save_freq: `"epoch"` or a number of batches, as in Keras.
        delete_checkpoint: Remove the folder at the end of training.

    Example:

    >>> import tempfile, keras, numpy as np
    >>> import anysma
    >>> folder = tempfile.mkdtemp()
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> backup = anysma.callbacks.BackupAndRestore(folder + "/backup")
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2,
    ...                     verbose=0, callbacks=[backup])
    >>> len(history.history["loss"])
    2
    """

    INDEX = "checkpoint.json"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__(
            backup_dir,
            save_freq=save_freq,
            double_checkpoint=False,
            delete_checkpoint=delete_checkpoint,
        )
        self._index_path = os.path.join(backup_dir, self.INDEX)

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                "`BackupAndRestore` needs a built model before `fit()`: call the "
                f"model on a batch first. Received: an unbuilt {self.model.name!r}"
            )
        entries = self._read_index()
        if not entries:
            return
        failures = []
        for entry in entries:
            path = os.path.join(self.backup_dir, entry["weights"])
            try:
                if self.model.optimizer is not None and not self.model.optimizer.built:
                    self.model.optimizer.build(self.model.trainable_variables)
                self.model.load_weights(path)
            except Exception as error:  # noqa: BLE001 - any unreadable file
                failures.append(f"{path}: {error}")
                warnings.warn(
                    f"The backup {path} cannot be read ({error}); trying the "
                    "previous backup.",
                    stacklevel=2,
                )
                continue
            # How Keras' own callback makes `fit` continue at the next epoch.
            self.model._initial_epoch = int(entry["epoch"])
            self._current_epoch = int(entry["epoch"])
            return
        raise ValueError(
            f"The training backup in {self.backup_dir} cannot be read, so the "
            "interrupted run cannot resume. Move the folder away (or delete "
            "it) to train from scratch. Received: " + "; ".join(failures)
        )

    def _read_index(self):
        if not os.path.exists(self._index_path):
            return []
        try:
            with open(self._index_path) as stream:
                entries = json.load(stream)["checkpoints"]
            return [
                {"epoch": int(entry["epoch"]), "weights": str(entry["weights"])}
                for entry in entries
            ]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"The training backup index {self._index_path} is damaged, so "
                "the interrupted run cannot resume. Move the folder away (or "
                f"delete it) to train from scratch. Received: {error}"
            ) from error

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch}-batch-{self._last_batch_seen}.weights.h5"
        write_atomically(
            os.path.join(self.backup_dir, name),
            self.model.save_weights,
            suffix=".weights.h5",
        )
        previous = [entry for entry in self._read_index() if entry["weights"] != name]
        entries = [{"epoch": self._current_epoch, "weights": name}] + previous[:1]
        write_json_atomically(self._index_path, {"checkpoints": entries})
        # Files the index no longer names (and leftovers of a killed write).
        keep = {entry["weights"] for entry in entries}
        for stale in os.listdir(self.backup_dir):
            if stale.endswith(".weights.h5") and stale not in keep:
                os.remove(os.path.join(self.backup_dir, stale))


class BestWeightsCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keep the best weights in one file, written atomically, never from NaN.

    `keras.callbacks.ModelCheckpoint(save_best_only=True,
    save_weights_only=True)` with three safeguards for long runs:

    - the file is written under a temporary name and renamed, so a kill
      during the write leaves the previous best file intact;
    - an epoch whose training loss is NaN or infinite, or after which a
      weight is not finite, is never saved, even if its validation metric
      looks better (a diverged model predicts one class and can still beat
      a first epoch's score);
    - `initial_value_threshold` (Keras' own argument) carries the best
      score of an interrupted run into the resumed one; `best_in_log`
      reads it from a CSV log.

    Args:
        filepath: The `.weights.h5` file.
        monitor: The metric to monitor, e.g. `"val_accuracy"`.
        mode: `"max"`, `"min"` or `"auto"`.
        initial_value_threshold: The score to beat (e.g. of the run before
            an interruption), or `None`.
        verbose: Verbosity, as in Keras.

    Example:

    >>> import os, tempfile, keras, numpy as np
    >>> import anysma
    >>> path = os.path.join(tempfile.mkdtemp(), "best.weights.h5")
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> checkpoint = anysma.callbacks.BestWeightsCheckpoint(path, monitor="loss")
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...               callbacks=[checkpoint])
    >>> os.path.exists(path)
    True
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        mode="auto",
        initial_value_threshold=None,
        verbose=0,
    ):
        filepath = os.fspath(filepath)
        if not filepath.endswith(".weights.h5"):
            raise ValueError(
                "`filepath` must end with `.weights.h5`. "
                f"Received: filepath={filepath!r}"
            )
        directory, name = os.path.split(filepath)
        self.final_path = filepath
        super().__init__(
            os.path.join(
                directory, f".{name[: -len('.weights.h5')]}.partial.weights.h5"
            ),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=initial_value_threshold,
            verbose=verbose,
        )

    def on_epoch_end(self, epoch, logs=None):
        if not _finite(logs or {}) or not self._weights_are_finite():
            return
        super().on_epoch_end(epoch, logs)
        if os.path.exists(self.filepath):
            os.replace(self.filepath, self.final_path)

    def _weights_are_finite(self):
        return all(
            np.all(np.isfinite(keras.ops.convert_to_numpy(variable)))
            for variable in self.model.trainable_variables
        )

    @staticmethod
    def best_in_log(path, monitor, mode="max"):
        """The best finite value of column `monitor` in the CSV log `path`.

        Returns `None` when the file or the column is missing or holds no
        finite value.

        Example:

        >>> import os, tempfile
        >>> log = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> with open(log, "w") as stream:
        ...     _ = stream.write("epoch,val_accuracy\\n0,0.5\\n1,0.75\\n2,nan\\n")
        >>> BestWeightsCheckpoint.best_in_log(log, "val_accuracy")
        0.75
        """
        import csv

        check_option(mode, "mode", ("max", "min"))
        if not os.path.exists(path):
            return None
        values = []
        with open(path, newline="") as stream:
            for row in csv.DictReader(stream):
                try:
                    value = float(row.get(monitor, "nan"))
                except ValueError:
                    continue
                if math.isfinite(value):
                    values.append(value)
        if not values:
            return None
        return max(values) if mode == "max" else min(values)


class TensorBoard(keras.callbacks.Callback):
    """TensorBoard logs of the epoch metrics and weights, on every backend.

    The original anysma's `TensorBoard` (a TensorFlow-1 variant of Keras'
    callback). Keras 3's `keras.callbacks.TensorBoard` writes through
    TensorFlow's summary API, so a JAX or PyTorch installation without
    TensorFlow gets no logs from it; this callback writes the event files
    with the `tensorboard` package alone (`pip install tensorboard`, part of
    the `examples` extra), in Keras' layout: `log_dir/train` and
    `log_dir/validation`, one scalar `epoch_<metric>` per metric and epoch
    (the `val_` metrics go to `validation`). With `histogram_freq=n` the
    weights are written as histograms every n epochs, tagged with their
    paths. For graphs and profiles on the TensorFlow backend, use
    `keras.callbacks.TensorBoard`.

    Args:
        log_dir: The folder of the logs; view them with
            `tensorboard --logdir LOG_DIR`.
        histogram_freq: Write weight histograms every this many epochs;
            0 writes none.

    Example:

    >>> import numpy as np
    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> history = model.fit(
    ...     np.zeros((8, 3)), np.zeros((8, 2)), epochs=2, verbose=0,
    ...     callbacks=[TensorBoard("logs", histogram_freq=1)])
    >>> sorted(os.listdir("logs"))
    ['train']
    """

    def __init__(self, log_dir="logs", histogram_freq=0):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(
                f"`log_dir` must be a folder path. Received: log_dir={log_dir!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = check_int(histogram_freq, "histogram_freq", minimum=0)
        try:
            from tensorboard.summary.writer import event_file_writer
        except ImportError as error:
            raise ImportError(
                "anysma.callbacks.TensorBoard writes with the `tensorboard` "
                "package, which is not installed. Install it with: pip install "
                '"anysma[examples]" (or pip install tensorboard)'
            ) from error
        self._writer_class = event_file_writer.EventFileWriter
        self._writers = {}

    def _writer(self, split):
        if split not in self._writers:
            self._writers[split] = self._writer_class(os.path.join(self.log_dir, split))
        return self._writers[split]

    def _write(self, split, step, values):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.compat.proto import summary_pb2

        summary = summary_pb2.Summary(value=values)
        self._writer(split).add_event(
            event_pb2.Event(wall_time=time.time(), step=step, summary=summary)
        )

    def on_epoch_end(self, epoch, logs=None):
        from tensorboard.compat.proto import summary_pb2

        splits = {"train": [], "validation": []}
        for name, value in (logs or {}).items():
            split = "validation" if name.startswith("val_") else "train"
            tag = "epoch_" + (name[len("val_") :] if split == "validation" else name)
            splits[split].append(
                summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
            )
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            splits["train"] += [
                summary_pb2.Summary.Value(tag=variable.path, histo=_histogram(variable))
                for variable in self.model.weights
            ]
        for split, values in splits.items():
            if values:
                self._write(split, epoch, values)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _histogram(variable, bins=30):
    """The `HistogramProto` of a variable's values."""
    from tensorboard.compat.proto import summary_pb2

    values = np.asarray(keras.ops.convert_to_numpy(variable), "float64").ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return summary_pb2.HistogramProto()
    counts, edges = np.histogram(values, bins=bins)
    return summary_pb2.HistogramProto(
        min=float(values.min()),
        max=float(values.max()),
        num=float(values.size),
        sum=float(values.sum()),
        sum_squares=float(np.sum(np.square(values))),
        bucket_limit=edges[1:].tolist(),
        bucket=counts.astype("float64").tolist(),
    )


def _finite(logs):
    """Whether the training loss in `logs` (if any) is finite."""
    loss = logs.get("loss")
    return loss is None or math.isfinite(float(loss))


__all__ = [
    "BackupAndRestore",
    "BestWeightsCheckpoint",
    "SpreadLossMarginScheduler",
    "TensorBoard",
    "linear_margin_schedule",
]
