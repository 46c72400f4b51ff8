"""``digisem app``: an interactive page to pick an image, a zoo model, a channel and an SNR, and see
what arrives.

The page logic is plain Python, testable without a browser: :func:`catalog` lists the zoo's systems
by family (restorers such as SCDM become receiver options of the codec named in their metadata),
:func:`transmit` sends one image through one of them and returns a :class:`Result` (images, scores,
accounting, the received constellation, a PSNR-vs-SNR curve and the classical reference at the same
channel uses), and :func:`scatter_figure` / :func:`curve_figure` draw it. Everything comes from the
registry (:data:`digisem.systems.FAMILIES`), the zoo and the link factory; the only per-family
knowledge is which controls apply. :func:`build_page` lays it out with Gradio (the optional extra
``digisem[app]``) and :func:`launch` serves it.

A point is computed as :func:`digisem.evaluate.sweep` computes it: the image's tiles are one batch,
one generator (:func:`digisem.evaluate.point_generator`) drives the channel and the system, so
the page's PSNR at a seed is the sweep's PSNR of the same tiles at that seed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from . import metrics, zoo
from .attacks import from_spec as attack_from_spec
from .data import CIFAR10_CLASSES, sample_images
from .evaluate import point_generator, sweep, task_loss
from .imageio import read_image, tile, to_pixels, untile
from .io import derived_seed
from .link import BSCLink, from_spec, link_snr_db, link_snr_kind
from .link.errors import InputError
from .link.spec import describe, parse_spec
from .snr import SNR_LABELS, parse_snr_range
from .systems import FAMILIES
from .systems import classical as separate_coding
from .systems.scdm import MMSEDenoiser
from .weights import CheckpointError, read_weights

INSTALL_HINT = 'pip install -e ".[app]"'
CANDIDATE_LINKS = ("awgn", "rayleigh", "mimo-8x4-svd", "16qam-awgn", "16qam-rayleigh", "16qam-mimo-8x4-svd", "16qam-awgn-ldpc-1/2", "bsc")
"""Links offered on the page; each system gets those the link factory builds for its payload."""
CLASSICAL_MCS = "16qam-1/2"
"""The classical reference: JPEG bytes over this 5G MCS (LDPC rate 1/2, 16-QAM) on the system's channel."""
MAX_SIDE_BLOCKS = 4
"""A reconstruction upload is resized so that its longer side is at most this many blocks."""
CURVE_POINTS = 7
SCATTER_POINTS = 400
ATTACK_STEPS = 5
SNR_UNITS = {"esn0": "Es/N0 per complex symbol", "ebn0": "Eb/N0 per information bit"}


class AppError(InputError):
    """Bad input (an unreadable upload, an image too small, an SNR out of range, a missing model):
    shown on the page as one message."""


@dataclass(frozen=True)
class Entry:
    """One system of the page: a zoo model and the controls that apply to it.

    ``links``: ``(label, key)`` pairs, the link the model was trained with first (key
    :data:`TRAINED`; :func:`link_spec` gives the spec); ``snr_range``:
    ``(low, high)`` dB of ``snr_kind`` (the family's sweep range); ``denoisers``: ``"none"``,
    ``"mmse"`` and zoo restorers trained on this codec; ``slow_denoisers``: those of them whose
    sampler iterates (run on demand); ``restorer``: the class name of the model's own restorer
    (switchable), or None; ``block``: the square image side the model takes.
    """

    name: str
    family: str
    label: str
    task: str
    payload_kind: str
    snr_kind: str
    snr_range: tuple[float, float]
    default_snr: float
    links: tuple[tuple[str, str], ...]
    denoisers: tuple[str, ...] = ("none",)
    slow_denoisers: tuple[str, ...] = ()
    restorer: str | None = None
    block: int = 32

    @property
    def snr_label(self) -> str:
        """The SNR slider's label, with its convention."""
        return f"SNR: {SNR_UNITS[self.snr_kind]} ({SNR_LABELS[self.snr_kind]}, dB)"


@dataclass
class Request:
    """What the page asks: zoo ``model``; ``image`` a bundled sample name or an image file path;
    ``link`` a link key of its :class:`Entry` (None: the link it was trained with); ``snr_db`` of the model's SNR kind (None: its
    default); ``denoiser`` one of the entry's denoisers; ``restorer`` whether the model's own
    restorer runs; ``epsilon`` the semantic-noise budget (classifiers); ``seed``."""

    model: str
    image: str
    link: str | None = None
    snr_db: float | None = None
    denoiser: str = "none"
    restorer: bool = True
    epsilon: float = 0.0
    seed: int = 0


@dataclass
class Result:
    """What the page shows for one request.

    ``original`` / ``received``: ``[H, W, 3]`` uint8 (the image as sent, after any resizing, and
    what arrived; ``received`` None for classifiers); ``psnr`` / ``ssim``: mean over the tiles (dB,
    1); ``top3`` / ``top3_attacked``: ``{class: probability}``; ``bits_per_image`` and
    ``channel_uses_per_image`` per tile; ``ber`` payload bit error rate (integer payloads) or
    ``symbol_mse`` mean ``|received - sent|^2`` (symbol payloads); ``sent`` / ``received_symbols``:
    a few hundred complex channel symbols (None where the link has no constellation, e.g. a BSC);
    ``curve``: ``{"snr_db": [...], <metric>: [...]}`` of this image; ``classical``: PSNR of the
    classical reference with its description; ``receiver``: which receiver ran; ``notes``: what the page says about the input;
    ``seconds``: compute time.
    """

    entry: Entry
    snr_db: float
    original: np.ndarray
    received: np.ndarray | None = None
    psnr: float | None = None
    ssim: float | None = None
    top3: dict[str, float] | None = None
    top3_attacked: dict[str, float] | None = None
    bits_per_image: int | None = None
    channel_uses_per_image: int | None = None
    ber: float | None = None
    symbol_mse: float | None = None
    sent: np.ndarray | None = None
    received_symbols: np.ndarray | None = None
    curve: dict[str, list[float]] | None = None
    classical: dict[str, Any] | None = None
    receiver: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------------
# the catalog: the zoo's systems, from the registry


@functools.lru_cache(maxsize=None)
def load_model(name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``zoo.load(name)`` once per process; a missing or corrupted model raises :class:`AppError`."""
    try:
        return zoo.load(name)
    except CheckpointError as err:
        raise AppError(f"zoo model {name!r} is not available: {err}") from err


TRAINED = "as-trained"
"""The link key of the link a model was trained with (its recorded link, else its family's default)."""


def _trained_link(metadata: dict[str, Any]) -> str | dict[str, Any] | None:
    return zoo.recorded_link(metadata) or FAMILIES[metadata["system"]].default_link


def _links(model: torch.nn.Module, metadata: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """``(label, key)`` of the links the factory builds for the model's payload: :data:`TRAINED`
    first, then each of :data:`CANDIDATE_LINKS` that differs from it."""
    trained = _trained_link(metadata)
    seen = [parse_spec(trained, model.payload_kind)]
    links = [(f"{describe(seen[0])} (as trained)", TRAINED)]
    for spec in CANDIDATE_LINKS:
        try:
            mapping = parse_spec(spec, model.payload_kind)
            from_spec(spec, model.payload_kind)
        except ValueError:
            continue
        if mapping is None or mapping in seen:
            continue
        seen.append(mapping)
        links.append((describe(mapping), spec))
    return tuple(links)


def link_spec(name: str, key: str) -> str | dict[str, Any] | None:
    """The link spec behind a link key of zoo model ``name`` (:data:`TRAINED` or a spec text)."""
    return _trained_link(load_model(name)[1]) if key == TRAINED else key


def _restorers_for(name: str) -> list[str]:
    """Zoo restorers whose metadata names ``name`` as their codec."""
    found = []
    for candidate in zoo.zoo_names():
        _, metadata = read_weights(zoo.resolve_weights(candidate))
        if metadata.get("system") in FAMILIES and FAMILIES[metadata["system"]].kind == "restorer" and metadata.get("codec") == name:
            found.append(candidate)
    return found


def _iterative(restorer: torch.nn.Module) -> bool:
    """Whether a restorer's sampler runs a chain of network evaluations (SCDM's predictor-corrector)
    rather than one step (Tweedie): such a receiver runs on demand, with progress."""
    sampler = getattr(restorer, "sampler", None)
    return sampler is not None and not getattr(sampler, "tweedie", True)


@functools.lru_cache(maxsize=None)
def entry(name: str) -> Entry:
    """The page's :class:`Entry` of zoo model ``name`` (a system, not a restorer)."""
    model, metadata = load_model(name)
    family = FAMILIES[metadata["system"]]
    if family.kind != "system":
        raise AppError(f"{name} is a {family.kind} ({family.name}): pick the codec it serves, {metadata.get('codec', '?')}, and choose it as the denoiser")
    snrs = parse_snr_range(family.default_snrs)
    check = family.sample_check
    default = check.snr_db if check is not None and check.snr_kind == family.snr_kind else snrs[len(snrs) // 2]
    denoisers, slow = ["none"], []
    if model.payload_kind == "symbols" and hasattr(model, "prior_symbols"):
        denoisers.append("mmse")
        for restorer in _restorers_for(name):
            denoisers.append(restorer)
            if _iterative(load_model(restorer)[0]):
                slow.append(restorer)
    own = type(model.restorer).__name__ if model.restorer is not None else None
    return Entry(name, family.name, f"{family.name}: {metadata.get('name', name)} ({name})", model.task, model.payload_kind, family.snr_kind,
                 (min(snrs), max(snrs)), float(default), _links(model, metadata), tuple(denoisers), tuple(slow), own,
                 256 if getattr(model, "sample_kind", "cifar") == "kodak" else 32)


def catalog() -> dict[str, list[Entry]]:
    """``{family: [Entry, ...]}`` of every zoo system (restorers appear as denoisers of their codec)."""
    groups: dict[str, list[Entry]] = {}
    for name in zoo.zoo_names():
        try:
            item = entry(name)
        except AppError:
            continue
        groups.setdefault(item.family, []).append(item)
    return groups


def sample_names() -> list[str]:
    """The bundled sample images (``cifar_cat_0000``, ``kodak_kodim23``, ...)."""
    return sample_images("cifar")[1] + sample_images("kodak")[1]


# ---------------------------------------------------------------------------------------------------
# one transmission


def _read(image: str) -> tuple[torch.Tensor, int | None]:
    """``([3, H, W] in [0, 1], CIFAR-10 label or None)`` of a sample name or an image file."""
    for kind in ("cifar", "kodak"):
        images, names = sample_images(kind)
        if image in names:
            return images[names.index(image)], CIFAR10_CLASSES.index(image.split("_")[1]) if kind == "cifar" else None
    try:
        return read_image(image), None
    except (ValueError, OSError) as err:
        raise AppError(f"{Path(str(image)).name} is not an image digisem can read ({err.__class__.__name__}): upload a PNG, JPEG or BMP file") from err


def prepare(image: torch.Tensor, item: Entry) -> tuple[torch.Tensor, tuple[int, int, int, int], torch.Tensor, list[str]]:
    """Fit ``image [3, H, W]`` to the system: ``(tiles [N, 3, b, b], layout, image as sent, notes)``.

    A classifier takes one ``b x b`` image (others are resized); a reconstruction system takes the
    image tiled into ``b x b`` blocks, resized first when its longer side exceeds
    :data:`MAX_SIDE_BLOCKS` blocks. An image smaller than one block raises :class:`AppError`.
    """
    block, (height, width) = item.block, image.shape[1:]
    if height < block or width < block:
        raise AppError(f"the image is {width}x{height} px, smaller than the {block}x{block} px blocks {item.name} takes")
    notes = []
    if item.task == "classification":
        if (height, width) != (block, block):
            image = F.interpolate(image[None], size=(block, block), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)
            notes.append(f"resized from {width}x{height} to {block}x{block} px (the classifier's input)")
    elif max(height, width) > MAX_SIDE_BLOCKS * block:
        scale = MAX_SIDE_BLOCKS * block / max(height, width)
        size = (max(block, round(height * scale)), max(block, round(width * scale)))
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)
        notes.append(f"resized from {width}x{height} to {size[1]}x{size[0]} px (at most {MAX_SIDE_BLOCKS * block} px a side)")
    tiles, layout = tile(image, block)
    if tiles.shape[0] > 1:
        notes.append(f"tiled into {tiles.shape[0]} blocks of {block}x{block} px (edges replicated)")
    return tiles, layout, image, notes


@functools.lru_cache(maxsize=32)
def receiver(name: str, denoiser: str = "none", restorer: bool = True) -> torch.nn.Module:
    """The system of zoo model ``name`` with the chosen receiver: ``denoiser`` ``"none"``, ``"mmse"``
    (per-symbol posterior mean under the codec's symbol prior) or a zoo restorer trained on it (with
    its joint decoder, :func:`digisem.zoo.sample_system`); ``restorer=False`` drops the model's own."""
    item = entry(name)
    if denoiser not in item.denoisers:
        raise AppError(f"{name} has no denoiser {denoiser!r}: choose one of {', '.join(item.denoisers)}")
    model, _ = load_model(name)
    if denoiser == "mmse":
        model = model.with_parts(restorer=MMSEDenoiser(model.prior_symbols()))
    elif denoiser != "none":
        model = zoo.sample_system(*load_model(denoiser))
    if not restorer and model.restorer is not None:
        model = model.with_parts(restorer=None)
    return model.eval()


@contextlib.contextmanager
def captured_symbols(link: torch.nn.Module | None) -> Iterator[dict[str, torch.Tensor]]:
    """Record what the link's symbol channel gets and delivers during the block: ``{"sent": [B, n],
    "received": [B, n]}`` complex (empty for a link without a symbol channel, e.g. a BSC)."""
    record: dict[str, torch.Tensor] = {}
    channel = getattr(link, "channel", None)
    if not isinstance(channel, torch.nn.Module):
        yield record
        return

    def hook(module, inputs, output):
        record["sent"], record["received"] = inputs[0].detach(), output.symbols.detach()

    handle = channel.register_forward_hook(hook)
    try:
        yield record
    finally:
        handle.remove()


def _subset(sent: torch.Tensor, received: torch.Tensor) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    if sent.shape != received.shape:
        return None, None
    sent, received = sent.reshape(-1), received.reshape(-1)
    index = torch.linspace(0, sent.numel() - 1, min(SCATTER_POINTS, sent.numel())).long()
    return sent[index].numpy(), received[index].numpy()


def _top3(logits: torch.Tensor) -> dict[str, float]:
    probabilities = torch.softmax(logits.float(), -1)
    names = CIFAR10_CLASSES if probabilities.numel() == len(CIFAR10_CLASSES) else [f"class {i}" for i in range(probabilities.numel())]
    values, indices = probabilities.topk(min(3, probabilities.numel()))
    return {names[int(i)]: float(v) for v, i in zip(values, indices)}


def _check(request: Request, item: Entry) -> tuple[str, float]:
    key = request.link or TRAINED
    if key not in [k for _, k in item.links]:
        raise AppError(f"{item.name} cannot use the link {key!r}: choose one of {', '.join(k for _, k in item.links)}")
    snr = item.default_snr if request.snr_db is None else float(request.snr_db)
    low, high = item.snr_range
    if not (math.isfinite(snr) and low <= snr <= high):
        raise AppError(f"SNR {snr:g} dB is outside {item.name}'s range, {SNR_LABELS[item.snr_kind]} {low:g} to {high:g} dB")
    if not 0 <= request.epsilon <= 0.25:
        raise AppError(f"semantic noise epsilon must lie in [0, 0.25] (images in [0, 1]), got {request.epsilon:g}")
    return key, snr


_LOCK = threading.Lock()


def transmit(request: Request, curve: bool = True, progress=None) -> Result:
    """Send ``request.image`` through ``request.model`` and score what arrives (see :class:`Result`).

    ``curve``: also compute this image's PSNR-vs-SNR curve (cached per image and receiver; not for
    iterative denoisers); ``progress``: ``progress(done, total)`` after each network evaluation of
    an iterative denoiser. Bad input raises :class:`AppError`. One request runs at a time (the
    symbol capture hooks the shared, cached links).
    """
    with _LOCK:
        return _transmit(request, curve, progress)


def _transmit(request: Request, curve: bool, progress) -> Result:
    started = time.perf_counter()
    item = entry(request.model)
    key, snr = _check(request, item)
    spec = link_spec(request.model, key)
    image, label = _read(request.image)
    tiles, layout, shown, notes = prepare(image, item)
    system = receiver(request.model, request.denoiser, request.restorer)
    link = system.link_for(spec)
    result = Result(item, snr, to_pixels(shown), receiver=_receiver_text(system, request, item), notes=notes)
    generator = point_generator(request.seed, snr)
    with torch.no_grad(), _counted(system.restorer, progress):
        adversarial, labels = _attack(system, tiles, label, request, item)
        with captured_symbols(link) as record:
            out = system(tiles, link=link, snr_db=link_snr_db(link, snr, item.snr_kind), generator=generator)
        if adversarial is not None:
            attacked = system(adversarial, link=link, snr_db=link_snr_db(link, snr, item.snr_kind), generator=generator)
            result.top3_attacked = _top3(attacked["logits"][0])
    if record:
        result.sent, result.received_symbols = _subset(record["sent"], record["received"])
    result.bits_per_image, result.channel_uses_per_image = out.get("bits_per_image"), out.get("channel_uses_per_image")
    payload, received = out.get("payload"), out.get("received")
    if payload is not None and received is not None:
        if payload.is_complex():
            result.symbol_mse = float((received - payload).abs().pow(2).mean())
        elif result.bits_per_image:
            errors, total = metrics.bit_errors(payload, received, result.bits_per_image // payload[0].numel())
            result.ber = errors / total
    if out.get("x_hat") is not None and item.task == "reconstruction":
        x_hat = out["x_hat"].float()
        result.received = to_pixels(untile(x_hat, layout))
        result.psnr = float(metrics.psnr(x_hat, tiles).mean())
        result.ssim = float(metrics.ssim(x_hat, tiles).mean())
        result.classical = classical(tiles, spec, item.payload_kind, link, snr, item.snr_kind, result.channel_uses_per_image, request.seed)
    if out.get("logits") is not None and item.task == "classification":
        result.top3 = _top3(out["logits"][0])
    if curve and request.denoiser not in item.slow_denoisers:
        result.curve = image_curve(request, key, tiles, labels)
    result.seconds = time.perf_counter() - started
    return result


def _receiver_text(system: torch.nn.Module, request: Request, item: Entry) -> str:
    """E.g. ``denoiser scdm-cifar10-64qam (sampler PC (L=2))`` or ``IRSNet off``."""
    parts = []
    if item.denoisers != ("none",):
        sampler = getattr(system.restorer, "sampler", None)
        parts.append(f"denoiser {request.denoiser}" + (f" (sampler {sampler.label()})" if hasattr(sampler, "label") else ""))
    if item.restorer:
        parts.append(f"{item.restorer} {'on' if request.restorer else 'off'}")
    return ", ".join(parts)


@contextlib.contextmanager
def _counted(restorer: torch.nn.Module | None, progress) -> Iterator[None]:
    """Call ``progress(evaluations, None)`` after each forward of the restorer's first submodule
    (one network evaluation of an iterative sampler)."""
    children = list(restorer.children()) if restorer is not None and progress is not None else []
    if not children:
        yield
        return
    count = [0]

    def hook(module, inputs, output):
        count[0] += 1
        progress(count[0], None)

    handle = children[0].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _attack(system, tiles: torch.Tensor, label: int | None, request: Request, item: Entry) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Semantic noise of ``request.epsilon`` (i-FGSM, as :func:`digisem.evaluate.sweep` computes an
    attack) against the known label, or against the clean noiseless prediction of an upload."""
    if item.task != "classification":
        return None, None
    labels = torch.tensor([label]) if label is not None else system(tiles)["logits"].argmax(1)
    if request.epsilon <= 0:
        return None, labels
    attack = attack_from_spec({"kind": "ifgsm", "epsilon": request.epsilon, "step": 1.25 * request.epsilon / ATTACK_STEPS, "steps": ATTACK_STEPS})
    generator = torch.Generator().manual_seed(derived_seed(request.seed, "attack"))
    with torch.enable_grad():
        adversarial = attack(lambda x: task_loss(system(x, generator=generator), tiles, labels), tiles, generator)
    return adversarial.detach(), labels


def curve_snrs(item: Entry) -> list[float]:
    """At most :data:`CURVE_POINTS` SNRs of the family's sweep range (dB of ``item.snr_kind``)."""
    snrs = parse_snr_range(FAMILIES[item.family].default_snrs)
    step = max(1, math.ceil((len(snrs) - 1) / (CURVE_POINTS - 1)))
    return sorted(set(snrs[::step] + [snrs[-1]]))


_CURVES: dict[tuple, dict[str, list[float]]] = {}


def image_curve(request: Request, key: str, tiles: torch.Tensor, labels: torch.Tensor | None) -> dict[str, list[float]]:
    """This image's curve over :func:`curve_snrs` with the request's receiver: ``{"snr_db", "psnr"}``
    (:func:`digisem.evaluate.sweep` over the tiles) or, for a classifier, ``{"snr_db",
    "probability"}`` of the reference class; cached per image, model, receiver, link and seed."""
    cache = (request.model, request.denoiser, request.restorer, key, request.seed, hashlib.sha1(tiles.numpy().tobytes()).hexdigest())
    if cache in _CURVES:
        return _CURVES[cache]
    item = entry(request.model)
    system = receiver(request.model, request.denoiser, request.restorer)
    link = system.link_for(link_spec(request.model, key))
    snrs = curve_snrs(item)
    if item.task == "classification":
        values = []
        with torch.no_grad():
            for snr in snrs:
                logits = system(tiles, link=link, snr_db=link_snr_db(link, snr, item.snr_kind), generator=point_generator(request.seed, snr))["logits"]
                values.append(float(torch.softmax(logits, 1).gather(1, labels[:, None]).mean()))
        curves = {"snr_db": snrs, "probability": values}
    else:
        swept = sweep(system, link, snrs, TensorDataset(tiles), snr_kind=item.snr_kind, batch_size=len(tiles), seed=request.seed, progress=False)
        curves = {"snr_db": swept["snr_db"], "psnr": swept["psnr"]}
    _CURVES[cache] = curves
    return curves


# ---------------------------------------------------------------------------------------------------
# the classical reference at the same channel uses


def _physical_esn0(link: torch.nn.Module | None, snr_db: float, snr_kind: str) -> float | None:
    """The Es/N0 per complex symbol (dB) on the channel under ``link`` at a point of ``snr_kind``; a
    BSC that derives p from a modulation's SNR stands for that modulation, uncoded."""
    if isinstance(link, BSCLink):
        if link.p is not None:
            return None
        return link_snr_db(from_spec(f"{link.modulation}-awgn"), snr_db, snr_kind)
    return link_snr_db(link, snr_db, snr_kind) if link_snr_kind(link) == "esn0" else None


@functools.lru_cache(maxsize=16)
def _classical_system(payload_bits: int) -> torch.nn.Module:
    """The registered ``separate`` system (JPEG within ``payload_bits`` bits), kept so that its
    encoded streams are reused while only the SNR moves."""
    return FAMILIES["separate"].build({"codec": "jpeg", "payload_bits": payload_bits})


def classical(tiles: torch.Tensor, spec: str | dict[str, Any] | None, payload_kind: str, link: torch.nn.Module | None, snr_db: float, snr_kind: str, uses: int | None, seed: int) -> dict[str, Any] | None:
    """The classical reference at the same channel uses: the registered ``separate`` system (JPEG
    within a bit budget) over 5G LDPC + QAM (:data:`CLASSICAL_MCS`, codewords sized to ``uses``
    channel uses per block by :func:`digisem.systems.classical.mcs_plan`) on the channel of the
    system's link ``spec`` (for ``payload_kind``; built as ``link``; a BSC stands for AWGN) at the
    same Es/N0, for the blocks ``tiles [N, 3, b, b]``.

    Output: ``{"psnr", "payload_bits", "channel_uses", "link", "failures", "esn0", "blocks"}``
    (failures: blocks shown as the codec's fallback); ``{"note", "link"}`` when it cannot run (no
    codeword fits, or the classical module's interface changed); None where the family is not
    registered or the link has no Es/N0 (a fixed-p BSC)."""
    if "separate" not in FAMILIES or uses is None:
        return None
    esn0 = _physical_esn0(link, snr_db, snr_kind)
    if esn0 is None:
        return None
    mapping = parse_spec(spec, payload_kind)
    channel = mapping.get("channel", "awgn") if mapping else "awgn"
    label = f"5G LDPC {CLASSICAL_MCS} on {channel}"
    try:
        plan = separate_coding.mcs_plan(CLASSICAL_MCS, uses)
        bit_link = separate_coding.mcs_link(plan, channel)
        system = _classical_system(plan.payload_bits)
        with torch.no_grad():
            out = system(tiles, link=bit_link, snr_db=esn0, generator=point_generator(seed, snr_db))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        return {"note": f"classical JPEG + {label} at {uses} channel uses: {err}", "link": label}
    return {"psnr": float(metrics.psnr(out["x_hat"].float(), tiles).mean()), "payload_bits": out.get("bits_per_image"), "channel_uses": out.get("channel_uses_per_image"),
            "link": label, "failures": out.get("failures", out.get("decode_failures")), "esn0": esn0, "blocks": len(tiles)}


# ---------------------------------------------------------------------------------------------------
# figures and text


def scatter_figure(result: Result):
    """Matplotlib figure of the received symbols, each coloured by the point that was sent (a
    discrete constellation: one colour per point; analog symbols: by the sent phase)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 4), dpi=80)
    if result.sent is None:
        axes.text(0.5, 0.5, "no constellation on this link\n(a BSC flips bits)", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    points, index = np.unique(np.round(result.sent, 4), return_inverse=True)
    if len(points) <= 256:
        colours, cmap = index, "tab20" if len(points) <= 20 else "nipy_spectral"
    else:
        colours, cmap = np.angle(result.sent), "hsv"
    axes.scatter(result.received_symbols.real, result.received_symbols.imag, c=colours, cmap=cmap, s=8, alpha=0.7)
    if len(points) <= 256:
        axes.scatter(points.real, points.imag, marker="x", c="black", s=20, linewidths=1)
    axes.set_title(f"{len(result.sent)} received symbols", fontsize=10)
    axes.set_xlabel("in-phase")
    axes.set_ylabel("quadrature")
    axes.set_aspect("equal", adjustable="datalim")
    figure.tight_layout()
    return figure


def curve_figure(result: Result):
    """Matplotlib figure of this image's curve (PSNR or the reference class's probability vs SNR)
    with a marker at the current SNR."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 3.2), dpi=80)
    item = result.entry
    metric = "psnr" if item.task == "reconstruction" else "probability"
    current = result.psnr if metric == "psnr" else (result.top3 or {}).get(max(result.top3 or {"": 0}, key=(result.top3 or {"": 0}).get))
    if result.curve is not None:
        axes.plot(result.curve["snr_db"], result.curve[metric], "o-", ms=3, label="this image")
    if current is not None:
        axes.plot([result.snr_db], [current], "r*", ms=12, label=f"{result.snr_db:g} dB")
    axes.set_xlabel(f"{SNR_LABELS[item.snr_kind]} (dB)")
    axes.set_ylabel("PSNR (dB)" if metric == "psnr" else "probability of the class")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return figure


def summary(result: Result) -> str:
    """The page's numbers as Markdown: scores, accounting, payload errors, the classical reference,
    what was done to the input and the compute time."""
    lines = []
    if result.psnr is not None:
        lines.append(f"**PSNR {result.psnr:.2f} dB**, SSIM {result.ssim:.3f}")
    if result.bits_per_image is not None:
        lines.append(f"bits per image: {result.bits_per_image:,}")
    if result.channel_uses_per_image is not None:
        lines.append(f"channel uses per image: {result.channel_uses_per_image:,}")
    if result.ber is not None:
        lines.append(f"measured payload BER: {result.ber:.2e}")
    if result.symbol_mse is not None:
        lines.append(f"received symbol error |y - x|²: {result.symbol_mse:.4f} (per complex symbol)")
    if result.classical is not None:
        if "psnr" in result.classical:
            failed = result.classical.get("failures")
            lines.append(f"classical JPEG + LDPC ({result.classical['link']}, {result.classical['payload_bits']:,} bits, {result.classical['channel_uses']:,} channel uses, "
                         f"Es/N0 {result.classical['esn0']:.2f} dB): PSNR {result.classical['psnr']:.2f} dB"
                         + (f" ({failed} of {result.classical['blocks']} blocks failed: no JPEG fits, or the stream arrived damaged)" if failed else ""))
        else:
            lines.append(result.classical["note"])
    if result.receiver:
        lines.append(f"receiver: {result.receiver}")
    lines += result.notes
    lines.append(f"computed in {result.seconds:.2f} s")
    return "\n\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# the Gradio page


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as err:
        raise AppError(f"the app needs Gradio, an optional extra: {INSTALL_HINT}") from err
    return gradio


def controls(name: str) -> dict[str, Any]:
    """What the controls show for zoo model ``name``: ``links`` (label, key), ``snr`` (label,
    low, high, default), ``denoisers`` (fast ones on the radio; ``slow`` behind the button),
    ``restorer`` (label or None) and ``classifier`` (whether epsilon applies)."""
    item = entry(name)
    return {"links": list(item.links), "snr": (item.snr_label, *item.snr_range, item.default_snr),
            "denoisers": [d for d in item.denoisers if d not in item.slow_denoisers], "slow": list(item.slow_denoisers),
            "restorer": f"{item.restorer} (the model's restorer) on" if item.restorer else None, "classifier": item.task == "classification"}


def page_outputs(request: Request, progress=None) -> tuple[Any, ...]:
    """The output components' values for ``request``: ``(message, original, received, top-3 clean,
    top-3 attacked, numbers, scatter, curve)``; bad input gives a message and empty outputs."""
    try:
        result = transmit(request, progress=progress)
    except (AppError, CheckpointError) as err:
        return (f"⚠️ {err}", None, None, None, None, "", None, None)
    return ("", _enlarged(result.original), _enlarged(result.received), result.top3, result.top3_attacked, summary(result), scatter_figure(result), curve_figure(result))


def _enlarged(image: np.ndarray | None, side: int = 256) -> np.ndarray | None:
    """``image [H, W, 3]`` repeated to about ``side`` pixels a side for display (pixels stay sharp)."""
    if image is None:
        return None
    factor = max(1, side // max(image.shape[:2]))
    return image.repeat(factor, 0).repeat(factor, 1)


def build_page():
    """The Gradio Blocks of the page (needs the ``app`` extra)."""
    gr = _gradio()
    groups = catalog()
    choices = [(item.label, item.name) for family in sorted(groups) for item in groups[family]]
    first = choices[0][1] if choices else None
    start = controls(first) if first else None
    samples = sample_names()
    with gr.Blocks(title="digisem app", analytics_enabled=False) as page:
        gr.Markdown("# digisem: what arrives over a digital link\nPick an image, a pretrained system (by family), a channel and an SNR.")
        with gr.Row():
            with gr.Column(scale=1):
                model = gr.Dropdown(choices=choices, value=first, label="system (zoo model, by family)", elem_id="model")
                sample = gr.Dropdown(choices=samples, value=samples[0], label="image: a bundled sample", elem_id="sample")
                upload = gr.File(label="... or upload an image (large ones are resized and tiled)", type="filepath", elem_id="upload")
                link = gr.Dropdown(choices=start["links"], value=TRAINED, label="channel", elem_id="link")
                snr = gr.Slider(start["snr"][1], start["snr"][2], value=start["snr"][3], step=0.5, label=start["snr"][0], elem_id="snr")
                denoiser = gr.Radio(start["denoisers"], value="none", label="denoiser (symbol codecs)", visible=len(start["denoisers"]) > 1, elem_id="denoiser")
                slow = gr.Button("run the paper's sampler (" + ", ".join(start["slow"]) + "; slow)", visible=bool(start["slow"]), elem_id="slow")
                restorer = gr.Checkbox(value=True, label=start["restorer"] or "restorer on", visible=start["restorer"] is not None, elem_id="restorer")
                epsilon = gr.Slider(0.0, 0.064, value=0.016, step=0.004, label="semantic noise epsilon (i-FGSM, images in [0, 1])", visible=start["classifier"], elem_id="epsilon")
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
            with gr.Column(scale=2):
                message = gr.Markdown(elem_id="message")
                with gr.Row():
                    original = gr.Image(label="original (as sent)", elem_id="original", interactive=False, height=280)
                    received = gr.Image(label="received", elem_id="received", interactive=False, height=280, visible=not start["classifier"])
                with gr.Row(visible=start["classifier"]) as labels:
                    top3 = gr.Label(num_top_classes=3, label="top-3 classes, clean", elem_id="top3")
                    attacked = gr.Label(num_top_classes=3, label="top-3 classes, under semantic noise", elem_id="top3_attacked")
                numbers = gr.Markdown(elem_id="numbers")
                with gr.Row():
                    scatter = gr.Plot(label="received constellation", elem_id="scatter")
                    curve = gr.Plot(label="PSNR vs SNR", elem_id="curve")
        inputs = [model, sample, upload, link, snr, denoiser, restorer, epsilon, seed]
        outputs = [message, original, received, top3, attacked, numbers, scatter, curve]

        def request_of(name, sample_name, path, link_key, snr_db, denoiser_name, restorer_on, eps, seed_value) -> Request:
            return Request(name, path or sample_name, link_key, snr_db, denoiser_name or "none", bool(restorer_on), float(eps or 0.0), int(seed_value or 0))

        def update(*values):
            return page_outputs(request_of(*values))

        def run_slow(*values, progress=gr.Progress()):
            chosen = controls(values[0])["slow"]
            if not chosen:
                return page_outputs(request_of(*values))
            request = request_of(*values)
            request.denoiser = chosen[0]
            return page_outputs(request, progress=lambda done, total: progress((done, total), desc="network evaluations", unit="evaluations"))

        def switch(name):
            shown = controls(name)
            return (gr.update(choices=shown["links"], value=TRAINED), gr.update(minimum=shown["snr"][1], maximum=shown["snr"][2], value=shown["snr"][3], label=shown["snr"][0]),
                    gr.update(choices=shown["denoisers"], value="none", visible=len(shown["denoisers"]) > 1),
                    gr.update(visible=bool(shown["slow"]), value="run the paper's sampler (" + ", ".join(shown["slow"]) + "; slow)"),
                    gr.update(visible=shown["restorer"] is not None, label=shown["restorer"] or "restorer on", value=True), gr.update(visible=shown["classifier"]),
                    gr.update(visible=not shown["classifier"]), gr.update(visible=shown["classifier"]))

        model.change(switch, model, [link, snr, denoiser, slow, restorer, epsilon, received, labels]).then(update, inputs, outputs)
        for control in (sample, upload, link, denoiser, restorer, epsilon, seed):
            control.change(update, inputs, outputs, trigger_mode="always_last")
        snr.change(update, inputs, outputs, trigger_mode="always_last", show_progress="minimal")
        slow.click(run_slow, inputs, outputs)
        page.load(update, inputs, outputs)
    return page


def launch(host: str = "127.0.0.1", port: int = 7860, threads: int = 1) -> None:
    """Serve the page at ``http://host:port`` until interrupted (offline: bundled images and the zoo).

    ``threads``: torch's intra-op threads. One 32x32 image gains nothing from more, and on a busy
    2-core machine two threads made an SNR change 1-10 s instead of about 0.1 s."""
    gr = _gradio()
    torch.set_num_threads(threads)
    theme = gr.themes.Default(font=["sans-serif"], font_mono=["monospace"])
    build_page().launch(server_name=host, server_port=port, share=False, show_error=False, inbrowser=False, theme=theme)
