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
# # 01 · The plain VAE, and clustering in two steps
#
# **What you will learn.** The variational autoencoder written as one KL divergence between two
# joint distributions (eq. 1), the convolutional VAE the article builds on, what its latent space
# looks like on MNIST, and how well the *two-step* recipe clusters it: train a VAE, then run
# k-means or a Gaussian mixture on the codes. Notebook 02 derives the *one-step* alternative.
#
# **Time.** About 5 minutes on a 2-core CPU (3 epochs of training), less with more cores. With
# `VAECLUST_QUICK=1` it runs in seconds on a subset, and every figure says so.

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

# %matplotlib inline
import torch

import vaeclust_tutorial as vc
from vaeclust_tutorial import baselines, plots

QUICK = vc.is_quick()
EPOCHS = 1 if QUICK else 3
N_TRAIN = 2000 if QUICK else None
_ = torch.manual_seed(0)
print("quick mode" if QUICK else "full mode", "| torch", torch.__version__)

# %% [markdown]
# ## 1. The VAE as one KL divergence
#
# We have the data distribution $\tilde p(x)$ (the training images), an encoder $p(z|x)$, a
# decoder $q(x|z)$ and a prior $q(z)$. The article asks the two *joint* distributions
# $p(x,z) = \tilde p(x)\,p(z|x)$ and $q(x,z) = q(x|z)\,q(z)$ to be equal, and minimises their KL
# divergence:
#
# $$
# \mathrm{KL}\big(\tilde p(x)p(z|x)\,\Vert\,q(x|z)q(z)\big)
# = \mathbb{E}_{x\sim\tilde p}\Big[\mathbb{E}_{z\sim p(z|x)}\big[-\log q(x|z)\big]
#   + \mathrm{KL}\big(p(z|x)\,\Vert\,q(z)\big)\Big] + \mathbb{E}_{x\sim\tilde p}\log\tilde p(x) . \tag{1}
# $$
#
# (Write the KL as $\mathbb{E}\log\frac{\tilde p(x)\,p(z|x)}{q(x|z)\,q(z)}$ and split the log.) The
# last term, minus the entropy of the data, is a constant that no parameter changes. The
# bracket is minus the familiar **evidence lower bound** (ELBO) of Kingma and Welling, so
# minimising the joint KL is *equivalent* to maximising the ELBO, and is the same training
# objective, read differently:
#
# $$
# \mathbb{E}_{x\sim\tilde p}\Big[\mathbb{E}_{z\sim p(z|x)}\log q(x|z)
#   - \mathrm{KL}\big(p(z|x)\,\Vert\,q(z)\big)\Big]
# \;\le\; \mathbb{E}_{x\sim\tilde p}\log q(x), \qquad q(x) = \int q(x|z)\,q(z)\,dz .
# $$
#
# The gap in this inequality is $\mathbb{E}_x\,\mathrm{KL}\big(p(z|x)\Vert q(z|x)\big) \ge 0$, how far
# the encoder is from the decoder's exact posterior (exercise 4). What the joint reading adds is
# the recipe notebook 02 follows: to build a new model, choose how the two joints factorise and
# write down their KL.
#
# With $p(z|x) = \mathcal N(\mu(x), \mathrm{diag}\,\sigma^2(x))$, $q(z) = \mathcal N(0, I)$ and
# $q(x|z) = \mathcal N(G(z), \tfrac1\lambda I)$ the two terms of the bracket in (1) are, up to an
# additive constant,
#
# $$
# \frac{\lambda}{2}\,\lVert x - G(z)\rVert^2
# \quad\text{and}\quad
# \frac12\sum_d\big(\sigma_d^2 + \mu_d^2 - 1 - \log\sigma_d^2\big),
# $$
#
# a weighted squared error and the closed-form Gaussian KL. $\lambda$ is an inverse variance:
# a larger $\lambda$ asks for sharper reconstructions and leaves the prior less say. In the
# package these are `vc.reconstruction` and `vc.gaussian_kl`, each with its equation in the
# docstring:

# %%
help(vc.gaussian_kl)

# %% [markdown]
# ## 2. The data
#
# `vc.load` returns a split as tensors: images of shape (N, 1, 28, 28) with pixels scaled to
# [0, 1] (byte / 255, as in the article), and integer labels. The files are verified against pinned
# SHA-256 checksums every time they are read.

# %%
train = vc.load("mnist", "train", limit=N_TRAIN)
test = vc.load("mnist", "test", limit=2000 if QUICK else None)
print(train.images.shape, train.labels.shape, "classes:", train.classes)
fig = plots.reconstructions_figure(train.images[:10], train.images[10:20])
fig.axes[0].set_title("Twenty training images")
for ax in fig.axes:
    ax.set_ylabel("image", rotation=0, ha="right")
fig

# %% [markdown]
# ## 3. The convolutional VAE
#
# The article's encoder has two stages of 3×3 convolutions with stride 2 (28 → 14 → 7 pixels,
# 32 then 64 filters), then two dense heads for $\mu$ and $\log\sigma^2$ ($d = 20$). The decoder
# mirrors it with transposed convolutions and ends in a sigmoid. `article-a` is the author's first
# draft of that network (one conv per stage, ReLU); `article-b`, the model the article reports,
# adds a stride-1 convolution to each stage and uses LeakyReLU(0.2). We train the cheaper `article-a` here; the clustering notebooks use `article-b`.

# %%
vae = vc.conv_vae("article-a")
print(vae)

# %%
history = baselines.train_vae(vae, train.images, epochs=EPOCHS, lam=5.0, seed=0)
history

# %% [markdown]
# Reconstructions of test images (top) and what the decoder makes of their codes (bottom):

# %%
with torch.no_grad():
    vae.eval()
    x = test.images[:10]
    x_hat = vae.decoder(vae.encoder(x)[0])
plots.reconstructions_figure(x, x_hat)

# %% [markdown]
# And samples from the prior, $z \sim \mathcal N(0, I)$, decoded. They are blurred, digit-like
# shapes, several of them no clear digit at all; and a plain VAE has no notion of *which* digit
# to draw: nothing in eq. (1) asks for groups.

# %%
with torch.no_grad():
    samples = vae.decoder(torch.randn(20, 20, generator=torch.Generator().manual_seed(0)))
fig = plots.reconstructions_figure(samples[:10], samples[10:])
fig.axes[0].set_title("Samples from the prior N(0, I)")
fig.axes[0].set_ylabel("sample", rotation=0, ha="right")
fig.axes[1].set_ylabel("sample", rotation=0, ha="right")
fig

# %% [markdown]
# ## 4. The latent space
#
# The test images' latent means $\mu(x)$, projected on their first two principal axes and coloured
# by the true digit. Digits do gather, but the groups touch and overlap, and nothing in the model
# says where one ends.

# %%
mu = baselines.latent_means(vae, test.images)
plots.latent_figure(mu, test.labels.numpy(), classes=test.classes)

# %% [markdown]
# ## 5. Two-step clustering, measured
#
# The usual recipe: fit k-means (or a Gaussian mixture) with $K = 10$ on the latent means, and
# compare the clusters with the true labels. Four scores, all blind to how the clusters are
# numbered (purity, Hungarian accuracy and NMI lie in [0, 1]; ARI is at most 1, about 0 for a
# random labelling, and can be slightly negative):
#
# * **purity** (the article's "accuracy"): each cluster votes for its most common class;
# * **Hungarian accuracy** (what DEC and VaDE report): the best one-to-one matching of clusters
#   to classes, found by `scipy.optimize.linear_sum_assignment`;
# * **NMI** and **ARI**: information- and pair-counting agreement, 1 for a perfect match.
#
# Notebook 03 shows why purity and Hungarian accuracy can differ.

# %%
results = baselines.two_step_scores(mu, test.labels, n_clusters=10, seed=0)
print(f"{'method':<18} {'purity':>7} {'Hungarian':>10} {'NMI':>6} {'ARI':>6}")
for method, (scores, _) in results.items():
    print(f"{method:<18} {scores['purity']:7.3f} {scores['accuracy']:10.3f} {scores['nmi']:6.3f} "
          f"{scores['ari']:6.3f}")

# %% [markdown]
# The contingency matrix of the k-means clusters (rows) against the true digits (columns) shows
# where the two-step recipe goes wrong: clusters that mix two digits, digits split over clusters.

# %%
pred = results["k-means"][1]
plots.contingency_figure(vc.contingency(test.labels.numpy(), pred, n_clusters=10, n_classes=10),
                         test.classes)

# %% [markdown]
# **Why one step?** k-means assumes round clusters of equal size in a space that was never trained
# to have them; the VAE was trained without knowing clustering would follow. The article's idea
# is to put the cluster into the model itself: a discrete latent $y$ beside $z$, so that encoding
# *is* clustering and generation can be asked for one cluster at a time. Notebook 02 derives it.
#
# Keep the scores above: a well-fitted Gaussian mixture on a plain VAE's codes is a strong
# baseline, and whether the one-step model beats it depends on the run (notebook 03 prints its
# scores; the README's results table gives the spread over seeds). What the one-step model adds
# for certain is a generator per cluster, trained together with the clustering.
#
# ## Exercises
#
# Each takes at most a few minutes on a laptop CPU; the first two train on a 10,000-image subset
# (`vc.load("mnist", "train", limit=10_000)`) to stay within that.
#
# 1. **Does a better VAE cluster better?** Train `article-a` on the subset for 1 epoch and for 5
#    epochs (`baselines.train_vae(vc.conv_vae("article-a"), small.images, epochs=..., seed=0)`) and
#    compare the two-step scores of the two on the test set.
# 2. **The weight $\lambda$.** On the same subset, train for 3 epochs with $\lambda = 1$ and with
#    $\lambda = 20$. What happens to the reconstructions, the samples from the prior, and the
#    two-step scores?
# 3. **k-means on the raw pixels.** Fit it on `test.images.flatten(1).numpy()` and compare its
#    scores with those on the latent means.
# 4. **Derivation.** (a) Derive eq. (1): write the joint KL as an expectation of a log-ratio and
#    split the log. (b) Show that the ELBO is at most $\mathbb{E}_x\log q(x)$, with the gap
#    $\mathbb{E}_x\,\mathrm{KL}\big(p(z|x)\Vert q(z|x)\big)$, where $q(z|x) = q(x|z)\,q(z)/q(x)$.
#    (c) Deduce that the joint KL is at least $\mathrm{KL}\big(\tilde p(x)\Vert q(x)\big)$. What
#    does minimising it do to the model's distribution of images $q(x)$?
#
# Solutions: `notebooks/solutions.md`.
#
# ## Summary
#
# * The VAE's loss is one KL divergence between two joint distributions, the encoding
#   $\tilde p(x)\,p(z|x)$ and the generation $q(x|z)\,q(z)$. Up to the constant
#   $\mathbb{E}\log\tilde p(x)$ it is minus the ELBO: minimising it *is* maximising the ELBO.
# * With Gaussian choices its two terms are $\tfrac\lambda2\lVert x - G(z)\rVert^2$ and the
#   closed-form KL to $\mathcal N(0, I)$; $\lambda$, an inverse variance, weighs reconstruction
#   against the prior.
# * On MNIST the latent means of a plain VAE group by digit, but the groups touch: nothing in
#   eq. (1) asks for clusters.
# * Two-step clustering (k-means or a Gaussian mixture on $\mu(x)$) is scored with purity,
#   Hungarian accuracy, NMI and ARI; the Gaussian mixture is the stronger of the two here and a
#   baseline to keep in mind.
# * The one-step idea: put a discrete cluster $y$ into the model, beside $z$, and derive the loss
#   the same way (notebook 02).
#
# ## References
#
# * Su Jianlin (苏剑林), 2018. 变分自编码器（四）：一步到位的聚类方案 ("Variational autoencoders
#   (4): a one-step clustering scheme"), <https://kexue.fm/archives/5887>. The article these
#   notebooks follow; eq. (1) is its starting point.
# * The author's Keras script, `vae_keras_cluster.py` in <https://github.com/bojone/vae>.
# * D. P. Kingma and M. Welling, 2014. Auto-Encoding Variational Bayes. ICLR,
#   [arXiv:1312.6114](https://arxiv.org/abs/1312.6114). The VAE, the ELBO and the
#   reparameterisation $z = \mu + \sigma\varepsilon$.
# * J. Xie, R. Girshick and A. Farhadi, 2016. Unsupervised Deep Embedding for Clustering Analysis
#   (DEC). ICML, [arXiv:1511.06335](https://arxiv.org/abs/1511.06335). The method the article
#   compares with; it clusters a pretrained autoencoder's codes and then refines both, and reports
#   Hungarian accuracy.
# * Z. Jiang, Y. Zheng, H. Tan, B. Tang and H. Zhou, 2017. Variational Deep Embedding (VaDE).
#   IJCAI, [arXiv:1611.05148](https://arxiv.org/abs/1611.05148). A VAE with a Gaussian-mixture
#   prior, started from a pretrained autoencoder and a Gaussian mixture fitted to its codes: a
#   two-step fit like the one above (notebook 02 relates it to the article's model).
