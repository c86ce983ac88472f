"""Capsule modules: routing over the channels.

Routing comes after measuring: for every prototype it contracts the channel
axis (the input vectors `i` routed to the prototype), turning signals
`(batch, prototypes, channels, *atom)` and dissimilarities
`(batch, prototypes, channels)` into `(batch, prototypes, *atom)` and
`(batch, prototypes)`. Signals shared by all prototypes,
`(batch, 1, channels, *atom)` (see `InputModule(sparse_signal=True)`), are
contracted without being copied. The formulas live in `anysma.ops.routing`; these
modules own the weights and check the shapes.
"""

import keras
from keras import ops

from anysma import constraints
from anysma import probability_transformations
from anysma import regularizers
from anysma.api_export import anysma_export
from anysma.capsule import Module
from anysma.capsule import check_norm_axis
from anysma.ops.routing import gibbs_routing
from anysma.ops.routing import routing


def check_routing_shapes(module, input_shape):
    """Check signals `(B, P, C, *A)` and dissimilarities `(B, P, C)`."""
    signals_shape, dissimilarities_shape = module._split_signal_shapes(input_shape)
    if len(signals_shape) < 3 or len(dissimilarities_shape) != 3:
        raise ValueError(
            f"{type(module).__name__} expects signals (batch, prototypes, "
            "channels, *atom) and dissimilarities (batch, prototypes, "
            "channels), i.e. the output of a measuring module. Received: "
            f"signals shape {signals_shape}, dissimilarities shape "
            f"{dissimilarities_shape}"
        )
    for axis, meaning in ((1, "prototypes"), (2, "channels")):
        signals_dim, dissimilarities_dim = (
            signals_shape[axis],
            dissimilarities_shape[axis],
        )
        # Shared signals (axis 1 of size 1) serve every prototype.
        if (
            signals_dim is not None
            and dissimilarities_dim is not None
            and signals_dim != dissimilarities_dim
            and not (axis == 1 and signals_dim == 1)
        ):
            raise ValueError(
                f"{type(module).__name__} needs the same number of {meaning} "
                f"(axis {axis}) in signals and dissimilarities; maybe a "
                "measuring module is missing before it. Received: signals "
                f"shape {signals_shape}, dissimilarities shape "
                f"{dissimilarities_shape}"
            )
    return signals_shape, dissimilarities_shape


def _routed_shapes(module, input_shape):
    signals_shape, dissimilarities_shape = module._split_signal_shapes(input_shape)
    return (
        dissimilarities_shape[:2] + signals_shape[3:],
        dissimilarities_shape[:2],
    )


@anysma_export
class GibbsRouting(Module):
    """The routing of LVQ-capsules: a Gibbs-weighted sum over the channels.

    For prototype `p` and channel `c` the routing probabilities are
    `q[b, p, c] = softmax(-beta_p d[b, p, c])` (normalized over `norm_axis`,
    computed with the maximum subtracted), and the outputs are
    `signals[b, p] = sum_c q[b, p, c] x[b, p, c]` and
    `dissimilarities[b, p] = sum_c q[b, p, c] d[b, p, c]`. With
    `beta = 1` fixed (`trainable=False`, as in all original examples) this
    is Eq. (3) of the paper.

    Args:
        beta_initializer: Initializer of the inverse temperatures `beta`.
        beta_regularizer: Regularizer of `beta`.
        beta_constraint: Constraint of `beta` (`"NonNeg"`).
        diss_regularizer: Regularizer applied to the output dissimilarities
            (e.g. `anysma.regularizers.max_distance()`), added with
            `add_loss`.
        signal_regularizer: Regularizer applied to the output signals.
        norm_axis: The axis of the softmax: `"channels"` (or 2, -1; the
            paper's routing) or `"capsules"` (or 1; over the prototypes).
        **kwargs: Base module arguments, such as `name`, `trainable` and
            `dtype`.

    Weights:
        `beta`: `(prototypes, 1)`, one inverse temperature per prototype.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, prototypes, channels, *atom)` (or `(batch, 1, channels,
        *atom)`: shared signals) and `(batch, prototypes, channels)`.

    Output shape:
        `((batch, prototypes, *atom), (batch, prototypes))`.

    Example:

    >>> import numpy as np
    >>> signals = np.random.rand(2, 3, 5, 4).astype("float32")
    >>> dissimilarities = np.random.rand(2, 3, 5).astype("float32")
    >>> routed = GibbsRouting()((signals, dissimilarities))
    >>> tuple(routed[0].shape), tuple(routed[1].shape)
    ((2, 3, 4), (2, 3))

    Reference:
        Saralajew, Nooka, Kaden and Villmann, "Learning Vector Quantization
        Capsules", Machine Learning Reports 02/2018, Algorithm 1 and Eq. (3).
    """

    def __init__(
        self,
        beta_initializer="ones",
        beta_regularizer=None,
        beta_constraint="NonNeg",
        diss_regularizer=None,
        signal_regularizer=None,
        norm_axis="channels",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.diss_regularizer = regularizers.get(diss_regularizer)
        self.signal_regularizer = regularizers.get(signal_regularizer)
        self.norm_axis = check_norm_axis(norm_axis)

    def build(self, input_shape):
        signals_shape, dissimilarities_shape = check_routing_shapes(self, input_shape)
        proto_number = dissimilarities_shape[1] or signals_shape[1]
        if proto_number is None:
            raise ValueError(
                "GibbsRouting needs a known number of prototypes (axis 1) to "
                f"create `beta`. Received: signals shape {signals_shape}"
            )
        self.beta = self.add_weight(
            name="beta",
            shape=(proto_number, 1),
            initializer=self.beta_initializer,
            regularizer=self.beta_regularizer,
            constraint=self.beta_constraint,
        )

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        signals, dissimilarities = gibbs_routing(
            signals,
            dissimilarities,
            beta=ops.cast(self.beta, dissimilarities.dtype),
            axis=self.norm_axis,
        )
        # Keras 3's way of the original's output regularizers: losses added
        # during the call are collected by `fit` on every backend. They are
        # cast to the variable dtype, as the weight regularization losses:
        # under mixed precision TensorFlow cannot sum float16 and float32.
        for regularizer, output in (
            (self.diss_regularizer, dissimilarities),
            (self.signal_regularizer, signals),
        ):
            if regularizer is not None:
                self.add_loss(ops.cast(regularizer(output), self.variable_dtype))
        return signals, dissimilarities

    def compute_output_shape(self, input_shape):
        return _routed_shapes(self, input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_initializer": keras.initializers.serialize(self.beta_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "diss_regularizer": regularizers.serialize(self.diss_regularizer),
                "signal_regularizer": regularizers.serialize(self.signal_regularizer),
                "norm_axis": self.norm_axis,
            }
        )
        return config


@anysma_export
class Routing(Module):
    """Route over the channels with a probability transformation.

    Like `GibbsRouting` without `beta`: the weights are
    `q = probability_transformation(d)` along the channel axis, and the
    outputs are the `q`-weighted sums of the signals and dissimilarities.

    Args:
        probability_transformation: A name from
            `anysma.probability_transformations` (`"flipmax"`,
            `"neg_softmax"`, ...), a configuration dict or a callable mapping
            dissimilarities `(batch, prototypes, channels)` to weights of the
            same shape.
        **kwargs: Base module arguments, such as `name` and `dtype`.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, prototypes, channels, *atom)` (or `(batch, 1, channels,
        *atom)`: shared signals) and `(batch, prototypes, channels)`.

    Output shape:
        `((batch, prototypes, *atom), (batch, prototypes))`.

    Example:

    >>> import numpy as np
    >>> signals = np.random.rand(2, 3, 5, 4).astype("float32")
    >>> dissimilarities = np.random.rand(2, 3, 5).astype("float32")
    >>> routed = Routing("neg_softmax")((signals, dissimilarities))
    >>> tuple(routed[0].shape)
    (2, 3, 4)
    """

    def __init__(self, probability_transformation="flipmax", **kwargs):
        super().__init__(**kwargs)
        self.probability_transformation = probability_transformations.get(
            probability_transformation, allow_none=False
        )

    def build(self, input_shape):
        check_routing_shapes(self, input_shape)

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        return routing(signals, dissimilarities, self.probability_transformation)

    def compute_output_shape(self, input_shape):
        return _routed_shapes(self, input_shape)

    def get_config(self):
        config = super().get_config()
        config["probability_transformation"] = probability_transformations.serialize(
            self.probability_transformation
        )
        return config


@anysma_export
class SqueezeRouting(Module):
    """Drop the channel axis of length 1: the routing of classic LVQ.

    With one input vector per sample (`channels == 1`) there is nothing to
    route; this bridges capsules to classic (non-capsule) LVQ.

    Args:
        **kwargs: Base module arguments, such as `name`.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, prototypes, 1, *atom)` (or `(batch, 1, 1, *atom)`: shared
        signals, broadcast to all prototypes) and `(batch, prototypes, 1)`.

    Output shape:
        `((batch, prototypes, *atom), (batch, prototypes))`; shared signals
        stay shared, `(batch, 1, *atom)`, and the competition modules take
        them as the signal of every prototype.

    Example:

    >>> import numpy as np
    >>> signals = np.random.rand(2, 3, 1, 4).astype("float32")
    >>> dissimilarities = np.random.rand(2, 3, 1).astype("float32")
    >>> squeezed = SqueezeRouting()((signals, dissimilarities))
    >>> tuple(squeezed[0].shape), tuple(squeezed[1].shape)
    ((2, 3, 4), (2, 3))
    """

    def build(self, input_shape):
        signals_shape, dissimilarities_shape = check_routing_shapes(self, input_shape)
        if signals_shape[2] != 1 or dissimilarities_shape[2] != 1:
            raise ValueError(
                "SqueezeRouting needs exactly one channel (axis 2) to squeeze; "
                "use GibbsRouting or Routing to contract several channels. "
                f"Received: signals shape {signals_shape}, dissimilarities "
                f"shape {dissimilarities_shape}"
            )

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        signals = ops.squeeze(signals, axis=2)
        dissimilarities = ops.squeeze(dissimilarities, axis=2)
        # Shared signals `(batch, 1, *atom)` stay shared: the competition
        # modules take them as they are, so the input is never copied once
        # per prototype.
        return signals, dissimilarities

    def compute_output_shape(self, input_shape):
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        return (
            signals_shape[:2] + signals_shape[3:],
            dissimilarities_shape[:2],
        )


__all__ = ["GibbsRouting", "Routing", "SqueezeRouting"]
