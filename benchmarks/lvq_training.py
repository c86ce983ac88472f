"""Worker: train anysma's GLVQ or GMLVQ on MNIST or Tecator, one backend.

Run by `run.py` in a fresh process with `KERAS_BACKEND` set; takes one JSON
config argument and prints one JSON result line (see `_protocol.run_worker`).

Protocol (the one ProtoTorch's examples use, so the two are comparable):
Adam, shuffled mini-batches, float32, the GLVQ cost on the `flip` output;
prototypes start at the class means (ProtoTorch's `SMCI`). The test
accuracy is evaluated every `eval_every` epochs; the evaluation time is left
out of the training time. Training runs one `fit` call per evaluation
interval (ProtoTorch: one `Trainer.fit` with an evaluation callback).
`fit_seconds` includes the first epoch and hence the backend's
tracing/compilation; `steady_samples_per_s` leaves the first epoch out.

With `"solver": "lbfgs"` the worker fits `anysma.sklearn.GMLVQClassifier`
(or `GLVQClassifier`) instead: full-batch L-BFGS-B like sklearn-lvq, with
prototypes at the class means. A pass is then one L-BFGS iteration (at
least one full-batch loss and gradient evaluation), so its samples/s is a
lower bound.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _protocol  # noqa: E402
import numpy as np  # noqa: E402


def _load(config):
    if config["data"] == "mnist":
        return _protocol.load_mnist(config.get("n_train"), config.get("n_test"))
    if config["data"] == "tecator":
        x_train, y_train, x_test, y_test = _protocol.load_tecator_split()
        return (
            x_train.astype(np.float32),
            y_train,
            x_test.astype(np.float32),
            y_test,
        )
    raise ValueError(f"unknown data set {config['data']!r}")


def _build(anysma, config, input_dim, num_classes):
    models = {"glvq": anysma.models.GLVQ, "gmlvq": anysma.models.GMLVQ}
    if config["model"] not in models:
        raise ValueError(f"unknown model {config['model']!r}")
    return models[config["model"]](
        input_dim=input_dim, num_classes=num_classes, prototypes_per_class=1
    )


def _fit_estimator(config):
    """Full-batch L-BFGS-B with the scikit-learn-style estimator."""
    import keras

    from anysma.sklearn import GLVQClassifier
    from anysma.sklearn import GMLVQClassifier

    x_train, y_train, x_test, y_test = _load(config)
    estimator_class = {"glvq": GLVQClassifier, "gmlvq": GMLVQClassifier}[
        config["model"]
    ]
    estimator = estimator_class(
        prototypes_per_class=1,
        initialization="class_mean",
        solver="lbfgs",
        random_state=config.get("seed", 0),
    )
    with _protocol.Stopwatch() as training:
        estimator.fit(x_train, y_train)
    accuracy = _protocol.accuracy(y_test, estimator.predict(x_test))
    target = config.get("target_accuracy")
    n_train = len(x_train)
    return {
        "library": "anysma",
        "backend": keras.backend.backend(),
        "n_train": n_train,
        "passes": estimator.n_iter_,
        "fit_seconds": training.seconds,
        "samples_per_s": estimator.n_iter_ * n_train / training.seconds,
        "steady_samples_per_s": None,
        "test_accuracy": accuracy,
        "target_accuracy": target,
        "time_to_target_s": (
            training.seconds if target and accuracy >= target else None
        ),
        "accuracy_curve": [(estimator.n_iter_, training.seconds, accuracy)],
    }


def main(config):
    import keras

    import anysma

    if config.get("solver") == "lbfgs":
        return _fit_estimator(config)

    keras.utils.set_random_seed(config.get("seed", 0))
    x_train, y_train, x_test, y_test = _load(config)
    num_classes = int(y_train.max()) + 1
    model = _build(anysma, config, x_train.shape[1], num_classes)
    # Class means as the initial prototypes (ProtoTorch's SMCI).
    means = np.stack([x_train[y_train == c].mean(axis=0) for c in range(num_classes)])
    model.measuring_module.prototypes.assign(means.astype("float32"))
    model.compile(
        optimizer=keras.optimizers.Adam(config.get("learning_rate", 0.01)),
        loss=anysma.losses.GlvqLoss(),
    )
    targets = keras.utils.to_categorical(y_train, num_classes)

    def test_accuracy():
        scores = model.predict(x_test, batch_size=4096, verbose=0)
        return _protocol.accuracy(y_test, np.argmax(scores, axis=-1))

    epochs = config["epochs"]
    eval_every = config.get("eval_every", 1)
    target = config.get("target_accuracy")
    # One `fit` call per evaluation interval (the first epoch alone, to time
    # tracing/compilation apart), as a training loop with periodic
    # validation runs; a call per epoch would time Keras' per-call setup.
    boundaries = sorted({1, epochs, *range(eval_every, epochs + 1, eval_every)})
    curve, chunks = [], []
    training = _protocol.Stopwatch()
    done = 0
    for end in boundaries:
        start = time.perf_counter()
        with training:
            model.fit(
                x_train,
                targets,
                batch_size=config["batch_size"],
                epochs=end,
                initial_epoch=done,
                shuffle=True,
                verbose=0,
            )
        chunks.append((end - done, time.perf_counter() - start))
        done = end
        if end % eval_every == 0 or end == epochs:
            curve.append((end, training.seconds, test_accuracy()))
    n_train = len(x_train)
    steady_epochs = sum(count for count, _ in chunks[1:])
    steady_seconds = sum(seconds for _, seconds in chunks[1:])
    reached = [seconds for _, seconds, acc in curve if target and acc >= target]
    return {
        "library": "anysma",
        "backend": keras.backend.backend(),
        "n_train": n_train,
        "passes": epochs,
        "fit_seconds": training.seconds,
        "samples_per_s": epochs * n_train / training.seconds,
        "steady_samples_per_s": (
            steady_epochs * n_train / steady_seconds if steady_epochs else None
        ),
        "test_accuracy": curve[-1][2],
        "target_accuracy": target,
        "time_to_target_s": reached[0] if reached else None,
        "accuracy_curve": curve,
    }


if __name__ == "__main__":
    sys.exit(_protocol.run_worker(main))
