import os
import tempfile

import keras
import numpy as np

from anysma import callbacks
from anysma import losses
from anysma.testing import TestCase


def np_spread(y, p, margin):
    correct = np.sum(y * p, axis=-1, keepdims=True)
    return np.sum((1 - y) * np.maximum(margin - (correct - p), 0) ** 2, axis=-1)


class SpreadLossMarginSchedulerTest(TestCase):
    def test_margin_changes_the_training_loss(self):
        if keras.backend.backend() not in ("jax", "torch", "tensorflow"):
            self.skipTest("backend cannot train")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(8, 3)).astype("float32")
        y = np.eye(3, dtype="float32")[rng.integers(0, 3, size=8)]
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
        loss = losses.SpreadLoss(margin=0.0)
        # A learning rate of 0 keeps the predictions fixed, so the epoch losses
        # differ only through the margin. The default `jit_compile="auto"`
        # compiles the step on JAX and TensorFlow, where the margin is baked in.
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss)
        margins = [0.1, 0.9]
        scheduler = callbacks.SpreadLossMarginScheduler(loss, margins.__getitem__)
        history = model.fit(
            x,
            y,
            batch_size=8,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[scheduler],
            validation_data=(x, y),
        )
        predictions = keras.ops.convert_to_numpy(model(x)).astype("float64")
        expected = [np_spread(y, predictions, margin).mean() for margin in margins]
        self.assertAllClose(history.history["loss"], expected, atol=1e-5, rtol=1e-5)
        # The evaluation step is rebuilt as well.
        self.assertAllClose(history.history["val_loss"], expected, atol=1e-5, rtol=1e-5)
        self.assertGreater(expected[1], expected[0] + 0.1)
        self.assertEqual(history.history["margin"], margins)
        self.assertEqual(loss.margin, 0.9)

    def test_arguments_are_validated(self):
        with self.assertRaisesRegex(TypeError, "Received: loss="):
            callbacks.SpreadLossMarginScheduler(
                keras.losses.MeanSquaredError(), lambda epoch: 0.5
            )
        with self.assertRaisesRegex(TypeError, "Received: schedule=0.5"):
            callbacks.SpreadLossMarginScheduler(losses.SpreadLoss(), 0.5)
        scheduler = callbacks.SpreadLossMarginScheduler(
            losses.SpreadLoss(), lambda epoch: "wide"
        )
        with self.assertRaisesRegex(ValueError, r"Received: schedule\(0\)='wide'"):
            scheduler.on_epoch_begin(0)
        # The loss validates the value itself.
        scheduler = callbacks.SpreadLossMarginScheduler(
            losses.SpreadLoss(), lambda epoch: -1.0
        )
        with self.assertRaisesRegex(ValueError, "Received: margin=-1.0"):
            scheduler.on_epoch_begin(0)


class LinearMarginScheduleTest(TestCase):
    def test_values(self):
        schedule = callbacks.linear_margin_schedule(8)
        self.assertAlmostEqual(schedule(0), 0.2)
        self.assertAlmostEqual(schedule(1), 0.3)
        self.assertAlmostEqual(schedule(7), 0.9)
        self.assertAlmostEqual(schedule(100), 0.9)
        schedule = callbacks.linear_margin_schedule(
            3, initial_margin=0.5, final_margin=0.1
        )
        self.assertEqual(
            [round(schedule(epoch), 6) for epoch in range(4)], [0.5, 0.3, 0.1, 0.1]
        )
        self.assertEqual(callbacks.linear_margin_schedule(1)(0), 0.9)

    def test_arguments_are_validated(self):
        for num_epochs in (0, 2.5, True):
            with self.assertRaisesRegex(ValueError, "Received: num_epochs="):
                callbacks.linear_margin_schedule(num_epochs)
        with self.assertRaisesRegex(ValueError, "Received: initial_margin=-0.1"):
            callbacks.linear_margin_schedule(3, initial_margin=-0.1)
        with self.assertRaisesRegex(ValueError, "Received: final_margin='1'"):
            callbacks.linear_margin_schedule(3, final_margin="1")


def _temporary_folder(test):
    directory = tempfile.TemporaryDirectory()
    test.addCleanup(directory.cleanup)
    return directory.name


def _regression_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


class _Poison(keras.callbacks.Callback):
    """Set the last epoch's training loss to NaN (as a diverged run reports)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            logs["loss"] = float("nan")


class BestWeightsCheckpointTest(TestCase):
    def setUp(self):
        super().setUp()
        self.folder = _temporary_folder(self)
        self.path = f"{self.folder}/best.weights.h5"
        self.x = np.ones((4, 2), "float32")
        self.y = np.ones((4, 1), "float32")

    def test_a_nan_epoch_is_never_saved(self):
        if keras.backend.backend() not in ("jax", "torch", "tensorflow"):
            self.skipTest("backend cannot train")
        import os

        model = _regression_model()
        checkpoint = callbacks.BestWeightsCheckpoint(self.path, monitor="loss")
        # The poison runs first, so the checkpoint sees the NaN loss.
        model.fit(
            self.x, self.y, epochs=1, verbose=0, callbacks=[_Poison(0), checkpoint]
        )
        self.assertFalse(os.path.exists(self.path))
        model.fit(self.x, self.y, epochs=1, verbose=0, callbacks=[checkpoint])
        self.assertTrue(os.path.exists(self.path))
        # Only the final file remains: the temporary one was renamed.
        self.assertEqual(os.listdir(self.folder), ["best.weights.h5"])

    def test_initial_value_threshold_keeps_the_earlier_best(self):
        if keras.backend.backend() not in ("jax", "torch", "tensorflow"):
            self.skipTest("backend cannot train")
        import os

        checkpoint = callbacks.BestWeightsCheckpoint(
            self.path, monitor="loss", mode="min", initial_value_threshold=0.0
        )
        _regression_model().fit(
            self.x, self.y, epochs=2, verbose=0, callbacks=[checkpoint]
        )
        self.assertFalse(os.path.exists(self.path))

    def test_best_in_log(self):
        log = f"{self.folder}/log.csv"
        best = callbacks.BestWeightsCheckpoint.best_in_log
        self.assertIsNone(best(log, "val_accuracy"))
        with open(log, "w") as stream:
            stream.write("epoch,loss,val_accuracy\n0,1.5,0.5\n1,nan,nan\n2,0.7,0.25\n")
        self.assertEqual(best(log, "val_accuracy"), 0.5)
        self.assertEqual(best(log, "loss", mode="min"), 0.7)
        self.assertIsNone(best(log, "val_loss"))
        with self.assertRaisesRegex(ValueError, "mode"):
            best(log, "loss", mode="auto")

    def test_arguments_are_validated(self):
        with self.assertRaisesRegex(ValueError, "`filepath` must end with"):
            callbacks.BestWeightsCheckpoint(f"{self.folder}/best.h5")


class BackupAndRestoreTest(TestCase):
    def test_keeps_two_checkpoints_and_resumes(self):
        if keras.backend.backend() not in ("jax", "torch", "tensorflow"):
            self.skipTest("backend cannot train")
        import json
        import os

        folder = f"{_temporary_folder(self)}/backup"
        x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 2:
                    raise KeyboardInterrupt

        model = _regression_model()
        backup = callbacks.BackupAndRestore(folder)
        with self.assertRaises(KeyboardInterrupt):
            model.fit(x, y, epochs=5, verbose=0, callbacks=[backup, Stop()])
        with open(os.path.join(folder, backup.INDEX)) as stream:
            entries = json.load(stream)["checkpoints"]
        self.assertEqual([entry["epoch"] for entry in entries], [3, 2])
        self.assertEqual(
            sorted(name for name in os.listdir(folder) if name.endswith(".h5")),
            sorted(entry["weights"] for entry in entries),
        )
        resumed = _regression_model()
        history = resumed.fit(
            x, y, epochs=5, verbose=0, callbacks=[callbacks.BackupAndRestore(folder)]
        )
        self.assertEqual(len(history.history["loss"]), 2)  # epochs 3 and 4
        self.assertFalse(os.path.exists(folder))

    def test_unbuilt_model_is_rejected(self):
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        backup = callbacks.BackupAndRestore(f"{_temporary_folder(self)}/backup")
        backup.set_model(model)
        with self.assertRaisesRegex(ValueError, "built model"):
            backup.on_train_begin()


class TensorBoardTest(TestCase):
    """The original's callback name, writing logs without TensorFlow's API."""

    def read_events(self, folder):
        from tensorboard.backend.event_processing.event_file_loader import (
            RawEventFileLoader,
        )
        from tensorboard.compat.proto import event_pb2

        (name,) = os.listdir(folder)
        scalars, histograms = {}, {}
        # The raw records, as written (the other loaders convert them).
        for record in RawEventFileLoader(os.path.join(folder, name)).Load():
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                if value.HasField("histo"):
                    histograms.setdefault(value.tag, []).append(value.histo)
                else:
                    scalars.setdefault(value.tag, []).append(
                        (event.step, value.simple_value)
                    )
        return scalars, histograms

    def test_epoch_metrics_and_histograms_are_written(self):
        folder = _temporary_folder(self)
        keras.utils.set_random_seed(0)
        model = _regression_model()
        features = np.random.RandomState(0).rand(32, 2).astype("float32")
        targets = features.sum(axis=1, keepdims=True)
        history = model.fit(
            features,
            targets,
            validation_data=(features[:8], targets[:8]),
            epochs=3,
            batch_size=8,
            verbose=0,
            callbacks=[callbacks.TensorBoard(folder, histogram_freq=2)],
        )
        self.assertEqual(sorted(os.listdir(folder)), ["train", "validation"])
        train, histograms = self.read_events(os.path.join(folder, "train"))
        validation, _ = self.read_events(os.path.join(folder, "validation"))
        self.assertEqual([step for step, _ in train["epoch_loss"]], [0, 1, 2])
        self.assertAllClose(
            [value for _, value in train["epoch_loss"]], history.history["loss"]
        )
        self.assertAllClose(
            [value for _, value in validation["epoch_loss"]],
            history.history["val_loss"],
        )
        # Epochs 0 and 2; one histogram per weight, counting all its values.
        self.assertCountEqual(histograms, [w.path for w in model.weights])
        for weight in model.weights:
            self.assertLen(histograms[weight.path], 2)
            self.assertEqual(histograms[weight.path][-1].num, np.prod(weight.shape))

    def test_arguments(self):
        with self.assertRaisesRegex(TypeError, "log_dir"):
            callbacks.TensorBoard(log_dir=3)
        with self.assertRaisesRegex(ValueError, "histogram_freq"):
            callbacks.TensorBoard(histogram_freq=-1)
