"""The one decorator that registers anysma objects with Keras serialization."""

import keras

PACKAGE = "anysma"


def anysma_export(obj=None, *, name=None):
    """Register a class or function as ``"anysma>Name"`` for Keras saving.

    Registered objects round-trip through `.keras` files and
    `keras.saving.deserialize_keras_object` without `custom_objects`.

    Args:
        obj: The class or function. When omitted, a decorator is returned.
        name: The registered name; defaults to `obj.__name__`.
    """

    def register(target):
        return keras.saving.register_keras_serializable(
            package=PACKAGE, name=name or target.__name__
        )(target)

    if obj is None:
        return register
    return register(obj)
