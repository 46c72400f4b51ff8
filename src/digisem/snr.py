"""SNR axes: parsing sweep ranges and naming the SNR convention (imported by ``cli`` and ``train``).

Conventions (stated once, as in the README): ``"esn0"`` is Es/N0 in dB per complex channel symbol
with unit-energy symbols; ``"ebn0"`` is Eb/N0 in dB per information bit,
``Es/N0 = Eb/N0 + 10 log10(bits_per_symbol * code_rate)``.
"""

from __future__ import annotations

import math

from .link.errors import InputError

SNR_KINDS = ("esn0", "ebn0")
SNR_LABELS = {"esn0": "Es/N0", "ebn0": "Eb/N0"}
MAX_SNR_POINTS = 1000
"""A sweep longer than this is refused (a typo such as ``0:1e9:1`` would otherwise fill the memory)."""
SNR_RANGE_HELP = "SNRs in dB: 'START:STOP:STEP' (STOP included), a list '0,3,6' or one value"


class SNRRangeError(InputError):
    """An SNR range or list that cannot be parsed, or one too long to sweep."""


def parse_snr_range(text: str) -> list[float]:
    """Parse an SNR sweep into a list of dB values.

    Input
    -----
    text : str
        ``"START:STOP:STEP"`` (STOP included, STEP > 0), a list ``"0,3,6"`` or one value ``"5"``.

    Output
    ------
    snrs : list of float, in dB, at most :data:`MAX_SNR_POINTS` values, all finite.

    Example
    -------
    >>> parse_snr_range("-18:18:6")
    [-18.0, -12.0, -6.0, 0.0, 6.0, 12.0, 18.0]
    """
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if not all(math.isfinite(v) for v in (start, stop, step)) or step <= 0 or stop < start:
                raise SNRRangeError(f"bad SNR range {text!r}: use START:STOP:STEP with finite values, STEP > 0 and STOP >= START")
            count = math.floor((stop - start) / step + 1e-9) + 1
            if count > MAX_SNR_POINTS:
                raise SNRRangeError(f"SNR range {text!r} has {count} points; at most {MAX_SNR_POINTS} are allowed")
            return [round(start + i * step, 10) for i in range(count)]
        values = [float(part) for part in text.split(",") if part.strip()]
    except SNRRangeError:
        raise
    except ValueError as err:
        raise SNRRangeError(f"bad SNR list {text!r}: {SNR_RANGE_HELP}") from err
    if not values:
        raise SNRRangeError(f"bad SNR list {text!r}: no values ({SNR_RANGE_HELP})")
    if not all(math.isfinite(v) for v in values):
        raise SNRRangeError(f"bad SNR list {text!r}: values must be finite")
    if len(values) > MAX_SNR_POINTS:
        raise SNRRangeError(f"SNR list {text!r} has {len(values)} points; at most {MAX_SNR_POINTS} are allowed")
    return values


def check_snr_kind(kind: str) -> str:
    """``kind`` if it names an SNR convention (``"esn0"`` or ``"ebn0"``), else ValueError naming the choices."""
    if kind not in SNR_KINDS:
        raise InputError(f"unknown SNR kind {kind!r}: use one of {SNR_KINDS}")
    return kind
