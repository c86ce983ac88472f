"""Shared plumbing of the experiments: flags, output folder, logs, summaries.

Every experiment module defines `NAME`, `DATASET`, `EXPECTED`,
`build_parser(prog)` and `run(args)`; `main(module, argv, prog)` below is
their common entry point.
"""

import argparse
import importlib.util
import os
import time
import typing
import warnings

import keras
import numpy as np

from anysma.utils.files import write_atomically
from anysma.utils.files import write_json_atomically
from anysma.utils.validation import check_int
from anysma.utils.validation import check_number

#: Subfolder of the output folder where `BackupAndRestore` keeps its state.
BACKUP_FOLDER = "backup"
#: Subfolder where a new training run moves the files of the run before it.
PREVIOUS_FOLDER = "previous"
#: Subfolder of the `-t/--testing` runs (one new folder per run).
EVALUATIONS_FOLDER = "evaluations"


def _checked(convert, check, **bounds):
    """An argparse type: `convert` the text, then `check` its range.

    `check` is a function of `anysma.utils.validation`, so the flags get the
    package's message format (argparse prefixes the flag's name).
    """

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = text  # Not a number: the check says what was expected.
        try:
            return check(value, "value", **bounds)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = convert.__name__
    return parse


def build_parser(
    name,
    description,
    *,
    epochs,
    batch_size,
    lr,
    lam_recon=None,
    routings=None,
    digit=False,
    pre_training=False,
    setting=None,
    weights_names=(),
):
    """The original's command-line flags, plus anysma's own.

    The original flags (`--epochs --batch_size --lr --lam_recon
    -r/--routings --debug --save_dir -t/--testing -w/--weights --digit
    -p/--pre_training -s/--setting`) appear where the 2018 script had them,
    with its defaults. anysma adds `--data_dir`, `--seed`, `--max_samples`,
    `--verbose` and `--no_plots`.

    Args:
        name: The experiment name (the program name by default).
        description: The `--help` text.
        epochs, batch_size, lr: The defaults of these flags.
        lam_recon: Default of `--lam_recon` (the decoder loss weight), or
            `None` when the experiment has no decoder.
        routings: Default of `-r/--routings`, or `None` when not used.
        digit: Whether to add `--digit` (the class of the latent plot).
        pre_training: Whether to add `-p/--pre_training`.
        setting: The choices of `-s/--setting` (first is the default), or
            `None`.
        weights_names: Names the original accepted for `-w` (registry
            names of `anysma.weights`).

    Returns:
        An `argparse.ArgumentParser`.
    """
    parser = argparse.ArgumentParser(
        prog=name,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--epochs", type=_checked(int, check_int, minimum=1), default=epochs
    )
    parser.add_argument(
        "--batch_size", type=_checked(int, check_int, minimum=1), default=batch_size
    )
    parser.add_argument(
        "--lr",
        type=_checked(float, check_number, minimum=0, include_minimum=False),
        default=lr,
        help="Adam learning rate",
    )
    if lam_recon is not None:
        parser.add_argument(
            "--lam_recon",
            type=_checked(float, check_number, minimum=0),
            default=lam_recon,
            help="weight of the reconstruction loss",
        )
    if routings is not None:
        parser.add_argument(
            "-r",
            "--routings",
            type=_checked(int, check_int, minimum=1),
            default=routings,
            help="routing iterations",
        )
    if digit:
        parser.add_argument(
            "--digit",
            type=_checked(int, check_int, minimum=0, maximum=9),
            default=5,
            help="class of the latent manipulation",
        )
    if pre_training:
        parser.add_argument(
            "-p",
            "--pre_training",
            action="store_true",
            help="initialize the prototypes by k-means before training",
        )
    if setting is not None:
        parser.add_argument(
            "-s", "--setting", choices=tuple(setting), default=setting[0]
        )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="write weight histograms to the TensorBoard logs",
    )
    parser.add_argument("--save_dir", default="./output", help="output folder")
    parser.add_argument(
        "-t",
        "--testing",
        action="store_true",
        help="do not train: evaluate the given weights and plot",
    )
    names = f" or one of {', '.join(weights_names)}" if weights_names else ""
    parser.add_argument(
        "-w",
        "--weights",
        default=None,
        help=f"a .weights.h5 file{names} (a name of the anysma weights registry)",
    )
    parser.add_argument(
        "--data_dir",
        default=None,
        help="folder with the dataset files (default: $ANYSMA_DATA_DIR, the cache)",
    )
    parser.add_argument(
        "--seed",
        type=_checked(int, check_int, minimum=0),
        default=0,
        help="random seed",
    )
    parser.add_argument(
        "--max_samples",
        type=_checked(int, check_int, minimum=1),
        default=None,
        help="use at most this many samples of each split (quick runs)",
    )
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--no_plots", action="store_true", help="skip the plots")
    return parser


def main(module, argv=None, prog=None):
    """Parse `argv` with the experiment's flags, run it and print a summary."""
    args = module.build_parser(prog or module.NAME).parse_args(argv)
    if args.testing and not args.weights:
        module.build_parser(prog or module.NAME).error(
            "-t/--testing needs -w/--weights"
        )
    summary = module.run(args)
    metrics = ", ".join(
        f"{key.replace('_', ' ')} {value:.4f}"
        for key, value in summary.items()
        if key.endswith("accuracy") and isinstance(value, float)
    )
    print(f"{module.NAME}: {metrics} ({summary['seconds']} s on {summary['backend']})")
    return summary


def output_directory(save_dir, name):
    """Create and return `save_dir/name`."""
    path = os.path.join(save_dir, name)
    os.makedirs(path, exist_ok=True)
    return path


def training_callbacks(directory, monitor="val_accuracy", debug=False):
    """Start a training run in `directory`; return its callbacks.

    Call it right before `fit`, once the data, the flags and the weights are
    known to be good: a failed start must not touch an earlier run.

    - If `directory` holds an interrupted run (a backup), training resumes
      it: the CSV log is continued and `best.weights.h5` is only replaced by
      a model better than the best score in that log.
    - Otherwise the files of an earlier run there (log, weights, summary,
      plots, TensorBoard logs) are moved to `previous/<time>/`; nothing is
      deleted.

    The callbacks: `TerminateOnNaN` (a diverged run stops at once), the
    crash-safe `anysma.callbacks.BackupAndRestore` (an interrupted run
    restarted with the same flags resumes at the next epoch; the backup is
    removed when training finishes), the CSV log, the atomic best-weights
    checkpoint (never written from a NaN epoch) and, when the `tensorboard`
    package is installed, `anysma.callbacks.TensorBoard`.
    """
    from anysma import callbacks as anysma_callbacks

    backup = os.path.join(directory, BACKUP_FOLDER)
    log = os.path.join(directory, "log.csv")
    mode = "max" if monitor.endswith("accuracy") else "min"
    resuming = os.path.exists(
        os.path.join(backup, anysma_callbacks.BackupAndRestore.INDEX)
    )
    if resuming:
        best = anysma_callbacks.BestWeightsCheckpoint.best_in_log(log, monitor, mode)
    else:
        _archive_previous_run(directory)
        best = None
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        anysma_callbacks.BackupAndRestore(backup),
        keras.callbacks.CSVLogger(log, append=True),
        anysma_callbacks.BestWeightsCheckpoint(
            os.path.join(directory, "best.weights.h5"),
            monitor=monitor,
            mode=mode,
            initial_value_threshold=best,
        ),
    ]
    # anysma's TensorBoard needs only the `tensorboard` package (the examples
    # extra), not TensorFlow, so the logs are written on every backend.
    if importlib.util.find_spec("tensorboard"):
        callbacks.append(
            anysma_callbacks.TensorBoard(
                log_dir=os.path.join(directory, "tensorboard"),
                histogram_freq=1 if debug else 0,
            )
        )
    return callbacks


def _archive_previous_run(directory):
    """Move an earlier run's files to `previous/<time of its last file>/`."""
    reserved = {BACKUP_FOLDER, PREVIOUS_FOLDER, EVALUATIONS_FOLDER}
    entries = [
        entry
        for entry in sorted(os.listdir(directory))
        if entry not in reserved and not entry.startswith(".")
    ]
    if not entries:
        return None
    newest = max(os.path.getmtime(os.path.join(directory, entry)) for entry in entries)
    target = _new_folder(
        os.path.join(directory, PREVIOUS_FOLDER),
        time.strftime("%Y%m%d-%H%M%S", time.localtime(newest)),
    )
    for entry in entries:
        os.replace(os.path.join(directory, entry), os.path.join(target, entry))
    print(f"The files of the previous run were moved to {target}", flush=True)
    return target


def _new_folder(parent, stem):
    """Create and return a folder `parent/stem` that did not exist before."""
    os.makedirs(parent, exist_ok=True)
    for count in range(1, 10_000):
        path = os.path.join(parent, stem if count == 1 else f"{stem}-{count}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"No free folder name for {stem!r} in {parent}")


def start(args, name):
    """Seed everything and return `(output folder, start time)`.

    Training runs use `save_dir/name` (their files are written only once
    training starts, see `training_callbacks`). Test and plot runs
    (`-t/--testing`) write into a new folder
    `save_dir/name/evaluations/<time>/`, so they never replace a training
    run's summary or plots.
    """
    keras.utils.set_random_seed(args.seed)
    directory = output_directory(args.save_dir, name)
    if args.testing:
        directory = _new_folder(
            os.path.join(directory, EVALUATIONS_FOLDER), time.strftime("%Y%m%d-%H%M%S")
        )
    return directory, time.perf_counter()


def subset(arrays, max_samples, seed=0):
    """The first-in-random-order `max_samples` rows of aligned arrays.

    Args:
        arrays: A tuple of arrays with the same number of rows.
        max_samples: How many rows to keep, or `None` for all.
        seed: Seed of the random choice.

    Returns:
        A tuple of arrays (the input itself when nothing is dropped).
    """
    count = len(arrays[0])
    if max_samples is None or max_samples >= count:
        return tuple(arrays)
    if max_samples < 1:
        raise ValueError(f"`max_samples` must be >= 1. Received: {max_samples}")
    rows = np.sort(
        np.random.default_rng(seed).choice(count, max_samples, replace=False)
    )
    return tuple(array[rows] for array in arrays)


def load_weights(model, weights):
    """Load `weights` (a file or a registry name) into a built model.

    Returns:
        The local path of the weights file.
    """
    from anysma import weights as registry

    path = registry.get_weights(weights)
    if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
        # Weight files written after training also hold the optimizer state.
        model.optimizer.build(model.trainable_variables)
    try:
        # Keras only warns when a file lacks some layers' weights, and leaves
        # those layers at their initial values: for an experiment that is a
        # foreign file, so the warning becomes the mismatch error below.
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*no matching group")
            warnings.filterwarnings("error", message=".*[Ss]kipping")
            model.load_weights(path)
    except OSError as error:
        raise ValueError(
            f"The weights file {path} is damaged (not a readable HDF5 file): "
            "train again, or copy the file again from where it was written. "
            f"Received: {error}"
        ) from error
    except (ValueError, KeyError, UserWarning) as error:
        raise ValueError(
            f"The weights file {path} does not fit this experiment's model "
            f"{model.name!r}: it was written by another experiment or with "
            "other flags (e.g. --setting or --routings). "
            f"Received: {error}"
        ) from error
    return path


def save_final_weights(model, directory):
    """Save the trained weights as `final.weights.h5`, atomically.

    Raises:
        FloatingPointError: A weight is NaN or infinite (training diverged;
            `TerminateOnNaN` stopped it). Nothing is written then.
    """
    for variable in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(variable))):
            best = os.path.join(directory, "best.weights.h5")
            kept = (
                f"; {best} holds the best model before that"
                if os.path.exists(best)
                else ""
            )
            raise FloatingPointError(
                f"Training diverged: the weight {variable.path!r} became NaN or "
                f"infinite (the loss is in {os.path.join(directory, 'log.csv')}). "
                f"The final weights were not saved{kept}. Try a lower --lr."
            )
    return write_atomically(
        os.path.join(directory, "final.weights.h5"),
        model.save_weights,
        suffix=".weights.h5",
    )


def finish(directory, name, args, started, metrics, plots=()):
    """Write `summary.json` (and the training curves) and return the summary.

    Args:
        directory: The output folder.
        name: The experiment name.
        args: The parsed flags.
        started: The `time.perf_counter()` of the start.
        metrics: Dict of final metrics (floats).
        plots: Names of the PNG files the run wrote.
    """
    plots = list(plots)
    log = os.path.join(directory, "log.csv")
    if not args.testing and not args.no_plots and os.path.exists(log):
        visualization = optional_visualization()
        if visualization is not None:
            visualization.plot_training_curves(
                log, path=os.path.join(directory, "training_curves.png")
            )
            plots.append("training_curves.png")
    summary = {
        "experiment": name,
        "backend": keras.backend.backend(),
        "epochs": 0 if args.testing else args.epochs,
        "max_samples": args.max_samples,
        "seconds": round(time.perf_counter() - started, 2),
        "plots": sorted(plots),
        **{key: _plain(value) for key, value in metrics.items()},
    }
    write_json_atomically(os.path.join(directory, "summary.json"), summary)
    return summary


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def optional_visualization():
    """`anysma.visualization`, or `None` (with a note) without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        print('Plots skipped: matplotlib is missing (pip install "anysma[examples]").')
        return None
    from anysma import visualization

    return visualization


def evaluate(model, data, batch_size, prefix):
    """`model.evaluate` as a dict with keys prefixed by `prefix`.

    Args:
        model: A compiled model.
        data: An `(inputs, targets)` tuple of arrays, or a stream of such
            batches (see `ExperimentData`).
        batch_size: The batch size of array data.
        prefix: The prefix of the keys (`"train"`, `"test"`).
    """
    results = model.evaluate(
        **fit_arguments(data, batch_size), verbose=0, return_dict=True
    )
    return {f"{prefix}_{key}": float(value) for key, value in results.items()}


class ExperimentData(typing.NamedTuple):
    """Your own data for an experiment, in place of its dataset files.

    Pass it as `run(args, data=...)` to an experiment. Each field is what
    Keras' `fit` takes: an `(inputs, targets)` tuple of arrays, or a stream
    of such batches that can be read again and again.

    - The flat MNIST experiments (`lvq_mnist`, `rtlvq_mnist`,
      `robustness_mnist`) take a `keras.utils.PyDataset`, a
      `tf.data.Dataset` or a `torch.utils.data.DataLoader` for training.
      The stream is read once for the k-means pre-training
      (`MiniBatchKMeans.partial_fit`, so memory stays bounded; twice for
      `rtlvq_mnist`, whose tangents come from a second pass), once per
      epoch, and once more for the final metrics. `lvq_mnist` and
      `rtlvq_mnist` also take a stream as test data.
    - The capsule experiments augment every training batch, so their
      training stream must be a `keras.utils.PyDataset` (read by index);
      their test data, which the analysis plots draw from, are arrays.
    - `gmlvq_tecator` takes arrays of raw spectra: its preprocessing is
      fitted to the whole training set.
    - A generator can be read only once, so it is refused: wrap it in a
      `PyDataset`.

    The batches hold the images or vectors the experiment's model is fed
    (its `run` docstring gives the shape), in [0, 1] (`gmlvq_tecator`: raw
    spectra), with one-hot targets. Arrays are shuffled every epoch; a
    stream is read in its own order. `--batch_size` applies to arrays only
    (a stream makes its own batches), and `--max_samples` does not apply
    (it cuts the dataset files).

    Attributes:
        train: The training data.
        test: The test data, which doubles as the validation data that
            selects `best.weights.h5`, as in the paper's runs.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from anysma.experiments import ExperimentData, lvq_mnist
    >>> class Digits(keras.utils.PyDataset):
    ...     # Stands for batches read from disk, one at a time.
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, index):
    ...         rng = np.random.default_rng(index)
    ...         labels = np.arange(50) % 10
    ...         images = rng.uniform(0.0, 0.1, (50, 784)).astype("float32")
    ...         images[np.arange(50), labels * 78] = 1.0  # One bright pixel per class.
    ...         return images, keras.utils.to_categorical(labels, 10)
    >>> args = lvq_mnist.build_parser().parse_args(
    ...     ["--epochs", "1", "--verbose", "0", "--no_plots"]
    ... )
    >>> summary = lvq_mnist.run(args, data=ExperimentData(Digits(), Digits()))
    >>> summary["test_accuracy"]
    1.0
    """

    train: object
    test: object


def check_experiment_data(
    data,
    args,
    input_shape,
    num_classes,
    *,
    indexed_train=False,
    train_arrays=False,
    test_arrays=False,
    unit_range=True,
):
    """Check the `data` of `run(args, data=...)` before anything is written.

    Checks all of each array part and the first batch of each stream: the
    shapes against the model's `input_shape` and `num_classes`, that the
    targets are one-hot and, with `unit_range`, that the inputs lie in
    [0, 1].

    Args:
        data: The `ExperimentData`.
        args: The parsed flags.
        input_shape: The shape of one input, without the batch axis.
        num_classes: The number of classes (the targets' last axis).
        indexed_train: The training stream must be a `keras.utils.PyDataset`
            (the experiment augments its batches by index).
        train_arrays: The training data must be arrays.
        test_arrays: The test data must be arrays.
        unit_range: The inputs must lie in [0, 1] (images).

    Returns:
        `data`.

    Raises:
        TypeError: `data` is not an `ExperimentData`, or a field is neither
            arrays nor a stream.
        ValueError: `--max_samples` was given, a stream can be read only
            once or is empty, or a batch has the wrong shapes.
    """
    if not isinstance(data, ExperimentData):
        raise TypeError(
            "`data` must be an anysma.experiments.ExperimentData(train, test). "
            f"Received: data of type {type(data).__name__}"
        )
    if args.max_samples is not None:
        raise ValueError(
            "--max_samples cuts the dataset files, so it does not apply to "
            "`data`; pass fewer batches instead. Received: "
            f"max_samples={args.max_samples}"
        )
    for field in ExperimentData._fields:
        name = f"data.{field}"
        source = getattr(data, field)
        arrays_only = {"train": train_arrays, "test": test_arrays}[field]
        if arrays_only and not is_array_pair(source):
            reason = (
                "its preprocessing is fitted to the whole training set"
                if field == "train"
                else "its evaluation and plots run over the whole test set"
            )
            raise ValueError(
                f"`{name}` must be an `(inputs, targets)` tuple of arrays for "
                f"this experiment: {reason}. Received: {type(source).__name__}"
            )
        if (
            field == "train"
            and indexed_train
            and not is_array_pair(source)
            and not isinstance(source, keras.utils.PyDataset)
        ):
            raise TypeError(
                f"`{name}` must be an `(inputs, targets)` tuple of arrays or a "
                "keras.utils.PyDataset for this experiment: it augments every "
                f"batch, read by index. Received: {type(source).__name__}"
            )
        if is_array_pair(source):
            inputs, targets = source
            if len(inputs) != len(targets):
                raise ValueError(
                    f"`{name}` must have as many targets as inputs. Received: "
                    f"{len(inputs)} inputs and {len(targets)} targets"
                )
            if len(inputs) == 0:
                raise ValueError(f"`{name}` is empty: it has no samples.")
            batch = (inputs, targets)
        else:
            batch = _first_batch(source, name)
        _check_batch(batch, name, input_shape, num_classes, unit_range)
    return data


def describe_data(data):
    """What `summary.json` records about `data` (`None`: the dataset files)."""
    if data is None:
        return "dataset files"
    return {
        field: (
            f"arrays of {len(source[0])} samples"
            if is_array_pair(source)
            else f"stream ({type(source).__name__})"
        )
        for field, source in zip(ExperimentData._fields, data)
    }


def first_stream_samples(stream, count):
    """The first `count` samples of a stream, as `(inputs, integer labels)`.

    Only the batches needed are read.
    """
    from anysma.utils import streams

    inputs, labels, taken = [], [], 0
    for batch in streams.Batches(stream, name="data.train"):
        batch_inputs, batch_targets, _ = keras.utils.unpack_x_y_sample_weight(batch)
        inputs.append(batch_inputs[: count - taken])
        labels.append(np.argmax(batch_targets[: count - taken], axis=-1))
        taken += len(inputs[-1])
        if taken >= count:
            break
    return np.concatenate(inputs), np.concatenate(labels)


def user_image_data(data, args, image_shape, num_classes):
    """The checked `data` of an image experiment, in its internal form.

    The training stream must be a `keras.utils.PyDataset` (the experiment
    augments its batches), the test data arrays.

    Returns:
        `(train, (test images, test labels))`: `train` is `(images, integer
        labels)` arrays or the `PyDataset` itself; images are float32 and
        labels integers.
    """
    check_experiment_data(
        data, args, image_shape, num_classes, indexed_train=True, test_arrays=True
    )
    train = data.train
    if is_array_pair(train):
        train = (np.asarray(train[0], "float32"), np.argmax(train[1], axis=-1))
    test_images, test_targets = data.test
    return train, (np.asarray(test_images, "float32"), np.argmax(test_targets, axis=-1))


def fit_arguments(data, batch_size):
    """The `x`, `y` and `batch_size` arguments of `fit`/`evaluate` for `data`.

    Keras takes an array tuple as `x, y` with a `batch_size`, and a stream
    as `x` alone (it makes its own batches).
    """
    if is_array_pair(data):
        inputs, targets = data
        return {"x": inputs, "y": targets, "batch_size": batch_size}
    return {"x": data}


def is_array_pair(source):
    """Whether `source` is an `(inputs, targets)` tuple of arrays."""
    from anysma.utils import data_parallel

    return (
        isinstance(source, tuple)
        and len(source) == 2
        and data_parallel.is_array_data(source)
    )


def _first_batch(source, name):
    from anysma.utils import streams

    if isinstance(source, (list, tuple)) or (
        callable(source) and not hasattr(source, "__iter__")
    ):
        raise TypeError(
            f"`{name}` must be an `(inputs, targets)` tuple of arrays or a "
            "stream that Keras' fit reads (a keras.utils.PyDataset, a "
            "tf.data.Dataset or a torch DataLoader). Received: "
            f"{type(source).__name__}"
        )
    batches = streams.Batches(source, name=name)
    if not batches.reiterable:
        raise ValueError(
            f"`{name}` is an iterator (e.g. a generator), which can be read "
            "only once; the experiment reads it for pre-training, every epoch "
            "and the final metrics. Wrap it in a keras.utils.PyDataset. "
            f"Received: {type(source).__name__}"
        )
    for batch in batches:
        return batch
    raise ValueError(f"`{name}` is empty: it yielded no batch.")


def _check_batch(batch, name, input_shape, num_classes, unit_range):
    inputs, targets, _ = keras.utils.unpack_x_y_sample_weight(batch)
    if targets is None:
        raise ValueError(
            f"The batches of `{name}` must be `(inputs, targets)`. "
            "Received: batches without targets"
        )
    if tuple(np.shape(inputs)[1:]) != tuple(input_shape):
        raise ValueError(
            f"The inputs of `{name}` must have the shape (samples, "
            f"{', '.join(map(str, input_shape))}). Received: inputs of shape "
            f"{tuple(np.shape(inputs))}"
        )
    if tuple(np.shape(targets)[1:]) != (num_classes,):
        raise ValueError(
            f"The targets of `{name}` must be one-hot, of shape (samples, "
            f"{num_classes}); convert integer labels with "
            f"keras.utils.to_categorical. Received: targets of shape "
            f"{tuple(np.shape(targets))}"
        )
    targets = np.asarray(targets)
    onehot = np.all((targets == 0) | (targets == 1), axis=-1) & (targets.sum(-1) == 1)
    if not np.all(onehot):
        row = int(np.argmin(onehot))
        raise ValueError(
            f"The targets of `{name}` must be one-hot: a single 1 per row, 0 "
            f"elsewhere. Received: row {row} is {targets[row].tolist()}"
        )
    inputs = np.asarray(inputs)
    if unit_range and (inputs.min() < 0 or inputs.max() > 1):
        raise ValueError(
            f"The inputs of `{name}` must lie in [0, 1] (e.g. 8-bit images "
            f"divided by 255). Received: values from {inputs.min()} to "
            f"{inputs.max()}"
        )


def load_image_data(module, args, channels_last=True):
    """Load `(x_train, y_train), (x_test, y_test)` scaled to [0, 1].

    Args:
        module: A dataset module of `anysma.datasets` with `load_data`.
        args: The parsed flags (`data_dir`, `max_samples`, `seed`).
        channels_last: Add a channel axis to grey-scale images.

    Returns:
        float32 images `(samples, height, width, channels)` and int64
        labels `(samples,)`, each split cut to `--max_samples`.
    """
    (x_train, y_train), (x_test, y_test) = module.load_data(data_dir=args.data_dir)
    x_train, y_train = subset((x_train, y_train), args.max_samples, args.seed)
    x_test, y_test = subset((x_test, y_test), args.max_samples, args.seed)
    return (
        (_scale(x_train, channels_last), _labels(y_train)),
        (_scale(x_test, channels_last), _labels(y_test)),
    )


#: Coverages of the reject-option tables.
COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7)


def reject_table(model, x, y, coverages=COVERAGES):
    """The reject option of an LVQ model: its curve and accuracy per coverage.

    For every target coverage, the threshold of the accuracy-coverage curve
    (relative similarity, `anysma.reject.accuracy_coverage_curve`) that
    accepts the fewest samples while accepting at least that fraction.

    Returns:
        `(curve, table)`, with `table` a dict from the target coverage
        (`"0.90"`) to the reached `coverage` and the `accuracy` there.
    """
    from anysma import reject

    curve = reject.accuracy_coverage_curve(model, x, y)
    table = {}
    for coverage in coverages:
        enough = np.flatnonzero(curve.coverage >= coverage - 1e-12)
        point = enough[np.argmin(curve.coverage[enough])]
        table[f"{coverage:.2f}"] = {
            "coverage": float(curve.coverage[point]),
            "accuracy": float(curve.accuracy[point]),
        }
    return curve, table


def _scale(images, channels_last):
    images = np.asarray(images, dtype="float32") / 255.0
    if channels_last and images.ndim == 3:
        images = images[..., None]
    return images


def _labels(labels):
    return np.asarray(labels).reshape(-1).astype("int64")


def predict(model, inputs, batch_size):
    """`model.predict` without the progress bar."""
    return model.predict(inputs, batch_size=batch_size, verbose=0)


def accuracy(probabilities, labels):
    """Accuracy of the argmax of `probabilities` against integer `labels`.

    Under `keras.config.set_max_steps_per_epoch` (or the environment
    variable `KERAS_MAX_STEPS_PER_EPOCH`), `predict` returns only the first
    batches; they are compared with the first labels.
    """
    predicted = np.argmax(probabilities, axis=-1)
    return float(np.mean(predicted == np.asarray(labels)[: len(predicted)]))
