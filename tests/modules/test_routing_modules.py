import keras
import numpy as np

from anysma import probability_transformations
from anysma import regularizers
from anysma.modules import GibbsRouting
from anysma.modules import Routing
from anysma.modules import SqueezeRouting
from anysma.testing import TestCase


def random_signal(shape, seed=0):
    """Signals of `shape` `(B, P, C, *A)` and dissimilarities `(B, P, C)`."""
    rng = np.random.RandomState(seed)
    signals = rng.normal(size=shape).astype("float32")
    dissimilarities = rng.uniform(0.0, 3.0, size=shape[:3]).astype("float32")
    return signals, dissimilarities


def reference_route(signals, dissimilarities, weights):
    """Weighted sums over the channels, one (batch, prototype) at a time."""
    signals = np.asarray(signals, dtype="float64")
    dissimilarities = np.asarray(dissimilarities, dtype="float64")
    batch, prototypes = signals.shape[:2]
    routed_signals = np.zeros((batch, prototypes) + signals.shape[3:])
    routed_dissimilarities = np.zeros((batch, prototypes))
    for b in range(batch):
        for p in range(prototypes):
            for c in range(signals.shape[2]):
                routed_signals[b, p] += weights[b, p, c] * signals[b, p, c]
                routed_dissimilarities[b, p] += (
                    weights[b, p, c] * dissimilarities[b, p, c]
                )
    return routed_signals, routed_dissimilarities


def reference_gibbs_weights(dissimilarities, beta, axis):
    logits = -np.asarray(beta, dtype="float64")[None] * dissimilarities
    exponentials = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return exponentials / exponentials.sum(axis=axis, keepdims=True)


def reference_flipmax(dissimilarities, lower_bound=1e-7):
    flipped = (
        dissimilarities.max(axis=-1, keepdims=True)
        - dissimilarities
        + dissimilarities.min(axis=-1, keepdims=True)
        + lower_bound
    )
    return flipped / flipped.sum(axis=-1, keepdims=True)


class GibbsRoutingTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            GibbsRouting,
            {},
            random_signal((3, 4, 5, 2)),
            expected_output_shape=((3, 4, 2), (3, 4)),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_frozen_beta_matrix_atoms(self):
        layer = GibbsRouting(trainable=False, norm_axis="capsules")
        signals, dissimilarities = layer(random_signal((2, 3, 4, 2, 3)))
        self.assertShapeEqual(signals, (2, 3, 2, 3))
        self.assertShapeEqual(dissimilarities, (2, 3))
        self.assertLen(layer.trainable_weights, 0)
        self.assertLen(layer.non_trainable_weights, 1)
        self.run_serialization_test(layer)

    def test_layer_with_regularizers(self):
        self.run_layer_test(
            GibbsRouting,
            {
                "beta_regularizer": "l2",
                "diss_regularizer": "max_distance",
                "signal_regularizer": "l2",
            },
            random_signal((2, 3, 4, 2)),
            expected_output_shape=((2, 3, 2), (2, 3)),
            expected_num_trainable_weights=1,
        )

    def test_output_regularizers_under_mixed_precision_fit(self):
        # TensorFlow cannot add float16 losses to float32 ones.
        signals, dissimilarities = random_signal((4, 3, 5, 2))
        inputs = (keras.Input((3, 5, 2)), keras.Input((3, 5)))
        layer = GibbsRouting(
            diss_regularizer="max_distance",
            signal_regularizer="l2",
            dtype="mixed_float16",
        )
        model = keras.Model(inputs, layer(inputs)[1])
        model.compile(optimizer="sgd", loss="mse")
        history = model.fit(
            (signals, dissimilarities),
            np.zeros((4, 3), dtype="float32"),
            batch_size=4,
            verbose=0,
        )
        self.assertTrue(np.isfinite(history.history["loss"][-1]))

    def test_output_regularizer_enters_the_model_loss(self):
        signals, dissimilarities = random_signal((4, 3, 5, 2))
        inputs = (keras.Input((3, 5, 2)), keras.Input((3, 5)))
        layer = GibbsRouting(
            trainable=False, diss_regularizer=regularizers.MaxValue(alpha=1.0)
        )
        model = keras.Model(inputs, layer(inputs)[1])
        model.compile(loss="mse")
        predicted = model.predict((signals, dissimilarities), verbose=0)
        loss = model.evaluate(
            (signals, dissimilarities), predicted, batch_size=4, verbose=0
        )
        # The mean squared error is 0, so the loss is the regularization.
        self.assertAllClose(loss, predicted.max(axis=-1).mean(), atol=1e-5)

    def test_beta_weight(self):
        layer = GibbsRouting()
        layer(random_signal((2, 4, 3, 2)))
        self.assertEqual(layer.beta.path.split("/")[-1], "beta")
        self.assertEqual(tuple(layer.beta.shape), (4, 1))
        self.assertAllClose(layer.beta, np.ones((4, 1)))
        self.assertIsInstance(layer.beta.constraint, keras.constraints.NonNeg)

    def test_matches_reference(self):
        cases = [
            # (signal shape, norm_axis, softmax axis of the reference)
            ((3, 4, 5, 2), "channels", 2),
            ((3, 4, 5, 2), -1, 2),
            ((3, 4, 5, 2), 2, 2),
            ((3, 4, 5, 2), "capsules", 1),
            ((1, 3, 2, 2, 3), 1, 1),  # batch size 1, matrix atoms
            ((2, 3, 4, 2, 3), "channels", 2),
        ]
        for shape, norm_axis, axis in cases:
            with self.subTest(shape=shape, norm_axis=norm_axis):
                signals, dissimilarities = random_signal(shape, seed=len(shape))
                layer = GibbsRouting(norm_axis=norm_axis)
                layer.build((signals.shape, dissimilarities.shape))
                beta = np.random.RandomState(3).uniform(0.5, 2.0, size=(shape[1], 1))
                layer.beta.assign(beta.astype("float32"))
                outputs = layer((signals, dissimilarities))
                expected = reference_route(
                    signals,
                    dissimilarities,
                    reference_gibbs_weights(dissimilarities, beta, axis),
                )
                self.assertAllClose(outputs, expected, atol=1e-5, rtol=1e-5)

    def test_routing_with_unit_beta_is_the_papers_eq_3(self):
        signals, dissimilarities = random_signal((2, 3, 4, 5))
        outputs = GibbsRouting(trainable=False)((signals, dissimilarities))
        weights = np.exp(-dissimilarities) / np.exp(-dissimilarities).sum(
            axis=-1, keepdims=True
        )
        self.assertAllClose(
            outputs, reference_route(signals, dissimilarities, weights), atol=1e-5
        )

    def test_output_regularizers_are_added_as_losses(self):
        signals, dissimilarities = random_signal((2, 3, 4, 5))
        layer = GibbsRouting(
            diss_regularizer=regularizers.MaxValue(alpha=0.5),
            signal_regularizer=keras.regularizers.L2(0.1),
        )
        routed_signals, routed_dissimilarities = layer((signals, dissimilarities))
        routed_signals = keras.ops.convert_to_numpy(routed_signals)
        routed_dissimilarities = keras.ops.convert_to_numpy(routed_dissimilarities)
        self.assertLen(layer.losses, 2)
        self.assertAllClose(
            layer.losses[0],
            0.5 * routed_dissimilarities.max(axis=-1).mean(),
            atol=1e-5,
        )
        self.assertAllClose(
            layer.losses[1], 0.1 * np.sum(routed_signals**2), atol=1e-4, rtol=1e-5
        )
        config = layer.get_config()
        revived = GibbsRouting.from_config(config)
        self.assertIsInstance(revived.diss_regularizer, regularizers.MaxValue)
        self.assertEqual(revived.diss_regularizer.alpha, 0.5)
        self.assertIsInstance(revived.signal_regularizer, keras.regularizers.L2)

    def test_invalid_arguments(self):
        for norm_axis in ("prototypes", 0, 3, True):
            with self.assertRaisesRegex(ValueError, f"norm_axis={norm_axis!r}"):
                GibbsRouting(norm_axis=norm_axis)

    def test_invalid_shapes(self):
        signals, dissimilarities = random_signal((2, 3, 4, 5))
        with self.assertRaisesRegex(ValueError, r"prototypes \(axis 1\).*\(2, 2, 4\)"):
            GibbsRouting()((signals, dissimilarities[:, :2]))
        with self.assertRaisesRegex(ValueError, r"channels \(axis 2\).*\(2, 3, 3\)"):
            GibbsRouting()((signals, dissimilarities[:, :, :3]))
        with self.assertRaisesRegex(ValueError, "measuring module"):
            GibbsRouting()((signals, dissimilarities[:, :, 0]))
        with self.assertRaisesRegex(TypeError, "module signal"):
            GibbsRouting()(signals)


class RoutingTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            Routing,
            {},
            random_signal((3, 4, 5, 2)),
            expected_output_shape=((3, 4, 2), (3, 4)),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            run_training_check=False,
        )

    def test_layer_with_transformation_object(self):
        self.run_layer_test(
            Routing,
            {"probability_transformation": "NegSoftmax"},
            random_signal((2, 3, 4, 2, 2)),
            expected_output_shape=((2, 3, 2, 2), (2, 3)),
            run_training_check=False,
        )

    def test_matches_reference(self):
        for shape in ((3, 4, 5, 2), (1, 2, 3, 2, 2)):
            with self.subTest(shape=shape):
                signals, dissimilarities = random_signal(shape, seed=1)
                outputs = Routing()((signals, dissimilarities))
                weights = reference_flipmax(dissimilarities.astype("float64"))
                expected = reference_route(signals, dissimilarities, weights)
                self.assertAllClose(outputs, expected, atol=1e-5, rtol=1e-5)

    def test_transformations_resolve_and_serialize(self):
        signals, dissimilarities = random_signal((2, 3, 4, 2))
        weights = reference_gibbs_weights(dissimilarities, np.ones((3, 1)), 2)
        expected = reference_route(signals, dissimilarities, weights)
        for identifier in (
            "neg_softmax",
            "NegSoftmax",
            probability_transformations.NegSoftmax(),
            {"class_name": "NegSoftmax", "config": {}},
        ):
            with self.subTest(identifier=identifier):
                layer = Routing(probability_transformation=identifier)
                self.assertAllClose(
                    layer((signals, dissimilarities)), expected, atol=1e-5
                )
                revived = Routing.from_config(layer.get_config())
                self.assertAllClose(
                    revived((signals, dissimilarities)), expected, atol=1e-5
                )
        self.assertEqual(
            Routing().get_config()["probability_transformation"], "flipmax"
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "probability_transformation=None"):
            Routing(probability_transformation=None)
        with self.assertRaisesRegex(ValueError, "identifier='flop'"):
            Routing(probability_transformation="flop")

    def test_invalid_shapes(self):
        signals, dissimilarities = random_signal((2, 3, 4, 5))
        with self.assertRaisesRegex(ValueError, r"prototypes \(axis 1\)"):
            Routing()((signals[:, :2], dissimilarities))


class SqueezeRoutingTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            SqueezeRouting,
            {},
            random_signal((3, 4, 1, 2)),
            expected_output_shape=((3, 4, 2), (3, 4)),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            run_training_check=False,
        )

    def test_squeezes_the_channel_axis(self):
        for shape in ((3, 4, 1, 2), (1, 2, 1, 2, 3)):
            with self.subTest(shape=shape):
                signals, dissimilarities = random_signal(shape)
                outputs = SqueezeRouting()((signals, dissimilarities))
                self.assertAllClose(
                    outputs, (signals[:, :, 0], dissimilarities[:, :, 0])
                )

    def test_needs_one_channel(self):
        with self.assertRaisesRegex(ValueError, r"one channel.*\(2, 3, 2, 4\)"):
            SqueezeRouting()(random_signal((2, 3, 2, 4)))


class SharedSignalTest(TestCase):
    """Signals shared by all prototypes route as tiled signals."""

    def test_modules_equal_tiled_signals(self):
        signals, dissimilarities = random_signal((2, 4, 5, 3))
        shared = signals[:, :1]
        tiled = np.repeat(shared, 4, axis=1)
        modules = [
            GibbsRouting(beta_initializer="glorot_uniform"),
            GibbsRouting(norm_axis="capsules"),
            Routing("flipmax"),
        ]
        for module in modules:
            with self.subTest(module=module.get_config()):
                shared_outputs = module((shared, dissimilarities))
                if isinstance(module, GibbsRouting):
                    # One inverse temperature per prototype, not per signal.
                    self.assertEqual(tuple(module.beta.shape), (4, 1))
                tiled_outputs = module((tiled, dissimilarities))
                self.assertShapeEqual(shared_outputs[0], (2, 4, 3))
                for shared_output, tiled_output in zip(shared_outputs, tiled_outputs):
                    self.assertAllClose(shared_output, tiled_output, atol=1e-5)
                self.assertEqual(
                    module.compute_output_shape(((None, 1, 5, 3), (None, 4, 5))),
                    ((None, 4, 3), (None, 4)),
                )

    def test_squeeze_routing_keeps_shared_signals_shared(self):
        # The competition modules take the shared form, so it is never
        # copied once per prototype (tested in test_competition_kernels).
        signals, dissimilarities = random_signal((2, 4, 1, 3))
        layer = SqueezeRouting()
        outputs = layer((signals[:, :1], dissimilarities))
        self.assertShapeEqual(outputs[0], (2, 1, 3))
        self.assertEqual(
            layer.compute_output_shape(((None, 1, 1, 3), (None, 4, 1))),
            ((None, 1, 3), (None, 4)),
        )
        self.assertAllClose(outputs[0], signals[:, :1, 0], atol=1e-6)
        self.assertAllClose(outputs[1], dissimilarities[:, :, 0])
