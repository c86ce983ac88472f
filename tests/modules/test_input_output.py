import json

import keras
import numpy as np

import anysma
from anysma.modules import Classification
from anysma.modules import GibbsCompetition
from anysma.modules import GibbsRouting
from anysma.modules import InputModule
from anysma.modules import LinearTransformation
from anysma.modules import MinkowskiDistance
from anysma.modules import NearestCompetition
from anysma.modules import SqueezeRouting
from anysma.modules import TangentDistance
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def lvq_capsule(sparse_signal, measuring, extra=()):
    """Input -> [extra] -> measuring -> Gibbs routing -> competition -> final."""
    capsule = anysma.Capsule(prototype_distribution=(2, 3))
    capsule.add(
        [
            InputModule(
                signal_shape=(-1, 4),
                dissimilarity_initializer="ones",
                sparse_signal=sparse_signal,
            ),
            *extra,
            measuring,
            GibbsRouting(),
            GibbsCompetition(),
            Classification(),
        ]
    )
    return capsule


def twin_models(measuring_factory, extra_factory=lambda: ()):
    """Tiled and sparse versions of one capsule model, with equal weights."""
    models = []
    for sparse_signal in (False, True):
        inputs = keras.Input((5, 4))
        capsule = lvq_capsule(sparse_signal, measuring_factory(), extra_factory())
        models.append(keras.Model(inputs, capsule(inputs)[2]))
    for weight in models[0].weights:
        weight.assign(random(tuple(weight.shape), len(weight.path)))
    models[1].set_weights(models[0].get_weights())
    return models


class SparseSignalTest(TestCase):
    def test_shapes(self):
        module = InputModule(
            signal_shape=(-1, 4),
            dissimilarity_initializer="zeros",
            sparse_signal=True,
            prototype_distribution=(2, 3),
        )
        signals, dissimilarities = module(random((2, 5, 4)))
        self.assertShapeEqual(signals, (2, 1, 5, 4))
        self.assertShapeEqual(dissimilarities, (2, 6, 5))
        symbolic = module(keras.Input((5, 4)))
        self.assertEqual(tuple(symbolic[0].shape), (None, 1, 5, 4))
        self.assertEqual(
            module.compute_output_shape((None, 20)), ((None, 1, 5, 4), (None, 6, 5))
        )
        # Unknown sizes (feature maps of any resolution) work as well.
        module = InputModule(
            signal_shape=(-1, 4), sparse_signal=True, prototype_distribution=3
        )
        signals, _ = module((random((2, 6, 2)), random((2, 3))))
        self.assertShapeEqual(signals, (2, 1, 3, 4))

    def test_config(self):
        module = InputModule(
            signal_shape=(-1, 4), sparse_signal=True, prototype_distribution=3
        )
        config = json.loads(json.dumps(module.get_config()))
        self.assertTrue(config["sparse_signal"])
        self.assertTrue(InputModule.from_config(config).sparse_signal)
        self.assertFalse(InputModule().sparse_signal)
        with self.assertRaisesRegex(TypeError, r"Received: sparse_signal='yes'"):
            InputModule(sparse_signal="yes")

    def test_models_equal_tiled_models(self):
        data = random((6, 5, 4), 1)
        cases = {
            "euclidean": (MinkowskiDistance, lambda: ()),
            "tangent": (lambda: TangentDistance(2), lambda: ()),
            "local_transformation": (
                MinkowskiDistance,
                lambda: (LinearTransformation(output_dim=3),),
            ),
        }
        for name, (measuring, extra) in cases.items():
            tiled, sparse = twin_models(measuring, extra)
            with self.subTest(case=name):
                self.assertAllClose(
                    sparse.predict(data, verbose=0),
                    tiled.predict(data, verbose=0),
                    atol=1e-5,
                )
                self.assertAllClose(
                    autodiff_gradient(sparse, data),
                    autodiff_gradient(tiled, data),
                    atol=1e-5,
                )

    def test_glvq_with_sparse_signals(self):
        # One channel: SqueezeRouting broadcasts the shared input.
        outputs = []
        for sparse_signal in (False, True):
            capsule = anysma.Capsule(prototype_distribution=(2, 3))
            capsule.add(
                [
                    InputModule(
                        signal_shape=(1, -1),
                        dissimilarity_initializer="zeros",
                        trainable=False,
                        sparse_signal=sparse_signal,
                    ),
                    MinkowskiDistance(
                        linear_factor=None,
                        squared_dissimilarity=True,
                        prototype_initializer="ones",
                    ),
                    SqueezeRouting(),
                    NearestCompetition(),
                    Classification(probability_transformation="flip"),
                ]
            )
            outputs.append(capsule(random((4, 3))))
        for sparse, tiled in zip(outputs[1], outputs[0]):
            self.assertAllClose(sparse, tiled, atol=1e-6)

    def test_keras_file_round_trip_and_training(self):
        inputs = keras.Input((5, 4))
        outputs = lvq_capsule(True, TangentDistance(2))(inputs)
        model = keras.Model(inputs, outputs[2])
        data = random((6, 5, 4))
        self.run_training_step(model, data)
        restored = self.run_model_saving_test(model, data, atol=1e-5)
        self.assertTrue(restored.layers[1].sparse_signal)
