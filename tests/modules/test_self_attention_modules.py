"""Efficient-CapsNet's layers against a float64 NumPy reference of the paper."""

import keras
import numpy as np

from anysma import Capsule
from anysma.modules import DepthwisePrimaryCapsules
from anysma.modules import FullyConnectedCapsules
from anysma.modules import InputModule
from anysma.modules import LinearTransformation
from anysma.modules import SelfAttentionRouting
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient


def reference_squash(vectors, epsilon=1e-7):
    """Mazzia et al.'s squash: (1 - 1 / exp(||s||)) s / ||s||."""
    norm = np.sqrt(np.maximum(np.sum(vectors**2, axis=-1, keepdims=True), epsilon))
    return (1 - 1 / np.exp(norm)) * vectors / norm


def reference_routing(votes, log_priors):
    """The paper's routing: A_k = U_k U_k^T / sqrt(D), softmax over the outputs."""
    votes = np.asarray(votes, dtype="float64")
    dim = votes.shape[-1]
    agreement = np.einsum("bkcd,bked->bkce", votes, votes) / np.sqrt(dim)
    logits = agreement.sum(axis=-1)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    coupling = exp / exp.sum(axis=1, keepdims=True)
    summed = np.einsum("bkcd,bkc->bkd", votes, coupling + log_priors)
    outputs = reference_squash(summed)
    return outputs, (coupling * logits).sum(-1), np.linalg.norm(outputs, axis=-1)


def reference_fully_connected(inputs, kernel, log_priors):
    votes = np.einsum("bci,kcid->bkcd", np.asarray(inputs, "float64"), kernel)
    return reference_routing(votes, log_priors)


def reference_depthwise_primary(inputs, kernel, bias, capsule_dim, strides=(1, 1)):
    """A valid depthwise convolution, cut into vectors and squashed."""
    inputs = np.asarray(inputs, dtype="float64")
    batch, height, width, channels = inputs.shape
    kh, kw = kernel.shape[:2]
    out_h = (height - kh) // strides[0] + 1
    out_w = (width - kw) // strides[1] + 1
    features = np.zeros((batch, out_h, out_w, channels))
    for i in range(out_h):
        for j in range(out_w):
            patch = inputs[
                :,
                i * strides[0] : i * strides[0] + kh,
                j * strides[1] : j * strides[1] + kw,
            ]
            features[:, i, j] = np.einsum("bhwc,hwc->bc", patch, kernel[..., 0])
    features = features + bias
    return reference_squash(features.reshape(batch, -1, capsule_dim))


def numeric_gradient64(fn, point, delta=1e-6):
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


class DepthwisePrimaryCapsulesTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            DepthwisePrimaryCapsules,
            {"capsule_dim": 4, "kernel_size": 3},
            np.random.RandomState(0).normal(size=(2, 5, 5, 8)).astype("float32"),
            expected_output_shape=(2, 18, 4),
            expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=0,
        )

    def test_matches_reference_and_gradient(self):
        rng = np.random.RandomState(1)
        inputs = rng.normal(size=(2, 4, 5, 6))
        layer = DepthwisePrimaryCapsules(3, (2, 3), strides=(2, 1))
        layer.build(inputs.shape)
        kernel = rng.normal(size=(2, 3, 6, 1)) * 0.5
        bias = rng.normal(size=(6,)) * 0.1
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
        expected = reference_depthwise_primary(inputs, kernel, bias, 3, (2, 1))
        self.assertEqual(expected.shape, (2, 12, 3))
        self.assertAllClose(layer(inputs.astype("float32")), expected, atol=1e-5)
        small = inputs[:1, :, :4]
        self.assertAllClose(
            autodiff_gradient(lambda x: layer(x), small),
            numeric_gradient64(
                lambda x: reference_depthwise_primary(x, kernel, bias, 3, (2, 1)),
                small,
            ),
            atol=1e-4,
            rtol=1e-3,
        )

    def test_paper_shape_whole_map_kernel(self):
        # A kernel as large as the map takes the weighted-sum path.
        layer = DepthwisePrimaryCapsules(8, 9)
        inputs = np.random.RandomState(6).normal(size=(2, 9, 9, 128))
        outputs = layer(inputs.astype("float32"))
        self.assertShapeEqual(outputs, (2, 16, 8))
        self.assertEqual(layer.count_params(), 9 * 9 * 128 + 128)
        kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), "float64")
        self.assertAllClose(
            outputs,
            reference_depthwise_primary(inputs, kernel, np.zeros(128), 8),
            atol=1e-5,
            rtol=1e-4,
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "capsule_dim"):
            DepthwisePrimaryCapsules(0, 3)
        with self.assertRaisesRegex(ValueError, "kernel_size"):
            DepthwisePrimaryCapsules(4, (3, 0))
        with self.assertRaisesRegex(ValueError, "strides"):
            DepthwisePrimaryCapsules(4, 3, strides="2")
        with self.assertRaisesRegex(ValueError, "not a multiple of capsule_dim=5"):
            DepthwisePrimaryCapsules(5, 3)(np.ones((1, 5, 5, 8), "float32"))
        with self.assertRaisesRegex(ValueError, "smaller than kernel_size"):
            DepthwisePrimaryCapsules(4, 7)(np.ones((1, 5, 5, 8), "float32"))


class FullyConnectedCapsulesTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            FullyConnectedCapsules,
            {"capsules": 3, "capsule_dim": 5},
            np.random.RandomState(0).normal(size=(2, 6, 4)).astype("float32"),
            expected_output_shape=((2, 3, 5), (2, 3), (2, 3)),
            expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=0,
        )

    def test_matches_reference_and_gradient(self):
        rng = np.random.RandomState(2)
        inputs = rng.normal(size=(2, 4, 3))
        kernel = rng.normal(size=(3, 4, 3, 5)) * 0.5
        log_priors = rng.normal(size=(3, 4)) * 0.2
        layer = FullyConnectedCapsules(3, 5)
        layer.build(inputs.shape)
        layer.kernel.assign(kernel)
        layer.log_priors.assign(log_priors)
        self.assertAllClose(
            layer(inputs.astype("float32")),
            reference_fully_connected(inputs, kernel, log_priors),
            atol=2e-5,
            rtol=1e-4,
        )
        self.assertAllClose(
            autodiff_gradient(lambda x: layer(x)[2], inputs),
            numeric_gradient64(
                lambda x: reference_fully_connected(x, kernel, log_priors)[2], inputs
            ),
            atol=2e-4,
            rtol=1e-3,
        )

    def test_weights_follow_the_paper(self):
        layer = FullyConnectedCapsules(10, 16)
        layer.build((None, 16, 8))
        self.assertEqual(tuple(layer.kernel.shape), (10, 16, 8, 16))
        self.assertEqual(layer.count_params(), 10 * 16 * 8 * 16 + 10 * 16)
        self.assertAllClose(layer.log_priors, np.zeros((10, 16)))
        self.assertEqual(
            layer.get_config()["kernel_initializer"]["class_name"], "HeNormal"
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "capsules"):
            FullyConnectedCapsules(0, 4)
        with self.assertRaisesRegex(ValueError, "epsilon"):
            FullyConnectedCapsules(2, 4, epsilon=-1.0)
        with self.assertRaisesRegex(ValueError, r"\(batch, input capsules"):
            FullyConnectedCapsules(2, 4)(np.ones((2, 3), "float32"))


class SelfAttentionRoutingTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.RandomState(3)
        self.predictions = rng.normal(size=(2, 3, 5, 4)).astype("float32")
        self.logits = rng.normal(size=(2, 3, 5)).astype("float32") * 0.1

    def test_layer(self):
        self.run_layer_test(
            SelfAttentionRouting,
            {},
            (self.predictions, self.logits),
            expected_output_shape=((2, 3, 4), (2, 3), (2, 3)),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_matches_reference_with_logits_added_to_priors(self):
        layer = SelfAttentionRouting()
        layer.build((self.predictions.shape, self.logits.shape))
        priors = np.random.RandomState(4).normal(size=(3, 5)) * 0.2
        layer.log_priors.assign(priors)
        self.assertAllClose(
            layer((self.predictions, self.logits)),
            reference_routing(self.predictions, priors + self.logits),
            atol=2e-5,
            rtol=1e-4,
        )

    def test_in_a_capsule_matches_fully_connected_capsules(self):
        # InputModule + LinearTransformation("local") + SelfAttentionRouting
        # is FullyConnectedCapsules with the same matrices.
        inputs = np.random.RandomState(5).normal(size=(2, 6, 4)).astype("float32")
        capsule = Capsule(prototype_distribution=(1, 3))
        capsule.add(
            [
                InputModule(
                    signal_shape=None,
                    dissimilarity_initializer="zeros",
                    trainable=False,
                    sparse_signal=True,
                ),
                LinearTransformation(output_dim=5, scope="local"),
                SelfAttentionRouting(),
            ]
        )
        outputs = capsule(inputs)
        self.assertShapeEqual(outputs[0], (2, 3, 5))
        transformation = [
            layer
            for layer in capsule.modules
            if isinstance(layer, LinearTransformation)
        ][0]
        dense = FullyConnectedCapsules(3, 5)
        dense.build(inputs.shape)
        # Both hold one matrix per output and input capsule, (K, C, in, out).
        dense.kernel.assign(transformation.linear_maps)
        self.assertAllClose(outputs, dense(inputs), atol=1e-5, rtol=1e-5)

    def test_invalid_inputs(self):
        with self.assertRaisesRegex(ValueError, "predictions"):
            SelfAttentionRouting()((self.predictions[..., 0], self.logits))
        with self.assertRaisesRegex(ValueError, "agree on axes 1 and 2"):
            SelfAttentionRouting()((self.predictions, self.logits[:, :2]))
        with self.assertRaisesRegex(ValueError, "epsilon"):
            SelfAttentionRouting(epsilon=float("nan"))
