"""Integers <-> bits (MSB first) and Gray codes.

Bits are MSB first, as AMP-SC eqs. (2) and (5): an integer ``s`` of width ``b`` becomes
``d_{b-1} ... d_1 d_0`` with ``d_i = floor(s / 2^i) mod 2``, and ``DA(d) = sum_i d_i 2^i`` inverts it.
"""

from __future__ import annotations

import torch

from .errors import InputError

MAX_INT_BITS = 62


def _check_width(num_bits: int) -> None:
    if not isinstance(num_bits, int) or isinstance(num_bits, bool) or not 1 <= num_bits <= MAX_INT_BITS:
        raise InputError(f"num_bits must be an int in [1, {MAX_INT_BITS}], got {num_bits!r}")


def _check_integer_tensor(values: torch.Tensor, name: str) -> None:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {values.dtype}")


def int_to_bits(values: torch.Tensor, num_bits: int) -> torch.Tensor:
    """Unsigned integers to bits, MSB first (AMP-SC eq. 2).

    Input: ``values : [...], integer dtype``, each in ``[0, 2**num_bits)``.
    Output: ``bits : [..., num_bits], torch.uint8`` in {0, 1}; ``bits[..., 0]`` is the MSB.
    Raises ``ValueError`` for out-of-range values, ``TypeError`` for a non-integer dtype.
    """
    _check_width(num_bits)
    _check_integer_tensor(values, "values")
    if values.numel() and (int(values.min()) < 0 or int(values.max()) >= 1 << num_bits):
        raise InputError(
            f"values must lie in [0, {(1 << num_bits) - 1}] for {num_bits} bits; "
            f"got min {int(values.min())}, max {int(values.max())}"
        )
    shifts = torch.arange(num_bits - 1, -1, -1, device=values.device, dtype=torch.int64)
    return ((values.to(torch.int64).unsqueeze(-1) >> shifts) & 1).to(torch.uint8)


def bits_to_int(bits: torch.Tensor) -> torch.Tensor:
    """Bits (MSB first) to unsigned integers (AMP-SC eq. 5), the inverse of :func:`int_to_bits`.

    Input: ``bits : [..., b]``, uint8/bool/integer or float with values in {0, 1}.
    Output: ``values : [...], torch.int64`` in ``[0, 2**b)``.
    """
    if not isinstance(bits, torch.Tensor):
        raise TypeError(f"bits must be a torch.Tensor, got {type(bits).__name__}")
    if bits.dim() == 0:
        raise InputError("bits must have at least one dimension (the bit axis)")
    num_bits = bits.shape[-1]
    _check_width(num_bits)
    check_binary(bits, "bits")
    weights = 1 << torch.arange(num_bits - 1, -1, -1, device=bits.device, dtype=torch.int64)
    return (bits.to(torch.int64) * weights).sum(-1)


def check_binary(bits: torch.Tensor, name: str = "bits") -> None:
    """Raise ``ValueError`` unless every entry of ``bits`` is 0 or 1 (``TypeError`` for complex)."""
    if bits.dtype.is_complex:
        raise TypeError(f"{name} must be real (uint8, bool, int or float in {{0, 1}}), got {bits.dtype}")
    if bits.dtype != torch.bool and bits.numel() and not bool(((bits == 0) | (bits == 1)).all()):
        raise InputError(f"{name} must contain only 0 and 1")


def gray_encode(values: torch.Tensor) -> torch.Tensor:
    """Binary-reflected Gray code ``g = n XOR (n >> 1)``. ``values : [...], integer dtype`` -> same shape."""
    _check_integer_tensor(values, "values")
    return values ^ (values >> 1)


def gray_decode(codes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`gray_encode` (prefix XOR). ``codes : [...], integer dtype, >= 0`` -> same shape."""
    _check_integer_tensor(codes, "codes")
    values = codes.clone()
    shift = 1
    while shift < MAX_INT_BITS + 1:
        values = values ^ (values >> shift)
        shift <<= 1
    return values
