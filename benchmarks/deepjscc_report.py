"""Collect the DeepJSCC runs into docs/results/deepjscc/: each run's results JSON, a PSNR-vs-SNR plot
with the published anchors (ratio 1/6, each model trained at its test SNR), the learning curves from
``log.jsonl``, and a Markdown table. A run no longer in ``--runs`` is taken from its recorded copy in
``--out``.

Usage: python benchmarks/deepjscc_report.py [--runs runs] [--out docs/results/deepjscc]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from digisem.io import atomic_write, write_json

RUNS = ["deepjscc-cifar10-1_6-zoo", "deepjscc-cifar10-1_6-cpu", "deepjscc-cifar10-1_12-cpu"]
PUBLISHED_1_6 = {"snr_db": [1.0, 7.0, 10.0, 13.0, 19.0], "psnr": [26.0, 29.9, 32.0, 32.5, 34.2]}
"""Ratio 1/6 on CIFAR-10, each model trained at its test SNR: a community PyTorch reproduction (1, 7, 13,
19 dB) and the ~32 dB at 10 dB anchor of WITT / SemViT (../shared/REFERENCES.md)."""
TABLE_SNRS = (0.0, 2.0, 4.0, 10.0, 14.0, 20.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--out", default="docs/results/deepjscc")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    found = []
    for name in RUNS:
        folder = runs / name
        if (folder / "results.json").is_file():
            results = json.loads((folder / "results.json").read_text())
            logs = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
            write_json(out / f"{name}.json", results)
            write_json(out / f"{name}.log.json", logs)
        elif (out / f"{name}.json").is_file() and (out / f"{name}.log.json").is_file():  # a run recorded earlier
            results, logs = json.loads((out / f"{name}.json").read_text()), json.loads((out / f"{name}.log.json").read_text())
        else:
            print(f"missing: {folder}/results.json")
            continue
        found.append((f"{results['name']}, {name.rsplit('-', 1)[1]} recipe", results, logs))
    figure, (curves_axis, learning_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, results, logs in found:
        curves_axis.plot(results["results"]["snr_db"], results["results"]["psnr"], marker="o", label=label)
        learning_axis.plot([entry["epoch"] + 1 for entry in logs], [entry["psnr"] for entry in logs], marker=".", label=label)
    curves_axis.plot(PUBLISHED_1_6["snr_db"], PUBLISHED_1_6["psnr"], "k--", marker="x", label="published, 1/6 (trained at each SNR)")
    curves_axis.set(xlabel="Es/N0 (dB)", ylabel="PSNR (dB)", title="CIFAR-10 test, 1,000 images, AWGN")
    learning_axis.set(xlabel="epoch", ylabel="training PSNR (dB, at 10 dB)", title="learning curves (log.jsonl)")
    for axis in (curves_axis, learning_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    atomic_write(out / "psnr.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    lines = ["| model | " + " | ".join(f"{s:g} dB" for s in TABLE_SNRS) + " | train s |", "|---|" + "---|" * (len(TABLE_SNRS) + 1)]
    for label, results, _ in found:
        curve = dict(zip(results["results"]["snr_db"], results["results"]["psnr"]))
        lines.append(f"| {label} | " + " | ".join(f"{curve[s]:.2f}" if s in curve else "-" for s in TABLE_SNRS) + f" | {results['meta']['train_seconds']:.0f} |")
    atomic_write(out / "table.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
