import keras
import numpy as np
import pytest

import anysma
from anysma import models
from anysma.testing import TestCase

NUM_CLASSES = 3
INPUT_DIM = 6
PROTOTYPES_PER_CLASS = [1, 2, 1]
PROTOTYPE_LABELS = [0, 1, 1, 2]


def toy_data(samples=30, seed=0):
    """Three well separated Gaussian blobs in 6 dimensions."""
    random = np.random.RandomState(seed)
    labels = np.arange(samples) % NUM_CLASSES
    centers = 3.0 * np.eye(NUM_CLASSES, INPUT_DIM)
    features = centers[labels] + 0.3 * random.normal(size=(samples, INPUT_DIM))
    return features.astype("float32"), labels


def digits_split():
    """scikit-learn's 8 x 8 digits scaled to [0, 1]: 1347 train, 450 test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    features, labels = load_digits(return_X_y=True)
    features = (features / 16.0).astype("float32")
    return train_test_split(
        features, labels, test_size=0.25, random_state=0, stratify=labels
    )


def jax_x64_enabled():
    import jax

    return bool(jax.config.jax_enable_x64)


def glvq_loss():
    return anysma.losses.GlvqLoss()


def rslvq_loss():
    return keras.losses.CategoricalCrossentropy(from_logits=True)


class LVQModelChecks:
    """Checks shared by every LVQ model; subclasses set the class attributes."""

    model_class = None
    init_kwargs = {}
    loss = staticmethod(glvq_loss)
    # Digits (450 test images): accuracy after k-means pre-training only,
    # and after a short fit (Adam 2e-3, batches of 64, 10 epochs). The
    # thresholds are about 0.02 below what all three backends reach.
    pre_training_accuracy = 0.9
    fit_accuracy = 0.93
    digits_kwargs = {}

    def make_model(self, **kwargs):
        arguments = {
            "input_dim": INPUT_DIM,
            "num_classes": NUM_CLASSES,
            "prototypes_per_class": PROTOTYPES_PER_CLASS,
            **self.init_kwargs,
            **kwargs,
        }
        return self.model_class(**arguments)

    def test_build_and_predict_shapes(self):
        model = self.make_model()
        features, _ = toy_data()
        outputs = model.predict(features, verbose=0)
        self.assertEqual(outputs.shape, (len(features), NUM_CLASSES))
        self.assertAllFinite(outputs)
        self.assertEqual(model.prototype_labels, PROTOTYPE_LABELS)
        self.assertEqual(model.prototypes.shape, (4, INPUT_DIM))
        self.assertEqual(
            model.prototype_dissimilarities(features).shape, (len(features), 4)
        )
        self.assertEqual(model.get_layer("distance"), model.measuring_module)

    def test_named_layers_and_weight_roles(self):
        # The scikit-learn face reaches the model only through these.
        model = self.make_model()
        self.assertIsInstance(model.measuring_module, anysma.capsule.Module)
        self.assertEqual(model.measuring_module.name, model.MEASURING_LAYER)
        self.assertEqual(model.routing_module.name, model.ROUTING_LAYER)
        self.assertEqual(model.get_layer(model.INPUT_LAYER).name, "input_module")
        if isinstance(model, models.RSLVQ):
            self.assertIsNotNone(model.get_layer(model.POSTERIOR_LAYER))
        else:
            self.assertIsInstance(
                model.competition_module, anysma.modules.NearestCompetition
            )
        roles = model.weights_by_role()
        self.assertIs(roles["prototypes"], model.measuring_module.prototypes)
        self.assertCountEqual(
            [id(variable) for variable in roles.values()],
            [id(variable) for variable in model.trainable_variables],
        )

    def test_direct_call_equals_the_functional_graph(self):
        # `call` runs the layers' `call` in a row; a plain functional model
        # over the same layers runs the graph with `Layer.__call__`.
        model = self.make_model()
        features, labels = toy_data()
        model.pre_training(features, labels, n_init=1, random_state=0)
        self.assertIsNotNone(model._direct_steps())
        graph = keras.Model(model.inputs[0], model.outputs[0])
        self.assertAllClose(model(features), graph(features), atol=1e-6)
        self.assertAllClose(model({"features": features}), graph(features), atol=1e-6)
        # Symbolic use inside another functional model runs the graph.
        inputs = keras.Input((INPUT_DIM,))
        outer = keras.Model(inputs, model(inputs))
        self.assertAllClose(outer(features), graph(features), atol=1e-6)

    def test_other_dtype_policies_run_the_graph(self):
        # Mixed precision and float64 layers (in a model whose own policy is
        # float32) need each layer's autocasting: the graph runs.
        features, _ = toy_data()
        dtypes = {"mixed_float16": "float16", "float64": "float64"}
        if keras.backend.backend() == "jax" and not jax_x64_enabled():
            del dtypes["float64"]
        for policy, output_dtype in dtypes.items():
            with self.subTest(policy=policy):
                model = self.make_model(dtype=policy)
                self.assertIsNone(model._direct_steps())
                outputs = model(features)
                self.assertEqual(
                    keras.backend.standardize_dtype(outputs.dtype), output_dtype
                )

    def test_direct_training_equals_the_functional_graph(self):
        features, labels = toy_data()
        targets = keras.utils.to_categorical(labels, NUM_CLASSES)
        direct = self.make_model()
        direct.pre_training(features, labels, n_init=1, random_state=0)
        twin = self.make_model()
        twin.set_weights(direct.get_weights())
        graph = keras.Model(twin.inputs[0], twin.outputs[0])
        for model in (direct, graph):
            model.compile(optimizer=keras.optimizers.Adam(0.01), loss=self.loss())
            model.fit(
                features, targets, batch_size=10, epochs=2, shuffle=False, verbose=0
            )
        for trained, expected in zip(direct.get_weights(), twin.get_weights()):
            self.assertAllClose(trained, expected, atol=1e-5)

    def test_config_round_trip(self):
        model = self.make_model(name="lvq_model")
        revived = self.run_serialization_test(model)
        self.assertIsInstance(revived, self.model_class)
        self.assertEqual(revived.count_params(), model.count_params())
        self.assertEqual(revived.name, "lvq_model")

    def test_keras_file_round_trip(self):
        model = self.make_model()
        features, labels = toy_data()
        model.pre_training(features, labels, n_init=1, random_state=0)
        restored = self.run_model_saving_test(model, features)
        self.assertEqual(restored.prototype_labels, PROTOTYPE_LABELS)
        self.assertAllClose(restored.prototypes, model.prototypes)

    def test_pre_training_separates_blobs(self):
        features, labels = toy_data()
        model = self.make_model().pre_training(
            features, labels, n_init=1, random_state=0
        )
        predictions = np.argmax(model.predict(features, verbose=0), axis=-1)
        self.assertEqual(np.mean(predictions == labels), 1.0)
        # The prototypes lie near their class centers.
        centers = 3.0 * np.eye(NUM_CLASSES, INPUT_DIM)
        nearest = np.argmin(
            ((model.prototypes[:, None] - centers[None]) ** 2).sum(-1), axis=-1
        )
        self.assertEqual(nearest.tolist(), PROTOTYPE_LABELS)

    def test_pre_training_needs_every_class(self):
        features, labels = toy_data()
        with self.assertRaisesRegex(ValueError, "class"):
            self.make_model().pre_training(
                features, np.minimum(labels, 1), n_init=1, random_state=0
            )

    def test_fit_reduces_loss(self):
        features, labels = toy_data(samples=12)
        model = self.make_model()
        model.compile(
            optimizer=keras.optimizers.Adam(0.05),
            loss=self.loss(),
            metrics=["accuracy"],
        )
        targets = keras.utils.to_categorical(labels, NUM_CLASSES)
        history = model.fit(
            features, targets, batch_size=12, epochs=5, verbose=0
        ).history
        self.assertLess(history["loss"][-1], history["loss"][0])
        self.assertIn("accuracy", history)

    def test_invalid_prototype_distribution(self):
        with self.assertRaisesRegex(ValueError, "prototypes_per_class"):
            self.make_model(prototypes_per_class=[1, 2])
        with self.assertRaisesRegex(ValueError, "prototypes_per_class"):
            self.make_model(prototypes_per_class=0)
        with self.assertRaisesRegex(ValueError, "num_classes"):
            self.make_model(num_classes=1, prototypes_per_class=1)
        with self.assertRaisesRegex(ValueError, "input_dim"):
            self.make_model(input_dim=0)

    def test_digits_accuracy_after_pre_training(self):
        x_train, x_test, y_train, y_test = digits_split()
        arguments = {"input_dim": 64, "num_classes": 10, "prototypes_per_class": 2}
        model = self.make_model(**{**arguments, **self.digits_kwargs})
        model.pre_training(x_train, y_train, n_init=3, random_state=0)
        predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        self.assertGreaterEqual(
            np.mean(predictions == y_test), self.pre_training_accuracy
        )

    @pytest.mark.large
    def test_digits_accuracy_after_fit(self):
        x_train, x_test, y_train, y_test = digits_split()
        arguments = {"input_dim": 64, "num_classes": 10, "prototypes_per_class": 2}
        model = self.make_model(**{**arguments, **self.digits_kwargs})
        model.pre_training(x_train, y_train, n_init=3, random_state=0)
        model.compile(
            optimizer=keras.optimizers.Adam(2e-3),
            loss=self.loss(),
            metrics=["accuracy"],
        )
        model.fit(
            x_train,
            keras.utils.to_categorical(y_train, 10),
            batch_size=64,
            epochs=10,
            verbose=0,
        )
        _, accuracy = model.evaluate(
            x_test, keras.utils.to_categorical(y_test, 10), verbose=0
        )
        self.assertGreaterEqual(accuracy, self.fit_accuracy)


class GLVQTest(LVQModelChecks, TestCase):
    model_class = models.GLVQ

    def test_output_is_flip_of_class_distances(self):
        model = self.make_model()
        features, _ = toy_data(samples=5)
        distances = ((features[:, None, :] - model.prototypes[None]) ** 2).sum(-1)
        self.assertAllClose(
            model.prototype_dissimilarities(features), distances, atol=1e-4
        )
        class_distances = np.stack(
            [distances[:, 0], distances[:, 1:3].min(-1), distances[:, 3]], axis=-1
        )
        expected = anysma.probability_transformations.flip(class_distances)
        self.assertAllClose(model.predict(features, verbose=0), expected, atol=1e-5)

    def test_fit_on_integer_class_ids(self):
        # Integer labels of shape (N, 1) used to train silently to garbage.
        features, labels = toy_data(samples=150)
        runs = []
        for targets in (
            keras.utils.to_categorical(labels, NUM_CLASSES),
            labels[:, None],
            labels,
        ):
            keras.utils.set_random_seed(0)
            model = self.make_model()
            model.compile(
                optimizer=keras.optimizers.Adam(0.05),
                loss=glvq_loss(),
                metrics=["accuracy"],
            )
            model.fit(
                features, targets, batch_size=32, epochs=5, shuffle=False, verbose=0
            )
            _, accuracy = model.evaluate(features, targets, verbose=0)
            runs.append((accuracy, model.predict(features, verbose=0)))
        for accuracy, outputs in runs:
            self.assertGreater(accuracy, 0.9)
            self.assertAllClose(outputs, runs[0][1], atol=1e-5)

    def test_other_probability_transformation(self):
        model = self.make_model(probability_transformation="neg_softmax")
        outputs = model.predict(toy_data()[0], verbose=0)
        self.assertAllClose(outputs.sum(-1), np.ones(len(outputs)), atol=1e-5)
        self.run_serialization_test(model)


class GLVQMaximumNormTest(LVQModelChecks, TestCase):
    """GLVQ on the (not squared) maximum norm, as for L-infinity certificates."""

    model_class = models.GLVQ
    init_kwargs = {"order_p": np.inf}
    # The k-means centres classify worse under the maximum norm than under
    # the Euclidean one; training still adds 5 points (JAX: 0.869 -> 0.922).
    pre_training_accuracy = 0.84
    fit_accuracy = 0.9

    def test_distances_are_the_maximum_norm(self):
        model = self.make_model()
        features, _ = toy_data(samples=5)
        distances = np.abs(features[:, None, :] - model.prototypes[None]).max(-1)
        self.assertAllClose(
            model.prototype_dissimilarities(features), distances, atol=1e-5
        )
        self.assertEqual(model.get_config()["order_p"], np.inf)


class GMLVQTest(LVQModelChecks, TestCase):
    model_class = models.GMLVQ
    init_kwargs = {"projection_dim": 2}
    digits_kwargs = {"projection_dim": None}
    fit_accuracy = 0.94

    def test_matrix_shapes(self):
        model = self.make_model()
        self.assertEqual(model.omega.shape, (INPUT_DIM, 2))
        self.assertEqual(model.relevance_matrix.shape, (INPUT_DIM, INPUT_DIM))
        self.assertEqual(self.make_model(projection_dim=None).omega.shape, (6, 6))

    def test_invalid_projection_dim(self):
        with self.assertRaisesRegex(ValueError, "projection_dim"):
            self.make_model(projection_dim=INPUT_DIM + 1)
        with self.assertRaisesRegex(ValueError, "projection_dim"):
            self.make_model(projection_dim=0)

    def test_distance_uses_omega(self):
        model = self.make_model()
        features, _ = toy_data(samples=5)
        difference = features[:, None, :] - model.prototypes[None]
        expected = ((difference @ model.omega) ** 2).sum(-1)
        self.assertAllClose(
            model.prototype_dissimilarities(features), expected, atol=1e-4
        )


class LGMLVQTest(LVQModelChecks, TestCase):
    model_class = models.LGMLVQ
    init_kwargs = {"projection_dim": 3}
    digits_kwargs = {"projection_dim": 10}
    pre_training_accuracy = 0.3  # local PCA matrices alone are a poor metric
    fit_accuracy = 0.96

    def test_pre_training_separates_blobs(self):
        # Local PCA bases of rank 3 measure only within-cluster directions;
        # check the prototype placement only.
        features, labels = toy_data()
        model = self.make_model().pre_training(
            features, labels, n_init=1, random_state=0
        )
        centers = 3.0 * np.eye(NUM_CLASSES, INPUT_DIM)
        nearest = np.argmin(
            ((model.prototypes[:, None] - centers[None]) ** 2).sum(-1), axis=-1
        )
        self.assertEqual(nearest.tolist(), PROTOTYPE_LABELS)

    def test_matrix_scopes(self):
        self.assertEqual(self.make_model().omegas.shape, (4, INPUT_DIM, 3))
        class_wise = self.make_model(matrix_scope="capsule_wise")
        self.assertEqual(class_wise.omegas.shape, (NUM_CLASSES, INPUT_DIM, 3))
        with self.assertRaisesRegex(ValueError, "matrix_scope"):
            self.make_model(matrix_scope="global")


class GRLVQTest(LVQModelChecks, TestCase):
    model_class = models.GRLVQ
    fit_accuracy = 0.92

    def test_relevances_are_normalized(self):
        model = self.make_model()
        relevances = model.relevances
        self.assertEqual(relevances.shape, (INPUT_DIM,))
        self.assertAllClose(relevances, np.full(INPUT_DIM, 1 / INPUT_DIM))

    def test_distance_is_relevance_weighted(self):
        model = self.make_model()
        scaling = model.get_layer("relevance_scaling")
        scaling.relevance_weights.assign(np.arange(1, INPUT_DIM + 1, dtype="float32"))
        features, _ = toy_data(samples=5)
        relevances = model.relevances
        self.assertAllClose(relevances.sum(), 1.0, atol=1e-6)
        difference = features[:, None, :] - model.prototypes[None]
        expected = (relevances * difference**2).sum(-1)
        self.assertAllClose(
            model.prototype_dissimilarities(features), expected, atol=1e-4
        )

    def test_learns_the_relevant_feature(self):
        # Only feature 0 carries the class; the others are noise.
        random = np.random.RandomState(0)
        labels = np.arange(60) % 2
        features = random.normal(size=(60, 4)).astype("float32")
        features[:, 0] = 2.0 * labels - 1 + 0.1 * random.normal(size=60)
        model = models.GRLVQ(input_dim=4, num_classes=2)
        model.pre_training(features, labels, n_init=1, random_state=0)
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss=glvq_loss())
        model.fit(
            features,
            keras.utils.to_categorical(labels, 2),
            batch_size=60,
            epochs=30,
            verbose=0,
        )
        relevances = model.relevances
        self.assertEqual(int(np.argmax(relevances)), 0)
        self.assertGreater(relevances[0], 0.5)


class GTLVQTest(LVQModelChecks, TestCase):
    model_class = models.GTLVQ
    init_kwargs = {"subspace_dim": 2}
    digits_kwargs = {"subspace_dim": 6}
    pre_training_accuracy = 0.95
    fit_accuracy = 0.96

    def test_subspaces_are_orthonormal(self):
        subspaces = self.make_model().subspaces
        self.assertEqual(subspaces.shape, (4, INPUT_DIM, 2))
        gram = np.einsum("pdr,pds->prs", subspaces, subspaces)
        self.assertAllClose(gram, np.broadcast_to(np.eye(2), gram.shape), atol=1e-5)

    def test_invalid_subspace_dim(self):
        with self.assertRaisesRegex(ValueError, "subspace_dim"):
            self.make_model(subspace_dim=INPUT_DIM)
        with self.assertRaisesRegex(ValueError, "subspace_dim"):
            self.make_model(subspace_dim=0)


class RTLVQTest(LVQModelChecks, TestCase):
    model_class = models.RTLVQ
    init_kwargs = {"subspace_dim": 2}
    digits_kwargs = {"subspace_dim": 6}
    fit_accuracy = 0.94

    def test_bounds(self):
        model = self.make_model()
        self.assertEqual(model.bounds.shape, (4, 2))
        self.assertEqual(model.subspaces.shape, (4, INPUT_DIM, 2))
        with self.assertRaisesRegex(ValueError, "subspace_dim"):
            self.make_model(subspace_dim=INPUT_DIM + 1)


class RSLVQTest(LVQModelChecks, TestCase):
    model_class = models.RSLVQ
    init_kwargs = {"beta": 2.0}
    loss = staticmethod(rslvq_loss)
    digits_kwargs = {"prototypes_per_class": 3}
    pre_training_accuracy = 0.93
    fit_accuracy = 0.96

    def test_outputs_are_class_log_posteriors(self):
        model = self.make_model()
        features, labels = toy_data(samples=5)
        distances = model.prototype_dissimilarities(features)
        logits = -2.0 * distances.astype("float64")
        posteriors = np.exp(logits - logits.max(-1, keepdims=True))
        posteriors /= posteriors.sum(-1, keepdims=True)
        expected = np.stack(
            [posteriors[:, 0], posteriors[:, 1:3].sum(-1), posteriors[:, 3]], -1
        )
        outputs = model.predict(features, verbose=0)
        self.assertAllClose(np.exp(outputs), expected, atol=1e-5)

    def test_cross_entropy_equals_rslvq_loss(self):
        model = self.make_model()
        features, labels = toy_data(samples=8)
        targets = keras.utils.to_categorical(labels, NUM_CLASSES)
        cross_entropy = rslvq_loss()(targets, model.predict(features, verbose=0))
        rslvq = anysma.losses.RSLVQLoss(
            prototype_labels=model.prototype_labels, beta=2.0
        )(targets, model.prototype_dissimilarities(features))
        self.assertAllClose(cross_entropy, rslvq, atol=1e-5)

    def test_far_samples_stay_finite(self):
        model = self.make_model(beta=100.0)
        features = np.full((2, INPUT_DIM), 1e3, dtype="float32")
        self.assertAllFinite(model.predict(features, verbose=0))

    def test_invalid_beta(self):
        with self.assertRaisesRegex(ValueError, "beta"):
            self.make_model(beta=0.0)


class HelperLayerTest(TestCase):
    def test_relevance_scaling_layer(self):
        self.run_layer_test(
            models.RelevanceScaling,
            init_kwargs={},
            input_data=np.random.rand(4, 3, 1, 5).astype("float32"),
            expected_output_shape=(4, 3, 1, 5),
            expected_num_trainable_weights=1,
        )

    def test_class_log_posterior_layer(self):
        self.run_layer_test(
            models.ClassLogPosterior,
            init_kwargs={"prototype_labels": [0, 1, 1], "num_classes": 2, "beta": 0.5},
            input_data=np.random.rand(4, 3).astype("float32"),
            expected_output_shape=(4, 2),
            expected_num_trainable_weights=0,
            run_training_check=False,
        )

    def test_class_log_posterior_needs_every_class(self):
        with self.assertRaisesRegex(ValueError, "prototype_labels"):
            models.ClassLogPosterior(prototype_labels=[0, 0], num_classes=2)
        with self.assertRaisesRegex(ValueError, "prototype_labels"):
            models.ClassLogPosterior(prototype_labels=[0, 2], num_classes=2)


# === Input shape checks: a wrong input width raises early, model unharmed ===
#
# `predict` on inputs of the wrong width used to fail deep inside a layer
# ("cannot reshape array ...") and, on JAX, left the variables detached, so
# every later call failed with "'NoneType' object is not callable".

INPUT_CHECK_MODELS = [
    (models.GLVQ, {}),
    (models.GMLVQ, {"projection_dim": 2}),
    (models.LGMLVQ, {}),
    (models.GRLVQ, {}),
    (models.GTLVQ, {"subspace_dim": 2}),
    (models.RTLVQ, {"subspace_dim": 2}),
    (models.RSLVQ, {}),
]
INPUT_CHECK_IDS = [model_class.__name__ for model_class, _ in INPUT_CHECK_MODELS]
WRONG_WIDTH_MESSAGE = (
    r"takes inputs(\['features'\])? of shape \(batch, 6\)\. "
    r"Received: inputs(\['features'\])?\.shape=\(\d+, 7\)"
)


def input_check_model(model_class=models.GLVQ, **options):
    return model_class(
        input_dim=INPUT_DIM,
        num_classes=NUM_CLASSES,
        prototypes_per_class=PROTOTYPES_PER_CLASS,
        **options,
    )


def compiled_glvq():
    model = input_check_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=glvq_loss())
    return model


def wrong_width_features(samples=4):
    return np.ones((samples, INPUT_DIM + 1), dtype="float32")


class FeatureBatches(keras.utils.PyDataset):
    """Batches of `width` features and one-hot targets; batch `fail_at` raises."""

    def __init__(self, width=INPUT_DIM, batches=3, fail_at=None):
        super().__init__()
        self.width = width
        self.batches = batches
        self.fail_at = fail_at

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        if index == self.fail_at:
            raise RuntimeError(f"batch {index} is broken")
        features = np.full((4, self.width), 0.1 * index, dtype="float32")
        targets = keras.utils.to_categorical(np.arange(4) % NUM_CLASSES, NUM_CLASSES)
        return features, targets


def assert_model_unharmed(model, features, expected_outputs, expected_weights):
    """The model still predicts, with the same weights and outputs as before."""
    for weight, expected in zip(model.get_weights(), expected_weights):
        np.testing.assert_array_equal(weight, expected)
    np.testing.assert_allclose(
        model.predict(features, verbose=0), expected_outputs, atol=1e-6
    )


@pytest.mark.parametrize(
    "model_class, options", INPUT_CHECK_MODELS, ids=INPUT_CHECK_IDS
)
def test_predict_with_wrong_width_raises_and_model_stays_usable(model_class, options):
    model = input_check_model(model_class, **options)
    features, _ = toy_data(samples=9)
    outputs = model.predict(features, verbose=0)
    weights = model.get_weights()
    with pytest.raises(ValueError, match=WRONG_WIDTH_MESSAGE):
        model.predict(wrong_width_features(), verbose=0)
    assert_model_unharmed(model, features, outputs, weights)


def test_every_entry_point_checks_the_width():
    model = compiled_glvq()
    features, labels = toy_data(samples=9)
    outputs = model.predict(features, verbose=0)
    weights = model.get_weights()
    wrong = wrong_width_features()
    targets = keras.utils.to_categorical(np.arange(4) % NUM_CLASSES, NUM_CLASSES)
    calls = {
        "predict(dict)": lambda: model.predict({"features": wrong}, verbose=0),
        "evaluate": lambda: model.evaluate(wrong, targets, verbose=0),
        "fit": lambda: model.fit(wrong, targets, epochs=1, verbose=0),
        "validation_data": lambda: model.fit(
            features[:3], targets[:3], validation_data=(wrong, targets), verbose=0
        ),
        "predict_on_batch": lambda: model.predict_on_batch(wrong),
        "test_on_batch": lambda: model.test_on_batch(wrong, targets),
        "train_on_batch": lambda: model.train_on_batch(wrong, targets),
        "call": lambda: model.call(wrong),
        "stateless_call": lambda: model.stateless_call(
            model.trainable_variables, model.non_trainable_variables, wrong
        ),
        "prototype_dissimilarities": lambda: model.prototype_dissimilarities(wrong),
        "pre_training": lambda: model.pre_training(
            np.ones((9, INPUT_DIM + 1), "float32"), labels, n_init=1
        ),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=WRONG_WIDTH_MESSAGE):
            call()
            pytest.fail(f"{name} accepted inputs of the wrong width")
        assert_model_unharmed(model, features, outputs, weights)
    # Keras's own check in `__call__` catches direct calls.
    with pytest.raises(ValueError):
        model(wrong)
    model.predict(features, verbose=0)


def test_wrong_width_in_a_data_set_raises_and_model_stays_usable():
    model = compiled_glvq()
    features, _ = toy_data(samples=9)
    outputs = model.predict(features, verbose=0)
    weights = model.get_weights()
    wrong = FeatureBatches(width=INPUT_DIM + 1)
    # Data sets are only seen batch by batch, in `call` (or, on TensorFlow and
    # PyTorch, by Keras's own check first).
    for run in (
        lambda: model.predict(wrong, verbose=0),
        lambda: model.evaluate(wrong, verbose=0),
        lambda: model.fit(wrong, epochs=1, shuffle=False, verbose=0),
    ):
        with pytest.raises(ValueError, match="features|inputs"):
            run()
        assert_model_unharmed(model, features, outputs, weights)


@pytest.mark.parametrize("fail_at", [0, 1])
def test_failed_predict_and_evaluate_leave_the_model_usable(fail_at):
    model = compiled_glvq()
    features, _ = toy_data(samples=9)
    outputs = model.predict(features, verbose=0)
    weights = model.get_weights()
    for run in (
        lambda: model.predict(FeatureBatches(fail_at=fail_at), verbose=0),
        lambda: model.evaluate(FeatureBatches(fail_at=fail_at), verbose=0),
    ):
        with pytest.raises(RuntimeError, match="broken"):
            run()
        assert_model_unharmed(model, features, outputs, weights)


@pytest.mark.parametrize("fail_at", [0, 1])
def test_failed_fit_leaves_the_model_usable(fail_at):
    model = compiled_glvq()
    features, _ = toy_data(samples=9)
    weights = model.get_weights()
    with pytest.raises(RuntimeError, match="broken"):
        model.fit(FeatureBatches(fail_at=fail_at), epochs=1, shuffle=False, verbose=0)
    if fail_at == 0:
        # No step finished: nothing changed.
        for weight, expected in zip(model.get_weights(), weights):
            np.testing.assert_array_equal(weight, expected)
    outputs = model.predict(features, verbose=0)
    assert np.all(np.isfinite(outputs))
    # The optimizer's state survived too: training goes on.
    model.fit(FeatureBatches(), epochs=1, verbose=0)
    assert np.all(np.isfinite(model.predict(features, verbose=0)))


def test_capsnet_checks_images_by_name_and_stays_usable():
    # A functional model, but Keras's own input check is skipped by JAX's
    # `predict`, and TensorFlow's `predict` ran two-channel images through
    # the one-channel model without an error.
    model = models.CapsNet(
        image_shape=(12, 12, 1),
        num_classes=3,
        conv_filters=8,
        conv_kernel_size=3,
        primary_capsule_channels=2,
        primary_capsule_dim=4,
        digit_capsule_dim=4,
        decoder_units=[16],
    )
    images = np.random.RandomState(0).uniform(size=(2, 12, 12, 1)).astype("float32")
    outputs = model.predict({"images": images, "labels": None}, verbose=0)
    with pytest.raises(
        ValueError,
        match=r"takes inputs\['images'\] of shape \(batch, 12, 12, 1\)\. "
        r"Received: inputs\['images'\]\.shape=\(2, 12, 12, 2\)",
    ):
        model.predict(
            {"images": np.ones((2, 12, 12, 2), "float32"), "labels": None}, verbose=0
        )
    again = model.predict({"images": images, "labels": None}, verbose=0)
    np.testing.assert_allclose(
        again["probabilities"], outputs["probabilities"], atol=1e-6
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="array data goes to fit as a tf.data.Dataset on TensorFlow only",
)
def test_tensorflow_fit_on_arrays_equals_keras_pipeline():
    from anysma.models import _base

    features, labels = toy_data(samples=50)
    targets = keras.utils.to_categorical(labels, NUM_CLASSES)
    weights = np.linspace(0.5, 1.5, len(features)).astype("float32")
    validation = (features[:7], targets[:7])
    common = {
        "batch_size": 8,
        "epochs": 3,
        "shuffle": False,
        "validation_split": 0.2,
        "verbose": 0,
    }
    for weighting in (
        {"class_weight": {0: 1.0, 1: 2.0, 2: 0.5}},
        {"sample_weight": weights},
    ):
        options = dict(common, **weighting)
        histories, trained = [], []
        for fit in (models.GMLVQ.fit, keras.Model.fit):
            model = models.GMLVQ(input_dim=INPUT_DIM, num_classes=NUM_CLASSES)
            model.pre_training(features, labels, n_init=1, random_state=0)
            model.compile(
                optimizer=keras.optimizers.Adam(0.05),
                loss=glvq_loss(),
                metrics=["accuracy"],
            )
            histories.append(fit(model, features, targets, **options).history)
            trained.append(model.get_weights())
        arguments = _base._bind(keras.Model.fit, None, features, targets, **options)
        assert _base._tf_dataset_applies(arguments)
        assert histories[0].keys() == histories[1].keys()
        for key in histories[0]:
            np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5)
        for ours, keras_weights in zip(*trained):
            np.testing.assert_allclose(ours, keras_weights, rtol=1e-5, atol=1e-6)
    model = models.GLVQ(input_dim=INPUT_DIM, num_classes=NUM_CLASSES)
    model.compile(optimizer="adam", loss=glvq_loss())
    with pytest.raises(ValueError, match="class_weight"):
        model.fit(
            features,
            targets,
            class_weight={0: 1.0, 1: 1.0, 2: 1.0},
            sample_weight=weights,
            verbose=0,
        )
    # validation_data (instead of the split) goes the same way.
    model = models.GLVQ(input_dim=INPUT_DIM, num_classes=NUM_CLASSES)
    model.compile(optimizer="adam", loss=glvq_loss(), metrics=["accuracy"])
    history = model.fit(
        features, targets, validation_data=validation, epochs=2, verbose=0
    ).history
    assert len(history["val_accuracy"]) == 2


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="JAX compiles the prediction step per batch shape",
)
def test_jax_predict_pads_the_last_batch_to_a_power_of_two():
    features, labels = toy_data(samples=60)
    model = models.GMLVQ(input_dim=INPUT_DIM, num_classes=NUM_CLASSES)
    model.pre_training(features, labels, n_init=1, random_state=0)
    traces = []
    predict_step = model.predict_step

    def counted_predict_step(*args, **kwargs):
        traces.append(1)  # runs while JAX traces the step, not per batch
        return predict_step(*args, **kwargs)

    model.predict_step = counted_predict_step
    # Batch 32: last batches of 18 and 28 rows run as 32, those of 5, 7 and
    # 8 rows as 8: two compiled steps instead of six.
    row_counts = (50, 60, 5, 7, 8)
    outputs = [model.predict(features[:rows], verbose=0) for rows in row_counts]
    assert len(traces) == 2
    expected = keras.Model.predict(model, features, batch_size=60, verbose=0)
    for rows, output in zip(row_counts, outputs):
        assert output.shape == (rows, NUM_CLASSES)
        np.testing.assert_allclose(output, expected[:rows], rtol=1e-5, atol=1e-6)
