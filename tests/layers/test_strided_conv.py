import os
import tempfile
from unittest import mock

import keras
import numpy as np
import pytest

from anysma.layers import Conv2D
from anysma.layers import strided_conv
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


CONFIGS = [
    # (input shape without batch, Conv2D arguments)
    ((20, 20, 3), {"filters": 4, "kernel_size": 9, "strides": 2}),
    ((15, 14, 2), {"filters": 3, "kernel_size": 5, "strides": 2, "padding": "same"}),
    ((13, 17, 2), {"filters": 3, "kernel_size": (3, 4), "strides": (3, 2)}),
    ((12, 12, 2), {"filters": 2, "kernel_size": 3, "strides": 1}),
]


def twins(input_shape, arguments, seed=0):
    """A `keras.layers.Conv2D` and a space-to-depth `Conv2D` with its weights."""
    reference = keras.layers.Conv2D(**arguments, bias_initializer="glorot_uniform")
    reference.build((None,) + input_shape)
    fast = Conv2D(**arguments, implementation="space_to_depth")
    fast.build((None,) + input_shape)
    fast.set_weights(reference.get_weights())
    return reference, fast


class SpaceToDepthConv2DTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            Conv2D,
            {
                "filters": 4,
                "kernel_size": 5,
                "strides": 2,
                "activation": "relu",
                "implementation": "space_to_depth",
            },
            random((2, 11, 11, 3)),
            expected_output_shape=(2, 4, 4, 4),
            expected_num_trainable_weights=2,
        )

    def test_equals_keras_conv2d(self):
        for index, (input_shape, arguments) in enumerate(CONFIGS):
            inputs = random((2,) + input_shape, index)
            reference, fast = twins(input_shape, arguments)
            with self.subTest(arguments=arguments):
                self.assertAllClose(
                    fast(inputs), reference(inputs), atol=2e-5, rtol=2e-5
                )

    def assert_same_gradients(self, input_shape, arguments, seed):
        inputs = random((2,) + input_shape, seed)
        reference, fast = twins(input_shape, arguments)
        weights = keras.ops.convert_to_tensor(
            random(tuple(reference(inputs).shape), seed + 10)
        )
        kernel = reference.get_weights()[0]

        def weighted_output(layer):
            return lambda x: layer(x) * weights

        def weighted_convolution(layer):
            # The convolution of `inputs` by a given kernel, through the op
            # the layer uses.
            tensor = keras.ops.convert_to_tensor(inputs)
            return lambda k: layer.convolution_op(tensor, k) * weights

        with self.subTest(arguments=arguments, wrt="inputs"):
            self.assertAllClose(
                autodiff_gradient(weighted_output(fast), inputs),
                autodiff_gradient(weighted_output(reference), inputs),
                atol=1e-4,
                rtol=1e-4,
            )
        with self.subTest(arguments=arguments, wrt="kernel"):
            self.assertAllClose(
                autodiff_gradient(weighted_convolution(fast), kernel),
                autodiff_gradient(weighted_convolution(reference), kernel),
                atol=1e-4,
                rtol=1e-4,
            )

    @pytest.mark.requires_trainable_backend
    def test_gradients_equal_those_of_keras_conv2d(self):
        for index, (input_shape, arguments) in enumerate(CONFIGS[:3]):
            self.assert_same_gradients(input_shape, arguments, index)

    def test_auto_uses_space_to_depth_on_jax_only(self):
        layer = Conv2D(2, 3, strides=2)
        inputs = random((1, 9, 9, 1))
        with mock.patch.object(
            strided_conv,
            "space_to_depth_conv2d",
            wraps=strided_conv.space_to_depth_conv2d,
        ) as rewritten:
            layer(inputs)
            Conv2D(2, 3, strides=2, implementation="direct")(inputs)
            Conv2D(2, 3, strides=2, implementation="space_to_depth")(inputs)
        expected_calls = 2 if keras.backend.backend() == "jax" else 1
        self.assertEqual(rewritten.call_count, expected_calls)

    def test_loads_weights_of_keras_conv2d(self):
        # `.keras` files address weights by class name: anysma's `Conv2D`
        # reads a model saved with Keras' `Conv2D`.
        inputs = keras.Input((12, 12, 2))
        reference = keras.Model(
            inputs, keras.layers.Conv2D(3, 5, strides=2, name="conv")(inputs)
        )
        rewritten = keras.Model(
            inputs,
            Conv2D(3, 5, strides=2, implementation="space_to_depth", name="conv")(
                inputs
            ),
        )
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "reference.weights.h5")
            reference.save_weights(path)
            rewritten.load_weights(path)
        data = random((2, 12, 12, 2))
        self.assertAllClose(
            rewritten.predict(data, verbose=0),
            reference.predict(data, verbose=0),
            atol=2e-5,
        )

    def test_invalid_implementation(self):
        with self.assertRaisesRegex(
            ValueError, r"`implementation` must be one of.*Received: implementation="
        ):
            Conv2D(2, 3, implementation="fast")
