"""The two-step approach the article argues against: train a plain VAE, then cluster its codes.

Introduced in notebook 01: :func:`train_vae` minimises eq. (1); :func:`two_step_scores`
clusters the latent means with k-means and a Gaussian mixture (scikit-learn) and
scores both with the same metrics as the one-step model.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from .config import progress_wanted
from .losses import vae_loss
from .metrics import clustering_scores
from .inference import latent_means  # noqa: F401  (notebook 01 calls it from here)
from .models import VAE
from .training import MEMORY_FORMAT


def train_vae(model: VAE, images: torch.Tensor, *, epochs: int, lam: float = 5.0, batch_size: int = 100,
              lr: float = 1e-3, seed: int = 0, progress: bool = True) -> list[dict]:
    """Train a plain VAE on eq. (1) with Adam (Keras' epsilon); returns per-epoch mean losses.

    ``images``: (N, 1, 28, 28) images, or (N, n) points (the toy of notebook 05).
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = images
    if x.dim() == 4:                                    # images; the 2-D points of the toy stay as they are
        model.to(memory_format=MEMORY_FORMAT)
        x = x.contiguous(memory_format=MEMORY_FORMAT)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
    steps, history = math.ceil(len(x) / batch_size), []
    bar = tqdm(total=epochs * steps, disable=not progress_wanted(progress), mininterval=1.0, desc="plain VAE", unit="step")
    for epoch in range(1, epochs + 1):
        perm, sums = torch.randperm(len(x), generator=g), torch.zeros(3)
        for i in range(steps):
            xb = x[perm[i * batch_size:(i + 1) * batch_size]]
            total, rec, kl = vae_loss(xb, model(xb), lam=lam)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sums += torch.stack([total.detach(), rec.detach(), kl.detach()])
            bar.update(1)
        history.append({"epoch": epoch, **dict(zip(("loss", "reconstruction", "kl"), (sums / steps).tolist()))})
        bar.set_postfix(loss=f"{history[-1]['loss']:.2f}")
    bar.close()
    return history


def two_step_scores(mu, labels, n_clusters: int = 10, seed: int = 0) -> dict:
    """{method: (scores, predicted clusters)} for k-means and a full-covariance Gaussian mixture."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    mu = mu.detach().cpu().numpy() if isinstance(mu, torch.Tensor) else mu
    labels = labels.numpy() if isinstance(labels, torch.Tensor) else labels
    out = {}
    for name, method in (("k-means", KMeans(n_clusters, n_init=10, random_state=seed)),
                         ("Gaussian mixture", GaussianMixture(n_clusters, covariance_type="full",
                                                              random_state=seed))):
        pred = method.fit_predict(mu)
        out[name] = (clustering_scores(labels, pred), pred)
    return out
