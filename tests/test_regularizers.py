"""Tests of `anysma.regularizers`."""

import keras
import numpy as np

from anysma import constraints
from anysma import regularizers
from anysma.testing.test_case import TestCase
from anysma.testing.test_case import to_numpy


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _omega_log_determinant_reference(omegas):
    """`log(det(G))` of the smaller Gram matrix, via the singular values."""
    singular_values = np.linalg.svd(omegas.astype("float64"), compute_uv=False)
    return 2.0 * np.sum(np.log(singular_values), axis=-1)


def _omega_regularizer_gradient_reference(omega, alpha):
    """d/dOmega of `-alpha * log(det(G))`: `-2 alpha Omega G^-1` (or `G^-1 Omega`)."""
    omega = omega.astype("float64")
    rows, columns = omega.shape
    if columns <= rows:
        return -2.0 * alpha * omega @ np.linalg.inv(omega.T @ omega)
    return -2.0 * alpha * np.linalg.inv(omega @ omega.T) @ omega


def _gradient(function, value):
    """The gradient of a scalar function at `value`, on the active backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        # One compiled program per shape is faster than op-by-op compilation.
        return np.asarray(jax.jit(jax.grad(function))(jax.numpy.asarray(value)))
    if backend == "torch":
        import torch

        tensor = torch.tensor(value, requires_grad=True)
        function(tensor).backward()
        return tensor.grad.numpy()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.constant(value)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            output = function(tensor)
        return tape.gradient(output, tensor).numpy()
    raise NotImplementedError(f"no gradient on backend {backend!r}")


class RegularizerValuesTest(TestCase):
    def test_log_determinant(self):
        regularizer = regularizers.LogDeterminant()
        self.assertEqual(regularizer.alpha, 0.005)
        for shape in [(3, 3), (2, 3, 3)]:
            matrices = _random(shape)
            expected = -0.005 * np.sum(np.linalg.slogdet(matrices.astype("float64"))[1])
            self.assertAllClose(regularizer(matrices), expected, atol=1e-7, rtol=1e-5)

    def test_omega_regularizer(self):
        regularizer = regularizers.OmegaRegularizer(alpha=0.5)
        for shape in [(5, 3), (3, 5), (3, 3), (2, 5, 3), (2, 3, 5)]:
            omegas = _random(shape, seed=shape[0])
            expected = -0.5 * np.sum(_omega_log_determinant_reference(omegas))
            self.assertAllClose(
                regularizer(omegas), expected, atol=1e-5, rtol=1e-5, msg=f"{shape}"
            )
        self.assertEqual(regularizers.OmegaRegularizer().alpha, 0.005)

    def test_min_and_max_value(self):
        values = _random((2, 3, 5))
        for axis in [-1, 0, (0, 2), None]:
            self.assertAllClose(
                regularizers.MinValue(alpha=0.5, axis=axis)(values),
                0.5 * np.mean(np.min(values, axis=axis)),
                atol=1e-6,
            )
            self.assertAllClose(
                regularizers.MaxValue(alpha=2.0, axis=axis)(values),
                2.0 * np.mean(np.max(values, axis=axis)),
                atol=1e-6,
            )
        self.assertAllClose(
            regularizers.MinValue()(values), 0.001 * np.mean(np.min(values, -1))
        )
        self.assertAllClose(
            regularizers.MaxValue()(values), 1e-4 * np.mean(np.max(values, -1))
        )

    def test_omega_regularizer_gradient(self):
        alpha = 0.005
        regularizer = regularizers.OmegaRegularizer(alpha=alpha)
        for omega in [_random((5, 3)), _random((3, 5))]:
            gradient = _gradient(regularizer, omega)
            self.assertAllFinite(gradient)
            self.assertAllClose(
                gradient,
                _omega_regularizer_gradient_reference(omega, alpha),
                atol=1e-5,
                rtol=1e-4,
            )
        # An identity has repeated singular values, where SVD-based gradients
        # break down; slogdet of the Gram matrix does not.
        local = np.stack([np.eye(5, 3), _random((5, 3))]).astype("float32")
        gradient = _gradient(regularizer, local)
        self.assertAllFinite(gradient)
        self.assertAllClose(
            gradient,
            np.stack([_omega_regularizer_gradient_reference(m, alpha) for m in local]),
            atol=1e-5,
            rtol=1e-4,
        )

    def test_log_determinant_gradient(self):
        matrix = _random((3, 3))
        gradient = _gradient(regularizers.LogDeterminant(alpha=1.0), matrix)
        # d log|det W| / dW = W^-T.
        self.assertAllClose(
            gradient, -np.linalg.inv(matrix.astype("float64")).T, atol=1e-4, rtol=1e-4
        )


class RegularizerConfigTest(TestCase):
    def test_serialization(self):
        for regularizer in [
            regularizers.LogDeterminant(alpha=0.25),
            regularizers.OmegaRegularizer(alpha=0.0),
            regularizers.MinValue(alpha=0.5, axis=(0, 1)),
            regularizers.MaxValue(alpha=2, axis=None),
            regularizers.MaxDistance(),
        ]:
            revived = self.run_serialization_test(regularizer)
            self.assertEqual(vars(revived), vars(regularizer))
        self.assertEqual(
            regularizers.MinValue(alpha=0.5, axis=(0, 1)).get_config(),
            {"alpha": 0.5, "axis": [0, 1]},
        )

    def test_serialize_deserialize(self):
        config = regularizers.serialize(regularizers.MinValue(alpha=0.5, axis=0))
        self.assertEqual(config["registered_name"], "anysma>MinValue")
        revived = regularizers.deserialize(config)
        self.assertIsInstance(revived, regularizers.MinValue)
        self.assertEqual((revived.alpha, revived.axis), (0.5, 0))
        self.assertIsInstance(
            regularizers.deserialize("max_distance"), regularizers.MaxValue
        )
        self.assertIsInstance(regularizers.deserialize("l2"), keras.regularizers.L2)

    def test_invalid_arguments(self):
        for cls in [
            regularizers.LogDeterminant,
            regularizers.OmegaRegularizer,
            regularizers.MinValue,
            regularizers.MaxValue,
        ]:
            for alpha in [-0.1, "a", None, float("nan"), True]:
                with self.assertRaisesRegex(
                    ValueError,
                    rf"`alpha` must be a number >= 0. Received: alpha={alpha!r}",
                ):
                    cls(alpha=alpha)
        for axis in ["a", 1.5, (), (0, "b"), True]:
            with self.assertRaisesRegex(
                ValueError, r"`axis` must be .*Received: axis="
            ):
                regularizers.MinValue(axis=axis)

    def test_aliases(self):
        self.assertIs(regularizers.MinDistance, regularizers.MinValue)
        self.assertIs(regularizers.MaxDistance, regularizers.MaxValue)
        for function, cls, alpha in [
            (regularizers.min_distance, regularizers.MinValue, 0.001),
            (regularizers.max_distance, regularizers.MaxValue, 0.0001),
            (regularizers.min_value, regularizers.MinValue, 0.001),
            (regularizers.max_value, regularizers.MaxValue, 0.0001),
            (regularizers.log_determinant, regularizers.LogDeterminant, 0.005),
            (regularizers.omega_regularizer, regularizers.OmegaRegularizer, 0.005),
        ]:
            instance = function()
            self.assertIsInstance(instance, cls)
            self.assertEqual(instance.alpha, alpha)
            self.assertEqual(function(alpha=0.5).alpha, 0.5)


class GetTest(TestCase):
    def test_anysma_names(self):
        for name, cls, alpha in [
            ("LogDeterminant", regularizers.LogDeterminant, 0.005),
            ("log_determinant", regularizers.LogDeterminant, 0.005),
            ("OmegaRegularizer", regularizers.OmegaRegularizer, 0.005),
            ("omega_regularizer", regularizers.OmegaRegularizer, 0.005),
            ("MinValue", regularizers.MinValue, 0.001),
            ("min_value", regularizers.MinValue, 0.001),
            ("MinDistance", regularizers.MinValue, 0.001),
            ("min_distance", regularizers.MinValue, 0.001),
            ("MaxValue", regularizers.MaxValue, 0.0001),
            ("max_value", regularizers.MaxValue, 0.0001),
            ("MaxDistance", regularizers.MaxValue, 0.0001),
            ("max_distance", regularizers.MaxValue, 0.0001),
        ]:
            regularizer = regularizers.get(name)
            self.assertIsInstance(regularizer, cls, name)
            self.assertEqual(regularizer.alpha, alpha, name)

    def test_keras_fallback(self):
        self.assertIsInstance(regularizers.get("l2"), keras.regularizers.L2)
        self.assertIsInstance(regularizers.get("L1L2"), keras.regularizers.L1L2)
        config = keras.regularizers.serialize(keras.regularizers.L1(l1=0.5))
        self.assertAlmostEqual(regularizers.get(config).l1, 0.5)

    def test_passthrough_and_configs(self):
        self.assertIsNone(regularizers.get(None))
        instance = regularizers.OmegaRegularizer(alpha=0.1)
        self.assertIs(regularizers.get(instance), instance)
        self.assertIsInstance(
            regularizers.get(regularizers.LogDeterminant), regularizers.LogDeterminant
        )
        revived = regularizers.get(regularizers.serialize(instance))
        self.assertIsInstance(revived, regularizers.OmegaRegularizer)
        self.assertEqual(revived.alpha, 0.1)
        revived = regularizers.get(
            {"class_name": "max_distance", "config": {"alpha": 3}}
        )
        self.assertEqual(revived.alpha, 3.0)

    def test_unknown_identifier(self):
        for identifier in [
            "no_such_regularizer",
            1.5,
            {"class_name": "Nope", "config": {}},
        ]:
            with self.assertRaisesRegex(
                ValueError,
                r"Could not interpret the regularizer `identifier`.*"
                r"Received: identifier=",
            ):
                regularizers.get(identifier)
        with self.assertRaisesRegex(ValueError, r"identifier='no_such_regularizer'"):
            regularizers.get("no_such_regularizer")


class ModelTest(TestCase):
    def test_constrained_and_regularized_layer_trains_and_saves(self):
        inputs = keras.Input(shape=(5,))
        outputs = keras.layers.Dense(
            3,
            use_bias=False,
            kernel_constraint=constraints.Orthogonalization(),
            kernel_regularizer=regularizers.OmegaRegularizer(alpha=0.01),
            name="projection",
        )(inputs)
        model = keras.Model(inputs, outputs)
        data = _random((8, 5))
        kernel = model.get_layer("projection").kernel
        expected_penalty = -0.01 * _omega_log_determinant_reference(to_numpy(kernel))
        model(data)
        self.assertLen(model.losses, 1)
        self.assertAllClose(model.losses[0], expected_penalty, atol=1e-6, rtol=1e-5)

        self.run_training_step(model, data)
        # The optimizer applied the constraint after the update.
        kernel = to_numpy(kernel)
        self.assertAllClose(kernel.T @ kernel, np.eye(3), atol=1e-5)

        restored = self.run_model_saving_test(model, data)
        layer = restored.get_layer("projection")
        self.assertIsInstance(layer.kernel_constraint, constraints.Orthogonalization)
        self.assertIsInstance(layer.kernel_regularizer, regularizers.OmegaRegularizer)
        self.assertEqual(layer.kernel_regularizer.alpha, 0.01)
