"""Tests of `anysma.ops.competition` beyond the competition kernels.

The competition kernels (`nearest_competition`, `gibbs_competition`,
`competition`) share their NumPy references and compiled-graph test with
the routing kernels and are tested in `test_routing.py`.
"""

import keras
import numpy as np
from keras import ops
from scipy.special import logsumexp
from scipy.special import softmax

from anysma.ops.competition import class_log_posterior
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient
from anysma.testing.gradients import numeric_gradient

# Prototype labels of 6 prototypes in 3 classes (unequal counts).
LABELS = [0, 0, 1, 2, 2, 2]


def label_membership(labels, num_classes):
    """The static `(P, K)` membership table of prototype labels."""
    membership = np.zeros((len(labels), num_classes), dtype=bool)
    membership[np.arange(len(labels)), labels] = True
    return membership


def reference_class_log_posterior(dissimilarities, membership, beta=1.0):
    """`log sum_{j in k} softmax(-beta d)_j` with SciPy's `logsumexp`."""
    logits = -beta * np.asarray(dissimilarities, dtype="float64")
    membership = np.broadcast_to(membership, logits.shape + (np.shape(membership)[-1],))
    normalizer = logsumexp(logits, axis=-1)
    result = np.empty(membership.shape[:-2] + membership.shape[-1:])
    for index in np.ndindex(logits.shape[:-1]):
        for k in range(membership.shape[-1]):
            members = logits[index][membership[index][:, k]]
            result[index + (k,)] = logsumexp(members) - normalizer[index]
    return result


def reference_gradient(dissimilarities, membership, beta=1.0):
    """Gradient of `sum_k log p(k | x)` w.r.t. `d` (every class has members).

    `d log p(k) / d d_j = -beta (q_kj - s_j)`, with `s = softmax(-beta d)`
    and `q_k` the softmax over the members of class `k` only.
    """
    logits = -beta * np.asarray(dissimilarities, dtype="float64")
    probabilities = softmax(logits, axis=-1)
    gradient = np.zeros_like(logits)
    for k in range(membership.shape[-1]):
        masked = np.where(membership[:, k], logits, -np.inf)
        gradient += -beta * (softmax(masked, axis=-1) - probabilities)
    return gradient


class ClassLogPosteriorTest(TestCase):
    def test_matches_scipy(self):
        membership = label_membership(LABELS, 3)
        dissimilarities = np.random.RandomState(0).uniform(0, 3, size=(4, 6))
        for beta in (1.0, 0.25, 4.0):
            with self.subTest(beta=beta):
                expected = reference_class_log_posterior(
                    dissimilarities, membership, beta
                )
                actual = class_log_posterior(
                    dissimilarities.astype("float32"), membership, beta=beta
                )
                self.assertShapeEqual(actual, (4, 3))
                self.assertAllClose(actual, expected, atol=1e-5, rtol=1e-5)
                # The posteriors are the summed prototype posteriors.
                summed = softmax(-beta * dissimilarities, axis=-1) @ membership
                self.assertAllClose(ops.exp(actual), summed, atol=1e-5, rtol=1e-5)

    def test_per_sample_membership_and_leading_axes(self):
        # One group per sample (e.g. the prototypes of its correct class),
        # and two leading axes.
        state = np.random.RandomState(1)
        dissimilarities = state.uniform(0, 3, size=(2, 3, 6))
        membership = state.uniform(size=(2, 3, 6, 1)) < 0.5
        membership[..., 0, 0] = True
        actual = class_log_posterior(dissimilarities.astype("float32"), membership)
        expected = reference_class_log_posterior(dissimilarities, membership)
        self.assertShapeEqual(actual, (2, 3, 1))
        self.assertAllClose(actual, expected, atol=1e-5, rtol=1e-5)
        # Numbers are memberships where they are nonzero.
        self.assertAllClose(
            class_log_posterior(
                dissimilarities.astype("float32"), membership.astype("float32")
            ),
            actual,
        )

    def test_large_distances_stay_finite(self):
        membership = label_membership(LABELS, 3)
        dissimilarities = np.array(
            [[1e4, 2e4, 3e4, 1e4 + 1, 5e4, 1e5], [0.0, 1e3, 2e3, 3e3, 4e3, 5e3]]
        )
        actual = class_log_posterior(dissimilarities.astype("float32"), membership)
        expected = reference_class_log_posterior(dissimilarities, membership)
        self.assertAllFinite(actual)
        self.assertAllClose(actual, expected, atol=1e-3, rtol=1e-5)

    def test_class_without_prototypes_is_finite(self):
        membership = np.zeros((3, 2), dtype=bool)
        membership[:, 0] = True
        dissimilarities = np.array([[0.0, 1.0, 2.0]], dtype="float32")
        actual = class_log_posterior(dissimilarities, membership)
        self.assertAllClose(actual[:, 0], [0.0], atol=1e-6)
        # The lowest logit plus log(tiny) minus the normalizer, not -inf.
        tiny = np.finfo("float32").tiny
        normalizer = logsumexp(-dissimilarities[0].astype("float64"))
        self.assertAllClose(actual[:, 1], [-2.0 + np.log(tiny) - normalizer], atol=1e-4)
        gradient = autodiff_gradient(
            lambda tensor: class_log_posterior(tensor, membership), dissimilarities
        )
        self.assertAllFinite(gradient)

    def test_gradients_without_nan_at_zero_distance(self):
        membership = label_membership(LABELS, 3)
        state = np.random.RandomState(2)
        cases = {
            "zero": np.zeros((2, 6)),
            "some_zero": np.where(
                state.uniform(size=(2, 6)) < 0.5, 0.0, state.uniform(0, 2, (2, 6))
            ),
            "random": state.uniform(0, 2, size=(2, 6)),
        }
        for name, dissimilarities in cases.items():
            for beta in (1.0, 2.5):
                with self.subTest(case=name, beta=beta):

                    def function(tensor, beta=beta):
                        return class_log_posterior(tensor, membership, beta=beta)

                    gradient = autodiff_gradient(function, dissimilarities)
                    self.assertAllFinite(gradient)
                    self.assertAllClose(
                        gradient,
                        reference_gradient(dissimilarities, membership, beta),
                        atol=1e-5,
                        rtol=1e-5,
                    )
                    self.assertAllClose(
                        gradient,
                        numeric_gradient(function, dissimilarities),
                        atol=2e-3,
                        rtol=1e-3,
                    )

    def test_compiled(self):
        membership = label_membership(LABELS, 3)
        inputs = keras.Input(shape=(6,))
        outputs = keras.layers.Lambda(
            lambda tensor: class_log_posterior(tensor, membership, beta=0.5)
        )(inputs)
        model = keras.Model(inputs, outputs)
        model.compile(jit_compile=keras.backend.backend() != "torch")
        data = np.random.RandomState(3).uniform(0, 3, size=(5, 6)).astype("float32")
        self.assertAllClose(
            model.predict(data, verbose=0),
            reference_class_log_posterior(data, membership, 0.5),
            atol=1e-5,
            rtol=1e-5,
        )

    def test_invalid_arguments(self):
        membership = label_membership(LABELS, 3)
        dissimilarities = np.zeros((2, 6), dtype="float32")
        for beta in (0, -1.0, float("nan"), True):
            with self.assertRaisesRegex(ValueError, f"Received: beta={beta!r}"):
                class_log_posterior(dissimilarities, membership, beta=beta)
        with self.assertRaisesRegex(
            ValueError, r"one row per prototype.*membership.shape=\(5, 3\)"
        ):
            class_log_posterior(dissimilarities, membership[:5])
        with self.assertRaisesRegex(ValueError, r"`membership` must have rank"):
            class_log_posterior(dissimilarities, np.ones(6, dtype=bool))


class SharedSignalCompetitionTest(TestCase):
    """One signal `(B, 1, *A)` shared by all prototypes (the LVQ models)."""

    def test_equals_the_broadcast_signals(self):
        from anysma.ops.competition import competition
        from anysma.ops.competition import gibbs_competition
        from anysma.ops.competition import nearest_competition
        from anysma.utils import prototype_index_tables

        rng = np.random.default_rng(0)
        signals = rng.normal(size=(4, 1, 2, 3)).astype("float32")
        kernels = {
            "nearest": nearest_competition,
            "gibbs": gibbs_competition,
            # Weights that do not sum to one: the shared path must scale.
            "competition": lambda *args, **kwargs: competition(
                *args, lambda d: ops.exp(-d), **kwargs
            ),
        }
        # Blocks, identity and padded (gathered) prototype tables.
        for distribution in ([2, 2, 2], [1, 1, 1], [2, 1, 3]):
            tables = prototype_index_tables(distribution)
            prototypes = sum(distribution)
            dissimilarities = rng.random((4, prototypes)).astype("float32")
            repeated = np.repeat(signals, prototypes, axis=1)
            for name, kernel in kernels.items():
                shared = kernel(
                    signals,
                    dissimilarities,
                    tables.index_table,
                    tables.valid_mask,
                    return_probabilities=True,
                )
                full = kernel(
                    repeated,
                    dissimilarities,
                    tables.index_table,
                    tables.valid_mask,
                    return_probabilities=True,
                )
                message = f"{name}, distribution={distribution}"
                self.assertShapeEqual(shared[0], (4, len(distribution), 2, 3))
                for got, expected in zip(shared, full):
                    self.assertAllClose(got, expected, atol=1e-6, msg=message)
