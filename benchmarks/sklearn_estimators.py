"""Worker: anysma's scikit-learn estimators on the Tecator CV folds.

Run by `run.py` in a fresh process with `KERAS_BACKEND` set. Every
estimator of `anysma.sklearn` named in the config is fit with its defaults
and `random_state=0` on each of the 5 stratified Tecator folds (the same
folds and standardization as the peer runners); the fit time and the test
accuracy of every fold are reported.
"""

import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _protocol  # noqa: E402

ESTIMATORS = {
    "glvq": "GLVQClassifier",
    "gmlvq": "GMLVQClassifier",
    "grlvq": "GRLVQClassifier",
    "rslvq": "RSLVQClassifier",
    "lgmlvq": "LGMLVQClassifier",
    "gtlvq": "GTLVQClassifier",
}


def main(config):
    import keras

    try:
        import anysma.sklearn as estimators
    except ImportError as error:
        raise _protocol.SkipBenchmark(
            f"anysma.sklearn is not available ({error})"
        ) from error
    folds = _protocol.tecator_cv_splits()
    results = {}
    for model in config["models"]:
        name = ESTIMATORS[model]
        if not hasattr(estimators, name):
            results[model] = {
                "status": "skipped",
                "reason": f"anysma.sklearn has no {name}",
            }
            continue
        estimator_class = getattr(estimators, name)
        fit_seconds, accuracies = [], []
        try:
            for x_train, y_train, x_test, y_test in folds:
                estimator = estimator_class(random_state=0, **config.get("params", {}))
                with warnings.catch_warnings():
                    # A ConvergenceWarning is a result here, not an error.
                    warnings.simplefilter("ignore")
                    start = time.perf_counter()
                    estimator.fit(x_train, y_train)
                    fit_seconds.append(time.perf_counter() - start)
                accuracies.append(_protocol.accuracy(y_test, estimator.predict(x_test)))
        except Exception as error:  # noqa: BLE001  (one estimator's failure is a result)
            results[model] = {
                "status": "error",
                "reason": f"{type(error).__name__}: {error}",
            }
            continue
        results[model] = {
            "status": "ok",
            "estimator": f"anysma.sklearn.{name}",
            "fit_seconds_per_fold": fit_seconds,
            "fold_accuracies": accuracies,
        }
    return {
        "library": "anysma",
        "backend": keras.backend.backend(),
        "models": results,
    }


if __name__ == "__main__":
    sys.exit(_protocol.run_worker(main))
