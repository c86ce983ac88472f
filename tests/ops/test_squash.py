import keras
import numpy as np
from keras import ops

from anysma.ops.squash import dynamic_routing_squash
from anysma.ops.squash import squash
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient
from anysma.testing.gradients import numeric_gradient


def reference_squash(vectors, axis=-1, epsilon=1e-7):
    vectors = np.asarray(vectors, dtype="float64")
    squared_norm = np.sum(vectors**2, axis=axis, keepdims=True)
    norm = np.sqrt(np.maximum(squared_norm, epsilon))
    return norm / (1 + squared_norm) * vectors


class SquashTest(TestCase):
    def test_matches_reference(self):
        vectors = np.random.RandomState(0).normal(size=(3, 5, 7)) * 2
        self.assertAllClose(squash(vectors), reference_squash(vectors), atol=1e-6)

    def test_lengths_below_one_and_direction_kept(self):
        vectors = np.array([[3.0, 4.0], [0.3, 0.4], [300.0, 400.0]])
        squashed = keras.ops.convert_to_numpy(squash(vectors))
        self.assertAllClose(
            np.linalg.norm(squashed, axis=-1), [25 / 26, 0.25 / 1.25, 1.0], atol=1e-5
        )
        self.assertAllClose(
            squashed / np.linalg.norm(squashed, axis=-1, keepdims=True),
            vectors / np.linalg.norm(vectors, axis=-1, keepdims=True),
            atol=1e-6,
        )

    def test_axis_and_multiple_axes(self):
        vectors = np.random.RandomState(1).normal(size=(2, 4, 3, 5))
        self.assertAllClose(
            squash(vectors, axis=1), reference_squash(vectors, axis=1), atol=1e-6
        )
        self.assertAllClose(
            squash(vectors, axis=(2, 3)),
            reference_squash(vectors, axis=(2, 3)),
            atol=1e-6,
        )

    def test_zero_vectors_and_epsilon(self):
        self.assertAllClose(squash(np.zeros((2, 3))), np.zeros((2, 3)))
        tiny = np.full((1, 2), 1e-5)
        self.assertAllClose(
            squash(tiny, epsilon=1e-2), reference_squash(tiny, epsilon=1e-2)
        )
        self.assertAllClose(squash(tiny, epsilon=0), reference_squash(tiny, epsilon=0))

    def test_gradient_at_zero_is_finite(self):
        # Near 0, squash(s) = sqrt(epsilon) * s: the Jacobian is sqrt(eps) * I.
        gradient = autodiff_gradient(
            lambda value: ops.sum(squash(value, epsilon=1e-6)), np.zeros((2, 4))
        )
        self.assertAllClose(gradient, np.full((2, 4), 1e-3), atol=1e-7, rtol=1e-4)
        gradient = autodiff_gradient(
            lambda value: ops.sum(squash(value, epsilon=0)), np.zeros((2, 4))
        )
        self.assertAllFinite(gradient)

    def test_gradient_matches_finite_differences(self):
        point = np.random.RandomState(2).normal(size=(2, 3))
        weights = ops.convert_to_tensor(np.random.RandomState(3).normal(size=(2, 3)))

        def function(value):
            return squash(value) * ops.cast(weights, value.dtype)

        self.assertAllClose(
            autodiff_gradient(function, point),
            numeric_gradient(function, point),
            atol=1e-3,
            rtol=1e-3,
        )

    def test_float16_and_integer_inputs(self):
        vectors = np.random.RandomState(4).normal(size=(3, 4))
        result = squash(vectors.astype("float16"))
        self.assertEqual(keras.backend.standardize_dtype(result.dtype), "float16")
        self.assertAllClose(result, reference_squash(vectors), atol=2e-3, rtol=2e-3)
        integers = squash(np.array([[3, 4]], dtype="int32"))
        self.assertEqual(
            keras.backend.standardize_dtype(integers.dtype), keras.config.floatx()
        )

    def test_alias(self):
        self.assertIs(dynamic_routing_squash, squash)

    def test_invalid_epsilon(self):
        with self.assertRaisesRegex(ValueError, "`epsilon` must be a number >= 0"):
            squash(np.ones((2, 3)), epsilon=-1.0)

    def test_inside_a_compiled_model_that_saves_and_loads(self):
        inputs = keras.Input(shape=(4, 3))
        model = keras.Model(inputs, keras.layers.Lambda(squash)(inputs))
        model.compile(jit_compile=keras.backend.backend() != "torch")
        vectors = np.random.RandomState(5).normal(size=(2, 4, 3)).astype("float32")
        self.assertAllClose(
            model.predict(vectors, verbose=0), reference_squash(vectors), atol=1e-6
        )
        # `squash` is registered: the `Lambda` loads without `custom_objects`
        # and without `safe_mode=False`.
        self.run_model_saving_test(model, vectors)
