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
from anysma.modules.final import *  # noqa: F403
from anysma.modules.input_output import InputModule
from anysma.modules.input_output import OutputModule
from anysma.modules.input_output import SplitModule
from anysma.modules.measuring import *  # noqa: F403
from anysma.modules.routing import *  # noqa: F403
from anysma.modules.transformations import *  # noqa: F403

# The later original's module name.
transformation = transformations

__all__ = [
    "InputModule",
    "Module",
    "OutputModule",
    "SplitModule",
    "competition",
    "final",
    "measuring",
    "routing",
    "transformation",
    "transformations",
]
for _submodule in (competition, final, measuring, routing, transformations):
    __all__ += list(_submodule.__all__)
