"""Tests of `anysma.ops.linalg` against NumPy/SciPy references."""

import re

import keras
import numpy as np
import scipy.linalg

from anysma import constraints
from anysma.ops import linalg
from anysma.testing.test_case import TestCase
from anysma.testing.test_case import to_numpy


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _polar_reference(matrices):
    """The orthogonal polar factor from SciPy, matrix by matrix."""
    if matrices.ndim == 2:
        return scipy.linalg.polar(matrices.astype("float64"), side="right")[0]
    return np.stack([_polar_reference(matrix) for matrix in matrices])


def _omega_log_determinant_reference(omegas):
    """`log(det(G))` of the smaller Gram matrix, via the singular values."""
    singular_values = np.linalg.svd(omegas.astype("float64"), compute_uv=False)
    return 2.0 * np.sum(np.log(singular_values), axis=-1)


class TraceTest(TestCase):
    def test_matches_numpy(self):
        for shape in [(3, 3), (2, 3, 3), (5, 3), (2, 3, 5), (2, 2, 3, 3)]:
            matrices = _random(shape)
            expected = np.trace(matrices, axis1=-2, axis2=-1)
            self.assertAllClose(linalg.trace(matrices), expected, atol=1e-6)

    def test_keepdims(self):
        matrices = _random((2, 3, 3))
        traces = linalg.trace(matrices, keepdims=True)
        self.assertShapeEqual(traces, (2, 1, 1))
        self.assertAllClose(
            traces, np.trace(matrices, axis1=-2, axis2=-1)[:, None, None], atol=1e-6
        )
        self.assertShapeEqual(linalg.trace(np.eye(3), keepdims=True), (1, 1))

    def test_float16(self):
        matrices = _random((2, 3, 3)).astype("float16")
        traces = linalg.trace(matrices)
        self.assertEqual(keras.backend.standardize_dtype(traces.dtype), "float16")
        self.assertAllClose(
            traces, np.trace(matrices.astype("float32"), axis1=-2, axis2=-1), atol=1e-2
        )

    def test_rank_error(self):
        with self.assertRaisesRegex(
            ValueError,
            r"`matrices` must have rank >= 2.*Received: matrices.shape=\(3,\)",
        ):
            linalg.trace(np.ones(3))


class OrthogonalizationTest(TestCase):
    def test_matches_scipy_polar_factor(self):
        for shape in [(3, 3), (5, 3), (2, 3, 3), (2, 5, 3), (3, 5), (2, 3, 5)]:
            matrices = _random(shape, seed=len(shape))
            self.assertAllClose(
                linalg.orthogonalization(matrices),
                _polar_reference(matrices),
                atol=1e-5,
                msg=f"shape={shape}",
            )

    def test_orthonormal_columns_and_rows(self):
        tall = to_numpy(linalg.orthogonalization(_random((2, 5, 3))))
        self.assertAllClose(
            np.swapaxes(tall, -1, -2) @ tall,
            np.broadcast_to(np.eye(3), (2, 3, 3)),
            atol=1e-5,
        )
        wide = to_numpy(linalg.orthogonalization(_random((3, 5))))
        self.assertAllClose(wide @ wide.T, np.eye(3), atol=1e-5)

    def test_idempotent(self):
        once = linalg.orthogonalization(_random((2, 5, 3)))
        twice = linalg.orthogonalization(once)
        self.assertAllClose(twice, once, atol=1e-5)

    def test_keeps_orthonormal_matrix(self):
        basis = np.eye(5, 3, dtype="float32")
        self.assertAllClose(linalg.orthogonalization(basis), basis, atol=1e-6)

    def test_bases_near_orthonormal_match_scipy(self):
        # The constraint's usual input, one optimizer step away from an
        # orthonormal basis: the Gram-matrix path (condition number < 10).
        rng = np.random.default_rng(2)
        for shape in [(10, 784, 12), (4, 64, 16), (16, 64)]:
            if len(shape) == 3:
                basis = np.linalg.qr(rng.normal(size=shape))[0]
            else:
                basis = np.linalg.qr(rng.normal(size=shape[::-1]))[0].T
            matrices = (basis + 0.02 * rng.normal(size=shape)).astype("float32")
            self.assertAllClose(
                linalg.orthogonalization(matrices),
                _polar_reference(matrices),
                atol=1e-5,
                msg=f"shape={shape}",
            )

    def test_ill_conditioned_matrices_take_the_svd(self):
        # Condition numbers 1e3 and infinity (rank 1): the Gram matrix's
        # eigenvalues are then too inexact, and the result must still be
        # the polar factor (orthonormal columns, no NaN).
        rng = np.random.default_rng(3)
        left, _ = np.linalg.qr(rng.normal(size=(6, 3)))
        right, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        ill = (left * np.array([1.0, 0.1, 1e-3])) @ right.T
        stack = np.stack([_random((6, 3)), ill]).astype("float32")
        self.assertAllClose(
            linalg.orthogonalization(stack), _polar_reference(stack), atol=1e-4
        )
        rank_one = np.outer(np.arange(1.0, 7.0), [1.0, 2.0, 3.0]).astype("float32")
        for matrix in (rank_one, np.zeros((6, 3), "float32")):
            result = to_numpy(linalg.orthogonalization(matrix))
            self.assertAllClose(result.T @ result, np.eye(3), atol=1e-5)

    def test_compiled_in_a_training_step(self):
        # `ops.cond` between the two algorithms must trace on every backend.
        layer = keras.layers.Dense(
            3, use_bias=False, kernel_constraint=constraints.Orthogonalization()
        )
        model = keras.Sequential([keras.Input((6,)), layer])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        x = _random((32, 6))
        model.fit(x, x[:, :3] * 4.0, epochs=2, verbose=0)
        kernel = to_numpy(layer.kernel)
        self.assertAllClose(kernel.T @ kernel, np.eye(3), atol=1e-5)

    def test_float16_and_integer_inputs(self):
        matrices = _random((2, 5, 3))
        result = linalg.orthogonalization(matrices.astype("float16"))
        self.assertEqual(keras.backend.standardize_dtype(result.dtype), "float16")
        self.assertAllClose(result, _polar_reference(matrices), atol=5e-3)
        integers = np.array([[2, 0], [0, 3], [0, 0]])
        result = linalg.orthogonalization(integers)
        self.assertEqual(
            keras.backend.standardize_dtype(result.dtype), keras.config.floatx()
        )
        self.assertAllClose(result, np.eye(3, 2), atol=1e-6)

    def test_rank_error(self):
        for shape in [(3,), (2, 2, 3, 3)]:
            with self.assertRaisesRegex(
                ValueError,
                "`matrices` must have rank 2 or 3.*"
                + re.escape(f"Received: matrices.shape={shape}"),
            ):
                linalg.orthogonalization(np.ones(shape))


class TraceNormalizationTest(TestCase):
    def test_matches_numpy(self):
        matrices = _random((2, 3, 3))
        # Positive semi-definite matrices, the intended use.
        matrices = matrices @ np.swapaxes(matrices, -1, -2)
        traces = np.trace(matrices, axis1=-2, axis2=-1)[:, None, None]
        expected = matrices / np.sqrt(traces)
        result = linalg.trace_normalization(matrices)
        self.assertAllClose(result, expected, atol=1e-6)
        # As in the original, the divisor is the root of the trace, so the
        # trace of the result is that root (not 1).
        self.assertAllClose(linalg.trace(result), np.sqrt(traces[:, 0, 0]), atol=1e-5)
        self.assertAllClose(
            linalg.trace_normalization(matrices[0]), expected[0], atol=1e-6
        )

    def test_epsilon_bounds_the_divisor(self):
        self.assertAllClose(
            linalg.trace_normalization(np.zeros((2, 2))), np.zeros((2, 2))
        )
        small = np.diag([1e-4, 0.0]).astype("float32")
        self.assertAllClose(
            linalg.trace_normalization(small, epsilon=0.1), small / 0.1, atol=1e-7
        )
        # A negative trace has no real root: treated as 0, i.e. divided by eps.
        negative = -np.eye(2, dtype="float32")
        self.assertAllClose(
            linalg.trace_normalization(negative, epsilon=0.5), negative / 0.5
        )

    def test_float16(self):
        matrices = np.diag([1.0, 3.0]).astype("float16")
        result = linalg.trace_normalization(matrices)
        self.assertEqual(keras.backend.standardize_dtype(result.dtype), "float16")
        self.assertAllClose(result, np.diag([0.5, 1.5]), atol=1e-3)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(
            ValueError, r"`matrices` must hold square matrices.*matrices.shape=\(2, 3\)"
        ):
            linalg.trace_normalization(np.ones((2, 3)))
        with self.assertRaisesRegex(ValueError, r"`matrices` must have rank 2 or 3"):
            linalg.trace_normalization(np.ones(3))
        with self.assertRaisesRegex(
            ValueError, r"`epsilon` must be a number >= 0. Received: epsilon=-1"
        ):
            linalg.trace_normalization(np.eye(2), epsilon=-1)


class OmegaNormalizationTest(TestCase):
    def test_matches_numpy(self):
        for shape in [(5, 3), (3, 5), (3, 3), (2, 5, 3)]:
            omegas = _random(shape)
            norms = np.sqrt(np.sum(omegas**2, axis=(-2, -1), keepdims=True))
            result = linalg.omega_normalization(omegas)
            self.assertAllClose(result, omegas / norms, atol=1e-6)
            # trace(Lambda) = trace(Omega Omega^T) = 1 for every matrix.
            result = to_numpy(result)
            lambdas = result @ np.swapaxes(result, -1, -2)
            self.assertAllClose(
                np.trace(lambdas, axis1=-2, axis2=-1),
                np.ones(shape[:-2]),
                atol=1e-5,
            )

    def test_epsilon_bounds_the_divisor(self):
        self.assertAllClose(
            linalg.omega_normalization(np.zeros((2, 3))), np.zeros((2, 3))
        )
        small = np.full((1, 1), 1e-3, dtype="float32")
        self.assertAllClose(
            linalg.omega_normalization(small, epsilon=0.1), small / 0.1, atol=1e-7
        )

    def test_float16_does_not_overflow(self):
        # The squares of these values (1e6) are beyond float16's range.
        omegas = np.full((2, 2), 1000.0, dtype="float16")
        result = linalg.omega_normalization(omegas)
        self.assertEqual(keras.backend.standardize_dtype(result.dtype), "float16")
        self.assertAllClose(result, np.full((2, 2), 0.5), atol=1e-3)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(
            ValueError,
            r"`omegas` must have rank 2 or 3.*Received: omegas.shape=\(1, 2, 3, 4\)",
        ):
            linalg.omega_normalization(np.ones((1, 2, 3, 4)))
        with self.assertRaisesRegex(
            ValueError, r"`epsilon` must be a number >= 0. Received: epsilon='a'"
        ):
            linalg.omega_normalization(np.ones((2, 2)), epsilon="a")


class LogDeterminantTest(TestCase):
    def test_matches_slogdet(self):
        for shape in [(3, 3), (2, 3, 3)]:
            matrices = _random(shape, seed=shape[0])
            expected = np.linalg.slogdet(matrices.astype("float64"))[1]
            self.assertAllClose(
                linalg.log_determinant(matrices), expected, atol=1e-5, rtol=1e-5
            )

    def test_positive_definite(self):
        matrices = _random((2, 3, 3))
        matrices = matrices @ np.swapaxes(matrices, -1, -2) + np.eye(3)
        expected = np.log(np.linalg.det(matrices.astype("float64")))
        self.assertAllClose(
            linalg.log_determinant(matrices), expected, atol=1e-5, rtol=1e-5
        )

    def test_large_matrix_without_overflow(self):
        # det(1e15 * I_3) = 1e45 overflows float32; its log does not.
        matrices = 1e15 * np.eye(3, dtype="float32")
        self.assertAllClose(
            linalg.log_determinant(matrices), 3 * np.log(1e15), rtol=1e-6
        )

    def test_float16(self):
        matrices = np.diag([2.0, 4.0, 1.0]).astype("float16")
        result = linalg.log_determinant(matrices)
        self.assertEqual(keras.backend.standardize_dtype(result.dtype), "float16")
        self.assertAllClose(result, np.log(8.0), atol=1e-2)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(
            ValueError,
            r"`matrices` must hold square matrices.*matrices.shape=\(2, 3, 4\)",
        ):
            linalg.log_determinant(np.ones((2, 3, 4)))
        with self.assertRaisesRegex(
            ValueError, r"`matrices` must have rank 2 or 3.*matrices.shape=\(4,\)"
        ):
            linalg.log_determinant(np.ones(4))


class OmegaLogDeterminantTest(TestCase):
    def test_matches_numpy(self):
        for shape in [(5, 3), (3, 5), (3, 3), (2, 5, 3), (2, 3, 5)]:
            omegas = _random(shape, seed=sum(shape))
            self.assertAllClose(
                linalg.omega_log_determinant(omegas),
                _omega_log_determinant_reference(omegas),
                atol=1e-4,
                rtol=1e-4,
                msg=f"shape={shape}",
            )

    def test_uses_the_smaller_gram_matrix(self):
        # The larger Gram matrix is singular; the smaller one is not.
        tall = np.eye(5, 3, dtype="float32") * np.array([1.0, 2.0, 3.0], "float32")
        self.assertAllClose(linalg.omega_log_determinant(tall), np.log(36.0), atol=1e-5)
        self.assertAllClose(
            linalg.omega_log_determinant(tall.T), np.log(36.0), atol=1e-5
        )

    def test_rank_deficient_is_minus_infinity(self):
        value = to_numpy(linalg.omega_log_determinant(np.zeros((5, 3))))
        self.assertTrue(np.isneginf(value), value)

    def test_float16(self):
        omegas = _random((2, 5, 3))
        result = linalg.omega_log_determinant(omegas.astype("float16"))
        self.assertEqual(keras.backend.standardize_dtype(result.dtype), "float16")
        self.assertAllClose(
            result, _omega_log_determinant_reference(omegas), atol=5e-2, rtol=1e-2
        )

    def test_rank_error(self):
        with self.assertRaisesRegex(
            ValueError, r"`omegas` must have rank 2 or 3.*omegas.shape=\(3,\)"
        ):
            linalg.omega_log_determinant(np.ones(3))
