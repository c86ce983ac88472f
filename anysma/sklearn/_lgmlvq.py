"""Localized GMLVQ as a scikit-learn classifier."""

import numpy as np

from anysma.sklearn._base import COMMON_PARAMETERS
from anysma.sklearn._base import GLVQLossMixin
from anysma.sklearn._base import LVQClassifierBase
from anysma.sklearn._base import _check_option
from anysma.sklearn._glvq import GLVQ_LOSS_PARAMETERS
from anysma.sklearn._gmlvq import MATRICES
from anysma.sklearn._gmlvq import check_n_components
from anysma.sklearn._gmlvq import check_relevance_regularization
from anysma.sklearn._gmlvq import omega_penalty
from anysma.sklearn._initialization import principal_directions

LOCALIZATIONS = {"prototype": "local", "class": "capsule_wise"}


class LGMLVQClassifier(GLVQLossMixin, LVQClassifierBase):
    __doc__ = f"""Localized generalized matrix LVQ (LGMLVQ) classifier.

    As GMLVQ, but every prototype (or every class) has its own relevance
    matrix `Lambda_j = Omega_j^T Omega_j` (trace one each), so the decision
    borders are piecewise quadratic. The model is `anysma.models.LGMLVQ`.

    Args:
        n_components: The rank of each `Lambda_j`: `None` (full rank) or an
            int in `[1, n_features]`.
        localization: `"prototype"` (one matrix per prototype) or `"class"`
            (one per class).
        relevance_regularization: Factor `alpha >= 0` of the penalty
            `-alpha sum_j log det(Omega_j Omega_j^T)`; 0 turns it off.
{GLVQ_LOSS_PARAMETERS}{COMMON_PARAMETERS}
    Attributes:
        classes_: The class labels, sorted.
        prototypes_: The prototypes `(n_prototypes, n_features)`.
        prototype_labels_: The class label of every prototype.
        omega_: The matrices `Omega_j`, `(n_matrices, n_components,
            n_features)`, one per prototype or per class.
        lambda_: The relevance matrices `(n_matrices, n_features,
            n_features)`.
        n_features_in_: The number of features seen in `fit`.
        feature_names_in_: The feature names seen in `fit` (when given).
        temperature_: The temperature of `predict_proba`.
        n_iter_: The number of L-BFGS iterations or epochs run.
        loss_curve_: The training loss after every iteration or epoch.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from anysma.sklearn import LGMLVQClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LGMLVQClassifier(random_state=0))
    >>> model.fit(X, y)[-1].lambda_.shape
    (3, 4, 4)

    Reference:
        Schneider, Biehl and Hammer, "Adaptive relevance matrices in learning
        vector quantization", Neural Computation 21(12), 2009.
    """

    _model_name = "LGMLVQ"

    def __init__(
        self,
        n_components=None,
        localization="prototype",
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
        self.localization = localization
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
        _check_option(self.localization, "localization", tuple(LOCALIZATIONS))
        check_relevance_regularization(self.relevance_regularization)

    def _matrix_columns(self, n_features):
        return check_n_components(self.n_components, n_features)

    def _model_kwargs(self, n_features, distribution):
        return {
            "projection_dim": check_n_components(self.n_components, n_features),
            "matrix_scope": LOCALIZATIONS[self.localization],
        }

    def _loss(self, program):
        key, sample_loss = self._glvq_sample_loss(program)
        alpha = float(self.relevance_regularization)
        return key + (alpha,), sample_loss, omega_penalty(alpha)

    def _initial_values(self, prototypes, groups, x, sample_weight, rng):
        # Full rank: the identity (trace one) for every matrix. Limited
        # rank: the principal directions of each prototype's (or class's)
        # data.
        n_features = x.shape[1]
        rank = check_n_components(self.n_components, n_features)
        if self.localization == "class":
            labels = self._prototype_labels
            groups = [
                (
                    np.concatenate([g[0] for g, c in zip(groups, labels) if c == k]),
                    np.concatenate([g[1] for g, c in zip(groups, labels) if c == k]),
                )
                for k in range(labels.max() + 1)
            ]
        if rank == n_features:
            bases = [np.eye(n_features) for _ in groups]
        else:
            bases = [
                principal_directions(rows, weights, rank, rng)
                for rows, weights in groups
            ]
        return {
            "prototypes": prototypes,
            MATRICES: np.stack(bases) / np.sqrt(rank),
        }

    def _set_model_attributes(self, program, values):
        prototypes, omegas = program.read(
            values, lambda model: (model.prototypes, model.omegas)
        )
        self.prototypes_ = prototypes.astype("float64")
        self.omega_ = np.transpose(omegas, (0, 2, 1)).astype("float64")
        self.lambda_ = np.einsum("jmi,jmk->jik", self.omega_, self.omega_)
