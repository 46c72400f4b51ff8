"""The robust semantic communication paper's analyses on trained runs: prints tables, writes JSON and
plots (Fig. 4, 6, 7, 9, 10, Table I, retrieval, noise-related masking under L-infinity, L2 and patch
attacks, JPEG+LDPC baselines).

Usage: DIGISEM_DATA=../shared/data python benchmarks/robust_report.py --runs runs --scale cpu --out docs/results/robust
(uses the run folders ``<role>-<scale>`` that exist: vqvae-cifar10, vqvae-at-cifar10, robust-cifar10,
robust-noisemask-cifar10, jscc-cifar10, jscc-at-cifar10, the J sweep vqvae-j{4,16,64,256}-cifar10 and
vqvae-recon-cifar10; ``--scale zoo`` reads the zoo recipes' runs, e.g. robust-cifar10-zoo, and where a
run is missing the zoo model of its role, e.g. vqvae-fim-at-cifar10; ``--model ROLE=SOURCE`` names
any run folder or zoo model for a role). ``--parts fig4 fig6 ...`` computes only those sections and
merges them into an existing report: run two such commands side by side to use both cores, or add
the J sweep's and the reconstruction model's sections (``--parts fig5 fig11``) when those runs finish.
Fig. 4's JPEG+LDPC rows use the baselines' own classifiers (jpeg-classifier[-at]-cifar10) when they
exist, else the clean (full) system's classifier on the JPEGs.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from digisem import analyses, zoo
from digisem.attacks import from_spec as attack_from_spec
from digisem.data import CIFAR10
from digisem.evaluate import sweep, task_loss
from digisem.io import atomic_write, run_metadata, write_json
from digisem.link import from_spec
from digisem.metrics import recall_at_k
from digisem.systems.vqvae import (
    jpeg_ldpc_symbols,
    masked_vqvae_symbols,
    redundant_features,
)

ROLES = {"vqvae-cifar10": "Masked VQ-VAE", "vqvae-at-cifar10": "Masked VQ-VAE + AT + AWP", "robust-cifar10": "Masked VQ-VAE + AT + AWP + FIM",
         "robust-noisemask-cifar10": "Masked VQ-VAE + AT + AWP + FIM, noise-related masking",
         "jscc-cifar10": "JSCC", "jscc-at-cifar10": "JSCC + AT"}
"""The systems compared, by role (a run folder is ``<role>-<scale>``), with their labels."""
ZOO_NAMES = {"vqvae-cifar10": "vqvae-cifar10", "vqvae-at-cifar10": "vqvae-at-cifar10", "robust-cifar10": "vqvae-fim-at-cifar10", "jscc-cifar10": "jscc-cifar10",
             "jscc-at-cifar10": "jscc-at-cifar10", "jpeg-classifier-cifar10": "jpeg-classifier-cifar10", "jpeg-classifier-at-cifar10": "jpeg-classifier-at-cifar10"}
"""The zoo model of each role, which ``--scale zoo`` uses where the run folder is missing."""
JPEG_ROLES = {"jpeg-classifier-cifar10": "JPEG+LDPC", "jpeg-classifier-at-cifar10": "JPEG+LDPC+AT"}
"""The JPEG+LDPC baselines' own classifiers (run folders ``<role>-<scale>``), by the Fig. 4 row they make."""
DIGITAL_LINK = from_spec({"modulation": "16qam", "channel": "mimo-8x4-svd", "code": "ldpc-1/2"})
"""The paper's digital link (LDPC 1/2 + 16-QAM + MIMO 8x4 eigenmodes), which the JPEG baselines use."""
J_SWEEP = (4, 16, 64, 256)
SCALES = ("cpu", "zoo")
FIG11_EPSILON = 0.012  # the paper's Fig. 11(b)
PAPER_JPEG_BITS = round(32 * 32 * 3 * 8 / 11.2)  # the paper's JPEG compression ratio Cr = 11.2 (Table I) at 32x32
MASKING_ATTACKS = {
    "ifgsm": {"kind": "ifgsm", "epsilon": 0.016, "step": 0.004, "steps": 5},
    "pgd-l2": {"kind": "pgd-l2", "epsilon": round(0.016 * 3072 ** 0.5, 3), "step": 0.25, "steps": 5},
    "patch-8px-corner": {"kind": "patch", "size": 8, "step": 0.05, "steps": 10, "top": 0, "left": 0},
}
"""Semantic noise for the uniform vs noise-related masking comparison: the evaluation's L-infinity
i-FGSM, L2 PGD with the L2 norm of the largest L-infinity 0.016 perturbation (energy where the
gradient is), and an 8x8 patch at the same corner of every image (4 of the 64 patches)."""


def label(name: str) -> str:
    """The label of a run folder ``<role>-<scale>`` (or of a baseline's name)."""
    role, _, scale = name.rpartition("-")
    return ROLES.get(role if scale in SCALES else name, name)


def ifgsm(epsilon: float, steps: int = 5):
    """Iterative FGSM of the evaluation (K = 5, alpha = 1.25 epsilon / K); None for epsilon 0."""
    return attack_from_spec({"kind": "ifgsm", "epsilon": epsilon, "step": 1.25 * epsilon / steps, "steps": steps}) if epsilon > 0 else None


def attack_batch(model, images: torch.Tensor, labels: torch.Tensor, attack, seed: int) -> torch.Tensor:
    """Semantic noise from ``attack`` (an :func:`digisem.attacks.from_spec` attack) on one batch,
    against ``model`` without its channel."""
    generator = torch.Generator().manual_seed(seed)
    return attack(lambda x: task_loss(model(x, generator=generator), images, labels), images, generator)


def save_figure(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def line_plot(path: Path, x_label: str, y_label: str, curves: list[tuple[str, list[float], list[float], str]], title: str) -> None:
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for label, xs, ys, style in curves:
        ax.plot(xs, ys, style, label=label)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    save_figure(fig, path)


def draw_line_figures(report: dict, out: Path) -> None:
    """Figs. 4-8 from a report (also ``--replot``: redraw from ``report.json`` without recomputing)."""
    snr = report["snr_db"]
    curves = []
    for index, (name, result) in enumerate(report["fig4"].items()):
        curves.append((label(name), result["snr_db"], result["accuracy"], f"-oC{index}"))
        curves.append((label(name) + " (semantic noise)", result["snr_db"], result["accuracy_attacked"], f"--xC{index}"))
    line_plot(out / "fig4_accuracy_vs_snr.png", "Es/N0 (dB)", "accuracy", curves, "CIFAR-10 accuracy, MIMO 8x4, clean (-) and i-FGSM eps 0.016 (--)")
    if "fig5" in report:
        line_plot(out / "fig5_codebook_size.png", "Es/N0 (dB)", "accuracy", [(f"J = {j}", r["snr_db"], r["accuracy"], "-o") for j, r in report["fig5"].items()], "masked VQ-VAE, clean training, codebook size J")
    line_plot(out / "fig6_accuracy_vs_epsilon.png", "epsilon (L-inf, images in [0, 1])", "accuracy",
              [(label(name), r["epsilon"], r["accuracy"], "-o") for name, r in report["fig6"].items()], f"accuracy vs semantic-noise budget, Es/N0 {snr:g} dB")
    curves = []
    for index, (name, result) in enumerate(report["fig7"].items()):
        for style, (epsilon, values) in zip(("-o", "--s", ":^", "-.d"), result["accuracy"].items()):
            curves.append((f"{label(name)}, eps {float(epsilon):g}", result["keep_ratio"], values, f"{style}C{index}"))
    line_plot(out / "fig7_accuracy_vs_reserving_ratio.png", "reserving ratio (fraction of patches sent)", "accuracy", curves, f"trained at 0.5, Es/N0 {snr:g} dB")
    curves = []
    for index, (name, result) in enumerate(report.get("fig8", {}).items()):
        if "accuracy_universal" in result:
            curves.append((f"{label(name)}, universal (Alg. 1)", result["ssnr_db"], result["accuracy_universal"], f"-oC{index}"))
        curves.append((f"{label(name)}, Gaussian, same power", result["ssnr_db"], result["accuracy_gaussian"], f"--xC{index}"))
    if curves:
        line_plot(out / "fig8_receiver_noise.png", "signal-to-semantic-noise ratio (dB)", "accuracy", curves, f"receiver-side noise, block-fading MIMO 8x4 eigenmodes, Es/N0 {snr:g} dB")


def reconstruction_under_noise(run: Path, test_set, args, out: Path) -> dict:
    """PSNR at ``args.snr`` with and without i-FGSM noise (maximizing the MSE) on CIFAR-10 and on the
    central 256x256 crops of Kodak24 cut into 32x32 tiles, plus grids of both."""
    from digisem.data import Kodak24
    from digisem.imageio import tile, untile
    from digisem.plots import reconstruction_grid

    model, _ = zoo.load(run)
    link = model.link_for(json.loads((run / "results.json").read_text())["meta"]["link"])
    kodak = Kodak24(args.data, crop=256)
    tiles, layouts = zip(*(tile(kodak[index], 32) for index in range(len(kodak))))
    kodak_tiles = torch.utils.data.TensorDataset(torch.cat(tiles), torch.zeros(sum(t.shape[0] for t in tiles), dtype=torch.long))
    result = {}
    for name, dataset in (("cifar10", test_set), ("kodak24_tiles", kodak_tiles)):
        curves = sweep(model, link, [args.snr], dataset, attack=ifgsm(FIG11_EPSILON), seed=args.seed, progress=False)
        result[name] = {key: curves[key] for key in ("snr_db", "psnr", "psnr_attacked")}

    def mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (model(x, generator=torch.Generator().manual_seed(args.seed))["x_hat"] - target).pow(2).flatten(1).mean(1)

    images = torch.stack([test_set[index][0] for index in range(8)])
    kodak_image = tiles[0]
    rows_cifar, rows_kodak = [("original", images)], [("original", untile(kodak_image, layouts[0])[None])]
    for label, batch, rows, layout in (("cifar", images, rows_cifar, None), ("kodak", kodak_image, rows_kodak, layouts[0])):
        generator = torch.Generator().manual_seed(args.seed)
        attacked = ifgsm(FIG11_EPSILON)(lambda x, target=batch: mse(x, target), batch, generator)
        with torch.no_grad():
            for name, x in (("clean input", batch), ("semantic noise", attacked)):
                x_hat = model(x, snr_db=args.snr, link=link, generator=torch.Generator().manual_seed(args.seed))["x_hat"]
                rows.append((f"{name}, {args.snr:g} dB", x_hat if layout is None else untile(x_hat, layout)[None]))
    reconstruction_grid(rows_cifar, out / "fig11_reconstruction_cifar.png", title=f"masked VQ-VAE reconstruction, Es/N0 {args.snr:g} dB, i-FGSM eps {FIG11_EPSILON:g}")
    kodak_row = torch.cat([images for _, images in rows_kodak])
    reconstruction_grid([("original | clean input | semantic noise", kodak_row)], out / "fig11_reconstruction_kodak.png",
                        title=f"kodim01 centre crop in 32x32 tiles, Es/N0 {args.snr:g} dB, eps {FIG11_EPSILON:g}")
    return result


def markdown_tables(report: dict) -> str:
    """The report's main numbers as Markdown tables (written beside report.json as tables.md)."""
    lines = []
    fig4 = report["fig4"]
    snrs = fig4[next(iter(fig4))]["snr_db"]
    lines += ["### Fig. 4: accuracy vs Es/N0 (clean / i-FGSM eps 0.016)", "", "| scheme | " + " | ".join(f"{s:g} dB" for s in snrs) + " |", "|---|" + "---|" * len(snrs)]
    for name, result in fig4.items():
        cells = [f"{clean:.3f} / {attacked:.3f}" for clean, attacked in zip(result["accuracy"], result["accuracy_attacked"])]
        lines.append(f"| {label(name)} | " + " | ".join(cells) + " |")
    if "fig5" in report:
        lines += ["", "### Fig. 5: codebook size J (clean training, 2 epochs; clean test)", "", "| J | " + " | ".join(f"{s:g} dB" for s in snrs) + " |", "|---|" + "---|" * len(snrs)]
        for j, result in report["fig5"].items():
            lines.append(f"| {j} | " + " | ".join(f"{v:.3f}" for v in result["accuracy"]) + " |")
    fig6 = report["fig6"]
    epsilons = fig6[next(iter(fig6))]["epsilon"]
    lines += ["", f"### Fig. 6: accuracy vs epsilon at {report['snr_db']:g} dB", "", "| scheme | " + " | ".join(f"{e:g}" for e in epsilons) + " |", "|---|" + "---|" * len(epsilons)]
    for name, result in fig6.items():
        lines.append(f"| {label(name)} | " + " | ".join(f"{v:.3f}" for v in result["accuracy"]) + " |")
    for name, result in report["fig7"].items():
        ratios = result["keep_ratio"]
        lines += ["", f"### Fig. 7: {label(name)}, accuracy vs reserving ratio at {report['snr_db']:g} dB (trained at 0.5)", "", "| epsilon | " + " | ".join(f"{r:g}" for r in ratios) + " |", "|---|" + "---|" * len(ratios)]
        for epsilon, values in result["accuracy"].items():
            lines.append(f"| {float(epsilon):g} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    for name, result in report.get("fig8", {}).items():
        lines += ["", f"### Fig. 8: {label(name)}, receiver-side noise over block-fading eigenmodes (clean {result['accuracy_clean'][0]:.3f})", "", "| SSNR (dB) | " + " | ".join(f"{s:g}" for s in result["ssnr_db"]) + " |", "|---|" + "---|" * len(result["ssnr_db"])]
        if "accuracy_universal" in result:
            lines.append("| universal (Alg. 1) | " + " | ".join(f"{v:.3f}" for v in result["accuracy_universal"]) + " |")
        lines.append("| Gaussian, same power | " + " | ".join(f"{v:.3f}" for v in result["accuracy_gaussian"]) + " |")
    lines += ["", "### Other measurements", "", "| what | value |", "|---|---|"]
    for name, result in report["noiseless"].items():
        lines.append(f"| no channel noise (upper bound), clean / i-FGSM accuracy, {label(name)} | {result['accuracy'][0]:.3f} / {result['accuracy_attacked'][0]:.3f} |")
    for name, value in report["retrieval_recall_at_1"].items():
        lines.append(f"| retrieval recall@1, {label(name)} | {value:.3f} |")
    for name, value in report["fig9"].items():
        lines.append(f"| Fig. 9 mean abs. activation-frequency change clean -> noisy, {label(name)} | {value['mean_abs_difference']:.4f} |")
    for name, value in report["fig10"].items():
        lines.append(f"| Fig. 10 mean abs. cosine between codebook vectors, {label(name)} (orthogonality weight {value['orthogonality_weight']}) | {value['mean_abs_cosine']:.4f} |")
    masking_by_attack = report.get("noise_masking", {})
    if "uniform" in masking_by_attack:  # reports before the L2 and patch attacks: i-FGSM only
        masking_by_attack = {"ifgsm": masking_by_attack}
    for attack, masking in masking_by_attack.items():
        lines.append(f"| full system, {attack}, uniform masking: clean / attacked accuracy (200 images) | {masking['uniform']['clean']:.3f} / {masking['uniform']['attacked']:.3f} |")
        lines.append(f"| full system, {attack}, noise-related masking: clean / attacked accuracy (200 images) | {masking['noise_related']['clean']:.3f} / {masking['noise_related']['attacked']:.3f} |")
        lines.append(f"| full system, {attack}: relative spread (std/mean) of the per-patch noise magnitude | {masking['weights_relative_spread']:.3f} |")
    for name, fractions in report["similar_features"].items():
        lines.append(f"| features redundant at cosine > 0.9 / 0.99 (not sent), {label(name)} | {fractions['0.9']:.3f} / {fractions['0.99']:.3f} |")
    for name, result in report.get("fig11", {}).items():
        lines.append(f"| Fig. 11 reconstruction PSNR clean / attacked, {name}, {report['snr_db']:g} dB | {result['psnr'][0]:.2f} / {result['psnr_attacked'][0]:.2f} dB |")
    lines += ["", "### Table I: symbols per image", "", "| scheme | symbols |", "|---|---|"]
    for name, entry in report["table1"].items():
        for key, value in entry.items():
            lines.append(f"| {name}: {key} | {value:g} |")
    return "\n".join(lines) + "\n"


def j_sweep(runs: Path, scale: str) -> dict:
    """``{"fig5": {J: results}}`` from the J sweep's runs ``vqvae-j<J>-cifar10-<scale>`` that finished, or ``{}``."""
    found = {j: runs / f"vqvae-j{j}-cifar10-{scale}" / "results.json" for j in J_SWEEP}
    found = {j: path for j, path in found.items() if path.is_file()}
    return {"fig5": {str(j): json.loads(path.read_text())["results"] for j, path in found.items()}} if found else {}


def trained_models(runs: Path, names: dict[str, str], scale: str, chosen: dict[str, str] | None = None) -> tuple[dict, dict]:
    """``({run name: (model, metadata)}, {run name: its results file})`` for every role whose run folder
    ``runs/<role>-<scale>`` holds weights; at ``scale`` zoo, a missing run is taken from the zoo
    (:data:`ZOO_NAMES`) with the results recorded there, if that model is in the zoo. ``chosen``
    (``{role: run folder or zoo name}``, from ``--model``) overrides both for its roles."""
    models, results = {}, {}
    for role, name in names.items():
        source = (chosen or {}).get(role)
        if source is None and (runs / name / "model.safetensors").is_file():
            source = str(runs / name)
        elif source is None and scale == "zoo" and ZOO_NAMES.get(role) in zoo.zoo_names():
            source = ZOO_NAMES[role]
        if source is None:
            continue
        if (Path(source) / "model.safetensors").is_file():
            models[name] = zoo.load(Path(source))
            results[name] = json.loads((Path(source) / "results.json").read_text())
        elif source in zoo.zoo_names():
            models[name] = zoo.load(source)
            results[name] = models[name][1]["results"]
        else:
            raise SystemExit(f"--model {role}={source}: neither a run folder with model.safetensors nor a zoo model ({', '.join(zoo.zoo_names())})")
        print(f"{name}: {source} (recipe {models[name][1].get('recipe')})")
    return models, results


@dataclass
class Inputs:
    """What the report's sections read: the arguments, the models by run name (``models``, the
    classifiers of the JPEG baselines apart in ``jpeg_models``), their results files and training
    links, the test set and the report so far (sections that build on others read it)."""

    args: argparse.Namespace
    out: Path
    runs: Path
    names: dict[str, str]
    models: dict
    run_results: dict
    jpeg_models: dict
    test_set: Any
    report: dict

    @functools.cached_property
    def links(self) -> dict:
        return {name: model.link_for(self.run_results[name]["meta"]["link"]) for name, (model, _) in self.models.items()}

    def first_images(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``count`` test images ``[count, 3, 32, 32]`` and labels ``[count]``."""
        return next(iter(torch.utils.data.DataLoader(self.test_set, batch_size=count, shuffle=False)))


def fig4_section(inputs: Inputs) -> dict:
    """Fig. 4: accuracy vs SNR, clean and under transmitter-side semantic noise (from the runs), plus
    JPEG+LDPC (+AT) with their own classifiers (``jpeg-classifier[-at]-cifar10``), or, where those are
    missing, the clean (full) system's classifier applied to the JPEGs."""
    names, models, args = inputs.names, inputs.models, inputs.args
    fig4 = {name: inputs.run_results[name]["results"] for name in models}
    snrs = fig4[next(iter(fig4))]["snr_db"]
    for role, fallback in (("jpeg-classifier-cifar10", "vqvae-cifar10"), ("jpeg-classifier-at-cifar10", "robust-cifar10")):
        name = f"{role}-{args.scale}"
        classifier = inputs.jpeg_models.get(name, models.get(names[fallback]))
        if classifier is None:
            continue
        result = analyses.jpeg_link_classification(lambda x, model=classifier[0]: model(x)["logits"], inputs.test_set, snrs, DIGITAL_LINK, PAPER_JPEG_BITS,
                                                   attack=ifgsm(0.016), seed=args.seed)
        fig4[JPEG_ROLES[role]] = {**result, "classifier": name if name in inputs.jpeg_models else names[fallback]}
    return {"fig4": fig4}


def noiseless_section(inputs: Inputs) -> dict:
    """The upper bound of Fig. 4(b): each model without channel noise (features or indices arrive intact)."""
    noiseless = {}
    for name, (model, _) in inputs.models.items():
        curves = sweep(model, None, [0.0], inputs.test_set, attack=ifgsm(0.016), seed=inputs.args.seed, progress=False)
        noiseless[name] = {key: curves[key] for key in ("snr_db", "accuracy", "accuracy_attacked")}
    return {"noiseless": noiseless}


def fig6_section(inputs: Inputs) -> dict:
    """Fig. 6: accuracy vs epsilon at one SNR."""
    epsilons = [0.0, 0.004, 0.008, 0.016, 0.032, 0.064]
    return {"fig6": {name: analyses.accuracy_vs_epsilon(model, inputs.test_set, inputs.links[name], inputs.args.snr, epsilons, ifgsm, seed=inputs.args.seed)
                     for name, (model, _) in inputs.models.items()}}


def fig7_section(inputs: Inputs) -> dict:
    """Fig. 7: reserving ratio (patches sent) for several epsilon, masked VQ-VAE models."""
    keep_ratios = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
    names = inputs.names
    return {"fig7": {name: analyses.accuracy_vs_keep_ratio(inputs.models[name][0], inputs.test_set, inputs.links[name], inputs.args.snr, keep_ratios,
                                                           [0.0, 0.008, 0.016, 0.032], ifgsm, seed=inputs.args.seed)
                     for name in (names["vqvae-cifar10"], names["robust-cifar10"]) if name in inputs.models}}


def noise_masking_section(inputs: Inputs) -> dict:
    """Noise-related vs uniform masking (at test time), full system, under attacks that spread or
    concentrate their energy (:data:`MASKING_ATTACKS`), on 200 images."""
    name = inputs.names["robust-cifar10"]
    if name not in inputs.models:
        return {}
    model, snr, seed = inputs.models[name][0], inputs.args.snr, inputs.args.seed
    images, labels = inputs.first_images(200)
    masking = {}
    for attack_name, spec in MASKING_ATTACKS.items():
        attacked = attack_batch(model, images, labels, attack_from_spec(spec), seed)
        weights = analyses.noise_masking_weights(model, images, attacked)
        entry = {"attack": spec, "weights_min_max": [float(weights.min()), float(weights.max())], "weights_relative_spread": float(weights.std() / weights.mean())}
        for kind, masking_weights in (("uniform", None), ("noise_related", weights)):
            correct = []
            with torch.no_grad():
                for x in (images, attacked):
                    logits = model(x, snr_db=snr, link=inputs.links[name], generator=torch.Generator().manual_seed(seed), masking_weights=masking_weights)["logits"]
                    correct.append(float((logits.argmax(1) == labels).float().mean()))
            entry[kind] = {"clean": correct[0], "attacked": correct[1]}
        masking[attack_name] = entry
    return {"noise_masking": masking}


def fig8_section(inputs: Inputs) -> dict:
    """Fig. 8: receiver-side universal semantic noise vs signal-to-semantic-noise ratio (analog JSCC
    models; interference of the same power for the digital ones)."""
    ssnrs = [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0]
    snr, seed = inputs.args.snr, inputs.args.seed
    return {"fig8": {name: analyses.receiver_noise_accuracy(model, inputs.test_set, snr, ssnrs, seed=seed) if model.config.transmission == "analog"
                     else analyses.receiver_interference_accuracy(model, inputs.test_set, snr, ssnrs, seed=seed) for name, (model, _) in inputs.models.items()}}


def fig9_section(inputs: Inputs) -> dict:
    """Fig. 9: feature activation frequency without / with FIM, clean and attacked samples (500 images)."""
    fig9 = {}
    images, labels = inputs.first_images(500)
    snr, seed = inputs.args.snr, inputs.args.seed
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), squeeze=False)
    for axis, name in zip(axes[0], (inputs.names["vqvae-cifar10"], inputs.names["robust-cifar10"])):
        if name not in inputs.models:
            continue
        model = inputs.models[name][0]
        attacked = attack_batch(model, images, labels, ifgsm(0.016), seed)
        clean_freq = analyses.feature_activation_frequency(model, images, snr, seed=seed)
        noisy_freq = analyses.feature_activation_frequency(model, attacked, snr, seed=seed)
        fig9[name] = {"clean": clean_freq.tolist(), "attacked": noisy_freq.tolist(), "mean_abs_difference": float((clean_freq - noisy_freq).abs().mean()),
                      "features_never_active": int(((clean_freq == 0) & (noisy_freq == 0)).sum())}
        order = clean_freq.argsort(descending=True)
        axis.bar(range(len(order)), clean_freq[order], color="C0", alpha=0.6, label="clean")
        axis.bar(range(len(order)), noisy_freq[order], color="C3", alpha=0.5, label="semantic noise")
        axis.set_title(f"{label(name)}: mean |diff| {fig9[name]['mean_abs_difference']:.3f}", fontsize="small")
        axis.set_xlabel("feature (sorted by clean frequency)")
        axis.set_ylabel("activation frequency")
        axis.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, inputs.out / "fig9_activation_frequency.png")
    return {"fig9": fig9}


def fig10_section(inputs: Inputs) -> dict:
    """Fig. 10: codebook similarity without / with the orthogonality term."""
    fig10 = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), squeeze=False)
    for axis, name in zip(axes[0], (inputs.names["vqvae-cifar10"], inputs.names["robust-cifar10"])):
        if name not in inputs.models:
            continue
        similarity = analyses.codebook_similarity(inputs.models[name][0].digitizer.codebook)
        off_diagonal = similarity[~torch.eye(similarity.shape[0], dtype=torch.bool)]
        recipe = inputs.run_results[name]["meta"]["recipe"]
        fig10[name] = {"orthogonality_weight": recipe["train"].get("weights", {}).get("orthogonality", 0.0),
                       "mean_abs_cosine": float(off_diagonal.abs().mean()), "max_cosine": float(off_diagonal.max())}
        image = axis.imshow(similarity.numpy(), cmap="coolwarm", vmin=-1, vmax=1)
        axis.set_title(f"{label(name)} (orth. weight {fig10[name]['orthogonality_weight']}): mean |cos| {fig10[name]['mean_abs_cosine']:.3f}", fontsize="small")
        fig.colorbar(image, ax=axis, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, inputs.out / "fig10_codebook_similarity.png")
    return {"fig10": fig10}


def retrieval_section(inputs: Inputs) -> dict:
    """Retrieval recall@1 (CIFAR-10 test by class; Cars196 is not available offline) and the fraction
    of similar (redundant) features on 200 images."""
    recall, similar = {}, {}
    images, _ = inputs.first_images(200)
    for name, (model, _) in inputs.models.items():
        features, labels_all = analyses.embeddings(model, inputs.test_set, inputs.args.snr, inputs.links[name], seed=inputs.args.seed)
        recall[name] = float(recall_at_k(features, labels_all, 1))
        with torch.no_grad():
            encoded = model(images, generator=torch.Generator().manual_seed(inputs.args.seed))["features"]
        similar[name] = {str(delta): float(redundant_features(encoded, delta).float().mean()) for delta in (0.8, 0.9, 0.95, 0.99)}
    return {"retrieval_recall_at_1": recall, "similar_features": similar}


def table1_section(inputs: Inputs) -> dict:
    """Table I: symbols per image from the formula and as the link carries them
    (``channel_uses_per_image``); the JPEG row reads Fig. 4's payload sizes when that section exists."""
    table = {"paper_224px": {"jpeg_ldpc": jpeg_ldpc_symbols(224, 224, 3, 8, 0.5, 11.2, 4), "masked_vqvae_uncoded": masked_vqvae_symbols(224, 224, 8, 0.5, 16, 4),
                             "masked_vqvae_ldpc": masked_vqvae_symbols(224, 224, 8, 0.5, 16, 4, 0.5)}}
    table["formula_by_patch"] = {f"{size}px_patch{patch}": masked_vqvae_symbols(size, size, 8, 0.5, patch, 4, 0.5) for size, patches in ((32, (2, 4, 8, 16)), (224, (8, 16, 32))) for patch in patches}
    sample, _ = inputs.first_images(1)

    def symbols_sent(model, link) -> int:
        with torch.no_grad():
            return model(sample, snr_db=inputs.args.snr, link=link, generator=torch.Generator().manual_seed(inputs.args.seed))["channel_uses_per_image"]

    for name in (inputs.names["vqvae-cifar10"], inputs.names["jscc-cifar10"]):
        if name not in inputs.models:
            continue
        model = inputs.models[name][0]
        if model.config.transmission == "analog":
            table[name] = {"formula": model.symbols_per_image(4), "measured": symbols_sent(model, inputs.links[name])}
            continue
        entry = {"formula_ldpc_1_2": model.symbols_per_image(4, 0.5)}
        for k in (512, 256):
            entry[f"measured_ldpc_k{k}"] = symbols_sent(model, {"modulation": "16qam", "channel": "mimo-8x4-svd", "code": "ldpc-1/2", "ldpc_k": k})
        table[name] = entry
    jpeg = inputs.report.get("fig4", {}).get("JPEG+LDPC")
    if jpeg is not None:
        table["jpeg_ldpc_32px"] = {"formula": jpeg_ldpc_symbols(32, 32, 3, 8, 0.5, 11.2, 4), "mean_payload_bits": jpeg["payload_bits"], "mean_quality": jpeg["quality"],
                                   "measured_one_image": DIGITAL_LINK.channel_uses(round(jpeg["payload_bits"]))}
    return {"table1": table}


def fig5_section(inputs: Inputs) -> dict:
    """Fig. 5: codebook size J (the clean-trained J sweep's runs)."""
    if not (found := j_sweep(inputs.runs, inputs.args.scale)):
        raise SystemExit(f"fig5: no finished J-sweep run vqvae-j<J>-cifar10-{inputs.args.scale} in {inputs.runs}")
    return found


def fig11_section(inputs: Inputs) -> dict:
    """Fig. 11: reconstructions under semantic noise (CIFAR-10 test and Kodak24 in 32x32 tiles)."""
    recon = recon_run(inputs.runs, inputs.args.scale)
    if not (recon / "model.safetensors").is_file():
        raise SystemExit(f"fig11: {recon} holds no trained model (digisem train vqvae-recon-cifar10-{inputs.args.scale})")
    return {"fig11": reconstruction_under_noise(recon, inputs.test_set, inputs.args, inputs.out)}


SECTIONS = {"fig4": fig4_section, "noiseless": noiseless_section, "fig6": fig6_section, "fig7": fig7_section, "noise_masking": noise_masking_section,
            "fig8": fig8_section, "fig9": fig9_section, "fig10": fig10_section, "retrieval": retrieval_section, "table1": table1_section,
            "fig5": fig5_section, "fig11": fig11_section}
"""The report's sections in order (``--parts`` picks some); fig5 and fig11 read their own runs."""
OPTIONAL_SECTIONS = ("fig5", "fig11")
"""Sections that a whole report skips when their runs are missing."""
NEEDED_FOR_TABLES = ("fig4", "noiseless", "fig6", "fig7", "fig9", "fig10", "retrieval_recall_at_1", "similar_features", "table1")
"""Report keys that the plots and tables.md need."""


def merge_into_report(out: Path, sections: dict, seconds: dict[str, float], command: str, seed: int, replace: bool = False) -> dict:
    """Merge ``sections`` into ``out/report.json`` (read, update, atomic write, under a lock on the
    folder, so that parts run side by side; ``replace``: start a new report), recording each part's
    wall time and command."""
    out.mkdir(parents=True, exist_ok=True)
    folder = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        path = out / "report.json"
        report = json.loads(path.read_text()) if path.is_file() and not replace else {}
        report.update(sections)
        previous = report.get("meta", {})
        meta = run_metadata(seed, "cpu", dataset="CIFAR-10 test", wall_s=round(sum(seconds.values()), 1), command=command)
        meta["section_seconds"] = {**previous.get("section_seconds", {}), **seconds}
        meta["commands"] = [*previous.get("commands", [previous["command"]] if "command" in previous else []), command]
        report["meta"] = meta
        write_json(path, report)
        return report
    finally:
        os.close(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--scale", choices=SCALES, default="cpu", help="which recipes' runs: <role>-<scale>")
    parser.add_argument("--data", default=os.environ.get("DIGISEM_DATA"))
    parser.add_argument("--limit", type=int, default=1000, help="CIFAR-10 test images (class-balanced)")
    parser.add_argument("--snr", type=float, default=3.0, help="Es/N0 (dB) of the single-SNR analyses")
    parser.add_argument("--out", default="docs/results/robust")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replot", action="store_true", help="redraw Figs. 4-8 and tables.md from OUT/report.json, computing nothing")
    parser.add_argument("--parts", nargs="+", choices=tuple(SECTIONS), default=None,
                        help="compute only these sections and merge them into OUT/report.json (several such runs may go side by side, one per core); default: all")
    parser.add_argument("--model", action="append", default=[], metavar="ROLE=SOURCE",
                        help=f"take ROLE's model from SOURCE (a run folder or a zoo name) instead of runs/<role>-<scale>; roles: {', '.join((*ROLES, *JPEG_ROLES))}")
    args = parser.parse_args()
    out, runs = Path(args.out), Path(args.runs)
    chosen = dict(item.split("=", 1) for item in args.model if "=" in item)
    if len(chosen) != len(args.model) or not set(chosen) <= {*ROLES, *JPEG_ROLES}:
        raise SystemExit(f"--model takes ROLE=SOURCE with ROLE one of {', '.join((*ROLES, *JPEG_ROLES))}, got {args.model}")
    if args.replot:
        report = json.loads((out / "report.json").read_text())
        draw_line_figures(report, out)
        atomic_write(out / "tables.md", lambda tmp: tmp.write_text(markdown_tables(report)))
        return
    parts = args.parts or [name for name in SECTIONS if name not in OPTIONAL_SECTIONS or _optional_runs_exist(name, runs, args.scale)]
    names = {role: f"{role}-{args.scale}" for role in ROLES}
    models, run_results = trained_models(runs, names, args.scale, chosen) if set(parts) - set(OPTIONAL_SECTIONS) else ({}, {})
    if not models and set(parts) - set(OPTIONAL_SECTIONS):
        raise SystemExit(f"no trained runs of scale {args.scale!r} in {runs}: expected folders like {names['robust-cifar10']} with model.safetensors")
    jpeg_models, _ = trained_models(runs, {role: f"{role}-{args.scale}" for role in JPEG_ROLES}, args.scale, chosen) if "fig4" in parts else ({}, {})
    existing = json.loads((out / "report.json").read_text()) if args.parts and (out / "report.json").is_file() else {}
    inputs = Inputs(args, out, runs, names, models, run_results, jpeg_models, CIFAR10(args.data, split="test", limit=args.limit),
                    {**existing, "snr_db": args.snr, "n_images": args.limit})
    seconds, computed = {}, {"snr_db": args.snr, "n_images": args.limit}
    for part in parts:
        started = time.perf_counter()
        computed.update(SECTIONS[part](inputs))
        inputs.report.update(computed)
        seconds[part] = round(time.perf_counter() - started, 1)
        print(f"{part}: {seconds[part]:.0f} s")
    command = (f"python benchmarks/robust_report.py --runs {args.runs} --scale {args.scale} --limit {args.limit} --snr {args.snr:g} --out {args.out}"
               + "".join(f" --model {item}" for item in args.model) + (f" --parts {' '.join(args.parts)}" if args.parts else ""))
    report = merge_into_report(out, computed, seconds, command, args.seed, replace=not args.parts)
    missing = [key for key in NEEDED_FOR_TABLES if key not in report]
    if missing:
        print(f"wrote {out / 'report.json'}; plots and tables.md wait for: {', '.join(missing)}")
        return
    draw_line_figures(report, out)
    atomic_write(out / "tables.md", lambda tmp: tmp.write_text(markdown_tables(report)))
    fig4 = report["fig4"]
    print(f"{'scheme':34s} " + " ".join(f"{s:>6g}" for s in fig4[next(iter(fig4))]["snr_db"]))
    for name, result in fig4.items():
        print(f"{label(name):34s} " + " ".join(f"{v:6.3f}" for v in result["accuracy"]))
        print(f"{'  + semantic noise':34s} " + " ".join(f"{v:6.3f}" for v in result["accuracy_attacked"]))
    print(f"wrote {out / 'report.json'} ({sum(seconds.values()):.0f} s)")


def recon_run(runs: Path, scale: str) -> Path:
    """The reconstruction model's run folder (Fig. 11)."""
    return runs / f"vqvae-recon-cifar10-{scale}"


def _optional_runs_exist(section: str, runs: Path, scale: str) -> bool:
    """Whether an optional section's runs (the J sweep's, the reconstruction model's) are there."""
    if section == "fig5":
        return bool(j_sweep(runs, scale))
    return (recon_run(runs, scale) / "model.safetensors").is_file()


if __name__ == "__main__":
    main()
