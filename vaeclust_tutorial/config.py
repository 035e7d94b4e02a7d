"""Training configuration: one dataclass, three named presets from the article.

Introduced in notebook 03 (MNIST); the presets are compared in notebook 05.

Usage is "get a preset, change a field":

>>> cfg = preset("article-b", dataset="fashion-mnist", seed=3)
>>> cfg.lam, cfg.estimator
(5.0, 'closed-form')
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

DATASETS = ("mnist", "fashion-mnist")
MODELS = ("article-a", "article-b", "article-c")
ESTIMATORS = ("closed-form", "sample")
PRECISIONS = ("fp32", "bf16", "auto")
CLUSTER_INITS = ("zeros", "kmeans")


def run_label(model: str, cluster_init: str = "zeros", cluster_init_epoch: int = 1) -> str:
    """How runs, results files and sweep specs name a config: ``article-b`` with the article's
    start, ``article-b+kmeans-e5`` with the k-means start after epoch 5."""
    return model + ("" if cluster_init == "zeros" else f"+{cluster_init}-e{cluster_init_epoch}")

# The three versions of the author's script (method.md section 3).
PRESETS = {
    # First commit 0fe7a91: one strided conv per stage, ReLU.
    "article-a": dict(model="article-a", lam=5.0, estimator="closed-form"),
    # Same-day update c3da14e: two convs per stage, LeakyReLU(0.2). The article's model.
    "article-b": dict(model="article-b", lam=5.0, estimator="closed-form"),
    # Update 1311e5d three months later: B's network, lambda 2.5, one-sample term 2.
    "article-c": dict(model="article-c", lam=2.5, estimator="sample"),
}

QUICK_ENV = "VAECLUST_QUICK"
# What quick mode shrinks a run to (seconds on a laptop; numbers are meaningless).
QUICK_EPOCHS = 2
QUICK_TRAIN = 2000
QUICK_TEST = 1000


def is_quick() -> bool:
    """True when ``VAECLUST_QUICK`` is set to a true value (the test command sets it)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def progress_wanted(progress: bool = True) -> bool:
    """``progress`` unless ``VAECLUST_NO_PROGRESS`` is set (the notebook executor sets it: a saved
    progress widget would show a frozen 0 % to readers of the committed notebooks)."""
    return progress and not os.environ.get("VAECLUST_NO_PROGRESS")


def quick_banner() -> str:
    """The line printed on every output of a quick run, so nobody mistakes it for a real one."""
    return (f"QUICK MODE ({QUICK_ENV}=1): {QUICK_EPOCHS} epochs on {QUICK_TRAIN} training "
            f"images; these numbers are NOT results. Unset {QUICK_ENV} for a real run.")


@dataclass
class TrainConfig:
    """Everything a training run depends on. Defaults are the article's version B on MNIST."""

    dataset: str = "mnist"          # "mnist" or "fashion-mnist"
    model: str = "article-b"        # network version: article-a | article-b | article-c
    epochs: int = 50                # the article trains 50 epochs
    batch_size: int = 100           # the article's batch
    lam: float = 5.0                # lambda: weight of the reconstruction term (inverse variance of q(x|z))
    latent_dim: int = 20            # d, size of z
    n_clusters: int = 10            # K, number of values of y
    hidden_dim: int = 256           # width of the classifier's hidden layer
    lr: float = 1e-3                # Adam learning rate (Keras default)
    adam_eps: float = 1e-7          # Adam epsilon (Keras default; PyTorch's is 1e-8)
    estimator: str = "closed-form"  # term 2: "closed-form" (versions A, B) or "sample" (version C)
    cat_weight: float = 1.0         # weight of term 3 (0 drops it; notebook 05)
    seed: int = 0                   # seeds weights, shuffling and noise
    device: str = "auto"            # "auto" (cuda if present), "cpu", "cuda", "cuda:1", ...
    precision: str = "auto"         # "fp32", "bf16" (autocast), or "auto": bf16 on CPUs with native bf16
    train_limit: int | None = None  # use only the first N training images (quick mode, tests)
    test_limit: int | None = None   # use only the first N test images
    eval_every: int = 1             # evaluate the test metrics every N epochs (and always at the end)
    cluster_init: str = "zeros"     # "zeros": the article's start; "kmeans": k-means on mu(x) (cluster_init.py)
    cluster_init_epoch: int = 1     # with "kmeans": the k-means start happens after this epoch

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; valid fields are {sorted(known)}")
        return cls(**d)


def _check_int(name, value, minimum, fix):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} is invalid: it must be an integer >= {minimum}. {fix}")


def validate(cfg: TrainConfig) -> None:
    """Raise ``ValueError`` naming the bad field, what is valid, and the fix."""
    if cfg.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; valid datasets are {list(DATASETS)}")
    if cfg.model not in MODELS:
        raise ValueError(f"unknown model {cfg.model!r}; valid models are {list(MODELS)}")
    if cfg.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {cfg.estimator!r}; valid estimators are {list(ESTIMATORS)}")
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {cfg.precision!r}; valid values are {list(PRECISIONS)}")
    _check_int("epochs", cfg.epochs, 1, "Train for at least one epoch.")
    _check_int("batch_size", cfg.batch_size, 1, "The article uses 100.")
    _check_int("latent_dim", cfg.latent_dim, 1, "The article uses 20.")
    _check_int("n_clusters", cfg.n_clusters, 2, "Clustering needs K >= 2 clusters; the article uses 10.")
    _check_int("hidden_dim", cfg.hidden_dim, 1, "The article uses 256.")
    _check_int("seed", cfg.seed, 0, "Use a non-negative seed.")
    _check_int("eval_every", cfg.eval_every, 1, "Use 1 to evaluate every epoch.")
    if cfg.cluster_init not in CLUSTER_INITS:
        raise ValueError(f"unknown cluster_init {cfg.cluster_init!r}; valid values are {list(CLUSTER_INITS)}")
    _check_int("cluster_init_epoch", cfg.cluster_init_epoch, 1, "The k-means start needs one warm-up epoch or more.")
    if cfg.cluster_init == "kmeans" and cfg.cluster_init_epoch >= cfg.epochs:
        raise ValueError(f"cluster_init_epoch={cfg.cluster_init_epoch} leaves no epoch after the k-means start "
                         f"(epochs={cfg.epochs}): use cluster_init_epoch < epochs")
    for name in ("train_limit", "test_limit"):
        if getattr(cfg, name) is not None:
            _check_int(name, getattr(cfg, name), 1, "Use None for the whole split.")
    for name, fix in (("lam", "lambda is an inverse variance; the article uses 5 (version C: 2.5)."),
                      ("lr", "The article uses 1e-3."), ("adam_eps", "Keras uses 1e-7.")):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name}={value!r} is invalid: it must be a number > 0. {fix}")
    if isinstance(cfg.cat_weight, bool) or not isinstance(cfg.cat_weight, (int, float)) or cfg.cat_weight < 0:
        raise ValueError(f"cat_weight={cfg.cat_weight!r} is invalid: it must be >= 0 (0 drops term 3).")


def preset(name: str = "article-b", **overrides) -> TrainConfig:
    """The configuration of one version of the author's script, with fields overridden.

    ``name`` is one of ``article-a``, ``article-b`` (the article's model, default)
    or ``article-c``. Introduced in notebook 03.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown configuration {name!r}; valid configurations are {list(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})


def apply_quick(cfg: TrainConfig) -> TrainConfig:
    """Shrink a config for quick mode (few epochs, small subsets); a no-op when not quick."""
    if not is_quick():
        return cfg
    return dataclasses.replace(
        cfg, epochs=min(cfg.epochs, QUICK_EPOCHS),
        cluster_init_epoch=min(cfg.cluster_init_epoch, QUICK_EPOCHS - 1),
        train_limit=min(cfg.train_limit or QUICK_TRAIN, QUICK_TRAIN),
        test_limit=min(cfg.test_limit or QUICK_TEST, QUICK_TEST))
