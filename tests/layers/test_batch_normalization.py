import os
import tempfile

import keras
import numpy as np
import pytest

from anysma.layers import BatchNormalization
from anysma.testing import TestCase


def batches(count, shape=(64, 5, 5, 3), seed=0):
    rng = np.random.default_rng(seed)
    # Small, drifting inputs: the case Keras' moving statistics get wrong.
    return [
        rng.normal(0.3 + 0.1 * step, 0.05 * (1 + step), shape).astype("float32")
        for step in range(count)
    ]


def reference_moving_statistics(inputs, momentum):
    """Bias-corrected exponential averages of the batch mean and variance."""
    mean = variance = 0.0
    for batch in inputs:
        axes = tuple(range(batch.ndim - 1))
        mean = momentum * mean + (1 - momentum) * batch.mean(axes)
        variance = momentum * variance + (1 - momentum) * batch.var(axes)
    correction = 1 - momentum ** len(inputs)
    return mean / correction, variance / correction


class BatchNormalizationTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            BatchNormalization,
            {"momentum": 0.9, "epsilon": 1e-3},
            batches(1)[0],
            expected_output_shape=(64, 5, 5, 3),
            expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=3,
        )

    def test_inference_uses_bias_corrected_statistics(self):
        layer = BatchNormalization(momentum=0.9, epsilon=1e-3)
        inputs = batches(4)
        for batch in inputs:
            layer(batch, training=True)
        self.assertAllClose(layer.steps, 4.0)
        mean, variance = reference_moving_statistics(inputs, 0.9)
        test = batches(1, seed=1)[0]
        expected = (test - mean) / np.sqrt(variance + 1e-3)
        self.assertAllClose(layer(test, training=False), expected, atol=1e-4)

    def test_training_mode_equals_keras(self):
        ours = BatchNormalization(momentum=0.9, gamma_initializer="random_normal")
        keras_layer = keras.layers.BatchNormalization(momentum=0.9)
        batch = batches(1)[0]
        ours.build(batch.shape)
        keras_layer.build(batch.shape)
        keras_layer.gamma.assign(ours.gamma)
        self.assertAllClose(
            ours(batch, training=True), keras_layer(batch, training=True), atol=1e-5
        )

    def test_before_any_update_acts_like_keras(self):
        layer = BatchNormalization(epsilon=1e-3)
        batch = batches(1)[0]
        self.assertAllClose(
            layer(batch, training=False), batch / np.sqrt(1 + 1e-3), atol=1e-6
        )

    def test_frozen_layer_does_not_update(self):
        layer = BatchNormalization(momentum=0.9)
        layer.build((None, 3))
        layer.trainable = False
        layer(np.ones((8, 3), "float32"), training=True)
        self.assertAllClose(layer.steps, 0.0)

    @pytest.mark.requires_trainable_backend
    def test_fit_then_predict_matches_training_statistics(self):
        # Inputs with variance 0.01: after 5 Keras steps at momentum 0.99
        # the moving variance is still ~0.95, so Keras' inference output
        # would be ~10x too small; here it is right.
        rng = np.random.default_rng(0)
        x = rng.normal(0.0, 0.1, (320, 4)).astype("float32")
        inputs = keras.Input((4,))
        model = keras.Model(inputs, BatchNormalization(momentum=0.99)(inputs))
        model.compile("sgd", "mse")
        model.fit(x, np.zeros_like(x), batch_size=64, epochs=1, verbose=0)
        outputs = model.predict(x, verbose=0)
        self.assertAllClose(outputs.std(axis=0), np.ones(4), atol=0.1)

    def test_saving_round_trip(self):
        inputs = keras.Input((3,))
        model = keras.Model(inputs, BatchNormalization(momentum=0.8)(inputs))
        for batch in batches(3, shape=(16, 3)):
            model(batch, training=True)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.keras")
            model.save(path)
            loaded = keras.saving.load_model(path)
        test = batches(1, shape=(16, 3), seed=2)[0]
        self.assertAllClose(loaded(test), model(test), atol=1e-6)
        self.assertAllClose(loaded.layers[1].steps, 3.0)

    def test_rejects_moving_initializers_and_renorm(self):
        with self.assertRaisesRegex(ValueError, "moving_variance_initializer='ones'"):
            BatchNormalization(moving_variance_initializer="ones")
        with self.assertRaisesRegex(ValueError, "renorm"):
            BatchNormalization(renorm=True)
