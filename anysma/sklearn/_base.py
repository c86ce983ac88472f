"""The shared base of the LVQ estimators: validation, training, prediction."""

import numbers
import warnings

import numpy as np
from scipy import optimize
from scipy import special
from sklearn.base import BaseEstimator
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils import check_consistent_length
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.validation import check_scalar
from sklearn.utils.validation import validate_data

from anysma import losses
from anysma.models.lvq import resolve_prototypes_per_class
from anysma.sklearn import _initialization
from anysma.sklearn import _program
from anysma.sklearn import _solvers
from anysma.utils import autodiff as _autodiff

_FLOAT_DTYPES = (np.float64, np.float32)


def _check_option(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"`{name}` must be one of {list(options)}. Received: {name}={value!r}"
        )


def _check_real(value, name, min_val=None, include_min=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a real number. Received: {name}={value!r} of type "
            f"{type(value).__name__}"
        )
    check_scalar(
        value,
        name,
        numbers.Real,
        min_val=min_val,
        include_boundaries="left" if include_min else "neither",
    )
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite. Received: {name}={value!r}")


def _check_int(value, name, min_val):
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int. Received: {name}={value!r}")
    check_scalar(value, name, numbers.Integral, min_val=min_val)


def _uses_stochastic_solver(estimator):
    """`partial_fit` exists only for the mini-batch solvers (as in MLP)."""
    return estimator.solver in ("adam", "sgd")


class LVQClassifierBase(ClassifierMixin, BaseEstimator):
    """Base class of the LVQ estimators; not meant to be used directly.

    Subclasses define `__init__` (every parameter a plain keyword), the
    Keras model (`_model_name`, `_model_kwargs`), the loss (`_loss`), the
    initial parameters (`_initial_values`) and the learned attributes
    (`_set_model_attributes`).
    """

    # The `anysma.models` class and what its program scores: "distances"
    # (per prototype; the GLVQ family) or "outputs" (RSLVQ's log-posteriors).
    _model_name = None
    _scores = "distances"

    # === Subclass hooks ===

    def _check_model_params(self, n_features):
        """Validate the model-specific parameters (knowing `n_features`)."""

    def _distribution_kwargs(self, distribution):
        """How the model takes the number of prototypes of every class."""
        return {"prototypes_per_class": distribution}

    def _model_kwargs(self, n_features, distribution):
        """Constructor arguments of the Keras model beyond the common ones."""
        return {}

    def _loss(self, program):
        """`(key, sample_loss, penalty)` of the training objective.

        `sample_loss(y_true, scores)` gets one-hot labels and the program's
        scores (distances to the prototypes, or RSLVQ's log-posteriors).
        """
        raise NotImplementedError

    def _initial_values(self, prototypes, groups, x, sample_weight, rng):
        """The initial value of every trainable variable, by its role.

        Args:
            prototypes: The initial prototypes `(P, n_features)`.
            groups: Per prototype, the `(rows, weights)` it stands for.
            x: The training features, float64.
            sample_weight: The sample weights.
            rng: A `numpy.random.RandomState`.
        """
        raise NotImplementedError

    def _set_model_attributes(self, program, values):
        """Set the learned attributes from the parameter values."""
        self.prototypes_ = program.read(values, lambda model: model.prototypes)

    def _matrix_columns(self, n_features):
        """Columns of each prototype's matrix (1 without matrices)."""
        return 1

    def _thread_limit(self, samples):
        """One thread for small computations (see `_autodiff.thread_limit`)."""
        n_features = self.n_features_in_
        prototypes = sum(self._distribution(self.classes_.size))
        work = samples * prototypes * n_features * self._matrix_columns(n_features)
        return _autodiff.thread_limit(work)

    # === Validation ===

    #: The parameter that holds the number of prototypes per class.
    _per_class_param = "prototypes_per_class"

    def _check_common_params(self):
        name = self._per_class_param
        ppc = getattr(self, name)
        if not (
            isinstance(ppc, (numbers.Integral, list, tuple, np.ndarray))
            and not isinstance(ppc, bool)
        ):
            raise TypeError(
                f"`{name}` must be an int or a list with one int per "
                f"class. Received: {name}={ppc!r}"
            )
        _check_option(
            self.initialization, "initialization", _initialization.INITIALIZATIONS
        )
        _check_option(self.solver, "solver", _solvers.SOLVERS)
        _check_int(self.max_iter, "max_iter", 1)
        _check_real(self.tol, "tol", 0.0)
        _check_real(self.learning_rate, "learning_rate", 0.0, include_min=False)
        _check_int(self.batch_size, "batch_size", 1)
        _check_int(self.verbose, "verbose", 0)

    def _distribution(self, n_classes):
        ppc = self.prototypes_per_class
        if isinstance(ppc, np.ndarray):
            ppc = ppc.tolist()
        distribution = resolve_prototypes_per_class(ppc, n_classes)
        return distribution * n_classes if len(distribution) == 1 else distribution

    def _validate_sample_weight(self, sample_weight, x):
        if sample_weight is None:
            return np.ones(x.shape[0], dtype="float64")
        sample_weight = check_array(
            sample_weight,
            ensure_2d=False,
            dtype="float64",
            input_name="sample_weight",
        )
        if sample_weight.ndim != 1:
            raise ValueError(
                "`sample_weight` must be 1-D with one weight per sample. Received: "
                f"shape {sample_weight.shape}"
            )
        check_consistent_length(x, sample_weight)
        if np.any(sample_weight < 0):
            raise ValueError("`sample_weight` must be non-negative.")
        if not np.any(sample_weight > 0):
            raise ValueError(
                "Sample weights must contain at least one non-zero number; "
                "all sample weights are zero."
            )
        return sample_weight

    def _validate_targets(self, y, classes=None):
        """Class indices of `y`, setting (or checking) `classes_`."""
        check_classification_targets(y)
        if classes is None:
            classes, y_index = np.unique(y, return_inverse=True)
        else:
            y_index = np.searchsorted(classes, y)
            y_index = np.minimum(y_index, classes.size - 1)
            unknown = np.unique(y[classes[y_index] != y])
            if unknown.size:
                raise ValueError(
                    f"`y` holds labels that are not in `classes` "
                    f"{classes.tolist()}. Received: unknown labels "
                    f"{unknown.tolist()}"
                )
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; the "
                f"data has only one class: {classes.tolist()}"
            )
        return classes, y_index

    def _check_class_weights(self, y_index, sample_weight):
        """Every class needs weight: its prototypes are learned from it."""
        totals = np.bincount(y_index, sample_weight, minlength=self.classes_.size)
        empty = self.classes_[totals <= 0]
        if empty.size:
            raise ValueError(
                "Every class needs a positive total sample weight to place its "
                f"prototypes. Received: zero weight for the class(es) "
                f"{empty.tolist()}"
            )

    # === Training ===

    def _program(self):
        return _program.get_program(*self._program_key)

    def _prepare(self, x, y_index, sample_weight, rng):
        """Check the structure, build the program and the initial values."""
        n_features = x.shape[1]
        distribution = self._distribution(self.classes_.size)
        self._check_model_params(n_features)
        kwargs = {
            "input_dim": n_features,
            "num_classes": self.classes_.size,
            **self._distribution_kwargs(distribution),
            **self._model_kwargs(n_features, distribution),
        }
        self._program_key = (
            self._model_name,
            tuple((key, _hashable(value)) for key, value in sorted(kwargs.items())),
            self._scores,
        )
        self._prototype_labels = np.repeat(np.arange(len(distribution)), distribution)
        program = self._program()
        prototypes, groups = _initialization.initial_prototypes(
            x, y_index, sample_weight, distribution, self.initialization, rng
        )
        initial = self._initial_values(prototypes, groups, x, sample_weight, rng)
        values = [
            np.asarray(initial[name], dtype="float32").reshape(shape)
            for name, shape in zip(program.names, program.shapes)
        ]
        return program, program.constrained(values)

    def _train(self, program, values, x, y_index, sample_weight, rng, epochs):
        """Run the solver; return `(values, n_iter, loss_curve, converged)`."""
        key, sample_loss, penalty = self._loss(program)
        objective = program.objective(key, sample_loss, penalty)
        y = np.eye(self.classes_.size, dtype="float32")[y_index]
        if self.solver == "lbfgs":
            chunks = program.chunks(x, y, sample_weight / sample_weight.sum())

            def evaluate(values):
                return program.value_and_gradient(objective, values, chunks)

            values, n_iter, curve, converged = _solvers.lbfgs(
                evaluate, values, epochs, self.tol, self.verbose
            )
            self._optimizer_state = None
        else:

            def evaluate(values, x_batch, y_batch, w_batch):
                chunks = program.chunks(x_batch, y_batch, w_batch)
                return program.value_and_gradient(objective, values, chunks)

            values, n_iter, curve, state, converged = _solvers.stochastic(
                evaluate,
                values,
                program.constraints,
                x,
                y,
                sample_weight / sample_weight.mean(),
                self.solver,
                self.learning_rate,
                self.batch_size,
                epochs,
                self.tol if epochs > 1 else None,
                rng,
                optimizer_state=getattr(self, "_optimizer_state", None),
                verbose=self.verbose,
            )
            self._optimizer_state = state
        return program.constrained(values), n_iter, curve, converged

    def _finish(self, program, values, x, y_index, sample_weight):
        self._values = values
        # The cached Keras model of `_keras_model` holds the old parameters.
        self.__dict__.pop("_keras_model_cache", None)
        self._set_model_attributes(program, values)
        self.prototype_labels_ = self.classes_[self._prototype_labels]
        self._fit_probability_scale(x, y_index, sample_weight)

    def fit(self, X, y, sample_weight=None):
        """Fit the prototypes (and metric) to the training data.

        Args:
            X: Training features, array-like `(n_samples, n_features)`.
            y: Class labels `(n_samples,)`: any hashable, sortable values
                (strings, integers, ...), at least 2 classes.
            sample_weight: Optional non-negative weights `(n_samples,)`; each
                sample's loss term is multiplied by its weight (an integer
                weight acts like repeating the sample).

        Returns:
            The fitted estimator itself.
        """
        self._check_common_params()
        x, y = validate_data(self, X, y, dtype=_FLOAT_DTYPES)
        self.classes_, y_index = self._validate_targets(y)
        sample_weight = self._validate_sample_weight(sample_weight, x)
        self._check_class_weights(y_index, sample_weight)
        x = x.astype("float64")
        rng = check_random_state(self.random_state)
        self._optimizer_state = None
        with self._thread_limit(self._samples_per_step(x.shape[0])):
            program, values = self._prepare(x, y_index, sample_weight, rng)
            values, n_iter, curve, converged = self._train(
                program, values, x, y_index, sample_weight, rng, self.max_iter
            )
            self._finish(program, values, x, y_index, sample_weight)
        if not converged:
            warnings.warn(
                f"{type(self).__name__}: the {self.solver} solver reached "
                f"max_iter={self.max_iter} iterations before converging; increase "
                "max_iter or tol.",
                ConvergenceWarning,
            )
        self.n_iter_ = n_iter
        self.loss_curve_ = curve
        return self

    def _samples_per_step(self, samples):
        if self.solver == "lbfgs":
            return samples
        return min(samples, self.batch_size)

    @available_if(_uses_stochastic_solver)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on a batch of data (mini-batch solvers only).

        The first call initializes the model from its batch, which must
        contain every class; later calls continue from the current
        prototypes and optimizer state. Available when `solver` is `"adam"`
        or `"sgd"`.

        Args:
            X: Features, array-like `(n_samples, n_features)`.
            y: Class labels `(n_samples,)`, all in `classes`.
            classes: All class labels; required on the first call (and, if
                given later, equal to `classes_`).
            sample_weight: Optional non-negative weights `(n_samples,)`.

        Returns:
            The estimator itself.
        """
        first_call = not hasattr(self, "_values")
        if first_call and classes is None:
            raise ValueError(
                "`classes` must be passed on the first call to partial_fit "
                "(all class labels the model will see)."
            )
        if classes is not None:
            classes = np.unique(check_array(classes, ensure_2d=False, dtype=None))
            if not first_call and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    "`classes` must be the same in every call to partial_fit. "
                    f"Expected: {self.classes_.tolist()}. Received: "
                    f"{classes.tolist()}"
                )
        self._check_common_params()
        x, y = validate_data(self, X, y, dtype=_FLOAT_DTYPES, reset=first_call)
        classes, y_index = self._validate_targets(
            y, classes if first_call else self.classes_
        )
        sample_weight = self._validate_sample_weight(sample_weight, x)
        x = x.astype("float64")
        rng = check_random_state(self.random_state)
        if first_call:
            missing = np.setdiff1d(np.arange(classes.size), y_index)
            if missing.size:
                raise ValueError(
                    "The first call to partial_fit initializes the prototypes "
                    "from its batch, so the batch needs samples of every class. "
                    f"Received: no samples of {classes[missing].tolist()}"
                )
            self.classes_ = classes
            self._check_class_weights(y_index, sample_weight)
            self._optimizer_state = None
        with self._thread_limit(self._samples_per_step(x.shape[0])):
            if first_call:
                program, values = self._prepare(x, y_index, sample_weight, rng)
                self.n_iter_, self.loss_curve_ = 0, []
            else:
                program, values = self._program(), self._values
                # A different random stream per call, reproducible from the
                # seed.
                rng = np.random.RandomState(rng.randint(2**31 - 1) + self.n_iter_)
            values, n_iter, curve, _ = self._train(
                program, values, x, y_index, sample_weight, rng, 1
            )
            self._finish(program, values, x, y_index, sample_weight)
        self.n_iter_ += n_iter
        self.loss_curve_ = list(self.loss_curve_) + curve
        return self

    # === Prediction ===

    def _program_scores(self, X):
        check_is_fitted(self)
        x = validate_data(self, X, reset=False, dtype=_FLOAT_DTYPES)
        with self._thread_limit(min(x.shape[0], _program.CHUNK)):
            return self._program().scores(self._values, x)

    def _class_distances(self, distances):
        """The distance to the closest prototype of each class."""
        starts = np.flatnonzero(np.diff(self._prototype_labels, prepend=-1))
        return np.minimum.reduceat(distances.astype("float64"), starts, axis=1)

    def _class_scores(self, X):
        """Per-class scores, the higher the more likely: `-d_c`."""
        return -self._class_distances(self._program_scores(X))

    def _fit_probability_scale(self, x, y_index, sample_weight):
        """Fit the temperature of `predict_proba` by maximum likelihood.

        `T` minimizes the weighted negative log-likelihood of the training
        labels under `softmax(-d / T)`, within `[s / 100, 100 s]`, where `s`
        is the weighted mean distance of a sample to its own class.
        """
        distances = self._class_distances(self._program().scores(self._values, x))
        weights = sample_weight / sample_weight.sum()
        own = distances[np.arange(len(y_index)), y_index]
        scale = max(float(np.sum(weights * own)), 1e-12)

        def negative_log_likelihood(log_temperature):
            log_p = special.log_softmax(-distances / np.exp(log_temperature), axis=1)
            return -np.sum(weights * log_p[np.arange(len(y_index)), y_index])

        bounds = (np.log(scale) - np.log(100.0), np.log(scale) + np.log(100.0))
        result = optimize.minimize_scalar(
            negative_log_likelihood, bounds=bounds, method="bounded"
        )
        self.temperature_ = float(np.exp(result.x))

    def decision_function(self, X):
        """Confidence scores of the classes.

        For the GLVQ family, the negative distance `-d_c` of `X` to the
        closest prototype of each class (for RSLVQ, the class
        log-posterior). With two classes, the score of `classes_[1]` minus
        that of `classes_[0]` (`d_0 - d_1`): positive means `classes_[1]`.

        Args:
            X: Features `(n_samples, n_features)`.

        Returns:
            An array `(n_samples, n_classes)`, or `(n_samples,)` for two
            classes.
        """
        scores = self._class_scores(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X):
        """The class of the closest prototype (the winning class).

        Args:
            X: Features `(n_samples, n_features)`.

        Returns:
            The predicted labels `(n_samples,)`, values of `classes_`.
        """
        scores = self._class_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X):
        """Class probabilities: a soft-min over the class distances.

        `p(c | x) = softmax_c(-d_c(x) / T)`, with `d_c` the distance to the
        closest prototype of class `c` and the temperature `T`
        (`temperature_`) fitted by maximum likelihood on the training data,
        so the probabilities are calibrated on it in the sense of one
        shared scale. The most probable class is the predicted one. (RSLVQ
        overrides this with its model's posteriors.)

        Args:
            X: Features `(n_samples, n_features)`.

        Returns:
            An array `(n_samples, n_classes)` whose rows sum to one, columns
            in the order of `classes_`.
        """
        return special.softmax(self._class_scores(X) / self.temperature_, axis=1)

    def predict_log_proba(self, X):
        """The logarithm of `predict_proba`, computed without underflow."""
        return special.log_softmax(self._class_scores(X) / self.temperature_, axis=1)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_values")

    # === Keras model, reject option and robustness ===

    def to_keras_model(self):
        """A new `anysma.models` model with the fitted parameters.

        The model has the estimator's type and structure (`GLVQ`, `GMLVQ`,
        `GRLVQ`, `LGMLVQ`, `GTLVQ` or `RSLVQ`, with the same number of
        prototypes per class and metric) and computes the same distances
        (or, for RSLVQ, class log-posteriors) as the estimator; its class
        `k` is `classes_[k]`. It is independent of the estimator: training
        or changing it leaves the estimator as it is. Every call builds a
        new model.

        Returns:
            An uncompiled Keras model of `anysma.models`.

        Raises:
            NotFittedError: Before `fit`.
        """
        from anysma import models

        check_is_fitted(self)
        model_name, model_kwargs, _ = self._program_key
        model = getattr(models, model_name)(**dict(model_kwargs))
        # The stored values are the constrained (reparametrized) parameters
        # that the program evaluates as they are; `assign` applies no
        # constraint, so the model computes the same distances.
        names = self._program().names
        for role, variable in model.weights_by_role().items():
            value = np.asarray(self._values[names.index(role)], dtype=variable.dtype)
            variable.assign(value.reshape(tuple(variable.shape)))
        return model

    def _keras_model(self):
        """`to_keras_model()`, built once per fit (a private cache)."""
        check_is_fitted(self)
        cache = self.__dict__.get("_keras_model_cache")
        if cache is None or cache[0] is not self._values:
            cache = (self._values, self.to_keras_model())
            self._keras_model_cache = cache
        return cache[1]

    def __getstate__(self):
        # The cached Keras model is rebuilt on demand; it is not pickled.
        state = super().__getstate__()
        state = dict(state)
        state.pop("_keras_model_cache", None)
        return state

    def _trust_inputs(self, X):
        check_is_fitted(self)
        x = validate_data(self, X, reset=False, dtype=_FLOAT_DTYPES)
        return x.astype("float32")

    def confidence(self, X, score=None):
        """The confidence of the prediction of every sample (higher: surer).

        See `anysma.reject.confidence`: `"relative_similarity"` `(d- - d+)
        / (d- + d+)` in `[0, 1]` (`d+` the distance to the winning
        prototype, `d-` to the closest prototype of another class; the
        default of the GLVQ family), `"winner_distance"` (the **negative**
        distance `-d+`) or `"posterior"` (RSLVQ only, its default: the
        largest class posterior).

        Args:
            X: Features `(n_samples, n_features)`.
            score: `"relative_similarity"`, `"winner_distance"`,
                `"posterior"` or `None` (the default of the model).

        Returns:
            A float array `(n_samples,)`.
        """
        from anysma import reject

        x = self._trust_inputs(X)
        return reject.confidence(self._keras_model(), x, score=score)

    def _reject_label(self, reject_label):
        classes = self.classes_
        if reject_label is None:
            if np.issubdtype(classes.dtype, np.number):
                reject_label = -1
            elif np.issubdtype(classes.dtype, np.str_) or all(
                isinstance(label, str) for label in classes
            ):
                reject_label = "reject"
            else:
                raise ValueError(
                    "`reject_label` must be given for class labels that are "
                    "neither numbers nor strings. Received: classes_ of dtype "
                    f"{classes.dtype}"
                )
        if np.any(classes == reject_label):
            raise ValueError(
                "`reject_label` must not be a class label (a value of "
                f"`classes_` {classes.tolist()}). Received: "
                f"reject_label={reject_label!r}"
            )
        try:
            dtype = np.result_type(classes, np.asarray([reject_label]))
        except TypeError:
            dtype = np.dtype(object)
        if dtype.kind == "V":
            dtype = np.dtype(object)
        return reject_label, dtype

    def predict_with_rejection(self, X, threshold, score=None, reject_label=None):
        """Predict the class of every sample, or reject it where unsure.

        A sample is accepted where `confidence(X, score) >= threshold` and
        gets the label of `predict(X)`; a rejected one gets `reject_label`.

        Args:
            X: Features `(n_samples, n_features)`.
            threshold: The smallest accepted confidence, a number; e.g. from
                `anysma.reject.choose_threshold` on validation data. For
                `score="winner_distance"` a negative distance.
            score: The confidence score; see `confidence`.
            reject_label: The label of rejected samples, not a value of
                `classes_`. `None`: `-1` for numeric classes, `"reject"` for
                string classes; other classes need an explicit label.

        Returns:
            An array `(n_samples,)` of values of `classes_` and
            `reject_label`, in a dtype that holds both (e.g. integers for
            integer classes and `-1`, strings for string classes; `object`
            where no other dtype does).
        """
        from anysma.utils.validation import check_number

        check_is_fitted(self)
        threshold = check_number(threshold, "threshold", finite=False)
        reject_label, dtype = self._reject_label(reject_label)
        accepted = self.confidence(X, score=score) >= threshold
        labels = self.predict(X).astype(dtype)
        labels[~accepted] = reject_label
        return labels

    def certified_radius(self, X, norm=2):
        """The certified robustness radius of every sample (GLVQ family).

        No perturbation with `||delta||_norm < radius` changes the class
        that the estimator predicts for `X + delta`: the hypothesis margin
        `(d- - d+) / (2 c)` of `anysma.robustness.certified_radius`.
        RSLVQ predicts by posteriors, not by the nearest prototype, and
        raises a `ValueError`.

        Args:
            X: Features `(n_samples, n_features)`.
            norm: The norm of the perturbations: `1`, `2`, `numpy.inf` or
                `"inf"`.

        Returns:
            A float64 array `(n_samples,)` of non-negative radii.
        """
        from anysma import robustness

        check_is_fitted(self)
        if self._scores != "distances":
            raise ValueError(
                f"{type(self).__name__} has no certified radius: the "
                "certificate applies to the nearest prototype rule (the GLVQ "
                "family), and this model predicts by class posteriors. Use "
                "`anysma.robustness.attack` or `empirical_robust_accuracy`."
            )
        x = self._trust_inputs(X)
        return robustness.certified_radius(self._keras_model(), x, norm=norm)


def _hashable(value):
    if isinstance(value, list):
        return tuple(value)
    return value


class GLVQLossMixin:
    """The GLVQ cost with squashing and margin, `anysma.losses.glvq_loss`."""

    def _check_glvq_loss_params(self):
        _check_option(self.squash_func, "squash_func", losses.SQUASH_FUNCTIONS)
        _check_real(self.beta, "beta", 0.0, include_min=False)
        _check_real(self.margin, "margin", 0.0)
        if self.margin >= 1:
            raise ValueError(
                f"`margin` must be in [0, 1). Received: margin={self.margin!r}"
            )

    def _glvq_sample_loss(self, program):
        squash_func, beta, margin = self.squash_func, float(self.beta), self.margin

        def sample_loss(y_true, distances):
            # The GLVQ cost `(d+ - d-) / (d+ + d-)` of the class distances
            # (what `glvq_loss` computes from the models' flip output).
            return losses.glvq_loss_over_dissimilarities(
                y_true,
                program.class_distances(distances),
                squash_func=squash_func,
                beta=beta,
                margin=margin,
            )

        return ("glvq", squash_func, beta, float(margin)), sample_loss

    def _loss(self, program):
        key, sample_loss = self._glvq_sample_loss(program)
        return key, sample_loss, None


class MetricTransformMixin:
    """`transform` for the models with one global metric (GMLVQ, GRLVQ).

    With the eigendecomposition `Lambda = V diag(e) V^T` of the learned
    relevance matrix (eigenvalues `e` sorted in decreasing order, zero ones
    dropped), `transform(X) = X V diag(sqrt(e))`: the data in the learned
    metric space, its most discriminative direction first. Squared
    Euclidean distances there equal the learned distances,
    `||t(x) - t(w)||^2 = (x - w)^T Lambda (x - w)`.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The projection is computed in the dtype of the input.
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _set_eigendecomposition(self, relevance_matrix, rank):
        eigenvalues, eigenvectors = np.linalg.eigh(relevance_matrix)
        order = np.argsort(eigenvalues)[::-1][:rank]
        self.eigenvalues_ = np.clip(eigenvalues[order], 0.0, None)
        self.eigenvectors_ = eigenvectors[:, order].T

    @property
    def _n_features_out(self):
        return self.eigenvalues_.shape[0]

    def transform(self, X):
        """Project `X` into the learned metric space (see the class docs).

        Args:
            X: Features `(n_samples, n_features)`.

        Returns:
            An array `(n_samples, n_components)`; `n_components` is the rank
            of the learned metric (`eigenvalues_.shape[0]`).
        """
        check_is_fitted(self)
        x = validate_data(self, X, reset=False, dtype=_FLOAT_DTYPES)
        projection = self.eigenvectors_.T * np.sqrt(self.eigenvalues_)
        return x @ projection.astype(x.dtype)


# The parameters every estimator shares, for the class docstrings.
COMMON_PARAMETERS = """\
        prototypes_per_class: The number of prototypes of every class: an
            int, or a list with one int per class (in the order of
            `classes_`).
        initialization: How the prototypes start: `"kmeans"` (weighted
            k-means centers of each class; the class mean for one
            prototype per class), `"class_mean"` (the weighted class mean,
            further prototypes of the class slightly around it) or
            `"random"` (class samples drawn with probability proportional to
            their weight).
        solver: `"lbfgs"` (full-batch L-BFGS-B through scipy with exact
            gradients: fast and accurate on small and medium data),
            `"adam"` or `"sgd"` (Keras optimizers on shuffled mini-batches;
            these also offer `partial_fit`).
        max_iter: The maximal number of L-BFGS iterations, or of epochs of
            the mini-batch solvers.
        tol: Convergence tolerance. L-BFGS stops when an iteration decreases
            the loss by less than `tol * max(|loss|, 1)`; the mini-batch
            solvers stop when the epoch loss has not improved by more than
            `tol` for 10 epochs.
        learning_rate: Learning rate of `"adam"` and `"sgd"`.
        batch_size: Mini-batch size of `"adam"` and `"sgd"`.
        random_state: Seed (int), `numpy.random.RandomState` or `None`:
            drives the initialization and the shuffling; with a fixed seed
            fits are reproducible.
        verbose: Show a Keras progress bar of the loss (0: silent).
"""
