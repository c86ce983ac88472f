"""Accuracy of the estimators on scikit-learn's bundled data sets.

5-fold stratified cross-validation (shuffled, seed 0) of
`StandardScaler -> estimator(random_state=0)` with default settings and one
prototype per class. The thresholds are about 0.02 below the accuracies
measured on all three backends and close to what the literature reports for
these models (e.g. GMLVQ about 0.97 on wine, GLVQ about 0.95 on iris).
"""

import numpy as np
import pytest
from sklearn import datasets
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from anysma.sklearn import GLVQClassifier
from anysma.sklearn import GMLVQClassifier
from anysma.sklearn import GRLVQClassifier
from anysma.sklearn import GTLVQClassifier
from anysma.sklearn import LGMLVQClassifier
from anysma.sklearn import RSLVQClassifier

pytestmark = pytest.mark.requires_trainable_backend

ESTIMATORS = {
    "GLVQ": GLVQClassifier,
    "GMLVQ": GMLVQClassifier,
    "GRLVQ": GRLVQClassifier,
    "LGMLVQ": LGMLVQClassifier,
    "GTLVQ": GTLVQClassifier,
    "RSLVQ": RSLVQClassifier,
}

# Mean 5-fold accuracy each estimator must reach.
THRESHOLDS = {
    "iris": {
        "GLVQ": 0.92,
        "GMLVQ": 0.94,
        "GRLVQ": 0.93,
        "LGMLVQ": 0.93,
        "GTLVQ": 0.93,
        "RSLVQ": 0.94,
    },
    "wine": {
        "GLVQ": 0.96,
        "GMLVQ": 0.95,
        "GRLVQ": 0.95,
        "LGMLVQ": 0.96,
        "GTLVQ": 0.94,
        "RSLVQ": 0.95,
    },
    "breast_cancer": {
        "GLVQ": 0.95,
        "GMLVQ": 0.94,
        "GRLVQ": 0.95,
        "LGMLVQ": 0.94,
        "GTLVQ": 0.94,
        "RSLVQ": 0.93,
    },
    "digits": {
        "GLVQ": 0.93,
        "GMLVQ": 0.94,
        "GRLVQ": 0.93,
        "LGMLVQ": 0.96,
        "GTLVQ": 0.96,
        "RSLVQ": 0.93,
    },
}


def cross_validated_accuracy(name, x, y, folds=5, **kwargs):
    model = make_pipeline(StandardScaler(), ESTIMATORS[name](random_state=0, **kwargs))
    splits = StratifiedKFold(folds, shuffle=True, random_state=0)
    return float(np.mean(cross_val_score(model, x, y, cv=splits)))


def load(data_set):
    return getattr(datasets, f"load_{data_set}")(return_X_y=True)


@pytest.mark.parametrize("data_set", ["iris", "wine", "breast_cancer"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_cross_validated_accuracy(name, data_set):
    x, y = load(data_set)
    accuracy = cross_validated_accuracy(name, x, y)
    assert accuracy >= THRESHOLDS[data_set][name]


@pytest.mark.large
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_digits_accuracy(name):
    x, y = load("digits")
    accuracy = cross_validated_accuracy(name, x, y)
    assert accuracy >= THRESHOLDS["digits"][name]


@pytest.mark.parametrize("name", ["GLVQ", "RSLVQ"])
def test_digits_subset_accuracy(name):
    # The fast twin of `test_digits_accuracy`: the first 400 images, 3 folds.
    x, y = load("digits")
    accuracy = cross_validated_accuracy(name, x[:400], y[:400], folds=3)
    assert accuracy >= 0.9
