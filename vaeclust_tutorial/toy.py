"""The 2-D toy of notebooks 02 and 05: a Gaussian mixture, a small MLP clustering VAE, a run in seconds."""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig
from .data import Split
from .models import VAE, Classifier, ClusterVAE, keras_init_


def toy_mixture(n: int = 2000, k: int = 4, seed: int = 0, radius: float = 4.0, std: float = 0.7) -> Split:
    """A 2-D Gaussian mixture: k clusters of std ``std`` on a circle of radius ``radius``. Notebook 02.

    Returns a :class:`~vaeclust_tutorial.data.Split` whose ``images`` are the points (n, 2) and
    ``labels`` their component.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    angles = 2 * torch.pi * labels.float() / k
    centres = radius * torch.stack([angles.cos(), angles.sin()], 1)          # (n, 2)
    points = centres + std * torch.randn(n, 2, generator=g)
    return Split(name="toy-mixture", split="train", images=points, labels=labels,
                 classes=tuple(f"component {i}" for i in range(k)))


class MLPEncoder(nn.Module):
    """x (B, n) -> (mu, logvar) (B, d) with one hidden layer."""

    def __init__(self, *, in_dim: int = 2, latent_dim: int = 2, hidden_dim: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU())
        self.mu, self.logvar = nn.Linear(hidden_dim, latent_dim), nn.Linear(hidden_dim, latent_dim)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


def _toy_decoder(latent_dim: int, hidden_dim: int, in_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, in_dim))


def toy_cluster_vae(*, in_dim: int = 2, latent_dim: int = 2, n_clusters: int = 4,
                    hidden_dim: int = 64) -> ClusterVAE:
    """A small MLP clustering VAE for 2-D points, trained in seconds. Notebook 02."""
    return keras_init_(ClusterVAE(MLPEncoder(in_dim=in_dim, latent_dim=latent_dim, hidden_dim=hidden_dim),
                                  _toy_decoder(latent_dim, hidden_dim, in_dim),
                                  Classifier(latent_dim=latent_dim, hidden_dim=hidden_dim, n_clusters=n_clusters),
                                  n_clusters=n_clusters, latent_dim=latent_dim))


def toy_run(*, epochs: int = 40, k: int = 4, n_points: int = 2000, radius: float = 4.0, std: float = 0.7,
            on_epoch_end=None, **overrides):
    """Train :func:`toy_cluster_vae` on :func:`toy_mixture`; returns a
    :class:`~vaeclust_tutorial.training.TrainResult`.

    Seconds on a CPU. Defaults: ``k`` = 4 blobs of std ``std`` on a circle of radius ``radius``,
    K = ``n_clusters`` = 4, lambda 50, batch 20; ``overrides`` change any
    :class:`~vaeclust_tutorial.config.TrainConfig` field. Notebooks 02 and 05.
    """
    from .training import train

    fields = dict(epochs=epochs, batch_size=20, lam=50.0, n_clusters=k, latent_dim=2, device="cpu")
    cfg = TrainConfig(**{**fields, **overrides})
    toy = toy_mixture(n=n_points, k=k, seed=0, radius=radius, std=std)
    torch.manual_seed(cfg.seed)
    model = toy_cluster_vae(n_clusters=cfg.n_clusters, latent_dim=cfg.latent_dim)
    return train(cfg, splits=(toy, toy), model=model, progress=False, on_epoch_end=on_epoch_end)


def toy_vae(*, in_dim: int = 2, latent_dim: int = 2, hidden_dim: int = 64) -> VAE:
    """The plain VAE of eq. (1) with the encoder and decoder of :func:`toy_cluster_vae` (no
    classifier, no cluster means): the first step of the two-step baseline. Notebook 05."""
    return keras_init_(VAE(MLPEncoder(in_dim=in_dim, latent_dim=latent_dim, hidden_dim=hidden_dim),
                           _toy_decoder(latent_dim, hidden_dim, in_dim)))


def toy_two_step(*, epochs: int = 40, k: int = 4, n_clusters: int | None = None, seed: int = 0,
                 lam: float = 50.0, batch_size: int = 20, n_points: int = 2000, radius: float = 4.0,
                 std: float = 0.7) -> dict:
    """The two-step baseline on the toy, at the budget of :func:`toy_run`: a plain VAE
    (:func:`toy_vae`) trained on the same points for the same epochs, batch size, lambda and
    optimiser, then k-means and a Gaussian mixture on its codes mu(x). Notebook 05.

    Returns :func:`~vaeclust_tutorial.baselines.two_step_scores`' dict
    ``{method: (scores, predicted clusters)}``, scored on the training points as toy_run is.
    """
    from .baselines import latent_means, train_vae, two_step_scores

    toy = toy_mixture(n=n_points, k=k, seed=0, radius=radius, std=std)
    torch.manual_seed(seed)
    model = toy_vae()
    train_vae(model, toy.images, epochs=epochs, lam=lam, batch_size=batch_size, seed=seed, progress=False)
    return two_step_scores(latent_means(model, toy.images), toy.labels, n_clusters=n_clusters or k, seed=seed)
