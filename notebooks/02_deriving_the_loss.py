# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Deriving the (z, y) loss
#
# **What you will learn.** How replacing the latent $z$ of eq. (1) by a pair $(z, y)$, with $y$ a
# discrete cluster, turns the VAE into a clustering model (eqs. 2 → 4); what each of the three
# resulting terms does; what the model and one training step look like in the package; how the
# author computes term 2, including a subtle *hybrid* estimator; what the cluster terms ask of the
# classifier (a Gaussian mixture's responsibilities); and, on a 2-D toy trained in seconds, how the
# cluster means and the classifier's regions move while the model learns.
#
# **Time.** About a minute on a laptop CPU. The numerical checks of sections 5 and 6 are
# deterministic (fixed seeds), so the test suite compares their printed output too.

# %%
# Setup: make the helper package importable. Inside the repository `python3 tasks.py lab` has
# installed it. Elsewhere (Colab, a bare Jupyter) this cell installs it from the repository
# folder it finds above the working folder, or from VAECLUST_SOURCE: a git URL
# ("git+https://...") or a wheel. pip keeps the torch already installed (docs/colab.md).
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

if importlib.util.find_spec("vaeclust_tutorial") is None:
    source = os.environ.get("VAECLUST_SOURCE") or next(
        (str(d) for d in (Path.cwd(), *Path.cwd().parents)
         if (d / "pyproject.toml").is_file() and (d / "vaeclust_tutorial").is_dir()), None)
    if source is None:
        raise RuntimeError("vaeclust_tutorial is not installed and no repository was found above "
                           f"{Path.cwd()}. Clone the repository and open the notebook from its "
                           "notebooks/ folder, or set VAECLUST_SOURCE (docs/colab.md).")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", source])

import inspect
import math

# %matplotlib inline
import torch
from torch.func import grad, vmap

import vaeclust_tutorial as vc
from vaeclust_tutorial import losses, plots
from vaeclust_tutorial.diagrams import two_stories_figure
from vaeclust_tutorial.toy import toy_mixture, toy_run

QUICK = vc.is_quick()
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. From $z$ to $(z, y)$
#
# Put the pair $(z, y)$ where eq. (1) had $z$. The joint KL becomes
#
# $$
# \mathrm{KL}\big(p(x,z,y)\,\Vert\,q(x,z,y)\big)
# = \sum_y \iint \tilde p(x)\,p(z,y|x)\,
#   \log\frac{\tilde p(x)\,p(z,y|x)}{q(x|z,y)\,q(z,y)}\,dz\,dx . \tag{2}
# $$
#
# Nothing is gained until we say how the pieces factorise. The article chooses
#
# $$
# p(z,y|x) = p(y|z)\,p(z|x), \qquad q(x|z,y) = q(x|z), \qquad q(z,y) = q(z|y)\,q(y). \tag{3}
# $$
#
# Read them as two stories. **Encoding**: an image $x$ gives a code $z \sim p(z|x)$, and a
# classifier reads the cluster off the code, $y \sim p(y|z)$. **Generation**: pick a cluster
# $y \sim q(y)$, draw a code from that cluster's Gaussian $z \sim q(z|y)$, decode $x \sim q(x|z)$.
# The decoder does not look at $y$: everything about the cluster must be in $z$.

# %%
two_stories_figure()

# %% [markdown]
# **The prior on $z$ is a Gaussian mixture.** Sum the generation story over the cluster. With the
# choices of section 3, $q(y) = 1/K$ and $q(z|y) = \mathcal N(\mu_y, I)$, the codes are held to
#
# $$
# q(z) = \sum_y q(y)\,q(z|y) = \frac1K\sum_{y=1}^{K}\mathcal N(z;\,\mu_y, I),
# $$
#
# a mixture of $K$ Gaussians with equal weights and unit covariance. The plain VAE held every code
# to the one Gaussian $\mathcal N(0, I)$; here a code may sit near any of the $K$ means, and the
# clusters are the mixture's components.
#
# ## 2. Substituting
#
# Put (3) into (2). The log splits into a sum:
#
# $$
# \log\frac{\tilde p(x)\,p(y|z)\,p(z|x)}{q(x|z)\,q(z|y)\,q(y)}
# = \log\tilde p(x) - \log q(x|z) + \log\frac{p(z|x)}{q(z|y)} + \log\frac{p(y|z)}{q(y)} .
# $$
#
# Take the expectation over $x \sim \tilde p$, $z \sim p(z|x)$, $y \sim p(y|z)$. The first term is a
# constant. The second does not depend on $y$, so the sum over $y$ (with weights summing to 1)
# leaves it alone. The third and fourth keep their sum over $y$, and the fourth is a KL:
#
# $$
# \mathcal L = \mathbb{E}_{x\sim\tilde p}\,\mathbb{E}_{z\sim p(z|x)}\Big[
#   \underbrace{-\log q(x|z)}_{\text{reconstruction}}
# + \underbrace{\sum_y p(y|z)\log\frac{p(z|x)}{q(z|y)}}_{\text{pull } z \text{ to its cluster}}
# + \underbrace{\mathrm{KL}\big(p(y|z)\,\Vert\,q(y)\big)}_{\text{push } p(y|z) \text{ towards uniform}}\Big]. \tag{4}
# $$
#
# ## 3. The concrete model
#
# * $p(z|x) = \mathcal N(\mu(x), \mathrm{diag}\,\sigma^2(x))$, sampled as $z = \mu + \sigma\varepsilon$;
# * $q(x|z) = \mathcal N(G(z), \tfrac1\lambda I)$, so term 1 is, up to a constant, $\tfrac\lambda2\lVert x - G(z)\rVert^2$;
# * $q(z|y) = \mathcal N(\mu_y, I)$ with one learnable mean $\mu_y$ per cluster (zeros at the start);
# * $q(y) = 1/K$, and $p(y|z)$ is a softmax classifier on $z$.
#
# If the weights $p(y|z)$ are held fixed (the author's choice, examined in section 5), term 2 needs
# $\mathbb{E}_z \log\frac{p(z|x)}{q(z|y)} = \mathrm{KL}_y := \mathrm{KL}\big(p(z|x)\Vert q(z|y)\big)$,
# a KL between two diagonal Gaussians, which has a closed form:
#
# $$
# \mathrm{KL}\big(\mathcal N(\mu,\sigma^2)\,\Vert\,\mathcal N(\mu_y, I)\big)
# = \frac12\sum_d\Big(\sigma_d^2 + (\mu_d - \mu_{y,d})^2 - 1 - \log\sigma_d^2\Big).
# $$
#
# Term 3 with a uniform $q(y)$ is $\sum_y p(y|z)\log p(y|z) + \log K$.
#
# ## 4. The model in code
#
# The package's `ClusterVAE` holds the encoder, the decoder, the classifier and the $K \times d$
# means. Its `forward` is the encoding story of eq. (3) plus the decoder: the parameters of
# $p(z|x)$, one reparameterised sample $z$, the classifier on that sample, the decoder on the same
# sample.

# %%
print(inspect.getsource(vc.ClusterVAE.forward))

# %% [markdown]
# `vc.cluster_vae_loss` turns that output into the terms of eq. (4), by name, each a batch mean with
# the sign and weight it has in the loss; `losses.total` adds them. Here is the article's model
# (`article-b`, freshly initialised, means at zero) on a batch of 32 MNIST training images:

# %%
batch = vc.load("mnist", "train", limit=32).images              # (32, 1, 28, 28)
cfg = vc.preset("article-b")                                     # lambda 5, closed-form term 2
torch.manual_seed(0)
model = vc.conv_cluster_vae("article-b")
torch.manual_seed(1)                                             # the noise eps of z = mu + sigma * eps
out = model(batch)                                               # x_hat, mu, logvar, z, logits, p_y
terms = vc.cluster_vae_loss(batch, out, model, cfg)
for name, value in terms.items():
    print(f"{name:<15} {value.item():10.4f}")
print(f"{'total':<15} {losses.total(terms).item():10.4f}")
print(f"p(y|z) over the batch: from {out.p_y.min().item():.3f} to {out.p_y.max().item():.3f} "
      f"(uniform: {1 / model.n_clusters:.3f})")

# %% [markdown]
# At the start every mean is at the origin, so term 2 is the plain VAE's KL to $\mathcal N(0, I)$,
# small while the encoder's outputs are near 0. The untrained classifier spreads $p(y|z)$ over all
# ten clusters (the printed range), so term 3 is small next to its largest value,
# $\log 10 \approx 2.3$. The reconstruction is nearly all of the loss. Now one training step, by
# hand: clear the gradients, back-propagate the total, let Adam move every parameter, the means
# included. `vc.train` does this for every batch of every epoch (`training.train_step`, which adds
# bf16 autocast where it pays and a check that no term is NaN).

# %%
optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)   # Keras' defaults
optimizer.zero_grad()
losses.total(terms).backward()
optimizer.step()
torch.manual_seed(1)                                             # the same eps as before the step
with torch.no_grad():
    after = vc.cluster_vae_loss(batch, model(batch), model, cfg)
for name in terms:
    print(f"{name:<15} {terms[name].item():10.4f} -> {after[name].item():10.4f}")
print(f"{'total':<15} {losses.total(terms).item():10.4f} -> {losses.total(after).item():10.4f}")
print(f"largest distance of a cluster mean from the origin: {model.means.detach().norm(dim=1).max().item():.4f}")

# %% [markdown]
# The step lowers every term on this batch. The means have left the origin: Adam's first step moves
# each coordinate by the learning rate, $10^{-3}$, whatever the size of its gradient, so each mean
# now lies about $10^{-3}\sqrt{20}$ from the origin. Thousands of such steps make the training of
# notebook 03.
#
# ## 5. Checking each step numerically
#
# **The Gaussian KL in closed form against Monte Carlo.** `vc.cluster_kl` computes term 2 in
# closed form; with all weight on one cluster it must equal the KL estimated by sampling.

# %%
# NBVAL_CHECK_OUTPUT  (deterministic: the test suite compares this output)
g = torch.Generator().manual_seed(0)
mu, logvar = torch.randn(1, 5, generator=g), 0.5 * torch.randn(1, 5, generator=g)
means = torch.randn(3, 5, generator=g)
one_hot = torch.tensor([[0.0, 1.0, 0.0]])                      # all weight on cluster 1

closed = vc.cluster_kl(mu, logvar, means, one_hot).item()
z = mu + (0.5 * logvar).exp() * torch.randn(200_000, 5, generator=g)
log_p = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1)
log_q = torch.distributions.Normal(means[1], 1.0).log_prob(z).sum(1)
mc = (log_p - log_q).mean().item()
print(f"closed form {closed:.3f}   Monte Carlo (200k samples) {mc:.3f}   |difference| < 0.05: "
      f"{abs(closed - mc) < 0.05}")

# %% [markdown]
# **The categorical KL.** It is 0 when $p(y|z)$ is uniform and $\log K$ when it is one-hot: the
# term pushes *every* sample's $p(y|z)$ towards uniform. (It does not balance cluster sizes over
# the dataset; that would be a KL of the *average* $p(y|z)$ to uniform. The article keeps the
# per-sample form, and notes the term can even be dropped: notebook 05 tries it.)

# %%
# NBVAL_CHECK_OUTPUT  (deterministic: the test suite compares this output)
K = 10
uniform_logits = torch.zeros(1, K)
one_hot_logits = torch.tensor([[30.0] + [0.0] * (K - 1)])
print(f"uniform: {vc.categorical_kl(uniform_logits).item():.4f}   "
      f"one-hot: {vc.categorical_kl(one_hot_logits).item():.4f}   log K = {math.log(K):.4f}")

# %% [markdown]
# **The author's hybrid estimator.** In training, $z$ is *sampled* and the classifier sees that
# sample: the weights $p(y|z)$ come from one draw of $z$, while the KL inside term 2 is the
# closed form, an exact expectation over $z$. That is neither the exact term 2 nor a plain Monte
# Carlo estimate. The author's later script (version C) switched to a genuine one-sample
# estimate, $\sum_y p(y|z)\,[\log p(z|x) - \log q(z|y)]$ at the sampled $z$ (`vc.cluster_kl_sample`;
# the author's script leaves out the $-\varepsilon^2/2$ part, whose gradient is zero; the package
# keeps it so the logged value is unbiased).
#
# For *fixed* weights both would estimate the same number. But the weights depend on the very
# $z$ that was drawn, so their targets differ: the one-sample estimate is unbiased for term 2 of
# eq. (4), $\mathbb E_z\sum_y p(y|z)\log\frac{p(z|x)}{q(z|y)}$, while the hybrid estimates
# $\mathbb E_z\sum_y p(y|z)\,\mathrm{KL}_y$, which ignores how the weights co-vary with the log
# ratio. Below: one $x$, 5,000 draws of $z$, the classifier replaced by a fixed random linear map.

# %%
# NBVAL_CHECK_OUTPUT  (deterministic: the test suite compares this output)
g = torch.Generator().manual_seed(1)
d, K, n = 20, 10, 5_000
mu, logvar = torch.randn(1, d, generator=g), -1.0 + 0.3 * torch.randn(1, d, generator=g)
means = torch.randn(K, d, generator=g)
W = torch.randn(d, K, generator=g)                              # a stand-in classifier
eps = torch.randn(n, d, generator=g)                            # the noise of each draw
z = mu + (0.5 * logvar).exp() * eps
p_y = torch.softmax(z @ W, -1)                                  # p(y|z) of each sampled z

per_draw = lambda f: torch.stack([f(z[i:i + 1], p_y[i:i + 1]) for i in range(0, n, 1)])
hybrid = per_draw(lambda zi, qi: vc.cluster_kl(mu, logvar, means, qi))
single = per_draw(lambda zi, qi: vc.cluster_kl_sample(zi, mu, logvar, means, qi))
print(f"hybrid (closed-form KL, sampled weights): mean {hybrid.mean():8.3f}   std {hybrid.std():7.3f}")
print(f"one-sample estimate:                      mean {single.mean():8.3f}   std {single.std():7.3f}")

# %% [markdown]
# The two means differ a little (different targets, as argued above), and the hybrid's *values*
# spread less. Training, though, follows gradients, and a quieter value need not give a quieter
# gradient. So measure the gradients themselves: for each of the same 5,000 draws, the gradient of
# each estimate with respect to the code's mean $\mu$, the cluster means $\mu_y$ and the stand-in
# classifier $W$ (`torch.func.grad` differentiates one draw, `vmap` repeats it over all draws).
# Per parameter group the cell prints the total variance of the per-draw gradients (the sum over
# coordinates of their variances), the length of the mean one-sample gradient (the exact gradient
# of term 2, up to Monte Carlo error) and how far the mean hybrid gradient lies from it (the
# hybrid's bias).

# %%
# NBVAL_CHECK_OUTPUT  (deterministic: the test suite compares this output)
sd = (0.5 * logvar).exp()
estimates = {   # one draw's estimate of term 2 as a function of (mu, means, W) and its noise e (1, d)
    "hybrid": lambda m, c, w, e: vc.cluster_kl(m, logvar, c, torch.softmax((m + sd * e) @ w, -1)),
    "one-sample": lambda m, c, w, e: vc.cluster_kl_sample(m + sd * e, m, logvar, c,
                                                          torch.softmax((m + sd * e) @ w, -1)),
}
per_draw_grad = lambda f: vmap(grad(f, argnums=(0, 1, 2)), in_dims=(None, None, None, 0))
grads = {name: per_draw_grad(f)(mu, means, W, eps.unsqueeze(1))  # per draw: (n, 1, d), (n, K, d), (n, d, K)
         for name, f in estimates.items()}
print(f"{'gradient w.r.t.':<18}{'variance: hybrid':>17}{'one-sample':>12}{'ratio':>7}"
      f"{'|mean gradient|':>17}{'|hybrid bias|':>15}")
for i, group in enumerate(["mu (code)", "means mu_y", "W (classifier)"]):
    h, s = (grads[name][i].flatten(1) for name in estimates)    # (n, parameters in the group)
    var_h, var_s = h.var(0).sum().item(), s.var(0).sum().item()
    print(f"{group:<18}{var_h:17.2f}{var_s:12.2f}{var_s / var_h:7.2f}"
          f"{s.mean(0).norm().item():17.3f}{(h.mean(0) - s.mean(0)).norm().item():15.3f}")

# %% [markdown]
# The gradients tell the same story as the values, for all three groups: the one-sample gradients
# vary more than the hybrid's (the ratio column, above 1 in every row), and the mean hybrid
# gradient lies off the exact one by a short vector compared with the gradient itself. A slightly
# biased, quieter gradient: that is the trade the article's version B makes, measured here for one
# $x$ and a stand-in classifier. Whether it matters in training is a question for a training run:
# notebook 05 compares the two estimators there.
#
# ## 6. What terms 2 and 3 ask of the classifier
#
# Fix the means $\mu_y$ and one image $x$, and ask which weights over the clusters terms 2 and 3
# prefer. Treat the weights as a free probability vector $w = (w_1, \dots, w_K)$, the same for
# every $z$ drawn from $p(z|x)$, which is how the closed form of term 2 sees them. With
# $\mathrm{KL}_y = \mathrm{KL}\big(p(z|x)\Vert q(z|y)\big)$ the two terms are
#
# $$
# F(w) = \sum_y w_y\,\mathrm{KL}_y + \sum_y w_y\log\frac{w_y}{q(y)} .
# $$
#
# Minimise under $\sum_y w_y = 1$ with a Lagrange multiplier $\nu$. The derivative of
# $F(w) + \nu\,\big(\sum_y w_y - 1\big)$ with respect to $w_y$ is
# $\mathrm{KL}_y + \log\frac{w_y}{q(y)} + 1 + \nu$; setting it to zero gives
# $w_y \propto q(y)\,e^{-\mathrm{KL}_y}$, and normalising,
#
# $$
# p^*(y|x) = \frac{q(y)\,e^{-\mathrm{KL}_y}}{\sum_{y'} q(y')\,e^{-\mathrm{KL}_{y'}}} . \tag{5}
# $$
#
# It is the minimum, not only a stationary point. Write
# $\log\frac{w_y}{q(y)} = \log\frac{w_y}{p^*(y|x)} - \mathrm{KL}_y - \log Z$, with $Z$ the denominator
# of (5); the $\mathrm{KL}_y$ cancel and
#
# $$
# F(w) = \mathrm{KL}\big(w\,\Vert\,p^*(\cdot|x)\big) - \log\sum_y q(y)\,e^{-\mathrm{KL}_y} ,
# $$
#
# smallest at $w = p^*$, where it equals the log-sum-exp.
#
# Eq. (5) is a *soft assignment*: the responsibility that the E-step of EM computes for a Gaussian
# mixture, here the mixture $q(z)$ of section 1, with the code's whole Gaussian $p(z|x)$ in place of
# a point. For this model it is even simpler: the $\sigma$ part of $\mathrm{KL}_y$ is the same for
# every cluster and cancels in (5), so
# $p^*(y|x) = \mathrm{softmax}_y\big(-\tfrac12\lVert\mu(x) - \mu_y\rVert^2\big)$, the mixture's
# posterior $q(y|z)$ at $z = \mu(x)$. (If the weights may change with $z$, as the classifier's do,
# the same computation at each $z$, with $\log\frac{p(z|x)}{q(z|y)}$ in place of $\mathrm{KL}_y$,
# gives $q(y|z) \propto q(y)\,q(z|y)$ at the sampled $z$: the same posterior, taken at the sample
# rather than at the mean.) So the cluster part of eq. (4) fits an equal-weight, unit-variance
# Gaussian mixture to the codes, and trains the classifier towards that mixture's
# responsibilities. `vc.optimal_assignment` computes (5) for $q(y) = 1/K$. The cell below checks it
# on one code with $K = 4$: $F$ at $p^*$ against the log-sum-exp, and against other weights.

# %%
# NBVAL_CHECK_OUTPUT  (deterministic: the test suite compares this output)
g = torch.Generator().manual_seed(2)
K, d = 4, 2
mu, logvar = torch.randn(1, d, generator=g), 0.5 * torch.randn(1, d, generator=g)
means = 1.5 * torch.randn(K, d, generator=g)
term_2 = lambda w: vc.cluster_kl(mu, logvar, means, w).item()                    # w: (1, K)
F = lambda w: term_2(w) + vc.categorical_kl(w.clamp_min(1e-12).log()).item()    # terms 2 + 3
kl = torch.tensor([term_2(e[None]) for e in torch.eye(K)])                      # KL_y, y = 0..K-1
p_star = vc.optimal_assignment(mu, logvar, means)                               # (1, K)
hard = torch.eye(K)[kl.argmin()][None]                                          # one-hot at argmin KL_y
random_w = torch.softmax(2 * torch.randn(1000, 1, K, generator=g), -1)
print("KL_y     ", "  ".join(f"{v:.3f}" for v in kl.tolist()))
print("p*(y|x)  ", "  ".join(f"{v:.3f}" for v in p_star[0].tolist()))
print(f"terms 2 + 3:  at p* {F(p_star):.4f}   -log sum_y (1/K) exp(-KL_y) = "
      f"{-(torch.logsumexp(-kl, 0) - math.log(K)).item():.4f}")
print(f"              uniform {F(torch.full((1, K), 1 / K)):.4f}   one-hot at the argmin {F(hard):.4f}   "
      f"best of 1,000 random weights {min(F(w) for w in random_w):.4f}")
print(f"term 2 alone: at p* {term_2(p_star):.4f}   one-hot at the argmin {term_2(hard):.4f} (= min KL_y)")

# %% [markdown]
# $F$ at $p^*$ equals the log-sum-exp to the printed digits and lies below the uniform weights, the
# hard choice and the best of a thousand random weight vectors.
#
# **Without term 3** the last line is the whole story: $F(w) = \sum_y w_y\,\mathrm{KL}_y$ is linear
# in $w$, and a linear function on the simplex is smallest at a vertex, all the weight on
# $\arg\min_y \mathrm{KL}_y$, the nearest mean. That is the assignment step of k-means, and it
# shares k-means' weakness. A mean that is nearest to no code gets weight 0 from every $x$; term 2
# then exerts no pull on it (its gradient, $\sum_x w_y(x)\,(\mu_y - \mu(x))$, is 0), so it stays
# where it is and its cluster stays empty: a dead centroid. With term 3 every weight in (5) is
# positive and every mean feels every code, however weakly. Notebook 05 (section 2) trains the toy
# below without term 3 and shows clusters emptying.
#
# ## 7. A toy you can watch: four Gaussian blobs in 2-D
#
# The same model and the same loss, shrunk: points in the plane, a small MLP encoder and decoder,
# a 2-D latent space (so we can draw it), $K = 4$ clusters. `vc.train` is the very function that
# trains the MNIST model; it accepts a toy model and toy data.
#
# One change of setting: a point has 2 coordinates where an image has 784 pixels, so the
# reconstruction term $\frac\lambda2\lVert x - G(z)\rVert^2$ weighs far less for the same $\lambda$.
# We use $\lambda = 50$; notebook 05 shows what happens with the article's $\lambda = 5$ here
# (the prior wins, every mean stays at the origin, and no cluster forms).

# %%
toy = toy_mixture(n=2000, k=4, seed=0)     # the points toy_run trains on
epochs = 6 if QUICK else 40
show_at = {1, 3, epochs // 4, epochs // 2, epochs}
snapshots = []


def snapshot(epoch, model, entry):
    if epoch in show_at:
        snapshots.append(plots.toy_snapshot(model, toy.images, epoch))


# lambda 50, batch 20, K = 4, d = 2: see help(toy_run)
result = toy_run(epochs=epochs, seed=0, on_epoch_end=snapshot)
print({k: round(v, 3) for k, v in result.metrics["test"].items() if k != "n_samples"})

# %% [markdown]
# Each panel is the latent plane at one epoch: dots are the codes $\mu(x)$ coloured by the true
# blob, the shaded regions are where the classifier $p(y|z)$ picks each cluster, and the crosses
# are the cluster means $\mu_y$; a cluster (region and cross) wears the colour of the blob the
# Hungarian match gives it at that epoch. The codes form four separate groups from the first
# panel on: reconstructing the points already asks the encoder to keep the blobs apart. At first
# every mean sits at the origin and $p(y|z)$ is nearly uniform (term 3 pushes it there), so the
# regions are noise. Then the symmetry breaks, the means move apart, each towards one group of
# codes (term 2 pulls $\mu_y$ towards the codes that weight it), the regions settle around the
# groups, and in the last panel each mean sits inside its group. The means travel to the codes;
# the groups of codes stay where they formed.

# %%
plots.toy_figure(snapshots, toy.labels.numpy())

# %% [markdown]
# **Has the classifier learned the optimal assignment?** Section 6 says that, for the trained
# means, terms 2 and 3 are smallest when each $x$ gets the weights $p^*(y|x)$ of (5). Compare on
# the toy points the trained classifier at the code's mean, $p(y|\mu(x))$ (what `vc.predict`
# uses), with $p^*(y|x)$ from `vc.optimal_assignment` for the trained means:

# %%
trained = result.model.eval()
with torch.no_grad():
    mu, logvar = trained.encoder(toy.images)                            # (2000, 2) each
    p_classifier = torch.softmax(trained.classifier(mu), -1)            # p(y | mu(x)), (2000, 4)
    p_star = vc.optimal_assignment(mu, logvar, trained.means)           # eq. (5), (2000, 4)
tv = 0.5 * (p_classifier - p_star).abs().sum(1)                         # total variation, in [0, 1]
agree = (p_classifier.argmax(1) == p_star.argmax(1)).float().mean().item()
print(f"same most likely cluster for {agree:.1%} of the {len(tv)} points")
print(f"total variation between p(y|mu(x)) and p*(y|x): mean {tv.mean().item():.4f}, "
      f"median {tv.median().item():.4f}, largest {tv.max().item():.4f}")
print(f"mean probability of the most likely cluster: "
      f"classifier {p_classifier.max(1).values.mean().item():.3f}, p* {p_star.max(1).values.mean().item():.3f}")

# %% [markdown]
# The two agree on the most likely cluster of every point, and their distributions differ by a
# total variation of a few thousandths on average: the classifier has learned, closely, the
# responsibilities of the mixture that the trained means define. Both are confident because the
# four groups of codes lie far apart compared with the unit variance of $q(z|y)$. On this easy toy
# the classifier adds nothing that (5) could not compute from the means; what it is trained to
# compute is the mixture's soft assignment.
#
# ## 8. Related models
#
# The article's model sits among several VAEs with a discrete cluster variable:
#
# * **VaDE** (Jiang et al. 2017) has the same generation story, cluster then Gaussian code then
#   decoder, with a mixture prior whose weights and per-cluster diagonal variances are learned as
#   well. It has no classifier: the cluster probabilities of an image are computed from the mixture
#   itself, the analogue of (5) (exercise 5 derives the optimum in VaDE's setting). Its training
#   starts from a pretrained autoencoder and a Gaussian mixture fitted to that autoencoder's codes;
#   it reports about 94 % accuracy on MNIST.
# * **GMVAE** (Dilokthanakul et al. 2016) makes the mixture richer: a second Gaussian latent is
#   mapped by learned networks to a mean and a variance for each of the $K$ components. With
#   $K = 10$ on MNIST it reports 77.8 ± 4.8 % accuracy, and analyses why its clusters degenerate.
# * **M2** (Kingma et al. 2014), built for semi-supervised learning, feeds the class $y$ to the
#   decoder, $p(x|y, z)$, and classifies the image, $q(y|x)$. The article's model does the
#   opposite on both counts: the decoder sees only $z$ and the classifier reads only $z$, so the
#   cluster has to be written into the code, where the mixture prior can shape it.
#
# ## Exercises
#
# Each takes a few minutes at most on a laptop CPU.
#
# 1. Show that term 2 with the closed form is $\ge 0$ and is 0 only when $\sigma = 1$ and
#    $\mu = \mu_y$ for every cluster with weight. Check it numerically with `vc.cluster_kl`.
# 2. Train the toy with $K = 8$ on the four blobs (`toy_run(n_clusters=8, seed=0)`; its argument
#    `k` sets the number of blobs, not of clusters). How many cluster means end up in use?
# 3. Replace the closed form by the one-sample estimator in the toy: empty the list first
#    (`snapshots.clear()`), then `toy_run(estimator="sample", epochs=epochs, seed=0,
#    on_epoch_end=snapshot)` and `plots.toy_figure(snapshots, toy.labels.numpy())`.
#    Does the picture change?
# 4. **Derivation: a non-uniform $q(y)$.** Redo the minimisation of section 6 for any prior
#    $q(y)$ (for example $q = (0.7, 0.1, 0.1, 0.1)$). What are the minimiser and the minimum? How
#    does $q(y)$ shift the boundary between two clusters? Check your answer numerically with the
#    cell of section 6, term 3 written as $\sum_y w_y\log\frac{w_y}{q(y)}$.
# 5. **Derivation: VaDE's responsibilities.** VaDE's prior is
#    $p(c)\,p(z|c) = \pi_c\,\mathcal N(z; \mu_c, \mathrm{diag}\,\sigma_c^2)$, and its ELBO contains,
#    for one image, $\mathbb{E}_{z\sim q(z|x)}\sum_c q(c|x)\big[\log\pi_c + \log p(z|c) -
#    \log q(c|x)\big]$. Find the $q(c|x)$ that maximises it. Show that it is (5) with
#    $q(y) = \pi_c$ and $\mathrm{KL}_c = \mathrm{KL}\big(q(z|x)\Vert p(z|c)\big)$, and that it equals
#    the mixture's posterior $p(c|z)$ at $z = \mu(x)$ when all $\sigma_c$ are equal, but not in
#    general.
#
# Solutions: `notebooks/solutions.md`.
#
# ## Summary
#
# * Replacing $z$ by $(z, y)$ in the joint KL and choosing the factorisation (3) gives eq. (4):
#   reconstruction, a pull of each code towards its cluster's Gaussian, and a KL of $p(y|z)$ to
#   the uniform $q(y)$.
# * The prior on codes is a Gaussian mixture with equal weights and unit covariance; the encoding
#   story clusters, the generation story samples a chosen cluster.
# * The author weights the closed-form KL by $p(y|z)$ of a sampled $z$: a hybrid estimator with a
#   slightly different target from eq. (4), and quieter gradients than the one-sample estimate in
#   the measurement above.
# * With the means fixed, terms 2 and 3 are smallest at $p^*(y|x) \propto q(y)\,e^{-\mathrm{KL}_y}$, the
#   mixture's responsibility; without term 3 the optimum is k-means' hard assignment, which can
#   leave clusters empty.
# * On the toy, the trained classifier reproduces $p^*$ closely, and the cluster means travel to the
#   groups of codes the autoencoder has formed.
#
# ## References
#
# * Su Jianlin (苏剑林), 2018. 变分自编码器（四）：一步到位的聚类方案 ("Variational autoencoders
#   (4): a one-step clustering scheme"), <https://kexue.fm/archives/5887>. Eqs. (2)–(4) and the model.
# * The author's Keras script, `vae_keras_cluster.py` in <https://github.com/bojone/vae>: the
#   hybrid estimator (versions A and B) and the one-sample estimate (version C).
# * D. P. Kingma and M. Welling, 2014. Auto-Encoding Variational Bayes. ICLR,
#   [arXiv:1312.6114](https://arxiv.org/abs/1312.6114).
# * Z. Jiang, Y. Zheng, H. Tan, B. Tang and H. Zhou, 2017. Variational Deep Embedding: An
#   Unsupervised and Generative Approach to Clustering (VaDE). IJCAI,
#   [arXiv:1611.05148](https://arxiv.org/abs/1611.05148).
# * N. Dilokthanakul, P. A. M. Mediano, M. Garnelo, M. C. H. Lee, H. Salimbeni, K. Arulkumaran and
#   M. Shanahan, 2016. Deep Unsupervised Clustering with Gaussian Mixture Variational Autoencoders
#   (GMVAE). [arXiv:1611.02648](https://arxiv.org/abs/1611.02648).
# * D. P. Kingma, D. J. Rezende, S. Mohamed and M. Welling, 2014. Semi-Supervised Learning with
#   Deep Generative Models (M2). NeurIPS, [arXiv:1406.5298](https://arxiv.org/abs/1406.5298).
