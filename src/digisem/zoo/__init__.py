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

import torch
from torch import nn

from ..data import labelled_samples, sample_images
from ..link import link_snr_db
from ..metrics import psnr
from ..systems import FAMILIES
from ..weights import CheckpointError, load_weights, read_weights


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
    """An untrained model of the family and configuration recorded in a weights file's metadata
    (the family from the registry, :data:`digisem.systems.FAMILIES`)."""
    system = metadata.get("system")
    if system not in FAMILIES:
        raise CheckpointError(f"weights metadata names system {system!r}; known systems: {FAMILIES.names()}")
    if not isinstance(metadata.get("config"), dict):
        raise CheckpointError(f"weights metadata of a {system!r} system has no model config: the file was not written by digisem's save_weights")
    return FAMILIES[system].build(metadata["config"])


def load(source: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a trained system: ``(model in eval mode on the CPU, metadata)``.

    ``source`` is a zoo name (``"ampsc-cifar10-4bit"``), a run folder or a ``.safetensors`` file.
    """
    path = resolve_weights(source)
    _, metadata = read_weights(path)
    model = build_system(metadata)
    load_weights(model, path)
    return model.eval(), metadata


def recorded_link(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The ``link`` section of the recipe a model was trained with (None: no link recorded)."""
    if "link" in metadata:
        return metadata["link"]
    return metadata.get("results", {}).get("meta", {}).get("link")


def sample_system(model: nn.Module, metadata: dict[str, Any]) -> nn.Module:
    """The system a loaded model is scored as: itself, or for a restorer (SCDM) the codec it was
    trained on (``metadata["codec"]``) with the restorer and its jointly trained decoder in place."""
    if FAMILIES[metadata["system"]].kind != "restorer":
        return model
    codec, _ = load(metadata["codec"])
    return codec.with_parts(restorer=model, decoder=model.decoder or codec.decoder)


def sample_score(model: nn.Module, metadata: dict[str, Any]) -> dict[str, float]:
    """Score of a loaded model on the bundled sample images at its family's sample check
    (:class:`~digisem.systems.base.SampleCheck`: AMP-SC over the BSC at Eb/N0 6 dB, JCM over AWGN at
    Es/N0 6 dB, SCDM on its codec at -6 dB, the classifiers over their training link at 3 dB, ...):
    ``{"psnr": dB}`` (mean over images) for image systems, ``{"accuracy", "true_class_probability"}``
    for classifiers."""
    check = FAMILIES[metadata["system"]].sample_check
    if check is None:
        raise CheckpointError(f"system {metadata['system']!r} has no sample check")
    system = sample_system(model, metadata)
    generator = torch.Generator().manual_seed(check.seed)
    link = system.link_for(check.link if check.link is not None else recorded_link(metadata))
    snr = link_snr_db(link, check.snr_db, check.snr_kind)
    if system.task == "classification":
        images, labels = labelled_samples().tensors
        with torch.no_grad():
            logits = system(images, link=link, snr_db=snr, generator=generator)["logits"]
        probability = torch.softmax(logits, 1).gather(1, labels[:, None]).mean()
        return {"accuracy": float((logits.argmax(1) == labels).float().mean()), "true_class_probability": float(probability)}
    images, _ = sample_images(getattr(system, "sample_kind", "cifar"))
    with torch.no_grad():
        x_hat = system(images, link=link, snr_db=snr, generator=generator)["x_hat"]
    return {"psnr": float(psnr(x_hat, images, per_image=False))}


def publish(run_dir: str | Path, name: str, codec: str | None = None, half: bool = False) -> Path:
    """Copy a run's weights into the zoo as ``<name>.safetensors`` with its recorded results and a
    score on the bundled samples (its family's sample check), and pin its sha256 in ``SHA256SUMS``.
    ``codec``: for an SCDM, the zoo name of the codec it denoises for (recorded in its metadata).
    ``half``: store floating-point weights as float16 (half the file); the sample PSNR is measured
    with the rounded weights, the recorded results are the run's (float32)."""
    import dataclasses
    import json

    from ..io import atomic_write
    from ..weights import save_weights

    model, metadata = load(run_dir)
    results_file = Path(run_dir) / "results.json"
    if results_file.is_file():
        metadata["results"] = json.loads(results_file.read_text())
    if codec is not None:
        metadata["codec"] = codec
    if half:
        with torch.no_grad():
            for tensor in list(model.parameters()) + list(model.buffers()):
                if tensor.dtype.is_floating_point:
                    tensor.copy_(tensor.half().float())
        metadata["storage"] = "float16 (results measured with the float32 run weights)"
    if recorded_link(metadata) is not None:
        metadata["link"] = recorded_link(metadata)
    check = FAMILIES[metadata["system"]].sample_check
    metadata["sample_check"] = {**dataclasses.asdict(check), **sample_score(model, metadata)}
    metadata["zoo_name"] = name
    metadata["licence"] = "Apache-2.0 (weights trained by digisem on CIFAR-10)"
    path = save_weights(model, zoo_dir() / f"{name}.safetensors", metadata, float_dtype=torch.float16 if half else None)
    checksums = zoo_checksums()
    checksums[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    text = "".join(f"{digest}  {entry}.safetensors\n" for entry, digest in sorted(checksums.items()))
    atomic_write(zoo_dir() / "SHA256SUMS", lambda tmp: tmp.write_text(text))
    return path

