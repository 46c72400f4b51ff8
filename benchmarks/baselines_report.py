"""Tables and plots of docs/results/baselines.md from the results of ``benchmarks/baselines.py``:
the best-MCS envelope and codec + capacity per codec and budget, beside the zoo's systems at the
same channel uses and the published BPG + 5G LDPC anchor.

Run: ``python benchmarks/baselines_report.py`` (reads and writes ``docs/results/baselines/``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from digisem.io import atomic_write
from digisem.plots import plot_metric

OUT = Path("docs/results/baselines")
ANCHOR = {"name": "published BPG + 5G LDPC (best MCS)", "results": {"snr_db": [0.0, 7.0, 10.0, 15.0], "psnr": [22.3, 27.9, 29.7, 32.8],
                                                                   "psnr_capacity_bound": [24.1, 29.7, 31.6, 34.5]}, "meta": {"snr_kind": "esn0"}}
"""The issue's anchor: BPG + 5G LDPC on CIFAR-10 at ratio 1/6 over AWGN, and BPG + capacity."""
SYSTEMS = {
    512: [("docs/results/ampsc/AMP-SC.json", 10 * math.log10(4), "AMP-SC 4-bit (zoo; Es/N0 = Eb/N0 + 6.02 dB)"),
          ("docs/results/deepjscc/deepjscc-cifar10-1_6-cpu.json", 0.0, "DeepJSCC 1/6 (zoo, analog)")],
    128: [("docs/results/scdm/JCM_single_codec.json", 0.0, "JCM 64-QAM n = 128"), ("docs/results/scdm/SCDM-Tweedie_joint_training.json", 0.0, "SCDM-Tweedie on JCM")],
}
"""(results file, dB added to its SNR axis to make it Es/N0, label) of the zoo's systems per channel-use budget."""


def load(name: str) -> dict | None:
    """The results of run ``name`` (a folder of :data:`OUT`), or None when it has not run."""
    path = OUT / name / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def shifted(path: str, offset: float, label: str) -> dict:
    """A results file with ``offset`` dB added to its SNR axis, renamed ``label``."""
    data = json.loads(Path(path).read_text())
    curves = data["results"]
    return {"name": label, "results": {"snr_db": [s + offset for s in curves["snr_db"]], "psnr": curves["psnr"]}, "meta": {"snr_kind": "esn0"}}


def table(results: dict) -> list[str]:
    """Markdown rows: per SNR, best MCS, PSNR, SSIM, failure rate, capacity bits and PSNR at capacity."""
    curves = results["results"]
    rows = ["| Es/N0 (dB) | best MCS | PSNR (dB) | SSIM | failure rate | capacity bits | PSNR at capacity (dB) |", "|---|---|---|---|---|---|---|"]
    for index, snr in enumerate(curves["snr_db"]):
        rows.append(f"| {snr:g} | {curves['mcs'][index]} | {curves['psnr'][index]:.2f} | {curves['ssim'][index]:.3f} | {curves['failure_rate'][index]:.3f} | "
                    f"{curves['capacity_bits'][index]} | {curves['psnr_capacity_bound'][index]:.2f} |")
    return rows


def compact(runs: list[tuple[str, dict]]) -> list[str]:
    """Markdown rows: PSNR per SNR of each codec's best-MCS envelope and its capacity bound, and the wall time."""
    snrs = runs[0][1]["results"]["snr_db"]
    rows = ["| curve | " + " | ".join(f"{s:g} dB" for s in snrs) + " | wall (s) |", "|---|" + "---|" * (len(snrs) + 1)]
    for _, results in runs:
        curves, label = results["results"], results["name"].split(" + ")[0]
        rows.append(f"| {label} + 5G LDPC | " + " | ".join(f"{v:.2f}" for v in curves["psnr"]) + f" | {results['meta']['wall_s']:.0f} |")
        rows.append(f"| {label} + capacity | " + " | ".join(f"{v:.2f}" for v in curves["psnr_capacity_bound"]) + " | |")
    return rows


def _db(value: float) -> str:
    """A PSNR for a table; infinite (an image reproduced exactly) as the word."""
    return "infinite" if math.isinf(value) else f"{value:.2f}"


def anchor_rows() -> list[str]:
    """The published anchor beside digisem's codecs at 0, 7, 10 and 15 dB (CIFAR-10, 512 channel uses)."""
    rows = ["| curve | 0 dB | 7 dB | 10 dB | 15 dB |", "|---|---|---|---|---|"]
    rows.append("| published BPG + 5G LDPC | " + " | ".join(f"{v:.1f}" for v in ANCHOR["results"]["psnr"]) + " |")
    rows.append("| published BPG + capacity | " + " | ".join(f"{v:.1f}" for v in ANCHOR["results"]["psnr_capacity_bound"]) + " |")
    for codec in ("webp", "jpeg2000", "avif", "jpeg"):
        sources = [results for results in (load(f"cifar10-512-{codec}"), load(f"anchor-cifar10-512-{codec}")) if results is not None]
        points = {}
        for source in sources:
            curves = source["results"]
            for index, snr in enumerate(curves["snr_db"]):
                points[snr] = (curves["psnr"][index], curves["psnr_capacity_bound"][index], curves["mcs"][index])
        if not set(ANCHOR["results"]["snr_db"]) <= set(points):
            continue
        chosen = [points[snr] for snr in ANCHOR["results"]["snr_db"]]
        label = sources[0]["name"].split(" + ")[0]
        rows.append(f"| {label} + 5G LDPC | " + " | ".join(f"{_db(p)} ({mcs})" for p, _, mcs in chosen) + " |")
        rows.append(f"| {label} + capacity | " + " | ".join(_db(c) for _, c, _ in chosen) + " |")
    return rows


def main() -> None:
    """Write one plot per budget and tables.md."""
    lines = ["# Tables of docs/results/baselines.md (made by benchmarks/baselines_report.py)", ""]
    budgets = [("cifar10-512", "CIFAR-10, 512 channel uses (ratio 1/6)", 512), ("cifar10-128", "CIFAR-10, 128 channel uses (ratio 1/24)", 128),
               ("cifar10-256", "CIFAR-10, 256 channel uses (ratio 1/12)", 256), ("kodak24-ratio6", "Kodak24 256x256 crops, ratio 1/6", None),
               ("kodak24-ratio12", "Kodak24 256x256 crops, ratio 1/12", None), ("kodak24-ratio24", "Kodak24 256x256 crops, ratio 1/24", None)]
    for prefix, title, uses in budgets:
        runs = [(codec, load(f"{prefix}-{codec}")) for codec in ("webp", "jpeg2000", "avif", "jpeg")]
        runs = [(codec, results) for codec, results in runs if results is not None]
        if not runs:
            continue
        curves = [results for _, results in runs] + ([ANCHOR] if prefix == "cifar10-512" else [])
        curves += [shifted(*system) for system in SYSTEMS.get(uses, [])]
        plot_metric(curves, "psnr", OUT / f"{prefix}.png", title=title, xlabel="Es/N0 (dB) per complex symbol")
        lines += [f"## {title}", ""] + compact(runs) + [""]
        for codec, results in runs:
            meta = results["meta"]
            lines += [f"### {title}: {results['name']}", "", f"{meta['n_images']} images, {meta['channel_uses']} channel uses, {meta['channel']}, "
                      f"wall {meta['wall_s']} s, {meta['encodes']} encodes; no image fits: {', '.join(results['results']['unfit_mcs']) or 'none'}", ""]
            lines += table(results) + [""]
    lines += ["## The published anchor (CIFAR-10, ratio 1/6, AWGN)", ""] + anchor_rows() + [""]
    atomic_write(OUT / "tables.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
