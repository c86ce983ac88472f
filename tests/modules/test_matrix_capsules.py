import importlib.util
import os

import keras
import numpy as np

from anysma.modules import ClassMatrixCaps
from anysma.modules import ConvMatrixCaps
from anysma.modules import EMRouting
from anysma.modules import PrimaryMatrixCaps
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient


def _load_ops_references():
    """The float64 EM routing reference of `tests/ops/test_em_routing.py`."""
    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "ops",
        "test_em_routing.py",
    )
    spec = importlib.util.spec_from_file_location("em_routing_references", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCES = _load_ops_references()
reference_em_routing = REFERENCES.reference_em_routing
numeric_gradient64 = REFERENCES.numeric_gradient64
jitted = REFERENCES.jitted

# === NumPy references of the layers (float64, loops on purpose) ===


def reference_primary(features, kernel, bias, capsule_types, kernel_size, strides):
    features = np.asarray(features, "float64")
    batch, height, width, _ = features.shape
    out_h = (height - kernel_size) // strides + 1
    out_w = (width - kernel_size) // strides + 1
    outputs = np.zeros((batch, out_h, out_w, kernel.shape[-1]))
    for oh in range(out_h):
        for ow in range(out_w):
            window = features[
                :,
                oh * strides : oh * strides + kernel_size,
                ow * strides : ow * strides + kernel_size,
            ]
            outputs[:, oh, ow] = np.einsum("bhwc,hwcu->bu", window, kernel) + bias
    split = capsule_types * 16
    poses = outputs[..., :split].reshape(batch, out_h, out_w, capsule_types, 4, 4)
    return poses, 1 / (1 + np.exp(-outputs[..., split:]))


def reference_conv_caps(
    poses, activations, kernel, beta_u, beta_a, size, strides, **kw
):
    poses = np.asarray(poses, "float64")
    batch, height, width, types = poses.shape[:4]
    out_h = (height - size) // strides + 1
    out_w = (width - size) // strides + 1
    outputs = kernel.shape[2]
    votes = np.zeros((batch, out_h * out_w, size * size * types, outputs, 16))
    slot_activations = np.zeros((batch, out_h * out_w, size * size * types))
    ids = np.zeros((out_h * out_w, size * size * types), "int64")
    for oh in range(out_h):
        for ow in range(out_w):
            group = oh * out_w + ow
            for k in range(size * size):
                h, w = oh * strides + k // size, ow * strides + k % size
                for i in range(types):
                    slot = k * types + i
                    ids[group, slot] = (h * width + w) * types + i
                    slot_activations[:, group, slot] = activations[:, h, w, i]
                    for o in range(outputs):
                        votes[:, group, slot, o] = (
                            poses[:, h, w, i] @ kernel[k, i, o]
                        ).reshape(batch, 16)
    out_poses, out_activations = reference_em_routing(
        votes, slot_activations, beta_u, beta_a, child_ids=ids, **kw
    )
    return (
        out_poses.reshape(batch, out_h, out_w, outputs, 4, 4),
        out_activations.reshape(batch, out_h, out_w, outputs),
    )


def reference_class_caps(poses, activations, kernel, beta_u, beta_a, coords, **kw):
    poses = np.asarray(poses, "float64")
    batch, height, width, types = poses.shape[:4]
    classes = kernel.shape[1]
    votes = np.zeros((batch, 1, height * width * types, classes, 16))
    for h in range(height):
        for w in range(width):
            for i in range(types):
                slot = (h * width + w) * types + i
                for o in range(classes):
                    vote = poses[:, h, w, i] @ kernel[i, o]
                    if coords:
                        vote[:, 0, 3] += (h + 0.5) / height
                        vote[:, 1, 3] += (w + 0.5) / width
                    votes[:, 0, slot, o] = vote.reshape(batch, 16)
    out_poses, scores = reference_em_routing(
        votes, activations.reshape(batch, 1, -1), beta_u, beta_a, **kw
    )
    return out_poses.reshape(batch, classes, 4, 4), scores.reshape(batch, classes)


def weights_of(layer):
    return [np.asarray(keras.ops.convert_to_numpy(w), "float64") for w in layer.weights]


def random_grid(batch=2, height=4, width=4, types=2, seed=0):
    rng = np.random.default_rng(seed)
    poses = rng.normal(size=(batch, height, width, types, 4, 4)).astype("float32")
    activations = rng.uniform(0.1, 1.0, size=(batch, height, width, types))
    return poses, activations.astype("float32")


# Large inverse temperatures make the routing depend on the activations.
ROUTING = {"final_lambda": 0.5, "cost_normalization": 1.0}
BETAS = {"beta_a_initializer": "random_normal", "beta_u_initializer": "random_normal"}


class PrimaryMatrixCapsTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            PrimaryMatrixCaps,
            {"capsule_types": 3, "kernel_size": 2, "strides": 2},
            np.random.rand(2, 6, 6, 4).astype("float32"),
            expected_output_shape=((2, 3, 3, 3, 4, 4), (2, 3, 3, 3)),
            expected_num_trainable_weights=2,
        )

    def test_matches_reference(self):
        features = np.random.default_rng(0).normal(size=(2, 5, 5, 3))
        layer = PrimaryMatrixCaps(2, kernel_size=3, strides=2, bias_initializer="ones")
        poses, activations = layer(features.astype("float32"))
        kernel, bias = weights_of(layer)
        expected = reference_primary(features, kernel, bias, 2, 3, 2)
        self.assertAllClose(poses, expected[0], atol=1e-5, rtol=1e-5)
        self.assertAllClose(activations, expected[1], atol=1e-5, rtol=1e-5)

    def test_invalid(self):
        with self.assertRaisesRegex(ValueError, "capsule_types"):
            PrimaryMatrixCaps(0)
        with self.assertRaisesRegex(ValueError, "feature map"):
            PrimaryMatrixCaps(2)(np.zeros((2, 5, 5), "float32"))


class ConvMatrixCapsTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            ConvMatrixCaps,
            {"capsule_types": 3, "kernel_size": 3, "strides": 2, "iterations": 2},
            random_grid(height=5, width=5),
            expected_output_shape=((2, 2, 2, 3, 4, 4), (2, 2, 2, 3)),
            expected_num_trainable_weights=3,
        )

    def test_matches_reference(self):
        poses, activations = random_grid(height=5, width=4)
        for size, strides in ((3, 1), (2, 2)):
            layer = ConvMatrixCaps(3, size, strides=strides, **ROUTING, **BETAS)
            out_poses, out_activations = layer((poses, activations))
            kernel, beta_u, beta_a = weights_of(layer)
            expected = reference_conv_caps(
                poses, activations, kernel, beta_u, beta_a, size, strides, **ROUTING
            )
            self.assertAllClose(out_poses, expected[0], atol=1e-4, rtol=1e-4)
            self.assertAllClose(out_activations, expected[1], atol=1e-5, rtol=1e-4)

    def test_gradients_match_reference(self):
        poses, activations = random_grid(batch=1, height=3, width=3, types=1)
        layer = ConvMatrixCaps(2, 2, strides=1, iterations=2, **ROUTING, **BETAS)
        layer.build((poses.shape, activations.shape))
        kernel, beta_u, beta_a = weights_of(layer)
        beta_u, beta_a = beta_u.astype("float32"), beta_a.astype("float32")
        rng = np.random.default_rng(1)
        pose_weights = rng.normal(size=(1, 2, 2, 2, 4, 4))
        activation_weights = rng.normal(size=(1, 2, 2, 2))
        kwargs = {"iterations": 2, **ROUTING}

        def tensor_loss(value):
            out = layer.stateless_call(
                [value, beta_u, beta_a], [], (poses, activations)
            )
            return keras.ops.sum(
                keras.ops.multiply(out[0][0], pose_weights)
            ) + keras.ops.sum(keras.ops.multiply(out[0][1], activation_weights))

        def numpy_loss(value):
            out = reference_conv_caps(
                poses, activations, value, beta_u, beta_a, 2, 1, **kwargs
            )
            return (out[0] * pose_weights).sum() + (out[1] * activation_weights).sum()

        # float32 autodiff against float64 finite differences of the reference.
        self.assertAllClose(
            autodiff_gradient(jitted(tensor_loss), kernel, "float32"),
            numeric_gradient64(numpy_loss, kernel),
            atol=2e-4,
            rtol=2e-3,
        )

    def test_invalid(self):
        with self.assertRaisesRegex(ValueError, "iterations"):
            ConvMatrixCaps(2, iterations=0)
        with self.assertRaisesRegex(ValueError, "epsilon"):
            ConvMatrixCaps(2, epsilon=0.0)
        with self.assertRaisesRegex(ValueError, "cost_normalization"):
            ConvMatrixCaps(2, cost_normalization=-1)
        with self.assertRaisesRegex(ValueError, "kernel_size"):
            ConvMatrixCaps(2, kernel_size=5)(random_grid(height=3, width=3))
        with self.assertRaisesRegex(ValueError, "poses"):
            ConvMatrixCaps(2)((np.zeros((2, 4, 4, 2, 16)), np.zeros((2, 4, 4, 2))))


class ClassMatrixCapsTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            ClassMatrixCaps,
            {"num_classes": 4, "iterations": 2},
            random_grid(height=3, width=3),
            expected_output_shape=((2, 4, 4, 4), (2, 4)),
            expected_num_trainable_weights=3,
        )

    def test_matches_reference(self):
        poses, activations = random_grid(height=3, width=2, types=2)
        for coords in (True, False):
            layer = ClassMatrixCaps(3, coordinate_addition=coords, **ROUTING, **BETAS)
            class_poses, scores = layer((poses, activations))
            kernel, beta_u, beta_a = weights_of(layer)
            expected = reference_class_caps(
                poses, activations, kernel, beta_u, beta_a, coords, **ROUTING
            )
            self.assertAllClose(class_poses, expected[0], atol=1e-4, rtol=1e-4)
            self.assertAllClose(scores, expected[1], atol=1e-5, rtol=1e-4)

    def test_gradients_match_reference(self):
        poses, activations = random_grid(batch=1, height=2, width=2, types=1)
        layer = ClassMatrixCaps(2, iterations=2, **ROUTING, **BETAS)
        layer.build((poses.shape, activations.shape))
        kernel, beta_u, beta_a = weights_of(layer)
        variables = [value.astype("float32") for value in (kernel, beta_u, beta_a)]
        score_weights = np.array([[1.0, -2.0]])
        kwargs = {"iterations": 2, **ROUTING}

        def tensor_loss(value):
            out = layer.stateless_call(variables, [], (value, activations))
            return keras.ops.sum(keras.ops.multiply(out[0][1], score_weights))

        def numpy_loss(value):
            out = reference_class_caps(
                value, activations, kernel, beta_u, beta_a, True, **kwargs
            )
            return (out[1] * score_weights).sum()

        self.assertAllClose(
            autodiff_gradient(jitted(tensor_loss), poses, "float32"),
            numeric_gradient64(numpy_loss, poses),
            atol=2e-4,
            rtol=2e-3,
        )

    def test_invalid(self):
        with self.assertRaisesRegex(TypeError, "coordinate_addition"):
            ClassMatrixCaps(3, coordinate_addition=1)
        with self.assertRaisesRegex(ValueError, "tuple"):
            ClassMatrixCaps(3)(np.zeros((2, 3, 3, 2, 4, 4), "float32"))


class EMRoutingLayerTest(TestCase):
    def test_layer(self):
        rng = np.random.default_rng(0)
        votes = rng.normal(size=(2, 3, 6, 4, 16)).astype("float32")
        activations = rng.uniform(size=(2, 3, 6)).astype("float32")
        layer = self.run_layer_test(
            EMRouting,
            {"iterations": 2, **ROUTING, **BETAS},
            (votes, activations),
            expected_output_shape=((2, 3, 4, 16), (2, 3, 4)),
            expected_num_trainable_weights=2,
        )
        beta_u, beta_a = weights_of(layer)
        expected = reference_em_routing(
            votes, activations, beta_u, beta_a, iterations=2, **ROUTING
        )
        self.assertAllClose(layer((votes, activations)), expected, atol=1e-4, rtol=1e-4)

    def test_invalid(self):
        with self.assertRaisesRegex(ValueError, "votes"):
            EMRouting()((np.zeros((2, 3, 6, 4)), np.zeros((2, 3, 6))))
