"""The ready-made classification-by-components models."""

import keras
import numpy as np
import pytest

import anysma
from anysma import models
from anysma.testing import TestCase
from anysma.testing.datasets import real_data_file

MNIST_PATH = real_data_file("mnist.npz")

#: Inference-mode accuracy on 1000 held-out MNIST test images that `CBC`
#: (20 components, pixels, no data-driven initialization) must reach after
#: 30 epochs on 3000 training images (batch 64, Adam 0.05). Measured: 0.736
#: on JAX, 0.689 on PyTorch, 0.666 on TensorFlow (each backend draws its own
#: initial weights); GLVQ with 2 prototypes per class (the same 20 vectors)
#: reached 0.777 (Adam 0.05) and 0.803 (Adam 0.01) on JAX on the same budget.
#: Chance is 0.1.
CBC_MNIST_ACCURACY = 0.6

#: Epochs of the Siamese learning test (3000 training images, batch 64,
#: Adam 0.003, 9 components, the paper's gray initialization).
SIAMESE_EPOCHS = 15

#: Inference-mode accuracy on 1000 held-out MNIST test images that
#: `SiameseCBC` must reach on that budget. Measured: 0.882 on JAX, 0.855 on
#: PyTorch, 0.782 on TensorFlow (each backend draws its own initial weights;
#: the margin loss was still falling). A plain CNN with the same feature
#: extractor and a softmax layer (cross-entropy, Adam 0.003, batch 64)
#: reached 0.976 on JAX on the same budget (0.975 after 10 epochs); the
#: pixel `CBC` above 0.67-0.74 after 30 epochs.
SIAMESE_CBC_MNIST_ACCURACY = 0.7


def mnist_flat(test_case, train_samples, test_samples):
    if MNIST_PATH is None:
        test_case.skipTest(
            "the real mnist.npz was not found in the folders of "
            "ANYSMA_DATA_DIR (scripts/test.sh sets it)"
        )
    with np.load(MNIST_PATH) as data:
        x_train = data["x_train"][:train_samples]
        y_train = data["y_train"][:train_samples]
        x_test = data["x_test"][:test_samples]
        y_test = data["y_test"][:test_samples]

    def prepare(images):
        return (images.reshape(len(images), -1) / 255.0).astype("float32")

    return (prepare(x_train), y_train), (prepare(x_test), y_test)


class CBCModelTest(TestCase):
    def test_outputs_are_probabilities(self):
        model = models.CBC(input_dim=4, num_classes=3, num_components=5)
        x = np.random.RandomState(0).uniform(size=(7, 4)).astype("float32")
        probabilities = model.predict(x, verbose=0)
        self.assertEqual(probabilities.shape, (7, 3))
        self.assertTrue(np.all(probabilities >= 0) and np.all(probabilities <= 1))
        self.assertEqual(model.components.shape, (5, 4))
        positive, negative, indefinite = model.reasoning_probabilities()
        self.assertAllClose(positive + negative + indefinite, np.ones((5, 3)))
        self.assertAllClose(model.sigma, 0.4)

    def test_saving_and_config(self):
        model = models.CBC(
            input_dim=3,
            num_classes=2,
            num_components=4,
            sigma=2.0,
            trainable_sigma=False,
            distance="euclidean",
            components_initializer="glorot_uniform",
            name="cbc",
        )
        x = np.random.RandomState(1).uniform(size=(5, 3)).astype("float32")
        restored = self.run_model_saving_test(model, x)
        self.assertEqual(restored.get_config(), model.get_config())
        self.assertEqual(len(restored.trainable_weights), 2)

    def test_patch_model_saving_and_shapes(self):
        model = models.PatchCBC(
            image_shape=(8, 8, 1), num_classes=3, num_components=4, kernel_size=3
        )
        x = np.random.RandomState(2).uniform(size=(3, 8, 8, 1)).astype("float32")
        self.assertEqual(model.predict(x, verbose=0).shape, (3, 3))
        self.assertEqual(model.components.shape, (4, 3, 3, 1))
        restored = self.run_model_saving_test(model, x)
        self.assertEqual(restored.get_config(), model.get_config())

    def test_training_step(self):
        model = models.PatchCBC(
            image_shape=(8, 8, 1), num_classes=2, num_components=3, kernel_size=3
        )
        model.compile(optimizer="adam", loss=anysma.losses.CBCLoss())
        x = np.random.RandomState(3).uniform(size=(4, 8, 8, 1)).astype("float32")
        history = model.fit(x, np.array([0, 1, 0, 1]), verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][-1]))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_classes"):
            models.CBC(input_dim=3, num_classes=1)
        with self.assertRaisesRegex(ValueError, "sigma"):
            models.CBC(input_dim=3, num_classes=2, sigma=-1.0)
        with self.assertRaisesRegex(ValueError, "`kernel_size` must fit"):
            models.PatchCBC(image_shape=(4, 4, 1), num_classes=2, kernel_size=5)
        with self.assertRaisesRegex(ValueError, "`image_shape` must be"):
            models.PatchCBC(image_shape=(4, 4), num_classes=2)
        model = models.CBC(input_dim=3, num_classes=2)
        with self.assertRaisesRegex(ValueError, r"shape \(batch, 3\)"):
            model.predict(np.zeros((2, 4), "float32"), verbose=0)


class SiameseCBCModelTest(TestCase):
    KWARGS = {"image_shape": (12, 12, 1), "num_classes": 3, "num_components": 4}

    def test_outputs_accessors_and_shared_weights(self):
        model = models.SiameseCBC(**self.KWARGS, filters=(4, 6))
        x = np.random.RandomState(4).uniform(size=(5, 12, 12, 1)).astype("float32")
        probabilities = model.predict(x, verbose=0)
        self.assertEqual(probabilities.shape, (5, 3))
        self.assertTrue(np.all(probabilities >= 0) and np.all(probabilities <= 1))
        self.assertEqual(model.components.shape, (4, 12, 12, 1))
        positive, negative, indefinite = model.reasoning_probabilities()
        self.assertAllClose(positive + negative + indefinite, np.ones((4, 3)))
        # One extractor for images and components: components, two kernels
        # and two biases, reasoning.
        self.assertLen(model.trainable_weights, 6)
        self.assertEqual(
            [layer.name for layer in model.feature_layers],
            ["features_conv1", "features_conv2", "features_pool1"],
        )
        self.assertEqual(
            sorted(model.weights_by_role()), ["components", "features", "reasoning"]
        )
        # No width: a cosine detection (on PyTorch, `torch.nn.Module` words
        # the message).
        self.assertFalse(hasattr(model, "sigma"))

    def test_detection_is_the_cosine_of_the_shared_features(self):
        model = models.SiameseCBC(**self.KWARGS, filters=(4, 6))
        x = np.random.RandomState(5).uniform(size=(3, 12, 12, 1)).astype("float32")
        extractor = keras.Sequential(model.feature_layers)
        features = extractor.predict(x, verbose=0).reshape(3, -1).astype("float64")
        components = extractor.predict(model.components, verbose=0).reshape(4, -1)
        cosine = features @ components.T
        cosine /= np.linalg.norm(features, axis=1)[:, None]
        cosine /= np.linalg.norm(components, axis=1)[None]
        detections = keras.Model(model.input, model.detection_layer.output)
        self.assertAllClose(
            detections.predict(x, verbose=0), np.maximum(cosine, 0), atol=1e-5
        )

    def test_saving_and_config(self):
        model = models.SiameseCBC(
            **self.KWARGS,
            filters=(3, 3, 5),
            components_initializer="glorot_uniform",
            name="siamese",
        )
        x = np.random.RandomState(6).uniform(size=(2, 12, 12, 1)).astype("float32")
        restored = self.run_model_saving_test(model, x)
        self.assertEqual(restored.get_config(), model.get_config())
        self.assertAllClose(restored.components, model.components)

    def test_training_step(self):
        model = models.SiameseCBC(**self.KWARGS, filters=(4, 4))
        model.compile(optimizer="adam", loss=anysma.losses.CBCLoss())
        x = np.random.RandomState(7).uniform(size=(4, 12, 12, 1)).astype("float32")
        before = model.components
        history = model.fit(x, np.array([0, 1, 2, 1]), verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][-1]))
        self.assertFalse(np.allclose(model.components, before))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "`filters` must be"):
            models.SiameseCBC(**self.KWARGS, filters=(4, 0))
        with self.assertRaisesRegex(ValueError, "`filters` must be"):
            models.SiameseCBC(**self.KWARGS, filters=())
        with self.assertRaisesRegex(ValueError, "too small"):
            models.SiameseCBC(**self.KWARGS, filters=(4, 4, 4, 4))
        with self.assertRaisesRegex(ValueError, "`image_shape` must be"):
            models.SiameseCBC(image_shape=(12, 12), num_classes=2)
        with self.assertRaisesRegex(ValueError, "num_classes"):
            models.SiameseCBC(image_shape=(12, 12, 1), num_classes=1)


class SiameseCBCLearningTest(TestCase):
    """The paper's Siamese CBC against a CNN with the same feature extractor."""

    def _train(
        self, train_samples, epochs, filters=models.cbc.SIAMESE_FILTERS, batch_size=64
    ):
        (x_train, y_train), (x_test, y_test) = mnist_flat(self, train_samples, 1000)
        x_train = x_train.reshape(-1, 28, 28, 1)
        x_test = x_test.reshape(-1, 28, 28, 1)
        keras.utils.set_random_seed(0)
        model = models.SiameseCBC(
            image_shape=(28, 28, 1), num_classes=10, num_components=9, filters=filters
        )
        model.compile(
            optimizer=keras.optimizers.Adam(0.003),
            loss=anysma.losses.CBCLoss(margin=0.3),
            metrics=["accuracy"],
        )
        history = model.fit(
            x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0
        )
        return model, history, (x_test, y_test)

    def test_loss_falls_on_mnist(self):
        # A smaller extractor keeps this twin of the large test fast.
        _, history, _ = self._train(256, 4, filters=(8, 16, 16, 32), batch_size=32)
        losses = history.history["loss"]
        self.assertLess(losses[-1], losses[0] - 0.01, losses)

    @pytest.mark.large
    def test_learns_mnist(self):
        model, _, (x_test, y_test) = self._train(3000, SIAMESE_EPOCHS)
        predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        accuracy = float(np.mean(predictions == y_test))
        print(f"SiameseCBC test accuracy: {accuracy:.3f}")
        self.assertGreater(accuracy, SIAMESE_CBC_MNIST_ACCURACY)


class CBCLearningTest(TestCase):
    def _train(self, train_samples, epochs):
        (x_train, y_train), (x_test, y_test) = mnist_flat(self, train_samples, 1000)
        keras.utils.set_random_seed(0)
        model = models.CBC(input_dim=784, num_classes=10, num_components=20)
        model.compile(
            optimizer=keras.optimizers.Adam(0.05),
            loss=anysma.losses.CBCLoss(),
            metrics=["accuracy"],
        )
        history = model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
        return model, history, (x_test, y_test)

    def test_loss_falls_on_mnist(self):
        _, history, _ = self._train(512, 4)
        losses = history.history["loss"]
        self.assertLess(losses[-1], losses[0] - 0.02, losses)

    @pytest.mark.large
    def test_learns_mnist(self):
        model, _, (x_test, y_test) = self._train(3000, 30)
        predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        accuracy = float(np.mean(predictions == y_test))
        self.assertGreater(accuracy, CBC_MNIST_ACCURACY)
