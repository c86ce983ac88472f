"""`BatchNormalization` whose moving statistics are bias-corrected averages."""

import keras
from keras import ops

from anysma.api_export import anysma_export


@anysma_export
class BatchNormalization(keras.layers.BatchNormalization):
    """Batch normalization whose inference statistics are right from step one.

    Keras' `BatchNormalization` starts its moving mean and variance at 0 and
    1 and moves them by `1 - momentum` per training step. When the variance
    of a layer's inputs is far from 1 (a convolution initialized with
    `N(0, 0.01)`, or the first layer on `[0, 1]` pixels: variances of 0.005
    to 0.04), inference mode divides by a variance that is still dominated
    by the initial 1 for hundreds of steps, and the error compounds from one
    normalized layer to the next: a network evaluated early predicts one
    class for every input although its training-mode predictions are good.

    Here the moving statistics are exponential averages that start at zero
    and are divided by `1 - momentum ** steps` in inference mode (the bias
    correction of Adam's moment estimates), so after `t` steps they are a
    proper weighted average of the `t` batch statistics seen so far. The
    training-mode output, the trainable weights and their gradients are
    exactly those of `keras.layers.BatchNormalization`; the layer adds one
    non-trainable scalar, the number of updates `steps`. Before the first
    update, inference normalizes with mean 0 and variance 1, as Keras does.

    Args:
        momentum: Momentum of the moving averages.
        **kwargs: The other arguments of `keras.layers.BatchNormalization`
            (`axis`, `epsilon`, `center`, `scale`, initializers, `name`, ...).
            `moving_mean_initializer` and `moving_variance_initializer` are
            fixed to zeros (the averages are bias-corrected) and
            `renorm` is not supported.

    Example:

    >>> import numpy as np
    >>> layer = BatchNormalization(momentum=0.9)
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, (256, 4)).astype("float32")
    >>> _ = layer(x, training=True)  # one update of the moving statistics
    >>> y = np.asarray(layer(x, training=False))
    >>> bool(abs(y.mean()) < 0.01 and abs(y.std() - 1) < 0.01)
    True
    """

    def __init__(self, momentum=0.99, **kwargs):
        for fixed in ("moving_mean_initializer", "moving_variance_initializer"):
            value = kwargs.pop(fixed, "zeros")
            if value not in ("zeros", None):
                raise ValueError(
                    f"`{fixed}` of anysma.layers.BatchNormalization is always "
                    "zeros: the moving averages are bias-corrected. Received: "
                    f"{fixed}={value!r}"
                )
        if kwargs.get("renorm"):
            raise ValueError(
                "anysma.layers.BatchNormalization does not support `renorm`; "
                "use keras.layers.BatchNormalization. Received: renorm=True"
            )
        super().__init__(
            momentum=momentum,
            moving_mean_initializer="zeros",
            moving_variance_initializer="zeros",
            **kwargs,
        )

    def build(self, input_shape):
        super().build(input_shape)
        self.steps = self.add_weight(
            shape=(),
            name="steps",
            initializer="zeros",
            trainable=False,
            autocast=False,
        )

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable:
            outputs = super().call(inputs, training=True, mask=mask)
            self.steps.assign(self.steps + 1.0)
            return outputs
        correction = 1.0 - ops.power(ops.cast(self.momentum, "float32"), self.steps)
        updated = ops.greater(self.steps, 0.0)
        # Before the first update `correction` is 0: fall back to (0, 1).
        safe = ops.where(updated, correction, 1.0)
        mean = ops.where(updated, self.moving_mean / safe, 0.0)
        variance = ops.where(updated, self.moving_variance / safe, 1.0)
        dtype = inputs.dtype
        return ops.batch_normalization(
            inputs,
            mean=ops.cast(mean, dtype),
            variance=ops.cast(variance, dtype),
            axis=self.axis,
            offset=ops.cast(self.beta, dtype) if self.center else None,
            scale=ops.cast(self.gamma, dtype) if self.scale else None,
            epsilon=self.epsilon,
        )

    def get_config(self):
        config = super().get_config()
        for fixed in ("moving_mean_initializer", "moving_variance_initializer"):
            config.pop(fixed, None)
        return config
