"""Baselines: CapsNet and the LVQ-capsule network written the direct way.

Plain Keras 3 (no anysma), with every capsule operation written as a
broadcast product followed by a sum, as capsule code is usually written
first: the prediction vectors of CapsNet as `sum(W * u, -1)` over a
`(batch, inputs, classes, 16, 8)` product, the tangent distances of the
LVQ capsules through `(batch, prototypes, channels, dim, subspace)`
products, the Gibbs routing through a `(batch, prototypes, channels, dim)`
product. The layer sizes are those of `anysma.models.CapsNet` and
`anysma.models.LVQCapsuleNetwork` (Sabour et al. 2017; Saralajew et al.
2018), so the benchmark compares the same model, written two ways.

Left out of the baselines (cheap next to the capsule layers): the
orthogonalization constraint of the tangent subspaces and the max-distance
regularizer of the last LVQ capsule.
"""

import keras
from keras import ops


def _squash(vectors, axis=-1, epsilon=1e-7):
    squared_norm = ops.sum(ops.square(vectors), axis=axis, keepdims=True)
    scale = squared_norm / (1.0 + squared_norm) / ops.sqrt(squared_norm + epsilon)
    return scale * vectors


class BroadcastDigitCapsules(keras.layers.Layer):
    """Digit capsules with dynamic routing (Sabour et al.), broadcast form."""

    def __init__(self, num_capsules, capsule_dim, routings=3, **kwargs):
        super().__init__(**kwargs)
        self.num_capsules = num_capsules
        self.capsule_dim = capsule_dim
        self.routings = routings

    def build(self, input_shape):
        _, num_inputs, input_dim = input_shape
        self.kernel = self.add_weight(
            name="kernel",
            shape=(num_inputs, self.num_capsules, self.capsule_dim, input_dim),
            initializer="glorot_uniform",
        )

    def call(self, inputs):
        # (B, N, 1, 1, d_in) * (1, N, K, d_out, d_in) -> sum -> (B, N, K, d_out)
        predictions = ops.sum(self.kernel[None] * inputs[:, :, None, None, :], axis=-1)
        logits = ops.zeros(ops.shape(predictions)[:3], dtype=predictions.dtype)
        for iteration in range(self.routings):
            couplings = ops.softmax(logits, axis=2)
            outputs = _squash(ops.sum(couplings[..., None] * predictions, axis=1))
            if iteration < self.routings - 1:
                logits = logits + ops.sum(predictions * outputs[:, None], axis=-1)
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_capsules, self.capsule_dim)


class BroadcastMask(keras.layers.Layer):
    """Keep the capsule of the true class (training) or of the longest one."""

    def call(self, capsules, labels):
        return ops.reshape(capsules * labels[..., None], (ops.shape(capsules)[0], -1))

    def compute_output_shape(self, capsules_shape, labels_shape):
        return (capsules_shape[0], capsules_shape[1] * capsules_shape[2])


def broadcast_capsnet(
    image_shape,
    num_classes=10,
    routings=3,
    conv_filters=256,
    conv_kernel_size=9,
    primary_capsule_channels=32,
    primary_capsule_dim=8,
    digit_capsule_dim=16,
    decoder_units=(512, 1024),
):
    """CapsNet with the inputs and outputs of `anysma.models.CapsNet`."""
    images = keras.Input(shape=image_shape, name="images")
    labels = keras.Input(shape=(num_classes,), name="labels")
    features = keras.layers.Conv2D(
        conv_filters, conv_kernel_size, activation="relu", name="conv1"
    )(images)
    primary = keras.layers.Conv2D(
        primary_capsule_channels * primary_capsule_dim,
        conv_kernel_size,
        strides=2,
        name="primary_conv",
    )(features)
    primary = keras.layers.Reshape((-1, primary_capsule_dim))(primary)
    primary = keras.layers.Lambda(_squash, name="primary_squash")(primary)
    capsules = BroadcastDigitCapsules(
        num_classes, digit_capsule_dim, routings, name="digit_capsules"
    )(primary)
    probabilities = keras.layers.Lambda(
        lambda v: ops.sqrt(ops.sum(ops.square(v), axis=-1) + 1e-7),
        name="probabilities",
    )(capsules)
    hidden = BroadcastMask(name="mask")(capsules, labels)
    for index, units in enumerate(decoder_units):
        hidden = keras.layers.Dense(
            units, activation="relu", name=f"decoder_dense_{index + 1}"
        )(hidden)
    hidden = keras.layers.Dense(
        image_shape[0] * image_shape[1] * image_shape[2], activation="sigmoid"
    )(hidden)
    reconstruction = keras.layers.Reshape(image_shape, name="reconstruction")(hidden)
    return keras.Model(
        {"images": images, "labels": labels},
        {"probabilities": probabilities, "reconstruction": reconstruction},
    )


class BroadcastTangentCapsules(keras.layers.Layer):
    """LVQ capsules (one prototype each) with tangent distances, broadcast form.

    Inputs `(signals (B, C, D), dissimilarities (B, C))`; every capsule
    measures all `C` signals with its (restricted) tangent distance, mixes
    the result into the input dissimilarities with `alpha`, and routes with
    the Gibbs weights `softmax(-d)` over the channels. Outputs `(B, P, D)`
    and `(B, P)`.
    """

    def __init__(
        self,
        num_capsules,
        subspace_dim,
        linear_factor,
        restricted=False,
        epsilon=1e-12,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_capsules = num_capsules
        self.subspace_dim = subspace_dim
        self.linear_factor = linear_factor
        self.restricted = restricted
        self.epsilon = epsilon

    def build(self, input_shape):
        signals_shape, _ = input_shape
        dim = signals_shape[-1]
        self.prototypes = self.add_weight(
            name="prototypes",
            shape=(self.num_capsules, dim),
            initializer="truncated_normal",
        )
        self.subspaces = self.add_weight(
            name="subspaces",
            shape=(self.num_capsules, dim, self.subspace_dim),
            initializer="truncated_normal",
        )
        if self.restricted:
            self.bounds = self.add_weight(
                name="bounds",
                shape=(self.num_capsules, self.subspace_dim),
                initializer=keras.initializers.Constant(1e-7),
                constraint=keras.constraints.NonNeg(),
            )

    def call(self, inputs):
        signals, dissimilarities = inputs
        # (B, 1, C, D) - (1, P, 1, D) -> (B, P, C, D)
        differences = signals[:, None] - self.prototypes[None, :, None]
        # (B, P, C, D, 1) * (1, P, 1, D, r) -> sum over D -> (B, P, C, r)
        theta = ops.sum(differences[..., None] * self.subspaces[None, :, None], axis=-2)
        if self.restricted:
            bounds = self.bounds[None, :, None]
            theta = ops.clip(theta, -bounds, bounds)
        # (B, P, C, 1, r) * (1, P, 1, D, r) -> sum over r -> (B, P, C, D)
        tangent = ops.sum(theta[..., None, :] * self.subspaces[None, :, None], axis=-1)
        residual = differences - tangent
        distances = ops.sqrt(
            ops.maximum(ops.sum(ops.square(residual), axis=-1), self.epsilon)
        )
        mixed = (1 - self.linear_factor) * dissimilarities[:, None] + (
            self.linear_factor * distances
        )
        weights = ops.softmax(-mixed, axis=2)
        routed = ops.sum(weights[..., None] * signals[:, None], axis=2)
        return routed, ops.sum(weights * mixed, axis=2)

    def compute_output_shape(self, input_shape):
        signals_shape, _ = input_shape
        batch = signals_shape[0]
        return (
            (batch, self.num_capsules, signals_shape[-1]),
            (batch, self.num_capsules),
        )


# (filters without the dissimilarity channels, kernel, strides, batch
#  normalization + ReLU, dropout) of the seven trunk blocks of the paper.
_TRUNK = (
    (32, 3, 1, True, True),
    (64, 3, 1, True, True),
    (64, 3, 1, True, True),
    (64, 5, 2, True, True),
    (32, 3, 1, False, True),
    (64, 3, 1, False, True),
    (64, 3, 1, False, False),
)


def broadcast_lvq_capsule_network(
    image_shape,
    num_classes=10,
    dissimilarity_channels=1,
    subspace_dim=16,
    linear_factor=0.66,
    dropout_rate=0.25,
):
    """The LVQ-capsule network with the input and output of anysma's."""
    images = keras.Input(shape=image_shape, name="images")
    features = images
    for filters, kernel, strides, normalize, dropout in _TRUNK:
        features = keras.layers.Conv2D(
            filters + dissimilarity_channels, kernel, strides=strides, padding="same"
        )(features)
        if normalize:
            features = keras.layers.BatchNormalization()(features)
            features = keras.layers.ReLU()(features)
        if dropout:
            features = keras.layers.Dropout(dropout_rate)(features)
    signal_dim = 64 // dissimilarity_channels
    signals = keras.layers.Reshape((-1, signal_dim))(
        keras.layers.Lambda(lambda f: f[..., :64])(features)
    )
    dissimilarities = keras.layers.Reshape((-1,))(
        keras.layers.ReLU()(keras.layers.Lambda(lambda f: f[..., 64:])(features))
    )

    def capsules(num, restricted=False):
        return BroadcastTangentCapsules(
            num, subspace_dim, linear_factor, restricted=restricted
        )

    signals, dissimilarities = capsules(64)((signals, dissimilarities))
    signals = keras.layers.Reshape((8, 8, signal_dim))(signals)
    for _ in range(2):
        signals = keras.layers.Conv2D(64, 3, padding="same")(signals)
    signals = keras.layers.Reshape((64, 64))(signals)
    signals, dissimilarities = capsules(16)((signals, dissimilarities))
    signals = keras.layers.Reshape((4, 4, 64))(signals)
    signals = keras.layers.Conv2D(128, 3, padding="same")(signals)
    signals = keras.layers.Reshape((16, 128))(signals)
    _, dissimilarities = capsules(num_classes, restricted=True)(
        (signals, dissimilarities)
    )
    probabilities = keras.layers.Softmax()(
        keras.layers.Lambda(lambda d: -d)(dissimilarities)
    )
    return keras.Model(images, probabilities)


def broadcast_measuring_routing(num_channels, dim, num_capsules, subspace_dim):
    """One tangent-distance LVQ capsule layer (measuring + Gibbs routing)."""
    signals = keras.Input(shape=(num_channels, dim), name="signals")
    dissimilarities = keras.Input(shape=(num_channels,), name="dissimilarities")
    routed, routed_dissimilarities = BroadcastTangentCapsules(
        num_capsules, subspace_dim, 0.5
    )((signals, dissimilarities))
    return keras.Model([signals, dissimilarities], routed_dissimilarities)
