"""The one SNR sweep of every registered system -> the ``results`` part of a results file.

:func:`sweep` sends a dataset through any :class:`~digisem.systems.base.System` over a link at each
SNR and reports what the outputs allow: ``psnr`` / ``ssim`` / ``ms_ssim`` (``x_hat``), ``accuracy``
(``logits`` and labels), ``ber`` of the payload bits (integer payloads), ``latent_mse`` and
``latent_mse_channel`` (symbol payloads: mean ``|restored - sent|^2`` and ``|received - sent|^2`` per
complex symbol, the SCDM paper's Fig. 3 quantity), ``channel_uses`` per image, ``failure_rate``
(systems that report failed images) and, with an attack, ``accuracy_attacked`` / ``psnr_attacked``.

:func:`reference_sweep` is the classical reference at a system's channel uses: a codec over every
5G MCS, the best MCS per SNR, and the codec at the capacity budget.

The SNR axis has a kind (``snr_kind``): ``"ebn0"`` (Eb/N0 per information bit, AMP-SC's Table IV)
or ``"esn0"`` (Es/N0 per complex symbol); each point is converted to what the link's ``snr_db``
expects (:func:`digisem.link.link_snr_db`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import metrics
from .distributed import distributed_context
from .imageio import tile, to_pixels, untile
from .io import derived_seed, run_metadata
from .link import link_snr_db
from .link.errors import InputError
from .snr import check_snr_kind
from .systems.base import batch_parts
from .systems.classical import (
    CIFAR10_MEAN,
    CODECS,
    MCS_TABLE,
    SeparateCoding,
    SeparateCodingConfig,
    StreamCache,
    capacity_bits,
    mcs_density,
    mcs_link,
    mcs_plan,
    minimum_stream_bits,
    side_info_bytes,
)

Attack = Callable[..., torch.Tensor]
"""``attack(loss_fn, images, generator) -> images'`` (see :func:`digisem.attacks.from_spec`)."""


class _Totals:
    """Running sums of one SNR point."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def add(self, key: str, total: float, count: float) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + total
        self.counts[key] = self.counts.get(key, 0.0) + count

    def means(self) -> dict[str, float]:
        return {key: self.sums[key] / self.counts[key] if self.counts[key] else float("nan") for key in self.sums}


class EncodeOnce(torch.nn.Module):
    """An encoder that remembers its last input and output: called again on the same tensor (the
    same object, as an SNR sweep does for each batch), it returns the output it computed."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder
        self._last: tuple[torch.Tensor, Any] | None = None

    def forward(self, x: torch.Tensor) -> Any:
        if self._last is None or self._last[0] is not x:
            self._last = (x, self.encoder(x))
        return self._last[1]


def encoding_once(system: torch.nn.Module) -> torch.nn.Module:
    """``system`` with its encoder wrapped in :class:`EncodeOnce` when the family declares
    ``encodes_once`` (the payload does not depend on the SNR); else ``system`` itself."""
    if getattr(system, "encodes_once", False) and getattr(system, "encoder", None) is not None:
        return system.with_parts(encoder=EncodeOnce(system.encoder))
    return system


def point_generator(seed: int, snr_db: float) -> torch.Generator:
    """The generator of one sweep point: seeded by ``seed`` and the point's SNR in dB as given on the
    sweep's axis, so any caller (the demo, the app, the classical reference) reproduces the sweep's noise."""
    return torch.Generator().manual_seed(derived_seed(seed, "eval", float(snr_db)))


def send_image(system: torch.nn.Module, pixels: np.ndarray, block: int, *, link: Any, snr_db: float, mode: str | None = None,
               generator: torch.Generator | None = None, batch_size: int = 256, progress: bool = False, label: str = "send") -> tuple[np.ndarray, float]:
    """Send an image of any size through ``system`` block by block, streaming, and score it.

    ``pixels``: ``[H, W, 3]`` uint8. The image is cut into ``block x block`` tiles in row-major order
    (edges replicated up to a multiple of ``block``, as :func:`~digisem.imageio.tile`), sent in
    batches of ``batch_size`` tiles at ``snr_db`` (in the link's convention: ``link_snr_kind``), and
    written back one row of tiles at a time, so memory holds the uint8 image, its uint8
    reconstruction and a batch of float tiles, not float copies of the whole image. Returns the
    received ``[H, W, 3]`` uint8 pixels and the PSNR in dB (data range 1) of the reconstruction
    (clamped to [0, 1]) over the ``H x W`` pixels: the numbers of one tiled call with the same batches.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise InputError(f"pixels must be [H, W, 3] uint8, got shape {tuple(pixels.shape)} and dtype {pixels.dtype}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    height, width = pixels.shape[:2]
    rows, cols = -(-height // block), -(-width // block)
    received = np.empty_like(pixels)
    squared_error, next_row = 0.0, 0
    waiting = torch.empty(0, 3, block, block)  # tiles read, not yet sent
    sent = torch.empty(0, 3, block, block)  # reconstructed tiles of rows not yet written

    def band(row: int) -> torch.Tensor:
        return torch.from_numpy(pixels[row * block:(row + 1) * block]).permute(2, 0, 1).float() / 255.0

    def send(count: int) -> None:
        nonlocal waiting, sent, squared_error, next_row
        x_hat = system(waiting[:count], link=link, snr_db=snr_db, mode=mode, generator=generator)["x_hat"].float().clamp(0, 1)
        waiting, sent = waiting[count:], torch.cat([sent, x_hat])
        while sent.shape[0] >= cols:
            image = band(next_row)
            strip = untile(sent[:cols], (image.shape[1], width, 1, cols))
            squared_error += float((strip - image).double().pow(2).sum())
            received[next_row * block:next_row * block + image.shape[1]] = to_pixels(strip)
            sent, next_row = sent[cols:], next_row + 1
            bar.update(1)

    with torch.no_grad(), tqdm(total=rows, desc=f"{label} {rows * cols} blocks of {block}x{block}", unit="row", disable=not progress) as bar:
        for row in range(rows):
            waiting = torch.cat([waiting, tile(band(row), block)[0]])
            while waiting.shape[0] >= batch_size:
                send(batch_size)
        if waiting.shape[0]:
            send(waiting.shape[0])
    return received, 10.0 * math.log10(height * width * 3 / max(squared_error, 1e-30))


def score_output(out: dict[str, Any], images: torch.Tensor, labels: torch.Tensor | None, totals: _Totals, suffix: str = "") -> None:
    """Add one batch's scores to ``totals``: image metrics from ``x_hat``, accuracy from ``logits``,
    payload BER (integers) or latent MSE (symbols), channel uses, the fraction of failed images
    (``failures``: the classical reference's fallback images)."""
    count = images.shape[0]
    if out.get("x_hat") is not None:
        x_hat = out["x_hat"].float()
        if suffix:
            totals.add("psnr" + suffix, float(metrics.psnr(x_hat, images).sum()), count)
        else:
            for name, values in metrics.image_quality(x_hat, images).items():
                totals.add(name, float(values.sum()), count)
    if out.get("logits") is not None and labels is not None:
        totals.add("accuracy" + suffix, float((out["logits"].argmax(1) == labels).sum()), count)
    if suffix:
        return
    payload, received = out.get("payload"), out.get("received")
    if payload is not None and received is not None:
        if payload.is_complex():
            restored = out.get("restored", received)
            totals.add("latent_mse", float((restored - payload).abs().pow(2).sum()), payload.numel())
            totals.add("latent_mse_channel", float((received - payload).abs().pow(2).sum()), payload.numel())
        elif out.get("bits_per_image"):
            bits = out["bits_per_image"] // payload[0].numel()
            errors, total = metrics.bit_errors(payload, received, bits)
            totals.add("ber", errors, total)
    if out.get("channel_uses_per_image") is not None:
        totals.add("channel_uses", float(out["channel_uses_per_image"]) * count, count)
    if out.get("failures") is not None:
        totals.add("failure_rate", float(out["failures"]), count)


PRECISIONS = ("fp32", "bf16")
"""Arithmetic of a sweep: float32, or bfloat16 autocast (:func:`sweep`)."""


def sweep(
    system: torch.nn.Module,
    link: Any,
    snrs: list[float],
    dataset: Dataset,
    *,
    snr_kind: str = "esn0",
    mode: str | None = None,
    attack: Attack | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
    label: str = "eval",
    shard: bool = False,
    precision: str = "fp32",
    **options: Any,
) -> dict[str, list[float]]:
    """Sweep ``system`` over ``link`` at each SNR of ``snrs`` on ``dataset``.

    Parameters
    ----------
    system : System
        Any registered system (or one with parts swapped, :meth:`System.with_parts`).
    link : link module, spec or None
        E.g. ``"bsc"``, ``"16qam-awgn"``, ``"rayleigh"``, ``{kind: bits, modulation: 16qam, ...}``;
        None: no channel (every SNR gives the same numbers, computed once).
    snrs : list of float
        SNRs in dB of kind ``snr_kind``.
    dataset : Dataset
        ``(image, label)`` pairs or bare images ``[3, H, W]`` in [0, 1].
    mode : str, optional
        The system's mode (default: its deployment mode).
    attack : callable, optional
        Transmitter-side semantic noise, computed once per image against the system without a
        channel; adds ``<metric>_attacked``.
    shard : bool
        Under ``torchrun``, share the SNR points across the ranks (every rank must call the sweep;
        each returns the merged curves). False (default): this process sweeps every point.
    precision : str
        ``"fp32"`` (default: the same numbers on every machine) or ``"bf16"``: the points run under
        bfloat16 autocast, as the zoo's bf16 recipes trained. On a CPU with native bfloat16 it ran
        the AMP-SC decoder 1.7x faster, with PSNRs within a few hundredths of a dB of fp32
        (``docs/results/eval.md``); where bfloat16 is emulated it is many times slower.
    options
        Passed to the system's forward (e.g. ``restore=False`` for AMP-SC without IRSNet).

    Each batch is encoded once for all SNRs when the family declares ``encodes_once``
    (:func:`encoding_once`), and the points run under ``torch.inference_mode``. With ``shard`` under
    ``torchrun`` the ranks share the SNR points (rank ``r`` takes every ``world_size``-th) and every
    rank returns the merged curves: the same numbers as one process.

    Output
    ------
    ``{"snr_db": [...], "<metric>": [...] per SNR}``; the same seed gives the same numbers (one
    generator per SNR point, seeded by ``seed`` and the SNR the link sees, drives the channel and
    the system: a point gives the same numbers whether the axis is Eb/N0 or Es/N0).
    """
    check_snr_kind(snr_kind)
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    system.eval()
    link = system.link_for(link) if hasattr(system, "link_for") else link
    sender = encoding_once(system)
    points = [float(s) for s in snrs]
    if not points:
        raise InputError("the sweep needs at least one SNR")
    if len(dataset) == 0:
        raise InputError("the dataset is empty: nothing to evaluate")
    computed = points if link is not None else points[:1]
    link_snrs = {snr: link_snr_db(link, snr, snr_kind) for snr in computed}
    # keyed by the sweep point (as every recorded result in docs/results was made): the same physical
    # point on the Eb/N0 and the Es/N0 axes draws other noise, with the same statistics
    generators = {snr: point_generator(seed, snr) for snr in computed}
    attack_generator = torch.Generator().manual_seed(derived_seed(seed, "attack"))
    rank, world_size = distributed_context() if shard else (0, 1)
    mine = computed[rank::world_size]  # sharded: each rank sweeps every world_size-th point
    totals = {snr: _Totals() for snr in mine}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    with tqdm(total=len(loader) * len(mine), desc=label, disable=not progress or rank != 0, leave=False) as bar:
        for batch in loader if mine else ():
            images, labels = batch_parts(batch)
            adversarial = None
            if attack is not None:
                adversarial = attack(lambda x, images=images, labels=labels: task_loss(system(x, mode=mode, generator=attack_generator, **options), images, labels), images, attack_generator)
            with torch.inference_mode():
                for snr in mine:
                    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                        out = sender(images, link=link, snr_db=link_snrs[snr], mode=mode, generator=generators[snr], **options)
                    score_output(out, images, labels, totals[snr])
                    if adversarial is not None:
                        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                            attacked = sender(adversarial, link=link, snr_db=link_snrs[snr], mode=mode, generator=generators[snr], **options)
                        score_output(attacked, images, labels, totals[snr], suffix="_attacked")
                    bar.update(1)
    point_means = {snr: totals[snr].means() for snr in mine}
    if world_size > 1:
        gathered: list[dict[float, dict[str, float]] | None] = [None] * world_size
        torch.distributed.all_gather_object(gathered, point_means)
        point_means = {snr: point for part in gathered for snr, point in part.items()}
    means = [point_means[snr] for snr in computed]
    if link is None:
        means = means * len(points)
    curves: dict[str, list[float]] = {"snr_db": points}
    for key in means[0]:
        curves[key] = [point[key] for point in means]
    return curves


def task_loss(out: dict[str, Any], images: torch.Tensor, labels: torch.Tensor | None, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-example loss ``[B]`` an attacker maximizes: cross-entropy of ``logits`` with ``labels``
    (classification; ``label_smoothing`` in [0, 1) mixes in uniform targets, for training) or the MSE
    of ``x_hat`` against the clean ``images`` (reconstruction)."""
    if out.get("logits") is not None and labels is not None:
        return F.cross_entropy(out["logits"], labels, reduction="none", label_smoothing=label_smoothing)
    return (out["x_hat"] - images).pow(2).flatten(1).mean(1)


def average_over(curves: dict[str, Any], key: str, low: float, high: float) -> float:
    """Mean of ``curves[key]`` over the SNR points in ``[low, high]`` dB (e.g. the paper's 0-18 dB average)."""
    values = [v for s, v in zip(curves["snr_db"], curves[key]) if low <= s <= high]
    if not values:
        raise InputError(f"no SNR points in [{low}, {high}] dB")
    return sum(values) / len(values)


REFERENCE_METRICS = ("psnr", "ssim", "ms_ssim", "failure_rate", "ber")
IMAGE_METRICS = ("psnr", "ssim", "ms_ssim")


def _plan_or_none(mcs: str, channel_uses: int) -> Any:
    """The :func:`mcs_plan` of ``mcs``, or None when ``channel_uses`` cannot hold one of its codewords."""
    try:
        return mcs_plan(mcs, channel_uses)
    except ValueError:
        if mcs not in MCS_TABLE:
            raise
        return None


def reference_sweep(codec: str, channel_uses: int, snrs: list[float], dataset: Dataset, *, channel: str = "awgn", mcs: tuple[str, ...] = MCS_TABLE,
                    fallback: tuple[float, float, float] | None = None, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """The classical reference at ``channel_uses`` complex symbols per image: ``codec`` over each 5G
    MCS of ``mcs`` on ``channel``, the best MCS per SNR, and the codec at the capacity budget.

    Parameters
    ----------
    codec : str
        A key of :data:`digisem.systems.classical.CODECS` (``webp``, ``jpeg``, ``jpeg2000``, ``avif``, ``bpg``).
    channel_uses : int
        Complex channel symbols per image (each MCS fills them with whole LDPC codewords).
    snrs : list of float
        Es/N0 in dB per complex symbol.
    dataset : Dataset
        Images ``[3, H, W]`` in [0, 1] (or ``(image, label)`` pairs), all of one size.
    channel : str
        A channel spec (``awgn``, ``rayleigh``, ``mimo-8x4-svd``...).
    fallback : RGB in [0, 1], optional
        The image of a failed transmission (default the CIFAR-10 training mean).

    Output
    ------
    ``{"snr_db", "psnr", "ssim", "ms_ssim", "failure_rate", "ber"}``: the envelope (per SNR, the MCS
    with the best mean PSNR); ``"mcs"``: the chosen MCS per SNR; ``"<metric>_capacity_bound"``: the
    codec within ``capacity_bits(channel_uses, snr)`` bits, no errors; ``"capacity_bits"``;
    ``"by_mcs"``: ``{mcs: curves}``; ``"payload_bits"``: ``{mcs: bits}``; ``"unfit_mcs"``: MCS whose
    budget is below every image's smallest stream; ``"encodes"``. ValueError when no MCS fits any
    image, naming the channel uses that would.

    Note
    ----
    Each budget is encoded and decoded once without errors (one :class:`StreamCache` for all
    budgets: an image is encoded at most once per quality); at each SNR the payload bits cross
    the link and an image counts as received when every byte arrives intact (what a CRC checks; its
    bits are not charged), else it is the fallback. Decoding is deterministic, so this scores
    exactly what :class:`SeparateCoding` outputs; the noise of each SNR point is seeded as in
    :func:`sweep`.
    """
    if not snrs:
        raise InputError("the reference sweep needs at least one SNR")
    images = torch.cat([batch_parts(batch)[0] for batch in DataLoader(dataset, batch_size=100, shuffle=False)])
    extra = {} if fallback is None else {"fallback": tuple(fallback)}
    cache = StreamCache()
    smallest = minimum_stream_bits(codec, images)
    plans = {name: _plan_or_none(name, channel_uses) for name in mcs}
    usable = [plan for plan in plans.values() if plan is not None and plan.payload_bits >= smallest]
    if not usable:
        densest = max(mcs, key=mcs_density)
        raise InputError(f"{channel_uses} channel uses per image are too few for any {codec} stream: the smallest needs {smallest} bits, "
                         f"about {math.ceil(smallest / mcs_density(densest))} channel uses at {densest} ({mcs_density(densest):g} bits per channel use)")

    def budget(bits: int) -> tuple[SeparateCoding, dict[str, Any], dict[str, torch.Tensor]]:
        system = SeparateCoding(SeparateCodingConfig(codec, max(bits, 8), **extra), cache=cache)
        with torch.no_grad():
            out = system(images)
        return system, out, metrics.image_quality(out["x_hat"].float(), images)

    fallback_image = torch.tensor(SeparateCodingConfig(codec, 8, **extra).fallback)[None, :, None, None].expand_as(images)
    fallback_scores = metrics.image_quality(fallback_image.float(), images)
    by_mcs: dict[str, dict[str, list[float]]] = {}
    with tqdm(total=len(usable) * len(snrs), desc=f"reference {codec}", disable=not progress, leave=False) as bar:
        for plan in usable:
            system, clean, scores = budget(plan.payload_bits)
            link = mcs_link(plan, channel)
            curves: dict[str, list[float]] = {key: [] for key in REFERENCE_METRICS}
            for snr in snrs:
                generator = point_generator(seed, snr)
                with torch.no_grad():
                    received = system.send(clean["payload"], link, float(snr), generator)
                ok = (received == clean["payload"]).all(1) & clean["delivered"]
                for metric in IMAGE_METRICS:
                    curves[metric].append(float(torch.where(ok, scores[metric], fallback_scores[metric]).mean()))
                curves["failure_rate"].append(float((~ok).float().mean()))
                errors, total = metrics.bit_errors(clean["payload"], received, 8)
                curves["ber"].append(errors / total)
                bar.update(1)
            by_mcs[plan.mcs] = curves
    envelope: dict[str, Any] = {"snr_db": [float(s) for s in snrs], "mcs": []}
    for index in range(len(snrs)):
        chosen = max(by_mcs, key=lambda name: by_mcs[name]["psnr"][index])
        envelope["mcs"].append(chosen)
        for metric in REFERENCE_METRICS:
            envelope.setdefault(metric, []).append(by_mcs[chosen][metric][index])
    envelope["capacity_bits"] = [capacity_bits(channel_uses, snr) for snr in snrs]
    for bits in envelope["capacity_bits"]:
        _, clean, scores = budget(bits)
        for metric in IMAGE_METRICS:
            envelope.setdefault(f"{metric}_capacity_bound", []).append(float(scores[metric].mean()))
        envelope.setdefault("failure_rate_capacity_bound", []).append(clean["failures"] / len(images))
    envelope.update(by_mcs=by_mcs, payload_bits={name: plan.payload_bits if plan else 0 for name, plan in plans.items()},
                    unfit_mcs=[name for name in mcs if name not in by_mcs],
                    encodes=cache.encodes)
    return envelope


def reference_results(codec: str, channel_uses: int, snrs: list[float], dataset, description: str, *, channel: str, seed: int, progress: bool,
                      fallback=None, axis_offset_db: float = 0.0, snr_kind: str = "esn0") -> dict:
    """The results dict (the one schema) of the classical reference at ``channel_uses`` per image on
    ``dataset``. The sweep runs at Es/N0 ``snrs + axis_offset_db``; ``results.snr_db`` keeps ``snrs``
    (the axis of kind ``snr_kind`` of the system it is drawn beside)."""
    spec = CODECS[codec]
    started = time.perf_counter()
    curves = reference_sweep(codec, channel_uses, [s + axis_offset_db for s in snrs], dataset, channel=channel, fallback=fallback, seed=seed, progress=progress)
    wall = time.perf_counter() - started
    curves["snr_db"] = list(snrs)
    name = f"{spec.label} + 5G LDPC (best MCS)"
    return {
        "name": name,
        "model": f"separate:{codec}",
        "description": f"{spec.label} at the highest quality that fits, 5G NR LDPC + QAM (best of {len(curves['by_mcs'])} MCS per SNR) over {channel}, "
                       f"{channel_uses} channel uses per image, on {description}; psnr_capacity_bound: {spec.label} within channel_uses * log2(1 + Es/N0) bits, no errors",
        "results": curves,
        "meta": run_metadata(seed, "cpu", dataset=description, n_images=len(dataset), channel=channel, snr_kind=snr_kind, esn0_offset_db=round(axis_offset_db, 3),
                             channel_uses=channel_uses, codec=codec, shared_by_both_ends=spec.shared,
                             side_info_bits=8 * side_info_bytes(codec, max(curves["payload_bits"].values())), fallback=list(fallback or CIFAR10_MEAN),
                             failure="a stream that does not fit, arrives with any bit error (as a CRC detects; CRC bits not charged) or does not decode",
                             psnr="mean over images of per-image PSNR (all channels, data range 1)", wall_s=round(wall, 1), encodes=curves["encodes"]),
    }
