"""The LVQ-capsule network of Saralajew et al. (2018)."""

import numbers

import keras

from anysma import regularizers
from anysma.api_export import anysma_export
from anysma.capsule import Capsule
from anysma.layers import BatchNormalization
from anysma.models._base import GuardedModel
from anysma.modules import Classification
from anysma.modules import GibbsRouting
from anysma.modules import InputModule
from anysma.modules import RestrictedTangentDistance
from anysma.modules import SplitModule
from anysma.modules import TangentDistance
from anysma.utils.validation import check_image_shape
from anysma.utils.validation import check_int
from anysma.utils.validation import check_number

# (filters without the dissimilarity channels, kernel size, strides,
#  initializer, batch normalization + ReLU, dropout) of the trunk blocks.
_TRUNK = (
    (32, 3, 1, "glorot_normal", True, True),
    (64, 3, 1, "glorot_normal", True, True),
    (64, 3, 1, "normal", True, True),
    (64, 5, 2, "normal", True, True),
    (32, 3, 1, "normal", False, True),
    (64, 3, 1, "glorot_normal", False, True),
    (64, 3, 1, "glorot_normal", False, False),
)
_SIGNAL_FILTERS = 64
_CAPS1_GRID = (8, 8)  # 64 capsules, reshaped to an 8 x 8 map for Caps2.
_CAPS2_GRID = (4, 4)  # 16 capsules, reshaped to a 4 x 4 map for Caps3.


def _initializer(name):
    if name == "normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=0.01)
    return name


def _check_int(value, name, minimum=1):
    return check_int(value, name, minimum=minimum)


def _check_fraction(value, name, low_open=True):
    return check_number(
        value,
        name,
        minimum=0,
        maximum=1,
        include_minimum=not low_open,
        include_maximum=False,
    )


def _check_image_shape(image_shape):
    """Validate `(height, width, channels)`; height and width may be `None`."""
    image_shape = check_image_shape(image_shape, any_resolution=True)
    if any(dim is not None and dim < 2 for dim in image_shape[:2]):
        raise ValueError(
            "`image_shape` needs at least 2 x 2 pixels (the trunk halves the "
            f"resolution once). Received: image_shape={image_shape!r}"
        )
    return image_shape


@anysma_export
class LVQCapsuleNetwork(GuardedModel):
    """The LVQ-capsule network (LVQ-CN) of Saralajew et al. (2018).

    A SimpleNet-like convolutional trunk of seven blocks whose layers have
    `dissimilarity_channels` extra filters, followed by three LVQ-capsule
    layers:

    - **Trunk**: convolutions with 32, 64, 64, 64 (5x5, stride 2), 32, 64
      and 64 filters (+ `dissimilarity_channels` each; "same" padding), the
      first four with batch normalization and ReLU, dropout after the first
      six. The last block's output is split: the first 64 channels are the
      signals, the rest (after a ReLU) the dissimilarity of every position.
    - **Caps1**: 64 capsules of one prototype each. Every position of the
      feature map (every `64 / dissimilarity_channels`-dimensional piece of
      it) is one input vector; a tangent distance (subspace dimension
      `subspace_dim`) measures it, mixed with the input dissimilarity
      (`alpha = linear_factor`), and Gibbs routing sums over all positions.
      So Caps1 works at any image resolution.
    - **Caps2**: the 64 Caps1 vectors as an 8 x 8 map -> two 3 x 3
      convolutions (64 filters, linear) -> 16 capsules with tangent
      distances, routed over the 64 positions.
    - **Caps3**: the 16 Caps2 vectors as a 4 x 4 map -> a 3 x 3
      convolution (128 filters) -> `num_classes` capsules with restricted
      tangent distances, routed over the 16 positions (with
      `anysma.regularizers.MaxDistance(distance_regularization)` on the
      routed dissimilarities), and `Classification("neg_softmax")` (layer
      `"lvq_caps"`).

    Every capsule layer passes its input once to all capsules
    (`InputModule(sparse_signal=True)`) and measures it in GEMM form, so no
    `(batch, capsules, positions, dim)` copy is made: this keeps the memory of
    large images (96 x 96 smallNORB) in bounds.

    The output is the class probabilities `(batch, num_classes)`; the paper
    trains them with `anysma.losses.GeneralizedKullbackLeiblerDivergence()`
    and Adam. The routing inverse temperatures are fixed to one (Eq. (3) of
    the paper). Parameters: 497,956 for MNIST (`image_shape=(28, 28, 1)`,
    10 classes; 497,406 trainable), 498,550 for CIFAR-10 (`(32, 32, 3)`;
    498,000 trainable) and 442,387 for smallNORB (`(32, 32, 2)`, 5 classes,
    `dissimilarity_channels=2`; 441,834 trainable): the paper's "498K" and
    "442K" (the trainable weights are the paper's; the original's counts
    had 4 non-trainable scalars fewer, see below).

    **Deviation from the original: batch normalization.** The trunk uses
    `anysma.layers.BatchNormalization` (bias-corrected moving statistics,
    one extra non-trainable step counter per layer) with momentum 0.9,
    where the original used Keras' layer with momentum 0.99. The
    `N(0, 0.01)`-initialized convolutions and the first layer on `[0, 1]`
    pixels have input variances of 0.005 to 0.04, far below the moving
    variance's initial 1; Keras' moving averages take several hundred steps
    to forget that 1, and the error compounds through the four normalized
    blocks, so a network evaluated in inference mode early in training
    predicted one class for every image (9.8 % validation accuracy after a
    quarter epoch of MNIST, where training mode reached 61 %). With the
    bias-corrected averages inference matches training mode from the first
    steps. `batch_norm_momentum=0.99, batch_norm_debiasing=False` restores
    the original.

    No weight depends on the image resolution, so MNIST weights run on 40 x
    40 affNIST images: `model.with_image_shape((40, 40, 1))` builds the same
    network for the new size and copies the weights.

    Args:
        image_shape: `(height, width, channels)`; height and width may be
            `None`, so one model runs on 28 x 28 MNIST and 40 x 40 affNIST
            (no weight depends on the resolution).
        num_classes: The number of classes (Caps3 capsules).
        dissimilarity_channels: Extra filters per trunk layer; the last
            one's are the input dissimilarities of Caps1 (1; 2 for the
            stereo images of smallNORB). Must divide 64.
        subspace_dim: Subspace dimension of all tangent distances.
        linear_factor: `alpha` of the dissimilarity update of every capsule
            layer, in (0, 1).
        dropout_rate: Dropout rate of the trunk.
        epsilon: Lower clamp of the tangent distances before the root.
        distance_regularization: Weight of the `MaxDistance` regularizer of
            the Caps3 routing (0 disables it).
        batch_norm_momentum: Momentum of the moving statistics of the
            trunk's batch normalization, in [0, 1).
        batch_norm_debiasing: Use `anysma.layers.BatchNormalization`
            (bias-corrected moving statistics, the default) instead of
            `keras.layers.BatchNormalization` (moving variance starting at 1,
            as in the original).
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> model = anysma.models.LVQCapsuleNetwork(image_shape=(28, 28, 1))
    >>> model.count_params()
    497956
    >>> model_40 = model.with_image_shape((40, 40, 1))
    >>> model_40.output_shape
    (None, 10)

    Reference:
        Saralajew, Nooka, Kaden and Villmann, "Learning Vector Quantization
        Capsules", Machine Learning Reports 02/2018, Fig. 2.
    """

    # Names of the layers that `anysma.visualization` and sub-models read;
    # the model owns them, everything else asks the model for them.
    #: The signal/dissimilarity split after the trunk.
    SPLIT_LAYER = "split"
    #: The ReLU'd dissimilarity channels of the last trunk convolution.
    INPUT_DISSIMILARITIES_LAYER = "dissimilarity_relu"
    CAPS1_ROUTING_LAYER = "caps1_routing"
    CAPS2_MEASURING_LAYER = "caps2_tangent_distance"
    CAPS2_ROUTING_LAYER = "caps2_routing"
    CAPS3_MEASURING_LAYER = "caps3_restricted_tangent_distance"
    CAPS3_ROUTING_LAYER = "caps3_routing"
    #: The final module of Caps3: `(signals, dissimilarities, probabilities)`.
    OUTPUT_LAYER = "lvq_caps"
    #: Every layer of Caps3 but the output is named `caps3_<part>`.
    CAPS3_PREFIX = "caps3_"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        dissimilarity_channels=1,
        subspace_dim=16,
        linear_factor=0.66,
        dropout_rate=0.25,
        epsilon=1e-12,
        distance_regularization=1e-4,
        batch_norm_momentum=0.9,
        batch_norm_debiasing=True,
        dtype=None,
        **kwargs,
    ):
        image_shape = _check_image_shape(image_shape)
        num_classes = _check_int(num_classes, "num_classes")
        dissimilarity_channels = _check_int(
            dissimilarity_channels, "dissimilarity_channels"
        )
        if _SIGNAL_FILTERS % dissimilarity_channels:
            raise ValueError(
                "`dissimilarity_channels` must divide the 64 signal channels "
                "(each dissimilarity channel gets a 64 / dissimilarity_channels"
                " dimensional input vector). Received: dissimilarity_channels="
                f"{dissimilarity_channels}"
            )
        signal_dim = _SIGNAL_FILTERS // dissimilarity_channels
        subspace_dim = _check_int(subspace_dim, "subspace_dim")
        if subspace_dim >= signal_dim:
            raise ValueError(
                "`subspace_dim` must be below the Caps1 vector size 64 / "
                f"dissimilarity_channels = {signal_dim}. "
                f"Received: subspace_dim={subspace_dim}"
            )
        linear_factor = _check_fraction(linear_factor, "linear_factor")
        dropout_rate = _check_fraction(dropout_rate, "dropout_rate", low_open=False)
        if not isinstance(batch_norm_debiasing, bool):
            raise TypeError(
                "`batch_norm_debiasing` must be a bool. Received: "
                f"batch_norm_debiasing={batch_norm_debiasing!r}"
            )
        batch_norm_momentum = _check_fraction(
            batch_norm_momentum, "batch_norm_momentum", low_open=False
        )
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, numbers.Real)
            or epsilon < 0
        ):
            raise ValueError(
                f"`epsilon` must be a number >= 0. Received: epsilon={epsilon!r}"
            )
        if (
            isinstance(distance_regularization, bool)
            or not isinstance(distance_regularization, numbers.Real)
            or distance_regularization < 0
        ):
            raise ValueError(
                "`distance_regularization` must be a number >= 0. Received: "
                f"distance_regularization={distance_regularization!r}"
            )

        # === Layers ===
        normalization = (
            BatchNormalization
            if batch_norm_debiasing
            else keras.layers.BatchNormalization
        )
        trunk = []
        for index, (filters, kernel, strides, init, normalize, dropout) in enumerate(
            _TRUNK, start=1
        ):
            trunk.append(
                keras.layers.Conv2D(
                    filters + dissimilarity_channels,
                    kernel,
                    strides=strides,
                    padding="same",
                    kernel_initializer=_initializer(init),
                    dtype=dtype,
                    name=f"block{index}_conv",
                )
            )
            if normalize:
                trunk.append(
                    normalization(
                        momentum=batch_norm_momentum,
                        dtype=dtype,
                        name=f"block{index}_batch_normalization",
                    )
                )
                trunk.append(keras.layers.ReLU(dtype=dtype, name=f"block{index}_relu"))
            if dropout and dropout_rate > 0:
                trunk.append(
                    keras.layers.Dropout(
                        dropout_rate, dtype=dtype, name=f"block{index}_dropout"
                    )
                )
        split = SplitModule(
            axis=-1, index=_SIGNAL_FILTERS, dtype=dtype, name=self.SPLIT_LAYER
        )
        dissimilarity_activation = keras.layers.ReLU(
            dtype=dtype, name=self.INPUT_DISSIMILARITIES_LAYER
        )

        def tangent(name, restricted=False, **extra):
            distance = RestrictedTangentDistance if restricted else TangentDistance
            return distance(
                projected_atom_shape=subspace_dim,
                squared_dissimilarity=False,
                epsilon=epsilon,
                linear_factor=linear_factor,
                dtype=dtype,
                name=name,
                **extra,
            )

        caps1 = Capsule(
            prototype_distribution=(1, _CAPS1_GRID[0] * _CAPS1_GRID[1]), name="caps1"
        )
        caps1.add(
            [
                InputModule(
                    signal_shape=(-1, signal_dim),
                    sparse_signal=True,
                    dtype=dtype,
                    name="caps1_input",
                ),
                tangent("caps1_tangent_distance"),
                GibbsRouting(
                    norm_axis="channels",
                    trainable=False,
                    dtype=dtype,
                    name=self.CAPS1_ROUTING_LAYER,
                ),
            ]
        )
        caps2 = Capsule(
            prototype_distribution=(1, _CAPS2_GRID[0] * _CAPS2_GRID[1]), name="caps2"
        )
        caps2.add(
            [
                keras.layers.Reshape(
                    _CAPS1_GRID + (signal_dim,), dtype=dtype, name="caps2_reshape"
                ),
                keras.layers.Conv2D(
                    64,
                    3,
                    padding="same",
                    kernel_initializer="glorot_normal",
                    dtype=dtype,
                    name="caps2_conv1",
                ),
                keras.layers.Conv2D(
                    64,
                    3,
                    padding="same",
                    kernel_initializer="glorot_normal",
                    dtype=dtype,
                    name="caps2_conv2",
                ),
                InputModule(
                    signal_shape=(_CAPS1_GRID[0] * _CAPS1_GRID[1], 64),
                    sparse_signal=True,
                    dtype=dtype,
                    name="caps2_input",
                ),
                tangent(self.CAPS2_MEASURING_LAYER),
                GibbsRouting(
                    norm_axis="channels",
                    trainable=False,
                    dtype=dtype,
                    name=self.CAPS2_ROUTING_LAYER,
                ),
            ]
        )
        caps3 = Capsule(prototype_distribution=(1, num_classes), name="caps3")
        caps3.add(
            [
                keras.layers.Reshape(
                    _CAPS2_GRID + (64,), dtype=dtype, name=self.CAPS3_PREFIX + "reshape"
                ),
                keras.layers.Conv2D(
                    128,
                    3,
                    padding="same",
                    kernel_initializer="glorot_normal",
                    dtype=dtype,
                    name=self.CAPS3_PREFIX + "conv",
                ),
                InputModule(
                    signal_shape=128,
                    sparse_signal=True,
                    dtype=dtype,
                    name=self.CAPS3_PREFIX + "input",
                ),
                tangent(self.CAPS3_MEASURING_LAYER, restricted=True),
                GibbsRouting(
                    norm_axis="channels",
                    trainable=False,
                    diss_regularizer=(
                        regularizers.MaxValue(distance_regularization)
                        if distance_regularization > 0
                        else None
                    ),
                    dtype=dtype,
                    name=self.CAPS3_ROUTING_LAYER,
                ),
                Classification(
                    probability_transformation="neg_softmax",
                    dtype=dtype,
                    name=self.OUTPUT_LAYER,
                ),
            ]
        )

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        features = images
        for layer in trunk:
            features = layer(features)
        signals, dissimilarities = split(features)
        dissimilarities = dissimilarity_activation(dissimilarities)
        outputs = caps3(caps2(caps1((signals, dissimilarities))))
        super().__init__(inputs=images, outputs=outputs[2], dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.dissimilarity_channels = dissimilarity_channels
        self.subspace_dim = subspace_dim
        self.linear_factor = linear_factor
        self.dropout_rate = dropout_rate
        self.epsilon = float(epsilon)
        self.distance_regularization = float(distance_regularization)
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_debiasing = batch_norm_debiasing

    def with_image_shape(self, image_shape):
        """The same network for another image size, with these weights.

        No weight depends on the resolution (Caps1 routes over all
        positions), so e.g. a model trained on 28 x 28 MNIST digits
        classifies 40 x 40 affNIST digits.

        Args:
            image_shape: `(height, width, channels)`; the channels must be
                those of this model.

        Returns:
            A new `LVQCapsuleNetwork` with copies of this model's weights.
        """
        image_shape = _check_image_shape(image_shape)
        if image_shape[2] != self.image_shape[2]:
            raise ValueError(
                f"`image_shape` must keep the {self.image_shape[2]} channels of "
                f"the model. Received: image_shape={image_shape}"
            )
        config = self.get_config()
        config.update({"image_shape": image_shape, "name": None})
        model = type(self).from_config(config)
        model.set_weights(self.get_weights())
        return model

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "dissimilarity_channels": self.dissimilarity_channels,
            "subspace_dim": self.subspace_dim,
            "linear_factor": self.linear_factor,
            "dropout_rate": self.dropout_rate,
            "epsilon": self.epsilon,
            "distance_regularization": self.distance_regularization,
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_debiasing": self.batch_norm_debiasing,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
