"""The two-step baseline on the toy (notebook 05, section 6): a plain VAE on 2-D points, then
k-means and a Gaussian mixture on its codes."""

import numpy as np
import torch

from vaeclust_tutorial.baselines import train_vae
from vaeclust_tutorial.models import VAEOutput
from vaeclust_tutorial.toy import toy_cluster_vae, toy_mixture, toy_two_step, toy_vae


def test_toy_vae_is_the_clustering_toy_without_classifier_and_means():
    vae, cluster = toy_vae(), toy_cluster_vae(n_clusters=8)
    shapes = lambda m: [p.shape for p in m.parameters()]   # noqa: E731
    assert shapes(vae) == shapes(cluster.encoder) + shapes(cluster.decoder)
    out = vae(torch.randn(5, 2))
    assert isinstance(out, VAEOutput)
    assert out.x_hat.shape == (5, 2) and out.mu.shape == (5, 2) and out.logvar.shape == (5, 2)


def test_train_vae_accepts_points_as_well_as_images():
    toy = toy_mixture(n=400, k=4, seed=0)
    history = train_vae(toy_vae(), toy.images, epochs=3, lam=50.0, batch_size=20, seed=0, progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]


def test_toy_two_step_scores_both_methods_and_is_seeded():
    a = toy_two_step(epochs=2, k=4, n_points=400, seed=1)
    b = toy_two_step(epochs=2, k=4, n_points=400, seed=1)
    assert set(a) == {"k-means", "Gaussian mixture"}
    for method, (scores, pred) in a.items():
        assert 0.0 <= scores["accuracy"] <= scores["purity"] <= 1.0
        assert scores["n_samples"] == 400 and pred.shape == (400,)
        assert pred.max() < 4
        np.testing.assert_array_equal(pred, b[method][1])


def test_toy_two_step_finds_four_separated_blobs():
    # Four blobs far apart: a plain VAE keeps them apart in its codes and k-means finds them.
    scores, _ = toy_two_step(epochs=5, k=4, n_points=800, radius=6.0, std=0.5, seed=0)["k-means"]
    assert scores["accuracy"] > 0.95
