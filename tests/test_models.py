"""The networks: shapes, the article's costs, TensorFlow's 'same' geometry, Keras initialisation."""

import pytest
import torch
import torch.nn.functional as F

from vaeclust_tutorial import preset
from vaeclust_tutorial.models import SameConv2d, SameConvTranspose2d, build_model, conv_cluster_vae, conv_vae, multiply_adds
from vaeclust_tutorial.toy import toy_cluster_vae
from vaeclust_tutorial.training import make_optimizer


@pytest.mark.parametrize("name, mmacs", [("article-a", 6.80), ("article-b", 14.0), ("article-c", 14.0)])
def test_shapes_and_cost_per_image_match_method_md(name, mmacs):
    model = build_model(preset(name))
    out = model(torch.rand(3, 1, 28, 28))
    assert out.x_hat.shape == (3, 1, 28, 28) and out.mu.shape == (3, 20) and out.p_y.shape == (3, 10)
    assert torch.allclose(out.p_y.sum(1), torch.ones(3))
    assert 0 < out.x_hat.min() and out.x_hat.max() < 1
    assert multiply_adds(model) / 1e6 == pytest.approx(mmacs, abs=0.03)


def test_same_conv_pads_like_tensorflow():
    """TF 'same', stride 2, even input: pad 0 before and 1 after, so output (i, j) starts at (2i, 2j)."""
    conv = SameConv2d(1, 1)
    x = torch.randn(1, 1, 6, 6)
    out = conv(x)
    assert out.shape == (1, 1, 3, 3)
    manual = (x[0, 0, 2:5, 0:3] * conv.weight[0, 0]).sum() + conv.bias[0]
    assert out[0, 0, 1, 0].item() == pytest.approx(manual.item(), abs=1e-5)


def test_same_conv_transpose_is_the_adjoint_of_same_conv():
    """<T x, y> = <x, C y>: the transposed conv is the adjoint of the TF-'same' strided conv."""
    ct = SameConvTranspose2d(3, 2)
    with torch.no_grad():
        ct.bias.zero_()
    x, y = torch.randn(1, 3, 7, 7), torch.randn(1, 2, 14, 14)
    conv_of_y = F.conv2d(F.pad(y, (0, 1, 0, 1)), ct.weight, stride=2)     # (1, 3, 7, 7)
    assert (ct(x) * y).sum().item() == pytest.approx((x * conv_of_y).sum().item(), rel=1e-4)


def test_stride1_conv_is_a_transposed_conv_with_flipped_kernel():
    conv = torch.nn.Conv2d(4, 3, 3, padding=1)
    tconv = torch.nn.ConvTranspose2d(4, 3, 3, padding=1)
    with torch.no_grad():
        tconv.weight.copy_(conv.weight.flip(-1, -2).transpose(0, 1))
        tconv.bias.copy_(conv.bias)
    x = torch.randn(2, 4, 9, 9)
    torch.testing.assert_close(conv(x), tconv(x), atol=1e-5, rtol=1e-5)


def test_keras_initialisation():
    model = conv_cluster_vae("article-b")
    assert torch.count_nonzero(model.means) == 0
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            assert torch.count_nonzero(m.bias) == 0
            fan = m.weight[0].numel() + m.weight[:, 0].numel() if m.weight.dim() == 2 else \
                m.weight.shape[2] * m.weight.shape[3] * (m.weight.shape[0] + m.weight.shape[1])
            assert m.weight.abs().max() <= (6 / fan) ** 0.5


def test_generate_and_plain_vae():
    model = conv_cluster_vae("article-a")
    assert model.generate(3, 5).shape == (5, 1, 28, 28)
    with pytest.raises(ValueError, match="valid clusters are 0..9"):
        model.generate(10, 1)
    out = conv_vae("article-a")(torch.rand(2, 1, 28, 28))
    assert out.x_hat.shape == (2, 1, 28, 28) and out.z.shape == (2, 20)
    with pytest.raises(ValueError, match="valid networks"):
        conv_vae("article-z")


def test_toy_model_has_the_same_output_structure():
    out = toy_cluster_vae(n_clusters=3)(torch.randn(7, 2))
    assert out.x_hat.shape == (7, 2) and out.mu.shape == (7, 2) and out.p_y.shape == (7, 3)


def test_classifier_sees_the_sampled_z_in_training_and_the_mean_at_evaluation():
    torch.manual_seed(0)
    model = conv_cluster_vae("article-b")
    x = torch.rand(8, 1, 28, 28)
    out = model(x)
    assert torch.allclose(out.logits, model.classifier(out.z))
    assert not torch.allclose(out.z, out.mu)                         # z is a sample, not the mean
    mu, p_y = model.encode(x)
    with torch.inference_mode():
        assert torch.allclose(mu, model.encoder(x)[0])
        assert torch.allclose(p_y, torch.softmax(model.classifier(mu), -1))


def test_the_article_configs_use_keras_optimizer_defaults():
    for name in ("article-a", "article-b", "article-c"):
        cfg = preset(name)
        assert (cfg.lr, cfg.adam_eps, cfg.batch_size, cfg.epochs, cfg.latent_dim, cfg.n_clusters) == \
            (1e-3, 1e-7, 100, 50, 20, 10)
        assert (cfg.lam, cfg.estimator) == ((2.5, "sample") if name == "article-c" else (5.0, "closed-form"))


def test_a_stride_1_transposed_conv_is_a_conv_with_the_kernel_flipped():
    """Why the decoder writes Keras' Conv2DTranspose(stride 1, 'same') as nn.Conv2d (module docstring)."""
    convt = torch.nn.ConvTranspose2d(4, 3, 3, padding=1).double()
    conv = torch.nn.Conv2d(4, 3, 3, padding=1).double()
    with torch.no_grad():
        conv.weight.copy_(convt.weight.flip(-1, -2).transpose(0, 1))
        conv.bias.copy_(convt.bias)
    x = torch.randn(2, 4, 7, 7, dtype=torch.double)
    torch.testing.assert_close(conv(x), convt(x), atol=1e-12, rtol=1e-12)


def test_fused_adam_makes_the_per_tensor_update():
    torch.manual_seed(0)
    a, b = conv_cluster_vae("article-a"), conv_cluster_vae("article-a")
    b.load_state_dict(a.state_dict())
    fused = make_optimizer(a, preset("article-a"), torch.device("cpu"))
    loop = torch.optim.Adam(b.parameters(), lr=1e-3, eps=1e-7, foreach=False)
    assert fused.defaults["fused"]
    for _ in range(5):
        grads = [torch.randn_like(p) for p in a.parameters()]
        for model, opt in ((a, fused), (b, loop)):
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


def test_an_over_clustering_head_keeps_the_draws_of_the_article_model():
    torch.manual_seed(0)
    plain = conv_cluster_vae("article-b")
    torch.manual_seed(0)
    over = conv_cluster_vae("article-b", overcluster_k=50)
    for name, p in plain.state_dict().items():            # the head is initialised after the rest
        assert torch.equal(p, over.state_dict()[name]), name
    assert set(over.state_dict()) - set(plain.state_dict()) == {f"overcluster.net.{i}.{w}" for i in (0, 2)
                                                                for w in ("weight", "bias")}
    assert build_model(preset("beyond", overcluster_k=50)).overcluster.net[-1].out_features == 50
