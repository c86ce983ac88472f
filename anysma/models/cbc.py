"""Classification-by-components networks (Saralajew et al., NeurIPS 2019).

Three ready-made models, each a functional model from one input to the
class probabilities `(batch, num_classes)`:

```
CBC:         features -> Components -> Detection -> Reasoning
PatchCBC:    images -> PatchComponents -> Detection -> GlobalMaxPooling2D
                    -> Reasoning
SiameseCBC:  images -----------------> CNN --+
             InputComponents (images) -> CNN --> CosineDetection -> Reasoning
```

Train them with `anysma.losses.CBCLoss` (the paper's margin loss); the
argmax of the output is the predicted class, so `metrics=["accuracy"]`
works. The layers have fixed names, the class attributes
`COMPONENTS_LAYER`, `DETECTION_LAYER` and `REASONING_LAYER`.
"""

import keras
import numpy as np

from anysma.api_export import anysma_export
from anysma.models._base import GuardedModel
from anysma.modules.components import Components
from anysma.modules.components import CosineDetection
from anysma.modules.components import Detection
from anysma.modules.components import InputComponents
from anysma.modules.components import PatchComponents
from anysma.modules.components import Reasoning
from anysma.utils.validation import check_bool
from anysma.utils.validation import check_image_shape
from anysma.utils.validation import check_int
from anysma.utils.validation import check_int_pair
from anysma.utils.validation import check_number

_COMPONENTS_LAYER = "components"
_DETECTION_LAYER = "detection"
_REASONING_LAYER = "reasoning"


def _default_components_initializer():
    # Near-gray components, as in the paper's MNIST models: every component
    # starts equally far from every input in [0, 1].
    return keras.initializers.RandomUniform(0.45, 0.55)


class _CBCBase(GuardedModel):
    """Accessors and configuration shared by `CBC` and `PatchCBC`."""

    COMPONENTS_LAYER = _COMPONENTS_LAYER
    DETECTION_LAYER = _DETECTION_LAYER
    REASONING_LAYER = _REASONING_LAYER

    @property
    def components_layer(self):
        return self.get_layer(self.COMPONENTS_LAYER)

    @property
    def detection_layer(self):
        return self.get_layer(self.DETECTION_LAYER)

    @property
    def reasoning_layer(self):
        return self.get_layer(self.REASONING_LAYER)

    @property
    def components(self):
        """The components as a NumPy array `(num_components, *shape)`."""
        return np.asarray(keras.ops.convert_to_numpy(self.components_layer.components))

    @property
    def sigma(self):
        """The current width of the detection kernel, a float."""
        return float(keras.ops.convert_to_numpy(self.detection_layer.sigma_weight))

    def weights_by_role(self):
        """The variables by role: `"components"`, `"sigma"`, `"reasoning"`.

        `"sigma"` is absent when it is not trained (`trainable_sigma=False`).
        """
        roles = {
            "components": self.components_layer.components,
            "sigma": self.detection_layer.sigma_weight,
            "reasoning": self.reasoning_layer.reasoning_logits,
        }
        if not self.trainable_sigma:
            del roles["sigma"]
        return roles

    def reasoning_probabilities(self):
        """`(positive, negative, indefinite)`, NumPy `(num_components, num_classes)`."""
        return self.reasoning_layer.reasoning_probabilities()

    def _common_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "num_classes": self.num_classes,
            "num_components": self.num_components,
            "sigma": self.initial_sigma,
            "trainable_sigma": self.trainable_sigma,
            "distance": self.distance,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_common(num_classes, num_components, sigma):
    num_classes = check_int(num_classes, "num_classes", minimum=2)
    num_components = check_int(
        num_classes if num_components is None else num_components,
        "num_components",
        minimum=1,
    )
    sigma = check_number(
        sigma, "sigma", minimum=0, include_minimum=False, allow_none=True
    )
    return num_classes, num_components, sigma


def _head(distances, num_classes, sigma, trainable_sigma, dtype, pool=False):
    detections = Detection(
        sigma=sigma,
        trainable_sigma=trainable_sigma,
        dtype=dtype,
        name=_DETECTION_LAYER,
    )(distances)
    if pool:
        # A component is detected if it is detected at any position.
        detections = keras.layers.GlobalMaxPooling2D(
            dtype=dtype, name="max_over_positions"
        )(detections)
    return Reasoning(num_classes=num_classes, dtype=dtype, name=_REASONING_LAYER)(
        detections
    )


@anysma_export
class CBC(_CBCBase):
    """Classification-by-components on feature vectors.

    `num_components` learned components in the input space, the detection
    probability `exp(-||x - w_k||^2 / sigma)` (trainable `sigma`), and
    per class a positive, negative and indefinite reasoning over the
    components; the output is `p(c | x)` (Saralajew et al., Eq. (1)).

    Args:
        input_dim: The number of features.
        num_classes: The number of classes, >= 2.
        num_components: The number of components; defaults to
            `num_classes`.
        sigma: The initial width of the detection kernel, > 0; defaults to
            `input_dim / 10`, the scale of squared distances of features in
            `[0, 1]` (scale it with the data: the detection of distances far
            above `sigma` vanishes, and so does its gradient).
        trainable_sigma: Whether `sigma` is trained.
        distance: `"squared_euclidean"` or `"euclidean"`.
        components_initializer: Initializer of the components; defaults to
            `RandomUniform(0.45, 0.55)` (near-gray, as in the paper).
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> import numpy as np
    >>> model = anysma.models.CBC(input_dim=4, num_classes=3, num_components=5)
    >>> model.compile(optimizer="adam", loss=anysma.losses.CBCLoss(),
    ...               metrics=["accuracy"])
    >>> x = np.random.rand(30, 4).astype("float32")
    >>> model.predict(x, verbose=0).shape
    (30, 3)
    >>> positive, negative, indefinite = model.reasoning_probabilities()
    >>> positive.shape
    (5, 3)

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019.
    """

    def __init__(
        self,
        input_dim,
        num_classes,
        num_components=None,
        sigma=None,
        trainable_sigma=True,
        distance="squared_euclidean",
        components_initializer=None,
        dtype=None,
        **kwargs,
    ):
        input_dim = check_int(input_dim, "input_dim", minimum=1)
        num_classes, num_components, sigma = _check_common(
            num_classes, num_components, sigma
        )
        initializer = components_initializer or _default_components_initializer()

        # === Functional Model ===
        inputs = keras.Input(shape=(input_dim,), name="features")
        distances = Components(
            num_components,
            distance=distance,
            components_initializer=initializer,
            dtype=dtype,
            name=_COMPONENTS_LAYER,
        )(inputs)
        outputs = _head(
            distances,
            num_classes,
            input_dim / 10 if sigma is None else sigma,
            trainable_sigma,
            dtype,
        )
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.num_components = num_components
        self.initial_sigma = sigma
        self.trainable_sigma = check_bool(trainable_sigma, "trainable_sigma")
        self.distance = distance
        self.components_initializer = components_initializer

    def get_config(self):
        return {
            **self._common_config(),
            "input_dim": self.input_dim,
            "components_initializer": keras.initializers.serialize(
                keras.initializers.get(self.components_initializer)
            )
            if self.components_initializer is not None
            else None,
        }


@anysma_export
class PatchCBC(_CBCBase):
    """Patch-wise (convolutional) classification-by-components on images.

    The components are image patches `kernel_size`; each is detected at
    every position of the image (`exp(-||patch - w_k||^2 / sigma)`), its
    detection probability is the maximum over the positions, and the
    reasoning of every class combines these as in `CBC`.

    Args:
        image_shape: `(height, width, channels)`.
        num_classes: The number of classes, >= 2.
        num_components: The number of patch components; defaults to
            `num_classes`.
        kernel_size: The patch size, an int or a pair.
        strides: The stride of the sliding window, an int or a pair.
        sigma: The initial width, > 0; defaults to a tenth of the patch
            size `height * width * channels` (features in `[0, 1]`).
        trainable_sigma: Whether `sigma` is trained.
        distance: `"squared_euclidean"` or `"euclidean"`.
        components_initializer: Initializer of the components; defaults to
            `RandomUniform(0.45, 0.55)`.
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> import numpy as np
    >>> model = anysma.models.PatchCBC(image_shape=(8, 8, 1), num_classes=2,
    ...                                num_components=3, kernel_size=3)
    >>> model.predict(np.zeros((4, 8, 8, 1), "float32"), verbose=0).shape
    (4, 2)
    >>> model.components.shape
    (3, 3, 3, 1)

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019, Section 3 (patch components).
    """

    def __init__(
        self,
        image_shape,
        num_classes,
        num_components=None,
        kernel_size=7,
        strides=1,
        sigma=None,
        trainable_sigma=True,
        distance="squared_euclidean",
        components_initializer=None,
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        num_classes, num_components, sigma = _check_common(
            num_classes, num_components, sigma
        )
        kernel_size = check_int_pair(kernel_size, "kernel_size")
        if kernel_size[0] > image_shape[0] or kernel_size[1] > image_shape[1]:
            raise ValueError(
                "`kernel_size` must fit into the image. Received: "
                f"kernel_size={kernel_size}, image_shape={tuple(image_shape)}"
            )
        initializer = components_initializer or _default_components_initializer()

        # === Functional Model ===
        inputs = keras.Input(shape=tuple(image_shape), name="images")
        distances = PatchComponents(
            num_components,
            kernel_size=kernel_size,
            strides=strides,
            distance=distance,
            components_initializer=initializer,
            dtype=dtype,
            name=_COMPONENTS_LAYER,
        )(inputs)
        patch_size = kernel_size[0] * kernel_size[1] * image_shape[2]
        outputs = _head(
            distances,
            num_classes,
            patch_size / 10 if sigma is None else sigma,
            trainable_sigma,
            dtype,
            pool=True,
        )
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.num_components = num_components
        self.kernel_size = kernel_size
        self.strides = check_int_pair(strides, "strides")
        self.initial_sigma = sigma
        self.trainable_sigma = check_bool(trainable_sigma, "trainable_sigma")
        self.distance = distance
        self.components_initializer = components_initializer

    def get_config(self):
        return {
            **self._common_config(),
            "image_shape": list(self.image_shape),
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "components_initializer": keras.initializers.serialize(
                keras.initializers.get(self.components_initializer)
            )
            if self.components_initializer is not None
            else None,
        }


#: The feature extractor of the paper's MNIST CBCs: two blocks of two 3 x 3
#: convolutions (valid padding, swish) and a 2 x 2 max pooling.
SIAMESE_FILTERS = (32, 64, 64, 128)


@anysma_export
class SiameseCBC(_CBCBase):
    """The Siamese classification-by-components network of the paper's MNIST models.

    The components are learned *images* of the input's shape. The input
    images and the component images pass through the same CNN feature
    extractor (shared weights); a component's detection probability is the
    rectified cosine similarity of the two flattened feature maps,
    `max(cos(f(x), f(w_k)), 0)`, and the reasoning of every class turns the
    detections into class probabilities as in `CBC`. Train it with
    `anysma.losses.CBCLoss` (margin 0.3 in the paper).

    The feature extractor is that of the paper: convolutions with `filters`
    (3 x 3, valid padding, swish activation, every filter kept at unit
    Euclidean norm), a 2 x 2 max pooling after every second one.

    Args:
        image_shape: `(height, width, channels)`, large enough for the
            convolutions and poolings (at least 24 x 24 for the default four
            convolutions).
        num_classes: The number of classes, >= 2.
        num_components: The number of component images; defaults to
            `num_classes` (the paper's MNIST models use 8 to 10).
        filters: The number of filters of each convolution, a tuple of
            positive ints (a pooling follows every second convolution).
        components_initializer: Initializer of the component images;
            defaults to `RandomUniform(0.45, 0.55)` (near-gray, as in the
            paper).
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> import numpy as np
    >>> model = anysma.models.SiameseCBC(image_shape=(28, 28, 1), num_classes=10,
    ...                                  num_components=9)
    >>> model.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape
    (2, 10)
    >>> model.components.shape
    (9, 28, 28, 1)

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019, Section 4.1.
    """

    FEATURE_LAYERS_PREFIX = "features_"

    def __init__(
        self,
        image_shape,
        num_classes,
        num_components=None,
        filters=SIAMESE_FILTERS,
        components_initializer=None,
        dtype=None,
        **kwargs,
    ):
        image_shape = check_image_shape(image_shape)
        num_classes, num_components, _ = _check_common(
            num_classes, num_components, None
        )
        if (
            not isinstance(filters, (tuple, list))
            or not filters
            or not all(
                isinstance(f, int) and not isinstance(f, bool) and f >= 1
                for f in filters
            )
        ):
            raise ValueError(
                "`filters` must be a non-empty tuple of positive ints. "
                f"Received: filters={filters!r}"
            )
        filters = tuple(filters)
        size = list(image_shape[:2])
        for index in range(len(filters)):
            size = [dim - 2 for dim in size]
            if index % 2 == 1:
                size = [dim // 2 for dim in size]
            if min(size) < 1:
                raise ValueError(
                    f"`image_shape` {tuple(image_shape)} is too small for "
                    f"{len(filters)} convolutions (3 x 3, valid) with a 2 x 2 "
                    "pooling after every second one."
                )
        initializer = components_initializer or _default_components_initializer()

        # === Functional Model ===
        inputs = keras.Input(shape=image_shape, name="images")
        components = InputComponents(
            num_components,
            components_initializer=initializer,
            dtype=dtype,
            name=_COMPONENTS_LAYER,
        )(inputs)
        features, component_features = inputs, components
        for index, count in enumerate(filters):
            # One layer object per step, applied to both paths: shared weights.
            layers = [
                keras.layers.Conv2D(
                    count,
                    3,
                    activation="silu",
                    kernel_constraint=keras.constraints.UnitNorm(axis=[0, 1, 2]),
                    dtype=dtype,
                    name=f"{self.FEATURE_LAYERS_PREFIX}conv{index + 1}",
                )
            ]
            if index % 2 == 1:
                layers.append(
                    keras.layers.MaxPooling2D(
                        2,
                        dtype=dtype,
                        name=f"{self.FEATURE_LAYERS_PREFIX}pool{index // 2 + 1}",
                    )
                )
            for layer in layers:
                features = layer(features)
                component_features = layer(component_features)
        detections = CosineDetection(dtype=dtype, name=_DETECTION_LAYER)(
            [features, component_features]
        )
        outputs = Reasoning(
            num_classes=num_classes, dtype=dtype, name=_REASONING_LAYER
        )(detections)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.num_components = num_components
        self.filters = filters
        self.components_initializer = components_initializer

    @property
    def sigma(self):
        raise AttributeError(
            "`SiameseCBC` has no `sigma`: its detection is the rectified cosine "
            "similarity of feature maps, without a width."
        )

    @property
    def feature_layers(self):
        """The layers of the shared feature extractor, in order."""
        return [
            layer
            for layer in self.layers
            if layer.name.startswith(self.FEATURE_LAYERS_PREFIX)
        ]

    def weights_by_role(self):
        """The variables by role: `"components"`, `"features"`, `"reasoning"`."""
        return {
            "components": self.components_layer.components,
            "features": [
                weight for layer in self.feature_layers for weight in layer.weights
            ],
            "reasoning": self.reasoning_layer.reasoning_logits,
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "num_components": self.num_components,
            "filters": list(self.filters),
            "components_initializer": keras.initializers.serialize(
                keras.initializers.get(self.components_initializer)
            )
            if self.components_initializer is not None
            else None,
        }
