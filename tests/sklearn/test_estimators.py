"""Behaviour of the LVQ estimators, checked against NumPy references."""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import special
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from anysma.sklearn import GLVQClassifier
from anysma.sklearn import GMLVQClassifier
from anysma.sklearn import GRLVQClassifier
from anysma.sklearn import GTLVQClassifier
from anysma.sklearn import LGMLVQClassifier
from anysma.sklearn import RSLVQClassifier

pytestmark = [
    pytest.mark.requires_trainable_backend,
    # Short fits keep the tests fast; `test_convergence_warning` checks it.
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
# Two prototypes for the middle class exercise the class-wise competition.
DISTRIBUTION = [1, 2, 1]


def make(name, **kwargs):
    return ESTIMATORS[name](random_state=0, **kwargs)


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(x), y


@pytest.fixture(scope="module")
def fitted(iris):
    x, y = iris
    return {
        name: make(name, prototypes_per_class=DISTRIBUTION, max_iter=50).fit(x, y)
        for name in NAMES
    }


# === NumPy references ===


def reference_distances(estimator, x):
    """Distances of `x` to every prototype, from the learned attributes."""
    name = type(estimator).__name__
    prototypes = estimator.prototypes_
    differences = x[:, None, :] - prototypes[None, :, :]
    if name == "GMLVQClassifier":
        return np.einsum("npi,ij,npj->np", differences, estimator.lambda_, differences)
    if name == "GRLVQClassifier":
        return np.sum(estimator.relevances_ * differences**2, axis=-1)
    if name == "LGMLVQClassifier":
        return np.einsum("npi,pij,npj->np", differences, estimator.lambda_, differences)
    if name == "GTLVQClassifier":
        coordinates = np.einsum("pri,npi->npr", estimator.subspaces_, differences)
        return np.sum(differences**2, axis=-1) - np.sum(coordinates**2, axis=-1)
    return np.sum(differences**2, axis=-1)


def reference_class_scores(estimator, x):
    """`-d_c` (GLVQ family) or the log-posteriors (RSLVQ), per class."""
    distances = reference_distances(estimator, x)
    labels = estimator.prototype_labels_
    if isinstance(estimator, RSLVQClassifier):
        logits = -estimator.beta * distances
        class_logits = np.stack(
            [
                special.logsumexp(logits[:, labels == label], axis=1)
                for label in estimator.classes_
            ],
            axis=1,
        )
        return class_logits - special.logsumexp(logits, axis=1, keepdims=True)
    return -np.stack(
        [distances[:, labels == c].min(axis=1) for c in estimator.classes_], axis=1
    )


# === Predictions ===


@pytest.mark.parametrize("name", NAMES)
def test_decision_function_matches_numpy_reference(fitted, iris, name):
    estimator = fitted[name]
    x, _ = iris
    expected = reference_class_scores(estimator, x)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        estimator.decision_function(x), expected, rtol=1e-4, atol=1e-5 * scale
    )
    np.testing.assert_array_equal(
        estimator.predict(x), estimator.classes_[np.argmax(expected, axis=1)]
    )


@pytest.mark.parametrize("name", NAMES)
def test_predict_proba_is_a_soft_min_over_class_scores(fitted, iris, name):
    estimator = fitted[name]
    x, y = iris
    probabilities = estimator.predict_proba(x)
    scores = reference_class_scores(estimator, x)
    temperature = getattr(estimator, "temperature_", 1.0)
    np.testing.assert_allclose(
        probabilities, special.softmax(scores / temperature, axis=1), atol=1e-4
    )
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(
        estimator.classes_[np.argmax(probabilities, axis=1)], estimator.predict(x)
    )
    np.testing.assert_allclose(
        np.exp(estimator.predict_log_proba(x)), probabilities, rtol=1e-9, atol=1e-12
    )
    assert estimator.score(x, y) > 0.9


def test_temperature_maximizes_the_training_likelihood(fitted, iris):
    estimator = fitted["GLVQ"]
    x, y = iris
    scores = reference_class_scores(estimator, x)

    def log_likelihood(temperature):
        log_p = special.log_softmax(scores / temperature, axis=1)
        return log_p[np.arange(len(y)), y].sum()

    best = log_likelihood(estimator.temperature_)
    for factor in (0.8, 1.25):
        assert best >= log_likelihood(factor * estimator.temperature_)


@pytest.mark.parametrize("name", ["GLVQ", "GMLVQ", "RSLVQ"])
def test_binary_problem_with_string_labels(iris, name):
    x, y = iris
    keep = y > 0
    labels = np.array(["versicolor", "virginica"])[y[keep] - 1]
    estimator = make(name, max_iter=30).fit(x[keep], labels)
    decision = estimator.decision_function(x[keep])
    assert decision.shape == (keep.sum(),)
    np.testing.assert_array_equal(
        estimator.predict(x[keep]), estimator.classes_[(decision > 0).astype(int)]
    )
    scores = reference_class_scores(estimator, x[keep])
    np.testing.assert_allclose(
        decision, scores[:, 1] - scores[:, 0], rtol=1e-4, atol=1e-4
    )
    assert estimator.score(x[keep], labels) > 0.85


@pytest.mark.parametrize("name", ["GLVQ", "RSLVQ"])
def test_non_contiguous_labels_and_five_classes(name):
    x, y = make_blobs(n_samples=150, centers=5, cluster_std=0.6, random_state=1)
    labels = np.array([-3, 4, 10, 42, 7])[y]
    estimator = make(name, prototypes_per_class=2).fit(x, labels)
    np.testing.assert_array_equal(estimator.classes_, [-3, 4, 7, 10, 42])
    np.testing.assert_array_equal(
        estimator.prototype_labels_, np.repeat([-3, 4, 7, 10, 42], 2)
    )
    assert set(estimator.predict(x)) <= set(labels.tolist())
    assert estimator.score(x, labels) > 0.95


# === Learned attributes ===


def test_matrix_attributes(fitted, iris):
    x, _ = iris
    gmlvq = fitted["GMLVQ"]
    assert gmlvq.omega_.shape == (4, 4)
    np.testing.assert_allclose(gmlvq.lambda_, gmlvq.omega_.T @ gmlvq.omega_)
    np.testing.assert_allclose(np.trace(gmlvq.lambda_), 1.0, rtol=1e-5)

    lgmlvq = fitted["LGMLVQ"]
    assert lgmlvq.lambda_.shape == (4, 4, 4)
    np.testing.assert_allclose(
        np.trace(lgmlvq.lambda_, axis1=1, axis2=2), np.ones(4), rtol=1e-5
    )

    grlvq = fitted["GRLVQ"]
    assert np.all(grlvq.relevances_ >= 0)
    np.testing.assert_allclose(grlvq.relevances_.sum(), 1.0, rtol=1e-5)

    gtlvq = fitted["GTLVQ"]
    assert gtlvq.subspaces_.shape == (4, 2, 4)
    gram = np.einsum("pri,psi->prs", gtlvq.subspaces_, gtlvq.subspaces_)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(2), gram.shape), atol=1e-5)
    for estimator in fitted.values():
        assert estimator.prototypes_.shape == (4, 4)
        np.testing.assert_array_equal(estimator.prototype_labels_, [0, 1, 1, 2])
        assert estimator.n_features_in_ == 4
        assert estimator.n_iter_ >= 1
        assert len(estimator.loss_curve_) >= 1


def test_class_localized_matrices(iris):
    x, y = iris
    estimator = make(
        "LGMLVQ", localization="class", n_components=2, prototypes_per_class=2
    ).fit(x, y)
    assert estimator.omega_.shape == (3, 2, 4)
    assert estimator.lambda_.shape == (3, 4, 4)
    np.testing.assert_allclose(
        estimator.decision_function(x),
        class_scope_reference_scores(estimator, x),
        rtol=1e-4,
        atol=1e-4,
    )


def class_scope_reference_scores(estimator, x):
    """`-d_c` when every class's matrix serves all prototypes of the class."""
    labels = np.searchsorted(estimator.classes_, estimator.prototype_labels_)
    differences = x[:, None, :] - estimator.prototypes_[None]
    matrices = estimator.lambda_[labels]
    distances = np.einsum("npi,pij,npj->np", differences, matrices, differences)
    return -np.stack(
        [distances[:, labels == c].min(axis=1) for c in range(len(estimator.classes_))],
        axis=1,
    )


def two_relevant_features(samples=300, seed=0):
    """Classes that differ in features 0 and 1 only; 8 noise features."""
    random = np.random.RandomState(seed)
    labels = random.randint(0, 2, samples)
    x = random.normal(size=(samples, 10))
    x[:, 0] += 2.0 * labels
    x[:, 1] -= 2.0 * labels
    return StandardScaler().fit_transform(x), labels


def test_gmlvq_relevance_matrix_finds_the_relevant_features():
    x, y = two_relevant_features()
    estimator = make("GMLVQ").fit(x, y)
    diagonal = np.diag(estimator.lambda_)
    assert diagonal[:2].sum() > 0.9 * np.trace(estimator.lambda_)


def test_grlvq_relevances_find_the_relevant_features():
    x, y = two_relevant_features()
    relevances = make("GRLVQ").fit(x, y).relevances_
    assert relevances[:2].sum() > 0.8
    assert set(np.argsort(relevances)[-2:]) == {0, 1}


def test_relevance_regularization_keeps_more_directions():
    x, y = two_relevant_features()
    plain = make("GMLVQ").fit(x, y)
    regularized = make("GMLVQ", relevance_regularization=0.05).fit(x, y)
    assert np.sort(regularized.eigenvalues_)[0] > 10 * max(
        np.sort(plain.eigenvalues_)[0], 1e-6
    )


@pytest.mark.parametrize("name", ["GMLVQ", "GRLVQ"])
def test_transform_preserves_the_learned_distances(fitted, iris, name):
    estimator = fitted[name]
    x, _ = iris
    transformed = estimator.transform(x[:10])
    projected_prototypes = estimator.transform(estimator.prototypes_)
    distances = np.sum(
        (transformed[:, None, :] - projected_prototypes[None]) ** 2, axis=-1
    )
    np.testing.assert_allclose(
        distances, reference_distances(estimator, x[:10]), rtol=1e-6, atol=1e-9
    )
    assert np.all(np.diff(estimator.eigenvalues_) <= 0)
    names = estimator.get_feature_names_out()
    assert len(names) == transformed.shape[1]
    assert names[0] == f"{type(estimator).__name__.lower()}0"


def test_limited_rank_transform(iris):
    x, y = iris
    estimator = make("GMLVQ", n_components=2).fit(x, y)
    assert estimator.omega_.shape == (2, 4)
    assert np.linalg.matrix_rank(estimator.lambda_, tol=1e-6) == 2
    assert estimator.fit_transform(x, y).shape == (150, 2)
    assert estimator.score(x, y) > 0.9


# === Training ===


@pytest.mark.parametrize("name", NAMES)
def test_sample_weight_equals_repeating_samples(iris, name):
    x, y = iris
    rows = np.arange(0, 150, 3)
    weights = np.random.RandomState(0).randint(0, 3, rows.size).astype(float)
    weights[:3] = 1.0  # every class keeps some weight
    # Same initialization and same loss, so the two fits take the same steps.
    # The comparison stays within the first iterations: this subset is
    # separable, RSLVQ's loss goes to zero, and long fits can stop at
    # different separating solutions once their rounding differs (measured:
    # 20 against 14 iterations, 0.973 of the predictions equal).
    weighted = make(name, max_iter=10).fit(x[rows], y[rows], sample_weight=weights)
    repeat = weights.astype(int)
    repeated = make(name, max_iter=10).fit(
        np.repeat(x[rows], repeat, axis=0), np.repeat(y[rows], repeat)
    )
    assert len(weighted.loss_curve_) == len(repeated.loss_curve_)
    np.testing.assert_allclose(
        weighted.loss_curve_, repeated.loss_curve_, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_array_equal(weighted.predict(x), repeated.predict(x))


def test_sample_weight_changes_the_fit(iris):
    x, y = iris
    keep = y > 0
    x, y = x[keep], y[keep]
    plain = make("GLVQ").fit(x, y)
    heavy = make("GLVQ").fit(x, y, sample_weight=np.where(y == 1, 10.0, 1.0))
    # Weighting class 1 up moves the border into class 2's side.
    assert (heavy.predict(x) == 1).sum() > (plain.predict(x) == 1).sum()


def test_zero_sample_weights_equal_removing_samples(iris):
    x, y = iris
    weights = np.ones(len(y))
    weights[::4] = 0.0
    weighted = make("GMLVQ", max_iter=30).fit(x, y, sample_weight=weights)
    removed = make("GMLVQ", max_iter=30).fit(x[weights > 0], y[weights > 0])
    np.testing.assert_allclose(weighted.lambda_, removed.lambda_, atol=1e-4)


@pytest.mark.parametrize("initialization", ["kmeans", "random", "class_mean"])
def test_fits_are_reproducible(iris, initialization):
    x, y = iris
    first = make(
        "GMLVQ", initialization=initialization, prototypes_per_class=DISTRIBUTION
    )
    second = clone(first)
    first.fit(x, y)
    second.fit(x, y)
    np.testing.assert_array_equal(first.prototypes_, second.prototypes_)
    np.testing.assert_array_equal(first.omega_, second.omega_)
    other = clone(first).set_params(random_state=1).fit(x, y)
    assert not np.array_equal(other.prototypes_, first.prototypes_)


def test_initializations_place_prototypes_in_their_class(iris):
    x, y = iris
    for initialization in ("kmeans", "random", "class_mean"):
        estimator = make(
            "GLVQ",
            initialization=initialization,
            prototypes_per_class=DISTRIBUTION,
            max_iter=1,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(x, y)
        assert estimator.score(x, y) > 0.8


def test_mini_batch_solvers_learn(iris):
    x, y = iris
    for name in ("GMLVQ", "GTLVQ", "RSLVQ"):
        estimator = make(name, solver="adam", learning_rate=0.05, max_iter=15)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(x, y)
        assert estimator.score(x, y) > 0.9
        assert estimator.loss_curve_[-1] < estimator.loss_curve_[0]


def test_lbfgs_reduces_the_loss(iris):
    x, y = iris
    estimator = make("GMLVQ").fit(x, y)
    assert estimator.n_iter_ == len(estimator.loss_curve_)
    assert estimator.loss_curve_[-1] < estimator.loss_curve_[0]


def test_partial_fit(iris):
    x, y = iris
    estimator = make("GLVQ", solver="sgd", learning_rate=0.1, batch_size=16)
    with pytest.raises(ValueError, match="classes"):
        estimator.partial_fit(x, y)
    order = np.random.RandomState(0).permutation(len(y))
    batches = np.array_split(order, 5)
    estimator.partial_fit(x[batches[0]], y[batches[0]], classes=[0, 1, 2])
    assert estimator.n_iter_ == 1
    for batch in batches[1:]:
        estimator.partial_fit(x[batch], y[batch])
    assert estimator.n_iter_ == 5
    assert len(estimator.loss_curve_) == 5
    assert estimator.score(x, y) > 0.85
    with pytest.raises(ValueError, match="classes"):
        estimator.partial_fit(x, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="not in `classes`"):
        estimator.partial_fit(x[:3], np.array([0, 1, 5]))
    with pytest.raises(ValueError, match="every class"):
        clone(estimator).partial_fit(x[y < 2], y[y < 2], classes=[0, 1, 2])
    assert not hasattr(make("GLVQ"), "partial_fit")


def test_convergence_warning(iris):
    x, y = iris
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        make("GMLVQ", max_iter=1).fit(x, y)


def test_verbose_shows_a_progress_bar(iris, capsys):
    x, y = iris
    make("GLVQ", verbose=1, max_iter=20).fit(x, y)
    assert "loss" in capsys.readouterr().out
    make("GLVQ", max_iter=20).fit(x, y)
    assert capsys.readouterr().out == ""


# === scikit-learn integration ===


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip(fitted, iris, name):
    estimator = fitted[name]
    x, _ = iris
    data = pickle.dumps(estimator)
    # The learned state is NumPy only: no Keras object travels along.
    assert b"keras" not in data
    restored = pickle.loads(data)
    np.testing.assert_array_equal(restored.predict_proba(x), estimator.predict_proba(x))


def test_pipeline_and_grid_search(iris):
    x, y = load_iris(return_X_y=True)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), GMLVQClassifier(random_state=0, max_iter=30)),
        {"gmlvqclassifier__n_components": [1, 2]},
        cv=3,
    )
    search.fit(x, y)
    assert search.best_params_["gmlvqclassifier__n_components"] in (1, 2)
    assert search.best_score_ > 0.9
    assert search.predict(x).shape == (150,)


# === Bad input ===


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_errors(iris, name):
    x, y = iris
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make(name).fit(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        make(name).fit(bad, y)
    with pytest.raises(ValueError, match="only one class"):
        make(name).fit(x, np.zeros(len(y)))
    with pytest.raises(ValueError, match="prototypes_per_class"):
        make(name, prototypes_per_class=[1, 2]).fit(x, y)
    with pytest.raises(NotFittedError):
        make(name).predict(x)
    estimator = make(name, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x, y)
    with pytest.raises(ValueError, match="3 features, but .* is expecting 4"):
        estimator.predict(x[:, :3])


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "match"),
    [
        ("GLVQ", {"solver": "newton"}, ValueError, "solver"),
        ("GLVQ", {"initialization": "zeros"}, ValueError, "initialization"),
        ("GLVQ", {"max_iter": 0}, ValueError, "max_iter"),
        ("GLVQ", {"max_iter": 2.5}, TypeError, "max_iter"),
        ("GLVQ", {"learning_rate": 0.0}, ValueError, "learning_rate"),
        ("GLVQ", {"squash_func": "tanh"}, ValueError, "squash_func"),
        ("GLVQ", {"margin": 1.0}, ValueError, "margin"),
        ("GLVQ", {"prototypes_per_class": 0}, ValueError, "prototypes_per_class"),
        ("GLVQ", {"prototypes_per_class": "2"}, TypeError, "prototypes_per_class"),
        ("GMLVQ", {"n_components": 5}, ValueError, "n_components"),
        ("GMLVQ", {"relevance_regularization": -1.0}, ValueError, "regularization"),
        ("LGMLVQ", {"localization": "global"}, ValueError, "localization"),
        ("GTLVQ", {"subspace_dim": 4}, ValueError, "subspace_dim"),
        ("RSLVQ", {"beta": 0.0}, ValueError, "beta"),
    ],
)
def test_invalid_parameters(iris, name, kwargs, error, match):
    x, y = iris
    with pytest.raises(error, match=match):
        make(name, **kwargs).fit(x, y)


def test_bad_sample_weights(iris):
    x, y = iris
    with pytest.raises(ValueError, match="non-negative"):
        make("GLVQ").fit(x, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="zero weight for the class"):
        make("GLVQ").fit(x, y, sample_weight=(y > 0).astype(float))
    with pytest.raises(ValueError, match="Sample weights must contain"):
        make("GLVQ").fit(x, y, sample_weight=np.zeros(len(y)))


def test_kmeans_needs_enough_distinct_samples():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 3.0], [3.1, 3.0]])
    with pytest.raises(ValueError, match="distinct"):
        make("GLVQ", prototypes_per_class=2).fit(x, [0, 0, 1, 1])


def test_anysma_does_not_import_the_estimators():
    code = "import sys, anysma; print('anysma.sklearn' in sys.modules)"
    # The numpy backend imports fastest; the package layout is the same.
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "numpy"},
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_feature_names_are_recorded(iris):
    pandas = pytest.importorskip("pandas")
    x, y = iris
    frame = pandas.DataFrame(x, columns=["a", "b", "c", "d"])
    estimator = make("GLVQ", max_iter=5).fit(frame, y)
    np.testing.assert_array_equal(estimator.feature_names_in_, ["a", "b", "c", "d"])


# === Defaults that depend on the number of features ===


@pytest.mark.parametrize(("n_features", "expected"), [(2, 1), (3, 2), (6, 2)])
def test_gtlvq_default_subspace_dim_adapts_to_the_features(n_features, expected):
    x, y = make_blobs(n_samples=60, n_features=n_features, centers=3, random_state=0)
    estimator = GTLVQClassifier(max_iter=5, random_state=0)
    estimator.fit(x, y)
    assert estimator.subspace_dim_ == expected
    assert estimator.subspaces_.shape == (3, expected, n_features)
    # The parameter itself is left as given (scikit-learn's convention).
    assert estimator.get_params()["subspace_dim"] is None
    assert estimator.predict(x).shape == (60,)
    # Refitting on other data decides again.
    estimator.fit(x[:, :2], y)
    assert estimator.subspace_dim_ == 1


def test_gtlvq_default_subspace_dim_in_partial_fit():
    x, y = make_blobs(n_samples=60, n_features=2, centers=3, random_state=0)
    estimator = GTLVQClassifier(solver="adam", max_iter=1, random_state=0)
    estimator.partial_fit(x, y, classes=[0, 1, 2])
    estimator.partial_fit(x, y)
    assert estimator.subspace_dim_ == 1
    assert estimator.subspaces_.shape == (3, 1, 2)


def test_gtlvq_explicit_subspace_dim_is_kept_or_rejected():
    x, y = make_blobs(n_samples=60, n_features=4, centers=3, random_state=0)
    estimator = GTLVQClassifier(subspace_dim=3, max_iter=5, random_state=0).fit(x, y)
    assert estimator.subspace_dim_ == 3
    with pytest.raises(ValueError, match=r"subspace_dim=4 for X with n_features=4"):
        GTLVQClassifier(subspace_dim=4).fit(x, y)
    with pytest.raises(ValueError, match="subspace_dim"):
        GTLVQClassifier(subspace_dim=0).fit(x, y)
    with pytest.raises(TypeError, match="subspace_dim"):
        GTLVQClassifier(subspace_dim=1.5).fit(x, y)


def test_gtlvq_needs_two_features():
    x, y = make_blobs(n_samples=30, n_features=1, centers=2, random_state=0)
    with pytest.raises(ValueError, match=r"at least 2 features.*n_features=1"):
        GTLVQClassifier().fit(x, y)


@pytest.mark.parametrize("name", ["GMLVQ", "LGMLVQ", "GRLVQ"])
@pytest.mark.parametrize("n_features", [1, 2])
def test_matrix_defaults_fit_few_features(name, n_features):
    # `n_components=None` is full rank for any number of features.
    x, y = make_blobs(n_samples=40, n_features=n_features, centers=2, random_state=0)
    estimator = make(name, max_iter=5).fit(x, y)
    assert estimator.prototypes_.shape == (2, n_features)
    assert estimator.score(x, y) > 0.5
