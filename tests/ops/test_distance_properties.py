"""Property-based tests of the distance functions in `anysma.ops`.

Hypothesis draws small float32 inputs with bounded, finite coordinates and
checks what must hold for every input: distances are finite and
non-negative; `d(w, w)` is zero (up to the GEMM rounding and the `epsilon`
clamp before the root) with a finite gradient; the symmetric distances are
symmetric; Minkowski distances with `p >= 1` (and global Omega distances,
norms of a linear map) satisfy the triangle inequality; the tangent
distance does not change when the input or the prototype moves inside the
prototype's subspace; and the GEMM forms (`|x|^2 - 2 x.w + |w|^2` and its
analogues) agree with the broadcast formulas on explicit differences, in
the pairwise and in the capsule layout (shared and per-prototype signals).

Tolerances (float32): the broadcast forms are exact up to rounding of the
result. The GEMM forms cancel large terms, so their absolute error scales
with `|x|^2 + |w|^2` (times the squared norm of a matrix applied to them),
not with the distance: about `1e-7` per term, so `1e-5` of that scale is
safe. The root of a squared distance with absolute error `e` near zero has
an error of up to `sqrt(e)`.
"""

import math

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from keras import ops

from anysma import ops as anysma_ops
from anysma.testing.gradients import autodiff_gradient
from anysma.testing.test_case import to_numpy

# Every case runs on every backend: few examples per case.
FEW_EXAMPLES = settings(max_examples=5, deadline=None)
SOME_EXAMPLES = settings(max_examples=10, deadline=None)

EPSILON = 1e-7  # The functions' default clamp before the root.
GEMM_ERROR = 1e-5  # Relative to the scale of the cancelled terms.
# Fixed small shapes: the values vary, the shapes hardly. JAX compiles
# every eager operation (and its gradient) once per shape, which would
# dominate the run time with freely drawn shapes.
DIM = 3
NUM_PROTOTYPES = 2
SAMPLES = 2

coordinates = st.floats(
    -10, 10, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32
)


def points(count, dim):
    return hnp.arrays("float32", (count, dim), elements=coordinates)


def squared_norm(values):
    return float(np.sum(np.asarray(values, "float64") ** 2))


def orthonormal(rng, shape):
    """Orthonormal columns: one basis `(D, r)` or one per prototype."""
    if len(shape) == 3:
        return np.stack([orthonormal(rng, shape[1:]) for _ in range(shape[0])])
    return np.linalg.qr(rng.normal(size=shape))[0].astype("float32")


# === Compiled once on JAX ===

_COMPILED = {}


def compiled_once(key, function):
    """`function`, on JAX compiled by `jax.jit` once per `key`.

    Eager JAX compiles every operation (and, under `jax.grad`, its
    derivative) once per shape and parameters; the many small graphs of the
    cases would dominate the run time. One compiled function per case,
    layout and options is reused by all examples, and `jax.grad` through it
    reuses its compiled derivative too. The other backends run eagerly.
    """
    if keras.backend.backend() != "jax":
        return function
    if key not in _COMPILED:
        import jax

        _COMPILED[key] = jax.jit(function)
    return _COMPILED[key]


# === The distance functions ===
#
# A case is one distance function with its parameters (matrices, bounds),
# drawn by Hypothesis. It is evaluated in three layouts: "pairwise"
# (`x (N, D)` against `prototypes (P, D)`), "shared" (the capsule form with
# signals `(N, 1, 1, D)` shared by all prototypes) and "tiled" (the capsule
# form with a copy of the signals per prototype, `(N, P, 1, D)`), which run
# different kernels. All give `(N, P)` here.

LAYOUTS = ("pairwise", "shared", "tiled")


class Case:
    """One distance function, its parameters and what is known about it.

    Args:
        name: The test id.
        kind: `"minkowski"`, `"omega"`, `"tangent"` or `"restricted_tangent"`.
        order_p: The order of the (projected) norm.
        local: One matrix per prototype (else one for all).
        columns: The columns of the matrices: of Omega, or the rank of the
            tangent subspaces. Fixed per case (see `DIM`).
    """

    def __init__(self, name, kind, order_p=2, local=False, columns=None):
        self.name = name
        self.kind = kind
        self.order_p = order_p
        self.local = local
        self.columns = columns

    def __repr__(self):
        return self.name

    @property
    def identity(self):
        """What determines the computation (the key of compiled functions)."""
        return (self.kind, self.order_p, self.local)

    @property
    def gemm(self):
        """Whether the function uses the GEMM form (else the differences)."""
        return self.order_p == 2

    @property
    def exact(self):
        """Whether `x - w` is formed directly, so `d(x, x)` is exactly 0.

        The GEMM forms round, and so do the Omega distances of other orders:
        `x Omega` and `w Omega` are separate products.
        """
        return self.kind == "minkowski" and not self.gemm

    @property
    def symmetric(self):
        # A local matrix belongs to the prototype: swapping the roles of
        # inputs and prototypes changes the distance. Tangent distances are
        # not symmetric either (only the prototype has a subspace).
        return self.kind == "minkowski" or (self.kind == "omega" and not self.local)

    @property
    def metric(self):
        """Whether the non-squared distance is a (pseudo)metric."""
        return self.symmetric and self.order_p >= 1

    def draw_parameters(self, data, dim, proto_number):
        """The case's matrices (and bounds), by name, drawn by Hypothesis."""
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
        leading = (proto_number,) if self.local else ()
        if self.kind == "omega":
            shape = leading + (dim, self.columns)
            return {"omegas": rng.normal(size=shape).astype("float32")}
        if self.kind in ("tangent", "restricted_tangent"):
            rank = self.columns
            parameters = {"subspaces": orthonormal(rng, leading + (dim, rank))}
            if self.kind == "restricted_tangent":
                parameters["bounds"] = data.draw(
                    hnp.arrays(
                        "float32",
                        leading + (rank,),
                        elements=st.floats(0, 10, width=32, allow_subnormal=False),
                    ),
                    label="bounds",
                )
            return parameters
        return {}

    def error_scale(self, x, prototypes, parameters):
        """The scale of the GEMM rounding error of the squared distances."""
        scale = 1 + squared_norm(x) + squared_norm(prototypes)
        if self.kind == "omega":
            # |v Omega|^2 <= |Omega|_F^2 |v|^2 for every matrix.
            omegas = parameters["omegas"].reshape(
                (-1,) + parameters["omegas"].shape[-2:]
            )
            scale *= max(1.0, max(squared_norm(omega) for omega in omegas))
        return scale

    def __call__(self, x, prototypes, parameters, layout="pairwise", **options):
        """The distances `(N, P)`; `options` are `squared` and `epsilon`."""
        names = tuple(sorted(parameters))
        key = (self.identity, layout, names, tuple(sorted(options.items())))

        def distances(x, prototypes, *values):
            return self.distances(
                x, prototypes, dict(zip(names, values)), layout, **options
            )

        function = compiled_once(key, distances)
        return function(x, prototypes, *(parameters[name] for name in names))

    def distances(self, x, prototypes, parameters, layout, **options):
        """`__call__`, not compiled."""
        arguments = [
            parameters[key]
            for key in ("omegas", "subspaces", "bounds")
            if key in parameters
        ]
        if self.kind != "tangent" and self.kind != "restricted_tangent":
            options["order_p"] = self.order_p
        if layout == "pairwise":
            function = {
                "minkowski": anysma_ops.minkowski_distance,
                "omega": anysma_ops.omega_distance,
                "tangent": anysma_ops.tangent_distance,
                "restricted_tangent": anysma_ops.restricted_tangent_distance,
            }[self.kind]
            return function(x, prototypes, *arguments, **options)
        function = {
            "minkowski": anysma_ops.capsule_minkowski_distance,
            "omega": anysma_ops.capsule_omega_distance,
            "tangent": anysma_ops.capsule_tangent_distance,
            "restricted_tangent": anysma_ops.capsule_restricted_tangent_distance,
        }[self.kind]
        signals = ops.expand_dims(ops.expand_dims(x, 1), 1)
        if layout == "tiled":
            signals = ops.tile(signals, (1, ops.shape(prototypes)[0], 1, 1))
        return function(signals, prototypes, *arguments, **options)[:, :, 0]

    def broadcast(self, x, prototypes, parameters, squared=False, epsilon=EPSILON):
        """The same distances from explicit differences `x - w`, in `keras.ops`."""
        differences = ops.expand_dims(x, 1) - ops.expand_dims(prototypes, 0)
        if self.kind == "omega":
            omegas = parameters["omegas"]
            equation = "npd,pdm->npm" if self.local else "npd,dm->npm"
            differences = ops.einsum(equation, differences, omegas)
        elif self.kind != "minkowski":
            subspaces = parameters["subspaces"]
            to_subspace = "npd,pdr->npr" if self.local else "npd,dr->npr"
            coordinates = ops.einsum(to_subspace, differences, subspaces)
            if "bounds" in parameters:
                bounds = parameters["bounds"]
                coordinates = ops.clip(coordinates, -bounds, bounds)
            from_subspace = "npr,pdr->npd" if self.local else "npr,dr->npd"
            differences = differences - ops.einsum(
                from_subspace, coordinates, subspaces
            )
        return anysma_ops.p_norm(
            differences, self.order_p, squared=squared, epsilon=epsilon
        )


CASES = [
    Case(f"minkowski_{order_p}", "minkowski", order_p)
    for order_p in (0.5, 1, 1.5, 2, 3, math.inf)
] + [
    # Omega with more columns than features, and of limited rank.
    Case("omega_global", "omega", columns=DIM + 1),
    Case("omega_local", "omega", local=True, columns=DIM - 1),
    Case("omega_global_p1", "omega", order_p=1, columns=DIM - 1),
    # Subspaces of one and of DIM - 1 dimensions.
    Case("tangent_global", "tangent", columns=1),
    Case("tangent_local", "tangent", local=True, columns=DIM - 1),
    Case("restricted_tangent_global", "restricted_tangent", columns=DIM - 1),
    Case("restricted_tangent_local", "restricted_tangent", local=True, columns=1),
]
GEMM_CASES = [case for case in CASES if case.gemm]
METRIC_CASES = [case for case in CASES if case.metric]
SYMMETRIC_CASES = [case for case in CASES if case.symmetric]
TANGENT_CASES = [case for case in CASES if case.kind == "tangent"]


def with_layouts(cases, layouts=LAYOUTS):
    """`(case, layout)` test parameters.

    The tiled layout only runs other kernels for the GEMM forms: the others
    compute `x - w` alike in every layout.
    """
    return [
        pytest.param(case, layout, id=f"{case.name}-{layout}")
        for case in cases
        for layout in layouts
        if layout != "tiled" or not case.exact
    ]


def draw_problem(data, case):
    """`(x, prototypes, parameters)`."""
    x = data.draw(points(SAMPLES, DIM), label="x")
    prototypes = data.draw(points(NUM_PROTOTYPES, DIM), label="prototypes")
    return x, prototypes, case.draw_parameters(data, DIM, NUM_PROTOTYPES)


# === Non-negativity and identity: d(w, w) = 0 ===


def identity_bound(case, prototypes, parameters, squared, epsilon=EPSILON):
    """The largest `d(w, w)` rounding and the clamp before the root allow."""
    if case.exact:
        error = 0.0
    else:  # Of the squared distance.
        error = GEMM_ERROR * case.error_scale(prototypes, prototypes, parameters)
    if squared:
        return error
    if case.order_p in (1, math.inf):
        # These norms take no root (and no clamp): the error of the norm.
        return math.sqrt(error)
    # The root of max(value, epsilon), 1e-6 relative for the root itself.
    return max(error, epsilon) ** (1 / case.order_p) * (1 + 1e-6)


# The squared distances: the root of the others is non-negative anyway, but
# the GEMM forms must clamp the rounding of `|x|^2 - 2 x.w + |w|^2` below 0.
@pytest.mark.parametrize(("case", "layout"), with_layouts(CASES))
@SOME_EXAMPLES
@given(data=st.data())
def test_squared_distances_are_non_negative_and_vanish_at_the_prototypes(
    case, layout, data
):
    x, prototypes, parameters = draw_problem(data, case)
    distances = to_numpy(case(x, prototypes, parameters, layout, squared=True))
    assert distances.shape == (len(x), len(prototypes))
    assert np.all(np.isfinite(distances))
    assert np.all(distances >= 0)
    at_prototypes = to_numpy(
        case(prototypes, prototypes, parameters, layout, squared=True)
    )
    assert np.all(at_prototypes >= 0)
    bound = identity_bound(case, prototypes, parameters, squared=True)
    assert np.all(np.diagonal(at_prototypes) <= bound), np.diagonal(at_prototypes)


def distances_and_gradient(case, x, prototypes, parameters, layout, **options):
    """The distances, and the gradient of their sum for `x` and `prototypes`.

    The gradient holds `x`'s rows above the prototypes'.
    """
    count = len(x)
    both = np.concatenate([x, prototypes])
    if keras.backend.backend() != "jax":
        distances = case(x, prototypes, parameters, layout, **options)
        gradient = autodiff_gradient(
            lambda both: case(
                both[:count], both[count:], parameters, layout, **options
            ),
            both,
        )
        return to_numpy(distances), gradient
    import jax

    names = tuple(sorted(parameters))
    key = ("gradient", case.identity, layout, names, tuple(sorted(options.items())))

    def summed(both, *values):
        distances = case.distances(
            both[:count], both[count:], dict(zip(names, values)), layout, **options
        )
        return ops.sum(distances), distances

    # One compiled function for both (see `compiled_once`).
    function = compiled_once(key, jax.value_and_grad(summed, has_aux=True))
    (_, distances), gradient = function(both, *(parameters[name] for name in names))
    return to_numpy(distances), to_numpy(gradient)


# With the root but without the clamp before it (`epsilon=0`: zero maps to
# zero, with a zero gradient), where a NaN would show: a zero gradient from
# the root times an infinite derivative of the distance below it. (With the
# default clamp, `d(w, w)` is `sqrt(epsilon)`; `test_distances.py` checks
# its value and gradient on fixed inputs.) The pairwise form runs the
# kernels of shared capsule signals; tiled capsule signals run the
# elementwise ones.
@pytest.mark.requires_trainable_backend
@pytest.mark.parametrize(("case", "layout"), with_layouts(CASES, ("pairwise", "tiled")))
@FEW_EXAMPLES
@given(data=st.data())
def test_distance_of_a_prototype_to_itself_is_zero_with_a_finite_gradient(
    case, layout, data
):
    _, prototypes, parameters = draw_problem(data, case)
    options = {"squared": False, "epsilon": 0.0}
    # The gradient at x = w, for the inputs and the prototypes.
    distances, gradient = distances_and_gradient(
        case, prototypes, prototypes, parameters, layout, **options
    )
    assert np.all(np.isfinite(distances))
    bound = identity_bound(case, prototypes, parameters, **options)
    assert np.all(np.diagonal(distances) <= bound), (np.diagonal(distances), bound)
    assert np.all(np.isfinite(gradient)), gradient


# === Symmetry ===


@pytest.mark.parametrize("case", SYMMETRIC_CASES, ids=repr)
@SOME_EXAMPLES
@given(data=st.data(), squared=st.booleans())
def test_symmetric_distances_are_symmetric(case, data, squared):
    x, prototypes, parameters = draw_problem(data, case)
    forward = to_numpy(case(x, prototypes, parameters, squared=squared))
    backward = to_numpy(case(prototypes, x, parameters, squared=squared))
    if case.exact:
        # |x - w| and |w - x| are the same numbers.
        tolerance = 1e-6 * (1 + float(np.max(forward)))
    else:
        error = GEMM_ERROR * case.error_scale(x, prototypes, parameters)
        tolerance = error if squared else math.sqrt(error)
    np.testing.assert_allclose(forward, backward.T, atol=tolerance, rtol=1e-5)


# === Triangle inequality (p >= 1) ===


@pytest.mark.parametrize("case", METRIC_CASES, ids=repr)
@SOME_EXAMPLES
@given(data=st.data())
def test_triangle_inequality(case, data):
    triple = data.draw(points(3, DIM), label="points")
    parameters = case.draw_parameters(data, DIM, 3)
    # epsilon=0: no clamp before the root, so d(x, x) is 0, not sqrt(1e-7).
    distances = to_numpy(case(triple, triple, parameters, epsilon=0.0))
    if case.exact:
        tolerance = 1e-5 * (1 + float(np.max(distances)))
    else:
        tolerance = 3 * math.sqrt(
            GEMM_ERROR * case.error_scale(triple, triple, parameters)
        )
    for i in range(3):
        for j in range(3):
            for k in range(3):
                assert distances[i, k] <= distances[i, j] + distances[j, k] + tolerance


# === Tangent distances: invariance inside the subspace ===


def _tangent_problem(data, case):
    """Inputs, prototypes, bases and coordinates `theta` of moves in them."""
    x, prototypes, parameters = draw_problem(data, case)
    subspaces = parameters["subspaces"]
    rank = subspaces.shape[-1]
    theta = data.draw(
        hnp.arrays("float32", (len(prototypes), rank), elements=coordinates),
        label="theta",
    )
    return x, prototypes, parameters, subspaces, theta


@pytest.mark.parametrize(("case", "layout"), with_layouts(TANGENT_CASES))
@SOME_EXAMPLES
@given(data=st.data())
def test_tangent_distance_is_invariant_to_moves_inside_the_subspace(case, layout, data):
    x, prototypes, parameters, subspaces, theta = _tangent_problem(data, case)
    local_subspaces = (
        subspaces
        if case.local
        else np.broadcast_to(subspaces, (len(prototypes),) + subspaces.shape)
    )
    # (P, D): the move W_p theta_p of every prototype in its own subspace.
    moves = np.einsum("pdr,pr->pd", local_subspaces, theta).astype("float32")
    distances = to_numpy(case(x, prototypes, parameters, layout, squared=True))
    # |x + m|^2 <= 2 |x|^2 + 2 |m|^2 for the moved inputs and prototypes.
    scale = 4 * (
        1 + squared_norm(x) + squared_norm(prototypes) + len(x) * squared_norm(moves)
    )
    tolerance = GEMM_ERROR * scale
    # The prototype moves along its subspace: the same affine subspace.
    moved_prototypes = to_numpy(
        case(x, prototypes + moves, parameters, layout, squared=True)
    )
    np.testing.assert_allclose(moved_prototypes, distances, atol=tolerance, rtol=0)
    # An input moves along prototype p's subspace: the same distance to p.
    for p in range(len(prototypes)):
        moved_x = to_numpy(
            case(x + moves[p], prototypes, parameters, layout, squared=True)
        )
        np.testing.assert_allclose(
            moved_x[:, p], distances[:, p], atol=tolerance, rtol=0
        )


@pytest.mark.parametrize("case", TANGENT_CASES, ids=repr)
@SOME_EXAMPLES
@given(data=st.data())
def test_tangent_distances_lie_below_the_euclidean_distance(case, data):
    x, prototypes, parameters = draw_problem(data, case)
    # The restricted case of the same scope, here with the tangent's bases.
    restricted = next(
        other
        for other in CASES
        if other.kind == "restricted_tangent" and other.local == case.local
    )
    rank = parameters["subspaces"].shape[-1]
    leading = (len(prototypes),) if case.local else ()
    bounds = data.draw(
        hnp.arrays(
            "float32",
            leading + (rank,),
            elements=st.floats(0, 10, width=32, allow_subnormal=False),
        ),
        label="bounds",
    )
    options = {"squared": True}
    tangent = to_numpy(case(x, prototypes, parameters, **options))
    bounded = to_numpy(
        restricted(x, prototypes, {**parameters, "bounds": bounds}, **options)
    )
    euclidean = to_numpy(anysma_ops.squared_euclidean_distance(x, prototypes))
    tolerance = GEMM_ERROR * case.error_scale(x, prototypes, parameters)
    # The subspace contains w, and the bounded set lies between w and it.
    assert np.all(tangent <= bounded + tolerance)
    assert np.all(bounded <= euclidean + tolerance)


# === GEMM forms against the broadcast formulas ===


# Squared: the root is the same `safe_root` in both forms, and the GEMM
# error would only be blurred by it.
@pytest.mark.parametrize(("case", "layout"), with_layouts(GEMM_CASES))
@SOME_EXAMPLES
@given(data=st.data())
def test_gemm_forms_agree_with_the_broadcast_formula(case, layout, data):
    x, prototypes, parameters = draw_problem(data, case)
    gemm = to_numpy(case(x, prototypes, parameters, layout, squared=True))
    broadcast = to_numpy(case.broadcast(x, prototypes, parameters, squared=True))
    tolerance = GEMM_ERROR * case.error_scale(x, prototypes, parameters)
    np.testing.assert_allclose(gemm, broadcast, atol=tolerance, rtol=1e-5)


@SOME_EXAMPLES
@given(data=st.data())
def test_squared_euclidean_and_euclidean_agree_with_the_broadcast_formula(data):
    case = Case("minkowski_2", "minkowski")
    x, prototypes, _ = draw_problem(data, case)
    differences = ops.expand_dims(x, 1) - ops.expand_dims(prototypes, 0)
    squared = to_numpy(ops.sum(ops.square(differences), axis=-1))
    error = GEMM_ERROR * case.error_scale(x, prototypes, {})
    np.testing.assert_allclose(
        to_numpy(anysma_ops.squared_euclidean_distance(x, prototypes)),
        squared,
        atol=error,
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        to_numpy(anysma_ops.euclidean_distance(x, prototypes)),
        np.sqrt(np.maximum(squared, EPSILON)),
        atol=math.sqrt(error),
        rtol=1e-5,
    )
