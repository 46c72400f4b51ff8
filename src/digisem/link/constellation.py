"""Constellations with Gray labels: BPSK, square QAM (3GPP TS 38.211), M-PSK and custom point sets.

Every constellation has unit average energy (E|c|^2 = 1 over equiprobable points) and labels
point ``i`` with the ``bits_per_symbol``-bit binary representation of ``i``, MSB first (the
convention of Sionna's ``Constellation``). Square QAM takes the 3GPP interleaving: bits
``b0, b2, ...`` choose the in-phase PAM level and ``b1, b3, ...`` the quadrature one, each axis a
Gray PAM, so mapping and demapping run per axis over sqrt(M) levels instead of M points.

Demapping to LLRs uses the sign convention of :mod:`digisem.link`:
``LLR = ln P(b=1 | y) / P(b=0 | y)`` (positive means 1 is more likely).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .bits import check_binary, gray_encode
from .errors import InputError

DEMAPPING_METHODS = ("app", "maxlog")


@dataclass(frozen=True)
class ConstellationInfo:
    """Name, family ("bpsk", "qam" or "psk") and bits per symbol of a named modulation."""

    name: str
    family: str
    bits_per_symbol: int


def constellation_info(modulation: str) -> ConstellationInfo:
    """Parse a modulation name: "bpsk", "qpsk", "16qam"/"16-QAM", "64qam", "256qam", "8psk", ...

    QAM orders must be even powers of two (4 ... 2^16), PSK orders powers of two >= 8.
    Raises ``ValueError`` naming the accepted names for anything else.
    """
    if not isinstance(modulation, str):
        raise TypeError(f"modulation must be a string such as '16qam', got {type(modulation).__name__}")
    key = modulation.lower().replace("-", "").replace("_", "").strip()
    if key == "bpsk":
        return ConstellationInfo("bpsk", "bpsk", 1)
    if key in ("qpsk", "4qam"):
        return ConstellationInfo("qpsk", "qam", 2)
    match = re.fullmatch(r"(\d+)(qam|psk)", key)
    if match:
        order, family = int(match.group(1)), match.group(2)
        bits = order.bit_length() - 1
        if order == 1 << bits and ((family == "qam" and bits % 2 == 0 and 2 <= bits <= 16) or (family == "psk" and 3 <= bits <= 16)):
            return ConstellationInfo(f"{order}{family}", family, bits)
    raise InputError(
        f"unknown modulation {modulation!r}: use 'bpsk', 'qpsk', an M-QAM with M an even power of two "
        "('16qam', '64qam', '256qam') or an M-PSK with M a power of two >= 8 ('8psk', '16psk')"
    )


def gray_pam_labels(bits_per_axis: int) -> np.ndarray:
    """3GPP Gray labels of a PAM axis, levels sorted ascending.

    Returns ``[2**bits_per_axis, bits_per_axis]`` uint8: row ``j`` is the label (MSB first) of
    level ``2j - (L - 1)``. Built from the TS 38.211 recursion
    ``v(b) = (1 - 2 b_0)(2^(m-1) - v(b_1 ... b_{m-1}))``, so adjacent levels differ in one bit.
    """
    num_levels = 1 << bits_per_axis
    labels = np.array([[(i >> (bits_per_axis - 1 - t)) & 1 for t in range(bits_per_axis)] for i in range(num_levels)])
    values = np.array([_pam_gray_value(row) for row in labels])
    return labels[np.argsort(values)].astype(np.uint8)


def _pam_gray_value(bits: np.ndarray) -> int:
    if len(bits) == 1:
        return 1 - 2 * int(bits[0])
    return (1 - 2 * int(bits[0])) * ((1 << (len(bits) - 1)) - _pam_gray_value(bits[1:]))


def _label_bits(num_points: int, bits_per_symbol: int) -> torch.Tensor:
    """``[M, k]`` uint8: row ``i`` is ``i`` in binary, MSB first."""
    shifts = torch.arange(bits_per_symbol - 1, -1, -1)
    return ((torch.arange(num_points).unsqueeze(-1) >> shifts) & 1).to(torch.uint8)


def _labels_of(groups: torch.Tensor) -> torch.Tensor:
    """``[..., n, k]`` uint8 bit groups (MSB first) -> ``[..., n]`` int32 labels.

    Horner's rule over the k bit planes: a few passes of narrow integer arithmetic, much faster on
    the CPU than a multiply-and-reduce over a length-k last dimension.
    """
    bits_per_symbol = groups.shape[-1]
    labels = groups[..., 0].to(torch.uint8 if bits_per_symbol <= 8 else torch.int32)
    for t in range(1, bits_per_symbol):
        labels = labels * 2 + groups[..., t]
    return labels.to(torch.int32)


def check_symbols(y: torch.Tensor, name: str = "y") -> None:
    """Raise unless ``y`` is a non-empty complex tensor of finite values."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if not y.dtype.is_complex:
        raise TypeError(f"{name} must be complex (torch.complex64), got {y.dtype}")
    if y.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(y.shape)})")
    coords = torch.view_as_real(y)
    # one cheap reduction screens for NaN/inf; the exact check runs only if the sum is not finite
    if not bool(torch.isfinite(coords.sum())) and not bool(torch.isfinite(coords).all()):
        raise InputError(f"{name} contains NaN or inf")


def _check_noise_var(noise_var: torch.Tensor | float, y: torch.Tensor) -> torch.Tensor:
    noise_var = torch.as_tensor(noise_var, dtype=y.real.dtype, device=y.device)
    if not bool(torch.isfinite(noise_var).all()) or bool((noise_var <= 0).any()):
        raise InputError("noise_var must be finite and > 0 (the complex noise variance N0 per symbol)")
    try:
        torch.broadcast_shapes(noise_var.shape, y.shape)
    except RuntimeError as err:
        raise InputError(f"noise_var of shape {tuple(noise_var.shape)} does not broadcast to y of shape {tuple(y.shape)}") from err
    return noise_var


class Constellation(nn.Module):
    """A labelled set of M = 2^k complex points with generic (M-point) map and demap.

    Parameters
    ----------
    points : [M], complex
        Point ``i`` carries the label ``i`` in binary, MSB first. M must be a power of two >= 2.
    normalize : bool
        Scale the points to unit average energy (default True).
    name : str
        A name for printing and results files.

    Example
    -------
    >>> c = Constellation(torch.tensor([1, 1j, -1, -1j]), name="custom-4")
    >>> c.map(torch.tensor([[0, 1, 1, 0]], dtype=torch.uint8)).shape
    torch.Size([1, 2])
    """

    def __init__(self, points: torch.Tensor, normalize: bool = True, name: str = "custom"):
        super().__init__()
        points = torch.as_tensor(points)
        if points.dim() != 1:
            raise InputError(f"points must be 1-D [M], got shape {tuple(points.shape)}")
        num_points = points.numel()
        bits_per_symbol = num_points.bit_length() - 1
        if num_points < 2 or num_points != 1 << bits_per_symbol:
            raise InputError(f"the number of points must be a power of two >= 2, got {num_points}")
        points = points.to(torch.complex64)
        if not bool(torch.isfinite(torch.view_as_real(points)).all()):
            raise InputError("points contain NaN or inf")
        if normalize:
            points = points / points.abs().pow(2).mean().sqrt()
        self.name = name
        self.bits_per_symbol = bits_per_symbol
        self.register_buffer("points", points, persistent=False)
        self.register_buffer("label_bits", _label_bits(num_points, bits_per_symbol), persistent=False)

    @property
    def num_points(self) -> int:
        """Number of points M."""
        return self.points.numel()

    def extra_repr(self) -> str:
        return f"name={self.name!r}, bits_per_symbol={self.bits_per_symbol}"

    def _bit_groups(self, bits: torch.Tensor) -> torch.Tensor:
        """``[..., n*k]`` bits -> ``[..., n, k]`` uint8, after checking dtype, values and length."""
        if not isinstance(bits, torch.Tensor):
            raise TypeError(f"bits must be a torch.Tensor, got {type(bits).__name__}")
        if bits.dim() == 0 or bits.numel() == 0:
            raise InputError(f"bits must be a non-empty tensor [..., n*k], got shape {tuple(bits.shape)}")
        if bits.shape[-1] % self.bits_per_symbol:
            raise InputError(
                f"the number of bits ({bits.shape[-1]}) is not a multiple of the {self.bits_per_symbol} "
                f"bits per symbol of {self.name}"
            )
        if bits.dtype == torch.uint8:
            if int(bits.max()) > 1:
                raise InputError("bits must contain only 0 and 1")
        else:
            check_binary(bits)
            bits = bits.to(torch.uint8)
        return bits.reshape(*bits.shape[:-1], -1, self.bits_per_symbol)

    def map(self, bits: torch.Tensor) -> torch.Tensor:
        """Bits to symbols.

        Input: ``bits : [..., n*k]``, uint8/bool/int/float in {0, 1}, MSB first per symbol.
        Output: ``x : [..., n], torch.complex64``.
        """
        labels = _labels_of(self._bit_groups(bits))
        return torch.index_select(self.points, 0, labels.reshape(-1)).reshape(labels.shape)

    def demap_hard(self, y: torch.Tensor) -> torch.Tensor:
        """Minimum-distance hard decisions.

        Input: ``y : [..., n], complex`` (equalized symbols).
        Output: ``bits : [..., n*k], torch.uint8``.
        """
        check_symbols(y)
        labels = (y.unsqueeze(-1) - self.points).abs().argmin(-1)
        return self.label_bits[labels].flatten(-2)

    def demap_llr(self, y: torch.Tensor, noise_var: torch.Tensor | float, method: str = "app") -> torch.Tensor:
        """Bit LLRs ``ln P(b=1|y)/P(b=0|y)`` for equiprobable points.

        Input: ``y : [..., n], complex``; ``noise_var`` : float or tensor broadcastable to ``y``,
        the complex noise variance N0 per symbol (after equalization). ``method`` : "app"
        (exact log-sum-exp) or "maxlog".
        Output: ``llr : [..., n*k], torch.float32``.
        """
        check_symbols(y)
        noise_var = _check_noise_var(noise_var, y)
        metrics = -(y.unsqueeze(-1) - self.points).abs().pow(2) / noise_var.unsqueeze(-1)
        return _llr_from_metrics(metrics, self.label_bits, method).flatten(-2)


def _llr_from_metrics(metrics: torch.Tensor, label_bits: torch.Tensor, method: str) -> torch.Tensor:
    """``metrics [..., P]`` log-likelihoods of P labelled points, ``label_bits [P, m]`` -> ``[..., m]`` LLRs."""
    if method not in DEMAPPING_METHODS:
        raise InputError(f"unknown demapping method {method!r}: use one of {DEMAPPING_METHODS}")
    excluded = torch.where(label_bits.T.bool(), 0.0, -torch.inf).to(metrics)
    with_one = metrics.unsqueeze(-2) + excluded
    with_zero = metrics.unsqueeze(-2) + (-torch.inf - excluded).nan_to_num(neginf=-torch.inf, posinf=0.0)
    if method == "app":
        return torch.logsumexp(with_one, -1) - torch.logsumexp(with_zero, -1)
    return with_one.amax(-1) - with_zero.amax(-1)


class GrayPAMConstellation(Constellation):
    """BPSK (one real Gray PAM axis) or square QAM (two Gray PAM axes, 3GPP TS 38.211).

    Map and demap work per axis over ``L = 2^(k/axes)`` levels: a hard decision is a rounding of
    each axis, an LLR a log-sum-exp over L levels, so 256-QAM costs 16 metrics per axis, not 256.
    Device moves carry the buffers; ``levels_by_bit`` (which sorted levels carry bit 1 / bit 0 for
    each axis bit) is plain Python, fixed at construction.

    Parameters
    ----------
    bits_per_symbol : int
        1 (BPSK) or an even number (QPSK = 2, 16-QAM = 4, 64-QAM = 6, 256-QAM = 8, ...).
    """

    def __init__(self, bits_per_symbol: int):
        if bits_per_symbol == 1:
            num_axes, name = 1, "bpsk"
        elif bits_per_symbol % 2 == 0 and bits_per_symbol >= 2:
            num_axes, name = 2, ("qpsk" if bits_per_symbol == 2 else f"{1 << bits_per_symbol}qam")
        else:
            raise InputError(f"a Gray PAM/QAM constellation needs 1 or an even number of bits, got {bits_per_symbol}")
        bits_per_axis = bits_per_symbol // num_axes
        num_levels = 1 << bits_per_axis
        sorted_labels = torch.from_numpy(gray_pam_labels(bits_per_axis))
        level_scale = (num_axes * (num_levels**2 - 1) / 3.0) ** -0.5
        levels = (torch.arange(num_levels) * 2.0 - (num_levels - 1)) * level_scale
        # Point label i interleaves the axes' bits: b0 (axis 0), b1 (axis 1), b2 (axis 0), ...
        label_bits = _label_bits(1 << bits_per_symbol, bits_per_symbol)
        level_of_axis_label = torch.empty(num_levels, dtype=torch.float32)
        axis_label_index = (sorted_labels.long() << torch.arange(bits_per_axis - 1, -1, -1)).sum(-1)
        level_of_axis_label[axis_label_index] = levels
        axis_weights = 1 << torch.arange(bits_per_axis - 1, -1, -1)
        coords = [level_of_axis_label[(label_bits[:, a::num_axes].long() * axis_weights).sum(-1)] for a in range(num_axes)]
        points = coords[0].to(torch.complex64) if num_axes == 1 else torch.complex(coords[0], coords[1])
        super().__init__(points, normalize=False, name=name)
        self.num_axes = num_axes
        self.bits_per_axis = bits_per_axis
        self.level_scale = level_scale
        self.register_buffer("levels", levels, persistent=False)
        self.register_buffer("sorted_axis_labels", sorted_labels, persistent=False)
        self.levels_by_bit = [
            tuple([j for j in range(num_levels) if int(sorted_labels[j, t]) == bit] for bit in (1, 0)) for t in range(bits_per_axis)
        ]
        # Bits of the point whose axis levels have sorted indices (j_0, j_1): row j_0 * L + j_1.
        grid = torch.stack(torch.meshgrid(*[torch.arange(num_levels)] * num_axes, indexing="ij"), -1).reshape(-1, num_axes)
        decision_bits = torch.stack([sorted_labels[grid[:, a]] for a in range(num_axes)], -1).flatten(-2)
        self.register_buffer("decision_bits", decision_bits, persistent=False)
        # one bit per axis: the upper level's bit, and (level of bit 1) - (level of bit 0)
        self.upper_level_bit = bool(sorted_labels[-1, 0]) if bits_per_axis == 1 else None
        self.level_gap_bit1 = float(levels[-1] - levels[0]) * (1.0 if self.upper_level_bit else -1.0) if bits_per_axis == 1 else None

    def _axes(self, y: torch.Tensor) -> torch.Tensor:
        """``[..., n]`` complex -> ``[..., n, axes]`` real coordinates."""
        return torch.view_as_real(y)[..., : self.num_axes]

    def demap_hard(self, y: torch.Tensor) -> torch.Tensor:
        """Per-axis nearest-level decisions (same result as minimum distance over all M points).

        Input: ``y : [..., n], complex``. Output: ``bits : [..., n*k], torch.uint8``.
        """
        check_symbols(y)
        if self.bits_per_axis == 1:
            # BPSK/QPSK: the decision per axis is a sign test (a point on 0 goes to the upper level)
            upper = self._axes(y) >= 0
            return (upper if self.upper_level_bit else ~upper).to(torch.uint8).flatten(-2)
        num_levels = 1 << self.bits_per_axis
        coords = self._axes(y) * (0.5 / self.level_scale) + 0.5 * num_levels
        # clamped to [0, L) first, so truncation to int equals floor
        index = coords.clamp_(0.0, num_levels - 0.5).to(torch.int32)
        if self.num_axes == 2:
            index = index[..., 0] * num_levels + index[..., 1]
        else:
            index = index[..., 0]
        return torch.index_select(self.decision_bits, 0, index.reshape(-1)).reshape(*index.shape, -1).flatten(-2)

    def demap_llr(self, y: torch.Tensor, noise_var: torch.Tensor | float, method: str = "app") -> torch.Tensor:
        """Per-axis LLRs ``ln P(b=1|y)/P(b=0|y)``; exact ("app") or max-log, as the M-point demapper.

        Input: ``y : [..., n], complex``; ``noise_var`` : float or tensor broadcastable to ``y``
        (complex noise variance N0 per symbol). Output: ``llr : [..., n*k], torch.float32``.
        """
        check_symbols(y)
        noise_var = _check_noise_var(noise_var, y)
        if method not in DEMAPPING_METHODS:
            raise InputError(f"unknown demapping method {method!r}: use one of {DEMAPPING_METHODS}")
        coords = self._axes(y)
        if self.bits_per_axis == 1:
            # two levels +-a per axis: ln P(1|c)/P(0|c) = 2 c (a_1 - a_0) / N0, exact (app = maxlog)
            return (coords * (2.0 * self.level_gap_bit1 / noise_var.unsqueeze(-1))).flatten(-2)
        neg_inv_noise = (-1.0 / noise_var).unsqueeze(-1)
        # one metric tensor [..., n, axes] per level, then per bit a pairwise fold over the L/2
        # levels of each label value: elementwise ops only, no [..., L] reductions
        metrics = [(coords - level).square_().mul_(neg_inv_noise) for level in self.levels]
        combine = torch.logaddexp if method == "app" else torch.maximum
        llr_per_bit = []
        for with_one, with_zero in self.levels_by_bit:
            ones, zeros = metrics[with_one[0]], metrics[with_zero[0]]
            for level in with_one[1:]:
                ones = combine(ones, metrics[level])
            for level in with_zero[1:]:
                zeros = combine(zeros, metrics[level])
            llr_per_bit.append(ones - zeros)
        # [..., n, bits_per_axis, axes] -> b0 (axis 0), b1 (axis 1), b2 (axis 0), ...
        return torch.stack(llr_per_bit, -2).flatten(-3)


class PSKConstellation(Constellation):
    """M-PSK with Gray labels: the point at angle ``2 pi j / M + phase_offset`` carries label ``gray(j)``.

    Hard decisions round the phase (exactly minimum distance); LLRs use the generic M-point demapper.
    """

    def __init__(self, bits_per_symbol: int, phase_offset: float = 0.0):
        if bits_per_symbol < 1:
            raise InputError(f"bits_per_symbol must be >= 1, got {bits_per_symbol}")
        order = 1 << bits_per_symbol
        position = torch.arange(order)
        angles = 2 * torch.pi * position.double() / order + phase_offset
        points = torch.empty(order, dtype=torch.complex128)
        points[gray_encode(position)] = torch.polar(torch.ones(order, dtype=torch.float64), angles)
        super().__init__(points, normalize=False, name=f"{order}psk")
        self.phase_offset = phase_offset
        self.register_buffer("position_labels", gray_encode(position), persistent=False)

    def demap_hard(self, y: torch.Tensor) -> torch.Tensor:
        """Nearest-phase decisions. ``y : [..., n], complex`` -> ``bits : [..., n*k], torch.uint8``."""
        check_symbols(y)
        order = self.num_points
        position = torch.round((torch.angle(y) - self.phase_offset) * (order / (2 * torch.pi))).to(torch.int64) % order
        return self.label_bits[self.position_labels[position]].flatten(-2)


def constellation(modulation: str) -> Constellation:
    """Build a named constellation: "bpsk", "qpsk", "16qam", "64qam", "256qam", "8psk", "16psk", ...

    All have unit average energy and Gray labels (3GPP TS 38.211 for QAM).
    """
    info = constellation_info(modulation)
    if info.family == "psk":
        return PSKConstellation(info.bits_per_symbol)
    return GrayPAMConstellation(info.bits_per_symbol)
