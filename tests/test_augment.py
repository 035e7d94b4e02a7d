"""Random affine moves of a batch: identity at zero, the drawn shift and rotation, seeded draws."""

import math

import pytest
import torch

from vaeclust_tutorial.augment import affine_matrices, random_affine, random_gamma


def _blobs(n, offset=(0.0, 0.0)):
    """n copies of a Gaussian blob (std 1.5 px) centred ``offset`` pixels (x, y) from the middle of 28x28."""
    c = torch.arange(28.0) - 13.5
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    img = torch.exp(-((xx - offset[0]) ** 2 + (yy - offset[1]) ** 2) / (2 * 1.5 ** 2))
    return img.expand(n, 1, 28, 28).clone()


def _centre_of_mass(x):
    c = torch.arange(28.0, dtype=x.dtype) - 13.5
    m = x.sum((1, 2, 3))
    return torch.stack([(x.sum(2)[:, 0] * c).sum(1) / m, (x.sum(3)[:, 0] * c).sum(1) / m], 1)   # (n, 2): x, y


def test_zero_ranges_give_back_the_images():
    x = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(random_affine(x, rotation=0, scale=0, shift=0), x, atol=1e-5, rtol=0)


def test_each_image_moves_by_its_own_drawn_shift():
    x = _blobs(64).double()
    moved = random_affine(x, rotation=0, scale=0, shift=3, generator=torch.Generator().manual_seed(0))
    u = torch.rand(64, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float32) * 2 - 1
    torch.testing.assert_close(_centre_of_mass(moved), (3 * u[:, 2:]).double(), atol=1e-3, rtol=0)
    assert _centre_of_mass(moved).abs().max() > 2                       # the range is used, up to 3 px


def test_a_rotation_turns_about_the_centre_by_the_drawn_angle():
    x = _blobs(32, offset=(6.0, 0.0)).double()
    moved = random_affine(x, rotation=30, scale=0, shift=0, generator=torch.Generator().manual_seed(1))
    u = torch.rand(32, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    com = _centre_of_mass(moved)
    torch.testing.assert_close(com.norm(dim=1), torch.full((32,), 6.0, dtype=torch.double), atol=0.05, rtol=0)
    angle = torch.atan2(com[:, 1], com[:, 0]).abs()
    torch.testing.assert_close(angle, (u[:, 0] * math.radians(30)).abs().double(), atol=0.01, rtol=0)


def test_the_moves_are_seeded_and_differ_between_images():
    x = torch.rand(8, 1, 28, 28)
    a = random_affine(x, generator=torch.Generator().manual_seed(3))
    b = random_affine(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    same = random_affine(x[:1].expand(8, 1, 28, 28), generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(same[0], same[1])                         # one draw per image
    torch.manual_seed(5)
    c = random_affine(x)
    torch.manual_seed(5)
    assert torch.equal(c, random_affine(x))                             # the global generator by default


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_the_same_moves_on_every_device(device):
    x = _blobs(4)
    here = random_affine(x, generator=torch.Generator().manual_seed(2))
    there = random_affine(x.to(device), generator=torch.Generator().manual_seed(2)).cpu()
    torch.testing.assert_close(there, here, atol=1e-5, rtol=0)


def test_a_flip_mirrors_half_the_images_and_leaves_the_other_draws_alone():
    x = _blobs(400, offset=(6.0, 0.0)).double()
    flipped = random_affine(x, rotation=0, scale=0, shift=0, flip=True, generator=torch.Generator().manual_seed(2))
    com = _centre_of_mass(flipped)
    mirrored = com[:, 0] < 0
    torch.testing.assert_close(com[:, 0].abs(), torch.full((400,), 6.0, dtype=torch.double), atol=1e-3, rtol=0)
    assert 150 < int(mirrored.sum()) < 250                              # about half
    torch.testing.assert_close(flipped[mirrored], x[mirrored].flip(-1), atol=1e-6, rtol=0)   # an exact mirror
    # the rotation, scale and shift drawn with flip=True are those drawn without it
    a = random_affine(x[:50], flip=False, generator=torch.Generator().manual_seed(4))
    b = random_affine(x[:50], flip=True, generator=torch.Generator().manual_seed(4))
    kept = (_centre_of_mass(b)[:, 0] - _centre_of_mass(a)[:, 0]).abs() < 1e-3
    assert kept.any() and not kept.all()
    torch.testing.assert_close(b[kept], a[kept])


def test_gamma_bends_each_images_greys_and_keeps_black_and_white():
    x = torch.linspace(0, 1, 28 * 28).view(1, 1, 28, 28).expand(64, 1, 28, 28).clone()
    bent = random_gamma(x, 0.7, generator=torch.Generator().manual_seed(0))
    gamma = (0.7 * (torch.rand(64, generator=torch.Generator().manual_seed(0)) * 2 - 1)).exp()
    torch.testing.assert_close(bent, x ** gamma.view(-1, 1, 1, 1))
    assert (bent[:, :, 0, 0] == 0).all() and (bent[:, :, -1, -1] == 1).all()      # black and white stay
    mid = bent[:, 0, 14, 0]                                                       # a grey of 0.5
    assert mid.min() < 0.4 and mid.max() > 0.6                                    # darker and lighter
    assert gamma.min() < 0.6 and gamma.max() > 1.7                                # the range is used


def test_zero_gamma_gives_back_the_images_and_draws_nothing():
    x = torch.rand(4, 1, 28, 28)
    g = torch.Generator().manual_seed(2)
    assert random_gamma(x, 0.0, generator=g) is x
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(2)))


def test_a_stretch_changes_the_aspect_ratio_keeps_the_area_and_leaves_the_other_draws_alone():
    x = torch.zeros(300, 1, 28, 28, dtype=torch.double)
    x[:, :, 9:19, 9:19] = 1.0                                            # a 10 x 10 square
    stretched = random_affine(x, rotation=0, scale=0, shift=0, stretch=0.3,
                              generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    torch.rand(300, 4, generator=g)                                      # rotation, scale, shift
    a = ((torch.rand(300, generator=g) * 2 - 1) * math.log1p(0.3)).exp().double()     # then the aspect
    width = stretched[:, 0].sum(2).max(-1).values                        # the square's extent along x
    height = stretched[:, 0].sum(1).max(-1).values                       # and along y
    torch.testing.assert_close(width, 10 * a.sqrt(), atol=0.6, rtol=0)
    torch.testing.assert_close(height, 10 / a.sqrt(), atol=0.6, rtol=0)
    assert (width / height).max() > 1.25 and (width / height).min() < 1 / 1.25    # wider and taller
    torch.testing.assert_close(stretched.sum((1, 2, 3)), x.sum((1, 2, 3)), atol=3.0, rtol=0)  # the area kept
    # the rotation, scale and shift drawn with a stretch are those drawn without it: the matrix is
    # the plain one with its columns scaled by 1 / sqrt(a) and sqrt(a)
    plain = affine_matrices(50, rotation=15, scale=0.1, shift=2, size=28, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    with_stretch = affine_matrices(50, rotation=15, scale=0.1, shift=2, size=28, stretch=0.3, generator=g)
    g = torch.Generator().manual_seed(4)
    torch.rand(50, 4, generator=g)
    a = ((torch.rand(50, generator=g) * 2 - 1) * math.log1p(0.3)).exp()
    torch.testing.assert_close(with_stretch[:, :, :2], plain[:, :, :2] * torch.stack([a.rsqrt(), a.sqrt()], -1)[:, None])
    assert torch.equal(affine_matrices(50, rotation=15, scale=0.1, shift=2, size=28, stretch=0.0,
                                       generator=torch.Generator().manual_seed(4)), plain)
