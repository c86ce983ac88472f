"""`Capsule`, a chain of modules, and `Module`, the base class of its steps.

A capsule is a Python-side composer: calling it calls each of its modules
(and any plain Keras layer added to it) in order. It is not a node of its
own in a functional model: the modules are, so `model.get_layer(name)`,
`module.input`/`module.output` and `.keras` saving work as for any Keras
layer, and calling a capsule again on new inputs shares its weights.

Between modules flows a tuple `(signals, dissimilarities)`, and after a
final module `(signals, dissimilarities, probabilities)`. Plain Keras layers
added to a capsule act on the signals only.
"""

import os
import sys
import warnings

import keras
import numpy as np

from anysma.api_export import anysma_export
from anysma.utils import prototype_index_tables


def canonical_prototype_distribution(prototype_distribution):
    """Validate a prototype distribution; return it as a per-capsule list.

    `n`, `(k, n)` and `[k_0, k_1, ...]` become `[1] * n`, `[k] * n` and
    `[k_0, k_1, ...]`: the JSON-safe form stored in configs. `None` stays
    `None`.
    """
    if prototype_distribution is None:
        return None
    return list(prototype_index_tables(prototype_distribution).prototypes_per_capsule)


def is_signal_tuple(value):
    """Whether `value` is a module signal `(signals, dissimilarities[, ...])`."""
    return isinstance(value, (tuple, list)) and len(value) in (2, 3)


def _is_signal_dict(value):
    """Whether `value` is the original's signal dict `{0: ..., 1: ...[, 2: ...]}`.

    String keys count too: Keras 3 turns integer keys into strings when it
    loads a `.keras` file.
    """
    if not isinstance(value, dict) or len(value) not in (2, 3):
        return False
    return {str(key) for key in value} == {str(i) for i in range(len(value))}


def as_signal_tuple(inputs):
    """The tuple form of a module signal given as the original's dict.

    The original anysma passed `{0: signals, 1: dissimilarities}` between
    modules (`anysma.utils.list_to_dict`); anysma passes tuples. Anything
    that is not such a dict is returned unchanged.
    """
    if _is_signal_dict(inputs):
        by_index = {int(key): value for key, value in inputs.items()}
        return tuple(by_index[i] for i in range(len(by_index)))
    return inputs


#: The accepted `norm_axis` values (1 = capsules, i.e. prototypes; 2 = channels).
NORM_AXES = ("channels", "capsules", 1, 2, -1)


def check_norm_axis(norm_axis):
    """Validate the `norm_axis` of the routing modules; return it unchanged."""
    # `True == 1` and hashes alike: exclude booleans explicitly.
    if isinstance(norm_axis, bool) or norm_axis not in NORM_AXES:
        raise ValueError(
            "`norm_axis` must be 'channels' (or 2, -1) or 'capsules' (or 1). "
            f"Received: norm_axis={norm_axis!r}"
        )
    return norm_axis


#: Keyword arguments of the 2018 `Module` whose meaning anysma always has.
_ORIGINAL_MODULE_KEYWORDS = {
    "need_capsule_params": (
        "each module knows whether it needs the capsule's prototype "
        "distribution (`Capsule.add` passes it on)"
    ),
    "module_input": (
        "modules take the tuple `(signals, dissimilarities)` and accept the "
        "original's dict `{0: signals, 1: dissimilarities}` as well"
    ),
    "module_output": "modules return the tuple `(signals, dissimilarities)`",
}


def _caller_stacklevel():
    """The `stacklevel` of the first frame outside anysma and Keras.

    The warning then points at the user's line, which is also what makes
    Python's default filters show a `DeprecationWarning` from a script.
    """
    internal = tuple(
        os.path.dirname(module.__file__) + os.sep
        for module in (keras, sys.modules[__name__.split(".")[0]])
    )
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(internal):
        frame, level = frame.f_back, level + 1
    return level


def warn_original_keyword(keyword, value, advice):
    """The `DeprecationWarning` for a keyword argument of the 2018 anysma."""
    warnings.warn(
        f"`{keyword}` is an argument of the 2018 anysma and has no effect: "
        f"{advice}. Remove `{keyword}={value!r}`.",
        DeprecationWarning,
        stacklevel=_caller_stacklevel(),
    )


@anysma_export
class Module(keras.layers.Layer):
    """Base class of the steps of a capsule.

    A module maps a module signal `(signals, dissimilarities)` to another one.
    Modules that own prototypes or act per capsule need the capsule's
    `prototype_distribution`; `Capsule.add` fills it in, or it can be given
    directly when a module is used on its own.

    Args:
        prototype_distribution: `None`, an int `n` (n capsules with one
            prototype each), a tuple `(k, n)` (n capsules with k prototypes
            each, capsule-major order) or a list `[k_0, k_1, ...]`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    #: Whether the module cannot work without a prototype distribution.
    requires_prototype_distribution = False

    def __init__(self, prototype_distribution=None, **kwargs):
        for keyword, advice in _ORIGINAL_MODULE_KEYWORDS.items():
            if keyword in kwargs:
                warn_original_keyword(keyword, kwargs.pop(keyword), advice)
        super().__init__(**kwargs)
        self.prototype_distribution = canonical_prototype_distribution(
            prototype_distribution
        )

    @property
    def prototype_tables(self):
        """The resolved `anysma.utils.PrototypeIndexTables`."""
        if self.prototype_distribution is None:
            raise ValueError(
                f"Module `{self.name}` ({type(self).__name__}) needs a "
                "`prototype_distribution`: add it to a "
                "`Capsule(prototype_distribution=...)` or pass "
                "`prototype_distribution=` to the module. "
                "Received: prototype_distribution=None"
            )
        return prototype_index_tables(self.prototype_distribution)

    @property
    def capsule_number(self):
        return self.prototype_tables.capsule_number

    @property
    def proto_number(self):
        return self.prototype_tables.proto_number

    def __call__(self, inputs, *args, **kwargs):
        # The original's dict signals `{0: ..., 1: ...}` become tuples.
        return super().__call__(as_signal_tuple(inputs), *args, **kwargs)

    def _set_prototype_distribution(self, prototype_distribution, owner):
        distribution = canonical_prototype_distribution(prototype_distribution)
        if distribution is None or self.prototype_distribution == distribution:
            return
        if self.prototype_distribution is not None and self.built:
            raise ValueError(
                f"Module `{self.name}` is built for prototype_distribution="
                f"{self.prototype_distribution} and cannot join capsule "
                f"`{owner}` with prototype_distribution={distribution}."
            )
        self.prototype_distribution = distribution

    # === Checks shared by the modules ===

    def _not_a_signal(self, received):
        """The `TypeError` for an input that is not a module signal."""
        return TypeError(
            f"Module `{self.name}` ({type(self).__name__}) expects a module "
            "signal `(signals, dissimilarities)` as input (put an "
            f"`InputModule` first in the capsule). Received: {received}"
        )

    def _check_signal(self, inputs, arity=(2,)):
        """Raise a `TypeError` unless `inputs` is a module signal (in `call`)."""
        if not is_signal_tuple(inputs) or len(inputs) not in arity:
            received = (
                f"a tuple of {len(inputs)}"
                if isinstance(inputs, (tuple, list))
                else type(inputs).__name__
            )
            raise self._not_a_signal(f"inputs of type {received}")

    def _split_signal_shapes(self, input_shape):
        """Return `(signals_shape, dissimilarities_shape)` as tuples.

        Accepts the shapes Keras passes to `build` and `compute_output_shape`:
        a tuple of two shapes, or a list of two lists after loading a `.keras`
        file. Anything else raises the `TypeError` of `_check_signal`.
        """
        if (
            not isinstance(input_shape, (tuple, list))
            or len(input_shape) != 2
            or not all(isinstance(shape, (tuple, list)) for shape in input_shape)
        ):
            raise self._not_a_signal(f"input_shape={input_shape!r}")
        return tuple(input_shape[0]), tuple(input_shape[1])

    def get_config(self):
        config = super().get_config()
        config["prototype_distribution"] = self.prototype_distribution
        return config


@anysma_export
class Capsule(keras.layers.Layer):
    """A capsule: a chain of modules and Keras layers.

    The original anysma's central abstraction: input -> transformation ->
    measuring -> routing -> competition -> final, where any Keras layer can
    be one of the steps (it then acts on the signals only).

    Args:
        prototype_distribution: `None` (a container of Keras layers only), an
            int `n` (n capsules with one prototype each), a tuple `(k, n)`
            (n capsules with k prototypes each; capsule `i` owns prototypes
            `i*k ... (i+1)*k - 1`) or a list `[k_0, k_1, ...]`.
        modules: Optional module, layer or list of them to add at once.
        **kwargs: Base layer keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> from anysma.modules import InputModule, MinkowskiDistance
    >>> from anysma.modules import SqueezeRouting, NearestCompetition
    >>> from anysma.modules import Classification
    >>> capsule = anysma.Capsule(prototype_distribution=(2, 3))
    >>> capsule = capsule.add([
    ...     InputModule(signal_shape=(1, 4), dissimilarity_initializer="zeros"),
    ...     MinkowskiDistance(linear_factor=None, squared_dissimilarity=True),
    ...     SqueezeRouting(),
    ...     NearestCompetition(),
    ...     Classification(probability_transformation="flip", name="lvq"),
    ... ])
    >>> inputs = keras.Input((4,))
    >>> signals, dissimilarities, probabilities = capsule(inputs)
    >>> tuple(probabilities.shape)
    (None, 3)
    """

    def __init__(self, prototype_distribution=None, modules=None, **kwargs):
        super().__init__(**kwargs)
        self.prototype_distribution = canonical_prototype_distribution(
            prototype_distribution
        )
        self._capsule_modules = []
        self._stack_indices = []
        if modules is not None:
            self.add(modules)

    # === Structure ===

    @property
    def prototype_tables(self):
        if self.prototype_distribution is None:
            raise ValueError(
                f"Capsule `{self.name}` has no prototypes. "
                "Received: prototype_distribution=None"
            )
        return prototype_index_tables(self.prototype_distribution)

    @property
    def proto_number(self):
        return self.prototype_tables.proto_number

    @property
    def capsule_number(self):
        return self.prototype_tables.capsule_number

    @property
    def proto_distrib(self):
        """The original's name of `prototype_distribution` (read-only)."""
        return self.prototype_distribution

    @property
    def input(self):
        """The input of the first step of the chain (as in the original).

        A capsule is no node of the functional graph itself: its first
        module is, so this is that module's input after the capsule was
        called on symbolic inputs.
        """
        return self._end_step(0).input

    @property
    def output(self):
        """The output of the last step of the chain (as in the original)."""
        return self._end_step(-1).output

    @property
    def output_shape(self):
        """The shape of `output`, one tuple per part of the module signal."""
        return keras.tree.map_structure(lambda tensor: tuple(tensor.shape), self.output)

    def _end_step(self, position):
        if not self._stack_indices:
            raise ValueError(f"Capsule `{self.name}` is empty: `add` modules first.")
        step = self.module_stack[position]
        try:
            step.output  # noqa: B018 (raises if the step was never called)
        except (AttributeError, ValueError) as error:
            # A ValueError: PyTorch modules turn an AttributeError raised in a
            # property into "has no attribute", which would hide the advice.
            raise ValueError(
                f"Capsule `{self.name}` has no symbolic input or output yet: "
                "call it on `keras.Input` tensors first."
            ) from error
        return step

    @property
    def modules(self):
        """The distinct modules and layers, in order of first appearance."""
        return list(self._capsule_modules)

    @property
    def module_stack(self):
        """The call order (a module added twice appears twice)."""
        return [self._capsule_modules[index] for index in self._stack_indices]

    def add(self, modules):
        """Append a module, a Keras layer, a capsule or a list of them.

        Returns:
            The capsule itself, so calls can be chained.
        """
        if isinstance(modules, (list, tuple)):
            for module in modules:
                self.add(module)
            return self
        if not isinstance(modules, keras.layers.Layer):
            raise TypeError(
                "`Capsule.add` expects a module, a Keras layer, a capsule or a "
                f"list of them. Received: {modules!r} of type "
                f"{type(modules).__name__}"
            )
        if isinstance(modules, Module) and self.prototype_distribution is not None:
            modules._set_prototype_distribution(self.prototype_distribution, self.name)
        # A layer added twice is called twice but owns its weights once.
        index = next(
            (i for i, known in enumerate(self._capsule_modules) if known is modules),
            None,
        )
        if index is None:
            self._capsule_modules.append(modules)
            index = len(self._capsule_modules) - 1
        self._stack_indices.append(index)
        return self

    def pop(self):
        """Remove the last step of the chain and return it."""
        if not self._stack_indices:
            raise ValueError(f"Capsule `{self.name}` is empty.")
        index = self._stack_indices.pop()
        module = self._capsule_modules[index]
        if index not in self._stack_indices:
            self._capsule_modules.pop(index)
            self._stack_indices = [i - (i > index) for i in self._stack_indices]
        return module

    def get_module(self, name=None, index=None):
        """Return a module by name or by its position in `modules`."""
        if (name is None) == (index is None):
            raise ValueError(
                "Pass exactly one of `name` and `index`. "
                f"Received: name={name!r}, index={index!r}"
            )
        if index is not None:
            if not -len(self._capsule_modules) <= index < len(self._capsule_modules):
                raise ValueError(
                    f"Capsule `{self.name}` has {len(self._capsule_modules)} "
                    f"modules. Received: index={index}"
                )
            return self._capsule_modules[index]
        for module in self._capsule_modules:
            if module.name == name:
                return module
        names = [module.name for module in self._capsule_modules]
        raise ValueError(
            f"Capsule `{self.name}` has no module named {name!r}; its modules "
            f"are {names}. Received: name={name!r}"
        )

    # === Calling ===

    def __call__(self, inputs, **kwargs):
        if not self._stack_indices:
            raise ValueError(f"Capsule `{self.name}` is empty: `add` modules first.")
        # The original's dict signals enter as tuples, whatever comes first.
        outputs = as_signal_tuple(inputs)
        for layer in self.module_stack:
            outputs = self._call_step(layer, outputs, kwargs)
        self.built = True
        return outputs

    def call(self, inputs, **kwargs):
        return self.__call__(inputs, **kwargs)

    @staticmethod
    def _call_step(layer, inputs, kwargs):
        if isinstance(layer, (Module, Capsule)) or not is_signal_tuple(inputs):
            return layer(inputs, **kwargs)
        # A plain Keras layer transforms the signals and keeps the rest.
        return (layer(inputs[0], **kwargs),) + tuple(inputs[1:])

    def _run_prefix(self, module, inputs, include_module):
        position = None
        for step, layer in enumerate(self.module_stack):
            if layer is module:
                position = step
                break
        if position is None:
            raise ValueError(
                f"Module `{getattr(module, 'name', module)}` is not part of "
                f"capsule `{self.name}`."
            )
        outputs = inputs
        for layer in self.module_stack[: position + int(include_module)]:
            outputs = self._call_step(layer, outputs, {})
        return outputs

    def _module_io(self, module, inputs, include_module, batch_size):
        if isinstance(module, str):
            module = self.get_module(name=module)
        flat = keras.tree.flatten(inputs)
        size = int(flat[0].shape[0])
        results = []
        for start in range(0, size, batch_size):
            batch = keras.tree.map_structure(
                lambda item, s=start: item[s : s + batch_size], inputs
            )
            outputs = self._run_prefix(module, batch, include_module)
            results.append(
                keras.tree.map_structure(
                    lambda tensor: np.asarray(keras.ops.convert_to_numpy(tensor)),
                    outputs,
                )
            )
        return keras.tree.map_structure(
            lambda *parts: np.concatenate(parts, axis=0), *results
        )

    def get_module_input(self, module, inputs, batch_size=256):
        """The input of `module` (object or name) for capsule inputs `inputs`.

        Runs the chain up to the module in batches and returns NumPy arrays,
        e.g. the signals to pre-train a measuring module on.
        """
        return self._module_io(module, inputs, False, batch_size)

    def get_module_output(self, module, inputs, batch_size=256):
        """The output of `module` (object or name) for capsule inputs."""
        return self._module_io(module, inputs, True, batch_size)

    # === Reporting ===

    def count_params(self):
        return int(sum(module.count_params() for module in self._capsule_modules))

    def summary(self, print_fn=print):
        """Print the modules with their parameter counts and call positions."""
        lines = [f"Capsule: {self.name}"]
        if self.prototype_distribution is not None:
            lines.append(
                f"prototypes: {self.proto_number}, capsules: {self.capsule_number}"
            )
        # The original's columns; the owner is the capsule that calls a step.
        width = 46 + 20 + 10 + 16
        header = f"{'Module (type)':<46}{'Owner':<20}{'Param #':>10}  Called at pos."
        lines += ["=" * width, header, "=" * width]
        for index, module in enumerate(self._capsule_modules):
            positions = [
                str(step) for step, i in enumerate(self._stack_indices) if i == index
            ]
            params = module.count_params() if module.built else 0
            label = f"{module.name} ({type(module).__name__})"
            lines.append(
                f"{label:<46}{self.name:<20}{params:>10}  {', '.join(positions)}"
            )
        lines.append("=" * width)
        total = sum(m.count_params() for m in self._capsule_modules if m.built)
        lines.append(f"Total params: {total}")
        print_fn("\n".join(lines))

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "prototype_distribution": self.prototype_distribution,
                "modules": [
                    keras.saving.serialize_keras_object(module)
                    for module in self._capsule_modules
                ],
                "module_stack": list(self._stack_indices),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        modules = [
            keras.saving.deserialize_keras_object(module)
            for module in config.pop("modules", [])
        ]
        stack = config.pop("module_stack", list(range(len(modules))))
        capsule = cls(**config)
        capsule.add([modules[index] for index in stack])
        return capsule
