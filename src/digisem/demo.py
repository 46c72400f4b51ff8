"""``digisem demo``: the bundled sample images through pretrained systems, no network, no data folder.

Part 1, bit-level systems (AMP-SC, SoftHe22): 4-bit integers over a real 16-QAM Gray link (AWGN, hard
decisions) and over the paper's BSC model, SNR = Eb/N0. Part 2, symbol-level systems (when the zoo
holds them): the JCM 64-QAM codec over AWGN with no denoising, the per-symbol MMSE estimator and SCDM
with its jointly trained decoder (and, when present, SCDM's one-step Tweedie sampler with its own
joint decoder, and DeepJSCC as the analog reference), SNR = Es/N0 per complex symbol. Part 3 (when the
zoo holds them): the robust semantic communication classifiers (masked VQ-VAE with FIM and adversarial
training, and JSCC) over their MIMO links, clean and under semantic noise. Writes PSNR- and
accuracy-vs-SNR plots, reconstruction grids, the results JSON files and a report (``report.html``,
which opens in a browser, and ``report.md``).

Every system is a :class:`~digisem.systems.base.System` swept by :func:`digisem.evaluate.sweep`; a
restorer from the zoo (SCDM) is scored on its codec (:func:`digisem.zoo.sample_system`).
"""

from __future__ import annotations

import datetime
import html
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import TensorDataset

from . import zoo
from .attacks import from_spec as attack_from_spec
from .data import labelled_samples, sample_images
from .evaluate import point_generator, reference_results, sweep, task_loss
from .io import atomic_write, run_metadata, write_json
from .link import from_spec, link_snr_db
from .plots import plot_metric, reconstruction_grid
from .systems.scdm import MMSEDenoiser

DEMO_MODELS = ("ampsc-cifar10-4bit", "softhe22-cifar10-4bit")
BIT_LINKS = (("awgn", "16qam-awgn", "16-QAM AWGN"), ("bsc", "bsc", "BSC"))
"""Part 1's links: ``(file suffix, link spec, description)``; the first is also the grid's."""
SYMBOL_MODELS = ("jcm-cifar10-64qam", "scdm-cifar10-64qam")
TWEEDIE_MODEL = "scdm-tweedie-cifar10-64qam"
"""Optional: SCDM's score network with the one-step sampler and its own joint decoder."""
ANALOG_MODEL = "deepjscc-cifar10-1_6"
"""Optional: DeepJSCC (bandwidth ratio 1/6), the analog reference of Part 2."""
SYMBOL_LINK = "awgn"
REFERENCE_CODEC = "webp"
"""The classical reference of Parts 1 and 2: WebP + 5G LDPC + QAM (best MCS per SNR) at each part's channel uses."""
ROBUST_MODELS = ("vqvae-fim-at-cifar10", "jscc-cifar10")
"""Part 3 (when the zoo holds them): the robust semcom classifiers, clean and under semantic noise."""
ROBUST_SNRS = (-9.0, -3.0, 3.0, 9.0, 18.0)
ROBUST_EPSILON = 0.016
GRID_SNRS = (0.0, 6.0, 12.0)
SYMBOL_SNRS = (-18.0, -12.0, -6.0, 0.0, 6.0, 12.0, 18.0)
SYMBOL_GRID_SNRS = (-18.0, -6.0, 0.0, 12.0)


class Section:
    """One part of the report: a table over ``snrs`` (``axis`` names the SNR kind; values with ``digits``
    decimals), a plot and a grid of images."""

    def __init__(self, title: str, text: str, axis: str, snrs: list[float], plot: str, grid: str, digits: int = 2):
        self.title, self.text, self.axis, self.snrs, self.plot, self.grid, self.digits = title, text, axis, snrs, plot, grid, digits
        self.rows: list[tuple[str, list[float]]] = []


class Receiver(NamedTuple):
    """One system of Part 2: ``key`` (grid label), ``label`` (table row), the system, the results
    file stem, and the ``model`` and ``modulation`` recorded in that file."""

    key: str
    label: str
    system: nn.Module
    file: str
    model: str
    modulation: str


def run_demo(out: str | Path, snrs: list[float], models: tuple[str, ...] = DEMO_MODELS, seed: int = 0, progress: bool = True) -> Path:
    """Run the demo.

    Parameters
    ----------
    out : str or Path
        Output folder (created if needed).
    snrs : list of float
        Eb/N0 (dB) of Part 1.
    models : tuple of str
        Zoo names of Part 1's bit-level systems.
    seed : int
        Seeds every sweep (one generator per SNR, :func:`digisem.evaluate.sweep`) and grid.

    Output
    ------
    Path of ``report.html``.
    """
    out = Path(out)
    names = zoo.zoo_names()
    sections = [bit_level_demo(out, snrs, models, seed, progress)]
    if all(name in names for name in SYMBOL_MODELS):
        sections.append(symbol_level_demo(out, seed, progress))
    if all(name in names for name in ROBUST_MODELS):
        sections.append(robust_demo(out, seed, progress))
    return write_report(out, sections, seed)


def received_images(system: nn.Module, images: torch.Tensor, link: str, snr_db: float, snr_kind: str, generator: torch.Generator) -> torch.Tensor:
    """``system``'s reconstructions of ``images [B, 3, H, W]`` over ``link`` at ``snr_db`` dB of
    ``snr_kind`` (converted to the link's convention): ``[B, 3, H, W]`` in [0, 1]."""
    built = system.link_for(link)
    with torch.no_grad():
        return system(images, link=built, snr_db=link_snr_db(built, snr_db, snr_kind), generator=generator)["x_hat"]


def results_file(name: str, model: str, description: str, curves: dict[str, list[float]], seed: int, n_images: int, **meta: Any) -> dict[str, Any]:
    """A results file of the bundled sample images (``meta`` adds to the run metadata)."""
    return {"name": name, "model": model, "description": description, "results": curves,
            "meta": run_metadata(seed, "cpu", dataset="bundled sample images", n_images=n_images, **meta)}


def bit_level_demo(out: Path, snrs: list[float], models: tuple[str, ...], seed: int, progress: bool) -> Section:
    """AMP-SC-style models over 16-QAM AWGN and the BSC: ``psnr.png``, ``grid.png``, results JSON."""
    images, names = sample_images("cifar")
    dataset = TensorDataset(images)
    section = Section("Bit-level systems: 4 bits per value, 16-QAM Gray", f"The {len(names)} bundled CIFAR-10 sample images, sent as 4-bit integers over a real 16-QAM Gray link "
                      "(AWGN, hard decisions) by pretrained systems from the zoo. PSNR in dB, mean over images", "Eb/N0", snrs, "psnr.png", "grid.png")
    curves_list, rows = [], [("original", images)]
    for model_name in models:
        model, metadata = zoo.load(model_name)
        label = metadata.get("name", model_name)
        for channel, spec, description in BIT_LINKS:
            curves = sweep(model, spec, snrs, dataset, snr_kind="ebn0", batch_size=len(dataset), seed=seed, progress=progress, label=f"{label} {description}")
            results = results_file(f"{label} ({description})", model_name, f"{label} on the bundled samples over {description}", curves, seed, len(dataset),
                                   channel=channel, link=spec, snr_kind="ebn0", modulation="16qam")
            write_json(out / f"{model_name}-{channel}.json", results)
            curves_list.append(results)
            if spec == BIT_LINKS[0][1]:
                section.rows.append((label, curves["psnr"]))
        for snr in GRID_SNRS:
            rows.append((f"{label} {snr:g} dB", received_images(model, images, BIT_LINKS[0][1], snr, "ebn0", torch.Generator().manual_seed(seed))))
    offset = link_snr_db(from_spec(BIT_LINKS[0][1]), 0.0, "ebn0")
    reference = classical_reference(out, dataset, int(curves_list[0]["results"]["channel_uses"][0]), snrs, "ebn0", offset, seed, progress, "reference-webp-512")
    curves_list.append(reference)
    section.rows.append((reference["name"], reference["results"]["psnr"]))
    section.text += (f". The classical reference: {reference['description']}, at Es/N0 = Eb/N0 {reference['meta']['esn0_offset_db']:+.2f} dB "
                     f"(the 16-QAM link's bits per channel use); best MCS per SNR: {', '.join(reference['results']['mcs'])}")
    plot_metric(curves_list, "psnr", out / section.plot, title="bundled samples, 4 bits/value, 16-QAM Gray")
    reconstruction_grid(rows, out / section.grid, title="received over the real 16-QAM AWGN link (Eb/N0)")
    return section


def classical_reference(out: Path, dataset: TensorDataset, channel_uses: int, snrs: list[float], snr_kind: str, esn0_offset_db: float, seed: int, progress: bool,
                        file: str) -> dict[str, Any]:
    """:data:`REFERENCE_CODEC` + 5G LDPC + QAM over AWGN at ``channel_uses`` per image, drawn on an
    SNR axis ``snrs`` (dB) of kind ``snr_kind``: it runs at Es/N0 = ``snrs + esn0_offset_db`` (the
    axis system's own conversion). Written to ``out/<file>.json`` and returned (the results schema)."""
    reference = reference_results(REFERENCE_CODEC, channel_uses, snrs, dataset, "bundled sample images", channel="awgn", seed=seed, progress=progress,
                                  axis_offset_db=esn0_offset_db, snr_kind=snr_kind)
    write_json(out / f"{file}.json", reference)
    return reference


def symbol_receivers() -> list[Receiver]:
    """Part 2's systems: the JCM codec alone, with the per-symbol MMSE estimator, with each SCDM of
    the zoo (and its joint decoder), and DeepJSCC when the zoo holds it."""
    names = zoo.zoo_names()
    codec, _ = zoo.load(SYMBOL_MODELS[0])
    jcm = ", ".join(SYMBOL_MODELS)
    receivers = [Receiver("none", "JCM, no denoising", codec, "jcm-64qam-none", jcm, "learned 64-QAM"),
                 Receiver("mmse", "JCM + per-symbol MMSE", codec.with_parts(restorer=MMSEDenoiser(codec.prior_symbols())), "jcm-64qam-mmse", jcm, "learned 64-QAM")]
    for key, label, name in (("scdm-joint", "SCDM + joint decoder", SYMBOL_MODELS[1]), ("tweedie-joint", "SCDM-Tweedie + joint decoder", TWEEDIE_MODEL)):
        if name in names:
            restorer, metadata = zoo.load(name)
            receivers.append(Receiver(key, label, zoo.sample_system(restorer, metadata), f"jcm-64qam-{key}", jcm, "learned 64-QAM"))
    if ANALOG_MODEL in names:
        model, metadata = zoo.load(ANALOG_MODEL)
        receivers.append(Receiver("deepjscc", metadata.get("name", ANALOG_MODEL), model, f"{ANALOG_MODEL}-{SYMBOL_LINK}", ANALOG_MODEL, "analog"))
    return receivers


def symbol_level_demo(out: Path, seed: int, progress: bool) -> Section:
    """JCM 64-QAM with no denoising, MMSE and SCDM (joint decoder), and the DeepJSCC analog
    reference when present: ``psnr_scdm.png``, ``grid_scdm.png``, results JSON."""
    images, names = sample_images("cifar")
    dataset = TensorDataset(images)
    receivers = symbol_receivers()
    codecs = [receiver for receiver in receivers if receiver.modulation != "analog"]
    curves_list, rows, references = [], [("original", images)], []
    section = Section("Symbol-level systems: JCM 64-QAM and SCDM", "", "Es/N0", list(SYMBOL_SNRS), "psnr_scdm.png", "grid_scdm.png")
    for receiver in receivers:
        curves = sweep(receiver.system, SYMBOL_LINK, list(SYMBOL_SNRS), dataset, batch_size=len(dataset), seed=seed, progress=progress, label=receiver.label)
        results = results_file(receiver.label, receiver.model, f"{receiver.label} on the bundled samples over AWGN", curves, seed, len(dataset),
                               channel=SYMBOL_LINK, snr_kind="esn0", modulation=receiver.modulation)
        write_json(out / f"{receiver.file}.json", results)
        curves_list.append(results)
        section.rows.append((receiver.label, curves["psnr"]))
        if receiver.modulation == "analog":
            references.append(f"{receiver.label} as the analog reference ({curves['channel_uses'][0]:g} symbols per image)")
        for snr in SYMBOL_GRID_SNRS:
            generator = point_generator(seed, snr)
            rows.append((f"{receiver.key} {snr:g} dB", received_images(receiver.system, images, SYMBOL_LINK, snr, "esn0", generator)))
    classical = classical_reference(out, dataset, int(curves_list[0]["results"]["channel_uses"][0]), list(SYMBOL_SNRS), "esn0", 0.0, seed, progress, "reference-webp-128")
    curves_list.append(classical)
    section.rows.append((classical["name"], classical["results"]["psnr"]))
    section.text = (f"The same {len(names)} images through the JCM codec (learned 64-QAM, 128 symbols per image, trained at 18 dB) over AWGN, with {len(codecs)} receivers"
                    + "".join(f", and {reference}" for reference in references) + f". PSNR in dB, mean over images. The classical reference: {classical['description']}; "
                    f"best MCS per SNR: {', '.join(classical['results']['mcs'])}. SCDM with the paper's sampler falling below no denoising from -6 dB up is the "
                    "measured finding, not a bug: posterior sampling doubles the squared error (docs/results/scdm.md), which the one-step Tweedie receiver avoids")
    if references:
        section.title += ", with the analog reference"
    plot_metric(curves_list, "psnr", out / section.plot, title="bundled samples, JCM learned 64-QAM, AWGN")
    reconstruction_grid(rows, out / section.grid, title="JCM 64-QAM over AWGN (Es/N0): " + ", ".join(receiver.key for receiver in receivers))
    return section


def robust_demo(out: Path, seed: int, progress: bool) -> Section:
    """The masked VQ-VAE (FIM + adversarial training) and JSCC classifiers over their MIMO links, clean
    and under i-FGSM semantic noise: ``accuracy_robust.png``, ``perturbation.png``, results JSON."""
    dataset = labelled_samples()
    attack = attack_from_spec({"kind": "ifgsm", "epsilon": ROBUST_EPSILON, "step": ROBUST_EPSILON / 4, "steps": 5})
    section = Section("Robust semantic communication: classification under semantic noise",
                      f"The {len(dataset)} bundled CIFAR-10 images classified by the masked VQ-VAE with FIM and adversarial training (indices over LDPC 1/2 + 16-QAM + "
                      f"MIMO 8x4 eigenmodes) and by the analog JSCC baseline, clean and with i-FGSM semantic noise (epsilon {ROBUST_EPSILON}) at the transmitter. "
                      "Accuracy (8 images: steps of 0.125; docs/results/robust.md has the 1,000-image numbers)", "Es/N0", list(ROBUST_SNRS), "accuracy_robust.png", "perturbation.png", digits=3)
    curves_list = []
    for model_name in ROBUST_MODELS:
        model, metadata = zoo.load(model_name)
        label = metadata.get("name", model_name)
        link = zoo.recorded_link(metadata)
        curves = sweep(model, link, list(ROBUST_SNRS), dataset, attack=attack, batch_size=len(dataset), seed=seed, progress=progress, label=label)
        results = results_file(label, model_name, f"{label} on the bundled samples, clean and under i-FGSM epsilon {ROBUST_EPSILON}", curves, seed, len(dataset),
                               link=link, snr_kind="esn0")
        write_json(out / f"{model_name}-attack.json", results)
        curves_list.append(results)
        section.rows += [(f"{label}, clean", curves["accuracy"]), (f"{label}, semantic noise", curves["accuracy_attacked"])]
        section.text += recorded_accuracy(label, metadata)
    attacked_results = [{**results, "name": results["name"] + " (semantic noise)", "results": {"snr_db": results["results"]["snr_db"], "accuracy": results["results"]["accuracy_attacked"]}}
                        for results in curves_list]
    plot_metric(curves_list + attacked_results, "accuracy", out / section.plot, title=f"bundled samples, clean and i-FGSM epsilon {ROBUST_EPSILON}")
    model, _ = zoo.load(ROBUST_MODELS[0])
    images, labels = dataset.tensors
    generator = torch.Generator().manual_seed(seed)
    adversarial = attack(lambda x: task_loss(model(x, generator=generator), images, labels), images, generator)
    rows = [("clean", images), (f"noise x{0.5 / ROBUST_EPSILON:.0f}", (adversarial - images) / (2 * ROBUST_EPSILON) + 0.5), ("attacked", adversarial)]
    reconstruction_grid(rows, out / section.grid, title=f"{ROBUST_MODELS[0]}: i-FGSM semantic noise, epsilon {ROBUST_EPSILON}")
    return section


def recorded_accuracy(label: str, metadata: dict[str, Any]) -> str:
    """A sentence with the accuracy a zoo classifier's recorded results (its training run's test
    set) give at the SNR nearest 3 dB, clean and attacked; empty when none are recorded."""
    recorded = metadata.get("results", {})
    curves = recorded.get("results", {})
    if not curves.get("accuracy"):
        return ""
    index = min(range(len(curves["snr_db"])), key=lambda i: abs(curves["snr_db"][i] - 3.0))
    attacked = curves.get("accuracy_attacked")
    tail = f", {attacked[index]:.3f} under semantic noise" if attacked else ""
    images = recorded.get("meta", {}).get("n_images", "the")
    return f". {label} on {images} CIFAR-10 test images at {curves['snr_db'][index]:g} dB (its recorded results): {curves['accuracy'][index]:.3f} clean{tail}"


def provenance(seed: int) -> str:
    """One line saying what made the report: seed, digisem, torch and Python versions, git commit, UTC date."""
    meta = run_metadata(seed)
    made = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Seed {seed}; digisem {meta['digisem']} (git {meta['git'] or 'unknown'}), torch {meta['torch']}, Python {meta['python']}; made {made}."


def write_report(out: Path, sections: list[Section], seed: int = 0) -> Path:
    """``report.md`` and ``report.html`` with a provenance line and each section's table, plot and
    grid; returns the path of ``report.html``."""
    made = provenance(seed)
    lines = ["# digisem demo", "", made, ""]
    body = f"<p>{html.escape(made)}</p>"
    for section in sections:
        header = "| system | " + " | ".join(f"{s:g} dB" for s in section.snrs) + " |"
        lines += [f"## {section.title}", "", section.text + f"; SNR = {section.axis}:", "", header, "|" + "---|" * (len(section.snrs) + 1)]
        lines += ["| " + label + " | " + " | ".join(f"{v:.{section.digits}f}" for v in values) + " |" for label, values in section.rows]
        lines += ["", f"![{section.axis} sweep]({section.plot})", "", f"![images]({section.grid})", ""]
        cells = "".join(f"<th>{s:g} dB</th>" for s in section.snrs)
        table = "".join(f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{v:.{section.digits}f}</td>" for v in values) + "</tr>" for label, values in section.rows)
        body += (f"<h2>{html.escape(section.title)}</h2><p>{html.escape(section.text)}; SNR = {section.axis}:</p><table><tr><th>system</th>{cells}</tr>{table}</table>"
                 f"<p><img src='{section.plot}' alt='{section.axis} sweep'></p><p><img src='{section.grid}' alt='images' style='max-width:100%'></p>")
    atomic_write(out / "report.md", lambda tmp: tmp.write_text("\n".join(lines)))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>digisem demo</title>"
            f"<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .6em;text-align:right}}</style></head><body>"
            f"<h1>digisem demo</h1>{body}</body></html>")
    return atomic_write(out / "report.html", lambda tmp: tmp.write_text(page))
