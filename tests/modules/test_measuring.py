import json
import math

import keras
import numpy as np

import anysma
from anysma import constraints
from anysma.modules import InputModule
from anysma.modules import MinkowskiDistance
from anysma.modules import OmegaDistance
from anysma.modules import PointMatrixPrototype
from anysma.modules import PointPrototype
from anysma.modules import RestrictedTangentDistance
from anysma.modules import TangentDistance
from anysma.modules import measuring
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient
from anysma.testing.gradients import numeric_gradient
from anysma.testing.test_case import to_numpy
from anysma.utils import prototype_index_tables

# Both have 3 capsules and 6 prototypes, so the tensors keep their shapes
# (and the JAX backend its compiled kernels) across the two.
DISTRIBUTIONS = [(2, 3), [1, 3, 2]]
ATOMS = [(4,), (2, 3)]
BATCH, CHANNELS = 2, 2


# === NumPy reference ===


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def orthonormal(shape, seed=0):
    rng = np.random.default_rng(seed)
    if len(shape) == 2:
        return np.linalg.qr(rng.normal(size=shape))[0].astype("float32")
    return np.stack([orthonormal(shape[1:], seed + i) for i in range(shape[0])])


def np_p_norm(values, order_p, squared=False, epsilon=1e-7):
    """The original anysma's p-norm over the last axis."""
    values = np.asarray(values, dtype="float64")
    if order_p == 1:
        norm = np.abs(values).sum(-1)
        return norm**2 if squared else norm
    if math.isinf(order_p):
        norm = np.abs(values).max(-1)
        return norm**2 if squared else norm
    powered = (np.abs(values) ** order_p).sum(-1)
    if squared:
        return powered
    return np.maximum(powered, epsilon) ** (1.0 / order_p)


def np_mix(dissimilarities, distances, linear_factor):
    if linear_factor is None:
        return dissimilarities + distances
    return (1 - linear_factor) * dissimilarities + linear_factor * distances


def np_gather(signals, distribution):
    return signals[:, prototype_index_tables(distribution).capsule_extension]


def np_scoped(values, scope, distribution):
    """Scoped weights `prefix + shape` as one entry per prototype."""
    tables = prototype_index_tables(distribution)
    if scope == "global":
        return np.broadcast_to(values, (tables.proto_number,) + values.shape)
    if scope == "capsule_wise":
        return values[tables.capsule_extension]
    return values


def np_differences(signals, prototypes):
    """`(B, P, C, D)` flat differences of gathered signals and prototypes."""
    batch, protos, channels = signals.shape[:3]
    return (signals - prototypes[None, :, None]).reshape(batch, protos, channels, -1)


def np_tile(values, batch, channels):
    return np.broadcast_to(
        values[None, :, None], (batch, values.shape[0], channels) + values.shape[1:]
    )


def inputs_for(atom, seed=0):
    signals = random((BATCH, 3, CHANNELS) + atom, seed)
    dissimilarities = np.abs(random((BATCH, 6, CHANNELS), seed + 1))
    return signals, dissimilarities


def build(module, inputs):
    """Build `module` on `inputs` with cheap initializers.

    The tests overwrite the weights anyway, and on JAX every random
    initializer is compiled anew for every weight shape (seconds each).
    """
    module.prototype_initializer = keras.initializers.Zeros()
    if isinstance(module, PointMatrixPrototype):
        module.matrix_initializer = keras.initializers.Ones()
    module(inputs)
    return module


def set_weights(module, seed=10):
    """Give the module's weights random values (orthonormal bases for TD)."""
    values = []
    for index, weight in enumerate(module.weights):
        shape = tuple(weight.shape)
        if weight.name == "matrices" and isinstance(
            module, (TangentDistance, RestrictedTangentDistance)
        ):
            value = orthonormal(shape, seed + index)
        elif weight.name == "bounds":
            value = 0.5 * np.abs(random(shape, seed + index))
        else:
            value = random(shape, seed + index)
        weight.assign(value)
        values.append(value)
    return values


# === Harness ===


class MeasuringLayerTest(TestCase):
    def test_minkowski_distance_layer(self):
        self.run_layer_test(
            MinkowskiDistance,
            {
                "order_p": 2,
                "squared_dissimilarity": True,
                "linear_factor": None,
                "prototype_initializer": "zeros",
                "prototype_regularizer": "max_distance",
                "prototype_constraint": "NonNeg",
                "prototype_distribution": [1, 3, 2],
            },
            inputs_for((4,)),
            expected_output_shape=((2, 6, 2, 4), (2, 6, 2)),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_omega_distance_layer(self):
        self.run_layer_test(
            OmegaDistance,
            {
                "matrix_scope": "capsule_wise",
                "projected_atom_shape": (2, 2),
                "signal_output": "projected_signals",
                "prototype_initializer": "zeros",
                "matrix_regularizer": "OmegaRegularizer",
                "matrix_constraint": "OmegaNormalization",
                "prototype_distribution": [1, 3, 2],
            },
            inputs_for((2, 3)),
            expected_output_shape=((2, 6, 2, 2, 2), (2, 6, 2)),
            expected_num_trainable_weights=2,
        )

    def test_tangent_distance_layer(self):
        layer = self.run_layer_test(
            TangentDistance,
            {
                "projected_atom_shape": 2,
                "signal_output": "parameterized_signals",
                "prototype_distribution": (2, 3),
            },
            inputs_for((4,)),
            expected_output_shape=((2, 6, 2, 2), (2, 6, 2)),
            expected_num_trainable_weights=2,
        )
        self.assertEqual([w.name for w in layer.weights], ["prototypes", "matrices"])
        self.assertNotIn("matrix_constraint", layer.get_config())

    def test_restricted_tangent_distance_layer(self):
        layer = self.run_layer_test(
            RestrictedTangentDistance,
            {
                "projected_atom_shape": 2,
                "matrix_scope": "capsule_wise",
                "signal_output": "projected_signals",
                "prototype_initializer": "zeros",
                "matrix_initializer": "ones",
                "bound_initializer": "ones",
                "prototype_distribution": [1, 3, 2],
            },
            inputs_for((2, 3)),
            expected_output_shape=((2, 6, 2, 2, 3), (2, 6, 2)),
            expected_num_trainable_weights=3,
        )
        self.assertEqual(
            [(w.name, tuple(w.shape)) for w in layer.weights],
            [("prototypes", (6, 2, 3)), ("matrices", (3, 6, 2)), ("bounds", (3, 2))],
        )


# === Weights, config and validation ===


class MeasuringConfigTest(TestCase):
    def test_weight_names_shapes_and_order(self):
        inputs = ((None, 3, 2, 2, 3), (None, 6, 2))
        cheap = {"prototype_initializer": "zeros", "matrix_initializer": "ones"}
        expected = {
            "local": [(6, 2, 3), (6, 6, 4), (6, 4)],
            "global": [(6, 2, 3), (6, 4), (4,)],
            "capsule_wise": [(6, 2, 3), (3, 6, 4), (3, 4)],
        }
        for scope, shapes in expected.items():
            module = RestrictedTangentDistance(
                projected_atom_shape=(2, 2),
                matrix_scope=scope,
                prototype_distribution=(2, 3),
                **cheap,
            )
            module.build(inputs)
            self.assertEqual(
                [(w.name, tuple(w.shape)) for w in module.weights],
                list(zip(["prototypes", "matrices", "bounds"], shapes)),
            )
        omega = OmegaDistance(prototype_distribution=(2, 3), **cheap)
        omega.build(inputs)
        self.assertEqual(
            [(w.name, tuple(w.shape)) for w in omega.weights],
            [("prototypes", (6, 2, 3)), ("matrices", (6, 6, 6))],
        )

    def test_defaults_follow_the_original(self):
        module = MinkowskiDistance()
        self.assertEqual(module.order_p, 2)
        self.assertEqual(module.linear_factor, 0.5)
        self.assertEqual(module.epsilon, 1e-7)
        self.assertFalse(module.squared_dissimilarity)
        self.assertEqual(module.signal_output, "signals")
        self.assertIsInstance(
            module.prototype_initializer, keras.initializers.TruncatedNormal
        )
        rtd = RestrictedTangentDistance(2)
        self.assertEqual(rtd.matrix_scope, "local")
        self.assertIsInstance(rtd.bound_constraint, constraints.Positive)
        self.assertIsInstance(rtd.matrix_constraint, constraints.Orthogonalization)
        self.assertAllClose(rtd.bound_initializer((2,)), [1e-7, 1e-7])

    def test_configs_are_json_and_round_trip(self):
        modules = [
            MinkowskiDistance(order_p=math.inf, prototype_distribution=3),
            OmegaDistance(
                order_p=np.float64(2.2),
                projected_atom_shape=3,
                matrix_constraint="omega_normalization",
                prototype_distribution=[1, 2],
            ),
            TangentDistance((2,), matrix_scope="global", prototype_distribution=(2, 2)),
            RestrictedTangentDistance(
                2, bound_regularizer="l2", prototype_distribution=2
            ),
        ]
        for module in modules:
            with self.subTest(module=type(module).__name__):
                config = module.get_config()
                json.dumps(config)
                revived = type(module).from_config(json.loads(json.dumps(config)))
                self.assertEqual(revived.get_config(), config)
        self.assertEqual(modules[1].get_config()["projected_atom_shape"], [3])
        self.assertNotIn("matrix_constraint", modules[2].get_config())
        self.assertNotIn("matrix_constraint", modules[3].get_config())

    def test_public_names(self):
        for name in (
            "PointPrototype",
            "PointMatrixPrototype",
            "MinkowskiDistance",
            "OmegaDistance",
            "TangentDistance",
            "RestrictedTangentDistance",
        ):
            self.assertIn(name, measuring.__all__)
            self.assertIs(getattr(anysma.modules, name), getattr(measuring, name))

    def test_invalid_linear_factor(self):
        for value in (0, 1, 0.0, 1.0, -0.5, 1.5, True, "0.5"):
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, "linear_factor"):
                    MinkowskiDistance(linear_factor=value)

    def test_invalid_signal_output_lists_the_options(self):
        cases = [
            (MinkowskiDistance, {}, r"\['signals', 'protos'\]"),
            (
                OmegaDistance,
                {},
                r"\['signals', 'protos', 'projected_signals', 'projected_protos'\]",
            ),
            (
                TangentDistance,
                {"projected_atom_shape": 2},
                r"\['signals', 'projected_signals', 'parameterized_signals'\]",
            ),
        ]
        for cls, kwargs, options in cases:
            with self.assertRaisesRegex(
                ValueError, options + r".*Received: signal_output='foo'"
            ):
                cls(signal_output="foo", **kwargs)
        with self.assertRaisesRegex(ValueError, "signal_output='protos'"):
            RestrictedTangentDistance(2, signal_output="protos")

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "matrix_scope='channel_wise'"):
            OmegaDistance(matrix_scope="channel_wise")
        with self.assertRaisesRegex(ValueError, "projected_atom_shape"):
            OmegaDistance(projected_atom_shape=(2, 0))
        with self.assertRaisesRegex(ValueError, "projected_atom_shape=None"):
            TangentDistance(None)
        with self.assertRaisesRegex(ValueError, "order_p"):
            MinkowskiDistance(order_p=0)
        with self.assertRaisesRegex(ValueError, "epsilon"):
            OmegaDistance(epsilon=-1.0)
        with self.assertRaisesRegex(ValueError, "matrix_constraint"):
            TangentDistance(2, matrix_constraint="NonNeg")
        # The fixed constraint may be named explicitly.
        TangentDistance(2, matrix_constraint="orthogonalization")

    def test_shape_errors_at_build(self):
        signals, dissimilarities = inputs_for((4,))
        cases = [
            ((signals[:, :2], dissimilarities), "axis 1"),
            ((signals, dissimilarities[:, :5]), "one entry per prototype"),
            ((signals, dissimilarities[:, :, :1]), "same number of channels"),
            ((signals[:, :, :, 0], dissimilarities), "rank >= 4"),
            ((signals, dissimilarities[:, :, 0]), r"\(batch, prototypes, channels\)"),
        ]
        for inputs, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(ValueError, message):
                    MinkowskiDistance(prototype_distribution=(2, 3))(inputs)
        with self.assertRaisesRegex(ValueError, "prototype_distribution=None"):
            MinkowskiDistance()((signals, dissimilarities))
        with self.assertRaisesRegex(ValueError, "projected_atom_shape=\\(4,\\)"):
            TangentDistance(4, prototype_distribution=(2, 3))(
                (signals, dissimilarities)
            )
        # rTD allows a full-dimensional box, not more.
        build(
            RestrictedTangentDistance(4, prototype_distribution=(2, 3)),
            (signals, dissimilarities),
        )
        with self.assertRaisesRegex(ValueError, "projected_atom_shape=\\(5,\\)"):
            RestrictedTangentDistance(5, prototype_distribution=(2, 3))(
                (signals, dissimilarities)
            )
        with self.assertRaisesRegex(TypeError, "module signal"):
            MinkowskiDistance(prototype_distribution=(2, 3)).call(signals)

    def test_abstract_bases(self):
        signals = np_gather(inputs_for((4,))[0], (2, 3))
        for cls in (PointPrototype, PointMatrixPrototype):
            with self.assertRaisesRegex(NotImplementedError, "MinkowskiDistance"):
                cls(prototype_distribution=(2, 3)).distance(signals)

    def test_symbolic_shapes_with_unknown_batch(self):
        signals = keras.Input((3, None, 2, 3))
        dissimilarities = keras.Input((6, None))
        module = OmegaDistance(
            projected_atom_shape=(2, 2),
            signal_output="projected_protos",
            prototype_initializer="zeros",
            matrix_initializer="ones",
            prototype_distribution=[1, 3, 2],
        )
        outputs = module((signals, dissimilarities))
        self.assertEqual(tuple(outputs[0].shape), (None, 6, None, 2, 2))
        self.assertEqual(tuple(outputs[1].shape), (None, 6, None))
        self.assertEqual(
            module.compute_output_shape(((None, 3, 7, 2, 3), (None, 6, 7))),
            ((None, 6, 7, 2, 2), (None, 6, 7)),
        )


# === NumPy references ===


class MinkowskiDistanceTest(TestCase):
    def test_matches_numpy(self):
        factors = [None, 0.5, 0.75]
        case = 0
        for atom in ATOMS:
            inputs = inputs_for(atom)
            for distribution in DISTRIBUTIONS:
                for order_p in (math.inf, 1, 2, 3, 2.2):
                    linear_factor = factors[case % 3]
                    squared = case % 2 == 1
                    case += 1
                    module = build(
                        MinkowskiDistance(
                            order_p=order_p,
                            squared_dissimilarity=squared,
                            linear_factor=linear_factor,
                            signal_output="protos" if case % 2 else "signals",
                            prototype_distribution=distribution,
                        ),
                        inputs,
                    )
                    (prototypes,) = set_weights(module)
                    signals = np_gather(inputs[0], distribution)
                    distances = np_p_norm(
                        np_differences(signals, prototypes), order_p, squared
                    )
                    expected_signals = (
                        np_tile(prototypes, BATCH, CHANNELS)
                        if module.signal_output == "protos"
                        else signals
                    )
                    with self.subTest(
                        atom=atom, distribution=distribution, order_p=order_p
                    ):
                        self.assertAllClose(
                            module(inputs),
                            (
                                expected_signals,
                                np_mix(inputs[1], distances, linear_factor),
                            ),
                            atol=1e-5,
                            rtol=1e-5,
                        )

    def test_equal_prototype_and_capsule_number_needs_no_gather(self):
        signals = random((2, 3, 1, 4))
        dissimilarities = np.zeros((2, 3, 1), "float32")
        module = build(
            MinkowskiDistance(linear_factor=None, prototype_distribution=3),
            (signals, dissimilarities),
        )
        (prototypes,) = set_weights(module)
        self.assertAllClose(
            module((signals, dissimilarities))[1],
            np_p_norm(np_differences(signals, prototypes), 2),
            atol=1e-5,
        )

    def test_gradient_is_finite_at_zero_distance(self):
        signals, dissimilarities = inputs_for((4,))
        # The roots are where the gradient could blow up.
        for order_p in (2, 2.2):
            module = build(
                MinkowskiDistance(order_p=order_p, prototype_distribution=(2, 3)),
                (signals, dissimilarities),
            )
            # Every prototype equals its capsule's first channel signal.
            module.prototypes.assign(np_gather(signals, (2, 3))[0, :, 0])

            def total(values, module=module):
                return keras.ops.sum(module((values, dissimilarities))[1])

            with self.subTest(order_p=order_p):
                self.assertAllFinite(autodiff_gradient(total, signals))


class OmegaDistanceTest(TestCase):
    def test_matches_numpy(self):
        factors = [None, 0.5, 0.75]
        case = 0
        for atom, projected in (((4,), 3), ((2, 3), (2, 2)), ((4,), None)):
            inputs = inputs_for(atom)
            for distribution in DISTRIBUTIONS:
                for scope in ("local", "global", "capsule_wise"):
                    linear_factor = factors[case % 3]
                    order_p = (2, 1, 2.2)[case % 3]
                    squared = case % 2 == 0
                    case += 1
                    module = build(
                        OmegaDistance(
                            order_p=order_p,
                            matrix_scope=scope,
                            projected_atom_shape=projected,
                            squared_dissimilarity=squared,
                            linear_factor=linear_factor,
                            prototype_distribution=distribution,
                        ),
                        inputs,
                    )
                    prototypes, omegas = set_weights(module)
                    outputs = {}
                    for signal_output in OmegaDistance.signal_outputs:
                        # The output is chosen at call time, so one module
                        # (one set of weights) serves all four.
                        module.signal_output = signal_output
                        outputs[signal_output] = to_numpy(module(inputs))
                    projected_shape = atom if projected is None else projected
                    if isinstance(projected_shape, int):
                        projected_shape = (projected_shape,)
                    omegas = np_scoped(omegas, scope, distribution)
                    signals = np_gather(inputs[0], distribution)
                    flat = np_differences(signals, prototypes)
                    distances = np_p_norm(
                        np.einsum("bpcd,pdm->bpcm", flat, omegas), order_p, squared
                    )
                    projected_signals = np.einsum(
                        "bpcd,pdm->bpcm",
                        signals.reshape(BATCH, 6, CHANNELS, -1),
                        omegas,
                    ).reshape((BATCH, 6, CHANNELS) + projected_shape)
                    projected_protos = np.einsum(
                        "pd,pdm->pm", prototypes.reshape(6, -1), omegas
                    ).reshape((6,) + projected_shape)
                    expected = {
                        "signals": signals,
                        "protos": np_tile(prototypes, BATCH, CHANNELS),
                        "projected_signals": projected_signals,
                        "projected_protos": np_tile(projected_protos, BATCH, CHANNELS),
                    }
                    mixed = np_mix(inputs[1], distances, linear_factor)
                    for signal_output, (actual_signals, actual_diss) in outputs.items():
                        with self.subTest(
                            atom=atom,
                            distribution=distribution,
                            scope=scope,
                            signal_output=signal_output,
                        ):
                            self.assertAllClose(
                                actual_signals,
                                expected[signal_output],
                                atol=1e-5,
                                rtol=1e-5,
                            )
                            self.assertAllClose(
                                actual_diss, mixed, atol=1e-4, rtol=1e-5
                            )

    def test_projection_methods(self):
        inputs = inputs_for((2, 3))
        module = build(
            OmegaDistance(
                matrix_scope="capsule_wise",
                projected_atom_shape=(2, 2),
                prototype_distribution=[1, 3, 2],
            ),
            inputs,
        )
        prototypes, omegas = set_weights(module)
        omegas = np_scoped(omegas, "capsule_wise", [1, 3, 2])
        self.assertAllClose(
            module.get_projected_protos(),
            np.einsum("pd,pdm->pm", prototypes.reshape(6, 6), omegas).reshape(6, 2, 2),
            atol=1e-5,
        )
        expected = np.einsum(
            "bpcd,pdm->bpcm",
            np_gather(inputs[0], [1, 3, 2]).reshape(BATCH, 6, CHANNELS, 6),
            omegas,
        ).reshape(BATCH, 6, CHANNELS, 2, 2)
        # Capsule signals are gathered; prototype signals are used as given.
        self.assertAllClose(
            module.get_projected_signals(inputs[0]), expected, atol=1e-5
        )
        self.assertAllClose(
            module.get_projected_signals(np_gather(inputs[0], [1, 3, 2])),
            expected,
            atol=1e-5,
        )

    def test_gradient_is_finite_at_zero_distance(self):
        signals, dissimilarities = inputs_for((4,))
        module = build(
            OmegaDistance(matrix_scope="global", prototype_distribution=(2, 3)),
            (signals, dissimilarities),
        )
        module.prototypes.assign(np_gather(signals, (2, 3))[0, :, 0])

        def total(values):
            return keras.ops.sum(module((values, dissimilarities))[1])

        self.assertAllFinite(autodiff_gradient(total, signals))


class TangentDistanceTest(TestCase):
    def run_reference(self, cls):
        factors = [None, 0.5, 0.75]
        case = 0
        for atom, projected in (((4,), 2), ((2, 3), (2, 2))):
            inputs = inputs_for(atom)
            for distribution in DISTRIBUTIONS:
                for scope in ("local", "global", "capsule_wise"):
                    linear_factor = factors[case % 3]
                    squared = case % 2 == 0
                    case += 1
                    module = build(
                        cls(
                            projected,
                            matrix_scope=scope,
                            squared_dissimilarity=squared,
                            linear_factor=linear_factor,
                            prototype_distribution=distribution,
                        ),
                        inputs,
                    )
                    weights = set_weights(module)
                    outputs = {}
                    for signal_output in cls.signal_outputs:
                        module.signal_output = signal_output
                        outputs[signal_output] = to_numpy(module(inputs))
                    prototypes = weights[0]
                    subspaces = np_scoped(weights[1], scope, distribution)
                    signals = np_gather(inputs[0], distribution)
                    flat = np_differences(signals, prototypes)
                    theta = np.einsum("bpcd,pdr->bpcr", flat, subspaces)
                    if len(weights) == 3:
                        bounds = np_scoped(weights[2], scope, distribution)
                        theta = np.clip(
                            theta, -bounds[None, :, None], bounds[None, :, None]
                        )
                    offsets = np.einsum("bpcr,pdr->bpcd", theta, subspaces)
                    distances = np_p_norm(flat - offsets, 2, squared)
                    projected_shape = (
                        (projected,) if isinstance(projected, int) else projected
                    )
                    expected = {
                        "signals": signals,
                        "projected_signals": (
                            prototypes.reshape(6, -1)[None, :, None] + offsets
                        ).reshape(signals.shape),
                        "parameterized_signals": theta.reshape(
                            (BATCH, 6, CHANNELS) + projected_shape
                        ),
                    }
                    mixed = np_mix(inputs[1], distances, linear_factor)
                    for signal_output, (actual_signals, actual_diss) in outputs.items():
                        with self.subTest(
                            atom=atom,
                            distribution=distribution,
                            scope=scope,
                            signal_output=signal_output,
                        ):
                            self.assertAllClose(
                                actual_signals,
                                expected[signal_output],
                                atol=1e-5,
                                rtol=1e-5,
                            )
                            self.assertAllClose(
                                actual_diss, mixed, atol=1e-4, rtol=1e-4
                            )

    def test_tangent_distance_matches_numpy(self):
        self.run_reference(TangentDistance)

    def test_restricted_tangent_distance_matches_numpy(self):
        self.run_reference(RestrictedTangentDistance)

    def test_bases_start_orthonormal(self):
        inputs = inputs_for((4,))
        for cls in (TangentDistance, RestrictedTangentDistance):
            module = build(cls(2, prototype_distribution=(2, 3)), inputs)
            matrices = to_numpy(module.matrices)
            gram = np.einsum("pdr,pds->prs", matrices, matrices)
            self.assertAllClose(gram, np.broadcast_to(np.eye(2), gram.shape), atol=1e-5)

    def test_restricted_starts_as_a_point_prototype(self):
        inputs = inputs_for((4,))
        restricted = build(
            RestrictedTangentDistance(
                2, linear_factor=None, prototype_distribution=(2, 3)
            ),
            inputs,
        )
        point = build(
            MinkowskiDistance(linear_factor=None, prototype_distribution=(2, 3)),
            inputs,
        )
        point.prototypes.assign(restricted.prototypes)
        self.assertAllClose(restricted(inputs)[1], point(inputs)[1], atol=1e-5)

    def test_methods(self):
        inputs = inputs_for((4,))
        module = build(
            RestrictedTangentDistance(
                2, matrix_scope="global", prototype_distribution=[1, 3, 2]
            ),
            inputs,
        )
        set_weights(module)
        for method, signal_output in (
            (module.get_projected_signals, "projected_signals"),
            (module.get_parameterized_signals, "parameterized_signals"),
        ):
            module.signal_output = signal_output
            self.assertAllClose(method(inputs[0]), module(inputs)[0], atol=1e-6)

    def test_gradient_is_finite_at_zero_distance(self):
        signals, dissimilarities = inputs_for((4,))
        for cls in (TangentDistance, RestrictedTangentDistance):
            module = build(
                cls(2, matrix_scope="capsule_wise", prototype_distribution=(2, 3)),
                (signals, dissimilarities),
            )
            module.prototypes.assign(np_gather(signals, (2, 3))[0, :, 0])

            def total(values, module=module):
                return keras.ops.sum(module((values, dissimilarities))[1])

            with self.subTest(cls=cls.__name__):
                self.assertAllFinite(autodiff_gradient(total, signals))

    def test_gradients_match_finite_differences(self):
        signals, dissimilarities = inputs_for((4,))
        for cls in (OmegaDistance, RestrictedTangentDistance):
            kwargs = {
                "matrix_scope": "capsule_wise",
                "prototype_distribution": [1, 3, 2],
            }
            module = build(
                cls(**kwargs) if cls is OmegaDistance else cls(2, **kwargs),
                (signals, dissimilarities),
            )
            set_weights(module)

            def total(values, module=module):
                return keras.ops.sum(module((values, dissimilarities))[1])

            with self.subTest(cls=cls.__name__):
                self.assertAllClose(
                    autodiff_gradient(total, signals),
                    numeric_gradient(total, signals, delta=1e-2),
                    atol=2e-2,
                    rtol=1e-2,
                )

    def test_orthogonalization_holds_after_training(self):
        signals, dissimilarities = inputs_for((4,))
        module = TangentDistance(2, matrix_scope="global", prototype_distribution=3)
        signal_input, diss_input = keras.Input((3, 2, 4)), keras.Input((3, 2))
        model = keras.Model(
            [signal_input, diss_input], module((signal_input, diss_input))[1]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        model.fit(
            [signals, dissimilarities[:, :3]],
            np.ones((2, 3, 2), "float32"),
            verbose=0,
        )
        matrices = to_numpy(module.matrices)
        self.assertAllClose(matrices.T @ matrices, np.eye(2), atol=1e-5)


class CapsuleIntegrationTest(TestCase):
    def test_inside_a_capsule(self):
        capsule = anysma.Capsule(prototype_distribution=[1, 3, 2])
        measuring_module = OmegaDistance(
            matrix_scope="global", projected_atom_shape=2, name="omega"
        )
        capsule.add(
            [
                InputModule(signal_shape=(2, 4), dissimilarity_initializer="zeros"),
                measuring_module,
            ]
        )
        inputs = keras.Input((8,))
        signals, dissimilarities = capsule(inputs)
        self.assertEqual(tuple(signals.shape), (None, 6, 2, 4))
        self.assertEqual(tuple(dissimilarities.shape), (None, 6, 2))
        self.assertEqual(measuring_module.prototype_distribution, [1, 3, 2])
        model = keras.Model(inputs, dissimilarities)
        self.assertIs(model.get_layer("omega"), measuring_module)
        data = random((5, 8))
        module_inputs = capsule.get_module_input(measuring_module, data)
        self.assertEqual(module_inputs[0].shape, (5, 3, 2, 4))
        self.assertAllClose(
            model.predict(data, verbose=0),
            measuring_module(module_inputs)[1],
            atol=1e-5,
        )


# === Shared (sparse) signals ===


def _shared_cases():
    """(module class, constructor arguments) covering every signal output."""
    cases = [
        (MinkowskiDistance, {}),
        (MinkowskiDistance, {"order_p": 3, "signal_output": "protos"}),
        (MinkowskiDistance, {"squared_dissimilarity": True, "linear_factor": None}),
    ]
    for scope in ("global", "local", "capsule_wise"):
        for output in OmegaDistance.signal_outputs:
            cases.append(
                (
                    OmegaDistance,
                    {
                        "matrix_scope": scope,
                        "projected_atom_shape": 3,
                        "signal_output": output,
                    },
                )
            )
        for cls in (TangentDistance, RestrictedTangentDistance):
            for output in cls.signal_outputs:
                cases.append(
                    (
                        cls,
                        {
                            "projected_atom_shape": 2,
                            "matrix_scope": scope,
                            "signal_output": output,
                        },
                    )
                )
    return cases


class SharedSignalTest(TestCase):
    """Signals shared by all capsules give the outputs of tiled signals."""

    def test_outputs_equal_those_of_tiled_signals(self):
        for distribution in DISTRIBUTIONS:
            signals, dissimilarities = inputs_for((4,))
            shared = signals[:, :1]
            tiled = np.repeat(shared, 3, axis=1)
            for cls, arguments in _shared_cases():
                with self.subTest(distribution=distribution, cls=cls, **arguments):
                    module = build(
                        cls(prototype_distribution=distribution, **arguments),
                        (shared, dissimilarities),
                    )
                    set_weights(module)
                    shared_signals, shared_distances = module((shared, dissimilarities))
                    tiled_signals, tiled_distances = module((tiled, dissimilarities))
                    self.assertAllClose(
                        shared_distances, tiled_distances, atol=2e-5, rtol=2e-5
                    )
                    expected_count = (
                        1 if module._keeps_shared_signals() else module.proto_number
                    )
                    self.assertEqual(shared_signals.shape[1], expected_count)
                    self.assertAllClose(
                        np.broadcast_to(
                            to_numpy(shared_signals), tuple(tiled_signals.shape)
                        ),
                        tiled_signals,
                        atol=2e-5,
                        rtol=2e-5,
                    )
                    symbolic = module.compute_output_shape(
                        (
                            (None,) + shared.shape[1:],
                            (None,) + dissimilarities.shape[1:],
                        )
                    )
                    self.assertEqual(symbolic[0][1:], tuple(shared_signals.shape)[1:])

    def test_gradients_equal_those_of_tiled_signals(self):
        signals, dissimilarities = inputs_for((4,))
        shared = signals[:, :1]
        for cls, arguments in (
            (MinkowskiDistance, {}),
            (OmegaDistance, {"matrix_scope": "global"}),
            (TangentDistance, {"projected_atom_shape": 2}),
        ):
            module = build(
                cls(prototype_distribution=(2, 3), **arguments),
                (shared, dissimilarities),
            )
            set_weights(module)

            def total(values, module=module):
                return keras.ops.sum(module((values, dissimilarities))[1])

            def tiled_total(values, module=module):
                return total(keras.ops.repeat(values, 3, axis=1), module)

            with self.subTest(cls=cls):
                self.assertAllClose(
                    autodiff_gradient(total, shared),
                    autodiff_gradient(tiled_total, shared),
                    atol=1e-5,
                    rtol=1e-5,
                )

    def test_pre_training_equals_that_of_tiled_signals(self):
        rng = np.random.default_rng(0)
        shared = rng.normal(size=(40, 1, 2, 4)).astype("float32")
        labels = np.arange(40) % 3
        for arguments in ({}, {"capsule_inputs_are_equal": True}):
            modules = [
                TangentDistance(2, matrix_scope="local", prototype_distribution=(2, 3))
                for _ in range(2)
            ]
            modules[0].pre_training(shared, labels, random_state=0, **arguments)
            modules[1].pre_training(
                np.repeat(shared, 3, axis=1), labels, random_state=0, **arguments
            )
            with self.subTest(**arguments):
                for first, second in zip(modules[0].weights, modules[1].weights):
                    self.assertAllClose(first, second, atol=1e-5)

    def test_inside_a_capsule_with_sparse_input(self):
        capsules = []
        for sparse_signal in (False, True):
            capsule = anysma.Capsule(prototype_distribution=(2, 3))
            capsule.add(
                [
                    InputModule(
                        signal_shape=(2, 4),
                        dissimilarity_initializer="ones",
                        sparse_signal=sparse_signal,
                    ),
                    TangentDistance(2, matrix_scope="capsule_wise"),
                ]
            )
            capsules.append(capsule)
        data = random((5, 8))
        outputs = [capsule(data) for capsule in capsules]
        capsules[1].modules[1].set_weights(capsules[0].modules[1].get_weights())
        outputs = [capsule(data) for capsule in capsules]
        self.assertShapeEqual(outputs[1][0], (5, 1, 2, 4))
        self.assertShapeEqual(outputs[0][0], (5, 6, 2, 4))
        self.assertAllClose(outputs[1][1], outputs[0][1], atol=1e-5)
