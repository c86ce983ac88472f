import keras
import numpy as np

import anysma
from anysma.modules import AddBias
from anysma.modules import LinearTransformation
from anysma.testing import TestCase

SCOPES = ("local", "global", "channel_wise", "capsule_wise")


def random_signal(shape, seed=0):
    """A module signal `(signals, dissimilarities)` for signals of `shape`."""
    rng = np.random.RandomState(seed)
    signals = rng.normal(size=shape).astype("float32")
    dissimilarities = rng.uniform(size=shape[:3]).astype("float32")
    return signals, dissimilarities


def randomize(variable, seed=0):
    """Assign standard normal values (random initializers compile slowly on JAX)."""
    values = np.random.RandomState(seed).normal(size=tuple(variable.shape))
    variable.assign(values.astype("float32"))
    return values


def scope_index(scope, capsule, channel):
    """The index of the weight of a (capsule, channel) pair in a scope."""
    return {
        "local": (capsule, channel),
        "global": (),
        "channel_wise": (channel,),
        "capsule_wise": (capsule,),
    }[scope]


def reference_linear_transformation(signals, linear_maps, scope, axis):
    """`x^T A` along `axis` (of the full signal), looping over the pairs."""
    signals = np.asarray(signals, dtype="float64")
    linear_maps = np.asarray(linear_maps, dtype="float64")
    batch, capsules, channels = signals.shape[:3]
    atom_axis = (axis if axis >= 0 else signals.ndim + axis) - 3
    results = None
    for b in range(batch):
        for k in range(capsules):
            for c in range(channels):
                matrix = linear_maps[scope_index(scope, k, c)]
                atom = np.moveaxis(signals[b, k, c], atom_axis, -1)
                mapped = np.moveaxis(atom @ matrix, -1, atom_axis)
                if results is None:
                    results = np.zeros((batch, capsules, channels) + mapped.shape)
                results[b, k, c] = mapped
    return results


def reference_add_bias(signals, biases, scope, axes):
    signals = np.asarray(signals, dtype="float64")
    biases = np.asarray(biases, dtype="float64")
    results = signals.copy()
    batch, capsules, channels = signals.shape[:3]
    atom_rank = signals.ndim - 3
    atom_axes = sorted({(a if a >= 0 else signals.ndim + a) - 3 for a in axes})
    for b in range(batch):
        for k in range(capsules):
            for c in range(channels):
                bias = biases[scope_index(scope, k, c)]
                # Insert size-1 axes for the atom axes the bias does not span.
                shape = [1] * atom_rank
                for position, atom_axis in enumerate(atom_axes):
                    shape[atom_axis] = bias.shape[position]
                results[b, k, c] += bias.reshape(shape)
    return results


class LinearTransformationTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            LinearTransformation,
            {"output_dim": 6},
            random_signal((3, 2, 4, 5)),
            expected_output_shape=((3, 2, 4, 6), (3, 2, 4)),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_symbolic_call_matrix_atoms(self):
        inputs = (keras.Input((2, 3, 4, 5)), keras.Input((2, 3)))
        layer = LinearTransformation(output_dim=2, axis=3, scope="global")
        signals, dissimilarities = layer(inputs)
        self.assertEqual(tuple(signals.shape), (None, 2, 3, 2, 5))
        self.assertEqual(tuple(dissimilarities.shape), (None, 2, 3))
        self.run_serialization_test(layer)

    def test_weight_shapes_per_scope(self):
        inputs = random_signal((2, 3, 4, 5))
        shapes = {
            "local": (3, 4, 5, 7),
            "global": (5, 7),
            "channel_wise": (4, 5, 7),
            "capsule_wise": (3, 5, 7),
        }
        for scope, shape in shapes.items():
            layer = LinearTransformation(
                output_dim=7, scope=scope, linear_map_initializer="zeros"
            )
            outputs, _ = layer(inputs)
            self.assertEqual(layer.linear_maps.path.split("/")[-1], "linear_maps")
            self.assertEqual(tuple(layer.linear_maps.shape), shape)
            self.assertShapeEqual(outputs, (2, 3, 4, 7))

    def test_matches_reference_all_scopes(self):
        # Every scope on vector atoms and on one higher-rank case.
        cases = {
            # scope: [(signal shape, axis, output_dim), ...]
            "local": [((3, 2, 4, 5), -1, 6), ((2, 2, 3, 4, 5), 3, 2)],
            "global": [((3, 2, 4, 5), -1, 6), ((2, 2, 3, 4, 5), -1, 3)],
            "channel_wise": [((3, 2, 4, 5), -1, 6), ((1, 3, 2, 4), -1, None)],
            "capsule_wise": [((3, 2, 4, 5), -1, 6), ((2, 2, 2, 3, 4, 2), -2, 5)],
        }
        for scope, scope_cases in cases.items():
            for shape, axis, output_dim in scope_cases:
                with self.subTest(scope=scope, shape=shape, axis=axis):
                    signals, dissimilarities = random_signal(shape, seed=len(shape))
                    layer = LinearTransformation(
                        output_dim=output_dim,
                        axis=axis,
                        scope=scope,
                        linear_map_initializer="zeros",
                    )
                    layer.build((signals.shape, dissimilarities.shape))
                    linear_maps = randomize(layer.linear_maps)
                    outputs, passed = layer((signals, dissimilarities))
                    expected = reference_linear_transformation(
                        signals, linear_maps, scope, axis
                    )
                    self.assertAllClose(outputs, expected, atol=1e-5, rtol=1e-5)
                    self.assertAllClose(passed, dissimilarities)

    def test_output_dim_config_is_the_users_value(self):
        layer = LinearTransformation(linear_map_initializer="ones")
        layer(random_signal((2, 2, 3, 4)))
        self.assertIsNone(layer.get_config()["output_dim"])
        revived = LinearTransformation.from_config(layer.get_config())
        outputs, _ = revived(random_signal((2, 2, 3, 7)))
        self.assertShapeEqual(outputs, (2, 2, 3, 7))

    def test_config_keeps_arguments(self):
        layer = LinearTransformation(
            output_dim=3,
            axis=4,
            scope="channel_wise",
            linear_map_initializer="ones",
            linear_map_regularizer="l2",
            linear_map_constraint="NonNeg",
        )
        revived = LinearTransformation.from_config(layer.get_config())
        self.assertEqual(revived.output_dim, 3)
        self.assertEqual(revived.axis, 4)
        self.assertEqual(revived.scope, "channel_wise")
        self.assertIsInstance(revived.linear_map_initializer, keras.initializers.Ones)
        self.assertIsInstance(revived.linear_map_regularizer, keras.regularizers.L2)
        self.assertIsInstance(revived.linear_map_constraint, keras.constraints.NonNeg)

    def test_mixed_precision_matches_float32(self):
        signals, dissimilarities = random_signal((2, 3, 2, 4))
        layer = LinearTransformation(
            output_dim=3, linear_map_initializer="zeros", dtype="mixed_float16"
        )
        layer.build((signals.shape, dissimilarities.shape))
        linear_maps = randomize(layer.linear_maps)
        outputs, passed = layer((signals, dissimilarities))
        self.assertEqual(str(layer.linear_maps.dtype), "float32")
        self.assertEqual(keras.backend.standardize_dtype(outputs.dtype), "float16")
        self.assertEqual(keras.backend.standardize_dtype(passed.dtype), "float16")
        expected = reference_linear_transformation(signals, linear_maps, "local", -1)
        self.assertAllClose(outputs, expected, atol=1e-2, rtol=1e-2)

    def test_in_capsule_without_prototypes(self):
        capsule = anysma.Capsule().add(
            [
                LinearTransformation(output_dim=3, linear_map_initializer="ones"),
                AddBias(bias_initializer="ones"),
            ]
        )
        signals, dissimilarities = random_signal((2, 2, 3, 4))
        outputs, passed = capsule((signals, dissimilarities))
        self.assertShapeEqual(outputs, (2, 2, 3, 3))
        self.assertAllClose(passed, dissimilarities)

    def test_invalid_arguments(self):
        for axis in (0, 1, 2):
            with self.assertRaisesRegex(ValueError, f"axis={axis}"):
                LinearTransformation(axis=axis)
        with self.assertRaisesRegex(TypeError, "`axis` must be an int"):
            LinearTransformation(axis=1.5)
        with self.assertRaisesRegex(ValueError, "scope='diagonal'"):
            LinearTransformation(scope="diagonal")
        for output_dim in (0, -2, 2.5, "4"):
            with self.assertRaisesRegex(ValueError, "output_dim"):
                LinearTransformation(output_dim=output_dim)

    def test_invalid_shapes(self):
        with self.assertRaisesRegex(ValueError, "axis=5"):
            LinearTransformation(axis=5)(random_signal((2, 2, 3, 4)))
        with self.assertRaisesRegex(ValueError, "axis=-3"):
            LinearTransformation(axis=-3)(random_signal((2, 2, 3, 4, 5)))
        signals = np.zeros((2, 2, 3), dtype="float32")
        with self.assertRaisesRegex(ValueError, "at least one atom axis"):
            LinearTransformation()((signals, signals))
        with self.assertRaisesRegex(TypeError, "module signal"):
            LinearTransformation()(np.zeros((2, 2, 3, 4), dtype="float32"))


class AddBiasTest(TestCase):
    def test_layer(self):
        self.run_layer_test(
            AddBias,
            {"axes": [3, -1], "scope": "capsule_wise"},
            random_signal((2, 2, 3, 4, 5)),
            expected_output_shape=((2, 2, 3, 4, 5), (2, 2, 3)),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_weight_shapes_per_scope(self):
        inputs = random_signal((2, 3, 4, 5, 6))
        expected = {
            "local": (3, 4, 6),
            "global": (6,),
            "channel_wise": (4, 6),
            "capsule_wise": (3, 6),
        }
        for scope in SCOPES:
            layer = AddBias(scope=scope)
            layer(inputs)
            self.assertEqual(layer.biases.path.split("/")[-1], "biases")
            self.assertEqual(tuple(layer.biases.shape), expected[scope])
        layer = AddBias(axes=(-1, 3), scope="global")
        layer(inputs)
        self.assertEqual(tuple(layer.biases.shape), (5, 6))

    def test_matches_reference_all_scopes(self):
        cases = {
            # scope: [(signal shape, axes), ...]
            "local": [((3, 2, 4, 5), -1), ((2, 2, 3, 4, 5), [3, 4])],
            "global": [((3, 2, 4, 5), -1), ((2, 2, 3, 4, 5), 3)],
            "channel_wise": [((3, 2, 4, 5), -1), ((1, 3, 2, 4), 3)],
            "capsule_wise": [((3, 2, 4, 5), -1), ((2, 2, 3, 4, 5), -1)],
        }
        for scope, scope_cases in cases.items():
            for shape, axes in scope_cases:
                with self.subTest(scope=scope, shape=shape, axes=axes):
                    signals, dissimilarities = random_signal(shape, seed=2)
                    layer = AddBias(axes=axes, scope=scope)
                    layer.build((signals.shape, dissimilarities.shape))
                    biases = randomize(layer.biases)
                    outputs, passed = layer((signals, dissimilarities))
                    expected = reference_add_bias(
                        signals,
                        biases,
                        scope,
                        axes if isinstance(axes, list) else [axes],
                    )
                    self.assertAllClose(outputs, expected, atol=1e-6)
                    self.assertAllClose(passed, dissimilarities)

    def test_config_round_trip_keeps_bias_arguments(self):
        # The original wrote `linear_map_*` keys here, so this failed.
        layer = AddBias(
            axes=(3, 4),
            scope="global",
            bias_initializer="ones",
            bias_regularizer="l1",
            bias_constraint="NonNeg",
        )
        config = layer.get_config()
        self.assertEqual(config["axes"], [3, 4])
        self.assertNotIn("linear_map_initializer", config)
        revived = AddBias.from_config(config)
        self.assertIsInstance(revived.bias_initializer, keras.initializers.Ones)
        self.assertIsInstance(revived.bias_regularizer, keras.regularizers.L1)
        self.assertIsInstance(revived.bias_constraint, keras.constraints.NonNeg)
        outputs, _ = revived(random_signal((1, 2, 2, 3, 4)))
        self.assertAllClose(outputs, random_signal((1, 2, 2, 3, 4))[0] + 1.0, atol=1e-6)

    def test_invalid_arguments(self):
        for axes in (0, 1, 2, [3, 2]):
            with self.assertRaisesRegex(ValueError, "`axes` must be an atom axis"):
                AddBias(axes=axes)
        with self.assertRaisesRegex(ValueError, r"axes=\[\]"):
            AddBias(axes=[])
        with self.assertRaisesRegex(TypeError, "`axes` must be an int"):
            AddBias(axes="last")
        with self.assertRaisesRegex(ValueError, "scope='capsules'"):
            AddBias(scope="capsules")

    def test_invalid_shapes(self):
        with self.assertRaisesRegex(ValueError, "axes=4"):
            AddBias(axes=4)(random_signal((2, 2, 3, 4)))
        with self.assertRaisesRegex(TypeError, "module signal"):
            AddBias()(np.zeros((2, 2, 3, 4), dtype="float32"))


class SharedSignalTest(TestCase):
    """Signals shared by all capsules, `(B, 1, C, *A)`, as from
    `InputModule(sparse_signal=True)`."""

    def test_equal_tiled_signals_in_every_scope(self):
        shared, dissimilarities = random_signal((2, 1, 3, 4, 2))
        tiled = np.repeat(shared, 5, axis=1)
        for scope in SCOPES:
            for module in (
                LinearTransformation(
                    output_dim=3, axis=3, scope=scope, prototype_distribution=5
                ),
                AddBias(axes=[3, 4], scope=scope, prototype_distribution=5),
            ):
                with self.subTest(scope=scope, module=type(module).__name__):
                    module((shared, dissimilarities))
                    for index, weight in enumerate(module.weights):
                        randomize(weight, index)
                    shared_signals, _ = module((shared, dissimilarities))
                    tiled_signals, _ = module((tiled, dissimilarities))
                    # One weight per capsule expands the signals; shared
                    # weights keep them shared.
                    capsules = 5 if scope in ("local", "capsule_wise") else 1
                    self.assertEqual(shared_signals.shape[1], capsules)
                    self.assertEqual(
                        module.compute_output_shape(
                            ((None,) + shared.shape[1:], dissimilarities.shape)
                        )[0][1],
                        capsules,
                    )
                    self.assertAllClose(
                        np.broadcast_to(
                            keras.ops.convert_to_numpy(shared_signals),
                            tuple(tiled_signals.shape),
                        ),
                        tiled_signals,
                        atol=1e-5,
                    )

    def test_weights_have_one_entry_per_capsule(self):
        shared, dissimilarities = random_signal((2, 1, 3, 4))
        module = LinearTransformation(output_dim=2, prototype_distribution=(2, 5))
        module((shared, dissimilarities))
        self.assertEqual(tuple(module.linear_maps.shape), (5, 3, 4, 2))
        # Without a prototype distribution one capsule is just one capsule.
        alone = LinearTransformation(output_dim=2)
        alone((shared, dissimilarities))
        self.assertEqual(tuple(alone.linear_maps.shape), (1, 3, 4, 2))
