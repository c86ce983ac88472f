"""Identifier lookup shared by `anysma.constraints` and `anysma.regularizers`.

Both resolve anysma's names first and fall back to Keras' own objects, the
way each area of Keras offers `get`, `serialize` and `deserialize`.
"""

import inspect


def public_classes(module, base_class):
    """The public subclasses of `base_class` in `module`, by name."""
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, base_class)
    }


def resolve_identifier(identifier, kind, base_class, deserialize):
    """Turn an identifier into an instance of `base_class` (or a callable).

    Args:
        identifier: `None`, an instance or callable, a class, a config dict or
            a name.
        kind: Word for error messages, e.g. `"constraint"`.
        base_class: Classes of this type are instantiated with defaults.
        deserialize: The area's `deserialize` function.

    Returns:
        The instance or callable; `None` for `None`.
    """
    if identifier is None:
        return None
    error = ValueError(
        f"Could not interpret the {kind} `identifier`: expected `None`, a "
        f"{kind}, a {kind} name or a config dict. "
        f"Received: identifier={identifier!r}"
    )
    resolved = identifier
    if isinstance(identifier, (str, dict)):
        try:
            resolved = deserialize(identifier)
        except (TypeError, ValueError) as cause:
            raise error from cause
    if inspect.isclass(resolved) and issubclass(resolved, base_class):
        resolved = resolved()
    if callable(resolved) and not inspect.isclass(resolved):
        return resolved
    raise error


def keras_attribute(keras_module, module_name, name):
    """Keras' own attribute `name` for a module that extends `keras_module`.

    The original anysma started its losses, regularizers, constraints and
    datasets with `from keras.<area> import *`, so code written for it uses
    names such as `anysma.losses.categorical_crossentropy`. A module-level
    `__getattr__` that calls this keeps those names working without copying
    Keras' namespace into anysma's own (`__all__`, the documentation).
    """
    if not name.startswith("__"):
        try:
            return getattr(keras_module, name)
        except AttributeError:
            pass
    raise AttributeError(
        f"module {module_name!r} has no attribute {name!r} "
        f"(neither has {keras_module.__name__!r})"
    )
