"""Entry and exit modules of a capsule, and the feature-map splitter."""

import math

import keras
from keras import ops

from anysma import constraints
from anysma.api_export import anysma_export
from anysma.capsule import Module
from anysma.capsule import warn_original_keyword


def _is_shape_tuple(input_shape):
    """Whether a build shape describes a tuple of tensors."""
    return isinstance(input_shape[0], (list, tuple))


def resolve_signal_shape(signal_shape, input_shape, name="signal_shape"):
    """Resolve `signal_shape` (int, tuple with at most one -1, or None).

    Args:
        signal_shape: The requested shape without the batch axis.
        input_shape: The input shape including the batch axis.
        name: Argument name for error messages.

    Returns:
        The resolved shape as a tuple of ints; the channel count is `None`
        when the input has unknown sizes.
    """
    feature_shape = tuple(input_shape[1:])
    if signal_shape is None:
        return feature_shape
    if isinstance(signal_shape, int) and not isinstance(signal_shape, bool):
        target = (-1, signal_shape)
    elif isinstance(signal_shape, (list, tuple)) and len(signal_shape) >= 2:
        target = tuple(signal_shape)
    else:
        raise ValueError(
            f"`{name}` must be None, an int or a tuple of length >= 2 "
            f"(channels, *atom_shape). Received: {name}={signal_shape!r}"
        )
    if (
        any(
            not isinstance(dim, int) or isinstance(dim, bool) or dim == 0 or dim < -1
            for dim in target
        )
        or target.count(-1) > 1
    ):
        raise ValueError(
            f"`{name}` must hold positive ints and at most one -1. "
            f"Received: {name}={signal_shape!r}"
        )
    known = math.prod(dim for dim in target if dim != -1)
    if any(dim is None for dim in feature_shape):
        # Inputs of any size (e.g. feature maps of any resolution) work when
        # the channel axis is the inferred one; the channel count is then
        # unknown until the call.
        if target[0] != -1:
            raise ValueError(
                f"An input with unknown sizes needs `{name}` of the form "
                f"(-1, *atom_shape). Received: {name}={signal_shape!r}, "
                f"input_shape={tuple(input_shape)}"
            )
        return (None,) + target[1:]
    size = math.prod(feature_shape)
    if size % known or (-1 not in target and known != size):
        raise ValueError(
            f"`{name}`={signal_shape!r} does not divide the input of shape "
            f"{feature_shape} ({size} values per sample). "
            f"Received: {name}={signal_shape!r}"
        )
    return tuple(size // known if dim == -1 else dim for dim in target)


@anysma_export
class InputModule(Module):
    """The entry module of a capsule: reshape, tile and attach dissimilarities.

    Turns a tensor (or a tuple `(signals, dissimilarities)`) into the module
    signal of a capsule: signals `(batch, capsules, channels, *atom)` (the
    input is tiled once per capsule) and dissimilarities
    `(batch, prototypes, channels)`.

    With `sparse_signal=True` the signals are not tiled: they are passed
    once, `(batch, 1, channels, *atom)`, since every capsule sees the same
    input. The modules that follow broadcast them: measuring modules compare
    them with all prototypes (in GEMM form for the Euclidean, Omega and
    tangent distances), the routing modules contract them, transformations
    with one weight per capsule (`scope="local"` or `"capsule_wise"`) map
    them to per-capsule signals. The results are the same as with tiled
    signals, but no `(batch, capsules, channels, *atom)` copy is made, which
    is what makes large inputs fit (the later original's `sparse_signal`,
    e.g. LVQ-capsules on 96 x 96 smallNORB images). Plain Keras layers
    added after the `InputModule` see the `(batch, 1, channels, *atom)`
    signals.

    Args:
        signal_shape: Reshape of the signals without the batch axis: `None`
            (keep), an int `d` (short for `(-1, d)`: channels of d-vectors) or
            a tuple `(channels, *atom)` with at most one -1.
        dissimilarity_initializer: If given, a trainable vector of initial
            dissimilarities of shape `(channels,)` is created and overrides
            incoming dissimilarities (use `"zeros"` with `trainable=False` for
            plain inputs). If `None`, the input must be a tuple
            `(signals, dissimilarities)`.
        dissimilarity_regularizer: Regularizer of that vector.
        dissimilarity_constraint: Constraint of that vector (`"NonNeg"`).
        sparse_signal: Pass the signals once, `(batch, 1, channels, *atom)`,
            instead of tiling them over the capsules (see above).
        prototype_distribution: Set by the capsule.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        A tensor `(batch, ...)` or a tuple of it and dissimilarities
        `(batch, ...)` with `channels` values per sample.

    Output shape:
        `((batch, capsules, channels, *atom), (batch, prototypes, channels))`;
        with `sparse_signal=True` the signals are `(batch, 1, channels,
        *atom)`.

    Example:

    >>> import numpy as np
    >>> module = InputModule(
    ...     signal_shape=(-1, 8), dissimilarity_initializer="zeros",
    ...     sparse_signal=True, prototype_distribution=(2, 10))
    >>> signals, dissimilarities = module(np.zeros((4, 6, 8), dtype="float32"))
    >>> tuple(signals.shape), tuple(dissimilarities.shape)
    ((4, 1, 6, 8), (4, 20, 6))
    """

    requires_prototype_distribution = True

    def __init__(
        self,
        signal_shape=None,
        dissimilarity_initializer=None,
        dissimilarity_regularizer=None,
        dissimilarity_constraint="NonNeg",
        sparse_signal=False,
        prototype_distribution=None,
        **kwargs,
    ):
        if "input_to_dict" in kwargs:
            warn_original_keyword(
                "input_to_dict",
                kwargs.pop("input_to_dict"),
                "a tuple or list input `(signals, dissimilarities)` is always "
                "a module signal",
            )
        # Names used by the later original anysma.
        dissimilarity_initializer = kwargs.pop(
            "init_diss_initializer", dissimilarity_initializer
        )
        dissimilarity_regularizer = kwargs.pop(
            "init_diss_regularizer", dissimilarity_regularizer
        )
        dissimilarity_constraint = kwargs.pop(
            "init_diss_constraint", dissimilarity_constraint
        )
        super().__init__(prototype_distribution=prototype_distribution, **kwargs)
        if isinstance(signal_shape, list):
            signal_shape = tuple(signal_shape)
        self.signal_shape = signal_shape
        self.dissimilarity_initializer = (
            None
            if dissimilarity_initializer is None
            else keras.initializers.get(dissimilarity_initializer)
        )
        self.dissimilarity_regularizer = keras.regularizers.get(
            dissimilarity_regularizer
        )
        self.dissimilarity_constraint = constraints.get(dissimilarity_constraint)
        if not isinstance(sparse_signal, bool):
            raise TypeError(
                "`sparse_signal` must be True or False. "
                f"Received: sparse_signal={sparse_signal!r}"
            )
        self.sparse_signal = sparse_signal

    def build(self, input_shape):
        tables = self.prototype_tables
        if _is_shape_tuple(input_shape):
            signals_shape, dissimilarities_shape = input_shape[0], input_shape[1]
        else:
            signals_shape, dissimilarities_shape = input_shape, None
        self.resolved_signal_shape = resolve_signal_shape(
            self.signal_shape, signals_shape
        )
        if len(self.resolved_signal_shape) < 2:
            raise ValueError(
                "The signals need a channel axis and an atom: shape "
                "(batch, channels, *atom). Set `signal_shape`, e.g. "
                f"signal_shape=(1, -1). Received: input_shape={signals_shape}, "
                f"signal_shape={self.signal_shape!r}"
            )
        channels = self.resolved_signal_shape[0]
        if self.dissimilarity_initializer is not None and channels is None:
            raise ValueError(
                "A trainable dissimilarity vector needs a known number of "
                "channels, but the input has unknown sizes: pass "
                "(signals, dissimilarities) instead. Received: "
                f"input_shape={tuple(signals_shape)}"
            )
        if self.dissimilarity_initializer is not None:
            self.dissimilarity = self.add_weight(
                name="dissimilarity",
                shape=(channels,),
                initializer=self.dissimilarity_initializer,
                regularizer=self.dissimilarity_regularizer,
                constraint=self.dissimilarity_constraint,
            )
        elif dissimilarities_shape is None:
            raise ValueError(
                f"InputModule `{self.name}` got a plain tensor and has no "
                "`dissimilarity_initializer`: pass a tuple (signals, "
                "dissimilarities) or set dissimilarity_initializer='zeros'. "
                "Received: dissimilarity_initializer=None"
            )
        elif channels is not None and None not in dissimilarities_shape[1:]:
            size = math.prod(dissimilarities_shape[1:])
            if size != channels:
                raise ValueError(
                    f"The incoming dissimilarities must hold one value per "
                    f"channel ({channels}). Received: dissimilarities shape "
                    f"{tuple(dissimilarities_shape)} for signal shape "
                    f"{self.resolved_signal_shape}"
                )
        self._tables = tables

    def call(self, inputs):
        if isinstance(inputs, (tuple, list)):
            signals, dissimilarities = inputs[0], inputs[1]
        else:
            signals, dissimilarities = inputs, None
        tables = self._tables
        batch = ops.shape(signals)[0]
        channels, atom_shape = (
            self.resolved_signal_shape[0],
            self.resolved_signal_shape[1:],
        )
        signals = ops.reshape(
            signals, (batch, -1 if channels is None else channels) + atom_shape
        )
        signals = ops.cast(signals, self.compute_dtype)
        if channels is None:
            channels = ops.shape(signals)[1]
        signals = ops.expand_dims(signals, 1)
        if not self.sparse_signal:
            signals = ops.broadcast_to(
                signals, (batch, tables.capsule_number, channels) + atom_shape
            )
        if self.dissimilarity_initializer is not None:
            dissimilarities = ops.broadcast_to(
                ops.cast(self.dissimilarity, self.compute_dtype),
                (batch, tables.proto_number, channels),
            )
        else:
            dissimilarities = ops.cast(
                ops.reshape(dissimilarities, (batch, 1, channels)), self.compute_dtype
            )
            dissimilarities = ops.broadcast_to(
                dissimilarities, (batch, tables.proto_number, channels)
            )
        return signals, dissimilarities

    def compute_output_shape(self, input_shape):
        signals_shape = input_shape[0] if _is_shape_tuple(input_shape) else input_shape
        tables = self.prototype_tables
        shape = resolve_signal_shape(self.signal_shape, signals_shape)
        batch = signals_shape[0]
        return (
            (batch, 1 if self.sparse_signal else tables.capsule_number) + shape,
            (batch, tables.proto_number, shape[0]),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "signal_shape": self.signal_shape,
                "dissimilarity_initializer": None
                if self.dissimilarity_initializer is None
                else keras.initializers.serialize(self.dissimilarity_initializer),
                "dissimilarity_regularizer": keras.regularizers.serialize(
                    self.dissimilarity_regularizer
                ),
                "dissimilarity_constraint": constraints.serialize(
                    self.dissimilarity_constraint
                ),
                "sparse_signal": self.sparse_signal,
            }
        )
        return config


@anysma_export
class OutputModule(Module):
    """The exit module: check the signal and optionally drop the capsule axis.

    Use it to hand a capsule's `(signals, dissimilarities)` to ordinary Keras
    layers; with `squeeze_capsule_dim=True` a one-capsule "capsule" acts as a
    plain vector-processing unit.

    Args:
        squeeze_capsule_dim: Remove the capsule axis (it must have length 1).
        **kwargs: Base layer keyword arguments, such as `name`.

    Input shape:
        `((batch, capsules, *atom), (batch, capsules))`.

    Output shape:
        The same, or `((batch, *atom), (batch,))` when squeezed.
    """

    def __init__(self, squeeze_capsule_dim=False, **kwargs):
        if "output_to_list" in kwargs:
            warn_original_keyword(
                "output_to_list",
                kwargs.pop("output_to_list"),
                "the output is always the tuple `(signals, dissimilarities)`, "
                "indexed like the original's list and dict",
            )
        super().__init__(**kwargs)
        self.squeeze_capsule_dim = bool(squeeze_capsule_dim)

    def build(self, input_shape):
        signals_shape, dissimilarities_shape = input_shape[0], input_shape[1]
        if len(dissimilarities_shape) != 2 or (
            None not in (signals_shape[1], dissimilarities_shape[1])
            and signals_shape[1] != dissimilarities_shape[1]
        ):
            raise ValueError(
                "OutputModule expects signals (batch, capsules, ...) and "
                "dissimilarities (batch, capsules) (after routing and "
                f"competition). Received: shapes {tuple(signals_shape)} and "
                f"{tuple(dissimilarities_shape)}"
            )
        if self.squeeze_capsule_dim and signals_shape[1] != 1:
            raise ValueError(
                "`squeeze_capsule_dim=True` needs exactly one capsule. "
                f"Received: {signals_shape[1]} capsules"
            )

    def call(self, inputs):
        self._check_signal(inputs, arity=(2, 3))
        if not self.squeeze_capsule_dim:
            return tuple(inputs)
        return tuple(ops.squeeze(tensor, axis=1) for tensor in inputs)

    def get_config(self):
        config = super().get_config()
        config["squeeze_capsule_dim"] = self.squeeze_capsule_dim
        return config


@anysma_export
class SplitModule(Module):
    """Split a feature map into signals and a dissimilarity map.

    `x[..., :index]` become the signals and `x[..., index:]` the
    dissimilarities (along `axis`), e.g. a convolution with `F + 1` filters
    gives `F`-dimensional signals and one dissimilarity per position.

    Args:
        axis: The axis to split (not the batch axis).
        index: Where to split; negative counts from the end.
        **kwargs: Base layer keyword arguments, such as `name`.
    """

    def __init__(self, axis=-1, index=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.index = index

    def _split_point(self, input_shape):
        rank = len(input_shape)
        axis = self.axis if self.axis >= 0 else rank + self.axis
        if not 0 < axis < rank:
            raise ValueError(
                f"`axis` must name a non-batch axis of the {rank}-D input. "
                f"Received: axis={self.axis}"
            )
        size = input_shape[axis]
        if size is None:
            raise ValueError(
                f"SplitModule needs a known size on axis {axis}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        index = self.index if self.index >= 0 else size + self.index
        if not 0 < index < size:
            raise ValueError(
                f"`index` must split axis {axis} of size {size} into two "
                f"non-empty parts. Received: index={self.index}"
            )
        return axis, index, size

    def build(self, input_shape):
        self._split_point(input_shape)

    def call(self, inputs):
        axis, index, size = self._split_point(tuple(inputs.shape))
        signals, dissimilarities = ops.split(inputs, [index], axis=axis)
        return signals, dissimilarities

    def compute_output_shape(self, input_shape):
        axis, index, size = self._split_point(input_shape)
        first, second = list(input_shape), list(input_shape)
        first[axis], second[axis] = index, size - index
        return tuple(first), tuple(second)

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "index": self.index})
        return config
