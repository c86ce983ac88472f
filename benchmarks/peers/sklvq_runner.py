"""sklvq 0.1.2 benchmark runner.

Runs in the `sklvq` peer environment (see `setup_peers.py`), one task per
process, and prints one JSON result line. Tasks:

- `train`: GLVQ or GMLVQ on MNIST or Tecator (hold-out split); the test
  accuracy is taken after every epoch through the solver's `callback`
  (its time is left out; the solver's own objective evaluation before each
  callback stays in).
- `cv`: fit time and accuracy of one model over the Tecator CV folds.

Every model runs with the library's defaults (per-sample steepest gradient
descent, `max_runs=10` epochs, `step_size=0.1`) and `random_state=0`;
`solver` in the config selects another solver, e.g. `"lbfgs"`, and
`max_runs` another epoch count.
"""

import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _protocol  # noqa: E402

warnings.filterwarnings("ignore")

MODELS = {"glvq": "GLVQ", "gmlvq": "GMLVQ", "lgmlvq": "LGMLVQ"}


def _versions():
    import importlib.metadata as metadata

    return {
        name: metadata.version(name)
        for name in ("sklvq", "numpy", "scipy", "scikit-learn")
    }


def _estimator(config, callback=None):
    import sklvq

    kwargs = {"random_state": 0}
    solver_params = {}
    if config.get("solver"):
        kwargs["solver_type"] = config["solver"]
    if config.get("max_runs"):
        solver_params["max_runs"] = config["max_runs"]
    if callback is not None:
        solver_params["callback"] = callback
    if solver_params:
        kwargs["solver_params"] = solver_params
    return getattr(sklvq, MODELS[config["model"]])(**kwargs)


def train(config):
    if config["data"] == "mnist":
        x_train, y_train, x_test, y_test = _protocol.load_mnist(
            config.get("n_train"), config.get("n_test")
        )
    else:
        x_train, y_train, x_test, y_test = _protocol.load_tecator_split()
    curve = []
    state = {"eval_seconds": 0.0, "start": None, "estimator": None}

    def evaluate(solver_state):
        if solver_state["nit"] == "Initial":
            return False
        start = time.perf_counter()
        elapsed = start - state["start"] - state["eval_seconds"]
        acc = _protocol.accuracy(y_test, state["estimator"].predict(x_test))
        curve.append((int(solver_state["nit"]), elapsed, acc))
        state["eval_seconds"] += time.perf_counter() - start
        return False

    estimator = _estimator(config, callback=evaluate)
    state["estimator"] = estimator
    state["start"] = time.perf_counter()
    estimator.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - state["start"] - state["eval_seconds"]
    acc = _protocol.accuracy(y_test, estimator.predict(x_test))
    passes = curve[-1][0] if curve else None
    target = config.get("target_accuracy")
    reached = [seconds for _, seconds, value in curve if target and value >= target]
    n_train = len(x_train)
    return {
        "library": "sklvq",
        "versions": _versions(),
        "n_train": n_train,
        "passes": passes,
        "fit_seconds": fit_seconds,
        "samples_per_s": passes * n_train / fit_seconds if passes else None,
        "test_accuracy": acc,
        "target_accuracy": target,
        "time_to_target_s": reached[0] if reached else None,
        "accuracy_curve": curve,
    }


def cross_validate(config):
    fit_seconds, accuracies = [], []
    for x_train, y_train, x_test, y_test in _protocol.tecator_cv_splits():
        estimator = _estimator(config)
        start = time.perf_counter()
        estimator.fit(x_train, y_train)
        fit_seconds.append(time.perf_counter() - start)
        accuracies.append(_protocol.accuracy(y_test, estimator.predict(x_test)))
    return {
        "library": "sklvq",
        "versions": _versions(),
        "fit_seconds_per_fold": fit_seconds,
        "fold_accuracies": accuracies,
    }


def main(config):
    if config.get("model") not in MODELS:
        raise _protocol.SkipBenchmark(
            f"sklvq has no model {config.get('model')!r} in this benchmark"
        )
    return {"train": train, "cv": cross_validate}[config["task"]](config)


if __name__ == "__main__":
    sys.exit(_protocol.run_worker(main))
