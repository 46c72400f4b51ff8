"""digisem.link: the digital link, a library of its own (it imports nothing else from digisem).

Conventions, stated once and kept everywhere:

- **SNR**: ``snr_db`` is Es/N0 in dB per complex symbol with unit-energy symbols; the complex noise
  variance is ``N0 = 10^(-snr_db/10)`` (N0/2 per real dimension). Names say otherwise where they
  mean otherwise (``ebn0_db``; ``snr_kind="ebn0"``). Conversions are in :mod:`.theory`.
- **Bits** are MSB first, uint8 (or float/bool) in {0, 1}.
- **LLR sign**: ``LLR = ln P(b=1 | y) / P(b=0 | y)``; a positive LLR favours bit 1 (as Sionna).
- **Labels**: QAM follows 3GPP TS 38.211 Gray labelling; PSK is Gray labelled around the circle.
- Every random draw takes an optional ``torch.Generator``; devices and dtypes follow the input.
- **Errors**: a bad argument raises :class:`InputError` (a ``ValueError``) naming it; a wrong
  argument type raises ``TypeError``.
"""

from .bits import bits_to_int, gray_decode, gray_encode, int_to_bits
from .channel import (
    AWGN,
    MIMO,
    BinarySymmetric,
    ChannelOutput,
    Rayleigh,
    make_channel,
    noise_variance,
)
from .constellation import (
    Constellation,
    GrayPAMConstellation,
    PSKConstellation,
    constellation,
    constellation_info,
)
from .errors import InputError
from .ldpc import LDPC5GCode
from .links import BitLink, BSCLink, SymbolLink, normalize_power
from .spec import from_spec, link_snr_db, link_snr_kind
from .theory import (
    ber_awgn,
    ber_rayleigh,
    ber_rayleigh_bpsk,
    bsc_flip_probability,
    ebn0_to_esn0_db,
    esn0_to_ebn0_db,
    q_function,
)

__all__ = [
    "AWGN",
    "MIMO",
    "BSCLink",
    "BinarySymmetric",
    "BitLink",
    "ChannelOutput",
    "Constellation",
    "GrayPAMConstellation",
    "InputError",
    "LDPC5GCode",
    "PSKConstellation",
    "Rayleigh",
    "SymbolLink",
    "ber_awgn",
    "ber_rayleigh",
    "ber_rayleigh_bpsk",
    "bits_to_int",
    "bsc_flip_probability",
    "constellation",
    "constellation_info",
    "ebn0_to_esn0_db",
    "esn0_to_ebn0_db",
    "from_spec",
    "gray_decode",
    "gray_encode",
    "int_to_bits",
    "link_snr_db",
    "link_snr_kind",
    "make_channel",
    "noise_variance",
    "normalize_power",
    "q_function",
]
