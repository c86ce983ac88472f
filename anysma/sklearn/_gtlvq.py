"""Generalized tangent LVQ as a scikit-learn classifier."""

import numpy as np

from anysma.sklearn._base import COMMON_PARAMETERS
from anysma.sklearn._base import GLVQLossMixin
from anysma.sklearn._base import LVQClassifierBase
from anysma.sklearn._base import _check_int
from anysma.sklearn._glvq import GLVQ_LOSS_PARAMETERS
from anysma.sklearn._initialization import principal_directions


class GTLVQClassifier(GLVQLossMixin, LVQClassifierBase):
    __doc__ = f"""Generalized tangent LVQ (GTLVQ) classifier.

    Every prototype is an affine subspace `w + span(W)` with an orthonormal
    basis `W` of `subspace_dim` vectors, and the distance of `x` to it is
    the squared distance to the closest point of the subspace,
    `||(I - W W^T)(x - w)||^2`; a class is thereby modelled by local linear
    manifolds (invariances such as shifts or rotations of images). The
    subspaces start at the principal directions of each prototype's data
    (its k-means cluster, else its class). The model is
    `anysma.models.GTLVQ`.

    Args:
        subspace_dim: The dimension of every subspace: an int in
            `[1, n_features)`, or `None` (the default) for
            `min(2, n_features - 1)`, decided in `fit` (see `subspace_dim_`).
            A subspace needs at least one dimension and must be smaller than
            the input space (which it would cover), so the data need at
            least 2 features.
{GLVQ_LOSS_PARAMETERS}{COMMON_PARAMETERS}
    Attributes:
        classes_: The class labels, sorted.
        prototypes_: The subspace origins `(n_prototypes, n_features)`.
        prototype_labels_: The class label of every prototype.
        subspaces_: The orthonormal bases `(n_prototypes, subspace_dim_,
            n_features)`, one basis vector per row.
        subspace_dim_: The dimension of the subspaces used: `subspace_dim`,
            or its default for the number of features.
        n_features_in_: The number of features seen in `fit`.
        feature_names_in_: The feature names seen in `fit` (when given).
        temperature_: The temperature of `predict_proba`.
        n_iter_: The number of L-BFGS iterations or epochs run.
        loss_curve_: The training loss after every iteration or epoch.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from anysma.sklearn import GTLVQClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(),
    ...                       GTLVQClassifier(subspace_dim=1, random_state=0))
    >>> model.fit(X, y)[-1].subspaces_.shape
    (3, 1, 4)

    Reference:
        Saralajew and Villmann, "Adaptive tangent distances in generalized
        learning vector quantization", WSOM 2016.
    """

    _model_name = "GTLVQ"

    def __init__(
        self,
        subspace_dim=None,
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
        self.subspace_dim = subspace_dim
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

    def _resolve_subspace_dim(self, n_features):
        """`subspace_dim`, or its default for `n_features`, checked."""
        if self.subspace_dim is None:
            if n_features < 2:
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 features: a "
                    "subspace has at least one dimension and must be below the "
                    "number of features (a subspace as large as the input space "
                    f"contains every input). Received: X with n_features={n_features}"
                )
            # Two tangent directions where the data allow it, one otherwise.
            return min(2, n_features - 1)
        _check_int(self.subspace_dim, "subspace_dim", 1)
        if self.subspace_dim >= n_features:
            raise ValueError(
                "`subspace_dim` must be below the number of features (a subspace "
                "as large as the input space contains every input). Received: "
                f"subspace_dim={self.subspace_dim} for X with "
                f"n_features={n_features}"
            )
        return int(self.subspace_dim)

    def _check_model_params(self, n_features):
        self._check_glvq_loss_params()
        self.subspace_dim_ = self._resolve_subspace_dim(n_features)

    def _matrix_columns(self, n_features):
        # Sizes the work for the thread limit; `fit` asks before it checks
        # the parameters, so resolving here also reports a bad value first.
        fitted = getattr(self, "subspace_dim_", None)
        return fitted if fitted is not None else self._resolve_subspace_dim(n_features)

    def _model_kwargs(self, n_features, distribution):
        return {"subspace_dim": self.subspace_dim_}

    def _initial_values(self, prototypes, groups, x, sample_weight, rng):
        bases = [
            principal_directions(rows, weights, self.subspace_dim_, rng)
            for rows, weights in groups
        ]
        return {"prototypes": prototypes, "matrices": np.stack(bases)}

    def _set_model_attributes(self, program, values):
        prototypes, subspaces = program.read(
            values, lambda model: (model.prototypes, model.subspaces)
        )
        self.prototypes_ = prototypes.astype("float64")
        self.subspaces_ = np.transpose(subspaces, (0, 2, 1)).astype("float64")
