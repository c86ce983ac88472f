"""Keras layers of anysma that are not capsule modules."""

from anysma.layers.strided_conv import Conv2D

__all__ = ["Conv2D"]
