"""vaeclust_tutorial: one-step clustering with a variational autoencoder, taught and reproduced.

The notebooks in ``notebooks/`` import this package; each public helper says in its
docstring which notebook introduces it.
"""

__version__ = "0.2.0"

from .config import TrainConfig, is_quick, preset  # noqa: E402
from .data import load, prepare  # noqa: E402
from .losses import (categorical_kl, cluster_kl, cluster_kl_sample, cluster_vae_loss,  # noqa: E402
                     gaussian_kl, optimal_assignment, reconstruction, vae_loss)
from .metrics import ari, clustering_scores, contingency, hungarian_accuracy, nmi, purity  # noqa: E402
from .inference import evaluate, latent_means, predict  # noqa: E402
from .models import VAE, ClusterVAE, build_model, conv_cluster_vae, conv_vae  # noqa: E402
from .toy import toy_cluster_vae, toy_mixture, toy_run  # noqa: E402
from .training import train  # noqa: E402

__all__ = [
    "TrainConfig", "preset", "is_quick", "load", "prepare", "reconstruction", "gaussian_kl",
    "cluster_kl", "cluster_kl_sample", "categorical_kl", "cluster_vae_loss", "vae_loss", "optimal_assignment",
    "purity", "hungarian_accuracy", "nmi", "ari", "contingency", "clustering_scores",
    "VAE", "ClusterVAE", "build_model", "conv_vae", "conv_cluster_vae", "toy_cluster_vae", "toy_mixture", "toy_run",
    "train", "evaluate", "predict", "latent_means",
]
