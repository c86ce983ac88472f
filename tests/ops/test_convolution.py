import numpy as np

from anysma.ops import convolution
from anysma.testing import TestCase


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def np_conv2d(inputs, kernel, strides, padding):
    """Strided cross-correlation with TensorFlow's 'same' rule, in float64."""
    inputs = np.asarray(inputs, "float64")
    kernel = np.asarray(kernel, "float64")
    kernel_height, kernel_width = kernel.shape[:2]
    pads = []
    for size, kernel_size, stride in zip(
        inputs.shape[1:3], (kernel_height, kernel_width), strides
    ):
        if padding == "same":
            output = -(-size // stride)
            total = max((output - 1) * stride + kernel_size - size, 0)
            pads.append((total // 2, total - total // 2))
        else:
            pads.append((0, 0))
    inputs = np.pad(inputs, [(0, 0), pads[0], pads[1], (0, 0)])
    height = (inputs.shape[1] - kernel_height) // strides[0] + 1
    width = (inputs.shape[2] - kernel_width) // strides[1] + 1
    outputs = np.zeros((inputs.shape[0], height, width, kernel.shape[-1]))
    for i in range(height):
        for j in range(width):
            patch = inputs[
                :,
                i * strides[0] : i * strides[0] + kernel_height,
                j * strides[1] : j * strides[1] + kernel_width,
            ]
            outputs[:, i, j] = np.einsum("bhwc,hwco->bo", patch, kernel)
    return outputs


CASES = [
    # (input height, width, kernel size, strides, padding)
    (20, 20, (9, 9), (2, 2), "valid"),  # CapsNet's primary capsules (smaller)
    (21, 18, (9, 9), (2, 2), "valid"),
    (9, 9, (9, 9), (2, 2), "valid"),
    (14, 15, (5, 5), (2, 2), "same"),
    (13, 16, (3, 4), (3, 2), "valid"),
    (10, 11, (3, 3), (3, 3), "same"),
    (8, 8, (2, 2), (2, 2), "valid"),
]


class SpaceToDepthConvTest(TestCase):
    def test_equals_the_strided_convolution(self):
        for index, (height, width, kernel_size, strides, padding) in enumerate(CASES):
            inputs = random((2, height, width, 3), index)
            kernel = random(kernel_size + (3, 4), index + 100)
            with self.subTest(case=CASES[index]):
                self.assertAllClose(
                    convolution.space_to_depth_conv2d(inputs, kernel, strides, padding),
                    np_conv2d(inputs, kernel, strides, padding),
                    atol=2e-5,
                    rtol=2e-5,
                )

    def test_space_to_depth_layout(self):
        inputs = random((2, 4, 6, 3))
        blocked = np.asarray(convolution.space_to_depth(inputs, (2, 3)))
        self.assertEqual(blocked.shape, (2, 2, 2, 18))
        # Channel (p, q, c) of block (i, j) is pixel (2 i + p, 3 j + q, c).
        expected = np.stack(
            [
                inputs[:, p::2, q::3, c]
                for p in range(2)
                for q in range(3)
                for c in range(3)
            ],
            axis=-1,
        )
        self.assertAllClose(blocked, expected)

    def test_rearranged_kernel_shape(self):
        kernel = random((9, 9, 3, 4))
        rearranged = convolution.space_to_depth_kernel(kernel, 2)
        self.assertShapeEqual(rearranged, (5, 5, 12, 4))
        # Taps past the original kernel are zero: (a, p) = (4, 1) is row 9.
        weights = np.asarray(rearranged).reshape(5, 5, 2, 2, 3, 4)
        self.assertAllClose(weights[4, :, 1], np.zeros((5, 2, 3, 4)))
        self.assertAllClose(weights[1, 2, 0, 1], kernel[2, 5])

    def test_invalid_arguments(self):
        inputs, kernel = random((1, 8, 8, 2)), random((3, 3, 2, 1))
        with self.assertRaisesRegex(ValueError, r"Received: padding='causal'"):
            convolution.space_to_depth_conv2d(inputs, kernel, 2, "causal")
        with self.assertRaisesRegex(ValueError, r"Received: strides=0"):
            convolution.space_to_depth_conv2d(inputs, kernel, 0)
        with self.assertRaisesRegex(ValueError, r"smaller than the kernel"):
            convolution.space_to_depth_conv2d(inputs[:, :2], kernel, 2)
        with self.assertRaisesRegex(ValueError, r"`kernel` must have rank 4"):
            convolution.space_to_depth_conv2d(inputs, kernel[0], 2)
        with self.assertRaisesRegex(ValueError, r"multiples of the block size"):
            convolution.space_to_depth(inputs[:, :7], 2)
