"""Data protocol and measurement helpers shared by every benchmark worker.

This module is imported both by the anysma workers and by the peer runners,
which run in their own virtual environments (NumPy 1.23 to 2.x, no Keras,
no scikit-learn guaranteed), so it uses only the standard library and NumPy.

Protocol (the one the peer baselines were measured with):

- MNIST: pixels / 255, flattened to 784 features; the official 60k / 10k
  split (optionally the first `n_train` / `n_test` images).
- Tecator: label = fat > 20 %; split = rows 0-171 train, 172-214 test;
  5-fold CV stratified and shuffled with seed 0 over all 215 rows; the
  standardization is fit on the training part only.
"""

import json
import os
import pathlib
import resource
import sys
import time

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA_DIR = pathlib.Path(
    os.environ.get("ANYSMA_BENCHMARK_DATA", REPO_ROOT.parent / "shared" / "data")
)
TECATOR_SPLIT = 172
TECATOR_FAT_THRESHOLD = 20.0
CV_FOLDS = 5
CV_SEED = 0


class SkipBenchmark(Exception):
    """Raised by a worker when a measurement cannot run; the reason is reported."""


# === Data ===


def data_file(name):
    """Path of `name` in the shared data folder; `SkipBenchmark` if missing."""
    path = DATA_DIR / name
    if not path.exists():
        raise SkipBenchmark(f"data file {name} not found in the data folder")
    return path


def load_mnist(n_train=None, n_test=None):
    """MNIST as `(x_train, y_train, x_test, y_test)`, float32 in [0, 1], 784-d."""
    with np.load(data_file("mnist.npz"), allow_pickle=False) as data:
        x_train, y_train = data["x_train"], data["y_train"]
        x_test, y_test = data["x_test"], data["y_test"]
    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    if n_test is not None:
        x_test, y_test = x_test[:n_test], y_test[:n_test]

    def flat(images):
        return (images.reshape(len(images), -1) / 255.0).astype(np.float32)

    return (
        flat(x_train),
        y_train.astype(np.int64),
        flat(x_test),
        y_test.astype(np.int64),
    )


def load_tecator_raw():
    """All 215 Tecator spectra `(215, 100)` float64 and labels fat > 20 %."""
    with np.load(data_file("tecator.npz"), allow_pickle=False) as data:
        x = data["absorp"].astype(np.float64)
        y = (data["endpoints"][:, 1] > TECATOR_FAT_THRESHOLD).astype(np.int64)
    return x, y


def standardize(x_train, x_test):
    """Standardize both parts with the training part's mean and std (ddof 0)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std


def load_tecator_split():
    """Tecator `(x_train, y_train, x_test, y_test)`: rows 0-171 / 172-214."""
    x, y = load_tecator_raw()
    x_train, x_test = standardize(x[:TECATOR_SPLIT], x[TECATOR_SPLIT:])
    return x_train, y[:TECATOR_SPLIT], x_test, y[TECATOR_SPLIT:]


def stratified_folds(y, n_folds=CV_FOLDS, seed=CV_SEED):
    """Test indices of each fold of a shuffled, stratified K-fold split.

    Every class is shuffled with `seed` and dealt round-robin to the folds,
    so each fold holds the class proportions of `y` (up to one sample).
    """
    rng = np.random.RandomState(seed)
    folds = [[] for _ in range(n_folds)]
    offset = 0
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        for position, index in enumerate(members):
            folds[(position + offset) % n_folds].append(int(index))
        offset += len(members)
    return [np.sort(np.asarray(fold, dtype=np.int64)) for fold in folds]


def tecator_cv_splits():
    """Standardized Tecator CV folds `[(x_train, y_train, x_test, y_test), ...]`."""
    x, y = load_tecator_raw()
    splits = []
    for test_index in stratified_folds(y):
        train_mask = np.ones(len(y), dtype=bool)
        train_mask[test_index] = False
        x_train, x_test = standardize(x[train_mask], x[test_index])
        splits.append((x_train, y[train_mask], x_test, y[test_index]))
    return splits


def accuracy(y_true, y_pred):
    """Fraction of equal labels."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


# === Measurement ===


def peak_rss_bytes():
    """Peak resident set size of this process so far, in bytes (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes():
    """Current resident set size of this process, in bytes."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss_bytes()


class Stopwatch:
    """Accumulates wall time of the `with` blocks it times."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._start
        return False


def emit(result):
    """Print `result` as the one JSON line the orchestrator reads."""
    result = dict(result)
    result.setdefault("peak_rss_bytes", peak_rss_bytes())
    sys.stdout.write("\n@@RESULT@@" + json.dumps(result) + "\n")
    sys.stdout.flush()


def _run_one(main, config):
    start = time.perf_counter()
    result = _run_one_untimed(main, config)
    result["wall_s"] = time.perf_counter() - start
    return result


def _run_one_untimed(main, config):
    try:
        result = main(config)
    except SkipBenchmark as reason:
        return {"status": "skipped", "reason": str(reason)}
    except Exception as error:  # noqa: BLE001  (reported, not hidden)
        import traceback

        traceback.print_exc()
        return {"status": "error", "reason": f"{type(error).__name__}: {error}"}
    result.setdefault("status", "ok")
    return result


def run_worker(main, argv=None):
    """Run `main(config)` and emit its result, a skip or an error as JSON.

    The orchestrator passes one JSON object as the only command-line
    argument, or a JSON list of them (several configurations in one
    process; the peak RSS is then the process's, shared by all). A worker
    returns a dict of measurements.
    """
    argv = sys.argv[1:] if argv is None else argv
    config = json.loads(argv[0]) if argv else {}
    if isinstance(config, list):
        results = [_run_one(main, item) for item in config]
        emit({"status": "ok", "results": results})
        return 0 if all(r["status"] != "error" for r in results) else 1
    result = _run_one(main, config)
    emit(result)
    return 1 if result["status"] == "error" else 0
