"""Confidence scores and a reject option for the LVQ models of `anysma.models`.

A classifier with a reject option answers "I don't know" where it is
unsure: it predicts a class only where a confidence score reaches a
threshold, and rejects the sample otherwise. Rejecting the least confident
samples trades coverage (the fraction of accepted samples) for accuracy on
the accepted ones.

**Convention: a higher confidence means more confident, for every score.**
A sample is accepted where `confidence >= threshold`.

The scores, with `d_j` the (non-negative) dissimilarity of a sample to
prototype `j`, `d+` the dissimilarity to the closest prototype (the winner,
whose class is the prediction of the nearest prototype rule) and `d-` the
dissimilarity to the closest prototype of any other class:

| score                   | confidence                   | range     |
|-------------------------|------------------------------|-----------|
| `"relative_similarity"` | `(d- - d+) / (d- + d+)`      | `[0, 1]`  |
| `"winner_distance"`     | `-d+` (the negative!)        | `<= 0`    |
| `"posterior"` (RSLVQ)   | `max_c p(c given x)`         | `(0, 1]`  |

- **Relative similarity** (Fischer, Hammer and Wersing, 2015) measures how
  clearly the winner beats the best prototype of another class: 0 on the
  decision border (`d+ = d-`), 1 on a prototype. It is the negative GLVQ
  cost `mu` with the predicted class in place of the true one, and needs
  nothing but the distances to the prototypes (Fischer et al. studied it as
  an efficient rejection measure for prototype-based classifiers). Where
  `d+ = d- = 0` it is 0, with a finite gradient.
- **Winner distance** is an outlier score: a sample far from all prototypes
  is far from the training data, whatever the class. As a confidence it
  is negated, so a threshold `-t` rejects the samples farther than `t`
  from their winner.
- **Posterior** is the largest class posterior of RSLVQ's Gaussian mixture
  (Seo and Obermayer's model); if these were the true posteriors,
  rejecting by them with Chow's threshold would be optimal.

The module has three layers:

1. score functions of tensors, written with `keras.ops` (they work on
   every backend and are differentiable): `class_dissimilarities`,
   `relative_similarity`, `winner_distance` and `posterior_confidence`;
2. model functions that return NumPy arrays: `confidence`,
   `predict_with_confidence`, `predict_with_rejection` and
   `accuracy_coverage_curve`;
3. threshold selection on a validation set, for any classifier:
   `accuracy_coverage_from_confidences` and `choose_threshold`, either by
   Chow's rule (minimize `errors + rejection_cost * rejections`) or for a
   target coverage.

Wherever a function takes a `model`, it also takes a fitted estimator of
`anysma.sklearn` (`GLVQClassifier`, ..., `RSLVQClassifier`): it runs on the
estimator's `to_keras_model()`, its labels `y` are values of `classes_`,
and the labels it returns are class indices into `classes_` (the
estimators' own `confidence` and `predict_with_rejection` methods return
labels of `classes_`).

The models' predictions are those of the models themselves: the class of
the nearest prototype for the GLVQ family (`GLVQ`, `GMLVQ`, `LGMLVQ`,
`GRLVQ`, `GTLVQ`, `RTLVQ`; the argmax of their output) and the argmax of
the class posteriors for `RSLVQ` (whose winner can be of another class
near the borders; its default score is therefore the posterior).

Example:

>>> import numpy as np
>>> import anysma
>>> x = np.array([[0.0, 0.0], [4.0, 4.0], [2.0, 2.1]], dtype="float32")
>>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
>>> model = model.pre_training(x[:2], [0, 1], n_init=1, random_state=0)
>>> print(np.round(anysma.reject.confidence(model, x), 3))
[1.   1.   0.05]
>>> anysma.reject.predict_with_rejection(model, x, threshold=0.5).tolist()
[0, 1, -1]

References:
    Fischer, Hammer and Wersing, "Efficient rejection strategies for
    prototype-based classification", Neurocomputing 169, 2015.

    Chow, "On optimum recognition error and reject tradeoff", IEEE
    Transactions on Information Theory 16(1), 1970.
"""

import collections
import numbers

import keras
import numpy as np
from keras import ops

from anysma.models.lvq import _to_numpy
from anysma.ops._validation import static_shape
from anysma.ops.reductions import selected_max
from anysma.ops.reductions import selected_min
from anysma.probability_transformations import _to_compute_dtype
from anysma.utils.validation import check_int
from anysma.utils.validation import check_number
from anysma.utils.validation import check_option

SCORES = ("relative_similarity", "winner_distance", "posterior")


# === Argument checks ===


def _check_prototype_labels(prototype_labels, minimum_classes=1):
    """`prototype_labels` as a list of ints covering `0, ..., max`."""
    if isinstance(prototype_labels, np.ndarray):
        prototype_labels = prototype_labels.tolist()
    valid = (
        isinstance(prototype_labels, (list, tuple))
        and len(prototype_labels) > 0
        and all(
            isinstance(label, numbers.Integral)
            and not isinstance(label, bool)
            and label >= 0
            for label in prototype_labels
        )
    )
    if not valid:
        raise ValueError(
            "`prototype_labels` must be a non-empty list of non-negative ints "
            "(the class index of each prototype). "
            f"Received: prototype_labels={prototype_labels!r}"
        )
    labels = [int(label) for label in prototype_labels]
    missing = sorted(set(range(max(labels) + 1)) - set(labels))
    if missing:
        raise ValueError(
            "`prototype_labels` must give every class in [0, max label] at "
            f"least one prototype; classes {missing} have none. "
            f"Received: prototype_labels={prototype_labels!r}"
        )
    if max(labels) + 1 < minimum_classes:
        raise ValueError(
            f"`prototype_labels` must name at least {minimum_classes} classes. "
            f"Received: prototype_labels={prototype_labels!r}"
        )
    return labels


def _check_dissimilarities(dissimilarities, prototypes=None):
    """`dissimilarities` as a float tensor `(..., P)`, and the result dtype."""
    tensors, dtype = _to_compute_dtype(dissimilarities)
    shape = static_shape(tensors)
    if len(shape) < 1 or shape[-1] == 0:
        raise ValueError(
            "`dissimilarities` must have a last axis with one value per "
            f"prototype, (..., prototypes). Received: shape={shape}"
        )
    if prototypes is not None and shape[-1] not in (None, prototypes):
        raise ValueError(
            f"`dissimilarities` must have one value per prototype on the last "
            f"axis ({prototypes}, the length of `prototype_labels`). "
            f"Received: dissimilarities.shape={shape}"
        )
    return tensors, dtype


def _check_model(model):
    if not (
        hasattr(model, "prototype_dissimilarities")
        and hasattr(model, "prototype_labels")
    ):
        raise TypeError(
            "`model` must be an LVQ model of `anysma.models` (GLVQ, GMLVQ, "
            "LGMLVQ, GRLVQ, GTLVQ, RTLVQ or RSLVQ), with "
            "`prototype_dissimilarities` and `prototype_labels`. "
            f"Received: model of type {type(model).__name__}"
        )
    return model


def _is_estimator(model):
    """Whether `model` is a scikit-learn estimator of `anysma.sklearn`.

    Duck typing (a `to_keras_model` method), so that this module does
    not import `anysma.sklearn` (which builds on it).
    """
    return callable(getattr(model, "to_keras_model", None))


def _resolve_model(model, x=None, y=None):
    """`(model, x, y)` with a fitted estimator replaced by its Keras model.

    For an estimator of `anysma.sklearn`: `to_keras_model()` (which raises
    `NotFittedError` before `fit`), `x` validated as its own methods do
    (float32), and the labels `y` (values of `classes_`) mapped to class
    indices. Anything else is returned as it is.
    """
    if not _is_estimator(model):
        return model, x, y
    keras_model = model.to_keras_model()
    if x is not None:
        from sklearn.utils.validation import validate_data

        x = validate_data(model, x, reset=False, dtype=(np.float64, np.float32))
        x = x.astype(keras.backend.standardize_dtype(keras_model.inputs[0].dtype))
    if y is not None:
        y = _estimator_class_ids(model.classes_, y)
    return keras_model, x, y


def _estimator_class_ids(classes, y):
    """The indices in `classes` (sorted) of the labels `y` `(samples,)`."""
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(
            "For a scikit-learn estimator, `y` must be 1-D class labels (values "
            f"of `classes_`). Received: y.shape={labels.shape}"
        )
    unknown = ~np.isin(labels, classes)
    if np.any(unknown):
        raise ValueError(
            f"`y` holds labels that are not in `classes_` {classes.tolist()}. "
            f"Received: unknown labels {np.unique(labels[unknown]).tolist()}"
        )
    return np.searchsorted(classes, labels).astype("int64")


def _has_posteriors(model):
    from anysma.models.lvq import RSLVQ

    return isinstance(model, RSLVQ)


def _check_score(score, model):
    """The score name; `None` is the model's default."""
    if score is None:
        return "posterior" if _has_posteriors(model) else "relative_similarity"
    check_option(score, "score", SCORES)
    if score == "posterior" and not _has_posteriors(model):
        raise ValueError(
            "`score` must be 'relative_similarity' or 'winner_distance' for a "
            f"{type(model).__name__}: 'posterior' needs a model with class "
            f"posteriors (RSLVQ). Received: score={score!r}"
        )
    return score


def _as_vector(values, name):
    """A 1-D NumPy array of `values` (array-like or backend tensor)."""
    try:
        if isinstance(values, (list, tuple, np.ndarray)):
            array = np.asarray(values)
        else:
            array = np.asarray(keras.ops.convert_to_numpy(values))
    except Exception as error:  # any backend's conversion error
        raise TypeError(
            f"`{name}` must be an array or a tensor. Received: {name} of type "
            f"{type(values).__name__}"
        ) from error
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"`{name}` must be a non-empty 1-D array, one value per sample. "
            f"Received: {name}.shape={array.shape}"
        )
    return array


def _check_confidences_and_correct(confidences, correct):
    confidences = _as_vector(confidences, "confidences")
    if not (
        np.issubdtype(confidences.dtype, np.floating)
        or np.issubdtype(confidences.dtype, np.integer)
    ) or np.any(np.isnan(confidences.astype("float64"))):
        raise ValueError(
            "`confidences` must hold real numbers without NaN. Received: "
            f"confidences with dtype {confidences.dtype} "
            f"(first values {confidences[:5].tolist()})"
        )
    correct = _as_vector(correct, "correct")
    if correct.dtype != np.bool_:
        if not (
            np.issubdtype(correct.dtype, np.number)
            and np.all((correct == 0) | (correct == 1))
        ):
            raise ValueError(
                "`correct` must hold booleans or 0/1 values (whether each "
                f"prediction is right). Received: correct={correct[:5].tolist()}"
                f"{' ...' if correct.size > 5 else ''}"
            )
        correct = correct == 1
    if correct.shape != confidences.shape:
        raise ValueError(
            "`correct` must have one value per confidence. Received: "
            f"correct.shape={correct.shape}, confidences.shape={confidences.shape}"
        )
    return confidences.astype("float64"), correct


def _class_ids(y, samples):
    """Integer class ids from labels `(samples,)` or one-hot `(samples, K)`."""
    array = np.asarray(keras.ops.convert_to_numpy(y))
    if array.ndim == 2 and array.shape[-1] > 1:
        array = np.argmax(array, axis=-1)
    elif array.ndim == 2:
        array = array[:, 0]
    valid = (
        array.ndim == 1
        and array.shape[0] == samples
        and np.issubdtype(array.dtype, np.number)
        and np.all(np.mod(array, 1) == 0)
        and np.all(array >= 0)
    )
    if not valid:
        raise ValueError(
            f"`y` must be {samples} non-negative integer class labels, "
            "(samples,) or one-hot (samples, classes). "
            f"Received: y.shape={np.shape(y)}"
        )
    return array.astype("int64")


# === Scores of tensors ===


def _safe_divide(numerator, denominator):
    """`numerator / denominator`, and 0 (with a finite gradient) where it is 0/0.

    Dividing by a substituted 1 (instead of masking the quotient only) keeps
    the untaken branch of `where` finite, so its gradient is 0 and not NaN.
    """
    nonzero = ops.not_equal(denominator, 0)
    safe_denominator = ops.where(nonzero, denominator, ops.ones_like(denominator))
    return ops.where(nonzero, numerator / safe_denominator, ops.zeros_like(numerator))


def _membership(prototype_labels):
    """The static table `(P, K)`: whether prototype `j` belongs to class `k`."""
    membership = np.zeros((len(prototype_labels), max(prototype_labels) + 1), bool)
    membership[np.arange(len(prototype_labels)), prototype_labels] = True
    return membership


def _class_dissimilarities(dissimilarities, prototype_labels):
    """`class_dissimilarities` on checked arguments (compute dtype)."""
    # (..., P, 1) against (P, K); entries of other classes are replaced by
    # the row maximum, which leaves the minima unchanged.
    expanded = ops.expand_dims(dissimilarities, -1)
    highest = ops.expand_dims(selected_max(dissimilarities, -1, keepdims=True), -1)
    return selected_min(
        ops.where(_membership(prototype_labels), expanded, highest), axis=-2
    )


def _winner_and_runner_up(class_distances):
    """`(d+, d-)`: the smallest and the second smallest class dissimilarity."""
    winner = selected_min(class_distances, axis=-1)
    num_classes = static_shape(class_distances)[-1]
    is_winner = ops.greater(
        ops.one_hot(ops.argmin(class_distances, axis=-1), num_classes), 0.5
    )
    highest = selected_max(class_distances, axis=-1, keepdims=True)
    runner_up = selected_min(ops.where(is_winner, highest, class_distances), axis=-1)
    return winner, runner_up


def _relative_similarity(class_distances):
    """The relative similarity from class dissimilarities `(..., K)`."""
    winner, runner_up = _winner_and_runner_up(class_distances)
    return _safe_divide(runner_up - winner, runner_up + winner)


def class_dissimilarities(dissimilarities, prototype_labels):
    """The dissimilarity of each class: that of its closest prototype.

    `D_c = min_{j: c(j) = c} d_j`, where `c(j)` is the class of prototype
    `j`. The argmin over the classes is the prediction of the nearest
    prototype rule. The gradient goes to the closest prototype of each
    class only.

    Args:
        dissimilarities: `(..., prototypes)`, one value per prototype, e.g.
            `model.prototype_dissimilarities(x)`.
        prototype_labels: The class index of every prototype (e.g.
            `model.prototype_labels`): non-negative ints, every class in
            `[0, max label]` present.

    Returns:
        The class dissimilarities `(..., classes)` with `classes =
        max(prototype_labels) + 1`, in the float dtype of the input.

    Example:

    >>> import numpy as np
    >>> distances = np.array([[3.0, 1.0, 2.0]])
    >>> np.asarray(class_dissimilarities(distances, [0, 0, 1])).tolist()
    [[1.0, 2.0]]
    """
    labels = _check_prototype_labels(prototype_labels)
    tensors, dtype = _check_dissimilarities(dissimilarities, len(labels))
    return ops.cast(_class_dissimilarities(tensors, labels), dtype)


def relative_similarity(dissimilarities, prototype_labels):
    """The relative similarity `(d- - d+) / (d- + d+)` of every sample.

    `d+` is the dissimilarity to the closest prototype (whose class is the
    prediction), `d-` the dissimilarity to the closest prototype of any
    other class. For non-negative dissimilarities the score lies in
    `[0, 1]`: 0 on the decision border, 1 on a prototype. Where both are 0
    the score is 0, with a finite (zero) gradient.

    Args:
        dissimilarities: Non-negative dissimilarities `(..., prototypes)`,
            e.g. `model.prototype_dissimilarities(x)`.
        prototype_labels: The class index of every prototype (e.g.
            `model.prototype_labels`): non-negative ints, every class in
            `[0, max label]` present, at least two classes.

    Returns:
        The scores `(...)`, in the float dtype of the input (half precision
        is computed in float32).

    Example:

    >>> import numpy as np
    >>> distances = np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]])
    >>> print(np.round(np.asarray(relative_similarity(distances, [0, 1, 1])), 3))
    [0.333 0.   ]

    Reference:
        Fischer, Hammer and Wersing, "Efficient rejection strategies for
        prototype-based classification", Neurocomputing 169, 2015.
    """
    labels = _check_prototype_labels(prototype_labels, minimum_classes=2)
    tensors, dtype = _check_dissimilarities(dissimilarities, len(labels))
    scores = _relative_similarity(_class_dissimilarities(tensors, labels))
    return ops.cast(scores, dtype)


def winner_distance(dissimilarities):
    """The dissimilarity to the closest prototype, `d+ = min_j d_j`.

    An outlier score: large where a sample is far from every prototype.
    **Larger means less confident**; `confidence(model, x,
    score="winner_distance")` returns its negative.

    Args:
        dissimilarities: `(..., prototypes)`, one value per prototype.

    Returns:
        The minima `(...)`, in the float dtype of the input. The gradient
        goes to the (first) closest prototype only.

    Example:

    >>> import numpy as np
    >>> np.asarray(winner_distance(np.array([[3.0, 1.0, 2.0]]))).tolist()
    [1.0]
    """
    tensors, dtype = _check_dissimilarities(dissimilarities)
    return ops.cast(selected_min(tensors, axis=-1), dtype)


def posterior_confidence(log_posteriors):
    """The largest class posterior, `max_c p(c | x)`, from log-posteriors.

    Computed as `1 / sum_c exp(l_c - max l)`, which is the softmax of the
    largest entry: it never overflows, is at most 1 exactly, and equals
    `exp(max l)` for normalized log-posteriors (e.g. the output of
    `anysma.models.RSLVQ`). Unnormalized logits work, too.

    Args:
        log_posteriors: Class log-posteriors or logits `(..., classes)`.

    Returns:
        The confidences `(...)` in `(0, 1]`, in the float dtype of the input.

    Example:

    >>> import numpy as np
    >>> log_posteriors = np.log(np.array([[0.7, 0.2, 0.1]]))
    >>> print(np.round(np.asarray(posterior_confidence(log_posteriors)), 3))
    [0.7]
    """
    tensors, dtype = _to_compute_dtype(log_posteriors)
    shape = static_shape(tensors)
    if len(shape) < 1 or shape[-1] == 0:
        raise ValueError(
            "`log_posteriors` must have a last axis with one value per class, "
            f"(..., classes). Received: shape={shape}"
        )
    highest = selected_max(tensors, axis=-1, keepdims=True)
    normalizer = ops.sum(ops.exp(tensors - highest), axis=-1)
    return ops.cast(1.0 / normalizer, dtype)


# === Models ===


def _scores(model, x, score, batch_size, with_labels):
    """`(labels or None, confidences)` of `model` on `x` as NumPy arrays."""
    labels = None
    if score == "posterior" or (with_labels and _has_posteriors(model)):
        log_posteriors = model.predict(x, batch_size=batch_size, verbose=0)
        labels = np.argmax(log_posteriors, axis=-1).astype("int64")
        if score == "posterior":
            return labels, _to_numpy(posterior_confidence(log_posteriors))
    dissimilarities = model.prototype_dissimilarities(x, batch_size=batch_size)
    prototype_labels = _check_prototype_labels(model.prototype_labels, 2)
    tensors, _ = _check_dissimilarities(dissimilarities, len(prototype_labels))
    class_distances = _class_dissimilarities(tensors, prototype_labels)
    if labels is None:
        labels = _to_numpy(ops.argmin(class_distances, axis=-1)).astype("int64")
    if score == "relative_similarity":
        scores = _relative_similarity(class_distances)
    else:
        # Higher = more confident: the negative of the outlier score.
        scores = -selected_min(class_distances, axis=-1)
    return labels, _to_numpy(scores)


def confidence(model, x, score=None, batch_size=None):
    """The confidence of `model` in its prediction for every sample of `x`.

    Higher means more confident, for every score (see the module
    docstring): `"relative_similarity"` in `[0, 1]`, `"winner_distance"`
    as the **negative** distance to the closest prototype, `"posterior"`
    (RSLVQ only) the largest class posterior.

    Args:
        model: An LVQ model of `anysma.models` (`GLVQ`, `GMLVQ`, `LGMLVQ`,
            `GRLVQ`, `GTLVQ`, `RTLVQ` or `RSLVQ`), or a fitted estimator of
            `anysma.sklearn` (see the module docstring).
        x: Features `(samples, input_dim)`.
        score: `"relative_similarity"`, `"winner_distance"`, `"posterior"`
            or `None`: `"posterior"` for `RSLVQ`, `"relative_similarity"`
            for the other models.
        batch_size: Batch size of the forward pass.

    Returns:
        A NumPy array `(samples,)`.

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
    >>> x = np.array([[0.0, 0.0], [4.0, 4.0]], dtype="float32")
    >>> model = model.pre_training(x, [0, 1], n_init=1, random_state=0)
    >>> confidence(model, np.array([[1.0, 1.0]], "float32"),
    ...            score="winner_distance").tolist()
    [-2.0]
    """
    model, x, _ = _resolve_model(model, x)
    _check_model(model)
    score = _check_score(score, model)
    return _scores(model, x, score, batch_size, with_labels=False)[1]


def predict_with_confidence(model, x, score=None, batch_size=None):
    """The predicted class and the confidence of every sample of `x`.

    The predictions are the model's own: the class of the nearest prototype
    for the GLVQ family (the argmax of their output), the class of the
    largest posterior for `RSLVQ`.

    Args:
        model: An LVQ model of `anysma.models`, or a fitted estimator of
            `anysma.sklearn` (see the module docstring).
        x: Features `(samples, input_dim)`.
        score: The confidence score; see `confidence`.
        batch_size: Batch size of the forward pass.

    Returns:
        `(labels, confidences)`: NumPy arrays `(samples,)`, integer class
        indices and the confidences (higher = more confident).

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
    >>> x = np.array([[0.0, 0.0], [4.0, 4.0]], dtype="float32")
    >>> model = model.pre_training(x, [0, 1], n_init=1, random_state=0)
    >>> labels, confidences = predict_with_confidence(model, x)
    >>> labels.tolist(), confidences.tolist()
    ([0, 1], [1.0, 1.0])
    """
    model, x, _ = _resolve_model(model, x)
    _check_model(model)
    score = _check_score(score, model)
    return _scores(model, x, score, batch_size, with_labels=True)


def predict_with_rejection(
    model, x, threshold, score=None, reject_label=-1, batch_size=None
):
    """Predict the class of every sample, or reject it where unsure.

    A sample is accepted where its confidence is at least `threshold`
    (`confidence >= threshold`) and gets `reject_label` otherwise.

    Args:
        model: An LVQ model of `anysma.models`, or a fitted estimator of
            `anysma.sklearn` (see the module docstring).
        x: Features `(samples, input_dim)`.
        threshold: The smallest accepted confidence, a number (not NaN);
            e.g. from `choose_threshold`. For `score="winner_distance"` it
            is a negative distance: `-t` rejects the samples farther than
            `t` from their closest prototype.
        score: The confidence score; see `confidence`.
        reject_label: The label of rejected samples, an int that is not a
            class index (`[0, num_classes)`).
        batch_size: Batch size of the forward pass.

    Returns:
        An integer NumPy array `(samples,)`: the predicted classes, with
        `reject_label` at the rejected samples.

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
    >>> x = np.array([[0.0, 0.0], [4.0, 4.0]], dtype="float32")
    >>> model = model.pre_training(x, [0, 1], n_init=1, random_state=0)
    >>> predict_with_rejection(
    ...     model, np.array([[0.5, 0.5], [2.0, 1.9]], "float32"),
    ...     threshold=0.2).tolist()
    [0, -1]
    """
    model, x, _ = _resolve_model(model, x)
    _check_model(model)
    threshold = check_number(threshold, "threshold", finite=False)
    reject_label = check_int(reject_label, "reject_label")
    num_classes = len(set(model.prototype_labels))
    if 0 <= reject_label < num_classes:
        raise ValueError(
            "`reject_label` must not be a class index (the model has classes "
            f"0, ..., {num_classes - 1}). Received: reject_label={reject_label}"
        )
    score = _check_score(score, model)
    labels, confidences = _scores(model, x, score, batch_size, with_labels=True)
    return np.where(confidences >= threshold, labels, reject_label).astype("int64")


# === Accuracy-coverage curves and thresholds ===

AccuracyCoverageCurve = collections.namedtuple(
    "AccuracyCoverageCurve", ["thresholds", "coverage", "accuracy"]
)
AccuracyCoverageCurve.__doc__ = """Accuracy against coverage, one entry per threshold.

Attributes:
    thresholds: The distinct confidences, increasing. Threshold `t`
        accepts the samples with `confidence >= t`.
    coverage: The fraction of accepted samples at each threshold
        (decreasing, from 1 at the smallest threshold).
    accuracy: The accuracy on the accepted samples at each threshold.
"""


def _accepted_counts(confidences, correct):
    """`(thresholds, accepted, accepted_correct)` for every distinct threshold.

    Threshold `thresholds[i]` (increasing) accepts `accepted[i]` samples,
    `accepted_correct[i]` of them correctly classified.
    """
    order = np.argsort(-confidences, kind="stable")
    ordered = confidences[order]
    cumulative_correct = np.cumsum(correct[order])
    # The last position of every run of equal confidences: all ties are
    # accepted together.
    ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    thresholds = ordered[ends][::-1]
    accepted = (ends + 1)[::-1]
    accepted_correct = cumulative_correct[ends][::-1]
    return thresholds, accepted, accepted_correct


def accuracy_coverage_from_confidences(confidences, correct):
    """The accuracy-coverage curve of any classifier with confidences.

    For every distinct confidence `t` (a threshold accepting the samples
    with `confidence >= t`): the coverage (fraction of accepted samples)
    and the accuracy on the accepted samples. Rejecting nothing is the
    first entry (coverage 1, the plain accuracy); rejecting everything is
    left out (no accuracy).

    Args:
        confidences: `(samples,)`, higher = more confident; no NaN.
        correct: `(samples,)` booleans (or 0/1): whether each prediction is
            right.

    Returns:
        An `AccuracyCoverageCurve(thresholds, coverage, accuracy)` of NumPy
        arrays of equal length (the number of distinct confidences).

    Example:

    >>> curve = accuracy_coverage_from_confidences(
    ...     [0.9, 0.8, 0.8, 0.1], [True, True, False, False])
    >>> curve.thresholds.tolist(), curve.coverage.tolist()
    ([0.1, 0.8, 0.9], [1.0, 0.75, 0.25])
    >>> [round(value, 3) for value in curve.accuracy.tolist()]
    [0.5, 0.667, 1.0]
    """
    confidences, correct = _check_confidences_and_correct(confidences, correct)
    thresholds, accepted, accepted_correct = _accepted_counts(confidences, correct)
    return AccuracyCoverageCurve(
        thresholds=thresholds,
        coverage=accepted / confidences.size,
        accuracy=accepted_correct / accepted,
    )


def accuracy_coverage_curve(model, x, y, score=None, batch_size=None):
    """The accuracy-coverage curve of an LVQ model on labelled data.

    Runs the model once, compares its predictions with `y` and returns
    `accuracy_coverage_from_confidences(confidences, predictions == y)`.
    For other classifiers, call `accuracy_coverage_from_confidences`
    directly.

    Args:
        model: An LVQ model of `anysma.models`, or a fitted estimator of
            `anysma.sklearn` (see the module docstring).
        x: Features `(samples, input_dim)`.
        y: The true classes, integers `(samples,)` or one-hot
            `(samples, classes)`; for an estimator, labels of `classes_`.
        score: The confidence score; see `confidence`.
        batch_size: Batch size of the forward pass.

    Returns:
        An `AccuracyCoverageCurve(thresholds, coverage, accuracy)`.

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
    >>> x = np.array([[0.0, 0.0], [4.0, 4.0]], dtype="float32")
    >>> model = model.pre_training(x, [0, 1], n_init=1, random_state=0)
    >>> test = np.array([[0.0, 0.1], [2.1, 2.0], [1.9, 2.0]], "float32")
    >>> curve = accuracy_coverage_curve(model, test, [0, 0, 0])
    >>> curve.coverage.tolist(), curve.accuracy.tolist()
    ([1.0, 0.6666666666666666, 0.3333333333333333], [0.6666666666666666, 1.0, 1.0])
    """
    model, x, y = _resolve_model(model, x, y)
    if not hasattr(model, "prototype_dissimilarities"):
        raise TypeError(
            "`model` must be an LVQ model of `anysma.models`; for precomputed "
            "confidences use `accuracy_coverage_from_confidences(confidences, "
            f"correct)`. Received: model of type {type(model).__name__}"
        )
    labels, confidences = predict_with_confidence(model, x, score, batch_size)
    y = _class_ids(y, labels.shape[0])
    return accuracy_coverage_from_confidences(confidences, labels == y)


def choose_threshold(
    confidences, correct, *, rejection_cost=None, target_coverage=None
):
    """A rejection threshold from validation data; give exactly one criterion.

    - `rejection_cost=c` (Chow's rule): the threshold that minimizes
      `errors + c * rejections` on the given samples, where an error costs
      1 and a rejection `0 < c < 1` (a rejection should cost less than an
      error and more than a correct answer). Of equally good thresholds the
      smallest (the largest coverage) is returned; `inf` where rejecting
      every sample is best.
    - `target_coverage=q`: the largest threshold that still accepts at
      least the fraction `q` of the samples (ties at the threshold are all
      accepted, so the coverage can exceed `q`).

    The returned threshold accepts the samples with `confidence >= threshold`
    (as `predict_with_rejection` does). With the true class posteriors as
    confidences, Chow's optimal threshold is `1 - rejection_cost`; on data,
    this function finds the best threshold for any score.

    Args:
        confidences: `(samples,)` confidences (higher = more confident),
            e.g. `confidence(model, x_validation)`.
        correct: `(samples,)` booleans: whether each prediction is right.
        rejection_cost: The cost of a rejection relative to an error, in
            `(0, 1)`.
        target_coverage: The smallest fraction of accepted samples, in
            `(0, 1]`.

    Returns:
        The threshold, a float: one of the confidences, or `inf`.

    Example:

    >>> confidences = [0.9, 0.7, 0.6, 0.4, 0.2]
    >>> correct = [True, True, False, True, False]
    >>> choose_threshold(confidences, correct, rejection_cost=0.4)
    0.7
    >>> choose_threshold(confidences, correct, target_coverage=0.8)
    0.4

    Reference:
        Chow, "On optimum recognition error and reject tradeoff", IEEE
        Transactions on Information Theory 16(1), 1970.
    """
    if (rejection_cost is None) == (target_coverage is None):
        raise ValueError(
            "Exactly one of `rejection_cost` and `target_coverage` must be "
            f"given. Received: rejection_cost={rejection_cost!r}, "
            f"target_coverage={target_coverage!r}"
        )
    if rejection_cost is not None:
        rejection_cost = check_number(
            rejection_cost,
            "rejection_cost",
            minimum=0,
            maximum=1,
            include_minimum=False,
            include_maximum=False,
        )
    else:
        target_coverage = check_number(
            target_coverage,
            "target_coverage",
            minimum=0,
            maximum=1,
            include_minimum=False,
        )
    confidences, correct = _check_confidences_and_correct(confidences, correct)
    samples = confidences.size
    thresholds, accepted, accepted_correct = _accepted_counts(confidences, correct)
    if target_coverage is not None:
        # `accepted / samples` is the coverage the curve reports; the
        # thresholds increase, so the last one that reaches the target wins.
        reaching = np.flatnonzero(accepted / samples >= target_coverage)
        return float(thresholds[reaching[-1]])
    # The candidates: every distinct confidence, then "reject everything".
    errors = np.append(accepted - accepted_correct, 0)
    rejections = np.append(samples - accepted, samples)
    costs = errors + rejection_cost * rejections
    # A tolerance for the rounding of `rejection_cost * rejections`.
    best = np.flatnonzero(costs <= costs.min() + 1e-9 * max(1.0, costs.min()))[0]
    candidates = np.append(thresholds, np.inf)
    return float(candidates[best])
