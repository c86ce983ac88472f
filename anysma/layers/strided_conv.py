"""`Conv2D`: Keras' `Conv2D` with a strided path that is fast on XLA CPU.

The class is named like the layer it replaces on purpose: `.keras` files
address weights by the snake-cased class name (`conv2d`, `conv2d_1`, ...),
so a model that swaps `keras.layers.Conv2D` for this layer still loads the
files saved before the swap.
"""

import keras

from anysma.api_export import anysma_export
from anysma.ops.convolution import space_to_depth_conv2d

IMPLEMENTATIONS = ("auto", "space_to_depth", "direct")
#: The backends on which `implementation="auto"` uses space-to-depth: XLA
#: on CPU computes the input gradient of a strided convolution much more
#: slowly than that of a stride-1 one; PyTorch and TensorFlow (oneDNN) do
#: not gain from the rewrite.
SPACE_TO_DEPTH_BACKENDS = ("jax",)


@anysma_export
class Conv2D(keras.layers.Conv2D):
    """A 2D convolution that can compute strides as space-to-depth + stride 1.

    A drop-in `keras.layers.Conv2D` (same arguments, same weights `kernel`
    `(kh, kw, in, filters)` and `bias`, so weights move freely between the
    two, also through `.keras` files) whose strided convolution can be
    computed as a stride-1 convolution with a `ceil(kh / sh) x
    ceil(kw / sw)` kernel on the input cut into `sh x sw` blocks (see
    `anysma.ops.convolution`). The outputs and gradients are those of
    `Conv2D` up to rounding. On the JAX backend on CPU this trains several
    times faster: XLA's gradient of a strided convolution with respect to
    its input is slow, and CapsNet's 9 x 9, stride-2 primary capsules
    dominate its training step there (about 10x more samples per second).
    On PyTorch and TensorFlow the direct convolution is faster, and for
    small kernels (5 x 5) the rewrite does not pay off on JAX either.

    Args:
        filters: The number of output channels.
        kernel_size: An int or a pair `(kh, kw)`.
        strides: An int or a pair `(sh, sw)`.
        padding: `"valid"` or `"same"`.
        implementation: `"auto"` (space-to-depth on the JAX backend, the
            plain strided convolution elsewhere), `"space_to_depth"` or
            `"direct"` (always `Conv2D`'s own). Space-to-depth needs
            channels-last data, no dilation, one group and known spatial
            sizes; otherwise the direct convolution is used.
        **kwargs: The other arguments of `keras.layers.Conv2D`, such as
            `activation`, `use_bias`, `kernel_initializer` and `name`.

    Input shape:
        `(batch, height, width, channels)` (channels last).

    Output shape:
        As `keras.layers.Conv2D`.

    Example:

    >>> import numpy as np
    >>> layer = Conv2D(8, 9, strides=2, implementation="space_to_depth")
    >>> tuple(layer(np.zeros((2, 20, 20, 3), dtype="float32")).shape)
    (2, 6, 6, 8)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        implementation="auto",
        **kwargs,
    ):
        super().__init__(
            filters, kernel_size, strides=strides, padding=padding, **kwargs
        )
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"`implementation` must be one of {list(IMPLEMENTATIONS)}. "
                f"Received: implementation={implementation!r}"
            )
        self.implementation = implementation

    def _uses_space_to_depth(self, inputs):
        if self.implementation == "direct" or (
            self.implementation == "auto"
            and keras.backend.backend() not in SPACE_TO_DEPTH_BACKENDS
        ):
            return False
        return (
            self.data_format == "channels_last"
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and max(self.strides) > 1
            and all(isinstance(size, int) for size in tuple(inputs.shape)[1:3])
        )

    def convolution_op(self, inputs, kernel):
        if self._uses_space_to_depth(inputs):
            return space_to_depth_conv2d(inputs, kernel, self.strides, self.padding)
        return super().convolution_op(inputs, kernel)

    def get_config(self):
        config = super().get_config()
        config["implementation"] = self.implementation
        return config
