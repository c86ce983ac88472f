import json
import os
import tempfile

import keras
import numpy as np
import pytest

from anysma import losses
from anysma import probability_transformations as pt
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient
from anysma.testing.gradients import numeric_gradient

# Few distinct shapes on purpose: JAX compiles every operation once per
# shape, which dominates the run time of these tests.
BATCH, CLASSES = 4, 5

# === NumPy references, written from the formulas ===


def _squash(mu, squash_func, beta, margin):
    shifted = mu + margin
    if squash_func == "sigmoid":
        return 1 / (1 + np.exp(-beta * shifted))
    if squash_func == "relu":
        return np.maximum(shifted, 0)
    return shifted


def np_glvq(y, p, squash_func=None, beta=10.0, margin=0.0):
    correct = np.sum(y * p, axis=-1)
    best_wrong = np.where(y > 0.5, -np.inf, p).max(axis=-1)
    denominator = 2 * p.max(-1) + 2 * p.min(-1) - best_wrong - correct
    return _squash((best_wrong - correct) / denominator, squash_func, beta, margin)


def np_glvq_dissimilarities(y, d, squash_func=None, beta=10.0, margin=0.0):
    correct = np.sum(y * d, axis=-1)
    closest_wrong = np.where(y > 0.5, np.inf, d).min(axis=-1)
    mu = (correct - closest_wrong) / (correct + closest_wrong)
    return _squash(mu, squash_func, beta, margin)


def np_margin(y, p, lamb=0.5, margin=0.1):
    present = y * np.maximum(1 - margin - p, 0) ** 2
    absent = lamb * (1 - y) * np.maximum(p - margin, 0) ** 2
    return np.sum(present + absent, axis=-1)


def np_spread(y, p, margin=0.2):
    correct = np.sum(y * p, axis=-1, keepdims=True)
    penalties = np.maximum(margin - (correct - p), 0) ** 2
    return np.sum((1 - y) * penalties, axis=-1)


def np_gkl(y, p, epsilon=1e-7):
    y, p = np.maximum(y, epsilon), np.maximum(p, epsilon)
    return np.sum(y * np.log(y / p) - y + p, axis=-1)


def np_itakura_saito(y, p, epsilon=1e-7):
    y, p = np.maximum(y, epsilon), np.maximum(p, epsilon)
    return np.sum(np.log(p / y) + y / p - 1, axis=-1)


def np_rslvq(y, d, prototype_labels=None, beta=1.0):
    labels = np.arange(d.shape[-1]) if prototype_labels is None else prototype_labels
    logits = -beta * d
    logits = logits - logits.max(axis=-1, keepdims=True)
    posteriors = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    in_true_class = np.take(y, labels, axis=-1)
    return -np.log(np.sum(in_true_class * posteriors, axis=-1))


def one_hot(labels, num_classes):
    return np.eye(num_classes, dtype="float32")[labels]


def make_data(shape=(BATCH, CLASSES), kind="probabilities", seed=0):
    rng = np.random.default_rng(seed)
    y_true = one_hot(rng.integers(0, shape[-1], size=shape[:-1]), shape[-1])
    if kind == "probabilities":
        y_pred = rng.uniform(0.05, 1.0, size=shape)
    else:
        y_pred = rng.uniform(0.1, 3.0, size=shape)
    return y_true, y_pred.astype("float32")


# Labels of the rows of HARD_POINT; row 1 has d+ = d- = 0.
HARD_LABELS = one_hot([0, 1, 2, 3], CLASSES)
# Zeros and ties, where max/min/relu have kinks and ratios can become 0/0.
HARD_POINT = np.array(
    [
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 1.0, 1.0],
        [1.0, 1.0, 1.0, 1.0, 1.0],
        [2.0, 2.0, 2.0, 0.0, 2.0],
    ],
    "float32",
)


class _LossChecks:
    """Checks every loss passes; a subclass per loss sets the attributes.

    One test class per loss keeps each test short: on JAX the first call of
    a function on a new shape compiles each of its operations.
    """

    function = None  # The loss function (wrapped in `staticmethod`).
    loss_class = None
    reference = None  # The NumPy reference (wrapped in `staticmethod`).
    kind = "probabilities"  # What `y_pred` holds.
    options = {}  # Non-default options.

    def check_against_numpy(self, shape):
        y_true, y_pred = make_data(shape, self.kind)
        message = f"shape={shape}"
        expected = self.reference(y_true, y_pred.astype("float64"))
        self.assertAllClose(
            self.function(y_true, y_pred), expected, 1e-5, 1e-5, message
        )
        expected = self.reference(y_true, y_pred.astype("float64"), **self.options)
        self.assertAllClose(
            self.function(y_true, y_pred, **self.options), expected, 1e-5, 1e-5, message
        )
        loss = self.loss_class(**self.options, reduction=None)
        self.assertAllClose(loss(y_true, y_pred), expected, 1e-5, 1e-5, message)

    def test_values_and_reductions(self):
        self.check_against_numpy((BATCH, CLASSES))
        # Batch size 1, an extra axis and an odd number of classes.
        self.check_against_numpy((1, 2, 3))

        # Half precision is computed (and returned) in float32.
        y_true, y_pred = make_data(kind=self.kind, seed=1)
        y_pred = y_pred.astype("float16")
        output = self.function(y_true.astype("float16"), y_pred, **self.options)
        self.assertEqual(keras.backend.standardize_dtype(output.dtype), "float32")
        expected = self.reference(y_true, y_pred.astype("float64"), **self.options)
        self.assertAllClose(output, expected, 1e-3, 1e-3, "float16")

        y_true, y_pred = make_data(kind=self.kind, seed=2)
        expected = self.reference(y_true, y_pred.astype("float64"), **self.options)
        self.run_loss_test(self.loss_class(**self.options), y_true, y_pred, expected)

    def test_integer_class_ids(self):
        loss = self.loss_class(**self.options, reduction=None)
        for shape in ((BATCH, CLASSES), (1, 2, 3)):
            y_true, y_pred = make_data(shape, self.kind, seed=8)
            expected = self.reference(y_true, y_pred.astype("float64"), **self.options)
            class_ids = np.argmax(y_true, axis=-1)
            for labels in (
                class_ids,
                class_ids[..., None].astype("int32"),
                class_ids[..., None].astype("uint8"),
            ):
                message = f"shape={shape} labels {labels.shape} {labels.dtype}"
                self.assertAllClose(
                    self.function(labels, y_pred, **self.options),
                    expected,
                    1e-5,
                    1e-5,
                    message,
                )
                self.assertAllClose(loss(labels, y_pred), expected, 1e-5, 1e-5, message)
            # Integer one-hot labels stay one-hot labels.
            self.assertAllClose(
                loss(y_true.astype("int32"), y_pred), expected, 1e-5, 1e-5, "int"
            )

    def test_labels_not_matching_the_predictions(self):
        y_true, y_pred = make_data(kind=self.kind)
        class_ids = np.argmax(y_true, axis=-1)
        float_ids = "Integer class ids are accepted, but these labels are float32"
        cases = (
            # Float labels are never taken for class ids.
            (class_ids[:, None].astype("float32"), r"\(4, 1\)", float_ids),
            (class_ids.astype("float32"), r"\(4,\)", float_ids),
            # A wrong number of classes, or of samples.
            (y_true[:, :3], r"\(4, 3\)", ""),
            (np.concatenate([y_true, y_true[:, :1]], axis=-1), r"\(4, 6\)", ""),
            (class_ids[:3], r"\(3,\)", ""),
            (class_ids[:, None].repeat(2, axis=-1), r"\(4, 2\)", ""),
        )
        functions = (
            lambda labels: self.function(labels, y_pred, **self.options),
            lambda labels: self.loss_class(**self.options)(labels, y_pred),
        )
        for labels, shape, explanation in cases:
            pattern = (
                rf"one-hot labels.*{explanation}.*Received: y_true.shape={shape}, "
                r"y_true.dtype=\w+, y_pred.shape=\(4, 5\)"
            )
            for function in functions:
                with pytest.raises(ValueError, match=pattern):
                    function(labels)

    def test_gradients(self):
        if keras.backend.backend() not in ("jax", "torch", "tensorflow"):
            self.skipTest("backend without autodiff")
        y_true, y_pred = make_data(kind=self.kind, seed=5)

        def loss_of_prediction(tensor):
            return self.function(y_true, tensor, **self.options)

        self.assertAllClose(
            autodiff_gradient(loss_of_prediction, y_pred),
            numeric_gradient(loss_of_prediction, y_pred, delta=1e-3),
            atol=2e-3,
            rtol=2e-2,
            msg="autodiff and finite differences differ",
        )

        # Zeros and ties: finite values and gradients.
        def loss_at_hard_labels(tensor):
            return self.function(HARD_LABELS, tensor, **self.options)

        self.assertAllFinite(loss_at_hard_labels(HARD_POINT))
        self.assertAllFinite(autodiff_gradient(loss_at_hard_labels, HARD_POINT))


class GlvqLossTest(_LossChecks, TestCase):
    function = staticmethod(losses.glvq_loss)
    loss_class = losses.GlvqLoss
    reference = staticmethod(np_glvq)
    options = {"squash_func": "sigmoid", "beta": 2.0, "margin": 0.1}

    def test_flip_and_glvq_loss_give_classic_glvq(self):
        y_true, distances = make_data(kind="dissimilarities", seed=3)
        correct = np.sum(y_true * distances, axis=-1)
        closest_wrong = np.where(y_true > 0.5, np.inf, distances).min(axis=-1)
        for lower_bound in (1e-7, 0.5):
            classic = (correct - closest_wrong) / (
                correct + closest_wrong + 2 * lower_bound
            )
            for transformation in (pt.flip, pt.flipmax):
                probabilities = transformation(distances, lower_bound=lower_bound)
                self.assertAllClose(
                    losses.glvq_loss(y_true, probabilities),
                    classic,
                    1e-6,
                    1e-5,
                    f"{transformation.__name__} lower_bound={lower_bound}",
                )
        self.assertAllClose(
            losses.glvq_loss(y_true, pt.flip(distances)),
            losses.glvq_loss_over_dissimilarities(y_true, distances),
            1e-6,
            1e-5,
        )

    def test_finite_at_zero_distances_and_zero_denominator(self):
        if keras.backend.backend() not in ("jax", "torch", "tensorflow"):
            self.skipTest("backend without autodiff")
        # Rows 0 and 1: p- = p+ = max p and min p = 0, the denominator is 0.
        degenerate = np.array([[1.0, 1.0, 0.0, 0.5, 0.2]] * BATCH, "float32")
        checks = [
            (lambda t: losses.glvq_loss(HARD_LABELS, t), degenerate),
            (lambda t: losses.glvq_loss(HARD_LABELS, pt.flip(t)), HARD_POINT),
            (lambda t: losses.glvq_loss(HARD_LABELS, pt.flipmax(t)), HARD_POINT),
        ]
        for index, (function, point) in enumerate(checks):
            self.assertAllFinite(function(point), f"check {index}")
            self.assertAllFinite(autodiff_gradient(function, point), f"check {index}")
        # The 0/0 cases are defined as 0.
        self.assertAllClose(losses.glvq_loss(HARD_LABELS, degenerate)[:2], [0.0, 0.0])
        self.assertAllClose(
            losses.glvq_loss_over_dissimilarities(HARD_LABELS, HARD_POINT)[:2],
            [0.0, 0.0],
        )


class GlvqLossOverDissimilaritiesTest(_LossChecks, TestCase):
    function = staticmethod(losses.glvq_loss_over_dissimilarities)
    loss_class = losses.GlvqLossOverDissimilarities
    reference = staticmethod(np_glvq_dissimilarities)
    kind = "dissimilarities"
    options = {"squash_func": "relu", "margin": 0.3}

    def test_gradient_reaches_the_correct_prototype_when_all_distances_tie(self):
        # Prototypes that start equal: every distance ties. The correct one
        # (class 1) is pulled closer, the first wrong one pushed away.
        y_true = np.array([[0.0, 1.0, 0.0]])
        distances = np.array([[1.0, 1.0, 1.0]])

        def loss_of_distances(values):
            return keras.ops.sum(losses.glvq_loss_over_dissimilarities(y_true, values))

        # mu = (d+ - d-) / (d+ + d-): d mu / d d+ = 2 d- / (d+ + d-)^2 = 0.5.
        self.assertAllClose(
            autodiff_gradient(loss_of_distances, distances),
            [[-0.5, 0.5, 0.0]],
            atol=1e-5,
        )


class MarginLossTest(_LossChecks, TestCase):
    function = staticmethod(losses.margin_loss)
    loss_class = losses.MarginLoss
    reference = staticmethod(np_margin)
    options = {"lamb": 0.25, "margin": 0.2}


class SpreadLossTest(_LossChecks, TestCase):
    function = staticmethod(losses.spread_loss)
    loss_class = losses.SpreadLoss
    reference = staticmethod(np_spread)
    options = {"margin": 0.5}

    def test_gradient_reaches_the_correct_class_when_it_ties_with_the_lowest(self):
        # The correct class (1) ties with class 0 for the smallest activation.
        y_true = np.array([[0.0, 1.0, 0.0]])
        y_pred = np.array([[0.5, 0.5, 0.9]])

        def loss_of_prediction(prediction):
            return keras.ops.sum(losses.spread_loss(y_true, prediction, margin=0.2))

        # d/dp_k = 2 relu(m - (p_t - p_k)) for k != t; d/dp_t is minus their sum.
        self.assertAllClose(
            autodiff_gradient(loss_of_prediction, y_pred),
            [[0.4, -1.6, 1.2]],
            atol=1e-5,
        )


class GeneralizedKullbackLeiblerDivergenceTest(_LossChecks, TestCase):
    function = staticmethod(losses.generalized_kullback_leibler_divergence)
    loss_class = losses.GeneralizedKullbackLeiblerDivergence
    reference = staticmethod(np_gkl)
    options = {"epsilon": 1e-3}


class ItakuraSaitoDivergenceTest(_LossChecks, TestCase):
    function = staticmethod(losses.itakura_saito_divergence)
    loss_class = losses.ItakuraSaitoDivergence
    reference = staticmethod(np_itakura_saito)
    options = {"epsilon": 1e-3}


class RslvqLossTest(_LossChecks, TestCase):
    function = staticmethod(losses.rslvq_loss)
    loss_class = losses.RSLVQLoss
    reference = staticmethod(np_rslvq)
    kind = "dissimilarities"
    options = {"beta": 0.5}

    def test_two_prototypes_per_class(self):
        rng = np.random.default_rng(4)
        y_true = one_hot(rng.integers(0, 2, size=BATCH), 2)
        for prototype_labels in ([0, 1, 0, 1, 1], [1, 1, 0, 0, 1]):
            distances = rng.uniform(0.0, 4.0, size=(BATCH, CLASSES)).astype("float32")
            expected = np_rslvq(
                y_true, distances.astype("float64"), prototype_labels, 0.7
            )
            self.assertAllClose(
                losses.rslvq_loss(y_true, distances, prototype_labels, beta=0.7),
                expected,
                1e-5,
                1e-5,
            )
            loss = losses.RSLVQLoss(prototype_labels, beta=0.7, reduction=None)
            self.assertAllClose(loss(y_true, distances), expected, 1e-5, 1e-5)
        # Far-away prototypes: a softmax followed by a log would give log(0).
        y_true = one_hot([0, 1, 2, 0], 3)
        far = np.array([[1e4, 2e4, 5e3, 3e4, 6e3]] * BATCH, "float32")
        self.assertAllClose(
            losses.rslvq_loss(y_true, far, [0, 0, 1, 1, 2]),
            [5e3, 0.0, 1e3, 5e3],
            atol=1e-2,
        )

    def test_integer_class_ids_with_prototype_labels(self):
        prototype_labels = [0, 0, 1, 1, 2]
        rng = np.random.default_rng(9)
        distances = rng.uniform(0.0, 3.0, size=(BATCH, CLASSES)).astype("float32")
        # Class 3 has no prototype: its one-hot row selects none, and so does
        # its id, which lies beyond the largest prototype label.
        class_ids = np.array([0, 2, 1, 3])
        one_hot_labels = one_hot(class_ids, 4)
        expected = losses.rslvq_loss(
            one_hot_labels, distances, prototype_labels, beta=0.5
        )
        # The reference is infinite for class 3 (the loss is finite there).
        reference = np_rslvq(
            one_hot_labels[:3], distances[:3].astype("float64"), prototype_labels, 0.5
        )
        self.assertAllClose(expected[:3], reference, 1e-5, 1e-5)
        loss = losses.RSLVQLoss(prototype_labels, beta=0.5, reduction=None)
        for labels in (class_ids, class_ids[:, None]):
            message = f"labels {labels.shape}"
            self.assertAllClose(
                losses.rslvq_loss(labels, distances, prototype_labels, beta=0.5),
                expected,
                1e-5,
                1e-5,
                message,
            )
            self.assertAllClose(loss(labels, distances), expected, 1e-5, 1e-5, message)
        # One-hot labels need a column for every prototype label.
        for function in (
            loss,
            lambda y, d: losses.rslvq_loss(y, d, prototype_labels),
        ):
            with pytest.raises(
                ValueError,
                match=r"indices below 2.*y_true.shape=\(4, 2\), "
                r"y_pred.shape=\(4, 5\)",
            ):
                function(one_hot([0, 1, 1, 0], 2), distances)
            with pytest.raises(ValueError, match=r"y_true.shape=\(4, 1\), "):
                function(class_ids[:, None].astype("float32"), distances)

    def test_gradient_with_shared_classes(self):
        if keras.backend.backend() not in ("jax", "torch", "tensorflow"):
            self.skipTest("backend without autodiff")
        rng = np.random.default_rng(6)
        y_true = one_hot(rng.integers(0, 2, size=BATCH), 2)
        distances = rng.uniform(0.0, 3.0, size=(BATCH, CLASSES))

        def loss_of_distances(tensor):
            return losses.rslvq_loss(y_true, tensor, [0, 1, 0, 1, 1], beta=2.0)

        self.assertAllClose(
            autodiff_gradient(loss_of_distances, distances),
            numeric_gradient(loss_of_distances, distances),
            atol=2e-3,
            rtol=2e-2,
        )

        # Row 3 of HARD_LABELS is class 3, which has no prototype.
        def hard_loss(tensor):
            return losses.rslvq_loss(HARD_LABELS, tensor, [0, 0, 1, 1, 2])

        self.assertAllFinite(hard_loss(HARD_POINT))
        self.assertAllFinite(autodiff_gradient(hard_loss, HARD_POINT))


LOSS_TESTS = (
    GlvqLossTest,
    GlvqLossOverDissimilaritiesTest,
    MarginLossTest,
    SpreadLossTest,
    GeneralizedKullbackLeiblerDivergenceTest,
    ItakuraSaitoDivergenceTest,
    RslvqLossTest,
)


class SerializationTest(TestCase):
    def test_config_round_trip_keeps_options_and_dtype(self):
        for test in LOSS_TESTS:
            options = test.options
            loss = test.loss_class(**options, name="custom", reduction="sum")
            revived = self.run_serialization_test(loss)
            for key, value in options.items():
                self.assertEqual(getattr(revived, key), value)
            self.assertEqual(revived.name, "custom")
            self.assertEqual(revived.reduction, "sum")
        for dtype in ("float32", keras.DTypePolicy("float32")):
            revived = self.run_serialization_test(losses.GlvqLoss(dtype=dtype))
            self.assertEqual(revived.dtype, "float32")
        revived = self.run_serialization_test(losses.RSLVQLoss([0, 0, 1]))
        self.assertEqual(revived.prototype_labels, [0, 0, 1])

    def test_saved_model_restores_the_losses(self):
        inputs = keras.Input((CLASSES,))
        outputs = {
            f"output_{index}": keras.layers.Dense(CLASSES, name=f"output_{index}")(
                inputs
            )
            for index in range(len(LOSS_TESTS) + 1)
        }
        model = keras.Model(inputs, outputs)
        compiled = {
            f"output_{index}": test.loss_class(**test.options)
            for index, test in enumerate(LOSS_TESTS)
        }
        compiled[f"output_{len(LOSS_TESTS)}"] = losses.glvq_loss
        model.compile(optimizer="sgd", loss=compiled)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.keras")
            model.save(path)
            restored = keras.saving.load_model(path)
        for key, loss in compiled.items():
            restored_loss = restored.loss[key]
            if isinstance(loss, keras.losses.Loss):
                self.assertIsInstance(restored_loss, type(loss))
                self.assertEqual(restored_loss.get_config(), loss.get_config())
            else:
                self.assertIs(restored_loss, loss)

    def test_get_resolves_original_and_keras_names(self):
        self.assertIsNone(losses.get(None))
        for name in (
            "glvq_loss",
            "margin_loss",
            "spread_loss",
            "generalized_kullback_leibler_divergence",
            "itakura_saito_divergence",
            "glvq_loss_over_dissimilarities",
            "rslvq_loss",
        ):
            self.assertIs(losses.get(name), getattr(losses, name))
        for name in (
            "GlvqLoss",
            "GLVQLoss",
            "MarginLoss",
            "SpreadLoss",
            "GlvqLossOverDissimilarities",
            "GeneralizedKullbackLeiblerDivergence",
            "ItakuraSaitoDivergence",
            "RSLVQLoss",
            "RslvqLoss",
        ):
            self.assertIsInstance(losses.get(name), getattr(losses, name))
        self.assertIs(losses.GLVQLoss, losses.GlvqLoss)
        self.assertIs(
            losses.get("categorical_crossentropy"),
            keras.losses.categorical_crossentropy,
        )
        self.assertIsInstance(
            losses.get("CategoricalCrossentropy"), keras.losses.CategoricalCrossentropy
        )
        spread = losses.get({"class_name": "SpreadLoss", "config": {"margin": 0.4}})
        self.assertEqual(spread.margin, 0.4)

        def custom(y_true, y_pred):
            return y_pred

        self.assertIs(losses.get(custom), custom)

        for identifier in ("glvq", 3, {"class_name": "Nope", "config": {}}):
            with self.assertRaisesRegex(
                ValueError, r"'GlvqLoss'.*Received: identifier="
            ):
                losses.get(identifier)
        with self.assertRaisesRegex(ValueError, "Received: identifier='glvq'"):
            losses.get("glvq")

    def test_serialize_and_deserialize(self):
        for loss in (
            losses.GlvqLoss(squash_func="relu", margin=0.2),
            losses.RSLVQLoss([1, 0]),
            keras.losses.MeanSquaredError(),
        ):
            config = json.loads(json.dumps(losses.serialize(loss)))
            revived = losses.deserialize(config)
            self.assertIsInstance(revived, type(loss))
            self.assertEqual(revived.get_config(), loss.get_config())
        config = json.loads(json.dumps(losses.serialize(losses.spread_loss)))
        self.assertIs(losses.deserialize(config), losses.spread_loss)
        self.assertIs(losses.deserialize("margin_loss"), losses.margin_loss)


class ValidationTest(TestCase):
    def test_squashing_arguments(self):
        y_true, y_pred = make_data()
        for cls, function in (
            (losses.GlvqLoss, losses.glvq_loss),
            (losses.GlvqLossOverDissimilarities, losses.glvq_loss_over_dissimilarities),
        ):
            # Keras activations and callables are accepted (as in the
            # original, see tests/test_original_api.py); other names are not.
            with self.assertRaisesRegex(ValueError, "Received: squash_func='tan'"):
                cls(squash_func="tan")
            with self.assertRaisesRegex(ValueError, "Received: squash_func=3"):
                function(y_true, y_pred, squash_func=3)
            for margin in (-0.1, 1.0, float("nan")):
                with self.assertRaisesRegex(ValueError, r"\[0, 1\). Received: margin="):
                    cls(margin=margin)
            for beta in (0, -1.0, "2"):
                with self.assertRaisesRegex(ValueError, "Received: beta="):
                    cls(beta=beta)
            with self.assertRaisesRegex(ValueError, "Received: beta=0"):
                function(y_true, y_pred, squash_func="sigmoid", beta=0)

    def test_other_loss_options(self):
        for margin in (-0.1, 0.5):
            with self.assertRaisesRegex(ValueError, r"\[0, 0.5\). Received: margin="):
                losses.MarginLoss(margin=margin)
        with self.assertRaisesRegex(ValueError, "Received: lamb=-1"):
            losses.MarginLoss(lamb=-1)
        # The spread loss margin is validated on assignment, too.
        with self.assertRaisesRegex(ValueError, "Received: margin=-0.2"):
            losses.SpreadLoss(margin=-0.2)
        loss = losses.SpreadLoss()
        loss.margin = 0.9
        self.assertEqual(loss.get_config()["margin"], 0.9)
        with self.assertRaisesRegex(ValueError, "Received: margin=None"):
            loss.margin = None
        for cls in (
            losses.GeneralizedKullbackLeiblerDivergence,
            losses.ItakuraSaitoDivergence,
        ):
            with self.assertRaisesRegex(ValueError, "Received: epsilon=0"):
                cls(epsilon=0)

    def test_prototype_labels(self):
        for labels in ([-1, 0], [0.5, 1], "01", [], [True, False], 3):
            with self.assertRaisesRegex(ValueError, "Received: prototype_labels="):
                losses.RSLVQLoss(labels)
        self.assertEqual(losses.RSLVQLoss(np.array([1, 0])).prototype_labels, [1, 0])
        y_true = one_hot([0, 1], 2)
        distances = np.ones((2, 3), "float32")
        with self.assertRaisesRegex(ValueError, "one label per prototype"):
            losses.rslvq_loss(y_true, distances, [0, 1])
        with self.assertRaisesRegex(ValueError, "indices below 2"):
            losses.rslvq_loss(y_true, distances, [0, 1, 2])
        with self.assertRaisesRegex(ValueError, r"y_pred.shape=\(2, 3\)"):
            losses.rslvq_loss(y_true, distances)


class TrainingTest(TestCase):
    def test_fit_and_evaluate_on_integer_class_ids(self):
        rng = np.random.default_rng(8)
        x = rng.normal(size=(8, 3)).astype("float32")
        class_ids = rng.integers(0, 2, size=(8, 1))
        results = []
        for labels in (one_hot(class_ids[:, 0], 2), class_ids):
            keras.utils.set_random_seed(0)
            model = keras.Sequential(
                [keras.Input((3,)), keras.layers.Dense(4, activation="softplus")]
            )
            model.compile(
                optimizer=keras.optimizers.SGD(0.1),
                loss=losses.RSLVQLoss(prototype_labels=[0, 1, 0, 1]),
            )
            model.fit(x, labels, batch_size=8, epochs=2, verbose=0, shuffle=False)
            results.append(model.evaluate(x, labels, verbose=0))
        self.assertAllClose(results[1], results[0], 1e-5, 1e-5)

    def test_compiled_loss_function_rejects_integer_class_ids(self):
        # Keras casts `y_true` to float before a loss function sees it.
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(CLASSES)])
        model.compile(optimizer="sgd", loss=losses.glvq_loss)
        x = np.zeros((BATCH, 3), "float32")
        with pytest.raises(ValueError, match="compile with the loss class"):
            model.fit(x, np.zeros((BATCH, 1), "int32"), verbose=0)

    def test_fit_with_rslvq_over_more_prototypes_than_classes(self):
        rng = np.random.default_rng(7)
        x = rng.normal(size=(8, 3)).astype("float32")
        y = one_hot(rng.integers(0, 2, size=8), 2)
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4, activation="softplus")]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=losses.RSLVQLoss(prototype_labels=[0, 1, 0, 1]),
        )
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        self.assertAllFinite(np.array(history.history["loss"]))
        self.assertLess(history.history["loss"][1], history.history["loss"][0])
