"""``digisem demo``: the bundled sample images through pretrained systems, no network, no data folder.

Part 1, bit-level systems (AMP-SC, SoftHe22): 4-bit integers over a real 16-QAM Gray link (AWGN, hard
decisions) and over the paper's BSC model, SNR = Eb/N0. Part 2, symbol-level systems (when the zoo
holds them): the JCM 64-QAM codec over AWGN with no denoising, the per-symbol MMSE estimator and SCDM
with its jointly trained decoder (and, when present, SCDM's one-step Tweedie sampler with its own
joint decoder), SNR = Es/N0 per complex symbol. Part 3 (when the zoo holds them): the robust
semantic communication classifiers (masked VQ-VAE with FIM and adversarial training, and JSCC) over
their MIMO links, clean and under semantic noise. Writes PSNR- and accuracy-vs-SNR plots,
reconstruction grids, the results JSON files and a report (``report.html``, which opens in a
browser, and ``report.md``).
"""

from __future__ import annotations

import html
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from . import zoo
from .data import sample_images
from .evaluate import (
    evaluate_images,
    evaluate_symbol_system,
    make_image_link,
    transmit_symbols,
)
from .io import atomic_write, run_metadata, write_json
from .plots import plot_metric, reconstruction_grid

DEMO_MODELS = ("ampsc-cifar10-4bit", "softhe22-cifar10-4bit")
SYMBOL_MODELS = ("jcm-cifar10-64qam", "scdm-cifar10-64qam")
TWEEDIE_MODEL = "scdm-tweedie-cifar10-64qam"
"""Optional: SCDM's score network with the one-step sampler and its own joint decoder."""
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


def run_demo(out: str | Path, snrs: list[float], models: tuple[str, ...] = DEMO_MODELS, seed: int = 0, progress: bool = True) -> Path:
    """Run the demo; returns the path of ``report.html``."""
    out = Path(out)
    sections = [bit_level_demo(out, snrs, models, seed, progress)]
    if all(name in zoo.zoo_names() for name in SYMBOL_MODELS):
        sections.append(symbol_level_demo(out, seed, progress))
    if all(name in zoo.zoo_names() for name in ROBUST_MODELS):
        sections.append(robust_demo(out, seed, progress))
    return write_report(out, sections)


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
        for channel, description in (("awgn", "16-QAM AWGN"), ("bsc", "BSC")):
            curves = evaluate_images(model, dataset, snrs, channel, batch_size=len(dataset), seed=seed, progress=progress)
            results = {"name": f"{label} ({description})", "model": model_name, "description": f"{label} on the bundled samples over {description}", "results": curves,
                       "meta": run_metadata(seed, "cpu", dataset="bundled sample images", n_images=len(dataset), channel=channel, snr_kind="ebn0", modulation="16qam")}
            write_json(out / f"{model_name}-{channel}.json", results)
            curves_list.append(results)
            if channel == "awgn":
                section.rows.append((label, curves["psnr"]))
        image_link = make_image_link("awgn")
        with torch.no_grad():
            for snr in GRID_SNRS:
                generator = torch.Generator().manual_seed(seed)
                rows.append((f"{label} {snr:g} dB", image_link.send(model, images, snr, generator)["x_hat"]))
    plot_metric(curves_list, "psnr", out / section.plot, title="bundled samples, 4 bits/value, 16-QAM Gray")
    reconstruction_grid(rows, out / section.grid, title="received over the real 16-QAM AWGN link (Eb/N0)")
    return section


def symbol_level_demo(out: Path, seed: int, progress: bool) -> Section:
    """JCM 64-QAM with no denoising, MMSE and SCDM (joint decoder): ``psnr_scdm.png``, ``grid_scdm.png``."""
    from .systems.scdm import MMSEDenoiser

    images, names = sample_images("cifar")
    dataset = TensorDataset(images)
    codec, _ = zoo.load(SYMBOL_MODELS[0])
    scdm, _ = zoo.load(SYMBOL_MODELS[1])
    receivers = [("none", "JCM, no denoising", None, codec.decoder), ("mmse", "JCM + per-symbol MMSE", MMSEDenoiser(codec.prior_symbols()), codec.decoder),
                 ("scdm-joint", "SCDM + joint decoder", scdm, scdm.decoder or codec.decoder)]
    if TWEEDIE_MODEL in zoo.zoo_names():
        tweedie, _ = zoo.load(TWEEDIE_MODEL)
        receivers.append(("tweedie-joint", "SCDM-Tweedie + joint decoder", tweedie, tweedie.decoder or codec.decoder))
    section = Section("Symbol-level systems: JCM 64-QAM and SCDM", f"The same {len(names)} images through the JCM codec (learned 64-QAM, 128 symbols per image, trained at 18 dB) "
                      f"over AWGN, with {3 + (TWEEDIE_MODEL in zoo.zoo_names())} receivers. PSNR in dB, mean over images", "Es/N0", list(SYMBOL_SNRS), "psnr_scdm.png", "grid_scdm.png")
    curves_list, rows = [], [("original", images)]
    for key, label, denoiser, decoder in receivers:
        curves = evaluate_symbol_system(codec, dataset, list(SYMBOL_SNRS), denoiser=denoiser, decoder=decoder, batch_size=len(dataset), seed=seed, progress=progress, label=label)
        results = {"name": label, "model": ", ".join(SYMBOL_MODELS), "description": f"{label} on the bundled samples over AWGN", "results": curves,
                   "meta": run_metadata(seed, "cpu", dataset="bundled sample images", n_images=len(dataset), channel="awgn", snr_kind="esn0", modulation="learned 64-QAM")}
        write_json(out / f"jcm-64qam-{key}.json", results)
        curves_list.append(results)
        section.rows.append((label, curves["psnr"]))
        with torch.no_grad():
            for snr in SYMBOL_GRID_SNRS:
                restored = transmit_symbols(codec, dataset, snr, denoiser, batch_size=len(dataset), seed=seed).restored
                rows.append((f"{key} {snr:g} dB", decoder(restored)[0]))
    plot_metric(curves_list, "psnr", out / section.plot, title="bundled samples, JCM learned 64-QAM, AWGN")
    reconstruction_grid(rows, out / section.grid, title="JCM 64-QAM over AWGN (Es/N0): " + ", ".join(key for key, *_ in receivers))
    return section


def robust_demo(out: Path, seed: int, progress: bool) -> Section:
    """The masked VQ-VAE (FIM + adversarial training) and JSCC classifiers over their MIMO links, clean
    and under i-FGSM semantic noise: ``accuracy_robust.png``, ``perturbation.png``, results JSON."""
    from .evaluate import evaluate_classification
    from .train.robust import labelled_samples, make_attack, make_link

    dataset = labelled_samples()
    attack = make_attack({"kind": "ifgsm", "epsilon": ROBUST_EPSILON, "step": ROBUST_EPSILON / 4, "steps": 5})
    section = Section("Robust semantic communication: classification under semantic noise",
                      f"The {len(dataset)} bundled CIFAR-10 images classified by the masked VQ-VAE with FIM and adversarial training (indices over LDPC 1/2 + 16-QAM + "
                      f"MIMO 8x4 eigenmodes) and by the analog JSCC baseline, clean and with i-FGSM semantic noise (epsilon {ROBUST_EPSILON}) at the transmitter. "
                      "Accuracy (8 images: steps of 0.125; docs/results/robust.md has the 1,000-image numbers)", "Es/N0", list(ROBUST_SNRS), "accuracy_robust.png", "perturbation.png", digits=3)
    curves_list = []
    for model_name in ROBUST_MODELS:
        model, metadata = zoo.load(model_name)
        label = metadata.get("name", model_name)
        curves = evaluate_classification(model, dataset, list(ROBUST_SNRS), make_link(zoo.recorded_link(metadata)), attack=attack, batch_size=len(dataset), seed=seed, progress=progress)
        results = {"name": label, "model": model_name, "description": f"{label} on the bundled samples, clean and under i-FGSM epsilon {ROBUST_EPSILON}", "results": curves,
                   "meta": run_metadata(seed, "cpu", dataset="bundled sample images", n_images=len(dataset), link=zoo.recorded_link(metadata), snr_kind="esn0")}
        write_json(out / f"{model_name}-attack.json", results)
        curves_list.append(results)
        section.rows += [(f"{label}, clean", curves["accuracy"]), (f"{label}, semantic noise", curves["accuracy_attacked"])]
    attacked_results = [{**results, "name": results["name"] + " (semantic noise)", "results": {"snr_db": results["results"]["snr_db"], "accuracy": results["results"]["accuracy_attacked"]}}
                        for results in curves_list]
    plot_metric(curves_list + attacked_results, "accuracy", out / section.plot, title=f"bundled samples, clean and i-FGSM epsilon {ROBUST_EPSILON}")
    model, _ = zoo.load(ROBUST_MODELS[0])
    images, labels = dataset.tensors
    generator = torch.Generator().manual_seed(seed)
    adversarial = attack(lambda x: torch.nn.functional.cross_entropy(model(x, generator=generator)["logits"], labels, reduction="none"), images, generator)
    rows = [("clean", images), (f"noise x{0.5 / ROBUST_EPSILON:.0f}", (adversarial - images) / (2 * ROBUST_EPSILON) + 0.5), ("attacked", adversarial)]
    reconstruction_grid(rows, out / section.grid, title=f"{ROBUST_MODELS[0]}: i-FGSM semantic noise, epsilon {ROBUST_EPSILON}")
    return section


def write_report(out: Path, sections: list[Section]) -> Path:
    """``report.md`` and ``report.html`` with each section's PSNR table, plot and grid."""
    lines = ["# digisem demo", ""]
    body = ""
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
