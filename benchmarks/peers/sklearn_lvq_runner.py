"""sklearn-lvq 1.1.1 benchmark runner.

Runs in the `sklearn_lvq` peer environment (see `setup_peers.py`), one task
per process, and prints one JSON result line. Tasks:

- `train`: GLVQ or GMLVQ on MNIST or Tecator (hold-out split).
- `cv`: fit time and accuracy of one model over the Tecator CV folds.

Every model runs with the library's defaults (full-batch L-BFGS-B,
`max_iter=2500`, `gtol=1e-5`) and `random_state=0`. A pass is one full-batch
function-and-gradient evaluation; the runner counts them by wrapping the
library's reference to `scipy.optimize.minimize` (instrumentation only).
L-BFGS-B offers no per-epoch hook here, so the time to the target accuracy
is the fit time when the final model reaches it.
"""

import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _protocol  # noqa: E402

warnings.filterwarnings("ignore")

MODELS = {
    "glvq": ("glvq", "GlvqModel"),
    "gmlvq": ("gmlvq", "GmlvqModel"),
    "grlvq": ("grlvq", "GrlvqModel"),
    "rslvq": ("rslvq", "RslvqModel"),
    "lgmlvq": ("lgmlvq", "LgmlvqModel"),
}


def _versions():
    import importlib.metadata as metadata

    return {
        name: metadata.version(name)
        for name in ("sklearn-lvq", "numpy", "scipy", "scikit-learn")
    }


def _estimator(model_name):
    """A fresh estimator and the evaluation counter of its optimizer."""
    import importlib

    module_name, class_name = MODELS[model_name]
    module = importlib.import_module(f"sklearn_lvq.{module_name}")
    counter = {"evaluations": 0}
    original = getattr(module, "_original_minimize", module.minimize)
    module._original_minimize = original

    def counting_minimize(*args, **kwargs):
        result = original(*args, **kwargs)
        counter["evaluations"] += int(result.nfev)
        return result

    module.minimize = counting_minimize
    return getattr(module, class_name)(random_state=0), counter


def train(config):
    if config["data"] == "mnist":
        x_train, y_train, x_test, y_test = _protocol.load_mnist(
            config.get("n_train"), config.get("n_test")
        )
    else:
        x_train, y_train, x_test, y_test = _protocol.load_tecator_split()
    estimator, counter = _estimator(config["model"])
    start = time.perf_counter()
    estimator.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - start
    acc = _protocol.accuracy(y_test, estimator.predict(x_test))
    target = config.get("target_accuracy")
    n_train = len(x_train)
    return {
        "library": "sklearn-lvq",
        "versions": _versions(),
        "n_train": n_train,
        "passes": counter["evaluations"],
        "fit_seconds": fit_seconds,
        "samples_per_s": counter["evaluations"] * n_train / fit_seconds,
        "test_accuracy": acc,
        "target_accuracy": target,
        "time_to_target_s": fit_seconds if target and acc >= target else None,
        "accuracy_curve": [(counter["evaluations"], fit_seconds, acc)],
    }


def cross_validate(config):
    fit_seconds, accuracies = [], []
    for x_train, y_train, x_test, y_test in _protocol.tecator_cv_splits():
        estimator, _ = _estimator(config["model"])
        start = time.perf_counter()
        estimator.fit(x_train, y_train)
        fit_seconds.append(time.perf_counter() - start)
        accuracies.append(_protocol.accuracy(y_test, estimator.predict(x_test)))
    return {
        "library": "sklearn-lvq",
        "versions": _versions(),
        "fit_seconds_per_fold": fit_seconds,
        "fold_accuracies": accuracies,
    }


def main(config):
    if config.get("model") not in MODELS:
        raise _protocol.SkipBenchmark(
            f"sklearn-lvq has no model {config.get('model')!r} in this benchmark"
        )
    return {"train": train, "cv": cross_validate}[config["task"]](config)


if __name__ == "__main__":
    sys.exit(_protocol.run_worker(main))
