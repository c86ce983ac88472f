"""Tests of `anysma.constraints`."""

import keras
import numpy as np
import scipy.linalg

from anysma import constraints
from anysma.testing.test_case import TestCase
from anysma.testing.test_case import to_numpy


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _polar_reference(matrices):
    if matrices.ndim == 2:
        return scipy.linalg.polar(matrices.astype("float64"), side="right")[0]
    return np.stack([_polar_reference(matrix) for matrix in matrices])


class ConstraintValuesTest(TestCase):
    def test_trace_normalization(self):
        constraint = constraints.TraceNormalization()
        for shape in [(3, 3), (2, 3, 3)]:
            matrices = _random(shape)
            matrices = matrices @ np.swapaxes(matrices, -1, -2)
            traces = np.trace(matrices, axis1=-2, axis2=-1)[..., None, None]
            self.assertAllClose(
                constraint(matrices), matrices / np.sqrt(traces), atol=1e-6
            )

    def test_omega_normalization(self):
        constraint = constraints.OmegaNormalization(epsilon=1e-6)
        for shape in [(5, 3), (2, 3, 5)]:
            omegas = _random(shape)
            norms = np.sqrt(np.sum(omegas**2, axis=(-2, -1), keepdims=True))
            self.assertAllClose(constraint(omegas), omegas / norms, atol=1e-6)

    def test_orthogonalization(self):
        constraint = constraints.Orthogonalization()
        for shape in [(5, 3), (3, 3), (2, 5, 3)]:
            matrices = _random(shape)
            self.assertAllClose(
                constraint(matrices), _polar_reference(matrices), atol=1e-5
            )

    def test_positive_is_strictly_positive(self):
        values = np.array([-2.0, -1e-9, 0.0, 1e-9, 3.0], dtype="float32")
        result = to_numpy(constraints.Positive()(values))
        self.assertTrue(np.all(result > 0), result)
        self.assertAllClose(result, np.maximum(values, 1e-7), atol=0)
        self.assertAllClose(
            constraints.Positive(epsilon=0.5)(values), np.maximum(values, 0.5)
        )
        # epsilon=0 is a non-negativity constraint.
        self.assertAllClose(
            constraints.Positive(epsilon=0)(values), np.maximum(values, 0.0)
        )

    def test_positive_keeps_dtype(self):
        result = constraints.Positive()(np.array([-1.0, 2.0], dtype="float16"))
        self.assertEqual(keras.backend.standardize_dtype(result.dtype), "float16")
        self.assertTrue(np.all(to_numpy(result) > 0))

    def test_applied_to_variable_by_optimizer(self):
        variable = keras.Variable(_random((2, 5, 3)))
        variable.constraint = constraints.Orthogonalization()
        bounds = keras.Variable(np.array([-1.0, 0.0, 2.0], dtype="float32"))
        bounds.constraint = constraints.Positive()
        optimizer = keras.optimizers.SGD(learning_rate=0.1)
        optimizer.apply(
            [keras.ops.zeros((2, 5, 3)), keras.ops.zeros((3,))], [variable, bounds]
        )
        matrices = to_numpy(variable)
        self.assertAllClose(
            np.swapaxes(matrices, -1, -2) @ matrices,
            np.broadcast_to(np.eye(3), (2, 3, 3)),
            atol=1e-5,
        )
        self.assertAllClose(bounds, [1e-7, 1e-7, 2.0], atol=1e-9)


class ConstraintConfigTest(TestCase):
    def test_serialization(self):
        for constraint in [
            constraints.TraceNormalization(epsilon=1e-5),
            constraints.OmegaNormalization(epsilon=0.25),
            constraints.Orthogonalization(),
            constraints.Positive(epsilon=1e-3),
        ]:
            revived = self.run_serialization_test(constraint)
            self.assertEqual(revived.get_config(), constraint.get_config())
        self.assertEqual(constraints.Positive(1e-3).get_config(), {"epsilon": 1e-3})
        self.assertEqual(constraints.Orthogonalization().get_config(), {})

    def test_serialize_deserialize(self):
        config = constraints.serialize(constraints.OmegaNormalization(epsilon=0.5))
        self.assertEqual(config["registered_name"], "anysma>OmegaNormalization")
        revived = constraints.deserialize(config)
        self.assertIsInstance(revived, constraints.OmegaNormalization)
        self.assertEqual(revived.epsilon, 0.5)
        self.assertIsInstance(constraints.deserialize("positive"), constraints.Positive)
        self.assertIsInstance(
            constraints.deserialize(
                keras.constraints.serialize(keras.constraints.NonNeg())
            ),
            keras.constraints.NonNeg,
        )

    def test_invalid_epsilon(self):
        for cls in [
            constraints.TraceNormalization,
            constraints.OmegaNormalization,
            constraints.Positive,
        ]:
            for epsilon in [-1, "a", None, float("nan"), True]:
                with self.assertRaisesRegex(
                    ValueError,
                    r"`epsilon` must be a number >= 0. "
                    rf"Received: epsilon={epsilon!r}",
                ):
                    cls(epsilon=epsilon)

    def test_lower_case_aliases_are_the_classes(self):
        self.assertIs(constraints.trace_normalization, constraints.TraceNormalization)
        self.assertIs(constraints.omega_normalization, constraints.OmegaNormalization)
        self.assertIs(constraints.orthogonalization, constraints.Orthogonalization)
        self.assertIs(constraints.positive, constraints.Positive)


class GetTest(TestCase):
    def test_anysma_names(self):
        expected = {
            "TraceNormalization": constraints.TraceNormalization,
            "trace_normalization": constraints.TraceNormalization,
            "OmegaNormalization": constraints.OmegaNormalization,
            "omega_normalization": constraints.OmegaNormalization,
            "Orthogonalization": constraints.Orthogonalization,
            "orthogonalization": constraints.Orthogonalization,
            "Positive": constraints.Positive,
            "positive": constraints.Positive,
        }
        for name, cls in expected.items():
            self.assertIsInstance(constraints.get(name), cls, name)

    def test_keras_fallback(self):
        for name, cls in [
            ("NonNeg", keras.constraints.NonNeg),
            ("non_neg", keras.constraints.NonNeg),
            ("MaxNorm", keras.constraints.MaxNorm),
            ("unit_norm", keras.constraints.UnitNorm),
        ]:
            self.assertIsInstance(constraints.get(name), cls, name)
        config = keras.constraints.serialize(keras.constraints.MaxNorm(max_value=3))
        self.assertEqual(constraints.get(config).max_value, 3)

    def test_passthrough_classes_configs_and_none(self):
        self.assertIsNone(constraints.get(None))
        instance = constraints.Positive(epsilon=0.1)
        self.assertIs(constraints.get(instance), instance)
        self.assertIsInstance(
            constraints.get(constraints.Orthogonalization),
            constraints.Orthogonalization,
        )
        revived = constraints.get(constraints.serialize(instance))
        self.assertIsInstance(revived, constraints.Positive)
        self.assertEqual(revived.epsilon, 0.1)
        revived = constraints.get(
            {"class_name": "positive", "config": {"epsilon": 2.0}}
        )
        self.assertEqual(revived.epsilon, 2.0)

        def function(w):
            return w

        self.assertIs(constraints.get(function), function)

    def test_unknown_identifier(self):
        for identifier in [
            "no_such_constraint",
            42,
            {"class_name": "Nope", "config": {}},
        ]:
            with self.assertRaisesRegex(
                ValueError,
                r"Could not interpret the constraint `identifier`.*"
                r"Received: identifier=",
            ):
                constraints.get(identifier)
        with self.assertRaisesRegex(ValueError, r"identifier='no_such_constraint'"):
            constraints.get("no_such_constraint")
