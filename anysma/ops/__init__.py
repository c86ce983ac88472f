"""Math of anysma: pure functions of `keras.ops` (no state, no layers)."""

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
from anysma.ops.norms import euclidean_norm
from anysma.ops.norms import p_norm
from anysma.ops.linalg import log_determinant
from anysma.ops.linalg import omega_log_determinant
from anysma.ops.linalg import omega_normalization
from anysma.ops.linalg import orthogonalization
from anysma.ops.linalg import trace
from anysma.ops.linalg import trace_normalization
