"""Analyses of the robust semantic communication paper (masked VQ-VAE, Figs. 4-10, Table I) on any
trained classifier of :mod:`digisem.systems.vqvae` (digital masked VQ-VAE or analog JSCC).

- :func:`accuracy_vs_epsilon` (Fig. 6) and :func:`accuracy_vs_keep_ratio` (Fig. 7, the reserving ratio
  changed at test time) over one link at one SNR.
- :func:`receiver_noise_accuracy` (Fig. 8, analog JSCC: Algorithm 1's universal perturbation at the
  receiver) and :func:`receiver_interference_accuracy` (Fig. 8, digital: a same-power Gaussian interferer).
- :func:`feature_activation_frequency` (Fig. 9) and :func:`codebook_similarity` (Fig. 10).
- :func:`noise_masking_weights`: where semantic noise concentrates, per patch (for noise-related masking).
- :func:`retrieval_recall_at_1`: nearest-neighbour retrieval by class on the decoder's embeddings.
- :func:`jpeg_link_classification`: the JPEG+LDPC baseline (JPEG payload over a bit link, then a classifier).
- :func:`symbols_sent`: channel symbols per image as counted at the channel's input (Table I, measured).

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

from .evaluate import evaluate_classification
from .systems.classical import (
    bits_to_bytes,
    bytes_to_bits,
    decode_jpeg_payload,
    jpeg_for_budget,
)


def _first_batch(dataset: Dataset, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = next(iter(DataLoader(dataset, batch_size=count, shuffle=False)))
    return images, labels


def accuracy_vs_epsilon(model: nn.Module, dataset: Dataset, link: nn.Module | None, snr_db: float, epsilons: list[float],
                        make_attack: Callable[[float], Callable[..., torch.Tensor] | None], *, batch_size: int = 100, seed: int = 0) -> dict[str, list[float]]:
    """Fig. 6: accuracy at Es/N0 ``snr_db`` under semantic noise of each budget in ``epsilons``.

    ``make_attack(epsilon)`` returns the attack for that budget (None for 0). Returns
    ``{"epsilon": [...], "accuracy": [...]}``.
    """
    accuracy = []
    for epsilon in epsilons:
        attack = make_attack(epsilon)
        curves = evaluate_classification(model, dataset, [snr_db], link, attack=attack, batch_size=batch_size, seed=seed, progress=False)
        accuracy.append(curves["accuracy_attacked" if attack is not None else "accuracy"][0])
    return {"epsilon": [float(e) for e in epsilons], "accuracy": accuracy}


def with_keep_ratio(model: nn.Module, keep_ratio: float) -> nn.Module:
    """The same model (shared weights) sending a fraction ``keep_ratio`` in (0, 1] of its patches."""
    if not 0 < keep_ratio <= 1:
        raise ValueError(f"keep_ratio (the reserving ratio) must lie in (0, 1], got {keep_ratio}")
    clone = _shallow_copy(model)
    clone.config = dataclasses.replace(model.config, mask_ratio=1 - keep_ratio)
    return clone


def _shallow_copy(model: nn.Module) -> nn.Module:
    clone = object.__new__(type(model))
    clone.__dict__ = dict(model.__dict__)
    return clone


def accuracy_vs_keep_ratio(model: nn.Module, dataset: Dataset, link: nn.Module | None, snr_db: float, keep_ratios: list[float], epsilons: list[float],
                           make_attack: Callable[[float], Callable[..., torch.Tensor] | None], *, batch_size: int = 100, seed: int = 0) -> dict[str, Any]:
    """Fig. 7: accuracy vs the reserving ratio (fraction of patches sent), one curve per budget.

    The model keeps its weights; only the number of patches it encodes and sends changes. Returns
    ``{"keep_ratio": [...], "accuracy": {str(epsilon): [...]}}``.
    """
    curves: dict[str, list[float]] = {str(float(e)): [] for e in epsilons}
    for keep_ratio in keep_ratios:
        variant = with_keep_ratio(model, keep_ratio)
        result = accuracy_vs_epsilon(variant, dataset, link, snr_db, epsilons, make_attack, batch_size=batch_size, seed=seed)
        for epsilon, value in zip(epsilons, result["accuracy"]):
            curves[str(float(epsilon))].append(value)
    return {"keep_ratio": [float(r) for r in keep_ratios], "accuracy": curves}


def codebook_similarity(codebook: torch.Tensor) -> torch.Tensor:
    """Fig. 10: cosine similarities between the basis vectors of ``codebook : [J, D]`` -> ``[J, J]``."""
    normalized = F.normalize(codebook.detach(), dim=1)
    return normalized @ normalized.T


def _encoder_tokens(model: nn.Module, images: torch.Tensor, snr_db: float, generator: torch.Generator | None) -> torch.Tensor:
    """The tokens leaving the last encoder block (after its FIM, when the model has one): ``[B, K, width]``."""
    config = model.config
    patches = model.patchify(images)
    from .systems.vqvae import keep_patches

    kept = keep_patches(images.shape[0], config.patches, config.mask_ratio, None, generator)
    tokens = torch.gather(model.encoder.embed(patches) + model.encoder.position, 1, kept[:, :, None].expand(-1, -1, config.width))
    for index, block in enumerate(model.encoder.blocks):
        tokens = block(tokens)
        if str(index) in model.fims:
            tokens = model.fims[str(index)](tokens, snr_db)["features"]
    return tokens


def feature_activation_frequency(model: nn.Module, images: torch.Tensor, snr_db: float = 0.0, threshold: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Fig. 9: how often each feature of the last encoder layer is activated: ``[width]`` in [0, 1].

    A feature is activated on a token when its value (after the FIM's re-weighting, if any) exceeds
    ``threshold``; the frequency is over all kept tokens of ``images : [B, 3, H, W]``. Compare clean
    and attacked images, with and without FIM.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        tokens = _encoder_tokens(model.eval(), images, snr_db, generator)
    return (tokens > threshold).float().mean((0, 1))


def noise_masking_weights(model: nn.Module, images: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Where semantic noise concentrates: mean absolute perturbation per patch, ``[N]``, from
    ``images`` and their attacked versions ``perturbed`` (both ``[B, 3, H, W]``), for noise-related
    masking (``masking_weights`` of :func:`~digisem.systems.vqvae.keep_patches`)."""
    if images.shape != perturbed.shape:
        raise ValueError(f"images and perturbed must have the same shape, got {tuple(images.shape)} and {tuple(perturbed.shape)}")
    return model.patchify(perturbed - images).abs().mean((0, 2))


def embeddings(model: nn.Module, dataset: Dataset, snr_db: float | None = None, link: nn.Module | None = None, batch_size: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Retrieval embeddings: the receiver's decoder output averaged over patches, ``[n, width]``, with the labels ``[n]``."""
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


def retrieval_recall_at_1(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Recall@1 of nearest-neighbour retrieval by class: the fraction of items whose nearest other item
    (cosine similarity of ``features : [n, d]``) has the same label (``labels : [n]``)."""
    if features.shape[0] != labels.shape[0] or features.shape[0] < 2:
        raise ValueError(f"need at least 2 items with one label each, got features {tuple(features.shape)} and labels {tuple(labels.shape)}")
    normalized = F.normalize(features.float(), dim=1)
    similarity = normalized @ normalized.T
    similarity.fill_diagonal_(-float("inf"))
    return float((labels[similarity.argmax(1)] == labels).float().mean())


class SymbolCounter(nn.Module):
    """Wraps a channel and counts the complex symbols per example that go through it (Table I, measured)."""

    def __init__(self, channel: nn.Module):
        super().__init__()
        self.channel = channel
        self.symbols_per_example = 0

    @property
    def symbols_multiple(self) -> int:
        """The wrapped channel's symbols per channel use (links pad payloads to a multiple of it)."""
        return getattr(self.channel, "symbols_multiple", 1)

    def forward(self, x: torch.Tensor, snr_db, generator=None):
        self.symbols_per_example = x.shape[1]
        return self.channel(x, snr_db, generator)


def symbols_sent(send: Callable[[nn.Module], Any], link: nn.Module) -> int:
    """Complex channel symbols per example that ``send(link)`` puts on ``link``'s channel."""
    counter = SymbolCounter(link.channel)
    original, link.channel = link.channel, counter
    try:
        send(link)
    finally:
        link.channel = original
    return counter.symbols_per_example


def jpeg_link_classification(classifier: Callable[[torch.Tensor], torch.Tensor], dataset: Dataset, snrs: list[float], link: nn.Module, max_bits: int, *,
                             attack: Callable[..., torch.Tensor] | None = None, batch_size: int = 100, seed: int = 0) -> dict[str, Any]:
    """The JPEG+LDPC baseline: each image's JPEG payload (highest quality within ``max_bits``, headers
    shared, see :func:`~digisem.systems.classical.split_jpeg`) goes over the bit ``link`` at each
    Es/N0 in ``snrs``; the receiver decodes it and ``classifier(images [B, 3, H, W]) -> logits`` labels
    it. An undecodable file counts as a wrong label. ``attack(loss_fn, images, generator)`` (against
    the classifier, before JPEG) adds ``accuracy_attacked``. Returns the ``results`` curves, the
    fraction of undecodable files per curve (``failed_<curve>``), and the mean ``payload_bits`` and
    JPEG ``quality`` over the images sent.
    """
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


class InterferedEigenmodes(nn.Module):
    """Block-fading ``num_tx x num_rx`` MIMO eigenmode channel (one ``H`` per example, transmitter and
    receiver CSI, ``min(Nt, Nr)`` streams) with an optional attacker at the receiver (eq. 8).

    ``interference(batch) -> [B, Nr, T]`` (complex), if set, is added to the received signal before
    combining. After each call ``received [B, Nr, T]`` (without interference), ``left [B, Nr, S]``
    and ``singular [B, S]`` hold what the receiver used, for :meth:`detect`.
    Input/output as :class:`~digisem.link.channel.MIMO`: ``x [B, n]`` -> :class:`ChannelOutput`.
    """

    def __init__(self, num_tx: int = 8, num_rx: int = 4):
        super().__init__()
        self.num_tx, self.num_rx = num_tx, num_rx
        self.streams = min(num_tx, num_rx)
        self.interference: Callable[[int], torch.Tensor] | None = None

    @staticmethod
    def detect(received: torch.Tensor, left: torch.Tensor, singular: torch.Tensor) -> torch.Tensor:
        """Combine ``received [B, Nr, T]`` on the left singular vectors and equalize: ``[B, S T]`` symbols."""
        streams = (left.conj().transpose(1, 2) @ received) / singular[:, :, None].to(received.dtype)
        return streams.transpose(1, 2).reshape(received.shape[0], -1)

    def forward(self, x: torch.Tensor, snr_db, generator: torch.Generator | None = None):
        from .link.channel import ChannelOutput, complex_normal, noise_variance

        if x.dim() != 2 or x.shape[1] % self.streams:
            raise ValueError(f"x must be [B, n] with n a multiple of {self.streams} streams, got {tuple(x.shape)}")
        batch = x.shape[0]
        noise_var = noise_variance(snr_db, x).reshape(-1, 1, 1)
        h = complex_normal((batch, self.num_rx, self.num_tx), x, generator)
        left, singular, right_h = torch.linalg.svd(h, full_matrices=False)
        streams = x.reshape(batch, -1, self.streams).transpose(1, 2)
        noise = complex_normal((batch, self.num_rx, streams.shape[2]), x, generator) * noise_var.sqrt()
        self.received = h @ (right_h.conj().transpose(1, 2) @ streams) + noise
        self.left, self.singular = left, singular
        received = self.received if self.interference is None else self.received + self.interference(batch)
        equalized_noise = (noise_var.reshape(-1, 1) / singular.pow(2)).repeat_interleave(streams.shape[2], 1)
        return ChannelOutput(self.detect(received, left, singular), equalized_noise.reshape(batch, self.streams, -1).transpose(1, 2).reshape(batch, -1))


def _interfered_accuracy(model: nn.Module, dataset: Dataset, link: nn.Module, channel: InterferedEigenmodes, snr_db: float,
                         interference: Callable[[int, torch.Generator], torch.Tensor] | None, *, batch_size: int, seed: int) -> float:
    """Accuracy over ``link`` with ``channel.interference`` drawn by ``interference(batch, generator)``
    (None: no interferer); the channel and the interferer have their own seeded generators."""
    correct = count = 0
    generator, interferer = torch.Generator().manual_seed(seed + 1), torch.Generator().manual_seed(seed + 2)
    channel.interference = None if interference is None else (lambda batch: interference(batch, interferer))
    try:
        for batch_images, batch_labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            with torch.no_grad():
                logits = model(batch_images, snr_db=snr_db, link=link, generator=generator)["logits"]
            correct += int((logits.argmax(1) == batch_labels).sum())
            count += batch_labels.shape[0]
    finally:
        channel.interference = None
    return correct / count


def receiver_noise_accuracy(model: nn.Module, dataset: Dataset, snr_db: float, ssnr_db: list[float], *, num_tx: int = 8, num_rx: int = 4, attacker_antennas: int = 8,
                            samples: int = 64, steps: int = 5, batch_size: int = 100, seed: int = 0) -> dict[str, list[float]]:
    """Fig. 8: accuracy of an analog (JSCC, ``mask_ratio`` 0) classifier with sample-independent
    semantic noise at its receiver, over the block-fading eigenmode channel :class:`InterferedEigenmodes`.

    For each signal-to-semantic-noise ratio in ``ssnr_db`` (energy of an image's transmitted symbols
    over the attacker's energy, dB), Algorithm 1 (:func:`~digisem.attacks.universal_receiver_noise`)
    builds one perturbation ``dx [attacker_antennas, T]`` from the first ``samples`` images with
    attacker channels ``H_a`` drawn i.i.d. CN(0, 1); every test image then receives ``H_a dx`` through
    a fresh ``H_a``. A complex Gaussian ``dx`` of the same energy is the non-adversarial reference.
    Returns ``{"ssnr_db", "accuracy_universal", "accuracy_gaussian", "accuracy_clean"}``.
    """
    from .attacks import universal_receiver_noise
    from .link import SymbolLink
    from .link.channel import complex_normal

    config = model.config
    if config.transmission != "analog" or config.mask_ratio != 0:
        raise ValueError("receiver-side universal noise needs a differentiable receiver that sees every patch: an analog model with mask_ratio 0 (the JSCC baseline)")
    model.eval()
    channel = InterferedEigenmodes(num_tx, num_rx)
    link = SymbolLink(channel, normalize=False)
    images, labels = _first_batch(dataset, samples)
    samples = images.shape[0]
    with torch.no_grad():
        model(images, snr_db=snr_db, link=link, generator=torch.Generator().manual_seed(seed))
    received, left, singular = channel.received, channel.left, channel.singular
    symbols = received.shape[2] * channel.streams
    everything = torch.arange(config.patches).expand(samples, -1)

    def receiver_loss(y: torch.Tensor) -> torch.Tensor:
        features = torch.view_as_real(channel.detect(y, left, singular)).reshape(samples, config.patches, config.code_dim)
        return F.cross_entropy(model.head(model.decoder(features, everything).mean(1)), labels, reduction="none")

    def accuracy(interference: Callable[[int, torch.Generator], torch.Tensor] | None) -> float:
        return _interfered_accuracy(model, dataset, link, channel, snr_db, interference, batch_size=batch_size, seed=seed)

    results: dict[str, list[float]] = {"ssnr_db": [float(s) for s in ssnr_db], "accuracy_universal": [], "accuracy_gaussian": []}
    attacker_channels = complex_normal((samples, num_rx, attacker_antennas), received, torch.Generator().manual_seed(seed + 3))
    uses = received.shape[2]
    for ratio in ssnr_db:
        epsilon = (symbols / 10 ** (ratio / 10)) ** 0.5
        perturbation = universal_receiver_noise(receiver_loss, received, attacker_channels, epsilon, 1.25 * epsilon / steps, steps)

        def universal(batch: int, generator: torch.Generator, dx=perturbation) -> torch.Tensor:
            return complex_normal((batch, num_rx, attacker_antennas), dx, generator) @ dx

        def gaussian(batch: int, generator: torch.Generator, epsilon=epsilon) -> torch.Tensor:
            dx = complex_normal((batch, attacker_antennas, uses), received, generator)
            dx = epsilon * dx / dx.flatten(1).norm(dim=1)[:, None, None]
            return complex_normal((batch, num_rx, attacker_antennas), dx, generator) @ dx

        results["accuracy_universal"].append(accuracy(universal))
        results["accuracy_gaussian"].append(accuracy(gaussian))
    results["accuracy_clean"] = [accuracy(None)] * len(ssnr_db)
    return results


def receiver_interference_accuracy(model: nn.Module, dataset: Dataset, snr_db: float, ssnr_db: list[float], *, modulation: str = "16qam", code: str | None = "ldpc-1/2",
                                   num_tx: int = 8, num_rx: int = 4, attacker_antennas: int = 8, batch_size: int = 100, seed: int = 0) -> dict[str, list[float]]:
    """Fig. 8 for a digital (masked VQ-VAE) system: accuracy with a complex Gaussian perturbation from
    an ``attacker_antennas``-antenna interferer at the receiver, over the block-fading eigenmode
    channel :class:`InterferedEigenmodes` carrying ``modulation`` with ``code``. Its energy per image
    is the transmitted symbols' energy over ``10^(ssnr/10)``. (Algorithm 1 needs gradients through
    the receiver, which hard decisions and LDPC decoding do not give: the digital system meets the
    same-power non-adversarial perturbation.) Returns ``{"ssnr_db", "accuracy_gaussian", "accuracy_clean"}``.
    """
    from .link import BitLink
    from .link.channel import complex_normal
    from .link.ldpc import LDPC5GCode

    channel = InterferedEigenmodes(num_tx, num_rx)
    link = BitLink(modulation, channel, code=LDPC5GCode.from_spec(code) if code else None)
    images, _ = _first_batch(dataset, 1)
    symbols = symbols_sent(lambda sending: model.eval()(images, snr_db=snr_db, link=sending), link)
    uses = symbols // channel.streams

    def accuracy(energy: float | None) -> float:
        def gaussian(batch: int, interferer: torch.Generator) -> torch.Tensor:
            dx = complex_normal((batch, attacker_antennas, uses), images, interferer)
            dx = energy ** 0.5 * dx / dx.flatten(1).norm(dim=1)[:, None, None]
            return complex_normal((batch, num_rx, attacker_antennas), dx, interferer) @ dx

        return _interfered_accuracy(model, dataset, link, channel, snr_db, gaussian if energy is not None else None, batch_size=batch_size, seed=seed)

    return {"ssnr_db": [float(s) for s in ssnr_db], "accuracy_gaussian": [accuracy(symbols / 10 ** (ratio / 10)) for ratio in ssnr_db],
            "accuracy_clean": [accuracy(None)] * len(ssnr_db)}
