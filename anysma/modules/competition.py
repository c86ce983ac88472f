"""Capsule modules: competition of the prototypes within each capsule.

Competition comes after routing: the prototypes of a capsule compete for
its output, turning signals `(batch, prototypes, *atom)` and dissimilarities
`(batch, prototypes)` into `(batch, capsules, *atom)` and
`(batch, capsules)`. Which prototypes belong to which capsule comes from the
capsule's `prototype_distribution` (capsule-major order), so these are
"real" modules. Equal and unequal distributions are handled at once by the
index tables of `anysma.utils.prototype_index_tables`, without a loop over
the capsules; with one prototype per capsule competition is the identity.
The formulas live in `anysma.ops.competition`.
"""

import keras
from keras import ops

from anysma import constraints
from anysma import probability_transformations
from anysma import regularizers
from anysma.api_export import anysma_export
from anysma.capsule import Module
from anysma.ops.competition import competition
from anysma.ops.competition import gibbs_competition
from anysma.ops.competition import nearest_competition


class _CompetitionModule(Module):
    """Shared shape checks and output shapes of the competition modules."""

    requires_prototype_distribution = True

    def _check_shapes(self, input_shape):
        tables = self.prototype_tables
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        received = (
            f"Received: signals shape {signals_shape}, dissimilarities shape "
            f"{dissimilarities_shape}"
        )
        if len(signals_shape) < 2 or len(dissimilarities_shape) != 2:
            raise ValueError(
                f"{type(self).__name__} expects signals (batch, prototypes, "
                "*atom) and dissimilarities (batch, prototypes); maybe a "
                f"routing module is missing before it. {received}"
            )
        if signals_shape[1] not in (1, tables.proto_number) or (
            dissimilarities_shape[1] != tables.proto_number
        ):
            raise ValueError(
                f"{type(self).__name__} `{self.name}` has prototype_distribution="
                f"{self.prototype_distribution} ({tables.proto_number} "
                f"prototypes in {tables.capsule_number} capsules), so the "
                "signals and dissimilarities need "
                f"{tables.proto_number} prototypes on axis 1 (the signals may "
                f"also have 1: one signal shared by all prototypes). {received}"
            )
        return tables

    def build(self, input_shape):
        self._check_shapes(input_shape)

    def compute_output_shape(self, input_shape):
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        capsule_number = self.prototype_tables.capsule_number
        return (
            (signals_shape[0], capsule_number) + signals_shape[2:],
            (dissimilarities_shape[0], capsule_number),
        )


@anysma_export
class NearestCompetition(_CompetitionModule):
    """Winner-takes-all: each capsule outputs its closest prototype.

    For capsule `k` the prototype with the smallest dissimilarity among its
    own prototypes passes its signal and dissimilarity on (ties go to the
    first). Gradients flow only to the winners.

    Args:
        use_for_loop: Accepted for compatibility with the original anysma,
            where it chose a loop over the capsules; it has no effect here,
            as every distribution is handled by one vectorized gather.
        prototype_distribution: Set by the capsule; pass it when the module
            is used on its own.
        **kwargs: Base module arguments, such as `name`.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, prototypes, *atom)` (or `(batch, 1, *atom)`: one signal
        shared by all prototypes) and `(batch, prototypes)`.

    Output shape:
        `((batch, capsules, *atom), (batch, capsules))`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> competition = NearestCompetition(prototype_distribution=[1, 2])
    >>> signals = np.arange(6, dtype="float32").reshape(1, 3, 2)
    >>> dissimilarities = np.array([[0.5, 0.9, 0.1]], dtype="float32")
    >>> winners, distances = competition((signals, dissimilarities))
    >>> keras.ops.convert_to_numpy(winners).tolist()
    [[[0.0, 1.0], [4.0, 5.0]]]
    >>> print(np.round(keras.ops.convert_to_numpy(distances), 2))
    [[0.5 0.1]]
    """

    def __init__(self, use_for_loop=False, **kwargs):
        super().__init__(**kwargs)
        self.use_for_loop = bool(use_for_loop)

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        tables = self.prototype_tables
        return nearest_competition(
            signals, dissimilarities, tables.index_table, tables.valid_mask
        )

    def get_config(self):
        config = super().get_config()
        config["use_for_loop"] = self.use_for_loop
        return config


@anysma_export
class GibbsCompetition(_CompetitionModule):
    """Soft competition by Gibbs probabilities within each capsule.

    For capsule `k` with prototypes `j`:
    `q[b, k, j] = softmax_j(-beta_k d[b, j])` over the capsule's own
    prototypes, and the outputs are `sum_j q x[b, j]` and
    `sum_j q d[b, j]`.

    Args:
        beta_initializer: Initializer of the inverse temperatures `beta`.
        beta_regularizer: Regularizer of `beta`.
        beta_constraint: Constraint of `beta` (`"NonNeg"`).
        use_for_loop: Accepted for compatibility with the original anysma;
            it has no effect (the computation is always vectorized).
        prototype_distribution: Set by the capsule; pass it when the module
            is used on its own.
        **kwargs: Base module arguments, such as `name` and `trainable`.

    Weights:
        `beta`: `(capsules,)`, one inverse temperature per capsule.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, prototypes, *atom)` (or `(batch, 1, *atom)`: one signal
        shared by all prototypes) and `(batch, prototypes)`.

    Output shape:
        `((batch, capsules, *atom), (batch, capsules))`.

    Example:

    >>> import numpy as np
    >>> competition = GibbsCompetition(prototype_distribution=(2, 3))
    >>> signals = np.random.rand(4, 6, 8).astype("float32")
    >>> dissimilarities = np.random.rand(4, 6).astype("float32")
    >>> outputs = competition((signals, dissimilarities))
    >>> tuple(outputs[0].shape), tuple(outputs[1].shape)
    ((4, 3, 8), (4, 3))
    """

    def __init__(
        self,
        beta_initializer="ones",
        beta_regularizer=None,
        beta_constraint="NonNeg",
        use_for_loop=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.use_for_loop = bool(use_for_loop)

    def build(self, input_shape):
        tables = self._check_shapes(input_shape)
        self.beta = self.add_weight(
            name="beta",
            shape=(tables.capsule_number,),
            initializer=self.beta_initializer,
            regularizer=self.beta_regularizer,
            constraint=self.beta_constraint,
        )

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        tables = self.prototype_tables
        return gibbs_competition(
            signals,
            dissimilarities,
            tables.index_table,
            tables.valid_mask,
            beta=ops.cast(self.beta, dissimilarities.dtype),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_initializer": keras.initializers.serialize(self.beta_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "use_for_loop": self.use_for_loop,
            }
        )
        return config


@anysma_export
class Competition(_CompetitionModule):
    """Competition within each capsule by a probability transformation.

    For capsule `k`, `q = probability_transformation(d)` is computed on the
    dissimilarities of its own prototypes only, and the outputs are
    `sum_j q x[b, j]` and `sum_j q d[b, j]`. Capsules of an unequal
    distribution are grouped by their number of prototypes, so there is one
    vectorized step per distinct size, never one per capsule.

    Args:
        probability_transformation: A name from
            `anysma.probability_transformations` (`"flipmax"`,
            `"neg_softmax"`, ...), a configuration dict or a callable that
            maps dissimilarities to weights along the last axis.
        prototype_distribution: Set by the capsule; pass it when the module
            is used on its own.
        **kwargs: Base module arguments, such as `name`.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, prototypes, *atom)` (or `(batch, 1, *atom)`: one signal
        shared by all prototypes) and `(batch, prototypes)`.

    Output shape:
        `((batch, capsules, *atom), (batch, capsules))`.

    Example:

    >>> import numpy as np
    >>> competition = Competition(prototype_distribution=[1, 3, 2])
    >>> signals = np.random.rand(4, 6, 8).astype("float32")
    >>> dissimilarities = np.random.rand(4, 6).astype("float32")
    >>> outputs = competition((signals, dissimilarities))
    >>> tuple(outputs[0].shape)
    (4, 3, 8)
    """

    def __init__(self, probability_transformation="flipmax", **kwargs):
        super().__init__(**kwargs)
        self.probability_transformation = probability_transformations.get(
            probability_transformation, allow_none=False
        )

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        tables = self.prototype_tables
        return competition(
            signals,
            dissimilarities,
            tables.index_table,
            tables.valid_mask,
            self.probability_transformation,
        )

    def get_config(self):
        config = super().get_config()
        config["probability_transformation"] = probability_transformations.serialize(
            self.probability_transformation
        )
        return config


__all__ = ["Competition", "GibbsCompetition", "NearestCompetition"]
