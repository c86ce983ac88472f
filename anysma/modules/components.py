"""Layers of classification-by-components (CBC, Saralajew et al., 2019).

```
inputs -> Components ------------------> Detection -> Reasoning -> p(c | x)
images -> PatchComponents -> Detection -> GlobalMaxPooling2D -> Reasoning
images -> feature extractor ---------------+
images -> InputComponents -> (same) extractor -> CosineDetection -> Reasoning
```

`Components` and `PatchComponents` own the components and measure the
distance of the inputs (or of every image patch) to them; `Detection` turns
distances into detection probabilities `exp(-d / sigma)`; `Reasoning` owns
the positive, negative and indefinite reasoning of every class and returns
the class probabilities. In the Siamese form of the paper's MNIST models,
`InputComponents` holds component images, one feature extractor maps both
the images and the components, and `CosineDetection` compares the two
feature maps. The formulas are those of `anysma.ops.components`.

`Detection` also takes a module signal `(signals, dissimilarities)`, so the
dissimilarities of any capsule (any measuring module and routing) can feed a
reasoning layer.
"""

import keras
import numpy as np
from keras import ops

from anysma.api_export import anysma_export
from anysma.capsule import is_signal_tuple
from anysma.ops.components import cbc_reasoning
from anysma.ops.components import cosine_detection_probability
from anysma.ops.components import detection_probability
from anysma.ops.components import patch_distances
from anysma.ops.components import reasoning_probabilities
from anysma.ops.distances import euclidean_distance
from anysma.ops.distances import squared_euclidean_distance
from anysma.utils.validation import check_bool
from anysma.utils.validation import check_int
from anysma.utils.validation import check_int_pair
from anysma.utils.validation import check_number
from anysma.utils.validation import check_option

#: The pairwise distances `Components` and `PatchComponents` measure with.
DISTANCES = {
    "squared_euclidean": squared_euclidean_distance,
    "euclidean": euclidean_distance,
}


def _check_distance(distance):
    return check_option(distance, "distance", tuple(DISTANCES))


class _ComponentsBase(keras.layers.Layer):
    """Shared weight handling of `Components` and `PatchComponents`."""

    def __init__(
        self,
        num_components,
        distance="squared_euclidean",
        components_initializer="random_uniform",
        components_regularizer=None,
        components_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_components = check_int(num_components, "num_components", minimum=1)
        self.distance = _check_distance(distance)
        self.components_initializer = keras.initializers.get(components_initializer)
        self.components_regularizer = keras.regularizers.get(components_regularizer)
        self.components_constraint = keras.constraints.get(components_constraint)

    def _add_components(self, shape):
        self.components = self.add_weight(
            name="components",
            shape=(self.num_components,) + tuple(shape),
            initializer=self.components_initializer,
            regularizer=self.components_regularizer,
            constraint=self.components_constraint,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_components": self.num_components,
                "distance": self.distance,
                "components_initializer": keras.initializers.serialize(
                    self.components_initializer
                ),
                "components_regularizer": keras.regularizers.serialize(
                    self.components_regularizer
                ),
                "components_constraint": keras.constraints.serialize(
                    self.components_constraint
                ),
            }
        )
        return config


@anysma_export
class Components(_ComponentsBase):
    """Learned (or fixed) components and the distances of inputs to them.

    Owns `num_components` components of the input's feature size and
    returns the distance of every input to every component. Fixed
    components: pass `trainable=False` and assign them, e.g.
    `layer.components.assign(values)` after building.

    Args:
        num_components: The number of components, >= 1.
        distance: `"squared_euclidean"` (the default; with `Detection` the
            Gaussian kernel of the CBC paper) or `"euclidean"`.
        components_initializer: Initializer of the components.
        components_regularizer: Optional regularizer of the components.
        components_constraint: Optional constraint of the components.
        **kwargs: Base layer keyword arguments, such as `name`, `dtype` and
            `trainable`.

    Input shape:
        `(..., features)`.

    Output shape:
        `(..., num_components)`: the distances.

    Example:

    >>> import numpy as np
    >>> layer = Components(num_components=4)
    >>> layer(np.zeros((2, 3), dtype="float32")).shape
    (2, 4)
    """

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(
                "`Components` needs a known feature size (the last axis). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self._add_components((input_shape[-1],))

    def call(self, inputs):
        return DISTANCES[self.distance](inputs, self.components)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_components,)


@anysma_export
class PatchComponents(_ComponentsBase):
    """Patch components: distances of every image patch to every component.

    The patch-wise (convolutional) CBC of the paper: components are small
    image patches `(height, width, channels)`; the layer slides them over
    the image and returns, at every position, the distance of the patch
    there to every component. Follow it by `Detection` and a maximum over
    the positions (`keras.layers.GlobalMaxPooling2D`): a component counts as
    detected if it is detected anywhere.

    Args:
        num_components: The number of components, >= 1.
        kernel_size: The patch size, an int or `(height, width)`.
        strides: The stride of the sliding window, an int or a pair.
        padding: `"valid"` or `"same"`.
        distance: `"squared_euclidean"` or `"euclidean"`.
        components_initializer: Initializer of the components.
        components_regularizer: Optional regularizer of the components.
        components_constraint: Optional constraint of the components.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        Channels-last images `(batch, height, width, channels)`.

    Output shape:
        `(batch, new_height, new_width, num_components)`.

    Example:

    >>> import numpy as np
    >>> layer = PatchComponents(num_components=5, kernel_size=3)
    >>> layer(np.zeros((2, 8, 8, 1), dtype="float32")).shape
    (2, 6, 6, 5)
    """

    def __init__(
        self,
        num_components,
        kernel_size,
        strides=1,
        padding="valid",
        distance="squared_euclidean",
        components_initializer="random_uniform",
        components_regularizer=None,
        components_constraint=None,
        **kwargs,
    ):
        super().__init__(
            num_components,
            distance=distance,
            components_initializer=components_initializer,
            components_regularizer=components_regularizer,
            components_constraint=components_constraint,
            **kwargs,
        )
        self.kernel_size = check_int_pair(kernel_size, "kernel_size")
        self.strides = check_int_pair(strides, "strides")
        self.padding = check_option(padding, "padding", ("valid", "same"))

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "`PatchComponents` takes channels-last images (batch, height, "
                "width, channels) with a known number of channels. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self._add_components(self.kernel_size + (input_shape[-1],))

    def call(self, inputs):
        return patch_distances(
            inputs,
            self.components,
            strides=self.strides,
            padding=self.padding,
            distance=DISTANCES[self.distance],
        )

    def compute_output_shape(self, input_shape):
        spatial = []
        for size, kernel, stride in zip(
            input_shape[1:3], self.kernel_size, self.strides
        ):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-size // stride))
            else:
                spatial.append((size - kernel) // stride + 1)
        return (input_shape[0], *spatial, self.num_components)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": list(self.kernel_size),
                "strides": list(self.strides),
                "padding": self.padding,
            }
        )
        return config


@anysma_export
class Detection(keras.layers.Layer):
    """Detection probabilities `exp(-d / sigma)` of distances.

    See `anysma.ops.components.detection_probability`. `sigma` is a
    variable, trained with the model unless `trainable_sigma=False`.

    Args:
        sigma: The initial width, a number > 0. Choose it on the scale of
            the distances (e.g. their mean): `exp(-d / sigma)` of distances
            far above `sigma` is 0 with a vanishing gradient.
        trainable_sigma: Whether `sigma` is trained.
        epsilon: The smallest width used, > 0.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        Distances of any shape, or a module signal `(signals,
        dissimilarities)` (of a capsule), whose dissimilarities are used.

    Output shape:
        That of the distances.

    Example:

    >>> import numpy as np
    >>> layer = Detection(sigma=2.0)
    >>> np.round(np.asarray(layer(np.array([[0.0, 2.0]], dtype="float32"))), 4)
    array([[1.    , 0.3679]], dtype=float32)
    """

    def __init__(self, sigma=1.0, trainable_sigma=True, epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.sigma = check_number(sigma, "sigma", minimum=0, include_minimum=False)
        self.trainable_sigma = check_bool(trainable_sigma, "trainable_sigma")
        self.epsilon = check_number(
            epsilon, "epsilon", minimum=0, include_minimum=False
        )

    @staticmethod
    def _distances(inputs):
        return inputs[1] if is_signal_tuple(inputs) else inputs

    def build(self, input_shape):
        self.sigma_weight = self.add_weight(
            name="sigma",
            shape=(),
            initializer=keras.initializers.Constant(self.sigma),
            constraint=keras.constraints.NonNeg(),
            trainable=self.trainable_sigma,
        )

    def call(self, inputs):
        return detection_probability(
            self._distances(inputs), self.sigma_weight, epsilon=self.epsilon
        )

    def compute_output_shape(self, input_shape):
        if (
            isinstance(input_shape, (tuple, list))
            and len(input_shape) in (2, 3)
            and all(isinstance(shape, (tuple, list)) for shape in input_shape)
        ):
            return tuple(input_shape[1])
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sigma": self.sigma,
                "trainable_sigma": self.trainable_sigma,
                "epsilon": self.epsilon,
            }
        )
        return config


@anysma_export
class InputComponents(keras.layers.Layer):
    """Learned components in the input space, returned as a batch of inputs.

    The component half of a Siamese CBC: the layer owns `num_components`
    components of the input's per-sample shape (e.g. component *images*)
    and returns them, `(num_components, *shape)`, so that the same feature
    extractor layers can be applied to them and to the inputs. The inputs
    only place the layer in the graph and give the components' shape; their
    values are not used.

    Args:
        num_components: The number of components, >= 1.
        components_initializer: Initializer of the components.
        components_regularizer: Optional regularizer of the components.
        components_constraint: Optional constraint of the components.
        **kwargs: Base layer keyword arguments, such as `name`, `dtype` and
            `trainable`.

    Input shape:
        `(batch, *shape)`.

    Output shape:
        `(num_components, *shape)`: the components, without a batch axis.

    Example:

    >>> import numpy as np
    >>> layer = InputComponents(num_components=3)
    >>> layer(np.zeros((2, 5, 5, 1), dtype="float32")).shape
    (3, 5, 5, 1)
    """

    def __init__(
        self,
        num_components,
        components_initializer="random_uniform",
        components_regularizer=None,
        components_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_components = check_int(num_components, "num_components", minimum=1)
        self.components_initializer = keras.initializers.get(components_initializer)
        self.components_regularizer = keras.regularizers.get(components_regularizer)
        self.components_constraint = keras.constraints.get(components_constraint)

    def build(self, input_shape):
        if len(input_shape) < 2 or any(dim is None for dim in input_shape[1:]):
            raise ValueError(
                "`InputComponents` needs inputs (batch, ...) of a known "
                f"per-sample shape. Received: input_shape={tuple(input_shape)}"
            )
        self.components = self.add_weight(
            name="components",
            shape=(self.num_components,) + tuple(input_shape[1:]),
            initializer=self.components_initializer,
            regularizer=self.components_regularizer,
            constraint=self.components_constraint,
        )

    def call(self, inputs):
        # The identity of the weight, cast to the compute dtype.
        return ops.cast(self.components, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (self.num_components,) + tuple(input_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_components": self.num_components,
                "components_initializer": keras.initializers.serialize(
                    self.components_initializer
                ),
                "components_regularizer": keras.regularizers.serialize(
                    self.components_regularizer
                ),
                "components_constraint": keras.constraints.serialize(
                    self.components_constraint
                ),
            }
        )
        return config


@anysma_export
class CosineDetection(keras.layers.Layer):
    """Detection probabilities `max(cos(x, w_k), 0)` of inputs and components.

    The detection of the paper's Siamese CBCs: the inputs and the
    components are feature maps of the same feature extractor; both are
    flattened and compared by the rectified cosine similarity (see
    `anysma.ops.components.cosine_detection_probability`). No weights.

    Args:
        epsilon: Lower clamp of the squared norms, > 0.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        A list `[features, component_features]` of shapes `(batch, *shape)`
        and `(num_components, *shape)`.

    Output shape:
        `(batch, num_components)`.

    Example:

    >>> import numpy as np
    >>> features = np.ones((2, 4, 4, 8), dtype="float32")
    >>> components = np.ones((3, 4, 4, 8), dtype="float32")
    >>> np.asarray(CosineDetection()([features, components])).round(4)
    array([[1., 1., 1.],
           [1., 1., 1.]], dtype=float32)

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019, Section 4.1.
    """

    def __init__(self, epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = check_number(
            epsilon, "epsilon", minimum=0, include_minimum=False
        )

    @staticmethod
    def _check(input_shape):
        if (
            not isinstance(input_shape, (tuple, list))
            or len(input_shape) != 2
            or not all(isinstance(shape, (tuple, list)) for shape in input_shape)
        ):
            raise ValueError(
                "`CosineDetection` takes a list [features, component_features]. "
                f"Received: input_shape={input_shape!r}"
            )
        features, components = (tuple(shape) for shape in input_shape)
        if features[1:] != components[1:] or None in features[1:]:
            raise ValueError(
                "The features and the component features must have the same "
                "known per-sample shape. Received: features.shape="
                f"{features}, component_features.shape={components}"
            )
        return features, components

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        features, components = inputs
        return cosine_detection_probability(
            ops.reshape(features, (ops.shape(features)[0], -1)),
            ops.reshape(components, (ops.shape(components)[0], -1)),
            epsilon=self.epsilon,
        )

    def compute_output_shape(self, input_shape):
        features, components = self._check(input_shape)
        return (features[0], components[0])

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


@anysma_export
class Reasoning(keras.layers.Layer):
    """Positive, negative and indefinite reasoning of every class over components.

    Owns `reasoning_logits` `(components, num_classes, 3)`, whose softmax
    over the last axis gives the reasoning probabilities `r+`, `r-`, `r0`
    (on the simplex by construction), and returns
    `p(c | x) = sum_k (r+_ck d_k + r-_ck (1 - d_k)) / sum_k (r+_ck + r-_ck)`
    (see `anysma.ops.components.cbc_reasoning`).

    Args:
        num_classes: The number of classes, >= 1.
        reasoning_initializer: Initializer of the logits; the default
            `RandomNormal(stddev=1)` starts from varied reasoning so that
            the classes differ from the first step.
        reasoning_regularizer: Optional regularizer of the logits.
        epsilon: Lower clamp of the denominator, > 0.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        Detection probabilities `(..., components)`.

    Output shape:
        Class probabilities `(..., num_classes)`.

    Example:

    >>> import numpy as np
    >>> layer = Reasoning(num_classes=3)
    >>> layer(np.full((2, 5), 0.5, dtype="float32")).shape
    (2, 3)
    >>> positive, negative, indefinite = layer.reasoning_probabilities()
    >>> positive.shape
    (5, 3)

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019.
    """

    def __init__(
        self,
        num_classes,
        reasoning_initializer=None,
        reasoning_regularizer=None,
        epsilon=1e-7,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = check_int(num_classes, "num_classes", minimum=1)
        self.reasoning_initializer = keras.initializers.get(
            reasoning_initializer or keras.initializers.RandomNormal(stddev=1.0)
        )
        self.reasoning_regularizer = keras.regularizers.get(reasoning_regularizer)
        self.epsilon = check_number(
            epsilon, "epsilon", minimum=0, include_minimum=False
        )

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(
                "`Reasoning` needs a known number of components (the last "
                f"axis). Received: input_shape={tuple(input_shape)}"
            )
        self.reasoning_logits = self.add_weight(
            name="reasoning_logits",
            shape=(input_shape[-1], self.num_classes, 3),
            initializer=self.reasoning_initializer,
            regularizer=self.reasoning_regularizer,
        )

    def call(self, inputs):
        positive, negative, _ = reasoning_probabilities(self.reasoning_logits)
        return cbc_reasoning(inputs, positive, negative, epsilon=self.epsilon)

    def reasoning_probabilities(self):
        """The reasoning `(positive, negative, indefinite)`, NumPy `(K, C)` each."""
        return tuple(
            np.asarray(ops.convert_to_numpy(probabilities))
            for probabilities in reasoning_probabilities(self.reasoning_logits)
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "reasoning_initializer": keras.initializers.serialize(
                    self.reasoning_initializer
                ),
                "reasoning_regularizer": keras.regularizers.serialize(
                    self.reasoning_regularizer
                ),
                "epsilon": self.epsilon,
            }
        )
        return config


__all__ = [
    "Components",
    "CosineDetection",
    "Detection",
    "InputComponents",
    "PatchComponents",
    "Reasoning",
]
