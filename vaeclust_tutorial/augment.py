"""Small random moves of whole batches: the perturbations a cluster should not care about.

Not in the article; introduced in notebook 06. The consistency term
(:func:`~vaeclust_tutorial.losses.consistency`) moves images with them: a digit rotated by
10 degrees or moved by 2 pixels is the same digit, so its cluster should not change. Each image gets its own
rotation, scale and shift, drawn from the global torch generator (or ``generator``) on the
CPU, so a seeded run draws the same moves on a CPU and on a GPU, and a resumed run (whose
checkpoint holds the generator's state) draws the moves the uninterrupted run drew. The
whole batch is moved by one ``affine_grid`` + ``grid_sample``: no per-image Python work.
:func:`random_gamma` changes the grey levels instead (a lighter or darker garment is still one).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def affine_matrices(n: int, *, rotation: float, scale: float, shift: float, size: int, flip: bool = False,
                    stretch: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 2, 3) matrices of ``affine_grid``, each with its own uniform draw of
    a rotation in [-rotation, rotation] degrees, a scale in [1 - scale, 1 + scale] and a
    shift in [-shift, shift] pixels along each axis, for images ``size`` pixels wide; with
    ``flip``, each image is also mirrored left to right with probability 1/2; with ``stretch``
    > 0, its width and height are also multiplied by sqrt(a) and 1 / sqrt(a), the aspect ratio a
    with log a uniform in [-log(1 + stretch), log(1 + stretch)] (the area kept; 0.3: a between
    1/1.3 and 1.3). The flip and then the stretch are drawn after the rest, so the other draws
    are those without them.

    ``affine_grid`` maps output coordinates to input coordinates in [-1, 1], so the matrix
    holds the inverse move: rotation by -angle, scale 1 / s, translation -t (and a mirror,
    its own inverse, on the output's x).
    """
    u = torch.rand(n, 4, generator=generator) * 2 - 1                  # (n, 4) uniform in [-1, 1]
    angle = u[:, 0] * math.radians(rotation)
    s = 1 + u[:, 1] * scale
    t = u[:, 2:] * shift * 2 / size                                    # pixels -> [-1, 1] units
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    rot = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)   # (n, 2, 2)
    if flip:
        mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        rot = rot * torch.stack([mirror, torch.ones(n)], -1).unsqueeze(1)   # negate the output-x column
    if stretch:
        log_a = (torch.rand(n, generator=generator) * 2 - 1) * math.log1p(stretch)
        # output (x, y) -> input: undo the stretch first, (x / sqrt(a), y * sqrt(a)), then the rest
        rot = rot * torch.stack([(-log_a / 2).exp(), (log_a / 2).exp()], -1).unsqueeze(1)
    return torch.cat([rot, -(rot @ t.unsqueeze(-1))], -1)              # (n, 2, 3)


def random_affine(x: torch.Tensor, *, rotation: float = 15.0, scale: float = 0.1, shift: float = 2.0,
                  flip: bool = False, stretch: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """x (B, C, H, W) moved image by image: rotation (degrees), scale (fraction) and shift
    (pixels) drawn uniformly within the given ranges, with ``flip`` a left-right mirror of
    half the images (a symmetry of clothes, not of digits), and with ``stretch`` a change of
    aspect ratio (:func:`affine_matrices`); pixels moved in from outside are 0.
    Zero ranges, no flip and no stretch give back x."""
    theta = affine_matrices(len(x), rotation=rotation, scale=scale, shift=shift, size=x.shape[-1],
                            flip=flip, stretch=stretch, generator=generator).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_gamma(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""x (B, C, H, W) in [0, 1] with each image's grey levels bent by its own gamma:
    :math:`x^\gamma` with :math:`\log\gamma` uniform in [-strength, strength] (0.7: gamma between
    1/2 and 2). Black stays black and white stays white; the mid greys, where a garment's shade
    lives, get lighter or darker. The usual gamma augmentation of image pipelines (e.g.
    torchvision's ``adjust_gamma``), drawn per image in one tensor operation; strength 0 gives
    back x and draws nothing."""
    if strength == 0:
        return x
    log_gamma = (torch.rand(len(x), generator=generator) * 2 - 1) * strength
    gamma = log_gamma.exp().to(x.device, x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return x.clamp(0, 1) ** gamma
