"""The one link factory (digisem.link.from_spec), the SNR conventions of links and their channel-use counts."""

import math

import pytest
import torch
from torch import nn

from digisem.link import (
    AWGN,
    MIMO,
    BitLink,
    BSCLink,
    Rayleigh,
    SymbolLink,
    from_spec,
    link_snr_db,
    link_snr_kind,
)
from digisem.link.ldpc import LDPC5GCode
from digisem.link.spec import describe, parse_spec


def db(x: float) -> float:
    return 10 * math.log10(x)


# ---------------------------------------------------------------------------------------------------
# spec forms


@pytest.mark.parametrize("spec, modulation, channel, code_rate", [
    ("16qam-awgn", "16qam", AWGN, 1.0),
    ("QPSK-Rayleigh", "qpsk", Rayleigh, 1.0),
    ("  64qam-rayleigh-block ", "64qam", Rayleigh, 1.0),
    ("16qam-awgn-ldpc-1/2", "16qam", AWGN, 0.5),
    ("16qam-mimo-8x4-svd-ldpc-1/2", "16qam", MIMO, 0.5),
    ("256qam-mimo-4x4", "256qam", MIMO, 1.0),
    ("awgn", "16qam", AWGN, 1.0),  # a bare channel carries integers on 16-QAM
    ("mimo-8x4-svd", "16qam", MIMO, 1.0),
    ("rayleigh-ldpc-2/3", "16qam", Rayleigh, 2 / 3),
])
def test_text_specs_build_bit_links_for_integer_payloads(spec, modulation, channel, code_rate):
    link = from_spec(spec)
    assert type(link) is BitLink and isinstance(link.channel, channel)
    assert link.constellation.bits_per_symbol == {"qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}[modulation]
    assert link.code_rate == pytest.approx(code_rate, rel=1e-3)
    assert link.demapping == ("hard" if code_rate == 1.0 else "app")
    values = torch.randint(0, 16, (2, 300), generator=torch.Generator().manual_seed(0))
    assert torch.equal(link(values, num_bits=4, snr_db=80.0, generator=torch.Generator().manual_seed(1)), values)


def test_mimo_spec_keeps_its_detector_and_sizes():
    link = from_spec("16qam-mimo-8x4-svd")
    assert (link.channel.num_tx, link.channel.num_rx, link.channel.detector) == (8, 4, "svd")
    assert from_spec("16qam-mimo-8x4").channel.detector == "lmmse"


@pytest.mark.parametrize("spec, channel", [("awgn", AWGN), ("rayleigh", Rayleigh), ("rayleigh-block", Rayleigh), ("mimo-8x4-svd", MIMO), ("AWGN", AWGN)])
def test_bare_channels_build_symbol_links_for_symbol_payloads(spec, channel):
    link = from_spec(spec, "symbols")
    assert type(link) is SymbolLink and isinstance(link.channel, channel) and link.normalize
    x = torch.randn(2, 64, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    out = link(x, 60.0, torch.Generator().manual_seed(1)).symbols
    assert out.shape == x.shape


def test_none_is_error_free_bits_or_no_link():
    bits = from_spec("none")
    assert type(bits) is BSCLink and bits.p == 0.0
    values = torch.randint(0, 256, (3, 100), generator=torch.Generator().manual_seed(0))
    assert torch.equal(bits(values, num_bits=8), values)
    assert from_spec(" None ", "symbols") is None
    assert from_spec(None) is None and from_spec(None, "symbols") is None


@pytest.mark.parametrize("spec, modulation", [("bsc", "16qam"), ("bsc-qpsk", "qpsk"), ("BSC-64qam", "64qam")])
def test_bsc_specs_derive_p_from_the_modulation_at_eb_n0(spec, modulation):
    link = from_spec(spec)
    assert type(link) is BSCLink and link.p is None and link.modulation == modulation and link.snr_kind == "ebn0"
    assert link_snr_kind(link) == "ebn0"


def test_a_module_passes_through_unchanged():
    link = BitLink("qpsk", "awgn")
    assert from_spec(link) is link and from_spec(link, "symbols") is link


@pytest.mark.parametrize("spec, kind, check", [
    ({"kind": "bits", "modulation": "qpsk", "channel": "rayleigh"}, BitLink, lambda l: l.constellation.bits_per_symbol == 2 and isinstance(l.channel, Rayleigh)),
    ({"modulation": "64qam"}, BitLink, lambda l: l.constellation.bits_per_symbol == 6 and isinstance(l.channel, AWGN)),  # kind defaults to bits
    ({"kind": "digital", "modulation": "16qam", "channel": "mimo-8x4-svd", "code": "ldpc-1/2"}, BitLink, lambda l: l.code_rate == 0.5 and l.code.k == 512),
    ({"kind": "bits", "code": "ldpc-1/2", "ldpc_k": 256}, BitLink, lambda l: (l.code.k, l.code.n) == (256, 512)),
    ({"kind": "bits", "code": "ldpc-1/2", "demapping": "maxlog"}, BitLink, lambda l: l.demapping == "maxlog"),
    ({"kind": "bsc", "p": 0.0125}, BSCLink, lambda l: l.p == pytest.approx(0.0125)),
    ({"kind": "bsc", "modulation": "qpsk", "snr_kind": "esn0"}, BSCLink, lambda l: (l.modulation, l.snr_kind, l.p) == ("qpsk", "esn0", None)),
])
def test_mapping_specs_for_integers(spec, kind, check):
    link = from_spec(spec)
    assert type(link) is kind and check(link)


def test_mapping_specs_for_symbols_and_the_analog_alias():
    symbols = from_spec({"kind": "symbols", "channel": "rayleigh"}, "symbols")
    assert type(symbols) is SymbolLink and isinstance(symbols.channel, Rayleigh) and symbols.normalize
    analog = from_spec({"kind": "analog", "channel": "awgn"}, "symbols")
    assert type(analog) is SymbolLink and not analog.normalize, "the robust recipes' analog link: the model normalizes"
    assert from_spec({"kind": "symbols", "channel": "awgn", "normalize": False}, "symbols").normalize is False
    spec = {"kind": "analog", "channel": "awgn"}
    from_spec(spec, "symbols")
    assert spec == {"kind": "analog", "channel": "awgn"}, "the caller's mapping is not modified"


def test_parse_spec_and_describe():
    assert parse_spec("16qam-awgn-ldpc-1/2") == {"kind": "bits", "modulation": "16qam", "channel": "awgn", "code": "ldpc-1/2"}
    assert parse_spec("awgn", "symbols") == {"kind": "symbols", "channel": "awgn"}
    assert parse_spec("awgn") == {"kind": "bits", "modulation": "16qam", "channel": "awgn", "code": None}
    assert parse_spec("none", "symbols") is None and parse_spec("none") == {"kind": "bsc", "p": 0.0}
    assert describe(None) == "none" and describe("bsc") == "bsc"
    assert describe({"kind": "digital", "modulation": "16qam", "channel": "mimo-8x4-svd", "code": "ldpc-1/2"}) == "16qam-mimo-8x4-svd-ldpc-1/2"
    assert describe({"kind": "analog", "channel": "awgn"}) == "awgn"
    assert describe({"kind": "bsc", "p": 0.01}) == "bsc p=0.01" and describe({"kind": "bsc"}) == "bsc-16qam"


# ---------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("spec, payload, message", [
    ("fiber", "integers", "unknown channel 'fiber'"),
    ("fiber", "symbols", "unknown channel 'fiber'"),
    ("16qam-fiber", "integers", "unknown channel"),
    ("bsc-17qam", "integers", "not a modulation"),
    ("16qam-awgn-ldpc-0/2", "integers", "unknown code spec"),
    ("", "integers", "non-empty string or a mapping"),
    ("   ", "symbols", "non-empty string or a mapping"),
    (3, "integers", "non-empty string or a mapping"),
    ({"kind": "optical"}, "integers", "unknown link kind 'optical'"),
    ({"kind": "bits", "snr": 3}, "integers", r"unknown keys \['snr'\] for a bits link"),
    ({"kind": "bsc", "channel": "awgn"}, "integers", r"unknown keys \['channel'\] for a bsc link"),
    ({"kind": "bits", "modulation": "17qam"}, "integers", "unknown modulation"),
    ("awgn", "bytes", "unknown payload 'bytes'"),
])
def test_bad_specs_are_refused_clearly(spec, payload, message):
    with pytest.raises((ValueError, TypeError), match=message):
        from_spec(spec, payload)


@pytest.mark.parametrize("spec", ["16qam-awgn", "qpsk-rayleigh", "awgn-ldpc-1/2", "bsc", "bsc-qpsk", {"kind": "bits"}, {"kind": "bsc", "p": 0.1}, {"kind": "digital"}])
def test_bit_links_refuse_symbol_payloads(spec):
    with pytest.raises(ValueError, match="carries bits, but this payload is complex symbols"):
        from_spec(spec, "symbols")


@pytest.mark.parametrize("spec", [{"kind": "symbols", "channel": "awgn"}, {"kind": "analog", "channel": "rayleigh"}])
def test_symbol_links_refuse_integer_payloads(spec):
    with pytest.raises(ValueError, match="carries complex symbols, but this payload is integers"):
        from_spec(spec, "integers")


# ---------------------------------------------------------------------------------------------------
# SNR conventions: Es/N0 = Eb/N0 + 10 log10(k R)


@pytest.mark.parametrize("spec, k, rate", [
    ("16qam-awgn", 4, 1.0),
    ("qpsk-awgn", 2, 1.0),
    ("bpsk-awgn", 1, 1.0),
    ("256qam-rayleigh", 8, 1.0),
    ("16qam-awgn-ldpc-1/2", 4, 0.5),
    ("qpsk-awgn-ldpc-1/2", 2, 0.5),
    ("64qam-mimo-8x4-svd-ldpc-2/3", 6, 2 / 3),
    ("16qam-awgn-ldpc-1/3", 4, 1 / 3),
])
@pytest.mark.parametrize("ebn0", [-3.0, 0.0, 7.5])
def test_bit_links_take_es_n0_converted_from_eb_n0_in_closed_form(spec, k, rate, ebn0):
    link = from_spec(spec)
    assert link_snr_kind(link) == "esn0"
    assert link_snr_db(link, ebn0, "ebn0") == pytest.approx(ebn0 + db(k * rate), abs=1e-3)
    assert link_snr_db(link, ebn0, "esn0") == ebn0, "an Es/N0 point is passed as it is"


def test_bsc_links_take_eb_n0_and_convert_es_n0_with_their_modulation():
    bsc = from_spec("bsc")
    assert link_snr_db(bsc, 6.0, "ebn0") == 6.0
    assert link_snr_db(bsc, 6.0, "esn0") == pytest.approx(6.0 - db(4))
    qpsk = from_spec("bsc-qpsk")
    assert link_snr_db(qpsk, 6.0, "esn0") == pytest.approx(6.0 - db(2))
    es_bsc = BSCLink(modulation="64qam", snr_kind="esn0")
    assert link_snr_kind(es_bsc) == "esn0"
    assert link_snr_db(es_bsc, 2.0, "ebn0") == pytest.approx(2.0 + db(6)) and link_snr_db(es_bsc, 2.0, "esn0") == 2.0


def test_links_without_an_snr_and_symbol_links():
    assert link_snr_kind(None) is None and link_snr_db(None, 3.0, "ebn0") is None
    fixed = from_spec({"kind": "bsc", "p": 0.01})
    assert link_snr_kind(fixed) is None and link_snr_db(fixed, 3.0, "esn0") is None
    symbols = from_spec("awgn", "symbols")
    assert link_snr_kind(symbols) == "esn0" and link_snr_db(symbols, 3.0, "esn0") == 3.0
    with pytest.raises(ValueError, match="carries symbols, not bits"):
        link_snr_db(symbols, 3.0, "ebn0")
    with pytest.raises(ValueError, match="unknown SNR kind 'snr'"):
        link_snr_db(from_spec("16qam-awgn"), 3.0, "snr")


# ---------------------------------------------------------------------------------------------------
# channel uses: the symbols a link puts on its channel per example


class CountingChannel(nn.Module):
    """Wraps a channel and records how many symbols per example it was given."""

    def __init__(self, channel: nn.Module):
        super().__init__()
        self.channel = channel
        self.symbols_multiple = getattr(channel, "symbols_multiple", 1)
        self.seen: list[int] = []

    def forward(self, x, snr_db, generator=None):
        self.seen.append(x.shape[1])
        return self.channel(x, snr_db, generator)


@pytest.mark.parametrize("modulation, channel, code, num_bits, expected", [
    ("16qam", "awgn", None, 2048, 512),
    ("16qam", "awgn", None, 2050, 513),  # padded to whole symbols
    ("qpsk", "awgn", None, 101, 51),
    ("64qam", "rayleigh", None, 100, 17),
    ("qpsk", "mimo-8x4", None, 100, 56),  # LMMSE: 8 streams per channel use -> 16 bits, 112 padded -> 56 symbols
    ("qpsk", "mimo-8x4-svd", None, 100, 52),  # SVD: 4 eigenmodes -> 8 bits, 104 padded -> 52 symbols
    ("16qam", "awgn", "ldpc-1/2", 1000, 512),  # 2 codewords of 1024 bits
    ("16qam", "awgn", "ldpc-1/2", 1024, 512),
    ("16qam", "awgn", "ldpc-1/2", 1025, 768),
    ("16qam", "awgn", "ldpc-2/3", 1000, 384),  # n = 768
    ("qpsk", "mimo-8x4-svd", "ldpc-1/2", 600, 1024),  # 2 codewords, 2048 bits, 1024 symbols (a multiple of 4)
])
def test_bit_link_channel_uses_count_what_the_channel_receives(modulation, channel, code, num_bits, expected):
    counting = CountingChannel(from_spec(channel, "symbols").channel)
    link = BitLink(modulation, counting, code=LDPC5GCode.from_spec(code) if code else None)
    assert link.channel_uses(num_bits) == expected
    link.transmit_bits(torch.randint(0, 2, (2, num_bits), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)), 20.0, torch.Generator().manual_seed(1))
    assert counting.seen == [expected]


def test_channel_uses_of_the_factory_links():
    assert from_spec("16qam-awgn-ldpc-1/2").channel_uses(2048) == 1024, "rate 1/2 doubles the uncoded 512"
    assert from_spec({"kind": "bits", "code": "ldpc-1/2", "ldpc_k": 256}).channel_uses(1000) == 4 * 512 // 4
    assert from_spec("awgn", "symbols").channel_uses(300) == 300
    assert from_spec("mimo-8x4-svd", "symbols").channel_uses(300) == 300
    assert from_spec("bsc").channel_uses(2048) == 512 and from_spec("bsc-qpsk").channel_uses(10) == 5
    assert from_spec("bsc").channel_uses(2050) == 513 == from_spec("16qam-awgn").channel_uses(2050), "padded to whole symbols, as the bit link"
    assert isinstance(from_spec("bsc").channel_uses(2048), int)
    assert from_spec("none").channel_uses(2048) is None, "a fixed-p BSC names no modulation"
    assert from_spec("16qam-awgn").channel_uses(0) == 0
    with pytest.raises(ValueError, match="num_bits must be >= 0"):
        from_spec("16qam-awgn").channel_uses(-1)
    with pytest.raises(ValueError, match="num_symbols must be >= 0"):
        from_spec("awgn", "symbols").channel_uses(-1)
