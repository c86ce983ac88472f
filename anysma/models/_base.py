"""The base class of the ready-made models: inputs checked before they run.

A ready-made model knows the shape of its inputs from its `keras.Input`s.
Keras checks them in `Model.__call__`, but not on every path: the JAX
trainer runs `predict`, `evaluate` and `fit` through `stateless_call`, which
skips that check, and TensorFlow's retraced functions relax the feature axes
to `None`. An input of the wrong width then fails deep inside a layer
("cannot reshape array ...") or, worse, is silently accepted (TensorFlow's
`predict` ran two-channel images through a CapsNet built for one).

On JAX a failure inside `predict`, `evaluate` or the first step of `fit`
also breaks the model: the trainer detaches the variables' values while it
runs and only reattaches them when the loop finishes, so every later call
fails with "'NoneType' object is not callable". `GuardedModel` therefore

- checks array inputs against the model's input shapes before the trainer
  starts (and again in `call`, for data sets and generators),
- rejects NumPy inputs with NaN or infinite values (a prototype model would
  otherwise predict an arbitrary class, or turn every prototype into NaN in
  one training step), and
- puts the variables' values back if one of these loops fails anyway.

Three data paths differ from Keras' own, with the same batches and results:
array data under a `keras.distribution` whose batches do not divide by the
devices (see `anysma.utils.data_parallel`); on TensorFlow, array data up to
256 MiB, which `fit` gets as one `tf.data.Dataset` per call instead of
Keras' pipeline that restarts every epoch (see `_tf_dataset_applies`); and
on JAX, `predict` on array data up to 256 MiB, whose last batch is padded to
a power of two rows (the padding's predictions dropped), so that a few
compiled steps serve every number of rows (see `_predict_padding_applies`).
"""

import contextlib
import inspect
import math

import keras
import numpy as np

from anysma.ops._validation import static_shape
from anysma.utils import data_parallel

# What `fit`, `evaluate` and `predict` use when `batch_size` is not given.
_KERAS_BATCH_SIZE = 32


def _describe(shape):
    """An expected shape for a message, e.g. `(batch, 4)`."""
    dims = ["batch"] + ["None" if dim is None else str(dim) for dim in shape[1:]]
    return "(" + ", ".join(dims) + ")"


def _fits(expected, received):
    """Whether a received static shape can feed an input of shape `expected`.

    Unknown dims match anything; the batch axis is not compared. Like
    `keras.Model`, a rank one below the input's, where the input's last axis
    is 1, or one above it, with a trailing axis of 1, is accepted (Keras adds
    or drops that axis).
    """
    if len(received) == len(expected) - 1 and expected[-1] == 1:
        expected = expected[:-1]
    elif len(received) == len(expected) + 1 and received[-1] == 1:
        received = received[:-1]
    if len(received) != len(expected):
        return False
    return all(
        want is None or got is None or want == got
        for want, got in zip(expected[1:], received[1:])
    )


class GuardedModel(keras.Model):
    """A functional model that checks its inputs' shapes before running.

    The base class of the ready-made models (`anysma.models`). Subclasses
    build a functional graph and call `super().__init__(inputs=...,
    outputs=...)` as for any functional `keras.Model`. Compared with
    `keras.Model`:

    - `call`, `predict`, `evaluate`, `fit` and the `*_on_batch` methods raise
      a `ValueError` naming the expected and the received shape when an
      input with a `shape` does not fit the model's `keras.Input` (unknown
      dims of the input, such as the image size of a resolution-free model,
      match any size);
    - on JAX, a `predict`, `evaluate` or `fit` that fails leaves the
      variables as they were (or, in `fit`, as the last finished step left
      them) instead of detached.
    """

    # === Input checks ===

    def _input_pairs(self, inputs):
        """Pair every given input with its `keras.Input`: `(label, input, x)`."""
        model_inputs = list(self.inputs)
        if isinstance(inputs, dict):
            by_name = {tensor.name: tensor for tensor in model_inputs}
            return [
                (f"inputs[{name!r}]", by_name[name], value)
                for name, value in inputs.items()
                if name in by_name
            ]
        if isinstance(inputs, (list, tuple)) and len(inputs) == len(model_inputs):
            if len(inputs) == 1:
                return [("inputs", model_inputs[0], inputs[0])]
            return [
                (f"inputs[{index}]", tensor, value)
                for index, (tensor, value) in enumerate(zip(model_inputs, inputs))
            ]
        return [("inputs", model_inputs[0], inputs)]

    def check_input_shapes(self, inputs):
        """Raise a `ValueError` if `inputs` cannot feed this model.

        Only inputs with a `shape` (arrays and tensors) are checked, on their
        static shape; data sets, generators and `None` (an optional input)
        pass through.

        Args:
            inputs: What would be passed to the model: one array, a list or a
                dict keyed by the names of the model's inputs.
        """
        for label, model_input, value in self._input_pairs(inputs):
            if value is None or getattr(value, "shape", None) is None:
                continue
            expected = static_shape(model_input)
            received = static_shape(value)
            if not _fits(expected, received):
                raise ValueError(
                    f"{type(self).__name__} `{self.name}` takes "
                    f"{label} of shape {_describe(expected)}. "
                    f"Received: {label}.shape={received}"
                )

    def check_finite_inputs(self, inputs):
        """Raise a `ValueError` if a NumPy input holds NaN or infinite values.

        A prototype model maps a NaN input to NaN distances, so `predict`
        would return an arbitrary class and one such sample in `fit` turns
        every prototype into NaN. Only NumPy arrays are checked (on the
        host, before anything runs); tensors and data sets pass through.
        """
        for label, _, value in self._input_pairs(inputs):
            if (
                not isinstance(value, np.ndarray)
                or value.dtype.kind not in "fc"
                or value.ndim == 0
            ):
                continue
            finite = np.isfinite(value)
            if not finite.all():
                rows = np.flatnonzero(~finite.reshape(len(value), -1).all(axis=1))
                raise ValueError(
                    f"{label} must hold finite values: {len(rows)} sample(s) "
                    f"contain NaN or infinity (the first at index {rows[0]}). "
                    f"Received: {label} with non-finite values at rows "
                    f"{rows[:5].tolist()}"
                )

    def call(self, inputs, training=None, mask=None, **kwargs):
        self.check_input_shapes(inputs)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    # === State kept on failure ===

    @contextlib.contextmanager
    def _variables_kept_on_error(self):
        """Reattach the variables' values if the body raises (JAX only).

        JAX's trainer detaches the values (sets them to `None`) at the start
        of `predict`, `evaluate` and `fit` and reattaches them at the end; an
        exception in between skips the second half. Its newest state, if a
        step finished, is synced back first; variables still detached get
        the value they had before the call (no step changed them).
        """
        if keras.backend.backend() != "jax":
            yield
            return
        variables = list(self.variables) + list(self.metrics_variables)
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and getattr(optimizer, "built", False):
            variables += list(optimizer.variables)
        # A JAX array is immutable: holding it keeps this value, not a view.
        saved = [
            (variable, getattr(variable, "_value", None)) for variable in variables
        ]
        try:
            yield
        except BaseException:
            self.jax_state_sync()
            # Forget that state: a later failure must not sync it back.
            self._jax_state = None
            for variable, value in saved:
                if getattr(variable, "_value", None) is None and value is not None:
                    variable.assign(value)
            raise

    # === Entry points ===

    def predict(self, x, *args, **kwargs):
        self.check_input_shapes(x)
        self.check_finite_inputs(x)
        arguments = _bind(keras.Model.predict, self, x, *args, **kwargs)
        shards = data_parallel.batch_shards()
        arguments = _synchronous_on_cpu_devices(arguments, shards)
        padding = 0
        if shards > 1 and data_parallel.is_array_data(x):
            arguments, padding = _predict_arguments_for_devices(arguments, shards)
        elif _predict_padding_applies(arguments):
            arguments, padding = _predict_arguments_bucketed(
                arguments, arguments.get("batch_size") or _KERAS_BATCH_SIZE
            )
        with self._variables_kept_on_error():
            outputs = super().predict(**arguments)
        if padding:
            outputs = data_parallel.take(outputs, slice(0, -padding))
        return outputs

    def evaluate(self, x=None, *args, **kwargs):
        self.check_input_shapes(x)
        self.check_finite_inputs(x)
        arguments = _bind(keras.Model.evaluate, self, x, *args, **kwargs)
        shards = data_parallel.batch_shards()
        arguments = _synchronous_on_cpu_devices(arguments, shards)
        with self._variables_kept_on_error():
            if (
                shards > 1
                and arguments.get("steps") is None
                and data_parallel.is_array_data(x)
                and data_parallel.num_samples(x) % shards
            ):
                return self._evaluate_over_devices(arguments, shards)
            return super().evaluate(**arguments)

    def fit(self, x=None, *args, **kwargs):
        self.check_input_shapes(x)
        self.check_finite_inputs(x)
        # Before an epoch is spent on training.
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, (list, tuple)) and validation_data:
            self.check_input_shapes(validation_data[0])
            self.check_finite_inputs(validation_data[0])
        arguments = _bind(keras.Model.fit, self, x, *args, **kwargs)
        shards = data_parallel.batch_shards()
        arguments = _synchronous_on_cpu_devices(arguments, shards)
        if shards > 1 and data_parallel.is_array_data(x):
            arguments = self._fit_arguments_for_devices(arguments, shards)
        elif _tf_dataset_applies(arguments):
            arguments = _fit_arguments_as_tf_datasets(arguments)
        with self._variables_kept_on_error():
            return super().fit(**arguments)

    # === Data parallelism (keras.distribution on JAX) ===

    def _evaluate_over_devices(self, arguments, shards):
        """`evaluate` on array data whose length does not divide by `shards`.

        The rows that divide run distributed; the remaining rows (fewer than
        the devices) then run on the replicated model without the
        distribution, and the metric states of both parts are added, as
        Keras adds them across replicas (every metric variable aggregates by
        sum). So the result equals the one on a single device.
        """
        batch_size = arguments.get("batch_size") or _KERAS_BATCH_SIZE
        data_parallel.check_batch_size(batch_size, shards)
        import jax

        if jax.process_count() > 1:
            raise ValueError(
                "`evaluate` over several processes needs a number of samples "
                f"that divides by the {shards} devices of each process (the "
                "remaining samples run without the distribution, which only "
                "a single process can do). Received: "
                f"{data_parallel.num_samples(arguments['x'])} samples"
            )
        data = data_parallel.as_numpy(
            (arguments.get("x"), arguments.get("y"), arguments.get("sample_weight"))
        )
        head, tail = data_parallel.split_divisible(
            data_parallel.num_samples(data[0]), shards
        )
        head_state = None
        if head.stop:
            x, y, sample_weight = data_parallel.take(data, head)
            super().evaluate(**dict(arguments, x=x, y=y, sample_weight=sample_weight))
            # Only now: the compiled metrics create their variables on the
            # first run.
            variables = list(self.metrics_variables)
            not_summed = [v.path for v in variables if v.aggregation != "sum"]
            if not_summed:
                raise ValueError(
                    "`evaluate` over several devices on data whose size does "
                    f"not divide by the {shards} devices adds the metric "
                    "states of its parts, which needs metric variables that "
                    "aggregate by sum. Received metric variables "
                    f"{not_summed} with other aggregations; pass a number of "
                    f"samples that divides by {shards}."
                )
            head_state = [keras.ops.convert_to_numpy(v.value) for v in variables]
        x, y, sample_weight = data_parallel.take(data, tail)
        distribution = keras.distribution.distribution()
        keras.distribution.set_distribution(None)
        try:
            # Resets the metrics, then holds the state of the tail alone.
            super().test_on_batch(x, y, sample_weight)
        finally:
            keras.distribution.set_distribution(distribution)
        if head_state is not None:
            for variable, value in zip(variables, head_state):
                variable.assign(variable.value + value)
        logs = {
            name: _to_python(keras.ops.convert_to_numpy(value))
            for name, value in self.get_metrics_result().items()
        }
        if arguments.get("return_dict"):
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _fit_arguments_for_devices(self, arguments, shards):
        """`fit` arguments whose batches all divide by `shards`."""
        batch_size = arguments.get("batch_size") or _KERAS_BATCH_SIZE
        data_parallel.check_batch_size(batch_size, shards)
        (x, y, sample_weight), validation_data, arguments = _split_fit_arrays(arguments)
        if data_parallel.num_samples(x) % shards:
            shuffle = arguments.get("shuffle", True)
            arguments.update(
                x=data_parallel.DivisibleBatches(
                    x,
                    y,
                    sample_weight,
                    batch_size=batch_size,
                    shards=shards,
                    shuffle=bool(shuffle),
                ),
                y=None,
                sample_weight=None,
                batch_size=None,
            )
        else:
            arguments.update(x=x, y=y, sample_weight=sample_weight)
        if validation_data is not None and data_parallel.is_array_data(validation_data):
            validation_data = tuple(validation_data) + (None,) * (
                3 - len(validation_data)
            )
            if data_parallel.num_samples(validation_data[0]) % shards:
                # Keras' validation cannot split the last rows over the
                # devices; the callback runs this model's own `evaluate`.
                validation_batch_size = (
                    arguments.get("validation_batch_size") or batch_size
                )
                # Before an epoch is spent on training.
                data_parallel.check_batch_size(
                    validation_batch_size, shards, "validation_batch_size"
                )
                callbacks = list(arguments.get("callbacks") or [])
                callbacks.insert(
                    0,
                    _Validation(
                        validation_data,
                        batch_size=validation_batch_size,
                        frequency=arguments.get("validation_freq", 1),
                    ),
                )
                arguments.update(callbacks=callbacks, validation_data=None)
            else:
                arguments["validation_data"] = validation_data
        return arguments

    def predict_on_batch(self, x):
        self.check_input_shapes(x)
        return super().predict_on_batch(x)

    def test_on_batch(self, x, *args, **kwargs):
        self.check_input_shapes(x)
        return super().test_on_batch(x, *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        self.check_input_shapes(x)
        return super().train_on_batch(x, *args, **kwargs)


def _to_python(value):
    """A metric result as Keras' logs hold it: a float, or an array."""
    return float(value) if np.ndim(value) == 0 else value


def _bind(method, model, *args, **kwargs):
    """The arguments of a `keras.Model` method call, by name, as given."""
    bound = inspect.signature(method).bind(model, *args, **kwargs)
    arguments = dict(bound.arguments)
    arguments.pop("self")
    arguments.update(arguments.pop("kwargs", {}))
    return arguments


def _synchronous_on_cpu_devices(arguments, shards):
    """`arguments` with `data_parallel.SynchronousLogs` on several CPU devices."""
    if shards == 1 or not data_parallel.on_cpu_devices():
        return arguments
    callbacks = arguments.get("callbacks")
    if isinstance(callbacks, keras.callbacks.CallbackList):
        # `fit` passes its own list to the validation `evaluate`: it has one.
        return arguments
    callbacks = list(callbacks or [])
    if not any(isinstance(c, data_parallel.SynchronousLogs) for c in callbacks):
        callbacks.append(data_parallel.SynchronousLogs())
    return dict(arguments, callbacks=callbacks)


def _predict_arguments_for_devices(arguments, shards):
    """`(arguments, padding)`: `x` padded to a multiple of `shards` rows."""
    batch_size = arguments.get("batch_size") or _KERAS_BATCH_SIZE
    data_parallel.check_batch_size(batch_size, shards)
    num_rows = data_parallel.num_samples(arguments["x"])
    return _predict_arguments_padded(arguments, num_rows + -num_rows % shards)


#: Array inputs up to this size (in bytes) are padded for `predict` on JAX
#: (a copy); larger ones keep their last, smaller batch.
_PREDICT_PADDING_MAX_BYTES = 256 * 2**20


def _predict_padding_applies(arguments):
    """Whether `predict` on JAX pads the last batch of `x` to a bucket size.

    JAX compiles the prediction step once per batch shape, so every new size
    of the last batch (or of a call with fewer rows than `batch_size`) costs
    a compilation of its own: 0.3-0.45 s for a GMLVQ of 100 features on a
    2-core CPU, against 2 ms for the prediction itself. Padded to the next
    power of two (at most `batch_size`), all calls share at most
    `log2(batch_size) + 1` compiled steps and compute at most twice the rows
    of the last batch. The predictions of the padding are dropped, and every
    other row's prediction depends on its own row only (inference mode), so
    the result is unchanged.
    """
    x = arguments.get("x")
    if (
        keras.backend.backend() != "jax"
        or arguments.get("steps") is not None
        or not data_parallel.is_array_data(x)
    ):
        return False
    return (
        sum(np.asarray(leaf).nbytes for leaf in keras.tree.flatten(x))
        <= _PREDICT_PADDING_MAX_BYTES
    )


def _predict_arguments_bucketed(arguments, batch_size):
    """`(arguments, padding)`: the last batch padded to a power of two rows."""
    num_rows = data_parallel.num_samples(arguments["x"])
    last = num_rows % batch_size
    if last == 0:
        return arguments, 0
    bucket = min(batch_size, 2 ** math.ceil(math.log2(last)))
    return _predict_arguments_padded(arguments, num_rows - last + bucket)


def _predict_arguments_padded(arguments, total):
    """`(arguments, padding)`: `x` padded to `total` rows with its last row.

    Every prediction depends on its own row only, so the first rows of the
    outputs are exact; the caller drops the last `padding` rows.
    """
    x = data_parallel.as_numpy(arguments["x"])
    num_rows = data_parallel.num_samples(x)
    padding = total - num_rows
    if padding:
        rows = np.concatenate([np.arange(num_rows), np.full(padding, num_rows - 1)])
        x = data_parallel.take(x, rows)
    return dict(arguments, x=x), padding


class _Validation(keras.callbacks.Callback):
    """Adds `val_*` logs from the model's own `evaluate`, like `fit` does.

    Runs first among the callbacks, so the others (and `History`) see the
    validation results.
    """

    def __init__(self, data, batch_size, frequency):
        super().__init__()
        self.data = data
        self.batch_size = batch_size
        self.frequency = frequency

    def on_epoch_end(self, epoch, logs=None):
        if isinstance(self.frequency, int):
            due = (epoch + 1) % self.frequency == 0
        else:
            due = epoch + 1 in self.frequency
        if not due or logs is None:
            return
        x, y, sample_weight = self.data
        results = self.model.evaluate(
            x,
            y,
            sample_weight=sample_weight,
            batch_size=self.batch_size,
            verbose=0,
            return_dict=True,
        )
        logs.update({f"val_{name}": value for name, value in results.items()})


def _split_fit_arrays(arguments):
    """`fit`'s array data, validation split off and class weights applied.

    Returns `((x, y, sample_weight), validation_data, arguments)` with
    `validation_split` and `class_weight` cleared in the new arguments.
    """
    x, y, sample_weight = data_parallel.as_numpy(
        (arguments.get("x"), arguments.get("y"), arguments.get("sample_weight"))
    )
    validation_data = arguments.get("validation_data")
    split = arguments.get("validation_split") or 0.0
    if split and validation_data is None:
        # Keras' rule: the last `split` of the rows, before shuffling.
        at = int(math.floor(data_parallel.num_samples(x) * (1.0 - split)))
        validation_data = data_parallel.take((x, y, sample_weight), slice(at, None))
        x, y, sample_weight = data_parallel.take((x, y, sample_weight), slice(0, at))
    if arguments.get("class_weight"):
        sample_weight = data_parallel.class_weight_to_sample_weight(
            y, arguments["class_weight"], sample_weight
        )
    arguments = dict(arguments, validation_split=0.0, class_weight=None)
    return (x, y, sample_weight), validation_data, arguments


#: Array data up to this size (in bytes) goes to TensorFlow's `fit` as a
#: `tf.data.Dataset` built once; larger data keeps Keras' own pipeline,
#: whose cost per epoch is then small against the epoch.
_TF_DATASET_MAX_BYTES = 256 * 2**20


def _tf_dataset_applies(arguments):
    """Whether `fit` on TensorFlow gets its array data as a `tf.data.Dataset`.

    Keras' TensorFlow array adapter starts a new parallel pipeline every
    epoch: about 60 ms on 2 cores, which is most of an epoch of a small
    data set (6 steps of 32 rows of Tecator: 11 ms per step instead of 2).
    A dataset built once and reshuffled by `tf.data` costs far less per
    epoch and serves the same batches.
    """
    if keras.backend.backend() != "tensorflow":
        return False
    data = (arguments.get("x"), arguments.get("y"), arguments.get("sample_weight"))
    validation_data = arguments.get("validation_data")
    return (
        data_parallel.is_array_data(data)
        and arguments.get("y") is not None
        and arguments.get("shuffle", True) in (True, False)
        and arguments.get("steps_per_epoch") is None
        # Keras refuses both at once; let it say so.
        and not (
            arguments.get("class_weight") and arguments.get("sample_weight") is not None
        )
        and (validation_data is None or data_parallel.is_array_data(validation_data))
        and sum(np.asarray(leaf).nbytes for leaf in keras.tree.flatten(data))
        <= _TF_DATASET_MAX_BYTES
    )


def _fit_arguments_as_tf_datasets(arguments):
    """`fit` arguments with the array data as `tf.data.Dataset`s."""
    import tensorflow as tf

    batch_size = arguments.get("batch_size") or _KERAS_BATCH_SIZE
    data, validation_data, arguments = _split_fit_arrays(arguments)
    data = tuple(part for part in data if part is not None)
    dataset = tf.data.Dataset.from_tensor_slices(data)
    if arguments.get("shuffle", True):
        # A full shuffle, new every epoch, as Keras' `shuffle=True`.
        dataset = dataset.shuffle(
            data_parallel.num_samples(data), reshuffle_each_iteration=True
        )
    arguments.update(
        x=dataset.batch(batch_size).prefetch(1),
        y=None,
        sample_weight=None,
        batch_size=None,
        # The dataset shuffles itself.
        shuffle=False,
    )
    if validation_data is not None:
        validation_data = tuple(
            part
            for part in data_parallel.as_numpy(tuple(validation_data))
            if part is not None
        )
        validation_batch_size = arguments.get("validation_batch_size") or batch_size
        arguments.update(
            validation_data=tf.data.Dataset.from_tensor_slices(validation_data)
            .batch(validation_batch_size)
            .prefetch(1),
            validation_batch_size=None,
        )
    return arguments
