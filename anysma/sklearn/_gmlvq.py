"""GMLVQ (full or limited rank) as a scikit-learn classifier."""

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin
from sklearn.base import TransformerMixin

from anysma import regularizers
from anysma.sklearn._base import COMMON_PARAMETERS
from anysma.sklearn._base import GLVQLossMixin
from anysma.sklearn._base import LVQClassifierBase
from anysma.sklearn._base import MetricTransformMixin
from anysma.sklearn._base import _check_int
from anysma.sklearn._base import _check_real
from anysma.sklearn._glvq import GLVQ_LOSS_PARAMETERS
from anysma.sklearn._initialization import principal_directions

MATRICES = "matrices"


def check_n_components(n_components, n_features):
    """Validate the rank of Omega; return it as an int (`None`: full)."""
    if n_components is None:
        return n_features
    _check_int(n_components, "n_components", 1)
    if n_components > n_features:
        raise ValueError(
            "`n_components` (the rank of the relevance matrix) must be at most "
            f"the number of features, n_features={n_features}. Received: "
            f"n_components={n_components}"
        )
    return int(n_components)


def check_relevance_regularization(value):
    _check_real(value, "relevance_regularization", 0.0)


def omega_penalty(alpha):
    """The `-alpha log det` regularizer of the (normalized) Omega matrices."""
    if alpha == 0:
        return None
    regularizer = regularizers.OmegaRegularizer(alpha=alpha)
    return lambda values: regularizer(values[MATRICES])


def initial_omega(x, sample_weight, n_features, n_components, rng):
    """Omega `(n_features, n_components)` with `trace(Lambda) = 1`.

    The identity at full rank (all features equally relevant, as in the
    GMLVQ literature); the principal directions of the data at limited rank.
    """
    if n_components == n_features:
        basis = np.eye(n_features)
    else:
        basis = principal_directions(x, sample_weight, n_components, rng)
    return basis / np.sqrt(n_components)


class GMLVQClassifier(
    ClassNamePrefixFeaturesOutMixin,
    GLVQLossMixin,
    MetricTransformMixin,
    TransformerMixin,
    LVQClassifierBase,
):
    __doc__ = f"""Generalized matrix LVQ (GMLVQ) classifier; limited rank too.

    GLVQ with the adaptive distance `d(x, w) = (x - w)^T Lambda (x - w)`,
    `Lambda = Omega^T Omega`, one matrix for all prototypes, learned jointly
    with the prototypes and normalized to `trace(Lambda) = 1`. `Lambda`
    shows which features (and feature combinations) matter for the
    classification; with `n_components` below the number of features the
    rank is limited (LiRaM LVQ) and `transform` gives a discriminative
    low-dimensional projection. The model is `anysma.models.GMLVQ`.

    Args:
        n_components: The rank of `Lambda` (rows of `Omega`): `None` (full
            rank) or an int in `[1, n_features]`.
        relevance_regularization: Factor `alpha >= 0` of the penalty
            `-alpha log det(Omega Omega^T)`, which keeps `Lambda` from
            collapsing onto few directions (Schneider et al. 2010); 0 turns
            it off.
{GLVQ_LOSS_PARAMETERS}{COMMON_PARAMETERS}
    Attributes:
        classes_: The class labels, sorted.
        prototypes_: The prototypes `(n_prototypes, n_features)`.
        prototype_labels_: The class label of every prototype.
        omega_: `Omega`, `(n_components, n_features)` (the transpose of the
            Keras model's `omega`).
        lambda_: The relevance matrix `Lambda = Omega^T Omega`,
            `(n_features, n_features)`, trace one.
        eigenvalues_: The non-zero eigenvalues of `Lambda`, decreasing.
        eigenvectors_: The matching eigenvectors, one per row.
        n_features_in_: The number of features seen in `fit`.
        feature_names_in_: The feature names seen in `fit` (when given).
        temperature_: The temperature of `predict_proba`.
        n_iter_: The number of L-BFGS iterations or epochs run.
        loss_curve_: The training loss after every iteration or epoch.

    Example:

    >>> from sklearn.datasets import load_wine
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from anysma.sklearn import GMLVQClassifier
    >>> X, y = load_wine(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(),
    ...                       GMLVQClassifier(n_components=2, random_state=0))
    >>> model.fit(X, y).transform(X).shape
    (178, 2)

    Reference:
        Schneider, Biehl and Hammer, "Adaptive relevance matrices in learning
        vector quantization", Neural Computation 21(12), 2009.
        Schneider, Bunte, Stiekema, Hammer, Villmann and Biehl,
        "Regularization in matrix relevance learning", IEEE TNN 21(5), 2010.
    """

    _model_name = "GMLVQ"

    def __init__(
        self,
        n_components=None,
        relevance_regularization=0.0,
        squash_func="sigmoid",
        beta=10.0,
        margin=0.0,
        prototypes_per_class=1,
        initialization="kmeans",
        solver="lbfgs",
        max_iter=200,
        tol=1e-5,
        learning_rate=0.01,
        batch_size=32,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.relevance_regularization = relevance_regularization
        self.squash_func = squash_func
        self.beta = beta
        self.margin = margin
        self.prototypes_per_class = prototypes_per_class
        self.initialization = initialization
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def _check_model_params(self, n_features):
        self._check_glvq_loss_params()
        check_n_components(self.n_components, n_features)
        check_relevance_regularization(self.relevance_regularization)

    def _matrix_columns(self, n_features):
        return check_n_components(self.n_components, n_features)

    def _model_kwargs(self, n_features, distribution):
        return {"projection_dim": check_n_components(self.n_components, n_features)}

    def _loss(self, program):
        key, sample_loss = self._glvq_sample_loss(program)
        alpha = float(self.relevance_regularization)
        return key + (alpha,), sample_loss, omega_penalty(alpha)

    def _initial_values(self, prototypes, groups, x, sample_weight, rng):
        n_features = x.shape[1]
        rank = check_n_components(self.n_components, n_features)
        return {
            "prototypes": prototypes,
            MATRICES: initial_omega(x, sample_weight, n_features, rank, rng),
        }

    def _set_model_attributes(self, program, values):
        prototypes, omega = program.read(
            values, lambda model: (model.prototypes, model.omega)
        )
        self.prototypes_ = prototypes.astype("float64")
        self.omega_ = omega.T.astype("float64")
        self.lambda_ = self.omega_.T @ self.omega_
        self._set_eigendecomposition(self.lambda_, self.omega_.shape[0])
