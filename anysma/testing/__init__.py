"""Test utilities built on the public Keras API (usable by downstream code)."""

from anysma.testing.test_case import TestCase

__all__ = ["TestCase"]
