"""JCM: the learned constellation lies on the standard grid, power and SNR conventions, shapes, errors."""

import math

import pytest
import torch

from digisem.digitize import LearnedConstellation
from digisem.link import constellation
from digisem.systems.jcm import JCM, JCMConfig, reconstruction_loss


@pytest.mark.parametrize("order", [4, 16, 64, 256])
def test_learned_constellation_outputs_lie_on_the_unit_energy_qam_grid(order, generator):
    """Training (Gumbel samples) and eval (argmax) outputs are points of the standard unit-energy
    square M-QAM (the same point set as digisem's Gray QAM, which is checked against closed form)."""
    learned = LearnedConstellation(order)
    reference = constellation(f"{order}qam").points
    logits = torch.randn(5, 2 * 64, learned.num_levels, generator=generator)
    for mode in (True, False):
        symbols = learned.train(mode)(logits, generator)
        assert symbols.shape == (5, 64) and symbols.dtype == torch.complex64
        distance = (symbols.reshape(-1, 1) - reference.reshape(1, -1)).abs().min(dim=1).values
        assert distance.max() < 1e-5
    assert sorted(learned.points().abs().pow(2).tolist()) == pytest.approx(sorted(reference.abs().pow(2).tolist()), abs=1e-5)
    assert learned.points().abs().pow(2).mean().item() == pytest.approx(1.0, abs=1e-6)


def test_bpsk_uses_the_real_axis_only(generator):
    learned = LearnedConstellation(2).train()
    symbols = learned(torch.randn(3, 16, 2, generator=generator), generator)
    assert symbols.shape == (3, 16)
    assert set(symbols.real.unique().tolist()) <= {-1.0, 1.0} and symbols.imag.abs().max() == 0


def test_gumbel_straight_through_passes_gradients_and_follows_the_logits(generator):
    learned = LearnedConstellation(16).train()
    logits = torch.zeros(1, 2000, 4)
    logits[..., 3] = 8.0  # level +3 much more likely
    logits.requires_grad_(True)
    symbols = learned(logits, generator)
    top = 3 / math.sqrt(10)
    assert (torch.view_as_real(symbols.detach()) - top).abs().lt(1e-6).float().mean() > 0.99
    symbols.real.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    eval_symbols = learned.eval()(logits.detach())
    assert torch.allclose(eval_symbols, torch.full_like(eval_symbols, complex(top, top)))


def test_learned_constellation_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown learned constellation order 8"):
        LearnedConstellation(8)
    with pytest.raises(ValueError, match=r"logits must be \[B, d, 8\]"):
        LearnedConstellation(64)(torch.randn(2, 10, 4))


def test_jcm_sends_unit_energy_symbols_and_the_channel_adds_n0(generator):
    """Per-example unit energy; received - sent has variance N0 = 10^(-snr/10) per complex symbol (Es/N0)."""
    model = JCM(JCMConfig(order=64, width=4, decoder_blocks=1)).eval()
    images = torch.rand(16, 3, 32, 32, generator=generator)
    out = model(images, link="awgn", snr_db=3.0, generator=generator)
    assert out["payload"].shape == (16, 128) and out["x_hat"].shape == (16, 3, 32, 32)
    assert out["payload"].dtype == torch.complex64 and out["received"].dtype == torch.complex64
    assert torch.allclose(out["payload"].abs().pow(2).mean(1), torch.ones(16), atol=1e-5)
    assert out["bits_per_image"] == 128 * 6 and out["channel_uses_per_image"] == 128
    noise = out["received"] - out["payload"]
    assert noise.abs().pow(2).mean().item() == pytest.approx(10 ** (-0.3), rel=6 / math.sqrt(noise.numel()))
    assert float(out["x_hat"].detach().min()) >= 0 and float(out["x_hat"].detach().max()) <= 1
    noiseless = model(images)
    assert torch.equal(noiseless["received"], noiseless["payload"]) and noiseless["channel_uses_per_image"] is None
    assert noiseless["logits"] is None


def test_jcm_with_classifier_head_and_loss(generator):
    model = JCM(JCMConfig(order=16, width=4, decoder_blocks=1, classes=10)).train()
    images = torch.rand(4, 3, 32, 32, generator=generator)
    out = model(images, link="awgn", snr_db=10.0, generator=generator)
    assert out["logits"].shape == (4, 10)
    loss = reconstruction_loss(out, images, torch.tensor([0, 1, 2, 3]), class_weight=0.1)
    loss.backward()
    assert model.encoder.logits.weight.grad.abs().sum() > 0, "the straight-through estimator must reach the encoder"


def test_jcm_rejects_bad_images_and_configs():
    model = JCM(JCMConfig(order=16, width=4, decoder_blocks=1))
    with pytest.raises(ValueError, match=r"JCM expects images \[B, 3, 32, 32\] \(CIFAR size\), got shape \(2, 1, 32, 32\)"):
        model(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="got shape"):
        model(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="multiple of 8"):
        JCMConfig(channel_uses=100)
    with pytest.raises(ValueError, match="unknown JCMConfig keys"):
        JCMConfig.from_dict({"order": 16, "colour": "red"})
    with pytest.raises(ValueError, match="no symbol prior"):
        model.prior_symbols()


def test_symbol_prior_holds_transmitted_symbols(generator):
    model = JCM(JCMConfig(order=16, width=4, decoder_blocks=1, prior_size=300))
    images = torch.rand(4, 3, 32, 32, generator=generator)
    prior = model.fit_symbol_prior(images, generator)
    sent = model.eval().transmit(images).reshape(-1)
    assert prior.shape == (300,) and torch.allclose(model.prior_symbols(), prior)
    assert (prior.reshape(-1, 1) - sent.reshape(1, -1)).abs().min(dim=1).values.max() < 1e-6


def test_a_denoiser_joins_through_with_parts_and_cleans_the_received_symbols(generator):
    """The MMSE estimator under the codec's own symbol prior lands closer to the sent symbols than the channel output."""
    from digisem.systems.scdm import MMSEDenoiser

    model = JCM(JCMConfig(order=4, width=4, decoder_blocks=1, channel_uses=64, prior_size=256)).eval()
    images = torch.rand(8, 3, 32, 32, generator=generator)
    model.fit_symbol_prior(images, generator)
    system = model.with_parts(restorer=MMSEDenoiser(model.prior_symbols()))
    with torch.no_grad():
        out = system(images, link="awgn", snr_db=0.0, generator=torch.Generator().manual_seed(4))
        plain = model(images, link="awgn", snr_db=0.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(out["received"], plain["received"]) and torch.equal(out["payload"], plain["payload"])
    restored_error = (out["restored"] - out["payload"]).abs().pow(2).mean()
    channel_error = (out["received"] - out["payload"]).abs().pow(2).mean()
    assert restored_error < 0.7 * channel_error
    assert model.restorer is None and torch.equal(plain["restored"], plain["received"])
    assert not torch.equal(out["x_hat"], plain["x_hat"])
