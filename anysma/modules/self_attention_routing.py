"""Efficient-CapsNet's capsule layers: depthwise primary capsules and
self-attention routing (Mazzia et al., 2021).

`DepthwisePrimaryCapsules` turns feature maps into squashed primary capsules
with one depthwise convolution. `FullyConnectedCapsules` (the paper's
`FCCaps`) owns one matrix per input and output capsule plus the log priors
and routes the votes by self-attention. `SelfAttentionRouting` is the same
routing as a capsule module, for chains such as `InputModule` ->
`LinearTransformation(scope="local")` -> `SelfAttentionRouting`. The formulas
live in `anysma.ops.self_attention_routing` and `anysma.ops.squash`.
"""

import keras
from keras import ops

from anysma.api_export import anysma_export
from anysma.capsule import Module
from anysma.ops.self_attention_routing import capsule_votes
from anysma.ops.self_attention_routing import self_attention_routing
from anysma.ops.squash import efficient_squash
from anysma.utils.validation import check_int
from anysma.utils.validation import check_int_pair
from anysma.utils.validation import check_number


def _routed_shapes(predictions_shape):
    capsules_shape = tuple(predictions_shape[:2]) + tuple(predictions_shape[3:])
    return capsules_shape, tuple(predictions_shape[:2]), tuple(predictions_shape[:2])


@anysma_export
class DepthwisePrimaryCapsules(keras.layers.Layer):
    """Primary capsules from one depthwise convolution (Efficient-CapsNet).

    Each feature map is convolved with its own `kernel_size` filter
    (`padding="valid"`, a depthwise convolution with depth multiplier 1),
    the result is cut into `capsule_dim`-vectors (channels fastest, as a
    `Reshape`) and squashed with `anysma.ops.efficient_squash`. In the
    MNIST network the kernel covers the whole `9 x 9 x 128` map, so each of
    the 128 maps gives one value and the 16 primary capsules are 8-D.

    Args:
        capsule_dim: Dimension of the primary capsules.
        kernel_size: Size of the depthwise kernel (an int or a pair).
        strides: Strides of the convolution (an int or a pair).
        use_bias: Whether to add a bias per feature map.
        kernel_initializer: Initializer of the depthwise kernel.
        bias_initializer: Initializer of the bias.
        epsilon: Lower clamp of the squared norm in the squash.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Weights:
        `kernel`: `(*kernel_size, channels, 1)`; `bias`: `(channels,)`.

    Input shape:
        Feature maps `(batch, height, width, channels)`.

    Output shape:
        `(batch, height' * width' * channels / capsule_dim, capsule_dim)`.

    Example:

    >>> import numpy as np
    >>> layer = DepthwisePrimaryCapsules(capsule_dim=8, kernel_size=9)
    >>> tuple(layer(np.ones((2, 9, 9, 128), dtype="float32")).shape)
    (2, 16, 8)

    Reference:
        Mazzia, Salvetti and Chiaberge, "Efficient-CapsNet: capsule network
        with self-attention routing", Scientific Reports 11, 14634 (2021),
        Section "Primary capsules".
    """

    def __init__(
        self,
        capsule_dim,
        kernel_size,
        strides=1,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        epsilon=1e-7,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.capsule_dim = check_int(capsule_dim, "capsule_dim", minimum=1)
        self.kernel_size = check_int_pair(kernel_size, "kernel_size")
        self.strides = check_int_pair(strides, "strides")
        if not isinstance(use_bias, bool):
            raise TypeError(
                f"`use_bias` must be a bool. Received: use_bias={use_bias!r}"
            )
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.epsilon = check_number(epsilon, "epsilon", minimum=0)

    def _map_size(self, input_shape):
        sizes = []
        for dim, kernel, step in zip(input_shape[1:3], self.kernel_size, self.strides):
            sizes.append(None if dim is None else (dim - kernel) // step + 1)
        return sizes

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "DepthwisePrimaryCapsules expects feature maps (batch, height, "
                "width, channels) with known channels. Received: input shape "
                f"{tuple(input_shape)}"
            )
        height, width = self._map_size(input_shape)
        if height is None or width is None:
            raise ValueError(
                "DepthwisePrimaryCapsules needs a known height and width to "
                f"count the capsules. Received: input shape {tuple(input_shape)}"
            )
        if height < 1 or width < 1:
            raise ValueError(
                f"The feature maps are smaller than kernel_size={self.kernel_size}. "
                f"Received: input shape {tuple(input_shape)}"
            )
        channels = input_shape[-1]
        values = height * width * channels
        if values % self.capsule_dim:
            raise ValueError(
                f"The convolution gives {height} x {width} x {channels} = "
                f"{values} values, not a multiple of capsule_dim="
                f"{self.capsule_dim}. Received: input shape {tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=self.kernel_size + (channels, 1),
            initializer=self.kernel_initializer,
        )
        self.bias = (
            self.add_weight(
                name="bias", shape=(channels,), initializer=self.bias_initializer
            )
            if self.use_bias
            else None
        )

    def call(self, inputs):
        kernel = ops.cast(self.kernel, inputs.dtype)
        if tuple(inputs.shape[1:3]) == self.kernel_size:
            # The kernel covers the whole map (the paper's network): the
            # convolution is a weighted sum per map, which XLA on CPU
            # computes several times faster than a grouped convolution.
            features = ops.einsum("bhwc,hwc->bc", inputs, kernel[..., 0])
        else:
            features = ops.depthwise_conv(
                inputs, kernel, strides=self.strides, padding="valid"
            )
        if self.bias is not None:
            features = features + ops.cast(self.bias, features.dtype)
        capsules = ops.reshape(features, (ops.shape(inputs)[0], -1, self.capsule_dim))
        return efficient_squash(capsules, axis=-1, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        height, width = self._map_size(input_shape)
        count = None
        if height is not None and width is not None and input_shape[-1] is not None:
            count = height * width * input_shape[-1] // self.capsule_dim
        return (input_shape[0], count, self.capsule_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "capsule_dim": self.capsule_dim,
                "kernel_size": list(self.kernel_size),
                "strides": list(self.strides),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "epsilon": self.epsilon,
            }
        )
        return config


@anysma_export
class FullyConnectedCapsules(keras.layers.Layer):
    """A fully connected capsule layer with self-attention routing (`FCCaps`).

    The votes of input capsule `c` for output capsule `k` are
    `u[b, k, c] = W[k, c]^T x[b, c]`; they are routed in one pass by
    `anysma.ops.self_attention_routing` with the learned log priors
    `p[k, c]`: `s_k = sum_c u[k, c] (softmax_k(a[:, c]) + p[k, c])` with
    `a[k, c] = sum_c' <u[k, c], u[k, c']> / sqrt(capsule_dim)`, and
    `v_k = efficient_squash(s_k)`. The lengths `||v_k||` are the class
    probabilities of an Efficient-CapsNet.

    Args:
        capsules: Number of output capsules (classes).
        capsule_dim: Dimension of the output capsules.
        kernel_initializer: Initializer of `W` (`"he_normal"` as in the
            official implementation).
        log_prior_initializer: Initializer of the log priors.
        kernel_regularizer: Regularizer of `W`.
        epsilon: Lower clamp of the squared norm in the squash.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Weights:
        `kernel`: `(capsules, input capsules, input dim, capsule_dim)`;
        `log_priors`: `(capsules, input capsules)`.

    Input shape:
        Capsules `(batch, input capsules, input dim)`.

    Output shape:
        A tuple `(outputs, similarities, lengths)` as for `DynamicRouting`:
        `(batch, capsules, capsule_dim)`, `(batch, capsules)` and
        `(batch, capsules)`.

    Example:

    >>> import numpy as np
    >>> outputs, similarities, lengths = FullyConnectedCapsules(10, 16)(
    ...     np.random.rand(2, 16, 8).astype("float32"))
    >>> tuple(outputs.shape), tuple(lengths.shape)
    ((2, 10, 16), (2, 10))

    Reference:
        Mazzia, Salvetti and Chiaberge, "Efficient-CapsNet: capsule network
        with self-attention routing", Scientific Reports 11, 14634 (2021),
        section "Self-attention routing".
    """

    def __init__(
        self,
        capsules,
        capsule_dim,
        kernel_initializer="he_normal",
        log_prior_initializer="zeros",
        kernel_regularizer=None,
        epsilon=1e-7,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.capsules = check_int(capsules, "capsules", minimum=1)
        self.capsule_dim = check_int(capsule_dim, "capsule_dim", minimum=1)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.log_prior_initializer = keras.initializers.get(log_prior_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.epsilon = check_number(epsilon, "epsilon", minimum=0)

    def build(self, input_shape):
        if len(input_shape) != 3 or None in tuple(input_shape[1:]):
            raise ValueError(
                "FullyConnectedCapsules expects capsules (batch, input capsules, "
                "input dim) with known sizes, e.g. the output of "
                f"DepthwisePrimaryCapsules. Received: input shape {tuple(input_shape)}"
            )
        _, channels, input_dim = input_shape
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.capsules, channels, input_dim, self.capsule_dim),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.log_priors = self.add_weight(
            name="log_priors",
            shape=(self.capsules, channels),
            initializer=self.log_prior_initializer,
        )

    def call(self, inputs):
        votes = capsule_votes(inputs, ops.cast(self.kernel, inputs.dtype))
        return self_attention_routing(
            votes, ops.cast(self.log_priors, votes.dtype), epsilon=self.epsilon
        )

    def compute_output_shape(self, input_shape):
        return _routed_shapes(
            (input_shape[0], self.capsules, input_shape[1], self.capsule_dim)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "capsules": self.capsules,
                "capsule_dim": self.capsule_dim,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "log_prior_initializer": keras.initializers.serialize(
                    self.log_prior_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "epsilon": self.epsilon,
            }
        )
        return config


@anysma_export
class SelfAttentionRouting(Module):
    """Self-attention routing of prediction vectors, as a capsule module.

    The module counterpart of `FullyConnectedCapsules` for capsule chains:
    it takes the prediction vectors `u[b, k, c]` of `InputModule` +
    `LinearTransformation(scope="local")` and the logits of `InputModule`
    (use `dissimilarity_initializer="zeros", trainable=False`; they are
    added to the log priors), and routes them with
    `anysma.ops.self_attention_routing`. It owns the learned log priors
    `p[k, c]`. Like `DynamicRouting`, large values mean good matches.

    Args:
        log_prior_initializer: Initializer of the log priors.
        epsilon: Lower clamp of the squared norm in the squash.
        **kwargs: Base module arguments, such as `name`.

    Weights:
        `log_priors`: `(capsules, channels)`.

    Input shape:
        A tuple `(predictions, logits)` of shapes
        `(batch, capsules, channels, *atom)` and `(batch, capsules, channels)`.

    Output shape:
        A tuple `(outputs, similarities, lengths)`: `(batch, capsules,
        *atom)`, `(batch, capsules)` and `(batch, capsules)`.

    Example:

    >>> import numpy as np
    >>> predictions = np.random.rand(2, 10, 16, 16).astype("float32")
    >>> logits = np.zeros((2, 10, 16), dtype="float32")
    >>> outputs, similarities, lengths = SelfAttentionRouting()(
    ...     (predictions, logits))
    >>> tuple(outputs.shape), tuple(lengths.shape)
    ((2, 10, 16), (2, 10))

    Reference:
        Mazzia, Salvetti and Chiaberge, "Efficient-CapsNet: capsule network
        with self-attention routing", Scientific Reports 11, 14634 (2021),
        section "Self-attention routing".
    """

    def __init__(self, log_prior_initializer="zeros", epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.log_prior_initializer = keras.initializers.get(log_prior_initializer)
        self.epsilon = check_number(epsilon, "epsilon", minimum=0)

    def build(self, input_shape):
        predictions_shape, logits_shape = self._split_signal_shapes(input_shape)
        if len(predictions_shape) < 4 or len(logits_shape) != 3:
            raise ValueError(
                "SelfAttentionRouting expects predictions (batch, capsules, "
                "channels, *atom) and logits (batch, capsules, channels), e.g. "
                "from InputModule + LinearTransformation. Received: "
                f"predictions shape {predictions_shape}, logits shape "
                f"{logits_shape}"
            )
        if None in predictions_shape[1:3]:
            raise ValueError(
                "SelfAttentionRouting needs known capsules and channels (axes "
                "1 and 2) for its log priors. Received: predictions shape "
                f"{predictions_shape}"
            )
        if any(
            a is not None and b is not None and a != b
            for a, b in zip(predictions_shape[1:3], logits_shape[1:3])
        ):
            raise ValueError(
                "SelfAttentionRouting needs one logit per capsule and channel: "
                "the predictions and logits must agree on axes 1 and 2. "
                f"Received: predictions shape {predictions_shape}, logits "
                f"shape {logits_shape}"
            )
        self.log_priors = self.add_weight(
            name="log_priors",
            shape=tuple(predictions_shape[1:3]),
            initializer=self.log_prior_initializer,
        )

    def call(self, inputs):
        self._check_signal(inputs)
        predictions, logits = inputs
        priors = ops.cast(self.log_priors, predictions.dtype) + ops.cast(
            logits, predictions.dtype
        )
        return self_attention_routing(predictions, priors, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        predictions_shape, _ = self._split_signal_shapes(input_shape)
        return _routed_shapes(predictions_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "log_prior_initializer": keras.initializers.serialize(
                    self.log_prior_initializer
                ),
                "epsilon": self.epsilon,
            }
        )
        return config


__all__ = [
    "DepthwisePrimaryCapsules",
    "FullyConnectedCapsules",
    "SelfAttentionRouting",
]
