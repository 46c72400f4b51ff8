"""Analyses of the robust semantic communication paper (masked VQ-VAE, Figs. 4-10, Table I) on any
trained classifier of :mod:`digisem.systems.vqvae` (digital masked VQ-VAE or analog JSCC).

- :func:`accuracy_vs_epsilon` (Fig. 6) and :func:`accuracy_vs_keep_ratio` (Fig. 7, the reserving ratio
  changed at test time) over one link at one SNR, both :func:`digisem.evaluate.sweep` points.
- :func:`receiver_noise_accuracy` (Fig. 8, analog JSCC: Algorithm 1's universal perturbation at the
  receiver) and :func:`receiver_interference_accuracy` (Fig. 8, digital: a same-power Gaussian
  interferer), over block-fading eigenmodes (:func:`interfered_eigenmodes`: :class:`~digisem.link.MIMO`,
  ``detector="svd"``, ``block=True``, the attacker as the channel's ``interference``).
- :func:`feature_activation_frequency` (Fig. 9) and :func:`codebook_similarity` (Fig. 10).
- :func:`noise_masking_weights`: where semantic noise concentrates, per patch (for noise-related masking).
- :func:`embeddings`: the decoder's pooled output, for retrieval (score it with
  :func:`digisem.metrics.recall_at_k`).
- :func:`jpeg_link_classification`: the JPEG+LDPC baseline (JPEG payload over a bit link, then a classifier).

Channel symbols per image (Table I, measured) are every system's ``channel_uses_per_image`` output
(or a bit link's ``channel_uses(bits)``).

SNRs are Es/N0 in dB per complex channel symbol; ``epsilon`` is an L-infinity budget on images in [0, 1].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from .attacks import universal_receiver_noise
from .evaluate import sweep
from .link import MIMO, BitLink, SymbolLink, from_spec
from .link.channel import complex_normal
from .link.errors import InputError
from .link.ldpc import LDPC5GCode
from .systems.classical import (
    bits_to_bytes,
    bytes_to_bits,
    decode_jpeg_payload,
    jpeg_for_budget,
)

Attack = Callable[..., torch.Tensor]
"""``attack(loss_fn, images, generator) -> images'`` (see :func:`digisem.attacks.from_spec`)."""
Interferer = Callable[[int, torch.Generator], torch.Tensor]
"""``interferer(batch, generator) -> [B, Nr, T]`` complex: what an attacker adds at the receive antennas."""


def _first_batch(dataset: Dataset, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = next(iter(DataLoader(dataset, batch_size=count, shuffle=False)))
    return images, labels


def accuracy_vs_epsilon(model: nn.Module, dataset: Dataset, link: Any, snr_db: float, epsilons: list[float],
                        make_attack: Callable[[float], Attack | None], *, batch_size: int = 100, seed: int = 0) -> dict[str, list[float]]:
    """Fig. 6: accuracy at one SNR under semantic noise of each budget.

    Parameters
    ----------
    model : System
        A classifier (``logits``).
    dataset : Dataset
        ``(image, label)`` pairs.
    link : link module, spec or None
        E.g. the model's recorded link (:func:`digisem.zoo.recorded_link`); None: no channel.
    snr_db : float
        Es/N0 (dB).
    epsilons : list of float
        L-infinity budgets.
    make_attack : callable
        ``make_attack(epsilon)`` -> the attack of that budget (None for 0).

    Output
    ------
    ``{"epsilon": [...], "accuracy": [...]}``: :func:`~digisem.evaluate.sweep`'s ``accuracy_attacked``
    (``accuracy`` where there is no attack) at ``snr_db``.
    """
    accuracy = []
    for epsilon in epsilons:
        attack = make_attack(epsilon)
        curves = sweep(model, link, [snr_db], dataset, attack=attack, batch_size=batch_size, seed=seed, progress=False)
        accuracy.append(curves["accuracy_attacked" if attack is not None else "accuracy"][0])
    return {"epsilon": [float(e) for e in epsilons], "accuracy": accuracy}


def with_keep_ratio(model: nn.Module, keep_ratio: float) -> nn.Module:
    """The same model (shared weights, :meth:`~digisem.systems.base.System.with_parts`) sending a
    fraction ``keep_ratio`` in (0, 1] of its patches; the original is unchanged."""
    if not 0 < keep_ratio <= 1:
        raise InputError(f"keep_ratio (the reserving ratio) must lie in (0, 1], got {keep_ratio}")
    clone = model.with_parts()
    clone.config = dataclasses.replace(model.config, mask_ratio=1 - keep_ratio)
    return clone


def accuracy_vs_keep_ratio(model: nn.Module, dataset: Dataset, link: Any, snr_db: float, keep_ratios: list[float], epsilons: list[float],
                           make_attack: Callable[[float], Attack | None], *, batch_size: int = 100, seed: int = 0) -> dict[str, Any]:
    """Fig. 7: accuracy vs the reserving ratio (fraction of patches sent), one curve per budget.

    The model keeps its weights; only the number of patches it encodes and sends changes
    (:func:`with_keep_ratio`). Arguments as :func:`accuracy_vs_epsilon`.

    Output
    ------
    ``{"keep_ratio": [...], "accuracy": {str(epsilon): [...]}}``
    """
    curves: dict[str, list[float]] = {str(float(e)): [] for e in epsilons}
    for keep_ratio in keep_ratios:
        variant = with_keep_ratio(model, keep_ratio)
        result = accuracy_vs_epsilon(variant, dataset, link, snr_db, epsilons, make_attack, batch_size=batch_size, seed=seed)
        for epsilon, value in zip(epsilons, result["accuracy"]):
            curves[str(float(epsilon))].append(value)
    return {"keep_ratio": [float(r) for r in keep_ratios], "accuracy": curves}


def codebook_similarity(codebook: torch.Tensor) -> torch.Tensor:
    """Fig. 10: cosine similarities between the basis vectors of ``codebook : [J, D]`` -> ``[J, J]``
    (e.g. ``model.digitizer.codebook``)."""
    normalized = F.normalize(codebook.detach(), dim=1)
    return normalized @ normalized.T


def feature_activation_frequency(model: nn.Module, images: torch.Tensor, snr_db: float = 0.0, threshold: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Fig. 9: how often each feature of the last encoder layer is activated.

    Input
    -----
    model : MaskedVQVAE
    images : [B, 3, H, W] in [0, 1]
    snr_db : float
        The FIMs' SNR input (Es/N0, dB); no channel is used.
    threshold : float
        A feature is activated on a token when its value exceeds it.
    seed : int
        Seeds the call's generator (which patches are kept).

    Output
    ------
    ``[width]`` in [0, 1]: the fraction of kept tokens of ``images`` on which each feature of the
    last encoder block's output (after its FIM's re-weighting, if any; the input of the encoder's
    final norm) is activated. Compare clean and attacked images, with and without FIM.
    """
    captured: list[torch.Tensor] = []
    hook = model.encoder.norm.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0]))
    try:
        with torch.no_grad():
            model.eval()(images, snr_db=snr_db, generator=torch.Generator().manual_seed(seed))
    finally:
        hook.remove()
    return (captured[0] > threshold).float().mean((0, 1))


def noise_masking_weights(model: nn.Module, images: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Where semantic noise concentrates: mean absolute perturbation per patch, ``[N]``, from
    ``images`` and their attacked versions ``perturbed`` (both ``[B, 3, H, W]``), for noise-related
    masking (``masking_weights`` of :func:`~digisem.systems.vqvae.keep_patches`)."""
    if images.shape != perturbed.shape:
        raise InputError(f"images and perturbed must have the same shape, got {tuple(images.shape)} and {tuple(perturbed.shape)}")
    return model.patchify(perturbed - images).abs().mean((0, 2))


def embeddings(model: nn.Module, dataset: Dataset, snr_db: float | None = None, link: Any = None, batch_size: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Retrieval embeddings: the input of the model's ``head`` (the receiver's decoder output
    averaged over patches), ``[n, width]``, with the labels ``[n]``, over ``link`` (module, spec or
    None) at ``snr_db`` (in the link's convention). Score with :func:`digisem.metrics.recall_at_k`."""
    generator = torch.Generator().manual_seed(seed)
    captured: list[torch.Tensor] = []
    hook = model.head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    labels = []
    model.eval()
    try:
        with torch.no_grad():
            for images, batch_labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                model(images, snr_db=snr_db, link=link, generator=generator)
                labels.append(batch_labels)
    finally:
        hook.remove()
    return torch.cat(captured), torch.cat(labels)


def jpeg_link_classification(classifier: Callable[[torch.Tensor], torch.Tensor], dataset: Dataset, snrs: list[float], link: Any, max_bits: int, *,
                             attack: Attack | None = None, batch_size: int = 100, seed: int = 0) -> dict[str, Any]:
    """The JPEG+LDPC baseline: JPEG payloads over a bit link, then a classifier.

    Parameters
    ----------
    classifier : callable
        ``classifier(images [B, 3, H, W]) -> logits [B, classes]``.
    dataset : Dataset
        ``(image, label)`` pairs.
    snrs : list of float
        Es/N0 (dB) per complex channel symbol.
    link : BitLink or spec
        E.g. ``"16qam-mimo-8x4-svd-ldpc-1/2"``; its ``transmit_bits`` carries each payload.
    max_bits : int
        Each image's JPEG payload is the highest quality within ``max_bits`` (headers shared, see
        :func:`~digisem.systems.classical.split_jpeg`).
    attack : callable, optional
        ``attack(loss_fn, images, generator)`` against the classifier, before JPEG; adds
        ``accuracy_attacked``.

    Output
    ------
    The ``results`` curves (``snr_db``, ``accuracy``[, ``accuracy_attacked``]), the fraction of
    undecodable files per curve (``failed_<curve>``; an undecodable file counts as a wrong label),
    and the mean ``payload_bits`` and JPEG ``quality`` over the images sent.
    """
    link = from_spec(link)
    keys = ("accuracy",) + (("accuracy_attacked",) if attack is not None else ())
    correct = {key: [0] * len(snrs) for key in keys}
    failures = {key: [0] * len(snrs) for key in keys}
    qualities, payload_bits, count = [], [], 0
    attack_generator = torch.Generator().manual_seed(seed)
    generators = [torch.Generator().manual_seed(seed + 1 + index) for index in range(len(snrs))]
    for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        versions = {"accuracy": images}
        if attack is not None:
            versions["accuracy_attacked"] = attack(lambda x, targets=labels: F.cross_entropy(classifier(x), targets, reduction="none"), images, attack_generator).detach()
        for key, batch in versions.items():
            encoded = [jpeg_for_budget(image, max_bits, payload_only=True) for image in batch]
            qualities += [quality for _, quality in encoded]
            bits = [bytes_to_bits(payload) for payload, _ in encoded]
            payload_bits += [b.numel() for b in bits]
            length = max(b.numel() for b in bits)
            padded = torch.stack([F.pad(b, (0, length - b.numel())) for b in bits]).long()
            for index, snr in enumerate(snrs):
                received_bits = link.transmit_bits(padded, snr, generators[index])
                decoded = [decode_jpeg_payload(bits_to_bytes(row[:b.numel()]), tuple(images.shape[2:]), quality)
                           for row, b, (_, quality) in zip(received_bits, bits, encoded)]
                ok = [image is not None for image in decoded]
                failures[key][index] += ok.count(False)
                if any(ok):
                    with torch.no_grad():
                        predicted = classifier(torch.stack([image for image in decoded if image is not None])).argmax(1)
                    correct[key][index] += int((predicted == labels[torch.tensor(ok)]).sum())
        count += labels.shape[0]
    results: dict[str, Any] = {"snr_db": [float(s) for s in snrs]}
    for key in keys:
        results[key] = [value / count for value in correct[key]]
        results[f"failed_{key}"] = [value / count for value in failures[key]]
    results["payload_bits"] = sum(payload_bits) / len(payload_bits)
    results["quality"] = sum(qualities) / len(qualities)
    return results


def interfered_eigenmodes(num_tx: int, num_rx: int, interferer: Interferer | None, seed: int) -> MIMO:
    """The block-fading eigenmode channel of Fig. 8, with an attacker at the receiver (eq. 8).

    Parameters
    ----------
    num_tx, num_rx : int
        Antennas of the transmitter and the receiver (``min(Nt, Nr)`` streams).
    interferer : callable or None
        ``interferer(batch, generator) -> [B, Nr, T]`` complex, added at the receive antennas
        before combining (None: no interferer).
    seed : int
        Seeds the interferer's own generator (the channel's draws stay those of the call's generator).

    Output
    ------
    :class:`~digisem.link.MIMO` (``detector="svd"``, ``block=True``, ``interference`` set), for a
    :class:`~digisem.link.BitLink` or :class:`~digisem.link.SymbolLink`.
    """
    if interferer is None:
        return MIMO(num_tx, num_rx, "svd", block=True)
    generator = torch.Generator().manual_seed(seed)
    return MIMO(num_tx, num_rx, "svd", block=True, interference=lambda y: interferer(y.shape[0], generator).transpose(1, 2))


def _attacker_signal(antennas: int, num_rx: int, perturbation: Callable[[int, torch.Generator], torch.Tensor]) -> Interferer:
    """``H_a dx`` with a fresh ``H_a : [B, Nr, antennas]`` ~ CN(0, 1) per image and ``dx =
    perturbation(batch, generator) : [antennas, T]`` or ``[B, antennas, T]``."""

    def signal(batch: int, generator: torch.Generator) -> torch.Tensor:
        dx = perturbation(batch, generator)
        return complex_normal((batch, num_rx, antennas), dx, generator) @ dx

    return signal


def _gaussian_perturbation(antennas: int, uses: int, norm: float) -> Callable[[int, torch.Generator], torch.Tensor]:
    """Per image, a complex Gaussian ``dx : [antennas, uses]`` scaled to L2 norm ``norm`` (energy ``norm^2``)."""

    def perturbation(batch: int, generator: torch.Generator) -> torch.Tensor:
        dx = torch.randn((batch, antennas, uses), dtype=torch.complex64, generator=generator)
        return norm * dx / dx.flatten(1).norm(dim=1)[:, None, None]

    return perturbation


def receiver_noise_accuracy(model: nn.Module, dataset: Dataset, snr_db: float, ssnr_db: list[float], *, num_tx: int = 8, num_rx: int = 4, attacker_antennas: int = 8,
                            samples: int = 64, steps: int = 5, batch_size: int = 100, seed: int = 0) -> dict[str, list[float]]:
    """Fig. 8 for an analog (JSCC, ``mask_ratio`` 0) classifier: sample-independent semantic noise
    at its receiver, over block-fading eigenmodes (:func:`interfered_eigenmodes`).

    Parameters
    ----------
    model : MaskedVQVAE
        ``transmission="analog"``, ``mask_ratio=0`` (Algorithm 1 needs a differentiable receiver
        that sees every patch).
    dataset : Dataset
        ``(image, label)`` pairs; the first ``samples`` build the perturbation, all are scored.
    snr_db : float
        Es/N0 (dB) per transmitted symbol per receive antenna.
    ssnr_db : list of float
        Signal-to-semantic-noise ratios (dB): energy of an image's transmitted symbols over the
        attacker's energy.
    num_tx, num_rx, attacker_antennas : int
        Antennas of the transmitter, the receiver and the attacker.
    steps : int
        Algorithm 1's iterations K per sample (step ``1.25 epsilon / K``).

    Output
    ------
    ``{"ssnr_db", "accuracy_universal", "accuracy_gaussian", "accuracy_clean"}``, lists over ``ssnr_db``.

    Note
    ----
    For each ratio, Algorithm 1 (:func:`~digisem.attacks.universal_receiver_noise`) builds one
    perturbation ``dx [attacker_antennas, T]`` from what the first ``samples`` images deliver at the
    receive antennas (:meth:`~digisem.link.MIMO.transmit_eigenmodes`, receiver
    :meth:`~digisem.link.MIMO.combine`), with attacker channels ``H_a`` drawn i.i.d. CN(0, 1);
    every test image then receives ``H_a dx`` through a fresh ``H_a``. A complex Gaussian ``dx`` of
    the same energy is the non-adversarial reference. Each accuracy is a
    :func:`~digisem.evaluate.sweep` point (the same channel draws for every interferer).
    """
    config = model.config
    if config.transmission != "analog" or config.mask_ratio != 0:
        raise InputError("receiver-side universal noise needs a differentiable receiver that sees every patch: an analog model with mask_ratio 0 (the JSCC baseline)")
    model.eval()
    channel = MIMO(num_tx, num_rx, "svd", block=True)
    images, labels = _first_batch(dataset, samples)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sent = model(images, snr_db=snr_db, generator=generator)
        modes = channel.transmit_eigenmodes(sent["payload"], snr_db, generator)
    received = modes.received.transpose(1, 2)
    symbols, uses = sent["payload"].shape[1], received.shape[2]

    def receiver_loss(y: torch.Tensor) -> torch.Tensor:
        detected = channel.combine(y.transpose(1, 2), modes).symbols
        hidden = model.decoder(model.digitizer.from_payload(detected, sent["features"].shape), sent["kept"])
        return F.cross_entropy(model.head(hidden.mean(1)), labels, reduction="none")

    def accuracy(interferer: Interferer | None) -> float:
        link = SymbolLink(interfered_eigenmodes(num_tx, num_rx, interferer, seed + 2), normalize=False)
        return sweep(model, link, [snr_db], dataset, batch_size=batch_size, seed=seed, progress=False)["accuracy"][0]

    results: dict[str, list[float]] = {"ssnr_db": [float(s) for s in ssnr_db], "accuracy_universal": [], "accuracy_gaussian": []}
    attacker_channels = complex_normal((images.shape[0], num_rx, attacker_antennas), received, torch.Generator().manual_seed(seed + 3))
    for ratio in ssnr_db:
        epsilon = (symbols / 10 ** (ratio / 10)) ** 0.5
        perturbation = universal_receiver_noise(receiver_loss, received, attacker_channels, epsilon, 1.25 * epsilon / steps, steps)
        results["accuracy_universal"].append(accuracy(_attacker_signal(attacker_antennas, num_rx, lambda batch, generator, dx=perturbation: dx)))
        results["accuracy_gaussian"].append(accuracy(_attacker_signal(attacker_antennas, num_rx, _gaussian_perturbation(attacker_antennas, uses, epsilon))))
    results["accuracy_clean"] = [accuracy(None)] * len(ssnr_db)
    return results


def receiver_interference_accuracy(model: nn.Module, dataset: Dataset, snr_db: float, ssnr_db: list[float], *, modulation: str = "16qam", code: str | None = "ldpc-1/2",
                                   num_tx: int = 8, num_rx: int = 4, attacker_antennas: int = 8, batch_size: int = 100, seed: int = 0) -> dict[str, list[float]]:
    """Fig. 8 for a digital (masked VQ-VAE) system: a complex Gaussian perturbation from an
    ``attacker_antennas``-antenna interferer at the receiver, over block-fading eigenmodes
    (:func:`interfered_eigenmodes`) carrying ``modulation`` with ``code`` (``"ldpc-<rate>"``,
    ``k`` = 512, or None).

    Parameters as :func:`receiver_noise_accuracy`; the interferer's energy per image is the
    transmitted symbols' energy (the model's ``channel_uses_per_image`` on this link) over
    ``10^(ssnr/10)``.

    Output
    ------
    ``{"ssnr_db", "accuracy_gaussian", "accuracy_clean"}``, lists over ``ssnr_db``.

    Note
    ----
    Algorithm 1 needs gradients through the receiver, which hard decisions and LDPC decoding do
    not give: the digital system meets the same-power non-adversarial perturbation.
    """
    channel_code = LDPC5GCode.from_spec(code) if code else None

    def link(interferer: Interferer | None) -> BitLink:
        return BitLink(modulation, interfered_eigenmodes(num_tx, num_rx, interferer, seed + 2), code=channel_code)

    images, _ = _first_batch(dataset, 1)
    with torch.no_grad():
        symbols = model.eval()(images, snr_db=snr_db, link=link(None), generator=torch.Generator().manual_seed(seed))["channel_uses_per_image"]
    uses = symbols // min(num_tx, num_rx)

    def accuracy(energy: float | None) -> float:
        interferer = None if energy is None else _attacker_signal(attacker_antennas, num_rx, _gaussian_perturbation(attacker_antennas, uses, energy ** 0.5))
        return sweep(model, link(interferer), [snr_db], dataset, batch_size=batch_size, seed=seed, progress=False)["accuracy"][0]

    return {"ssnr_db": [float(s) for s in ssnr_db], "accuracy_gaussian": [accuracy(symbols / 10 ** (ratio / 10)) for ratio in ssnr_db],
            "accuracy_clean": [accuracy(None)] * len(ssnr_db)}
