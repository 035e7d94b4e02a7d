"""Clustering metrics on cases whose answers are known."""

import numpy as np
import pytest

from vaeclust_tutorial import metrics


def test_perfect_clustering_under_relabelling():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([2, 2, 0, 0, 1, 1])
    scores = metrics.clustering_scores(y, pred)
    assert scores == {"purity": 1.0, "accuracy": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0),
                      "n_samples": 6}


def test_hand_computed_contingency_purity_and_hungarian():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    m = metrics.contingency(y, pred)
    np.testing.assert_array_equal(m, [[2, 0, 0], [1, 2, 1], [0, 0, 2]])
    assert metrics.purity(y, pred) == pytest.approx(6 / 8)
    assert metrics.hungarian_accuracy(y, pred) == pytest.approx(6 / 8)


def test_purity_rises_with_k_but_hungarian_does_not():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 1000)
    singletons = np.arange(1000)               # K = N: every sample alone
    assert metrics.purity(y, singletons) == 1.0
    assert metrics.hungarian_accuracy(y, singletons) == pytest.approx(10 / 1000)


def test_two_clusters_sharing_a_class_count_for_purity_only():
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1, 1, 1])          # cluster 1 is half class 0, half class 1
    assert metrics.purity(y, pred) == pytest.approx(4 / 6)
    split = np.array([0, 0, 2, 2, 1, 1])         # class 0 split over clusters 0 and 2
    assert metrics.purity(y, split) == 1.0
    assert metrics.hungarian_accuracy(y, split) == pytest.approx(4 / 6)


def test_empty_clusters_and_sizes():
    y = np.array([0, 1, 1])
    pred = np.array([0, 3, 3])                   # clusters 1 and 2 are empty
    m = metrics.contingency(y, pred, n_clusters=5, n_classes=4)
    assert m.shape == (5, 4) and m.sum() == 3
    assert metrics.purity(y, pred) == 1.0 and metrics.hungarian_accuracy(y, pred) == 1.0
    np.testing.assert_array_equal(metrics.cluster_to_class(y, pred, n_clusters=5), [0, -1, -1, 1, -1])


def test_random_labels_score_near_chance():
    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 10, 20000), rng.integers(0, 10, 20000)
    assert abs(metrics.ari(y, pred)) < 0.01 and metrics.nmi(y, pred) < 0.01
    assert metrics.hungarian_accuracy(y, pred) < 0.12


@pytest.mark.parametrize("y, pred, match", [
    (np.zeros((2, 2), int), np.zeros((2, 2), int), "1-D"),
    (np.zeros(3, int), np.zeros(4, int), "same shape"),
    (np.zeros(0, int), np.zeros(0, int), "empty"),
    (np.array([0.5, 1.0]), np.array([0, 1]), "integer"),
    (np.array([-1, 0]), np.array([0, 1]), "non-negative"),
])
def test_bad_shapes_are_refused(y, pred, match):
    with pytest.raises(ValueError, match=match):
        metrics.clustering_scores(y, pred)


def test_cluster_report_reads_splits_mixtures_and_orphans():
    assert metrics.cluster_report([[50, 0], [35, 15], [0, 30]]) == [
        "0 is the majority of clusters 0 and 1", "cluster 1 mixes 0 (70 %), 1 (30 %)"]
    assert metrics.cluster_report([[30, 20], [30, 0]], classes=["four", "nine"]) == [
        "four is the majority of clusters 0 and 1", "cluster 0 mixes four (60 %), nine (40 %)",
        "nine is the majority of no cluster; its images go to clusters 0 (100 %)"]
    assert metrics.cluster_report(np.eye(3, dtype=int) * 10) == []          # one class per cluster: nothing to say
    assert metrics.cluster_report([[6] + [1] * 9, [0, 9] + [0] * 8])[0] == "cluster 0 mixes 0 (40 %), and others"
