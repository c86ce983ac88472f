"""Data-driven initialization of prototypes (k-means) and matrices (PCA).

The measuring modules' `pre_training` methods call these helpers and only
read and assign their weights themselves; the helpers work on NumPy arrays
and can be used on their own as well. scikit-learn (a
dependency of anysma) does the numerics (`KMeans`, `MiniBatchKMeans`,
`TruncatedSVD`); it is imported when a helper first runs, because importing
its clustering module takes seconds that `import anysma` should not pay.

The original anysma kept `kmeans` and `svd` in `anysma.utils.pre_training`,
where `svd` shadowed another `anysma.utils.svd`; here they have a module of
their own.
"""

import collections
import inspect
import numbers
import warnings

import numpy as np

__all__ = [
    "ClusterResult",
    "StreamClusters",
    "check_signals",
    "cluster_prototypes",
    "cluster_prototypes_stream",
    "flatten_atoms",
    "kmeans",
    "principal_bases",
    "scoped_principal_bases",
    "scoped_principal_bases_stream",
    "split_params",
    "svd",
]


def _accepted_params(cls, params):
    """Split `params` into those `cls.__init__` accepts and the others."""
    names = set(inspect.signature(cls.__init__).parameters) - {"self"}
    accepted = {key: value for key, value in params.items() if key in names}
    dropped = sorted(set(params) - set(accepted))
    return accepted, dropped


def _as_count_list(counts, length, name):
    if isinstance(counts, numbers.Integral) and not isinstance(counts, bool):
        return [int(counts)] * length
    counts = [int(count) for count in counts]
    if len(counts) != length:
        raise ValueError(
            f"`{name}` must be an int or hold one entry per data set "
            f"({length}). Received: {name}={counts!r}"
        )
    return counts


def kmeans(x_trains, n_clusters, batch_version=False, **kmeans_params):
    """Cluster each of several data sets with k-means.

    `sklearn.cluster.KMeans` is used, or `MiniBatchKMeans` with
    `batch_version=True`. If `KMeans` runs out of memory, the data set is
    clustered again with `MiniBatchKMeans` (parameters that it does not
    accept are dropped with a warning).

    Args:
        x_trains: A list of 2-D arrays `(samples, features)`.
        n_clusters: The number of clusters: an int for all data sets or a
            list with one entry per data set.
        batch_version: Use `MiniBatchKMeans`.
        **kmeans_params: Further arguments of the scikit-learn estimator,
            e.g. `random_state=0` for reproducible results or `n_init=10`.

    Returns:
        A tuple `(centers, labels)` of lists: per data set the cluster
        centers `(n_clusters, features)` and the cluster index of each
        sample `(samples,)`.

    Raises:
        ValueError: If a data set has fewer samples than clusters.

    Example:

    >>> import numpy as np
    >>> data = np.array([[0.0], [0.2], [10.0], [10.2]])
    >>> centers, labels = kmeans([data], 2, random_state=0, n_init=1)
    >>> sorted(np.round(centers[0].ravel(), 6).tolist())
    [0.1, 10.1]
    """
    from sklearn.cluster import KMeans
    from sklearn.cluster import MiniBatchKMeans

    estimator_cls = MiniBatchKMeans if batch_version else KMeans
    n_clusters = _as_count_list(n_clusters, len(x_trains), "n_clusters")
    all_centers, all_labels = [], []
    for index, (data, clusters) in enumerate(zip(x_trains, n_clusters)):
        data = np.asarray(data)
        if data.ndim != 2:
            raise ValueError(
                "Each data set must be a 2-D array (samples, features). "
                f"Received: x_trains[{index}].shape={data.shape}"
            )
        if data.shape[0] < clusters:
            raise ValueError(
                f"Data set {index} has {data.shape[0]} samples, fewer than the "
                f"{clusters} clusters requested. Received: n_clusters={clusters}"
            )
        try:
            model = estimator_cls(n_clusters=clusters, **kmeans_params).fit(data)
        except MemoryError:
            params, dropped = _accepted_params(MiniBatchKMeans, kmeans_params)
            warnings.warn(
                "k-means ran out of memory; falling back to MiniBatchKMeans"
                + (f" without the parameters {dropped}" if dropped else "")
                + ".",
                RuntimeWarning,
            )
            model = MiniBatchKMeans(n_clusters=clusters, **params).fit(data)
        labels = getattr(model, "labels_", None)
        if labels is None:
            labels = model.predict(data)
        all_centers.append(np.asarray(model.cluster_centers_))
        all_labels.append(np.asarray(labels))
    return all_centers, all_labels


def _complete_basis(basis, n_components):
    """Extend orthonormal columns to `n_components` orthonormal columns.

    `TruncatedSVD` returns fewer components than requested when the data has
    lower rank (e.g. a cluster with fewer members than subspace dimensions);
    the missing directions are filled with an orthonormal complement, so
    the result is always a valid basis.
    """
    features = basis.shape[0]
    norms = np.linalg.norm(basis, axis=0)
    basis = basis[:, np.isfinite(norms) & (norms > 0.5)]
    if basis.shape[1] >= n_components:
        return basis[:, :n_components]
    # QR of [basis, I]: the first columns span `basis`, the others complete it.
    candidates = np.concatenate([basis, np.eye(features)], axis=1)
    completed, _ = np.linalg.qr(candidates)
    completed[:, : basis.shape[1]] = basis
    return completed[:, :n_components]


def svd(clusters, n_components, **svd_params):
    """Orthonormal bases of the dominant directions of each data set.

    With fewer components than features, `sklearn.decomposition.TruncatedSVD`
    gives the top right singular vectors. As `TruncatedSVD` cannot return all
    of them, `n_components == features` uses the eigenvectors of `c^T c`,
    sorted by decreasing eigenvalue. Center the data first to get principal
    components (as `principal_bases` does).

    Args:
        clusters: A list of 2-D arrays `(samples, features)`.
        n_components: The number of basis vectors: an int for all data sets
            or a list with one entry per data set.
        **svd_params: Further arguments of `TruncatedSVD`, e.g.
            `random_state=0`.

    Returns:
        A list of bases of shape `(features, n_components)` with orthonormal
        columns.

    Example:

    >>> import numpy as np
    >>> data = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    >>> basis = svd([data], 1, random_state=0)[0]
    >>> np.abs(np.round(basis.ravel(), 6)).tolist()
    [1.0, 0.0, 0.0]
    """
    if "n_components" in svd_params:
        raise ValueError(
            "`n_components` is set by the projected atom shape; do not pass "
            f"it in `svd_params`. Received: n_components="
            f"{svd_params['n_components']!r}"
        )
    from sklearn.decomposition import TruncatedSVD

    n_components = _as_count_list(n_components, len(clusters), "n_components")
    bases = []
    for index, (data, components) in enumerate(zip(clusters, n_components)):
        data = np.asarray(data, dtype="float64")
        features = data.shape[-1]
        if data.ndim != 2 or not 0 < components <= features:
            raise ValueError(
                "Each data set must be a 2-D array (samples, features) with at "
                f"least `n_components` features. Received: clusters[{index}]."
                f"shape={data.shape}, n_components={components}"
            )
        if components == features:
            _, eigenvectors = np.linalg.eigh(data.T @ data)
            bases.append(eigenvectors[:, ::-1])
            continue
        # Degenerate data (all rows equal) makes TruncatedSVD divide 0 by 0
        # for its explained-variance ratio; the components are still valid.
        with np.errstate(divide="ignore", invalid="ignore"):
            model = TruncatedSVD(n_components=components, **svd_params)
            model.fit(data)
        bases.append(_complete_basis(model.components_.T, components))
    return bases


ClusterResult = collections.namedtuple(
    "ClusterResult", ["centers", "prototype_members", "capsule_members", "pooled"]
)
ClusterResult.__doc__ = """The result of `cluster_prototypes`.

Attributes:
    centers: `(P, D)`: the cluster centers, in prototype (capsule-major)
        order.
    prototype_members: List of `P` arrays `(n_p, D)`: the rows assigned to
        each prototype's cluster.
    capsule_members: List of `K` arrays: the rows clustered for each
        capsule's prototypes.
    pooled: `(n, D)`: all rows that were clustered.
"""


def _check_labels(y_train, samples, capsule_number, every_class=True):
    labels = np.asarray(y_train)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2:
        # One-hot (or probability) rows: the class is the largest entry.
        labels = np.argmax(labels, axis=1)
    if labels.ndim != 1:
        raise ValueError(
            "`y_train` must hold integer labels (samples,) or one-hot rows "
            f"(samples, classes). Received: y_train.shape={np.shape(y_train)}"
        )
    if labels.shape[0] != samples:
        raise ValueError(
            "`y_train` must hold one label per sample of `x_train` "
            f"({samples}). Received: {labels.shape[0]} labels"
        )
    if labels.size and not np.all(np.isfinite(labels.astype("float64"))):
        raise ValueError("`y_train` contains NaN or infinite values.")
    if not np.all(np.equal(np.mod(labels, 1), 0)):
        raise ValueError(
            "`y_train` must hold integer class labels. Received: "
            f"{np.unique(labels)[:10].tolist()}"
        )
    labels = labels.astype("int64")
    unknown = sorted(set(np.unique(labels).tolist()) - set(range(capsule_number)))
    if unknown:
        raise ValueError(
            f"The labels must be classes 0, ..., {capsule_number - 1} (one per "
            f"capsule). Received: unknown labels {unknown}"
        )
    missing = sorted(set(range(capsule_number)) - set(labels.tolist()))
    if missing and every_class:
        raise ValueError(
            "Every class needs samples to place its prototypes on. Received: "
            f"no samples of class(es) {missing}"
        )
    return labels


def _data_set_rows(x_train, labels, counts, capsule_inputs_are_equal):
    """The data points of each k-means of `cluster_prototypes`.

    Args:
        x_train: `(N, K, C, D)` signals.
        labels: Checked integer labels `(N,)` or `None`.
        counts: The number of prototypes of each capsule.
        capsule_inputs_are_equal: Whether only capsule 0 is read.

    Returns:
        A tuple `(data_sets, n_clusters)`: the rows `(n, D)` of each k-means
        and its number of clusters.
    """
    features = x_train.shape[-1]
    capsules = x_train.shape[1]

    def rows(selection, capsule):
        return np.reshape(x_train[selection, capsule], (-1, features))

    if labels is None and capsule_inputs_are_equal:
        return [rows(slice(None), 0)], [sum(counts)]
    data_sets = []
    for capsule in range(len(counts)):
        source = 0 if capsule_inputs_are_equal else capsule
        if source >= capsules:
            raise ValueError(
                f"x_train has {capsules} capsule(s) on axis 1; capsule "
                f"{capsule} is missing. Received: x_train.shape={x_train.shape}"
            )
        selection = slice(None) if labels is None else labels == capsule
        data_sets.append(rows(selection, source))
    return data_sets, list(counts)


def _check_data_set_sizes(sizes, n_clusters, labelled, pooled):
    """Every k-means needs at least as many data points as clusters.

    `pooled`: one k-means clusters the signals for all capsules.
    """
    if pooled and sizes[0] < n_clusters[0]:
        raise ValueError(
            f"x_train holds {sizes[0]} data points (samples times channels), "
            f"fewer than the {n_clusters[0]} prototypes."
        )
    if pooled:
        return
    what = "class" if labelled else "capsule"
    for capsule, (size, count) in enumerate(zip(sizes, n_clusters)):
        if size < count:
            raise ValueError(
                f"The {what} {capsule} has {size} data points (samples times "
                f"channels), fewer than its {count} prototypes. Provide more "
                f"samples of {what} {capsule}."
            )


def cluster_prototypes(
    x_train,
    prototypes_per_capsule,
    y_train=None,
    capsule_inputs_are_equal=False,
    batch_version=False,
    **kmeans_params,
):
    """Place prototypes on k-means centers of a measuring module's inputs.

    The four cases of the original anysma:

    - no labels, equal capsule inputs: one k-means with `P` clusters on the
      signals of capsule 0;
    - no labels, different inputs: per capsule `i`, k-means with `k_i`
      clusters on the signals of capsule `i`;
    - labels, equal inputs: per class `i`, k-means with `k_i` clusters on the
      class-`i` samples of capsule 0;
    - labels, different inputs: per class `i`, the class-`i` samples of
      capsule `i`.

    Every channel of a sample counts as one data point. The centers come out
    in capsule order (capsule `i`'s prototypes after capsule `i - 1`'s).

    Args:
        x_train: `(N, K, C, D)`: the module's input signals with a flat atom.
        prototypes_per_capsule: The number of prototypes of each capsule.
        y_train: Optional labels: integers `(N,)` in `0 .. K - 1` or one-hot
            rows `(N, K)`. Every class must be present.
        capsule_inputs_are_equal: Whether all capsules see the same signals
            (then only capsule 0 is read).
        batch_version: Use `MiniBatchKMeans`.
        **kmeans_params: Arguments of the scikit-learn estimator, e.g.
            `random_state`.

    Returns:
        A `ClusterResult`.

    Raises:
        ValueError: For missing classes, a class (or capsule) with fewer data
            points than prototypes, or labels that do not fit.
    """
    if "n_clusters" in kmeans_params:
        raise ValueError(
            "`n_clusters` is set by the prototype distribution; do not pass "
            "it to k-means. Received: n_clusters="
            f"{kmeans_params['n_clusters']!r}"
        )
    x_train = np.asarray(x_train)
    counts = [int(count) for count in prototypes_per_capsule]
    labels = None
    if y_train is not None:
        labels = _check_labels(y_train, x_train.shape[0], len(counts))
    data_sets, n_clusters = _data_set_rows(
        x_train, labels, counts, capsule_inputs_are_equal
    )
    _check_data_set_sizes(
        [len(data) for data in data_sets],
        n_clusters,
        labelled=labels is not None,
        pooled=labels is None and capsule_inputs_are_equal,
    )
    centers, cluster_labels = kmeans(
        data_sets, n_clusters, batch_version=batch_version, **kmeans_params
    )
    prototype_members = [
        data[assigned == cluster]
        for data, assigned, clusters in zip(data_sets, cluster_labels, n_clusters)
        for cluster in range(clusters)
    ]
    # A capsule's members are the members of its prototypes' clusters (one
    # k-means for all capsules hands each capsule its share of the clusters).
    capsule_members = []
    start = 0
    for count in counts:
        capsule_members.append(
            np.concatenate(prototype_members[start : start + count], axis=0)
        )
        start += count
    return ClusterResult(
        centers=np.concatenate(centers, axis=0),
        prototype_members=prototype_members,
        capsule_members=capsule_members,
        pooled=np.concatenate(data_sets, axis=0),
    )


def principal_bases(groups, n_components, **svd_params):
    """Principal subspaces of groups of data points (PCA via `svd`).

    Each group is centered on its mean, then `svd` gives the top
    `n_components` directions: the "SVD tangents" initialization of the
    matrix-based measuring modules.

    Args:
        groups: A list of 2-D arrays `(samples, features)`.
        n_components: The subspace dimension.
        **svd_params: Arguments of `TruncatedSVD`, e.g. `random_state`.

    Returns:
        An array `(len(groups), features, n_components)`.

    Example:

    >>> import numpy as np
    >>> data = np.array([[1.0, 5.0], [3.0, 5.0]])
    >>> np.abs(np.round(principal_bases([data], 1)[0].ravel(), 6)).tolist()
    [1.0, 0.0]
    """
    centered = [
        np.asarray(group, dtype="float64") - np.mean(group, axis=0, keepdims=True)
        if len(group)
        else np.zeros((1, np.shape(group)[-1]))
        for group in groups
    ]
    return np.stack(svd(centered, n_components, **svd_params), axis=0)


# === The steps of a measuring module's `pre_training` ===


def split_params(params):
    """Separate flat k-means arguments and the nested parameter dicts.

    The `**kmeans_params` of `pre_training` may hold k-means arguments
    directly, a dict `kmeans_params={...}`, or both (without repeats), and a
    dict `svd_params={...}` for `TruncatedSVD`.

    Args:
        params: The keyword arguments, a dict.

    Returns:
        A tuple `(kmeans_params, svd_params)` of new dicts.

    Raises:
        ValueError: If a nested value is not a dict or a k-means argument is
            given twice.

    Example:

    >>> split_params({"random_state": 0, "svd_params": {"n_iter": 3}})
    ({'random_state': 0}, {'n_iter': 3})
    """
    params = dict(params)
    nested = {}
    for key in ("kmeans_params", "svd_params"):
        value = params.pop(key, None)
        if value is not None and not isinstance(value, dict):
            raise ValueError(
                f"`{key}` must be a dict of keyword arguments. "
                f"Received: {key}={value!r}"
            )
        nested[key] = dict(value or {})
    duplicates = sorted(set(params) & set(nested["kmeans_params"]))
    if duplicates:
        raise ValueError(
            "k-means parameters were given both as keyword arguments and in "
            f"`kmeans_params`. Received duplicates: {duplicates}"
        )
    kmeans_params = {**params, **nested["kmeans_params"]}
    return kmeans_params, nested["svd_params"]


def check_signals(x_train, prototype_distribution, capsule_inputs_are_equal=False):
    """Validate a measuring module's input signals for pre-training.

    Args:
        x_train: Array-like `(N, K, C, *A)`: the signals of the `K` capsules.
            Shared signals `(N, 1, C, *A)` (from `InputModule(
            sparse_signal=True)`) count as the signals of every capsule.
        prototype_distribution: The number of prototypes of each capsule, a
            list (the canonical `prototype_distribution` of the module).
        capsule_inputs_are_equal: Whether all capsules see the same signals;
            then any number >= 1 of capsules is accepted.

    Returns:
        The signals as a NumPy array `(N, K, C, *A)`; shared signals become a
        broadcast view (no copy).

    Raises:
        ValueError: For a rank below 4, a non-numeric dtype, NaN or infinite
            values, or a wrong number of capsules.

    Example:

    >>> import numpy as np
    >>> check_signals(np.zeros((5, 1, 2, 3)), [2, 2, 2]).shape
    (5, 3, 2, 3)
    """
    x_train = np.asarray(x_train)
    capsule_number = len(prototype_distribution)
    if x_train.ndim < 4:
        raise ValueError(
            "`x_train` must be the module's input signals of shape "
            "(samples, capsules, channels, *atom) (rank >= 4), e.g. from "
            "`capsule.get_module_input(module, x)`. Received: "
            f"x_train.shape={x_train.shape}"
        )
    if not np.issubdtype(x_train.dtype, np.number):
        raise ValueError(f"`x_train` must be numeric. Received: dtype {x_train.dtype}")
    if not np.all(np.isfinite(x_train)):
        raise ValueError("`x_train` contains NaN or infinite values.")
    capsules = x_train.shape[1]
    if capsules == 1 and capsule_number > 1:
        # Shared signals (`InputModule(sparse_signal=True)`): every capsule
        # sees them; a broadcast view costs no memory.
        x_train = np.broadcast_to(
            x_train, (x_train.shape[0], capsule_number) + x_train.shape[2:]
        )
        capsules = capsule_number
    if capsules != capsule_number and not (capsule_inputs_are_equal and capsules >= 1):
        raise ValueError(
            f"`x_train` must have {capsule_number} capsules on axis 1 "
            f"(prototype_distribution={prototype_distribution}). "
            f"Received: x_train.shape={x_train.shape}"
        )
    return x_train


def flatten_atoms(signals):
    """Flatten the atoms of signals `(N, K, C, *A)` to vectors `(N, K, C, D)`.

    Example:

    >>> import numpy as np
    >>> flatten_atoms(np.zeros((5, 3, 2, 4, 4))).shape
    (5, 3, 2, 16)
    """
    signals = np.asarray(signals)
    return signals.reshape(signals.shape[:3] + (-1,))


#: The groups of data points whose principal bases the matrices of each
#: `matrix_scope` get.
_SCOPE_GROUPS = {
    "local": lambda clusters: clusters.prototype_members,
    "global": lambda clusters: [clusters.pooled],
    "capsule_wise": lambda clusters: clusters.capsule_members,
}


def _bases_apply(matrix_scope, features, n_components, owner):
    """Check the scope; warn and return False if the bases cannot be set."""
    if matrix_scope not in _SCOPE_GROUPS:
        raise ValueError(
            f"`matrix_scope` must be one of {list(_SCOPE_GROUPS)}. "
            f"Received: matrix_scope={matrix_scope!r}"
        )
    if n_components > features:
        warnings.warn(
            f"{owner}: the matrices map {features} to {n_components} "
            "dimensions, more than the data has; pre-training keeps the "
            "current matrices and initializes the prototypes only.",
            UserWarning,
        )
        return False
    return True


def scoped_principal_bases(
    clusters,
    matrix_scope,
    features,
    n_components,
    svd_params=None,
    kmeans_params=None,
    owner="The module",
):
    """The principal bases of the clusters for a measuring module's matrices.

    The groups whose principal directions become the matrices depend on the
    scope: all clustered data (`"global"`, one basis), the members of each
    prototype's cluster (`"local"`) or the data of each capsule
    (`"capsule_wise"`); see `principal_bases`.

    Args:
        clusters: The `ClusterResult` of `cluster_prototypes`.
        matrix_scope: `"local"`, `"global"` or `"capsule_wise"`.
        features: The input dimension of the matrices (the flat atom size).
        n_components: The output dimension of the matrices.
        svd_params: Arguments of `TruncatedSVD`.
        kmeans_params: The k-means arguments: their `random_state` is used
            for the SVD as well unless `svd_params` sets its own, so one seed
            makes the whole pre-training reproducible.
        owner: How the warning names the module, e.g. "OmegaDistance `omega`".

    Returns:
        The bases `(groups, features, n_components)`; `None` (with a
        `UserWarning`) when `n_components > features`, so that the caller
        keeps its matrices.

    Example:

    >>> import numpy as np
    >>> signals = np.array([[[[0.0, 0.0]]], [[[2.0, 0.0]]], [[[4.0, 0.0]]]])
    >>> clusters = cluster_prototypes(signals, [1], random_state=0, n_init=1)
    >>> bases = scoped_principal_bases(clusters, "global", 2, 1)
    >>> np.abs(np.round(bases, 6)).tolist()
    [[[1.0], [0.0]]]
    """
    if not _bases_apply(matrix_scope, features, n_components, owner):
        return None
    svd_params = dict(svd_params or {})
    kmeans_params = kmeans_params or {}
    if "random_state" in kmeans_params:
        svd_params = {"random_state": kmeans_params["random_state"], **svd_params}
    groups = _SCOPE_GROUPS[matrix_scope](clusters)
    return principal_bases(groups, n_components, **svd_params)


# === Pre-training over a stream of batches ===


StreamClusters = collections.namedtuple(
    "StreamClusters", ["centers", "estimators", "offsets", "labelled"]
)
StreamClusters.__doc__ = """The result of `cluster_prototypes_stream`.

Attributes:
    centers: `(P, D)`: the cluster centers, in prototype order.
    estimators: The fitted `MiniBatchKMeans`, one per k-means data set.
    offsets: The index of each estimator's first prototype.
    labelled: Whether the batches carried labels.
"""


class _StreamingKMeans:
    """`MiniBatchKMeans.partial_fit` on rows that arrive in pieces.

    The rows are collected into chunks of the estimator's `batch_size` (the
    first chunk: its initialization size, `3 * batch_size` by default, as
    `fit` uses), so the updates do not depend on how the stream was cut and
    memory stays at one chunk.
    """

    def __init__(self, n_clusters, params):
        from sklearn.cluster import MiniBatchKMeans

        self.estimator = MiniBatchKMeans(n_clusters=n_clusters, **params)
        batch_size = self.estimator.batch_size
        init_size = self.estimator.init_size or 3 * batch_size
        self._chunk = max(init_size, n_clusters)
        self._batch_size = batch_size
        self._pending = []
        self._pending_rows = 0
        self.rows = 0

    def add(self, rows):
        if not len(rows):
            return
        self.rows += len(rows)
        self._pending.append(rows)
        self._pending_rows += len(rows)
        if self._pending_rows >= self._chunk:
            pending = np.concatenate(self._pending, axis=0)
            while len(pending) >= self._chunk:
                self._partial_fit(pending[: self._chunk])
                pending = pending[self._chunk :]
                self._chunk = self._batch_size
            self._pending, self._pending_rows = [pending], len(pending)

    def _partial_fit(self, rows):
        # One dtype for every call: scikit-learn's `predict` refuses rows of
        # another dtype than the centers it fitted.
        self.estimator.partial_fit(np.asarray(rows, dtype="float64"))

    def finish(self):
        if self._pending_rows:
            self._partial_fit(np.concatenate(self._pending, axis=0))
            self._pending, self._pending_rows = [], 0
        return self.estimator


def _labelled_signals(batch, capsule_number, labelled):
    """Split a stream item into signals and checked labels."""
    signals, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
    signals = np.asarray(signals)
    if labels is not None:
        labels = _check_labels(
            labels, signals.shape[0], capsule_number, every_class=False
        )
    if labelled is not None and labelled != (labels is not None):
        raise ValueError(
            "Either every batch of the stream carries labels or none does. "
            "Received: a batch " + ("without" if labelled else "with") + " labels"
        )
    return signals, labels


def cluster_prototypes_stream(
    batches, prototypes_per_capsule, capsule_inputs_are_equal=False, **kmeans_params
):
    """`cluster_prototypes` over a stream of batches, with bounded memory.

    One pass over the stream; each k-means of `cluster_prototypes` (the same
    four cases) is a `sklearn.cluster.MiniBatchKMeans` updated with
    `partial_fit` (see `_StreamingKMeans`). Memory holds one chunk of rows
    per k-means, not the data.

    Args:
        batches: An iterable of `(signals, labels)` pairs or of bare signals:
            `(n, K, C, D)` signals with a flat atom (as `flatten_atoms`
            gives), labels as in `cluster_prototypes` or `None`.
        prototypes_per_capsule: The number of prototypes of each capsule.
        capsule_inputs_are_equal: Whether all capsules see the same signals.
        **kmeans_params: Arguments of `MiniBatchKMeans` (e.g.
            `random_state=0`, `batch_size=2048`).

    Returns:
        A `StreamClusters`.

    Raises:
        ValueError: For an empty stream, labels in some batches only, or a
            class (or capsule) with fewer data points than prototypes.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> points = np.concatenate([rng.normal(0, 0.1, 500), rng.normal(9, 0.1, 500)])
    >>> batches = [points[i::10].reshape(-1, 1, 1, 1) for i in range(10)]
    >>> clusters = cluster_prototypes_stream(batches, [2], random_state=0)
    >>> sorted(np.round(clusters.centers.ravel()).tolist())
    [0.0, 9.0]
    """
    if "n_clusters" in kmeans_params:
        raise ValueError(
            "`n_clusters` is set by the prototype distribution; do not pass "
            "it to k-means. Received: n_clusters="
            f"{kmeans_params['n_clusters']!r}"
        )
    counts = [int(count) for count in prototypes_per_capsule]
    clusterers, n_clusters, labelled = None, None, None
    for batch in batches:
        signals, labels = _labelled_signals(batch, len(counts), labelled)
        labelled = labels is not None
        data_sets, n_clusters = _data_set_rows(
            signals, labels, counts, capsule_inputs_are_equal
        )
        if clusterers is None:
            clusterers = [
                _StreamingKMeans(clusters, kmeans_params) for clusters in n_clusters
            ]
        for clusterer, rows in zip(clusterers, data_sets):
            clusterer.add(rows)
    if clusterers is None:
        raise ValueError("The stream of batches is empty.")
    _check_data_set_sizes(
        [clusterer.rows for clusterer in clusterers],
        n_clusters,
        labelled=labelled,
        pooled=not labelled and capsule_inputs_are_equal,
    )
    estimators = [clusterer.finish() for clusterer in clusterers]
    return StreamClusters(
        centers=np.concatenate([e.cluster_centers_ for e in estimators], axis=0),
        estimators=estimators,
        offsets=np.cumsum([0] + n_clusters[:-1]).tolist(),
        labelled=labelled,
    )


def scoped_principal_bases_stream(
    batches,
    clusters,
    prototypes_per_capsule,
    matrix_scope,
    n_components,
    capsule_inputs_are_equal=False,
    owner="The module",
):
    """`scoped_principal_bases` over a second pass of the stream.

    Each data point is assigned to its nearest center (the estimator's
    `predict`, as the members of `cluster_prototypes` are), and each group of
    the scope accumulates its count, sum and scatter matrix in float64,
    shifted by the mean of the group's centers against cancellation. The
    bases are the top eigenvectors of the centered scatter matrices: the
    principal directions that `principal_bases` finds with an SVD of the
    centered group (up to the signs, and rotations within equal
    eigenvalues). Memory: one `D x D` matrix per group.

    Args:
        batches: The same stream as for `cluster_prototypes_stream`, read
            again.
        clusters: Its `StreamClusters`.
        prototypes_per_capsule: The number of prototypes of each capsule.
        matrix_scope: `"local"`, `"global"` or `"capsule_wise"`.
        n_components: The output dimension of the matrices.
        capsule_inputs_are_equal: Whether all capsules see the same signals.
        owner: How the warning names the module.

    Returns:
        The bases `(groups, D, n_components)`, or `None` (with a
        `UserWarning`) when `n_components > D`.
    """
    counts = [int(count) for count in prototypes_per_capsule]
    features = clusters.centers.shape[-1]
    if not _bases_apply(matrix_scope, features, n_components, owner):
        return None
    capsule_of_prototype = np.repeat(np.arange(len(counts)), counts)
    group_of_prototype = {
        "local": np.arange(len(capsule_of_prototype)),
        "capsule_wise": capsule_of_prototype,
        "global": np.zeros_like(capsule_of_prototype),
    }[matrix_scope]
    group_number = int(group_of_prototype.max()) + 1
    centers = np.asarray(clusters.centers, dtype="float64")
    shifts = np.stack(
        [
            centers[group_of_prototype == group].mean(axis=0)
            for group in range(group_number)
        ]
    )
    sizes = np.zeros(group_number)
    sums = np.zeros((group_number, features))
    scatters = np.zeros((group_number, features, features))
    labelled = clusters.labelled
    for batch in batches:
        signals, labels = _labelled_signals(batch, len(counts), labelled)
        data_sets, _ = _data_set_rows(signals, labels, counts, capsule_inputs_are_equal)
        for estimator, offset, rows in zip(
            clusters.estimators, clusters.offsets, data_sets
        ):
            if not len(rows):
                continue
            rows = np.asarray(rows, dtype="float64")
            groups = group_of_prototype[offset + estimator.predict(rows)]
            for group in np.unique(groups):
                shifted = rows[groups == group] - shifts[group]
                sizes[group] += len(shifted)
                sums[group] += shifted.sum(axis=0)
                scatters[group] += shifted.T @ shifted
    bases = []
    for size, total, scatter in zip(sizes, sums, scatters):
        centered = scatter - np.outer(total, total) / max(size, 1.0)
        _, eigenvectors = np.linalg.eigh(centered)
        bases.append(eigenvectors[:, ::-1][:, :n_components])
    return np.stack(bases, axis=0)
