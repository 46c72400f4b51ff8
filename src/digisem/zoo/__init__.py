"""The model zoo: load trained systems by zoo name, run folder or weights file.

Every weights file (``model.safetensors``) carries its own metadata: the ``system`` family, the model
``config``, the ``recipe`` and the recorded ``results``, so the file alone rebuilds the model. The zoo
is this package folder, ``digisem/zoo/``: ``<name>.safetensors`` plus one line per model in
``zoo/SHA256SUMS`` that pins its checksum (verified on every load).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

from ..weights import CheckpointError, load_weights, read_weights

SYSTEM_BUILDERS = {"ampsc": ("digisem.systems.ampsc", "AMPSC", "AMPSCConfig")}


def zoo_dir() -> Path:
    """The package's zoo folder."""
    return Path(str(resources.files("digisem.zoo")))


def zoo_checksums() -> dict[str, str]:
    """``{name: sha256}`` from ``zoo/SHA256SUMS`` (``<sha256>  <name>.safetensors`` per line)."""
    sums_file = zoo_dir() / "SHA256SUMS"
    if not sums_file.is_file():
        return {}
    checksums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, filename = line.split()
            checksums[filename.removesuffix(".safetensors")] = digest
    return checksums


def zoo_names() -> list[str]:
    """Names of the bundled pretrained models."""
    return sorted(zoo_checksums())


def resolve_weights(source: str | Path) -> Path:
    """A zoo name, a run folder (holding ``model.safetensors``) or a ``.safetensors`` path -> the weights file.

    Zoo files are checked against their pinned SHA-256; a mismatch raises :class:`CheckpointError`.
    """
    checksums = zoo_checksums()
    if str(source) in checksums:
        path = zoo_dir() / f"{source}.safetensors"
        if not path.is_file():
            raise CheckpointError(f"zoo model {source!r} is registered but its weights file {path} is missing")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != checksums[str(source)]:
            raise CheckpointError(f"zoo weights {path} are corrupted: sha256 {digest} != pinned {checksums[str(source)]}")
        return path
    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if path.is_file():
        return path
    raise CheckpointError(f"no model {str(source)!r}: not a zoo name ({', '.join(zoo_names()) or 'the zoo is empty'}), run folder or weights file")


def build_system(metadata: dict[str, Any]) -> nn.Module:
    """An untrained model of the family and configuration recorded in a weights file's metadata."""
    import importlib

    system = metadata.get("system")
    if system not in SYSTEM_BUILDERS:
        raise CheckpointError(f"weights metadata names system {system!r}; known systems: {sorted(SYSTEM_BUILDERS)}")
    module_name, class_name, config_name = SYSTEM_BUILDERS[system]
    module = importlib.import_module(module_name)
    return getattr(module, class_name)(getattr(module, config_name).from_dict(metadata["config"]))


def load(source: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a trained system: ``(model in eval mode on the CPU, metadata)``.

    ``source`` is a zoo name (``"ampsc-cifar10-4bit"``), a run folder or a ``.safetensors`` file.
    """
    path = resolve_weights(source)
    _, metadata = read_weights(path)
    model = build_system(metadata)
    load_weights(model, path)
    return model.eval(), metadata
