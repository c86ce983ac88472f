import json

import keras
import numpy as np

from anysma import probability_transformations as pt
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient

LOWER_BOUND = 1e-7

# === NumPy references, written from the formulas ===


def np_softmax(d, axis=-1, max_stabilization=True):
    shifted = d - d.max(axis=axis, keepdims=True) if max_stabilization else d
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=axis, keepdims=True)


def np_neg_softmax(d, axis=-1, max_stabilization=True):
    return np_softmax(-d, axis, max_stabilization)


def np_neg_exp(d, axis=-1, max_normalization=False):
    if max_normalization:
        return np.exp(-d + d.min(axis=axis, keepdims=True))
    return np.exp(-d)


def np_flipmax(d, axis=-1, lower_bound=LOWER_BOUND):
    flipped = d.max(axis=axis, keepdims=True) - d + d.min(axis=axis, keepdims=True)
    flipped = flipped + lower_bound
    return flipped / flipped.sum(axis=axis, keepdims=True)


def np_flip(d, axis=-1, lower_bound=LOWER_BOUND):
    maximum = d.max(axis=axis, keepdims=True) + lower_bound
    return (maximum - d + d.min(axis=axis, keepdims=True)) / maximum


def np_margin_flip(d, axis=-1, margin=1e-4, lower_bound=LOWER_BOUND):
    maximum = d.max(axis=axis, keepdims=True) + lower_bound
    return np.minimum(maximum - d + margin, maximum) / maximum


def np_margin_log_flip(d, axis=-1, margin=1e-4, lower_bound=LOWER_BOUND):
    compressed = np.log(d + 1 + lower_bound)
    maximum = compressed.max(axis=axis, keepdims=True)
    return np.minimum(maximum - compressed + margin, maximum) / maximum


# (function, class, reference, non-default options)
CASES = [
    (pt.softmax, pt.Softmax, np_softmax, {"max_stabilization": False}),
    (pt.neg_softmax, pt.NegSoftmax, np_neg_softmax, {"max_stabilization": False}),
    (pt.neg_exp, pt.NegExp, np_neg_exp, {"max_normalization": True}),
    (pt.flipmax, pt.Flipmax, np_flipmax, {"lower_bound": 0.5}),
    (pt.flip, pt.Flip, np_flip, {"lower_bound": 0.5}),
    (
        pt.margin_flip,
        pt.MarginFlip,
        np_margin_flip,
        {"margin": 0.3, "lower_bound": 0.1},
    ),
    (
        pt.margin_log_flip,
        pt.MarginLogFlip,
        np_margin_log_flip,
        {"margin": 0.2, "lower_bound": 0.1},
    ),
]

# Few distinct shapes on purpose: JAX compiles every operation once per
# shape, which dominates the run time of these tests.
MAIN_SHAPE = (4, 5)


def random_dissimilarities(shape=MAIN_SHAPE, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 3.0, size=shape).astype("float32")


class ReferenceTest(TestCase):
    def check_against_numpy(self, shape, axis):
        d = random_dissimilarities(shape)
        for function, cls, reference, options in CASES:
            message = f"{function.__name__} shape={shape} axis={axis}"
            expected = reference(d.astype("float64"), axis)
            self.assertAllClose(function(d, axis=axis), expected, 1e-6, 1e-5, message)
            self.assertAllClose(cls(axis=axis)(d), expected, 1e-6, 1e-5, message)
            expected = reference(d.astype("float64"), axis, **options)
            self.assertAllClose(
                function(d, axis, **options), expected, 1e-6, 1e-5, message
            )
            self.assertAllClose(
                cls(axis=axis, **options)(d), expected, 1e-6, 1e-5, message
            )

    def test_matches_numpy(self):
        self.check_against_numpy(MAIN_SHAPE, -1)

    def test_matches_numpy_for_a_batch_of_one(self):
        self.check_against_numpy((1, 3), -1)

    def test_matches_numpy_along_a_middle_axis(self):
        self.check_against_numpy((2, 3, 4), 1)

    def test_float16_inputs_keep_their_dtype(self):
        d = random_dissimilarities(seed=1).astype("float16")
        for function, cls, reference, _ in CASES:
            expected = reference(d.astype("float64"))
            for output in (function(d), cls()(d)):
                self.assertEqual(
                    keras.backend.standardize_dtype(output.dtype), "float16"
                )
                self.assertAllClose(output, expected, 2e-3, 1e-2, function.__name__)

    def test_integer_inputs_give_floats(self):
        d = np.random.default_rng(3).integers(0, 5, size=MAIN_SHAPE)
        for function, _, reference, _ in CASES:
            output = function(d)
            self.assertEqual(
                keras.backend.standardize_dtype(output.dtype), keras.config.floatx()
            )
            self.assertAllClose(output, reference(d.astype("float64")), 1e-6, 1e-5)

    def test_documented_properties(self):
        d = random_dissimilarities(seed=2)
        rows = np.arange(len(d))
        ones = np.ones(len(d))
        self.assertAllClose(keras.ops.sum(pt.flipmax(d), axis=-1), ones, 1e-6)
        self.assertAllClose(keras.ops.sum(pt.softmax(d), axis=-1), ones, 1e-6)
        # Flip: the best class gets exactly 1 and the order is reversed.
        flipped = keras.ops.convert_to_numpy(pt.flip(d))
        self.assertAllClose(flipped[rows, np.argmin(d, axis=-1)], ones, 1e-6)
        np.testing.assert_array_equal(np.argsort(flipped, -1), np.argsort(-d, -1))
        self.assertAllClose(
            pt.flipmax(np.array([[3.0, 1.0, 2.0]])), [[1 / 6, 0.5, 1 / 3]]
        )
        # Margin flip: everything within the margin is fully possible.
        self.assertAllClose(
            pt.margin_flip(np.array([[0.0, 0.05, 2.0]]), margin=0.1), [[1.0, 1.0, 0.05]]
        )

    def test_zero_dissimilarities_are_finite(self):
        zeros = np.zeros(MAIN_SHAPE, "float32")
        for function, cls, _, _ in CASES:
            self.assertAllFinite(function(zeros), function.__name__)
            self.assertAllFinite(cls()(zeros), function.__name__)
        self.assertAllClose(pt.flip(zeros), np.ones(MAIN_SHAPE))
        self.assertAllClose(pt.flipmax(zeros), np.full(MAIN_SHAPE, 1 / 5))

    def test_gradients_are_finite_at_ties_and_zeros(self):
        if keras.backend.backend() not in ("jax", "torch", "tensorflow"):
            self.skipTest("backend without autodiff")
        # Rows: all zero, ties at the minimum and maximum, one zero, random.
        point = np.array(
            [
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [1.0, 1.0, 2.0, 2.0, 1.5],
                [0.0, 1.0, 2.0, 3.0, 4.0],
                [0.3, 2.1, 0.7, 1.2, 2.8],
            ]
        )
        for function, _, _, _ in CASES:
            gradient = autodiff_gradient(lambda t, f=function: f(t)[:, 0], point)
            self.assertAllFinite(gradient, function.__name__)

    def test_symbolic_call(self):
        inputs = keras.Input((4,))
        for function, cls, _, _ in CASES:
            self.assertEqual(tuple(function(inputs).shape), (None, 4))
            self.assertEqual(tuple(cls()(inputs).shape), (None, 4))


class SerializationTest(TestCase):
    def test_config_round_trip(self):
        for _, cls, _, options in CASES:
            for kwargs in ({}, {"axis": 1, **options}):
                instance = cls(**kwargs)
                revived = self.run_serialization_test(instance)
                self.assertEqual(revived.get_config(), instance.get_config())
                for key, value in kwargs.items():
                    self.assertEqual(instance.get_config()[key], value)

    def test_serialize_and_deserialize(self):
        for function, cls, _, options in CASES:
            self.assertEqual(pt.serialize(function), function.__name__)
            self.assertIs(pt.deserialize(function.__name__), function)
            config = json.loads(json.dumps(pt.serialize(cls(**options))))
            revived = pt.deserialize(config)
            self.assertIsInstance(revived, cls)
            self.assertEqual(revived.get_config(), cls(**options).get_config())

    def test_get(self):
        self.assertIsNone(pt.get(None))
        for function, cls, _, options in CASES:
            self.assertIs(pt.get(function.__name__), function)
            instance = pt.get(cls.__name__)
            self.assertIsInstance(instance, cls)
            self.assertEqual(instance.get_config(), cls().get_config())
            revived = pt.get({"class_name": cls.__name__, "config": options})
            self.assertIsInstance(revived, cls)
            self.assertEqual(revived.get_config(), cls(**options).get_config())

        def custom(tensors):
            return tensors

        self.assertIs(pt.get(custom), custom)

    def test_unknown_identifiers(self):
        for identifier in ("flop", "FLIP", 3, {"class_name": "Nope", "config": {}}):
            with self.assertRaisesRegex(ValueError, r"'flip'.*Received: identifier="):
                pt.get(identifier)
        with self.assertRaisesRegex(ValueError, "Received: identifier='flop'"):
            pt.get("flop")


class ValidationTest(TestCase):
    def test_lower_bound_must_be_positive(self):
        for function, cls in (
            (pt.flipmax, pt.Flipmax),
            (pt.flip, pt.Flip),
            (pt.margin_flip, pt.MarginFlip),
            (pt.margin_log_flip, pt.MarginLogFlip),
        ):
            for value in (0, -1e-7, float("nan"), "1e-7"):
                with self.assertRaisesRegex(ValueError, "Received: lower_bound="):
                    cls(lower_bound=value)
                with self.assertRaisesRegex(ValueError, "Received: lower_bound="):
                    function(np.ones((1, 2)), lower_bound=value)

    def test_margin_must_be_non_negative(self):
        for cls in (pt.MarginFlip, pt.MarginLogFlip):
            with self.assertRaisesRegex(ValueError, r"Received: margin=-0\.1"):
                cls(margin=-0.1)
        with self.assertRaisesRegex(ValueError, r"Received: margin=-1"):
            pt.margin_flip(np.ones((1, 2)), margin=-1)

    def test_axis_and_flags(self):
        with self.assertRaisesRegex(TypeError, r"Received: axis=1\.0"):
            pt.Flip(axis=1.0)
        with self.assertRaisesRegex(TypeError, "Received: max_stabilization=1"):
            pt.Softmax(max_stabilization=1)
        with self.assertRaisesRegex(TypeError, "Received: max_normalization='yes'"):
            pt.neg_exp(np.ones((1, 2)), max_normalization="yes")

    def test_base_class_is_abstract(self):
        with self.assertRaises(NotImplementedError):
            pt.ProbabilityTransformation()(np.ones((1, 2)))
