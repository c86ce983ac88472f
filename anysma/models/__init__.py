"""Ready-made models: the classic LVQ family, CapsNet and the LVQ-capsule network.

Every model is a Keras functional model built from `anysma.Capsule` modules
(a "functional subclass", as in keras-hub): construct it with its
hyperparameters, then `compile` and `fit` it like any `keras.Model`; it saves
to and loads from `.keras` files without `custom_objects`.
"""

from anysma.models.capsnet import CapsNet
from anysma.models.capsnet import CapsNetLVQ
from anysma.models.capsnet import CapsuleMask
from anysma.models.capsnet import CapsuleSquash
from anysma.models.cbc import CBC
from anysma.models.cbc import PatchCBC
from anysma.models.cbc import SiameseCBC
from anysma.models.efficient_capsnet import EfficientCapsNet
from anysma.models.lvq import GLVQ
from anysma.models.lvq import GMLVQ
from anysma.models.lvq import GRLVQ
from anysma.models.lvq import GTLVQ
from anysma.models.lvq import LGMLVQ
from anysma.models.lvq import RSLVQ
from anysma.models.lvq import RTLVQ
from anysma.models.lvq import ClassLogPosterior
from anysma.models.lvq import LVQModel
from anysma.models.lvq import RelevanceScaling
from anysma.models.lvq_capsule_network import LVQCapsuleNetwork
from anysma.models.matrix_capsnet import MatrixCapsNet

__all__ = [
    "CapsNet",
    "CapsNetLVQ",
    "CapsuleMask",
    "CapsuleSquash",
    "CBC",
    "PatchCBC",
    "SiameseCBC",
    "EfficientCapsNet",
    "GLVQ",
    "GMLVQ",
    "GRLVQ",
    "GTLVQ",
    "LGMLVQ",
    "LVQCapsuleNetwork",
    "MatrixCapsNet",
    "RSLVQ",
    "RTLVQ",
    "ClassLogPosterior",
    "LVQModel",
    "RelevanceScaling",
]
