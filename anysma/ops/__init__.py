"""Math of anysma: pure functions of `keras.ops` (no state, no layers)."""

from anysma.ops.competition import class_log_posterior
from anysma.ops.competition import competition
from anysma.ops.competition import gibbs_competition
from anysma.ops.competition import nearest_competition
from anysma.ops.components import cbc_reasoning
from anysma.ops.components import cosine_detection_probability
from anysma.ops.components import cosine_similarity
from anysma.ops.components import detection_probability
from anysma.ops.components import image_patches
from anysma.ops.components import patch_distances
from anysma.ops.components import reasoning_probabilities
from anysma.ops.convolution import space_to_depth_conv2d
from anysma.ops.distances import capsule_minkowski_distance
from anysma.ops.distances import capsule_omega_distance
from anysma.ops.distances import capsule_restricted_tangent_distance
from anysma.ops.distances import capsule_tangent_distance
from anysma.ops.distances import euclidean_distance
from anysma.ops.distances import minkowski_distance
from anysma.ops.distances import omega_distance
from anysma.ops.distances import restricted_tangent_distance
from anysma.ops.distances import squared_euclidean_distance
from anysma.ops.distances import tangent_distance
from anysma.ops.em_routing import capsule_patch_ids
from anysma.ops.em_routing import capsule_patches
from anysma.ops.em_routing import coordinate_addition
from anysma.ops.em_routing import em_routing
from anysma.ops.linalg import log_determinant
from anysma.ops.linalg import omega_log_determinant
from anysma.ops.linalg import omega_normalization
from anysma.ops.linalg import orthogonalization
from anysma.ops.linalg import trace
from anysma.ops.linalg import trace_normalization
from anysma.ops.norms import euclidean_norm
from anysma.ops.norms import p_norm
from anysma.ops.reductions import selected_max
from anysma.ops.reductions import selected_min
from anysma.ops.routing import dynamic_routing
from anysma.ops.routing import gibbs_routing
from anysma.ops.routing import measured_gibbs_routing
from anysma.ops.routing import mix_dissimilarities
from anysma.ops.routing import routing
from anysma.ops.self_attention_routing import capsule_votes
from anysma.ops.self_attention_routing import self_attention_routing
from anysma.ops.squash import dynamic_routing_squash
from anysma.ops.squash import efficient_squash
from anysma.ops.squash import squash

__all__ = [
    "capsule_patch_ids",
    "capsule_patches",
    "coordinate_addition",
    "em_routing",
    "capsule_minkowski_distance",
    "capsule_omega_distance",
    "capsule_restricted_tangent_distance",
    "capsule_tangent_distance",
    "capsule_votes",
    "cbc_reasoning",
    "cosine_detection_probability",
    "cosine_similarity",
    "class_log_posterior",
    "competition",
    "detection_probability",
    "dynamic_routing",
    "dynamic_routing_squash",
    "efficient_squash",
    "euclidean_distance",
    "euclidean_norm",
    "gibbs_competition",
    "gibbs_routing",
    "image_patches",
    "log_determinant",
    "measured_gibbs_routing",
    "mix_dissimilarities",
    "minkowski_distance",
    "nearest_competition",
    "omega_distance",
    "omega_log_determinant",
    "omega_normalization",
    "orthogonalization",
    "p_norm",
    "patch_distances",
    "reasoning_probabilities",
    "restricted_tangent_distance",
    "routing",
    "self_attention_routing",
    "selected_max",
    "selected_min",
    "space_to_depth_conv2d",
    "squared_euclidean_distance",
    "squash",
    "tangent_distance",
    "trace",
    "trace_normalization",
]
