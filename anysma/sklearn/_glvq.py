"""GLVQ as a scikit-learn classifier."""

from anysma.sklearn._base import COMMON_PARAMETERS
from anysma.sklearn._base import GLVQLossMixin
from anysma.sklearn._base import LVQClassifierBase

GLVQ_LOSS_PARAMETERS = """\
        squash_func: The squashing of the GLVQ cost `mu = (d+ - d-) / (d+ +
            d-)`: `"identity"`, `"sigmoid"` (`sigmoid(beta (mu + margin))`)
            or `"relu"` (`relu(mu + margin)`); see `anysma.losses.glvq_loss`.
        beta: Slope of the sigmoid squashing, > 0.
        margin: A number in `[0, 1)` added to `mu` before squashing: a
            sample counts as well classified only when `d+` is clearly
            smaller than `d-`.
"""


class GLVQClassifier(GLVQLossMixin, LVQClassifierBase):
    __doc__ = f"""Generalized learning vector quantization (GLVQ) classifier.

    Prototypes per class under the squared Euclidean distance, trained on
    the GLVQ cost `sum_i w_i phi((d+ - d-) / (d+ + d-))` (`d+`: distance to
    the closest prototype of the sample's class, `d-`: to the closest one of
    another class). A sample is assigned the class of its closest prototype.
    The model is `anysma.models.GLVQ`. Standardize the features first (e.g.
    with `StandardScaler` in a `Pipeline`).

    Args:
{GLVQ_LOSS_PARAMETERS}{COMMON_PARAMETERS}
    Attributes:
        classes_: The class labels, sorted.
        prototypes_: The prototypes `(n_prototypes, n_features)`.
        prototype_labels_: The class label of every prototype.
        n_features_in_: The number of features seen in `fit`.
        feature_names_in_: The feature names seen in `fit` (when `X` had
            string column names).
        temperature_: The temperature of `predict_proba`.
        n_iter_: The number of L-BFGS iterations or epochs run.
        loss_curve_: The training loss after every iteration or epoch.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from anysma.sklearn import GLVQClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), GLVQClassifier(random_state=0))
    >>> model.fit(X, y).score(X, y) > 0.85
    True

    Reference:
        Sato and Yamada, "Generalized learning vector quantization", NIPS
        1995.
    """

    _model_name = "GLVQ"

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
        return {"prototypes": prototypes}
