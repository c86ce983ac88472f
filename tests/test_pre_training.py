import keras
import numpy as np

import anysma
from anysma import pre_training
from anysma.modules import InputModule
from anysma.modules import MinkowskiDistance
from anysma.modules import OmegaDistance
from anysma.modules import RestrictedTangentDistance
from anysma.modules import TangentDistance
from anysma.testing import TestCase
from anysma.testing.test_case import to_numpy

MEANS = np.array(
    [[5.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 5.0, 5.0]], "float32"
)


# The initial values do not matter here, and constant initializers spare JAX
# compiling a random sampler for every weight shape.
POINT = {"prototype_initializer": "zeros"}
MATRIX = {"prototype_initializer": "zeros", "matrix_initializer": "ones"}


def blobs(samples_per_class=20, means=MEANS, scale=0.3, seed=0):
    """Separable classes: `(N, 4)` points and integer labels."""
    rng = np.random.default_rng(seed)
    points = [
        mean + scale * rng.normal(size=(samples_per_class, means.shape[1]))
        for mean in means
    ]
    labels = np.repeat(np.arange(len(means)), samples_per_class)
    return np.concatenate(points).astype("float32"), labels


def as_module_input(points, capsules=3, channels=1):
    """`(N, D)` points as equal capsule inputs `(N, K, C, D)`."""
    points = points.reshape(points.shape[0], 1, channels, -1)
    return np.repeat(points, capsules, axis=1)


def orthonormal(shape, seed=0):
    rng = np.random.default_rng(seed)
    return np.linalg.qr(rng.normal(size=shape))[0]


def projector(basis):
    return basis @ basis.T


class KMeansPreTrainingTest(TestCase):
    def test_one_prototype_per_class_gives_the_class_means(self):
        points, labels = blobs()
        x_train = as_module_input(points)
        class_means = np.stack([points[labels == i].mean(0) for i in range(3)])
        for y_train in (labels, keras.utils.to_categorical(labels, 3)):
            for equal in (True, False):
                module = MinkowskiDistance(**POINT, prototype_distribution=3)
                module.pre_training(
                    x_train, y_train, capsule_inputs_are_equal=equal, random_state=0
                )
                self.assertAllClose(module.prototypes, class_means, atol=1e-5)

    def test_channels_count_as_data_points(self):
        points, labels = blobs()
        # Two channels per sample: the first and second half of each class.
        x_train = np.concatenate(
            [as_module_input(points[0::2]), as_module_input(points[1::2])], axis=2
        )
        module = MinkowskiDistance(**POINT, prototype_distribution=3)
        module.pre_training(x_train, labels[0::2], random_state=0)
        class_means = np.stack([points[labels == i].mean(0) for i in range(3)])
        self.assertAllClose(module.prototypes, class_means, atol=1e-5)

    def test_unlabelled_equal_inputs_find_all_blobs(self):
        points, _ = blobs()
        module = MinkowskiDistance(**POINT, prototype_distribution=3)
        module.pre_training(
            as_module_input(points), capsule_inputs_are_equal=True, random_state=0
        )
        centers = to_numpy(module.prototypes)
        order = np.argsort(centers @ np.arange(1, 5))
        self.assertAllClose(
            centers[order], MEANS[np.argsort(MEANS @ np.arange(1, 5))], atol=0.2
        )

    def test_unlabelled_capsules_are_clustered_separately(self):
        points, labels = blobs()
        # Capsule 0 sees blob 0 only, capsule 1 blobs 1 and 2.
        first = points[labels == 0]
        rest = points[labels != 0][::2][: len(first)]
        x_train = np.stack([first, rest], axis=1)[:, :, None]
        module = MinkowskiDistance(**POINT, prototype_distribution=[1, 2])
        module.pre_training(x_train, random_state=0)
        centers = to_numpy(module.prototypes)
        self.assertAllClose(centers[0], first.mean(0), atol=1e-5)
        found = centers[1:][np.argsort(centers[1:, 1])]
        self.assertAllClose(found, MEANS[[2, 1]], atol=0.3)

    def test_unequal_distribution_keeps_capsule_order(self):
        # Class 1 has two sub-blobs; its two prototypes must find them and
        # sit at positions 1 and 2 (capsule-major order).
        means = np.array(
            [[5, 0, 0, 0], [0, 5, 0, 0], [0, -5, 0, 0], [0, 0, 5, 5]], "float32"
        )
        points, sub_labels = blobs(means=means)
        labels = np.array([0, 1, 1, 2])[sub_labels]
        module = MinkowskiDistance(**POINT, prototype_distribution=[1, 2, 1])
        module.pre_training(as_module_input(points), labels, random_state=0, n_init=3)
        centers = to_numpy(module.prototypes)
        self.assertAllClose(centers[0], points[sub_labels == 0].mean(0), atol=1e-5)
        self.assertAllClose(np.sort(centers[1:3, 1]), [-5.0, 5.0], atol=0.3)
        self.assertAllClose(centers[3], points[sub_labels == 3].mean(0), atol=1e-5)

    def test_batch_version(self):
        points, labels = blobs()
        module = MinkowskiDistance(**POINT, prototype_distribution=3)
        module.pre_training(
            as_module_input(points),
            labels,
            batch_version=True,
            random_state=0,
            batch_size=64,
            max_iter=10,
        )
        self.assertAllClose(module.prototypes, MEANS, atol=0.3)

    def test_prototype_constraint_is_applied(self):
        points, labels = blobs(means=-MEANS)
        module = MinkowskiDistance(
            **POINT, prototype_constraint="NonNeg", prototype_distribution=3
        )
        module.pre_training(as_module_input(points), labels, random_state=0)
        self.assertTrue(np.all(to_numpy(module.prototypes) >= 0))

    def test_module_input_of_a_capsule(self):
        points, labels = blobs()
        module = MinkowskiDistance(**POINT, name="distance")
        capsule = anysma.Capsule(prototype_distribution=3).add(
            [
                InputModule(signal_shape=(1, 4), dissimilarity_initializer="zeros"),
                module,
            ]
        )
        capsule(keras.Input((4,)))
        # The (signals, dissimilarities) tuple is accepted as it comes.
        module.pre_training(
            capsule.get_module_input(module, points),
            labels,
            capsule_inputs_are_equal=True,
            random_state=0,
        )
        class_means = np.stack([points[labels == i].mean(0) for i in range(3)])
        self.assertAllClose(module.prototypes, class_means, atol=1e-5)

    def test_unbuilt_module_is_built(self):
        points, labels = blobs()
        module = OmegaDistance(
            **MATRIX, prototype_distribution=3, projected_atom_shape=2
        )
        self.assertFalse(module.built)
        module.pre_training(as_module_input(points), labels, random_state=0)
        self.assertTrue(module.built)
        self.assertEqual(tuple(module.matrices.shape), (3, 4, 2))


class MatrixPreTrainingTest(TestCase):
    def class_subspace_data(self, bases, means, samples=40, seed=0):
        rng = np.random.default_rng(seed)
        points = [
            mean
            + rng.normal(size=(samples, 2)) @ basis.T * 3.0
            + 1e-3 * rng.normal(size=(samples, basis.shape[0]))
            for basis, mean in zip(bases, means)
        ]
        labels = np.repeat(np.arange(len(bases)), samples)
        return np.concatenate(points).astype("float32"), labels

    def test_bases_span_each_class_subspace(self):
        bases = [orthonormal((5, 2), seed) for seed in range(3)]
        means = 10.0 * np.eye(3, 5)
        points, labels = self.class_subspace_data(bases, means)
        for scope in ("local", "capsule_wise"):
            module = TangentDistance(
                2, **MATRIX, matrix_scope=scope, prototype_distribution=3
            )
            module.pre_training(as_module_input(points), labels, random_state=0)
            matrices = to_numpy(module.matrices)
            for index, basis in enumerate(bases):
                with self.subTest(scope=scope, capsule=index):
                    self.assertAllClose(
                        projector(matrices[index]), projector(basis), atol=1e-2
                    )
                    self.assertAllClose(
                        matrices[index].T @ matrices[index], np.eye(2), atol=1e-5
                    )

    def test_global_basis_spans_the_pooled_subspace(self):
        basis = orthonormal((5, 2), 3)
        # The class means lie in the subspace too, so the pooled data does.
        means = [basis @ np.array(offset) for offset in ([4, 0], [0, 4], [-4, -4])]
        points, labels = self.class_subspace_data([basis] * 3, means)
        module = RestrictedTangentDistance(
            2, matrix_scope="global", prototype_distribution=3, **MATRIX
        )
        module.pre_training(as_module_input(points), labels, random_state=0)
        self.assertAllClose(
            projector(to_numpy(module.matrices)), projector(basis), atol=1e-2
        )

    def test_local_bases_follow_the_clusters(self):
        # One class, two clusters with different subspaces: one basis each.
        bases = [orthonormal((5, 2), 4), orthonormal((5, 2), 5)]
        means = [np.full(5, 20.0), np.full(5, -20.0)]
        points, _ = self.class_subspace_data(bases, means)
        module = TangentDistance(2, **MATRIX, prototype_distribution=[2])
        module.pre_training(
            as_module_input(points, capsules=1), np.zeros(len(points)), random_state=0
        )
        centers = to_numpy(module.prototypes)
        matrices = to_numpy(module.matrices)
        for center, matrix in zip(centers, matrices):
            basis = bases[0] if center.sum() > 0 else bases[1]
            self.assertAllClose(projector(matrix), projector(basis), atol=1e-2)

    def test_full_rank_omega_uses_sorted_eigenvectors(self):
        points, labels = blobs(scale=0.0)
        rng = np.random.default_rng(0)
        # Within-class spread mostly along the first axis.
        points = points + rng.normal(size=points.shape) * np.float32([3, 0.1, 0.1, 0.1])
        module = OmegaDistance(**MATRIX, prototype_distribution=3)
        module.pre_training(as_module_input(points), labels, random_state=0)
        omegas = to_numpy(module.matrices)
        self.assertEqual(omegas.shape, (3, 4, 4))
        for omega in omegas:
            self.assertAllClose(omega.T @ omega, np.eye(4), atol=1e-5)
            self.assertAllClose(abs(omega[0, 0]), 1.0, atol=1e-2)

    def test_larger_projection_keeps_the_matrices(self):
        points, labels = blobs()
        module = OmegaDistance(
            **MATRIX, projected_atom_shape=6, prototype_distribution=3
        )
        module.build(((None, 3, 1, 4), (None, 3, 1)))
        before = to_numpy(module.matrices)
        with self.assertWarnsRegex(UserWarning, "keeps the current matrices"):
            module.pre_training(as_module_input(points), labels, random_state=0)
        self.assertAllClose(module.matrices, before)
        self.assertAllClose(module.prototypes, MEANS, atol=0.3)

    def test_restricted_bounds_are_kept(self):
        points, labels = blobs()
        module = RestrictedTangentDistance(2, **MATRIX, prototype_distribution=3)
        module.build(((None, 3, 1, 4), (None, 3, 1)))
        module.bounds.assign(np.full((3, 2), 0.25, "float32"))
        module.pre_training(as_module_input(points), labels, random_state=0)
        self.assertAllClose(module.bounds, np.full((3, 2), 0.25))
        self.assertAllClose(module.prototypes, MEANS, atol=0.3)

    def test_random_state_makes_it_reproducible(self):
        points, labels = blobs()
        results = []
        for _ in range(2):
            module = TangentDistance(2, **MATRIX, prototype_distribution=(2, 3))
            module.pre_training(as_module_input(points), labels, random_state=3)
            results.append(to_numpy(module.weights))
        self.assertAllClose(results[0], results[1])


class PreTrainingParamsTest(TestCase):
    def setUp(self):
        super().setUp()
        points, self.labels = blobs()
        self.x_train = as_module_input(points)

    def test_nested_and_flat_kmeans_params_are_honoured(self):
        # An invalid value proves that the parameter reached scikit-learn.
        for params in ({"kmeans_params": {"max_iter": 0}}, {"max_iter": 0}):
            with self.subTest(params=params):
                with self.assertRaisesRegex(ValueError, "max_iter"):
                    MinkowskiDistance(**POINT, prototype_distribution=3).pre_training(
                        self.x_train, self.labels, **params
                    )
        # A given initialization with one iteration keeps the cluster order:
        # the first prototype is the center of the points right of the mean.
        points = self.x_train[self.labels == 0, :1]
        module = MinkowskiDistance(**POINT, prototype_distribution=[2])
        start = MEANS[0] + np.float32([[1, 0, 0, 0], [-1, 0, 0, 0]])
        module.pre_training(
            points,
            np.zeros(len(points)),
            kmeans_params={"init": start, "n_init": 1, "max_iter": 1},
        )
        prototypes = to_numpy(module.prototypes)
        self.assertGreater(prototypes[0, 0], MEANS[0, 0])
        self.assertLess(prototypes[1, 0], MEANS[0, 0])

    def test_svd_params_are_honoured(self):
        with self.assertRaisesRegex(ValueError, "algorithm"):
            TangentDistance(2, **MATRIX, prototype_distribution=3).pre_training(
                self.x_train, self.labels, svd_params={"algorithm": "unknown"}
            )

    def test_parameter_errors(self):
        module = MinkowskiDistance(**POINT, prototype_distribution=3)
        with self.assertRaisesRegex(ValueError, "duplicates: \\['n_init'\\]"):
            module.pre_training(
                self.x_train, self.labels, n_init=2, kmeans_params={"n_init": 3}
            )
        with self.assertRaisesRegex(ValueError, "kmeans_params=3"):
            module.pre_training(self.x_train, self.labels, kmeans_params=3)
        with self.assertRaisesRegex(ValueError, "svd_params"):
            module.pre_training(self.x_train, self.labels, svd_params={"n_iter": 3})
        with self.assertRaisesRegex(ValueError, "n_clusters"):
            module.pre_training(self.x_train, self.labels, n_clusters=2)


class PreTrainingErrorTest(TestCase):
    def setUp(self):
        super().setUp()
        points, self.labels = blobs(samples_per_class=4)
        self.x_train = as_module_input(points)

    def test_class_with_fewer_samples_than_prototypes(self):
        labels = self.labels.copy()
        labels[labels == 1] = 0
        labels[4] = 1
        with self.assertRaisesRegex(
            ValueError, "class 1 has 1 data points .* fewer than its 2 prototypes"
        ):
            MinkowskiDistance(**POINT, prototype_distribution=(2, 3)).pre_training(
                self.x_train, labels
            )

    def test_capsule_with_fewer_samples_than_prototypes(self):
        with self.assertRaisesRegex(ValueError, "capsule 0 has 12 data points"):
            MinkowskiDistance(**POINT, prototype_distribution=[13, 1, 1]).pre_training(
                self.x_train
            )
        with self.assertRaisesRegex(ValueError, "12 data points .* 15 prototypes"):
            MinkowskiDistance(**POINT, prototype_distribution=(5, 3)).pre_training(
                self.x_train, capsule_inputs_are_equal=True
            )

    def test_missing_class(self):
        labels = np.minimum(self.labels, 1)
        with self.assertRaisesRegex(ValueError, r"no samples of class\(es\) \[2\]"):
            MinkowskiDistance(**POINT, prototype_distribution=3).pre_training(
                self.x_train, labels
            )

    def test_labels_that_do_not_fit(self):
        module = MinkowskiDistance(**POINT, prototype_distribution=3)
        with self.assertRaisesRegex(ValueError, r"unknown labels \[3\]"):
            module.pre_training(self.x_train, np.where(self.labels == 2, 3, 0))
        with self.assertRaisesRegex(ValueError, "one label per sample"):
            module.pre_training(self.x_train, self.labels[:-1])
        with self.assertRaisesRegex(ValueError, "integer class labels"):
            module.pre_training(self.x_train, self.labels + 0.5)

    def test_non_finite_input(self):
        for value in (np.nan, np.inf):
            x_train = self.x_train.copy()
            x_train[0, 0, 0, 0] = value
            with self.assertRaisesRegex(ValueError, "NaN or infinite"):
                MinkowskiDistance(**POINT, prototype_distribution=3).pre_training(
                    x_train, self.labels
                )

    def test_wrong_shapes(self):
        module = MinkowskiDistance(**POINT, prototype_distribution=3)
        with self.assertRaisesRegex(ValueError, r"rank >= 4.*x_train.shape=\(12, 4\)"):
            module.pre_training(self.x_train[:, 0, 0], self.labels)
        with self.assertRaisesRegex(ValueError, "must have 3 capsules"):
            module.pre_training(self.x_train[:, :2], self.labels)
        module.build(((None, 3, 1, 5), (None, 3, 1)))
        with self.assertRaisesRegex(ValueError, r"atom shape \(5,\)"):
            module.pre_training(self.x_train, self.labels)

    def test_equal_inputs_may_come_as_one_capsule(self):
        module = MinkowskiDistance(**POINT, prototype_distribution=3)
        module.pre_training(
            self.x_train[:, :1], self.labels, capsule_inputs_are_equal=True
        )
        self.assertEqual(tuple(module.prototypes.shape), (3, 4))


class HelperTest(TestCase):
    def test_kmeans_per_data_set(self):
        data = [np.float32([[0], [0.2], [10], [10.2]]), np.float32([[1], [3]])]
        centers, labels = pre_training.kmeans(data, [2, 1], random_state=0, n_init=1)
        self.assertAllClose(np.sort(centers[0].ravel()), [0.1, 10.1], atol=1e-6)
        self.assertAllClose(centers[1], [[2.0]])
        self.assertEqual([len(item) for item in labels], [4, 2])

    def test_svd_completes_rank_deficient_bases(self):
        # Two points span one direction; three basis vectors are requested.
        data = np.array([[1.0, 0, 0, 0, 0], [-1.0, 0, 0, 0, 0]])
        (basis,) = pre_training.svd([data], 3, random_state=0)
        self.assertEqual(basis.shape, (5, 3))
        self.assertAllClose(basis.T @ basis, np.eye(3), atol=1e-6)
        self.assertAllClose(abs(basis[0, 0]), 1.0, atol=1e-6)

    def test_principal_bases_center_each_group(self):
        data = np.array([[1.0, 7.0, 7.0], [3.0, 7.0, 7.0]])
        bases = pre_training.principal_bases([data, data[::-1]], 1, random_state=0)
        self.assertEqual(bases.shape, (2, 3, 1))
        self.assertAllClose(np.abs(bases[:, :, 0]), [[1, 0, 0], [1, 0, 0]], atol=1e-6)
