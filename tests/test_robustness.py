import functools

import keras
import numpy as np
import pytest
import scipy.optimize

import anysma
from anysma import robustness

FEATURES = 5
NUM_CLASSES = 3
PER_CLASS = 2
NORMS = (1, 2, np.inf)

# === Models with set weights ===


def orthonormal(shape, random):
    """Matrices `(..., D, r)` with orthonormal columns."""
    matrices = random.normal(size=shape)
    return np.linalg.qr(matrices)[0].astype("float32")


def random_model(name, seed=0, per_class=PER_CLASS, features=FEATURES):
    """A model of `name` with random weights (set, not trained)."""
    random = np.random.RandomState(seed)
    models = anysma.models
    arguments = {
        "input_dim": features,
        "num_classes": NUM_CLASSES,
        "prototypes_per_class": per_class,
    }
    if name == "GLVQ":
        model = models.GLVQ(**arguments)
    elif name == "GMLVQ":
        model = models.GMLVQ(**arguments, projection_dim=features - 1)
    elif name == "GRLVQ":
        model = models.GRLVQ(**arguments)
    elif name == "LGMLVQ":
        model = models.LGMLVQ(**arguments)
    elif name == "LGMLVQ_capsule_wise":
        model = models.LGMLVQ(**arguments, matrix_scope="capsule_wise")
    elif name == "GTLVQ":
        model = models.GTLVQ(**arguments, subspace_dim=2)
    elif name == "RTLVQ":
        model = models.RTLVQ(**arguments, subspace_dim=2)
    else:
        raise ValueError(name)
    measuring = model.measuring_module
    prototypes = 2.0 * random.normal(size=measuring.prototypes.shape)
    measuring.prototypes.assign(prototypes.astype("float32"))
    if name in ("GMLVQ", "LGMLVQ", "LGMLVQ_capsule_wise"):
        matrices = random.normal(size=measuring.matrices.shape) / np.sqrt(features)
        measuring.matrices.assign(matrices.astype("float32"))
    elif name in ("GTLVQ", "RTLVQ"):
        measuring.matrices.assign(orthonormal(measuring.matrices.shape, random))
        if name == "RTLVQ":
            bounds = random.uniform(0.2, 1.0, size=measuring.bounds.shape)
            measuring.bounds.assign(bounds.astype("float32"))
    elif name == "GRLVQ":
        weights = random.uniform(0.2, 1.5, size=features).astype("float32")
        model.relevance_scaling.relevance_weights.assign(weights)
    return model


def random_samples(samples=200, seed=1, features=FEATURES):
    return (2.0 * np.random.RandomState(seed).normal(size=(samples, features))).astype(
        "float32"
    )


def predictions_of(model, x):
    return np.argmax(model.predict(x, verbose=0), axis=-1)


# === NumPy references, written from the definitions ===


def np_maps(model, name):
    """`(maps (P, D, D'), origins (P, D))`: `d_j(x) = ||(x - w_j) M_j||`."""
    prototypes = np.asarray(model.prototypes, "float64")
    count, features = prototypes.shape
    labels = np.asarray(model.prototype_labels)
    if name == "GLVQ":
        maps = np.broadcast_to(np.eye(features), (count, features, features))
    elif name == "GRLVQ":
        relevances = np.asarray(model.relevances, "float64")
        maps = np.broadcast_to(
            np.diag(np.sqrt(relevances)), (count, features, features)
        )
    elif name == "GMLVQ":
        omega = np.asarray(model.omega, "float64")
        maps = np.broadcast_to(omega, (count,) + omega.shape)
    elif name.startswith("LGMLVQ"):
        omegas = np.asarray(model.omegas, "float64")
        maps = omegas if omegas.shape[0] == count else omegas[labels]
    elif name == "GTLVQ":
        bases = np.asarray(model.subspaces, "float64")
        maps = np.stack([np.eye(features) - basis @ basis.T for basis in bases])
    else:
        raise ValueError(name)
    return maps, prototypes


def np_distances(model, name, x):
    maps, prototypes = np_maps(model, name)
    differences = np.asarray(x, "float64")[:, None, :] - prototypes[None]
    return np.linalg.norm(np.einsum("npd,pde->npe", differences, maps), axis=-1)


def np_constant(matrix, norm):
    """A constant with ||v M||_2 <= c ||v||_norm, from its definition."""
    if norm == 1:  # The largest image of a unit vector e_i.
        return max(np.linalg.norm(matrix[i]) for i in range(matrix.shape[0]))
    sigma = np.linalg.svd(matrix, compute_uv=False).max()
    if norm == 2:
        return sigma
    return min(
        np.sqrt(matrix.shape[0]) * sigma,
        sum(np.linalg.norm(matrix[i]) for i in range(matrix.shape[0])),
    )


def np_hypothesis_margin(distances, labels, constant):
    """(d- - d+) / (2 c), row by row."""
    labels = np.asarray(labels)
    radii = []
    for row in distances:
        winner = np.argmin(row)
        d_minus = row[labels != labels[winner]].min()
        radii.append((d_minus - row[winner]) / (2 * constant))
    return np.array(radii)


def np_pairwise_radius(distances, labels, constants):
    """max over the winner's class k, min over the other classes j."""
    labels = np.asarray(labels)
    radii = []
    for row in distances:
        predicted = labels[np.argmin(row)]
        own = np.flatnonzero(labels == predicted)
        others = np.flatnonzero(labels != predicted)
        radii.append(
            max(
                min((row[j] - row[k]) / (constants[k] + constants[j]) for j in others)
                for k in own
            )
        )
    return np.maximum(np.array(radii), 0.0)


# === Certified radius ===


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize("name", ["GLVQ", "GMLVQ", "GRLVQ", "GTLVQ", "LGMLVQ"])
@pytest.mark.parametrize("norm", NORMS)
def test_radius_matches_numpy(name, norm):
    model = random_model(name)
    x = random_samples()
    labels = model.prototype_labels
    distances = np_distances(model, name, x)
    # The model's own distances are the squares of these.
    np.testing.assert_allclose(
        np.sqrt(model.prototype_dissimilarities(x)), distances, rtol=1e-4, atol=1e-4
    )
    maps, _ = np_maps(model, name)
    constants = np.array([np_constant(matrix, norm) for matrix in maps])
    if name == "GRLVQ" and norm == np.inf:
        # A diagonal map has the exact norm sqrt(sum lambda) = 1 (tighter).
        exact = np.sqrt(np.sum(model.relevances))
        assert np.all(exact <= constants + 1e-9)
        np.testing.assert_allclose(exact, 1.0, rtol=1e-5)
        constants = np.full_like(constants, exact)
    radii = robustness.certified_radius(model, x, norm=norm)
    assert radii.shape == (200,)
    assert radii.dtype == np.float64
    expected = np_pairwise_radius(distances, labels, constants)
    np.testing.assert_allclose(radii, expected, rtol=1e-4, atol=1e-4)
    if np.ptp(constants) < 1e-9:  # One constant: the hypothesis margin.
        np.testing.assert_allclose(
            radii,
            np_hypothesis_margin(distances, labels, constants[0]),
            rtol=1e-4,
            atol=1e-4,
        )
    assert np.all(radii > 0)
    if name == "GLVQ":  # The familiar constants.
        np.testing.assert_allclose(constants, {1: 1.0, 2: 1.0}.get(norm, np.sqrt(5)))
    if name == "GTLVQ" and norm == 2:  # Projections have norm 1.
        np.testing.assert_allclose(constants, 1.0)
    # "inf" is numpy.inf; batching changes nothing.
    if norm == np.inf:
        np.testing.assert_allclose(
            robustness.certified_radius(model, x, norm="inf", batch_size=16),
            radii,
            atol=1e-5,
        )


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize("name", ["GLVQ", "GMLVQ", "GRLVQ", "GTLVQ"])
def test_radii_of_the_norms_are_related(name):
    """||v||_2 <= ||v||_1 and ||v||_2 <= sqrt(D) ||v||_inf bound the radii."""
    model = random_model(name, seed=3)
    x = random_samples(seed=4)
    l1 = robustness.certified_radius(model, x, norm=1)
    l2 = robustness.certified_radius(model, x, norm=2)
    linf = robustness.certified_radius(model, x, norm=np.inf)
    assert np.all(l1 >= l2 * (1 - 1e-9))
    assert np.all(linf >= l2 / np.sqrt(FEATURES) * (1 - 1e-9))
    assert np.all(linf <= l2 * (1 + 1e-9))  # c_inf >= c_2 always.


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize("order_p", [1, 3, np.inf])
def test_minkowski_glvq_radius_matches_numpy_and_holds(order_p):
    """A GLVQ on `||x - w||_p`: c = D^max(0, 1/p - 1/norm) (Hoelder)."""
    model = anysma.models.GLVQ(
        input_dim=FEATURES,
        num_classes=NUM_CLASSES,
        prototypes_per_class=PER_CLASS,
        order_p=order_p,
    )
    random = np.random.RandomState(11)
    prototypes = 2.0 * random.normal(size=model.prototypes.shape)
    model.measuring_module.prototypes.assign(prototypes.astype("float32"))
    x = random_samples(seed=12)
    differences = x.astype("float64")[:, None, :] - prototypes[None]
    distances = np.linalg.norm(differences, ord=order_p, axis=-1)
    np.testing.assert_allclose(
        model.prototype_dissimilarities(x), distances, rtol=1e-4, atol=1e-4
    )
    predictions = predictions_of(model, x)
    for norm in NORMS:
        exponent = max(0.0, 1.0 / order_p - 1.0 / norm)
        radii = robustness.certified_radius(model, x, norm=norm)
        expected = np_hypothesis_margin(
            distances, model.prototype_labels, FEATURES**exponent
        )
        np.testing.assert_allclose(radii, expected, rtol=1e-4, atol=1e-4)
        kept = radii > 1e-2
        directions = [random_directions(x.shape, norm, random) for _ in range(3)]
        directions.append(worst_directions(model, x, norm))
        moved = x[None] + 0.99 * radii[None, :, None] * np.stack(directions)
        changed = predictions_of(model, moved.reshape(-1, FEATURES).astype("float32"))
        changed = np.any(changed.reshape(len(directions), -1) != predictions, axis=0)
        assert not np.any(changed & kept), (norm, np.flatnonzero(changed & kept))
        if norm != 1:  # PGD does not beat the certificate either.
            result = robustness.attack(
                model,
                x[kept],
                predictions[kept],
                epsilon=0.99 * radii[kept],
                norm=norm,
                steps=20,
            )
            assert not np.any(result.success), norm
    with pytest.raises(ValueError, match="GLVQ, GRLVQ and GMLVQ"):
        robustness.exact_euclidean_margin(model, x)


@pytest.mark.requires_trainable_backend
def test_maximum_norm_radius_is_tight_between_two_prototypes():
    model = anysma.models.GLVQ(input_dim=2, num_classes=2, order_p=np.inf)
    prototypes = np.array([[0.0, 0.0], [4.0, 0.0]], "float32")
    model.measuring_module.prototypes.assign(prototypes)
    x = np.array([[1.0, 0.5]], "float32")
    # d+ = 1, d- = 3: no L-infinity step below 1 flips the prediction, and
    # one just beyond it along the first axis does.
    np.testing.assert_allclose(robustness.certified_radius(model, x, norm="inf"), [1])
    assert predictions_of(model, x + np.array([[0.99, 0.99]], "float32"))[0] == 0
    assert predictions_of(model, x + np.array([[1.01, 0.0]], "float32"))[0] == 1
    for order_p in (0.5, -1, True, "inf"):
        with pytest.raises(ValueError, match="`order_p` must be a number >= 1"):
            anysma.models.GLVQ(input_dim=2, num_classes=2, order_p=order_p)


def worst_directions(model, x, norm):
    """Unit perturbations (in `norm`) toward the closest other-class prototype."""
    prototypes = np.asarray(model.prototypes, "float64")
    labels = np.asarray(model.prototype_labels)
    distances = model.prototype_dissimilarities(x)
    predictions = labels[np.argmin(distances, axis=-1)]
    masked = np.where(labels[None] == predictions[:, None], np.inf, distances)
    towards = prototypes[np.argmin(masked, axis=-1)] - x
    if norm == np.inf:
        return np.sign(towards)
    if norm == 1:
        largest = np.argmax(np.abs(towards), axis=-1)
        directions = np.zeros_like(towards)
        rows = np.arange(len(x))
        directions[rows, largest] = np.sign(towards[rows, largest])
        return directions
    return towards / np.linalg.norm(towards, axis=-1, keepdims=True)


def random_directions(shape, norm, random):
    directions = random.normal(size=shape)
    if norm == np.inf:
        return np.sign(directions)
    return directions / np.linalg.norm(directions, ord=norm, axis=-1, keepdims=True)


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize(
    "name",
    ["GLVQ", "GMLVQ", "GRLVQ", "GTLVQ", "LGMLVQ", "LGMLVQ_capsule_wise", "RTLVQ"],
)
def test_perturbations_below_the_radius_keep_the_prediction(name):
    model = random_model(name, seed=5)
    x = random_samples(seed=6).astype("float64")
    random = np.random.RandomState(7)
    predictions = predictions_of(model, x.astype("float32"))
    for norm in NORMS:
        radii = robustness.certified_radius(model, x.astype("float32"), norm=norm)
        # Far from float32 rounding of the distances.
        kept = radii > 1e-2
        assert kept.mean() > 0.8, (norm, kept.mean())
        directions = [random_directions(x.shape, norm, random) for _ in range(3)]
        directions.append(worst_directions(model, x.astype("float32"), norm))
        directions = np.stack(directions)
        np.testing.assert_allclose(
            np.linalg.norm(directions, ord=norm, axis=-1), 1.0, rtol=1e-9
        )
        moved = x + 0.99 * radii[:, None] * directions
        moved = moved.reshape(-1, x.shape[-1]).astype("float32")
        changed = predictions_of(model, moved).reshape(len(directions), -1)
        changed = np.any(changed != predictions, axis=0)
        assert not np.any(changed & kept), (norm, np.flatnonzero(changed & kept))


@pytest.mark.requires_trainable_backend
def test_euclidean_radius_is_tight_between_two_prototypes():
    model = anysma.models.GLVQ(input_dim=3, num_classes=2)
    prototypes = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
    model.measuring_module.prototypes.assign(prototypes.astype("float32"))
    # On the segment between the prototypes the hypothesis margin is exact.
    t = np.linspace(0.05, 0.45, 9)[:, None]
    x = t * prototypes[1]
    radii = robustness.certified_radius(model, x.astype("float32"))
    np.testing.assert_allclose(radii, 5.0 * (0.5 - t[:, 0]), rtol=1e-5)
    np.testing.assert_allclose(
        robustness.exact_euclidean_margin(model, x.astype("float32")), radii, rtol=1e-5
    )
    direction = prototypes[1] / 5.0
    below = (x + 0.99 * radii[:, None] * direction).astype("float32")
    above = (x + 1.01 * radii[:, None] * direction).astype("float32")
    np.testing.assert_array_equal(predictions_of(model, below), 0)
    np.testing.assert_array_equal(predictions_of(model, above), 1)


# === Exact Euclidean margin ===


def np_least_distance(constraints, bounds):
    """min ||delta|| subject to constraints @ delta <= bounds, by SLSQP."""
    result = scipy.optimize.minimize(
        lambda delta: 0.5 * delta @ delta,
        np.zeros(constraints.shape[-1]),
        jac=lambda delta: delta,
        constraints=[
            {
                "type": "ineq",
                "fun": lambda delta: bounds - constraints @ delta,
                "jac": lambda delta: -constraints,
            }
        ],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert result.success, result.message
    return np.linalg.norm(result.x)


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize("name", ["GLVQ", "GMLVQ", "GRLVQ"])
def test_exact_margin_matches_a_generic_solver(name):
    model = random_model(name, seed=8, per_class=3)
    x = random_samples(samples=25, seed=9)
    margins = robustness.exact_euclidean_margin(model, x)
    maps, origins = np_maps(model, name)
    mapping = maps[0]
    mapped_prototypes = origins @ mapping
    labels = np.asarray(model.prototype_labels)
    distances = np_distances(model, name, x.astype("float64")) ** 2
    predictions = labels[np.argmin(distances, axis=-1)]
    for sample in range(len(x)):
        own = np.flatnonzero(labels == predictions[sample])
        expected = min(
            np_least_distance(
                2 * (mapped_prototypes[own] - mapped_prototypes[j]) @ mapping.T,
                distances[sample, own] - distances[sample, j],
            )
            for j in np.flatnonzero(labels != predictions[sample])
        )
        np.testing.assert_allclose(margins[sample], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize("name", ["GLVQ", "GMLVQ", "GRLVQ"])
def test_exact_margin_is_never_below_the_certificate(name):
    model = random_model(name, seed=10, per_class=3)
    x = random_samples(seed=11)
    margins, deltas = robustness.exact_euclidean_margin(
        model, x, return_perturbations=True
    )
    radii = robustness.certified_radius(model, x, norm=2)
    assert np.all(margins >= radii - 1e-4 * (1 + radii)), np.min(margins - radii)
    assert np.all(np.isfinite(margins)) and np.all(margins > 0)
    np.testing.assert_allclose(np.linalg.norm(deltas, axis=-1), margins, rtol=1e-9)
    # The shortest perturbations reach the border: a bit beyond, the
    # prediction changes (for almost every sample; exactly on a vertex of
    # the polyhedron a scaled step can miss).
    predictions = predictions_of(model, x)
    beyond = (x + 1.01 * deltas).astype("float32")
    assert np.mean(predictions_of(model, beyond) != predictions) > 0.95
    below = (x + 0.99 * deltas).astype("float32")
    np.testing.assert_array_equal(predictions_of(model, below), predictions)


@pytest.mark.requires_trainable_backend
def test_exact_margin_is_the_bisector_distance_for_one_prototype_per_class():
    model = random_model("GLVQ", seed=12, per_class=1)
    x = random_samples(seed=13)
    prototypes = np.asarray(model.prototypes, "float64")
    squared = np.sum((x[:, None, :] - prototypes[None]) ** 2, axis=-1)
    winners = np.argmin(squared, axis=-1)
    expected = []
    for row, winner in zip(squared, winners):
        expected.append(
            min(
                (row[j] - row[winner])
                / (2 * np.linalg.norm(prototypes[j] - prototypes[winner]))
                for j in range(NUM_CLASSES)
                if j != winner
            )
        )
    margins = robustness.exact_euclidean_margin(model, x)
    np.testing.assert_allclose(margins, expected, rtol=1e-5, atol=1e-6)
    # Strictly larger than the certificate off the lines between prototypes.
    radii = robustness.certified_radius(model, x)
    assert np.all(margins >= radii - 1e-6) and np.mean(margins > radii + 1e-3) > 0.9


# === Trained models and attacks ===


def blobs(samples=150, features=2, seed=0):
    random = np.random.RandomState(seed)
    centers = 2.5 * random.normal(size=(NUM_CLASSES, features))
    labels = np.arange(samples) % NUM_CLASSES
    x = centers[labels] + random.normal(size=(samples, features))
    return x.astype("float32"), labels


@functools.cache
def trained_model(name, features):
    keras.utils.set_random_seed(0)
    x, labels = blobs(features=features)
    arguments = {"input_dim": features, "num_classes": NUM_CLASSES}
    model = getattr(anysma.models, name)(**arguments, prototypes_per_class=3)
    model.pre_training(x, labels, n_init=1, random_state=0)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=anysma.losses.GlvqLoss())
    model.fit(x, labels, epochs=2, batch_size=50, verbose=0)
    return model


@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize(("name", "features"), [("GLVQ", 2), ("GMLVQ", 5)])
def test_pgd_never_beats_the_certificate(name, features):
    model = trained_model(name, features)
    x, labels = blobs(samples=120, features=features, seed=1)
    predictions = predictions_of(model, x)
    for norm in (2, np.inf):
        radii = robustness.certified_radius(model, x, norm=norm)
        kept = radii > 1e-2
        # The random start for one norm only (each attack compiles anew).
        for random_start in (False, True) if norm == np.inf else (False,):
            result = robustness.attack(
                model,
                x[kept],
                predictions[kept],
                epsilon=0.99 * radii[kept],
                norm=norm,
                steps=30,
                random_start=random_start,
                seed=0,
            )
            assert not np.any(result.success), (norm, random_start)
            delta = result.adversarial.astype("float64") - x[kept]
            sizes = np.linalg.norm(delta, ord=norm, axis=-1)
            assert np.all(sizes <= 0.99 * radii[kept] * (1 + 1e-5) + 1e-6)
            np.testing.assert_array_equal(
                predictions_of(model, result.adversarial), predictions[kept]
            )
    # The attack is not weak: a bit beyond the exact L2 margin it finds the
    # other side for almost every sample.
    margins = robustness.exact_euclidean_margin(model, x)
    result = robustness.attack(
        model, x, predictions, epsilon=1.1 * margins + 1e-3, norm=2, steps=40
    )
    assert np.mean(result.success) > 0.9, np.mean(result.success)
    np.testing.assert_array_equal(
        result.success, predictions_of(model, result.adversarial) != predictions
    )


@pytest.mark.requires_trainable_backend
def test_certified_and_empirical_accuracy():
    model = trained_model("GLVQ", 2)
    x, labels = blobs(samples=90, seed=2)
    predictions = predictions_of(model, x)
    clean = np.mean(predictions == labels)
    assert 0.5 < clean < 1.0, clean
    epsilons = np.linspace(0.0, 3.0, 13)
    for norm in NORMS:
        radii = robustness.certified_radius(model, x, norm=norm)
        curve = robustness.certified_accuracy(model, x, labels, epsilons, norm=norm)
        assert curve.shape == (13,)
        expected = [np.mean((predictions == labels) & (radii > e)) for e in epsilons]
        np.testing.assert_allclose(curve, expected)
        assert np.all(np.diff(curve) <= 0)
        assert curve[0] == pytest.approx(clean) and curve[-1] < curve[0]
        scalar = robustness.certified_accuracy(model, x, labels, 0.5, norm=norm)
        assert isinstance(scalar, float)
        assert scalar == pytest.approx(np.mean((predictions == labels) & (radii > 0.5)))
        one_hot = keras.utils.to_categorical(labels, NUM_CLASSES)
        np.testing.assert_array_equal(
            robustness.certified_accuracy(model, x, one_hot, epsilons, norm=norm), curve
        )
    # The attack gives an upper bound: between the certificate and the clean
    # accuracy.
    for norm, epsilons in (("inf", np.array([0.0, 0.5])), (2, np.array([0.3, 0.8]))):
        empirical = robustness.empirical_robust_accuracy(
            model, x, labels, epsilons, norm=norm, steps=20
        )
        certified = robustness.certified_accuracy(model, x, labels, epsilons, norm=norm)
        assert np.all(empirical >= certified - 1e-12), (empirical, certified)
        assert np.all(empirical <= clean + 1e-12)
        assert empirical[-1] < clean
    # No perturbation: the clean accuracy, a float for a number.
    single = robustness.empirical_robust_accuracy(model, x, labels, 0.0)
    assert isinstance(single, float)
    assert single == pytest.approx(clean)


@pytest.mark.requires_trainable_backend
def test_attack_batches_and_rslvq():
    model = trained_model("GLVQ", 2)
    x, labels = blobs(samples=40, seed=3)
    whole = robustness.attack(model, x, labels, 0.5, steps=10)
    batched = robustness.attack(model, x, labels, 0.5, steps=10, batch_size=7)
    np.testing.assert_allclose(whole.adversarial, batched.adversarial, atol=1e-5)
    np.testing.assert_array_equal(whole.success, batched.success)
    assert whole.adversarial.dtype == np.float32
    nothing = robustness.attack(model, x, labels, 0.0, steps=3)
    np.testing.assert_array_equal(nothing.adversarial, x)
    np.testing.assert_array_equal(nothing.success, predictions_of(model, x) != labels)
    # RSLVQ: no certificate, but the attack works on its posteriors.
    rslvq = anysma.models.RSLVQ(input_dim=2, num_classes=NUM_CLASSES)
    rslvq.pre_training(x, labels, n_init=1, random_state=0)
    predictions = predictions_of(rslvq, x)
    weak = robustness.attack(rslvq, x, predictions, 1e-3, norm=np.inf)
    strong = robustness.attack(rslvq, x, predictions, 4.0, norm=np.inf)
    assert np.mean(weak.success) < 0.2 and np.mean(strong.success) > 0.8
    np.testing.assert_array_equal(
        strong.success, predictions_of(rslvq, strong.adversarial) != predictions
    )


# === Errors ===


@pytest.mark.requires_trainable_backend
def test_argument_errors():
    model = random_model("GLVQ")
    x = random_samples(samples=6)
    y = np.zeros(6, "int64")
    rslvq = anysma.models.RSLVQ(input_dim=FEATURES, num_classes=NUM_CLASSES)
    for function in (
        robustness.certified_radius,
        robustness.exact_euclidean_margin,
        lambda model, x: robustness.certified_accuracy(model, x, y, 0.1),
    ):
        with pytest.raises(ValueError, match="RSLVQ"):
            function(rslvq, x)
        with pytest.raises(TypeError, match="must be an LVQ model"):
            function(object(), x)
    for norm in (3, 0, "l2", True, None, -np.inf):
        with pytest.raises(ValueError, match="`norm` must be one of"):
            robustness.certified_radius(model, x, norm=norm)
    with pytest.raises(ValueError, match="`norm` must be one of 2, numpy.inf"):
        robustness.attack(model, x, y, 0.1, norm=1)
    for epsilon in (-0.1, float("nan"), float("inf"), [[0.1]], [], "0.1", [0.1, -1.0]):
        with pytest.raises(ValueError, match="`epsilon` must be"):
            robustness.certified_accuracy(model, x, y, epsilon)
        with pytest.raises(ValueError, match="`epsilon` must be"):
            robustness.attack(model, x, y, epsilon)
    with pytest.raises(ValueError, match=r"`epsilon` must be .* \(6,\)"):
        robustness.attack(model, x, y, np.ones(4))
    with pytest.raises(ValueError, match="`y` must be 6"):
        robustness.certified_accuracy(model, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="`y` must hold class indices"):
        robustness.attack(model, x, y + 5, 0.1)
    with pytest.raises(ValueError, match="`steps` must be an int >= 1"):
        robustness.attack(model, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="`step_size` must be"):
        robustness.attack(model, x, y, 0.1, step_size=-1.0)
    with pytest.raises(ValueError, match="`x` must be a non-empty 2-D"):
        robustness.certified_radius(model, x[0])
    with pytest.raises(ValueError, match="takes inputs of shape"):
        robustness.certified_radius(model, np.ones((4, 3), "float32"))
    for name in ("LGMLVQ", "GTLVQ", "RTLVQ"):
        with pytest.raises(ValueError, match="GLVQ, GRLVQ and GMLVQ"):
            robustness.exact_euclidean_margin(random_model(name), x)
    rtlvq = random_model("RTLVQ")
    rtlvq.measuring_module.matrices.assign(
        2.0 * keras.ops.convert_to_numpy(rtlvq.measuring_module.matrices)
    )
    with pytest.raises(ValueError, match="orthonormal bases"):
        robustness.certified_radius(rtlvq, x)


def test_public_namespace():
    assert anysma.robustness is robustness
    assert "robustness" in anysma.__all__
    for name in (
        "certified_radius",
        "certified_accuracy",
        "exact_euclidean_margin",
        "attack",
        "empirical_robust_accuracy",
    ):
        assert callable(getattr(robustness, name))


def test_shared_constant_shortcut_equals_the_pairwise_radius():
    # One constant for all prototypes takes the (d- - d+) / (2c) shortcut;
    # nudging one constant forces the pairwise max-min: both must agree.
    from anysma import robustness

    rng = np.random.default_rng(3)
    distances = rng.random((300, 12))
    labels = np.repeat(np.arange(4), 3)
    predictions = labels[distances.argmin(axis=1)]
    shared = np.full(12, 0.7)
    nudged = shared.copy()
    nudged[0] *= 1 + 1e-9
    fast = robustness._pairwise_radii(distances, shared, labels, predictions)
    slow = robustness._pairwise_radii(distances, nudged, labels, predictions)
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
    assert np.all(fast >= 0) and np.any(fast > 0)
