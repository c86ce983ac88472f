"""Self-attention routing and the Efficient-CapsNet squash against NumPy."""

import numpy as np
import pytest
from keras import ops

from anysma.ops import capsule_votes
from anysma.ops import efficient_squash
from anysma.ops import self_attention_routing
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient


def reference_efficient_squash(vectors, epsilon=1e-7):
    """Mazzia et al.'s squash, with the norm clamped at sqrt(epsilon)."""
    vectors = np.asarray(vectors, dtype="float64")
    norm = np.sqrt(np.maximum(np.sum(vectors**2, axis=-1, keepdims=True), epsilon))
    return (1 - 1 / np.exp(norm)) * vectors / norm


def reference_routing(predictions, log_priors=None, epsilon=1e-7):
    """The paper's routing with the full agreement matrix A_k = U_k U_k^T / sqrt(D)."""
    votes = np.asarray(predictions, dtype="float64")
    batch, capsules, channels = votes.shape[:3]
    votes = votes.reshape(batch, capsules, channels, -1)
    dim = votes.shape[-1]
    agreement = np.einsum("bkcd,bked->bkce", votes, votes) / np.sqrt(dim)
    logits = agreement.sum(axis=-1)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    coupling = exp / exp.sum(axis=1, keepdims=True)  # over the output capsules
    priors = 0.0 if log_priors is None else np.asarray(log_priors, "float64")
    summed = np.einsum("bkcd,bkc->bkd", votes, coupling + priors)
    outputs = reference_efficient_squash(summed, epsilon)
    lengths = np.linalg.norm(outputs, axis=-1)
    similarities = (coupling * logits).sum(axis=-1)
    return (
        outputs.reshape((batch, capsules) + np.shape(predictions)[3:]),
        similarities,
        lengths,
    )


def reference_gradient(fn, point, delta=1e-6):
    """Central differences of a float64 NumPy function's sum."""
    point = np.asarray(point, dtype="float64")
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        shifted = point.copy()
        shifted[index] += delta
        upper = np.sum(fn(shifted))
        shifted[index] -= 2 * delta
        lower = np.sum(fn(shifted))
        gradient[index] = (upper - lower) / (2 * delta)
    return gradient


class EfficientSquashTest(TestCase):
    def test_matches_reference(self):
        vectors = np.random.RandomState(0).normal(size=(3, 5, 7)) * 2
        self.assertAllClose(
            efficient_squash(vectors.astype("float32")),
            reference_efficient_squash(vectors),
            atol=1e-6,
        )

    def test_lengths_and_directions(self):
        vectors = np.array([[3.0, 4.0], [0.03, 0.04], [300.0, 400.0]], "float32")
        squashed = ops.convert_to_numpy(efficient_squash(vectors))
        self.assertAllClose(
            np.linalg.norm(squashed, axis=-1),
            [1 - np.exp(-5), 1 - np.exp(-0.05), 1.0],
            atol=1e-6,
        )
        self.assertAllClose(
            squashed / np.linalg.norm(squashed, axis=-1, keepdims=True),
            vectors / np.linalg.norm(vectors, axis=-1, keepdims=True),
            atol=1e-6,
        )

    def test_zero_vectors_and_gradient_at_zero(self):
        self.assertAllClose(efficient_squash(np.zeros((2, 3))), np.zeros((2, 3)))
        self.assertAllClose(
            efficient_squash(np.zeros((2, 3)), epsilon=0), np.zeros((2, 3))
        )
        # Near 0 the squash is about the identity: the Jacobian is ~I.
        for epsilon in (1e-7, 0):
            gradient = autodiff_gradient(
                lambda value, eps=epsilon: efficient_squash(value, epsilon=eps),
                np.zeros((2, 4)),
            )
            self.assertAllFinite(gradient)
        gradient = autodiff_gradient(
            lambda value: efficient_squash(value, epsilon=1e-6), np.zeros((2, 4))
        )
        self.assertAllClose(gradient, np.ones((2, 4)), atol=2e-3)

    def test_gradient_matches_reference(self):
        vectors = np.random.RandomState(1).normal(size=(3, 4))
        self.assertAllClose(
            autodiff_gradient(lambda value: efficient_squash(value), vectors),
            reference_gradient(reference_efficient_squash, vectors),
            atol=1e-5,
        )

    def test_half_precision_is_finite(self):
        squashed = efficient_squash(np.zeros((2, 3), dtype="float16"))
        self.assertEqual(str(ops.convert_to_numpy(squashed).dtype), "float16")
        self.assertAllFinite(squashed)

    def test_invalid_epsilon(self):
        with self.assertRaisesRegex(ValueError, "epsilon"):
            efficient_squash(np.ones((1, 2)), epsilon=-1.0)


class SelfAttentionRoutingTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.RandomState(0)
        self.predictions = rng.normal(size=(2, 3, 5, 4)) * 0.7
        self.log_priors = rng.normal(size=(3, 5)) * 0.1

    def test_matches_reference(self):
        actual = self_attention_routing(
            self.predictions.astype("float32"), self.log_priors.astype("float32")
        )
        expected = reference_routing(self.predictions, self.log_priors)
        self.assertAllClose(actual, expected, atol=2e-5, rtol=1e-4)

    def test_without_priors_and_with_atom_axes(self):
        predictions = self.predictions.reshape(2, 3, 5, 2, 2).astype("float32")
        actual = self_attention_routing(predictions)
        expected = reference_routing(predictions)
        self.assertEqual(tuple(actual[0].shape), (2, 3, 2, 2))
        self.assertAllClose(actual, expected, atol=2e-5, rtol=1e-4)

    def test_coupling_is_over_the_output_capsules(self):
        # With one output capsule the softmax over the output capsules is 1:
        # s = sum_c u_c (1 + p_c), whatever the agreement.
        predictions = self.predictions[:, :1].astype("float32")
        priors = np.full((1, 5), 0.5, "float32")
        outputs, _, _ = self_attention_routing(predictions, priors)
        summed = 1.5 * self.predictions[:, :1].sum(axis=2)
        self.assertAllClose(
            outputs, reference_efficient_squash(summed), atol=1e-5, rtol=1e-4
        )

    def test_zero_predictions_are_finite(self):
        zeros = np.zeros((2, 3, 5, 4), "float32")
        outputs, similarities, lengths = self_attention_routing(zeros)
        self.assertAllClose(outputs, np.zeros((2, 3, 4)))
        self.assertAllFinite((similarities, lengths))
        gradient = autodiff_gradient(
            lambda value: self_attention_routing(value)[2], zeros
        )
        self.assertAllFinite(gradient)

    def test_gradients_match_reference(self):
        for output_index in range(3):
            actual = autodiff_gradient(
                lambda value, i=output_index: self_attention_routing(
                    value, self.log_priors.astype("float32")
                )[i],
                self.predictions,
            )
            expected = reference_gradient(
                lambda value, i=output_index: reference_routing(value, self.log_priors)[
                    i
                ],
                self.predictions,
            )
            self.assertAllClose(actual, expected, atol=2e-4, rtol=1e-3)

    def test_gradient_with_respect_to_priors(self):
        predictions = self.predictions.astype("float32")
        actual = autodiff_gradient(
            lambda priors: self_attention_routing(predictions, priors)[2],
            self.log_priors,
        )
        expected = reference_gradient(
            lambda priors: reference_routing(self.predictions, priors)[2],
            self.log_priors,
        )
        self.assertAllClose(actual, expected, atol=2e-4, rtol=1e-3)

    def test_half_precision(self):
        outputs = self_attention_routing(self.predictions.astype("float16"))
        for output in outputs:
            self.assertEqual(str(ops.convert_to_numpy(output).dtype), "float16")
        self.assertAllClose(
            outputs, reference_routing(self.predictions), atol=5e-3, rtol=5e-3
        )

    def test_invalid_shapes(self):
        with self.assertRaisesRegex(ValueError, r"\(batch, capsules, channels"):
            self_attention_routing(np.ones((2, 3, 4), "float32"))
        with self.assertRaisesRegex(ValueError, "norm_epsilon"):
            self_attention_routing(self.predictions, norm_epsilon=-1)

    def test_log_priors_must_broadcast_to_the_logits(self):
        capsules, channels = self.predictions.shape[1:3]
        for bad in ((capsules + 1, channels), (channels, capsules + 1)):
            with self.assertRaisesRegex(ValueError, "log_priors"):
                self_attention_routing(self.predictions, log_priors=np.zeros(bad))
        # One prior per output capsule, shared by the channels, is fine.
        self_attention_routing(self.predictions, log_priors=np.zeros((capsules, 1)))


def test_capsule_votes_name_the_mismatched_axis():
    with pytest.raises(ValueError, match="same channels"):
        capsule_votes(np.ones((2, 3, 4)), np.ones((5, 2, 4, 6)))
    with pytest.raises(ValueError, match="same input_dim"):
        capsule_votes(np.ones((2, 3, 4)), np.ones((5, 3, 5, 6)))
    with pytest.raises(ValueError, match="kernel"):
        capsule_votes(np.ones((2, 3, 4)), np.ones((3, 4, 6)))


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 16, 8)])
def test_capsule_votes_match_reference(shape):
    rng = np.random.RandomState(2)
    inputs = rng.normal(size=shape)
    kernel = rng.normal(size=(5, shape[1], shape[2], 6))
    expected = np.einsum("bci,kcid->bkcd", inputs, kernel)
    actual = ops.convert_to_numpy(
        capsule_votes(inputs.astype("float32"), kernel.astype("float32"))
    )
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-5)
