"""scikit-learn estimators for the classic LVQ family.

`GLVQClassifier`, `GMLVQClassifier` (full or limited rank),
`GRLVQClassifier`, `LGMLVQClassifier`, `GTLVQClassifier` and
`RSLVQClassifier` wrap the Keras models of `anysma.models` in the
scikit-learn estimator API: plain keyword parameters, `fit` / `predict` /
`predict_proba` / `decision_function` / `score`, `partial_fit` for the
mini-batch solvers, `transform` for the global-metric models (GMLVQ,
GRLVQ), learned attributes with a trailing underscore, and support for
`Pipeline`, `GridSearchCV`, `clone`, `pickle` and `sample_weight`.

The estimators keep their learned parameters as NumPy arrays and evaluate
one shared Keras model per structure, so they pickle without Keras objects
and refitting builds no new model. They run on the active Keras backend
(JAX, PyTorch or TensorFlow).

This package is not imported by `import anysma`:

>>> from anysma.sklearn import GMLVQClassifier
"""

from anysma.sklearn._cbc import CBCClassifier
from anysma.sklearn._glvq import GLVQClassifier
from anysma.sklearn._gmlvq import GMLVQClassifier
from anysma.sklearn._grlvq import GRLVQClassifier
from anysma.sklearn._gtlvq import GTLVQClassifier
from anysma.sklearn._lgmlvq import LGMLVQClassifier
from anysma.sklearn._rslvq import RSLVQClassifier

__all__ = [
    "CBCClassifier",
    "GLVQClassifier",
    "GMLVQClassifier",
    "GRLVQClassifier",
    "GTLVQClassifier",
    "LGMLVQClassifier",
    "RSLVQClassifier",
]
