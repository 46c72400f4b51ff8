"""Safe weight files: safetensors for model weights (no pickle), ``torch.load(weights_only=True)`` for
optimizer state; both written atomically, and load errors name the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .io import atomic_write


class CheckpointError(RuntimeError):
    """A weights or state file is missing, corrupted or does not fit the model."""


def save_weights(module: nn.Module, path: str | Path, metadata: dict[str, Any] | None = None, float_dtype: torch.dtype | None = None) -> Path:
    """Write ``module.state_dict()`` to a safetensors file (atomically); ``metadata`` is stored as JSON
    strings. ``float_dtype`` (e.g. ``torch.float16``) stores floating-point tensors in that type;
    :func:`load_weights` converts them back to the module's dtype."""
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()}
    if float_dtype is not None:
        state = {name: tensor.to(float_dtype) if tensor.dtype.is_floating_point else tensor for name, tensor in state.items()}
    text_metadata = {key: json.dumps(value) for key, value in (metadata or {}).items()}
    return atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=text_metadata))


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file: (tensors on the CPU, metadata decoded from JSON). Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        state = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            raw_metadata = handle.metadata() or {}
        metadata = {key: json.loads(value) for key, value in raw_metadata.items()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"weights file {path} is corrupted or not a safetensors file: {err}") from err
    return state, metadata


def load_weights(module: nn.Module, path: str | Path, strict: bool = True) -> dict[str, Any]:
    """Load a safetensors file into ``module``; returns its metadata. Raises :class:`CheckpointError` on mismatch."""
    state, metadata = read_weights(path)
    try:
        missing, unexpected = module.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        raise CheckpointError(f"weights file {path} does not fit the model: {err}") from err
    if strict and (missing or unexpected):
        raise CheckpointError(f"weights file {path} does not fit the model: missing {missing}, unexpected {unexpected}")
    return metadata


def save_state(state: dict[str, Any], path: str | Path) -> Path:
    """Write optimizer/scheduler/epoch state with ``torch.save`` (atomically); plain tensors and containers only."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a state file with ``weights_only=True`` (no arbitrary code). Raises :class:`CheckpointError`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"state file not found: {path}") from err
    except Exception as err:  # torch raises several types for a damaged or unsafe file
        raise CheckpointError(f"state file {path} is corrupted or unsafe to load: {err}") from err
