import keras
import numpy as np

import anysma
from anysma import probability_transformations
from anysma.modules import Competition
from anysma.modules import GibbsCompetition
from anysma.modules import NearestCompetition
from anysma.testing import TestCase

# (prototype_distribution, prototypes per capsule)
EQUAL = ((2, 3), [2, 2, 2])
UNEQUAL = ([1, 3, 2], [1, 3, 2])
ONE_EACH = (3, [1, 1, 1])


def random_signal(proto_number, atom_shape=(4,), batch=3, seed=0):
    """Signals `(B, P, *A)` and distinct dissimilarities `(B, P)`."""
    rng = np.random.RandomState(seed)
    signals = rng.normal(size=(batch, proto_number) + atom_shape).astype("float32")
    # A permutation per sample: no ties, so the winners are unique.
    dissimilarities = np.stack(
        [rng.permutation(proto_number) for _ in range(batch)]
    ).astype("float32")
    dissimilarities = dissimilarities * 0.7 + rng.uniform(0, 0.1, size=(batch, 1))
    return signals, dissimilarities.astype("float32")


def reference_competition(signals, dissimilarities, counts, block_weights):
    """Loop over the capsules; `block_weights(d_block, k)` gives `(B, k_i)`."""
    signals = np.asarray(signals, dtype="float64")
    dissimilarities = np.asarray(dissimilarities, dtype="float64")
    batch = signals.shape[0]
    out_signals = np.zeros((batch, len(counts)) + signals.shape[2:])
    out_dissimilarities = np.zeros((batch, len(counts)))
    start = 0
    for capsule, count in enumerate(counts):
        block = slice(start, start + count)
        weights = block_weights(dissimilarities[:, block], capsule)
        for b in range(batch):
            for j in range(count):
                out_signals[b, capsule] += weights[b, j] * signals[b, start + j]
                out_dissimilarities[b, capsule] += (
                    weights[b, j] * dissimilarities[b, start + j]
                )
        start += count
    return out_signals, out_dissimilarities


def nearest_weights(block, capsule):
    return np.eye(block.shape[1])[np.argmin(block, axis=1)]


def gibbs_weights(beta):
    def weights(block, capsule):
        logits = -beta[capsule] * block
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exponentials / exponentials.sum(axis=1, keepdims=True)

    return weights


def flipmax_weights(block, capsule, lower_bound=1e-7):
    flipped = (
        block.max(axis=1, keepdims=True)
        - block
        + block.min(axis=1, keepdims=True)
        + lower_bound
    )
    return flipped / flipped.sum(axis=1, keepdims=True)


def neg_exp_weights(block, capsule):
    return np.exp(-block)


CASES = [
    # (distribution, counts, atom shape, batch size)
    EQUAL + ((4,), 3),
    UNEQUAL + ((4,), 3),
    EQUAL + ((2, 3), 1),  # matrix atoms, batch size 1
    UNEQUAL + ((2, 3), 2),
    ([3, 1], [3, 1], (5,), 1),
]


class NearestCompetitionTest(TestCase):
    def test_layer_unequal_distribution(self):
        self.run_layer_test(
            NearestCompetition,
            {"prototype_distribution": UNEQUAL[0], "use_for_loop": True},
            random_signal(6, atom_shape=(2, 3)),
            expected_output_shape=((3, 3, 2, 3), (3, 3)),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            # No weights to train (Keras warns, and warnings are errors here).
            run_training_check=False,
        )

    def test_matches_reference(self):
        for distribution, counts, atom_shape, batch in CASES:
            with self.subTest(distribution=distribution, atom_shape=atom_shape):
                signals, dissimilarities = random_signal(sum(counts), atom_shape, batch)
                layer = NearestCompetition(prototype_distribution=distribution)
                outputs = layer((signals, dissimilarities))
                expected = reference_competition(
                    signals, dissimilarities, counts, nearest_weights
                )
                self.assertAllClose(outputs, expected, atol=1e-6)

    def test_use_for_loop_is_accepted_and_has_no_effect(self):
        signals, dissimilarities = random_signal(6)
        results = []
        for use_for_loop in (False, True):
            layer = NearestCompetition(
                use_for_loop=use_for_loop, prototype_distribution=UNEQUAL[0]
            )
            self.assertEqual(layer.get_config()["use_for_loop"], use_for_loop)
            results.append(layer((signals, dissimilarities)))
        self.assertAllClose(results[0], results[1])


class GibbsCompetitionTest(TestCase):
    def test_layer_unequal_distribution(self):
        self.run_layer_test(
            GibbsCompetition,
            {"prototype_distribution": UNEQUAL[0]},
            random_signal(6),
            expected_output_shape=((3, 3, 4), (3, 3)),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_frozen_beta(self):
        layer = GibbsCompetition(prototype_distribution=EQUAL[0], trainable=False)
        signals, dissimilarities = layer(random_signal(6, atom_shape=(2, 2)))
        self.assertShapeEqual(signals, (3, 3, 2, 2))
        self.assertShapeEqual(dissimilarities, (3, 3))
        self.assertLen(layer.trainable_weights, 0)
        self.assertLen(layer.non_trainable_weights, 1)

    def test_beta_weight(self):
        layer = GibbsCompetition(prototype_distribution=UNEQUAL[0])
        layer(random_signal(6))
        self.assertEqual(layer.beta.path.split("/")[-1], "beta")
        self.assertEqual(tuple(layer.beta.shape), (3,))
        self.assertAllClose(layer.beta, np.ones(3))
        self.assertIsInstance(layer.beta.constraint, keras.constraints.NonNeg)

    def test_matches_reference(self):
        for distribution, counts, atom_shape, batch in CASES:
            with self.subTest(distribution=distribution, atom_shape=atom_shape):
                signals, dissimilarities = random_signal(sum(counts), atom_shape, batch)
                layer = GibbsCompetition(prototype_distribution=distribution)
                layer.build((signals.shape, dissimilarities.shape))
                beta = np.random.RandomState(1).uniform(0.5, 3.0, size=len(counts))
                layer.beta.assign(beta.astype("float32"))
                outputs = layer((signals, dissimilarities))
                expected = reference_competition(
                    signals, dissimilarities, counts, gibbs_weights(beta)
                )
                self.assertAllClose(outputs, expected, atol=1e-5, rtol=1e-5)


class CompetitionTest(TestCase):
    def test_layer_unequal_distribution(self):
        self.run_layer_test(
            Competition,
            {"prototype_distribution": UNEQUAL[0]},
            random_signal(6),
            expected_output_shape=((3, 3, 4), (3, 3)),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            run_training_check=False,
        )

    def test_transformation_object_serializes(self):
        layer = Competition("Flip", prototype_distribution=EQUAL[0])
        revived = self.run_serialization_test(layer)
        self.assertIsInstance(
            revived.probability_transformation, probability_transformations.Flip
        )

    def test_matches_reference(self):
        for distribution, counts, atom_shape, batch in CASES:
            with self.subTest(distribution=distribution, atom_shape=atom_shape):
                signals, dissimilarities = random_signal(sum(counts), atom_shape, batch)
                outputs = Competition(prototype_distribution=distribution)(
                    (signals, dissimilarities)
                )
                expected = reference_competition(
                    signals, dissimilarities, counts, flipmax_weights
                )
                self.assertAllClose(outputs, expected, atol=1e-5, rtol=1e-5)

    def test_unnormalized_transformation_sees_only_its_capsule(self):
        # `neg_exp` does not normalize: every capsule must get exactly its
        # own prototypes, without padding entries.
        signals, dissimilarities = random_signal(6)
        layer = Competition("neg_exp", prototype_distribution=UNEQUAL[0])
        expected = reference_competition(
            signals, dissimilarities, UNEQUAL[1], neg_exp_weights
        )
        self.assertAllClose(
            layer((signals, dissimilarities)), expected, atol=1e-5, rtol=1e-5
        )
        self.assertEqual(layer.get_config()["probability_transformation"], "neg_exp")


class SharedBehaviourTest(TestCase):
    def modules(self, distribution):
        return (
            NearestCompetition(prototype_distribution=distribution),
            GibbsCompetition(prototype_distribution=distribution),
            Competition(prototype_distribution=distribution),
        )

    def test_identity_with_one_prototype_per_capsule(self):
        signals, dissimilarities = random_signal(3, atom_shape=(2, 2))
        for layer in self.modules(ONE_EACH[0]):
            with self.subTest(layer=type(layer).__name__):
                self.assertAllClose(
                    layer((signals, dissimilarities)), (signals, dissimilarities)
                )

    def test_distribution_from_the_capsule(self):
        signals, dissimilarities = random_signal(6)
        expected = reference_competition(
            signals, dissimilarities, UNEQUAL[1], nearest_weights
        )
        module = NearestCompetition()
        capsule = anysma.Capsule(prototype_distribution=UNEQUAL[0]).add(module)
        self.assertAllClose(capsule((signals, dissimilarities)), expected)
        self.assertEqual(module.prototype_distribution, UNEQUAL[0])

    def test_output_shape_is_symbolic_too(self):
        inputs = (keras.Input((6, 2, 3)), keras.Input((6,)))
        for layer in self.modules(UNEQUAL[0]):
            signals, dissimilarities = layer(inputs)
            self.assertEqual(tuple(signals.shape), (None, 3, 2, 3))
            self.assertEqual(tuple(dissimilarities.shape), (None, 3))

    def test_needs_a_prototype_distribution(self):
        for layer_cls in (NearestCompetition, GibbsCompetition, Competition):
            with self.assertRaisesRegex(ValueError, "prototype_distribution=None"):
                layer_cls()(random_signal(6))

    def test_prototype_number_must_match(self):
        for layer in self.modules(EQUAL[0]):
            with self.subTest(layer=type(layer).__name__):
                with self.assertRaisesRegex(
                    ValueError,
                    r"prototype_distribution=\[2, 2, 2\].*6 prototypes.*"
                    r"signals shape \(3, 5, 4\)",
                ):
                    layer(random_signal(5))

    def test_needs_routed_dissimilarities(self):
        signals = np.zeros((2, 6, 3, 4), dtype="float32")
        dissimilarities = np.zeros((2, 6, 3), dtype="float32")
        with self.assertRaisesRegex(ValueError, "routing module.*\\(2, 6, 3\\)"):
            NearestCompetition(prototype_distribution=EQUAL[0])(
                (signals, dissimilarities)
            )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "probability_transformation=None"):
            Competition(probability_transformation=None)
        with self.assertRaisesRegex(ValueError, "prototype_distribution"):
            NearestCompetition(prototype_distribution=(2, 0))
        with self.assertRaisesRegex(TypeError, "module signal"):
            NearestCompetition(prototype_distribution=3)(np.zeros((2, 3, 4)))
