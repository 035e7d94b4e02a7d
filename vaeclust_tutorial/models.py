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

Speed (issue 5, README "Speed"): the decoder's kernels are rewritten, never its
maths or its parameters (``kernels="fast"``, the default):

* each stride-2 transposed conv runs as one ordinary 2x2 conv with 4 x C_out
  channels, one per output phase, followed by a depth-to-space shuffle
  (:func:`subpixel_kernel`); oneDNN's transposed-conv path is slow, in bf16
  most of all;
* the last conv (32 -> 1 channel) runs as a 1x1 conv to its 9 tap maps and a sum
  of 9 shifted views (:class:`ShiftSumConv2d`): an ordinary conv with one output
  channel wastes most of the vector unit.

``kernels="plain"`` builds the decoder the way a straightforward port writes it
(``nn.ConvTranspose2d`` everywhere, as in Keras): the naive reference of
``python -m vaeclust_tutorial bench`` and of the tests that check the rewrite.
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
    # Not in place: inplace=True measured x0.8 for article-b in bf16 channels_last on the CPU.
    return nn.ReLU() if kind == "relu" else nn.LeakyReLU(0.2)


class SameConv2d(nn.Conv2d):
    """3x3 stride-2 conv with TensorFlow's 'same' padding (0 before, 1 after): 2n -> n."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, stride=2, padding=0)

    def forward(self, x):
        return super().forward(F.pad(x, (0, 1, 0, 1)))


# Sub-pixel taps, per spatial axis: phase a (output 2m + a) and tap t of a 2-wide conv over the
# input padded by one zero in front (tap 0 reads x[m-1], tap 1 reads x[m]) -> index into the
# 3-tap transposed kernel, 3 meaning "no tap" (a zero appended to the kernel).
_SUBPIXEL_TAPS = (2, 0, 3, 1)   # (a=0, t=0), (a=0, t=1), (a=1, t=0), (a=1, t=1)


def subpixel_kernel(weight: torch.Tensor) -> torch.Tensor:
    r"""The 2x2 conv kernel (4 C_out, C_in, 2, 2) equivalent to a 3x3 stride-2 transposed kernel.

    Along one axis the transposed conv (TF 'same': the first 2n of its 2n+1 outputs) is

    .. math:: y_{2m} = w_0\,x_m + w_2\,x_{m-1}, \qquad y_{2m+1} = w_1\,x_m,

    so each output phase a is an ordinary 2-tap conv over x padded with one zero in
    front: taps (w_2, w_0) for a = 0 and (0, w_1) for a = 1. In 2-D the four phases
    (a_h, a_w) are the output channels, ordered (a_h, a_w, c_out).
    ``weight`` is ``nn.ConvTranspose2d``'s (C_in, C_out, 3, 3); the result is differentiable.
    """
    c_in, c_out = weight.shape[:2]
    taps = torch.tensor(_SUBPIXEL_TAPS, device=weight.device)
    padded = F.pad(weight, (0, 1, 0, 1))                            # (C_in, C_out, 4, 4), index 3 is 0
    k = padded.index_select(2, taps).index_select(3, taps)           # (C_in, C_out, a_h*t_h, a_w*t_w)
    k = k.view(c_in, c_out, 2, 2, 2, 2)                              # (C_in, C_out, a_h, t_h, a_w, t_w)
    return k.permute(2, 4, 1, 0, 3, 5).reshape(4 * c_out, c_in, 2, 2)


def depth_to_space(y: torch.Tensor) -> torch.Tensor:
    """(B, 4C, n, n) with channels ordered (a_h, a_w, c) -> (B, C, 2n, 2n), channels_last."""
    b, c4, n, _ = y.shape
    c = c4 // 4
    y = y.permute(0, 2, 3, 1).reshape(b, n, n, 2, 2, c)              # (B, m_h, m_w, a_h, a_w, C)
    return y.permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * n, 2 * n, c).permute(0, 3, 1, 2)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """3x3 stride-2 transposed conv with TensorFlow's 'same' geometry: n -> 2n.

    ``subpixel=True`` computes it as :func:`subpixel_kernel` conv + :func:`depth_to_space`
    (same parameters, same function, faster); ``False`` calls the transposed conv itself.
    """

    def __init__(self, c_in: int, c_out: int, *, subpixel: bool = True):
        super().__init__(c_in, c_out, 3, stride=2, padding=0)
        self.subpixel = subpixel

    def forward(self, x):
        n = x.shape[-1]
        if not self.subpixel:
            return super().forward(x)[..., : 2 * n, : 2 * n]  # full output is 2n+1; TF keeps the first 2n
        y = F.conv2d(F.pad(x, (1, 0, 1, 0)), subpixel_kernel(self.weight), self.bias.repeat(4))
        return depth_to_space(y)


class _ShiftSum(torch.autograd.Function):
    """t (B, 9C, H+2, W+2), channels (tap, c) -> y (B, C, H, W) = sum over taps of shifted t.

    The sum is accumulated in fp32 at least (fp64 stays fp64): a bf16 t gives an fp32 y.
    """

    @staticmethod
    def forward(ctx, t):
        b, c9, hp, wp = t.shape
        c, h, w = c9 // 9, hp - 2, wp - 2
        ctx.shape = t.shape
        y = t[:, 0:c, 0:h, 0:w].to(torch.promote_types(t.dtype, torch.float32))
        for k in range(1, 9):
            p, q = divmod(k, 3)
            y = y + t[:, k * c:(k + 1) * c, p:p + h, q:q + w]
        return y

    @staticmethod
    def backward(ctx, grad):
        b, c9, hp, wp = ctx.shape
        c, h, w = c9 // 9, hp - 2, wp - 2
        out = grad.new_zeros(b, hp, wp, c9).permute(0, 3, 1, 2)      # channels_last, like t
        for k in range(9):
            p, q = divmod(k, 3)
            out[:, k * c:(k + 1) * c, p:p + h, q:q + w] = grad
        return out


class ShiftSumConv2d(nn.Conv2d):
    r"""3x3 stride-1 'same' conv for a few output channels (the decoder's last layer, 32 -> 1).

    .. math:: y_{ij} = b + \sum_{p,q} w_{pq}^\top x_{i+p-1,\,j+q-1}
                     = b + \sum_{p,q} t^{(pq)}_{i+p-1,\,j+q-1}, \qquad t^{(pq)} = w_{pq}^\top x

    The nine tap maps t are one 1x1 conv (a matrix product over channels, C_in -> 9 C_out);
    the sum of shifted views is cheap. Same parameters as ``nn.Conv2d(c_in, c_out, 3, padding=1)``;
    the output is fp32 (the sum is accumulated in fp32 under bf16 autocast too).
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, padding=1)

    def forward(self, x):
        c_out, c_in = self.weight.shape[:2]
        taps = self.weight.permute(2, 3, 0, 1).reshape(9 * c_out, c_in, 1, 1)   # (tap, c_out) x c_in
        t = F.pad(F.conv2d(x, taps), (1, 1, 1, 1))                             # (B, 9 C_out, H+2, W+2)
        y = _ShiftSum.apply(t)
        return y + self.bias.view(1, -1, 1, 1).to(y.dtype)


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


KERNELS = ("fast", "plain")


class ConvDecoder(nn.Module):
    """z (B, d) -> x_hat (B, 1, 28, 28) in (0, 1): the mean G(z) of q(x|z).

    ``kernels``: "fast" (default) or "plain", the same function computed two ways (module docstring).
    """

    def __init__(self, *, latent_dim: int = 20, double_conv: bool = True, activation: str = "leaky",
                 kernels: str = "fast"):
        super().__init__()
        if kernels not in KERNELS:
            raise ValueError(f"unknown kernels {kernels!r}; valid values are {list(KERNELS)}")
        fast = kernels == "fast"
        # Keras: Conv2DTranspose(stride 1, 'same') == Conv2d with a flipped kernel (module docstring)
        stride1 = (lambda c_in, c_out: nn.Conv2d(c_in, c_out, 3, padding=1)) if fast else \
            (lambda c_in, c_out: nn.ConvTranspose2d(c_in, c_out, 3, padding=1))
        self.project = nn.Linear(latent_dim, 64 * 7 * 7)  # no activation, as in the article
        layers, c = [], 64
        for filters in (64, 32):
            if double_conv:
                layers += [stride1(c, filters), _activation(activation)]
                c = filters
            layers += [SameConvTranspose2d(c, filters, subpixel=fast), _activation(activation)]
            c = filters
        layers += [ShiftSumConv2d(c, 1) if fast else stride1(c, 1), nn.Sigmoid()]
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
                     hidden_dim: int = 256, kernels: str = "fast") -> ClusterVAE:
    """The article's clustering VAE, one of article-a/b/c, with Keras' initialisation. Notebook 03.

    ``kernels="plain"``: the decoder as a straightforward port writes it (see :class:`ConvDecoder`).
    """
    double, act = check_architecture(model)
    return keras_init_(ClusterVAE(
        ConvEncoder(latent_dim=latent_dim, double_conv=double, activation=act),
        ConvDecoder(latent_dim=latent_dim, double_conv=double, activation=act, kernels=kernels),
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


# Evaluation batch: 200 images stay in the CPU's caches; 10k MNIST test images took 0.52 s in
# batches of 200 and 0.90 s in batches of 2000 (medians of 7, 2 threads, same predictions).
EVAL_BATCH = 200


@torch.inference_mode()
def latent_means(model, images: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """mu(x) for every image, (N, d), of a :class:`VAE` or :class:`ClusterVAE` (eval mode).

    The codes a two-step method clusters (notebook 01), and those the k-means start clusters
    (:mod:`~vaeclust_tutorial.cluster_init`).
    """
    model.eval()
    return torch.cat([model.encoder(images[i:i + batch_size])[0] for i in range(0, len(images), batch_size)])


def build_model(cfg) -> ClusterVAE:
    """A fresh :class:`ClusterVAE` for a :class:`~vaeclust_tutorial.config.TrainConfig`."""
    return conv_cluster_vae(cfg.model, latent_dim=cfg.latent_dim, n_clusters=cfg.n_clusters,
                            hidden_dim=cfg.hidden_dim)


def plain_state_dict(state: dict, plain_model: nn.Module) -> dict:
    """A fast-kernel state dict made loadable by ``plain_model`` (built with ``kernels="plain"``),
    the same function: its stride-1 ``ConvTranspose2d`` kernels are the convs' kernels flipped,
    with in and out channels swapped. Everything else is shared as is."""
    out = {}
    for key, value in state.items():
        owner = plain_model.get_submodule(key.rsplit(".", 1)[0]) if "." in key else plain_model
        if key.endswith(".weight") and isinstance(owner, nn.ConvTranspose2d) and owner.stride == (1, 1):
            value = value.flip(-1, -2).transpose(0, 1)
        out[key] = value
    return out


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
