import math

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import cdist

from anysma import ops as anysma_ops
from anysma.testing import TestCase
from anysma.testing.test_case import to_numpy

ORDERS = [1, 2, 3, 2.2, 0.5, math.inf]


def np_p_norm(values, order_p, squared=False, epsilon=1e-7):
    """The original anysma's p-norm over the last axis."""
    values = np.asarray(values, dtype="float64")
    if order_p == 1:
        norm = np.abs(values).sum(-1)
        return norm**2 if squared else norm
    if math.isinf(order_p):
        norm = np.abs(values).max(-1)
        return norm**2 if squared else norm
    powered = (np.abs(values) ** order_p).sum(-1)
    if squared:
        return powered
    return np.maximum(powered, epsilon) ** (1.0 / order_p)


def np_pairwise(x, prototypes, order_p=2, squared=False, epsilon=1e-7):
    differences = x[..., None, :] - prototypes
    return np_p_norm(differences, order_p, squared, epsilon)


def random(shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def orthonormal(shape, seed=0):
    rng = np.random.default_rng(seed)
    if len(shape) == 2:
        return np.linalg.qr(rng.normal(size=shape))[0].astype("float32")
    return np.stack([orthonormal(shape[1:], seed + i) for i in range(shape[0])])


class PairwiseDistanceTest(TestCase):
    def test_squared_euclidean_matches_scipy(self):
        x, prototypes = random((7, 5)), random((3, 5), 1)
        self.assertAllClose(
            anysma_ops.squared_euclidean_distance(x, prototypes),
            cdist(x, prototypes, "sqeuclidean"),
            atol=1e-5,
            rtol=1e-5,
        )

    def test_euclidean_matches_scipy(self):
        x, prototypes = random((1, 5)), random((4, 5), 1)
        self.assertAllClose(
            anysma_ops.euclidean_distance(x, prototypes),
            cdist(x, prototypes),
            atol=1e-5,
            rtol=1e-5,
        )

    def test_minkowski_matches_scipy_for_all_orders(self):
        x, prototypes = random((6, 4)), random((3, 4), 1)
        for order_p in ORDERS:
            metric = (
                {"metric": "chebyshev"}
                if math.isinf(order_p)
                else {
                    "metric": "minkowski",
                    "p": order_p,
                }
            )
            self.assertAllClose(
                anysma_ops.minkowski_distance(x, prototypes, order_p),
                cdist(x, prototypes, **metric),
                atol=1e-5,
                rtol=1e-4,
                msg=f"order_p={order_p}",
            )

    def test_minkowski_squared_semantics(self):
        x, prototypes = random((2, 3, 4)), random((5, 4), 1)
        for order_p in ORDERS:
            self.assertAllClose(
                anysma_ops.minkowski_distance(x, prototypes, order_p, squared=True),
                np_pairwise(x, prototypes, order_p, squared=True),
                atol=1e-4,
                rtol=1e-4,
                msg=f"order_p={order_p}",
            )

    def test_leading_axes_are_kept(self):
        x, prototypes = random((2, 3, 4)), random((5, 4), 1)
        distances = anysma_ops.minkowski_distance(x, prototypes, 3)
        self.assertShapeEqual(distances, (2, 3, 5))

    def test_epsilon_clamp_at_zero_distance(self):
        x = random((1, 4))
        self.assertAllClose(
            anysma_ops.euclidean_distance(x, x, epsilon=1e-6), [[1e-3]], rtol=1e-3
        )
        self.assertAllClose(anysma_ops.euclidean_distance(x, x, epsilon=0), [[0.0]])

    def test_float16_inputs(self):
        x, prototypes = random((4, 6), dtype="float16"), random((3, 6), 1, "float16")
        for order_p in (1, 2, 3):
            distances = anysma_ops.minkowski_distance(x, prototypes, order_p)
            self.assertEqual(
                keras.backend.standardize_dtype(distances.dtype), "float16"
            )
            self.assertAllClose(
                distances,
                np_pairwise(x.astype("float64"), prototypes.astype("float64"), order_p),
                atol=2e-2,
                rtol=2e-2,
            )

    def test_integer_inputs_are_promoted(self):
        x = np.arange(6, dtype="uint8").reshape(2, 3)
        prototypes = np.zeros((1, 3), dtype="float32")
        self.assertAllClose(
            anysma_ops.squared_euclidean_distance(x, prototypes), [[5.0], [50.0]]
        )

    def test_global_omega_matches_reference(self):
        x, prototypes = random((5, 4)), random((3, 4), 1)
        for omega in (random((4, 4), 2), random((4, 2), 3)):
            reference = np_pairwise(x @ omega, prototypes @ omega, 2, squared=True)
            self.assertAllClose(
                anysma_ops.omega_distance(x, prototypes, omega, squared=True),
                reference,
                atol=1e-4,
                rtol=1e-4,
            )

    def test_local_omega_matches_reference(self):
        x, prototypes, omegas = random((2, 5, 4)), random((3, 4), 1), random((3, 4, 2))
        reference = np.stack(
            [
                np_p_norm((x - prototypes[p]) @ omegas[p], 3)
                for p in range(len(prototypes))
            ],
            axis=-1,
        )
        self.assertAllClose(
            anysma_ops.omega_distance(x, prototypes, omegas, order_p=3),
            reference,
            atol=1e-4,
            rtol=1e-4,
        )

    def test_identity_omega_equals_euclidean(self):
        x, prototypes = random((5, 4)), random((3, 4), 1)
        self.assertAllClose(
            anysma_ops.omega_distance(x, prototypes, np.eye(4, dtype="float32")),
            cdist(x, prototypes),
            atol=1e-5,
        )

    def test_tangent_distance_is_distance_to_affine_subspace(self):
        x, prototypes = random((6, 5)), random((3, 5), 1)
        for subspaces in (orthonormal((5, 2), 2), orthonormal((3, 5, 2), 3)):
            reference = np.zeros((6, 3))
            for p in range(3):
                basis = subspaces if subspaces.ndim == 2 else subspaces[p]
                for n in range(6):
                    theta = np.linalg.lstsq(basis, x[n] - prototypes[p], rcond=None)[0]
                    reference[n, p] = np.linalg.norm(
                        x[n] - prototypes[p] - basis @ theta
                    )
            self.assertAllClose(
                anysma_ops.tangent_distance(x, prototypes, subspaces),
                reference,
                atol=1e-4,
                rtol=1e-4,
            )

    def test_tangent_distance_with_non_orthonormal_basis(self):
        # Before the Orthogonalization constraint first applies, W is arbitrary:
        # the function must still compute ||(I - W W^T)(x - w)||.
        x, prototypes, subspaces = random((4, 5)), random((2, 5), 1), random((5, 2), 2)
        projector = np.eye(5) - subspaces @ subspaces.T
        reference = np.linalg.norm((x[:, None, :] - prototypes) @ projector.T, axis=-1)
        self.assertAllClose(
            anysma_ops.tangent_distance(x, prototypes, subspaces),
            reference,
            atol=1e-4,
            rtol=1e-4,
        )

    def test_restricted_tangent_distance(self):
        x, prototypes = random((6, 5)), random((3, 5), 1)
        subspaces = orthonormal((3, 5, 2), 2)
        bounds = np.abs(random((3, 2), 4)) * 0.5
        reference = np.zeros((6, 3))
        for p in range(3):
            theta = np.clip((x - prototypes[p]) @ subspaces[p], -bounds[p], bounds[p])
            reference[:, p] = np.linalg.norm(
                x - prototypes[p] - theta @ subspaces[p].T, axis=-1
            )
        self.assertAllClose(
            anysma_ops.restricted_tangent_distance(x, prototypes, subspaces, bounds),
            reference,
            atol=1e-4,
            rtol=1e-4,
        )

    def test_restricted_tangent_limits(self):
        x, prototypes, subspaces = (
            random((4, 5)),
            random((2, 5), 1),
            orthonormal((5, 2)),
        )
        self.assertAllClose(
            anysma_ops.restricted_tangent_distance(
                x, prototypes, subspaces, np.zeros(2, "float32")
            ),
            cdist(x, prototypes),
            atol=1e-4,
        )
        self.assertAllClose(
            anysma_ops.restricted_tangent_distance(
                x, prototypes, subspaces, np.full(2, 1e6, "float32")
            ),
            anysma_ops.tangent_distance(x, prototypes, subspaces),
            atol=1e-3,
        )


def np_capsule(signals, prototypes, measure):
    batch, proto_number, channels = signals.shape[:3]
    out = np.zeros((batch, proto_number, channels))
    for b in range(batch):
        for p in range(proto_number):
            for c in range(channels):
                out[b, p, c] = measure(
                    signals[b, p, c].reshape(-1), prototypes[p].reshape(-1), p
                )
    return out


class CapsuleDistanceTest(TestCase):
    def test_minkowski_vector_and_matrix_atoms(self):
        for atom in ((4,), (2, 3)):
            signals, prototypes = random((2, 3, 5) + atom), random((3,) + atom, 1)
            for order_p in ORDERS:
                reference = np_capsule(
                    signals,
                    prototypes,
                    lambda s, w, p, order=order_p: np_p_norm(s - w, order),
                )
                self.assertAllClose(
                    anysma_ops.capsule_minkowski_distance(signals, prototypes, order_p),
                    reference,
                    atol=1e-4,
                    rtol=1e-4,
                )

    def test_batch_size_one(self):
        signals, prototypes = random((1, 2, 1, 3)), random((2, 3), 1)
        distances = anysma_ops.capsule_minkowski_distance(signals, prototypes)
        self.assertShapeEqual(distances, (1, 2, 1))

    def test_omega(self):
        signals, prototypes = random((2, 3, 4, 2, 2)), random((3, 2, 2), 1)
        for omegas in (random((4, 3), 2), random((3, 4, 3), 3)):
            reference = np_capsule(
                signals,
                prototypes,
                lambda s, w, p, o=omegas: np.sum(
                    ((s - w) @ (o if o.ndim == 2 else o[p])) ** 2
                ),
            )
            self.assertAllClose(
                anysma_ops.capsule_omega_distance(
                    signals, prototypes, omegas, squared=True
                ),
                reference,
                atol=1e-4,
                rtol=1e-4,
            )

    def test_tangent_and_restricted_tangent(self):
        signals, prototypes = random((2, 3, 4, 5)), random((3, 5), 1)
        subspaces = orthonormal((3, 5, 2), 2)
        bounds = np.abs(random((3, 2), 3))

        def tangent(s, w, p):
            v = s - w
            return np.linalg.norm(v - subspaces[p] @ (subspaces[p].T @ v))

        def restricted(s, w, p):
            v = s - w
            theta = np.clip(subspaces[p].T @ v, -bounds[p], bounds[p])
            return np.linalg.norm(v - subspaces[p] @ theta)

        self.assertAllClose(
            anysma_ops.capsule_tangent_distance(signals, prototypes, subspaces),
            np_capsule(signals, prototypes, tangent),
            atol=1e-4,
            rtol=1e-4,
        )
        self.assertAllClose(
            anysma_ops.capsule_restricted_tangent_distance(
                signals, prototypes, subspaces, bounds
            ),
            np_capsule(signals, prototypes, restricted),
            atol=1e-4,
            rtol=1e-4,
        )
        # A global basis and global bounds broadcast over prototypes.
        self.assertAllClose(
            anysma_ops.capsule_restricted_tangent_distance(
                signals, prototypes, subspaces[0], bounds[0]
            ),
            np_capsule(
                signals,
                prototypes,
                lambda s, w, p: np.linalg.norm(
                    s
                    - w
                    - subspaces[0]
                    @ np.clip(subspaces[0].T @ (s - w), -bounds[0], bounds[0])
                ),
            ),
            atol=1e-4,
            rtol=1e-4,
        )

    def test_capsule_form_agrees_with_pairwise_form(self):
        # With one channel holding the same input for every prototype, the
        # capsule form reduces to the pairwise form.
        x, prototypes = random((4, 6)), random((3, 6), 1)
        signals = np.repeat(x[:, None, None, :], 3, axis=1)
        self.assertAllClose(
            anysma_ops.capsule_minkowski_distance(signals, prototypes)[:, :, 0],
            anysma_ops.euclidean_distance(x, prototypes),
            atol=1e-5,
        )


class InvalidArgumentTest(TestCase):
    def test_order_p(self):
        for order_p in (0, -1, float("nan"), "2", True):
            with self.assertRaisesRegex(ValueError, "order_p"):
                anysma_ops.minkowski_distance(random((2, 3)), random((1, 3)), order_p)
        with self.assertRaisesRegex(ValueError, r"Received: order_p=-1"):
            anysma_ops.minkowski_distance(random((2, 3)), random((1, 3)), -1)

    def test_epsilon(self):
        with self.assertRaisesRegex(ValueError, r"Received: epsilon=-1"):
            anysma_ops.euclidean_distance(random((2, 3)), random((1, 3)), epsilon=-1)

    def test_mismatched_features(self):
        with self.assertRaisesRegex(ValueError, r"x.shape=\(2, 3\).*prototypes.shape"):
            anysma_ops.squared_euclidean_distance(random((2, 3)), random((1, 4)))

    def test_prototype_rank(self):
        with self.assertRaisesRegex(ValueError, r"`prototypes` must have rank 2"):
            anysma_ops.minkowski_distance(random((2, 3)), random((3,)))

    def test_omega_shapes(self):
        with self.assertRaisesRegex(ValueError, r"omegas.shape=\(5, 2\)"):
            anysma_ops.omega_distance(random((2, 3)), random((1, 3)), random((5, 2)))
        with self.assertRaisesRegex(ValueError, r"one matrix per prototype"):
            anysma_ops.omega_distance(random((2, 3)), random((2, 3)), random((4, 3, 3)))

    def test_bounds_shape(self):
        with self.assertRaisesRegex(ValueError, r"bounds.shape=\(3,\)"):
            anysma_ops.restricted_tangent_distance(
                random((2, 3)), random((1, 3)), orthonormal((3, 2)), random((3,))
            )

    def test_capsule_shapes(self):
        with self.assertRaisesRegex(ValueError, r"`signals` must have rank >= 4"):
            anysma_ops.capsule_minkowski_distance(random((2, 3, 4)), random((3, 4)))
        with self.assertRaisesRegex(ValueError, r"prototypes.shape=\(2, 4\)"):
            anysma_ops.capsule_minkowski_distance(random((2, 3, 1, 4)), random((2, 4)))


finite_floats = st.floats(-10, 10, allow_nan=False, width=32)


def vectors(count, dim):
    return hnp.arrays("float32", (count, dim), elements=finite_floats)


class DistancePropertyTest(TestCase):
    @settings(max_examples=25, deadline=None)
    @given(data=st.data(), dim=st.integers(1, 5))
    def test_metric_axioms(self, data, dim):
        points = data.draw(vectors(3, dim))
        order_p = data.draw(st.sampled_from([1, 1.5, 2, 3, math.inf]))
        pairwise = to_numpy(anysma_ops.minkowski_distance(points, points, order_p))
        # Rounding of the GEMM form plus the epsilon clamp before the root.
        clamp = 0.0 if order_p in (1, math.inf) else 1e-7 ** (1 / order_p)
        tolerance = 1e-3 * (1 + np.abs(points).max() * dim) + clamp
        self.assertTrue(np.all(pairwise >= 0))
        np.testing.assert_allclose(np.diag(pairwise), 0, atol=tolerance)
        np.testing.assert_allclose(pairwise, pairwise.T, atol=tolerance)
        for i in range(3):
            for j in range(3):
                for k in range(3):
                    self.assertLessEqual(
                        pairwise[i, k], pairwise[i, j] + pairwise[j, k] + tolerance
                    )

    @settings(max_examples=20, deadline=None)
    @given(data=st.data(), dim=st.integers(2, 5))
    def test_tangent_distance_is_least_squares(self, data, dim):
        x = data.draw(vectors(2, dim))
        prototypes = data.draw(vectors(1, dim))
        rank = data.draw(st.integers(1, dim - 1))
        basis = orthonormal((dim, rank), data.draw(st.integers(0, 1000)))
        # Squared distances: the GEMM form is accurate up to float32 rounding of
        # |x - w|^2, which the root would amplify near zero distance.
        distances = to_numpy(
            anysma_ops.tangent_distance(x, prototypes, basis, squared=True)
        )
        for n in range(2):
            theta = np.linalg.lstsq(basis, x[n] - prototypes[0], rcond=None)[0]
            expected = np.sum((x[n] - prototypes[0] - basis @ theta) ** 2)
            # GEMM rounding scales with |x|^2 + |w|^2, not with |x - w|^2.
            scale = 1 + np.sum(x[n] ** 2) + np.sum(prototypes[0] ** 2)
            self.assertAlmostEqual(float(distances[n, 0]), expected, delta=1e-5 * scale)
        self.assertTrue(np.all(distances >= 0))


@pytest.mark.parametrize("order_p", ORDERS)
def test_minkowski_is_finite_for_large_inputs(order_p):
    x = np.full((1, 3), 1e3, "float32")
    distances = to_numpy(anysma_ops.minkowski_distance(x, -x, order_p))
    assert np.all(np.isfinite(distances))


def _distance_functions():
    """(name, function of x for fixed prototypes and parameters)."""
    prototypes = random((2, 4), 1)
    omega = random((4, 3), 2)
    local_omegas = random((2, 4, 3), 3)
    subspaces = orthonormal((2, 4, 2), 4)
    bounds = np.array([[0.3, 0.2], [0.1, 0.4]], "float32")
    functions = {
        "squared_euclidean": lambda x: anysma_ops.squared_euclidean_distance(
            x, prototypes
        ),
        "euclidean": lambda x: anysma_ops.euclidean_distance(x, prototypes),
        "omega_global": lambda x: anysma_ops.omega_distance(x, prototypes, omega),
        "omega_local": lambda x: anysma_ops.omega_distance(
            x, prototypes, local_omegas, squared=True
        ),
        "tangent": lambda x: anysma_ops.tangent_distance(x, prototypes, subspaces),
        "restricted_tangent": lambda x: anysma_ops.restricted_tangent_distance(
            x, prototypes, subspaces, bounds
        ),
        "capsule_tangent": lambda x: anysma_ops.capsule_tangent_distance(
            keras.ops.reshape(x, (1, 2, 1, 4)), prototypes, subspaces
        ),
    }
    for order_p in ORDERS:
        functions[f"minkowski_{order_p}"] = lambda x, p=order_p: (
            anysma_ops.minkowski_distance(x, prototypes, p)
        )
        functions[f"capsule_minkowski_{order_p}"] = lambda x, p=order_p: (
            anysma_ops.capsule_minkowski_distance(
                keras.ops.reshape(x, (1, 2, 1, 4)), prototypes, p
            )
        )
    return prototypes, functions


@pytest.mark.requires_trainable_backend
class DistanceGradientTest(TestCase):
    def test_gradients_match_finite_differences(self):
        from anysma.testing.gradients import autodiff_gradient
        from anysma.testing.gradients import numeric_gradient

        prototypes, functions = _distance_functions()
        x = random((2, 4), 7)
        # One representative per formula keeps this fast on JAX's eager mode.
        checked = [
            "euclidean",
            "omega_local",
            "tangent",
            "restricted_tangent",
            "capsule_tangent",
            "minkowski_1",
            "minkowski_3",
            "minkowski_inf",
            "capsule_minkowski_2.2",
        ]
        for name in checked:
            function = functions[name]
            expected = numeric_gradient(function, x, delta=1e-2)
            self.assertAllClose(
                autodiff_gradient(function, x),
                expected,
                atol=3e-2,
                rtol=3e-2,
                msg=name,
            )

    def test_no_nan_gradient_when_an_input_equals_a_prototype(self):
        from anysma.testing.gradients import autodiff_gradient

        prototypes, functions = _distance_functions()
        for name, function in functions.items():
            self.assertAllFinite(autodiff_gradient(function, prototypes), name)


# === Fast paths (GEMM forms, shared signals) against the plain formulas ===


def np_capsule_reference(
    signals,
    prototypes,
    kind,
    matrices=None,
    bounds=None,
    order_p=2,
    squared=False,
    epsilon=1e-7,
):
    """The broadcast formula in float64: tile the signals, build `x - w`."""
    signals = np.asarray(signals, "float64")
    prototypes = np.asarray(prototypes, "float64")
    batch, _, channels = signals.shape[:3]
    proto_number = prototypes.shape[0]
    tiled = np.broadcast_to(
        signals, (batch, proto_number, channels) + signals.shape[3:]
    ).reshape(batch, proto_number, channels, -1)
    differences = tiled - prototypes.reshape(proto_number, -1)[None, :, None]
    if kind == "minkowski":
        return np_p_norm(differences, order_p, squared, epsilon)
    matrices = np.asarray(matrices, "float64")
    per_prototype = np.broadcast_to(matrices, (proto_number,) + matrices.shape[-2:])
    mapped = np.einsum("bpcd,pdm->bpcm", differences, per_prototype)
    if kind == "omega":
        return np_p_norm(mapped, order_p, squared, epsilon)
    if bounds is not None:
        limits = np.broadcast_to(bounds, (proto_number, matrices.shape[-1]))
        mapped = np.clip(mapped, -limits[None, :, None], limits[None, :, None])
    residual = differences - np.einsum("bpcr,pdr->bpcd", mapped, per_prototype)
    return np_p_norm(residual, 2, squared, epsilon)


def _fast_path_cases():
    """(name, kind, fast function, keyword arguments) of every fast path."""
    omega_global, omega_local = random((4, 3), 2), random((3, 4, 3), 3)
    basis_global, basis_local = orthonormal((4, 2), 4), orthonormal((3, 4, 2), 5)
    bounds_global = np.float32([0.2, 0.5])
    bounds_local = np.abs(random((3, 2), 6)).astype("float32") * 0.5
    cases = [
        ("minkowski_2", "minkowski", anysma_ops.capsule_minkowski_distance, {}),
        (
            "squared_euclidean",
            "minkowski",
            anysma_ops.capsule_minkowski_distance,
            {"squared": True},
        ),
        (
            "minkowski_3",
            "minkowski",
            anysma_ops.capsule_minkowski_distance,
            {"order_p": 3},
        ),
        (
            "minkowski_1",
            "minkowski",
            anysma_ops.capsule_minkowski_distance,
            {"order_p": 1},
        ),
        (
            "omega_global",
            "omega",
            anysma_ops.capsule_omega_distance,
            {"matrices": omega_global},
        ),
        (
            "omega_local",
            "omega",
            anysma_ops.capsule_omega_distance,
            {"matrices": omega_local, "squared": True},
        ),
        (
            "omega_global_order_3",
            "omega",
            anysma_ops.capsule_omega_distance,
            {"matrices": omega_global, "order_p": 3},
        ),
        (
            "tangent_global",
            "tangent",
            anysma_ops.capsule_tangent_distance,
            {"matrices": basis_global},
        ),
        (
            "tangent_local",
            "tangent",
            anysma_ops.capsule_tangent_distance,
            {"matrices": basis_local},
        ),
        (
            "tangent_non_orthonormal",
            "tangent",
            anysma_ops.capsule_tangent_distance,
            {"matrices": random((4, 2), 7), "squared": True},
        ),
        (
            "restricted_global",
            "tangent",
            anysma_ops.capsule_restricted_tangent_distance,
            {"matrices": basis_global, "bounds": bounds_global},
        ),
        (
            "restricted_local",
            "tangent",
            anysma_ops.capsule_restricted_tangent_distance,
            {"matrices": basis_local, "bounds": bounds_local},
        ),
        (
            "restricted_local_basis_global_bounds",
            "tangent",
            anysma_ops.capsule_restricted_tangent_distance,
            {"matrices": basis_local, "bounds": bounds_global},
        ),
        (
            "restricted_global_basis_local_bounds",
            "tangent",
            anysma_ops.capsule_restricted_tangent_distance,
            {"matrices": basis_global, "bounds": bounds_local},
        ),
        (
            "tangent_local_non_orthonormal",
            "tangent",
            anysma_ops.capsule_tangent_distance,
            {"matrices": random((3, 4, 2), 8), "squared": True},
        ),
    ]
    return cases


def _call_fast(function, signals, prototypes, kwargs):
    kwargs = dict(kwargs)
    matrices = kwargs.pop("matrices", None)
    bounds = kwargs.pop("bounds", None)
    if matrices is None:
        return function(signals, prototypes, **kwargs)
    if bounds is None:
        return function(signals, prototypes, matrices, **kwargs)
    return function(signals, prototypes, matrices, bounds, **kwargs)


def _call_reference(kind, signals, prototypes, kwargs):
    return np_capsule_reference(
        keras.ops.convert_to_numpy(signals),
        keras.ops.convert_to_numpy(prototypes),
        kind,
        kwargs.get("matrices"),
        kwargs.get("bounds"),
        kwargs.get("order_p", 2),
        kwargs.get("squared", False),
    )


class CapsuleFastPathTest(TestCase):
    """Every GEMM form and shared-signal path equals the broadcast formula."""

    def test_forward_shared_and_per_prototype_signals(self):
        prototypes = random((3, 2, 2), 1)
        for layout, signals in (
            ("shared", random((2, 1, 5, 2, 2))),
            ("per_prototype", random((2, 3, 5, 2, 2))),
        ):
            for name, kind, function, kwargs in _fast_path_cases():
                with self.subTest(case=name, layout=layout):
                    distances = _call_fast(function, signals, prototypes, kwargs)
                    self.assertShapeEqual(distances, (2, 3, 5))
                    self.assertAllClose(
                        distances,
                        _call_reference(kind, signals, prototypes, kwargs),
                        atol=2e-5,
                        rtol=2e-5,
                    )

    def test_shared_signals_equal_tiled_signals(self):
        shared = random((2, 1, 4, 4))
        tiled = np.repeat(shared, 3, axis=1)
        prototypes = random((3, 4), 1)
        for name, _, function, kwargs in _fast_path_cases():
            with self.subTest(case=name):
                self.assertAllClose(
                    _call_fast(function, shared, prototypes, kwargs),
                    _call_fast(function, tiled, prototypes, kwargs),
                    atol=2e-5,
                    rtol=2e-5,
                )

    def test_pairwise_forms_equal_the_broadcast_formula(self):
        x, prototypes = random((5, 4)), random((3, 4), 1)
        signals = x[:, None, None, :]
        pairwise = {
            "tangent_global": anysma_ops.tangent_distance,
            "tangent_local": anysma_ops.tangent_distance,
            "restricted_global": anysma_ops.restricted_tangent_distance,
            "restricted_local": anysma_ops.restricted_tangent_distance,
            "restricted_local_basis_global_bounds": (
                anysma_ops.restricted_tangent_distance
            ),
            "restricted_global_basis_local_bounds": (
                anysma_ops.restricted_tangent_distance
            ),
            "tangent_local_non_orthonormal": anysma_ops.tangent_distance,
            "omega_global": anysma_ops.omega_distance,
            "omega_local": anysma_ops.omega_distance,
        }
        for name, kind, _, kwargs in _fast_path_cases():
            if name not in pairwise:
                continue
            with self.subTest(case=name):
                self.assertAllClose(
                    _call_fast(pairwise[name], x, prototypes, kwargs),
                    _call_reference(kind, signals, prototypes, kwargs)[:, :, 0],
                    atol=2e-5,
                    rtol=2e-5,
                )


@pytest.mark.requires_trainable_backend
class CapsuleFastPathGradientTest(TestCase):
    """Autodiff of the fast paths equals finite differences of the formula."""

    def assert_gradients(self, name, kind, function, kwargs, signals, prototypes):
        from anysma.testing.gradients import autodiff_gradient
        from anysma.testing.gradients import numeric_gradient

        arguments = {"signals": signals, "prototypes": prototypes}
        for key in ("matrices", "bounds"):
            if key in kwargs:
                arguments[key] = kwargs[key]
        # Bounds only matter where theta is clipped; their gradient is
        # checked with the other parameters.
        for wrt, value in arguments.items():

            def fast(tensor, wrt=wrt):
                call = dict(arguments, **{wrt: tensor})
                options = dict(kwargs, **{k: call[k] for k in kwargs if k in call})
                return _call_fast(
                    function, call["signals"], call["prototypes"], options
                )

            def reference(tensor, wrt=wrt):
                call = dict(arguments, **{wrt: keras.ops.convert_to_numpy(tensor)})
                options = dict(kwargs, **{k: call[k] for k in kwargs if k in call})
                return _call_reference(
                    kind, call["signals"], call["prototypes"], options
                )

            if keras.backend.backend() == "jax":
                import jax

                # One compiled program instead of eager op-by-op compilation.
                fast = jax.jit(fast)
            with self.subTest(case=name, wrt=wrt):
                self.assertAllClose(
                    autodiff_gradient(fast, value),
                    numeric_gradient(reference, value, dtype="float64"),
                    atol=2e-3,
                    rtol=2e-3,
                )

    def test_gradients_with_shared_signals(self):
        signals, prototypes = random((2, 1, 3, 4), 8), random((3, 4), 9)
        for name, kind, function, kwargs in _fast_path_cases():
            self.assert_gradients(name, kind, function, kwargs, signals, prototypes)

    def test_gradients_with_per_prototype_signals(self):
        signals, prototypes = random((1, 3, 2, 4), 10), random((3, 4), 11)
        for name, kind, function, kwargs in _fast_path_cases():
            if name in ("minkowski_2", "omega_local", "tangent_local"):
                self.assert_gradients(name, kind, function, kwargs, signals, prototypes)


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="XLA's compiled memory analysis"
)
def test_shared_signals_never_build_the_difference_tensor():
    # Compiled forward + backward pass: with shared signals the temporaries of
    # the GEMM forms stay far below one (B, P, C, D) tensor.
    import jax

    batch, prototypes_count, channels, dim = 4, 64, 256, 32
    signals = random((batch, 1, channels, dim))
    prototypes = random((prototypes_count, dim), 1)
    omega = random((dim, 8), 2)
    basis = orthonormal((dim, 8), 3)
    difference_bytes = batch * prototypes_count * channels * dim * 4
    distances = {
        "euclidean": lambda s, w: anysma_ops.capsule_minkowski_distance(s, w),
        "omega_global": lambda s, w: anysma_ops.capsule_omega_distance(s, w, omega),
        "tangent_global": lambda s, w: anysma_ops.capsule_tangent_distance(s, w, basis),
    }
    for name, distance in distances.items():

        def loss(s, w, distance=distance):
            return keras.ops.sum(distance(s, w))

        compiled = (
            jax.jit(jax.grad(loss, argnums=(0, 1))).lower(signals, prototypes).compile()
        )
        temporary = compiled.memory_analysis().temp_size_in_bytes
        assert temporary < difference_bytes / 4, (name, temporary)
