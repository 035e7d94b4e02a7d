"""Clustering metrics: purity (the article's), Hungarian accuracy, NMI, ARI.

Introduced in notebook 01; notebook 03 explains why purity and Hungarian accuracy differ.

* **purity** labels each cluster with its most common true class (several clusters
  may share a class) and counts the samples that agree. The article's "accuracy".
  It rises with the number of clusters K, reaching 1 when every sample is alone.
* **Hungarian accuracy** matches clusters to classes one-to-one
  (``scipy.optimize.linear_sum_assignment``) and counts agreements; clusters left
  unmatched (when K > number of classes) count as wrong. What DEC and VaDE report.
* **NMI** and **ARI** from scikit-learn: permutation invariant, 1 for a perfect match.

All functions take 1-D integer arrays ``labels_true`` and ``labels_pred`` of
shape (n_samples,), and are invariant to relabelling the clusters:

>>> purity([0, 0, 1, 1], [1, 1, 0, 0])
1.0
>>> hungarian_accuracy([0, 0, 1, 1], [0, 0, 0, 0])
0.5
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def _as_labels(name, a):
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n_samples,), got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {a.dtype}")
    if a.size and a.min() < 0:
        raise ValueError(f"{name} must hold non-negative labels, got {a.min()}")
    return a.astype(np.int64)


def _check_pair(labels_true, labels_pred):
    t = _as_labels("labels_true", labels_true)
    p = _as_labels("labels_pred", labels_pred)
    if t.shape != p.shape:
        raise ValueError(f"labels_true and labels_pred must have the same shape, got {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("labels_true and labels_pred are empty: need at least one sample")
    return t, p


def contingency(labels_true, labels_pred, n_clusters: int | None = None,
                n_classes: int | None = None) -> np.ndarray:
    """Counts of shape (n_clusters, n_classes): entry [k, c] = samples of class c in cluster k.

    Sizes default to the largest label + 1; pass them to keep empty clusters/classes as zero rows/columns.
    """
    t, p = _check_pair(labels_true, labels_pred)
    k = max(int(p.max()) + 1, n_clusters or 0)
    c = max(int(t.max()) + 1, n_classes or 0)
    m = np.zeros((k, c), dtype=np.int64)
    np.add.at(m, (p, t), 1)
    return m


def purity(labels_true, labels_pred) -> float:
    """Fraction of samples whose cluster's majority class is their class, in [0, 1]."""
    m = contingency(labels_true, labels_pred)
    return float(m.max(1).sum() / m.sum())


def hungarian_accuracy(labels_true, labels_pred) -> float:
    """Accuracy under the best one-to-one map of clusters to classes, in [0, 1].

    With more clusters than classes, only as many clusters as classes get a class;
    samples in the others count as errors (so K = 20 cannot beat the best 10 clusters).
    """
    m = contingency(labels_true, labels_pred)
    match = hungarian_match(m)
    return float(m[np.flatnonzero(match >= 0), match[match >= 0]].sum() / m.sum())


def hungarian_match(matrix) -> np.ndarray:
    """The class each cluster gets in the best one-to-one map of a (K, C) contingency matrix
    (the map Hungarian accuracy scores); -1 for a cluster left without a class (K > C).
    The figures colour and order clusters by it, so a cluster looks like the class it stands for
    (notebooks 01-06; notebook 06 orders the generations by it).

    >>> hungarian_match([[0, 9], [8, 1], [3, 0]]).tolist()
    [1, 0, -1]
    """
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"a contingency matrix is 2-D (clusters, classes), got shape {m.shape}")
    rows, cols = linear_sum_assignment(m, maximize=True)
    out = np.full(m.shape[0], -1)
    out[rows] = cols
    return out


def cluster_to_class(labels_true, labels_pred, n_clusters: int | None = None) -> np.ndarray:
    """The majority class of each cluster (-1 for an empty cluster): the purity labelling."""
    m = contingency(labels_true, labels_pred, n_clusters=n_clusters)
    out = m.argmax(1)
    out[m.sum(1) == 0] = -1
    return out


def nmi(labels_true, labels_pred) -> float:
    t, p = _check_pair(labels_true, labels_pred)
    return float(normalized_mutual_info_score(t, p))


def ari(labels_true, labels_pred) -> float:
    t, p = _check_pair(labels_true, labels_pred)
    return float(adjusted_rand_score(t, p))


def clustering_scores(labels_true, labels_pred) -> dict:
    """All four scores and the sample count, as a dict (what the CLI prints)."""
    t, p = _check_pair(labels_true, labels_pred)
    return {"purity": purity(t, p), "accuracy": hungarian_accuracy(t, p),
            "nmi": nmi(t, p), "ari": ari(t, p), "n_samples": int(t.size)}


def cluster_report(matrix, classes=None, mixed_below: float = 0.8) -> list[str]:
    """A (K, C) contingency matrix read out in words: the classes that are the majority of several
    clusters (split), the clusters whose majority holds less than ``mixed_below`` of them (mixed),
    and the classes that are the majority of no cluster. Notebooks 03 and 05 print it beside the
    matrix, so the text always describes the model it stands next to.

    >>> cluster_report([[50, 0], [35, 15], [0, 30]])
    ['0 is the majority of clusters 0 and 1', 'cluster 1 mixes 0 (70 %), 1 (30 %)']
    """
    m = np.asarray(matrix)
    names = [str(c) for c in range(m.shape[1])] if classes is None else list(classes)
    sizes = m.sum(1)
    majority = np.where(sizes > 0, m.argmax(1), -1)
    lines = []
    for c in range(m.shape[1]):
        owners = np.flatnonzero(majority == c)
        if len(owners) > 1:
            lines.append(f"{names[c]} is the majority of clusters {', '.join(map(str, owners[:-1]))} and {owners[-1]}")
    for k in np.flatnonzero(sizes):
        share = m[k] / sizes[k]
        if share.max() < mixed_below:
            top = [c for c in np.argsort(-share) if share[c] >= 0.1]
            rest = ", and others" if share[top].sum() < 0.9 else ""
            lines.append(f"cluster {k} mixes " + ", ".join(f"{names[c]} ({share[c]:.0%})".replace("%)", " %)")
                                                          for c in top) + rest)
    for c in range(m.shape[1]):
        if c not in majority and m[:, c].sum():
            where = [k for k in np.argsort(-m[:, c]) if m[k, c] >= 0.1 * m[:, c].sum()]
            lines.append(f"{names[c]} is the majority of no cluster; its images go to clusters "
                         + ", ".join(f"{k} ({m[k, c] / m[:, c].sum():.0%})".replace("%)", " %)") for k in where))
    return lines
