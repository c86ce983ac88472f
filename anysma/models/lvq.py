"""Classic LVQ models on flat feature vectors.

GLVQ, GMLVQ, GRLVQ, LGMLVQ, GTLVQ, RTLVQ and RSLVQ, each built as one
`anysma.Capsule` (one capsule per class) between `keras.Input` and the
output:

```
features -> InputModule -> [RelevanceScaling] -> measuring -> SqueezeRouting
         -> NearestCompetition -> Classification("flip")     (GLVQ family)
         -> ClassLogPosterior                                 (RSLVQ)
```

Output convention: every model has one output of shape
`(batch, num_classes)` whose argmax is the predicted class, so
`metrics=["accuracy"]` works for all of them:

- the GLVQ family (`GLVQ`, `GMLVQ`, `GRLVQ`, `LGMLVQ`, `GTLVQ`, `RTLVQ`)
  outputs `flip(d)` of the distance `d` to the closest prototype of each
  class (a possibility vector; the closest class gets 1), which is what
  `anysma.losses.GlvqLoss` expects: `GlvqLoss` on it is exactly the classic
  GLVQ cost `(d+ - d-) / (d+ + d-)`;
- `RSLVQ` outputs the class log-posteriors
  `log p(c | x) = logsumexp_{j: c(j) = c}(-beta d_j) - logsumexp_j(-beta d_j)`,
  so `keras.losses.CategoricalCrossentropy(from_logits=True)` on it is
  exactly the RSLVQ cost, equal to `anysma.losses.RSLVQLoss` on the
  per-prototype distances (`model.prototype_dissimilarities(x)`), but
  computed without under- or overflow.

The layers have fixed names, given by the class attributes `INPUT_LAYER`
(`"input_module"`), `MEASURING_LAYER` (`"distance"`), `ROUTING_LAYER`,
`COMPETITION_LAYER` and `CLASSIFICATION_LAYER`, plus `GRLVQ.RELEVANCE_LAYER`
and `RSLVQ.POSTERIOR_LAYER` (`"class_log_posterior"`).
"""

import math
import numbers
import weakref

import keras
import numpy as np
from keras import ops

from anysma import probability_transformations
from anysma.api_export import anysma_export
from anysma.capsule import Capsule
from anysma.capsule import Module
from anysma.capsule import as_signal_tuple
from anysma.models._base import GuardedModel
from anysma.modules import Classification
from anysma.modules import InputModule
from anysma.modules import MinkowskiDistance
from anysma.modules import NearestCompetition
from anysma.modules import OmegaDistance
from anysma.modules import RestrictedTangentDistance
from anysma.modules import SqueezeRouting
from anysma.modules import TangentDistance
from anysma.ops import class_log_posterior
from anysma.utils import data_parallel
from anysma.utils import streams
from anysma.utils.validation import check_int
from anysma.utils.validation import is_int

# === Argument checks ===


def check_positive_int(value, name, minimum=1):
    """Return `value` as an int if it is an int >= `minimum`, else raise."""
    return check_int(value, name, minimum=minimum)


def resolve_prototypes_per_class(prototypes_per_class, num_classes):
    """The number of prototypes of every class, as a list of `num_classes` ints.

    Args:
        prototypes_per_class: An int (the same for every class) or a list
            with one positive int per class.
        num_classes: The number of classes.

    Returns:
        A list of `num_classes` positive ints: the prototype distribution of
        the model's capsule (capsule `i` is class `i`).
    """
    if is_int(prototypes_per_class):
        return [check_positive_int(prototypes_per_class, "prototypes_per_class")]
    if isinstance(prototypes_per_class, (list, tuple)):
        values = list(prototypes_per_class)
        if len(values) != num_classes or not all(
            is_int(value) and value >= 1 for value in values
        ):
            raise ValueError(
                "`prototypes_per_class` must be a positive int or a list of "
                f"num_classes={num_classes} positive ints (one per class). "
                f"Received: prototypes_per_class={prototypes_per_class!r}"
            )
        return [int(value) for value in values]
    raise ValueError(
        "`prototypes_per_class` must be a positive int or a list of "
        f"num_classes={num_classes} positive ints (one per class). "
        f"Received: prototypes_per_class={prototypes_per_class!r}"
    )


def _prototype_distribution(prototypes_per_class, num_classes):
    distribution = resolve_prototypes_per_class(prototypes_per_class, num_classes)
    if len(distribution) == 1:
        distribution = distribution * num_classes
    return distribution


def _labels_of(distribution):
    """The class of every prototype for a per-class prototype distribution."""
    return [label for label, count in enumerate(distribution) for _ in range(count)]


def _serializable(value):
    """A probability transformation as it can appear in a JSON config."""
    if value is None or isinstance(value, str):
        return value
    return probability_transformations.serialize(value)


def _to_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


# === Helper layers ===


@anysma_export
class RelevanceScaling(keras.layers.Layer):
    """Scale every feature by the root of a learned, normalized relevance.

    The relevances of GRLVQ, `lambda_i = w_i^2 / sum_j w_j^2` (non-negative,
    summing to one), are learned through unconstrained weights `w`; the
    layer multiplies the features by `w_i / ||w||`, so a squared Euclidean
    distance measured after it is the relevance-weighted distance
    `sum_i lambda_i (x_i - v_i)^2` to prototypes `v_i = w'_i / sqrt(lambda_i)`
    that live in the scaled space. The weights start at one (all relevances
    `1 / features`).

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `(..., features)`.

    Output shape:
        The input shape.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> layer = RelevanceScaling()
    >>> outputs = layer(np.ones((2, 4), dtype="float32"))
    >>> keras.ops.convert_to_numpy(layer.relevances).tolist()
    [0.25, 0.25, 0.25, 0.25]

    Reference:
        Hammer and Villmann, "Generalized relevance learning vector
        quantization", Neural Networks 15(8-9), 2002.
    """

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                "RelevanceScaling needs a known last axis. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.relevance_weights = self.add_weight(
            name="relevance_weights", shape=(features,), initializer="ones"
        )

    def _scales(self):
        weights = ops.cast(self.relevance_weights, "float32")
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(weights)), 1e-12))
        return weights / norm

    @property
    def relevances(self):
        """The relevances `lambda` (non-negative, summing to one)."""
        return ops.square(self._scales())

    def call(self, inputs):
        return inputs * ops.cast(self._scales(), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@anysma_export
class ClassLogPosterior(keras.layers.Layer):
    """Class log-posteriors of RSLVQ from the distances to the prototypes.

    With prototype posteriors `softmax(-beta d)` and `c(j)` the class of
    prototype `j`, computes

    `log p(c | x) = logsumexp_{j: c(j) = c}(-beta d_j) - logsumexp_j(-beta d_j)`

    in float32 and without under- or overflow. `softmax` of the output gives
    the class posteriors back, so the output can be trained with
    `keras.losses.CategoricalCrossentropy(from_logits=True)`: that is the
    RSLVQ cost `anysma.losses.rslvq_loss(y, d, prototype_labels, beta)`.

    Args:
        prototype_labels: The class index of every prototype: a list of ints
            in `[0, num_classes)`, every class present.
        num_classes: The number of classes.
        beta: Inverse temperature, > 0 (`1 / (2 sigma^2)` in Seo and
            Obermayer's notation).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `(batch, prototypes)`: dissimilarities.

    Output shape:
        `(batch, num_classes)`.

    Example:

    >>> import numpy as np
    >>> layer = ClassLogPosterior(prototype_labels=[0, 0, 1], num_classes=2)
    >>> log_posteriors = layer(np.array([[0.0, 1.0, 0.5]], dtype="float32"))
    >>> [round(float(p), 3) for p in np.exp(np.asarray(log_posteriors))[0]]
    [0.693, 0.307]

    Reference:
        Seo and Obermayer, "Soft learning vector quantization", Neural
        Computation 15(7), 2003.
    """

    def __init__(self, prototype_labels, num_classes, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        num_classes = check_positive_int(num_classes, "num_classes")
        labels = list(prototype_labels)
        if not labels or not all(
            is_int(label) and 0 <= label < num_classes for label in labels
        ):
            raise ValueError(
                "`prototype_labels` must be a non-empty list of class indices "
                f"in [0, {num_classes}). Received: prototype_labels="
                f"{prototype_labels!r}"
            )
        missing = sorted(set(range(num_classes)) - set(labels))
        if missing:
            raise ValueError(
                "Every class needs at least one prototype in `prototype_labels`;"
                f" classes {missing} have none. Received: prototype_labels="
                f"{prototype_labels!r}"
            )
        if (
            isinstance(beta, bool)
            or not isinstance(beta, numbers.Real)
            or not np.isfinite(beta)
            or beta <= 0
        ):
            raise ValueError(f"`beta` must be a number > 0. Received: beta={beta!r}")
        self.prototype_labels = [int(label) for label in labels]
        self.num_classes = num_classes
        self.beta = float(beta)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(
            self.prototype_labels
        ):
            raise ValueError(
                f"ClassLogPosterior has {len(self.prototype_labels)} prototype "
                "labels, so its input needs as many dissimilarities on the last "
                f"axis. Received: input_shape={tuple(input_shape)}"
            )

    def call(self, inputs):
        membership = np.zeros((len(self.prototype_labels), self.num_classes), bool)
        membership[np.arange(len(self.prototype_labels)), self.prototype_labels] = True
        log_posteriors = class_log_posterior(
            ops.cast(inputs, "float32"), membership, beta=self.beta
        )
        return ops.cast(log_posteriors, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "prototype_labels": list(self.prototype_labels),
                "num_classes": self.num_classes,
                "beta": self.beta,
            }
        )
        return config


# === Models ===


# The partial model of `prototype_dissimilarities` per model, so that
# repeated calls reuse its compiled predict function (a new partial model
# compiles again: about 1.5 s per call on JAX). Entries vanish with the model.
_DISSIMILARITY_MODELS = weakref.WeakKeyDictionary()
#: Per model, the layers its `call` runs one after another (`_direct_steps`).
#: Kept outside the model so that Keras does not track the list as layers.
_DIRECT_STEPS = weakref.WeakKeyDictionary()

# The layer names of the models' graph; the models expose them as class
# attributes and accessors, and the scikit-learn face asks for them.
_INPUT_LAYER = "input_module"
_MEASURING_LAYER = "distance"
_ROUTING_LAYER = "squeeze_routing"
_COMPETITION_LAYER = "competition"
_CLASSIFICATION_LAYER = "classification"
_RELEVANCE_LAYER = "relevance_scaling"


def _measuring_module(distance_class, dtype, squared_dissimilarity=True, **options):
    """The models' measuring module: squared distances, no linear scaling."""
    return distance_class(
        linear_factor=None,
        squared_dissimilarity=squared_dissimilarity,
        dtype=dtype,
        name=_MEASURING_LAYER,
        **options,
    )


@anysma_export
class LVQModel(GuardedModel):
    """Base class of the classic LVQ models: shared graph and helpers.

    Not meant to be instantiated directly; use `GLVQ`, `GMLVQ`, `GRLVQ`,
    `LGMLVQ`, `GTLVQ`, `RTLVQ` or `RSLVQ`. Every subclass is a functional
    model from a `(batch, input_dim)` input named `"features"` to one
    `(batch, num_classes)` output (see the module docstring), and offers:

    - `prototype_labels`: the class of every prototype (capsule-major);
    - `prototypes`: the prototypes as a NumPy array `(prototypes, input_dim)`;
    - `measuring_module`, `routing_module`, `competition_module`: the
      layers `MEASURING_LAYER` (`"distance"`), `ROUTING_LAYER` and
      `COMPETITION_LAYER`;
    - `weights_by_role()`: the trainable variables by what they are
      (`"prototypes"`, `"matrices"`, `"relevances"`);
    - `pre_training(x, y)`: k-means (and, for the matrix models, PCA)
      initialization through the measuring module's `pre_training`;
    - `prototype_dissimilarities(x)`: the distances to all prototypes.

    Inputs of another width than `input_dim` raise a `ValueError` before
    anything runs, and a failed `predict` or `fit` leaves the model usable
    (see `anysma.models._base.GuardedModel`).
    """

    INPUT_LAYER = _INPUT_LAYER
    MEASURING_LAYER = _MEASURING_LAYER
    #: Its second output is the distance to every prototype.
    ROUTING_LAYER = _ROUTING_LAYER
    #: The closest prototype per class (not in `RSLVQ`).
    COMPETITION_LAYER = _COMPETITION_LAYER
    CLASSIFICATION_LAYER = _CLASSIFICATION_LAYER

    @staticmethod
    def _build_lvq_graph(
        input_dim,
        num_classes,
        prototypes_per_class,
        measuring,
        transformations=(),
        probability_transformation="flip",
        dtype=None,
    ):
        """Return `(inputs, outputs, distribution)` of an LVQ model's graph.

        `probability_transformation=None` stops after the routing and
        returns the per-prototype dissimilarities.
        """
        input_dim = check_positive_int(input_dim, "input_dim")
        num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
        distribution = _prototype_distribution(prototypes_per_class, num_classes)
        inputs = keras.Input(shape=(input_dim,), name="features")
        capsule = Capsule(prototype_distribution=distribution, name="lvq_capsule")
        capsule.add(
            InputModule(
                signal_shape=(1, input_dim),
                # One copy of the input serves every prototype.
                sparse_signal=True,
                dissimilarity_initializer="zeros",
                trainable=False,
                dtype=dtype,
                name=_INPUT_LAYER,
            )
        )
        capsule.add(list(transformations))
        capsule.add([measuring, SqueezeRouting(dtype=dtype, name=_ROUTING_LAYER)])
        if probability_transformation is not None:
            capsule.add(
                [
                    NearestCompetition(dtype=dtype, name=_COMPETITION_LAYER),
                    Classification(
                        probability_transformation=probability_transformation,
                        dtype=dtype,
                        name=_CLASSIFICATION_LAYER,
                    ),
                ]
            )
        return inputs, capsule(inputs), distribution

    # === Calling ===

    def _direct_steps(self):
        """The layers `call` runs one after another, or `None` for the graph.

        The model's layers in graph order (each has one input, the output of
        the one before it, or the capsule signal it belongs to), unless a
        layer computes in another dtype than it stores (mixed precision),
        or in another dtype than the model (e.g. float64 layers in a model
        whose policy is float32), which needs the autocasting of each
        `Layer.__call__`.
        """
        if self not in _DIRECT_STEPS:
            steps = tuple(
                layer
                for layer in self.layers
                if not isinstance(layer, keras.layers.InputLayer)
                and layer.name not in self._HEAD_LAYERS
            )
            # The model's own policy counts too: its `__call__` opens the
            # autocast scope in which the layers' variables are read.
            dtype = self.dtype_policy.compute_dtype
            mixed = any(
                layer.dtype_policy.compute_dtype != dtype
                or layer.dtype_policy.variable_dtype != dtype
                for layer in (self,) + steps
            )
            _DIRECT_STEPS[self] = None if mixed else steps
        return _DIRECT_STEPS[self]

    def call(self, inputs, training=None, mask=None):
        """Run the layers' `call` in a row instead of the functional graph.

        The result is the graph's, with the same variables; what is skipped
        is the per-layer work of `Layer.__call__` (conversions, autocast
        scopes, name scopes, mask and shape bookkeeping), which none of
        these layers needs once built and which costs more than the
        arithmetic for small batches on PyTorch (e.g. 6.4 ms of a 7.9 ms
        GMLVQ forward pass at batch 32 with 100 features). Mixed precision
        and symbolic calls run the graph.
        """
        steps = self._direct_steps()
        self.check_input_shapes(inputs)
        features = inputs
        if isinstance(features, dict) and len(features) == 1:
            (features,) = features.values()
        elif isinstance(features, (list, tuple)) and len(features) == 1:
            (features,) = features
        if (
            steps is None
            or isinstance(features, (dict, list, tuple))
            or isinstance(features, keras.KerasTensor)
        ):
            return super().call(inputs, training=training, mask=mask)
        # What the graph's autocasting gives every layer.
        outputs = ops.cast(ops.convert_to_tensor(features), self.compute_dtype)
        for layer in steps:
            if isinstance(layer, Module):
                outputs = layer.call(as_signal_tuple(outputs))
            else:
                # A plain Keras layer in the capsule transforms the signals.
                outputs = (layer.call(outputs[0]),) + tuple(outputs[1:])
        return self._direct_head(outputs)

    #: Layers after the capsule, which `_direct_head` runs.
    _HEAD_LAYERS = ()

    def _direct_head(self, capsule_outputs):
        """The model's output from the capsule's output tuple."""
        raise NotImplementedError

    # === Access ===

    @property
    def measuring_module(self):
        """The measuring module, the layer named `MEASURING_LAYER`."""
        return self.get_layer(self.MEASURING_LAYER)

    @property
    def routing_module(self):
        """The `SqueezeRouting` layer; its output `[1]` is the distances."""
        return self.get_layer(self.ROUTING_LAYER)

    @property
    def competition_module(self):
        """The `NearestCompetition` layer (`ValueError` for `RSLVQ`)."""
        return self.get_layer(self.COMPETITION_LAYER)

    def weights_by_role(self):
        """The trainable variables by role, a dict.

        `"prototypes"` always; `"matrices"` for the models with a matrix per
        prototype or one for all (GMLVQ, LGMLVQ, GTLVQ, RTLVQ); `"bounds"`
        for RTLVQ; `"relevances"` for GRLVQ. Every trainable variable has
        exactly one role.
        """
        measuring = self.measuring_module
        roles = {"prototypes": measuring.prototypes}
        for role in ("matrices", "bounds"):
            variable = getattr(measuring, role, None)
            if isinstance(variable, keras.Variable) and variable.trainable:
                roles[role] = variable
        return roles

    @property
    def prototype_labels(self):
        """The class index of every prototype, a list (capsule-major order)."""
        return _labels_of(self._prototype_distribution)

    @property
    def prototypes(self):
        """The prototypes, a NumPy array of shape `(prototypes, input_dim)`."""
        prototypes = _to_numpy(self.measuring_module.prototypes)
        return prototypes.reshape(prototypes.shape[0], -1)

    def _measuring_input_model(self):
        return keras.Model(self.inputs, self.measuring_module.input[0])

    def prototype_dissimilarities(self, x, batch_size=None):
        """The dissimilarities of `x` to every prototype.

        Args:
            x: Features `(samples, input_dim)`.
            batch_size: Batch size of the prediction.

        Returns:
            A NumPy array `(samples, prototypes)`; column `j` belongs to class
            `prototype_labels[j]`.
        """
        self.check_input_shapes(x)
        model = _DISSIMILARITY_MODELS.get(self)
        if model is None:
            model = keras.Model(self.inputs, self.routing_module.output[1])
            _DISSIMILARITY_MODELS[self] = model
        # The partial model shares this model's variables.
        with self._variables_kept_on_error():
            return model.predict(x, batch_size=batch_size, verbose=0)

    def pre_training(
        self, x, y=None, batch_version=False, batch_size=None, **kmeans_params
    ):
        """Initialize the prototypes (and matrices) from data.

        Runs the model up to its measuring module and calls the module's
        `pre_training` with the class labels: per class `c`, k-means with
        `prototypes_per_class[c]` clusters on the class-`c` samples gives
        that class's prototypes; the matrix models also set their matrices
        to the principal directions of the data (see
        `anysma.modules.PointMatrixPrototype.pre_training`).

        `x` may also be a stream of `(x, y)` batches, as `fit` takes it: a
        `keras.utils.PyDataset`, a `tf.data.Dataset`, a data loader, a
        function returning an iterator, or a generator. The k-means is then
        `MiniBatchKMeans.partial_fit` over one pass of the stream, and the
        matrix models read it a second time for their matrices (so they need
        a stream that can be read again, not a generator); memory stays
        bounded (see `anysma.modules.PointPrototype.pre_training_on_batches`).

        Args:
            x: Features `(samples, input_dim)`, or a stream of `(x, y)` or
                `(x, y, sample_weight)` batches (the weights are not used).
            y: Labels, integers `(samples,)` or one-hot `(samples,
                num_classes)`; every class must have at least as many
                samples as prototypes. `None` for a stream.
            batch_version: Use `MiniBatchKMeans` (large data sets); always
                so for a stream.
            batch_size: Batch size of the forward pass of array data.
            **kmeans_params: Arguments of scikit-learn's k-means (e.g.
                `n_init=10`), and `svd_params={...}` for the matrix models
                with array data.

        Returns:
            The model itself.

        Example:

        >>> import numpy as np
        >>> import keras
        >>> import anysma
        >>> class Stream(keras.utils.PyDataset):
        ...     def __len__(self):
        ...         return 8
        ...     def __getitem__(self, index):
        ...         rng = np.random.default_rng(index)
        ...         y = rng.integers(0, 2, 64)
        ...         return rng.normal(4.0 * y[:, None], 0.1, (64, 2)), y
        >>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
        >>> model = model.pre_training(Stream(), random_state=0)
        >>> np.round(model.prototypes).tolist()
        [[0.0, 0.0], [4.0, 4.0]]
        """
        if not data_parallel.is_array_data(x):
            if y is not None:
                raise ValueError(
                    "With a stream of batches, the labels come from the "
                    "batches, so `y` must be None. Received: y of type "
                    f"{type(y).__name__}"
                )
            self._pre_train_on_stream(x, **kmeans_params)
            return self
        self.check_input_shapes(x)
        if y is None:
            raise ValueError(
                "`y` (the class labels) is needed to place each class's "
                "prototypes. Received: y=None"
            )
        # The partial model shares this model's variables.
        with self._variables_kept_on_error():
            signals = self._measuring_input_model().predict(
                x, batch_size=batch_size, verbose=0
            )
        self.measuring_module.pre_training(
            signals,
            y,
            capsule_inputs_are_equal=True,
            batch_version=batch_version,
            **kmeans_params,
        )
        return self

    def _pre_train_on_stream(self, data, **kmeans_params):
        batches = streams.Batches(data, name="x")
        signal_model = self._measuring_input_model()
        check_input_shapes = self.check_input_shapes

        def signal_batches():
            for batch in batches:
                x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
                if y is None:
                    raise ValueError(
                        "pre_training needs the class labels: every batch of "
                        "the stream must be `(x, y)` or `(x, y, sample_weight)`. "
                        "Received: a batch without labels"
                    )
                check_input_shapes(x)
                # The functional model's inputs are a list of one tensor.
                inputs = x if isinstance(x, (list, tuple, dict)) else [x]
                yield np.asarray(signal_model.predict_on_batch(inputs)), y

        # The module may read the stream twice; a generator only once.
        source = signal_batches if batches.reiterable else signal_batches()
        self.measuring_module.pre_training_on_batches(
            source, capsule_inputs_are_equal=True, **kmeans_params
        )

    # === Config ===

    def _set_config(self, input_dim, num_classes, prototypes_per_class):
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.prototypes_per_class = (
            list(prototypes_per_class)
            if isinstance(prototypes_per_class, (list, tuple))
            else prototypes_per_class
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "prototypes_per_class": self.prototypes_per_class,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _GLVQFamily(LVQModel):
    """Shared graph and configuration of the models with a GLVQ output."""

    def _init_glvq_model(
        self,
        measuring,
        input_dim,
        num_classes,
        prototypes_per_class,
        probability_transformation,
        dtype,
        kwargs,
        transformations=(),
    ):
        """Build the functional graph around `measuring` and store the config."""
        inputs, outputs, distribution = self._build_lvq_graph(
            input_dim,
            num_classes,
            prototypes_per_class,
            measuring,
            transformations=transformations,
            probability_transformation=probability_transformation,
            dtype=dtype,
        )
        super().__init__(inputs=inputs, outputs=outputs[2], dtype=dtype, **kwargs)
        self._prototype_distribution = distribution
        self._set_config(input_dim, num_classes, prototypes_per_class)
        self.probability_transformation = probability_transformation

    def _direct_head(self, capsule_outputs):
        # The class probabilities, the third entry of the module signal.
        return capsule_outputs[2]

    def get_config(self):
        config = super().get_config()
        config["probability_transformation"] = _serializable(
            self.probability_transformation
        )
        return config


@anysma_export
class GLVQ(_GLVQFamily):
    """Generalized learning vector quantization (squared Euclidean distance).

    Prototypes per class, the squared Euclidean distance, the closest
    prototype of each class competing for it, and `flip` turning the class
    distances into the output, so that `anysma.losses.GlvqLoss` on the
    output is the classic GLVQ cost `(d+ - d-) / (d+ + d-)`.

    With `order_p` other than 2 the distance is the Minkowski norm
    `||x - w||_p` itself (not squared), e.g. `order_p=math.inf` for the
    maximum norm, whose hypothesis margin certifies L-infinity robustness
    (see `anysma.robustness`; Saralajew et al., 2020).

    Args:
        input_dim: The number of features.
        num_classes: The number of classes, >= 2.
        prototypes_per_class: An int or a list with one int per class.
        probability_transformation: How the class distances become the
            output: `"flip"` (for `GlvqLoss`) or another name from
            `anysma.probability_transformations`, e.g. `"neg_softmax"` for a
            cross-entropy loss.
        order_p: The order of the Minkowski distance, a number >= 1 or
            `math.inf`: 2 (the default) gives the squared Euclidean
            distance, any other order the norm `||x - w||_p`.
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> import numpy as np
    >>> model = anysma.models.GLVQ(input_dim=4, num_classes=3,
    ...                            prototypes_per_class=2)
    >>> model.compile(optimizer="adam", loss=anysma.losses.GlvqLoss(),
    ...               metrics=["accuracy"])
    >>> x = np.random.rand(30, 4).astype("float32")
    >>> y = np.arange(30) % 3
    >>> model = model.pre_training(x, y, n_init=1, random_state=0)
    >>> model.predict(x, verbose=0).shape
    (30, 3)

    The maximum-norm variant:

    >>> import math
    >>> model = anysma.models.GLVQ(input_dim=4, num_classes=3, order_p=math.inf)
    >>> model.measuring_module.squared_dissimilarity
    False

    Reference:
        Sato and Yamada, "Generalized learning vector quantization", NIPS
        1995.

        Saralajew, Holdijk, Rees and Villmann, "Fast adversarial robustness
        certification of nearest prototype classifiers for arbitrary
        seminorms", NeurIPS 2020 (the maximum-norm GLVQ).
    """

    def __init__(
        self,
        input_dim,
        num_classes,
        prototypes_per_class=1,
        probability_transformation="flip",
        order_p=2,
        dtype=None,
        **kwargs,
    ):
        if (
            isinstance(order_p, bool)
            or not isinstance(order_p, numbers.Real)
            or not order_p >= 1
        ):
            raise ValueError(
                "`order_p` must be a number >= 1 or `math.inf` (a norm, so "
                f"that the distance is a metric). Received: order_p={order_p!r}"
            )
        # === Layers ===
        # The classic GLVQ distance is the squared Euclidean one; the other
        # orders keep the norm itself (as the certificates of
        # `anysma.robustness` assume for them).
        measuring = _measuring_module(
            MinkowskiDistance,
            dtype,
            order_p=order_p,
            squared_dissimilarity=order_p == 2,
        )

        # === Functional Model and Config ===
        self._init_glvq_model(
            measuring,
            input_dim,
            num_classes,
            prototypes_per_class,
            probability_transformation,
            dtype,
            kwargs,
        )
        self.order_p = float(order_p) if order_p == math.inf else order_p

    def get_config(self):
        config = super().get_config()
        config["order_p"] = self.order_p
        return config


def _check_projection_dim(projection_dim, input_dim):
    if projection_dim is None:
        return None
    projection_dim = check_positive_int(projection_dim, "projection_dim")
    if is_int(input_dim) and projection_dim > input_dim:
        raise ValueError(
            "`projection_dim` (the rank of the relevance matrix) must be at most "
            f"input_dim={input_dim}. Received: projection_dim={projection_dim}"
        )
    return projection_dim


@anysma_export
class GMLVQ(_GLVQFamily):
    """Generalized matrix LVQ: one global relevance matrix.

    The distance is `||(x - w) Omega||^2 = (x - w)^T Lambda (x - w)` with one
    matrix `Omega` of shape `(input_dim, projection_dim)` shared by all
    prototypes, `Lambda = Omega Omega^T`. A `projection_dim` below
    `input_dim` limits the rank (limited-rank GMLVQ / LiRaM LVQ, which also
    gives a discriminative projection `x Omega` for visualization). `Omega`
    starts orthonormal (`Lambda = I` at full rank) and is normalized to
    `trace(Lambda) = 1` after every step (`"OmegaNormalization"`).
    `pre_training` sets it to the principal directions of the data.

    Args:
        input_dim: The number of features.
        num_classes: The number of classes, >= 2.
        prototypes_per_class: An int or a list with one int per class.
        projection_dim: The rank of `Lambda`: `None` (full rank) or an int
            in `[1, input_dim]`.
        probability_transformation: The output transformation (`"flip"` for
            `anysma.losses.GlvqLoss`).
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> model = anysma.models.GMLVQ(input_dim=10, num_classes=2,
    ...                             projection_dim=2)
    >>> model.omega.shape, model.relevance_matrix.shape
    ((10, 2), (10, 10))

    Reference:
        Schneider, Biehl and Hammer, "Adaptive relevance matrices in learning
        vector quantization", Neural Computation 21(12), 2009.
    """

    def __init__(
        self,
        input_dim,
        num_classes,
        prototypes_per_class=1,
        projection_dim=None,
        probability_transformation="flip",
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        measuring = _measuring_module(
            OmegaDistance,
            dtype,
            matrix_scope="global",
            projected_atom_shape=_check_projection_dim(projection_dim, input_dim),
            matrix_initializer="orthogonal",
            matrix_constraint="OmegaNormalization",
        )

        # === Functional Model and Config ===
        self._init_glvq_model(
            measuring,
            input_dim,
            num_classes,
            prototypes_per_class,
            probability_transformation,
            dtype,
            kwargs,
        )
        self.projection_dim = projection_dim

    @property
    def omega(self):
        """The matrix `Omega`, a NumPy array `(input_dim, projection_dim)`."""
        return _to_numpy(self.measuring_module.matrices)

    @property
    def relevance_matrix(self):
        """`Lambda = Omega Omega^T`, a NumPy array `(input_dim, input_dim)`."""
        omega = self.omega
        return omega @ omega.T

    def get_config(self):
        config = super().get_config()
        config["projection_dim"] = self.projection_dim
        return config


@anysma_export
class LGMLVQ(_GLVQFamily):
    """Localized generalized matrix LVQ: a relevance matrix per prototype.

    As `GMLVQ`, but every prototype (`matrix_scope="local"`) or every class
    (`matrix_scope="capsule_wise"`) has its own `Omega`, so the decision
    borders are piecewise quadratic.

    Args:
        input_dim: The number of features.
        num_classes: The number of classes, >= 2.
        prototypes_per_class: An int or a list with one int per class.
        projection_dim: The rank of each `Lambda`: `None` (full rank) or an
            int in `[1, input_dim]`.
        matrix_scope: `"local"` (one matrix per prototype) or
            `"capsule_wise"` (one per class).
        probability_transformation: The output transformation (`"flip"` for
            `anysma.losses.GlvqLoss`).
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> model = anysma.models.LGMLVQ(input_dim=5, num_classes=3,
    ...                              prototypes_per_class=2)
    >>> model.omegas.shape
    (6, 5, 5)

    Reference:
        Schneider, Biehl and Hammer, "Adaptive relevance matrices in learning
        vector quantization", Neural Computation 21(12), 2009.
    """

    def __init__(
        self,
        input_dim,
        num_classes,
        prototypes_per_class=1,
        projection_dim=None,
        matrix_scope="local",
        probability_transformation="flip",
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        if matrix_scope not in ("local", "capsule_wise"):
            raise ValueError(
                "`matrix_scope` of LGMLVQ must be 'local' (one matrix per "
                "prototype) or 'capsule_wise' (one per class); use GMLVQ for a "
                f"global matrix. Received: matrix_scope={matrix_scope!r}"
            )
        measuring = _measuring_module(
            OmegaDistance,
            dtype,
            matrix_scope=matrix_scope,
            projected_atom_shape=_check_projection_dim(projection_dim, input_dim),
            matrix_initializer="orthogonal",
            matrix_constraint="OmegaNormalization",
        )

        # === Functional Model and Config ===
        self._init_glvq_model(
            measuring,
            input_dim,
            num_classes,
            prototypes_per_class,
            probability_transformation,
            dtype,
            kwargs,
        )
        self.projection_dim = projection_dim
        self.matrix_scope = matrix_scope

    @property
    def omegas(self):
        """The matrices, `(prototypes or classes, input_dim, projection_dim)`."""
        return _to_numpy(self.measuring_module.matrices)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"projection_dim": self.projection_dim, "matrix_scope": self.matrix_scope}
        )
        return config


@anysma_export
class GRLVQ(_GLVQFamily):
    """Generalized relevance LVQ: a learned relevance per feature.

    The distance is `sum_i lambda_i (x_i - w_i)^2` with relevances
    `lambda_i >= 0`, `sum_i lambda_i = 1`. The measuring modules have no
    diagonal matrix, so the relevances are learned by a
    `RelevanceScaling` layer in the capsule, before a squared Euclidean
    distance: the features are scaled by `sqrt(lambda_i)`, and the
    prototypes live in that scaled space (`prototypes` maps them back). The
    model class is the same as GRLVQ's; the gradient steps differ from the
    original formulation by this reparametrization.

    Args:
        input_dim: The number of features.
        num_classes: The number of classes, >= 2.
        prototypes_per_class: An int or a list with one int per class.
        probability_transformation: The output transformation (`"flip"` for
            `anysma.losses.GlvqLoss`).
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> model = anysma.models.GRLVQ(input_dim=4, num_classes=2)
    >>> model.relevances.tolist()
    [0.25, 0.25, 0.25, 0.25]

    Reference:
        Hammer and Villmann, "Generalized relevance learning vector
        quantization", Neural Networks 15(8-9), 2002.
    """

    def __init__(
        self,
        input_dim,
        num_classes,
        prototypes_per_class=1,
        probability_transformation="flip",
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        scaling = RelevanceScaling(dtype=dtype, name=_RELEVANCE_LAYER)
        measuring = _measuring_module(MinkowskiDistance, dtype)

        # === Functional Model and Config ===
        self._init_glvq_model(
            measuring,
            input_dim,
            num_classes,
            prototypes_per_class,
            probability_transformation,
            dtype,
            kwargs,
            transformations=[scaling],
        )

    RELEVANCE_LAYER = _RELEVANCE_LAYER

    @property
    def relevance_scaling(self):
        """The `RelevanceScaling` layer (`RELEVANCE_LAYER`)."""
        return self.get_layer(self.RELEVANCE_LAYER)

    def weights_by_role(self):
        roles = super().weights_by_role()
        roles["relevances"] = self.relevance_scaling.relevance_weights
        return roles

    @property
    def relevances(self):
        """The relevances `lambda`, a NumPy array `(input_dim,)`."""
        return _to_numpy(self.relevance_scaling.relevances)

    @property
    def prototypes(self):
        """The prototypes in input space, `(prototypes, input_dim)`.

        Features with zero relevance are left at their scaled value (their
        coordinate does not influence the distance).
        """
        scaled = super().prototypes
        scales = _to_numpy(self.relevance_scaling._scales())
        safe = np.where(np.abs(scales) > 0, scales, 1.0)
        return scaled / safe


def _check_subspace_dim(subspace_dim, input_dim, strictly_lower):
    subspace_dim = check_positive_int(subspace_dim, "subspace_dim")
    if is_int(input_dim) and (
        subspace_dim >= input_dim if strictly_lower else subspace_dim > input_dim
    ):
        relation = "below" if strictly_lower else "at most"
        raise ValueError(
            f"`subspace_dim` must be {relation} input_dim={input_dim}. "
            f"Received: subspace_dim={subspace_dim}"
        )
    return subspace_dim


@anysma_export
class GTLVQ(_GLVQFamily):
    """Generalized tangent LVQ: every prototype is an affine subspace.

    The distance of `x` to prototype `(w, W)` is the squared distance to
    the closest point of `w + span(W)`, `||(I - W W^T)(x - w)||^2`, with an
    orthonormal basis `W` of shape `(input_dim, subspace_dim)` per
    prototype (kept orthonormal after every step). `pre_training` sets `w`
    to k-means centers and `W` to the principal directions of each
    cluster.

    Args:
        input_dim: The number of features.
        num_classes: The number of classes, >= 2.
        prototypes_per_class: An int or a list with one int per class.
        subspace_dim: The dimension of the subspaces, in `[1, input_dim)`.
        probability_transformation: The output transformation (`"flip"` for
            `anysma.losses.GlvqLoss`).
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> model = anysma.models.GTLVQ(input_dim=8, num_classes=2,
    ...                             subspace_dim=3)
    >>> model.subspaces.shape
    (2, 8, 3)

    Reference:
        Saralajew and Villmann, "Adaptive tangent distances in generalized
        learning vector quantization", WSOM 2016.
    """

    _distance_class = TangentDistance
    # A subspace as large as the input space would contain every input.
    _strictly_lower = True

    def __init__(
        self,
        input_dim,
        num_classes,
        prototypes_per_class=1,
        subspace_dim=12,
        probability_transformation="flip",
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        measuring = _measuring_module(
            self._distance_class,
            dtype,
            projected_atom_shape=_check_subspace_dim(
                subspace_dim, input_dim, strictly_lower=self._strictly_lower
            ),
            matrix_scope="local",
        )

        # === Functional Model and Config ===
        self._init_glvq_model(
            measuring,
            input_dim,
            num_classes,
            prototypes_per_class,
            probability_transformation,
            dtype,
            kwargs,
        )
        self.subspace_dim = subspace_dim

    @property
    def subspaces(self):
        """The orthonormal bases, `(prototypes, input_dim, subspace_dim)`."""
        return _to_numpy(self.measuring_module.matrices)

    def get_config(self):
        config = super().get_config()
        config["subspace_dim"] = self.subspace_dim
        return config


@anysma_export
class RTLVQ(GTLVQ):
    """Restricted tangent LVQ: every prototype is a bounded affine subspace.

    As `GTLVQ`, but the subspace coordinates are clipped to learned bounds,
    `theta = clip(W^T (x - w), -b, b)`, so every prototype is an
    `subspace_dim`-orthotope around `w`. The bounds start at about zero
    (point prototypes) and grow during training.

    Args:
        input_dim: The number of features.
        num_classes: The number of classes, >= 2.
        prototypes_per_class: An int or a list with one int per class.
        subspace_dim: The dimension of the orthotopes, in `[1, input_dim]`.
        probability_transformation: The output transformation: `"flip"` for
            `anysma.losses.GlvqLoss`, or `"neg_softmax"` with
            `"categorical_crossentropy"` as in the original `rtlvq_mnist`
            example.
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> model = anysma.models.RTLVQ(input_dim=8, num_classes=2,
    ...                             subspace_dim=3)
    >>> model.bounds.shape
    (2, 3)

    Reference:
        Saralajew, Holdijk, Rees and Villmann, "Prototype-based neural
        network layers: incorporating vector quantization", arXiv:1812.01214,
        2018.
    """

    _distance_class = RestrictedTangentDistance
    _strictly_lower = False

    @property
    def bounds(self):
        """The bounds of the coordinates, `(prototypes, subspace_dim)`."""
        return _to_numpy(self.measuring_module.bounds)


@anysma_export
class RSLVQ(LVQModel):
    """Robust soft LVQ: a Gaussian mixture per class, trained by likelihood.

    Every prototype is the center of a Gaussian with the same width; the
    prototype posteriors are `softmax(-beta d)` of the squared Euclidean
    distances `d`, and the output is the class log-posterior
    `log sum_{j: c(j) = c} softmax(-beta d)_j` (see `ClassLogPosterior`).
    Train it with `keras.losses.CategoricalCrossentropy(from_logits=True)`,
    which is then exactly the RSLVQ cost (`anysma.losses.RSLVQLoss` on
    `prototype_dissimilarities(x)` with `prototype_labels` and `beta`).

    Args:
        input_dim: The number of features.
        num_classes: The number of classes, >= 2.
        prototypes_per_class: An int or a list with one int per class.
        beta: Inverse temperature, > 0 (`1 / (2 sigma^2)`). It sets how soft
            the assignments are, relative to the squared distances of the
            data.
        dtype: The dtype policy of the layers.
        **kwargs: Base model keyword arguments, such as `name`.

    Example:

    >>> import anysma
    >>> import keras
    >>> model = anysma.models.RSLVQ(input_dim=4, num_classes=2,
    ...                             prototypes_per_class=3, beta=0.5)
    >>> model.compile(
    ...     optimizer="adam",
    ...     loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    ...     metrics=["accuracy"])
    >>> model.prototype_labels
    [0, 0, 0, 1, 1, 1]

    Reference:
        Seo and Obermayer, "Soft learning vector quantization", Neural
        Computation 15(7), 2003.
    """

    POSTERIOR_LAYER = "class_log_posterior"
    _HEAD_LAYERS = (POSTERIOR_LAYER,)

    def _direct_head(self, capsule_outputs):
        # The posterior layer reads the distances, the routing's output [1].
        return self.get_layer(self.POSTERIOR_LAYER).call(capsule_outputs[1])

    def __init__(
        self,
        input_dim,
        num_classes,
        prototypes_per_class=1,
        beta=1.0,
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        measuring = _measuring_module(MinkowskiDistance, dtype)

        # === Functional Model ===
        inputs, outputs, distribution = self._build_lvq_graph(
            input_dim,
            num_classes,
            prototypes_per_class,
            measuring,
            probability_transformation=None,
            dtype=dtype,
        )
        log_posteriors = ClassLogPosterior(
            prototype_labels=_labels_of(distribution),
            num_classes=num_classes,
            beta=beta,
            dtype=dtype,
            name=self.POSTERIOR_LAYER,
        )(outputs[1])
        super().__init__(inputs=inputs, outputs=log_posteriors, dtype=dtype, **kwargs)

        # === Config ===
        self._prototype_distribution = distribution
        self._set_config(input_dim, num_classes, prototypes_per_class)
        self.beta = beta

    def get_config(self):
        config = super().get_config()
        config["beta"] = self.beta
        return config
