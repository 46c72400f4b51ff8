"""SCDM results (docs/results/scdm/): every receiver of the SCDM paper's comparison on one test set,
the sampler study (quality against score-network evaluations), model sizes (Table I) and plots.

Systems (64-QAM, n = 128, AWGN, SNR = Es/N0 per complex symbol):
- JCM (single codec): trained at 18 dB, used at every SNR, no denoising;
- JCM + MMSE: the per-symbol posterior mean under the codec's empirical symbol prior;
- SCDM (without joint training): SCDM's output into the single codec's decoder;
- SCDM (joint training): SCDM's output into the decoder fine-tuned on SCDM outputs (Stage 2);
- JCM (per-SNR codecs): each codec trained at one SNR, evaluated at that SNR only.

The channel noise is the same for every receiver at one SNR (one seed per SNR), so differences come
from the receivers alone. Usage:
  DIGISEM_DATA=../shared/data python benchmarks/scdm_report.py [--runs runs] [--limit 500]
      [--sampler-limit 200] [--out docs/results/scdm] [--parts comparison family ...]
  --codec/--scdm/--tweedie name run folders under --runs or zoo models; --family-results reads the
  per-SNR codecs' recorded results where their runs are gone. Every part writes its own JSON, and the
  tables printed at the end are built from what the output folder holds.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from digisem import metrics, zoo
from digisem.data import CIFAR10, Kodak24, sample_images
from digisem.evaluate import sweep
from digisem.imageio import tile
from digisem.io import derived_seed, run_metadata, write_json
from digisem.plots import plot_metric, reconstruction_grid
from digisem.snr import parse_snr_range
from digisem.systems.jcm import parameter_count
from digisem.systems.scdm import SAMPLERS, MMSEDenoiser, sample, to_complex, to_real
from digisem.weights import CheckpointError

SNRS = parse_snr_range("-18:18:6")
PER_SNR = [-18, -12, -6, 0, 6, 12]
LINK = "awgn"
SAMPLER_SNRS = [-18.0, -6.0, 0.0, 6.0, 12.0]
PAPER = {
    "PSNR gain of SCDM over the single codec": {"-18 dB": 7.2, "-6 dB": 3.3},
    "latent MSE improvement at -18 dB": 0.34,
    "storage reduction (72 per-SNR codecs vs SCDM + one codec)": 7.8,
    "model size (MB)": {"JCM": 79.94, "SCDM": 656.84},
    "JCM authors, 64-QAM, per-SNR codecs (PSNR dB)": {"18": 25.03, "12": 24.25, "6": 22.51, "0": 19.77, "-6": 16.93, "-12": 13.77, "-18": 13.05},
}


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "_", name).strip("_")


def results_file(name: str, description: str, curves: dict, meta: dict) -> dict:
    return {"name": name, "model": meta.pop("model"), "description": description, "results": curves, "meta": run_metadata(0, "cpu", snr_kind="esn0", channel=LINK, **meta)}


CURVES = ("JCM (single codec)", "JCM + MMSE", "SCDM (without joint training)", "SCDM (joint training)", "SCDM-Tweedie (joint training)", "JCM (per-SNR codecs)")
"""The comparison's curves (each in ``<slug>.json``), in table and plot order."""
PARTS = ("comparison", "family", "sampler", "sizes", "grid", "authors-psnr", "rayleigh", "kodak-tiles")
"""The report's sections; each writes its own files, so they can run apart (``--parts``)."""


def weights_of(runs: Path, source: str) -> Path:
    """The weights file of the run folder ``runs/source`` if it holds one, else of ``source`` as a zoo
    name, run folder or weights file."""
    folder = runs / source
    return zoo.resolve_weights(folder if (folder / "model.safetensors").is_file() else source)


def load_model(runs: Path, source: str):
    """``(model, metadata)`` of :func:`weights_of` ``(runs, source)``."""
    return zoo.load(weights_of(runs, source))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--data", default=None)
    parser.add_argument("--limit", type=int, default=500, help="test images for the main comparison (class-balanced)")
    parser.add_argument("--sampler-limit", type=int, default=200, help="test images for the sampler study")
    parser.add_argument("--pc-limit", type=int, default=None, help="test images for the two rows with the paper's sampler (~100 network evaluations per image; default --limit)")
    parser.add_argument("--codec", default="jcm-cifar10-64qam-cpu", help="the single codec: a run folder name under --runs, or a zoo name")
    parser.add_argument("--scdm", default="scdm-cifar10-64qam-cpu", help="the SCDM (paper's sampler, joint decoder): run folder name or zoo name")
    parser.add_argument("--tweedie", default="scdm-cifar10-64qam-tweedie-cpu", help="the SCDM-Tweedie variant: run folder name or zoo name (skipped if absent)")
    parser.add_argument("--family", default="jcm-cifar10-64qam-snr{snr}-cpu", help="run folder names of the per-SNR codecs, {snr} for the training SNR")
    parser.add_argument("--family-results", default=None, help="folder of the per-SNR codecs' recorded results <name>.json, used for members whose run is missing")
    parser.add_argument("--reference", nargs="*", default=[], help="classical-reference results.json files (digisem baseline ... --channel-uses 128) drawn on the PSNR plot")
    parser.add_argument("--kodak-tiles", type=int, default=1000, help="32x32 Kodak24 tiles for the out-of-distribution MMSE check")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="sections to run (default: all)")
    parser.add_argument("--out", default="docs/results/scdm")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    codec, _ = load_model(runs, args.codec)
    scdm, _ = load_model(runs, args.scdm)
    mmse = MMSEDenoiser(codec.prior_symbols())
    try:
        tweedie = load_model(runs, args.tweedie)[0]
    except CheckpointError as err:
        print(f"no SCDM-Tweedie ({err})")
        tweedie = None
    test_set = CIFAR10(args.data, split="test", limit=args.limit)
    common = {"dataset": "CIFAR-10 test" + (" (JPEG copy)" if test_set.source == "folder" else ""), "n_images": len(test_set), "modulation": "learned 64-QAM, n = 128",
              "psnr": "mean over images of per-image PSNR (all channels, data range 1)"}
    receivers = {
        "JCM (single codec)": (codec, args.codec, "JCM trained at 18 dB, used at every SNR, no denoising"),
        "JCM + MMSE": (codec.with_parts(restorer=mmse), args.codec, "single codec with the per-symbol MMSE estimator (empirical symbol prior)"),
        "SCDM (without joint training)": (codec.with_parts(restorer=scdm), args.scdm, "SCDM (PC, L = 2, r = 0.16) into the single codec's decoder"),
        "SCDM (joint training)": (codec.with_parts(restorer=scdm, decoder=scdm.decoder), args.scdm, "SCDM (PC, L = 2, r = 0.16) into the decoder fine-tuned on SCDM outputs"),
    }
    if tweedie is not None:
        receivers["SCDM-Tweedie (joint training)"] = (codec.with_parts(restorer=tweedie, decoder=tweedie.decoder), args.tweedie,
                                                      "SCDM's score network, one-step Tweedie posterior mean, into a decoder fine-tuned on its outputs")
    if "comparison" in args.parts:
        pc_set = CIFAR10(args.data, split="test", limit=args.pc_limit) if args.pc_limit else test_set
        for name, (system, model, description) in receivers.items():
            dataset = pc_set if name.startswith("SCDM (") else test_set
            curves = sweep(system, LINK, SNRS, dataset, batch_size=250, progress=False, label=name)
            print(f"{name:32s} " + "  ".join(f"{snr:g} dB: {psnr:.2f}" for snr, psnr in zip(curves["snr_db"], curves["psnr"])), flush=True)
            write_json(out / f"{slug(name)}.json", results_file(name, description, curves, {"model": model, **common, "n_images": len(dataset)}))
    if "family" in args.parts:
        family = per_snr_family(runs, args, test_set)
        if family:
            write_json(out / "JCM_per-SNR_codecs.json", results_file("JCM (per-SNR codecs)", "one JCM per training SNR, each evaluated at its own SNR", family[0], {"model": family[1], **common}))
    all_results = [json.loads((out / f"{slug(name)}.json").read_text()) for name in CURVES if (out / f"{slug(name)}.json").is_file()]
    references = [json.loads(Path(path).read_text()) for path in args.reference]
    for metric in ("psnr", "ssim", "latent_mse"):
        if all_results:
            plot_metric(all_results + (references if metric == "psnr" else []), metric, out / f"{metric}.png", title="CIFAR-10, learned 64-QAM, n = 128, AWGN")
    if "sampler" in args.parts:
        study = sampler_study(codec, scdm, CIFAR10(args.data, split="test", limit=args.sampler_limit))
        write_json(out / "sampler_study.json", {"snrs": SAMPLER_SNRS, "rows": study, "meta": run_metadata(0, "cpu", n_images=args.sampler_limit, snr_kind="esn0")})
        plot_sampler_study(study, out / "sampler_study.png")
    if "sizes" in args.parts:
        write_json(out / "model_sizes.json", model_sizes(codec, scdm, {name: weights_of(runs, name) for name in (args.codec, args.scdm)}))
    if "grid" in args.parts:
        grid(codec, scdm, mmse, out / "grid.png")
    if "authors-psnr" in args.parts:
        write_json(out / "authors_psnr.json", {"rows": authors_psnr(codec, test_set), "meta": run_metadata(0, "cpu", model=args.codec, **common)})
    others = {"JCM (single codec)": codec, "JCM + MMSE": codec.with_parts(restorer=mmse)}
    if tweedie is not None:
        others["SCDM-Tweedie (joint training)"] = receivers["SCDM-Tweedie (joint training)"][0]
    if "rayleigh" in args.parts:
        rows = {name: sweep(system, "rayleigh", SNRS, test_set, batch_size=250, progress=False, label=name) for name, system in others.items()}
        write_json(out / "rayleigh.json", {"rows": rows, "meta": run_metadata(0, "cpu", channel="rayleigh (fast, ZF with perfect CSI)", snr_kind="esn0", **common)})
    if "kodak-tiles" in args.parts:
        tiles = kodak_tiles(args.data, args.kodak_tiles)
        rows = {name: sweep(system, LINK, SNRS, tiles, batch_size=250, progress=False, label=name) for name, system in others.items()}
        write_json(out / "kodak_tiles.json", {"rows": rows, "meta": run_metadata(0, "cpu", dataset=f"Kodak24, {len(tiles)} random 32x32 tiles (seed 0)", n_images=len(tiles), snr_kind="esn0", channel=LINK)})
    write_json(out / "paper_claims.json", PAPER)
    print(markdown(out))


def per_snr_family(runs: Path, args, test_set) -> tuple[dict[str, list[float]], list[str]] | None:
    """The per-SNR codecs' curves, each at its own SNR (18 dB: the single codec): evaluated from its run
    folder, or read from ``args.family_results/<name>.json`` when the run is missing; None if none is there."""
    family: dict[str, list[float]] = {}
    sources: list[str] = []
    for snr in PER_SNR + [18]:
        name = args.codec if snr == 18 else args.family.format(snr=snr)
        recorded = Path(args.family_results or ".") / f"{name}.json"
        if snr == 18 or (runs / name / "model.safetensors").is_file():
            member, _ = load_model(runs, name)
            curves, source = sweep(member, LINK, [float(snr)], test_set, batch_size=250, progress=False), name
        elif args.family_results and recorded.is_file():
            results = json.loads(recorded.read_text())
            if results["meta"]["n_images"] != len(test_set):
                raise SystemExit(f"{recorded} was measured on {results['meta']['n_images']} images, this report on {len(test_set)}: use --limit {results['meta']['n_images']}")
            curves, source = results["results"], f"{recorded} (recorded)"
        else:
            print(f"missing per-SNR codec {name}")
            continue
        sources.append(source)
        for metric in ("snr_db", "psnr", "ssim", "ms_ssim", "latent_mse"):
            family.setdefault(metric, []).extend(curves[metric])
    return (family, sources) if family else None


def channel_mean_psnr(x_hat: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``[N]`` dB: the mean over the three channels of each channel's PSNR (data range 1), the JCM
    authors' definition (theirs on [-1, 1] images with range 2, the same number)."""
    return torch.stack([metrics.psnr(x_hat[:, c:c + 1], images[:, c:c + 1]) for c in range(images.shape[1])]).mean(0)


@torch.no_grad()
def authors_psnr(codec, test_set) -> list[dict]:
    """Per SNR, the single codec's PSNR both ways: digisem's (all channels) and the authors' (channel mean)."""
    rows = []
    for snr in SNRS:
        images, _, received = transmitted(codec, test_set, snr)
        x_hat = torch.cat([codec.decoder(symbols)[0] for symbols in received.split(250)])
        rows.append({"snr_db": snr, "psnr": float(metrics.psnr(x_hat, images).mean()), "psnr_channel_mean": float(channel_mean_psnr(x_hat, images).mean()),
                     "output_range": [float(x_hat.min()), float(x_hat.max())]})
        print(f"{snr:6.1f} dB  PSNR {rows[-1]['psnr']:.2f}  channel-mean PSNR {rows[-1]['psnr_channel_mean']:.2f}", flush=True)
    return rows


def kodak_tiles(root, count: int, size: int = 32) -> TensorDataset:
    """``count`` random ``size`` x ``size`` tiles (seed 0) of the 24 Kodak images (768x512: whole tiles, no padding)."""
    tiles = torch.cat([tile(image, size)[0] for image in Kodak24(root)])
    chosen = torch.randperm(tiles.shape[0], generator=torch.Generator().manual_seed(0))[:count]
    return TensorDataset(tiles[chosen])


@torch.no_grad()
def transmitted(codec, dataset, snr: float, batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(images [N, 3, 32, 32], sent [N, n], received [N, n])``: the dataset through ``codec`` over
    AWGN at Es/N0 ``snr`` dB, with the channel draws of a sweep at that SNR (seed 0)."""
    generator = torch.Generator().manual_seed(derived_seed(0, "eval", float(snr)))
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for images, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        out = codec.eval()(images, link=LINK, snr_db=snr, generator=generator)
        parts.append((images, out["payload"], out["received"]))
    images, sent, received = (torch.cat(column) for column in zip(*parts))
    return images, sent, received


@torch.no_grad()
def decoded_psnr(decoder, restored: torch.Tensor, images: torch.Tensor, batch_size: int = 250) -> float:
    """Mean per-image PSNR (dB) of ``decoder``'s images from ``restored [N, n]`` symbols."""
    total = sum(float(metrics.psnr(decoder.eval()(symbols)[0], batch).sum()) for symbols, batch in zip(restored.split(batch_size), images.split(batch_size)))
    return total / images.shape[0]


def sampler_study(codec, scdm, test_set) -> list[dict]:
    """Latent MSE and PSNR (single-codec and joint decoders) per sampler of
    :data:`~digisem.systems.scdm.SAMPLERS` and SNR, with evaluation counts and time."""
    rows = []
    for snr in SAMPLER_SNRS:
        images, sent, received = transmitted(codec, test_set, snr)
        start = scdm.schedule.step_for_snr(snr).expand(received.shape[0])
        for config in SAMPLERS.values():
            started = time.perf_counter()
            generator = torch.Generator().manual_seed(1)
            with torch.no_grad():
                denoised, evaluations = sample(scdm.score, scdm.schedule, to_real(received), start, config, generator)
            elapsed = time.perf_counter() - started
            restored = to_complex(denoised)
            row = {"snr_db": snr, "sampler": config.label(), "evaluations": evaluations, "seconds_per_image": elapsed / received.shape[0],
                   "latent_mse": float((restored - sent).abs().pow(2).mean()), "latent_mse_channel": float((received - sent).abs().pow(2).mean()),
                   "psnr_single_decoder": decoded_psnr(codec.decoder, restored, images), "psnr_joint_decoder": decoded_psnr(scdm.decoder, restored, images)}
            rows.append(row)
            print(f"{snr:6.1f} dB {row['sampler']:18s} NFE {evaluations:4d}  latent MSE {row['latent_mse']:.4f}  PSNR {row['psnr_single_decoder']:.2f} / joint {row['psnr_joint_decoder']:.2f}", flush=True)
    return rows


def plot_sampler_study(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    from digisem.io import atomic_write

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for snr in SAMPLER_SNRS:
        chosen = sorted((r for r in rows if r["snr_db"] == snr), key=lambda r: r["evaluations"])
        for axis, key in zip(axes, ("latent_mse", "psnr_joint_decoder")):
            line = axis.plot([r["evaluations"] for r in chosen], [r[key] for r in chosen], "o-", label=f"{snr:g} dB")[0]
            for r in chosen:
                axis.annotate(r["sampler"].split(" (")[0] if "Tweedie" not in r["sampler"] else "Tweedie", (r["evaluations"], r[key]), fontsize=6, color=line.get_color())
    axes[0].set_ylabel("latent MSE per complex symbol")
    axes[1].set_ylabel("PSNR (dB), joint decoder")
    for axis in axes:
        axis.set_xscale("log")
        axis.set_xlabel("score-network evaluations")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    fig.suptitle("SCDM samplers: quality against cost (Es/N0)")
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)


def model_sizes(codec, scdm, files: dict[str, Path]) -> dict:
    """Parameters and fp32 megabytes (Table I); storage of a per-SNR family against SCDM + one codec."""
    codec_mb = parameter_count(codec) * 4 / 1e6
    score_mb = parameter_count(scdm.score) * 4 / 1e6
    decoder_mb = parameter_count(scdm.decoder) * 4 / 1e6 if scdm.decoder is not None else 0.0
    sizes = {
        "JCM codec": {"parameters": parameter_count(codec), "MB": codec_mb},
        "SCDM score network": {"parameters": parameter_count(scdm.score), "MB": score_mb},
        "SCDM joint decoder": {"parameters": parameter_count(scdm.decoder) if scdm.decoder is not None else 0, "MB": decoder_mb},
        "files (bytes)": {name: path.stat().st_size for name, path in files.items()},
    }
    for count in (7, 72):
        family = count * codec_mb
        ours = codec_mb + score_mb + decoder_mb
        sizes[f"{count} per-SNR codecs vs SCDM + codec + joint decoder"] = {"family_MB": family, "scdm_MB": ours, "reduction": family / ours}
    return sizes


def grid(codec, scdm, mmse, path: Path) -> None:
    """Fig. 5: the bundled samples received at -18, -6, 0, 12 dB by the single codec, MMSE and SCDM."""
    images, _ = sample_images("cifar")
    systems = {"JCM": codec, "MMSE": codec.with_parts(restorer=mmse), "SCDM+joint": codec.with_parts(restorer=scdm, decoder=scdm.decoder)}
    rows = [("original", images)]
    with torch.no_grad():
        for snr in (-18.0, -6.0, 0.0, 12.0):
            for label, system in systems.items():
                generator = torch.Generator().manual_seed(derived_seed(0, "eval", snr))
                rows.append((f"{label} {snr:g} dB", system.eval()(images, link=LINK, snr_db=snr, generator=generator)["x_hat"]))
    reconstruction_grid(rows, path, title="bundled samples, learned 64-QAM, AWGN (Es/N0)")


def curve_table(rows: dict[str, dict], metric: str = "psnr", digits: int = 2) -> list[str]:
    """Markdown rows: one per curve ``{snr_db, metric}`` of ``rows``, one column per SNR of :data:`SNRS`."""
    lines = ["| receiver | " + " | ".join(f"{s:g} dB" for s in SNRS) + " |", "|---" * (len(SNRS) + 1) + "|"]
    for name, curves in rows.items():
        at = dict(zip(curves["snr_db"], curves[metric]))
        lines.append(f"| {name} | " + " | ".join(f"{at[s]:.{digits}f}" if s in at else "-" for s in SNRS) + " |")
    return lines


def markdown(out: Path) -> str:
    """The tables of every section whose files are in ``out``."""
    def read(name: str):
        return json.loads((out / name).read_text()) if (out / name).is_file() else None

    comparison = {r["name"]: r["results"] for r in (read(f"{slug(name)}.json") for name in CURVES) if r}
    lines = ["PSNR (dB), AWGN:", *curve_table(comparison), "", "latent MSE, AWGN:", *curve_table(comparison, "latent_mse", 3)]
    for title, name in (("Rayleigh (fast fading, ZF), PSNR (dB):", "rayleigh.json"), ("Kodak24 32x32 tiles, AWGN, PSNR (dB):", "kodak_tiles.json")):
        if (section := read(name)):
            lines += ["", title, *curve_table(section["rows"])]
    if (rows := read("authors_psnr.json")):
        lines += ["", "| Es/N0 (dB) | " + " | ".join(f"{r['snr_db']:g}" for r in rows["rows"]) + " |", "|---" * (len(rows["rows"]) + 1) + "|",
                  "| PSNR, all channels (digisem) | " + " | ".join(f"{r['psnr']:.2f}" for r in rows["rows"]) + " |",
                  "| PSNR, mean of per-channel (JCM authors) | " + " | ".join(f"{r['psnr_channel_mean']:.2f}" for r in rows["rows"]) + " |"]
    if (study := read("sampler_study.json")):
        lines += ["", "| SNR | sampler | NFE | s/image | latent MSE | PSNR single decoder | PSNR joint decoder |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['snr_db']:g} | {r['sampler']} | {r['evaluations']} | {r['seconds_per_image'] * 1000:.1f} ms | {r['latent_mse']:.4f} | {r['psnr_single_decoder']:.2f} | {r['psnr_joint_decoder']:.2f} |"
                  for r in study["rows"]]
    if (sizes := read("model_sizes.json")):
        lines += ["", json.dumps(sizes, indent=1)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
