"""Pre-training over a stream of batches: module, model and the helpers."""

import keras
import numpy as np
import pytest

import anysma
from anysma import pre_training
from anysma.modules import MinkowskiDistance
from anysma.modules import OmegaDistance
from anysma.modules import TangentDistance
from anysma.testing import TestCase
from anysma.testing.test_case import to_numpy
from anysma.utils import streams

# Three classes, far apart, each stretched along its own directions so that
# the principal directions of every group are well defined.
MEANS = np.array(
    [[8.0, 0.0, 0.0, 0.0, 0.0], [0.0, 8.0, 0.0, 0.0, 0.0], [0.0, 0.0, 8.0, 8.0, 0.0]]
)
SCALES = np.array([[3.0, 1.5, 0.6, 0.3, 0.1], [0.2, 2.5, 1.0, 0.5, 0.05]])


def stretched_blobs(samples_per_class=600, seed=0):
    """Points `(N, 5)` in three classes of two sub-clusters each, and labels."""
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for label, mean in enumerate(MEANS):
        for offset, scales in zip((-2.0, 2.0), SCALES):
            sub_mean = mean + offset * np.eye(5)[(label + 4) % 5]
            points.append(
                sub_mean + 0.1 * scales * rng.normal(size=(samples_per_class // 2, 5))
            )
            labels.append(np.full(samples_per_class // 2, label))
    order = rng.permutation(3 * samples_per_class)
    return np.concatenate(points)[order].astype("float32"), np.concatenate(labels)[
        order
    ]


def cut(signals, labels, batch_size):
    """A list of `(signals, labels)` batches."""
    return [
        (
            signals[start : start + batch_size],
            None if labels is None else labels[start : start + batch_size],
        )
        for start in range(0, len(signals), batch_size)
    ]


def as_signals(points, capsules=1):
    return np.repeat(points[:, None, None, :], capsules, axis=1)


def projectors(bases):
    return np.einsum("gdk,gek->gde", bases, bases)


def sorted_rows(array):
    return array[np.lexsort(np.round(array, 3).T[::-1])]


class ClusterStreamTest(TestCase):
    def test_centers_match_kmeans_on_all_data(self):
        points, labels = stretched_blobs()
        signals = as_signals(points)
        streamed = pre_training.cluster_prototypes_stream(
            cut(signals, labels, 100),
            [2, 2, 2],
            capsule_inputs_are_equal=True,
            random_state=0,
            batch_size=256,
        )
        whole = pre_training.cluster_prototypes(
            signals,
            [2, 2, 2],
            y_train=labels,
            capsule_inputs_are_equal=True,
            random_state=0,
            n_init=3,
        )
        self.assertTrue(streamed.labelled)
        for capsule in range(3):
            rows = slice(2 * capsule, 2 * capsule + 2)
            self.assertAllClose(
                sorted_rows(streamed.centers[rows]),
                sorted_rows(whole.centers[rows]),
                atol=0.05,
            )

    def test_result_does_not_depend_on_how_the_stream_is_cut(self):
        points, labels = stretched_blobs()
        signals = as_signals(points)
        results = [
            pre_training.cluster_prototypes_stream(
                cut(signals, labels, batch_size),
                [2, 2, 2],
                capsule_inputs_are_equal=True,
                random_state=0,
                batch_size=64,
            ).centers
            for batch_size in (7, 50, 1800)
        ]
        self.assertAllClose(results[0], results[1], atol=1e-6)
        self.assertAllClose(results[0], results[2], atol=1e-6)

    def test_unlabelled_cases(self):
        points, _ = stretched_blobs()
        # One k-means for all capsules on capsule 0's signals.
        pooled = pre_training.cluster_prototypes_stream(
            cut(as_signals(points, 2), None, 128),
            [3, 3],
            capsule_inputs_are_equal=True,
            random_state=0,
        )
        self.assertEqual(len(pooled.estimators), 1)
        self.assertEqual(pooled.centers.shape, (6, 5))
        self.assertFalse(pooled.labelled)
        # One k-means per capsule on that capsule's own signals.
        different = np.stack([points, points + 100.0], axis=1)[:, :, None, :]
        per_capsule = pre_training.cluster_prototypes_stream(
            cut(different, None, 128), [3, 3], random_state=0
        )
        self.assertEqual(per_capsule.offsets, [0, 3])
        self.assertAllClose(
            sorted_rows(per_capsule.centers[3:]) - 100.0,
            sorted_rows(per_capsule.centers[:3]),
            atol=0.2,
        )

    def test_bases_equal_principal_bases_of_the_same_groups(self):
        points, labels = stretched_blobs()
        signals = as_signals(points)
        batches = cut(signals, labels, 97)
        counts = [2, 2, 2]
        clusters = pre_training.cluster_prototypes_stream(
            batches, counts, capsule_inputs_are_equal=True, random_state=0
        )
        # The members of each prototype, from the fitted estimators.
        members = []
        for capsule, estimator in enumerate(clusters.estimators):
            rows = points[labels == capsule].astype("float64")
            assigned = estimator.predict(rows)
            members += [rows[assigned == cluster] for cluster in range(2)]
        groups = {
            "local": members,
            "capsule_wise": [np.concatenate(members[i : i + 2]) for i in (0, 2, 4)],
            "global": [np.concatenate(members)],
        }
        for scope, expected_groups in groups.items():
            with self.subTest(scope=scope):
                bases = pre_training.scoped_principal_bases_stream(
                    batches,
                    clusters,
                    counts,
                    scope,
                    n_components=2,
                    capsule_inputs_are_equal=True,
                )
                expected = pre_training.principal_bases(
                    expected_groups, 2, random_state=0
                )
                self.assertEqual(bases.shape, expected.shape)
                self.assertAllClose(projectors(bases), projectors(expected), atol=1e-6)
                self.assertAllClose(
                    np.einsum("gdk,gdl->gkl", bases, bases),
                    np.broadcast_to(np.eye(2), (len(bases), 2, 2)),
                    atol=1e-10,
                )

    def test_bases_keep_full_precision_far_from_the_origin(self):
        # A naive sum of squares would lose the small spread to cancellation.
        rng = np.random.default_rng(1)
        points = 1e7 + rng.normal(size=(2000, 3)) * np.array([1.0, 0.1, 0.01])
        batches = cut(as_signals(points), None, 100)
        clusters = pre_training.cluster_prototypes_stream(batches, [1], random_state=0)
        bases = pre_training.scoped_principal_bases_stream(
            batches, clusters, [1], "global", n_components=2
        )
        expected = pre_training.principal_bases([points], 2, random_state=0)
        self.assertAllClose(projectors(bases), projectors(expected), atol=1e-6)

    def test_errors(self):
        points, labels = stretched_blobs(60)
        signals = as_signals(points)
        with self.assertRaisesRegex(ValueError, "empty"):
            pre_training.cluster_prototypes_stream([], [1, 1, 1])
        mixed = cut(signals, labels, 60)
        mixed[1] = (mixed[1][0], None)
        with self.assertRaisesRegex(ValueError, "every batch"):
            pre_training.cluster_prototypes_stream(
                mixed, [1, 1, 1], capsule_inputs_are_equal=True
            )
        with self.assertRaisesRegex(ValueError, "class 2 has 60 data points"):
            pre_training.cluster_prototypes_stream(
                cut(signals, labels, 30), [1, 1, 61], capsule_inputs_are_equal=True
            )
        with self.assertRaisesRegex(ValueError, "n_clusters"):
            pre_training.cluster_prototypes_stream(
                cut(signals, labels, 30), [1, 1, 1], n_clusters=3
            )
        with self.assertRaisesRegex(ValueError, "unknown labels"):
            pre_training.cluster_prototypes_stream(
                cut(signals, labels + 1, 30), [1, 1, 1], capsule_inputs_are_equal=True
            )


class Stream(keras.utils.PyDataset):
    """`(x, y)` batches of fixed arrays."""

    def __init__(self, x, y, batch_size, with_length=True):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.with_length = with_length

    @property
    def num_batches(self):
        if not self.with_length:
            return None
        return -(-len(self.x) // self.batch_size)

    def __len__(self):
        return self.num_batches

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


class ModuleStreamTest(TestCase):
    def test_omega_distance_matches_array_pre_training(self):
        points, labels = stretched_blobs()
        signals = as_signals(points)
        results = {}
        for mode in ("stream", "arrays"):
            module = OmegaDistance(
                prototype_distribution=[2, 2, 2],
                projected_atom_shape=3,
                matrix_scope="capsule_wise",
                prototype_initializer="zeros",
            )
            if mode == "stream":
                module.pre_training_on_batches(
                    cut(signals, labels, 128),
                    capsule_inputs_are_equal=True,
                    random_state=0,
                )
            else:
                module.pre_training(
                    signals,
                    labels,
                    capsule_inputs_are_equal=True,
                    random_state=0,
                    n_init=3,
                )
            results[mode] = (
                to_numpy(module.prototypes),
                to_numpy(module.matrices),
            )
        for capsule in range(3):
            rows = slice(2 * capsule, 2 * capsule + 2)
            self.assertAllClose(
                sorted_rows(results["stream"][0][rows]),
                sorted_rows(results["arrays"][0][rows]),
                atol=0.05,
            )
        self.assertAllClose(
            projectors(results["stream"][1]),
            projectors(results["arrays"][1]),
            atol=0.02,
        )

    def test_generators_suffice_without_matrices_only(self):
        points, labels = stretched_blobs(60)
        signals = as_signals(points)
        module = MinkowskiDistance(
            prototype_distribution=[1, 1, 1], **{"prototype_initializer": "zeros"}
        )
        module.pre_training_on_batches(
            (batch for batch in cut(signals, labels, 30)),
            capsule_inputs_are_equal=True,
            random_state=0,
        )
        self.assertAllClose(to_numpy(module.prototypes), MEANS, atol=2.5)
        tangent = TangentDistance(2, prototype_distribution=[1, 1, 1])
        with self.assertRaisesRegex(ValueError, "second pass"):
            tangent.pre_training_on_batches(
                (batch for batch in cut(signals, labels, 30)),
                capsule_inputs_are_equal=True,
            )
        with self.assertRaisesRegex(ValueError, "svd_params"):
            tangent.pre_training_on_batches(
                cut(signals, labels, 30), svd_params={"n_iter": 3}
            )
        with self.assertRaisesRegex(ValueError, "NaN"):
            module.pre_training_on_batches(
                [(np.full_like(signals, np.nan), labels)], capsule_inputs_are_equal=True
            )

    def test_batches_sources(self):
        x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
        dataset = Stream(x, y, 2)
        self.assertTrue(streams.Batches(dataset).reiterable)
        self.assertEqual(len(list(streams.Batches(dataset))), 3)
        factory = streams.Batches(lambda: iter([(x, y)]))
        self.assertTrue(factory.reiterable)
        self.assertEqual(len(list(factory)) + len(list(factory)), 2)
        once = streams.Batches(iter([(x, None)]))
        self.assertFalse(once.reiterable)
        (batch,) = list(once)
        self.assertIsNone(batch[1])
        with self.assertRaisesRegex(ValueError, "already read"):
            list(once)
        with self.assertRaisesRegex(ValueError, "never ends"):
            streams.Batches(Stream(x, y, 2, with_length=False))
        with self.assertRaisesRegex(TypeError, "Received: int"):
            streams.Batches(3)
        tensors = list(streams.Batches([(keras.ops.ones((2, 2)), keras.ops.zeros(2))]))
        self.assertIsInstance(tensors[0][0], np.ndarray)


class ModelStreamTest(TestCase):
    def test_gmlvq_from_a_py_dataset_matches_arrays(self):
        points, labels = stretched_blobs()
        models = {}
        for mode in ("stream", "arrays"):
            model = anysma.models.GMLVQ(
                input_dim=5, num_classes=3, prototypes_per_class=2, projected_dim=3
            )
            if mode == "stream":
                model.pre_training(Stream(points, labels, 128), random_state=0)
            else:
                model.pre_training(points, labels, random_state=0, n_init=3)
            models[mode] = model
        prototypes = {mode: model.prototypes for mode, model in models.items()}
        for capsule in range(3):
            rows = slice(2 * capsule, 2 * capsule + 2)
            self.assertAllClose(
                sorted_rows(prototypes["stream"][rows]),
                sorted_rows(prototypes["arrays"][rows]),
                atol=0.05,
            )
        omegas = {
            mode: to_numpy(model.measuring_module.matrices)
            for mode, model in models.items()
        }
        self.assertAllClose(
            projectors(omegas["stream"][None]),
            projectors(omegas["arrays"][None]),
            atol=0.02,
        )
        accuracy = np.mean(
            np.argmax(models["stream"].predict(points, verbose=0), 1) == labels
        )
        self.assertGreater(accuracy, 0.95)

    def test_glvq_from_a_generator_and_errors(self):
        points, labels = stretched_blobs(60)
        model = anysma.models.GLVQ(input_dim=5, num_classes=3)
        model.pre_training(
            (
                (points[i : i + 40], labels[i : i + 40], np.ones(40))
                for i in range(0, 180, 40)
            ),
            random_state=0,
        )
        self.assertAllClose(model.prototypes, MEANS, atol=2.5)
        with self.assertRaisesRegex(ValueError, "must be None"):
            model.pre_training(Stream(points, labels, 32), labels)
        with self.assertRaisesRegex(ValueError, "without labels"):
            model.pre_training(iter([points[:30]]))
        with self.assertRaisesRegex(ValueError, "input"):
            model.pre_training(iter([(points[:30, :4], labels[:30])]))
        with self.assertRaisesRegex(ValueError, "y=None"):
            model.pre_training(points)


@pytest.mark.parametrize("scope", ["local", "global"])
def test_tangent_distance_scopes_set_orthonormal_matrices(scope):
    points, labels = stretched_blobs(90)
    module = TangentDistance(
        2,
        prototype_distribution=[1, 1, 1],
        matrix_scope=scope,
        prototype_initializer="zeros",
    )
    module.pre_training_on_batches(
        cut(as_signals(points), labels, 64),
        capsule_inputs_are_equal=True,
        random_state=0,
    )
    matrices = keras.ops.convert_to_numpy(module.matrices).reshape(-1, 5, 2)
    np.testing.assert_allclose(
        np.einsum("gdk,gdl->gkl", matrices, matrices),
        np.broadcast_to(np.eye(2), (len(matrices), 2, 2)),
        atol=1e-5,
    )


@pytest.mark.parametrize("source", ["tf.data", "torch DataLoader"])
def test_gmlvq_pre_training_from_other_frameworks_streams(source):
    points, labels = stretched_blobs(120)
    if source == "tf.data":
        tf = pytest.importorskip("tensorflow")
        stream = tf.data.Dataset.from_tensor_slices((points, labels)).batch(50)
    else:
        torch = pytest.importorskip("torch")
        stream = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(
                torch.from_numpy(points), torch.from_numpy(labels)
            ),
            batch_size=50,
        )
    model = anysma.models.GMLVQ(
        input_dim=5, num_classes=3, prototypes_per_class=2, projected_dim=3
    )
    # Both read twice (k-means, then the matrices).
    model.pre_training(stream, random_state=0)
    reference = anysma.models.GMLVQ(
        input_dim=5, num_classes=3, prototypes_per_class=2, projected_dim=3
    )
    reference.pre_training(Stream(points, labels, 50), random_state=0)
    np.testing.assert_allclose(model.prototypes, reference.prototypes, atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(model.measuring_module.matrices),
        to_numpy(reference.measuring_module.matrices),
        atol=1e-5,
    )
