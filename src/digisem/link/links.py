"""Links carry a payload end to end and know nothing of images.

- :class:`BitLink`: ints -> bits -> [LDPC] -> Gray map -> channel -> demap -> [decode] -> bits -> ints.
- :class:`BSCLink`: ints -> bits -> independent flips with probability p -> ints (AMP-SC's model).
- :class:`SymbolLink`: complex symbols -> per-example power normalization -> channel -> symbols.

``snr_db`` is Es/N0 in dB per complex symbol (see :mod:`digisem.link.channel`) except for
:class:`BSCLink`, which follows its ``snr_kind`` (Eb/N0 by default, as AMP-SC's Table IV).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .bits import bits_to_int, int_to_bits
from .channel import (
    SNR_DB_MAX,
    SNR_DB_MIN,
    BinarySymmetric,
    ChannelOutput,
    check_flip_probability,
    make_channel,
)
from .constellation import (
    DEMAPPING_METHODS,
    Constellation,
    check_symbols,
    constellation,
    constellation_info,
)
from .errors import InputError
from .theory import bsc_flip_probability

DEMAPPING_CHOICES = ("hard",) + DEMAPPING_METHODS


def _check_payload(values: torch.Tensor, num_bits: int) -> None:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}")
    if values.dim() < 1 or values.numel() == 0:
        raise InputError(f"values must be a non-empty batch [B, ...], got shape {tuple(values.shape)}")


def _check_bit_batch(bits: torch.Tensor) -> None:
    if not isinstance(bits, torch.Tensor):
        raise TypeError(f"bits must be a torch.Tensor, got {type(bits).__name__}")
    if bits.dim() != 2 or bits.numel() == 0:
        raise InputError(f"bits must be a non-empty [B, N] tensor, got shape {tuple(bits.shape)}")


class BitLink(nn.Module):
    """A real digital link: bits -> [channel code] -> Gray constellation -> channel -> demapper -> [decoder].

    Parameters
    ----------
    constellation : Constellation or str
        E.g. ``"16qam"`` or a :class:`~digisem.link.constellation.Constellation`.
    channel : nn.Module or str
        A symbol channel returning :class:`ChannelOutput` (``"awgn"``, ``"rayleigh"``, ``"mimo-8x4"``, ...).
    code : module with ``k``, ``n``, ``encode`` and ``decode``, optional
        E.g. :class:`~digisem.link.ldpc.LDPC5GCode`. Bits are cut into blocks of ``k`` (zero-padded).
    demapping : str
        ``"hard"`` (minimum distance; uncoded only), ``"app"`` or ``"maxlog"`` (LLRs; hard decisions
        on the LLRs when uncoded). Defaults to ``"app"`` with a code and ``"hard"`` without.

    Input (``forward``): ``values : [B, ...]`` integers in ``[0, 2**num_bits)``; ``num_bits`` : int;
    ``snr_db`` : Es/N0 per complex channel symbol (dB), scalar or ``[B]``; ``generator`` optional.
    Output: ``values_hat : [B, ...], torch.int64``.

    Example
    -------
    >>> link = BitLink("16qam", "awgn")
    >>> link(torch.randint(0, 16, (2, 512)), num_bits=4, snr_db=10.0).shape
    torch.Size([2, 512])
    """

    def __init__(self, constellation: Constellation | str, channel: nn.Module | str = "awgn", code: nn.Module | None = None, demapping: str | None = None):
        super().__init__()
        self.constellation = _as_constellation(constellation)
        self.channel = make_channel(channel) if isinstance(channel, str) else channel
        self.code = code
        demapping = demapping or ("app" if code is not None else "hard")
        if demapping not in DEMAPPING_CHOICES:
            raise InputError(f"unknown demapping {demapping!r}: use one of {DEMAPPING_CHOICES}")
        if code is not None and demapping == "hard":
            raise InputError("a channel code needs soft demapping: use demapping='app' or 'maxlog'")
        self.demapping = demapping

    @property
    def code_rate(self) -> float:
        """Information bits per coded bit (1 when uncoded)."""
        return 1.0 if self.code is None else self.code.k / self.code.n

    def extra_repr(self) -> str:
        return f"demapping={self.demapping!r}"

    def _symbol_multiple(self) -> int:
        return self.constellation.bits_per_symbol * getattr(self.channel, "symbols_multiple", 1)

    def channel_uses(self, num_bits: int) -> int:
        """Complex symbols this link puts on the channel for ``num_bits`` payload bits of one example:
        ``ceil(num_bits / k)`` codewords of ``n`` bits (coded), padded to whole symbols (and to whole
        MIMO channel uses), divided by the bits per symbol."""
        if num_bits < 0:
            raise InputError(f"num_bits must be >= 0, got {num_bits}")
        coded = num_bits if self.code is None else -(-num_bits // self.code.k) * self.code.n
        multiple = self._symbol_multiple()
        return -(-coded // multiple) * multiple // self.constellation.bits_per_symbol

    def transmit_bits(self, bits: torch.Tensor, snr_db: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Send a batch of bit strings.

        Input: ``bits : [B, N]`` in {0, 1} (uint8/bool/int/float); ``snr_db`` : Es/N0 (dB) per
        channel symbol, scalar or ``[B]``. Output: ``bits_hat : [B, N], torch.uint8``.
        """
        _check_bit_batch(bits)
        num_bits = bits.shape[1]
        if self.code is not None:
            return self._transmit_coded(bits, snr_db, generator)[:, :num_bits]
        received = self._through_channel(_pad_to_multiple(bits, self._symbol_multiple()), snr_db, generator)
        if self.demapping == "hard":
            return self.constellation.demap_hard(received.symbols)[:, :num_bits]
        llr = self.constellation.demap_llr(received.symbols, received.noise_var, self.demapping)
        return (llr[:, :num_bits] > 0).to(torch.uint8)

    def _through_channel(self, bits: torch.Tensor, snr_db: float | torch.Tensor, generator: torch.Generator | None) -> ChannelOutput:
        return self.channel(self.constellation.map(bits), snr_db, generator)

    def _transmit_coded(self, bits: torch.Tensor, snr_db: float | torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        batch, k = bits.shape[0], self.code.k
        blocks = _pad_to_multiple(bits.to(torch.float32), k).reshape(batch, -1, k)
        coded = self.code.encode(blocks).reshape(batch, -1)
        num_coded = coded.shape[1]
        received = self._through_channel(_pad_to_multiple(coded, self._symbol_multiple()), snr_db, generator)
        llr = self.constellation.demap_llr(received.symbols, received.noise_var, self.demapping)
        decoded = self.code.decode(llr[:, :num_coded].reshape(batch, -1, self.code.n))
        return decoded.reshape(batch, -1).to(torch.uint8)

    def forward(self, values: torch.Tensor, num_bits: int, snr_db: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_payload(values, num_bits)
        bits = int_to_bits(values, num_bits)
        received = self.transmit_bits(bits.reshape(values.shape[0], -1), snr_db, generator)
        return bits_to_int(received.reshape(bits.shape))


class BSCLink(nn.Module):
    """Binary symmetric channel link: every bit of every integer flips independently with probability p.

    Either a fixed ``p`` (AMP-SC trains at p = 0.0125) or a ``modulation`` whose closed-form
    uncoded Gray AWGN BER gives ``p`` from the ``snr_db`` passed at call time
    (:func:`~digisem.link.theory.bsc_flip_probability`, ``snr_kind`` "ebn0" by default as Table IV).

    Input (``forward``): ``values : [B, ...]`` integers in ``[0, 2**num_bits)``; ``num_bits`` : int;
    ``snr_db`` : scalar or ``[B]`` (only with ``modulation``); ``generator`` optional.
    Output: ``values_hat : [B, ...], torch.int64``.
    """

    def __init__(self, p: float | None = None, *, modulation: str | None = None, snr_kind: str = "ebn0"):
        super().__init__()
        if (p is None) == (modulation is None):
            raise InputError("give exactly one of p (fixed flip probability) or modulation (p from snr_db)")
        self.p = None if p is None else float(check_flip_probability(p))
        self.modulation = modulation
        self.snr_kind = snr_kind
        if modulation is not None:
            bsc_flip_probability(modulation, 0.0, snr_kind)
        self.bsc = BinarySymmetric()

    @classmethod
    def from_snr(cls, modulation: str, snr_db: float, snr_kind: str = "ebn0") -> BSCLink:
        """A fixed-p link whose p is the closed-form BER of ``modulation`` at ``snr_db`` (dB, ``snr_kind``)."""
        return cls(p=float(bsc_flip_probability(modulation, snr_db, snr_kind)))

    def extra_repr(self) -> str:
        return f"p={self.p}" if self.p is not None else f"modulation={self.modulation!r}, snr_kind={self.snr_kind!r}"

    def channel_uses(self, num_bits: int) -> int | None:
        """Channel symbols of ``num_bits`` bits when the BSC models a modulation (``ceil(num_bits /
        bits_per_symbol)``, uncoded, padded to whole symbols as :meth:`BitLink.channel_uses`); None
        for a fixed-p BSC, which names no modulation."""
        if num_bits < 0:
            raise InputError(f"num_bits must be >= 0, got {num_bits}")
        if self.modulation is None:
            return None
        return -(-num_bits // constellation_info(self.modulation).bits_per_symbol)

    def flip_probability(self, snr_db: float | torch.Tensor | None = None) -> float | torch.Tensor:
        """The flip probability used at ``snr_db`` (dB of kind ``snr_kind``): a float, or ``[B]`` for a ``[B]`` SNR."""
        if self.p is not None:
            if snr_db is not None:
                raise InputError("this BSCLink has a fixed p; build it with modulation=... to set p from snr_db")
            return self.p
        if snr_db is None:
            raise InputError(f"this BSCLink derives p from the SNR of {self.modulation}: pass snr_db")
        snr = torch.as_tensor(snr_db, dtype=torch.float64)
        if not bool(torch.isfinite(snr).all()) or bool((snr < SNR_DB_MIN).any()) or bool((snr > SNR_DB_MAX).any()):
            raise InputError(f"snr_db ({self.snr_kind}) must be finite and in [{SNR_DB_MIN:g}, {SNR_DB_MAX:g}] dB, got {snr.tolist()}")
        p = torch.as_tensor(bsc_flip_probability(self.modulation, snr.cpu().numpy(), self.snr_kind), dtype=torch.float32)
        return p if p.dim() else float(p)

    def transmit_bits(self, bits: torch.Tensor, snr_db: float | torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Flip ``bits : [B, N]`` in {0, 1}; returns the same shape and dtype."""
        _check_bit_batch(bits)
        p = self.flip_probability(snr_db)
        return self.bsc(bits, p.to(bits.device) if isinstance(p, torch.Tensor) else p, generator)

    def forward(self, values: torch.Tensor, num_bits: int, snr_db: float | torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_payload(values, num_bits)
        bits = int_to_bits(values, num_bits)
        received = self.transmit_bits(bits.reshape(values.shape[0], -1), snr_db, generator)
        return bits_to_int(received.reshape(bits.shape))


class SymbolLink(nn.Module):
    """Complex symbols straight onto a channel (JCM, analog DeepJSCC, SCDM).

    Each example is scaled to unit average energy before the channel (``normalize=True``), so
    ``snr_db`` is the Es/N0 (dB) per complex symbol that the receiver sees.

    Input: ``x : [B, n], complex64``; ``snr_db`` scalar or ``[B]``; ``generator`` optional.
    Output: :class:`ChannelOutput` ``(y, noise_var)`` with ``y`` in the normalized scale.
    """

    def __init__(self, channel: nn.Module | str = "awgn", normalize: bool = True):
        super().__init__()
        self.channel = make_channel(channel) if isinstance(channel, str) else channel
        self.normalize = normalize

    def channel_uses(self, num_symbols: int) -> int:
        """Complex symbols on the channel for ``num_symbols`` payload symbols of one example (the
        same number: one channel use per symbol)."""
        if num_symbols < 0:
            raise InputError(f"num_symbols must be >= 0, got {num_symbols}")
        return num_symbols

    def forward(self, x: torch.Tensor, snr_db: float | torch.Tensor, generator: torch.Generator | None = None) -> ChannelOutput:
        check_symbols(x, "x")
        if x.dim() != 2:
            raise InputError(f"x must be [B, n] complex symbols, got shape {tuple(x.shape)}")
        if self.normalize:
            x = normalize_power(x)
        return self.channel(x, snr_db, generator)


def normalize_power(x: torch.Tensor) -> torch.Tensor:
    """Scale each example of ``x : [B, n], complex`` to unit average energy per symbol (same shape).

    Differentiable; raises ValueError for an all-zero example.
    """
    power = x.abs().pow(2).mean(-1, keepdim=True)
    if bool((power == 0).any()):
        raise InputError("an example has all-zero symbols: cannot normalize its power")
    return x / power.sqrt()


def _pad_to_multiple(bits: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the last dimension of ``[B, N]`` to a multiple of ``multiple`` (no copy if already one)."""
    pad = -bits.shape[-1] % multiple
    return F.pad(bits, (0, pad)) if pad else bits


def _as_constellation(value: Constellation | str) -> Constellation:
    if isinstance(value, Constellation):
        return value
    return constellation(value)
