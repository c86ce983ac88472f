"""Measuring modules: dissimilarities of capsule signals to prototypes.

A measuring module owns the prototypes of a capsule (and, for the matrix
distances, their matrices). It takes the module signal
`(signals (B, K, C, *A), dissimilarities (B, P, C))`, hands each prototype
the signals of its capsule, measures the distance `d` of every signal to its
prototype and mixes it into the incoming dissimilarities:
`(1 - alpha) * d_in + alpha * d` with `alpha = linear_factor`, or
`d_in + d` when `linear_factor=None`. Depending on `signal_output`, the
signals are passed on unchanged or replaced by the prototypes or by
projections, so the output is `(signals (B, P, C, ...), dissimilarities
(B, P, C))`.

Signals shared by all capsules, `(B, 1, C, *A)` (from
`InputModule(sparse_signal=True)`), are measured against every prototype
without being tiled or gathered; passed on unchanged they stay shared.

The distances themselves are the capsule functions of `anysma.ops` (GEMM
forms for the Euclidean, Omega and tangent distances); the projections live
in `anysma.ops.projections`.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from anysma import constraints
from anysma import pre_training as pre_training_lib
from anysma import regularizers
from anysma.api_export import anysma_export
from anysma.capsule import Module
from anysma.ops import projections
from anysma.ops._validation import check_epsilon
from anysma.ops._validation import check_order_p
from anysma.ops.distances import capsule_minkowski_distance
from anysma.ops.distances import capsule_omega_distance
from anysma.ops.distances import capsule_restricted_tangent_distance
from anysma.ops.distances import capsule_tangent_distance
from anysma.ops.routing import check_linear_factor
from anysma.ops.routing import mix_dissimilarities
from anysma.utils import streams

__all__ = [
    "MinkowskiDistance",
    "OmegaDistance",
    "PointMatrixPrototype",
    "PointPrototype",
    "RestrictedTangentDistance",
    "TangentDistance",
]

MATRIX_SCOPES = ("local", "global", "capsule_wise")
#: The bounds of `RestrictedTangentDistance` start tiny: a point prototype.
#: (Initializers are stateless, so one shared instance is safe.)
DEFAULT_BOUND_INITIALIZER = keras.initializers.Constant(1e-7)


def _json_number(value):
    """A plain Python int or float (NumPy scalars are not JSON-safe)."""
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def _check_atom_shape(value, name, allow_none=True):
    """Canonicalize an int or a sequence of positive ints to a tuple."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if (
        not isinstance(value, (list, tuple))
        or not value
        or any(
            isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1
            for dim in value
        )
    ):
        allowed = "None, " if allow_none else ""
        raise ValueError(
            f"`{name}` must be {allowed}a positive int or a tuple of positive "
            f"ints. Received: {name}={value!r}"
        )
    return tuple(int(dim) for dim in value)


def _tile_over_signals(values, signals):
    """Broadcast per-prototype values `(P, *X)` to `(B, P, C, *X)`.

    `signals` `(B, P or 1, C, ...)` give the batch and channel sizes.
    """
    shape = ops.shape(signals)
    values = ops.expand_dims(ops.expand_dims(values, 0), 2)
    return ops.broadcast_to(
        values, (shape[0], values.shape[1], shape[2]) + tuple(values.shape[3:])
    )


def _is_shared(signals_shape, capsule_number):
    """Whether signals of this shape are shared by all capsules (axis 1 is 1)."""
    return signals_shape[1] == 1 and capsule_number > 1


@anysma_export
class PointPrototype(Module):
    """Base class of measuring modules whose prototypes are points.

    Owns the weight `prototypes` of shape `(prototypes, *atom)`. Subclasses
    implement `distance(signals)`, which receives the signals already
    gathered to the prototypes, `(B, P, C, *A)`, or the signals shared by
    all capsules, `(B, 1, C, *A)` (from `InputModule(sparse_signal=True)`),
    and returns `(signals_out, distances)`. Shared signals are measured
    against all prototypes without being copied; passed on as signals
    (`signal_output="signals"`) they stay shared, and the routing modules
    contract them without a copy.

    Args:
        prototype_initializer: Initializer of the prototypes.
        prototype_regularizer: Regularizer of the prototypes.
        prototype_constraint: Constraint of the prototypes.
        signal_output: What is passed on as signals; see the subclass.
        linear_factor: `alpha` of the dissimilarity update
            `(1 - alpha) * d_in + alpha * d`, a number in the open interval
            (0, 1), or `None` for `d_in + d`.
        prototype_distribution: Set by the capsule (see `anysma.Capsule`).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, capsules, channels, *atom)` (or `(batch, 1, channels,
        *atom)`: shared signals) and `(batch, prototypes, channels)`.

    Output shape:
        A tuple `(signals, dissimilarities)` of shapes
        `(batch, prototypes, channels, *output_atom)` (axis 1 stays 1 for
        shared signals passed on as they are) and
        `(batch, prototypes, channels)`.

    Example:

    A measuring module with the Chebyshev distance of vector signals:

    >>> import numpy as np
    >>> from keras import ops
    >>> class ChebyshevDistance(PointPrototype):
    ...     def distance(self, signals):
    ...         prototypes = ops.cast(self.prototypes, signals.dtype)
    ...         differences = signals - prototypes[None, :, None]
    ...         return signals, ops.max(ops.abs(differences), axis=-1)
    >>> module = ChebyshevDistance(prototype_distribution=2)
    >>> signals = np.zeros((4, 2, 3, 5), dtype="float32")
    >>> dissimilarities = np.zeros((4, 2, 3), dtype="float32")
    >>> tuple(module((signals, dissimilarities))[1].shape)
    (4, 2, 3)
    """

    requires_prototype_distribution = True
    #: The accepted values of `signal_output`.
    signal_outputs = ("signals", "protos")

    def __init__(
        self,
        prototype_initializer="TruncatedNormal",
        prototype_regularizer=None,
        prototype_constraint=None,
        signal_output="signals",
        linear_factor=0.5,
        prototype_distribution=None,
        **kwargs,
    ):
        super().__init__(prototype_distribution=prototype_distribution, **kwargs)
        if signal_output not in self.signal_outputs:
            raise ValueError(
                f"`signal_output` of {type(self).__name__} must be one of "
                f"{list(self.signal_outputs)}. "
                f"Received: signal_output={signal_output!r}"
            )
        self.signal_output = signal_output
        self.linear_factor = check_linear_factor(linear_factor)
        self.prototype_initializer = keras.initializers.get(prototype_initializer)
        self.prototype_regularizer = regularizers.get(prototype_regularizer)
        self.prototype_constraint = constraints.get(prototype_constraint)

    # === Building ===

    def _check_input_shapes(self, signals_shape, dissimilarities_shape):
        """Validate the input shapes and return the atom shape."""
        tables = self.prototype_tables
        name = f"{type(self).__name__} `{self.name}`"
        if len(signals_shape) < 4:
            raise ValueError(
                f"{name} expects signals of shape (batch, capsules, channels, "
                f"*atom) (rank >= 4). Received: signals shape {signals_shape}"
            )
        atom_shape = tuple(signals_shape[3:])
        if any(dim is None for dim in atom_shape):
            raise ValueError(
                f"{name} needs a fully known atom shape. Received: signals "
                f"shape {signals_shape}"
            )
        if signals_shape[1] not in (None, 1, tables.capsule_number):
            raise ValueError(
                f"{name}: the signals must have one entry per capsule on axis 1 "
                f"({tables.capsule_number} for prototype_distribution="
                f"{self.prototype_distribution}), or 1 for signals shared by "
                f"all capsules. Received: signals shape {signals_shape}"
            )
        if len(dissimilarities_shape) != 3:
            raise ValueError(
                f"{name} expects dissimilarities of shape (batch, prototypes, "
                f"channels). Received: dissimilarities shape "
                f"{dissimilarities_shape}"
            )
        if (
            dissimilarities_shape[1] is not None
            and dissimilarities_shape[1] != tables.proto_number
        ):
            raise ValueError(
                f"{name}: the dissimilarities must have one entry per prototype "
                f"on axis 1 ({tables.proto_number} for prototype_distribution="
                f"{self.prototype_distribution}). Received: dissimilarities "
                f"shape {dissimilarities_shape}"
            )
        if None not in (signals_shape[2], dissimilarities_shape[2]) and (
            signals_shape[2] != dissimilarities_shape[2]
        ):
            raise ValueError(
                f"{name}: signals and dissimilarities must have the same number "
                f"of channels (axis 2). Received: signals shape {signals_shape}, "
                f"dissimilarities shape {dissimilarities_shape}"
            )
        return atom_shape

    def build(self, input_shape):
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        self.atom_shape = self._check_input_shapes(signals_shape, dissimilarities_shape)
        self.prototypes = self.add_weight(
            name="prototypes",
            shape=(self.proto_number,) + self.atom_shape,
            initializer=self.prototype_initializer,
            regularizer=self.prototype_regularizer,
            constraint=self.prototype_constraint,
        )

    # === Calling ===

    def _weight(self, variable):
        return ops.cast(variable, self.compute_dtype)

    def _gather_to_prototypes(self, signals, axis=1):
        """Give each prototype the signals of its capsule (axis K -> P)."""
        tables = self.prototype_tables
        if tables.proto_number == tables.capsule_number:
            return signals
        return ops.take(
            signals, ops.convert_to_tensor(tables.capsule_extension), axis=axis
        )

    def _prototype_signals(self, signals):
        """Signals `(B, K or P, C, *A)` in the prototype layout `(B, P, C, *A)`.

        Shared signals `(B, 1, C, *A)` stay shared: every consumer broadcasts.
        """
        signals = ops.cast(signals, self.compute_dtype)
        if signals.shape[1] in (1, self.proto_number):
            return signals
        return self._gather_to_prototypes(signals)

    def _mix(self, dissimilarities, distances):
        return mix_dissimilarities(dissimilarities, distances, self.linear_factor)

    def distance(self, signals):
        """Distances of the signals to their prototypes.

        Args:
            signals: `(B, P, C, *A)`: the signals of each prototype's capsule;
                or `(B, 1, C, *A)`: signals shared by all prototypes.

        Returns:
            A tuple `(signals_out, distances)` with distances `(B, P, C)`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} is an abstract measuring module: use a "
            "subclass such as MinkowskiDistance."
        )

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        signals_out, distances = self.distance(self._prototype_signals(signals))
        return signals_out, self._mix(dissimilarities, distances)

    def _output_atom_shape(self, atom_shape):
        return atom_shape

    def _keeps_shared_signals(self):
        """Whether the output signals of shared input signals stay shared."""
        return self.signal_output == "signals"

    def compute_output_shape(self, input_shape):
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        batch = signals_shape[0]
        channels = signals_shape[2] if len(signals_shape) > 2 else None
        if channels is None and len(dissimilarities_shape) > 2:
            channels = dissimilarities_shape[2]
        atom_shape = self._output_atom_shape(tuple(signals_shape[3:]))
        shared = _is_shared(signals_shape, self.capsule_number)
        signals_count = 1 if shared and self._keeps_shared_signals() else None
        return (
            (batch, signals_count or self.proto_number, channels) + atom_shape,
            (batch, self.proto_number, channels),
        )

    # === Pre-training ===

    def _pre_training_signals(self, x_train, capsule_inputs_are_equal):
        """Validate `x_train` (building the module if needed); return NumPy."""
        if isinstance(x_train, (tuple, list)):
            # The output of `Capsule.get_module_input`: (signals, diss).
            x_train = x_train[0]
        x_train = np.asarray(keras.ops.convert_to_numpy(x_train))
        tables = self.prototype_tables
        x_train = pre_training_lib.check_signals(
            x_train, self.prototype_distribution, capsule_inputs_are_equal
        )
        if not self.built:
            channels = x_train.shape[2]
            self.build(
                (
                    (None, tables.capsule_number) + x_train.shape[2:],
                    (None, tables.proto_number, channels),
                )
            )
        elif tuple(x_train.shape[3:]) != tuple(self.atom_shape):
            raise ValueError(
                f"`x_train` must have the atom shape {tuple(self.atom_shape)} "
                f"that the module was built for. Received: x_train.shape="
                f"{x_train.shape}"
            )
        return x_train

    @staticmethod
    def _assign(variable, values, constraint):
        values = np.asarray(values, dtype=variable.dtype).reshape(variable.shape)
        # Pre-training acts like an optimization step: the constraint holds.
        if constraint is not None:
            values = np.asarray(
                keras.ops.convert_to_numpy(
                    constraint(ops.convert_to_tensor(values, dtype=variable.dtype))
                )
            )
        variable.assign(values.astype(variable.dtype))

    def _pre_train_matrices(self, clusters, svd_params, kmeans_params):
        """Hook of the matrix modules; point prototypes have no matrices."""

    def pre_training(
        self,
        x_train,
        y_train=None,
        capsule_inputs_are_equal=False,
        batch_version=False,
        **kmeans_params,
    ):
        """Initialize the prototypes by k-means (data-driven initialization).

        The cases (`K` capsules, `k_i` prototypes in capsule `i`):

        - no labels, equal capsule inputs: one k-means with all `P` clusters
          on capsule 0's signals;
        - no labels: per capsule `i`, `k_i` clusters on capsule `i`'s signals;
        - labels: per class `i`, `k_i` clusters on the class-`i` samples of
          capsule 0 (equal inputs) or of capsule `i`.

        Every channel counts as a data point. The prototype constraint is
        applied to the centers. Modules with matrices also initialize them
        (see `PointMatrixPrototype.pre_training`).

        Args:
            x_train: The module's input signals `(N, K, C, *A)` as an array,
                or the `(signals, dissimilarities)` tuple of
                `capsule.get_module_input(module, x)`. An unbuilt module is
                built for this shape. Shared signals `(N, 1, C, *A)` count
                as the signals of every capsule.
            y_train: Optional labels, integers `(N,)` or one-hot `(N, K)`;
                every class `0 .. K - 1` must be present.
            capsule_inputs_are_equal: All capsules see the same signals
                (only capsule 0 is read).
            batch_version: Use `MiniBatchKMeans` instead of `KMeans`.
            **kmeans_params: Arguments of the scikit-learn k-means estimator
                (e.g. `random_state=0`, `n_init=10`), given directly or as
                `kmeans_params={...}`; matrix modules also take
                `svd_params={...}` for `TruncatedSVD`.

        Raises:
            ValueError: For a wrong shape, NaN or infinite values, a missing
                class or a class with fewer data points than prototypes.
        """
        kmeans_params, svd_params = pre_training_lib.split_params(kmeans_params)
        if svd_params and not isinstance(self, PointMatrixPrototype):
            raise ValueError(
                f"{type(self).__name__} has no matrices, so `svd_params` does "
                f"not apply. Received: svd_params={svd_params!r}"
            )
        signals = self._pre_training_signals(x_train, capsule_inputs_are_equal)
        clusters = pre_training_lib.cluster_prototypes(
            pre_training_lib.flatten_atoms(signals),
            self.prototype_tables.prototypes_per_capsule,
            y_train=y_train,
            capsule_inputs_are_equal=capsule_inputs_are_equal,
            batch_version=batch_version,
            **kmeans_params,
        )
        self._pre_train_matrices(clusters, svd_params, kmeans_params)
        self._assign(self.prototypes, clusters.centers, self.prototype_constraint)

    def pre_training_on_batches(
        self, batches, capsule_inputs_are_equal=False, **kmeans_params
    ):
        """`pre_training` over a stream of batches, with bounded memory.

        The same cases as `pre_training`, with `MiniBatchKMeans.partial_fit`
        over one pass of the stream (see
        `anysma.pre_training.cluster_prototypes_stream`). Modules with
        matrices read the stream a second time and set them to the principal
        directions of the same groups as `pre_training`, from scatter
        matrices accumulated batch by batch (see
        `anysma.pre_training.scoped_principal_bases_stream`).

        Args:
            batches: The module's input signals in batches: a list, a
                `keras.utils.PyDataset`, a `tf.data.Dataset`, a function
                returning an iterator, or a generator (read once, so only for
                modules without matrices). Each item is `(signals, labels)`
                or bare signals `(n, K, C, *A)`, labels as in `pre_training`
                (classes may be missing from single batches).
            capsule_inputs_are_equal: All capsules see the same signals.
            **kmeans_params: Arguments of `sklearn.cluster.MiniBatchKMeans`
                (e.g. `random_state=0`, `batch_size=2048`).

        Raises:
            ValueError: As `pre_training`, for an empty stream, and for a
                generator when the module has matrices.

        Example:

        >>> import numpy as np
        >>> import anysma
        >>> module = anysma.modules.MinkowskiDistance(prototype_distribution=[1, 1])
        >>> rng = np.random.default_rng(0)
        >>> labels = rng.integers(0, 2, 400)
        >>> signals = (3.0 * labels + rng.normal(0, 0.1, 400)).reshape(-1, 1, 1, 1)
        >>> batches = [(signals[i::4], labels[i::4]) for i in range(4)]
        >>> module.pre_training_on_batches(batches, random_state=0)
        >>> np.round(module.prototypes.numpy().ravel()).tolist()
        [0.0, 3.0]
        """
        kmeans_params, svd_params = pre_training_lib.split_params(kmeans_params)
        if svd_params:
            raise ValueError(
                "Over a stream the matrices come from scatter matrices, not "
                "from `TruncatedSVD`, so `svd_params` does not apply. "
                f"Received: svd_params={svd_params!r}"
            )
        batches = streams.Batches(batches, name="batches")
        if isinstance(self, PointMatrixPrototype) and not batches.reiterable:
            raise ValueError(
                f"{type(self).__name__} `{self.name}` sets its matrices in a "
                "second pass over the data, but `batches` is an iterator (e.g. "
                "a generator) that can be read only once. Pass a list of "
                "batches, a keras.utils.PyDataset, a tf.data.Dataset or a "
                "function that returns a new iterator."
            )
        signal_batches = _CheckedSignalBatches(self, batches, capsule_inputs_are_equal)
        clusters = pre_training_lib.cluster_prototypes_stream(
            signal_batches,
            self.prototype_tables.prototypes_per_capsule,
            capsule_inputs_are_equal=capsule_inputs_are_equal,
            **kmeans_params,
        )
        self._pre_train_matrices_stream(
            signal_batches, clusters, capsule_inputs_are_equal
        )
        self._assign(self.prototypes, clusters.centers, self.prototype_constraint)

    def _pre_train_matrices_stream(self, batches, clusters, capsule_inputs_are_equal):
        """Hook of the matrix modules; point prototypes have no matrices."""

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "prototype_initializer": keras.initializers.serialize(
                    self.prototype_initializer
                ),
                "prototype_regularizer": regularizers.serialize(
                    self.prototype_regularizer
                ),
                "prototype_constraint": constraints.serialize(
                    self.prototype_constraint
                ),
                "signal_output": self.signal_output,
                "linear_factor": self.linear_factor,
            }
        )
        return config


class _CheckedSignalBatches:
    """A stream of `(signals, labels)` batches, validated and flattened.

    Each batch goes through the module's `_pre_training_signals` (which also
    builds an unbuilt module on the first batch) and `flatten_atoms`.
    """

    def __init__(self, module, batches, capsule_inputs_are_equal):
        self.module = module
        self.batches = batches
        self.capsule_inputs_are_equal = capsule_inputs_are_equal

    @property
    def reiterable(self):
        return self.batches.reiterable

    def __iter__(self):
        for batch in self.batches:
            signals, labels = (
                batch if isinstance(batch, (tuple, list)) else (batch, None)
            )
            signals = self.module._pre_training_signals(
                signals, self.capsule_inputs_are_equal
            )
            yield pre_training_lib.flatten_atoms(signals), labels


@anysma_export
class PointMatrixPrototype(PointPrototype):
    """Base class of measuring modules with a point and a matrix per prototype.

    Adds the weight `matrices` of shape scope prefix +
    `(prod(atom), prod(projected_atom_shape))`, stored "transposed" so that
    it maps row vectors, `x -> x M`. The scope prefix is `(prototypes,)` for
    `matrix_scope='local'`, `()` for `'global'` and `(capsules,)` for
    `'capsule_wise'` (each capsule's matrix is shared by its prototypes).

    Args:
        prototype_initializer: Initializer of the prototypes.
        prototype_regularizer: Regularizer of the prototypes.
        prototype_constraint: Constraint of the prototypes.
        matrix_initializer: Initializer of the matrices.
        matrix_regularizer: Regularizer of the matrices (e.g.
            `anysma.regularizers.OmegaRegularizer`).
        matrix_constraint: Constraint of the matrices (e.g.
            `"OmegaNormalization"`).
        matrix_scope: `"local"`, `"global"` or `"capsule_wise"`.
        projected_atom_shape: The atom shape after the projection, an int or
            a tuple; `None` keeps the input's atom shape.
        signal_output: What is passed on as signals; see the subclass.
        linear_factor: `alpha` of the dissimilarity update, in (0, 1), or
            `None` for addition.
        prototype_distribution: Set by the capsule.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `((batch, capsules, channels, *atom), (batch, prototypes, channels))`.

    Output shape:
        `((batch, prototypes, channels, *output_atom), (batch, prototypes,
        channels))`.

    Example:

    A measuring module with the Euclidean distance after the map `M`:

    >>> import numpy as np
    >>> from anysma.ops import capsule_omega_distance
    >>> class MappedDistance(PointMatrixPrototype):
    ...     def distance(self, signals):
    ...         return signals, capsule_omega_distance(
    ...             signals, self.prototypes, self.matrices)
    >>> module = MappedDistance(
    ...     matrix_scope="global", projected_atom_shape=2,
    ...     prototype_distribution=3)
    >>> signals = np.zeros((4, 3, 1, 5), dtype="float32")
    >>> _ = module((signals, np.zeros((4, 3, 1), dtype="float32")))
    >>> tuple(module.matrices.shape)
    (5, 2)
    """

    def __init__(
        self,
        prototype_initializer="TruncatedNormal",
        prototype_regularizer=None,
        prototype_constraint=None,
        matrix_initializer="TruncatedNormal",
        matrix_regularizer=None,
        matrix_constraint=None,
        matrix_scope="local",
        projected_atom_shape=None,
        signal_output="signals",
        linear_factor=0.5,
        prototype_distribution=None,
        **kwargs,
    ):
        super().__init__(
            prototype_initializer=prototype_initializer,
            prototype_regularizer=prototype_regularizer,
            prototype_constraint=prototype_constraint,
            signal_output=signal_output,
            linear_factor=linear_factor,
            prototype_distribution=prototype_distribution,
            **kwargs,
        )
        if matrix_scope not in MATRIX_SCOPES:
            raise ValueError(
                f"`matrix_scope` must be one of {list(MATRIX_SCOPES)}. "
                f"Received: matrix_scope={matrix_scope!r}"
            )
        self.matrix_scope = matrix_scope
        self.projected_atom_shape = _check_atom_shape(
            projected_atom_shape, "projected_atom_shape"
        )
        self.matrix_initializer = keras.initializers.get(matrix_initializer)
        self.matrix_regularizer = regularizers.get(matrix_regularizer)
        self.matrix_constraint = constraints.get(matrix_constraint)

    def _scope_prefix(self):
        return {
            "local": (self.proto_number,),
            "global": (),
            "capsule_wise": (self.capsule_number,),
        }[self.matrix_scope]

    def _resolved_projected_shape(self, atom_shape):
        if self.projected_atom_shape is None:
            return tuple(atom_shape)
        return self.projected_atom_shape

    def _matrix_initializer(self):
        return self.matrix_initializer

    def build(self, input_shape):
        super().build(input_shape)
        self.resolved_projected_atom_shape = self._resolved_projected_shape(
            self.atom_shape
        )
        self.matrices = self.add_weight(
            name="matrices",
            shape=self._scope_prefix()
            + (
                math.prod(self.atom_shape),
                math.prod(self.resolved_projected_atom_shape),
            ),
            initializer=self._matrix_initializer(),
            regularizer=self.matrix_regularizer,
            constraint=self.matrix_constraint,
        )

    def _per_prototype(self, variable):
        """A scoped weight in the form the distances take, in compute dtype.

        Capsule-wise weights are gathered to the prototypes (each prototype
        uses its capsule's); local and global ones are used as they are.
        """
        value = self._weight(variable)
        if self.matrix_scope == "capsule_wise":
            value = self._gather_to_prototypes(value, axis=0)
        return value

    def _reshape_projected(self, values, leading_rank):
        """Reshape a flat projected last axis to `projected_atom_shape`."""
        shape = ops.shape(values)
        return ops.reshape(
            values,
            tuple(shape[:leading_rank]) + self.resolved_projected_atom_shape,
        )

    # === Pre-training ===

    def _pre_train_matrices_stream(self, batches, clusters, capsule_inputs_are_equal):
        bases = pre_training_lib.scoped_principal_bases_stream(
            batches,
            clusters,
            self.prototype_tables.prototypes_per_capsule,
            self.matrix_scope,
            n_components=self.matrices.shape[-1],
            capsule_inputs_are_equal=capsule_inputs_are_equal,
            owner=f"{type(self).__name__} `{self.name}`",
        )
        if bases is not None:
            self._assign(self.matrices, bases, self.matrix_constraint)

    def _pre_train_matrices(self, clusters, svd_params, kmeans_params):
        bases = pre_training_lib.scoped_principal_bases(
            clusters,
            self.matrix_scope,
            features=self.matrices.shape[-2],
            n_components=self.matrices.shape[-1],
            svd_params=svd_params,
            kmeans_params=kmeans_params,
            owner=f"{type(self).__name__} `{self.name}`",
        )
        if bases is not None:
            self._assign(self.matrices, bases, self.matrix_constraint)

    def pre_training(
        self,
        x_train,
        y_train=None,
        capsule_inputs_are_equal=False,
        batch_version=False,
        **kmeans_params,
    ):
        """Initialize prototypes by k-means and matrices by PCA.

        The prototypes are placed as in `PointPrototype.pre_training`. The
        matrices become the principal directions (the "SVD tangents") of:
        all clustered data (`matrix_scope='global'`), the members of each
        prototype's cluster (`'local'`) or the data of each capsule
        (`'capsule_wise'`), each group centered on its mean. Fewer projected
        than input dimensions use `sklearn.decomposition.TruncatedSVD`;
        equal numbers use all eigenvectors of the scatter matrix; more
        projected dimensions keep the matrices (with a warning). The matrix
        constraint is applied afterwards; other weights (such as the bounds
        of `RestrictedTangentDistance`) are kept.

        Args:
            x_train: The module's input signals `(N, K, C, *A)` (or the tuple
                from `capsule.get_module_input`).
            y_train: Optional labels, integers `(N,)` or one-hot `(N, K)`.
            capsule_inputs_are_equal: All capsules see the same signals.
            batch_version: Use `MiniBatchKMeans`.
            **kmeans_params: k-means arguments, flat or as
                `kmeans_params={...}`, and `svd_params={...}` for
                `TruncatedSVD`. A `random_state` given for k-means is used for
                the SVD as well unless `svd_params` sets its own.
        """
        super().pre_training(
            x_train,
            y_train=y_train,
            capsule_inputs_are_equal=capsule_inputs_are_equal,
            batch_version=batch_version,
            **kmeans_params,
        )

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "matrix_initializer": keras.initializers.serialize(
                    self.matrix_initializer
                ),
                "matrix_regularizer": regularizers.serialize(self.matrix_regularizer),
                "matrix_constraint": constraints.serialize(self.matrix_constraint),
                "matrix_scope": self.matrix_scope,
                "projected_atom_shape": None
                if self.projected_atom_shape is None
                else list(self.projected_atom_shape),
            }
        )
        return config


@anysma_export
class MinkowskiDistance(PointPrototype):
    """Minkowski distances `||x - w||_p` of capsule signals to point prototypes.

    The prototypes of GLVQ: `order_p=2, squared_dissimilarity=True` is the
    squared Euclidean distance. The norm is taken over all atom axes. As in
    the original anysma, "squared" means "skip the root", so for p = 1 and
    p = inf the norm is squared and for other p it is `sum |x - w|^p`.

    Args:
        order_p: The order p of the norm: any number > 0 or `math.inf`.
        prototype_initializer: Initializer of the prototypes.
        prototype_regularizer: Regularizer of the prototypes.
        prototype_constraint: Constraint of the prototypes.
        signal_output: `"signals"` passes the (gathered) input signals on;
            `"protos"` replaces them by each signal's prototype.
        epsilon: Lower clamp before the root, which keeps the gradient finite
            where a signal equals its prototype.
        squared_dissimilarity: Skip the root.
        linear_factor: `alpha` of `(1 - alpha) * d_in + alpha * d`, in the open
            interval (0, 1), or `None` for `d_in + d`.
        prototype_distribution: Set by the capsule.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `((batch, capsules, channels, *atom), (batch, prototypes, channels))`.

    Output shape:
        `((batch, prototypes, channels, *atom), (batch, prototypes,
        channels))`.

    Example:

    >>> import numpy as np
    >>> module = MinkowskiDistance(
    ...     squared_dissimilarity=True, linear_factor=None,
    ...     prototype_distribution=(2, 3))
    >>> signals = np.zeros((4, 3, 1, 5), dtype="float32")
    >>> dissimilarities = np.zeros((4, 6, 1), dtype="float32")
    >>> signals_out, distances = module((signals, dissimilarities))
    >>> tuple(signals_out.shape), tuple(distances.shape)
    ((4, 6, 1, 5), (4, 6, 1))

    Reference:
        Sato and Yamada, "Generalized learning vector quantization", NIPS
        1995.
    """

    def __init__(
        self,
        order_p=2,
        prototype_initializer="TruncatedNormal",
        prototype_regularizer=None,
        prototype_constraint=None,
        signal_output="signals",
        epsilon=1e-7,
        squared_dissimilarity=False,
        linear_factor=0.5,
        prototype_distribution=None,
        **kwargs,
    ):
        super().__init__(
            prototype_initializer=prototype_initializer,
            prototype_regularizer=prototype_regularizer,
            prototype_constraint=prototype_constraint,
            signal_output=signal_output,
            linear_factor=linear_factor,
            prototype_distribution=prototype_distribution,
            **kwargs,
        )
        check_order_p(order_p)
        check_epsilon(epsilon)
        self.order_p = _json_number(order_p)
        self.epsilon = float(epsilon)
        self.squared_dissimilarity = bool(squared_dissimilarity)

    def distance(self, signals):
        prototypes = self._weight(self.prototypes)
        distances = capsule_minkowski_distance(
            signals,
            prototypes,
            order_p=self.order_p,
            squared=self.squared_dissimilarity,
            epsilon=self.epsilon,
        )
        if self.signal_output == "protos":
            signals = _tile_over_signals(prototypes, signals)
        return signals, distances

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "order_p": self.order_p,
                "epsilon": self.epsilon,
                "squared_dissimilarity": self.squared_dissimilarity,
            }
        )
        return config


@anysma_export
class OmegaDistance(PointMatrixPrototype):
    """Matrix distances `||(x - w) Omega||_p` (GMLVQ, LGMLVQ, LiRaM LVQ).

    `Omega` is stored transposed with shape `(prod(atom),
    prod(projected_atom_shape))`, so the relevance matrix is
    `Lambda = Omega Omega^T`; a smaller projected shape gives a
    limited-rank metric. `matrix_scope='global'` is GMLVQ, `'local'` (one
    matrix per prototype) localized GMLVQ.

    Args:
        order_p: The order p of the norm in the projected space.
        prototype_initializer: Initializer of the prototypes.
        prototype_regularizer: Regularizer of the prototypes.
        prototype_constraint: Constraint of the prototypes.
        matrix_initializer: Initializer of the matrices.
        matrix_regularizer: Regularizer of the matrices, e.g.
            `anysma.regularizers.OmegaRegularizer()`.
        matrix_constraint: Constraint of the matrices, e.g.
            `"OmegaNormalization"`.
        matrix_scope: `"local"`, `"global"` or `"capsule_wise"`.
        projected_atom_shape: The atom shape after the projection (int or
            tuple); `None` keeps the input's.
        signal_output: `"signals"`, `"protos"`, `"projected_signals"`
            (`x Omega`, reshaped to `projected_atom_shape`) or
            `"projected_protos"` (`w Omega` for every signal).
        epsilon: Lower clamp before the root.
        squared_dissimilarity: Skip the root.
        linear_factor: `alpha` of the dissimilarity update, in (0, 1), or
            `None` for addition.
        prototype_distribution: Set by the capsule.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `((batch, capsules, channels, *atom), (batch, prototypes, channels))`.

    Output shape:
        `((batch, prototypes, channels, *output_atom), (batch, prototypes,
        channels))`, where `output_atom` is the atom shape or, for the
        projected outputs, `projected_atom_shape`.

    Example:

    >>> import numpy as np
    >>> module = OmegaDistance(
    ...     matrix_scope="global", projected_atom_shape=2,
    ...     signal_output="projected_signals", prototype_distribution=3)
    >>> signals = np.zeros((4, 3, 1, 5), dtype="float32")
    >>> dissimilarities = np.zeros((4, 3, 1), dtype="float32")
    >>> signals_out, distances = module((signals, dissimilarities))
    >>> tuple(signals_out.shape), tuple(module.matrices.shape)
    ((4, 3, 1, 2), (5, 2))

    Reference:
        Schneider, Biehl and Hammer, "Adaptive relevance matrices in learning
        vector quantization", Neural Computation 21(12), 2009.
        Bunte et al., "Limited rank matrix learning, discriminative dimension
        reduction and visualization", Neural Networks 26, 2012.
    """

    signal_outputs = ("signals", "protos", "projected_signals", "projected_protos")

    def __init__(
        self,
        order_p=2,
        prototype_initializer="TruncatedNormal",
        prototype_regularizer=None,
        prototype_constraint=None,
        matrix_initializer="TruncatedNormal",
        matrix_regularizer=None,
        matrix_constraint=None,
        matrix_scope="local",
        projected_atom_shape=None,
        signal_output="signals",
        epsilon=1e-7,
        squared_dissimilarity=False,
        linear_factor=0.5,
        prototype_distribution=None,
        **kwargs,
    ):
        super().__init__(
            prototype_initializer=prototype_initializer,
            prototype_regularizer=prototype_regularizer,
            prototype_constraint=prototype_constraint,
            matrix_initializer=matrix_initializer,
            matrix_regularizer=matrix_regularizer,
            matrix_constraint=matrix_constraint,
            matrix_scope=matrix_scope,
            projected_atom_shape=projected_atom_shape,
            signal_output=signal_output,
            linear_factor=linear_factor,
            prototype_distribution=prototype_distribution,
            **kwargs,
        )
        check_order_p(order_p)
        check_epsilon(epsilon)
        self.order_p = _json_number(order_p)
        self.epsilon = float(epsilon)
        self.squared_dissimilarity = bool(squared_dissimilarity)

    def _output_atom_shape(self, atom_shape):
        if self.signal_output in ("projected_signals", "projected_protos"):
            return self._resolved_projected_shape(atom_shape)
        return atom_shape

    def _keeps_shared_signals(self):
        # One global matrix maps shared signals to shared projections.
        return self.signal_output == "signals" or (
            self.signal_output == "projected_signals" and self.matrix_scope == "global"
        )

    def distance(self, signals):
        prototypes = self._weight(self.prototypes)
        matrices = self._per_prototype(self.matrices)
        distances = capsule_omega_distance(
            signals,
            prototypes,
            matrices,
            order_p=self.order_p,
            squared=self.squared_dissimilarity,
            epsilon=self.epsilon,
        )
        if self.signal_output == "protos":
            signals = _tile_over_signals(prototypes, signals)
        elif self.signal_output == "projected_signals":
            signals = self._reshape_projected(
                projections.capsule_projection(signals, matrices), 3
            )
        elif self.signal_output == "projected_protos":
            projected = self._reshape_projected(
                projections.prototype_projection(prototypes, matrices), 1
            )
            signals = _tile_over_signals(projected, signals)
        return signals, distances

    def get_projected_protos(self):
        """The prototypes mapped by their matrices, `w Omega`.

        Returns:
            A tensor of shape `(prototypes, *projected_atom_shape)`.
        """
        return self._reshape_projected(
            projections.prototype_projection(
                self._weight(self.prototypes), self._per_prototype(self.matrices)
            ),
            1,
        )

    def get_projected_signals(self, signals):
        """Signals mapped by their prototypes' matrices, `x Omega`.

        Args:
            signals: `(batch, capsules or prototypes, channels, *atom)`;
                capsule signals are first gathered to the prototypes.

        Returns:
            A tensor of shape `(batch, prototypes, channels,
            *projected_atom_shape)`; shared signals `(batch, 1, channels,
            *atom)` mapped by a global matrix stay shared (axis 1 is 1).
        """
        return self._reshape_projected(
            projections.capsule_projection(
                self._prototype_signals(signals), self._per_prototype(self.matrices)
            ),
            3,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "order_p": self.order_p,
                "epsilon": self.epsilon,
                "squared_dissimilarity": self.squared_dissimilarity,
            }
        )
        return config


class _SubspacePrototype(PointMatrixPrototype):
    """Shared code of the tangent distances: orthonormal subspace bases."""

    signal_outputs = ("signals", "projected_signals", "parameterized_signals")
    #: Whether the subspace must have fewer dimensions than the atom.
    strictly_lower_dimensional = True

    def __init__(self, projected_atom_shape, matrix_constraint=None, **kwargs):
        if matrix_constraint is not None and not isinstance(
            constraints.get(matrix_constraint), constraints.Orthogonalization
        ):
            # The tangent formulas need orthonormal bases, so the constraint
            # is fixed (and not part of the config, unlike the original's).
            raise ValueError(
                f"The matrices of {type(self).__name__} are always kept "
                "orthonormal by `anysma.constraints.Orthogonalization`; "
                "`matrix_constraint` cannot be set. "
                f"Received: matrix_constraint={matrix_constraint!r}"
            )
        projected_atom_shape = _check_atom_shape(
            projected_atom_shape, "projected_atom_shape", allow_none=False
        )
        super().__init__(
            matrix_constraint=constraints.Orthogonalization(),
            projected_atom_shape=projected_atom_shape,
            **kwargs,
        )

    def _matrix_initializer(self):
        initializer = self.matrix_initializer
        constraint = self.matrix_constraint

        # Start from orthonormal bases: with any other W the formulas are not
        # distances to a subspace until the first optimizer step projects W.
        def orthonormal_initializer(shape, dtype=None):
            return constraint(initializer(shape, dtype=dtype))

        return orthonormal_initializer

    def build(self, input_shape):
        signals_shape, _ = self._split_signal_shapes(input_shape)
        atom_size = math.prod(d for d in signals_shape[3:] if d is not None)
        subspace_size = math.prod(self.projected_atom_shape)
        too_large = (
            subspace_size >= atom_size
            if self.strictly_lower_dimensional
            else subspace_size > atom_size
        )
        if too_large:
            relation = "<" if self.strictly_lower_dimensional else "<="
            raise ValueError(
                f"{type(self).__name__} `{self.name}` needs a subspace dimension "
                f"prod(projected_atom_shape) {relation} prod(atom shape) = "
                f"{atom_size}. Received: projected_atom_shape="
                f"{self.projected_atom_shape} for signals of shape "
                f"{signals_shape}"
            )
        super().build(input_shape)

    def _output_atom_shape(self, atom_shape):
        if self.signal_output == "parameterized_signals":
            return self.projected_atom_shape
        return atom_shape

    def _bounds(self):
        return None

    def _tangent_distance(self, signals, prototypes, matrices, bounds):
        raise NotImplementedError

    def distance(self, signals):
        prototypes = self._weight(self.prototypes)
        matrices = self._per_prototype(self.matrices)
        bounds = self._bounds()
        distances = self._tangent_distance(signals, prototypes, matrices, bounds)
        if self.signal_output == "projected_signals":
            signals = projections.capsule_tangent_projection(
                signals, prototypes, matrices, bounds
            )
        elif self.signal_output == "parameterized_signals":
            signals = self._reshape_projected(
                projections.capsule_tangent_parameters(
                    signals, prototypes, matrices, bounds
                ),
                3,
            )
        return signals, distances

    def get_projected_signals(self, signals):
        """The closest points `w + W theta` of the prototypes' subspaces.

        Args:
            signals: `(batch, capsules or prototypes, channels, *atom)`.

        Returns:
            A tensor of shape `(batch, prototypes, channels, *atom)`.
        """
        return projections.capsule_tangent_projection(
            self._prototype_signals(signals),
            self._weight(self.prototypes),
            self._per_prototype(self.matrices),
            self._bounds(),
        )

    def get_parameterized_signals(self, signals):
        """The subspace coordinates `theta` of the signals.

        Args:
            signals: `(batch, capsules or prototypes, channels, *atom)`.

        Returns:
            A tensor of shape `(batch, prototypes, channels,
            *projected_atom_shape)`.
        """
        return self._reshape_projected(
            projections.capsule_tangent_parameters(
                self._prototype_signals(signals),
                self._weight(self.prototypes),
                self._per_prototype(self.matrices),
                self._bounds(),
            ),
            3,
        )

    def get_config(self):
        config = super().get_config()
        # Fixed to Orthogonalization; not an argument (the original's
        # from_config failed on this key).
        config.pop("matrix_constraint")
        return config


@anysma_export
class TangentDistance(_SubspacePrototype):
    """Tangent distances to affine subspaces `w + W theta` (GTLVQ).

    Each prototype is an affine subspace with origin `w` and an orthonormal
    basis `W` of shape `(prod(atom), r)`, `r = prod(projected_atom_shape)`;
    the distance is that to the closest point of the subspace,
    `||(I - W W^T)(x - w)||` (squared on request). The bases are kept
    orthonormal by `anysma.constraints.Orthogonalization` (not
    configurable), and start orthonormal.

    Args:
        projected_atom_shape: The subspace dimension `r` (int or tuple);
            required, and `r < prod(atom)`.
        prototype_initializer: Initializer of the origins.
        prototype_regularizer: Regularizer of the origins.
        prototype_constraint: Constraint of the origins.
        matrix_initializer: Initializer of the bases (orthonormalized).
        matrix_regularizer: Regularizer of the bases.
        matrix_scope: `"local"`, `"global"` or `"capsule_wise"`.
        signal_output: `"signals"`, `"projected_signals"` (the closest point
            `w + W W^T (x - w)`, atom shape) or `"parameterized_signals"`
            (the coordinates `theta = W^T (x - w)`, `projected_atom_shape`).
        epsilon: Lower clamp before the root.
        squared_dissimilarity: Skip the root.
        linear_factor: `alpha` of the dissimilarity update, in (0, 1), or
            `None` for addition.
        prototype_distribution: Set by the capsule.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `((batch, capsules, channels, *atom), (batch, prototypes, channels))`.

    Output shape:
        `((batch, prototypes, channels, *output_atom), (batch, prototypes,
        channels))`, `output_atom` being `projected_atom_shape` for
        `"parameterized_signals"` and the atom shape otherwise.

    Example:

    >>> import numpy as np
    >>> module = TangentDistance(
    ...     projected_atom_shape=2, signal_output="parameterized_signals",
    ...     prototype_distribution=[1, 2])
    >>> signals = np.zeros((4, 2, 1, 5), dtype="float32")
    >>> dissimilarities = np.zeros((4, 3, 1), dtype="float32")
    >>> theta, distances = module((signals, dissimilarities))
    >>> tuple(theta.shape), tuple(module.matrices.shape)
    ((4, 3, 1, 2), (3, 5, 2))

    Reference:
        Saralajew and Villmann, "Adaptive tangent distances in generalized
        learning vector quantization", WSOM 2016.
    """

    def __init__(
        self,
        projected_atom_shape,
        prototype_initializer="TruncatedNormal",
        prototype_regularizer=None,
        prototype_constraint=None,
        matrix_initializer="TruncatedNormal",
        matrix_regularizer=None,
        matrix_scope="local",
        signal_output="signals",
        epsilon=1e-7,
        squared_dissimilarity=False,
        linear_factor=0.5,
        prototype_distribution=None,
        **kwargs,
    ):
        super().__init__(
            projected_atom_shape=projected_atom_shape,
            prototype_initializer=prototype_initializer,
            prototype_regularizer=prototype_regularizer,
            prototype_constraint=prototype_constraint,
            matrix_initializer=matrix_initializer,
            matrix_regularizer=matrix_regularizer,
            matrix_scope=matrix_scope,
            signal_output=signal_output,
            linear_factor=linear_factor,
            prototype_distribution=prototype_distribution,
            **kwargs,
        )
        check_epsilon(epsilon)
        self.epsilon = float(epsilon)
        self.squared_dissimilarity = bool(squared_dissimilarity)

    def _tangent_distance(self, signals, prototypes, matrices, bounds):
        return capsule_tangent_distance(
            signals,
            prototypes,
            matrices,
            squared=self.squared_dissimilarity,
            epsilon=self.epsilon,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "epsilon": self.epsilon,
                "squared_dissimilarity": self.squared_dissimilarity,
            }
        )
        return config


@anysma_export
class RestrictedTangentDistance(_SubspacePrototype):
    """Distances to bounded affine subspaces (r-orthotopes; rTD).

    Like `TangentDistance`, but the subspace coordinates are clipped to
    trainable bounds, `theta = clip(W^T (x - w), -b, b)`, and the distance is
    `||x - (w + W theta)||`. The bounds start tiny (1e-7), so a prototype
    starts as a point and grows into a box during training; the default
    `Positive` constraint keeps them strictly positive (the original's
    `Positive` let them collapse to 0).

    Args:
        projected_atom_shape: The subspace dimension `r` (int or tuple);
            required, and `r <= prod(atom)`.
        prototype_initializer: Initializer of the origins.
        prototype_regularizer: Regularizer of the origins.
        prototype_constraint: Constraint of the origins.
        matrix_initializer: Initializer of the bases (orthonormalized).
        matrix_regularizer: Regularizer of the bases.
        matrix_scope: `"local"`, `"global"` or `"capsule_wise"`.
        bound_initializer: Initializer of the bounds.
        bound_regularizer: Regularizer of the bounds.
        bound_constraint: Constraint of the bounds (`anysma.constraints.
            Positive`).
        signal_output: `"signals"`, `"projected_signals"` (the closest point
            `w + W theta` with clipped `theta`) or `"parameterized_signals"`
            (the clipped `theta`).
        epsilon: Lower clamp before the root.
        squared_dissimilarity: Skip the root.
        linear_factor: `alpha` of the dissimilarity update, in (0, 1), or
            `None` for addition.
        prototype_distribution: Set by the capsule.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `((batch, capsules, channels, *atom), (batch, prototypes, channels))`.

    Output shape:
        As `TangentDistance`.

    Example:

    >>> import numpy as np
    >>> module = RestrictedTangentDistance(
    ...     projected_atom_shape=2, matrix_scope="capsule_wise",
    ...     prototype_distribution=(2, 3))
    >>> signals = np.zeros((4, 3, 1, 5), dtype="float32")
    >>> dissimilarities = np.zeros((4, 6, 1), dtype="float32")
    >>> _ = module((signals, dissimilarities))
    >>> [tuple(weight.shape) for weight in module.weights]
    [(6, 5), (3, 5, 2), (3, 2)]

    Reference:
        Saralajew, Holdijk, Rees and Villmann, "Prototype-based neural
        network layers: incorporating vector quantization", arXiv:1812.01214,
        2018.
    """

    strictly_lower_dimensional = False

    def __init__(
        self,
        projected_atom_shape,
        prototype_initializer="TruncatedNormal",
        prototype_regularizer=None,
        prototype_constraint=None,
        matrix_initializer="TruncatedNormal",
        matrix_regularizer=None,
        matrix_scope="local",
        bound_initializer=DEFAULT_BOUND_INITIALIZER,
        bound_regularizer=None,
        bound_constraint="Positive",
        signal_output="signals",
        epsilon=1e-7,
        squared_dissimilarity=False,
        linear_factor=0.5,
        prototype_distribution=None,
        **kwargs,
    ):
        super().__init__(
            projected_atom_shape=projected_atom_shape,
            prototype_initializer=prototype_initializer,
            prototype_regularizer=prototype_regularizer,
            prototype_constraint=prototype_constraint,
            matrix_initializer=matrix_initializer,
            matrix_regularizer=matrix_regularizer,
            matrix_scope=matrix_scope,
            signal_output=signal_output,
            linear_factor=linear_factor,
            prototype_distribution=prototype_distribution,
            **kwargs,
        )
        check_epsilon(epsilon)
        self.epsilon = float(epsilon)
        self.squared_dissimilarity = bool(squared_dissimilarity)
        if bound_initializer is None:
            # The default `Constant(1e-7)`: each prototype starts as a point.
            bound_initializer = keras.initializers.Constant(1e-7)
        self.bound_initializer = keras.initializers.get(bound_initializer)
        self.bound_regularizer = regularizers.get(bound_regularizer)
        self.bound_constraint = constraints.get(bound_constraint)

    def build(self, input_shape):
        super().build(input_shape)
        self.bounds = self.add_weight(
            name="bounds",
            shape=self._scope_prefix() + (self.matrices.shape[-1],),
            initializer=self.bound_initializer,
            regularizer=self.bound_regularizer,
            constraint=self.bound_constraint,
        )

    def _bounds(self):
        return self._per_prototype(self.bounds)

    def _tangent_distance(self, signals, prototypes, matrices, bounds):
        return capsule_restricted_tangent_distance(
            signals,
            prototypes,
            matrices,
            bounds,
            squared=self.squared_dissimilarity,
            epsilon=self.epsilon,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "bound_initializer": keras.initializers.serialize(
                    self.bound_initializer
                ),
                "bound_regularizer": regularizers.serialize(self.bound_regularizer),
                "bound_constraint": constraints.serialize(self.bound_constraint),
                "epsilon": self.epsilon,
                "squared_dissimilarity": self.squared_dissimilarity,
            }
        )
        return config
