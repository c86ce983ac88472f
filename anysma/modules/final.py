"""Capsule modules: final modules that output probabilities.

A final module ends a capsule. It returns the tuple
`(signals, dissimilarities, probabilities)`; losses and metrics use the
probabilities (`outputs[2]`), decoders the signals (`outputs[0]`).
"""

import numbers

import keras
from keras import ops

from anysma import constraints
from anysma import probability_transformations
from anysma import regularizers
from anysma.api_export import PACKAGE
from anysma.api_export import anysma_export
from anysma.capsule import Module
from anysma.capsule import check_norm_axis
from anysma.ops.routing import dynamic_routing


@anysma_export
class DynamicRouting(Module):
    """Routing by agreement between capsules (Sabour et al., 2017).

    The input is the output of `InputModule` + `LinearTransformation`: the
    prediction vectors `u_hat[b, k, c]` of output capsule `k` from input
    capsule (channel) `c`, and the initial routing logits `b[b, k, c]` in
    place of dissimilarities (use
    `InputModule(dissimilarity_initializer="zeros", trainable=False)`).
    Each iteration computes the coupling coefficients
    `c = softmax(b)` over `norm_axis`, the sums `s_k = sum_c c u_hat`, the
    outputs `v_k = squash(s_k)` and, except in the last iteration, the
    agreement update `b += <v_k, u_hat[k, c]>`. Atoms of any shape work
    (they are routed as flat vectors; the original failed on atoms with
    more than one axis).

    Not a "real" module: it needs no prototype distribution. Here large
    values mean good matches, so do not mix it with dissimilarity-based
    modules in one capsule.

    Args:
        iterations: Number of routing iterations (an int >= 1).
        norm_axis: The axis of the coupling softmax: `"capsules"` (or 1; as
            in Sabour et al.) or `"channels"` (or 2, -1).
        **kwargs: Base module arguments, such as `name`.

    Input shape:
        A tuple `(predictions, logits)` of shapes
        `(batch, capsules, channels, *atom)` and `(batch, capsules, channels)`.

    Output shape:
        A tuple `(outputs, similarities, lengths)`: the squashed capsule
        outputs `(batch, capsules, *atom)`; the similarities
        `sum_c c * b` of the last iteration `(batch, capsules)`; and the
        lengths `||v||` `(batch, capsules)`, the class probabilities of a
        CapsNet (computed with a clamp of 1e-14).

    Example:

    >>> import numpy as np
    >>> predictions = np.random.rand(2, 10, 32, 16).astype("float32")
    >>> logits = np.zeros((2, 10, 32), dtype="float32")
    >>> outputs, similarities, lengths = DynamicRouting()((predictions, logits))
    >>> tuple(outputs.shape), tuple(lengths.shape)
    ((2, 10, 16), (2, 10))

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NeurIPS 2017, Procedure 1.
    """

    def __init__(self, iterations=3, norm_axis="capsules", **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(iterations, bool)
            or not isinstance(iterations, numbers.Integral)
            or iterations < 1
        ):
            raise ValueError(
                f"`iterations` must be an int >= 1. Received: iterations={iterations!r}"
            )
        # A Python int: the routing loop is unrolled when traced.
        self.iterations = int(iterations)
        self.norm_axis = check_norm_axis(norm_axis)

    def build(self, input_shape):
        signals_shape, logits_shape = self._split_signal_shapes(input_shape)
        if len(signals_shape) < 4 or len(logits_shape) != 3:
            raise ValueError(
                "DynamicRouting expects predictions (batch, capsules, "
                "channels, *atom) and logits (batch, capsules, channels), e.g. "
                "from InputModule + LinearTransformation. Received: "
                f"predictions shape {signals_shape}, logits shape {logits_shape}"
            )
        if any(
            a is not None and b is not None and a != b
            for a, b in zip(signals_shape[1:3], logits_shape[1:3])
        ):
            raise ValueError(
                "DynamicRouting needs one logit per capsule and channel: the "
                "predictions and logits must agree on axes 1 and 2 (give the "
                "capsule one prototype per capsule). Received: predictions "
                f"shape {signals_shape}, logits shape {logits_shape}"
            )

    def call(self, inputs):
        self._check_signal(inputs)
        predictions, logits = inputs
        return dynamic_routing(
            predictions, logits, iterations=self.iterations, axis=self.norm_axis
        )

    def compute_output_shape(self, input_shape):
        signals_shape, logits_shape = self._split_signal_shapes(input_shape)
        output_shape = signals_shape[:2] + signals_shape[3:]
        return output_shape, logits_shape[:2], logits_shape[:2]

    def get_config(self):
        config = super().get_config()
        config.update({"iterations": self.iterations, "norm_axis": self.norm_axis})
        return config


class _FinalModule(Module):
    """Shared checks of the final modules on `(B, K, *A)` and `(B, K)`."""

    def build(self, input_shape):
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        received = (
            f"Received: signals shape {signals_shape}, dissimilarities shape "
            f"{dissimilarities_shape}"
        )
        if len(signals_shape) < 2 or len(dissimilarities_shape) != 2:
            raise ValueError(
                f"{type(self).__name__} expects signals (batch, capsules, *atom) "
                "and dissimilarities (batch, capsules); maybe a routing or "
                f"competition module is missing before it. {received}"
            )
        if (
            signals_shape[1] is not None
            and dissimilarities_shape[1] is not None
            and signals_shape[1] != dissimilarities_shape[1]
        ):
            raise ValueError(
                f"{type(self).__name__} needs the same number of capsules in "
                f"signals and dissimilarities. {received}"
            )
        # Inside a capsule the distribution is known: then the capsule count
        # must match (e.g. a forgotten competition module leaves prototypes).
        if self.prototype_distribution is not None:
            capsule_number = self.prototype_tables.capsule_number
            if dissimilarities_shape[1] != capsule_number:
                raise ValueError(
                    f"{type(self).__name__} `{self.name}` has "
                    f"prototype_distribution={self.prototype_distribution} "
                    f"({capsule_number} capsules), so it needs "
                    f"{capsule_number} capsules on axis 1; maybe a competition "
                    f"module is missing before it. {received}"
                )

    def compute_output_shape(self, input_shape):
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        return signals_shape, dissimilarities_shape, dissimilarities_shape


@anysma_export
class Classification(_FinalModule):
    """Turn the dissimilarities of the capsules into class probabilities.

    `probabilities = probability_transformation(dissimilarities)` along the
    capsule axis; with the default `"neg_softmax"` this is
    `softmax(-d)`. The module's name is usually set (e.g. `"lvq_caps"`) so
    that losses and metrics can address its output.

    Args:
        probability_transformation: A name from
            `anysma.probability_transformations` (`"neg_softmax"`, `"flip"`,
            `"flipmax"`, ...), a configuration dict or a callable.
        prototype_distribution: Set by the capsule. When known, the number of
            capsules of the input is checked against it.
        **kwargs: Base module arguments, such as `name`.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, capsules, *atom)` and `(batch, capsules)`.

    Output shape:
        A tuple `(signals, dissimilarities, probabilities)`; the
        probabilities have shape `(batch, capsules)`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> classification = Classification()
    >>> signals = np.zeros((1, 2, 3), dtype="float32")
    >>> dissimilarities = np.array([[0.0, 1.0]], dtype="float32")
    >>> _, _, probabilities = classification((signals, dissimilarities))
    >>> print(np.round(keras.ops.convert_to_numpy(probabilities), 3))
    [[0.731 0.269]]
    """

    def __init__(self, probability_transformation="neg_softmax", **kwargs):
        super().__init__(**kwargs)
        self.probability_transformation = probability_transformations.get(
            probability_transformation, allow_none=False
        )

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        probabilities = self.probability_transformation(dissimilarities)
        return signals, dissimilarities, ops.cast(probabilities, dissimilarities.dtype)

    def get_config(self):
        config = super().get_config()
        config["probability_transformation"] = probability_transformations.serialize(
            self.probability_transformation
        )
        return config


@anysma_export
class Regression(Classification):
    """Turn dissimilarities into a possibility vector, `exp(-d)` by default.

    The same as `Classification` with `probability_transformation="neg_exp"`:
    every capsule gets a value in `(0, 1]` independently of the others, for
    multi-label outputs or regression targets.

    Args:
        probability_transformation: A name from
            `anysma.probability_transformations`, a configuration dict or a
            callable.
        prototype_distribution: Set by the capsule.
        **kwargs: Base module arguments, such as `name`.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, capsules, *atom)` and `(batch, capsules)`.

    Output shape:
        A tuple `(signals, dissimilarities, probabilities)`; the
        probabilities have shape `(batch, capsules)`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> signals = np.zeros((1, 2, 3), dtype="float32")
    >>> dissimilarities = np.array([[0.0, 1.0]], dtype="float32")
    >>> _, _, possibilities = Regression()((signals, dissimilarities))
    >>> print(np.round(keras.ops.convert_to_numpy(possibilities), 3))
    [[1.    0.368]]
    """

    def __init__(self, probability_transformation="neg_exp", **kwargs):
        super().__init__(
            probability_transformation=probability_transformation, **kwargs
        )


@anysma_export
class GibbsClassification(_FinalModule):
    """Class probabilities by a Gibbs distribution, `softmax(-beta d)`.

    Args:
        beta_initializer: Initializer of the inverse temperature `beta`.
        beta_regularizer: Regularizer of `beta`.
        beta_constraint: Constraint of `beta` (`"NonNeg"`).
        prototype_distribution: Set by the capsule. When known, the number of
            capsules of the input is checked against it.
        **kwargs: Base module arguments, such as `name` and `trainable`.

    Weights:
        `beta`: `(1,)`, one inverse temperature for all capsules.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, capsules, *atom)` and `(batch, capsules)`.

    Output shape:
        A tuple `(signals, dissimilarities, probabilities)`; the
        probabilities have shape `(batch, capsules)` and sum to 1.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> classification = GibbsClassification(beta_initializer="zeros")
    >>> signals = np.zeros((1, 2, 3), dtype="float32")
    >>> dissimilarities = np.array([[0.0, 1.0]], dtype="float32")
    >>> _, _, probabilities = classification((signals, dissimilarities))
    >>> keras.ops.convert_to_numpy(probabilities).tolist()
    [[0.5, 0.5]]
    """

    def __init__(
        self,
        beta_initializer="ones",
        beta_regularizer=None,
        beta_constraint="NonNeg",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)

    def build(self, input_shape):
        super().build(input_shape)
        self.beta = self.add_weight(
            name="beta",
            shape=(1,),
            initializer=self.beta_initializer,
            regularizer=self.beta_regularizer,
            constraint=self.beta_constraint,
        )

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        beta = ops.cast(self.beta, dissimilarities.dtype)
        probabilities = probability_transformations.neg_softmax(
            dissimilarities * beta, axis=-1
        )
        return signals, dissimilarities, probabilities

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_initializer": keras.initializers.serialize(self.beta_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
            }
        )
        return config


# The names of the later original anysma. They are the same classes; the
# registrations let configs saved under these names load.
DissimilarityTransformation = Classification
GibbsMeasure = GibbsClassification
for _alias, _cls in (
    ("DissimilarityTransformation", Classification),
    ("GibbsMeasure", GibbsClassification),
):
    keras.saving.get_custom_objects()[f"{PACKAGE}>{_alias}"] = _cls

__all__ = [
    "Classification",
    "DissimilarityTransformation",
    "DynamicRouting",
    "GibbsClassification",
    "GibbsMeasure",
    "Regression",
]
