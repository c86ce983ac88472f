"""One training step of capsule and LVQ models compiled by XLA.

`jit_compile=True` on TensorFlow and JAX's default `jax.jit` need static
routing iterations and no data-dependent shapes; each test compares one
compiled optimizer step with the same step run eagerly. PyTorch is skipped:
its `jit_compile=True` is `torch.compile`, not a graph of fixed shapes.
"""

import keras
import numpy as np
import pytest

import anysma
import anysma.layers
from anysma import models
from anysma.testing import TestCase

pytestmark = [
    pytest.mark.requires_trainable_backend,
    pytest.mark.skipif(
        keras.backend.backend() not in ("jax", "tensorflow"),
        reason="XLA compilation (jit_compile=True) on TensorFlow and JAX",
    ),
]


def images(samples, image_shape, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(samples,) + tuple(image_shape)).astype("float32")
    y = keras.utils.to_categorical(np.arange(samples) % num_classes, num_classes)
    return x, y


def targets_of(targets):
    return targets["probabilities"] if isinstance(targets, dict) else targets


def lvq_capsule_chain(image_shape=(6, 6, 1), num_classes=3):
    """A small LVQ-CN: a convolution split into signals and dissimilarities,
    two capsule layers with sparse signals, tangent distances and routing."""
    from anysma.modules import Classification
    from anysma.modules import GibbsRouting
    from anysma.modules import InputModule
    from anysma.modules import RestrictedTangentDistance
    from anysma.modules import SplitModule
    from anysma.modules import TangentDistance

    images = keras.Input(image_shape)
    features = anysma.layers.Conv2D(9, 3, strides=2, padding="same")(images)
    signals, dissimilarities = SplitModule()(features)
    first = anysma.Capsule(prototype_distribution=(1, 4))
    first.add(
        [
            InputModule(signal_shape=(-1, 8), sparse_signal=True),
            TangentDistance(2, linear_factor=0.66),
            GibbsRouting(trainable=False),
        ]
    )
    second = anysma.Capsule(prototype_distribution=(2, num_classes))
    second.add(
        [
            InputModule(signal_shape=(-1, 8), sparse_signal=True),
            RestrictedTangentDistance(2, matrix_scope="global"),
            GibbsRouting(trainable=False),
            anysma.modules.GibbsCompetition(),
            Classification(probability_transformation="neg_softmax"),
        ]
    )
    outputs = second(first((signals, keras.layers.ReLU()(dissimilarities))))
    return keras.Model(images, outputs[2])


class JitCompileTest(TestCase):
    def assert_compiled_step_equals_eager_step(
        self, build, loss, inputs, targets, atol=1e-4, compare=True
    ):
        """Weights after one SGD step with and without XLA.

        On JAX the eager step (op by op) is slow and the compiled one its
        default; there the test checks that the step compiles and trains.
        """
        compare = compare and keras.backend.backend() == "tensorflow"
        results = []
        modes = (
            ({"jit_compile": True}, {"run_eagerly": True})
            if compare
            else ({"jit_compile": True},)
        )
        initial = None
        for mode in modes:
            model = build()
            if initial is None:
                initial = model.get_weights()
            model.set_weights(initial)
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss, **mode
            )
            history = model.fit(
                inputs, targets, batch_size=len(targets_of(targets)), verbose=0
            )
            self.assertTrue(np.isfinite(history.history["loss"][0]))
            results.append(model.get_weights())
        self.assertFalse(
            all(np.allclose(a, b) for a, b in zip(initial, results[0])),
            "the step changed no weight",
        )
        if compare:
            for compiled, eager in zip(*results):
                self.assertAllClose(compiled, eager, atol=atol, rtol=atol)

    def test_small_lvq_capsule_chain(self):
        x, y = images(4, (6, 6, 1), 3)
        self.assert_compiled_step_equals_eager_step(
            lvq_capsule_chain,
            anysma.losses.GeneralizedKullbackLeiblerDivergence(),
            x,
            y,
        )

    @pytest.mark.large
    def test_tiny_lvq_capsule_network(self):
        x, y = images(4, (8, 8, 1), 3)
        self.assert_compiled_step_equals_eager_step(
            lambda: models.LVQCapsuleNetwork(
                image_shape=(8, 8, 1), num_classes=3, dropout_rate=0.0
            ),
            anysma.losses.GeneralizedKullbackLeiblerDivergence(),
            x,
            y,
        )

    def test_tiny_capsnet_and_capsnet_lvq(self):
        config = {
            "image_shape": (12, 12, 1),
            "num_classes": 3,
            "conv_filters": 8,
            "conv_kernel_size": 3,
            "primary_capsule_channels": 2,
            "primary_capsule_dim": 4,
            "digit_capsule_dim": 4,
            "decoder_units": [16],
        }
        x, y = images(4, (12, 12, 1), 3)
        # The eager step of CapsNetLVQ adds little to the LVQ chain above.
        for model_class, loss, compare in (
            (models.CapsNet, anysma.losses.MarginLoss(), True),
            (
                models.CapsNetLVQ,
                anysma.losses.GeneralizedKullbackLeiblerDivergence(),
                False,
            ),
        ):
            with self.subTest(model=model_class.__name__):
                self.assert_compiled_step_equals_eager_step(
                    lambda model_class=model_class: model_class(**config),
                    {"probabilities": loss, "reconstruction": "mse"},
                    {"images": x, "labels": y},
                    {"probabilities": y, "reconstruction": x},
                    compare=compare,
                )

    def test_glvq(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(9, 4)).astype("float32")
        y = keras.utils.to_categorical(np.arange(9) % 3, 3)
        self.assert_compiled_step_equals_eager_step(
            lambda: models.GLVQ(input_dim=4, num_classes=3, prototypes_per_class=2),
            anysma.losses.GlvqLoss(),
            x,
            y,
        )

    @pytest.mark.large
    def test_lvq_capsule_network_mnist_size(self):
        x, y = images(8, (28, 28, 1), 10)
        self.assert_compiled_step_equals_eager_step(
            lambda: models.LVQCapsuleNetwork(image_shape=(28, 28, 1)),
            anysma.losses.GeneralizedKullbackLeiblerDivergence(),
            x,
            y,
            compare=False,
        )

    def test_tangent_lvq_training_stays_finite(self):
        # Regression: XLA recomputed the tangent distances inside `flip` with
        # other rounding, so no entry equaled their maximum and the gradient
        # of `max` divided 0 by 0 (a NaN loss from the first epoch on JAX).
        from sklearn.datasets import load_iris

        x, labels = load_iris(return_X_y=True)
        x = ((x - x.mean(0)) / x.std(0)).astype("float32")
        y = keras.utils.to_categorical(labels, 3)
        for model_class in (models.GTLVQ, models.RTLVQ):
            with self.subTest(model=model_class.__name__):
                keras.utils.set_random_seed(0)
                model = model_class(input_dim=4, num_classes=3, subspace_dim=1)
                model.pre_training(x, labels)
                model.compile(
                    optimizer=keras.optimizers.Adam(0.01),
                    loss=anysma.losses.GlvqLoss(),
                    metrics=["accuracy"],
                    jit_compile=True,
                )
                history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
                self.assertTrue(np.all(np.isfinite(history.history["loss"])))
                self.assertGreater(history.history["accuracy"][-1], 0.9)
