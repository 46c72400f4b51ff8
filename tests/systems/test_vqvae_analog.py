"""The masked VQ-VAE as the analog JSCC baseline (MaskedVQVAEConfig(transmission="analog"))."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from digisem.digitize import AnalogSymbols
from digisem.link import SymbolLink, make_channel
from digisem.systems.vqvae import MaskedVQVAE, MaskedVQVAEConfig

TINY = {"image_size": 16, "patch": 4, "width": 16, "depth": 1, "heads": 2, "decoder_width": 8, "decoder_depth": 1, "code_dim": 8, "codebook_size": 16, "classes": 4, "transmission": "analog"}


def analog_model(**overrides) -> MaskedVQVAE:
    torch.manual_seed(0)
    return MaskedVQVAE(MaskedVQVAEConfig(**{**TINY, **overrides}))


def images(count: int = 3) -> torch.Tensor:
    return torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(1))


class Capture(nn.Module):
    """A channel wrapper that keeps the last input it saw."""

    def __init__(self, channel: nn.Module):
        super().__init__()
        self.channel = channel
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, snr_db, generator=None):
        self.inputs.append(x.detach().clone())
        return self.channel(x, snr_db, generator)


def test_analog_model_has_no_codebook_and_no_vq_outputs():
    model = analog_model().eval()
    assert isinstance(model.digitizer, AnalogSymbols) and model.payload_kind == "symbols"
    assert not any(name.startswith("digitizer") for name, _ in model.named_parameters())
    assert model.modes == ("analog",)
    with torch.no_grad():
        out = model(images(), generator=torch.Generator().manual_seed(0))
    assert out["vq_losses"] == {}
    assert out["payload"].is_complex() and out["payload"].shape == (3, 8 * 8 // 2)
    assert torch.equal(out["received"], out["payload"]), "without a link the symbols arrive intact"
    assert out["bits_per_image"] is None
    assert out["logits"].shape == (3, 4)
    assert out["features"].shape == (3, 8, 8)  # K = 16 patches x (1 - 0.5), D = 8


@pytest.mark.parametrize("mask_ratio,code_dim", [(0.5, 8), (0.0, 8), (0.75, 4), (0.25, 6)])
def test_symbols_per_image_is_kept_times_code_dim_over_two(mask_ratio, code_dim):
    model = analog_model(mask_ratio=mask_ratio, code_dim=code_dim).eval()
    kept = round(16 * (1 - mask_ratio))
    assert model.symbols_per_image(4) == pytest.approx(kept * code_dim / 2)
    assert model.symbols_per_image(6, 0.5) == pytest.approx(kept * code_dim / 2), "the arguments do not matter when analog"
    # measured at the channel input
    capture = Capture(make_channel("awgn"))
    link = SymbolLink(capture, normalize=False)
    with torch.no_grad():
        out = model(images(2), snr_db=10.0, link=link, generator=torch.Generator().manual_seed(0))
    (sent,) = capture.inputs
    assert sent.shape == (2, kept * code_dim // 2)
    assert out["channel_uses_per_image"] == kept * code_dim // 2


@pytest.mark.parametrize("channel", ["awgn", "rayleigh", "mimo-4x4-svd"])
def test_symbols_on_the_channel_have_unit_average_energy_per_example(channel):
    model = analog_model().eval()
    capture = Capture(make_channel(channel))
    link = SymbolLink(capture, normalize=False)  # the model itself must normalize
    with torch.no_grad():
        # scale the encoder's projection so the raw features are far from unit power
        model.encoder.project.weight.mul_(25.0)
        model(images(4), snr_db=5.0, link=link, generator=torch.Generator().manual_seed(0))
    (sent,) = capture.inputs
    assert sent.is_complex() and sent.shape == (4, 8 * 8 // 2)
    energy = sent.abs().pow(2).mean(1)
    assert torch.allclose(energy, torch.ones(4), atol=1e-5)


def test_at_very_high_snr_the_logits_match_the_no_link_logits():
    model = analog_model().eval()
    x = images(4)
    link = SymbolLink("awgn", normalize=False)
    with torch.no_grad():
        clean = model(x, generator=torch.Generator().manual_seed(7))
        sent = model(x, snr_db=100.0, link=link, generator=torch.Generator().manual_seed(7))
        noisy = model(x, snr_db=-10.0, link=link, generator=torch.Generator().manual_seed(7))
    assert torch.equal(clean["kept"], sent["kept"])
    assert torch.allclose(sent["logits"], clean["logits"], atol=1e-3)
    assert not torch.allclose(noisy["logits"], clean["logits"], atol=1e-3), "the channel noise must reach the receiver"


def test_odd_code_dim_with_analog_transmission_is_rejected():
    with pytest.raises(ValueError, match="code_dim"):
        MaskedVQVAEConfig(**{**TINY, "code_dim": 7})
    MaskedVQVAEConfig(**{**TINY, "code_dim": 7, "transmission": "digital"})  # digital has no such constraint


def test_unknown_transmission_is_rejected():
    with pytest.raises(ValueError, match="transmission"):
        MaskedVQVAEConfig(**{**TINY, "transmission": "semaphore"})


def test_gradients_reach_the_encoder_through_the_analog_channel():
    model = analog_model().train()
    link = SymbolLink("awgn", normalize=False)
    out = model(images(4), snr_db=5.0, link=link, generator=torch.Generator().manual_seed(0))
    loss = F.cross_entropy(out["logits"], torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grad = model.encoder.embed.weight.grad
    assert grad is not None and bool(torch.isfinite(grad).all())
    assert grad.abs().sum() > 0
    assert model.encoder.project.weight.grad.abs().sum() > 0
