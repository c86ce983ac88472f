"""Matrix capsules with EM routing (Hinton, Sabour and Frosst, 2018).

A matrix capsule has a 4 x 4 pose matrix and an activation in [0, 1]. The
layers pass tuples `(poses, activations)`:

* capsule grids: poses `(batch, height, width, types, 4, 4)` and
  activations `(batch, height, width, types)`;
* class capsules: poses `(batch, classes, 4, 4)` and activations
  `(batch, classes)`.

`PrimaryMatrixCaps` turns a feature map into a capsule grid,
`ConvMatrixCaps` maps a grid to a grid (kernel `K`, stride `s`, EM routing
within the receptive fields), `ClassMatrixCaps` maps a grid to class
capsules (transformation matrices shared over positions, coordinate
addition). `EMRouting` exposes the routing alone for votes built by other
layers. The math lives in `anysma.ops.em_routing`; see its docstring for the
implementation pitfalls (Gritzman, 2019) that it handles.
"""

import math

import keras
from keras import ops

from anysma.api_export import anysma_export
from anysma.ops.em_routing import capsule_patch_ids
from anysma.ops.em_routing import capsule_patches
from anysma.ops.em_routing import coordinate_addition
from anysma.ops.em_routing import em_routing
from anysma.ops.em_routing import inverse_temperatures
from anysma.utils.validation import check_int
from anysma.utils.validation import check_number

POSE_SHAPE = (4, 4)
_POSE_SIZE = math.prod(POSE_SHAPE)


def _default(initializer, default):
    return keras.initializers.get(default if initializer is None else initializer)


def _default_beta_a_initializer():
    # Gritzman's initialization, matched to the scale of the normalized cost
    # (`cost_normalization=100`) and the small inverse temperatures.
    return keras.initializers.TruncatedNormal(mean=-1000.0, stddev=500.0)


def _default_kernel_initializer():
    return keras.initializers.TruncatedNormal(stddev=0.5)


class _RoutingOptions:
    """The EM routing arguments shared by the routing layers."""

    def _set_routing_options(
        self, iterations, final_lambda, epsilon, cost_normalization
    ):
        self.iterations = check_int(iterations, "iterations", minimum=1)
        inverse_temperatures(self.iterations, final_lambda)  # validates
        self.final_lambda = float(final_lambda)
        self.epsilon = check_number(
            epsilon, "epsilon", minimum=0, include_minimum=False
        )
        self.cost_normalization = check_number(
            cost_normalization,
            "cost_normalization",
            minimum=0,
            include_minimum=False,
            allow_none=True,
        )

    def _routing_config(self):
        return {
            "iterations": self.iterations,
            "final_lambda": self.final_lambda,
            "epsilon": self.epsilon,
            "cost_normalization": self.cost_normalization,
        }

    def _add_betas(self, num_outputs):
        self.beta_u = self.add_weight(
            name="beta_u", shape=(num_outputs,), initializer=self.beta_u_initializer
        )
        self.beta_a = self.add_weight(
            name="beta_a", shape=(num_outputs,), initializer=self.beta_a_initializer
        )

    def _route(self, votes, activations, child_ids=None, num_children=None):
        return em_routing(
            votes,
            activations,
            ops.cast(self.beta_u, votes.dtype),
            ops.cast(self.beta_a, votes.dtype),
            iterations=self.iterations,
            final_lambda=self.final_lambda,
            epsilon=self.epsilon,
            cost_normalization=self.cost_normalization,
            child_ids=child_ids,
            num_children=num_children,
        )


def _check_grid_input(layer, input_shape):
    """Check `(poses, activations)` of a capsule grid; return both shapes."""
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
        raise ValueError(
            f"{type(layer).__name__} expects a tuple (poses, activations). "
            f"Received: input_shape={input_shape}"
        )
    poses_shape, activations_shape = (tuple(shape) for shape in input_shape)
    if (
        len(poses_shape) != 6
        or tuple(poses_shape[-2:]) != POSE_SHAPE
        or len(activations_shape) != 4
        or tuple(poses_shape[1:4]) != tuple(activations_shape[1:4])
        or None in poses_shape[1:]
    ):
        raise ValueError(
            f"{type(layer).__name__} expects poses (batch, height, width, "
            "types, 4, 4) and activations (batch, height, width, types) of "
            "known sizes, e.g. the output of PrimaryMatrixCaps. Received: "
            f"poses shape {poses_shape}, activations shape {activations_shape}"
        )
    return poses_shape, activations_shape


def _initializer_config(layer, names):
    return {name: keras.initializers.serialize(getattr(layer, name)) for name in names}


def _regularizer_config(regularizer):
    return keras.regularizers.serialize(regularizer) if regularizer else None


@anysma_export
class PrimaryMatrixCaps(keras.layers.Layer):
    """Primary matrix capsules: a convolution to 4 x 4 poses and activations.

    One convolution computes, at every output position, `capsule_types`
    pose matrices (16 linear outputs each) and `capsule_types` activations
    (the sigmoid of one output each), Hinton et al.'s PrimaryCaps (a 1 x 1
    convolution in the paper).

    Args:
        capsule_types: `B`, the number of capsule types.
        kernel_size: The convolution kernel size (1 in the paper).
        strides: The convolution stride.
        kernel_initializer: Initializer of the convolution kernel.
        bias_initializer: Initializer of the biases.
        kernel_regularizer: Regularizer of the kernel.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Weights:
        `kernel`: `(kernel_size, kernel_size, channels, 17 * capsule_types)`;
        `bias`: `(17 * capsule_types,)`.

    Input shape:
        A feature map `(batch, height, width, channels)`.

    Output shape:
        A tuple `(poses, activations)` of shapes `(batch, out_height,
        out_width, capsule_types, 4, 4)` and `(batch, out_height, out_width,
        capsule_types)` ("valid" padding).

    Example:

    >>> import numpy as np
    >>> poses, activations = PrimaryMatrixCaps(8)(np.zeros((2, 5, 5, 3)))
    >>> tuple(poses.shape), tuple(activations.shape)
    ((2, 5, 5, 8, 4, 4), (2, 5, 5, 8))

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing", ICLR
        2018, Section 3.
    """

    def __init__(
        self,
        capsule_types,
        kernel_size=1,
        strides=1,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.capsule_types = check_int(capsule_types, "capsule_types", minimum=1)
        self.kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        self.strides = check_int(strides, "strides", minimum=1)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "PrimaryMatrixCaps expects a feature map (batch, height, width, "
                f"channels) with known channels. Received: input_shape={input_shape}"
            )
        units = self.capsule_types * (_POSE_SIZE + 1)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, input_shape[-1], units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(units,), initializer=self.bias_initializer
        )

    def call(self, inputs):
        outputs = ops.conv(inputs, self.kernel, strides=self.strides) + self.bias
        height, width = outputs.shape[1:3]
        split = self.capsule_types * _POSE_SIZE
        poses = ops.reshape(
            outputs[..., :split], (-1, height, width, self.capsule_types) + POSE_SHAPE
        )
        return poses, ops.sigmoid(outputs[..., split:])

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[:3]
        sizes = [
            None if dim is None else (dim - self.kernel_size) // self.strides + 1
            for dim in (height, width)
        ]
        grid = (batch, *sizes, self.capsule_types)
        return grid + POSE_SHAPE, grid

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "capsule_types": self.capsule_types,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                **_initializer_config(self, ("kernel_initializer", "bias_initializer")),
                "kernel_regularizer": _regularizer_config(self.kernel_regularizer),
            }
        )
        return config


@anysma_export
class ConvMatrixCaps(_RoutingOptions, keras.layers.Layer):
    """Convolutional matrix capsules with EM routing (ConvCaps).

    Every input capsule `i` in the `K x K` receptive field of an output
    position votes for the pose of every output type `j` with `V_ij = M_i
    W_ij`, one 4 x 4 transformation matrix per kernel position, input type
    and output type. EM routing (`anysma.ops.em_routing`) turns the votes
    and the input activations into the output poses and activations; an
    input capsule that lies in several receptive fields distributes its
    responsibility over all the output capsules it votes for (Gritzman,
    2019).

    Args:
        capsule_types: The number of output capsule types (`C` and `D` in
            the paper).
        kernel_size: `K`.
        strides: The stride `s`.
        iterations: The number of EM iterations (3 in the paper).
        final_lambda: The limit of the inverse temperature schedule
            `lambda_t = final_lambda (1 - 0.95^(t+1))`.
        epsilon: The variance floor.
        cost_normalization: Gritzman's normalization of the amount of data
            per output capsule, or `None` for the paper's cost.
        kernel_initializer: Initializer of the transformation matrices;
            default: truncated normal with standard deviation 0.5.
        beta_u_initializer: Initializer of `beta_u`.
        beta_a_initializer: Initializer of `beta_a`; default: truncated
            normal with mean -1000 and standard deviation 500 (Gritzman).
        kernel_regularizer: Regularizer of the transformation matrices.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Weights:
        `kernel`: `(K * K, input_types, capsule_types, 4, 4)`;
        `beta_u`, `beta_a`: `(capsule_types,)`.

    Input shape:
        A tuple `(poses, activations)` of shapes `(batch, height, width,
        input_types, 4, 4)` and `(batch, height, width, input_types)`.

    Output shape:
        `(poses, activations)` of shapes `(batch, out_height, out_width,
        capsule_types, 4, 4)` and `(batch, out_height, out_width,
        capsule_types)`, with `out_height = (height - K) // s + 1`.

    Example:

    >>> import numpy as np
    >>> poses = np.random.rand(2, 5, 5, 4, 4, 4).astype("float32")
    >>> activations = np.random.rand(2, 5, 5, 4).astype("float32")
    >>> out_poses, out_activations = ConvMatrixCaps(6, 3, strides=2)(
    ...     (poses, activations))
    >>> tuple(out_poses.shape), tuple(out_activations.shape)
    ((2, 2, 2, 6, 4, 4), (2, 2, 2, 6))

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing", ICLR
        2018; Gritzman, "Avoiding implementation pitfalls of matrix capsules
        with EM routing", arXiv:1907.00652, 2019.
    """

    def __init__(
        self,
        capsule_types,
        kernel_size=3,
        strides=1,
        iterations=3,
        final_lambda=0.01,
        epsilon=1e-4,
        cost_normalization=100.0,
        kernel_initializer=None,
        beta_u_initializer="glorot_uniform",
        beta_a_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.capsule_types = check_int(capsule_types, "capsule_types", minimum=1)
        self.kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        self.strides = check_int(strides, "strides", minimum=1)
        self._set_routing_options(iterations, final_lambda, epsilon, cost_normalization)
        self.kernel_initializer = _default(
            kernel_initializer, _default_kernel_initializer()
        )
        self.beta_u_initializer = keras.initializers.get(beta_u_initializer)
        self.beta_a_initializer = _default(
            beta_a_initializer, _default_beta_a_initializer()
        )
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        poses_shape, _ = _check_grid_input(self, input_shape)
        height, width, input_types = poses_shape[1:4]
        # Validates the grid against the kernel.
        self._child_ids = capsule_patch_ids(
            height, width, input_types, self.kernel_size, self.strides
        )
        self._num_children = height * width * input_types
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size**2, input_types, self.capsule_types) + POSE_SHAPE,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self._add_betas(self.capsule_types)

    def call(self, inputs):
        poses, activations = inputs
        pose_patches = capsule_patches(poses, self.kernel_size, self.strides)
        activation_patches = capsule_patches(
            activations, self.kernel_size, self.strides
        )
        out_height, out_width, kernel_area, input_types = pose_patches.shape[1:5]
        votes = ops.einsum("bhwkiac,kiocd->bhwkioad", pose_patches, self.kernel)
        groups = out_height * out_width
        inputs_per_group = kernel_area * input_types
        votes = ops.reshape(
            votes, (-1, groups, inputs_per_group, self.capsule_types, _POSE_SIZE)
        )
        activation_patches = ops.reshape(
            activation_patches, (-1, groups, inputs_per_group)
        )
        out_poses, out_activations = self._route(
            votes, activation_patches, self._child_ids, self._num_children
        )
        grid = (-1, out_height, out_width, self.capsule_types)
        return (
            ops.reshape(out_poses, grid + POSE_SHAPE),
            ops.reshape(out_activations, grid),
        )

    def compute_output_shape(self, input_shape):
        poses_shape, _ = _check_grid_input(self, input_shape)
        sizes = [
            (dim - self.kernel_size) // self.strides + 1 for dim in poses_shape[1:3]
        ]
        grid = (poses_shape[0], *sizes, self.capsule_types)
        return grid + POSE_SHAPE, grid

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "capsule_types": self.capsule_types,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                **self._routing_config(),
                **_initializer_config(
                    self,
                    ("kernel_initializer", "beta_u_initializer", "beta_a_initializer"),
                ),
                "kernel_regularizer": _regularizer_config(self.kernel_regularizer),
            }
        )
        return config


@anysma_export
class ClassMatrixCaps(_RoutingOptions, keras.layers.Layer):
    """Class capsules of matrix capsules: EM routing from a whole grid.

    Every input capsule votes for every class with `V_ij = M_i W_ij`, where
    the transformation matrix of an input type is shared by all positions;
    with `coordinate_addition=True` the scaled centre `((h + 0.5) / H,
    (w + 0.5) / W)` of each position is added to the entries `[0, 3]` and
    `[1, 3]` of its votes (`anysma.ops.coordinate_addition`). EM
    routing over all input capsules gives one pose and one activation per
    class; the activations are the class scores, trained with
    `anysma.losses.SpreadLoss`.

    Args:
        num_classes: The number of class capsules.
        iterations: The number of EM iterations.
        coordinate_addition: Whether to add the scaled coordinates.
        final_lambda: The limit of the inverse temperature schedule.
        epsilon: The variance floor.
        cost_normalization: Gritzman's normalization of the amount of data
            per output capsule, or `None`.
        kernel_initializer: Initializer of the transformation matrices;
            default: truncated normal with standard deviation 0.5.
        beta_u_initializer: Initializer of `beta_u`.
        beta_a_initializer: Initializer of `beta_a`; default: truncated
            normal with mean -1000 and standard deviation 500 (Gritzman).
        kernel_regularizer: Regularizer of the transformation matrices.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Weights:
        `kernel`: `(input_types, num_classes, 4, 4)`;
        `beta_u`, `beta_a`: `(num_classes,)`.

    Input shape:
        A tuple `(poses, activations)` of shapes `(batch, height, width,
        input_types, 4, 4)` and `(batch, height, width, input_types)`.

    Output shape:
        `(poses, activations)` of shapes `(batch, num_classes, 4, 4)` and
        `(batch, num_classes)`.

    Example:

    >>> import numpy as np
    >>> poses = np.random.rand(2, 3, 3, 4, 4, 4).astype("float32")
    >>> activations = np.random.rand(2, 3, 3, 4).astype("float32")
    >>> class_poses, scores = ClassMatrixCaps(5)((poses, activations))
    >>> tuple(class_poses.shape), tuple(scores.shape)
    ((2, 5, 4, 4), (2, 5))

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing", ICLR
        2018, Section 3 (coordinate addition).
    """

    def __init__(
        self,
        num_classes,
        iterations=3,
        coordinate_addition=True,
        final_lambda=0.01,
        epsilon=1e-4,
        cost_normalization=100.0,
        kernel_initializer=None,
        beta_u_initializer="glorot_uniform",
        beta_a_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = check_int(num_classes, "num_classes", minimum=1)
        if not isinstance(coordinate_addition, bool):
            raise TypeError(
                "`coordinate_addition` must be True or False. Received: "
                f"coordinate_addition={coordinate_addition!r}"
            )
        self.coordinate_addition = coordinate_addition
        self._set_routing_options(iterations, final_lambda, epsilon, cost_normalization)
        self.kernel_initializer = _default(
            kernel_initializer, _default_kernel_initializer()
        )
        self.beta_u_initializer = keras.initializers.get(beta_u_initializer)
        self.beta_a_initializer = _default(
            beta_a_initializer, _default_beta_a_initializer()
        )
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        poses_shape, _ = _check_grid_input(self, input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(poses_shape[3], self.num_classes) + POSE_SHAPE,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self._add_betas(self.num_classes)

    def call(self, inputs):
        poses, activations = inputs
        height, width, input_types = poses.shape[1:4]
        votes = ops.einsum("bhwiac,iocd->bhwioad", poses, self.kernel)
        if self.coordinate_addition:
            votes = coordinate_addition(votes)
        num_inputs = height * width * input_types
        votes = ops.reshape(votes, (-1, 1, num_inputs, self.num_classes, _POSE_SIZE))
        activations = ops.reshape(activations, (-1, 1, num_inputs))
        class_poses, scores = self._route(votes, activations)
        return (
            ops.reshape(class_poses, (-1, self.num_classes) + POSE_SHAPE),
            ops.reshape(scores, (-1, self.num_classes)),
        )

    def compute_output_shape(self, input_shape):
        poses_shape, _ = _check_grid_input(self, input_shape)
        batch = poses_shape[0]
        return (batch, self.num_classes) + POSE_SHAPE, (batch, self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "coordinate_addition": self.coordinate_addition,
                **self._routing_config(),
                **_initializer_config(
                    self,
                    ("kernel_initializer", "beta_u_initializer", "beta_a_initializer"),
                ),
                "kernel_regularizer": _regularizer_config(self.kernel_regularizer),
            }
        )
        return config


@anysma_export
class EMRouting(_RoutingOptions, keras.layers.Layer):
    """EM routing of given votes, with learned `beta_u` and `beta_a`.

    The routing of `ConvMatrixCaps` and `ClassMatrixCaps` as a layer of its
    own, for votes that other layers compute. Every input capsule is routed
    within its group only (no input shared by several groups).

    Args:
        iterations: The number of EM iterations.
        final_lambda: The limit of the inverse temperature schedule.
        epsilon: The variance floor.
        cost_normalization: Gritzman's normalization of the amount of data
            per output capsule, or `None`.
        beta_u_initializer: Initializer of `beta_u`.
        beta_a_initializer: Initializer of `beta_a`; default: truncated
            normal with mean -1000 and standard deviation 500 (Gritzman).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Weights:
        `beta_u`, `beta_a`: `(output_capsules,)`.

    Input shape:
        A tuple `(votes, activations)` of shapes `(batch, groups,
        input_capsules, output_capsules, pose)` and `(batch, groups,
        input_capsules)`.

    Output shape:
        `(poses, activations)` of shapes `(batch, groups, output_capsules,
        pose)` and `(batch, groups, output_capsules)`.

    Example:

    >>> import numpy as np
    >>> votes = np.random.rand(2, 1, 12, 5, 16).astype("float32")
    >>> activations = np.random.rand(2, 1, 12).astype("float32")
    >>> poses, scores = EMRouting(iterations=2)((votes, activations))
    >>> tuple(poses.shape), tuple(scores.shape)
    ((2, 1, 5, 16), (2, 1, 5))

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing", ICLR
        2018, Procedure 1.
    """

    def __init__(
        self,
        iterations=3,
        final_lambda=0.01,
        epsilon=1e-4,
        cost_normalization=100.0,
        beta_u_initializer="glorot_uniform",
        beta_a_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._set_routing_options(iterations, final_lambda, epsilon, cost_normalization)
        self.beta_u_initializer = keras.initializers.get(beta_u_initializer)
        self.beta_a_initializer = _default(
            beta_a_initializer, _default_beta_a_initializer()
        )

    def _check_input(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(
                "EMRouting expects a tuple (votes, activations). Received: "
                f"input_shape={input_shape}"
            )
        votes_shape, activations_shape = (tuple(shape) for shape in input_shape)
        if (
            len(votes_shape) != 5
            or len(activations_shape) != 3
            or None in votes_shape[1:]
            or tuple(votes_shape[1:3]) != tuple(activations_shape[1:3])
        ):
            raise ValueError(
                "EMRouting expects votes (batch, groups, input_capsules, "
                "output_capsules, pose) and activations (batch, groups, "
                f"input_capsules). Received: votes shape {votes_shape}, "
                f"activations shape {activations_shape}"
            )
        return votes_shape

    def build(self, input_shape):
        self._add_betas(self._check_input(input_shape)[3])

    def call(self, inputs):
        votes, activations = inputs
        return self._route(votes, activations)

    def compute_output_shape(self, input_shape):
        batch, groups, _, outputs, pose = self._check_input(input_shape)
        return (batch, groups, outputs, pose), (batch, groups, outputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                **self._routing_config(),
                **_initializer_config(
                    self, ("beta_u_initializer", "beta_a_initializer")
                ),
            }
        )
        return config


__all__ = ["ClassMatrixCaps", "ConvMatrixCaps", "EMRouting", "PrimaryMatrixCaps"]
