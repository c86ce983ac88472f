"""`CBCClassifier`: scikit-learn's estimator checks and its own behaviour."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from anysma import models
from anysma.sklearn import CBCClassifier
from anysma.testing import TestCase

ESTIMATORS = [CBCClassifier(max_iter=5), CBCClassifier(solver="adam", max_iter=2)]

FLOAT32_WEIGHTS = (
    "The model computes in float32: L-BFGS fits with integer sample weights "
    "and with repeated samples agree to about 1e-6, while this check demands "
    "a relative 1e-7 (as for the LVQ estimators)."
)
MINI_BATCH_WEIGHTS = (
    "Repeating samples changes the mini-batches and the number of steps per "
    "epoch (as for the LVQ estimators)."
)


def expected_failed_checks(estimator):
    reason = FLOAT32_WEIGHTS if estimator.solver == "lbfgs" else MINI_BATCH_WEIGHTS
    return {"check_sample_weight_equivalence_on_dense_data": reason}


@pytest.mark.requires_trainable_backend
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_scikit_learn_compatibility(estimator, check):
    check(estimator)


@pytest.mark.requires_trainable_backend
class CBCClassifierTest(TestCase):
    def setUp(self):
        super().setUp()
        x, self.y = load_iris(return_X_y=True)
        self.x = StandardScaler().fit_transform(x)

    @pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
    def test_fit_learns_and_exposes_the_model(self):
        estimator = CBCClassifier(components_per_class=2, random_state=0)
        estimator.fit(self.x, self.y)
        self.assertGreater(estimator.score(self.x, self.y), 0.9)
        self.assertEqual(estimator.components_.shape, (6, 4))
        total = (
            estimator.positive_reasoning_
            + estimator.negative_reasoning_
            + estimator.indefinite_reasoning_
        )
        self.assertAllClose(total, np.ones((6, 3)), atol=1e-6)
        self.assertGreater(estimator.sigma_, 0)
        probabilities = estimator.predict_proba(self.x)
        self.assertAllClose(probabilities.sum(axis=1), np.ones(len(self.x)))
        self.assertEqual(
            list(np.argmax(probabilities, 1)), list(estimator.predict(self.x))
        )
        model = estimator.to_keras_model()
        self.assertIsInstance(model, models.CBC)
        outputs = model.predict(self.x.astype("float32"), verbose=0)
        self.assertAllClose(
            outputs / outputs.sum(axis=1, keepdims=True), probabilities, atol=1e-5
        )
        confidence = estimator.confidence(self.x)
        self.assertAllClose(confidence, probabilities.max(axis=1))
        with self.assertRaisesRegex(ValueError, "has no certified radius"):
            estimator.certified_radius(self.x)

    @pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
    def test_invalid_parameters(self):
        with self.assertRaisesRegex(TypeError, "components_per_class"):
            CBCClassifier(components_per_class=1.5).fit(self.x, self.y)
        with self.assertRaisesRegex(ValueError, "margin"):
            CBCClassifier(margin=-1.0).fit(self.x, self.y)
        estimator = CBCClassifier(max_iter=3).fit(self.x, self.y)
        with self.assertRaisesRegex(ValueError, "`score` must be None"):
            estimator.confidence(self.x, score="winner_distance")
