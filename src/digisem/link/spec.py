"""The one link factory: a link from a short text spec or a mapping, and the SNR it expects.

Text specs (case-insensitive):

- ``"<modulation>-<channel>[-ldpc-<rate>]"``: a :class:`~digisem.link.BitLink`, e.g. ``"16qam-awgn"``,
  ``"qpsk-rayleigh"``, ``"16qam-mimo-8x4-svd-ldpc-1/2"``;
- ``"<channel>"`` alone (``"awgn"``, ``"rayleigh"``, ``"rayleigh-block"``, ``"mimo-8x4-svd"``...): a
  :class:`~digisem.link.SymbolLink` for a symbol payload, or a 16-QAM :class:`~digisem.link.BitLink`
  for an integer payload;
- ``"bsc"`` / ``"bsc-<modulation>"``: a :class:`~digisem.link.BSCLink` whose flip probability is the
  closed-form Gray BER of the modulation (16-QAM by default) at the Eb/N0 of each call (AMP-SC's
  Table IV);
- ``"none"``: error-free bits (``BSCLink(p=0)``) for an integer payload; no link (None) for symbols.

Mappings: ``{kind: bits|bsc|symbols, ...}`` with the keys of the matching class (``modulation``,
``channel``, ``code``, ``ldpc_k``, ``demapping``; ``p``, ``snr_kind``; ``normalize``). The robust
recipes' ``{modulation, channel, code}`` (kind ``digital``) and ``{kind: analog, channel}`` read as
``bits`` and ``symbols`` (the latter without re-normalization: the model normalizes).
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from .constellation import constellation_info
from .errors import InputError
from .ldpc import LDPC5GCode
from .links import BitLink, BSCLink, SymbolLink
from .theory import ebn0_to_esn0_db

PAYLOADS = ("integers", "symbols")
LINK_KINDS = ("bits", "bsc", "symbols")
_KIND_ALIASES = {"digital": "bits", "analog": "symbols"}
_KEYS = {
    "bits": {"kind", "modulation", "channel", "code", "ldpc_k", "demapping"},
    "bsc": {"kind", "p", "modulation", "snr_kind"},
    "symbols": {"kind", "channel", "normalize"},
}
DEFAULT_MODULATION = "16qam"
DEFAULT_LDPC_K = 512
_CODED = re.compile(r"(?P<rest>.+?)-(?P<code>ldpc-\d+/\d+)$")


def _is_modulation(name: str) -> bool:
    try:
        constellation_info(name)
    except ValueError:
        return False
    return True


def parse_spec(spec: str | dict[str, Any], payload: str = "integers") -> dict[str, Any] | None:
    """The mapping form of a link spec (see the module docstring); None for ``"none"`` on symbols.

    Input: ``spec`` text or mapping; ``payload`` ``"integers"`` or ``"symbols"`` (what the link must
    carry, which decides what a bare channel name means). Output: a mapping with ``kind``.
    """
    if payload not in PAYLOADS:
        raise InputError(f"unknown payload {payload!r}: use one of {PAYLOADS}")
    if isinstance(spec, dict):
        mapping = dict(spec)
        kind = _KIND_ALIASES.get(mapping.get("kind", "bits"), mapping.get("kind", "bits"))
        if kind not in LINK_KINDS:
            raise InputError(f"unknown link kind {mapping.get('kind')!r}: use one of {LINK_KINDS}")
        if mapping.get("kind") == "analog":
            mapping.setdefault("normalize", False)
        mapping["kind"] = kind
        unknown = sorted(set(mapping) - _KEYS[kind])
        if unknown:
            raise InputError(f"unknown keys {unknown} for a {kind} link; known: {sorted(_KEYS[kind])}")
        return mapping
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"a link spec must be a non-empty string or a mapping, got {spec!r}")
    text = spec.strip().lower()
    if text == "none":
        return {"kind": "bsc", "p": 0.0} if payload == "integers" else None
    if text == "bsc" or text.startswith("bsc-"):
        modulation = text[4:] or DEFAULT_MODULATION
        if not _is_modulation(modulation):
            raise InputError(f"bad link spec {spec!r}: {modulation!r} is not a modulation (e.g. bsc-16qam)")
        return {"kind": "bsc", "modulation": modulation, "snr_kind": "ebn0"}
    code = None
    match = _CODED.match(text)
    if match:
        text, code = match.group("rest"), match.group("code")
    head, _, channel = text.partition("-")
    if _is_modulation(head) and channel:
        return {"kind": "bits", "modulation": head, "channel": channel, "code": code}
    if code is not None or payload == "integers":
        return {"kind": "bits", "modulation": DEFAULT_MODULATION, "channel": text, "code": code}
    return {"kind": "symbols", "channel": text}


def from_spec(spec: str | dict[str, Any] | nn.Module | None, payload: str = "integers") -> nn.Module | None:
    """Build the link of ``spec``.

    Parameters
    ----------
    spec : str, mapping, link module or None
        See the module docstring; a module is returned as it is, None gives None (no channel).
    payload : str
        ``"integers"`` (b-bit integers: :class:`BitLink`, :class:`BSCLink`) or ``"symbols"``
        (complex symbols: :class:`SymbolLink`).

    Output
    ------
    link : nn.Module or None

    Example
    -------
    >>> from_spec("16qam-awgn-ldpc-1/2")
    BitLink(...)
    """
    if spec is None or isinstance(spec, nn.Module):
        return spec
    mapping = parse_spec(spec, payload)
    if mapping is None:
        return None
    kind = mapping["kind"]
    if kind == "symbols":
        if payload != "symbols":
            raise InputError(f"link {spec!r} carries complex symbols, but this payload is {payload}: use e.g. '16qam-{mapping['channel']}'")
        return SymbolLink(mapping["channel"], normalize=bool(mapping.get("normalize", True)))
    if payload != "integers":
        raise InputError(f"link {spec!r} carries bits, but this payload is complex symbols: use a channel name such as 'awgn' or 'mimo-8x4-svd'")
    if kind == "bsc":
        if "p" in mapping:
            return BSCLink(p=float(mapping["p"]))
        return BSCLink(modulation=mapping.get("modulation", DEFAULT_MODULATION), snr_kind=mapping.get("snr_kind", "ebn0"))
    code = LDPC5GCode.from_spec(mapping["code"], k=int(mapping.get("ldpc_k", DEFAULT_LDPC_K))) if mapping.get("code") else None
    return BitLink(mapping.get("modulation", DEFAULT_MODULATION), mapping.get("channel", "awgn"), code=code, demapping=mapping.get("demapping"))


def describe(spec: str | dict[str, Any] | None) -> str:
    """A short label of a link spec for tables and plots (``"16qam-awgn"``, ``"bsc"``, ``"none"``)."""
    if spec is None:
        return "none"
    if isinstance(spec, str):
        return spec
    mapping = parse_spec(spec, "symbols" if _KIND_ALIASES.get(spec.get("kind", ""), spec.get("kind")) == "symbols" else "integers")
    if mapping["kind"] == "symbols":
        return mapping["channel"]
    if mapping["kind"] == "bsc":
        return f"bsc p={mapping['p']}" if "p" in mapping else f"bsc-{mapping.get('modulation', DEFAULT_MODULATION)}"
    code = f"-{mapping['code']}" if mapping.get("code") else ""
    return f"{mapping.get('modulation', DEFAULT_MODULATION)}-{mapping.get('channel', 'awgn')}{code}"


def link_snr_kind(link: nn.Module | None) -> str | None:
    """The SNR a link's ``snr_db`` argument means: ``"esn0"`` (:class:`BitLink`, :class:`SymbolLink`),
    the ``snr_kind`` of a :class:`BSCLink` that derives p from the SNR, or None (fixed p, no link)."""
    if link is None:
        return None
    if isinstance(link, BSCLink):
        return None if link.p is not None else link.snr_kind
    return "esn0"


def link_snr_db(link: nn.Module | None, snr_db: float, snr_kind: str) -> float | None:
    """Convert a sweep point ``snr_db`` (dB, of ``snr_kind`` ``"esn0"`` or ``"ebn0"``) to the value
    the link's ``snr_db`` argument expects; None for a link that takes no SNR.

    Eb/N0 per information bit -> Es/N0 per complex symbol adds ``10 log10(bits_per_symbol * code_rate)``
    (:class:`BitLink`); a :class:`BSCLink` of the same kind takes the value unchanged. Es/N0 cannot be
    given to an Eb/N0 BSC without a modulation, and vice versa it converts with the BSC's modulation.
    """
    if snr_kind not in ("esn0", "ebn0"):
        raise InputError(f"unknown SNR kind {snr_kind!r}: use 'esn0' or 'ebn0'")
    wanted = link_snr_kind(link)
    if wanted is None:
        return None
    if wanted == snr_kind:
        return float(snr_db)
    if isinstance(link, BitLink):
        bits_per_symbol, rate = link.constellation.bits_per_symbol, link.code_rate
    elif isinstance(link, BSCLink):
        bits_per_symbol, rate = constellation_info(link.modulation).bits_per_symbol, 1.0
    else:
        raise InputError(f"{type(link).__name__} carries symbols, not bits: give its SNR as Es/N0 (snr_kind 'esn0')")
    offset = float(ebn0_to_esn0_db(0.0, bits_per_symbol, rate))
    return float(snr_db) + offset if snr_kind == "ebn0" else float(snr_db) - offset
