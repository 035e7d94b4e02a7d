"""The optimal assignment p*(y|x) of notebook 02: the minimiser of terms 2 + 3 of eq. (4) over the weights."""

import math

import pytest
import torch

from vaeclust_tutorial import losses


def _code_and_means(seed, b=6, d=4, k=5, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    mu, logvar = torch.randn(b, d, generator=g), 0.5 * torch.randn(b, d, generator=g)
    means = spread * torch.randn(k, d, generator=g)
    return mu, logvar, means


def _terms_2_and_3(mu, logvar, means, w):
    """Terms 2 + 3 per sample (B,) as functions of free weights w (B, K), with the package's own terms."""
    return torch.stack([losses.cluster_kl(mu[i:i + 1], logvar[i:i + 1], means, w[i:i + 1])
                        + losses.categorical_kl(w[i:i + 1].log()) for i in range(len(w))])


def _kls(mu, logvar, means):
    """KL(N(mu, s^2) || N(mu_y, I)) for every sample and cluster (B, K), from torch.distributions."""
    p = torch.distributions.Normal(mu.unsqueeze(1), (0.5 * logvar).exp().unsqueeze(1))
    return torch.distributions.kl_divergence(p, torch.distributions.Normal(means.unsqueeze(0), 1.0)).sum(-1)


def test_it_is_a_distribution_over_clusters_for_every_sample():
    mu, logvar, means = _code_and_means(0)
    p = losses.optimal_assignment(mu, logvar, means)
    assert p.shape == (6, 5)
    assert (p > 0).all()
    torch.testing.assert_close(p.sum(1), torch.ones(6))


def test_it_is_the_softmax_of_minus_each_cluster_kl():
    mu, logvar, means = _code_and_means(1)
    torch.testing.assert_close(losses.optimal_assignment(mu, logvar, means),
                               torch.softmax(-_kls(mu, logvar, means), -1), rtol=1e-5, atol=1e-6)


def test_terms_2_and_3_are_lower_at_p_star_than_at_any_perturbation_of_it():
    mu, logvar, means = _code_and_means(2)
    p_star = losses.optimal_assignment(mu, logvar, means)
    best = _terms_2_and_3(mu, logvar, means, p_star)
    g = torch.Generator().manual_seed(3)
    for scale in (0.03, 0.3, 3.0):
        for _ in range(20):
            moved = torch.softmax(p_star.log() + scale * torch.randn(p_star.shape, generator=g), -1)
            # the gap is KL(moved || p*), of order scale^2: compared with it, not with zero, since at
            # scale 0.03 it is a few float32 ulps of the terms
            gap = _terms_2_and_3(mu, logvar, means, moved) - best
            kl = (moved * (moved.log() - p_star.log())).sum(-1)
            torch.testing.assert_close(gap, kl, rtol=0.05, atol=2e-5)
            if scale >= 0.3:
                assert (gap > 1e-4).all()


def test_terms_2_and_3_are_lower_at_p_star_than_at_a_classifier_output():
    mu, logvar, means = _code_and_means(4)
    torch.manual_seed(0)
    classifier = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5))
    with torch.no_grad():
        p_classifier = torch.softmax(classifier(mu), -1)                    # p(y | mu(x)) of a network
    p_star = losses.optimal_assignment(mu, logvar, means)
    gap = _terms_2_and_3(mu, logvar, means, p_classifier) - _terms_2_and_3(mu, logvar, means, p_star)
    kl_to_p_star = (p_classifier * (p_classifier / p_star).log()).sum(1)
    assert (gap > 1e-3).all()
    torch.testing.assert_close(gap, kl_to_p_star, rtol=1e-3, atol=1e-4)    # the gap is KL(w || p*)


def test_the_minimum_is_the_log_sum_exp_of_minus_the_kls():
    mu, logvar, means = _code_and_means(5)
    p_star = losses.optimal_assignment(mu, logvar, means)
    kls = _kls(mu, logvar, means)
    closed = -(torch.logsumexp(-kls, -1) - math.log(means.shape[0]))      # -log sum_y (1/K) e^{-KL_y}
    torch.testing.assert_close(_terms_2_and_3(mu, logvar, means, p_star), closed, rtol=1e-4, atol=1e-4)
    # and it lies below both the uniform weights and the hard argmin (which pays log K in term 3)
    uniform = torch.full_like(p_star, 1 / means.shape[0])
    assert (closed < _terms_2_and_3(mu, logvar, means, uniform) - 1e-4).all()
    assert (closed < kls.min(1).values + math.log(means.shape[0]) - 1e-4).all()


def test_p_star_tends_to_one_hot_at_the_argmin_as_the_kl_gaps_grow():
    mu, logvar, means = _code_and_means(6, b=8, spread=0.5)
    nearest = _kls(mu, logvar, means).argmin(1)
    tops = []
    for spread in (1.0, 4.0, 16.0):          # scaling every code and mean scales the KL gaps by spread^2
        p = losses.optimal_assignment(spread * mu, logvar, spread * means)
        assert (p.argmax(1) == nearest).all()
        tops.append(p.max(1).values)
    assert (tops[1] > tops[0]).all() and (tops[2] >= tops[1]).all()
    assert (tops[2] > 1 - 1e-4).all()


def test_a_single_cluster_takes_all_the_weight():
    mu, logvar, means = _code_and_means(7, k=1)
    assert losses.optimal_assignment(mu, logvar, means).eq(1.0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_it_returns_float32_like_the_other_terms(dtype):
    mu, logvar, means = _code_and_means(8)
    p = losses.optimal_assignment(mu.to(dtype), logvar.to(dtype), means.to(dtype))
    assert p.dtype == torch.float32


def test_it_is_the_mixture_posterior_at_the_code_mean_whatever_sigma():
    """With unit covariance for every cluster, the sigma part of KL_y cancels in the softmax."""
    mu, logvar, means = _code_and_means(9)
    posterior = torch.softmax(-0.5 * torch.cdist(mu, means) ** 2, -1)           # q(y | z = mu)
    for lv in (logvar, logvar - 3.0, torch.zeros_like(logvar)):
        torch.testing.assert_close(losses.optimal_assignment(mu, lv, means), posterior, rtol=1e-4, atol=1e-5)
