"""The k-means start of the clusters (cluster_init="kmeans"): what it sets, determinism, resume, errors."""

import numpy as np
import pytest
import torch

from vaeclust_tutorial import preset, train
from vaeclust_tutorial.cluster_init import kmeans_init_
from vaeclust_tutorial.config import apply_quick
from vaeclust_tutorial.metrics import clustering_scores
from vaeclust_tutorial.toy import toy_cluster_vae
from vaeclust_tutorial.toy import toy_mixture, toy_run


class PassThrough(torch.nn.Module):
    def forward(self, x):
        return x, torch.zeros_like(x)


def _no_clock(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_kmeans_init_sets_the_means_to_centroids_and_the_classifier_to_the_assignments():
    torch.manual_seed(0)
    toy = toy_mixture(n=2000, k=4, seed=0, radius=4.0, std=0.5)
    model = toy_cluster_vae(n_clusters=4)
    model.encoder = PassThrough()   # mu(x) = x: the k-means clusters are the blobs
    assigned = kmeans_init_(model, toy.images, seed=0, classifier_epochs=3)

    assert assigned.shape == (2000,) and set(np.unique(assigned)) == {0, 1, 2, 3}
    assert clustering_scores(toy.labels.numpy(), assigned)["purity"] > 0.99
    for c in range(4):    # each mean is the centroid of the points assigned to it
        centroid = toy.images[torch.as_tensor(assigned == c)].mean(0)
        assert torch.allclose(model.means[c].detach(), centroid, atol=1e-3)
    agree = (model.classifier(toy.images).argmax(1).numpy() == assigned).mean()
    assert agree > 0.97, f"p(y|z) agrees with the k-means assignment on only {agree:.1%}"


def test_the_kmeans_start_breaks_the_symmetry_the_article_start_cannot_leave():
    # Notebook 05: with lambda = 5 the toy stays in the symmetric solution (means at 0, one
    # cluster). Started from k-means, the same run finds the four blobs.
    article = toy_run(epochs=6, lam=5.0)
    started = toy_run(epochs=6, lam=5.0, cluster_init="kmeans", cluster_init_epoch=2)
    assert article.metrics["test"]["purity"] < 0.6
    assert started.metrics["test"]["purity"] > 0.9
    assert "kmeans_train_purity" in started.history[1] and "kmeans_train_purity" not in started.history[0]


def test_a_kmeans_run_is_deterministic_and_resumes_exactly(tmp_path, mnist_small):
    cfg = preset("article-a", epochs=3, train_limit=500, test_limit=300, device="cpu",
                 cluster_init="kmeans", cluster_init_epoch=1)
    whole = train(cfg, tmp_path / "whole", splits=mnist_small, progress=False)
    first = preset("article-a", epochs=2, train_limit=500, test_limit=300, device="cpu",
                   cluster_init="kmeans", cluster_init_epoch=1)
    train(first, tmp_path / "split", splits=mnist_small, progress=False)
    resumed = train(cfg, tmp_path / "split", resume=True, splits=mnist_small, progress=False)
    assert _no_clock(resumed.history) == _no_clock(whole.history)
    assert resumed.metrics["test"] == whole.metrics["test"]
    assert 0 < whole.history[0]["kmeans_train_purity"] <= 1
    # what the start guarantees: epoch 1 trains as the article's start does; then the means are
    # k-means centroids, spread apart, where the article's start keeps all K together (symmetric)
    plain = train(preset("article-a", epochs=1, train_limit=500, test_limit=300, device="cpu"),
                  splits=mnist_small, progress=False)
    assert plain.history[0]["loss"] == whole.history[0]["loss"]
    spread = lambda model: torch.cdist(model.means.detach(), model.means.detach()).max()
    assert spread(whole.model) > 20 * spread(plain.model)


def test_bad_cluster_init_settings_name_the_value_and_the_fix(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown cluster_init 'gmm'; valid values are \['zeros', 'kmeans'\]"):
        preset(cluster_init="gmm")
    with pytest.raises(ValueError, match=r"cluster_init_epoch=0 is invalid"):
        preset(cluster_init="kmeans", cluster_init_epoch=0)
    with pytest.raises(ValueError, match=r"cluster_init_epoch=5 leaves no epoch.*epochs=5"):
        preset(cluster_init="kmeans", cluster_init_epoch=5, epochs=5)
    monkeypatch.setenv("VAECLUST_QUICK", "1")  # quick mode moves the start inside its two epochs
    assert apply_quick(preset(cluster_init="kmeans", cluster_init_epoch=5)).cluster_init_epoch == 1
