"""GRLVQ as a scikit-learn classifier."""

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin
from sklearn.base import TransformerMixin

from anysma.sklearn._base import COMMON_PARAMETERS
from anysma.sklearn._base import GLVQLossMixin
from anysma.sklearn._base import LVQClassifierBase
from anysma.sklearn._base import MetricTransformMixin
from anysma.sklearn._glvq import GLVQ_LOSS_PARAMETERS


class GRLVQClassifier(
    ClassNamePrefixFeaturesOutMixin,
    GLVQLossMixin,
    MetricTransformMixin,
    TransformerMixin,
    LVQClassifierBase,
):
    __doc__ = f"""Generalized relevance LVQ (GRLVQ) classifier.

    GLVQ with a learned relevance per feature: `d(x, w) = sum_i lambda_i
    (x_i - w_i)^2` with `lambda_i >= 0`, `sum_i lambda_i = 1`. The
    relevances rank the features by their importance for the
    classification; `transform` scales the features by `sqrt(lambda_i)`,
    the most relevant first. The model is `anysma.models.GRLVQ` (which
    learns the relevances through a `RelevanceScaling` layer).

    Args:
{GLVQ_LOSS_PARAMETERS}{COMMON_PARAMETERS}
    Attributes:
        classes_: The class labels, sorted.
        prototypes_: The prototypes `(n_prototypes, n_features)`, in input
            space.
        prototype_labels_: The class label of every prototype.
        relevances_: The relevances `(n_features,)`, summing to one.
        lambda_: `diag(relevances_)`, the relevance matrix.
        eigenvalues_: The non-zero relevances, decreasing.
        eigenvectors_: The matching unit vectors, one per row.
        n_features_in_: The number of features seen in `fit`.
        feature_names_in_: The feature names seen in `fit` (when given).
        temperature_: The temperature of `predict_proba`.
        n_iter_: The number of L-BFGS iterations or epochs run.
        loss_curve_: The training loss after every iteration or epoch.

    Example:

    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from anysma.sklearn import GRLVQClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), GRLVQClassifier(random_state=0))
    >>> relevances = model.fit(X, y)[-1].relevances_
    >>> relevances.shape, round(float(relevances.sum()), 4)
    ((30,), 1.0)

    Reference:
        Hammer and Villmann, "Generalized relevance learning vector
        quantization", Neural Networks 15(8-9), 2002.
    """

    _model_name = "GRLVQ"

    def __init__(
        self,
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

    def _initial_values(self, prototypes, groups, x, sample_weight, rng):
        # Equal relevances; the model's prototypes live in the feature space
        # scaled by sqrt(relevance) = 1 / sqrt(n_features).
        n_features = x.shape[1]
        return {
            "relevances": np.ones(n_features),
            "prototypes": prototypes / np.sqrt(n_features),
        }

    def _set_model_attributes(self, program, values):
        prototypes, relevances = program.read(
            values, lambda model: (model.prototypes, model.relevances)
        )
        self.prototypes_ = prototypes.astype("float64")
        self.relevances_ = relevances.astype("float64")
        self.lambda_ = np.diag(self.relevances_)
        rank = int(np.count_nonzero(self.relevances_ > 0))
        self._set_eigendecomposition(self.lambda_, max(rank, 1))
