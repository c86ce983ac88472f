"""Datasets, loaded as NumPy arrays like `keras.datasets`."""

from anysma.datasets import tecator

__all__ = ["tecator"]
