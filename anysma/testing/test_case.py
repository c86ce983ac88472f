"""A layer and loss test harness built only on the public Keras API.

Every anysma layer is run through the same checks: a configuration round
trip (`get_config` -> `from_config` -> JSON), symbolic and eager calls, one
`fit` step, mixed precision, and a `.keras` save -> load round trip without
`custom_objects`.
"""

import json
import os
import tempfile
import unittest

import keras
import numpy as np


def to_numpy(value):
    """Convert a tensor (or nested structure of tensors) to NumPy."""
    return keras.tree.map_structure(
        lambda item: np.asarray(keras.ops.convert_to_numpy(item)), value
    )


def _is_float(dtype):
    return "float" in str(dtype)


class TestCase(unittest.TestCase):
    """Base class of anysma's tests; `unittest`-style, run by pytest."""

    maxDiff = None

    def setUp(self):
        super().setUp()
        # No `clear_session()` here: its garbage collection costs ~0.5 s per
        # test, and no test depends on fresh layer-name counters.
        keras.utils.set_random_seed(1337)
        self._policy = keras.config.dtype_policy()

    def tearDown(self):
        keras.config.set_dtype_policy(self._policy)
        super().tearDown()

    # === Assertions ===

    def assertAllClose(self, actual, desired, atol=1e-6, rtol=1e-6, msg=""):
        """Compare tensors or (nested) structures of them, leaf by leaf."""
        if isinstance(actual, (list, tuple, dict)):
            actual, desired = keras.tree.flatten(actual), keras.tree.flatten(desired)
        else:  # `desired` may be any array-like, e.g. nested lists.
            actual, desired = [actual], [desired]
        self.assertEqual(len(actual), len(desired), f"structure differs. {msg}")
        for actual_leaf, desired_leaf in zip(actual, desired):
            np.testing.assert_allclose(
                np.asarray(to_numpy(actual_leaf), dtype="float64"),
                np.asarray(to_numpy(desired_leaf), dtype="float64"),
                atol=atol,
                rtol=rtol,
                err_msg=msg,
            )

    def assertAllFinite(self, value, msg=""):
        for item in keras.tree.flatten(to_numpy(value)):
            if not np.all(np.isfinite(item)):
                raise AssertionError(f"non-finite values found. {msg}\n{item}")

    def assertShapeEqual(self, tensor, shape):
        self.assertEqual(tuple(tensor.shape), tuple(shape))

    # === Serialization ===

    def run_serialization_test(self, instance):
        """Round-trip an object through `get_config`/`from_config` and JSON."""
        config = instance.get_config()
        # The configuration must be plain JSON.
        json_config = json.loads(json.dumps(config))
        revived = instance.__class__.from_config(json_config)
        self.assertEqual(
            json.loads(json.dumps(revived.get_config())),
            json_config,
            "get_config() -> from_config() -> get_config() is not stable",
        )
        serialized = keras.saving.serialize_keras_object(instance)
        registered = serialized.get("registered_name") or ""
        if type(instance).__module__.startswith("anysma"):
            self.assertTrue(
                registered.startswith("anysma>"),
                f"{type(instance).__name__} is not registered under 'anysma>': "
                f"{registered!r}",
            )
        deserialized = keras.saving.deserialize_keras_object(
            json.loads(json.dumps(serialized))
        )
        self.assertIsInstance(deserialized, instance.__class__)
        self.assertEqual(json.loads(json.dumps(deserialized.get_config())), json_config)
        return revived

    # === Layers ===

    def _inputs_for(self, input_data):
        return keras.tree.map_structure(
            lambda item: keras.Input(
                shape=tuple(item.shape[1:]), batch_size=None, dtype=str(item.dtype)
            ),
            input_data,
        )

    def _call(self, layer, data, call_kwargs):
        return layer(data, **call_kwargs)

    def run_layer_test(
        self,
        layer_cls,
        init_kwargs,
        input_data,
        expected_output_shape=None,
        expected_num_trainable_weights=None,
        expected_num_non_trainable_weights=None,
        call_kwargs=None,
        run_training_check=True,
        run_precision_check=True,
        run_saving_check=True,
    ):
        """Run the standard battery of checks on a layer class.

        Args:
            layer_cls: The layer class.
            init_kwargs: Constructor arguments.
            input_data: A NumPy array or a (nested) tuple of arrays.
            expected_output_shape: A shape tuple or a structure of them.
            expected_num_trainable_weights: Number of trainable variables.
            expected_num_non_trainable_weights: Number of frozen variables.
            call_kwargs: Extra call arguments.
            run_training_check: Run one `fit` step.
            run_precision_check: Check `mixed_float16`.
            run_saving_check: Check the `.keras` round trip.
        """
        call_kwargs = call_kwargs or {}
        layer = layer_cls(**init_kwargs)
        self.run_serialization_test(layer)

        # Symbolic call.
        symbolic_inputs = self._inputs_for(input_data)
        symbolic_outputs = self._call(layer, symbolic_inputs, call_kwargs)
        if expected_output_shape is not None:
            self._assert_shapes(symbolic_outputs, expected_output_shape, True)
        if expected_num_trainable_weights is not None:
            self.assertLen(layer.trainable_weights, expected_num_trainable_weights)
        if expected_num_non_trainable_weights is not None:
            self.assertLen(
                layer.non_trainable_weights, expected_num_non_trainable_weights
            )

        # Eager call on a fresh layer.
        eager_layer = layer_cls(**init_kwargs)
        eager_outputs = self._call(eager_layer, input_data, call_kwargs)
        if expected_output_shape is not None:
            self._assert_shapes(eager_outputs, expected_output_shape, False)
        self.assertAllFinite(eager_outputs, "eager outputs")
        self.run_serialization_test(eager_layer)

        model = keras.Model(symbolic_inputs, symbolic_outputs)
        if run_training_check:
            self.run_training_step(model, input_data)
        if run_saving_check:
            self.run_model_saving_test(model, input_data)
        if run_precision_check:
            self.run_precision_test(layer_cls, init_kwargs, input_data, call_kwargs)
        return eager_layer

    def _assert_shapes(self, outputs, expected, symbolic):
        """Compare output shapes; `expected` is a shape or a tuple of shapes."""
        if all(isinstance(dim, int) or dim is None for dim in expected):
            outputs, expected = [outputs], [expected]
        outputs = keras.tree.flatten(outputs)
        self.assertEqual(len(outputs), len(expected), "number of outputs")
        for tensor, shape in zip(outputs, expected):
            actual = tuple(tensor.shape)
            if symbolic:  # the batch axis is unknown
                actual, shape = actual[1:], tuple(shape)[1:]
            self.assertEqual(actual, tuple(shape))

    def assertLen(self, container, length):
        self.assertEqual(len(container), length)

    def run_training_step(self, model, input_data):
        """Compile with MSE towards zeros and run one `fit` step."""
        if not model.trainable_weights:
            return  # Nothing to train (Keras would warn).
        outputs = model(input_data)
        targets = keras.tree.map_structure(
            lambda item: np.zeros(tuple(item.shape), dtype="float32"), outputs
        )
        flat_targets = keras.tree.flatten(targets)
        losses = ["mse"] * len(flat_targets)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=1e-3),
            loss=losses if len(losses) > 1 else losses[0],
        )
        history = model.fit(
            input_data,
            flat_targets if len(flat_targets) > 1 else flat_targets[0],
            batch_size=len(keras.tree.flatten(input_data)[0]),
            epochs=1,
            verbose=0,
        )
        self.assertTrue(np.isfinite(history.history["loss"][-1]))

    def run_precision_test(self, layer_cls, init_kwargs, input_data, call_kwargs=None):
        """Under `mixed_float16`, weights stay float32 and outputs are float16."""
        layer = layer_cls(**{**init_kwargs, "dtype": "mixed_float16"})
        outputs = self._call(layer, input_data, call_kwargs or {})
        for weight in layer.weights:
            if _is_float(weight.dtype):
                self.assertEqual(str(weight.dtype), "float32", weight.path)
        for output in keras.tree.flatten(outputs):
            if _is_float(output.dtype):
                self.assertEqual(
                    keras.backend.standardize_dtype(output.dtype), "float16"
                )

    def run_model_saving_test(self, model, input_data, atol=1e-6):
        """`.keras` save -> load (no `custom_objects`) gives identical outputs."""
        expected = model.predict(input_data, verbose=0)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.keras")
            model.save(path)
            restored = keras.saving.load_model(path)
        self.assertIsInstance(restored, type(model))
        actual = restored.predict(input_data, verbose=0)
        self.assertAllClose(actual, expected, atol=atol, rtol=1e-5)
        return restored

    # === Losses ===

    def run_loss_test(self, loss, y_true, y_pred, expected_per_sample, atol=1e-5):
        """Check a `keras.losses.Loss` against per-sample reference values.

        Covers the config round trip, the reductions (`sum_over_batch_size`,
        `sum`, `None`), scalar and per-sample weights, and zero weights.
        """
        self.run_serialization_test(loss)
        expected = np.asarray(expected_per_sample, dtype="float64")
        config = loss.get_config()

        def with_reduction(reduction):
            return loss.__class__.from_config({**config, "reduction": reduction})

        self.assertAllClose(with_reduction(None)(y_true, y_pred), expected, atol=atol)
        self.assertAllClose(
            with_reduction("sum")(y_true, y_pred), expected.sum(), atol=atol
        )
        mean_loss = with_reduction("sum_over_batch_size")
        self.assertAllClose(mean_loss(y_true, y_pred), expected.mean(), atol=atol)
        self.assertAllClose(
            mean_loss(y_true, y_pred, sample_weight=2.5),
            2.5 * expected.mean(),
            atol=atol,
        )
        weights = np.linspace(0.0, 1.0, len(expected)).astype("float32")
        self.assertAllClose(
            mean_loss(y_true, y_pred, sample_weight=weights),
            (weights * expected).sum() / len(expected),
            atol=atol,
        )
        self.assertAllClose(
            mean_loss(y_true, y_pred, sample_weight=np.zeros_like(weights)),
            0.0,
            atol=atol,
        )
