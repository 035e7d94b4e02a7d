"""Using a trained model: codes, cluster predictions and scores for a whole split.

Introduced in notebook 01 (:func:`latent_means`) and notebook 03 (:func:`predict`, :func:`evaluate`).
"""

from __future__ import annotations

import numpy as np
import torch

from .metrics import clustering_scores

EVAL_BATCH = 200   # images per forward pass; predictions do not depend on it (tests/test_shipped.py)


@torch.inference_mode()
def latent_means(model, images: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """mu(x) for every image, (N, d), of a VAE or ClusterVAE (eval mode).

    The codes a two-step method clusters (notebook 01), and those the k-means start clusters
    (:mod:`~vaeclust_tutorial.cluster_init`).
    """
    model.eval()
    return torch.cat([model.encoder(images[i:i + batch_size])[0] for i in range(0, len(images), batch_size)])


@torch.inference_mode()
def predict(model, images: torch.Tensor, batch_size: int = EVAL_BATCH, return_codes: bool = False):
    """Cluster of every image: argmax_y p(y | mu(x)), as the author's script evaluates.

    ``images`` (N, 1, 28, 28) on any device; returns a numpy int64 array (N,), and with
    ``return_codes`` also mu (N, d) and p(y|mu) (N, K) as CPU tensors. Notebook 03.
    """
    model.eval()
    device = next(model.parameters()).device
    preds, mus, p_ys = [], [], []
    for i in range(0, len(images), batch_size):
        mu, p_y = model.encode(images[i:i + batch_size].to(device, non_blocking=True))
        preds.append(p_y.argmax(1))
        if return_codes:
            mus.append(mu.float().cpu())
            p_ys.append(p_y.cpu())
    pred = torch.cat(preds).cpu().numpy() if preds else np.zeros(0, dtype=np.int64)
    if return_codes:
        return pred, torch.cat(mus), torch.cat(p_ys)
    return pred


def evaluate(model, split, batch_size: int = EVAL_BATCH) -> dict:
    """Purity, Hungarian accuracy, NMI, ARI and n_samples of ``model`` on a
    :class:`~vaeclust_tutorial.data.Split`. Notebook 03."""
    return clustering_scores(split.labels.numpy(), predict(model, split.images, batch_size))
