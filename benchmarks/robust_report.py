"""The robust semantic communication paper's analyses on trained runs: prints tables, writes JSON and
plots (Fig. 4, 6, 7, 9, 10, Table I, retrieval, noise-related masking under L-infinity, L2 and patch
attacks, JPEG+LDPC baselines).

Usage: DIGISEM_DATA=../shared/data python benchmarks/robust_report.py --runs runs --scale cpu --out docs/results/robust
(uses the run folders ``<role>-<scale>`` that exist: vqvae-cifar10, vqvae-at-cifar10, robust-cifar10,
robust-noisemask-cifar10, jscc-cifar10, jscc-at-cifar10, the J sweep vqvae-j{4,16,64,256}-cifar10 and
vqvae-recon-cifar10; ``--scale zoo`` reads the zoo recipes' runs, e.g. robust-cifar10-zoo, and where a
run is missing the zoo model of its role, e.g. vqvae-fim-at-cifar10). ``--update fig5 fig11`` adds the
J sweep's and the reconstruction model's sections to an existing report when those runs finish later.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

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
             "jscc-at-cifar10": "jscc-at-cifar10"}
"""The zoo model of each role, which ``--scale zoo`` uses where the run folder is missing."""
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


def trained_models(runs: Path, names: dict[str, str], scale: str) -> tuple[dict, dict]:
    """``({run name: (model, metadata)}, {run name: its results file})`` for every role whose run folder
    ``runs/<role>-<scale>`` holds weights; at ``scale`` zoo, a missing run is taken from the zoo
    (:data:`ZOO_NAMES`) with the results recorded there, if that model is in the zoo."""
    models, results = {}, {}
    for role, name in names.items():
        if (runs / name / "model.safetensors").is_file():
            models[name] = zoo.load(runs / name)
            results[name] = json.loads((runs / name / "results.json").read_text())
        elif scale == "zoo" and ZOO_NAMES.get(role) in zoo.zoo_names():
            models[name] = zoo.load(ZOO_NAMES[role])
            results[name] = models[name][1]["results"]
            print(f"{name}: no run in {runs}, using the zoo model {ZOO_NAMES[role]} (recipe {models[name][1].get('recipe')})")
    return models, results


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
    parser.add_argument("--update", nargs="+", choices=("fig5", "fig11"), default=[],
                        help="recompute only these sections into OUT/report.json (the J sweep's or the reconstruction model's runs, trained after the report), then redraw")
    args = parser.parse_args()
    out, runs = Path(args.out), Path(args.runs)
    if args.replot or args.update:
        report = json.loads((out / "report.json").read_text())
    if args.update:
        if "fig5" in args.update:
            if not (sweep_results := j_sweep(runs, args.scale)):
                raise SystemExit(f"--update fig5: no finished J-sweep run vqvae-j<J>-cifar10-{args.scale} in {runs}")
            report.update(sweep_results)
        if "fig11" in args.update:
            recon = runs / f"vqvae-recon-cifar10-{args.scale}"
            if not (recon / "model.safetensors").is_file():
                raise SystemExit(f"--update fig11: {recon} holds no trained model (digisem train vqvae-recon-cifar10-{args.scale})")
            report["fig11"] = reconstruction_under_noise(recon, CIFAR10(args.data, split="test", limit=args.limit), args, out)
        write_json(out / "report.json", report)
    if args.replot or args.update:
        draw_line_figures(report, out)
        atomic_write(out / "tables.md", lambda tmp: tmp.write_text(markdown_tables(report)))
        return
    started = time.perf_counter()
    test_set = CIFAR10(args.data, split="test", limit=args.limit)
    names = {role: f"{role}-{args.scale}" for role in ROLES}
    models, run_results = trained_models(runs, names, args.scale)
    if not models:
        raise SystemExit(f"no trained runs of scale {args.scale!r} in {runs}: expected folders like {names['robust-cifar10']} with model.safetensors")
    links = {name: model.link_for(run_results[name]["meta"]["link"]) for name, (model, _) in models.items()}
    report: dict = {"snr_db": args.snr, "n_images": len(test_set)}

    # Fig. 4: accuracy vs SNR, clean and under transmitter-side semantic noise (from the runs), plus JPEG+LDPC.
    fig4 = {name: run_results[name]["results"] for name in models}
    digital = from_spec({"modulation": "16qam", "channel": "mimo-8x4-svd", "code": "ldpc-1/2"})
    for name, baseline in ((names["vqvae-cifar10"], "JPEG+LDPC"), (names["robust-cifar10"], "JPEG+LDPC+AT")):
        if name in models:
            classifier = models[name][0]
            fig4[baseline] = analyses.jpeg_link_classification(lambda x, model=classifier: model(x)["logits"], test_set, fig4[name]["snr_db"], digital, PAPER_JPEG_BITS,
                                                            attack=ifgsm(0.016), seed=args.seed)
    report["fig4"] = fig4

    # The upper bound of Fig. 4(b): each model without channel noise (features or indices arrive intact).
    report["noiseless"] = {}
    for name, (model, _) in models.items():
        curves = sweep(model, None, [0.0], test_set, attack=ifgsm(0.016), seed=args.seed, progress=False)
        report["noiseless"][name] = {key: curves[key] for key in ("snr_db", "accuracy", "accuracy_attacked")}

    # Fig. 6: accuracy vs epsilon at one SNR.
    epsilons = [0.0, 0.004, 0.008, 0.016, 0.032, 0.064]
    report["fig6"] = {name: analyses.accuracy_vs_epsilon(model, test_set, links[name], args.snr, epsilons, ifgsm, seed=args.seed) for name, (model, _) in models.items()}

    # Fig. 7: reserving ratio (patches sent) for several epsilon, masked VQ-VAE models.
    keep_ratios = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
    report["fig7"] = {name: analyses.accuracy_vs_keep_ratio(models[name][0], test_set, links[name], args.snr, keep_ratios, [0.0, 0.008, 0.016, 0.032], ifgsm, seed=args.seed)
                      for name in (names["vqvae-cifar10"], names["robust-cifar10"]) if name in models}

    # Noise-related vs uniform masking (at test time), full system, under attacks that spread or concentrate their energy.
    if names["robust-cifar10"] in models:
        model = models[names["robust-cifar10"]][0]
        images, labels = next(iter(torch.utils.data.DataLoader(test_set, batch_size=200, shuffle=False)))
        report["noise_masking"] = {}
        for attack_name, spec in MASKING_ATTACKS.items():
            attacked = attack_batch(model, images, labels, attack_from_spec(spec), args.seed)
            weights = analyses.noise_masking_weights(model, images, attacked)
            entry = {"attack": spec, "weights_min_max": [float(weights.min()), float(weights.max())], "weights_relative_spread": float(weights.std() / weights.mean())}
            for kind, masking in (("uniform", None), ("noise_related", weights)):
                correct = []
                with torch.no_grad():
                    for x in (images, attacked):
                        logits = model(x, snr_db=args.snr, link=links[names["robust-cifar10"]], generator=torch.Generator().manual_seed(args.seed), masking_weights=masking)["logits"]
                        correct.append(float((logits.argmax(1) == labels).float().mean()))
                entry[kind] = {"clean": correct[0], "attacked": correct[1]}
            report["noise_masking"][attack_name] = entry

    # Fig. 8: receiver-side universal semantic noise vs signal-to-semantic-noise ratio (analog JSCC models).
    ssnrs = [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0]
    report["fig8"] = {name: analyses.receiver_noise_accuracy(model, test_set, args.snr, ssnrs, seed=args.seed) if model.config.transmission == "analog"
                      else analyses.receiver_interference_accuracy(model, test_set, args.snr, ssnrs, seed=args.seed) for name, (model, _) in models.items()}

    # Fig. 9: feature activation frequency without / with FIM, clean and attacked samples.
    fig9 = {}
    images, labels = next(iter(torch.utils.data.DataLoader(test_set, batch_size=500, shuffle=False)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), squeeze=False)
    for axis, name in zip(axes[0], (names["vqvae-cifar10"], names["robust-cifar10"])):
        if name not in models:
            continue
        model = models[name][0]
        attacked = attack_batch(model, images, labels, ifgsm(0.016), args.seed)
        clean_freq = analyses.feature_activation_frequency(model, images, args.snr, seed=args.seed)
        noisy_freq = analyses.feature_activation_frequency(model, attacked, args.snr, seed=args.seed)
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
    save_figure(fig, out / "fig9_activation_frequency.png")
    report["fig9"] = fig9

    # Fig. 10: codebook similarity without / with the orthogonality term.
    fig10 = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), squeeze=False)
    for axis, name in zip(axes[0], (names["vqvae-cifar10"], names["robust-cifar10"])):
        if name not in models:
            continue
        similarity = analyses.codebook_similarity(models[name][0].digitizer.codebook)
        off_diagonal = similarity[~torch.eye(similarity.shape[0], dtype=torch.bool)]
        recipe = run_results[name]["meta"]["recipe"]
        fig10[name] = {"orthogonality_weight": recipe["train"].get("weights", {}).get("orthogonality", 0.0),
                       "mean_abs_cosine": float(off_diagonal.abs().mean()), "max_cosine": float(off_diagonal.max())}
        image = axis.imshow(similarity.numpy(), cmap="coolwarm", vmin=-1, vmax=1)
        axis.set_title(f"{label(name)} (orth. weight {fig10[name]['orthogonality_weight']}): mean |cos| {fig10[name]['mean_abs_cosine']:.3f}", fontsize="small")
        fig.colorbar(image, ax=axis, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, out / "fig10_codebook_similarity.png")
    report["fig10"] = fig10

    # Retrieval recall@1 (CIFAR-10 test by class; Cars196 is not available offline) and similar features.
    report["retrieval_recall_at_1"] = {}
    report["similar_features"] = {}
    for name, (model, _) in models.items():
        features, labels_all = analyses.embeddings(model, test_set, args.snr, links[name], seed=args.seed)
        report["retrieval_recall_at_1"][name] = float(recall_at_k(features, labels_all, 1))
        with torch.no_grad():
            encoded = model(images[:200], generator=torch.Generator().manual_seed(args.seed))["features"]
        report["similar_features"][name] = {str(delta): float(redundant_features(encoded, delta).float().mean()) for delta in (0.8, 0.9, 0.95, 0.99)}

    # Table I: symbols per image from the formula and as the link carries them (channel_uses_per_image).
    table = {"paper_224px": {"jpeg_ldpc": jpeg_ldpc_symbols(224, 224, 3, 8, 0.5, 11.2, 4), "masked_vqvae_uncoded": masked_vqvae_symbols(224, 224, 8, 0.5, 16, 4),
                             "masked_vqvae_ldpc": masked_vqvae_symbols(224, 224, 8, 0.5, 16, 4, 0.5)}}
    table["formula_by_patch"] = {f"{size}px_patch{patch}": masked_vqvae_symbols(size, size, 8, 0.5, patch, 4, 0.5) for size, patches in ((32, (2, 4, 8, 16)), (224, (8, 16, 32))) for patch in patches}
    sample = images[:1]

    def symbols_sent(model, link) -> int:
        with torch.no_grad():
            return model(sample, snr_db=args.snr, link=link, generator=torch.Generator().manual_seed(args.seed))["channel_uses_per_image"]

    for name in (names["vqvae-cifar10"], names["jscc-cifar10"]):
        if name not in models:
            continue
        model = models[name][0]
        if model.config.transmission == "analog":
            table[name] = {"formula": model.symbols_per_image(4), "measured": symbols_sent(model, links[name])}
            continue
        entry = {"formula_ldpc_1_2": model.symbols_per_image(4, 0.5)}
        for k in (512, 256):
            entry[f"measured_ldpc_k{k}"] = symbols_sent(model, {"modulation": "16qam", "channel": "mimo-8x4-svd", "code": "ldpc-1/2", "ldpc_k": k})
        table[name] = entry
    if "JPEG+LDPC" in fig4:
        bits = fig4["JPEG+LDPC"]["payload_bits"]
        table["jpeg_ldpc_32px"] = {"formula": jpeg_ldpc_symbols(32, 32, 3, 8, 0.5, 11.2, 4), "mean_payload_bits": bits, "mean_quality": fig4["JPEG+LDPC"]["quality"],
                                   "measured_one_image": digital.channel_uses(round(bits))}
    report["table1"] = table

    # Fig. 5: codebook size J (clean-trained masked VQ-VAEs, when the sweep ran).
    report.update(j_sweep(runs, args.scale))

    # Fig. 11: reconstructions under semantic noise (CIFAR-10 test and Kodak24 in 32x32 tiles).
    recon = runs / f"vqvae-recon-cifar10-{args.scale}"
    if (recon / "model.safetensors").is_file():
        report["fig11"] = reconstruction_under_noise(recon, test_set, args, out)

    report["meta"] = run_metadata(args.seed, "cpu", dataset="CIFAR-10 test", wall_s=round(time.perf_counter() - started, 1),
                                  command=f"python benchmarks/robust_report.py --runs {args.runs} --scale {args.scale} --limit {args.limit} --snr {args.snr:g} --out {args.out}")
    write_json(out / "report.json", report)
    draw_line_figures(report, out)
    atomic_write(out / "tables.md", lambda tmp: tmp.write_text(markdown_tables(report)))
    print(f"{'scheme':34s} " + " ".join(f"{s:>6g}" for s in fig4[next(iter(fig4))]["snr_db"]))
    for name, result in fig4.items():
        print(f"{label(name):34s} " + " ".join(f"{v:6.3f}" for v in result["accuracy"]))
        print(f"{'  + semantic noise':34s} " + " ".join(f"{v:6.3f}" for v in result["accuracy_attacked"]))
    print(json.dumps({key: report[key] for key in ("retrieval_recall_at_1", "table1")}, indent=1))
    print(f"wrote {out / 'report.json'} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
