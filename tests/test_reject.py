import functools

import keras
import numpy as np
import pytest

import anysma
from anysma import reject
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient
from anysma.testing.gradients import numeric_gradient

AUTODIFF_BACKENDS = ("jax", "torch", "tensorflow")
PROTOTYPE_LABELS = [0, 1, 1, 2, 0]

# === NumPy references, written from the definitions ===


def np_class_dissimilarities(d, labels):
    labels = np.asarray(labels)
    return np.stack(
        [d[..., labels == c].min(axis=-1) for c in range(labels.max() + 1)], -1
    )


def np_relative_similarity(d, labels):
    """(d- - d+) / (d- + d+), row by row, from the winner prototype."""
    labels = np.asarray(labels)
    flat = d.reshape(-1, d.shape[-1]).astype("float64")
    scores = []
    for row in flat:
        winner = np.argmin(row)
        d_plus = row[winner]
        d_minus = row[labels != labels[winner]].min()
        total = d_plus + d_minus
        scores.append(0.0 if total == 0 else (d_minus - d_plus) / total)
    return np.array(scores).reshape(d.shape[:-1])


def np_winner_distance(d):
    return d.min(axis=-1)


def np_posterior_confidence(log_posteriors):
    logits = np.asarray(log_posteriors, "float64")
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).max(axis=-1)


def np_curve(confidences, correct):
    """Accuracy and coverage at every distinct threshold, by brute force."""
    confidences = np.asarray(confidences, "float64")
    correct = np.asarray(correct, bool)
    thresholds = np.unique(confidences)
    coverage, accuracy = [], []
    for threshold in thresholds:
        accepted = confidences >= threshold
        coverage.append(accepted.mean())
        accuracy.append(correct[accepted].mean())
    return thresholds, np.array(coverage), np.array(accuracy)


def np_chow_threshold(confidences, correct, cost):
    """Brute force: the smallest threshold of minimal errors + cost * rejections."""
    confidences = np.asarray(confidences, "float64")
    correct = np.asarray(correct, bool)
    candidates = list(np.unique(confidences)) + [np.inf]
    costs = []
    for threshold in candidates:
        accepted = confidences >= threshold
        costs.append(np.sum(accepted & ~correct) + cost * np.sum(~accepted))
    costs = np.array(costs)
    return candidates[int(np.flatnonzero(np.isclose(costs, costs.min()))[0])]


def random_distances(shape, seed=0):
    """Distinct positive distances, at least 0.05 apart within every row."""
    random = np.random.RandomState(seed)
    rows = int(np.prod(shape[:-1]))
    values = [
        random.permutation(shape[-1]) * 0.3 + 0.2 + random.uniform(0, 0.05)
        for _ in range(rows)
    ]
    return np.array(values, "float32").reshape(shape)


def to_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


# === Scores of tensors ===


class ScoreFunctionsTest(TestCase):
    def test_class_dissimilarities_match_numpy(self):
        for shape in ((6, 5), (2, 3, 5)):
            distances = random_distances(shape, seed=1)
            self.assertAllClose(
                reject.class_dissimilarities(distances, PROTOTYPE_LABELS),
                np_class_dissimilarities(distances, PROTOTYPE_LABELS),
            )

    def test_relative_similarity_matches_numpy(self):
        for seed, shape in enumerate(((6, 5), (2, 3, 5))):
            distances = random_distances(shape, seed=seed)
            # Rows where the winner's class also holds the runner-up prototype.
            distances[0] = [0.5, 2.0, 3.0, 4.0, 0.6]
            scores = reject.relative_similarity(distances, PROTOTYPE_LABELS)
            self.assertEqual(tuple(scores.shape), shape[:-1])
            self.assertAllClose(
                scores, np_relative_similarity(distances, PROTOTYPE_LABELS), 1e-6
            )
            self.assertTrue(np.all((to_numpy(scores) >= 0) & (to_numpy(scores) <= 1)))

    def test_relative_similarity_special_values(self):
        distances = np.array(
            [
                [0.0, 0.0, 0.0, 0.0, 0.0],  # 0 / 0: defined as 0.
                [0.0, 1.0, 2.0, 3.0, 4.0],  # On a prototype: 1.
                [1.0, 1.0, 2.0, 3.0, 4.0],  # Tie of two classes: 0.
                [1.0, 3.0, 2.0, 3.0, 1.0],  # Tie within class 0: 1/3.
            ],
            "float32",
        )
        scores = reject.relative_similarity(distances, PROTOTYPE_LABELS)
        self.assertAllFinite(scores)
        self.assertAllClose(scores, [0.0, 1.0, 0.0, 1.0 / 3.0], 1e-6)

    def test_winner_distance_matches_numpy(self):
        distances = random_distances((2, 3, 5), seed=3)
        self.assertAllClose(
            reject.winner_distance(distances), np_winner_distance(distances)
        )

    def test_posterior_confidence_matches_numpy(self):
        random = np.random.RandomState(4)
        logits = random.normal(size=(6, 4)).astype("float32")
        log_posteriors = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        for values in (logits, log_posteriors):
            self.assertAllClose(
                reject.posterior_confidence(values),
                np_posterior_confidence(values),
                1e-6,
                1e-5,
            )
        # Normalized log-posteriors: exp of the largest one.
        self.assertAllClose(
            reject.posterior_confidence(log_posteriors),
            np.exp(log_posteriors.max(-1)),
            1e-6,
            1e-5,
        )

    def test_posterior_confidence_is_stable(self):
        extreme = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]], "float32")
        confidences = reject.posterior_confidence(extreme)
        self.assertAllFinite(confidences)
        self.assertAllClose(confidences, [1.0, 1.0 / 3.0], 1e-6)
        self.assertTrue(np.all(to_numpy(confidences) <= 1.0))

    def test_half_precision_keeps_the_dtype(self):
        distances = random_distances((4, 5), seed=5).astype("float16")
        for scores in (
            reject.relative_similarity(distances, PROTOTYPE_LABELS),
            reject.winner_distance(distances),
            reject.class_dissimilarities(distances, PROTOTYPE_LABELS),
            reject.posterior_confidence(-distances),
        ):
            self.assertEqual(keras.backend.standardize_dtype(scores.dtype), "float16")
        self.assertAllClose(
            reject.relative_similarity(distances, PROTOTYPE_LABELS),
            np_relative_similarity(distances.astype("float32"), PROTOTYPE_LABELS),
            2e-3,
            2e-3,
        )

    def test_symbolic_inputs(self):
        inputs = keras.Input((5,))
        self.assertEqual(
            tuple(reject.relative_similarity(inputs, PROTOTYPE_LABELS).shape),
            (None,),
        )
        self.assertEqual(
            tuple(reject.class_dissimilarities(inputs, PROTOTYPE_LABELS).shape),
            (None, 3),
        )

    def test_gradients_match_finite_differences(self):
        if keras.backend.backend() not in AUTODIFF_BACKENDS:
            self.skipTest("backend without autodiff")
        distances = random_distances((3, 5), seed=6).astype("float64")
        functions = {
            "relative_similarity": lambda t: reject.relative_similarity(
                t, PROTOTYPE_LABELS
            ),
            "winner_distance": reject.winner_distance,
            "posterior_confidence": lambda t: reject.posterior_confidence(-t),
            "class_dissimilarities": lambda t: reject.class_dissimilarities(
                t, PROTOTYPE_LABELS
            ),
        }
        for name, function in functions.items():
            autodiff = autodiff_gradient(function, distances, dtype="float32")
            self.assertAllClose(
                autodiff,
                numeric_gradient(function, distances, delta=1e-3, dtype="float32"),
                atol=2e-3,
                rtol=2e-2,
                msg=name,
            )
        # The relative similarity's gradient by hand, for the first row:
        # d/d(d+) = -2 d- / (d- + d+)^2 and d/d(d-) = 2 d+ / (d- + d+)^2.
        row = distances[0]
        winner = int(np.argmin(row))
        labels = np.asarray(PROTOTYPE_LABELS)
        others = np.flatnonzero(labels != labels[winner])
        runner_up = int(others[np.argmin(row[others])])
        total = row[winner] + row[runner_up]
        expected = np.zeros(5)
        expected[winner] = -2 * row[runner_up] / total**2
        expected[runner_up] = 2 * row[winner] / total**2
        gradient = autodiff_gradient(
            functions["relative_similarity"], distances, dtype="float32"
        )
        self.assertAllClose(gradient[0], expected, 1e-5, 1e-4)

    def test_gradient_is_finite_at_zero_distance(self):
        if keras.backend.backend() not in AUTODIFF_BACKENDS:
            self.skipTest("backend without autodiff")
        points = np.array(
            [
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 1.0, 2.0, 3.0, 4.0],
                [1.0, 1.0, 2.0, 3.0, 4.0],
            ],
            "float32",
        )
        functions = (
            lambda t: reject.relative_similarity(t, PROTOTYPE_LABELS),
            reject.winner_distance,
            lambda t: reject.posterior_confidence(-t),
        )
        for index, function in enumerate(functions):
            self.assertAllFinite(function(points), f"function {index}")
            gradient = autodiff_gradient(function, points)
            self.assertAllFinite(gradient, f"function {index}")
        # 0/0 is the constant 0 there: no gradient at all.
        gradient = autodiff_gradient(functions[0], points)
        self.assertAllClose(gradient[0], np.zeros(5))
        # On a prototype (d+ = 0): d score / d(d+) = -2 / d-, nothing else.
        self.assertAllClose(gradient[1], [-2.0, 0.0, 0.0, 0.0, 0.0], 1e-6)

    def test_argument_errors(self):
        distances = random_distances((4, 5))
        cases = [
            ([0, 1, 1, 3, 0], "classes \\[2\\] have none"),
            ([0, -1, 1, 2, 0], "non-negative ints"),
            ([0, True, 1, 2, 0], "non-negative ints"),
            ([], "non-empty list"),
            ("01120", "non-empty list"),
            ([0.0, 1.0, 1.0, 2.0, 0.0], "non-negative ints"),
            ([0, 1, 1, 2], "one value per prototype"),
        ]
        for labels, pattern in cases:
            for function in (reject.relative_similarity, reject.class_dissimilarities):
                with pytest.raises(ValueError, match=pattern):
                    function(distances, labels)
        with pytest.raises(ValueError, match="at least 2 classes"):
            reject.relative_similarity(distances, [0] * 5)
        with pytest.raises(ValueError, match="Received: shape=\\(\\)"):
            reject.winner_distance(np.float32(1.0))
        with pytest.raises(ValueError, match="log_posteriors"):
            reject.posterior_confidence(np.zeros((3, 0), "float32"))


# === Curves and thresholds from arrays ===


class CurveAndThresholdTest(TestCase):
    def test_curve_by_hand(self):
        curve = reject.accuracy_coverage_from_confidences(
            [0.2, 0.9, 0.5, 0.5, 0.7], [False, True, False, True, True]
        )
        self.assertAllClose(curve.thresholds, [0.2, 0.5, 0.7, 0.9])
        self.assertAllClose(curve.coverage, [1.0, 0.8, 0.4, 0.2])
        self.assertAllClose(curve.accuracy, [0.6, 0.75, 1.0, 1.0])
        thresholds, coverage, accuracy = curve
        self.assertIs(thresholds, curve.thresholds)

    def test_curve_matches_brute_force(self):
        random = np.random.RandomState(0)
        # Rounded confidences: many ties.
        confidences = np.round(random.uniform(size=200), 1)
        correct = random.uniform(size=200) < 0.3 + 0.6 * confidences
        curve = reject.accuracy_coverage_from_confidences(confidences, correct)
        thresholds, coverage, accuracy = np_curve(confidences, correct)
        self.assertAllClose(curve.thresholds, thresholds)
        self.assertAllClose(curve.coverage, coverage, 1e-12)
        self.assertAllClose(curve.accuracy, accuracy, 1e-12)
        self.assertTrue(np.all(np.diff(curve.coverage) < 0))
        # 0/1 numbers and tensors are accepted, too.
        again = reject.accuracy_coverage_from_confidences(
            keras.ops.convert_to_tensor(confidences.astype("float32")),
            correct.astype("int32"),
        )
        self.assertAllClose(again.coverage, coverage, 1e-12)

    def test_chow_rule_by_hand(self):
        confidences = [0.9, 0.7, 0.6, 0.4, 0.2]
        correct = [True, True, False, True, False]
        # Costs of the thresholds 0.2, 0.4, 0.6, 0.7, 0.9, inf with c = 0.4:
        # 2, 1.4, 1.8, 1.2, 1.6, 2.0 -> 0.7.
        self.assertEqual(
            reject.choose_threshold(confidences, correct, rejection_cost=0.4), 0.7
        )
        # A rejection almost as expensive as an error: only the least
        # confident sample (an error) is rejected; costs 2, 1.99, 2.98, ...
        self.assertEqual(
            reject.choose_threshold(confidences, correct, rejection_cost=0.99), 0.4
        )
        # Cheap rejections: reject the two errors' levels.
        self.assertEqual(
            reject.choose_threshold(confidences, correct, rejection_cost=0.1), 0.7
        )
        # Every prediction wrong: rejecting everything is best.
        self.assertEqual(
            reject.choose_threshold(confidences, [False] * 5, rejection_cost=0.5),
            np.inf,
        )
        # Every prediction right: reject nothing.
        self.assertEqual(
            reject.choose_threshold(confidences, [True] * 5, rejection_cost=0.01), 0.2
        )

    def test_chow_rule_matches_brute_force(self):
        random = np.random.RandomState(1)
        confidences = np.round(random.uniform(size=300), 2)
        correct = random.uniform(size=300) < confidences
        for cost in (0.05, 0.2, 0.5, 0.8):
            self.assertEqual(
                reject.choose_threshold(confidences, correct, rejection_cost=cost),
                np_chow_threshold(confidences, correct, cost),
                f"rejection_cost={cost}",
            )

    def test_target_coverage(self):
        confidences = [0.9, 0.7, 0.6, 0.4, 0.2]
        correct = [True] * 5
        for target, expected in (
            (1.0, 0.2),
            (0.8, 0.4),
            (0.7, 0.4),
            (0.6, 0.6),
            (0.2, 0.9),
            (0.01, 0.9),
        ):
            self.assertEqual(
                reject.choose_threshold(confidences, correct, target_coverage=target),
                expected,
                f"target_coverage={target}",
            )
        # Ties at the threshold are accepted together.
        self.assertEqual(
            reject.choose_threshold(
                [0.5, 0.5, 0.5, 0.1], correct[:4], target_coverage=0.5
            ),
            0.5,
        )
        # Against the brute-force curve: the largest threshold that reaches it.
        random = np.random.RandomState(2)
        confidences = np.round(random.uniform(size=100), 1)
        correct = random.uniform(size=100) < 0.5
        thresholds, coverage, _ = np_curve(confidences, correct)
        for target in (0.1, 0.33, 0.5, 0.7, 0.95):
            threshold = reject.choose_threshold(
                confidences, correct, target_coverage=target
            )
            self.assertEqual(threshold, thresholds[coverage >= target].max())
            self.assertGreaterEqual(np.mean(confidences >= threshold), target)

    def test_argument_errors(self):
        confidences, correct = [0.9, 0.5, 0.1], [True, False, True]
        with pytest.raises(ValueError, match="Exactly one"):
            reject.choose_threshold(confidences, correct)
        with pytest.raises(ValueError, match="Exactly one"):
            reject.choose_threshold(
                confidences, correct, rejection_cost=0.5, target_coverage=0.5
            )
        for cost in (0, 1, 1.5, -0.1, float("nan"), True, "0.5"):
            with pytest.raises(ValueError, match="`rejection_cost` must be"):
                reject.choose_threshold(confidences, correct, rejection_cost=cost)
        for target in (0, 1.01, float("nan")):
            with pytest.raises(ValueError, match="`target_coverage` must be"):
                reject.choose_threshold(confidences, correct, target_coverage=target)
        with pytest.raises(TypeError):
            reject.choose_threshold(confidences, correct, 0.5)
        functions = (
            reject.accuracy_coverage_from_confidences,
            functools.partial(reject.choose_threshold, rejection_cost=0.5),
        )
        cases = [
            ([0.9, float("nan"), 0.1], correct, "without NaN"),
            ([], [], "non-empty 1-D"),
            ([[0.9, 0.5, 0.1]], correct, "non-empty 1-D"),
            (confidences, [True, False], "one value per confidence"),
            (confidences, [1, 2, 0], "booleans or 0/1"),
            (["a", "b", "c"], correct, "real numbers"),
        ]
        for function in functions:
            for values, flags, pattern in cases:
                with pytest.raises(ValueError, match=pattern):
                    function(values, flags)


# === Models ===


def blobs(samples=240, seed=0):
    """Three overlapping Gaussian blobs in 2-D: no classifier is perfect."""
    random = np.random.RandomState(seed)
    labels = np.arange(samples) % 3
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.7]])
    features = centers[labels] + 0.75 * random.normal(size=(samples, 2))
    return features.astype("float32"), labels


MODEL_BUILDERS = {
    "GLVQ": lambda: anysma.models.GLVQ(2, 3),
    "GMLVQ": lambda: anysma.models.GMLVQ(2, 3),
    "LGMLVQ": lambda: anysma.models.LGMLVQ(2, 3),
    "GRLVQ": lambda: anysma.models.GRLVQ(2, 3),
    "GTLVQ": lambda: anysma.models.GTLVQ(2, 3, subspace_dim=1),
    "RTLVQ": lambda: anysma.models.RTLVQ(2, 3, subspace_dim=1),
    "RSLVQ": lambda: anysma.models.RSLVQ(2, 3, prototypes_per_class=2, beta=2.0),
}


@functools.cache
def trained_model(name):
    """A model of `name`, pre-trained by k-means and fitted for a few epochs."""
    keras.utils.set_random_seed(0)
    features, labels = blobs()
    model = MODEL_BUILDERS[name]()
    model.pre_training(features, labels, n_init=1, random_state=0)
    if name == "RSLVQ":
        loss, targets = (
            keras.losses.CategoricalCrossentropy(from_logits=True),
            keras.utils.to_categorical(labels, 3),
        )
    else:
        loss, targets = anysma.losses.GlvqLoss(), labels
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=loss)
    model.fit(features, targets, epochs=3, batch_size=48, verbose=0)
    return model


def predictions_of(model, features):
    return np.argmax(model.predict(features, verbose=0), axis=-1)


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize("name", ["GLVQ", "GMLVQ", "RSLVQ"])
def test_rejecting_raises_the_accuracy_of_trained_models(name):
    model = trained_model(name)
    features, labels = blobs(seed=1)  # Test data.
    predictions = predictions_of(model, features)
    accuracy = np.mean(predictions == labels)
    assert 0.6 < accuracy < 1.0, accuracy

    scores = ["relative_similarity", "winner_distance"]
    if name == "RSLVQ":
        scores.append("posterior")
    for score in scores:
        found, confidences = reject.predict_with_confidence(
            model, features, score=score
        )
        np.testing.assert_array_equal(found, predictions)
        assert found.dtype == np.int64
        threshold = np.quantile(confidences, 0.5)
        rejected = reject.predict_with_rejection(
            model, features, threshold, score=score
        )
        accepted = rejected != -1
        assert 0.3 < accepted.mean() <= 0.6, (score, accepted.mean())
        np.testing.assert_array_equal(accepted, confidences >= threshold)
        np.testing.assert_array_equal(rejected[accepted], predictions[accepted])
        if score != "winner_distance":  # Outliers are not the border samples.
            accepted_accuracy = np.mean(rejected[accepted] == labels[accepted])
            # The default scores gain about 0.1 here, the others less.
            default = score == ("posterior" if name == "RSLVQ" else scores[0])
            margin = 0.05 if default else 0.0
            assert accepted_accuracy > accuracy + margin, (score, accepted_accuracy)

        curve = reject.accuracy_coverage_curve(model, features, labels, score=score)
        assert np.all(np.diff(curve.coverage) < 0)
        assert curve.coverage[0] == 1.0
        np.testing.assert_allclose(curve.accuracy[0], accuracy)
        np.testing.assert_allclose(curve.thresholds[0], confidences.min(), rtol=1e-6)
        # One-hot labels give the same curve.
        one_hot = reject.accuracy_coverage_curve(
            model, features, keras.utils.to_categorical(labels, 3), score=score
        )
        np.testing.assert_array_equal(one_hot.accuracy, curve.accuracy)


@pytest.mark.requires_trainable_backend
def test_scores_of_a_glvq_model_match_numpy():
    model = trained_model("GLVQ")
    features, _ = blobs(seed=2)
    distances = model.prototype_dissimilarities(features)
    labels = model.prototype_labels
    # The default score of the GLVQ family is the relative similarity.
    np.testing.assert_allclose(
        reject.confidence(model, features),
        np_relative_similarity(distances, labels),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        reject.confidence(model, features, score="winner_distance"),
        -np_winner_distance(distances),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        reject.confidence(model, features, score="relative_similarity", batch_size=7),
        np_relative_similarity(distances, labels),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.requires_trainable_backend
def test_rslvq_defaults_to_the_posterior():
    model = trained_model("RSLVQ")
    features, _ = blobs(seed=2)
    log_posteriors = model.predict(features, verbose=0)
    expected = np_posterior_confidence(log_posteriors)
    confidences = reject.confidence(model, features)
    np.testing.assert_allclose(confidences, expected, rtol=1e-5)
    np.testing.assert_allclose(
        confidences, np.exp(log_posteriors).max(axis=-1), rtol=1e-5
    )
    assert np.all((confidences > 1.0 / 3.0 - 1e-6) & (confidences <= 1.0))
    np.testing.assert_allclose(
        reject.confidence(model, features, score="relative_similarity"),
        np_relative_similarity(
            model.prototype_dissimilarities(features), model.prototype_labels
        ),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.requires_trainable_backend
def test_reject_label_and_extreme_thresholds():
    model = trained_model("GLVQ")
    features, _ = blobs(samples=30, seed=3)
    labels, confidences = reject.predict_with_confidence(model, features)
    threshold = float(np.sort(confidences)[10])
    result = reject.predict_with_rejection(model, features, threshold, reject_label=99)
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result == 99, confidences < threshold)
    assert np.sum(result == 99) == 10
    np.testing.assert_array_equal(result[result != 99], labels[result != 99])
    everything = reject.predict_with_rejection(model, features, -np.inf)
    np.testing.assert_array_equal(everything, labels)
    nothing = reject.predict_with_rejection(model, features, np.inf)
    np.testing.assert_array_equal(nothing, np.full(30, -1))
    # A threshold from choose_threshold accepts what it promises.
    chosen = reject.choose_threshold(confidences, labels == 0, target_coverage=0.5)
    accepted = reject.predict_with_rejection(model, features, chosen) != -1
    assert accepted.mean() >= 0.5


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_every_lvq_model(name):
    keras.utils.set_random_seed(0)
    features, labels = blobs(samples=60)
    model = MODEL_BUILDERS[name]()
    model.pre_training(features, labels, n_init=1, random_state=0)
    predictions = predictions_of(model, features)
    found, confidences = reject.predict_with_confidence(model, features)
    np.testing.assert_array_equal(found, predictions)
    assert confidences.shape == (60,)
    assert np.all((confidences >= 0) & (confidences <= 1)), name
    expected = (
        np_posterior_confidence(model.predict(features, verbose=0))
        if name == "RSLVQ"
        else np_relative_similarity(
            model.prototype_dissimilarities(features), model.prototype_labels
        )
    )
    np.testing.assert_allclose(confidences, expected, rtol=1e-5, atol=1e-6)
    distances = reject.confidence(model, features, score="winner_distance")
    np.testing.assert_allclose(
        distances,
        -model.prototype_dissimilarities(features).min(axis=-1),
        rtol=1e-6,
    )


@pytest.mark.requires_trainable_backend
def test_model_argument_errors():
    model = trained_model("GLVQ")
    features, labels = blobs(samples=12)
    with pytest.raises(TypeError, match="must be an LVQ model"):
        reject.confidence(object(), features)
    with pytest.raises(TypeError, match="accuracy_coverage_from_confidences"):
        reject.accuracy_coverage_curve(np.ones(12), features, labels)
    with pytest.raises(ValueError, match="`score` must be one of"):
        reject.confidence(model, features, score="margin")
    with pytest.raises(ValueError, match="'posterior' needs a model"):
        reject.confidence(model, features, score="posterior")
    for label in (0, 2):
        with pytest.raises(ValueError, match="`reject_label` must not be a class"):
            reject.predict_with_rejection(model, features, 0.5, reject_label=label)
    with pytest.raises(ValueError, match="`reject_label` must be an int"):
        reject.predict_with_rejection(model, features, 0.5, reject_label=-1.0)
    for threshold in (float("nan"), None, "0.5"):
        with pytest.raises(ValueError, match="`threshold` must be"):
            reject.predict_with_rejection(model, features, threshold)
    with pytest.raises(ValueError, match="`y` must be 12"):
        reject.accuracy_coverage_curve(model, features, labels[:5])
    with pytest.raises(ValueError, match="`y` must be 12"):
        reject.accuracy_coverage_curve(model, features, labels - 1)
    with pytest.raises(ValueError, match="takes inputs of shape"):
        reject.confidence(model, np.ones((4, 3), "float32"))


def test_public_namespace():
    assert anysma.reject is reject
    assert "reject" in anysma.__all__
    for name in (
        "class_dissimilarities",
        "relative_similarity",
        "winner_distance",
        "posterior_confidence",
        "confidence",
        "predict_with_confidence",
        "predict_with_rejection",
        "accuracy_coverage_curve",
        "accuracy_coverage_from_confidences",
        "choose_threshold",
    ):
        assert callable(getattr(reject, name)), name
    assert reject.SCORES == ("relative_similarity", "winner_distance", "posterior")
