import keras
import numpy as np

import anysma
from anysma import probability_transformations
from anysma.modules import Classification
from anysma.modules import DissimilarityTransformation
from anysma.modules import DynamicRouting
from anysma.modules import GibbsClassification
from anysma.modules import GibbsMeasure
from anysma.modules import GibbsRouting
from anysma.modules import InputModule
from anysma.modules import LinearTransformation
from anysma.modules import NearestCompetition
from anysma.modules import Regression
from anysma.testing import TestCase


def random_predictions(shape, seed=0, logits=False):
    """Predictions `(B, K, C, *A)` and logits `(B, K, C)` (zeros by default)."""
    rng = np.random.RandomState(seed)
    predictions = rng.normal(scale=0.5, size=shape).astype("float32")
    if logits:
        initial = rng.normal(size=shape[:3]).astype("float32")
    else:
        initial = np.zeros(shape[:3], dtype="float32")
    return predictions, initial


def random_capsules(capsules=4, atom_shape=(3,), batch=3, seed=0):
    """Signals `(B, K, *A)` and dissimilarities `(B, K)`."""
    rng = np.random.RandomState(seed)
    signals = rng.normal(size=(batch, capsules) + atom_shape).astype("float32")
    dissimilarities = rng.uniform(0.0, 3.0, size=(batch, capsules)).astype("float32")
    return signals, dissimilarities


def reference_dynamic_routing(predictions, logits, iterations, axis=1):
    """Procedure 1 of Sabour et al., one capsule pair at a time."""
    predictions = np.asarray(predictions, dtype="float64")
    logits = np.array(logits, dtype="float64")
    batch, capsules, channels = predictions.shape[:3]
    atom_shape = predictions.shape[3:]
    flat = predictions.reshape(batch, capsules, channels, -1)
    for iteration in range(iterations):
        exponentials = np.exp(logits - logits.max(axis=axis, keepdims=True))
        coupling = exponentials / exponentials.sum(axis=axis, keepdims=True)
        outputs = np.zeros((batch, capsules, flat.shape[-1]))
        for b in range(batch):
            for k in range(capsules):
                weighted_sum = sum(
                    coupling[b, k, c] * flat[b, k, c] for c in range(channels)
                )
                squared_norm = np.sum(weighted_sum**2)
                norm = np.sqrt(max(squared_norm, 1e-7))
                outputs[b, k] = norm / (1 + squared_norm) * weighted_sum
        if iteration < iterations - 1:
            for b in range(batch):
                for k in range(capsules):
                    for c in range(channels):
                        logits[b, k, c] += outputs[b, k] @ flat[b, k, c]
    similarities = np.sum(coupling * logits, axis=-1)
    lengths = np.sqrt(np.maximum(np.sum(outputs**2, axis=-1), 1e-14))
    return (
        outputs.reshape((batch, capsules) + atom_shape),
        similarities,
        lengths,
    )


def reference_neg_softmax(dissimilarities):
    exponentials = np.exp(-dissimilarities + dissimilarities.min(-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


class DynamicRoutingTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            DynamicRouting,
            {},
            random_predictions((2, 3, 4, 5)),
            expected_output_shape=((2, 3, 5), (2, 3), (2, 3)),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            # No weights to train (Keras warns, and warnings are errors here).
            run_training_check=False,
        )

    def test_symbolic_call_matrix_atoms(self):
        inputs = (keras.Input((3, 4, 2, 2)), keras.Input((3, 4)))
        layer = DynamicRouting(iterations=2, norm_axis="channels")
        outputs, similarities, lengths = layer(inputs)
        self.assertEqual(tuple(outputs.shape), (None, 3, 2, 2))
        self.assertEqual(tuple(similarities.shape), (None, 3))
        self.assertEqual(tuple(lengths.shape), (None, 3))
        self.run_serialization_test(layer)

    def test_matches_reference(self):
        cases = [
            # (prediction shape, iterations, norm_axis, axis, random logits)
            ((2, 3, 4, 5), 3, "capsules", 1, False),
            ((2, 3, 4, 5), 3, 1, 1, True),
            ((1, 2, 3, 4), 1, "capsules", 1, True),  # batch size 1
            # Atoms with two axes: the original routed the un-flattened input.
            ((2, 3, 4, 2, 3), 3, "capsules", 1, False),
            ((2, 3, 4, 2, 2), 2, "channels", 2, True),
            ((2, 3, 4, 3), 2, -1, 2, True),
        ]
        for shape, iterations, norm_axis, axis, logits in cases:
            with self.subTest(shape=shape, iterations=iterations, norm_axis=norm_axis):
                predictions, initial = random_predictions(shape, logits=logits)
                layer = DynamicRouting(iterations=iterations, norm_axis=norm_axis)
                outputs = layer((predictions, initial))
                expected = reference_dynamic_routing(
                    predictions, initial, iterations, axis
                )
                self.assertAllClose(outputs, expected, atol=1e-5, rtol=1e-4)

    def test_capsnet_in_a_capsule(self):
        # PrimaryCaps -> DigitCaps of a CapsNet: 8 input capsules of size 4,
        # 3 output capsules of size 5, routing logits starting at zero.
        prediction_layer = LinearTransformation(output_dim=5, name="predictions")
        routing = DynamicRouting(iterations=3, name="capsnet")
        capsule = anysma.Capsule(prototype_distribution=3, name="digit_caps").add(
            [
                InputModule(
                    signal_shape=(-1, 4),
                    dissimilarity_initializer="zeros",
                    trainable=False,
                ),
                prediction_layer,
                routing,
            ]
        )
        inputs = keras.Input((32,))
        outputs, similarities, lengths = capsule(inputs)
        self.assertEqual(tuple(outputs.shape), (None, 3, 5))
        self.assertEqual(tuple(lengths.shape), (None, 3))
        model = keras.Model(inputs, lengths)
        self.assertIs(model.get_layer("capsnet"), routing)

        x = np.random.RandomState(0).normal(size=(4, 32)).astype("float32")
        linear_maps = keras.ops.convert_to_numpy(prediction_layer.linear_maps)
        predictions = np.einsum(
            "bcn,kcnm->bkcm", x.reshape(4, 8, 4).astype("float64"), linear_maps
        )
        _, _, expected = reference_dynamic_routing(
            predictions, np.zeros((4, 3, 8)), iterations=3
        )
        self.assertAllClose(model.predict(x, verbose=0), expected, atol=1e-5)

        targets = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        history = model.fit(x, targets, batch_size=4, epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][-1]))
        self.assertFalse(
            np.allclose(
                keras.ops.convert_to_numpy(prediction_layer.linear_maps), linear_maps
            )
        )
        restored = self.run_model_saving_test(model, x, atol=1e-5)
        self.assertIsInstance(restored.get_layer("capsnet"), DynamicRouting)

    def test_invalid_arguments(self):
        for iterations in (0, -1, 2.0, True):
            with self.assertRaisesRegex(ValueError, f"iterations={iterations!r}"):
                DynamicRouting(iterations=iterations)
        with self.assertRaisesRegex(ValueError, "norm_axis='inputs'"):
            DynamicRouting(norm_axis="inputs")

    def test_invalid_shapes(self):
        predictions, logits = random_predictions((2, 3, 4, 5))
        with self.assertRaisesRegex(ValueError, r"logits shape \(2, 2, 4\)"):
            DynamicRouting()((predictions, logits[:, :2]))
        with self.assertRaisesRegex(ValueError, r"predictions shape \(2, 3, 4\)"):
            DynamicRouting()((predictions[..., 0], logits))
        with self.assertRaisesRegex(TypeError, "module signal"):
            DynamicRouting()(predictions)


class ClassificationTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            Classification,
            {"prototype_distribution": [1, 3, 2, 1]},
            random_capsules(),
            expected_output_shape=((3, 4, 3), (3, 4), (3, 4)),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            run_training_check=False,
        )

    def test_transformation_object_serializes(self):
        layer = Classification("MarginFlip", name="lvq_caps")
        revived = self.run_serialization_test(layer)
        self.assertIsInstance(
            revived.probability_transformation,
            probability_transformations.MarginFlip,
        )
        self.assertEqual(revived.name, "lvq_caps")

    def test_matches_reference(self):
        signals, dissimilarities = random_capsules()
        outputs = Classification()((signals, dissimilarities))
        self.assertAllClose(
            outputs,
            (signals, dissimilarities, reference_neg_softmax(dissimilarities)),
            atol=1e-6,
        )
        _, _, flipped = Classification("flip")((signals, dissimilarities))
        maximum = dissimilarities.max(-1, keepdims=True) + 1e-7
        self.assertAllClose(
            flipped,
            (maximum - dissimilarities + dissimilarities.min(-1, keepdims=True))
            / maximum,
            atol=1e-6,
        )

    def test_later_name_is_an_alias(self):
        self.assertIs(DissimilarityTransformation, Classification)
        revived = keras.saving.deserialize_keras_object(
            {
                "module": None,
                "class_name": "DissimilarityTransformation",
                "registered_name": "anysma>DissimilarityTransformation",
                "config": {"probability_transformation": "flip"},
            }
        )
        self.assertIsInstance(revived, Classification)
        serialized = keras.saving.serialize_keras_object(Classification())
        self.assertEqual(serialized["registered_name"], "anysma>Classification")

    def test_capsule_number_must_match_the_distribution(self):
        with self.assertRaisesRegex(
            ValueError,
            r"prototype_distribution=\[2, 2, 2\] \(3 capsules\).*competition"
            r".*dissimilarities shape \(3, 6\)",
        ):
            Classification(prototype_distribution=(2, 3))(random_capsules(6))

    def test_invalid_shapes(self):
        signals, dissimilarities = random_capsules()
        with self.assertRaisesRegex(ValueError, r"same number of capsules"):
            Classification()((signals[:, :3], dissimilarities))
        with self.assertRaisesRegex(ValueError, r"routing or competition"):
            Classification()((signals, signals))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "probability_transformation=None"):
            Classification(probability_transformation=None)


class RegressionTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            Regression,
            {},
            random_capsules(batch=1),
            expected_output_shape=((1, 4, 3), (1, 4), (1, 4)),
            run_training_check=False,
        )

    def test_matches_reference(self):
        signals, dissimilarities = random_capsules()
        layer = Regression()
        self.assertAllClose(
            layer((signals, dissimilarities)),
            (signals, dissimilarities, np.exp(-dissimilarities)),
            atol=1e-6,
        )
        self.assertEqual(layer.get_config()["probability_transformation"], "neg_exp")


class GibbsClassificationTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            GibbsClassification,
            {"prototype_distribution": 4},
            random_capsules(),
            expected_output_shape=((3, 4, 3), (3, 4), (3, 4)),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_beta_weight_and_reference(self):
        signals, dissimilarities = random_capsules(atom_shape=(2, 2))
        layer = GibbsClassification(beta_initializer=keras.initializers.Constant(2.5))
        outputs = layer((signals, dissimilarities))
        self.assertEqual(layer.beta.path.split("/")[-1], "beta")
        self.assertEqual(tuple(layer.beta.shape), (1,))
        self.assertIsInstance(layer.beta.constraint, keras.constraints.NonNeg)
        self.assertAllClose(
            outputs,
            (signals, dissimilarities, reference_neg_softmax(2.5 * dissimilarities)),
            atol=1e-6,
        )

    def test_later_name_is_an_alias(self):
        self.assertIs(GibbsMeasure, GibbsClassification)
        revived = keras.saving.deserialize_keras_object(
            {
                "module": None,
                "class_name": "GibbsMeasure",
                "registered_name": "anysma>GibbsMeasure",
                "config": {},
            }
        )
        self.assertIsInstance(revived, GibbsClassification)

    def test_capsule_number_must_match_the_distribution(self):
        with self.assertRaisesRegex(ValueError, r"prototype_distribution=\[1, 1\]"):
            GibbsClassification(prototype_distribution=2)(random_capsules(4))


class LvqCapsuleChainTest(TestCase):
    def test_routing_competition_classification_in_a_model(self):
        # Without a measuring module the incoming dissimilarities are routed:
        # the chain must still build, train and survive a `.keras` round trip.
        capsule = anysma.Capsule(prototype_distribution=3).add(
            [
                InputModule(signal_shape=(-1, 2), dissimilarity_initializer="ones"),
                LinearTransformation(scope="capsule_wise"),
                GibbsRouting(),
                NearestCompetition(),
                Classification(name="lvq_caps"),
            ]
        )
        inputs = keras.Input((8,))
        signals, dissimilarities, probabilities = capsule(inputs)
        self.assertEqual(tuple(signals.shape), (None, 3, 2))
        # The probabilities depend on the dissimilarities only; the signals
        # are an output too, so that every weight gets a gradient.
        model = keras.Model(inputs, (signals, probabilities))
        x = np.random.RandomState(0).normal(size=(4, 8)).astype("float32")
        self.run_training_step(model, x)
        restored = self.run_model_saving_test(model, x)
        self.assertEqual(
            restored.get_layer("lvq_caps").prototype_distribution, [1, 1, 1]
        )
