import pytest
import torch
from torch import nn

from digisem.nn import GDN, RCB, SqueezeExcitation, TransformerBlock, TransposedRCB

OFFSET = 2.0**-18


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_with_zero_gamma_and_unit_beta_is_identity(inverse, generator):
    gdn = GDN(4, inverse=inverse, gamma_init=0.0)
    x = torch.randn(2, 4, 5, 6, generator=generator)
    assert torch.allclose(gdn.beta, torch.ones(4))
    assert torch.equal(gdn.gamma, torch.zeros(4, 4))
    assert torch.allclose(gdn(x), x, atol=1e-6)


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_follows_the_divisive_normalization_formula(inverse, generator):
    channels = 3
    beta = torch.rand(channels, generator=generator) + 0.5
    gamma = torch.rand(channels, channels, generator=generator)
    gdn = GDN(channels, inverse=inverse)
    with torch.no_grad():
        gdn.beta_raw.copy_(torch.sqrt(beta + OFFSET**2))
        gdn.gamma_raw.copy_(torch.sqrt(gamma + OFFSET**2))
    x = torch.randn(2, channels, 4, 4, generator=generator, dtype=torch.float64)
    gdn = gdn.double()
    norm = torch.sqrt(beta.double()[None, :, None, None] + torch.einsum("ij,bjhw->bihw", gamma.double(), x**2))
    expected = x * norm if inverse else x / norm
    assert torch.allclose(gdn(x), expected, rtol=1e-6, atol=1e-9)


def test_gdn_parameters_stay_nonnegative_whatever_the_raw_values():
    gdn = GDN(3, beta_min=1e-6)
    with torch.no_grad():
        gdn.beta_raw.fill_(-2.0)
        gdn.gamma_raw.fill_(-3.0)
    assert bool((gdn.gamma >= 0).all()) and bool((gdn.beta >= 1e-6 * 0.999).all())
    assert torch.isfinite(gdn(torch.randn(1, 3, 2, 2))).all()


def test_gdn_gradient_pushes_a_bounded_parameter_back_up():
    gdn = GDN(2)
    with torch.no_grad():
        gdn.gamma_raw.fill_(-1.0)
    (-gdn.gamma.sum()).backward()
    assert bool((gdn.gamma_raw.grad != 0).all())


def test_gdn_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\[B, 4, H, W\]"):
        GDN(4)(torch.randn(1, 3, 2, 2))


def test_rcb_keeps_or_halves_the_size_and_uses_a_shortcut_conv_only_when_the_shape_changes():
    x = torch.randn(2, 6, 8, 10)
    same = RCB(6, 6, 3)
    assert isinstance(same.shortcut, nn.Identity)
    assert same(x).shape == (2, 6, 8, 10)
    down = RCB(6, 12, 5, stride=2)
    assert isinstance(down.shortcut, nn.Conv2d) and down.shortcut.kernel_size == (1, 1) and down.shortcut.stride == (2, 2)
    assert down(x).shape == (2, 12, 4, 5)
    assert down.conv1.bias is None and down.conv2.kernel_size == (1, 1)
    assert isinstance(RCB(6, 8, 3).shortcut, nn.Conv2d)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_transposed_rcb_doubles_the_spatial_size(kernel_size):
    block = TransposedRCB(4, 6, kernel_size, stride=2)
    assert isinstance(block.conv1, nn.ConvTranspose2d) and isinstance(block.shortcut, nn.ConvTranspose2d)
    assert block(torch.randn(2, 4, 5, 7)).shape == (2, 6, 10, 14)
    assert TransposedRCB(4, 4, kernel_size)(torch.randn(1, 4, 5, 7)).shape == (1, 4, 5, 7)


def test_sigmoid_output_activation_gives_values_in_unit_interval(generator):
    block = TransposedRCB(4, 3, 3, stride=2, output_activation="sigmoid")
    y = block(torch.randn(2, 4, 3, 3, generator=generator))
    assert bool(((y > 0) & (y < 1)).all())
    assert isinstance(block.output_activation, nn.Sigmoid)


def test_blocks_reject_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        RCB(3, 3, 4)
    with pytest.raises(ValueError, match="output_activation"):
        TransposedRCB(3, 3, 3, output_activation="tanh")


def test_squeeze_excitation_scales_each_channel_by_its_gate(generator):
    se = SqueezeExcitation(6)
    assert se.squeeze.weight.shape == (3, 6) and se.excite.weight.shape == (6, 3)
    x = torch.randn(2, 6, 4, 4, generator=generator)
    w1, b1, w2, b2 = se.squeeze.weight, se.squeeze.bias, se.excite.weight, se.excite.bias
    pooled = x.mean(dim=(2, 3))
    gate = torch.sigmoid(torch.relu(pooled @ w1.T + b1) @ w2.T + b2)
    assert torch.allclose(se(x), x * gate[:, :, None, None], atol=1e-6)
    with torch.no_grad():
        se.excite.weight.zero_()
        se.excite.bias.fill_(0.0)
    assert torch.allclose(se(x), 0.5 * x)


def test_transformer_self_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    block = TransformerBlock(32, 4)
    tokens = torch.randn(3, 7, 32)
    reference = block.attention(tokens, tokens, tokens, need_weights=False)[0]
    torch.testing.assert_close(block.self_attention(tokens), reference, rtol=1e-5, atol=1e-6)
