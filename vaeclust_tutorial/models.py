"""The networks: one conv encoder, one conv decoder, a classifier on z, the cluster means.

Introduced in notebook 01 (encoder, decoder, :class:`VAE`) and notebook 03
(:class:`ClusterVAE`). The three versions of the author's Keras script
(method.md section 3) differ only in how the encoder and decoder stages are
built, so they are the same modules with two switches:

============  ===================================  ===================================
version       encoder stage (filters 32, then 64)  decoder stage (filters 64, then 32)
============  ===================================  ===================================
article-a     Conv(s2) + ReLU                      ConvT(s2) + ReLU
article-b/c   Conv(s2)+LReLU(.2), Conv(s1)+LReLU   ConvT(s1)+LReLU, ConvT(s2)+LReLU
============  ===================================  ===================================

Fidelity to Keras, where it matters for reproduction:

* weights are Glorot-uniform and biases zero (Keras' defaults), cluster means zero;
* 'same' padding of a stride-2 conv in TensorFlow pads 0 before and 1 after
  (PyTorch's ``padding=1`` pads 1 on both sides, a one-pixel shift), and the
  stride-2 transposed conv crops accordingly: :class:`SameConv2d` and
  :class:`SameConvTranspose2d` reproduce TensorFlow's geometry exactly;
* a stride-1 transposed conv with 'same' padding computes the same family of
  functions as an ordinary conv (flip the kernel, swap its channels), and Glorot's
  range is symmetric in fan-in and fan-out, so the initial distribution is the
  same too. We use ``nn.Conv2d`` there: same maths, a much faster kernel on CPUs
  (the issue measured the last transposed conv at ~7 GFLOP/s).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
ARCHITECTURES = {
    # name: (two convolutions per stage?, activation)
    "article-a": (False, "relu"),
    "article-b": (True, "leaky"),
    "article-c": (True, "leaky"),
}


def check_architecture(name: str) -> tuple[bool, str]:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; valid models are {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def _activation(kind: str) -> nn.Module:
    return nn.ReLU() if kind == "relu" else nn.LeakyReLU(0.2)


class SameConv2d(nn.Conv2d):
    """3x3 stride-2 conv with TensorFlow's 'same' padding (0 before, 1 after): 2n -> n."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, stride=2, padding=0)

    def forward(self, x):
        return super().forward(F.pad(x, (0, 1, 0, 1)))


class SameConvTranspose2d(nn.ConvTranspose2d):
    """3x3 stride-2 transposed conv with TensorFlow's 'same' geometry: n -> 2n."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, stride=2, padding=0)

    def forward(self, x):
        n = x.shape[-1]
        return super().forward(x)[..., : 2 * n, : 2 * n]  # full output is 2n+1; TF keeps the first 2n


def keras_init_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every conv and dense layer (Keras' defaults)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class ConvEncoder(nn.Module):
    """x (B, 1, 28, 28) -> (mu, logvar), each (B, d): the parameters of p(z|x)."""

    def __init__(self, *, latent_dim: int = 20, double_conv: bool = True, activation: str = "leaky"):
        super().__init__()
        layers, c = [], 1
        for filters in (32, 64):
            layers += [SameConv2d(c, filters), _activation(activation)]
            if double_conv:
                layers += [nn.Conv2d(filters, filters, 3, padding=1), _activation(activation)]
            c = filters
        self.features = nn.Sequential(*layers, nn.Flatten())  # (B, 64*7*7)
        self.mu = nn.Linear(64 * 7 * 7, latent_dim)
        self.logvar = nn.Linear(64 * 7 * 7, latent_dim)

    def forward(self, x):
        h = self.features(x)
        return self.mu(h), self.logvar(h)


class ConvDecoder(nn.Module):
    """z (B, d) -> x_hat (B, 1, 28, 28) in (0, 1): the mean G(z) of q(x|z)."""

    def __init__(self, *, latent_dim: int = 20, double_conv: bool = True, activation: str = "leaky"):
        super().__init__()
        self.project = nn.Linear(latent_dim, 64 * 7 * 7)  # no activation, as in the article
        layers, c = [], 64
        for filters in (64, 32):
            if double_conv:  # Keras: Conv2DTranspose(stride 1, 'same') == Conv2d (see module docstring)
                layers += [nn.Conv2d(c, filters, 3, padding=1), _activation(activation)]
                c = filters
            layers += [SameConvTranspose2d(c, filters), _activation(activation)]
            c = filters
        layers += [nn.Conv2d(c, 1, 3, padding=1), nn.Sigmoid()]  # Keras: Conv2DTranspose(1, stride 1)
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        h = self.project(z).view(-1, 64, 7, 7)  # (B, 64, 7, 7)
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
    q_y: torch.Tensor     # (B, K)          p(y|z) = softmax(logits)


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
    :func:`~vaeclust_tutorial.train.predict` use the mean mu(x), as its evaluation does.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, classifier: nn.Module, *,
                 n_clusters: int, latent_dim: int):
        super().__init__()
        self.encoder, self.decoder, self.classifier = encoder, decoder, classifier
        self.means = nn.Parameter(torch.zeros(n_clusters, latent_dim))  # (K, d)

    @property
    def n_clusters(self) -> int:
        return self.means.shape[0]

    def forward(self, x) -> ClusterOutput:
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
        """n samples from cluster y: z ~ N(means[y], std^2 I), x = G(z). Notebook 03."""
        if not 0 <= cluster < self.n_clusters:
            raise ValueError(f"cluster={cluster} is out of range: valid clusters are 0..{self.n_clusters - 1}")
        mean = self.means[cluster]
        eps = torch.randn(n, mean.shape[0], generator=generator, device="cpu").to(mean.device)
        return self.decoder(mean + std * eps)


def conv_vae(model: str = "article-b", latent_dim: int = 20) -> VAE:
    """The plain VAE with the conv encoder and decoder of one article version. Notebook 01."""
    double, act = check_architecture(model)
    return keras_init_(VAE(ConvEncoder(latent_dim=latent_dim, double_conv=double, activation=act),
                           ConvDecoder(latent_dim=latent_dim, double_conv=double, activation=act)))


def conv_cluster_vae(model: str = "article-b", *, latent_dim: int = 20, n_clusters: int = 10,
                     hidden_dim: int = 256) -> ClusterVAE:
    """The article's clustering VAE, one of article-a/b/c, with Keras' initialisation. Notebook 03."""
    double, act = check_architecture(model)
    return keras_init_(ClusterVAE(
        ConvEncoder(latent_dim=latent_dim, double_conv=double, activation=act),
        ConvDecoder(latent_dim=latent_dim, double_conv=double, activation=act),
        Classifier(latent_dim=latent_dim, hidden_dim=hidden_dim, n_clusters=n_clusters),
        n_clusters=n_clusters, latent_dim=latent_dim))


class MLPEncoder(nn.Module):
    """x (B, n) -> (mu, logvar) (B, d) with one hidden layer: the toy of notebook 02."""

    def __init__(self, *, in_dim: int = 2, latent_dim: int = 2, hidden_dim: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU())
        self.mu, self.logvar = nn.Linear(hidden_dim, latent_dim), nn.Linear(hidden_dim, latent_dim)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.logvar(h)


def toy_cluster_vae(*, in_dim: int = 2, latent_dim: int = 2, n_clusters: int = 4,
                    hidden_dim: int = 64) -> ClusterVAE:
    """A small MLP clustering VAE for 2-D points, trained in seconds. Notebook 02."""
    decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, in_dim))
    return keras_init_(ClusterVAE(MLPEncoder(in_dim=in_dim, latent_dim=latent_dim, hidden_dim=hidden_dim),
                                  decoder, Classifier(latent_dim=latent_dim, hidden_dim=hidden_dim,
                                                      n_clusters=n_clusters),
                                  n_clusters=n_clusters, latent_dim=latent_dim))


def build_model(cfg) -> ClusterVAE:
    """A fresh :class:`ClusterVAE` for a :class:`~vaeclust_tutorial.config.TrainConfig`."""
    return conv_cluster_vae(cfg.model, latent_dim=cfg.latent_dim, n_clusters=cfg.n_clusters,
                            hidden_dim=cfg.hidden_dim)


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of one forward pass of one image, counted by hooks on convs and linears."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
        elif isinstance(m, nn.ConvTranspose2d):
            total += inp[0].shape[-1] * inp[0].shape[-2] * m.weight.numel()
        elif isinstance(m, nn.Conv2d):
            total += out.shape[-1] * out.shape[-2] * m.weight.numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.no_grad():
            was_training = model.training
            model.eval()
            model(torch.zeros(1, *IMAGE_SHAPE, device=next(model.parameters()).device))
            model.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return total
