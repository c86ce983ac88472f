"""The paper's experiments as importable definitions.

Each experiment module defines `NAME`, `DATASET`, `EXPECTED` (the result the
original reported), `build_parser(parser)` (the original command-line flags)
and `run(args)`, which trains and evaluates and returns the final metrics.
`anysma run NAME` and `python examples/NAME.py` both call them.

Every experiment also takes your own data from Python, as arrays or (all
but `gmlvq_tecator`) as streams larger than memory:
`run(args, data=ExperimentData(train, test))`.
"""

import importlib

from anysma.experiments.common import ExperimentData

__all__ = ["EXPERIMENTS", "ExperimentData", "get"]

#: Experiment name -> module path.
EXPERIMENTS = {
    name: f"anysma.experiments.{name}"
    for name in (
        "capsnet",
        "capsnet_lvq",
        "cbc_mnist",
        "gmlvq_tecator",
        "lvq_mnist",
        "rtlvq_mnist",
        "lvq_caps_mnist",
        "lvq_caps_cifar10",
        "lvq_caps_smallnorb48",
        "robustness_mnist",
        "efficient_capsnet_mnist",
        "em_smallnorb",
    )
}


def get(name):
    """Import and return the module of experiment `name`."""
    if name not in EXPERIMENTS:
        raise ValueError(
            f"Unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}. "
            f"Received: name={name!r}"
        )
    return importlib.import_module(EXPERIMENTS[name])
