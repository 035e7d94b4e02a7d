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
# # 06 · Why runs get stuck, and what to change
#
# **What you will learn.** Why the article's model ends, on most seeds, in a split/merge state:
# a digit is the majority of two clusters while other digits share one; two facts about its loss that explain it, each
# checked with numbers on the trained model; and two ingredients, beyond the article, that change
# the objective where it fails: a batch information term, and invariance to small moves of the
# image. Both are loss functions in the package, each with its equation and its source. Together
# they are the configuration `beyond`. A third change that sounded right, tried on the way, made
# things worse, and the measurements say so. The last sections measure what each gave, over
# seeds, and look at the model `beyond` trains.
#
# **Time.** About a minute on a laptop CPU: everything here uses the trained models the package
# ships (notebook 03's, and one of `beyond`). With `VAECLUST_QUICK=1` it trains a tiny stand-in instead, and every
# figure says so.

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
import math

import torch

import vaeclust_tutorial as vc
from vaeclust_tutorial import augment, losses, plots
from vaeclust_tutorial.config import apply_quick
from vaeclust_tutorial.pretrained import load_or_train

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. A stuck run
#
# The article's model on MNIST, seed 2: the run the package ships, with the median test purity of
# five seeds (notebook 03 trained it or loaded it). Its clusters against the true digits:

# %%
cfg = apply_quick(vc.preset("article-b", dataset="mnist", seed=2))
model, history, _ = load_or_train(cfg, "notebook-06")
model.eval()
test = vc.load("mnist", "test", limit=2000 if vc.is_quick() else None)
pred, mu, p_y = vc.predict(model, test.images, return_codes=True)
labels = test.labels.numpy()
matrix = vc.contingency(labels, pred, n_clusters=model.n_clusters, n_classes=10)
scores = vc.clustering_scores(labels, pred)
print(f"test purity {scores['purity']:.1%}, Hungarian accuracy {scores['accuracy']:.1%}")
print("\n".join(vc.metrics.cluster_report(matrix, test.classes)))
plots.contingency_figure(matrix, test.classes)

# %% [markdown]
# The lines above read the matrix: the digits that are the majority of two clusters, the clusters
# that mix digits, and the digits that win no cluster of their own. What the model generates from
# each cluster's Gaussian shows the same thing from the other side (rows ordered as in the
# matrix, named by the digit the Hungarian match gives each cluster):

# %%
match = vc.metrics.hungarian_match(matrix)
order = sorted(range(model.n_clusters), key=lambda k: (match[k] < 0, match[k]))
names = [f"cluster {k}\n→ {test.classes[match[k]] if match[k] >= 0 else 'none'}" for k in order]
plots.generations_figure(model, per_cluster=12, seed=0, clusters=order, row_names=names)

# %% [markdown]
# ## 2. The y-part of the loss fits a Gaussian mixture
#
# Hold the cluster means fixed and look at terms 2 + 3 of eq. (4) as a function of the weights
# $w_y$ they give one image's code (in training $p(y|z)$; here taken at $z = \mu(x)$ and written
# $p(y|x)$, as everywhere below; notebook 02 derives it):
#
# $$
# \sum_y w_y\,\mathrm{KL}_y + \sum_y w_y \log\frac{w_y}{q(y)}
# = \mathrm{KL}\big(w \,\Vert\, p^*\big) - \log\sum_y q(y)\,e^{-\mathrm{KL}_y},
# \qquad p^*(y|x) \propto q(y)\,e^{-\mathrm{KL}_y},
# $$
#
# with $\mathrm{KL}_y = \mathrm{KL}\big(p(z|x)\,\Vert\,\mathcal N(\mu_y, I)\big)$. The best weights are
# $p^*$, the responsibility of a Gaussian mixture with equal weights $q(y) = 1/K$ and unit
# covariance, taken at the code; what is left, $-\log\sum_y \frac1K e^{-\mathrm{KL}_y}$, is how badly
# that mixture fits the image's code (up to terms that do not depend on the means). So the y-part of the article's loss *fits a K-component Gaussian mixture to
# the codes*, and the classifier's job is to learn its responsibilities.
#
# **Check 1: has the classifier learnt $p^*$?** `losses.optimal_assignment` computes $p^*$ from the
# codes and the means alone. Compare it with the trained classifier, image by image:

# %%
with torch.inference_mode():
    code_mu, code_logvar = [], []
    for batch in test.images.split(500):
        m, lv = model.encoder(batch)
        code_mu.append(m)
        code_logvar.append(lv)
    code_mu, code_logvar = torch.cat(code_mu), torch.cat(code_logvar)
    p_star = losses.optimal_assignment(code_mu, code_logvar, model.means)
same_cluster = (p_star.argmax(1) == p_y.argmax(1)).float().mean().item()
total_variation = 0.5 * (p_star - p_y).abs().sum(1).mean().item()
print(f"argmax of p* = argmax of the classifier for {same_cluster:.1%} of test images; "
      f"mean total-variation distance {total_variation:.3f}")

# %% [markdown]
# **Check 2: does the loss prefer the right answer?** If the mixture fit is what the y-part
# measures, we can ask how well *other* placements of the ten means would fit the same codes:
#
# * the trained means $\mu_y$;
# * k-means on the codes (an unsupervised placement: scikit-learn's `KMeans`, as notebook 01's
#   two-step recipe);
# * the mean code of each true digit: a placement that *uses the labels*, so it is a diagnostic
#   only, never something to train with.
#
# For each, the y-part at its best weights, $-\log\sum_y \frac1K e^{-\mathrm{KL}_y}$
# (`losses.mixture_misfit`), averaged over the
# test codes (lower is a better fit), and the Hungarian accuracy of assigning each code to its
# nearest mean in that sense ($\arg\max_y p^*$):

# %%
from sklearn.cluster import KMeans  # noqa: E402


placements = {
    "trained means": model.means.detach(),
    "k-means on the codes": torch.tensor(KMeans(10, n_init=3, random_state=0).fit(
        code_mu.numpy()).cluster_centers_, dtype=torch.float32),
    "mean code of each digit (labels!)": torch.stack([code_mu[test.labels == c].mean(0) for c in range(10)]),
}
print(f"{'placement of the 10 means':<36} {'y-part (nats)':>14} {'Hungarian':>10}")
fits = {name: (losses.mixture_misfit(code_mu, code_logvar, means).mean().item(),
               vc.hungarian_accuracy(labels, losses.optimal_assignment(code_mu, code_logvar, means).argmax(1).numpy()))
        for name, means in placements.items()}
for name, (value, accuracy) in fits.items():
    print(f"{name:<36} {value:14.2f} {accuracy:10.1%}")

# %% [markdown]
# Read the table with one caveat: the codes were trained *together with* the trained means (term
# 2 pulls each code towards the mean of its cluster), so the comparison favours them. What it can
# show is whether, for the codes as they now lie, the loss still prefers the placement that
# matches the digits. The line below says which placement fits best:

# %%
ranking = sorted(fits, key=lambda name: fits[name][0])
print("from the best fit to the worst: " + " < ".join(ranking))
digits = ranking.index("mean code of each digit (labels!)") + 1
print(f"the placement that matches the digits ranks {digits} of {len(ranking)}: "
      + ("the loss prefers it" if digits == 1 else "for these codes the loss prefers placements that cluster them worse"))

# %% [markdown]
# **Why the split/merge state is cheap.** Notebook 05, section 5, works it out: with equal
# weights and unit covariance, cluster sizes cost nothing, splitting an elongated class saves
# about what merging two close ones costs, and leaving the state means carrying a whole component
# across the latent space, uphill, which gradient descent does not do. Check 2 shows both on the
# shipped model: the loss does not prefer the digits' own placement (it fits these codes no better
# than the trained means), and a better fit exists that gradient descent did not find (k-means,
# which restarts, fits them better and clusters them better).
#
# ## 3. Term 3 works against informative clusters
#
# Average the article's term 3 over the data. With $\bar p = \mathbb E_x\,p(y|x)$ and the uniform
# $U = q(y)$,
#
# $$
# \mathbb E_x\,\mathrm{KL}\big(p(y|x)\,\Vert\,U\big)
# = \underbrace{H(\bar p) - \mathbb E_x H\big(p(y|x)\big)}_{I(x;\,y)} + \mathrm{KL}\big(\bar p\,\Vert\,U\big).
# $$
#
# The first part is the mutual information between the image and its cluster: how much the
# cluster says about the image. Term 3 penalises it exactly as much as it penalises unequal
# cluster sizes. **Check 3**, the identity on the test set with the stuck model's $p(y|\mu(x))$:

# %%
parts = {name: value.item() for name, value in losses.term3_parts(p_y).items()}
print(f"E KL(p(y|x) || U) = {parts['term3']:.4f}\nI(x; y)           = {parts['information']:.4f}\n"
      f"KL(p_bar || U)    = {parts['imbalance']:.4f}\nsum of the two    = {parts['information'] + parts['imbalance']:.4f}")

# %% [markdown]
# Nearly all of term 3 is the information part. The imbalance part is small: a split/merge state
# gives one digit two clusters of half the size and two digits one of double size, and that is
# only about $(\log 2)/K \approx 0.07$ nats away from uniform (notebook 05, section 5). So a
# balance term alone barely sees this local optimum.
# What can replace term 3 is a term that *rewards* information and balance together, the
# regularised information maximisation of RIM and IMSAT:
#
# $$
# \mathcal L_{\text{info}} = \mathbb E_x H\big(p(y|x)\big) - \beta\, H(\bar p)
# \qquad(\beta = 1:\ -I(x;y);\ \text{IMSAT uses } \beta = 4),
# $$
#
# computed over each batch: `losses.batch_information`.

# %%
help(losses.batch_information)

# %% [markdown]
# ## 4. What the clusters should not care about
#
# A digit rotated by 10°, shifted by a pixel or drawn 5 % larger is the same digit. Nothing in
# eq. (4) says so: the codes of one digit drawn two ways (a slanted and an upright 1, split in
# several of notebook 03's runs; the 3s here) may lie far apart, and the mixture may split them.
# The methods that reach 98–99 % on MNIST (IMSAT with VAT, virtual adversarial training; IIC) all ask the cluster
# assignment to stay the same under such moves. `augment.random_affine` draws one small affine move
# per image (rotation up to ±15°, scale ±10 %, shift ±2 px), for a whole batch at once:

# %%
x = test.images[:10]
moved = augment.random_affine(x, rotation=15, scale=0.1, shift=2, generator=torch.Generator().manual_seed(0))
fig = plots.reconstructions_figure(x, moved)
fig.axes[0].set_title("Ten test digits (top) and a random small move of each (bottom)")
fig.axes[0].set_ylabel("image", rotation=0, ha="right")
fig.axes[1].set_ylabel("moved", rotation=0, ha="right")
fig

# %% [markdown]
# **Check 4: is the stuck model invariant?** Move every test image once and see how often its
# cluster changes:

# %%
moved_all = augment.random_affine(test.images, rotation=15, scale=0.1, shift=2,
                                  generator=torch.Generator().manual_seed(1))
pred_moved, _, p_moved = vc.predict(model, moved_all, return_codes=True)
changed = float((pred_moved != pred).mean())
print(f"cluster changed by a small move for {changed:.1%} of test images; "
      f"mean KL(p(y|x) || p(y|moved x)) = {losses.consistency(p_y, p_moved).item():.3f} nats")

# %% [markdown]
# The consistency term asks the classifier to give a moved image the cluster probabilities of the
# clean one; the clean prediction is a fixed target ($\mathrm{sg}[\cdot]$, "stop gradient": no
# gradient flows through it, as in VAT and in semi-supervised consistency training):
#
# $$
# \mathcal L_{\text{cons}} = \mathbb E_x\,\mathrm{KL}\big(\mathrm{sg}[p(y|\mu(x))]\ \Vert\ p(y|\mu(T(x)))\big),
# \qquad T \text{ a random small affine move.}
# $$

# %%
help(losses.consistency)

# %% [markdown]
# ### A third change, tried and left out: term 2 no longer trains the classifier
#
# In eq. (4) term 2, with term 3, pulls $p(y|z)$ towards the mixture's responsibilities $p^*$
# (section 2): the very fit that gets stuck. So it seemed right to hold term 2's weights fixed
# (`term2_trains_classifier=False`): term 2 would still train the encoder and the means, and the
# classifier would learn only from the information and consistency terms. Section 5 measures it
# over seeds, and it does not help; the preset leaves it out, and the switch stays in the config
# so that its row can be re-run.
#
# ### The preset `beyond`
#
# Both ingredients are settings of the same config. Together they are the preset `beyond`: the
# article's model B and eq. (4), term 3 dropped (the information term replaces it), 10 epochs.
# Its settings beside the article's:

# %%
beyond = vc.preset("beyond")
article = vc.preset("article-b")
for name, value in beyond.to_dict().items():
    if value != article.to_dict()[name]:
        print(f"{name:<24} article-b: {article.to_dict()[name]!s:<8} beyond: {value}")
print("\nthe same from the command line:\n  python -m vaeclust_tutorial train --dataset mnist --config beyond "
      "--out runs/beyond")

# %% [markdown]
# Why information weight 5 and consistency weight 50? The reconstruction term is a sum over 784
# pixels, tens of nats per image (its value is in every run's history), while a perfectly
# confident and balanced batch lowers the information term by at most $\beta \log K = 4 \log 10 \approx 9.2$ nats
# (exercise 3). The first weights tried, 1 and 10 (from early probes), left the clustering terms
# weak beside it: seed 3's run swung between partitions from epoch to epoch, seed 0's climbed
# slowly; both weights were then
# multiplied by five, keeping their ratio (both tries held term 2's weights fixed, the third change
# above, which was still in then). Section 5 sets those first runs beside the second weights on the
# same seeds; `docs/reproduction.md` tells how each choice was made (labels scored the runs
# compared; they never chose a seed or a checkpoint).

# %% [markdown]
# ## 5. What each ingredient gives
#
# Each row changes one thing in the row above, from the article's model to `beyond` (the second
# row replaces term 3 by the information term, the third adds consistency); the rows after
# `beyond` are changes to it that were tried and left out. Every run
# trains from a random start, end to end, without labels, and every run is read after 10 epochs
# (the article's 50-epoch runs at their epoch 10: nothing in training depends on the run's
# length, so that is where a 10-epoch run would have ended). The table is read from the
# repository's `results/`, one file per run (commands in `docs/reproduction.md`), so it shows
# every seed that has been run, and nothing else: "runs" counts the seeds, one run each, and ±
# is the standard deviation over them. "precision" says which seeds ran in fp32 and which in bf16
# (notebook 05: the two agree within seed noise). The last column gives the first epoch at which
# each seed reached 98 % Hungarian accuracy ("–": not within the run).

# %%
from vaeclust_tutorial import results  # noqa: E402
from IPython.display import Markdown  # noqa: E402

RESULTS = Path(vc.__file__).resolve().parent.parent / "results"   # the repository's results/
records = results.load_results(RESULTS)
Markdown(results.scores_markdown(results.at_epoch(records, 10), results.ablation_rows, reach=0.98))

# %% [markdown]
# The rows do not all have the same seeds. Set `beyond` beside the article's model on the seeds
# both have run, seed for seed:

# %%
for dataset in ("mnist", "fashion-mnist"):
    pair = results.on_common_seeds(results.at_epoch(records, 10), dataset, ["article-b", "beyond"])
    (article_runs, beyond_runs), seeds = pair.values(), [r["seed"] for r in pair["beyond"]]
    mean = {name: sum(r["test"]["accuracy"] for r in runs) / len(runs) for name, runs in pair.items()}
    higher = sum(b["test"]["accuracy"] > a["test"]["accuracy"] for a, b in zip(article_runs, beyond_runs))
    print(f"{dataset:<14} seeds {', '.join(map(str, seeds))}: the article's model {mean['article-b']:.1%}, "
          f"beyond {mean['beyond']:.1%}; beyond higher on {higher} of {len(seeds)} seeds")

# %% [markdown]
# Read the table by its "runs" and "each seed" columns: the goal is every seed, not the best one.
# On MNIST, `beyond` lands every one of five seeds at 98.4–98.8 % after 10 epochs, where the
# article's model is near 60 % at that point, and each seed passes 98 % by epoch 8. The
# information term alone is not enough (63.9–73.4 % on three seeds): it is the consistency term
# on top of it that makes the runs land. The rows after `beyond` are changes tried and left out.
# The first is the third change of section 4, term 2's weights held fixed: with it one seed
# stays stuck at 80.8 % and every other seed ends lower than without it (two of those five ran
# in bf16, as the precision column says). The second lets the learning rate fall to zero along
# a half cosine, meant to settle the last epochs: it lands no higher on the mean (98.4–98.7 % on
# three seeds). So `beyond` keeps neither. The third, mirroring half the moved images, is a symmetry of
# clothes and not of digits, so it has a Fashion-MNIST row only.
#
# On Fashion-MNIST `beyond` is only a little above the article's model: on the five seeds both
# have run, about three points higher on average and higher on four seeds of five (printed
# above), with a spread of several points, and far from its MNIST result. The information term
# alone gives about the article's level (55.7–58.4 %), the cosine learning rate 55.4–60.9 %, and
# mirroring 56.4–60.6 % (a narrower spread than `beyond`'s, not a higher mean). On clothes, none
# of these three-seed rows makes a difference three seeds can tell from noise (section 6 looks at why).
#
# The last rows are different. The first bends the grey levels of the moved images by a
# random gamma (`move_gamma`; a lighter or darker garment is the same garment), tried after
# section 6's question. On Fashion-MNIST it raises the mean of five seeds by about four points,
# but not every seed: two seeds reach 70 % and three stay below 60 %. On MNIST it ends higher
# than `beyond` on four seeds of five (by 0.02 to 0.37 points) and lower on one (by 0.15), and
# every seed passes 98 % at epoch 4. It is the best setting found so far that serves both
# datasets, yet not the preset: run again beside `beyond` on one machine, it raised clothes
# again but let one MNIST seed go wrong (97.4 %), so it stays out. The second row adds a stronger pull towards balanced clusters (β = 8
# instead of 4): on clothes it lifts the three seeds that were stuck below 60 % and narrows the
# spread, but on MNIST it ends lower than the row above on every seed, one below 98 %. It is left
# out: one set of settings has to serve both datasets. The next row lets β fall from 8 in the
# first epoch to 4 in the last, a strong pull towards balance only while the partition forms:
# on clothes it gives the narrowest spread of any row, around a lower mean than β = 8's, and on
# MNIST two seeds end below 98.5 %, one of them stuck from its first epoch near 82 %, its 4s and
# 9s, and its 0s and 5s, each sharing two clusters. An early pull commits the partition early, and an early commitment
# can be the wrong one: left out too. The last row keeps the grey levels and reads out a moving
# average of the weights instead of the weights themselves (`teacher_decay`, Polyak averaging;
# training is unchanged), meant to settle the swings of the last epochs. On clothes it gives a
# higher mean than the grey levels alone with a narrower spread, but it cannot rescue a run that
# goes the wrong way: one MNIST seed ends at 97.7 %, with 130 of its test 7s in the 4s' cluster
# (its trained weights, read out beside the average, end at 97.4 %). A rule set before these
# runs asked every MNIST seed to end at 98.5 % or above, so it is left out
# (`docs/reproduction.md`, step 13, sets the average beside the trained weights on every run).
#
# The weights of section 4, on the seeds where the first weights were tried (MNIST, 10 epochs;
# the first weights ran in fp32, the second on these two seeds in bf16 on another CPU):

# %%
fixed = dict(term2_trains_classifier=False)                         # both tries held term 2 fixed
first = vc.config.config_label(vc.preset("beyond", info_weight=1.0, consistency_weight=10.0, **fixed))
second = vc.config.config_label(vc.preset("beyond", **fixed))
first_seeds = {r["seed"] for r in records if r["dataset"] == "mnist" and results.config_label(r) == first}
for label, name in ((first, "information 1, consistency 10"), (second, "information 5, consistency 50")):
    runs = results.one_run_per_seed(r for r in records if r["dataset"] == "mnist" and r["epochs"] == 10
                                    and results.config_label(r) == label and r["seed"] in first_seeds)
    print(f"{name:<30} " + ", ".join(f"seed {r['seed']}: {r['test']['accuracy']:.1%}" for r in runs))

# %% [markdown]
# Does training longer help? The five MNIST runs of `beyond`, continued to 20 epochs at the same
# learning rate (the first 10 epochs are the runs above; `results/longer/`):

# %%
longer = results.one_run_per_seed(results.load_results(RESULTS / "longer"))
for r in longer:
    print(f"seed {r['seed']}: {results.after_epoch(r, 10)['test']['accuracy']:.2%} after 10 epochs, "
          f"{r['test']['accuracy']:.2%} after {r['epochs']}")
print(f"mean after {longer[0]['epochs']} epochs: {sum(r['test']['accuracy'] for r in longer) / len(longer):.2%}")

# %% [markdown]
# Every seed gains a little in the second ten epochs (0.2 to 0.5 points) and every one ends at or
# above 98.8 %, but the mean stops just short of 99 %. Twice the epochs cost twice the time.

# %% [markdown]
# ## 6. The shipped `beyond` model
#
# The package ships a `beyond` model for each dataset: the seed with the median test Hungarian
# accuracy among the five MNIST seeds (seed 2) and among the five Fashion-MNIST seeds (seed 3)
# of section 5's table. A median seed shows what a run typically gives, not the best one. The
# MNIST model's clusters against the digits, and the same small moves as check 4:

# %%
cfg_beyond = apply_quick(vc.preset("beyond", dataset="mnist", seed=2))
model_beyond, _, _ = load_or_train(cfg_beyond, "notebook-06-beyond")
pred_b, _, p_b = vc.predict(model_beyond, test.images, return_codes=True)
matrix_b = vc.contingency(labels, pred_b, n_clusters=model_beyond.n_clusters, n_classes=10)
scores_b = vc.clustering_scores(labels, pred_b)
print(f"test purity {scores_b['purity']:.1%}, Hungarian accuracy {scores_b['accuracy']:.1%}")
report = vc.metrics.cluster_report(matrix_b, test.classes)
print("\n".join(report) if report else "each digit is the majority of one cluster, and each cluster is 80 % or more one digit")
match_b = vc.metrics.hungarian_match(matrix_b)
confusions = sorted(((matrix_b[k, c], c, match_b[k]) for k in range(model_beyond.n_clusters) for c in range(10)
                     if match_b[k] >= 0 and c != match_b[k]), reverse=True)[:3]
print("largest confusions: " + "; ".join(f"{n} {test.classes[c]}s in the cluster of the {test.classes[m]}s"
                                         for n, c, m in confusions))
pred_b_moved, _, p_b_moved = vc.predict(model_beyond, moved_all, return_codes=True)
print(f"cluster changed by a small move for {float((pred_b_moved != pred_b).mean()):.1%} of test images "
      f"(the article's model: {changed:.1%}); mean KL {losses.consistency(p_b, p_b_moved).item():.3f} nats")
plots.contingency_figure(matrix_b, test.classes, title="beyond: clusters (rows) against digits (columns)")

# %% [markdown]
# Compare with section 1: no digit is split over two clusters and no two digits share one. What is
# left are a handful of images in a neighbour's cluster (no more than nine for any pair of digits:
# the confusions printed above), and the clusters hardly move when the image does.
#
# **Still a generator?** Each row below is one digit; in each column, what a model generates from
# the cluster the Hungarian match gives that digit (the article's model on the left, `beyond` on
# the right):

# %%
plots.matched_generations_figure({"article-b (section 1)": model, "beyond": model_beyond},
                                 test.images, labels, test.classes, per_cluster=8)

# %% [markdown]
# On the right, each row draws its own digit, with a few exceptions (for example, about three of
# the 5s' row look more like a 6 or an 8): a sample from a cluster's Gaussian, away from its mean, can decode
# into a neighbour. The model still generates from its clusters.
#
# **Fashion-MNIST.** The same settings, unchanged (one set for both datasets), trained on
# clothes. The package ships its median seed too; beside it, the article's model that notebook 04
# showed (seed 2):

# %%
fashion = vc.load("fashion-mnist", "test", limit=2000 if vc.is_quick() else None)
fashion_models = {
    "article-b (notebook 04)": load_or_train(apply_quick(vc.preset("article-b", dataset="fashion-mnist", seed=2)),
                                             "notebook-04")[0],
    "beyond": load_or_train(apply_quick(vc.preset("beyond", dataset="fashion-mnist", seed=3)),
                            "notebook-06-fashion-beyond")[0],
}
for name, fashion_model in fashion_models.items():
    fashion_scores = vc.clustering_scores(fashion.labels.numpy(), vc.predict(fashion_model, fashion.images))
    print(f"{name:<24} test purity {fashion_scores['purity']:.1%}, Hungarian accuracy {fashion_scores['accuracy']:.1%}")
plots.matched_generations_figure(fashion_models, fashion.images, fashion.labels.numpy(), fashion.classes,
                                 per_cluster=8)

# %% [markdown]
# Here `beyond` helps only a little. Its median seed scores about a point above the article's
# model (printed above), and on the five seeds both have run (section 5) it is about three points
# higher on average, with a spread of several points. Its rows on the right still mix classes: the
# sandals' row draws low shoes like the sneakers and an ankle boot, the bags' row bags and
# sweater-like shapes, the dresses' row a trouser-like shape, the shirts' row pullovers. A likely
# reason: small rotations, shifts and scale changes are what separates a slanted 1 from an
# upright one, but they say nothing about what separates a shirt from a pullover, so the
# consistency term has little to hold on to there, and the information term pushes for
# confident, balanced clusters of whatever kind. Section 5's last rows try two answers: bending
# the grey levels of the moved images raised the mean of five seeds by about four points (two
# of them at 70 %), and a stronger pull towards balance raised clothes further but lowered MNIST.
# The model shipped here has the preset's settings, without either.

# %% [markdown]
# ## Exercises
#
# 1. Repeat check 4 with rotations only (`scale=0, shift=0`), with shifts only (`rotation=0,
#    scale=0`) and with scale changes only (`rotation=0, shift=0`). Which kind of move changes
#    the stuck model's clusters most often? (About a minute.)
# 2. Repeat check 2 with $K = 12$ k-means components on the codes (`KMeans(12, ...)` in the
#    k-means row; the model keeps its 10 means). Mind that the misfit contains $\log K$, and that
#    with 12 clusters the one-to-one match leaves two unmatched, so report purity too. Does the
#    fit improve much? What does that say about the groups the codes form? (Under a minute.)
# 3. *(derivation)* Show that the batch information term $\mathbb E_x H(p(y|x)) - \beta H(\bar p)$ is
#    at least $-\beta\log K$ for any $\beta > 0$, and say which assignments reach that bound. Where
#    are term 3's smallest and largest values, by contrast?
# 4. Repeat exercise 1 on the `beyond` model of section 6 (`model_beyond`). Which kind of move
#    still changes its clusters, and how often, against the article's model? (About a minute.)
#
# Solutions: `notebooks/solutions.md`.
#
# ## Summary
#
# * With the means fixed, terms 2 + 3 of eq. (4) are minimised by $p^*(y|x) \propto q(y)\,e^{-\mathrm{KL}_y}$:
#   the y-part of the loss fits an equal-weight, unit-variance Gaussian mixture to the codes, and
#   the classifier learns its responsibilities (check 1).
# * Such a fit has cheap local optima: a class with a large direction of variation split over two
#   components, two nearby classes sharing one. The shipped stuck run is this optimum (section 1;
#   check 2 measures its fit, check 4 shows that its clusters are not invariant to small moves).
# * Averaged over the data, term 3 is $I(x;y) + \mathrm{KL}(\bar p\,\Vert\,U)$: it penalises
#   informative clusters, and its balance part barely sees a split/merge state (check 3).
# * Two ingredients change the objective where it fails: a batch information term (confident and
#   balanced clusters, RIM/IMSAT) and consistency under small moves of the image (the invariance
#   behind IMSAT-VAT and IIC). The model stays the article's: one Gaussian per cluster, a
#   classifier, a decoder. Together they are the preset `beyond` (section 4).
# * Section 5's table, read from `results/`, shows what each gave on every seed that has been
#   run. A third change that sounded right, term 2 no longer training the classifier, made
#   MNIST worse, and a learning rate falling along a cosine, meant to settle the last epochs,
#   did not raise them, nor did mirroring raise clothes: measure before you believe. Bending the moved images' grey levels
#   did raise clothes (about four points on the mean of five seeds, two of them at 70 %) and kept
#   MNIST level on the mean, yet run again beside `beyond` on one machine it let one MNIST
#   seed go wrong, so it stays out. A stronger pull towards balance raised clothes further
#   but lowered every MNIST seed against the grey levels alone, so one set of settings cannot
#   have it.
# * On MNIST, `beyond` lands every one of five seeds at 98.4–98.8 % in 10 epochs. The shipped
#   median seed still generates its digit from each cluster, and its clusters change under small
#   moves for 1.1 % of the images against the article's 22.3 %. On Fashion-MNIST it is about three
#   points above the article's model on the same five seeds, and its clusters still mix garments
#   (section 6).
# * What is still open: no setting measured so far, from the rows of section 5 to the probes
#   on one or two seeds (an over-clustering head, a Mean Teacher, a change of aspect ratio,
#   virtual adversarial moves), reaches 99 % on the mean of five MNIST seeds with every seed at
#   98.5 % or above in 10 epochs, nor 70 % on the mean of five Fashion-MNIST seeds.
#   `docs/reproduction.md` lists every one with what it gave.
#
# ## References
#
# * Su Jianlin (2018), 变分自编码器（四）：一步到位的聚类方案 (VAE IV: one-step clustering),
#   https://kexue.fm/archives/5887, and the author's script `vae_keras_cluster.py`,
#   https://github.com/bojone/vae.
# * Jiang et al. (2017), *Variational Deep Embedding* (VaDE), arXiv:1611.05148: the same mixture
#   prior with analytic responsibilities.
# * Krause, Perona, Gomes (2010), *Discriminative clustering by regularized information
#   maximization* (RIM), NeurIPS.
# * Hu et al. (2017), *Learning discrete representations via information maximizing
#   self-augmented training* (IMSAT), arXiv:1702.08720.
# * Ji, Henriques, Vedaldi (2019), *Invariant information clustering* (IIC), arXiv:1807.06653.
# * Miyato et al. (2018), *Virtual adversarial training*, arXiv:1704.03976: the stopped-gradient
#   consistency target.
