"""Closed-form link theory: SNR conversions and bit error rates in AWGN and Rayleigh fading.

SNR convention: ``esn0_db`` is Es/N0 per complex symbol (unit-energy symbols, complex noise
variance N0, N0/2 per real dimension); ``ebn0_db`` is Eb/N0 per *information* bit,
``Es/N0 = Eb/N0 * bits_per_symbol * code_rate``. Functions taking ``snr_db`` also take
``snr_kind`` in {"esn0", "ebn0"}. Results are NumPy float64 (scalars in, scalars out).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfc

from .constellation import constellation_info, gray_pam_labels
from .errors import InputError

SNR_KINDS = ("esn0", "ebn0")


def q_function(x: ArrayLike) -> np.ndarray:
    """Gaussian tail ``Q(x) = P(N(0,1) > x) = erfc(x / sqrt(2)) / 2`` (float64, accurate in the tail)."""
    return 0.5 * erfc(np.asarray(x, dtype=np.float64) / np.sqrt(2.0))


def ebn0_to_esn0_db(ebn0_db: ArrayLike, bits_per_symbol: int, code_rate: float = 1.0) -> np.ndarray:
    """Eb/N0 (dB, per information bit) -> Es/N0 (dB, per complex symbol): ``+10 log10(k R)``."""
    _check_rate(bits_per_symbol, code_rate)
    return np.asarray(ebn0_db, dtype=np.float64) + 10.0 * np.log10(bits_per_symbol * code_rate)


def esn0_to_ebn0_db(esn0_db: ArrayLike, bits_per_symbol: int, code_rate: float = 1.0) -> np.ndarray:
    """Es/N0 (dB, per complex symbol) -> Eb/N0 (dB, per information bit): ``-10 log10(k R)``."""
    _check_rate(bits_per_symbol, code_rate)
    return np.asarray(esn0_db, dtype=np.float64) - 10.0 * np.log10(bits_per_symbol * code_rate)


def to_esn0_db(snr_db: ArrayLike, snr_kind: str, bits_per_symbol: int, code_rate: float = 1.0) -> np.ndarray:
    """Express ``snr_db`` of kind ``snr_kind`` ("esn0" or "ebn0") as Es/N0 in dB."""
    if snr_kind == "esn0":
        return np.asarray(snr_db, dtype=np.float64)
    if snr_kind == "ebn0":
        return ebn0_to_esn0_db(snr_db, bits_per_symbol, code_rate)
    raise InputError(f"snr_kind must be one of {SNR_KINDS}, got {snr_kind!r}")


def _check_rate(bits_per_symbol: int, code_rate: float) -> None:
    if bits_per_symbol < 1:
        raise InputError(f"bits_per_symbol must be >= 1, got {bits_per_symbol}")
    if not 0.0 < code_rate <= 1.0:
        raise InputError(f"code_rate must be in (0, 1], got {code_rate}")


def gray_pam_ber(bits_per_axis: int, noise_std_per_level_gap: np.ndarray) -> np.ndarray:
    """Exact average bit error rate of one Gray-labelled PAM axis with nearest-level decisions.

    Levels sit at ``+-1, +-3, ...`` (gap 2) with 3GPP Gray labels; the noise is Gaussian with
    standard deviation ``noise_std_per_level_gap`` in those units. Every transmitted level and every
    decision region is enumerated, so the result is exact (no nearest-neighbour approximation).
    Input: ``[...]`` float64; output: ``[...]`` float64 BER averaged over levels and bits.
    """
    num_levels = 1 << bits_per_axis
    labels = gray_pam_labels(bits_per_axis)
    levels = np.arange(num_levels) * 2.0 - (num_levels - 1)
    lower = np.concatenate(([-np.inf], levels[:-1] + 1.0))
    upper = np.concatenate((levels[1:] - 1.0, [np.inf]))
    sigma = np.asarray(noise_std_per_level_gap, dtype=np.float64)[..., None, None]
    offset_lo = (lower[None, :] - levels[:, None])
    offset_hi = (upper[None, :] - levels[:, None])
    # P(decide region j | sent level i), computed from the tails so tiny probabilities stay accurate.
    prob = _interval_probability(offset_lo / sigma, offset_hi / sigma)
    label_differs = labels[:, None, :] != labels[None, :, :]
    errors = np.einsum("...ij,ijb->...", prob, label_differs.astype(np.float64))
    return errors / (num_levels * bits_per_axis)


def _interval_probability(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """P(lo < N(0,1) < hi), using the tail on the side the interval lies (no cancellation)."""
    upper_side = lo >= 0
    from_upper = q_function(lo) - q_function(hi)
    from_lower = q_function(-hi) - q_function(-lo)
    straddles = 1.0 - q_function(-lo) - q_function(hi)
    return np.where(upper_side, from_upper, np.where(hi <= 0, from_lower, straddles))


def ber_awgn(modulation: str, snr_db: ArrayLike, snr_kind: str = "esn0") -> np.ndarray:
    """Uncoded bit error rate of a Gray-labelled constellation over AWGN.

    Exact for BPSK, QPSK and square M-QAM (per-axis enumeration, equal to e.g.
    ``Pb = [3Q(a) + 2Q(3a) - Q(5a)]/4, a = sqrt(0.8 Eb/N0)`` for 16-QAM); for M-PSK (M >= 8) the
    approximation ``Pb ~ 2/k sum_{i=1}^{M/4} Q(sqrt(2 Es/N0) sin((2i-1) pi / M))`` (Lu et al., 1999).
    ``snr_db : [...]`` in dB of kind ``snr_kind``; returns ``[...]`` float64.
    """
    info = constellation_info(modulation)
    esn0 = 10.0 ** (to_esn0_db(snr_db, snr_kind, info.bits_per_symbol) / 10.0)
    if info.family == "bpsk":
        return gray_pam_ber(1, 1.0 / np.sqrt(2.0 * esn0))
    if info.family == "qam":
        bits_per_axis = info.bits_per_symbol // 2
        num_levels = 1 << bits_per_axis
        level_scale = np.sqrt(3.0 / (2.0 * (num_levels**2 - 1)))
        return gray_pam_ber(bits_per_axis, 1.0 / np.sqrt(2.0 * esn0) / level_scale)
    order = 1 << info.bits_per_symbol
    terms = [
        q_function(np.sqrt(2.0 * esn0) * np.sin((2 * i - 1) * np.pi / order))
        for i in range(1, max(order // 4, 1) + 1)
    ]
    return 2.0 / info.bits_per_symbol * np.sum(terms, axis=0)


def ber_rayleigh_bpsk(snr_db: ArrayLike, snr_kind: str = "esn0") -> np.ndarray:
    """BPSK BER over flat Rayleigh fading with perfect CSI (coherent detection).

    ``Pb = (1 - sqrt(g / (1 + g))) / 2`` with ``g`` the average Eb/N0 (= Es/N0 for BPSK).
    """
    gamma = 10.0 ** (to_esn0_db(snr_db, snr_kind, 1) / 10.0)
    return 0.5 * (1.0 - np.sqrt(gamma / (1.0 + gamma)))


def bsc_flip_probability(modulation: str, snr_db: ArrayLike, snr_kind: str = "ebn0") -> np.ndarray:
    """Bit-flip probability ``p`` of the binary symmetric channel equivalent to an uncoded Gray link.

    ``p`` is the closed-form AWGN BER of ``modulation`` at ``snr_db`` (default Eb/N0, the
    convention of AMP-SC's Table IV: ``bsc_flip_probability("16qam", 0)`` = 0.141). A NaN SNR is
    refused (it would give a NaN probability).
    """
    if np.isnan(np.asarray(snr_db, dtype=float)).any():
        raise InputError(f"snr_db must be a number in dB, got {snr_db!r}")
    return ber_awgn(modulation, snr_db, snr_kind)


def ber_rayleigh(modulation: str, snr_db: ArrayLike, snr_kind: str = "esn0") -> np.ndarray:
    """Uncoded BER over flat Rayleigh fading with perfect CSI: the AWGN BER averaged over ``|h|^2 ~ Exp(1)``.

    ``E_g[ber_awgn(modulation, Es/N0 * g)]``, integrated numerically (scipy ``quad``); for BPSK it
    equals :func:`ber_rayleigh_bpsk`. ``snr_db : [...]`` average SNR of kind ``snr_kind``.
    """
    from scipy.integrate import quad

    info = constellation_info(modulation)
    esn0_db = np.atleast_1d(to_esn0_db(snr_db, snr_kind, info.bits_per_symbol))

    def average(esn0_point_db: float) -> float:
        def integrand(gain: float) -> float:
            faded = esn0_point_db + 10.0 * np.log10(max(gain, 1e-300))
            return float(ber_awgn(modulation, faded, "esn0")) * np.exp(-gain)

        return quad(integrand, 0.0, np.inf, limit=200, epsabs=1e-14, epsrel=1e-8)[0]

    result = np.array([average(float(s)) for s in esn0_db])
    return result.reshape(np.shape(snr_db)) if np.ndim(snr_db) else result[0]
