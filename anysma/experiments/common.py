"""Shared plumbing of the experiments: output folder, logs, summaries."""

import importlib.util
import json
import os
import tempfile

import keras


def output_directory(save_dir, name):
    """Create and return `save_dir/name`."""
    path = os.path.join(save_dir, name)
    os.makedirs(path, exist_ok=True)
    return path


def write_json_atomically(path, data):
    """Write JSON to a temporary file in the same folder, then rename it."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def training_callbacks(directory, monitor="val_accuracy"):
    """CSV log, the best checkpoint and (when installed) TensorBoard logs."""
    callbacks = [
        keras.callbacks.CSVLogger(os.path.join(directory, "log.csv")),
        keras.callbacks.ModelCheckpoint(
            os.path.join(directory, "best.weights.h5"),
            monitor=monitor,
            save_best_only=True,
            save_weights_only=True,
        ),
    ]
    # Keras writes TensorBoard summaries through TensorFlow and TensorBoard.
    if all(importlib.util.find_spec(name) for name in ("tensorflow", "tensorboard")):
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=os.path.join(directory, "tensorboard"))
        )
    return callbacks
