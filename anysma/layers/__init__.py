"""Keras layers of anysma that are not capsule modules."""

from anysma.layers.batch_normalization import BatchNormalization
from anysma.layers.strided_conv import Conv2D

__all__ = ["BatchNormalization", "Conv2D"]
