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

SYSTEM_BUILDERS = {
    "ampsc": ("digisem.systems.ampsc", "AMPSC", "AMPSCConfig"),
    "jcm": ("digisem.systems.jcm", "JCM", "JCMConfig"),
    "scdm": ("digisem.systems.scdm", "SCDM", "SCDMConfig"),
    "vqvae": ("digisem.systems.vqvae", "MaskedVQVAE", "MaskedVQVAEConfig"),
}


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


SAMPLE_CHECKS = {
    "ampsc": {"snr_db": 6.0, "channel": "bsc", "seed": 0},
    "jcm": {"snr_db": 6.0, "channel": "awgn", "seed": 0},
    "scdm": {"snr_db": -6.0, "channel": "awgn", "seed": 0},
    "vqvae": {"snr_db": 3.0, "channel": "recorded link", "seed": 0},
}
"""Where a published model's score on the bundled samples is recorded (and re-checked by the tests):
AMP-SC over the BSC at Eb/N0 6 dB; JCM over AWGN at Es/N0 6 dB; SCDM (with its jointly trained
decoder, on its codec) over AWGN at Es/N0 -6 dB (PSNR); the masked VQ-VAE / JSCC classifiers over
their training link at Es/N0 3 dB (accuracy and mean probability of the true class)."""


def recorded_link(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The ``link`` section of the recipe a robust-semcom model was trained with (None: no link)."""
    if "link" in metadata:
        return metadata["link"]
    return metadata.get("results", {}).get("meta", {}).get("link")


def sample_score(model: nn.Module, metadata: dict[str, Any]) -> dict[str, float]:
    """Score of a loaded system on the bundled sample images at its :data:`SAMPLE_CHECKS` point:
    ``{"psnr": dB}`` for image systems, ``{"accuracy", "true_class_probability"}`` for classifiers."""
    import torch

    from ..data import sample_images
    from ..metrics import psnr

    system = metadata["system"]
    check = SAMPLE_CHECKS[system]
    generator = torch.Generator().manual_seed(check["seed"])
    if system == "vqvae":
        from ..train.robust import labelled_samples, make_link

        images, labels = labelled_samples().tensors
        with torch.no_grad():
            logits = model(images, snr_db=check["snr_db"], link=make_link(recorded_link(metadata)), generator=generator)["logits"]
        probability = torch.softmax(logits, 1).gather(1, labels[:, None]).mean()
        return {"accuracy": float((logits.argmax(1) == labels).float().mean()), "true_class_probability": float(probability)}
    images, _ = sample_images("cifar" if metadata["config"].get("preset", "cifar") == "cifar" else "kodak")
    with torch.no_grad():
        if system == "ampsc":
            from ..evaluate import make_image_link

            x_hat = make_image_link(check["channel"]).send(model, images, check["snr_db"], generator)["x_hat"]
        elif system == "jcm":
            x_hat = model(images, snr_db=check["snr_db"], generator=generator)["x_hat"]
        else:
            codec, _ = load(metadata["codec"])
            out = codec(images, snr_db=check["snr_db"], denoiser=model, generator=generator)
            x_hat = (model.decoder or codec.decoder)(out["restored"])[0]
    return {"psnr": float(psnr(x_hat, images, per_image=False))}


def publish(run_dir: str | Path, name: str, codec: str | None = None, half: bool = False) -> Path:
    """Copy a run's weights into the zoo as ``<name>.safetensors`` with its recorded results and a
    score on the bundled samples (:data:`SAMPLE_CHECKS`), and pin its sha256 in ``SHA256SUMS``.
    ``codec``: for an SCDM, the zoo name of the codec it denoises for (recorded in its metadata).
    ``half``: store floating-point weights as float16 (half the file); the sample PSNR is measured
    with the rounded weights, the recorded results are the run's (float32)."""
    import json

    import torch

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
    if metadata["system"] == "vqvae":
        metadata["link"] = recorded_link(metadata)
    metadata["sample_check"] = {**SAMPLE_CHECKS[metadata["system"]], **sample_score(model, metadata)}
    metadata["zoo_name"] = name
    metadata["licence"] = "Apache-2.0 (weights trained by digisem on CIFAR-10)"
    path = save_weights(model, zoo_dir() / f"{name}.safetensors", metadata, float_dtype=torch.float16 if half else None)
    checksums = zoo_checksums()
    checksums[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    text = "".join(f"{digest}  {entry}.safetensors\n" for entry, digest in sorted(checksums.items()))
    atomic_write(zoo_dir() / "SHA256SUMS", lambda tmp: tmp.write_text(text))
    return path

