"""Capsule modules: transformations of the signals.

Transformations act on the signals `(batch, capsules, channels, *atom)` of a
capsule before measuring and leave the dissimilarities untouched. They are
not "real" modules: they need no prototype distribution, only the shapes of
their input, so they work in any capsule (and on their own).

Signals shared by all capsules, `(batch, 1, channels, *atom)` (from
`InputModule(sparse_signal=True)`), stay shared under the `"global"` and
`"channel_wise"` scopes; the `"local"` and `"capsule_wise"` scopes, which
have one weight per capsule of the capsule's prototype distribution, map
them to per-capsule signals `(batch, capsules, channels, *atom)` without
tiling them first.
"""

import numbers

import keras
from keras import ops

from anysma import constraints
from anysma import regularizers
from anysma.api_export import anysma_export
from anysma.capsule import Module

#: The scopes of the weights and the signal axes their leading dims index.
SCOPES = ("local", "global", "channel_wise", "capsule_wise")
_SCOPE_AXES = {
    "local": (1, 2),
    "global": (),
    "channel_wise": (2,),
    "capsule_wise": (1,),
}
_SCOPE_LETTERS = {"local": "kc", "global": "", "channel_wise": "c", "capsule_wise": "k"}
# einsum labels of the atom axes that are not transformed; `b`, `k`, `c`,
# `n` and `m` are taken by batch, capsules, channels, input and output dim.
_ATOM_LETTERS = "defghijlopqrstuvwxyz"


def _check_scope(scope):
    if scope not in SCOPES:
        raise ValueError(
            f"`scope` must be one of {', '.join(repr(s) for s in SCOPES)}. "
            f"Received: scope={scope!r}"
        )
    return scope


def _check_atom_axis(axis, name):
    """An int that is not the batch (0), capsule (1) or channel (2) axis."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"`{name}` must be an int. Received: {name}={axis!r}")
    if axis in (0, 1, 2):
        raise ValueError(
            f"`{name}` must be an atom axis (>= 3, or negative) of the signals "
            "(batch, capsules, channels, *atom); the batch (0), capsule (1) "
            f"and channel (2) axes cannot be transformed. Received: {name}={axis}"
        )
    return int(axis)


def _resolve_atom_axis(axis, signals_shape, name):
    rank = len(signals_shape)
    if rank < 4:
        raise ValueError(
            "The signals need at least one atom axis: shape (batch, capsules, "
            f"channels, *atom). Received: signals shape {signals_shape}"
        )
    resolved = axis + rank if axis < 0 else axis
    if not 3 <= resolved < rank:
        raise ValueError(
            f"`{name}` must name an atom axis (3 ... {rank - 1}, or -1 ... "
            f"{3 - rank}) of the signals of shape {signals_shape}. "
            f"Received: {name}={axis}"
        )
    return resolved


def _expands_shared_signals(module, signals_shape):
    """Whether shared signals `(B, 1, C, ...)` meet one weight per capsule."""
    return (
        signals_shape[1] == 1
        and 1 in _SCOPE_AXES[module.scope]
        and module.prototype_distribution is not None
        and module.capsule_number > 1
    )


def _capsule_shape(module, signals_shape):
    """`signals_shape` with the capsule count of the output on axis 1."""
    if _expands_shared_signals(module, signals_shape):
        return (signals_shape[0], module.capsule_number) + tuple(signals_shape[2:])
    return tuple(signals_shape)


def _scope_prefix(scope, signals_shape, argument):
    """The leading weight dims of a scope (the capsule and/or channel count)."""
    prefix = tuple(signals_shape[axis] for axis in _SCOPE_AXES[scope])
    if any(dim is None for dim in prefix):
        raise ValueError(
            f"`scope='{scope}'` needs a known number of capsules and channels "
            f"to create `{argument}`. Received: signals shape {signals_shape}"
        )
    return prefix


@anysma_export
class LinearTransformation(Module):
    """Map one atom axis of the signals linearly, `x^T A`.

    The signals `(batch, capsules, channels, *atom)` are multiplied along
    `axis` (of size `n`) by matrices `A` of shape `(n, output_dim)`. With the
    default `scope='local'` there is one matrix per capsule and channel: the
    transformation matrices `W_ij` of the prediction vectors
    `u_hat_{j|i} = W_ij u_i` of a CapsNet. The matrices are stored
    "transposed" (`x^T A` instead of `A x`) because the signals are row
    vectors. Not a "real" module: it works on any signal, with or without a
    prototype distribution. It must come before measuring, as it needs the
    `(batch, capsules, channels, ...)` layout.

    Args:
        output_dim: The size of `axis` after the mapping; `None` keeps it.
        axis: The atom axis to map: an int >= 3, or a negative int counting
            from the end (within the atom).
        scope: Which signals share a matrix: `"local"` (one per capsule and
            channel), `"global"` (one for all), `"channel_wise"` (one per
            channel) or `"capsule_wise"` (one per capsule).
        linear_map_initializer: Initializer of the matrices.
        linear_map_regularizer: Regularizer of the matrices.
        linear_map_constraint: Constraint of the matrices.
        **kwargs: Base module arguments, such as `name` and `dtype`.

    Weights:
        `linear_maps`: `(capsules, channels, n, output_dim)` for `"local"`,
        `(n, output_dim)` for `"global"`, `(channels, n, output_dim)` for
        `"channel_wise"` and `(capsules, n, output_dim)` for
        `"capsule_wise"`.

    Input shape:
        A tuple `(signals, dissimilarities)`: signals
        `(batch, capsules, channels, *atom)` (or `(batch, 1, channels,
        *atom)`: shared signals, see the module docstring) and any
        dissimilarities.

    Output shape:
        The same tuple with `atom[axis - 3]` replaced by `output_dim`; the
        dissimilarities are passed on unchanged.

    Example:

    >>> import numpy as np
    >>> transformation = LinearTransformation(output_dim=16)
    >>> signals = np.random.rand(2, 10, 32, 8).astype("float32")
    >>> dissimilarities = np.zeros((2, 10, 32), dtype="float32")
    >>> outputs = transformation((signals, dissimilarities))
    >>> tuple(outputs[0].shape)
    (2, 10, 32, 16)

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NeurIPS 2017 (the prediction vectors `u_hat_{j|i}`).
    """

    def __init__(
        self,
        output_dim=None,
        axis=-1,
        scope="local",
        linear_map_initializer="glorot_uniform",
        linear_map_regularizer=None,
        linear_map_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if output_dim is not None and (
            isinstance(output_dim, bool)
            or not isinstance(output_dim, numbers.Integral)
            or output_dim < 1
        ):
            raise ValueError(
                "`output_dim` must be None (keep the size) or an int >= 1. "
                f"Received: output_dim={output_dim!r}"
            )
        # The user's value is kept (the original stored the built size, so a
        # revived layer could not adapt to another input).
        self.output_dim = None if output_dim is None else int(output_dim)
        self.axis = _check_atom_axis(axis, "axis")
        self.scope = _check_scope(scope)
        self.linear_map_initializer = keras.initializers.get(linear_map_initializer)
        self.linear_map_regularizer = regularizers.get(linear_map_regularizer)
        self.linear_map_constraint = constraints.get(linear_map_constraint)

    def _mapping(self, signals_shape):
        axis = _resolve_atom_axis(self.axis, signals_shape, "axis")
        input_dim = signals_shape[axis]
        if input_dim is None:
            raise ValueError(
                f"The size of the transformed axis {self.axis} must be known. "
                f"Received: signals shape {signals_shape}"
            )
        output_dim = input_dim if self.output_dim is None else self.output_dim
        return axis, input_dim, output_dim

    def build(self, input_shape):
        signals_shape, _ = self._split_signal_shapes(input_shape)
        axis, input_dim, output_dim = self._mapping(signals_shape)
        prefix = _scope_prefix(
            self.scope, _capsule_shape(self, signals_shape), "linear_maps"
        )
        self.linear_maps = self.add_weight(
            name="linear_maps",
            shape=prefix + (input_dim, output_dim),
            initializer=self.linear_map_initializer,
            regularizer=self.linear_map_regularizer,
            constraint=self.linear_map_constraint,
        )
        # One einsum for every scope and atom rank: the transformed axis gets
        # the labels n -> m, all other axes keep theirs (no transposes).
        rank = len(signals_shape)
        labels = ["b", "k", "c"] + list(_ATOM_LETTERS[: rank - 3])
        labels[axis] = "n"
        signals_labels = "".join(labels)
        labels[axis] = "m"
        weight_and_output = f",{_SCOPE_LETTERS[self.scope]}nm->{''.join(labels)}"
        self._equation = signals_labels + weight_and_output
        # Shared signals meeting per-capsule weights enter without their
        # capsule axis of size 1.
        self._shared_equation = signals_labels.replace("k", "") + weight_and_output

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        linear_maps = ops.cast(self.linear_maps, signals.dtype)
        if _expands_shared_signals(self, tuple(signals.shape)):
            outputs = ops.einsum(
                self._shared_equation, ops.squeeze(signals, axis=1), linear_maps
            )
        else:
            outputs = ops.einsum(self._equation, signals, linear_maps)
        return outputs, dissimilarities

    def compute_output_shape(self, input_shape):
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        axis, _, output_dim = self._mapping(signals_shape)
        output_shape = list(_capsule_shape(self, signals_shape))
        output_shape[axis] = output_dim
        return tuple(output_shape), dissimilarities_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "axis": self.axis,
                "scope": self.scope,
                "linear_map_initializer": keras.initializers.serialize(
                    self.linear_map_initializer
                ),
                "linear_map_regularizer": regularizers.serialize(
                    self.linear_map_regularizer
                ),
                "linear_map_constraint": constraints.serialize(
                    self.linear_map_constraint
                ),
            }
        )
        return config


@anysma_export
class AddBias(Module):
    """Add trainable biases to the signals.

    The biases span the atom axes in `axes` and are broadcast over the other
    atom axes; `scope` decides whether capsules and channels have their own
    biases. Not a "real" module: it works on any signal, with or without a
    prototype distribution.

    Args:
        axes: The atom axis (an int >= 3, or negative within the atom) or a
            list of them that the biases span.
        scope: Which signals share biases: `"local"` (one set per capsule and
            channel), `"global"`, `"channel_wise"` or `"capsule_wise"`.
        bias_initializer: Initializer of the biases.
        bias_regularizer: Regularizer of the biases.
        bias_constraint: Constraint of the biases.
        **kwargs: Base module arguments, such as `name` and `dtype`.

    Weights:
        `biases`: the scope prefix (`(capsules, channels)`, `()`,
        `(channels,)` or `(capsules,)`) followed by the sizes of the atom axes
        in `axes`, in the order of the signal axes.

    Input shape:
        A tuple `(signals, dissimilarities)`: signals
        `(batch, capsules, channels, *atom)` (or `(batch, 1, channels,
        *atom)`: shared signals, see the module docstring) and any
        dissimilarities.

    Output shape:
        The input shapes; the dissimilarities are passed on unchanged.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> add_bias = AddBias(axes=-1, scope="global", bias_initializer="ones")
    >>> signals = np.zeros((2, 3, 4, 5), dtype="float32")
    >>> outputs = add_bias((signals, np.zeros((2, 3, 4), dtype="float32")))
    >>> float(keras.ops.convert_to_numpy(outputs[0])[0, 0, 0, 0])
    1.0
    """

    def __init__(
        self,
        axes=-1,
        scope="local",
        bias_initializer="zeros",
        bias_regularizer=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if not axes:
                raise ValueError(
                    "`axes` must name at least one atom axis. Received: axes=[]"
                )
            self.axes = [_check_atom_axis(axis, "axes") for axis in axes]
        else:
            self.axes = _check_atom_axis(axes, "axes")
        self.scope = _check_scope(scope)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)

    def _resolved_axes(self, signals_shape):
        axes = self.axes if isinstance(self.axes, list) else [self.axes]
        # Sorted and without repeats, so the weight follows the signal axes.
        return sorted(
            {_resolve_atom_axis(axis, signals_shape, "axes") for axis in axes}
        )

    def build(self, input_shape):
        signals_shape, _ = self._split_signal_shapes(input_shape)
        axes = self._resolved_axes(signals_shape)
        atom_dims = tuple(signals_shape[axis] for axis in axes)
        if any(dim is None for dim in atom_dims):
            raise ValueError(
                f"The sizes of the axes {self.axes} must be known. "
                f"Received: signals shape {signals_shape}"
            )
        prefix = _scope_prefix(
            self.scope, _capsule_shape(self, signals_shape), "biases"
        )
        self.biases = self.add_weight(
            name="biases",
            shape=prefix + atom_dims,
            initializer=self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )
        # The weight reshaped with size-1 axes broadcasts against the signals.
        broadcast_shape = [1] * len(signals_shape)
        for axis in _SCOPE_AXES[self.scope] + tuple(axes):
            broadcast_shape[axis] = _capsule_shape(self, signals_shape)[axis]
        self._broadcast_shape = tuple(broadcast_shape)

    def call(self, inputs):
        self._check_signal(inputs)
        signals, dissimilarities = inputs
        biases = ops.reshape(
            ops.cast(self.biases, signals.dtype), self._broadcast_shape
        )
        return signals + biases, dissimilarities

    def compute_output_shape(self, input_shape):
        signals_shape, dissimilarities_shape = self._split_signal_shapes(input_shape)
        self._resolved_axes(signals_shape)
        return _capsule_shape(self, signals_shape), dissimilarities_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "axes": list(self.axes) if isinstance(self.axes, list) else self.axes,
                "scope": self.scope,
                # The original wrote these under `linear_map_*` keys, so a
                # revived layer lost them.
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "bias_constraint": constraints.serialize(self.bias_constraint),
            }
        )
        return config


__all__ = ["AddBias", "LinearTransformation"]
