"""Initial prototypes and matrices of the estimators, from weighted data.

Every function takes the sample weights into account, so that an integer
weight acts like repeating the sample.
"""

import numpy as np

from anysma import pre_training

INITIALIZATIONS = ("class_mean", "kmeans", "random")

# Several prototypes of one class that start at the same point would get the
# same gradient forever (only the first wins the competition); they are
# moved apart by this fraction of the class's standard deviation.
_SPREAD = 0.05


def _weighted_mean(rows, weights):
    return np.average(rows, axis=0, weights=weights)


def _class_weights(weights):
    """The weights of a group of samples; uniform if they are all zero."""
    total = weights.sum()
    return weights if total > 0 else np.ones_like(weights)


def _spread(center, count, rows, weights, rng):
    """`count` points around `center`, the first one on it."""
    scale = np.sqrt(np.average((rows - center) ** 2, axis=0, weights=weights))
    scale = np.where(scale > 0, scale, 1.0)
    offsets = _SPREAD * scale * rng.standard_normal((count, rows.shape[1]))
    offsets[0] = 0.0
    return center + offsets


def _kmeans(rows, weights, count, rng):
    """Weighted k-means centers and the cluster index of every row."""
    from sklearn.cluster import KMeans

    kmeans = KMeans(
        n_clusters=count, n_init=3, random_state=rng.randint(np.iinfo(np.int32).max)
    )
    kmeans.fit(rows, sample_weight=weights)
    return kmeans.cluster_centers_, kmeans.labels_


def initial_prototypes(x, y, sample_weight, distribution, method, rng):
    """Initial prototypes of every class, with the data they stand for.

    Args:
        x: Features `(samples, features)`, float64.
        y: Class indices `(samples,)` in `[0, len(distribution))`.
        sample_weight: Non-negative weights `(samples,)`.
        distribution: The number of prototypes of every class.
        method: `"class_mean"`: the weighted class mean (further prototypes
            of the class slightly around it); `"kmeans"`: weighted k-means
            centers of the class (the class mean for one prototype);
            `"random"`: class samples drawn with probability proportional
            to their weight.
        rng: A `numpy.random.RandomState`.

    Returns:
        A tuple `(prototypes, groups)`: the prototypes `(P, features)` in
        class-major order, and per prototype the pair `(rows, weights)` of
        the samples it stands for (its k-means cluster, else its class).

    Raises:
        ValueError: If k-means is asked for more prototypes than a class has
            distinct samples.
    """
    prototypes, groups = [], []
    for label, count in enumerate(distribution):
        member = y == label
        rows, weights = x[member], _class_weights(sample_weight[member])
        if method == "kmeans" and count > 1:
            distinct = np.unique(rows, axis=0).shape[0]
            if distinct < count:
                raise ValueError(
                    f"initialization='kmeans' needs at least as many distinct "
                    f"samples as prototypes in every class; class index {label} "
                    f"has {distinct} distinct sample(s) for {count} prototypes. "
                    "Use fewer prototypes_per_class or "
                    "initialization='class_mean'."
                )
            centers, assigned = _kmeans(rows, weights, count, rng)
            prototypes.append(centers)
            groups.extend(
                (rows[assigned == cluster], weights[assigned == cluster])
                for cluster in range(count)
            )
            continue
        if method == "random":
            candidates = np.flatnonzero(weights > 0)
            probabilities = weights[candidates] / weights[candidates].sum()
            chosen = rng.choice(
                candidates,
                size=count,
                replace=candidates.size < count,
                p=probabilities,
            )
            points = rows[chosen].copy()
            if candidates.size < count:
                points = _spread(points[0], count, rows, weights, rng)
        else:
            points = _spread(_weighted_mean(rows, weights), count, rows, weights, rng)
        prototypes.append(points)
        groups.extend((rows, weights) for _ in range(count))
    return np.concatenate(prototypes, axis=0), groups


def principal_directions(rows, weights, n_components, rng):
    """Orthonormal principal directions of weighted data, `(features, n)`.

    The rows are centered on their weighted mean and scaled by the root of
    their weights, then `anysma.pre_training.svd` finds the directions (and
    completes them to `n_components` when the data has a lower rank).
    """
    weights = _class_weights(np.asarray(weights, dtype="float64"))
    centered = rows - _weighted_mean(rows, weights)
    scaled = centered * np.sqrt(weights / weights.sum())[:, None]
    seed = rng.randint(np.iinfo(np.int32).max)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pre_training.svd([scaled], n_components, random_state=seed)[0]
