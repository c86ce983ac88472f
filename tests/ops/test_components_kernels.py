"""Classification-by-components math against float64 NumPy references."""

import numpy as np
import pytest
from keras import ops

from anysma import losses
from anysma.ops.components import cbc_reasoning
from anysma.ops.components import cosine_detection_probability
from anysma.ops.components import cosine_similarity
from anysma.ops.components import detection_probability
from anysma.ops.components import image_patches
from anysma.ops.components import patch_distances
from anysma.ops.components import reasoning_probabilities
from anysma.ops.distances import euclidean_distance
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient

# === NumPy references (loops on purpose: independent of the vectorization) ===


def reference_numeric_gradient(function, x, delta=1e-6):
    """Central differences of `sum(function(x))`, all in float64."""
    x = np.asarray(x, dtype="float64")
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += delta
        upper = np.sum(function(shifted))
        shifted[index] -= 2 * delta
        lower = np.sum(function(shifted))
        gradient[index] = (upper - lower) / (2 * delta)
    return gradient


def reference_detection(distances, sigma):
    return np.exp(-np.maximum(np.asarray(distances, "float64"), 0) / sigma)


def reference_cosine_detection(x, components):
    """`max(cos(x, w_k), 0)`, one pair at a time; 0 for a zero vector."""
    x = np.asarray(x, dtype="float64")
    components = np.asarray(components, dtype="float64")
    out = np.zeros(x.shape[:-1] + (len(components),))
    for index in np.ndindex(x.shape[:-1]):
        for k, component in enumerate(components):
            norms = np.linalg.norm(x[index]) * np.linalg.norm(component)
            cosine = 0.0 if norms == 0 else x[index] @ component / norms
            out[index + (k,)] = max(cosine, 0.0)
    return out


def reference_reasoning_probabilities(logits):
    logits = np.asarray(logits, dtype="float64")
    probabilities = np.zeros_like(logits)
    for index in np.ndindex(logits.shape[:-1]):
        exponentials = np.exp(logits[index] - logits[index].max())
        probabilities[index] = exponentials / exponentials.sum()
    return probabilities[..., 0], probabilities[..., 1], probabilities[..., 2]


def reference_cbc(detections, positive, negative):
    """The paper's Eq. (1), one sample and one class at a time."""
    detections = np.asarray(detections, dtype="float64")
    batch, components = detections.shape
    classes = positive.shape[1]
    out = np.zeros((batch, classes))
    for b in range(batch):
        for c in range(classes):
            agreement = sum(
                positive[k, c] * detections[b, k]
                + negative[k, c] * (1 - detections[b, k])
                for k in range(components)
            )
            relevance = sum(positive[k, c] + negative[k, c] for k in range(components))
            out[b, c] = agreement / relevance
    return out


def reference_cbc_from_logits(detections, logits):
    positive, negative, _ = reference_reasoning_probabilities(logits)
    return reference_cbc(detections, positive, negative)


def reference_patch_distances(images, components, stride=1):
    images = np.asarray(images, dtype="float64")
    components = np.asarray(components, dtype="float64")
    batch, height, width, _ = images.shape
    count, kh, kw, _ = components.shape
    rows = (height - kh) // stride + 1
    cols = (width - kw) // stride + 1
    out = np.zeros((batch, rows, cols, count))
    for b in range(batch):
        for i in range(rows):
            for j in range(cols):
                patch = images[
                    b, i * stride : i * stride + kh, j * stride : j * stride + kw
                ]
                for k in range(count):
                    out[b, i, j, k] = np.sum((patch - components[k]) ** 2)
    return out


def reference_cbc_loss(y_true, y_pred, margin):
    out = np.zeros(len(y_true))
    for n, (label, probabilities) in enumerate(zip(y_true, y_pred)):
        others = [p for k, p in enumerate(probabilities) if k != label]
        out[n] = max(0.0, max(others) - probabilities[label] + margin)
    return out


RNG = np.random.RandomState(0)
DETECTIONS = RNG.uniform(0.05, 0.95, size=(4, 5))
LOGITS = RNG.normal(size=(5, 3, 3))
CLASS_WEIGHTS = np.arange(1, 4, dtype="float32")


class DetectionProbabilityTest(TestCase):
    def test_matches_reference(self):
        distances = RNG.uniform(0, 4, size=(3, 4))
        self.assertAllClose(
            detection_probability(distances.astype("float32"), 1.7),
            reference_detection(distances, 1.7),
            atol=1e-6,
        )

    def test_zero_and_negative_distances(self):
        # Rounding of GEMM distances can give tiny negative values.
        values = detection_probability(np.array([0.0, -1e-6], "float32"), 1.0)
        self.assertAllClose(values, [1.0, 1.0])
        # At zero distance the one-sided derivatives differ (the clamp); the
        # gradient is finite, and just above zero it is the kernel's.
        gradient = autodiff_gradient(
            lambda d: detection_probability(d, 1.0), np.zeros(3, "float32")
        )
        self.assertAllFinite(gradient)
        gradient = autodiff_gradient(
            lambda d: detection_probability(d, 1.0), np.full(3, 1e-3, "float32")
        )
        self.assertAllClose(gradient, -np.exp(-1e-3) * np.ones(3), atol=1e-6)

    def test_gradient_matches_reference(self):
        distances = RNG.uniform(0.1, 3, size=(2, 3))
        self.assertAllClose(
            autodiff_gradient(lambda d: detection_probability(d, 0.8), distances),
            reference_numeric_gradient(
                lambda d: reference_detection(d, 0.8), distances
            ),
            atol=1e-5,
            rtol=1e-4,
        )

    def test_gradient_with_respect_to_sigma(self):
        distances = RNG.uniform(0.1, 3, size=(2, 3)).astype("float32")
        self.assertAllClose(
            autodiff_gradient(lambda s: detection_probability(distances, s), 1.3),
            reference_numeric_gradient(
                lambda s: reference_detection(distances, s), 1.3
            ),
            atol=1e-5,
            rtol=1e-4,
        )

    def test_any_distance_feeds_it(self):
        x, w = RNG.normal(size=(3, 4)), RNG.normal(size=(2, 4))
        expected = np.exp(-np.sqrt(((x[:, None] - w[None]) ** 2).sum(-1)) / 2.0)
        self.assertAllClose(
            detection_probability(euclidean_distance(x, w), 2.0), expected, atol=1e-5
        )

    def test_invalid_sigma(self):
        with self.assertRaisesRegex(ValueError, "`sigma` must be a number > 0"):
            detection_probability(np.ones(2), 0.0)


class CosineDetectionTest(TestCase):
    X = RNG.normal(size=(2, 3, 6))
    COMPONENTS = RNG.normal(size=(4, 6))

    def test_matches_reference(self):
        self.assertAllClose(
            cosine_detection_probability(self.X, self.COMPONENTS),
            reference_cosine_detection(self.X, self.COMPONENTS),
            atol=1e-6,
        )
        values = np.asarray(cosine_similarity(self.X, self.COMPONENTS))
        self.assertTrue(np.any(values < 0) and np.all(np.abs(values) <= 1 + 1e-6))
        self.assertAllClose(
            np.maximum(values, 0),
            reference_cosine_detection(self.X, self.COMPONENTS),
            atol=1e-6,
        )

    def test_scale_invariant(self):
        self.assertAllClose(
            cosine_detection_probability(3.0 * self.X, 0.5 * self.COMPONENTS),
            cosine_detection_probability(self.X, self.COMPONENTS),
            atol=1e-6,
        )

    def test_gradient_matches_reference(self):
        x = self.X[0]
        self.assertAllClose(
            autodiff_gradient(
                lambda v: cosine_detection_probability(v, self.COMPONENTS), x
            ),
            reference_numeric_gradient(
                lambda v: reference_cosine_detection(v, self.COMPONENTS), x
            ),
            atol=1e-5,
            rtol=1e-4,
        )
        self.assertAllClose(
            autodiff_gradient(
                lambda w: cosine_detection_probability(x, w), self.COMPONENTS
            ),
            reference_numeric_gradient(
                lambda w: reference_cosine_detection(x, w), self.COMPONENTS
            ),
            atol=1e-5,
            rtol=1e-4,
        )

    def test_zero_vectors_give_zero_and_finite_gradients(self):
        zeros = np.zeros((2, 6), "float32")
        self.assertAllClose(
            cosine_detection_probability(zeros, self.COMPONENTS), np.zeros((2, 4))
        )
        self.assertAllClose(
            cosine_detection_probability(self.X[0], np.zeros((4, 6))),
            np.zeros((3, 4)),
        )
        for function, point in (
            (lambda v: cosine_similarity(v, self.COMPONENTS), zeros),
            (lambda w: cosine_similarity(self.X[0], w), np.zeros((4, 6), "float32")),
            (lambda v: cosine_detection_probability(v, self.COMPONENTS), zeros),
        ):
            self.assertAllFinite(autodiff_gradient(function, point))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "same number of features"):
            cosine_similarity(np.ones((2, 3)), np.ones((4, 5)))
        with self.assertRaisesRegex(ValueError, "components"):
            cosine_similarity(np.ones((2, 3)), np.ones((4, 5, 3)))
        with self.assertRaisesRegex(ValueError, "epsilon"):
            cosine_similarity(np.ones((2, 3)), np.ones((4, 3)), epsilon=-1.0)


def test_epsilon_zero_is_refused_where_it_would_give_nan():
    # With epsilon = 0 a zero width, a zero vector or an all-indefinite class
    # would divide 0 by 0.
    checks = (
        lambda: detection_probability(np.ones((2, 3)), sigma=0.0, epsilon=0.0),
        lambda: cosine_similarity(np.ones((2, 3)), np.ones((4, 3)), epsilon=0.0),
        lambda: cbc_reasoning(np.ones((2, 3)), np.ones((3, 4)), np.ones((3, 4)), 0.0),
    )
    for check in checks:
        with pytest.raises(ValueError, match="epsilon` must be a number > 0"):
            check()


def test_patch_distances_needs_a_distance_function():
    with pytest.raises(TypeError, match="distance"):
        patch_distances(
            np.ones((1, 4, 4, 1)), np.ones((2, 2, 2, 1)), distance="euclidean"
        )


class ReasoningTest(TestCase):
    def test_probabilities_on_the_simplex(self):
        positive, negative, indefinite = reasoning_probabilities(LOGITS)
        expected = reference_reasoning_probabilities(LOGITS)
        self.assertAllClose((positive, negative, indefinite), expected, atol=1e-6)
        total = np.asarray(positive) + np.asarray(negative) + np.asarray(indefinite)
        self.assertAllClose(total, np.ones((5, 3)), atol=1e-6)

    def test_cbc_reasoning_matches_equation(self):
        positive, negative, _ = reference_reasoning_probabilities(LOGITS)
        self.assertAllClose(
            cbc_reasoning(DETECTIONS, positive, negative),
            reference_cbc(DETECTIONS, positive, negative),
            atol=1e-6,
        )

    def test_probabilities_lie_in_the_unit_interval(self):
        positive, negative, _ = reference_reasoning_probabilities(LOGITS)
        for detections in (np.zeros((1, 5)), np.ones((1, 5)), DETECTIONS):
            values = np.asarray(cbc_reasoning(detections, positive, negative))
            self.assertTrue(np.all(values >= -1e-6) and np.all(values <= 1 + 1e-6))

    def test_all_indefinite_gives_zero_not_nan(self):
        zeros = np.zeros((5, 3))
        values = cbc_reasoning(DETECTIONS, zeros, zeros)
        self.assertAllClose(values, np.zeros((4, 3)))
        gradient = autodiff_gradient(
            lambda r: cbc_reasoning(DETECTIONS, r, r), zeros.astype("float32")
        )
        self.assertAllFinite(gradient)

    def test_gradient_with_respect_to_detections(self):
        positive, negative, _ = reference_reasoning_probabilities(LOGITS)
        self.assertAllClose(
            autodiff_gradient(
                lambda d: cbc_reasoning(d, positive, negative), DETECTIONS
            ),
            reference_numeric_gradient(
                lambda d: reference_cbc(d, positive, negative), DETECTIONS
            ),
            atol=1e-5,
            rtol=1e-4,
        )

    def test_gradient_with_respect_to_logits(self):
        def function(logits):
            positive, negative, _ = reasoning_probabilities(logits)
            # Weight the classes differently: the plain sum is constant.
            return ops.multiply(
                cbc_reasoning(DETECTIONS, positive, negative), CLASS_WEIGHTS
            )

        self.assertAllClose(
            autodiff_gradient(function, LOGITS),
            reference_numeric_gradient(
                lambda logits: (
                    reference_cbc_from_logits(DETECTIONS, logits) * np.arange(1, 4)
                ),
                LOGITS,
            ),
            atol=1e-5,
            rtol=1e-4,
        )

    def test_invalid_shapes(self):
        positive = np.ones((4, 3))
        with self.assertRaisesRegex(ValueError, "one row per component"):
            cbc_reasoning(DETECTIONS, positive, positive)
        with self.assertRaisesRegex(ValueError, "same shape"):
            cbc_reasoning(DETECTIONS, np.ones((5, 3)), np.ones((5, 2)))
        with self.assertRaisesRegex(ValueError, "last axis of size 3"):
            reasoning_probabilities(np.ones((5, 3, 2)))


class PatchDistancesTest(TestCase):
    def test_matches_reference(self):
        images = RNG.uniform(size=(2, 6, 5, 2))
        components = RNG.uniform(size=(3, 3, 2, 2))
        for stride in (1, 2):
            self.assertAllClose(
                patch_distances(images, components, strides=stride),
                reference_patch_distances(images, components, stride),
                atol=1e-5,
            )

    def test_patch_order_is_height_width_channels(self):
        images = np.arange(2 * 3 * 2, dtype="float32").reshape(1, 2, 3, 2)
        patches = np.asarray(image_patches(images, (2, 2)))
        self.assertAllClose(patches[0, 0, 1], images[0, 0:2, 1:3].reshape(-1))

    def test_gradient_matches_reference(self):
        images = RNG.uniform(size=(1, 4, 4, 1))
        components = RNG.uniform(size=(2, 2, 2, 1))
        self.assertAllClose(
            autodiff_gradient(lambda w: patch_distances(images, w), components),
            reference_numeric_gradient(
                lambda w: reference_patch_distances(images, w), components
            ),
            atol=1e-4,
            rtol=1e-4,
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "same number of channels"):
            patch_distances(np.ones((1, 4, 4, 2)), np.ones((2, 2, 2, 1)))
        with self.assertRaisesRegex(ValueError, "`padding` must be"):
            patch_distances(np.ones((1, 4, 4, 1)), np.ones((2, 2, 2, 1)), padding="x")
        with self.assertRaisesRegex(ValueError, "`strides` must be"):
            patch_distances(np.ones((1, 4, 4, 1)), np.ones((2, 2, 2, 1)), strides=0)


class CBCLossTest(TestCase):
    Y_PRED = np.array([[0.9, 0.2, 0.1], [0.4, 0.5, 0.3], [0.2, 0.2, 0.8]], "float32")
    LABELS = np.array([0, 0, 1])

    def test_matches_reference(self):
        self.run_loss_test(
            losses.CBCLoss(margin=0.3),
            self.LABELS,
            self.Y_PRED,
            reference_cbc_loss(self.LABELS, self.Y_PRED, 0.3),
        )

    def test_one_hot_labels_and_lookup(self):
        one_hot = np.eye(3)[self.LABELS]
        self.assertAllClose(
            losses.get("cbc_loss")(one_hot, self.Y_PRED),
            reference_cbc_loss(self.LABELS, self.Y_PRED, 0.3),
            atol=1e-6,
        )
        self.assertIsInstance(losses.get("CBCLoss"), losses.CBCLoss)

    def test_gradient(self):
        one_hot = np.eye(3)[self.LABELS]
        gradient = autodiff_gradient(
            lambda p: losses.cbc_loss(one_hot, p, margin=0.3), self.Y_PRED
        )
        # Sample 0 is beyond the margin; the others push the true class up
        # and the strongest wrong class down.
        expected = np.array([[0, 0, 0], [-1, 1, 0], [0, -1, 1]], "float64")
        self.assertAllClose(gradient, expected)

    def test_invalid_margin(self):
        with pytest.raises(ValueError, match="margin"):
            losses.CBCLoss(margin=-0.1)
