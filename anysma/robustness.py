"""Certified and empirical adversarial robustness of the LVQ models.

A nearest prototype classifier predicts the class of its closest
prototype. Where its distances change by at most a known amount when the
input moves, the gap between the closest prototype (`d+`, the predicted
class) and the closest prototype of any other class (`d-`) certifies that
no perturbation of a smaller size can change the prediction.

**The certificate (hypothesis margin).** For a distance induced by a
seminorm `||.||_s`, `d(x, w) = ||x - w||_s`, the prediction of `x` cannot
change under any perturbation `delta` with `||delta||_s < (d- - d+) / 2`
(Saralajew, Holdijk, Rees and Villmann, 2020): by the triangle inequality
every distance moves by at most `||delta||_s`. For a perturbation measured
in another norm `||.||` (the `norm` argument: the L1, L2 or L-infinity
norm), a constant `c` with `||v||_s <= c ||v||` for all `v` turns this into

    radius = (d- - d+) / (2 c).

All distances here are the models' own, `sqrt` of the squared distances
that the models compute (clamped at 0 first; a `GLVQ` with another
Minkowski order than 2 computes the norm itself). Every other distance of
the models has the form `d_j(x) = ||A_j x - v_j||_2`, a Euclidean distance after a
linear map `A_j` (for the tangent models: the distance to a set), so it
is `c_j`-Lipschitz, `|d_j(x + delta) - d_j(x)| <= c_j ||delta||`, with
`c_j` the operator norm of `A_j` from the perturbation norm to L2. The
radius used here is, for the predicted class `y` and the classes of the
prototypes `c(j)`,

    radius = max_{k: c(k) = y} min_{j: c(j) != y} (d_j - d_k) / (c_k + c_j),

which is `(d- - d+) / (2 c)` when all prototypes share one constant `c`
(all models but `LGMLVQ` and `GTLVQ`, and `GTLVQ` with orthonormal bases
for `norm=2`), and for local matrices a valid bound that is tighter than
the largest constant of all prototypes.

The constants `c` (`D` the number of features; `M_i` the `i`-th row of a
matrix `M` that maps row vectors, `v -> v M`; `sigma_max` the largest
singular value):

- `GLVQ`, `d_j(x) = ||x - w_j||`: `c = 1` (`norm=2`), `1` (`norm=1`),
  `sqrt(D)` (`norm=inf`). With `order_p=p` (`d_j(x) = ||x - w_j||_p`, not
  squared): `c = D^max(0, 1/p - 1/norm)` by Hoelder's inequality, e.g. 1
  for an L-infinity GLVQ against L-infinity perturbations (the model's own
  norm: the exact hypothesis margin `(d- - d+) / 2`), and against L2 ones.
- `GRLVQ`, `d_j(x) = sqrt(sum_i lambda_i (x_i - w_ji)^2)`:
  `sqrt(max_i lambda_i)` (`norm=2` and `norm=1`), `sqrt(sum_i lambda_i)`
  (= 1, `norm=inf`).
- `GMLVQ`, `d_j(x) = ||(x - w_j) Omega||`: `sigma_max(Omega)` (`norm=2`),
  `max_i ||Omega_i||` (`norm=1`), `min(sqrt(D) sigma_max(Omega),
  sum_i ||Omega_i||)` (`norm=inf`).
- `LGMLVQ`, `d_j(x) = ||(x - w_j) Omega_j||`: as `GMLVQ`, one constant per
  prototype (from its own matrix, or its class's).
- `GTLVQ`, `d_j(x) = ||P_j (x - w_j)||`: as `GMLVQ` with the matrix `P_j`
  of each prototype: `sigma_max(P_j)` (1 for an orthonormal basis,
  `norm=2`), `max_i ||P_j e_i|| <= 1` (`norm=1`),
  `min(sqrt(D) sigma_max(P_j), sum_i ||P_j e_i||)` (`norm=inf`).
- `RTLVQ`, `d_j(x)` the distance to the box `w_j + W_j [-b_j, b_j]`: as
  `GLVQ`, `1`, `1` and `sqrt(D)`.

With `P_j = I - W_j W_j^T`. The `norm=1` constants are exact (the largest
L2 norm of a column of the map); `||v||_2 <= sqrt(D) ||v||_inf` and
`||v M||_2 <= sum_i |v_i| ||M_i||` give the two `norm=inf` bounds (the
exact L-infinity-to-L2 norm of a general matrix is NP-hard to compute); for
a diagonal map (`GRLVQ`) `sqrt(sum lambda)` is exact. `RTLVQ` clips the
subspace coordinates: its distance is the Euclidean distance to a convex
set (for orthonormal bases, which its constraint keeps), which is
1-Lipschitz in L2, so the constants of `GLVQ` apply (conservative).

`RSLVQ` is not supported by the certificate: it predicts the class of the
largest posterior of a Gaussian mixture, which is not the nearest
prototype rule (the certificate functions raise a `ValueError`); `attack`
and `empirical_robust_accuracy` do support it.

Every function also takes a fitted estimator of `anysma.sklearn` in place
of `model` (it runs on the estimator's `to_keras_model()`); its labels `y`
are then values of `classes_`.

The functions:

- `certified_radius`: the radius above for every sample, about the
  predicted class;
- `certified_accuracy`: the fraction of samples that are classified
  correctly *and* certified beyond `epsilon` (a curve for an array of
  `epsilon`);
- `exact_euclidean_margin`: for models with a squared Euclidean distance
  after one global linear map (`GLVQ`, `GRLVQ`, `GMLVQ`), the exact
  smallest L2 perturbation that changes the prediction (an upper bound on
  every certified L2 radius);
- `attack` and `empirical_robust_accuracy`: projected gradient descent
  (PGD) in an L2 or L-infinity ball, an empirical upper bound on the
  robust accuracy.

Example:

>>> import numpy as np
>>> import anysma
>>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
>>> _ = model.measuring_module.prototypes.assign(
...     np.array([[0.0, 0.0], [4.0, 0.0]], "float32"))
>>> x = np.array([[1.0, 0.0], [1.0, 3.0]], "float32")
>>> print(np.round(certified_radius(model, x), 3))
[1.   0.54]
>>> print(np.round(exact_euclidean_margin(model, x), 3))
[1. 1.]
>>> certified_accuracy(model, x, [0, 0], epsilon=[0.0, 0.8]).tolist()
[1.0, 0.5]

Reference:
    Saralajew, Holdijk, Rees and Villmann, "Fast adversarial robustness
    certification of nearest prototype classifiers for arbitrary
    seminorms", NeurIPS 2020.

    Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards deep learning
    models resistant to adversarial attacks", ICLR 2018 (PGD).

    Lawson and Hanson, "Solving least squares problems", SIAM 1995,
    chapter 23 (least distance programming, used by
    `exact_euclidean_margin`).
"""

import collections
import numbers

import keras
import numpy as np
import scipy.optimize
from keras import ops

from anysma.reject import _check_model
from anysma.reject import _check_prototype_labels
from anysma.reject import _class_dissimilarities
from anysma.reject import _class_ids
from anysma.reject import _resolve_model
from anysma.utils.validation import check_int
from anysma.utils.validation import check_number

# Largest number of (sample, prototype, prototype) terms per chunk.
_CHUNK_TERMS = 2**22
# Tolerance of the orthonormality of the RTLVQ bases.
_ORTHONORMAL_TOLERANCE = 1e-3

AttackResult = collections.namedtuple("AttackResult", ["adversarial", "success"])
AttackResult.__doc__ = """The result of `attack`.

Attributes:
    adversarial: The perturbed inputs, a NumPy array like `x`.
    success: Booleans `(samples,)`: whether the model misclassifies the
        perturbed input (`prediction != y`).
"""

# === Argument checks ===


def _check_norm(norm, allowed=(1.0, 2.0, np.inf)):
    """`norm` as `1.0`, `2.0` or `inf`."""
    value = None
    if isinstance(norm, str):
        value = np.inf if norm.lower() == "inf" else None
    elif isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        value = float(norm)
    if value not in allowed:
        names = ", ".join(
            "numpy.inf or 'inf'" if n == np.inf else str(int(n)) for n in allowed
        )
        raise ValueError(f"`norm` must be one of {names}. Received: norm={norm!r}")
    return value


def _check_inputs(model, x):
    """`x` as a 2-D float NumPy array in the model's input dtype."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(x))
    except Exception as error:  # any backend's conversion error
        raise TypeError(
            f"`x` must be an array or a tensor. Received: x of type {type(x).__name__}"
        ) from error
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            "`x` must be a non-empty 2-D array (samples, input_dim). "
            f"Received: x.shape={array.shape}"
        )
    check = getattr(model, "check_input_shapes", None)
    if check is not None:
        check(array)
    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    return array.astype(dtype)


def _check_epsilon(epsilon, samples=None):
    """`epsilon` as a float, or as a float64 1-D array.

    With `samples`, a 1-D array must have one value per sample.
    """
    if isinstance(epsilon, numbers.Real) and not isinstance(epsilon, bool):
        return check_number(epsilon, "epsilon", minimum=0)
    try:
        array = np.asarray(keras.ops.convert_to_numpy(epsilon))
    except Exception:  # any backend's conversion error
        array = None
    valid = (
        array is not None
        and array.ndim == 1
        and array.size > 0
        and (samples is None or array.size == samples)
        and (
            np.issubdtype(array.dtype, np.floating)
            or np.issubdtype(array.dtype, np.integer)
        )
        and np.all(np.isfinite(array))
        and np.all(array >= 0)
    )
    if not valid:
        shape = f"({samples},) " if samples is not None else ""
        raise ValueError(
            "`epsilon` must be a finite number >= 0 or a non-empty 1-D array "
            f"{shape}of them. Received: epsilon={epsilon!r}"
        )
    return array.astype("float64")


def _model_type(model):
    """The name of the LVQ model class whose certificate applies to `model`."""
    from anysma.models import lvq

    _check_model(model)
    if isinstance(model, lvq.RSLVQ):
        raise ValueError(
            "The robustness certificate applies to the nearest prototype rule "
            "(GLVQ, GMLVQ, LGMLVQ, GRLVQ, GTLVQ, RTLVQ), but RSLVQ predicts "
            "the class of the largest posterior, which can differ from the "
            "class of the nearest prototype. Use `attack` or "
            "`empirical_robust_accuracy` for RSLVQ. "
            f"Received: model of type {type(model).__name__}"
        )
    # RTLVQ is a GTLVQ, so it comes first.
    for cls in (lvq.RTLVQ, lvq.GTLVQ, lvq.LGMLVQ, lvq.GMLVQ, lvq.GRLVQ, lvq.GLVQ):
        if isinstance(model, cls):
            return cls.__name__
    raise ValueError(
        "The robustness certificate supports the models GLVQ, GMLVQ, LGMLVQ, "
        "GRLVQ, GTLVQ and RTLVQ of `anysma.models`. "
        f"Received: model of type {type(model).__name__}"
    )


def _order_p(model):
    """The order of the model's Minkowski distance (2 for the matrix models)."""
    return float(getattr(model.measuring_module, "order_p", 2))


def _check_measuring(model):
    """Whether the distances are squared; raise for unsupported orders.

    `GLVQ` may use any Minkowski order `p >= 1` (a norm); the other models
    need the Euclidean one, for which their constants are derived.
    """
    order_p = _order_p(model)
    plain_glvq = _model_type(model) == "GLVQ"
    if (plain_glvq and not order_p >= 1) or (not plain_glvq and order_p != 2):
        needed = "an order p >= 1" if plain_glvq else "the Euclidean norm"
        raise ValueError(
            f"The robustness certificate needs {needed} in the measuring "
            f"module of {type(model).__name__}. Received: order_p={order_p!r}"
        )
    return bool(getattr(model.measuring_module, "squared_dissimilarity", False))


# === Lipschitz constants ===


def _to_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")


def _operator_norms(matrices, norm):
    """Constants `c` with `||v M||_2 <= c ||v||_norm`, for `M` of `(..., D, m)`."""
    rows = np.linalg.norm(matrices, axis=-1)  # (..., D): the columns of M^T.
    if norm == 1:
        return rows.max(axis=-1)
    sigma = np.linalg.svd(matrices, compute_uv=False)[..., 0]
    if norm == 2:
        return sigma
    return np.minimum(np.sqrt(matrices.shape[-2]) * sigma, rows.sum(axis=-1))


def _projection_operator_norms(bases, norm):
    """`_operator_norms` of `P = I - W W^T` for bases `W` of `(..., D, r)`.

    The same constants without forming the `D x D` maps (which made the
    certificate of GTLVQ on MNIST ten times slower than `predict`): `P` is
    symmetric with the eigenvalues `1 - s_i^2` (`s_i` the singular values of
    `W`) and, where `r < D`, 1; the squared norm of its `i`-th column is
    `1 - 2 ||W_i||^2 + W_i W^T W W_i^T` (`W_i` the `i`-th row of `W`).
    """
    bases = np.asarray(bases, dtype="float64")
    features, rank = bases.shape[-2:]
    gram = np.einsum("...dr,...ds->...rs", bases, bases)
    row_norms = np.sum(np.square(bases), axis=-1)
    columns = np.sqrt(
        np.maximum(
            1.0
            - 2.0 * row_norms
            + np.einsum("...dr,...rs,...ds->...d", bases, gram, bases),
            0.0,
        )
    )
    if norm == 1:
        return columns.max(axis=-1)
    singular = np.linalg.svd(bases, compute_uv=False)
    sigma = np.max(np.abs(1.0 - np.square(singular)), axis=-1)
    if rank < features:
        sigma = np.maximum(sigma, 1.0)
    if norm == 2:
        return sigma
    return np.minimum(np.sqrt(features) * sigma, columns.sum(axis=-1))


def _per_prototype(values, scope, prototype_labels):
    """Matrices of a scope gathered to one per prototype `(P, ...)`."""
    if scope == "global":
        return np.broadcast_to(values, (len(prototype_labels),) + values.shape)
    if scope == "capsule_wise":
        return values[np.asarray(prototype_labels)]
    return values


def _identity_constant(norm, features, order_p=2.0):
    """`c` with `||v||_p <= c ||v||_norm` for `v` in `R^features`: Hoelder's
    inequality gives `features^max(0, 1/p - 1/norm)`, which is attained."""
    exponent = max(0.0, 1.0 / order_p - 1.0 / norm)
    return float(features) ** exponent


def _lipschitz_constants(model, kind, norm):
    """The constant `c_j` of every prototype, float64 `(P,)`."""
    labels = model.prototype_labels
    measuring = model.measuring_module
    features = int(model.prototypes.shape[-1])
    if kind == "GLVQ":
        constant = _identity_constant(norm, features, _order_p(model))
        return np.full(len(labels), constant)
    if kind == "GRLVQ":
        scales = np.sqrt(np.maximum(_to_numpy(model.relevance_scaling.relevances), 0))
        if norm == np.inf:
            constant = np.sqrt(np.sum(np.square(scales)))
        else:
            constant = np.max(scales)
        return np.full(len(labels), constant)
    matrices = _to_numpy(measuring.matrices)
    scope = measuring.matrix_scope
    if kind == "RTLVQ":
        bases = _per_prototype(matrices, scope, labels)
        gram = np.einsum("pdr,pds->prs", bases, bases)
        deviation = np.max(np.abs(gram - np.eye(gram.shape[-1])))
        if deviation > _ORTHONORMAL_TOLERANCE:
            raise ValueError(
                "The certificate of RTLVQ needs orthonormal bases (as the "
                "model's constraint keeps them after every training step). "
                f"Received: bases with max |W^T W - I| = {deviation:.3g}"
            )
        return np.full(len(labels), _identity_constant(norm, features))
    if kind == "GTLVQ":
        return _projection_operator_norms(_per_prototype(matrices, scope, labels), norm)
    # GMLVQ and LGMLVQ.
    if scope == "global":
        return np.full(len(labels), _operator_norms(matrices, norm))
    return _operator_norms(_per_prototype(matrices, scope, labels), norm)


# === Certificate ===


def _distances(model, x, batch_size):
    """The models' distances (not squared), float64 `(samples, prototypes)`."""
    squared = _check_measuring(model)
    dissimilarities = model.prototype_dissimilarities(x, batch_size=batch_size)
    dissimilarities = np.maximum(np.asarray(dissimilarities, "float64"), 0.0)
    return np.sqrt(dissimilarities) if squared else dissimilarities


def _predicted_classes(distances, prototype_labels):
    """The nearest prototype rule: argmin of the class distances (first on ties)."""
    class_distances = np.stack(
        [
            distances[:, prototype_labels == label].min(axis=-1)
            for label in range(prototype_labels.max() + 1)
        ],
        axis=-1,
    )
    return np.argmin(class_distances, axis=-1)


def _pairwise_radii(distances, constants, prototype_labels, predictions):
    """`max_{k in y} min_{j not in y} (d_j - d_k) / (c_k + c_j)` per sample."""
    if constants.size and constants[0] > 0 and np.all(constants == constants[0]):
        # One constant for all prototypes: the max-min is (d- - d+) / (2 c),
        # in O(samples x prototypes) instead of the pairwise terms below.
        same = prototype_labels[None, :] == predictions[:, None]
        closest = np.where(same, distances, np.inf).min(axis=-1)
        other = np.where(same, np.inf, distances).min(axis=-1)
        return np.maximum((other - closest) / (2.0 * constants[0]), 0.0)
    # (samples, k, j); chunks keep the memory bounded.
    prototypes = distances.shape[-1]
    chunk = max(1, _CHUNK_TERMS // (prototypes * prototypes))
    denominators = constants[:, None] + constants[None, :]
    radii = []
    for start in range(0, distances.shape[0], chunk):
        d = distances[start : start + chunk]
        same = prototype_labels[None, :] == predictions[start : start + chunk, None]
        numerators = d[:, None, :] - d[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(
                denominators > 0,
                numerators / np.where(denominators > 0, denominators, 1.0),
                np.where(
                    numerators > 0, np.inf, np.where(numerators < 0, -np.inf, 0.0)
                ),
            )
        # Only j of another class compete; only k of the predicted class defend.
        terms = np.where(same[:, None, :], np.inf, terms)
        worst = terms.min(axis=-1)
        worst = np.where(same, worst, -np.inf)
        radii.append(np.maximum(worst.max(axis=-1), 0.0))
    return np.concatenate(radii)


def _predictions_and_radii(model, x, norm, batch_size, y=None):
    """`(predictions, radii, classes of y or None)` after checking everything."""
    kind = _model_type(model)
    norm = _check_norm(norm)
    x = _check_inputs(model, x)
    classes = None if y is None else _class_ids(y, x.shape[0])
    prototype_labels = np.asarray(_check_prototype_labels(model.prototype_labels, 2))
    constants = _lipschitz_constants(model, kind, norm)
    distances = _distances(model, x, batch_size)
    predictions = _predicted_classes(distances, prototype_labels)
    radii = _pairwise_radii(distances, constants, prototype_labels, predictions)
    return predictions, radii, classes


def certified_radius(model, x, norm=2, batch_size=None):
    """The certified robustness radius of every sample, about its prediction.

    No perturbation `delta` with `||delta||_norm < radius` changes the
    class that `model` predicts for `x + delta` (the class of the nearest
    prototype). With `d+` the distance to the closest prototype, `d-` the
    distance to the closest prototype of another class and `c` the constant
    of the model and norm (see the module docstring),

        radius = (d- - d+) / (2 c),

    the hypothesis margin of Saralajew et al. (2020); for local matrices
    (`LGMLVQ`) and the tangent models, whose constants differ between the
    prototypes, `max_{k: c(k) = y} min_{j: c(j) != y} (d_j - d_k) /
    (c_k + c_j)`. The distances are the square roots of the model's squared
    distances. Samples on the decision border get 0; a radius can be `inf`
    where no prototype's distance depends on the input.

    Args:
        model: A `GLVQ`, `GMLVQ`, `LGMLVQ`, `GRLVQ`, `GTLVQ` or `RTLVQ` of
            `anysma.models` (`RSLVQ` raises a `ValueError`).
        x: Features `(samples, input_dim)`.
        norm: The norm of the perturbations: `1`, `2`, `numpy.inf` or
            `"inf"`.
        batch_size: Batch size of the forward pass.

    Returns:
        A float64 NumPy array `(samples,)` of non-negative radii.

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
    >>> _ = model.measuring_module.prototypes.assign(
    ...     np.array([[0.0, 0.0], [4.0, 0.0]], "float32"))
    >>> x = np.array([[1.0, 0.0]], "float32")
    >>> certified_radius(model, x).tolist()
    [1.0]
    >>> print(np.round(certified_radius(model, x, norm="inf"), 4))
    [0.7071]

    Reference:
        Saralajew, Holdijk, Rees and Villmann, "Fast adversarial robustness
        certification of nearest prototype classifiers for arbitrary
        seminorms", NeurIPS 2020.
    """
    model, x, _ = _resolve_model(model, x)
    return _predictions_and_radii(model, x, norm, batch_size)[1]


def certified_accuracy(model, x, y, epsilon, norm=2, batch_size=None):
    """The certified robust accuracy: correct and certified beyond `epsilon`.

    The fraction of samples that `model` classifies correctly and whose
    `certified_radius` exceeds `epsilon` (`radius > epsilon`): a lower bound
    on the accuracy under any perturbation of norm at most `epsilon`. At
    `epsilon = 0` it is the accuracy on the samples off the decision border.

    Args:
        model: A `GLVQ`, `GMLVQ`, `LGMLVQ`, `GRLVQ`, `GTLVQ` or `RTLVQ`.
        x: Features `(samples, input_dim)`.
        y: The true classes, integers `(samples,)` or one-hot
            `(samples, classes)`.
        epsilon: The perturbation size, a number >= 0, or a 1-D array of
            them for a curve.
        norm: The norm of the perturbations: `1`, `2`, `numpy.inf` or
            `"inf"`.
        batch_size: Batch size of the forward pass.

    Returns:
        A float for a scalar `epsilon`; a float64 NumPy array (one accuracy
        per `epsilon`, non-increasing in `epsilon`) for an array.

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=1, num_classes=2)
    >>> _ = model.measuring_module.prototypes.assign(
    ...     np.array([[0.0], [4.0]], "float32"))
    >>> x = np.array([[0.0], [1.0], [3.5]], "float32")
    >>> certified_accuracy(model, x, [0, 0, 0], epsilon=0.5)
    0.6666666666666666
    >>> certified_accuracy(model, x, [0, 0, 0], epsilon=[0.0, 1.5, 2.0]).tolist()
    [0.6666666666666666, 0.3333333333333333, 0.0]
    """
    model, x, y = _resolve_model(model, x, y)
    epsilon = _check_epsilon(epsilon)
    predictions, radii, classes = _predictions_and_radii(model, x, norm, batch_size, y)
    correct = predictions == classes
    if isinstance(epsilon, float):
        return float(np.mean(correct & (radii > epsilon)))
    return np.mean(correct[None, :] & (radii[None, :] > epsilon[:, None]), axis=-1)


# === Exact Euclidean margin ===


def _euclidean_map(model, kind):
    """`(A, v)`: the model's distances are `||x A - v_j||^2`, float64."""
    if kind == "GLVQ" and _order_p(model) == 2:
        prototypes = _to_numpy(model.measuring_module.prototypes)
        prototypes = prototypes.reshape(prototypes.shape[0], -1)
        return np.eye(prototypes.shape[-1]), prototypes
    if kind == "GRLVQ":
        scales = _to_numpy(model.relevance_scaling._scales())
        prototypes = _to_numpy(model.measuring_module.prototypes)
        return np.diag(scales), prototypes.reshape(prototypes.shape[0], -1)
    if kind == "GMLVQ":
        omega = _to_numpy(model.measuring_module.matrices)
        prototypes = _to_numpy(model.measuring_module.prototypes)
        return omega, prototypes.reshape(prototypes.shape[0], -1) @ omega
    raise ValueError(
        "`exact_euclidean_margin` supports the models with a squared "
        "Euclidean distance after one global linear map: GLVQ, GRLVQ and "
        "GMLVQ (local matrices and tangent distances give quadratic decision "
        "borders; other Minkowski orders than 2 give piecewise ones). "
        f"Received: model of type {type(model).__name__} with order_p="
        f"{_order_p(model)!r}"
    )


def _least_distance(constraints, bounds):
    """The shortest `delta` with `constraints @ delta <= bounds`, or `None`.

    Lawson and Hanson's least distance programming (LDP) through one
    non-negative least squares problem; `None` where the set is empty.
    """
    if np.all(bounds >= 0):
        return np.zeros(constraints.shape[-1])
    if constraints.shape[0] == 1:
        normal = constraints[0]
        length = np.dot(normal, normal)
        if length == 0:
            return None
        return normal * (bounds[0] / length)
    # LDP in Lawson and Hanson's form G delta >= h with G = -constraints.
    matrix = np.vstack([-constraints.T, -bounds[None, :]])
    target = np.zeros(matrix.shape[0])
    target[-1] = 1.0
    weights, _ = scipy.optimize.nnls(matrix, target)
    residual = matrix @ weights - target
    # `||residual||^2 = -residual[-1]`; a zero residual means no solution.
    if np.linalg.norm(residual) <= 1e-10:
        return None
    return -residual[:-1] / residual[-1]


def exact_euclidean_margin(model, x, batch_size=None, return_perturbations=False):
    """The smallest L2 perturbation that changes the nearest prototype class.

    For `GLVQ`, `GRLVQ` and `GMLVQ` every distance is a squared Euclidean
    distance after one global linear map `A` (`I`, `diag(sqrt(lambda))`,
    `Omega`): `d_j(x)^2 = ||x A - v_j||^2`. The prediction of `x + delta`
    leaves the predicted class `y` exactly where some prototype `j` of
    another class is closer than every prototype `k` of class `y`, and
    `d_j(x + delta)^2 <= d_k(x + delta)^2` is linear in `delta`:

        2 delta . A (v_k - v_j) <= d_k(x)^2 - d_j(x)^2   for all k with c(k) = y.

    The margin is the minimum over the prototypes `j` of other classes of
    the shortest such `delta` (the L2 distance from `x` to a polyhedron,
    solved exactly by least distance programming, Lawson and Hanson,
    chapter 23): the infimum of the L2 norms of the perturbations that
    change the prediction. With one prototype per class and `A = I` it is
    the distance to the closest bisecting hyperplane of the winner `w+` and
    a prototype `w_j` of another class, `min_j (d_j^2 - d+^2) /
    (2 ||w_j - w+||)`. It is never below `certified_radius` with `norm=2`
    (up to rounding); for GLVQ with one prototype per class both are equal
    where `x` lies on the segment between `w+` and `w-`.

    The predictions are the model's; the geometry is computed in float64
    from the model's weights.

    Args:
        model: A `GLVQ`, `GRLVQ` or `GMLVQ` of `anysma.models`.
        x: Features `(samples, input_dim)`.
        batch_size: Batch size of the forward pass.
        return_perturbations: Also return the shortest perturbations.

    Returns:
        A float64 NumPy array `(samples,)` of margins (`inf` where no
        perturbation changes the prediction); with `return_perturbations`,
        the pair `(margins, perturbations)`, the perturbations `(samples,
        input_dim)` (0 rows where the margin is 0 or `inf`), each on the
        decision border: `x + (1 + t) delta` for a small `t > 0` is in
        general classified differently.

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=2, num_classes=2,
    ...                            prototypes_per_class=[2, 1])
    >>> _ = model.measuring_module.prototypes.assign(
    ...     np.array([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0]], "float32"))
    >>> x = np.array([[1.0, 1.0]], "float32")
    >>> margins, deltas = exact_euclidean_margin(
    ...     model, x, return_perturbations=True)
    >>> print(np.round(margins, 3), np.round(deltas, 3))
    [1.] [[1. 0.]]

    Reference:
        Lawson and Hanson, "Solving least squares problems", SIAM 1995,
        chapter 23.
    """
    model, x, _ = _resolve_model(model, x)
    kind = _model_type(model)
    if kind not in ("GLVQ", "GRLVQ", "GMLVQ"):
        _euclidean_map(model, kind)  # Raises.
    _check_measuring(model)
    x = _check_inputs(model, x)
    prototype_labels = np.asarray(_check_prototype_labels(model.prototype_labels, 2))
    predictions = _predicted_classes(_distances(model, x, batch_size), prototype_labels)
    mapping, mapped_prototypes = _euclidean_map(model, kind)
    mapped = x.astype("float64") @ mapping
    squared = np.sum(np.square(mapped[:, None, :] - mapped_prototypes[None]), axis=-1)
    margins = np.full(x.shape[0], np.inf)
    perturbations = np.zeros(x.shape, dtype="float64")
    for sample, label in enumerate(predictions):
        own = np.flatnonzero(prototype_labels == label)
        for other in np.flatnonzero(prototype_labels != label):
            constraints = 2 * (
                (mapped_prototypes[own] - mapped_prototypes[other]) @ mapping.T
            )
            bounds = squared[sample, own] - squared[sample, other]
            delta = _least_distance(constraints, bounds)
            if delta is None:
                continue
            length = float(np.linalg.norm(delta))
            if length < margins[sample]:
                margins[sample] = length
                perturbations[sample] = delta
    if return_perturbations:
        return margins, perturbations
    return margins


# === Attacks ===


def _margin_function(model):
    """`fn([x], targets) -> (sum of margins, margins)` with `keras.ops`.

    The margin of a sample is positive where it is misclassified: the
    distance of the true class minus that of the closest other class
    (squared distances, the models' own) for the GLVQ family, the largest
    log-posterior of another class minus that of the true class for RSLVQ.
    """
    from anysma.models import lvq

    if isinstance(model, lvq.RSLVQ):
        network = model

        def class_scores(inputs):
            return -ops.cast(network(inputs), "float32")

    else:
        labels = _check_prototype_labels(model.prototype_labels, 2)
        network = keras.Model(model.inputs, model.routing_module.output[1])

        def class_scores(inputs):
            distances = ops.cast(network(inputs), "float32")
            return _class_dissimilarities(distances, labels)

    def margins_of(values, targets):
        scores = class_scores(values[0])
        true = ops.sum(scores * targets, axis=-1)
        highest = ops.max(scores, axis=-1, keepdims=True)
        other = ops.min(ops.where(targets > 0.5, highest, scores), axis=-1)
        margins = true - other
        return ops.sum(margins), margins

    return margins_of


def _project(delta, epsilon, norm):
    """`delta` projected onto the balls of radii `epsilon` `(samples,)`."""
    if norm == np.inf:
        return np.clip(delta, -epsilon[:, None], epsilon[:, None])
    lengths = np.linalg.norm(delta, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.where(lengths > epsilon, epsilon / lengths, 1.0)
    return delta * factors[:, None]


def _random_start(random, shape, epsilon, norm):
    if norm == np.inf:
        return random.uniform(-1.0, 1.0, shape) * epsilon[:, None]
    directions = random.normal(size=shape)
    lengths = np.linalg.norm(directions, axis=-1, keepdims=True)
    directions = directions / np.where(lengths > 0, lengths, 1.0)
    radii = epsilon * random.uniform(size=shape[0]) ** (1.0 / shape[1])
    return directions * radii[:, None]


def _step_direction(gradient, norm):
    if norm == np.inf:
        return np.sign(gradient)
    lengths = np.linalg.norm(gradient, axis=-1, keepdims=True)
    return gradient / np.where(lengths > 0, lengths, 1.0)


def _predict(model, x, batch_size):
    from anysma.models import lvq

    if isinstance(model, lvq.RSLVQ):
        outputs = model.predict(x, batch_size=batch_size, verbose=0)
        return np.argmax(outputs, axis=-1)
    labels = np.asarray(_check_prototype_labels(model.prototype_labels, 2))
    distances = model.prototype_dissimilarities(x, batch_size=batch_size)
    return _predicted_classes(np.asarray(distances, "float64"), labels)


def _check_attack_arguments(model, x, y, norm, steps, step_size):
    _check_model(model)
    norm = _check_norm(norm, allowed=(2.0, np.inf))
    x = _check_inputs(model, x)
    classes = _class_ids(y, x.shape[0])
    num_classes = max(_check_prototype_labels(model.prototype_labels, 2)) + 1
    if np.any(classes >= num_classes):
        raise ValueError(
            f"`y` must hold class indices below num_classes={num_classes}. "
            f"Received: largest label {int(classes.max())}"
        )
    steps = check_int(steps, "steps", minimum=1)
    if step_size is not None:
        step_size = check_number(
            step_size, "step_size", minimum=0, include_minimum=False
        )
    return norm, x, classes, num_classes, steps, step_size


def _pgd(margins_and_gradients, x, targets, epsilon, norm, steps, step_size, start):
    """PGD on one batch; returns `(adversarial, found)` as float64/bool."""
    delta = _project(start, epsilon, norm)
    best = x + delta
    found = np.zeros(x.shape[0], bool)
    targets = ops.convert_to_tensor(targets)
    dtype = x.dtype
    for step in range(steps + 1):
        current = (x + delta).astype(dtype)
        (_, margins), gradients = margins_and_gradients(
            [ops.convert_to_tensor(current)], targets
        )
        margins = np.asarray(ops.convert_to_numpy(margins), "float64")
        newly = (margins > 0) & ~found
        best[newly] = current[newly]
        found |= newly
        if step == steps or found.all():
            break
        gradient = np.asarray(ops.convert_to_numpy(gradients[0]), "float64")
        delta = delta + step_size[:, None] * _step_direction(gradient, norm)
        delta = _project(delta, epsilon, norm)
    best[~found] = (x + delta)[~found]
    return best.astype(dtype)


def attack(
    model,
    x,
    y,
    epsilon,
    norm=2,
    steps=40,
    step_size=None,
    random_start=False,
    seed=None,
    batch_size=None,
):
    """Adversarial examples by projected gradient descent (PGD).

    Maximizes the margin of every sample in the ball `||delta||_norm <=
    epsilon` around it: for the GLVQ family the squared distance of the
    true class minus that of the closest other class, `d+_true^2 -
    d-_other^2` (the models' own distances; positive exactly where the
    sample is misclassified, like the GLVQ margin `d+_true - d-_other`), for
    `RSLVQ` the largest log-posterior of another class minus that of the
    true class. Every step moves `step_size` along the sign of the gradient
    (L-infinity) or the normalized gradient (L2), then projects back onto
    the ball (Madry et al., 2018). A sample keeps the first iterate that
    is misclassified. The gradients come from the active backend's
    automatic differentiation (JAX, PyTorch or TensorFlow).

    PGD finds perturbations, it does not prove their absence: the robust
    accuracy under attack is an upper bound, `certified_accuracy` a lower
    bound of the true robust accuracy.

    Args:
        model: An LVQ model of `anysma.models` (`RSLVQ` included).
        x: Features `(samples, input_dim)`.
        y: The true classes, integers `(samples,)` or one-hot
            `(samples, classes)`.
        epsilon: The radius of the ball, a finite number >= 0 or one per
            sample (an array `(samples,)`).
        norm: `2` or `numpy.inf` (`"inf"`).
        steps: The number of gradient steps, an int >= 1.
        step_size: The length of a step (L2) or the change of every feature
            (L-infinity); `None` is `2.5 * epsilon / steps` per sample.
        random_start: Start at a uniformly random point of the ball instead
            of `x`.
        seed: Seed of the random start (an int or `None`).
        batch_size: The number of samples attacked together (`None`: all).

    Returns:
        An `AttackResult(adversarial, success)`: the perturbed inputs, a
        NumPy array like `x` in the model's input dtype, and booleans
        `(samples,)` where the model misclassifies them (`success` is the
        model's prediction on `adversarial`, compared with `y`).

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=2, num_classes=2)
    >>> _ = model.measuring_module.prototypes.assign(
    ...     np.array([[0.0, 0.0], [4.0, 0.0]], "float32"))
    >>> x = np.array([[1.0, 0.0]], "float32")
    >>> attack(model, x, [0], epsilon=0.9).success.tolist()
    [False]
    >>> result = attack(model, x, [0], epsilon=1.1)
    >>> print(result.success, np.round(result.adversarial, 2))
    [ True] [[2.03 0.  ]]
    """
    from anysma.utils.autodiff import check_trainable_backend
    from anysma.utils.autodiff import value_and_grad

    model, x, y = _resolve_model(model, x, y)
    norm, x, classes, num_classes, steps, step_size = _check_attack_arguments(
        model, x, y, norm, steps, step_size
    )
    epsilon = _check_epsilon(epsilon, samples=x.shape[0])
    epsilon = np.broadcast_to(np.asarray(epsilon, "float64"), (x.shape[0],))
    steps_sizes = (
        2.5 * epsilon / steps
        if step_size is None
        else np.full(x.shape[0], step_size, "float64")
    )
    batch_size = check_int(batch_size, "batch_size", minimum=1, allow_none=True)
    check_trainable_backend()
    random = np.random.default_rng(seed)
    margins_and_gradients = value_and_grad(_margin_function(model), has_aux=True)
    targets = np.eye(num_classes, dtype="float32")[classes]
    size = batch_size or x.shape[0]
    adversarial = []
    for start in range(0, x.shape[0], size):
        part = slice(start, start + size)
        if not np.any(epsilon[part] > 0):
            adversarial.append(x[part])
            continue
        origin = x[part].astype("float64")
        initial = (
            _random_start(random, origin.shape, epsilon[part], norm)
            if random_start
            else np.zeros_like(origin)
        )
        adversarial.append(
            _pgd(
                margins_and_gradients,
                x[part],
                targets[part],
                epsilon[part],
                norm,
                steps,
                steps_sizes[part],
                initial,
            )
        )
    adversarial = np.concatenate(adversarial).astype(x.dtype)
    # Round-off of the input dtype can leave the ball by an ulp; project again.
    delta = _project(adversarial.astype("float64") - x, epsilon, norm)
    adversarial = (x + delta).astype(x.dtype)
    success = _predict(model, adversarial, batch_size) != classes
    return AttackResult(adversarial=adversarial, success=success)


def empirical_robust_accuracy(
    model,
    x,
    y,
    epsilon,
    norm=2,
    steps=40,
    step_size=None,
    random_start=False,
    seed=None,
    batch_size=None,
):
    """The accuracy under the PGD `attack`: an upper bound of the robust accuracy.

    The fraction of samples that `model` classifies correctly and that
    `attack` does not misclassify within `epsilon`. For the nearest
    prototype models it is at least `certified_accuracy` at the same
    `epsilon` and norm, and at most the clean accuracy.

    Args:
        model: An LVQ model of `anysma.models` (`RSLVQ` included).
        x: Features `(samples, input_dim)`.
        y: The true classes, integers `(samples,)` or one-hot
            `(samples, classes)`.
        epsilon: The perturbation size, a finite number >= 0, or a 1-D
            array of them for a curve (one attack per value).
        norm: `2` or `numpy.inf` (`"inf"`).
        steps: The number of gradient steps of the attack.
        step_size: See `attack`.
        random_start: See `attack`.
        seed: See `attack`.
        batch_size: See `attack`.

    Returns:
        A float for a scalar `epsilon`, a float64 NumPy array (one accuracy
        per `epsilon`) for an array.

    Example:

    >>> import numpy as np
    >>> import anysma
    >>> model = anysma.models.GLVQ(input_dim=1, num_classes=2)
    >>> _ = model.measuring_module.prototypes.assign(
    ...     np.array([[0.0], [4.0]], "float32"))
    >>> x = np.array([[0.0], [1.0], [3.5]], "float32")
    >>> empirical_robust_accuracy(model, x, [0, 0, 0], epsilon=[0.0, 1.5])
    array([0.66666667, 0.33333333])
    """
    model, x, y = _resolve_model(model, x, y)
    values = _check_epsilon(epsilon)
    _check_attack_arguments(model, x, y, norm, steps, step_size)
    checked = _check_inputs(model, x)
    classes = _class_ids(y, checked.shape[0])
    clean = _predict(model, checked, batch_size) == classes
    accuracies = []
    for value in np.atleast_1d(values):
        result = attack(
            model,
            checked,
            classes,
            float(value),
            norm=norm,
            steps=steps,
            step_size=step_size,
            random_start=random_start,
            seed=seed,
            batch_size=batch_size,
        )
        accuracies.append(float(np.mean(clean & ~result.success)))
    if isinstance(values, float):
        return accuracies[0]
    return np.asarray(accuracies)
