"""Matrix functions for matrix-based LVQ, as pure functions of `keras.ops`.

All functions act on the last two axes. Where batching makes sense they take
one matrix of rank 2 or a stack of matrices of rank 3, e.g. the local
matrices `(P, D, M)` of a `matrix_scope='local'` measuring module.

The SVD and determinant kernels of all backends lack half-precision support
on CPU, so `float16`/`bfloat16` inputs are computed in `float32` and the
result is cast back to the input dtype.
"""

import keras
from keras import ops

from anysma.ops._validation import check_dims_match
from anysma.ops._validation import check_epsilon
from anysma.ops._validation import check_min_rank
from anysma.ops._validation import check_rank
from anysma.ops._validation import static_shape

_HALF_DTYPES = ("float16", "bfloat16")


def _to_float(matrices):
    """Convert to a float tensor (integers become `floatx`)."""
    matrices = ops.convert_to_tensor(matrices)
    if "float" not in keras.backend.standardize_dtype(matrices.dtype):
        matrices = ops.cast(matrices, keras.config.floatx())
    return matrices


def _at_least_float32(matrices):
    """Return `matrices` in a dtype the linear-algebra kernels accept."""
    if keras.backend.standardize_dtype(matrices.dtype) in _HALF_DTYPES:
        return ops.cast(matrices, "float32")
    return matrices


def _check_matrices(matrices, name, square=False):
    check_rank(matrices, name, (2, 3), " (one matrix or a stack of matrices)")
    shape = static_shape(matrices)
    if square:
        check_dims_match(
            shape[-2],
            shape[-1],
            f"`{name}` must hold square matrices (the last two dimensions "
            f"must be equal). Received: {name}.shape={shape}",
        )


def trace(matrices, keepdims=False):
    """Trace (sum of the diagonal) over the last two axes.

    Args:
        matrices: Tensor of rank >= 2; the leading axes are batch axes.
            Rectangular matrices are allowed (the main diagonal is summed).
        keepdims: If `True`, keep the two reduced axes with length 1, so the
            result broadcasts against `matrices`.

    Returns:
        The traces, of shape `matrices.shape[:-2]`, or
        `matrices.shape[:-2] + (1, 1)` with `keepdims=True`.

    Example:

    >>> import numpy as np
    >>> float(trace(np.eye(3)))
    3.0
    >>> tuple(trace(np.ones((4, 2, 2)), keepdims=True).shape)
    (4, 1, 1)
    """
    matrices = ops.convert_to_tensor(matrices)
    check_min_rank(matrices, "matrices", 2, " (..., rows, columns)")
    traces = ops.trace(matrices, axis1=-2, axis2=-1)
    if keepdims:
        traces = ops.expand_dims(ops.expand_dims(traces, -1), -1)
    return traces


# Below this condition number of the Gram matrix (the square of the
# matrices' condition number) the float32 eigenvalues of `W^T W` give the
# polar factor to about 1e-5; above it the SVD takes over.
_GRAM_CONDITION_LIMIT = 100.0


def _one_matrix_at_a_time(function, matrices):
    """`function` of a stack of matrices; on JAX one matrix after another.

    jaxlib's CPU LAPACK kernels split a large enough batch into chunks, hand
    them to XLA's worker pool and block until they are done. When every
    thread of that pool is inside such a call (one per device, e.g. two
    virtual devices of a `keras.distribution` on two cores), no thread is
    left to run the chunks and training stops for good. A single matrix
    runs inline, and the small Gram matrices cost little one by one.
    """
    if keras.backend.backend() != "jax" or len(static_shape(matrices)) == 2:
        return function(matrices)
    return ops.map(function, matrices)


def _polar_from_gram(matrices, eigenvalues, eigenvectors, tall):
    """Polar factor `W (W^T W)^(-1/2)` from the eigenvectors of the Gram matrix."""
    inverse_root = ops.matmul(
        eigenvectors * ops.expand_dims(ops.rsqrt(eigenvalues), -2),
        ops.swapaxes(eigenvectors, -1, -2),
    )
    if tall:
        return ops.matmul(matrices, inverse_root)
    return ops.matmul(inverse_root, matrices)


def _polar_from_svd(matrices):
    # The thin SVD (`full_matrices=False`) gives U (n, k) and V^T (k, r) with
    # k = min(n, r), so `U @ V^T` has the input's shape on every backend; the
    # full SVD would need U sliced to its first r columns.
    left, _, right_transposed = _one_matrix_at_a_time(
        lambda matrix: ops.svd(matrix, full_matrices=False), matrices
    )
    return ops.matmul(left, right_transposed)


def orthogonalization(matrices):
    """Project matrices onto the Stiefel manifold (polar decomposition).

    With the thin SVD `W = U S V^T`, returns `U V^T`: the orthogonal factor
    of the polar decomposition and the matrix with orthonormal columns
    closest to `W` in the Frobenius norm. For an `(n, r)` matrix with
    `n >= r` the columns of the result are orthonormal; for `n < r` its rows
    are. Matrices that already have orthonormal columns are returned
    unchanged (up to rounding), so the projection is idempotent.

    The factor is computed as `W (W^T W)^(-1/2)` from an eigendecomposition
    of the small `min(n, r)`-square Gram matrix, which for the tall bases of
    tangent distances (e.g. `784 x 12`) is several times faster than the SVD
    of `W`. When a matrix of the stack is ill-conditioned (condition number
    above 10, which also covers rank-deficient matrices), the whole stack
    takes the SVD instead, so the result is the same in every case.
    Bases kept orthonormal by the constraint, which change by one optimizer
    step at a time, always take the fast path.

    Args:
        matrices: One matrix `(n, r)` or a stack `(P, n, r)`.

    Returns:
        A tensor of the same shape and dtype as `matrices`.

    Example:

    >>> import numpy as np
    >>> q = orthogonalization(np.array([[2.0, 0.0], [0.0, 3.0], [0.0, 0.0]]))
    >>> np.round(np.asarray(q), 6).tolist()
    [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    """
    matrices = _to_float(matrices)
    _check_matrices(matrices, "matrices")
    dtype = matrices.dtype
    computed = _at_least_float32(matrices)
    rows, columns = static_shape(computed)[-2:]
    tall = rows >= columns
    transposed = ops.swapaxes(computed, -1, -2)
    gram = (
        ops.matmul(transposed, computed) if tall else ops.matmul(computed, transposed)
    )
    eigenvalues, eigenvectors = _one_matrix_at_a_time(ops.eigh, gram)
    # `eigh` sorts the eigenvalues in ascending order.
    well_conditioned = ops.all(
        eigenvalues[..., 0] > eigenvalues[..., -1] / _GRAM_CONDITION_LIMIT
    )
    polar = ops.cond(
        well_conditioned,
        lambda: _polar_from_gram(computed, eigenvalues, eigenvectors, tall),
        lambda: _polar_from_svd(computed),
    )
    return ops.cast(polar, dtype)


def trace_normalization(matrices, epsilon=1e-7):
    """Divide square matrices by the root of their trace.

    Computes `W / max(sqrt(trace(W)), epsilon)` per matrix, the formula of
    the original anysma. Note that the trace of the result is
    `sqrt(trace(W))`, not 1 (`omega_normalization` gives the relevance matrix
    `Omega Omega^T` unit trace). A negative trace, whose root is undefined,
    is treated as zero, so such a matrix is divided by `epsilon`.

    Args:
        matrices: One square matrix `(n, n)` or a stack `(P, n, n)`.
        epsilon: Lower bound of the divisor (a number >= 0).

    Returns:
        A tensor of the same shape and dtype as `matrices`.

    Example:

    >>> import numpy as np
    >>> np.round(np.asarray(trace_normalization(2.0 * np.eye(2))), 6).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    check_epsilon(epsilon)
    matrices = _to_float(matrices)
    _check_matrices(matrices, "matrices", square=True)
    dtype = matrices.dtype
    values = _at_least_float32(matrices)
    traces = trace(values, keepdims=True)
    divisor = ops.maximum(ops.sqrt(ops.maximum(traces, 0.0)), epsilon)
    return ops.cast(values / divisor, dtype)


def omega_normalization(omegas, epsilon=1e-7):
    """Scale Omega matrices so that `Lambda = Omega Omega^T` has trace 1.

    Computes `Omega / max(sqrt(trace(Omega Omega^T)), epsilon)` per matrix.
    `trace(Omega Omega^T)` is the squared Frobenius norm of `Omega`, which is
    summed directly instead of forming the product.

    Args:
        omegas: One matrix `(D, M)` (global) or a stack `(P, D, M)` (local).
        epsilon: Lower bound of the divisor (a number >= 0).

    Returns:
        A tensor of the same shape and dtype as `omegas`.

    Example:

    >>> import numpy as np
    >>> np.asarray(omega_normalization(np.full((2, 2), 3.0))).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    check_epsilon(epsilon)
    omegas = _to_float(omegas)
    _check_matrices(omegas, "omegas")
    dtype = omegas.dtype
    # float32 at least: squares of moderate float16 values overflow.
    values = _at_least_float32(omegas)
    norms = ops.sqrt(ops.sum(ops.square(values), axis=(-2, -1), keepdims=True))
    return ops.cast(values / ops.maximum(norms, epsilon), dtype)


def log_determinant(matrices):
    """Natural logarithm of the absolute determinant of square matrices.

    Computed with `slogdet` (an LU factorization) rather than `log(det(W))`:
    the determinant itself under- or overflows long before its logarithm
    does. For the positive semi-definite matrices of GMLVQ
    (`Lambda = Omega Omega^T`) this is `log(det(W))`; a singular matrix gives
    `-inf`.

    Args:
        matrices: One square matrix `(n, n)` or a stack `(P, n, n)`.

    Returns:
        A scalar for one matrix, shape `(P,)` for a stack; in the dtype of
        `matrices`.

    Example:

    >>> import numpy as np
    >>> round(float(log_determinant(np.diag([2.0, 3.0]))), 6)
    1.791759
    """
    matrices = _to_float(matrices)
    _check_matrices(matrices, "matrices", square=True)
    dtype = matrices.dtype
    _, log_absolute_determinants = ops.slogdet(_at_least_float32(matrices))
    return ops.cast(log_absolute_determinants, dtype)


def omega_log_determinant(omegas):
    """Log-determinant of the smaller Gram matrix of Omega matrices.

    For `Omega` of shape `(D, M)` this is `log(det(Omega^T Omega))` when
    `M <= D`, else `log(det(Omega Omega^T))`: the smaller of the two square
    matrices, which is the one that can have full rank. It is finite exactly
    when `Omega` has full rank `min(D, M)`, which makes its negative the
    standard GMLVQ regularizer against a collapsing relevance matrix. When a
    dimension is not known statically, `Omega^T Omega` is used.

    Args:
        omegas: One matrix `(D, M)` (global) or a stack `(P, D, M)` (local).

    Returns:
        A scalar for one matrix, shape `(P,)` for a stack; in the dtype of
        `omegas`.

    Example:

    >>> import numpy as np
    >>> omega = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    >>> round(float(omega_log_determinant(omega)), 6)  # log(1 * 4)
    1.386294
    """
    omegas = _to_float(omegas)
    _check_matrices(omegas, "omegas")
    dtype = omegas.dtype
    values = _at_least_float32(omegas)
    rows, columns = static_shape(values)[-2:]
    if rows is not None and columns is not None and rows < columns:
        gram = ops.einsum("...ik,...jk->...ij", values, values)  # Omega Omega^T
    else:
        gram = ops.einsum("...ki,...kj->...ij", values, values)  # Omega^T Omega
    _, log_absolute_determinants = ops.slogdet(gram)
    return ops.cast(log_absolute_determinants, dtype)
