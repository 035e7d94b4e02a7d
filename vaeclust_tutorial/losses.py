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

from .runtime import autocast


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
    return (p_y.float() * cluster_kls(mu, logvar, means)).sum(1).mean()


def cluster_kls(mu, logvar, means):
    r"""Every code's KL to every cluster's Gaussian, shape (B, K):

    .. math:: \mathrm{KL}_y = \mathrm{KL}\big(N(\mu, \sigma^2) \,\Vert\, N(\mu_y, I)\big)
              = \tfrac12 \sum_d \left(\sigma_d^2 + (\mu_d - \mu_{y,d})^2 - 1 - \log\sigma_d^2\right)

    what term 2 weights by p(y|z) (:func:`cluster_kl`), and what :func:`optimal_assignment` turns
    into the mixture's responsibilities. Notebooks 02 and 06.
    """
    mu, logvar, means = mu.float(), logvar.float(), means.float()
    sq = (mu.unsqueeze(1) - means.unsqueeze(0)).pow(2)                   # (B, K, d)
    return 0.5 * (logvar.exp() - 1.0 - logvar).sum(-1, keepdim=True) + 0.5 * sq.sum(-1)


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


def _entropy(p, dim=-1):
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim)


def batch_information(p_y, balance: float = 4.0):
    r"""Beyond the article (notebook 06): confident and balanced assignments, as a loss.

    .. math:: \tfrac1B \sum_x H\big(p(y|x)\big) - \beta\, H(\bar p), \qquad \bar p = \tfrac1B \sum_x p(y|x)

    With :math:`\beta = 1` it is minus the batch's mutual information
    :math:`I(x; y) = H(\bar p) - \tfrac1B \sum_x H(p(y|x))`; a larger :math:`\beta` weights the
    balance of the cluster sizes more (RIM, Krause et al. 2010; IMSAT, Hu et al. 2017,
    arXiv 1702.08720, which uses 4). The article's term 3 averages to
    :math:`I(x; y) + \mathrm{KL}(\bar p \Vert U)` over the data: it penalises informative
    assignments as much as it rewards balance, where this term rewards both.
    """
    p_y = p_y.float()
    return _entropy(p_y).mean() - balance * _entropy(p_y.mean(0))


def consistency(p_clean, p_moved):
    r"""Beyond the article (notebook 06): the cluster should not change under a small move T of the image.

    .. math:: \mathrm{KL}\big(\mathrm{sg}[p(y|x)] \,\Vert\, p(y|T(x))\big)

    averaged over the batch, with the gradient stopped (sg) through the clean prediction, as in
    VAT (Miyato et al. 2018) and IMSAT (Hu et al. 2017, arXiv 1702.08720); IIC (Ji et al. 2019,
    arXiv 1807.06653) asks the same invariance through the mutual information of the two.
    """
    p_clean, p_moved = p_clean.detach().float(), p_moved.float()
    return (p_clean * (torch.log(p_clean.clamp_min(1e-12)) - torch.log(p_moved.clamp_min(1e-12)))).sum(1).mean()


def _unit(v):
    """Each image of v (B, ...) divided by its L2 norm (an all-zero image stays zero)."""
    return v / v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.dim() - 1)))


def adversarial_move(predict, x, p_clean, epsilon: float, xi: float = 0.1):
    r"""Beyond the article (notebook 06): the move of length epsilon that changes p(y|x) most.

    .. math:: r_{\mathrm{adv}} = \epsilon\, \frac{g}{\lVert g \rVert_2}, \qquad
              g = \nabla_r\, \mathrm{KL}\big(\mathrm{sg}[p(y|x)] \,\Vert\, p(y|x + r)\big)\Big|_{r = \xi d}

    with d a random direction of unit length per image: one step of the power iteration towards
    the top eigenvector of the KL's Hessian at r = 0, the direction in which the prediction is
    least smooth (virtual adversarial training, Miyato et al. 2018, arXiv 1704.03976, eqs. (12)-(14);
    IMSAT, Hu et al. 2017, arXiv 1702.08720, uses it for clustering). ``predict(images)`` gives
    p(y|images); ``p_clean`` is sg[p(y|x)]. Returns x + r_adv, detached; the term is then
    :func:`consistency` between p_clean and p(y|x + r_adv). The gradient is taken with respect
    to r only, so the model's gradients are untouched. ``xi`` = 0.1 is about one grey level of
    255 per pixel: small enough for the KL to be quadratic, large enough to survive bf16. The
    random direction comes from the global CPU generator, as the moves of :mod:`.augment` do.
    """
    d = torch.randn(x.shape).to(x.device, x.dtype)
    r = (xi * _unit(d)).requires_grad_()
    g, = torch.autograd.grad(consistency(p_clean, predict(x + r)), r)
    return (x + epsilon * _unit(g.float()).to(x.dtype)).detach()


def cluster_vae_loss(x, out, model, cfg, teacher=None) -> dict[str, torch.Tensor]:
    """Eq. (4) for a :class:`~vaeclust_tutorial.models.ClusterOutput`: each term by name, weighted
    as it enters the loss. The loss minimised is their sum (:func:`total`); the training loop
    logs every entry under its name, so a new term needs a line here and a field in
    :class:`~vaeclust_tutorial.config.TrainConfig`, nothing else (``docs/adding_a_loss_term.md``).

    ``cfg.estimator`` picks term 2: ``"closed-form"`` (:func:`cluster_kl`) or ``"sample"``
    (:func:`cluster_kl_sample`); ``cfg.cat_weight`` scales term 3 (0 drops it). Notebook 02.
    The terms beyond the article enter only with a weight above 0. With an over-clustering head
    (``cfg.overcluster_k`` > 0; IIC, Ji et al. 2019, arXiv 1807.06653) the same two
    terms, with the same weights, are applied to its K_over clusters too
    (``overcluster_information``, ``overcluster_consistency``): the head asks z to separate finer
    groups of images, and nothing else reads it. With ``cfg.move_views`` = V > 1 each image is
    moved V times, each copy with its own draw, and the consistency term is the mean over the
    V·B moved images: more moves per step for one more encoder pass per copy (batch augmentation,
    Hoffer et al. 2019, arXiv 1901.09335). With a ``teacher`` (a model of the same shape whose
    weights are a moving average of ``model``'s, ``cfg.teacher_decay``; Mean Teacher, Tarvainen
    and Valpola 2017, arXiv 1703.01780) the clean prediction the moved images are pulled towards
    is the teacher's, sg[p_teacher(y|mu_teacher(x))], instead of the model's own.
    """
    # term 2's weights: p(y|z), or the same values held fixed so that term 2 trains the means and
    # the encoder but not the classifier (cfg.term2_trains_classifier=False)
    p_y = out.p_y if cfg.term2_trains_classifier else out.p_y.detach()
    if cfg.estimator == "closed-form":
        kl = cluster_kl(out.mu, out.logvar, model.means, p_y)
    else:
        kl = cluster_kl_sample(out.z, out.mu, out.logvar, model.means, p_y)
    terms = {"reconstruction": reconstruction(x, out.x_hat, cfg.lam),
             "cluster_kl": kl,
             "categorical_kl": cfg.cat_weight * categorical_kl(out.logits)}
    over = getattr(model, "overcluster", None)   # the over-clustering head (cfg.overcluster_k), or None
    if cfg.info_weight:
        terms["batch_information"] = cfg.info_weight * batch_information(out.p_y, cfg.info_balance)
        if over is not None:
            with autocast(x.device, out.z.dtype):
                p_over = torch.softmax(over(out.z).float(), -1)                        # (B, K_over)
            terms["overcluster_information"] = cfg.info_weight * batch_information(p_over, cfg.info_balance)
    if cfg.consistency_weight:
        from .augment import random_affine, random_gamma

        views = cfg.move_views                   # moved copies per image: x stacked views times
        moved = random_gamma(random_affine(x.repeat(views, 1, 1, 1), rotation=cfg.move_rotation,
                                           scale=cfg.move_scale, shift=cfg.move_shift, flip=cfg.move_flip,
                                           stretch=cfg.move_stretch),
                             cfg.move_gamma)
        heads = {"consistency": "classifier", **({"overcluster_consistency": "overcluster"} if over is not None else {})}
        with autocast(x.device, out.mu.dtype):   # the forward's precision: bf16 when it ran in bf16
            mu_moved = model.encoder(moved)[0]
            with torch.no_grad():                # the targets: the teacher's clean codes, or the model's own
                mu_clean = out.mu if teacher is None else teacher.encoder(x)[0]
            for name, head in heads.items():
                with torch.no_grad():
                    clean_head = getattr(model if teacher is None else teacher, head)
                    p_clean = torch.softmax(clean_head(mu_clean).float(), -1).repeat(views, 1)   # p(y | mu(x))
                head = getattr(model, head)
                p_moved = torch.softmax(head(mu_moved).float(), -1)                     # p(y | mu(T(x)))
                terms[name] = cfg.consistency_weight * consistency(p_clean, p_moved)
    if cfg.vat_weight:
        def predict(images):                     # p(y | mu(images))
            return torch.softmax(model.classifier(model.encoder(images)[0]).float(), -1)

        with autocast(x.device, out.mu.dtype):
            with torch.no_grad():
                p_clean = torch.softmax(model.classifier(out.mu).float(), -1)           # sg[p(y | mu(x))]
            x_adv = adversarial_move(predict, x, p_clean, cfg.vat_epsilon)
            terms["adversarial_consistency"] = cfg.vat_weight * consistency(p_clean, predict(x_adv))
    return terms


def total(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss minimised: the sum of the weighted terms."""
    return sum(terms.values())


def vae_loss(x, out, *, lam: float):
    """Eq. (1) for a :class:`~vaeclust_tutorial.models.VAEOutput`: (total, reconstruction, KL)."""
    rec = reconstruction(x, out.x_hat, lam)
    kl = gaussian_kl(out.mu, out.logvar)
    return rec + kl, rec, kl


def optimal_assignment(mu, logvar, means):
    r"""Beyond the article: the weights p(y|x) that minimise terms 2 + 3 of eq. (4) with the means fixed.

    .. math:: p^*(y|x) = \frac{q(y)\, e^{-\mathrm{KL}_y}}{\sum_{y'} q(y')\, e^{-\mathrm{KL}_{y'}}}
              = \mathrm{softmax}_y\!\left(-\mathrm{KL}_y\right),
              \qquad \mathrm{KL}_y = \mathrm{KL}\big(N(\mu, \sigma^2) \,\Vert\, N(\mu_y, I)\big)

    for the uniform q(y) = 1/K, shape (B, K). Over a free weight vector w (one per x, the same
    for every z of p(z|x), as the closed form of :func:`cluster_kl` sees it), for one x (both
    functions average over the batch) ``cluster_kl(mu, logvar, means, w) + categorical_kl(w.log())`` equals
    :math:`\mathrm{KL}(w \Vert p^*) - \log \sum_y \tfrac1K e^{-\mathrm{KL}_y}`: smallest at
    :math:`w = p^*`, where it is the log-sum-exp. It is the responsibility of the Gaussian mixture
    q(z) with equal weights and unit covariance: the sigma part of :math:`\mathrm{KL}_y` is the
    same for every cluster, so :math:`p^* = \mathrm{softmax}_y(-\tfrac12\lVert\mu - \mu_y\rVert^2)`,
    the mixture's posterior q(y|z) at z = mu(x). Without term 3 the minimum is the one-hot argmin
    of :math:`\mathrm{KL}_y`, k-means' hard assignment. Derived in notebook 02.
    """
    return torch.softmax(-cluster_kls(mu, logvar, means), -1)


def mixture_misfit(mu, logvar, means):
    r"""Terms 2 + 3 of eq. (4) at their best weights :func:`optimal_assignment`, per code, shape (B,):

    .. math:: -\log \sum_y \tfrac1K\, e^{-\mathrm{KL}_y}

    how badly the equal-weight, unit-variance Gaussian mixture with these means fits each code
    (lower is a better fit). Notebook 06 compares placements of the means with it.
    """
    kls = cluster_kls(mu, logvar, means)
    return math.log(kls.shape[1]) - torch.logsumexp(-kls, 1)


def term3_parts(p_y) -> dict[str, torch.Tensor]:
    r"""The article's term 3 averaged over a batch, and the two parts it splits into:

    .. math:: \tfrac1B \sum_x \mathrm{KL}\big(p(y|x) \Vert U\big)
              = \underbrace{H(\bar p) - \tfrac1B \sum_x H(p(y|x))}_{I(x;\,y)}
              + \underbrace{\mathrm{KL}(\bar p \Vert U)}_{\text{imbalance}},
              \qquad \bar p = \tfrac1B \sum_x p(y|x)

    with U uniform over the K clusters: term 3 penalises the information the cluster carries
    about the image as much as it penalises unequal cluster sizes. Returns ``term3``,
    ``information`` and ``imbalance``. Notebook 06.
    """
    p_y = p_y.float()
    log_k = math.log(p_y.shape[-1])
    p_bar = p_y.mean(0)
    return {"term3": (log_k - _entropy(p_y)).mean(),
            "information": _entropy(p_bar) - _entropy(p_y).mean(),
            "imbalance": log_k - _entropy(p_bar)}
