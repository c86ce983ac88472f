"""Strided convolutions rewritten as stride-1 convolutions (space-to-depth).

A stride-`s` convolution with a `k x k` kernel equals a stride-1
convolution with a `ceil(k / s) x ceil(k / s)` kernel on the input cut into
`s x s` blocks stacked on the channel axis ("space-to-depth"): output pixel
`i` reads input rows `s i + u`, `u < k`, and with `u = s a + p` these are
row `i + a` of block row `p`. The kernel is zero-padded to a multiple of
`s` and re-arranged accordingly, so the results are those of the strided
convolution (up to the order of the floating-point sums).

This matters for XLA on CPU (the JAX backend), where the gradient with
respect to the input of a strided convolution is much slower than that of
a stride-1 convolution: for the 9 x 9, stride-2 primary-capsule convolution
of CapsNet, a whole training step becomes several times faster.
"""

import math

from keras import ops

from anysma.ops._validation import check_rank
from anysma.utils.validation import check_int_pair


def _same_padding(size, kernel, stride):
    """TensorFlow's 'same' padding `(before, after)` of one spatial axis."""
    output = -(-size // stride)
    total = max((output - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def space_to_depth_kernel(kernel, strides):
    """Re-arrange a `(kh, kw, cin, cout)` kernel for `space_to_depth_conv2d`.

    Args:
        kernel: The kernel of the strided convolution, `(kh, kw, cin, cout)`.
        strides: `(sh, sw)`.

    Returns:
        The kernel of the stride-1 convolution on the blocked input,
        `(ceil(kh / sh), ceil(kw / sw), sh * sw * cin, cout)`.
    """
    strides = check_int_pair(strides, "strides")
    kernel = ops.convert_to_tensor(kernel)
    check_rank(kernel, "kernel", 4, " (kernel_height, kernel_width, in, out)")
    kernel_height, kernel_width, channels_in, channels_out = kernel.shape
    blocks = (
        math.ceil(kernel_height / strides[0]),
        math.ceil(kernel_width / strides[1]),
    )
    # Zero taps past the kernel read input pixels that no output needs.
    kernel = ops.pad(
        kernel,
        [
            [0, blocks[0] * strides[0] - kernel_height],
            [0, blocks[1] * strides[1] - kernel_width],
            [0, 0],
            [0, 0],
        ],
    )
    kernel = ops.reshape(
        kernel,
        (blocks[0], strides[0], blocks[1], strides[1], channels_in, channels_out),
    )
    kernel = ops.transpose(kernel, (0, 2, 1, 3, 4, 5))
    return ops.reshape(
        kernel,
        (blocks[0], blocks[1], strides[0] * strides[1] * channels_in, channels_out),
    )


def space_to_depth(inputs, block_size):
    """Stack `(bh, bw)` blocks of a `(B, H, W, C)` map on the channel axis.

    `H` and `W` must be multiples of the block size. The channels of the
    result are ordered `(row in block, column in block, channel)`.

    Args:
        inputs: `(B, H, W, C)`, channels last.
        block_size: An int or a pair `(bh, bw)`.

    Returns:
        `(B, H / bh, W / bw, bh * bw * C)`.
    """
    block_height, block_width = check_int_pair(block_size, "block_size")
    inputs = ops.convert_to_tensor(inputs)
    check_rank(inputs, "inputs", 4, " (batch, height, width, channels)")
    _, height, width, channels = inputs.shape
    if height % block_height or width % block_width:
        raise ValueError(
            "The height and width of `inputs` must be multiples of the block "
            f"size {(block_height, block_width)}. Received: "
            f"inputs.shape={tuple(inputs.shape)}"
        )
    rows, columns = height // block_height, width // block_width
    blocks = ops.reshape(
        inputs, (-1, rows, block_height, columns, block_width, channels)
    )
    blocks = ops.transpose(blocks, (0, 1, 3, 2, 4, 5))
    return ops.reshape(
        blocks, (-1, rows, columns, block_height * block_width * channels)
    )


def space_to_depth_conv2d(inputs, kernel, strides, padding="valid"):
    """A strided 2D convolution computed as space-to-depth + stride-1 conv.

    Equals `keras.ops.conv(inputs, kernel, strides, padding)` (channels last,
    no dilation) up to rounding; see the module docstring.

    Args:
        inputs: `(B, H, W, C_in)` with known `H` and `W`.
        kernel: `(kh, kw, C_in, C_out)`.
        strides: An int or a pair `(sh, sw)`.
        padding: `"valid"` or `"same"` (TensorFlow's rule: the extra padding
            goes to the bottom and right).

    Returns:
        `(B, H_out, W_out, C_out)`, as the strided convolution.

    Example:

    >>> import numpy as np
    >>> images = np.random.rand(2, 28, 28, 3).astype("float32")
    >>> kernel = np.random.rand(9, 9, 3, 8).astype("float32")
    >>> tuple(space_to_depth_conv2d(images, kernel, 2).shape)
    (2, 10, 10, 8)
    """
    strides = check_int_pair(strides, "strides")
    if padding not in ("valid", "same"):
        raise ValueError(
            f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}"
        )
    inputs = ops.convert_to_tensor(inputs)
    kernel = ops.convert_to_tensor(kernel)
    check_rank(inputs, "inputs", 4, " (batch, height, width, channels)")
    check_rank(kernel, "kernel", 4, " (kernel_height, kernel_width, in, out)")
    sizes = tuple(inputs.shape[1:3])
    if any(not isinstance(size, int) for size in sizes):
        raise ValueError(
            "`space_to_depth_conv2d` needs known spatial sizes. "
            f"Received: inputs.shape={tuple(inputs.shape)}"
        )
    kernel_sizes = tuple(kernel.shape[:2])
    pads = []
    for size, kernel_size, stride in zip(sizes, kernel_sizes, strides):
        before, after = (
            _same_padding(size, kernel_size, stride) if padding == "same" else (0, 0)
        )
        padded = size + before + after
        if padded < kernel_size:
            raise ValueError(
                f"The input of spatial size {sizes} is smaller than the kernel "
                f"{kernel_sizes}. Received: inputs.shape={tuple(inputs.shape)}"
            )
        # Pad to the extent of the zero-padded kernel, then cut to whole
        # blocks: exactly the rows and columns the outputs read.
        after += math.ceil(kernel_size / stride) * stride - kernel_size
        total = size + before + after
        pads.append((before, after, total - total % stride))
    if any(before or after for before, after, _ in pads):
        inputs = ops.pad(inputs, [[0, 0], list(pads[0][:2]), list(pads[1][:2]), [0, 0]])
    if (pads[0][2], pads[1][2]) != tuple(inputs.shape[1:3]):
        inputs = inputs[:, : pads[0][2], : pads[1][2], :]
    blocked_inputs = space_to_depth(inputs, strides)
    blocked_kernel = ops.cast(
        space_to_depth_kernel(kernel, strides), blocked_inputs.dtype
    )
    return ops.conv(blocked_inputs, blocked_kernel, strides=1, padding="valid")
