"""The networks of the article: a conv encoder, a conv decoder, a classifier on z, the cluster means.

Introduced in notebook 01 (encoder, decoder, :class:`VAE`) and notebook 03
(:class:`ClusterVAE`). The three versions of the author's Keras script differ only
in how the encoder and decoder stages are built, so they are the same modules with
two switches (:data:`~vaeclust_tutorial.config.ARCHITECTURES`):

============  ===================================  ===================================
version       encoder stage (filters 32, then 64)  decoder stage (filters 64, then 32)
============  ===================================  ===================================
article-a     Conv(s2) + ReLU                      ConvT(s2) + ReLU
article-b/c   Conv(s2)+LReLU(.2), Conv(s1)+LReLU   ConvT(s1)+LReLU, ConvT(s2)+LReLU
============  ===================================  ===================================

Where it matters for reproducing Keras:

* weights are Glorot-uniform and biases zero (Keras' defaults), cluster means zero;
* TensorFlow's 'same' padding of a stride-2 conv pads 0 before and 1 after (PyTorch's
  ``padding=1`` pads both sides, a one-pixel shift); :class:`SameConv2d` and
  :class:`SameConvTranspose2d` keep TensorFlow's geometry;
* a stride-1 transposed conv with 'same' padding computes the same family of functions
  as an ordinary conv (flip the kernel, swap its channels), and Glorot's range is
  symmetric in fan-in and fan-out, so we write ``nn.Conv2d`` there.

Everything here is plain PyTorch. Faster kernels for bf16 on a CPU live in
:mod:`~vaeclust_tutorial.kernels`; they keep these parameters, so a checkpoint loads either way.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import ARCHITECTURES

IMAGE_SHAPE = (1, 28, 28)


class ConvEncoder(nn.Module):
    """x (B, 1, 28, 28) -> (mu, logvar), each (B, d): the parameters of p(z|x)."""

    def __init__(self, *, latent_dim: int = 20, double_conv: bool = True, activation: str = "leaky"):
        super().__init__()
        layers, c = [], 1
        for filters in (32, 64):                                   # 28 -> 14 -> 7
            layers += [SameConv2d(c, filters), _activation(activation)]
            if double_conv:
                layers += [nn.Conv2d(filters, filters, 3, padding=1), _activation(activation)]
            c = filters
        self.features = nn.Sequential(*layers, nn.Flatten())       # (B, 64*7*7)
        self.mu = nn.Linear(64 * 7 * 7, latent_dim)
        self.logvar = nn.Linear(64 * 7 * 7, latent_dim)

    def forward(self, x):
        h = self.features(x)
        return self.mu(h), self.logvar(h)


class ConvDecoder(nn.Module):
    """z (B, d) -> x_hat (B, 1, 28, 28) in (0, 1): the mean G(z) of q(x|z)."""

    def __init__(self, *, latent_dim: int = 20, double_conv: bool = True, activation: str = "leaky"):
        super().__init__()
        self.project = nn.Linear(latent_dim, 64 * 7 * 7)            # no activation, as in the article
        layers, c = [], 64
        for filters in (64, 32):                                   # 7 -> 14 -> 28
            if double_conv:                                        # Keras' ConvT(s1, 'same')
                layers += [nn.Conv2d(c, filters, 3, padding=1), _activation(activation)]
                c = filters
            layers += [SameConvTranspose2d(c, filters), _activation(activation)]
            c = filters
        layers += [nn.Conv2d(c, 1, 3, padding=1), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        h = self.project(z).view(-1, 64, 7, 7)                     # (B, 64, 7, 7)
        return self.body(h)


class Classifier(nn.Module):
    """z (B, d) -> logits (B, K) of p(y|z): Dense(256) + ReLU, Dense(K)."""

    def __init__(self, *, latent_dim: int = 20, hidden_dim: int = 256, n_clusters: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, n_clusters))

    def forward(self, z):
        return self.net(z)


def reparameterize(mu, logvar):
    """z = mu + sigma * eps with eps ~ N(0, I): a differentiable sample of p(z|x)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


class VAEOutput(NamedTuple):
    x_hat: torch.Tensor   # (B, 1, 28, 28)
    mu: torch.Tensor      # (B, d)
    logvar: torch.Tensor  # (B, d)
    z: torch.Tensor       # (B, d)


class ClusterOutput(NamedTuple):
    x_hat: torch.Tensor   # (B, 1, 28, 28)  decoder applied to the sampled z
    mu: torch.Tensor      # (B, d)          mean of p(z|x)
    logvar: torch.Tensor  # (B, d)          log variance of p(z|x)
    z: torch.Tensor       # (B, d)          sample of p(z|x)
    logits: torch.Tensor  # (B, K)          of p(y|z), classifier applied to the sampled z
    p_y: torch.Tensor     # (B, K)          p(y|z) = softmax(logits)


class VAE(nn.Module):
    """The plain VAE of eq. (1): an encoder and a decoder, prior N(0, I). Notebook 01."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x) -> VAEOutput:
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decoder(z), mu, logvar, z)


class ClusterVAE(nn.Module):
    """The (z, y) model of eqs. (3)-(4), composed of an encoder, a decoder and a classifier.

    Introduced in notebook 02 (toy) and 03 (MNIST). ``means`` is the K x d parameter:
    q(z|y) = N(means[y], I), zeros at the start as in the article. In training the
    classifier sees the *sampled* z (as the author's script); :meth:`encode` and
    :func:`~vaeclust_tutorial.inference.predict` use the mean mu(x), as its evaluation does.

    ``overcluster`` (beyond the article, notebook 06): an optional second classifier on z with
    more clusters than K, trained only by the terms beyond the article and never read out
    (IIC's auxiliary over-clustering head); ``None`` in the article's model.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, classifier: nn.Module, *,
                 n_clusters: int, latent_dim: int, overcluster: nn.Module | None = None):
        super().__init__()
        self.encoder, self.decoder, self.classifier = encoder, decoder, classifier
        self.overcluster = overcluster
        self.means = nn.Parameter(torch.zeros(n_clusters, latent_dim))  # (K, d)

    @property
    def n_clusters(self) -> int:
        return self.means.shape[0]

    def forward(self, x) -> ClusterOutput:
        # encoding: x -> z ~ p(z|x) -> p(y|z); the decoder reconstructs x from the same z
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar)
        logits = self.classifier(z)
        return ClusterOutput(self.decoder(z), mu, logvar, z, logits, torch.softmax(logits.float(), -1))

    @torch.inference_mode()
    def encode(self, x):
        """(mu, p(y|mu)) for a batch: the deterministic code and cluster probabilities."""
        mu, _ = self.encoder(x)
        return mu, torch.softmax(self.classifier(mu).float(), -1)

    @torch.inference_mode()
    def generate(self, cluster: int, n: int, std: float = 1.0, generator=None):
        """generation: n samples from cluster y, z ~ N(means[y], std^2 I), x = G(z). Notebook 03."""
        if not 0 <= cluster < self.n_clusters:
            raise ValueError(f"cluster={cluster} is out of range: valid clusters are 0..{self.n_clusters - 1}")
        mean = self.means[cluster]
        eps = torch.randn(n, mean.shape[0], generator=generator, device="cpu").to(mean.device)
        return self.decoder(mean + std * eps)


# --------------------------------------------------------------------------- TensorFlow's geometry

def _activation(kind: str) -> nn.Module:
    return nn.ReLU() if kind == "relu" else nn.LeakyReLU(0.2)


class SameConv2d(nn.Conv2d):
    """3x3 stride-2 conv with TensorFlow's 'same' padding (0 before, 1 after): 2n -> n."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, stride=2, padding=0)

    def forward(self, x):
        return super().forward(F.pad(x, (0, 1, 0, 1)))


class SameConvTranspose2d(nn.ConvTranspose2d):
    """3x3 stride-2 transposed conv with TensorFlow's 'same' geometry: n -> 2n.

    The full output is 2n + 1 pixels wide; TensorFlow keeps the first 2n.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, stride=2, padding=0)

    def forward(self, x):
        n = x.shape[-1]
        return super().forward(x)[..., : 2 * n, : 2 * n]


def keras_init_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every conv and dense layer (Keras' defaults)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


# --------------------------------------------------------------------------- builders

def check_architecture(name: str) -> tuple[bool, str]:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown network {name!r}; valid networks are {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def conv_vae(network: str = "article-b", latent_dim: int = 20) -> VAE:
    """The plain VAE with the conv encoder and decoder of one article version. Notebook 01."""
    double, act = check_architecture(network)
    return keras_init_(VAE(ConvEncoder(latent_dim=latent_dim, double_conv=double, activation=act),
                           ConvDecoder(latent_dim=latent_dim, double_conv=double, activation=act)))


def conv_cluster_vae(network: str = "article-b", *, latent_dim: int = 20, n_clusters: int = 10,
                     hidden_dim: int = 256, overcluster_k: int = 0) -> ClusterVAE:
    """The article's clustering VAE, one of article-a/b/c, with Keras' initialisation. Notebook 03.
    ``overcluster_k`` > 0 adds an over-clustering head of that many clusters (notebook 06)."""
    double, act = check_architecture(network)
    model = keras_init_(ClusterVAE(
        ConvEncoder(latent_dim=latent_dim, double_conv=double, activation=act),
        ConvDecoder(latent_dim=latent_dim, double_conv=double, activation=act),
        Classifier(latent_dim=latent_dim, hidden_dim=hidden_dim, n_clusters=n_clusters),
        n_clusters=n_clusters, latent_dim=latent_dim))
    if overcluster_k:   # drawn after the rest: the article's modules start as they do without the head
        model.overcluster = keras_init_(Classifier(latent_dim=latent_dim, hidden_dim=hidden_dim,
                                                   n_clusters=overcluster_k))
    return model


def build_model(cfg) -> ClusterVAE:
    """A fresh :class:`ClusterVAE` for a :class:`~vaeclust_tutorial.config.TrainConfig`."""
    return conv_cluster_vae(cfg.network, latent_dim=cfg.latent_dim, n_clusters=cfg.n_clusters,
                            hidden_dim=cfg.hidden_dim, overcluster_k=cfg.overcluster_k)


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of one forward pass of one image (half the FLOPs that
    ``torch.utils.flop_counter.FlopCounterMode`` counts). Notebook 03."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *IMAGE_SHAPE, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
