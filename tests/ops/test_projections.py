import numpy as np

from anysma.ops import projections
from anysma.testing import TestCase


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def orthonormal(shape, seed=0):
    rng = np.random.default_rng(seed)
    if len(shape) == 2:
        return np.linalg.qr(rng.normal(size=shape))[0].astype("float32")
    return np.stack([orthonormal(shape[1:], seed + i) for i in range(shape[0])])


def per_prototype(matrices, prototypes):
    """Global `(D, M)` matrices repeated to `(P, D, M)`."""
    if matrices.ndim == 2:
        return np.broadcast_to(matrices, (prototypes,) + matrices.shape)
    return matrices


def np_theta(signals, prototypes, subspaces, bounds=None):
    batch, protos, channels = signals.shape[:3]
    differences = (signals - prototypes[None, :, None]).reshape(
        batch, protos, channels, -1
    )
    theta = np.einsum("bpcd,pdr->bpcr", differences, per_prototype(subspaces, protos))
    if bounds is not None:
        bounds = np.broadcast_to(bounds, (protos, subspaces.shape[-1]))
        theta = np.clip(theta, -bounds[None, :, None], bounds[None, :, None])
    return theta


def np_tangent_projection(signals, prototypes, subspaces, bounds=None):
    protos = signals.shape[1]
    theta = np_theta(signals, prototypes, subspaces, bounds)
    offsets = np.einsum("bpcr,pdr->bpcd", theta, per_prototype(subspaces, protos))
    flat = prototypes.reshape(protos, -1)[None, :, None] + offsets
    return flat.reshape(signals.shape)


class CapsuleProjectionTest(TestCase):
    def test_global_and_local_matrices(self):
        signals = random((2, 3, 4, 5))
        for matrices in (random((5, 2), 1), random((3, 5, 2), 2)):
            expected = np.einsum("bpcd,pdm->bpcm", signals, per_prototype(matrices, 3))
            self.assertAllClose(
                projections.capsule_projection(signals, matrices),
                expected,
                atol=1e-5,
            )

    def test_matrix_atoms_are_flattened(self):
        signals = random((2, 3, 1, 2, 3))
        matrices = random((3, 6, 4), 1)
        expected = np.einsum("bpcd,pdm->bpcm", signals.reshape(2, 3, 1, 6), matrices)
        self.assertAllClose(
            projections.capsule_projection(signals, matrices), expected, atol=1e-5
        )

    def test_prototype_projection(self):
        prototypes = random((3, 2, 2))
        for matrices in (random((4, 3), 1), random((3, 4, 3), 2)):
            expected = np.einsum(
                "pd,pdm->pm", prototypes.reshape(3, 4), per_prototype(matrices, 3)
            )
            self.assertAllClose(
                projections.prototype_projection(prototypes, matrices),
                expected,
                atol=1e-5,
            )

    def test_shape_errors_name_the_argument(self):
        with self.assertRaisesRegex(ValueError, "matrices"):
            projections.capsule_projection(random((2, 3, 4, 5)), random((4, 2)))
        with self.assertRaisesRegex(ValueError, "one matrix per prototype"):
            projections.capsule_projection(random((2, 3, 4, 5)), random((2, 5, 2)))
        with self.assertRaisesRegex(ValueError, "signals"):
            projections.capsule_projection(random((2, 3, 5)), random((5, 2)))
        with self.assertRaisesRegex(ValueError, "one matrix per prototype"):
            projections.prototype_projection(random((3, 5)), random((2, 5, 2)))


class TangentProjectionTest(TestCase):
    def test_parameters_and_projection_match_numpy(self):
        signals = random((2, 3, 4, 5))
        prototypes = random((3, 5), 1)
        for subspaces in (orthonormal((5, 2), 2), orthonormal((3, 5, 2), 3)):
            for bounds in (None, np.float32([0.1, 0.3]), np.abs(random((3, 2), 4))):
                with self.subTest(subspaces=subspaces.shape, bounds=bounds):
                    self.assertAllClose(
                        projections.capsule_tangent_parameters(
                            signals, prototypes, subspaces, bounds
                        ),
                        np_theta(signals, prototypes, subspaces, bounds),
                        atol=1e-5,
                    )
                    self.assertAllClose(
                        projections.capsule_tangent_projection(
                            signals, prototypes, subspaces, bounds
                        ),
                        np_tangent_projection(signals, prototypes, subspaces, bounds),
                        atol=1e-5,
                    )

    def test_projection_of_matrix_atoms_keeps_the_shape(self):
        signals = random((2, 3, 1, 2, 3))
        prototypes = random((3, 2, 3), 1)
        subspaces = orthonormal((3, 6, 2), 2)
        projected = projections.capsule_tangent_projection(
            signals, prototypes, subspaces
        )
        self.assertShapeEqual(projected, signals.shape)
        self.assertAllClose(
            projected,
            np_tangent_projection(signals, prototypes, subspaces),
            atol=1e-5,
        )

    def test_projection_is_the_closest_subspace_point(self):
        # The residual x - projection is orthogonal to the subspace.
        signals = random((2, 1, 3, 5))
        prototypes = random((1, 5), 1)
        subspaces = orthonormal((5, 2), 2)
        projected = np.asarray(
            projections.capsule_tangent_projection(signals, prototypes, subspaces)
        )
        residual = (signals - projected).reshape(-1, 5)
        self.assertAllClose(residual @ subspaces, np.zeros((6, 2)), atol=1e-5)

    def test_zero_bounds_give_the_prototype(self):
        signals = random((2, 3, 4, 5))
        prototypes = random((3, 5), 1)
        projected = projections.capsule_tangent_projection(
            signals, prototypes, orthonormal((5, 2), 2), np.zeros((2,), "float32")
        )
        self.assertAllClose(
            projected, np.broadcast_to(prototypes[None, :, None], signals.shape)
        )

    def test_bounds_shape_error(self):
        with self.assertRaisesRegex(ValueError, "bounds"):
            projections.capsule_tangent_parameters(
                random((2, 3, 4, 5)),
                random((3, 5)),
                orthonormal((5, 2)),
                np.ones((3,), "float32"),
            )

    def test_float16_stays_float16(self):
        signals = random((2, 3, 4, 5)).astype("float16")
        projected = projections.capsule_tangent_projection(
            signals,
            random((3, 5), 1).astype("float16"),
            orthonormal((5, 2)).astype("float16"),
        )
        self.assertEqual(str(np.asarray(projected).dtype), "float16")


class SharedSignalTest(TestCase):
    """Signals shared by all prototypes, `(B, 1, C, *A)`, act as tiled ones."""

    def test_projections_equal_those_of_tiled_signals(self):
        shared = random((2, 1, 4, 5))
        tiled = np.repeat(shared, 3, axis=1)
        prototypes = random((3, 5), 1)
        for subspaces in (orthonormal((5, 2), 2), orthonormal((3, 5, 2), 3)):
            for bounds in (None, np.float32([0.1, 0.3])):
                with self.subTest(subspaces=subspaces.shape, bounds=bounds):
                    self.assertAllClose(
                        projections.capsule_tangent_parameters(
                            shared, prototypes, subspaces, bounds
                        ),
                        np_theta(tiled, prototypes, subspaces, bounds),
                        atol=1e-5,
                    )
                    self.assertAllClose(
                        projections.capsule_tangent_projection(
                            shared, prototypes, subspaces, bounds
                        ),
                        np_tangent_projection(tiled, prototypes, subspaces, bounds),
                        atol=1e-5,
                    )

    def test_a_global_matrix_keeps_shared_signals_shared(self):
        shared = random((2, 1, 4, 5))
        global_matrix, local_matrices = random((5, 2), 1), random((3, 5, 2), 2)
        projected = projections.capsule_projection(shared, global_matrix)
        self.assertShapeEqual(projected, (2, 1, 4, 2))
        self.assertAllClose(projected, shared @ global_matrix, atol=1e-5)
        self.assertAllClose(
            projections.capsule_projection(shared, local_matrices),
            np.einsum("bpcd,pdm->bpcm", np.repeat(shared, 3, axis=1), local_matrices),
            atol=1e-5,
        )
