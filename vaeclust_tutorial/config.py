"""Training configuration: one dataclass, the one source of truth for a run's options.

Introduced in notebook 03 (MNIST); the presets are compared in notebook 05. Each field
carries its help text, its valid values and its bounds; :func:`validate` checks them all,
and the command line builds ``train``'s options from them (:mod:`~vaeclust_tutorial.cli`).

Usage is "get a preset, change a field":

>>> cfg = preset("article-b", dataset="fashion-mnist", seed=3)
>>> cfg.lam, cfg.estimator
(5.0, 'closed-form')
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

from .data import DATASETS as _DATASET_INFO

DATASETS = tuple(_DATASET_INFO)    # "mnist", "fashion-mnist": described in data.py
# The author's script in three versions differs in its network: (two convs per stage?, activation).
ARCHITECTURES = {"article-a": (False, "relu"), "article-b": (True, "leaky"), "article-c": (True, "leaky")}
ESTIMATORS = ("closed-form", "sample")
PRECISIONS = ("fp32", "bf16", "auto")
CLUSTER_INITS = ("zeros", "kmeans")
LR_SCHEDULES = ("constant", "cosine")


def option(default, help: str, *, choices=None, minimum=None, positive: bool = False):
    """A config field with its help text and what values are valid (checked by :func:`validate`)."""
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum,
                                            "positive": positive})


@dataclass
class TrainConfig:
    """Everything a training run depends on. Defaults are the article's version B on MNIST."""

    dataset: str = option("mnist", "which dataset", choices=DATASETS)
    network: str = option("article-b", "the network of one version of the author's script",
                          choices=tuple(ARCHITECTURES))
    epochs: int = option(50, "epochs; the article trains 50", minimum=1)
    batch_size: int = option(100, "images per step; the article uses 100", minimum=1)
    lam: float = option(5.0, "lambda: weight of the reconstruction term, the inverse variance of "
                             "q(x|z); the article uses 5 (version C: 2.5)", positive=True)
    latent_dim: int = option(20, "d, size of z", minimum=1)
    n_clusters: int = option(10, "K, number of values of y", minimum=2)
    hidden_dim: int = option(256, "width of the classifier's hidden layer", minimum=1)
    lr: float = option(1e-3, "Adam learning rate (Keras' default)", positive=True)
    adam_eps: float = option(1e-7, "Adam epsilon (Keras' default; PyTorch's is 1e-8)", positive=True)
    estimator: str = option("closed-form", "term 2: closed-form (versions A, B) or sample (version C)",
                            choices=ESTIMATORS)
    cat_weight: float = option(1.0, "weight of term 3, the categorical KL (0 drops it; notebook 05)",
                               minimum=0)
    seed: int = option(0, "seeds weights, shuffling and noise", minimum=0)
    device: str = option("auto", "auto (CUDA, else Apple's MPS, else the CPU), cpu, cuda, cuda:N, mps")
    precision: str = option("auto", "fp32, bf16 (autocast), or auto: bf16 on CPUs with native bf16 "
                                    "(AVX512-BF16 or AMX), fp32 elsewhere", choices=PRECISIONS)
    train_limit: int | None = option(None, "use only the first N training images", minimum=1)
    test_limit: int | None = option(None, "use only the first N test images", minimum=1)
    eval_every: int = option(1, "test scores every N epochs, and always at the end", minimum=1)
    cluster_init: str = option("zeros", "zeros: the article's start; kmeans: k-means on mu(x) after "
                                        "cluster_init_epoch (cluster_init.py)", choices=CLUSTER_INITS)
    cluster_init_epoch: int = option(1, "with cluster_init=kmeans: the epoch after which k-means runs",
                                     minimum=1)
    # Beyond the article (notebook 06); the defaults leave the article's loss as it is.
    term2_trains_classifier: bool = option(True, "term 2's gradient reaches p(y|z), as in the article; "
                                                 "false holds its weights fixed (losses.cluster_vae_loss)")
    info_weight: float = option(0.0, "weight of the batch information term, confident and balanced "
                                     "assignments (losses.batch_information; 0 drops it)", minimum=0)
    info_balance: float = option(4.0, "beta of the batch information term: weight of the balance "
                                      "H(mean p(y|x))", minimum=0)
    info_balance_start: float = option(0.0, "beta in the first epoch, falling linearly to info_balance "
                                            "in the last (training.info_balance_at; 0: beta constant)",
                                       minimum=0)
    consistency_weight: float = option(0.0, "weight of the consistency term, p(y|x) unchanged under small "
                                            "moves of x (losses.consistency; 0 drops it)", minimum=0)
    move_rotation: float = option(15.0, "consistency: largest rotation, degrees", minimum=0)
    move_scale: float = option(0.1, "consistency: largest change of scale, fraction", minimum=0)
    move_shift: float = option(2.0, "consistency: largest shift, pixels", minimum=0)
    move_stretch: float = option(0.0, "consistency: also change each moved image's aspect ratio, by a factor "
                                      "a with log a uniform in [-log(1 + s), log(1 + s)], the area kept "
                                      "(augment.affine_matrices; 0: none)", minimum=0)
    move_gamma: float = option(0.0, "consistency: also bend each moved image's grey levels, x ** gamma with "
                                    "log gamma uniform in [-g, g] (augment.random_gamma; 0: none)", minimum=0)
    move_views: int = option(1, "consistency: moved copies of each image per step, each with its own move; "
                                "the term is their mean (1: one copy, as in IMSAT)", minimum=1)
    move_flip: bool = option(False, "consistency: also mirror half the images left to right (a symmetry "
                                    "of clothes, not of digits)")
    vat_weight: float = option(0.0, "weight of the virtual adversarial term, p(y|x) unchanged under the small "
                                    "move of x that changes it most (losses.adversarial_move; 0 drops it)",
                               minimum=0)
    vat_epsilon: float = option(1.2, "virtual adversarial term: length of the move, L2 over the image's pixels "
                                     "in [0, 1] (IMSAT's rule, a quarter of the distance to the 10th nearest "
                                     "training image: 1.3 on MNIST, 1.0 on Fashion-MNIST, by median)",
                                positive=True)
    overcluster_k: int = option(0, "K of an auxiliary over-clustering head (IIC): a second classifier on z, "
                                   "trained by the information and consistency terms only; it shapes z and "
                                   "is never read out (losses.cluster_vae_loss; 0: none)", minimum=0)
    teacher_decay: float = option(0.0, "a teacher: an exponential moving average of the weights, with this "
                                       "decay, is the model evaluated and saved (training.make_teacher; 0: none)",
                                  minimum=0)
    teacher_targets: bool = option(False, "with a teacher: it also gives the consistency term's targets (Mean "
                                          "Teacher); false: the average is only read out, training is unchanged")
    lr_schedule: str = option("constant", "constant: lr throughout, as the article; cosine: lr falls to 0 "
                                          "along a half cosine over the run's steps (training.learning_rate)",
                              choices=LR_SCHEDULES)

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


def _check_field(f: dataclasses.Field, value) -> None:
    md, kind = f.metadata, str(f.type)
    if value is None and "None" in kind:
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{f.name}={value!r} is invalid: it must be True or False ({md['help']})")
        return
    number = "float" in kind
    valid_type = (isinstance(value, (int, float)) if number else isinstance(value, int) if "int" in kind
                  else isinstance(value, str))
    if isinstance(value, bool) or not valid_type or (number and not math.isfinite(value)):
        what = "a finite number" if number else "an integer" if "int" in kind else "a string"
        raise ValueError(f"{f.name}={value!r} is invalid: it must be {what} ({md['help']})")
    if md["choices"] is not None and value not in md["choices"]:
        raise ValueError(f"unknown {f.name} {value!r}; valid values are {list(md['choices'])}")
    if md["minimum"] is not None and value < md["minimum"]:
        raise ValueError(f"{f.name}={value!r} is invalid: it must be >= {md['minimum']} ({md['help']})")
    if md["positive"] and not value > 0:
        raise ValueError(f"{f.name}={value!r} is invalid: it must be > 0 ({md['help']})")


def validate(cfg: TrainConfig) -> None:
    """Raise ``ValueError`` naming the bad field, what is valid, and the fix."""
    for f in dataclasses.fields(cfg):
        _check_field(f, getattr(cfg, f.name))
    if cfg.overcluster_k == 1:
        raise ValueError("overcluster_k=1 is invalid: an over-clustering head needs at least 2 clusters "
                         "(use 0 for no head)")
    if cfg.overcluster_k and not (cfg.info_weight or cfg.consistency_weight):
        raise ValueError(f"overcluster_k={cfg.overcluster_k} needs info_weight > 0 or consistency_weight > 0: "
                         "those terms are what train the over-clustering head")
    if cfg.teacher_decay >= 1:
        raise ValueError(f"teacher_decay={cfg.teacher_decay!r} is invalid: it must be below 1 (0.999: the "
                         f"teacher moves 0.1 % of the way to the trained weights each step; 0: no teacher)")
    if cfg.teacher_decay and cfg.teacher_targets and not cfg.consistency_weight:
        raise ValueError(f"teacher_decay={cfg.teacher_decay!r} with teacher_targets needs consistency_weight > 0: "
                         f"the teacher gives the consistency term's targets (or leave teacher_targets out)")
    if cfg.cluster_init == "kmeans" and cfg.cluster_init_epoch >= cfg.epochs:
        raise ValueError(f"cluster_init_epoch={cfg.cluster_init_epoch} leaves no epoch after the k-means start "
                         f"(epochs={cfg.epochs}): use cluster_init_epoch < epochs")


# The three versions of the author's script (notebook 05), and the configuration beyond it.
PRESETS = {
    # First commit 0fe7a91: one strided conv per stage, ReLU.
    "article-a": dict(network="article-a", lam=5.0, estimator="closed-form"),
    # Same-day update c3da14e: two convs per stage, LeakyReLU(0.2). The article's model.
    "article-b": dict(network="article-b", lam=5.0, estimator="closed-form"),
    # Update 1311e5d three months later: B's network, lambda 2.5, one-sample term 2.
    "article-c": dict(network="article-c", lam=2.5, estimator="sample"),
    # Beyond the article (notebook 06): B's model and eq. (4), with term 3 replaced by the batch
    # information term, and consistency under small affine moves. Weights: info 5, consistency 50
    # (x5 the first probes' 1 and 10, which left the clustering terms too weak beside the
    # reconstruction); 10 epochs. A third switch, term 2's weights held fixed, was tried and left
    # out; it and the other changes tried are rows of results.ABLATION_TRIED.
    # docs/reproduction.md says how each choice was made.
    "beyond": dict(network="article-b", lam=5.0, estimator="closed-form", epochs=10, cat_weight=0.0,
                   info_weight=5.0, consistency_weight=50.0),
}


def preset(name: str = "article-b", **overrides) -> TrainConfig:
    """The configuration of one version of the author's script, with fields overridden.

    ``name`` is one of ``article-a``, ``article-b`` (the article's model, default),
    ``article-c``, or ``beyond`` (the article's model with the two ingredients of notebook 06).
    Introduced in notebook 03.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown configuration {name!r}; valid configurations are {list(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})


# Where, how long and how a run goes, not which model it trains: labels leave these out.
RUN_FIELDS = ("dataset", "seed", "epochs", "device", "precision", "train_limit", "test_limit", "eval_every",
              "cluster_init", "cluster_init_epoch")


def _as_option(name: str, value) -> str:
    """One setting as ``train`` spells it: ``info-weight=1``, ``no-term2-trains-classifier``."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"no-{flag}"
    return f"{flag}={value:.10g}" if isinstance(value, float) else f"{flag}={value}"


def config_label(cfg: TrainConfig | dict) -> str:
    """How runs and results files name a config: the preset it equals (``article-b``); else the
    nearest preset and the settings that differ from it, as ``train`` spells them
    (``article-b+cat-weight=0+info-weight=1``); then ``+kmeans-eN`` for the k-means start after
    epoch N. A dict may leave fields out (records written before they existed): they take the
    values of its network's preset.
    """
    defaults = TrainConfig().to_dict()
    if isinstance(cfg, TrainConfig):
        d = cfg.to_dict()
    else:
        unknown = sorted(set(cfg) - set(defaults))
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; valid fields are {sorted(defaults)}")
        d = {**defaults, **PRESETS.get(cfg.get("network"), {}), **cfg}
    model = {k: v for k, v in d.items() if k not in RUN_FIELDS}

    def differences(name):
        ref = {**defaults, **PRESETS[name]}
        return [_as_option(k, v) for k, v in sorted(model.items()) if v != ref[k]]

    # the nearest preset; ties go to the preset of the config's own network
    base = min(PRESETS, key=lambda name: (len(differences(name)), PRESETS[name]["network"] != d["network"]))
    start = "" if d["cluster_init"] == "zeros" else f"+{d['cluster_init']}-e{d['cluster_init_epoch']}"
    return "+".join([base, *differences(base)]) + start


QUICK_ENV = "VAECLUST_QUICK"
# What quick mode shrinks a run to (seconds on a laptop; numbers are meaningless).
QUICK_EPOCHS = 2
QUICK_TRAIN = 2000
QUICK_TEST = 1000


def is_quick() -> bool:
    """True when ``VAECLUST_QUICK`` is set to a true value (the test suite sets it)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def progress_wanted(progress: bool = True) -> bool:
    """``progress`` unless ``VAECLUST_NO_PROGRESS`` is set (the notebook executor sets it: a saved
    progress widget would show a frozen 0 % to readers of the committed notebooks)."""
    return progress and not os.environ.get("VAECLUST_NO_PROGRESS")


def quick_banner() -> str:
    """The line printed on every output of a quick run, so nobody mistakes it for a real one."""
    return (f"QUICK MODE ({QUICK_ENV}=1): {QUICK_EPOCHS} epochs on {QUICK_TRAIN} training "
            f"images; these numbers are NOT results. Unset {QUICK_ENV} for a real run.")


def apply_quick(cfg: TrainConfig) -> TrainConfig:
    """Shrink a config for quick mode (few epochs, small subsets); a no-op when not quick."""
    if not is_quick():
        return cfg
    return dataclasses.replace(
        cfg, epochs=min(cfg.epochs, QUICK_EPOCHS),
        cluster_init_epoch=min(cfg.cluster_init_epoch, QUICK_EPOCHS - 1),
        train_limit=min(cfg.train_limit or QUICK_TRAIN, QUICK_TRAIN),
        test_limit=min(cfg.test_limit or QUICK_TEST, QUICK_TEST))
