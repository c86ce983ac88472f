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
