"""The classification-by-components layers: harness and NumPy references."""

import keras
import numpy as np

from anysma.capsule import Capsule
from anysma.modules import Components
from anysma.modules import CosineDetection
from anysma.modules import Detection
from anysma.modules import InputComponents
from anysma.modules import InputModule
from anysma.modules import MinkowskiDistance
from anysma.modules import PatchComponents
from anysma.modules import Reasoning
from anysma.modules import SqueezeRouting
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient

RNG = np.random.RandomState(3)

# === NumPy references (float64 loops, as in tests/ops/test_components_kernels.py) ===


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


def reference_cbc_from_logits(detections, logits):
    """Softmax reasoning and the paper's Eq. (1), one class at a time."""
    logits = np.asarray(logits, dtype="float64")
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    reasoning = exponentials / exponentials.sum(axis=-1, keepdims=True)
    positive, negative = reasoning[..., 0], reasoning[..., 1]
    detections = np.asarray(detections, dtype="float64")
    out = np.zeros((len(detections), positive.shape[1]))
    for c in range(positive.shape[1]):
        agreement = detections * positive[:, c] + (1 - detections) * negative[:, c]
        out[:, c] = agreement.sum(-1) / (positive[:, c] + negative[:, c]).sum()
    return out


def reference_patch_distances(images, components):
    images = np.asarray(images, dtype="float64")
    batch, height, width, _ = images.shape
    count, kh, kw, _ = components.shape
    out = np.zeros((batch, height - kh + 1, width - kw + 1, count))
    for b, i, j, k in np.ndindex(out.shape):
        patch = images[b, i : i + kh, j : j + kw]
        out[b, i, j, k] = np.sum((patch - components[k]) ** 2)
    return out


def reference_squared_distances(x, components):
    x = np.asarray(x, dtype="float64")
    out = np.zeros((len(x), len(components)))
    for n in range(len(x)):
        for k in range(len(components)):
            out[n, k] = np.sum((x[n] - components[k]) ** 2)
    return out


def reference_cbc_model(x, components, sigma, logits):
    detections = np.exp(-reference_squared_distances(x, components) / sigma)
    return reference_cbc_from_logits(detections, logits)


def reference_cosine_detection(x, components):
    """`max(cos(x, w_k), 0)` of flattened vectors, one pair at a time."""
    x = np.asarray(x, dtype="float64").reshape(len(x), -1)
    components = np.asarray(components, dtype="float64")
    components = components.reshape(len(components), -1)
    out = np.zeros((len(x), len(components)))
    for n, k in np.ndindex(out.shape):
        norms = np.linalg.norm(x[n]) * np.linalg.norm(components[k])
        out[n, k] = 0.0 if norms == 0 else max(x[n] @ components[k] / norms, 0.0)
    return out


def reference_siamese_cbc(x, components, kernel, logits):
    """A Siamese CBC with the linear feature extractor `v -> v kernel`."""
    x = np.asarray(x, dtype="float64")
    detections = reference_cosine_detection(x @ kernel, components @ kernel)
    return reference_cbc_from_logits(detections, logits)


class ComponentsTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            Components,
            {"num_components": 4},
            RNG.uniform(size=(3, 5)).astype("float32"),
            expected_output_shape=(3, 4),
            expected_num_trainable_weights=1,
        )

    def test_distances_match_reference(self):
        layer = Components(3)
        x = RNG.uniform(size=(4, 6)).astype("float32")
        layer.build(x.shape)
        components = RNG.uniform(size=(3, 6)).astype("float32")
        layer.components.assign(components)
        self.assertAllClose(
            layer(x), reference_squared_distances(x, components), atol=1e-5
        )
        euclidean = Components(3, distance="euclidean")
        euclidean.build(x.shape)
        euclidean.components.assign(components)
        self.assertAllClose(
            euclidean(x),
            np.sqrt(reference_squared_distances(x, components)),
            atol=1e-5,
        )

    def test_fixed_components(self):
        layer = Components(3, trainable=False)
        layer.build((None, 2))
        self.assertLen(layer.trainable_weights, 0)
        self.assertLen(layer.non_trainable_weights, 1)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "`distance` must be one of"):
            Components(3, distance="cosine")
        with self.assertRaisesRegex(ValueError, "num_components"):
            Components(0)


class PatchComponentsTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            PatchComponents,
            {"num_components": 3, "kernel_size": 2, "strides": 2},
            RNG.uniform(size=(2, 6, 6, 1)).astype("float32"),
            expected_output_shape=(2, 3, 3, 3),
            expected_num_trainable_weights=1,
        )

    def test_same_padding_shape(self):
        layer = PatchComponents(2, kernel_size=3, padding="same")
        images = np.zeros((1, 5, 5, 2), "float32")
        self.assertShapeEqual(layer(images), (1, 5, 5, 2))
        self.assertEqual(layer.compute_output_shape((1, 5, 5, 2)), (1, 5, 5, 2))

    def test_distances_match_reference(self):
        layer = PatchComponents(3, kernel_size=(3, 2))
        images = RNG.uniform(size=(2, 5, 4, 2)).astype("float32")
        layer.build(images.shape)
        components = RNG.uniform(size=(3, 3, 2, 2)).astype("float32")
        layer.components.assign(components)
        self.assertAllClose(
            layer(images), reference_patch_distances(images, components), atol=1e-5
        )

    def test_invalid_input(self):
        with self.assertRaisesRegex(ValueError, "channels-last images"):
            PatchComponents(2, kernel_size=2)(np.zeros((2, 5), "float32"))
        with self.assertRaisesRegex(ValueError, "`kernel_size` must be"):
            PatchComponents(2, kernel_size=(2, 0))


class DetectionTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            Detection,
            {"sigma": 2.0},
            RNG.uniform(0, 3, size=(3, 4)).astype("float32"),
            expected_output_shape=(3, 4),
            expected_num_trainable_weights=1,
        )

    def test_fixed_sigma(self):
        layer = Detection(sigma=0.5, trainable_sigma=False)
        distances = RNG.uniform(0, 3, size=(3, 4)).astype("float32")
        self.assertAllClose(layer(distances), np.exp(-distances / 0.5), atol=1e-6)
        self.assertLen(layer.trainable_weights, 0)
        self.assertLen(layer.non_trainable_weights, 1)
        self.run_serialization_test(layer)

    def test_takes_the_dissimilarities_of_a_capsule(self):
        # Any measuring module feeds the reasoning: here the Minkowski
        # distance of a one-prototype-per-capsule capsule.
        inputs = keras.Input((4,))
        capsule = Capsule(prototype_distribution=5)
        capsule.add(
            [
                InputModule(
                    signal_shape=(1, 4),
                    sparse_signal=True,
                    dissimilarity_initializer="zeros",
                ),
                MinkowskiDistance(squared_dissimilarity=True),
                SqueezeRouting(),
            ]
        )
        detection = Detection(sigma=3.0)
        outputs = Reasoning(num_classes=2)(detection(capsule(inputs)))
        model = keras.Model(inputs, outputs)
        x = RNG.uniform(size=(6, 4)).astype("float32")
        self.assertShapeEqual(model(x), (6, 2))
        dissimilarities = keras.Model(inputs, capsule(inputs)[1]).predict(x, verbose=0)
        self.assertAllClose(
            detection(capsule(x)), np.exp(-np.asarray(dissimilarities) / 3.0), atol=1e-6
        )
        self.run_model_saving_test(model, x)

    def test_invalid_sigma(self):
        with self.assertRaisesRegex(ValueError, "`sigma` must be"):
            Detection(sigma=0.0)


class InputComponentsTest(TestCase):
    def test_layer(self):
        # The training check fits the output `(3, ...)` to zeros, so the
        # batch equals the number of components here.
        self.run_layer_test(
            InputComponents,
            {"num_components": 3},
            RNG.uniform(size=(3, 4, 4, 2)).astype("float32"),
            expected_output_shape=(3, 4, 4, 2),
            expected_num_trainable_weights=1,
        )

    def test_returns_the_components_whatever_the_inputs(self):
        layer = InputComponents(2, components_initializer="ones")
        first = layer(np.zeros((5, 3), "float32"))
        second = layer(RNG.uniform(size=(7, 3)).astype("float32"))
        self.assertAllClose(first, np.ones((2, 3)))
        self.assertAllClose(second, first)
        self.assertEqual(layer.compute_output_shape((None, 3)), (2, 3))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_components"):
            InputComponents(0)
        with self.assertRaisesRegex(ValueError, "known per-sample shape"):
            InputComponents(2).build((None, None, 3))


class CosineDetectionLayerTest(TestCase):
    def test_layer(self):
        # The harness gives the component features a batch axis `None` too,
        # so the output shape is checked eagerly.
        layer = self.run_layer_test(
            CosineDetection,
            {},
            (
                RNG.normal(size=(4, 2, 2, 3)).astype("float32"),
                RNG.normal(size=(4, 2, 2, 3)).astype("float32"),
            ),
            expected_num_trainable_weights=0,
        )
        features = np.ones((2, 2, 2, 3), "float32")
        self.assertShapeEqual(layer([features, np.ones((5, 2, 2, 3))]), (2, 5))
        self.assertEqual(
            layer.compute_output_shape([(None, 2, 2, 3), (5, 2, 2, 3)]), (None, 5)
        )

    def test_matches_reference(self):
        features = RNG.normal(size=(3, 2, 2, 4)).astype("float32")
        components = RNG.normal(size=(5, 2, 2, 4)).astype("float32")
        components[0] = 0.0  # a dead component: no detection, no NaN
        values = CosineDetection()([features, components])
        self.assertAllClose(
            values, reference_cosine_detection(features, components), atol=1e-6
        )
        self.assertAllClose(np.asarray(values)[:, 0], np.zeros(3))

    def test_invalid_inputs(self):
        with self.assertRaisesRegex(ValueError, "takes a list"):
            CosineDetection()(np.ones((2, 3), "float32"))
        with self.assertRaisesRegex(ValueError, "same known per-sample shape"):
            CosineDetection()([np.ones((2, 3), "float32"), np.ones((4, 5), "float32")])
        with self.assertRaisesRegex(ValueError, "epsilon"):
            CosineDetection(epsilon=-1.0)
        with self.assertRaisesRegex(ValueError, "epsilon"):
            CosineDetection(epsilon=0.0)
        with self.assertRaisesRegex(ValueError, "epsilon"):
            Detection(epsilon=0.0)
        with self.assertRaisesRegex(TypeError, "trainable_sigma"):
            Detection(trainable_sigma="no")


class SiameseChainTest(TestCase):
    """InputComponents -> shared extractor -> CosineDetection -> Reasoning."""

    def setUp(self):
        super().setUp()
        self.x = RNG.uniform(size=(3, 4)).astype("float32")
        self.components = RNG.uniform(size=(5, 4)).astype("float32")
        self.kernel = RNG.normal(size=(4, 6)).astype("float32")
        self.logits = RNG.normal(size=(5, 2, 3)).astype("float32")
        inputs = keras.Input((4,))
        self.input_components = InputComponents(5)
        self.extractor = keras.layers.Dense(6, use_bias=False)
        self.reasoning = Reasoning(num_classes=2)
        components = self.input_components(inputs)
        detections = CosineDetection()(
            [self.extractor(inputs), self.extractor(components)]
        )
        self.model = keras.Model(inputs, self.reasoning(detections))
        self.input_components.components.assign(self.components)
        self.extractor.kernel.assign(self.kernel)
        self.reasoning.reasoning_logits.assign(self.logits)

    def test_forward(self):
        self.assertAllClose(
            self.model(self.x),
            reference_siamese_cbc(self.x, self.components, self.kernel, self.logits),
            atol=1e-6,
        )

    def test_gradient_with_respect_to_the_weights(self):
        """Both paths of the shared extractor, against finite differences."""
        y = np.eye(2, dtype="float32")[[0, 1, 1]]

        def reference_loss(components, kernel, logits):
            return np.sum(
                reference_siamese_cbc(self.x, components, kernel, logits) * (1 - 2 * y)
            )

        cases = [
            (
                self.input_components.components,
                lambda c: reference_loss(c, self.kernel, self.logits),
                self.components,
            ),
            (
                self.extractor.kernel,
                lambda k: reference_loss(self.components, k, self.logits),
                self.kernel,
            ),
            (
                self.reasoning.reasoning_logits,
                lambda g: reference_loss(self.components, self.kernel, g),
                self.logits,
            ),
        ]
        for variable, function, point in cases:
            self.assertAllClose(
                _variable_gradient(self.model, variable, self.x, y),
                reference_numeric_gradient(function, point),
                atol=2e-5,
                rtol=1e-3,
            )


class ReasoningLayerTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            Reasoning,
            {"num_classes": 3},
            RNG.uniform(size=(4, 5)).astype("float32"),
            expected_output_shape=(4, 3),
            expected_num_trainable_weights=1,
        )

    def test_matches_reference_and_simplex(self):
        layer = Reasoning(num_classes=3)
        detections = RNG.uniform(size=(4, 5)).astype("float32")
        layer.build(detections.shape)
        logits = RNG.normal(size=(5, 3, 3)).astype("float32")
        layer.reasoning_logits.assign(logits)
        self.assertAllClose(
            layer(detections), reference_cbc_from_logits(detections, logits), atol=1e-6
        )
        positive, negative, indefinite = layer.reasoning_probabilities()
        self.assertEqual(positive.shape, (5, 3))
        self.assertAllClose(positive + negative + indefinite, np.ones((5, 3)))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_classes"):
            Reasoning(num_classes=0)


class ChainTest(TestCase):
    """Components -> Detection -> Reasoning against the NumPy model."""

    def setUp(self):
        super().setUp()
        self.x = RNG.uniform(size=(3, 4)).astype("float32")
        self.components = RNG.uniform(size=(5, 4)).astype("float32")
        self.logits = RNG.normal(size=(5, 2, 3)).astype("float32")
        self.sigma = 0.7
        self.layers = (
            Components(5),
            Detection(sigma=self.sigma),
            Reasoning(num_classes=2),
        )
        self.layers[0].build(self.x.shape)
        self.layers[2].build((None, 5))
        self.layers[0].components.assign(self.components)
        self.layers[2].reasoning_logits.assign(self.logits)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def test_forward(self):
        self.assertAllClose(
            self.forward(self.x),
            reference_cbc_model(self.x, self.components, self.sigma, self.logits),
            atol=1e-6,
        )

    def test_gradient_with_respect_to_inputs(self):
        weights = np.array([1.0, -2.0], "float32")
        self.assertAllClose(
            autodiff_gradient(
                lambda x: keras.ops.multiply(self.forward(x), weights), self.x
            ),
            reference_numeric_gradient(
                lambda x: (
                    reference_cbc_model(x, self.components, self.sigma, self.logits)
                    * weights
                ),
                self.x,
            ),
            atol=2e-5,
            rtol=1e-3,
        )

    def test_gradient_with_respect_to_the_weights(self):
        """One training step's gradients, compared with finite differences."""
        y = np.eye(2, dtype="float32")[[0, 1, 1]]
        model = keras.Sequential([keras.Input((4,)), *self.layers])
        variables = [
            self.layers[0].components,
            self.layers[1].sigma_weight,
            self.layers[2].reasoning_logits,
        ]

        def reference_loss(components, sigma, logits):
            return np.sum(
                reference_cbc_model(self.x, components, sigma, logits) * (1 - 2 * y)
            )

        expected = [
            reference_numeric_gradient(
                lambda c: reference_loss(c, self.sigma, self.logits), self.components
            ),
            reference_numeric_gradient(
                lambda s: reference_loss(self.components, s, self.logits), self.sigma
            ),
            reference_numeric_gradient(
                lambda g: reference_loss(self.components, self.sigma, g), self.logits
            ),
        ]
        for variable, want in zip(variables, expected):
            gradient = _variable_gradient(model, variable, self.x, y)
            self.assertAllClose(gradient, want, atol=2e-5, rtol=1e-3)


def _variable_gradient(model, variable, x, y):
    """Gradient of `sum(model(x) * (1 - 2 y))` with respect to `variable`."""
    sign = keras.ops.convert_to_tensor(1 - 2 * y)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        trainable = model.trainable_variables
        index = [id(v) for v in trainable].index(id(variable))
        values = [v.value for v in trainable]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def objective(value):
            values[index] = value
            outputs, _ = model.stateless_call(values, non_trainable, x)
            return keras.ops.sum(outputs * sign)

        return np.asarray(jax.grad(objective)(variable.value))
    if backend == "torch":
        model.zero_grad()
        loss = keras.ops.sum(model(x) * sign)
        loss.backward()
        return variable.value.grad.detach().cpu().numpy()
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = keras.ops.sum(model(x) * sign)
    return np.asarray(tape.gradient(loss, variable.value))
