"""Robust soft LVQ as a scikit-learn classifier."""

import keras
from scipy import special

from anysma.sklearn._base import COMMON_PARAMETERS
from anysma.sklearn._base import LVQClassifierBase
from anysma.sklearn._base import _check_real


class RSLVQClassifier(LVQClassifierBase):
    __doc__ = f"""Robust soft LVQ (RSLVQ) classifier.

    Every prototype is the center of a Gaussian `exp(-beta d(x, w))` (squared
    Euclidean `d`, one shared width), every class a mixture of its
    prototypes' Gaussians; the prototypes maximize the (weighted)
    likelihood of the training labels, `sum_i w_i log p(y_i | x_i)`.
    `predict_proba` returns these class posteriors. The model is
    `anysma.models.RSLVQ`.

    Args:
        beta: Inverse width `1 / (2 sigma^2)` of the Gaussians, > 0. It sets
            how soft the assignments are relative to the squared distances,
            so it depends on the scale (and number) of the features.
{COMMON_PARAMETERS}
    Attributes:
        classes_: The class labels, sorted.
        prototypes_: The prototypes `(n_prototypes, n_features)`.
        prototype_labels_: The class label of every prototype.
        n_features_in_: The number of features seen in `fit`.
        feature_names_in_: The feature names seen in `fit` (when given).
        n_iter_: The number of L-BFGS iterations or epochs run.
        loss_curve_: The training loss after every iteration or epoch.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from anysma.sklearn import RSLVQClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(),
    ...                       RSLVQClassifier(prototypes_per_class=2,
    ...                                       random_state=0))
    >>> model.fit(X, y).predict_proba(X[:2]).shape
    (2, 3)

    Reference:
        Seo and Obermayer, "Soft learning vector quantization", Neural
        Computation 15(7), 2003.
    """

    _model_name = "RSLVQ"
    _scores = "outputs"

    def __init__(
        self,
        beta=1.0,
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
        self.beta = beta
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
        _check_real(self.beta, "beta", 0.0, include_min=False)

    def _model_kwargs(self, n_features, distribution):
        return {"beta": float(self.beta)}

    def _loss(self, program):
        def sample_loss(y_true, log_posteriors):
            return keras.losses.categorical_crossentropy(
                y_true, log_posteriors, from_logits=True
            )

        return ("rslvq",), sample_loss, None

    def _initial_values(self, prototypes, groups, x, sample_weight, rng):
        return {"prototypes": prototypes}

    def _fit_probability_scale(self, x, y_index, sample_weight):
        """RSLVQ's posteriors are probabilities already; nothing to fit."""

    def _class_scores(self, X):
        """The class log-posteriors `log p(c | x)`."""
        return self._program_scores(X).astype("float64")

    def predict_proba(self, X):
        """The class posteriors `p(c | x)` of the Gaussian mixture model.

        Args:
            X: Features `(n_samples, n_features)`.

        Returns:
            An array `(n_samples, n_classes)` whose rows sum to one, columns
            in the order of `classes_`.
        """
        return special.softmax(self._class_scores(X), axis=1)

    def predict_log_proba(self, X):
        """The logarithm of `predict_proba`."""
        return special.log_softmax(self._class_scores(X), axis=1)
