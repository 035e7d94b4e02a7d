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
# resulting terms does; how the author computes them, including a subtle *hybrid* estimator;
# and, on a 2-D toy trained in seconds, how the cluster means and the classifier's regions move
# while the model learns.
#
# **Time.** Under a minute on a laptop CPU. Every numerical check below is deterministic (fixed
# seeds), so the test suite compares its printed output too.

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

import math

# %matplotlib inline
import torch

import vaeclust_tutorial as vc
from vaeclust_tutorial import data, plots
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
# If the weights $p(y|z)$ are held fixed (the author's choice, examined in §4), term 2 needs
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
# ## 4. Checking each step numerically
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
z = mu + (0.5 * logvar).exp() * torch.randn(n, d, generator=g)
p_y = torch.softmax(z @ W, -1)                                  # p(y|z) of each sampled z

per_draw = lambda f: torch.stack([f(z[i:i + 1], p_y[i:i + 1]) for i in range(0, n, 1)])
hybrid = per_draw(lambda zi, qi: vc.cluster_kl(mu, logvar, means, qi))
single = per_draw(lambda zi, qi: vc.cluster_kl_sample(zi, mu, logvar, means, qi))
print(f"hybrid (closed-form KL, sampled weights): mean {hybrid.mean():8.3f}   std {hybrid.std():7.3f}")
print(f"one-sample estimate:                      mean {single.mean():8.3f}   std {single.std():7.3f}")

# %% [markdown]
# The two means differ a little (different targets, as argued above) and the hybrid's spread is
# clearly smaller: it removes the noise of the KL itself and keeps only the noise of the weights.
# A biased but quieter gradient: the trade the article's version B makes. Notebook 05 compares
# the two in training.
#
# ## 5. A toy you can watch: four Gaussian blobs in 2-D
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
# are the cluster means $\mu_y$ (the colours of regions and crosses are cluster numbers, those of
# the dots true blobs: they need not match). At first every mean sits at the origin and $p(y|z)$
# is nearly uniform (term 3 pushes it there), so the regions are noise; then the symmetry breaks,
# the means move apart, each region settles around one group of codes, and the codes gather
# around "their" mean (term 2).

# %%
plots.toy_figure(snapshots, toy.labels.numpy())

# %% [markdown]
# ## Exercises
#
# 1. Show that term 2 with the closed form is $\ge 0$ and is 0 only when $\sigma = 1$ and
#    $\mu = \mu_y$ for every cluster with weight. Check it numerically with `vc.cluster_kl`.
# 2. Train the toy with $K = 8$ on the four blobs. How many cluster means end up in use?
# 3. Replace the closed form by the one-sample estimator in the toy: empty the list first
#    (`snapshots.clear()`), then `toy_run(estimator="sample", epochs=epochs, seed=0,
#    on_epoch_end=snapshot)` and `plots.toy_figure(snapshots, toy.labels.numpy())`.
#    Does the picture change?
#
# Solutions: `notebooks/solutions.md`.
