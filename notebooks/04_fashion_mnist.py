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
# # 04 · One-step clustering of Fashion-MNIST
#
# **What you will learn.** The same model and settings as notebook 03, unchanged, on a harder
# dataset: Zalando's Fashion-MNIST (ten classes of clothing, footwear and bags, 28×28 grey images, the same sizes as
# MNIST). Which garments the model separates without labels, which it merges, and how the result
# compares with the article's 60.6 %.
#
# **Time.** About a minute on a laptop CPU with the pretrained model that ships in the package.
# Without it the notebook trains for 50 epochs: about 26 minutes on 2 cores with AVX512-BF16
# (bf16, the default there), about twice that in fp32 (see the README's speed table), and
# re-running the notebook resumes an interrupted training.

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
from vaeclust_tutorial import plots
from vaeclust_tutorial.config import apply_quick
from vaeclust_tutorial.models import multiply_adds
from vaeclust_tutorial.pretrained import load_or_train

DATASET = "fashion-mnist"
ARTICLE_PURITY = 0.606          # the article's one run, test set
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. The model and its settings
#
# Exactly notebook 03's: `vc.preset("article-b")`, only the dataset changes. The author made the
# same switch by swapping one import line in his script.

# %%
train = vc.load(DATASET, "train", limit=2000 if vc.is_quick() else None)
print("classes:", train.classes)
fig = plots.cluster_samples_figure(train.images, train.labels.numpy(), 10, per_cluster=12, seed=0)
fig.axes[0].set_title("The ten true classes (rows are labels here, not clusters)")
for ax, name in zip(fig.axes, train.classes):
    ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
fig

# %%
cfg = apply_quick(vc.preset("article-b", dataset=DATASET, seed=2))
model = vc.build_model(cfg)
print(cfg)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters, "
      f"{multiply_adds(model) / 1e6:.1f} M multiply-adds per image (forward)")

# %% [markdown]
# ## 2. Train, or load the pretrained model
#
# The package ships the checkpoint of seed 2, the seed with the median test purity among the
# reproduction runs (README, "Results"); the config above asks for that seed. `load_or_train` loads
# the checkpoint when your config is the one it was trained with (the device and the precision
# aside); change a field and it trains your config instead, into `runs/notebook-04/`, writing a
# checkpoint after every epoch (about half an hour on a laptop CPU; a re-run resumes).

# %%
model, history, metrics = load_or_train(cfg, "notebook-04")

# %% [markdown]
# The training curves. Watch the categorical KL (term 3): while it is near 0, $p(y|z)$ is almost
# uniform and no cluster exists yet (for version A this lasts about 4 epochs; read B's off the
# curve); it rises as the classifier commits, and the test scores climb from there.

# %%
plots.training_curves_figure(history)

# %% [markdown]
# ## 3. The four scores
#
# Each test image goes to the cluster $\arg\max_y p(y\,|\,\mu(x))$: the classifier applied to the
# *mean* code, as the author's evaluation does.

# %%
test = vc.load(DATASET, "test")
pred, mu, p_y = vc.predict(model, test.images, return_codes=True)  # p_y: p(y|mu(x)), (N, K)
scores = vc.clustering_scores(test.labels.numpy(), pred)
train_scores = vc.evaluate(model, train)
print(f"{'':6} {'purity':>7} {'Hungarian':>10} {'NMI':>6} {'ARI':>6}")
for name, s in (("test", scores), ("train", train_scores)):
    print(f"{name:6} {s['purity']:7.4f} {s['accuracy']:10.4f} {s['nmi']:6.3f} {s['ari']:6.3f}")

# %% [markdown]
# On Fashion-MNIST both scores stay near 60 %: several classes are hard to tell apart from
# pixels alone (shirts, T-shirts, pullovers and coats share a silhouette), so many clusters are
# mixed whatever label they get. The gap between purity and Hungarian accuracy is a different
# matter: it opens when one class takes two clusters and another wins none. The matrix below
# (clusters × true classes) shows both; in the shipped model it is the footwear that splits
# that way (the lines under the matrix name the class left without a cluster).

# %%
matrix = vc.contingency(test.labels.numpy(), pred, n_clusters=model.n_clusters, n_classes=10)
majority = vc.metrics.cluster_to_class(test.labels.numpy(), pred, model.n_clusters)  # -1: empty cluster
print("majority class of each cluster:", majority.tolist())
print("classes that win no cluster:", sorted(set(range(10)) - set(majority.tolist())))
print("\n".join(vc.metrics.cluster_report(matrix, test.classes)))
plots.contingency_figure(matrix, test.classes)

# %% [markdown]
# ## 4. The article's two figures
#
# **Members of each cluster** (training images picked at random from each cluster; the row label
# gives the cluster's majority class and its share):

# %%
train_pred = vc.predict(model, train.images)
plots.cluster_samples_figure(train.images, train_pred, model.n_clusters, labels=train.labels.numpy(),
                             classes=train.classes, seed=0)

# %% [markdown]
# **Generated from each cluster**: $z \sim \mathcal N(\mu_y, I)$ decoded, one row per cluster. This
# is what a plain VAE cannot do: ask for "a sneaker" without a classifier on the side. Rows whose
# cluster mixes two classes generate both, or a blend.

# %%
train_majority = vc.metrics.cluster_to_class(train.labels.numpy(), train_pred, model.n_clusters)
names = [f"cluster {k}\n({train.classes[c] if c >= 0 else 'empty'})" for k, c in enumerate(train_majority)]
plots.generations_figure(model, per_cluster=12, seed=0, row_names=names)

# %% [markdown]
# ## 5. The latent space
#
# The test codes $\mu(x)$ on their first two principal axes, coloured by the true class (left) and
# by the predicted cluster (right). Footwear (sandals, sneakers, ankle boots) and bags sit apart
# from the upper-body garments, which overlap.

# %%
plots.latent_figure(mu, test.labels.numpy(), pred, classes=test.classes)

# %% [markdown]
# ## 6. Beside the article
#
# The article reports one run: **60.6 %** test purity on Fashion-MNIST.

# %%
print(f"this model: test purity {scores['purity']:.1%}  (article: {ARTICLE_PURITY:.1%}); "
      f"Hungarian accuracy {scores['accuracy']:.1%}, NMI {scores['nmi']:.3f}, ARI {scores['ari']:.3f}")
if vc.is_quick():
    print("QUICK MODE: a few epochs on a subset; this number says nothing about the method.")

# %% [markdown]
# One run is one draw: the README's results table gives the mean ± std over seeds and the command
# that reproduces each row; notebook 05 discusses the spread.
#
# ## Exercises
#
# 1. Which classes share a cluster? Which class wins no cluster? Relate it to the latent figure.
# 2. Train with $K = 20$ clusters (`vc.preset("article-b", dataset="fashion-mnist", n_clusters=20)`,
#    a long run: use the command line in the background). How do purity and Hungarian accuracy move?
# 3. Compute purity and Hungarian accuracy by hand from `matrix` (row maxima; then
#    `scipy.optimize.linear_sum_assignment(matrix, maximize=True)`) and check them against
#    `scores`.
#
# Solutions: `notebooks/solutions.md`.
