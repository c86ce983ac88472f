"""The reject option and robustness certificates of the scikit-learn estimators.

`to_keras_model`, `confidence`, `predict_with_rejection` and
`certified_radius` of the estimators, and the functions of `anysma.reject`
and `anysma.robustness` called with a fitted estimator.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError

from anysma import reject
from anysma import robustness
from anysma.sklearn import GLVQClassifier
from anysma.sklearn import GMLVQClassifier
from anysma.sklearn import GRLVQClassifier
from anysma.sklearn import GTLVQClassifier
from anysma.sklearn import LGMLVQClassifier
from anysma.sklearn import RSLVQClassifier

pytestmark = [
    pytest.mark.requires_trainable_backend,
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

ESTIMATORS = {
    "GLVQ": GLVQClassifier,
    "GMLVQ": GMLVQClassifier,
    "GRLVQ": GRLVQClassifier,
    "LGMLVQ": LGMLVQClassifier,
    "GTLVQ": GTLVQClassifier,
    "RSLVQ": RSLVQClassifier,
}
NAMES = list(ESTIMATORS)
GLVQ_FAMILY = [name for name in NAMES if name != "RSLVQ"]
# GMLVQ learns string labels; the others integers that are not 0, 1, 2.
STRING_LABELS = np.array(["alpha", "beta", "gamma"])
INTEGER_LABELS = np.array([3, 5, 8])


def make(name, **kwargs):
    return ESTIMATORS[name](
        random_state=0, prototypes_per_class=[1, 2, 1], max_iter=30, **kwargs
    )


def overlapping_blobs(seed=0, samples=150):
    x, y = make_blobs(
        samples, n_features=4, centers=3, cluster_std=2.5, random_state=seed
    )
    return x, y


@pytest.fixture(scope="module")
def data():
    x, y = overlapping_blobs()
    return x, y


@pytest.fixture(scope="module")
def fitted(data):
    x, y = data
    estimators = {}
    for name in NAMES:
        labels = STRING_LABELS if name == "GMLVQ" else INTEGER_LABELS
        estimators[name] = make(name).fit(x, labels[y])
    return estimators


def labels_of(estimator, y):
    labels = STRING_LABELS if estimator.classes_.dtype.kind == "U" else INTEGER_LABELS
    return labels[y]


def estimator_scores(estimator, x):
    """The estimator's own distances (log-posteriors for RSLVQ)."""
    return estimator._program_scores(x)


# === to_keras_model ===


@pytest.mark.parametrize("name", NAMES)
def test_keras_model_computes_the_estimators_scores(fitted, data, name):
    estimator = fitted[name]
    x = data[0]
    model = estimator.to_keras_model()
    assert type(model).__name__ == name
    inputs = x.astype("float32")
    if name == "RSLVQ":
        scores = model.predict(inputs, verbose=0)
    else:
        scores = model.prototype_dissimilarities(inputs)
    np.testing.assert_allclose(
        scores, estimator_scores(estimator, x), rtol=1e-4, atol=1e-4
    )
    predictions = estimator.classes_[np.argmax(model.predict(inputs, verbose=0), -1)]
    np.testing.assert_array_equal(predictions, estimator.predict(x))
    assert model.prototype_labels == estimator._prototype_labels.tolist()


def test_keras_model_is_new_and_independent(fitted, data):
    estimator = fitted["GMLVQ"]
    x = data[0]
    before = estimator.predict_proba(x)
    model = estimator.to_keras_model()
    assert model is not estimator.to_keras_model()
    assert model is not estimator._program().model
    prototypes = model.measuring_module.prototypes
    prototypes.assign(np.zeros(tuple(prototypes.shape), "float32"))
    np.testing.assert_array_equal(estimator.predict_proba(x), before)
    assert not np.allclose(
        estimator.to_keras_model().prototype_dissimilarities(x.astype("float32")),
        model.prototype_dissimilarities(x.astype("float32")),
    )


# === Reject option ===


@pytest.mark.parametrize("name", NAMES)
def test_predict_with_rejection_agrees_with_predict(fitted, data, name):
    estimator = fitted[name]
    x = data[0]
    confidences = estimator.confidence(x)
    assert confidences.shape == (x.shape[0],)
    threshold = float(np.quantile(confidences, 0.3))
    labels = estimator.predict_with_rejection(x, threshold)
    accepted = confidences >= threshold
    assert 0 < accepted.sum() < x.shape[0]
    np.testing.assert_array_equal(labels[accepted], estimator.predict(x)[accepted])
    marker = "reject" if name == "GMLVQ" else -1
    assert np.all(labels[~accepted] == marker)
    assert not np.any(np.isin(labels[accepted], [marker]))
    expected_kind = "U" if name == "GMLVQ" else "i"
    assert labels.dtype.kind == expected_kind


def test_confidence_scores(fitted, data):
    estimator = fitted["GLVQ"]
    x = data[0]
    similarity = estimator.confidence(x)
    assert np.all((similarity >= 0) & (similarity <= 1))
    winner = estimator.confidence(x, score="winner_distance")
    distances = estimator_scores(estimator, x)
    np.testing.assert_allclose(-winner, distances.min(axis=1), rtol=1e-4, atol=1e-4)
    posterior = fitted["RSLVQ"].confidence(x)
    np.testing.assert_allclose(
        posterior, fitted["RSLVQ"].predict_proba(x).max(axis=1), rtol=1e-4
    )
    with pytest.raises(ValueError, match="posterior"):
        estimator.confidence(x, score="posterior")


def test_rejection_raises_the_accuracy_on_overlapping_data(fitted, data):
    estimator = fitted["GLVQ"]
    x, y = data
    truth = labels_of(estimator, y)
    plain = np.mean(estimator.predict(x) == truth)
    assert plain < 0.98  # the classes overlap
    confidences = estimator.confidence(x)
    labels = estimator.predict_with_rejection(x, np.quantile(confidences, 0.5))
    accepted = labels != -1
    assert np.mean(labels[accepted] == truth[accepted]) > plain


def test_reject_labels(fitted, data):
    x = data[0][:20]
    integers, strings = fitted["GLVQ"], fitted["GMLVQ"]
    labels = integers.predict_with_rejection(x, np.inf, reject_label=-7)
    assert labels.dtype.kind == "i" and np.all(labels == -7)
    labels = strings.predict_with_rejection(x, np.inf, reject_label="unsure")
    assert np.all(labels == "unsure")
    labels = strings.predict_with_rejection(x, np.inf, reject_label="a-longer-marker")
    assert np.all(labels == "a-longer-marker")
    labels = integers.predict_with_rejection(x, np.inf, reject_label="unsure")
    assert np.all(labels == "unsure")
    with pytest.raises(ValueError, match="reject_label"):
        integers.predict_with_rejection(x, 0.5, reject_label=5)
    with pytest.raises(ValueError, match="reject_label"):
        strings.predict_with_rejection(x, 0.5, reject_label="beta")
    with pytest.raises(ValueError, match="threshold"):
        integers.predict_with_rejection(x, float("nan"))


# === Certified radius ===


@pytest.mark.parametrize("name", GLVQ_FAMILY)
def test_certified_radius_matches_the_keras_model(fitted, data, name):
    estimator = fitted[name]
    x = data[0]
    for norm in (2, np.inf):
        radii = estimator.certified_radius(x, norm=norm)
        expected = robustness.certified_radius(estimator.to_keras_model(), x, norm)
        np.testing.assert_allclose(radii, expected, rtol=1e-6)
        assert radii.shape == (x.shape[0],) and np.all(radii >= 0)
        assert np.any(radii > 0)


def test_rslvq_has_no_certified_radius(fitted, data):
    x = data[0]
    with pytest.raises(ValueError, match="nearest prototype"):
        fitted["RSLVQ"].certified_radius(x)
    with pytest.raises(ValueError, match="RSLVQ"):
        robustness.certified_radius(fitted["RSLVQ"], x)


# === The functions of `reject` and `robustness` take estimators ===


@pytest.mark.parametrize("name", ["GMLVQ", "RSLVQ"])
def test_reject_functions_accept_estimators(fitted, data, name):
    estimator = fitted[name]
    x, y = data
    truth = labels_of(estimator, y)
    model = estimator.to_keras_model()
    np.testing.assert_array_equal(
        reject.confidence(estimator, x), reject.confidence(model, x)
    )
    np.testing.assert_array_equal(
        reject.confidence(estimator, x), estimator.confidence(x)
    )
    threshold = float(np.median(estimator.confidence(x)))
    indices = reject.predict_with_rejection(estimator, x, threshold)
    np.testing.assert_array_equal(
        indices, reject.predict_with_rejection(model, x, threshold)
    )
    labels = estimator.predict_with_rejection(x, threshold, reject_label=-1)
    accepted = indices >= 0
    np.testing.assert_array_equal(
        estimator.classes_[indices[accepted]], labels[accepted]
    )
    curve = reject.accuracy_coverage_curve(estimator, x, truth)
    expected = reject.accuracy_coverage_curve(
        model, x, np.searchsorted(estimator.classes_, truth)
    )
    for got, want in zip(curve, expected):
        np.testing.assert_array_equal(got, want)
    assert curve.accuracy[0] == pytest.approx(estimator.score(x, truth))
    with pytest.raises(ValueError, match="classes_"):
        reject.accuracy_coverage_curve(estimator, x, np.full(len(x), "nope"))


def test_robustness_functions_accept_estimators(fitted, data):
    estimator = fitted["GMLVQ"]
    x, y = data
    truth = labels_of(estimator, y)
    model = estimator.to_keras_model()
    indices = np.searchsorted(estimator.classes_, truth)
    np.testing.assert_array_equal(
        robustness.certified_radius(estimator, x),
        robustness.certified_radius(model, x),
    )
    epsilon = [0.0, 0.2, 0.5]
    np.testing.assert_array_equal(
        robustness.certified_accuracy(estimator, x, truth, epsilon),
        robustness.certified_accuracy(model, x, indices, epsilon),
    )
    np.testing.assert_allclose(
        robustness.exact_euclidean_margin(estimator, x),
        robustness.exact_euclidean_margin(model, x),
    )
    few = slice(0, 20)
    result = robustness.attack(estimator, x[few], truth[few], 0.3, steps=5)
    expected = robustness.attack(model, x[few], indices[few], 0.3, steps=5)
    np.testing.assert_allclose(result.adversarial, expected.adversarial, atol=1e-6)
    np.testing.assert_array_equal(result.success, expected.success)
    assert robustness.empirical_robust_accuracy(
        estimator, x[few], truth[few], 0.3, steps=5
    ) == robustness.empirical_robust_accuracy(model, x[few], indices[few], 0.3, steps=5)


# === Caching, refitting, pickling, clone ===


def test_refit_invalidates_the_cached_model(data):
    x, y = data
    estimator = make("GLVQ").fit(x, y)
    first = estimator.certified_radius(x)
    cached = estimator._keras_model()
    assert estimator._keras_model() is cached  # cached between calls
    other_x, other_y = overlapping_blobs(seed=1)
    estimator.fit(other_x, other_y)
    second = estimator.certified_radius(x)
    assert estimator._keras_model() is not cached
    assert not np.allclose(first, second)
    np.testing.assert_allclose(
        second, robustness.certified_radius(estimator.to_keras_model(), x)
    )


def test_partial_fit_invalidates_the_cached_model(data):
    x, y = data
    estimator = make("GLVQ", solver="adam", learning_rate=0.1)
    estimator.partial_fit(x, y, classes=np.unique(y))
    first = estimator.confidence(x)
    estimator.partial_fit(x, y)
    second = estimator.confidence(x)
    assert not np.allclose(first, second)
    np.testing.assert_allclose(
        second, reject.confidence(estimator.to_keras_model(), x), rtol=1e-6
    )


@pytest.mark.parametrize("name", ["GTLVQ", "RSLVQ"])
def test_pickle_and_clone_after_the_trust_methods(fitted, data, name):
    x = data[0]
    estimator = fitted[name]
    confidences = estimator.confidence(x)
    labels = estimator.predict_with_rejection(x, 0.5)
    assert "_keras_model_cache" in vars(estimator)
    assert "_keras_model_cache" not in estimator.__getstate__()
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_allclose(restored.confidence(x), confidences, rtol=1e-6)
    np.testing.assert_array_equal(restored.predict_with_rejection(x, 0.5), labels)
    if name != "RSLVQ":
        np.testing.assert_allclose(
            restored.certified_radius(x), estimator.certified_radius(x), rtol=1e-6
        )
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()
    assert "_keras_model_cache" not in vars(copy)


@pytest.mark.parametrize("name", NAMES)
def test_not_fitted(data, name):
    x = data[0]
    estimator = make(name)
    with pytest.raises(NotFittedError):
        estimator.to_keras_model()
    with pytest.raises(NotFittedError):
        estimator.confidence(x)
    with pytest.raises(NotFittedError):
        estimator.predict_with_rejection(x, 0.5)
    with pytest.raises(NotFittedError):
        estimator.certified_radius(x)
    with pytest.raises(NotFittedError):
        reject.confidence(estimator, x)
    with pytest.raises(NotFittedError):
        robustness.certified_radius(estimator, x)


def test_feature_count_is_checked(fitted, data):
    x = data[0]
    with pytest.raises(ValueError, match="features"):
        fitted["GLVQ"].confidence(x[:, :3])
    with pytest.raises(ValueError, match="features"):
        reject.confidence(fitted["GLVQ"], x[:, :3])
