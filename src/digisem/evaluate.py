"""SNR sweeps of image systems on a digital link -> per-SNR PSNR/SSIM/MS-SSIM (results JSON schema).

Channels (``channel`` argument), all with 16-QAM Gray by default and the SNR axis in Eb/N0 (dB), as
AMP-SC's Table IV and Fig. 5:

- ``"bsc"``: the paper's model, each bit flips with ``p`` = closed-form 16-QAM Gray BER at Eb/N0;
- ``"awgn"`` / ``"rayleigh"``: the real :class:`~digisem.link.BitLink` (map, channel, hard demap)
  at ``Es/N0 = Eb/N0 + 10 log10(bits per symbol)``;
- ``"none"``: error-free bits (quantization only);
- ``"analog"``: no quantization and no link at all (the model's ``"analog"`` mode): the upper bound
  of an analog system, AMP-SC's "Conventional" benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import metrics
from .io import derived_seed
from .link import BitLink, BSCLink, constellation_info, ebn0_to_esn0_db

EVAL_CHANNELS = ("bsc", "awgn", "rayleigh", "none", "analog")


class ImageLink(NamedTuple):
    """A link for image evaluation and how the Eb/N0 axis maps to its ``snr_db`` argument."""

    link: nn.Module
    esn0_offset_db: float | None
    """Added to Eb/N0 (dB) to get the link's ``snr_db``; None for a link that takes no SNR."""

    def snr_for(self, ebn0_db: float) -> float | None:
        """The ``snr_db`` to pass to the link at Eb/N0 = ``ebn0_db`` dB."""
        return None if self.esn0_offset_db is None else ebn0_db + self.esn0_offset_db

    def send(self, model: nn.Module, images: torch.Tensor, ebn0_db: float, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``model``'s digital-mode output for ``images [B, 3, H, W]`` over this link at Eb/N0 = ``ebn0_db`` dB."""
        return model(images, "digital", link=self.link, snr_db=self.snr_for(ebn0_db), generator=generator)


def make_image_link(channel: str, modulation: str = "16qam") -> ImageLink:
    """The link of an evaluation ``channel`` (see the module docstring), with its SNR mapping."""
    if channel == "bsc":
        return ImageLink(BSCLink(modulation=modulation, snr_kind="ebn0"), 0.0)
    if channel == "none":
        return ImageLink(BSCLink(p=0.0), None)
    if channel in ("awgn", "rayleigh"):
        bits_per_symbol = constellation_info(modulation).bits_per_symbol
        return ImageLink(BitLink(modulation, channel), float(ebn0_to_esn0_db(0.0, bits_per_symbol)))
    raise ValueError(f"unknown evaluation channel {channel!r}: use one of {EVAL_CHANNELS}")


@torch.no_grad()
def evaluate_images(
    model: nn.Module,
    dataset: Dataset,
    ebn0_db: list[float],
    channel: str = "bsc",
    *,
    batch_size: int = 100,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, list[float]]:
    """Send every image of ``dataset`` through ``model`` in digital mode at each Eb/N0 (dB) (analog
    mode, and the same numbers at every SNR, for ``channel="analog"``).

    ``model(x, "digital", link=..., snr_db=..., generator=...)`` must return ``x_hat`` and, for the
    bit error count, ``payload`` and ``received_payload``. Returns the ``results`` part of a results
    file: ``snr_db`` (Eb/N0), mean ``psnr`` (dB, mean of per-image PSNR), ``ssim``, ``ms_ssim`` and
    the measured ``ber`` of the payload bits. The same seed gives the same numbers.
    """
    image_link = None if channel == "analog" else make_image_link(channel)
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    curves: dict[str, list[float]] = {"snr_db": [float(s) for s in ebn0_db], "psnr": [], "ssim": [], "ms_ssim": [], "ber": []}
    num_bits = getattr(getattr(model, "quantizer", None), "num_bits", None)
    # without a link every SNR gives the same numbers: compute them once
    sweep = ebn0_db[:1] if image_link is None else ebn0_db
    with tqdm(total=len(sweep) * len(loader), desc=f"eval {channel}", disable=not progress, leave=False) as bar:
        for snr in sweep:
            generator = torch.Generator(device=device).manual_seed(derived_seed(seed, "eval", float(snr)))
            sums = {"psnr": 0.0, "ssim": 0.0, "ms_ssim": 0.0}
            bit_errors, bits, count = 0, 0, 0
            for batch in loader:
                images = (batch[0] if isinstance(batch, (list, tuple)) else batch).to(device)
                if image_link is None:
                    out = model(images, "analog")
                else:
                    out = image_link.send(model, images, float(snr), generator)
                sums["psnr"] += float(metrics.psnr(out["x_hat"], images).sum())
                sums["ssim"] += float(metrics.ssim(out["x_hat"], images).sum())
                sums["ms_ssim"] += float(metrics.ms_ssim(out["x_hat"], images).sum())
                count += images.shape[0]
                if num_bits and "received_payload" in out:
                    flipped = out["payload"] ^ out["received_payload"]
                    bit_errors += sum(int(((flipped >> i) & 1).sum()) for i in range(num_bits))
                    bits += flipped.numel() * num_bits
                bar.update(1)
            for key, total in sums.items():
                curves[key].append(total / count)
            curves["ber"].append(bit_errors / bits if bits else float("nan"))
            bar.set_postfix(snr=f"{snr:g}", psnr=f"{curves['psnr'][-1]:.2f}")
    if image_link is None:
        for key in ("psnr", "ssim", "ms_ssim", "ber"):
            curves[key] = curves[key] * len(ebn0_db)
    return curves


class SymbolTransmission(NamedTuple):
    """A test set sent through a symbol-level codec at one SNR (all ``[N, ...]``, on the CPU)."""

    images: torch.Tensor
    """``[N, 3, 32, 32]`` in [0, 1]."""
    sent: torch.Tensor
    """``[N, n], complex64``: unit-energy symbols as transmitted."""
    received: torch.Tensor
    """``[N, n], complex64``: after the AWGN channel."""
    restored: torch.Tensor
    """``[N, n], complex64``: after the denoiser (``received`` without one)."""


@torch.no_grad()
def transmit_symbols(
    codec: nn.Module,
    dataset: Dataset,
    esn0_db: float,
    denoiser: Callable[..., torch.Tensor] | None = None,
    *,
    batch_size: int = 100,
    seed: int = 0,
    bar: tqdm | None = None,
) -> SymbolTransmission:
    """Send every image of ``dataset`` through ``codec`` (``transmit`` and ``link``) at Es/N0 = ``esn0_db``
    dB per complex symbol, then through ``denoiser(received, snr_db, generator=...)`` if given. The
    channel and denoiser noise come from one generator seeded by ``(seed, snr)``."""
    codec.eval()
    generator = torch.Generator().manual_seed(derived_seed(seed, "eval", float(esn0_db)))
    parts: dict[str, list[torch.Tensor]] = {"images": [], "sent": [], "received": [], "restored": []}
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        sent = codec.transmit(images)
        received = codec.link(sent, float(esn0_db), generator).symbols
        restored = received if denoiser is None else denoiser(received, float(esn0_db), generator=generator)
        for key, value in zip(parts, (images, sent, received, restored)):
            parts[key].append(value)
        if bar is not None:
            bar.update(1)
    return SymbolTransmission(**{key: torch.cat(values) for key, values in parts.items()})


@torch.no_grad()
def score_symbol_transmission(transmission: SymbolTransmission, decoder: nn.Module, batch_size: int = 100) -> dict[str, float]:
    """Decode ``transmission.restored`` with ``decoder`` and score it: mean ``psnr`` (dB, per image),
    ``ssim``, ``ms_ssim``, ``latent_mse`` (mean ``|restored - sent|^2`` per complex symbol, unit-energy
    symbols: the SCDM paper's Fig. 3 quantity) and ``latent_mse_channel`` (the same for ``received``)."""
    decoder.eval()
    sums = {"psnr": 0.0, "ssim": 0.0, "ms_ssim": 0.0}
    for images, restored in zip(transmission.images.split(batch_size), transmission.restored.split(batch_size)):
        x_hat = decoder(restored)[0]
        sums["psnr"] += float(metrics.psnr(x_hat, images).sum())
        sums["ssim"] += float(metrics.ssim(x_hat, images).sum())
        sums["ms_ssim"] += float(metrics.ms_ssim(x_hat, images).sum())
    count = transmission.images.shape[0]
    scores = {key: total / count for key, total in sums.items()}
    scores["latent_mse"] = float((transmission.restored - transmission.sent).abs().pow(2).mean())
    scores["latent_mse_channel"] = float((transmission.received - transmission.sent).abs().pow(2).mean())
    return scores


def evaluate_symbol_system(
    codec: nn.Module,
    dataset: Dataset,
    esn0_db: list[float],
    *,
    denoiser: Callable[..., torch.Tensor] | None = None,
    decoder: nn.Module | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
    label: str = "eval",
) -> dict[str, list[float]]:
    """SNR sweep of a symbol-level codec (JCM) over AWGN, with an optional denoiser before the decoder.

    ``codec`` provides ``transmit(x) -> [B, n] complex`` (unit energy per example), ``link(symbols,
    snr_db, generator)`` and ``decoder(symbols) -> (x_hat, class_logits)``; ``decoder`` replaces the
    codec's (e.g. SCDM's jointly trained one). ``esn0_db`` is Es/N0 in dB per complex symbol.
    Returns the ``results`` part of a results file: ``snr_db`` and, per SNR, the scores of
    :func:`score_symbol_transmission`. The same seed gives the same numbers.
    """
    keys = ("psnr", "ssim", "ms_ssim", "latent_mse", "latent_mse_channel")
    curves: dict[str, list[float]] = {"snr_db": [float(s) for s in esn0_db], **{key: [] for key in keys}}
    batches = -(-len(dataset) // batch_size)
    with tqdm(total=len(esn0_db) * batches, desc=label, disable=not progress, leave=False) as bar:
        for snr in esn0_db:
            transmission = transmit_symbols(codec, dataset, snr, denoiser, batch_size=batch_size, seed=seed, bar=bar)
            scores = score_symbol_transmission(transmission, decoder or codec.decoder, batch_size)
            for key in keys:
                curves[key].append(scores[key])
            bar.set_postfix(snr=f"{snr:g}", psnr=f"{curves['psnr'][-1]:.2f}")
    return curves


def evaluate_classification(
    model: nn.Module,
    dataset: Dataset,
    snrs: list[float],
    link: nn.Module | None = None,
    *,
    attack: Callable[..., torch.Tensor] | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Classification accuracy of ``model(x, snr_db=..., link=..., generator=...)["logits"]`` over an SNR sweep.

    ``dataset`` yields ``(image, label)``; ``snrs`` are in the link's convention (Es/N0 in dB per
    complex symbol for a :class:`~digisem.link.BitLink`); without a link every SNR gives the same
    numbers. ``attack(loss_fn, images, generator)`` (transmitter-side semantic noise, computed once
    per image against the model without the channel) adds ``accuracy_attacked``. Returns the
    ``results`` part of a results file. The same seed gives the same numbers.
    """
    return _robust_sweep(model, dataset, snrs, link, "accuracy", attack=attack, batch_size=batch_size, seed=seed, progress=progress)


def evaluate_reconstruction(
    model: nn.Module,
    dataset: Dataset,
    snrs: list[float],
    link: nn.Module | None = None,
    *,
    attack: Callable[..., torch.Tensor] | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Mean PSNR (dB, per image, data range 1) of ``model(x, ...)["x_hat"]`` against the clean images
    over an SNR sweep; as :func:`evaluate_classification` (``dataset`` yields ``(image, label)``,
    labels unused), the attack maximizing the reconstruction MSE adds ``psnr_attacked``."""
    return _robust_sweep(model, dataset, snrs, link, "psnr", attack=attack, batch_size=batch_size, seed=seed, progress=progress)


def _robust_sweep(model: nn.Module, dataset: Dataset, snrs: list[float], link: nn.Module | None, metric: str, *,
                  attack: Callable[..., torch.Tensor] | None, batch_size: int, seed: int, progress: bool) -> dict[str, list[float]]:
    """Sum ``metric`` (accuracy or PSNR) over the dataset at each SNR, clean and (with ``attack``) attacked."""
    model.eval()
    generators = {snr: torch.Generator().manual_seed(derived_seed(seed, "eval", float(snr))) for snr in snrs}
    attack_generator = torch.Generator().manual_seed(derived_seed(seed, "attack"))
    totals = {snr: 0.0 for snr in snrs}
    attacked = {snr: 0.0 for snr in snrs}
    count = 0

    def task_loss(x: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = model(x, generator=attack_generator)
        if metric == "accuracy":
            return F.cross_entropy(out["logits"], labels, reduction="none")
        return (out["x_hat"] - images).pow(2).flatten(1).mean(1)

    def score(x: torch.Tensor, images: torch.Tensor, labels: torch.Tensor, snr: float) -> float:
        out = model(x, snr_db=float(snr) if link is not None else None, link=link, generator=generators[snr])
        if metric == "accuracy":
            return float((out["logits"].argmax(1) == labels).sum())
        return float(metrics.psnr(out["x_hat"], images).sum())

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for images, labels in tqdm(loader, desc=f"eval {metric}", disable=not progress, leave=False):
        adversarial = None
        if attack is not None:
            adversarial = attack(lambda x, images=images, labels=labels: task_loss(x, images, labels), images, attack_generator)
        with torch.no_grad():
            for snr in snrs:
                totals[snr] += score(images, images, labels, snr)
                if adversarial is not None:
                    attacked[snr] += score(adversarial, images, labels, snr)
        count += labels.shape[0]
    curves = {"snr_db": [float(s) for s in snrs], metric: [totals[s] / count for s in snrs]}
    if attack is not None:
        curves[f"{metric}_attacked"] = [attacked[s] / count for s in snrs]
    return curves


def evaluation_dataset(preset: str, data: str | None, limit: int | None) -> tuple[Dataset, str]:
    """The test images for a model preset and a ``--data`` argument, with a description for results files.

    ``data="samples"``: the bundled sample images (no data folder needed); otherwise ``data`` (or
    ``$DIGISEM_DATA``) is a data root: CIFAR-10 test split for the ``cifar`` preset, Kodak24 (256x256
    center crops) for ``hr``.
    """
    from .data import CIFAR10, Kodak24, sample_images

    if data == "samples":
        images, _ = sample_images("cifar" if preset == "cifar" else "kodak")
        return torch.utils.data.TensorDataset(images[:limit]), "bundled sample images"
    if preset == "cifar":
        dataset = CIFAR10(data, split="test", limit=limit)
        return dataset, "CIFAR-10 test" + (" (JPEG copy)" if dataset.source == "folder" else "")
    return Kodak24(data, crop=256, limit=limit), "Kodak24 (256x256 center crops)"


def average_over(curves: dict[str, Any], key: str, low: float, high: float) -> float:
    """Mean of ``curves[key]`` over the SNR points in ``[low, high]`` dB (e.g. the paper's 0-18 dB average)."""
    values = [v for s, v in zip(curves["snr_db"], curves[key]) if low <= s <= high]
    if not values:
        raise ValueError(f"no SNR points in [{low}, {high}] dB")
    return sum(values) / len(values)
