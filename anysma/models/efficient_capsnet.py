"""Efficient-CapsNet (Mazzia et al., 2021): self-attention routing, 161K weights.

The model takes and returns dicts like `anysma.models.CapsNet`:

- inputs `{"images": (batch, *image_shape), "labels": (batch, num_classes)}`;
  the one-hot `labels` are optional (pass `None` at prediction time) and
  only used by the decoder;
- outputs `{"probabilities": (batch, num_classes)}`, plus
  `"reconstruction": (batch, *image_shape)` with the decoder (the default).

Compile it like a CapsNet, with the paper's reconstruction weight:

```python
model.compile(
    optimizer=keras.optimizers.Adam(5e-4),
    loss={"probabilities": anysma.losses.MarginLoss(), "reconstruction": "mse"},
    loss_weights={"probabilities": 1.0, "reconstruction": 0.392},
    metrics={"probabilities": ["accuracy"]},
)
```
"""

import keras

from anysma.api_export import anysma_export
from anysma.layers.batch_normalization import BatchNormalization
from anysma.layers.strided_conv import Conv2D
from anysma.models._base import GuardedModel
from anysma.models.capsnet import _DECODER_DENSE_PREFIX
from anysma.models.capsnet import _DECODER_OUTPUT_LAYER
from anysma.models.capsnet import _IMAGES_LAYER
from anysma.models.capsnet import _MASK_LAYER
from anysma.models.capsnet import _RECONSTRUCTION_LAYER
from anysma.models.capsnet import _capsnet_inputs
from anysma.models.capsnet import _check_decoder_units
from anysma.models.capsnet import _decoder
from anysma.modules.self_attention_routing import DepthwisePrimaryCapsules
from anysma.modules.self_attention_routing import FullyConnectedCapsules
from anysma.utils.validation import check_image_shape
from anysma.utils.validation import check_int


def _check_int_list(values, name, length=None):
    if not isinstance(values, (list, tuple)) or (
        length is not None and len(values) != length
    ):
        expected = "a list of positive ints" + (
            "" if length is None else f" of length {length}"
        )
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={values!r}")
    return [check_int(value, name, minimum=1) for value in values]


def _feature_map_size(image_shape, kernel_sizes, strides):
    height, width = image_shape[:2]
    for kernel, step in zip(kernel_sizes, strides):
        height = (height - kernel) // step + 1
        width = (width - kernel) // step + 1
        if height < 1 or width < 1:
            raise ValueError(
                f"`image_shape`={image_shape} is too small for valid "
                f"convolutions with conv_kernel_sizes={list(kernel_sizes)} and "
                f"conv_strides={list(strides)}. Received: image_shape={image_shape}"
            )
    return height, width


@anysma_export
class EfficientCapsNet(GuardedModel):
    """Efficient-CapsNet: a small capsule network with self-attention routing.

    Four valid convolutions with ReLU and batch normalization (32 5x5,
    64 3x3, 64 3x3 and 128 3x3 with stride 2 on MNIST) -> primary capsules
    from a depthwise convolution over the whole feature map
    (`DepthwisePrimaryCapsules`: 16 8-D capsules on MNIST) -> class capsules
    (`FullyConnectedCapsules`, the paper's FCCaps: 16-D, self-attention
    routing), whose lengths are the class probabilities. The optional
    decoder (as in `CapsNet`: masked by the label while training, by the
    longest capsule otherwise) reconstructs the image. The defaults are the
    paper's MNIST network: 161,824 trainable parameters without the
    decoder, as published (1,573,168 with it).

    The batch normalization is `anysma.layers.BatchNormalization`, whose
    bias-corrected moving statistics make inference-mode predictions right
    after a few training steps; its trainable weights are Keras'.

    Args:
        image_shape: `(height, width, channels)`.
        num_classes: The number of classes (class capsules).
        conv_filters: Filters of the convolutions.
        conv_kernel_sizes: Kernel sizes of the convolutions.
        conv_strides: Strides of the convolutions.
        primary_capsule_dim: Dimension of the primary capsules.
        primary_kernel_size: Kernel size of the depthwise convolution;
            `None` covers the whole last feature map (the paper's 9 on MNIST).
        digit_capsule_dim: Dimension of the class capsules.
        decoder: Whether to add the reconstruction decoder.
        decoder_units: Hidden layer sizes of the decoder.
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.EfficientCapsNet(decoder=False)
    >>> model.count_params() - 576 - 4  # the frozen batch norm statistics
    161824
    >>> outputs = model.predict(
    ...     {"images": np.zeros((2, 28, 28, 1)), "labels": None}, verbose=0)
    >>> outputs["probabilities"].shape
    (2, 10)

    Reference:
        Mazzia, Salvetti and Chiaberge, "Efficient-CapsNet: capsule network
        with self-attention routing", Scientific Reports 11, 14634 (2021).
    """

    IMAGES_LAYER = _IMAGES_LAYER
    #: The masking layer in front of the decoder; its first input is the
    #: class capsules `(batch, classes, dim)`.
    MASK_LAYER = _MASK_LAYER
    #: The decoder's hidden Dense layers are `<prefix>1`, `<prefix>2`, ...
    DECODER_DENSE_PREFIX = _DECODER_DENSE_PREFIX
    DECODER_OUTPUT_LAYER = _DECODER_OUTPUT_LAYER
    RECONSTRUCTION_LAYER = _RECONSTRUCTION_LAYER
    #: The class capsule layer (a `FullyConnectedCapsules`).
    CLASS_CAPSULES_LAYER = "class_capsules"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        conv_filters=(32, 64, 64, 128),
        conv_kernel_sizes=(5, 3, 3, 3),
        conv_strides=(1, 1, 1, 2),
        primary_capsule_dim=8,
        primary_kernel_size=None,
        digit_capsule_dim=16,
        decoder=True,
        decoder_units=(512, 1024),
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        conv_filters = _check_int_list(conv_filters, "conv_filters")
        conv_kernel_sizes = _check_int_list(
            conv_kernel_sizes, "conv_kernel_sizes", len(conv_filters)
        )
        conv_strides = _check_int_list(conv_strides, "conv_strides", len(conv_filters))
        primary_capsule_dim = check_int(
            primary_capsule_dim, "primary_capsule_dim", minimum=1
        )
        digit_capsule_dim = check_int(digit_capsule_dim, "digit_capsule_dim", minimum=1)
        if not isinstance(decoder, bool):
            raise TypeError(f"`decoder` must be a bool. Received: decoder={decoder!r}")
        decoder_units = _check_decoder_units(decoder_units)
        height, width = _feature_map_size(image_shape, conv_kernel_sizes, conv_strides)
        if primary_kernel_size is None:
            kernel = (height, width)
        else:
            kernel = check_int(primary_kernel_size, "primary_kernel_size", minimum=1)
            if kernel > min(height, width):
                raise ValueError(
                    f"`primary_kernel_size` must fit the {height} x {width} "
                    "feature map of the convolutions. Received: "
                    f"primary_kernel_size={primary_kernel_size}"
                )

        # === Functional Model ===
        images, labels = _capsnet_inputs(image_shape, num_classes)
        features = images
        for index, (filters, size, step) in enumerate(
            zip(conv_filters, conv_kernel_sizes, conv_strides), start=1
        ):
            features = Conv2D(
                filters,
                size,
                strides=step,
                activation="relu",
                kernel_initializer="he_normal",
                dtype=dtype,
                name=f"conv{index}",
            )(features)
            features = BatchNormalization(dtype=dtype, name=f"batch_norm{index}")(
                features
            )
        primary = DepthwisePrimaryCapsules(
            primary_capsule_dim, kernel, dtype=dtype, name="primary_capsules"
        )(features)
        capsules, _, probabilities = FullyConnectedCapsules(
            num_classes, digit_capsule_dim, dtype=dtype, name=self.CLASS_CAPSULES_LAYER
        )(primary)
        outputs = {"probabilities": probabilities}
        if decoder:
            outputs["reconstruction"] = _decoder(
                capsules, probabilities, labels, image_shape, decoder_units, dtype
            )
        super().__init__(
            inputs={"images": images, "labels": labels},
            outputs=outputs,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.conv_filters = conv_filters
        self.conv_kernel_sizes = conv_kernel_sizes
        self.conv_strides = conv_strides
        self.primary_capsule_dim = primary_capsule_dim
        self.primary_kernel_size = primary_kernel_size
        self.digit_capsule_dim = digit_capsule_dim
        self.decoder = decoder
        self.decoder_units = decoder_units

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "conv_filters": list(self.conv_filters),
            "conv_kernel_sizes": list(self.conv_kernel_sizes),
            "conv_strides": list(self.conv_strides),
            "primary_capsule_dim": self.primary_capsule_dim,
            "primary_kernel_size": self.primary_kernel_size,
            "digit_capsule_dim": self.digit_capsule_dim,
            "decoder": self.decoder,
            "decoder_units": list(self.decoder_units),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
