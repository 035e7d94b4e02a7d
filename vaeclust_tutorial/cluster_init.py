"""A faster start for the clusters: k-means on the codes after a short warm-up (not the article's).

In the author's scheme the K means of q(z|y) start at zero, so the first epochs
train what is in effect a plain VAE (all q(z|y) are the same N(0, I) and term 3
keeps p(y|z) uniform); clusters form only when symmetry breaks, about five
epochs in. ``cluster_init="kmeans"`` skips the wait: after epoch
``cluster_init_epoch`` it

1. encodes the training images to their means mu(x),
2. runs k-means (K clusters, seeded by the run's seed) on them,
3. sets the K means of q(z|y) to the k-means centroids, and
4. fits the classifier p(y|z) to the k-means assignments (cross-entropy, one
   pass over the codes with its own Adam; the run's optimiser is untouched),

then training continues on eq. (4) unchanged, end to end. This is the
initialisation VaDE uses (a pretrained autoencoder plus a mixture fit), here
folded into one run. The faithful start (``cluster_init="zeros"``) stays the
default; notebook 05 and the README compare the two.
"""

from __future__ import annotations

import numpy as np
import torch

from .inference import EVAL_BATCH, latent_means
from .models import ClusterVAE


def kmeans_init_(model: ClusterVAE, images: torch.Tensor, *, seed: int = 0, batch_size: int = EVAL_BATCH,
                 classifier_epochs: int = 1, classifier_batch: int = 100, lr: float = 1e-3) -> np.ndarray:
    """Set ``model.means`` to k-means centroids of mu(x) and fit p(y|z) to the assignments, in place.

    ``images`` are the training images (on the model's device). Returns the k-means assignment
    of every image (numpy int64, (N,)). Deterministic for a given ``seed``; the global RNG is
    not consumed, so a resumed run continues exactly as an uninterrupted one.
    """
    from sklearn.cluster import KMeans

    k = model.n_clusters
    if len(images) < k:
        raise ValueError(f"k-means initialisation needs at least K={k} training images, got {len(images)}")
    was_training = model.training
    mu = latent_means(model, images, batch_size)
    km = KMeans(k, n_init=3, random_state=seed).fit(mu.cpu().numpy().astype(np.float64))
    labels = torch.as_tensor(km.labels_, dtype=torch.long, device=mu.device)
    with torch.no_grad():
        model.means.copy_(torch.as_tensor(km.cluster_centers_, dtype=model.means.dtype))

    # p(y|z) = softmax(classifier(z)): one pass of cross-entropy towards the k-means labels.
    opt = torch.optim.Adam(model.classifier.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    model.classifier.train()
    for _ in range(classifier_epochs):
        perm = torch.randperm(len(mu), generator=generator).to(mu.device)
        for i in range(0, len(mu), classifier_batch):
            idx = perm[i:i + classifier_batch]
            loss = torch.nn.functional.cross_entropy(model.classifier(mu[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.train(was_training)
    return km.labels_.astype(np.int64)
