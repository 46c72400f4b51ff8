"""Safe weight files: safetensors for model weights (no pickle), ``torch.load(weights_only=True)`` for
optimizer state; both written atomically, and load errors name the file and the problem."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .io import atomic_write


class CheckpointError(RuntimeError):
    """A weights or state file is missing, corrupted or does not fit the model."""


DIGEST_KEY = "tensors_sha256"
"""The metadata key of a weights file's own checksum (:func:`tensors_digest` of its tensors)."""


def tensors_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of a state dict's names, dtypes, shapes and bytes, in name order: what
    :func:`save_weights` stores and :func:`read_weights` checks, so flipped bytes in the tensor data
    of any weights file (a run folder's included, not only the zoo's pinned ones) are caught."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_weights(module: nn.Module, path: str | Path, metadata: dict[str, Any] | None = None, float_dtype: torch.dtype | None = None) -> Path:
    """Write ``module.state_dict()`` to a safetensors file (atomically); ``metadata`` is stored as JSON
    strings. ``float_dtype`` (e.g. ``torch.float16``) stores floating-point tensors in that type;
    :func:`load_weights` converts them back to the module's dtype."""
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()}
    if float_dtype is not None:
        state = {name: tensor.to(float_dtype) if tensor.dtype.is_floating_point else tensor for name, tensor in state.items()}
    text_metadata = {key: json.dumps(value) for key, value in (metadata or {}).items() if key != DIGEST_KEY}
    text_metadata[DIGEST_KEY] = json.dumps(tensors_digest(state))
    return atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=text_metadata))


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file: (tensors on the CPU, metadata decoded from JSON, without the checksum).

    A file written by :func:`save_weights` carries the checksum of its tensors, checked here; older
    files without one load unchecked. Raises :class:`CheckpointError`."""
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
    recorded = metadata.pop(DIGEST_KEY, None)
    if recorded is not None and recorded != tensors_digest(state):
        raise CheckpointError(f"weights file {path} is corrupted: its tensors no longer match the sha256 recorded when it was written; "
                              "retrain (digisem train ... --resume reuses cached stages) or restore the file from a copy")
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
    except pickle.UnpicklingError as err:
        reasons = [line.strip() for line in str(err).splitlines() if line.strip() and "weights_only" not in line and "documentation" not in line]
        raise CheckpointError(f"state file {path} is not one digisem wrote ({' '.join(reasons) or 'unreadable pickle'}): digisem loads state "
                              "files with weights_only=True, which admits tensors and plain containers only. Do not retry with "
                              "torch.load(weights_only=False): that could run code from the file. Delete its stage folder and train it again") from err
    except Exception as err:  # torch raises several types for a damaged file
        raise CheckpointError(f"state file {path} is corrupted ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no details'}): "
                              "delete its stage folder and train it again") from err
