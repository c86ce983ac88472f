"""Capsule modules: the steps of a `anysma.Capsule`.

input -> transformations -> measuring -> routing -> competition -> final.
"""

from anysma.capsule import Module
from anysma.modules import competition
from anysma.modules import final
from anysma.modules import measuring
from anysma.modules import routing
from anysma.modules import transformations
from anysma.modules.competition import *  # noqa: F403
from anysma.modules.components import Components
from anysma.modules.components import CosineDetection
from anysma.modules.components import Detection
from anysma.modules.components import InputComponents
from anysma.modules.components import PatchComponents
from anysma.modules.components import Reasoning
from anysma.modules.final import *  # noqa: F403
from anysma.modules.input_output import InputModule
from anysma.modules.input_output import OutputModule
from anysma.modules.input_output import SplitModule
from anysma.modules.matrix_capsules import ClassMatrixCaps
from anysma.modules.matrix_capsules import ConvMatrixCaps
from anysma.modules.matrix_capsules import EMRouting
from anysma.modules.matrix_capsules import PrimaryMatrixCaps
from anysma.modules.measuring import *  # noqa: F403
from anysma.modules.routing import *  # noqa: F403
from anysma.modules.self_attention_routing import DepthwisePrimaryCapsules
from anysma.modules.self_attention_routing import FullyConnectedCapsules
from anysma.modules.self_attention_routing import SelfAttentionRouting
from anysma.modules.transformations import *  # noqa: F403

# The later original's module name.
transformation = transformations

__all__ = [
    "ClassMatrixCaps",
    "Components",
    "CosineDetection",
    "ConvMatrixCaps",
    "EMRouting",
    "PrimaryMatrixCaps",
    "DepthwisePrimaryCapsules",
    "Detection",
    "InputComponents",
    "FullyConnectedCapsules",
    "InputModule",
    "Module",
    "OutputModule",
    "PatchComponents",
    "Reasoning",
    "SplitModule",
    "competition",
    "final",
    "measuring",
    "routing",
    "SelfAttentionRouting",
    "transformation",
    "transformations",
]
for _submodule in (competition, final, measuring, routing, transformations):
    __all__ += list(_submodule.__all__)
