"""CapsNet (Sabour et al., 2017) and its LVQ variant, built from capsules.

Both models take a dict of inputs and return a dict of outputs:

- inputs `{"images": (batch, *image_shape), "labels": (batch, num_classes)}`;
  the one-hot `labels` are optional (pass `None` at prediction time);
- outputs `{"probabilities": (batch, num_classes),
  "reconstruction": (batch, *image_shape)}`.

The reconstruction decoder sees only one digit capsule: the one of the
true class while training (`training=True` and labels given), the one with
the highest probability otherwise (Sabour et al., Section 4.1). Compile with
a loss per output, e.g.

```python
model.compile(
    optimizer="adam",
    loss={"probabilities": anysma.losses.MarginLoss(), "reconstruction": "mse"},
    loss_weights={"probabilities": 1.0, "reconstruction": 0.392},
    metrics={"probabilities": ["accuracy"]},
)
model.fit({"images": x, "labels": y}, {"probabilities": y, "reconstruction": x})
model.predict({"images": x, "labels": None})
```
"""

import math

import keras
from keras import ops

from anysma.api_export import anysma_export
from anysma.capsule import Capsule
from anysma.layers.strided_conv import Conv2D
from anysma.models._base import GuardedModel
from anysma.modules import Classification
from anysma.modules import DynamicRouting
from anysma.modules import GibbsRouting
from anysma.modules import InputModule
from anysma.modules import LinearTransformation
from anysma.modules import MinkowskiDistance
from anysma.ops.squash import squash
from anysma.utils.validation import check_image_shape
from anysma.utils.validation import check_int

# === Helper layers ===


@anysma_export
class CapsuleSquash(keras.layers.Layer):
    """Squash capsule vectors to lengths below one (the CapsNet activation).

    `||s||^2 / (1 + ||s||^2) * s / ||s||` along `axis`; see
    `anysma.ops.squash.squash`.

    Args:
        axis: The axis of the vectors.
        epsilon: Lower clamp of the squared norm before the root.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> import numpy as np
    >>> squashed = CapsuleSquash()(np.array([[3.0, 4.0]], dtype="float32"))
    >>> round(float(np.linalg.norm(squashed)), 3)
    0.962

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NeurIPS 2017, Eq. (1).
    """

    def __init__(self, axis=-1, epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, inputs):
        return squash(inputs, axis=self.axis, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config


@anysma_export
class CapsuleMask(keras.layers.Layer):
    """Keep the vector of one capsule and flatten: the input of a decoder.

    While training (`training=True`) with labels given, the capsule of the
    true class is kept; otherwise the capsule with the highest probability.
    All other capsule vectors are set to zero.

    Call arguments:
        capsules: `(batch, capsules, dim)`.
        probabilities: `(batch, capsules)`.
        labels: Optional one-hot labels `(batch, capsules)`, or `None`.
        training: Whether the call is in training mode.

    Output shape:
        `(batch, capsules * dim)`.

    Example:

    >>> import numpy as np
    >>> capsules = np.ones((1, 3, 2), dtype="float32")
    >>> probabilities = np.array([[0.1, 0.8, 0.1]], dtype="float32")
    >>> np.asarray(CapsuleMask()(capsules, probabilities)).tolist()
    [[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]]

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NeurIPS 2017, Section 4.1.
    """

    def call(self, capsules, probabilities, labels=None, training=None):
        num_capsules = capsules.shape[1]
        if training and labels is not None:
            mask = ops.cast(labels, capsules.dtype)
        else:
            mask = ops.one_hot(
                ops.argmax(probabilities, axis=-1), num_capsules, dtype=capsules.dtype
            )
        masked = capsules * ops.expand_dims(mask, -1)
        return ops.reshape(masked, (-1, num_capsules * capsules.shape[2]))

    def compute_output_shape(self, capsules_shape, *args, **kwargs):
        return (capsules_shape[0], capsules_shape[1] * capsules_shape[2])


# === Shared builders ===


def _check_decoder_units(decoder_units):
    if not isinstance(decoder_units, (list, tuple)):
        raise ValueError(
            "`decoder_units` must be a list of positive ints (the hidden layer "
            f"sizes). Received: decoder_units={decoder_units!r}"
        )
    return [check_int(units, "decoder_units", minimum=1) for units in decoder_units]


def _primary_capsule_count(
    image_shape, conv_kernel_size, primary_capsule_channels, primary_capsule_dim
):
    """The number of primary capsules of the two valid convolutions."""
    height, width = image_shape[:2]
    # conv1: valid, stride 1; primary convolution: valid, stride 2.
    sizes = [
        (dim - conv_kernel_size + 1 - conv_kernel_size) // 2 + 1
        for dim in (height, width)
    ]
    if min(sizes) < 1:
        raise ValueError(
            f"`image_shape`={image_shape} is too small for two valid "
            f"convolutions with conv_kernel_size={conv_kernel_size}. "
            f"Received: image_shape={image_shape}"
        )
    return sizes[0] * sizes[1] * primary_capsule_channels


def _check_capsnet_arguments(
    image_shape,
    num_classes,
    conv_filters,
    conv_kernel_size,
    primary_capsule_channels,
    primary_capsule_dim,
    digit_capsule_dim,
    decoder_units,
):
    """Check the arguments shared by `CapsNet` and `CapsNetLVQ`.

    Returns:
        `(image_shape, num_classes, decoder_units)`, normalized.
    """
    image_shape = check_image_shape(image_shape)
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    for value, name in (
        (conv_filters, "conv_filters"),
        (conv_kernel_size, "conv_kernel_size"),
        (primary_capsule_channels, "primary_capsule_channels"),
        (primary_capsule_dim, "primary_capsule_dim"),
        (digit_capsule_dim, "digit_capsule_dim"),
    ):
        check_int(value, name, minimum=1)
    _primary_capsule_count(
        image_shape, conv_kernel_size, primary_capsule_channels, primary_capsule_dim
    )
    return image_shape, num_classes, _check_decoder_units(decoder_units)


# Names of the layers the decoder plots of `anysma.visualization` read; the
# models expose them as class attributes.
_IMAGES_LAYER = "images"
_MASK_LAYER = "mask"
_DECODER_DENSE_PREFIX = "decoder_dense_"
_DECODER_OUTPUT_LAYER = "decoder_output"
_RECONSTRUCTION_LAYER = "reconstruction"


def _capsnet_inputs(image_shape, num_classes):
    images = keras.Input(shape=image_shape, name=_IMAGES_LAYER)
    labels = keras.Input(shape=(num_classes,), name="labels", optional=True)
    return images, labels


def _feature_layers(images, conv_filters, conv_kernel_size, primary_filters, dtype):
    """`conv1` applied to the images, and the primary-capsule convolution."""
    features = keras.layers.Conv2D(
        conv_filters,
        conv_kernel_size,
        activation="relu",
        dtype=dtype,
        name="conv1",
    )(images)
    # Keras' Conv2D with the same weights, whose stride-2 convolution trains
    # several times faster on the JAX backend (space-to-depth).
    primary = Conv2D(
        primary_filters,
        conv_kernel_size,
        strides=2,
        padding="valid",
        dtype=dtype,
        name="primary_capsules_conv",
    )
    return features, primary


def _decoder(capsules, probabilities, labels, image_shape, decoder_units, dtype):
    """The reconstruction network of Sabour et al. (Fig. 2)."""
    hidden = CapsuleMask(dtype=dtype, name=_MASK_LAYER)(capsules, probabilities, labels)
    for index, units in enumerate(decoder_units):
        hidden = keras.layers.Dense(
            units,
            activation="relu",
            dtype=dtype,
            name=f"{_DECODER_DENSE_PREFIX}{index + 1}",
        )(hidden)
    hidden = keras.layers.Dense(
        math.prod(image_shape),
        activation="sigmoid",
        dtype=dtype,
        name=_DECODER_OUTPUT_LAYER,
    )(hidden)
    return keras.layers.Reshape(image_shape, dtype=dtype, name=_RECONSTRUCTION_LAYER)(
        hidden
    )


class _CapsNetBase(GuardedModel):
    """Shared configuration and helpers of `CapsNet` and `CapsNetLVQ`."""

    # Layer names that plots and sub-models may rely on.
    IMAGES_LAYER = _IMAGES_LAYER
    #: The masking layer in front of the decoder; its first input is the
    #: digit capsules `(batch, classes, dim)`.
    MASK_LAYER = _MASK_LAYER
    #: The decoder's hidden Dense layers are `<prefix>1`, `<prefix>2`, ...
    DECODER_DENSE_PREFIX = _DECODER_DENSE_PREFIX
    DECODER_OUTPUT_LAYER = _DECODER_OUTPUT_LAYER
    RECONSTRUCTION_LAYER = _RECONSTRUCTION_LAYER

    def _set_config(
        self,
        image_shape,
        num_classes,
        conv_filters,
        conv_kernel_size,
        primary_capsule_channels,
        primary_capsule_dim,
        digit_capsule_dim,
        decoder_units,
    ):
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.conv_filters = conv_filters
        self.conv_kernel_size = conv_kernel_size
        self.primary_capsule_channels = primary_capsule_channels
        self.primary_capsule_dim = primary_capsule_dim
        self.digit_capsule_dim = digit_capsule_dim
        self.decoder_units = list(decoder_units)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "conv_filters": self.conv_filters,
            "conv_kernel_size": self.conv_kernel_size,
            "primary_capsule_channels": self.primary_capsule_channels,
            "primary_capsule_dim": self.primary_capsule_dim,
            "digit_capsule_dim": self.digit_capsule_dim,
            "decoder_units": list(self.decoder_units),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@anysma_export
class CapsNet(_CapsNetBase):
    """The capsule network of Sabour et al. (2017) with dynamic routing.

    `conv1` (ReLU) -> PrimaryCaps (a convolution with stride 2 reshaped to
    `primary_capsule_dim`-vectors and squashed; an `anysma.Capsule`
    container; the convolution is an `anysma.layers.Conv2D`, which trains
    about ten times faster on the JAX backend) -> DigitCaps (a capsule with
    one prototype per class: `InputModule`, `LinearTransformation` to
    `digit_capsule_dim` with one matrix per input and output capsule,
    `DynamicRouting`), whose lengths
    are the class probabilities. A decoder reconstructs the image from the
    masked digit capsules (see the module docstring for inputs, outputs and
    compiling). The defaults are the paper's MNIST network: 8,215,568
    trainable parameters (and 1,152 frozen zero routing logits).

    Args:
        image_shape: `(height, width, channels)`.
        num_classes: The number of classes (digit capsules).
        routings: The number of routing iterations.
        conv_filters: Filters of `conv1`.
        conv_kernel_size: Kernel size of both convolutions.
        primary_capsule_channels: Primary capsule maps (32 in the paper).
        primary_capsule_dim: Dimension of the primary capsules.
        digit_capsule_dim: Dimension of the digit capsules.
        decoder_units: Hidden layer sizes of the decoder.
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> model = anysma.models.CapsNet(
    ...     image_shape=(12, 12, 1), num_classes=3, conv_filters=8,
    ...     conv_kernel_size=3, primary_capsule_channels=2,
    ...     primary_capsule_dim=4, digit_capsule_dim=4, decoder_units=[16])
    >>> import numpy as np
    >>> outputs = model.predict(
    ...     {"images": np.zeros((2, 12, 12, 1)), "labels": None}, verbose=0)
    >>> outputs["probabilities"].shape, outputs["reconstruction"].shape
    ((2, 3), (2, 12, 12, 1))

    Reference:
        Sabour, Frosst and Hinton, "Dynamic routing between capsules",
        NeurIPS 2017.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        routings=3,
        conv_filters=256,
        conv_kernel_size=9,
        primary_capsule_channels=32,
        primary_capsule_dim=8,
        digit_capsule_dim=16,
        decoder_units=(512, 1024),
        dtype=None,
        **kwargs,
    ):
        image_shape, num_classes, decoder_units = _check_capsnet_arguments(
            image_shape,
            num_classes,
            conv_filters,
            conv_kernel_size,
            primary_capsule_channels,
            primary_capsule_dim,
            digit_capsule_dim,
            decoder_units,
        )
        routings = check_int(routings, "routings", minimum=1)

        # === Layers ===
        primary_capsules = Capsule(name="primary_capsules")
        digit_capsules = Capsule(
            prototype_distribution=(1, num_classes), name="digit_capsules"
        )
        digit_capsules.add(
            [
                InputModule(
                    signal_shape=None,
                    dissimilarity_initializer="zeros",
                    trainable=False,
                    sparse_signal=True,
                    dtype=dtype,
                    name="digit_capsules_input",
                ),
                LinearTransformation(
                    output_dim=digit_capsule_dim,
                    scope="local",
                    dtype=dtype,
                    name="prediction_vectors",
                ),
                DynamicRouting(iterations=routings, dtype=dtype, name="capsnet"),
            ]
        )

        # === Functional Model ===
        images, labels = _capsnet_inputs(image_shape, num_classes)
        features, primary_conv = _feature_layers(
            images,
            conv_filters,
            conv_kernel_size,
            primary_capsule_channels * primary_capsule_dim,
            dtype=dtype,
        )
        primary_capsules.add(
            [
                primary_conv,
                keras.layers.Reshape(
                    (-1, primary_capsule_dim), dtype=dtype, name="primary_capsules"
                ),
                CapsuleSquash(dtype=dtype, name="primary_capsules_squash"),
            ]
        )
        capsules, _, probabilities = digit_capsules(primary_capsules(features))
        reconstruction = _decoder(
            capsules, probabilities, labels, image_shape, decoder_units, dtype
        )
        super().__init__(
            inputs={"images": images, "labels": labels},
            outputs={"probabilities": probabilities, "reconstruction": reconstruction},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self._set_config(
            image_shape,
            num_classes,
            conv_filters,
            conv_kernel_size,
            primary_capsule_channels,
            primary_capsule_dim,
            digit_capsule_dim,
            decoder_units,
        )
        self.routings = routings

    def get_config(self):
        config = super().get_config()
        config["routings"] = self.routings
        return config


@anysma_export
class CapsNetLVQ(_CapsNetBase):
    """CapsNet with an LVQ capsule in place of dynamic routing.

    The `capsnet_lvq` example of the original anysma: `conv1` (ReLU) -> a
    linear convolution with stride 2 whose output is cut into
    `primary_capsule_dim`-vectors (no squash) -> an LVQ capsule with one
    prototype per class: `InputModule` with a learned non-negative initial
    dissimilarity per input vector, `LinearTransformation` to
    `digit_capsule_dim` (one matrix per input and output capsule),
    `MinkowskiDistance` (Euclidean, prototypes starting at zero, `alpha =
    0.5`), `GibbsRouting` over the input vectors (with
    `anysma.regularizers.max_distance` on the routed dissimilarities) and
    `Classification("neg_exp")`, i.e. probabilities `exp(-d)`. Train the
    probabilities with
    `anysma.losses.GeneralizedKullbackLeiblerDivergence()`; the decoder is
    the one of `CapsNet` (see the module docstring).

    Args:
        image_shape: `(height, width, channels)`.
        num_classes: The number of classes (LVQ capsules).
        conv_filters: Filters of `conv1`.
        conv_kernel_size: Kernel size of both convolutions.
        primary_capsule_channels: Maps of the second convolution.
        primary_capsule_dim: Dimension of the input vectors.
        digit_capsule_dim: Dimension of the transformed vectors and of the
            prototypes.
        decoder_units: Hidden layer sizes of the decoder.
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> model = anysma.models.CapsNetLVQ(
    ...     image_shape=(12, 12, 1), num_classes=3, conv_filters=8,
    ...     conv_kernel_size=3, primary_capsule_channels=2,
    ...     primary_capsule_dim=4, digit_capsule_dim=4, decoder_units=[16])
    >>> tuple(model.get_layer("minkowski_distance").prototypes.shape)
    (3, 4)

    Reference:
        Saralajew, Nooka, Kaden and Villmann, "Learning Vector Quantization
        Capsules", Machine Learning Reports 02/2018.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        conv_filters=256,
        conv_kernel_size=9,
        primary_capsule_channels=32,
        primary_capsule_dim=8,
        digit_capsule_dim=16,
        decoder_units=(512, 1024),
        dtype=None,
        **kwargs,
    ):
        image_shape, num_classes, decoder_units = _check_capsnet_arguments(
            image_shape,
            num_classes,
            conv_filters,
            conv_kernel_size,
            primary_capsule_channels,
            primary_capsule_dim,
            digit_capsule_dim,
            decoder_units,
        )

        # === Layers ===
        lvq_capsules = Capsule(
            prototype_distribution=(1, num_classes), name="digit_capsules"
        )
        lvq_capsules.add(
            [
                InputModule(
                    signal_shape=primary_capsule_dim,
                    dissimilarity_initializer="zeros",
                    sparse_signal=True,
                    dtype=dtype,
                    name="digit_capsules_input",
                ),
                LinearTransformation(
                    output_dim=digit_capsule_dim,
                    scope="local",
                    dtype=dtype,
                    name="prediction_vectors",
                ),
                MinkowskiDistance(
                    prototype_initializer="zeros",
                    squared_dissimilarity=False,
                    dtype=dtype,
                    name="minkowski_distance",
                ),
                GibbsRouting(
                    norm_axis="channels",
                    trainable=False,
                    diss_regularizer="max_distance",
                    dtype=dtype,
                    name="gibbs_routing",
                ),
                Classification(
                    probability_transformation="neg_exp", dtype=dtype, name="lvq_caps"
                ),
            ]
        )

        # === Functional Model ===
        images, labels = _capsnet_inputs(image_shape, num_classes)
        features, primary_conv = _feature_layers(
            images,
            conv_filters,
            conv_kernel_size,
            primary_capsule_channels * primary_capsule_dim,
            dtype=dtype,
        )
        capsules, _, probabilities = lvq_capsules(primary_conv(features))
        reconstruction = _decoder(
            capsules, probabilities, labels, image_shape, decoder_units, dtype
        )
        super().__init__(
            inputs={"images": images, "labels": labels},
            outputs={"probabilities": probabilities, "reconstruction": reconstruction},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self._set_config(
            image_shape,
            num_classes,
            conv_filters,
            conv_kernel_size,
            primary_capsule_channels,
            primary_capsule_dim,
            digit_capsule_dim,
            decoder_units,
        )

    @property
    def measuring_module(self):
        """The `MinkowskiDistance` module (layer `"minkowski_distance"`)."""
        return self.get_layer("minkowski_distance")

    def pre_training(
        self, images, labels=None, batch_version=False, batch_size=None, **kmeans_params
    ):
        """Initialize the prototypes by k-means on the transformed vectors.

        The model is run up to the measuring module; for every class
        capsule `i`, its prototype becomes the mean (one k-means cluster) of
        the vectors that capsule `i` receives, over all input positions, from
        all images (`labels=None`) or from the images of class `i`. The
        signals hold `images * num_classes * primary capsules *
        digit_capsule_dim` values (1.5 MB per image for the default
        network), so use a few thousand images at most.

        Args:
            images: Images `(samples, *image_shape)`.
            labels: Optional labels, integers `(samples,)` or one-hot.
            batch_version: Use `MiniBatchKMeans`.
            batch_size: Batch size of the forward pass.
            **kmeans_params: Arguments of scikit-learn's k-means.

        Returns:
            The model itself.
        """
        self.check_input_shapes({"images": images})
        images_input = self.get_layer(self.IMAGES_LAYER).output
        model = keras.Model(images_input, self.measuring_module.input[0])
        # The partial model shares this model's variables.
        with self._variables_kept_on_error():
            signals = model.predict(images, batch_size=batch_size, verbose=0)
        self.measuring_module.pre_training(
            signals,
            labels,
            capsule_inputs_are_equal=False,
            batch_version=batch_version,
            **kmeans_params,
        )
        return self
