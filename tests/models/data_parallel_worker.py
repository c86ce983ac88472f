"""Trains and evaluates models on one device and on 4 virtual CPU devices.

Run by `test_data_parallel.py` in a fresh JAX process (the number of CPU
devices is fixed when JAX starts). Prints one JSON line: for every case, the
largest difference between the single-device and the `DataParallel` run in
the trained weights, the predictions and the `evaluate` results.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import anysma  # noqa: E402
from anysma.utils import data_parallel  # noqa: E402

# 197 rows: the last batch of 32 has 5 rows, which do not divide by 4.
NUM_ROWS = 197
BATCH_SIZE = 32


def lvq_data(num_classes, dim, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, NUM_ROWS)
    x = rng.normal(size=(NUM_ROWS, dim)).astype("float32") + labels[:, None]
    return x, keras.utils.to_categorical(labels, num_classes)


def glvq():
    model = anysma.models.GLVQ(input_dim=5, num_classes=3, prototypes_per_class=2)
    model.compile("adam", anysma.losses.GlvqLoss(), metrics=["accuracy", "auc"])
    return model, lvq_data(3, 5, 0)


def glvq_many_prototypes():
    model = anysma.models.GLVQ(input_dim=5, num_classes=3, prototypes_per_class=16)
    model.compile("adam", anysma.losses.GlvqLoss(), metrics=["accuracy"])
    return model, lvq_data(3, 5, 4)


def prototype_shards():
    """Batch over 2 devices, the 48 prototypes split over the other 2."""
    mesh = keras.distribution.DeviceMesh(
        (2, 2), ("batch", "model"), keras.distribution.list_devices()
    )
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[f"{anysma.models.GLVQ.MEASURING_LAYER}/prototypes"] = ("model", None)
    return keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    )


def gmlvq():
    model = anysma.models.GMLVQ(input_dim=6, num_classes=3, projection_dim=2)
    model.compile("adam", anysma.losses.GlvqLoss(), metrics=["accuracy"])
    return model, lvq_data(3, 6, 1)


def rslvq():
    model = anysma.models.RSLVQ(input_dim=4, num_classes=2, prototypes_per_class=3)
    model.compile(
        "adam",
        keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model, lvq_data(2, 4, 2)


def lvq_capsule_network():
    # Batch normalization in training mode: the copied last batch must give
    # the same batch statistics. No dropout, so both runs are deterministic.
    model = anysma.models.LVQCapsuleNetwork(
        image_shape=(8, 8, 1), num_classes=3, dropout_rate=0.0
    )
    model.compile(
        "adam",
        anysma.losses.GeneralizedKullbackLeiblerDivergence(),
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 21)
    x = rng.random((21, 8, 8, 1)).astype("float32") * (labels[:, None, None, None] + 1)
    return model, (x, keras.utils.to_categorical(labels, 3))


CASES = {
    "glvq": (glvq, {"validation_split": 0.25}),
    "gmlvq": (gmlvq, {"class_weight": {0: 1.0, 1: 2.0, 2: 0.5}}),
    "rslvq": (rslvq, {"sample_weight": np.linspace(0.5, 1.5, NUM_ROWS)}),
    "lvq_capsule_network": (lvq_capsule_network, {"batch_size": 8, "epochs": 1}),
    "glvq_prototype_shards": (glvq_many_prototypes, {}),
}
# The distribution of the parallel run; DataParallel over 4 devices if not
# named here.
DISTRIBUTIONS = {"glvq_prototype_shards": prototype_shards}


def run(case):
    build, fit_options = CASES[case]
    keras.utils.set_random_seed(7)
    model, (x, y) = build()
    fit_options = dict(fit_options)
    batch_size = fit_options.pop("batch_size", BATCH_SIZE)
    epochs = fit_options.pop("epochs", 2)
    history = {}
    if epochs:
        history = model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            **fit_options,
        ).history
    return {
        "weights": model.get_weights(),
        "predictions": model.predict(x, batch_size=batch_size, verbose=0),
        "evaluate": model.evaluate(
            x, y, batch_size=batch_size, verbose=0, return_dict=True
        ),
        "history": {k: v for k, v in history.items() if k.startswith("val")},
        "prototype_shardings": [
            str(getattr(variable.value.sharding, "spec", "one device"))
            for variable in model.weights
            if variable.path.endswith("/prototypes")
        ],
    }


def difference(single, parallel):
    def largest(a, b):
        return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))

    metric = {
        key: largest(single["evaluate"][key], parallel["evaluate"][key])
        for key in single["evaluate"]
    }
    validation = {
        key: largest(single["history"][key], parallel["history"][key])
        for key in single["history"]
    }
    return {
        "weights": max(
            largest(a, b) for a, b in zip(single["weights"], parallel["weights"])
        ),
        "predictions": largest(single["predictions"], parallel["predictions"]),
        "predictions_shape": list(np.shape(parallel["predictions"])),
        "evaluate": metric,
        "validation": validation,
        "prototype_shardings": parallel["prototype_shardings"],
    }


def main(cases=None):
    # One model per case and run: Keras names metrics after the first
    # instance (`auc`, then `auc_1`), so clear the names between runs.
    results = {}
    for case in cases or CASES:
        keras.backend.clear_session()
        keras.distribution.set_distribution(None)
        single = run(case)
        keras.backend.clear_session()
        distribution = DISTRIBUTIONS.get(case, keras.distribution.DataParallel)()
        keras.distribution.set_distribution(distribution)
        assert data_parallel.batch_shards() == distribution.device_mesh.shape[0]
        assert data_parallel.on_cpu_devices()
        results[case] = difference(single, run(case))
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    model, (x, y) = glvq()
    try:
        model.fit(x, y, batch_size=30, epochs=1, verbose=0)
    except ValueError as error:
        results["batch_size_error"] = str(error)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
