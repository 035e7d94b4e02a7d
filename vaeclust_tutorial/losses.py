r"""The loss terms of eq. (1) (plain VAE) and eq. (4) (clustering VAE), one pure function each.

Introduced in notebook 01 (eq. 1) and derived in notebook 02 (eq. 4). Every
function returns a batch mean with the sign it has in the total loss, so the
logged terms add up to the minimised loss:

.. math::

    L = \underbrace{\tfrac{\lambda}{2}\lVert x - G(z)\rVert^2}_{\text{reconstruction}}
      + \underbrace{\textstyle\sum_y p(y|z)\,\mathrm{KL}\big(p(z|x)\,\Vert\,q(z|y)\big)}_{\text{cluster KL}}
      + \underbrace{\mathrm{KL}\big(p(y|z)\,\Vert\,q(y)\big)}_{\text{categorical KL}}

Shapes: ``x``, ``x_hat`` (B, 1, 28, 28); ``mu``, ``logvar``, ``z`` (B, d);
``means`` (K, d); ``p_y`` (B, K).
"""

from __future__ import annotations

import math
import torch


def reconstruction(x, x_hat, lam: float):
    r"""Term 1, :math:`-\log q(x|z)` up to a constant, with :math:`q(x|z) = N(G(z), 1/\lambda)`:

    .. math:: \tfrac{\lambda}{2} \sum_{\text{pixels}} (x - \hat x)^2

    averaged over the batch (the author's ``lamb * K.sum(0.5 * K.mean((x - x_recon)**2, 0))``).
    """
    return 0.5 * lam * (x.float() - x_hat.float()).pow(2).flatten(1).sum(1).mean()


def gaussian_kl(mu, logvar):
    r"""The plain VAE's prior term, eq. (1): :math:`\mathrm{KL}(N(\mu, \sigma^2) \Vert N(0, I))`

    .. math:: \tfrac12 \sum_d \left(\sigma_d^2 + \mu_d^2 - 1 - \log\sigma_d^2\right)

    in closed form, averaged over the batch.
    """
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(1).mean()


def cluster_kl(mu, logvar, means, p_y):
    r"""Term 2 of eq. (4) in closed form, weighted by p(y|z) (the author's versions A and B):

    .. math:: \sum_y p(y|z)\; \tfrac12 \sum_d \left(\sigma_d^2 + (\mu_d - \mu_{y,d})^2 - 1 - \log\sigma_d^2\right)

    i.e. :math:`\sum_y p(y|z)\,\mathrm{KL}(N(\mu, \sigma^2) \Vert N(\mu_y, I))`. Note the hybrid:
    the KL over z is exact, but the weights p(y|z) come from one *sampled* z.
    """
    mu, logvar, means, p_y = mu.float(), logvar.float(), means.float(), p_y.float()
    sq = (mu.unsqueeze(1) - means.unsqueeze(0)).pow(2)                   # (B, K, d)
    kl = 0.5 * (logvar.exp() - 1.0 - logvar).unsqueeze(1) + 0.5 * sq     # (B, K, d)
    return (p_y * kl.sum(-1)).sum(1).mean()


def cluster_kl_sample(z, mu, logvar, means, p_y):
    r"""Term 2 of eq. (4) estimated with the one sample z (the author's version C):

    .. math:: \sum_y p(y|z) \left[\log p(z|x) - \log q(z|y)\right]
              = \sum_y p(y|z)\; \tfrac12 \sum_d \left((z_d - \mu_{y,d})^2 - \log\sigma_d^2 - \varepsilon_d^2\right)

    with :math:`\varepsilon = (z - \mu)/\sigma`. Its expectation over z is
    :func:`cluster_kl` (for fixed weights). The author's script omits the
    :math:`-\varepsilon^2` part; under the reparameterisation its gradient is
    zero, so training is the same, but keeping it makes the logged value an
    unbiased estimate of the KL rather than one shifted by d/2.
    """
    z, mu, logvar, means, p_y = z.float(), mu.float(), logvar.float(), means.float(), p_y.float()
    eps2 = (z - mu).pow(2) * torch.exp(-logvar)                           # (B, d)
    sq = (z.unsqueeze(1) - means.unsqueeze(0)).pow(2)                    # (B, K, d)
    log_ratio = 0.5 * (sq - (logvar + eps2).unsqueeze(1))                # (B, K, d)
    return (p_y * log_ratio.sum(-1)).sum(1).mean()


def categorical_kl(logits):
    r"""Term 3 of eq. (4): :math:`\mathrm{KL}(p(y|z) \Vert \tfrac1K) = \sum_y p(y|z)\log p(y|z) + \log K`,

    per sample, averaged over the batch (>= 0, 0 when p(y|z) is uniform). The author
    writes ``K.mean(y * K.log(y + K.epsilon()), 0)``: the same up to the constant
    :math:`\log K` and the 1e-7 inside the log; we use ``log_softmax`` for stability.
    """
    logits = logits.float()
    log_p = torch.log_softmax(logits, -1)
    return (log_p.exp() * log_p).sum(1).mean() + math.log(logits.shape[-1])


def cluster_vae_loss(x, out, model, cfg) -> dict[str, torch.Tensor]:
    """Eq. (4) for a :class:`~vaeclust_tutorial.models.ClusterOutput`: each term by name, weighted
    as it enters the loss. The loss minimised is their sum (:func:`total`); the training loop
    logs every entry under its name, so a new term needs a line here and a field in
    :class:`~vaeclust_tutorial.config.TrainConfig`, nothing else (``docs/adding_a_loss_term.md``).

    ``cfg.estimator`` picks term 2: ``"closed-form"`` (:func:`cluster_kl`) or ``"sample"``
    (:func:`cluster_kl_sample`); ``cfg.cat_weight`` scales term 3 (0 drops it). Notebook 02.
    """
    if cfg.estimator == "closed-form":
        kl = cluster_kl(out.mu, out.logvar, model.means, out.p_y)
    else:
        kl = cluster_kl_sample(out.z, out.mu, out.logvar, model.means, out.p_y)
    terms = {"reconstruction": reconstruction(x, out.x_hat, cfg.lam),
             "cluster_kl": kl,
             "categorical_kl": cfg.cat_weight * categorical_kl(out.logits)}
    return terms


def total(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss minimised: the sum of the weighted terms."""
    return sum(terms.values())


def vae_loss(x, out, *, lam: float):
    """Eq. (1) for a :class:`~vaeclust_tutorial.models.VAEOutput`: (total, reconstruction, KL)."""
    rec = reconstruction(x, out.x_hat, lam)
    kl = gaussian_kl(out.mu, out.logvar)
    return rec + kl, rec, kl
