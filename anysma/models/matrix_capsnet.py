"""The matrix capsule network with EM routing (Hinton et al., 2018).

`MatrixCapsNet` takes images `(batch, height, width, channels)` and returns
the class activations `(batch, num_classes)` in [0, 1]. Train it with the
spread loss and its margin schedule:

```python
loss = anysma.losses.SpreadLoss()
model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
model.fit(x, y, epochs=epochs, callbacks=[
    anysma.callbacks.SpreadLossMarginScheduler(
        loss, anysma.callbacks.linear_margin_schedule(epochs))])
```
"""

import numbers

import keras

from anysma.api_export import anysma_export
from anysma.models._base import GuardedModel
from anysma.modules.matrix_capsules import ClassMatrixCaps
from anysma.modules.matrix_capsules import ConvMatrixCaps
from anysma.modules.matrix_capsules import PrimaryMatrixCaps
from anysma.utils.validation import check_int
from anysma.utils.validation import check_option

#: The capsule numbers `(A, B, C, D)` of the presets: the paper's smallNORB
#: network and a small one that trains on a CPU.
CONFIGS = {"paper": (64, 8, 16, 16), "small": (32, 8, 8, 8)}


def _check_image_shape(image_shape):
    if (
        not isinstance(image_shape, (list, tuple))
        or len(image_shape) != 3
        or not all(
            isinstance(dim, numbers.Integral) and not isinstance(dim, bool) and dim > 0
            for dim in image_shape
        )
    ):
        raise ValueError(
            "`image_shape` must be (height, width, channels) with known "
            f"positive sizes. Received: image_shape={image_shape!r}"
        )
    return tuple(int(dim) for dim in image_shape)


def grid_sizes(image_shape):
    """The sides of the capsule grids: primary, ConvCaps1 and ConvCaps2."""
    sizes = []
    side = min(image_shape[:2])
    for kernel, stride in ((5, 2), (1, 1), (3, 2), (3, 1)):
        side = (side - kernel) // stride + 1
        sizes.append(side)
    return sizes[1:]


@anysma_export
class MatrixCapsNet(GuardedModel):
    """Matrix capsules with EM routing: the network of Hinton et al. (2018).

    `conv1` (`A` 5 x 5 filters, stride 2, ReLU) -> `PrimaryMatrixCaps` (`B`
    types, 1 x 1) -> `ConvMatrixCaps` (`C` types, K = 3, stride 2) ->
    `ConvMatrixCaps` (`D` types, K = 3, stride 1) -> `ClassMatrixCaps` (one
    capsule per class, coordinate addition), each with `iterations` EM
    iterations; all convolutions "valid". The outputs are the activations of
    the class capsules. `config="paper"` is the smallNORB network (A = 64,
    B = 8, C = D = 16; 32 x 32 inputs give 14 x 14, 6 x 6 and 4 x 4 capsule
    grids), `config="small"` (A = 32, B = 8, C = D = 8) trains on a CPU.
    Any of `conv_filters`, `primary_types`, `conv_caps1_types` and
    `conv_caps2_types` overrides its preset.

    Args:
        image_shape: `(height, width, channels)`; at least 20 x 20.
        num_classes: The number of classes.
        config: `"paper"` or `"small"`.
        iterations: The number of EM routing iterations (3 in the paper).
        conv_filters: `A`.
        primary_types: `B`.
        conv_caps1_types: `C`.
        conv_caps2_types: `D`.
        coordinate_addition: Coordinate addition in the class capsules.
        final_lambda: The limit of the inverse temperature schedule.
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import numpy as np
    >>> model = MatrixCapsNet(image_shape=(28, 28, 1), num_classes=10,
    ...                       config="small", iterations=2)
    >>> model.predict(np.zeros((2, 28, 28, 1)), verbose=0).shape
    (2, 10)

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing", ICLR
        2018, Figure 1.
    """

    #: The layer names, for sub-models and plots.
    IMAGES_LAYER = "images"
    CONV_LAYER = "conv1"
    PRIMARY_LAYER = "primary_caps"
    CONV_CAPS1_LAYER = "conv_caps1"
    CONV_CAPS2_LAYER = "conv_caps2"
    CLASS_LAYER = "class_caps"

    def __init__(
        self,
        image_shape=(32, 32, 1),
        num_classes=5,
        config="paper",
        iterations=3,
        conv_filters=None,
        primary_types=None,
        conv_caps1_types=None,
        conv_caps2_types=None,
        coordinate_addition=True,
        final_lambda=0.01,
        dtype=None,
        **kwargs,
    ):
        image_shape = _check_image_shape(image_shape)
        if min(grid_sizes(image_shape)) < 1:
            raise ValueError(
                "`image_shape` is too small for conv1 (5 x 5, stride 2) and "
                "two ConvCaps layers (3 x 3, strides 2 and 1); use at least "
                f"20 x 20 pixels. Received: image_shape={image_shape}"
            )
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        config = check_option(config, "config", tuple(CONFIGS))
        iterations = check_int(iterations, "iterations", minimum=1)
        sizes = [
            CONFIGS[config][index]
            if value is None
            else check_int(value, name, minimum=1)
            for index, (value, name) in enumerate(
                (
                    (conv_filters, "conv_filters"),
                    (primary_types, "primary_types"),
                    (conv_caps1_types, "conv_caps1_types"),
                    (conv_caps2_types, "conv_caps2_types"),
                )
            )
        ]
        routing = {"iterations": iterations, "final_lambda": final_lambda}

        images = keras.Input(shape=image_shape, name=self.IMAGES_LAYER)
        features = keras.layers.Conv2D(
            sizes[0],
            5,
            strides=2,
            activation="relu",
            dtype=dtype,
            name=self.CONV_LAYER,
        )(images)
        capsules = PrimaryMatrixCaps(sizes[1], dtype=dtype, name=self.PRIMARY_LAYER)(
            features
        )
        capsules = ConvMatrixCaps(
            sizes[2], 3, strides=2, dtype=dtype, name=self.CONV_CAPS1_LAYER, **routing
        )(capsules)
        capsules = ConvMatrixCaps(
            sizes[3], 3, strides=1, dtype=dtype, name=self.CONV_CAPS2_LAYER, **routing
        )(capsules)
        _, scores = ClassMatrixCaps(
            num_classes,
            coordinate_addition=coordinate_addition,
            dtype=dtype,
            name=self.CLASS_LAYER,
            **routing,
        )(capsules)
        super().__init__(inputs=images, outputs=scores, dtype=dtype, **kwargs)

        self.image_shape = image_shape
        self.num_classes = num_classes
        self.preset = config
        self.iterations = iterations
        self.conv_filters = conv_filters
        self.primary_types = primary_types
        self.conv_caps1_types = conv_caps1_types
        self.conv_caps2_types = conv_caps2_types
        self.coordinate_addition = coordinate_addition
        self.final_lambda = final_lambda

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "config": self.preset,
            "iterations": self.iterations,
            "conv_filters": self.conv_filters,
            "primary_types": self.primary_types,
            "conv_caps1_types": self.conv_caps1_types,
            "conv_caps2_types": self.conv_caps2_types,
            "coordinate_addition": self.coordinate_addition,
            "final_lambda": self.final_lambda,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


__all__ = ["CONFIGS", "MatrixCapsNet"]
