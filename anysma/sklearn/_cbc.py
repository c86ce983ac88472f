"""Classification-by-components as a scikit-learn classifier."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from anysma import losses
from anysma.sklearn._base import LVQClassifierBase
from anysma.sklearn._base import _check_real

# Initial reasoning logits (positive, negative, indefinite): a component
# started in class `c` is positive reasoning for `c` and negative reasoning
# for the other classes, with probabilities softmax([2, 0, 0]) = 0.79 and
# softmax([0, 1, 0]) = 0.58.
_OWN_CLASS_LOGITS = (2.0, 0.0, 0.0)
_OTHER_CLASS_LOGITS = (0.0, 1.0, 0.0)


class CBCClassifier(LVQClassifierBase):
    """Classification-by-components (CBC) classifier.

    Components in the feature space are detected with the probability
    `d_k = exp(-||x - w_k||^2 / sigma)`, and every class reasons over the
    detections with positive, negative and indefinite reasoning
    probabilities; `p(c | x) = sum_k (r+_ck d_k + r-_ck (1 - d_k)) /
    sum_k (r+_ck + r-_ck)` (Saralajew et al., 2019). The components, `sigma`
    and the reasoning are trained on the CBC margin loss
    `relu(max_{c != y} p(c | x) - p(y | x) + margin)`. The model is
    `anysma.models.CBC`. Standardize the features first (e.g. with
    `StandardScaler` in a `Pipeline`).

    The components start as the k-means centers of every class
    (`components_per_class` each) and the reasoning as "the components of a
    class are positive for it and negative for the others"; `sigma` starts
    at the mean squared distance of a sample to its closest component. The
    class of a component only sets its start: training may use it for any
    class.

    Args:
        components_per_class: The number of components initialized from
            every class: an int, or a list with one int per class.
        margin: The margin of the CBC loss, >= 0.
        initialization: How the components start: `"kmeans"`,
            `"class_mean"` or `"random"` (as the prototypes of the LVQ
            estimators).
        solver: `"lbfgs"`, `"adam"` or `"sgd"`.
        max_iter: The maximal number of L-BFGS iterations, or of epochs of
            the mini-batch solvers.
        tol: Convergence tolerance (see `GLVQClassifier`).
        learning_rate: Learning rate of `"adam"` and `"sgd"`.
        batch_size: Mini-batch size of `"adam"` and `"sgd"`.
        random_state: Seed (int), `numpy.random.RandomState` or `None`.
        verbose: Show a Keras progress bar of the loss (0: silent).

    Attributes:
        classes_: The class labels, sorted.
        components_: The components `(n_components, n_features)`.
        sigma_: The width of the detection kernel.
        positive_reasoning_, negative_reasoning_, indefinite_reasoning_:
            The reasoning probabilities `(n_components, n_classes)`; they
            sum to one.
        prototype_labels_: The class each component was initialized from.
        n_features_in_: The number of features seen in `fit`.
        n_iter_: The number of L-BFGS iterations or epochs run.
        loss_curve_: The training loss after every iteration or epoch.

    Example:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from anysma.sklearn import CBCClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), CBCClassifier(random_state=0))
    >>> model.fit(X, y).score(X, y) > 0.85
    True

    Reference:
        Saralajew, Holdijk, Rees, Asan and Villmann, "Classification-by-
        Components: Probabilistic modeling of reasoning over a set of
        components", NeurIPS 2019.
    """

    _model_name = "CBC"
    _scores = "outputs"

    def __init__(
        self,
        components_per_class=1,
        margin=0.3,
        initialization="kmeans",
        solver="lbfgs",
        max_iter=200,
        tol=1e-5,
        learning_rate=0.01,
        batch_size=32,
        random_state=None,
        verbose=0,
    ):
        self.components_per_class = components_per_class
        self.margin = margin
        self.initialization = initialization
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    # The base class calls the per-class counts `prototypes_per_class`.
    @property
    def prototypes_per_class(self):
        return self.components_per_class

    _per_class_param = "components_per_class"

    def _check_model_params(self, n_features):
        _check_real(self.margin, "margin", 0.0)

    def _distribution_kwargs(self, distribution):
        # A CBC's components have no class: only their number counts.
        return {"num_components": int(sum(distribution))}

    def _initial_values(self, prototypes, groups, x, sample_weight, rng):
        squared = (
            np.sum(x**2, axis=1, keepdims=True)
            - 2 * x @ prototypes.T
            + np.sum(prototypes**2, axis=1)
        )
        closest = np.maximum(squared.min(axis=1), 0.0)
        sigma = max(np.average(closest, weights=sample_weight), 1e-3)
        n_classes = self.classes_.size
        logits = np.tile(_OTHER_CLASS_LOGITS, (len(prototypes), n_classes, 1))
        logits[np.arange(len(prototypes)), self._prototype_labels] = _OWN_CLASS_LOGITS
        return {"components": prototypes, "sigma": sigma, "reasoning": logits}

    def _loss(self, program):
        margin = float(self.margin)

        def sample_loss(y_true, probabilities):
            return losses.cbc_loss(y_true, probabilities, margin=margin)

        return ("cbc", margin), sample_loss, None

    def _set_model_attributes(self, program, values):
        def read(model):
            return (
                model.components,
                model.sigma,
                model.reasoning_probabilities(),
            )

        components, sigma, reasoning = program.read(values, read)
        self.components_ = components
        self.sigma_ = sigma
        (
            self.positive_reasoning_,
            self.negative_reasoning_,
            self.indefinite_reasoning_,
        ) = reasoning

    def _fit_probability_scale(self, x, y_index, sample_weight):
        """The class probabilities come from the model; nothing to fit."""

    def _probabilities(self, X):
        """The reasoning probabilities `p(c | x)` of the model, float64."""
        return self._program_scores(X).astype("float64")

    def _class_scores(self, X):
        """`log predict_proba`: rankings agree with `predict_proba`."""
        tiny = np.finfo("float64").tiny
        return np.log(np.maximum(self.predict_proba(X), tiny))

    def decision_function(self, X):
        """The logarithm of the normalized class probabilities.

        `log predict_proba(X)` (clamped at the smallest float64, not
        `-inf`); with two classes, the log-odds `log p(classes_[1] | x) -
        log p(classes_[0] | x)`, positive for `classes_[1]`.

        Args:
            X: Features `(n_samples, n_features)`.

        Returns:
            An array `(n_samples, n_classes)`, or `(n_samples,)` for two
            classes.
        """
        return super().decision_function(X)

    def predict_proba(self, X):
        """The reasoning probabilities `p(c | x)`, normalized over the classes.

        Each `p(c | x)` of a CBC is a probability of its own (that the
        reasoning of class `c` agrees with the detections); they need not sum
        to one, so they are divided by their sum (equal probabilities where
        all are zero). The most probable class is the predicted one.

        Args:
            X: Features `(n_samples, n_features)`.

        Returns:
            An array `(n_samples, n_classes)` whose rows sum to one.
        """
        scores = np.clip(self._probabilities(X), 0.0, None)
        totals = scores.sum(axis=1, keepdims=True)
        uniform = np.full_like(scores, 1.0 / scores.shape[1])
        return np.where(totals > 0, scores / np.where(totals > 0, totals, 1.0), uniform)

    def predict_log_proba(self, X):
        """The logarithm of `predict_proba` (clamped, never `-inf`)."""
        return self._class_scores(X)

    def confidence(self, X, score=None):
        """The largest normalized class probability of every sample.

        Args:
            X: Features `(n_samples, n_features)`.
            score: `None` or `"posterior"` (the only score of a CBC).

        Returns:
            A float array `(n_samples,)` in `[1 / n_classes, 1]`.
        """
        check_is_fitted(self)
        if score not in (None, "posterior"):
            raise ValueError(
                "CBCClassifier's confidence is the largest class probability: "
                f"`score` must be None or 'posterior'. Received: score={score!r}"
            )
        return self.predict_proba(X).max(axis=1)
