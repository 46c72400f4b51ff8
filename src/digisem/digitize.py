"""Digitizers: continuous features <-> what goes on the wire.

:class:`ScalarQuantizer` is AMP-SC's rounding quantizer (paper Sec. II-A, eqs. 1-2, 10). Turning its
integers into bits is the link's job (:func:`digisem.link.int_to_bits`, MSB first, natural binary).
"""

from __future__ import annotations

import torch
from torch import nn

MAX_SCALAR_BITS = 16


class ScalarQuantizer(nn.Module):
    """Uniform rounding quantizer to ``2**num_bits`` integer levels (AMP-SC, the authors' code).

    Parameters
    ----------
    num_bits : int
        Bits per value ``b`` (AMP-SC uses 2 or 4), 1 to 16.

    Note
    ----
    Feature units: :meth:`bounded` maps the raw encoder output to ``tanh(x) * 2^b / 2 + 0.5``, in
    ``(-2^(b-1) + 0.5, 2^(b-1) + 0.5)``; rounding gives the integer levels ``-2^(b-1) + 1 ... 2^(b-1)``
    (b = 4: bounded in (-7.5, 8.5), levels -7 ... 8). On the wire the levels are shifted by
    ``offset = 2^(b-1) - 1`` to ``0 ... 2^b - 1`` (b = 4: +7, payload 0 ... 15). Training replaces
    the rounding with additive noise (:meth:`relaxed`, eq. 10); there is no straight-through estimator.

    Calling the module is :meth:`quantize`.

    Example
    -------
    >>> q = ScalarQuantizer(4)
    >>> q.quantize(torch.tensor([-7.4, 0.0, 8.4]))
    tensor([ 0,  7, 15])
    """

    def __init__(self, num_bits: int):
        super().__init__()
        if not isinstance(num_bits, int) or isinstance(num_bits, bool) or not 1 <= num_bits <= MAX_SCALAR_BITS:
            raise ValueError(f"num_bits must be an int in [1, {MAX_SCALAR_BITS}], got {num_bits!r}")
        self.num_bits = num_bits
        self.num_levels = 1 << num_bits
        self.offset = (1 << (num_bits - 1)) - 1

    @property
    def bounds(self) -> tuple[float, float]:
        """Open interval ``(low, high)`` of :meth:`bounded`, in feature units (b = 4: (-7.5, 8.5))."""
        half = self.num_levels / 2
        return -half + 0.5, half + 0.5

    def extra_repr(self) -> str:
        return f"num_bits={self.num_bits}"

    def bounded(self, x: torch.Tensor) -> torch.Tensor:
        """Bound raw encoder outputs: ``x : [B, ...]`` -> ``tanh(x) * 2^b / 2 + 0.5``, same shape, feature units."""
        return torch.tanh(x) * (self.num_levels / 2) + 0.5

    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """Round and shift to the payload.

        Input: ``features : [B, ...]`` float, feature units (normally :meth:`bounded` outputs).
        Output: ``payload : [B, ...], torch.int64`` in ``[0, 2^b - 1]``: ``round(features) + offset``,
        saturated at both ends (float32 ``tanh`` reaches exactly -1, whose bound rounds to the level
        below the lowest).
        """
        if not features.dtype.is_floating_point:
            raise TypeError(f"features must be floating point, got {features.dtype}")
        levels = torch.round(features.detach()).to(torch.int64) + self.offset
        return levels.clamp_(0, self.num_levels - 1)

    def dequantize(self, payload: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Back to feature units: ``payload : [B, ...]`` integers in ``[0, 2^b - 1]`` -> ``payload - offset`` as ``dtype``."""
        if payload.dtype.is_floating_point or payload.dtype.is_complex or payload.dtype == torch.bool:
            raise TypeError(f"payload must have an integer dtype, got {payload.dtype}")
        if payload.numel() and (int(payload.min()) < 0 or int(payload.max()) >= self.num_levels):
            raise ValueError(
                f"payload must lie in [0, {self.num_levels - 1}] for {self.num_bits} bits; "
                f"got min {int(payload.min())}, max {int(payload.max())}"
            )
        return (payload - self.offset).to(dtype)

    def relaxed(self, features: torch.Tensor, alpha: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
        """Differentiable stand-in for rounding (eq. 10): ``features + alpha * N(0, 1)``.

        Input: ``features : [B, ...]`` float, feature units (bounded). ``alpha`` : noise standard
        deviation in feature units (paper: 0.5). ``generator`` : on ``features``' device.
        Output: same shape and dtype; gradients flow to ``features``.
        """
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        noise = torch.randn(features.shape, generator=generator, device=features.device, dtype=features.dtype)
        return features + alpha * noise

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.quantize(features)
