"""Receiver-side semantic noise (Fig. 8): the eigenmode channel with an interferer at the receive
antennas (digisem.link.MIMO, detector "svd"), and the sweeps of digisem.analyses."""

import pytest
import torch
from torch.utils.data import TensorDataset

from digisem.link import MIMO, BitLink
from digisem.systems.vqvae import MaskedVQVAE, MaskedVQVAEConfig

TINY = {"image_size": 16, "patch": 4, "width": 16, "depth": 1, "heads": 2, "decoder_width": 8, "decoder_depth": 1, "code_dim": 4, "classes": 4, "transmission": "analog", "mask_ratio": 0.0}


def eigenmodes(interference=None) -> MIMO:
    return MIMO(8, 4, "svd", block=True, interference=interference)


def test_eigenmodes_deliver_the_symbols_at_high_snr():
    x = torch.randn(3, 40, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    out = eigenmodes()(x, 60.0, torch.Generator().manual_seed(1))
    assert torch.allclose(out.symbols, x, atol=5e-3)
    assert out.noise_var.shape == x.shape and bool((out.noise_var > 0).all())


def test_eigenmode_noise_variance_is_n0_over_singular_value_squared():
    channel = eigenmodes()
    x = torch.zeros(2000, 4, dtype=torch.complex64)
    modes = channel.transmit_eigenmodes(x, 0.0, torch.Generator().manual_seed(0))
    out = channel(x, 0.0, torch.Generator().manual_seed(0))
    expected = (1.0 / modes.singular.pow(2)).reshape(2000, -1)  # N0 = 1 at 0 dB
    assert torch.allclose(out.noise_var, expected)
    residual = (out.symbols.abs().pow(2) / out.noise_var).mean()
    assert float(residual) == pytest.approx(1.0, rel=0.05), "the detected noise has exactly that variance"
    assert modes.singular.shape == (2000, 1, 4), "min(Nt, Nr) = 4 eigenmodes, one channel use"


def test_interference_reaches_the_detected_symbols_through_the_combiner():
    """The receiver projects on U^H and divides by s: an offset d at the antennas arrives as U^H d / s."""
    x = torch.randn(2, 8, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
    offset = torch.randn(2, 2, 4, dtype=torch.complex64, generator=torch.Generator().manual_seed(3))  # [B, uses, Nr]
    clean = eigenmodes()(x, 60.0, torch.Generator().manual_seed(0)).symbols
    attacked = eigenmodes(lambda y: offset)(x, 60.0, torch.Generator().manual_seed(0)).symbols
    modes = eigenmodes().transmit_eigenmodes(x, 60.0, torch.Generator().manual_seed(0))
    expected = ((modes.left.conj().transpose(-1, -2) @ offset.unsqueeze(-1)).squeeze(-1) / modes.singular).reshape(2, -1)
    assert torch.allclose(attacked - clean, expected, atol=1e-4)


def test_eigenmode_transmission_needs_the_svd_detector():
    with pytest.raises(ValueError, match="detector='svd'"):
        MIMO(8, 4, "lmmse").transmit_eigenmodes(torch.zeros(1, 8, dtype=torch.complex64), 0.0)


def test_digital_link_over_interfered_eigenmodes_is_exact_at_high_snr_and_breaks_under_strong_interference():
    values = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(0))
    link = BitLink("16qam", eigenmodes())
    assert torch.equal(link(values, num_bits=8, snr_db=40.0, generator=torch.Generator().manual_seed(1)), values)
    noisy = torch.Generator().manual_seed(9)
    jammed = BitLink("16qam", eigenmodes(lambda y: 10 * torch.randn(y.shape, dtype=torch.complex64, generator=noisy)))
    assert not torch.equal(jammed(values, num_bits=8, snr_db=40.0, generator=torch.Generator().manual_seed(1)), values)


def test_receiver_noise_sweep_reports_every_ratio_and_rejects_digital_models():
    from digisem.analyses import receiver_noise_accuracy

    torch.manual_seed(0)
    model = MaskedVQVAE(MaskedVQVAEConfig(**TINY))
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    dataset = TensorDataset(images, torch.arange(6) % 4)
    result = receiver_noise_accuracy(model, dataset, 3.0, [-20.0, 40.0], samples=6, batch_size=3)
    assert result["ssnr_db"] == [-20.0, 40.0]
    for key in ("accuracy_universal", "accuracy_gaussian", "accuracy_clean"):
        assert len(result[key]) == 2 and all(0 <= value <= 1 for value in result[key])
    assert result["accuracy_universal"][1] == result["accuracy_clean"][1]
    with pytest.raises(ValueError, match="analog"):
        receiver_noise_accuracy(MaskedVQVAE(MaskedVQVAEConfig(**{**TINY, "transmission": "digital", "code_dim": 8})), dataset, 3.0, [0.0], samples=6)


def test_digital_receiver_interference_sweep():
    from digisem.analyses import receiver_interference_accuracy

    torch.manual_seed(0)
    model = MaskedVQVAE(MaskedVQVAEConfig(**{**TINY, "transmission": "digital", "code_dim": 8, "mask_ratio": 0.5}))
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    dataset = TensorDataset(images, torch.arange(6) % 4)
    result = receiver_interference_accuracy(model, dataset, 3.0, [80.0], code=None, batch_size=3)
    assert result["ssnr_db"] == [80.0]
    assert result["accuracy_gaussian"] == result["accuracy_clean"]
