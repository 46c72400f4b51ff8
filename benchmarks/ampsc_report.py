"""Collect AMP-SC benchmark runs into docs/results/ampsc/: one results JSON per system, a PSNR table
at 0, 3, 6, 9, 12, 18 dB with the 0-18 dB average beside the paper's, and the PSNR-vs-SNR plots.

Usage: python benchmarks/ampsc_report.py [--runs runs] [--out docs/results/ampsc] [--scale cpu|zoo]

``--scale zoo`` collects the ``*-zoo`` runs of the same systems (the zoo's recipes) and writes to
``--out`` (give ``docs/results/ampsc/zoo``); the 2-bit pair and the mask sweep have no zoo recipes.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
from pathlib import Path

from digisem.evaluate import average_over
from digisem.io import write_json
from digisem.plots import plot_metric

SYSTEMS_4BIT = ["ampsc-cifar10-4bit-cpu", "softhe22-cifar10-4bit-cpu", "softq-cifar10-4bit-cpu", "he22-cifar10-4bit-cpu", "conventional-cifar10-4bit-cpu", "conventional-quantized-cifar10-4bit-cpu",
                "softamp-cifar10-4bit-cpu", "softamp-womatk-cifar10-4bit-cpu", "softhe22-wmatk-cifar10-4bit-cpu"]
SYSTEMS_2BIT = ["ampsc-cifar10-2bit-cpu", "softhe22-cifar10-2bit-cpu"]
SYSTEMS_MASK = ["ampsc-mask1p-cifar10-4bit-cpu", "ampsc-cifar10-4bit-cpu", "ampsc-mask3p-cifar10-4bit-cpu", "ampsc-mask4p-cifar10-4bit-cpu", "ampsc-mask5p-cifar10-4bit-cpu"]
"""The mask-ratio sweep (the paper's Fig. 10 ablation, on DIV2K there): AMP-SC with MATK ratio p, 2p (AMP-SC itself), 3p, 4p, 5p."""
TABLE_SNRS = [0.0, 3.0, 6.0, 9.0, 12.0, 18.0]
PAPER_AVERAGE_4BIT = {"AMP-SC": 27.63, "SoftHe22": 27.63 - 1.24, "SoftQ": 27.63 - 1.97, "He22": 27.63 - 6.53}
"""The paper's 0-18 dB average PSNR at 4 bits (AMP-SC 27.63 dB; the others from its stated gaps)."""


def collect(runs: Path, names: list[str], out: Path, scale: str = "cpu") -> list[dict]:
    """Copy each finished run's results.json to ``out/<paper name>.json``; returns the results.
    ``names`` are the cpu recipes; ``scale="zoo"`` reads their ``-zoo`` twins instead."""
    found = []
    for recipe in names:
        source = runs / (recipe.removesuffix("-cpu") + f"-{scale}") / "results.json"
        if not source.is_file():
            print(f"missing: {source}")
            continue
        results = json.loads(source.read_text())
        target = out / (re.sub(r"[^A-Za-z0-9-]+", "_", results["name"]).strip("_") + ".json")
        write_json(target, results)
        found.append(results)
    return found


AMPSC_BITS, AMPSC_CHANNEL_USES = 2048, 512
"""AMP-SC at 4 bits: 512 values x 4 bits per image on uncoded 16-QAM, 512 channel uses."""


def on_ebn0_axis(reference: dict) -> dict:
    """A classical reference swept over Es/N0 drawn on AMP-SC's Eb/N0 axis: the same channel uses
    at the same Es/N0, so Eb/N0 = Es/N0 - 10 log10(2048 bits / 512 channel uses) = Es/N0 - 6.02 dB."""
    if reference["meta"].get("snr_kind", "esn0") != "esn0":
        return reference
    offset = 10 * math.log10(AMPSC_BITS / AMPSC_CHANNEL_USES)
    curves = reference["results"]
    keep = [i for i, s in enumerate(curves["snr_db"]) if -0.5 <= s - offset <= 18.5]
    shifted = {key: [values[i] for i in keep] for key, values in curves.items() if isinstance(values, list) and len(values) == len(curves["snr_db"])}
    shifted["snr_db"] = [round(curves["snr_db"][i] - offset, 2) for i in keep]
    return {**reference, "name": f"{reference['name']}, Es/N0 = Eb/N0 + {offset:.2f} dB", "results": shifted}


def training_seconds(results: dict) -> float:
    """Training time of every step the system's weights went through (cached shared steps included)."""
    total = 0.0
    for stage in results["meta"]["stages"]:
        log = Path(stage) / "log.jsonl"
        total += sum(json.loads(line)["seconds"] for line in log.read_text().splitlines())
    return total


def table(results_list: list[dict]) -> str:
    """Markdown table: PSNR at TABLE_SNRS, our 0-18 dB average, the paper's average and the gap to ours."""
    lines = ["| system | " + " | ".join(f"{s:g} dB" for s in TABLE_SNRS) + " | avg 0-18 dB | paper avg | train (s) |", "|---" * (len(TABLE_SNRS) + 4) + "|"]
    for results in results_list:
        curves = results["results"]
        at = {s: p for s, p in zip(curves["snr_db"], curves["psnr"])}
        average = average_over(curves, "psnr", 0.0, 18.0)
        paper = PAPER_AVERAGE_4BIT.get(results["name"])
        cells = " | ".join(f"{at[s]:.2f}" if s in at else "-" for s in TABLE_SNRS)
        lines.append(f"| {results['name']} | {cells} | {average:.2f} | {f'{paper:.2f}' if paper else '-'} | {training_seconds(results):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs", type=Path)
    parser.add_argument("--out", default="docs/results/ampsc", type=Path)
    parser.add_argument("--scale", default="cpu", choices=("cpu", "zoo"))
    parser.add_argument("--reference", type=Path, action="append", default=[],
                        help="a classical reference results JSON at 512 channel uses (digisem baseline ... --channel-uses 512), drawn on the 4-bit plot; repeatable")
    args = parser.parse_args()
    reference = [on_ebn0_axis(json.loads(path.read_text())) for path in args.reference]
    four = collect(args.runs, SYSTEMS_4BIT, args.out, args.scale)
    two = collect(args.runs, SYSTEMS_2BIT, args.out, args.scale) if args.scale == "cpu" else []
    mask = collect(args.runs, SYSTEMS_MASK, args.out, args.scale) if args.scale == "cpu" else []
    for label, results_list in (("4bit", four), ("2bit", two), ("mask", mask)):
        if results_list:
            bits = "2 bits" if label == "2bit" else "4 bits"
            drawn = results_list + (reference if label == "4bit" else [])
            plot_metric(drawn, "psnr", args.out / f"psnr_{label}.png", title=f"CIFAR-10, {bits}, BSC (16-QAM Gray BER at Eb/N0)")
            print(f"\n{label}\n" + table(results_list))
    commands = args.runs / "ampsc_cpu_commands.log"
    if commands.is_file():
        shutil.copy(commands, args.out / "commands.log")


if __name__ == "__main__":
    main()
