"""The figures say what they should: one colour per class across panels, rows in the order of the
Hungarian match, the cluster means where the codes are, a y-range around the curves."""

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba

from vaeclust_tutorial import metrics, plots


def test_hungarian_match_is_the_map_hungarian_accuracy_scores():
    rng = np.random.default_rng(0)
    labels, clusters = rng.integers(0, 5, 400), rng.integers(0, 7, 400)
    m = metrics.contingency(labels, clusters)
    match = metrics.hungarian_match(m)
    assert sorted(match[match >= 0].tolist()) == list(range(5))        # each class once
    assert (match < 0).sum() == 2                                      # K = 7 > C = 5
    scored = sum(m[k, c] for k, c in enumerate(match) if c >= 0) / m.sum()
    assert scored == pytest.approx(metrics.hungarian_accuracy(labels, clusters))


def test_hungarian_match_rejects_a_vector():
    with pytest.raises(ValueError, match="2-D"):
        metrics.hungarian_match([1, 2, 3])


def test_contingency_rows_are_ordered_by_the_match():
    # cluster 0 holds class 2, cluster 1 class 0, cluster 2 class 1, cluster 3 nothing matched
    m = np.array([[0, 1, 40], [30, 2, 0], [1, 50, 3], [5, 5, 5]])
    fig = plots.contingency_figure(m, ["a", "b", "c"])
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows == ["cluster 1", "cluster 2", "cluster 0", "cluster 3"]
    image = fig.axes[0].images[0].get_array()
    assert np.array_equal(np.diag(image[:3]), [30, 50, 40])            # the match on the diagonal
    colours = [t.get_color() for t in fig.axes[0].get_yticklabels()]
    assert colours[:3] == ["C0", "C1", "C2"] and colours[3] == "0.4"


def test_latent_figure_colours_a_cluster_like_its_class_and_draws_the_means():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0]], dtype=float)
    labels = np.repeat([0, 1, 2], 100)
    mu = centres[labels] + rng.normal(0, 0.5, (300, 3))
    clusters = np.array([2, 0, 1])[labels]                             # cluster 2 is class 0, ...
    fig = plots.latent_figure(torch.tensor(mu), labels, clusters, means=centres[[1, 2, 0]])
    assert len(fig.axes) == 2
    crosses = [c for c in fig.axes[1].collections if len(c.get_offsets()) == 3][-1]
    # the cross of cluster k sits on its class centre and wears that class's colour
    expected = [to_rgba("C1"), to_rgba("C2"), to_rgba("C0")]
    assert np.allclose(crosses.get_facecolors(), expected)
    points = fig.axes[1].collections[0]
    first = np.flatnonzero(labels[np.random.default_rng(0).permutation(300)] == 0)[0]
    assert np.allclose(points.get_facecolors()[first][:3], to_rgba("C0")[:3])
    assert fig.axes[0].get_xlabel() == "principal axis 1"


def test_cluster_colours_greys_a_cluster_with_no_class():
    labels = np.array([0, 0, 1, 1, 1])
    clusters = np.array([1, 1, 0, 0, 2])
    assert plots.cluster_colours(labels, clusters, 3)[:2] == ["C1", "C0"]
    assert plots.cluster_colours(labels, clusters, 3)[2] not in ("C0", "C1")


def test_purity_curves_show_the_band_and_keep_given_colours():
    runs = [[{"epoch": e, "test_purity": 0.70 + 0.01 * e} for e in range(1, 6)]]
    fig = plots.purity_curves_figure({"b": runs}, target=0.8, colours={"b": "C3"})
    low, high = fig.axes[0].get_ylim()
    assert 0.6 < low < 0.71 and 0.8 < high < 0.9
    assert fig.axes[0].lines[0].get_color() == "C3"


def test_toy_figure_colours_a_region_like_the_blob_it_stands_for():
    from vaeclust_tutorial.toy import toy_cluster_vae, toy_mixture

    toy = toy_mixture(n=200, k=4, seed=0)
    torch.manual_seed(0)
    model = toy_cluster_vae(n_clusters=4)
    snap = plots.toy_snapshot(model, toy.images, 1, n_grid=20)
    fig = plots.toy_figure([snap], toy.labels.numpy())
    colours = plots.cluster_colours(toy.labels.numpy(), snap["clusters"], 4)
    image = fig.axes[0].images[0].get_array()
    k = int(snap["regions"][0, 0])
    assert np.allclose(image[0, 0], to_rgba(colours[k], 0.2))


def test_matched_generations_put_models_side_by_side_one_row_per_class():
    from vaeclust_tutorial import preset
    from vaeclust_tutorial.inference import predict
    from vaeclust_tutorial.models import build_model

    torch.manual_seed(0)
    models = {"two clusters": build_model(preset("article-b", n_clusters=2)).eval(),
              "ten clusters": build_model(preset("article-b")).eval()}
    images = torch.rand(60, 1, 28, 28)
    labels = np.asarray(predict(models["two clusters"], images)) % 3        # classes 0 and 1 (and no 2)
    fig = plots.matched_generations_figure(models, images, labels, ["a", "b", "c"], per_cluster=4)
    axes = np.array(fig.axes).reshape(3, 2)
    assert [ax.get_title() for ax in axes[0]] == ["two clusters", "ten clusters"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["a", "b", "c"]
    # two clusters cannot cover three classes: one row of the first column says so; the second has images
    assert sum(any(t.get_text() == "no cluster" for t in ax.texts) for ax in axes[:, 0]) == 1
    assert all(len(ax.images) == 1 for ax in axes[:, 1])
    assert axes[0, 1].images[0].get_array().shape[1] == 4 * 28 + 5             # per_cluster images a row
    with pytest.raises(ValueError, match="one class per image: 60 images"):
        plots.matched_generations_figure(models, images, labels[:10], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"labels must lie in 0..0"):
        plots.matched_generations_figure(models, images, labels, ["a"])
    with pytest.raises(ValueError, match="models is empty"):
        plots.matched_generations_figure({}, images, labels, ["a", "b", "c"])
