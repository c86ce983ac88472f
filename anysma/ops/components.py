"""Classification-by-components (CBC): detection and reasoning as pure functions.

A CBC (Saralajew et al., 2019) classifies in two steps:

1. **Detection.** Each of `K` components is detected in the input with a
   probability `d_k(x)` in `[0, 1]`; here the Gaussian (RBF) of a distance,
   `d_k = exp(-dist(x, w_k) / sigma)`, for any distance of
   `anysma.ops.distances` (squared Euclidean in the paper's RBF form), or
   the rectified cosine similarity `max(cos(x, w_k), 0)` of the paper's
   Siamese MNIST models (`cosine_detection_probability`).
2. **Reasoning.** Every class `c` holds, per component `k`, the
   probabilities of positive (`r+`: the component must be detected),
   negative (`r-`: it must not be detected) and indefinite (`r0`: it does
   not matter) reasoning, with `r+ + r- + r0 = 1`. The class probability is

   ```
   p(c | x) = sum_k (r+_ck d_k + r-_ck (1 - d_k)) / sum_k (r+_ck + r-_ck),
   ```

   the probability that the reasoning of class `c` agrees with the
   detections, given that the reasoning is not indefinite.

The three reasoning probabilities are parametrized here by a softmax over
three unconstrained logits per (component, class), which keeps them on the
simplex without clipping.
"""

from keras import ops

from anysma.ops._validation import check_epsilon
from anysma.ops._validation import check_min_rank
from anysma.ops._validation import check_rank
from anysma.ops._validation import static_shape
from anysma.ops._validation import to_common_float
from anysma.ops.distances import squared_euclidean_distance
from anysma.utils.validation import check_int_pair
from anysma.utils.validation import is_real


def detection_probability(distances, sigma=1.0, epsilon=1e-7):
    """The Gaussian (RBF) detection probability `exp(-max(d, 0) / sigma)`.

    With the squared Euclidean distance this is the Gaussian kernel of
    width `sigma` of the CBC paper; any other distance (e.g. those of
    `anysma.ops.distances` or of a measuring module) gives its own kernel.
    Zero distance gives probability 1 with a finite gradient; negative
    rounding errors of GEMM distances are clamped to 0.

    Args:
        distances: Distances of any shape, >= 0.
        sigma: The width, a number > 0 or a scalar tensor (e.g. a trainable
            variable; it is clamped to `epsilon` from below).
        epsilon: The smallest width used, > 0.

    Returns:
        The detection probabilities, of the shape of `distances`.

    Example:

    >>> import numpy as np
    >>> np.round(np.asarray(detection_probability(np.array([0.0, 2.0]), 2.0)), 4)
    array([1.    , 0.3679], dtype=float32)

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019, Section 2.
    """
    check_epsilon(epsilon, positive=True)
    if is_real(sigma) and not sigma > 0:
        raise ValueError(f"`sigma` must be a number > 0. Received: sigma={sigma!r}")
    distances, sigma = to_common_float(distances, sigma)
    return ops.exp(-ops.maximum(distances, 0) / ops.maximum(sigma, epsilon))


def cosine_similarity(x, components, epsilon=1e-7):
    """Cosine similarity of every input to every component: `(..., K)`.

    Computes `x . w_k / (|x| |w_k|)` with the norms taken as
    `sqrt(max(|v|^2, epsilon))`, so that a zero vector (a dead feature map,
    an all-zero component) has similarity 0 and a finite gradient instead
    of `0 / 0`.

    Args:
        x: Inputs `(..., D)`.
        components: Components `(K, D)`.
        epsilon: Lower clamp of the squared norms, > 0.

    Returns:
        The similarities `(..., K)`, in `[-1, 1]`.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.0, 0.0]])
    >>> components = np.array([[2.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    >>> np.round(np.asarray(cosine_similarity(x, components)), 4)
    array([[ 1.    ,  0.7071, -1.    ],
           [ 0.    ,  0.    ,  0.    ]], dtype=float32)
    """
    check_epsilon(epsilon, positive=True)
    x, components = to_common_float(x, components)
    check_min_rank(x, "x", 1, " (..., features)")
    check_rank(components, "components", 2, " (components, features)")
    if static_shape(x)[-1] not in (None, static_shape(components)[-1]):
        raise ValueError(
            "`x` and `components` must have the same number of features (the "
            f"last axis). Received: x.shape={static_shape(x)}, "
            f"components.shape={static_shape(components)}"
        )

    def unit(vectors):
        squared = ops.sum(ops.square(vectors), axis=-1, keepdims=True)
        return vectors / ops.sqrt(ops.maximum(squared, epsilon))

    return ops.matmul(unit(x), ops.transpose(unit(components)))


def cosine_detection_probability(x, components, epsilon=1e-7):
    """The detection probability `max(cos(x, w_k), 0)` of the CBC paper.

    The detection of the paper's Siamese CBCs: inputs and components pass
    through the same feature extractor, and a component counts as detected
    as far as the two feature vectors point the same way; opposite
    directions count as "not detected" (0), not as negative probability.

    Args:
        x: Inputs `(..., D)`, e.g. flattened feature maps.
        components: Components `(K, D)` in the same feature space.
        epsilon: Lower clamp of the squared norms, > 0 (see
            `cosine_similarity`).

    Returns:
        The detection probabilities `(..., K)`, in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0]])
    >>> components = np.array([[2.0, 0.0], [-1.0, 0.0]])
    >>> np.asarray(cosine_detection_probability(x, components))
    array([[1., 0.]], dtype=float32)

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019, Section 4.1 (the MNIST models).
    """
    return ops.relu(cosine_similarity(x, components, epsilon=epsilon))


def reasoning_probabilities(logits):
    """Positive, negative and indefinite reasoning from logits `(..., 3)`.

    A softmax over the last axis maps three unconstrained numbers per
    (component, class) onto the probability simplex, so that
    `r+ + r- + r0 = 1` holds exactly for every parameter value.

    Args:
        logits: Tensor `(..., 3)`: the logits of positive, negative and
            indefinite reasoning, in this order.

    Returns:
        A tuple `(positive, negative, indefinite)` of tensors `(...)`.

    Example:

    >>> import numpy as np
    >>> positive, negative, indefinite = reasoning_probabilities(np.zeros((2, 3)))
    >>> np.round(np.asarray(positive), 3)
    array([0.333, 0.333], dtype=float32)
    """
    (logits,) = to_common_float(logits)
    check_min_rank(logits, "logits", 1)
    if static_shape(logits)[-1] != 3:
        raise ValueError(
            "`logits` must have a last axis of size 3 (positive, negative, "
            f"indefinite). Received: logits.shape={static_shape(logits)}"
        )
    probabilities = ops.softmax(logits, axis=-1)
    return tuple(probabilities[..., index] for index in range(3))


def cbc_reasoning(detections, positive, negative, epsilon=1e-7):
    """Class probabilities of a CBC from detections and reasoning.

    Computes, for every class `c`,
    `sum_k (r+_ck d_k + r-_ck (1 - d_k)) / max(sum_k (r+_ck + r-_ck), eps)`
    as one matrix product, `(d (r+ - r-) + sum_k r-_ck) / sum_k (r+ + r-)`.
    With detections in `[0, 1]` the result lies in `[0, 1]`; a class whose
    reasoning is indefinite for every component gets 0 instead of `0 / 0`.

    Args:
        detections: Detection probabilities `(..., K)`.
        positive: Positive reasoning probabilities `(K, C)`.
        negative: Negative reasoning probabilities `(K, C)`.
        epsilon: Lower clamp of the denominator, > 0.

    Returns:
        The class probabilities `(..., C)`.

    Example:

    >>> import numpy as np
    >>> detections = np.array([[1.0, 0.0]])
    >>> positive = np.array([[1.0, 0.0], [0.0, 0.0]])  # class 0 needs comp. 0
    >>> negative = np.array([[0.0, 1.0], [0.0, 0.0]])  # class 1 forbids it
    >>> np.asarray(cbc_reasoning(detections, positive, negative))
    array([[1., 0.]], dtype=float32)

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019, Eq. (1).
    """
    check_epsilon(epsilon, positive=True)
    detections, positive, negative = to_common_float(detections, positive, negative)
    check_min_rank(detections, "detections", 1, " (..., components)")
    check_rank(positive, "positive", 2, " (components, classes)")
    check_rank(negative, "negative", 2, " (components, classes)")
    components = static_shape(detections)[-1]
    for name, reasoning in (("positive", positive), ("negative", negative)):
        if static_shape(reasoning)[0] not in (None, components):
            raise ValueError(
                f"`{name}` must have one row per component ({components}, the "
                f"last axis of `detections`). Received: {name}.shape="
                f"{static_shape(reasoning)}"
            )
    if static_shape(positive) != static_shape(negative):
        raise ValueError(
            "`positive` and `negative` must have the same shape. Received: "
            f"positive.shape={static_shape(positive)}, "
            f"negative.shape={static_shape(negative)}"
        )
    numerator = ops.matmul(detections, positive - negative) + ops.sum(negative, 0)
    denominator = ops.maximum(ops.sum(positive + negative, axis=0), epsilon)
    return numerator / denominator


def image_patches(images, patch_size, strides=1, padding="valid"):
    """All patches of channels-last images, flattened: `(B, H', W', ph pw C)`.

    Args:
        images: Images `(B, H, W, C)`.
        patch_size: `(ph, pw)` or one int.
        strides: `(sh, sw)` or one int.
        padding: `"valid"` or `"same"`.

    Returns:
        The patches, each flattened in `(ph, pw, C)` order.
    """
    (images,) = to_common_float(images)
    check_rank(images, "images", 4, " (batch, height, width, channels)")
    patch_size = check_int_pair(patch_size, "patch_size")
    strides = check_int_pair(strides, "strides")
    if padding not in ("valid", "same"):
        raise ValueError(
            f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}"
        )
    return ops.image.extract_patches(
        images,
        patch_size,
        strides=strides,
        padding=padding,
        data_format="channels_last",
    )


def patch_distances(images, components, strides=1, padding="valid", distance=None):
    """Distances of every image patch to every patch component.

    The patches of `images` (see `image_patches`) are compared with the
    components by a pairwise distance of `anysma.ops.distances`.

    Args:
        images: Images `(B, H, W, C)`.
        components: Patch components `(K, ph, pw, C)`.
        strides: `(sh, sw)` or one int.
        padding: `"valid"` or `"same"`.
        distance: A pairwise distance `distance(x (..., D), w (K, D))`;
            defaults to `anysma.ops.squared_euclidean_distance`.

    Returns:
        The distances `(B, H', W', K)`.

    Example:

    >>> import numpy as np
    >>> images = np.zeros((1, 4, 4, 1), dtype="float32")
    >>> components = np.ones((3, 2, 2, 1), dtype="float32")
    >>> patch_distances(images, components).shape
    (1, 3, 3, 3)
    """
    images, components = to_common_float(images, components)
    check_rank(components, "components", 4, " (components, height, width, channels)")
    check_rank(images, "images", 4, " (batch, height, width, channels)")
    if static_shape(images)[-1] not in (None, static_shape(components)[-1]):
        raise ValueError(
            "`images` and `components` must have the same number of channels. "
            f"Received: images.shape={static_shape(images)}, "
            f"components.shape={static_shape(components)}"
        )
    distance = squared_euclidean_distance if distance is None else distance
    if not callable(distance):
        raise TypeError(
            "`distance` must be a pairwise distance function such as "
            "`anysma.ops.squared_euclidean_distance`, or None. Received: "
            f"distance={distance!r}"
        )
    patches = image_patches(
        images, static_shape(components)[1:3], strides=strides, padding=padding
    )
    flat = ops.reshape(components, (static_shape(components)[0], -1))
    return distance(patches, flat)
