"""The loss terms against closed forms, Monte Carlo estimates and hand-computed cases."""

import math
from types import SimpleNamespace

import pytest
import torch

from vaeclust_tutorial import losses, preset
from vaeclust_tutorial.models import ClusterOutput


def test_reconstruction_is_half_lambda_squared_error_per_image():
    x = torch.zeros(2, 1, 28, 28)
    x_hat = torch.zeros(2, 1, 28, 28)
    x_hat[0, 0, 0, :4] = 1.0   # image 0: 4 pixels off by 1 -> squared error 4
    value = losses.reconstruction(x, x_hat, lam=5.0)
    assert value.item() == pytest.approx(5.0 * 0.5 * 4 / 2)   # batch mean over 2 images


def test_gaussian_kl_closed_form_matches_monte_carlo():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(1, 3, generator=g), torch.randn(1, 3, generator=g) * 0.5
    closed = losses.gaussian_kl(mu, logvar).item()
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    z = q.sample((400_000,))
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean().item()
    assert closed == pytest.approx(mc, abs=0.02)
    assert losses.gaussian_kl(torch.zeros(4, 3), torch.zeros(4, 3)).item() == pytest.approx(0.0, abs=1e-7)


def test_cluster_kl_is_weighted_kl_to_each_cluster_gaussian():
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g) * 0.3
    means = torch.randn(3, 4, generator=g)
    p_y = torch.softmax(torch.randn(5, 3, generator=g), -1)
    expected = 0.0
    for b in range(5):
        p = torch.distributions.Normal(mu[b], (0.5 * logvar[b]).exp())
        for y in range(3):
            kl = torch.distributions.kl_divergence(p, torch.distributions.Normal(means[y], 1.0)).sum()
            expected += p_y[b, y] * kl / 5
    assert losses.cluster_kl(mu, logvar, means, p_y).item() == pytest.approx(expected.item(), rel=1e-5)


def test_sample_estimator_is_unbiased_for_the_closed_form():
    g = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(1, 6, generator=g), torch.randn(1, 6, generator=g) * 0.4
    means = torch.randn(4, 6, generator=g)
    p_y = torch.softmax(torch.randn(1, 4, generator=g), -1)
    n = 200_000
    z = mu + (0.5 * logvar).exp() * torch.randn(n, 6, generator=g)
    mc = losses.cluster_kl_sample(z, mu.expand(n, 6), logvar.expand(n, 6), means, p_y.expand(n, 4))
    closed = losses.cluster_kl(mu, logvar, means, p_y)
    assert mc.item() == pytest.approx(closed.item(), abs=0.05)


def test_sample_estimator_gradient_ignores_the_epsilon_term():
    """The -eps^2 part the author omits has zero gradient under the reparameterisation."""
    mu = torch.randn(3, 2, requires_grad=True)
    logvar = torch.randn(3, 2, requires_grad=True)
    eps = torch.randn(3, 2)
    z = mu + (0.5 * logvar).exp() * eps
    means, p_y = torch.randn(2, 2), torch.full((3, 2), 0.5)
    ours = losses.cluster_kl_sample(z, mu, logvar, means, p_y)
    author = (p_y * (-0.5 * (logvar.unsqueeze(1) - (z.unsqueeze(1) - means).pow(2))).sum(-1)).sum(1).mean()
    g1 = torch.autograd.grad(ours, (mu, logvar), retain_graph=True)
    g2 = torch.autograd.grad(author, (mu, logvar))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    assert (ours - author).item() == pytest.approx(-0.5 * (eps ** 2).sum(1).mean().item(), rel=1e-5)


@pytest.mark.parametrize("k", [2, 10])
def test_categorical_kl_known_values(k):
    assert losses.categorical_kl(torch.zeros(3, k)).item() == pytest.approx(0.0, abs=1e-6)
    one_hot_logits = torch.full((3, k), -1e4)
    one_hot_logits[:, 0] = 0
    assert losses.categorical_kl(one_hot_logits).item() == pytest.approx(math.log(k), abs=1e-5)


def test_the_loss_picks_its_terms_from_the_config():
    g = torch.Generator().manual_seed(4)
    b, d, k = 4, 3, 5
    out = ClusterOutput(torch.rand(b, 1, 28, 28, generator=g), torch.randn(b, d, generator=g),
                        torch.randn(b, d, generator=g), torch.randn(b, d, generator=g),
                        torch.randn(b, k, generator=g), None)
    out = out._replace(p_y=torch.softmax(out.logits, -1))
    x = torch.rand(b, 1, 28, 28, generator=g)
    model = SimpleNamespace(means=torch.randn(k, d, generator=g))
    closed = losses.cluster_vae_loss(x, out, model, preset("article-b", lam=2.5))
    assert list(closed) == ["reconstruction", "cluster_kl", "categorical_kl"]
    assert closed["reconstruction"] == losses.reconstruction(x, out.x_hat, 2.5)
    assert closed["cluster_kl"] == losses.cluster_kl(out.mu, out.logvar, model.means, out.p_y)
    sample = losses.cluster_vae_loss(x, out, model, preset("article-c"))
    assert sample["cluster_kl"] == losses.cluster_kl_sample(out.z, out.mu, out.logvar, model.means, out.p_y)
    doubled = losses.cluster_vae_loss(x, out, model, preset("article-b", cat_weight=2.0))
    assert doubled["categorical_kl"].item() == pytest.approx(2 * losses.categorical_kl(out.logits).item())
    assert losses.cluster_vae_loss(x, out, model, preset("article-b", cat_weight=0.0))["categorical_kl"] == 0


def _assignments(seed, b=64, k=6):
    return torch.softmax(3 * torch.randn(b, k, generator=torch.Generator().manual_seed(seed)), -1)


def test_the_article_term3_is_information_plus_imbalance_on_average():
    """Averaged over a batch, the per-sample KL(p(y|x) || U) of term 3 is I(x; y) + KL(p_bar || U)
    (notebook 06): it penalises informative assignments as much as it rewards balance."""
    p = _assignments(0)
    k = p.shape[1]
    term3 = (p * torch.log(p * k)).sum(1).mean()
    p_bar = p.mean(0)
    info = losses._entropy(p_bar) - losses._entropy(p).mean()
    imbalance = (p_bar * torch.log(p_bar * k)).sum()
    assert term3.item() == pytest.approx((info + imbalance).item(), rel=1e-5)
    assert losses.batch_information(p, balance=1.0).item() == pytest.approx(-info.item(), rel=1e-5)
    parts = losses.term3_parts(p)
    assert parts["term3"].item() == pytest.approx(term3.item(), rel=1e-5)
    assert parts["information"].item() == pytest.approx(info.item(), rel=1e-5)
    assert parts["imbalance"].item() == pytest.approx(imbalance.item(), rel=1e-4, abs=1e-6)


def test_the_mixture_misfit_is_terms_2_and_3_at_their_best_weights():
    g = torch.Generator().manual_seed(5)
    mu, logvar, means = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g), torch.randn(4, 3, generator=g)
    best = losses.optimal_assignment(mu, logvar, means)
    for i in range(8):
        at_best = losses.cluster_kl(mu[i:i + 1], logvar[i:i + 1], means, best[i:i + 1]) \
            + (best[i] * torch.log(best[i] * 4)).sum()
        assert at_best.item() == pytest.approx(losses.mixture_misfit(mu, logvar, means)[i].item(), rel=1e-4)
    # moving the means away from the codes makes the fit worse
    assert (losses.mixture_misfit(mu, logvar, means + 10) > losses.mixture_misfit(mu, logvar, means)).all()


def test_batch_information_prefers_confident_balanced_clusters():
    k = 4
    balanced_hard = torch.eye(k).repeat(8, 1)                      # every cluster used, each x sure
    uniform = torch.full((32, k), 1 / k)                           # nobody sure
    collapsed = torch.eye(k)[[0] * 32]                             # one cluster for all
    assert losses.batch_information(balanced_hard, 4.0).item() == pytest.approx(-4 * math.log(k), abs=1e-5)
    assert losses.batch_information(uniform, 4.0).item() == pytest.approx(-3 * math.log(k), abs=1e-5)
    assert losses.batch_information(collapsed, 4.0).item() == pytest.approx(0.0, abs=1e-5)


def test_consistency_is_the_kl_and_leaves_the_clean_prediction_alone():
    clean = _assignments(1).requires_grad_(True)
    moved = _assignments(2).requires_grad_(True)
    c = losses.consistency(clean, moved)
    assert c.item() == pytest.approx((clean * (clean / moved).log()).sum(1).mean().item(), rel=1e-5)
    c.backward()
    assert clean.grad is None and moved.grad.abs().sum() > 0
    assert losses.consistency(moved, moved).item() == pytest.approx(0.0, abs=1e-6)


def test_the_terms_beyond_the_article_enter_only_when_weighted():
    model, x, out = _model_and_batch(6)
    article = losses.cluster_vae_loss(x, out, model, preset("article-a"))
    beyond = losses.cluster_vae_loss(x, out, model, preset("article-a", info_weight=1.0, consistency_weight=10.0,
                                                            term2_trains_classifier=False))
    assert list(beyond) == list(article) + ["batch_information", "consistency"]
    assert beyond["cluster_kl"].item() == pytest.approx(article["cluster_kl"].item())
    model.zero_grad()
    beyond["cluster_kl"].backward()                                # held fixed: no gradient to p(y|z)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.classifier.parameters())
    # move_flip changes only the moves: the same draws, half the moved images mirrored
    flipped = [losses.cluster_vae_loss(x, out, model, preset("article-a", consistency_weight=10.0, move_flip=flip))
               for flip in (False, True) if torch.manual_seed(1)]
    assert flipped[0]["reconstruction"].item() == flipped[1]["reconstruction"].item()
    assert flipped[0]["consistency"].item() != pytest.approx(flipped[1]["consistency"].item(), rel=1e-3)


@pytest.mark.parametrize("views,gamma", [(1, 0.0), (3, 0.0), (2, 0.7)])
def test_consistency_over_several_moved_copies_is_the_mean_of_their_kls(views, gamma):
    from vaeclust_tutorial.augment import random_affine, random_gamma
    from vaeclust_tutorial.models import conv_cluster_vae
    torch.manual_seed(0)
    model = conv_cluster_vae("article-a")
    x = torch.rand(5, 1, 28, 28)
    out = model(x)
    cfg = preset("beyond", move_views=views, move_gamma=gamma)
    torch.manual_seed(1)
    term = losses.cluster_vae_loss(x, out, model, cfg)["consistency"]
    torch.manual_seed(1)                                          # the same draws, by hand, copy by copy
    moved = random_gamma(random_affine(x.repeat(views, 1, 1, 1)), gamma)
    p_clean = torch.softmax(model.classifier(out.mu), -1)
    p_moved = torch.softmax(model.classifier(model.encoder(moved)[0]), -1).split(len(x))   # one batch, as training
    kls = [losses.consistency(p_clean, p) for p in p_moved]
    assert term.item() == pytest.approx(cfg.consistency_weight * torch.stack(kls).mean().item(), rel=1e-5)
    assert len({round(k.item(), 6) for k in kls}) == views        # each copy has its own move


def test_the_over_clustering_head_adds_its_own_terms_and_leaves_the_others_alone():
    from vaeclust_tutorial.models import conv_cluster_vae
    torch.manual_seed(0)
    plain, over = conv_cluster_vae("article-a"), conv_cluster_vae("article-a", overcluster_k=30)
    assert over.overcluster.net[-1].out_features == 30 and plain.overcluster is None
    over.load_state_dict({**over.state_dict(), **plain.state_dict()})    # the same encoder, decoder, classifier
    x = torch.rand(6, 1, 28, 28)
    cfg = preset("beyond", overcluster_k=30)
    torch.manual_seed(1)
    out = plain(x)
    without = losses.cluster_vae_loss(x, out, plain, cfg)
    torch.manual_seed(1)
    out = over(x)
    with_head = losses.cluster_vae_loss(x, out, over, cfg)
    assert list(with_head) == ["reconstruction", "cluster_kl", "categorical_kl", "batch_information",
                               "overcluster_information", "consistency", "overcluster_consistency"]
    assert set(with_head) - set(without) == {"overcluster_information", "overcluster_consistency"}
    for name, value in without.items():                           # same moves, same terms for the K clusters
        assert with_head[name].item() == pytest.approx(value.item(), rel=1e-6), name
    over.zero_grad()
    (with_head["overcluster_information"] + with_head["overcluster_consistency"]).backward()
    def moved(module):
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    # the head's terms train the head and the encoder, never the classifier that is read out
    assert moved(over.overcluster) and moved(over.encoder)
    assert not moved(over.classifier) and not moved(over.decoder) and over.means.grad is None


def test_cluster_kls_is_the_gaussian_kl_of_the_code_moved_by_each_mean():
    g = torch.Generator().manual_seed(3)
    mu, logvar, means = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g), torch.randn(5, 6, generator=g)
    kls = losses.cluster_kls(mu, logvar, means)
    assert kls.shape == (4, 5)
    for y in range(5):     # KL(N(mu, s^2) || N(m, I)) = KL(N(mu - m, s^2) || N(0, I)), per code
        expected = torch.stack([losses.gaussian_kl(mu[i:i + 1] - means[y], logvar[i:i + 1]) for i in range(4)])
        assert torch.allclose(kls[:, y], expected, rtol=1e-5)


def _model_and_batch(n):
    """The article's model A, seeded, with a batch of n random images and its forward pass."""
    from vaeclust_tutorial.models import conv_cluster_vae
    torch.manual_seed(0)
    model = conv_cluster_vae("article-a")
    x = torch.rand(n, 1, 28, 28)
    return model, x, model(x)


def _predict(model):
    """images -> p(y | mu(images)), as the consistency terms read the model."""
    return lambda images: torch.softmax(model.classifier(model.encoder(images)[0]), -1)


def _linear_softmax(d=40, k=4, seed=0):
    """p(y|x) = softmax(W x): its KL's Hessian at r = 0 is W^T (diag p - p p^T) W, of rank k - 1."""
    w = torch.randn(k, d, generator=torch.Generator().manual_seed(seed))
    return lambda images: torch.softmax(images.flatten(1) @ w.T, -1)


def test_the_adversarial_move_has_length_epsilon_and_changes_the_prediction_most():
    predict = _linear_softmax()
    x = torch.randn(8, 1, 5, 8) * 0.1                                  # 8 images of 40 pixels
    p_clean = predict(x)
    torch.manual_seed(0)
    x_adv = losses.adversarial_move(predict, x, p_clean, epsilon=0.5)
    assert not x_adv.requires_grad
    assert (x_adv - x).flatten(1).norm(dim=1) == pytest.approx(torch.full((8,), 0.5), rel=1e-5)
    kl_adv = losses.consistency(p_clean, predict(x_adv))
    # 200 random moves of the same length: each changes the prediction far less, since the KL
    # grows only along the 3 directions W spans out of 40
    kl_random = [losses.consistency(p_clean, predict(x + 0.5 * losses._unit(torch.randn_like(x))))
                 for _ in range(200)]
    assert kl_adv > 3 * max(kl_random)


def test_the_adversarial_move_follows_the_seed_and_leaves_the_model_gradients_alone():
    model, x, _ = _model_and_batch(4)
    model.zero_grad(set_to_none=True)
    predict = _predict(model)
    with torch.no_grad():
        p_clean = predict(x)
    moves = []
    for _ in range(2):
        torch.manual_seed(3)
        moves.append(losses.adversarial_move(predict, x, p_clean, epsilon=1.5))
    assert torch.equal(*moves)
    assert all(p.grad is None for p in model.parameters())


def test_the_adversarial_term_enters_when_weighted_and_trains_encoder_and_classifier():
    model, x, out = _model_and_batch(6)
    plain = losses.cluster_vae_loss(x, out, model, preset("article-a"))
    torch.manual_seed(1)
    terms = losses.cluster_vae_loss(x, out, model, preset("article-a", vat_weight=2.0, vat_epsilon=1.5))
    assert list(terms) == list(plain) + ["adversarial_consistency"]
    torch.manual_seed(1)                                               # the same direction, by hand
    p_clean = torch.softmax(model.classifier(out.mu), -1).detach()
    predict = _predict(model)
    x_adv = losses.adversarial_move(predict, x, p_clean, 1.5)
    expected = 2.0 * losses.consistency(p_clean, predict(x_adv))
    assert terms["adversarial_consistency"].item() == pytest.approx(expected.item(), rel=1e-5)
    model.zero_grad()
    terms["adversarial_consistency"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.classifier.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert model.means.grad is None
