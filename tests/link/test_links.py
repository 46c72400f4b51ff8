import pytest
import torch
from conftest import assert_rate_within_binomial

from digisem.link import (
    BitLink,
    BSCLink,
    SymbolLink,
    bsc_flip_probability,
    constellation,
)

NAMED = ["bpsk", "qpsk", "16qam", "64qam", "256qam", "8psk"]


@pytest.mark.parametrize("modulation", NAMED)
@pytest.mark.parametrize("num_bits", [1, 2, 3, 4, 5, 8])
def test_bitlink_lossless_at_high_snr_for_every_width(modulation, num_bits, generator):
    # widths that are not a multiple of bits per symbol exercise the zero padding
    link = BitLink(modulation, "awgn")
    values = torch.randint(0, 1 << num_bits, (3, 37), generator=generator)
    assert torch.equal(link(values, num_bits, 100.0, generator), values)


@pytest.mark.parametrize("channel", ["rayleigh", "rayleigh-block", "mimo-4x4", "mimo-8x4"])
def test_bitlink_through_fading_channels_keeps_shape(channel, generator):
    link = BitLink("16qam", channel, demapping="app")
    values = torch.randint(0, 16, (2, 50), generator=generator)
    out = link(values, 4, 30.0, generator)
    assert out.shape == values.shape and out.dtype == torch.int64


def test_bitlink_llr_demapping_hard_decisions_match_hard_demapper_for_square_qam(generator):
    bits = torch.randint(0, 2, (4, 4000), dtype=torch.uint8, generator=generator)
    hard = BitLink("16qam", "awgn", demapping="hard").transmit_bits(bits, 8.0, torch.Generator().manual_seed(5))
    maxlog = BitLink("16qam", "awgn", demapping="maxlog").transmit_bits(bits, 8.0, torch.Generator().manual_seed(5))
    assert torch.equal(hard, maxlog)


def test_bsc_link_from_snr_uses_table_iv(generator):
    link = BSCLink.from_snr("16qam", 6.0)
    assert link.p == pytest.approx(2.79e-2, rel=0.01)
    values = torch.randint(0, 16, (50, 4000), generator=generator)
    out = link(values, 4, generator=generator)
    flipped = (out ^ values)
    bit_errors = sum(int(((flipped >> i) & 1).sum()) for i in range(4))
    assert_rate_within_binomial(bit_errors, values.numel() * 4, link.p)


def test_bsc_link_p_from_snr_at_call_time_per_example(generator):
    link = BSCLink(modulation="16qam")
    snr = torch.tensor([0.0, 8.0])
    bits = torch.zeros(2, 200000, dtype=torch.uint8)
    out = link.transmit_bits(bits, snr, generator)
    for row in range(2):
        assert_rate_within_binomial(int(out[row].sum()), 200000, float(bsc_flip_probability("16qam", snr[row].item())))


def test_bsc_link_bad_input():
    with pytest.raises(ValueError, match="exactly one of p"):
        BSCLink()
    with pytest.raises(ValueError, match=r"\[0, 0.5\]"):
        BSCLink(0.6)
    with pytest.raises(ValueError, match="pass snr_db"):
        BSCLink(modulation="16qam")(torch.zeros(1, 4, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="unknown modulation"):
        BSCLink(modulation="17qam")
    with pytest.raises(ValueError, match="for 4 bits"):
        BSCLink(0.1)(torch.tensor([[16]]), 4)


def test_symbol_link_normalizes_power_per_example(generator):
    x = torch.randn(3, 1000, dtype=torch.complex64, generator=generator) * torch.tensor([[0.1], [1.0], [10.0]])
    out = SymbolLink("awgn")(x, 100.0, generator)
    torch.testing.assert_close(out.symbols.abs().pow(2).mean(1), torch.ones(3), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="all-zero"):
        SymbolLink("awgn")(torch.zeros(2, 4, dtype=torch.complex64), 10.0)


def test_bitlink_bad_input():
    link = BitLink("16qam")
    with pytest.raises(ValueError, match="non-empty"):
        link(torch.zeros(0, dtype=torch.int64), 4, 10.0)
    with pytest.raises(TypeError, match="integer dtype"):
        link(torch.zeros(2, 4), 4, 10.0)
    with pytest.raises(ValueError, match="unknown demapping"):
        BitLink("16qam", demapping="soft")
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        link.transmit_bits(torch.zeros(8, dtype=torch.uint8), 10.0)
    assert isinstance(link.constellation, type(constellation("16qam")))


def test_bitlink_with_ldpc_is_lossless_at_high_snr_and_beats_uncoded(generator):
    from digisem.link.ldpc import LDPC5GCode

    coded = BitLink("16qam", "awgn", code=LDPC5GCode(512, 1024))
    assert coded.code_rate == 0.5
    values = torch.randint(0, 256, (2, 100), generator=generator)
    assert torch.equal(coded(values, 8, 20.0, generator), values)
    # same Eb/N0 = 6 dB: coded Es/N0 = 6 + 10 log10(4 * 0.5), uncoded Es/N0 = 6 + 10 log10(4)
    bits = torch.randint(0, 2, (8, 2048), dtype=torch.uint8, generator=generator)
    coded_ber = (coded.transmit_bits(bits, 6.0 + 3.0103, generator) != bits).float().mean().item()
    uncoded_ber = (BitLink("16qam", "awgn").transmit_bits(bits, 6.0 + 6.0206, generator) != bits).float().mean().item()
    assert uncoded_ber > 0.02 and coded_ber < uncoded_ber / 10
    with pytest.raises(ValueError, match="soft demapping"):
        BitLink("16qam", code=LDPC5GCode(512, 1024), demapping="hard")
