"""Plots for prototype models and capsule networks (needs matplotlib).

The figures of the original anysma examples and of Saralajew et al. (2018),
as functions that work on any model of `anysma.models`: prototypes (images,
spectra, tangents), the GMLVQ relevance matrix, the spectral lines and
heatmaps of the LVQ-capsule network, random walks in its prototype
subspaces, reconstructions, CapsNet latent manipulations and training
curves.

Every plot function returns a `matplotlib.figure.Figure` drawn by its own
Agg canvas (pyplot and the global backend are left alone) and, given
`path=`, saves it as a PNG atomically (a temporary file moved into place).
Install matplotlib with `pip install "anysma[examples]"`.

Example:

>>> import anysma
>>> from anysma.visualization import plot_relevance_matrix
>>> model = anysma.models.GMLVQ(input_dim=8, num_classes=2)
>>> figure = plot_relevance_matrix(model)
"""

try:
    import matplotlib  # noqa: F401
except ImportError as error:
    raise ImportError(
        "anysma.visualization needs matplotlib, which is not installed. "
        'Install it with: pip install "anysma[examples]"'
    ) from error

from anysma.visualization.components import plot_components
from anysma.visualization.components import plot_reasoning
from anysma.visualization.heatmaps import capsule_dissimilarities
from anysma.visualization.heatmaps import plot_heatmaps
from anysma.visualization.latent_manipulation import manipulate_latent
from anysma.visualization.latent_manipulation import plot_latent_manipulation
from anysma.visualization.prototypes import plot_prototypes
from anysma.visualization.prototypes import plot_prototypes_with_tangents
from anysma.visualization.random_walks import plot_random_walk_caps2
from anysma.visualization.random_walks import plot_random_walk_caps3
from anysma.visualization.random_walks import random_walk_caps2
from anysma.visualization.random_walks import random_walk_caps3
from anysma.visualization.random_walks import sample_restricted_parameters
from anysma.visualization.reconstructions import plot_reconstructions
from anysma.visualization.reject import plot_accuracy_coverage
from anysma.visualization.relevance import plot_relevance_matrix
from anysma.visualization.robustness import plot_certified_accuracy
from anysma.visualization.spectral_lines import plot_spectral_lines
from anysma.visualization.tiling import combine_images
from anysma.visualization.training_curves import load_training_log
from anysma.visualization.training_curves import plot_training_curves

__all__ = [
    "capsule_dissimilarities",
    "combine_images",
    "load_training_log",
    "manipulate_latent",
    "plot_accuracy_coverage",
    "plot_certified_accuracy",
    "plot_components",
    "plot_heatmaps",
    "plot_latent_manipulation",
    "plot_prototypes",
    "plot_prototypes_with_tangents",
    "plot_random_walk_caps2",
    "plot_random_walk_caps3",
    "plot_reasoning",
    "plot_reconstructions",
    "plot_relevance_matrix",
    "plot_spectral_lines",
    "plot_training_curves",
    "random_walk_caps2",
    "random_walk_caps3",
    "sample_restricted_parameters",
]
