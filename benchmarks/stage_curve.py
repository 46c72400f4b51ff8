"""PSNR learning curve of a staged recipe (the AMP schedule): each stage's final weights (from the
stage cache, ``runs/_stages/``) evaluated on the first N test images at a few SNRs over the run's
evaluation link, against the cumulative training epochs. A loss logged per step (AMP's L1 terms
differ from step to step) cannot be compared across steps; the PSNR of each stage's model can. A
model's restorer (IRSNet) is used from the first step that trains it.

Prints a table and writes ``<out>/stage_curve.json`` and ``<out>/stage_curve.png``.
Usage: python benchmarks/stage_curve.py RUN [RUN ...] --out docs/results/ampsc/zoo [--runs runs]
[--data DIR] [--limit 500] [--snr 0,9,18]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from digisem import zoo
from digisem.data import recipe_dataset
from digisem.evaluate import sweep
from digisem.io import atomic_write, run_metadata, write_json
from digisem.snr import parse_snr_range
from digisem.systems import FAMILIES
from digisem.train.amp import STEPS
from digisem.weights import read_weights


def stage_points(run_dir: Path, dataset, snrs: list[float]) -> list[dict]:
    """One row per stage of ``run_dir``: stage name, cumulative epochs, PSNR at each SNR and their mean."""
    results = json.loads((run_dir / "results.json").read_text())
    model, metadata = zoo.load(run_dir)
    family = FAMILIES[metadata["system"]]
    evaluation = results["meta"]["recipe"]["eval"]
    link = evaluation.get("link") or evaluation.get("channel") or family.default_link
    schedule = results["meta"]["recipe"].get("schedule", [])
    rows, epochs = [], 0
    for index, stage in enumerate(results["meta"]["stages"]):
        stage_dir = Path(stage)
        # a restorer is used from the first step that trains it (AMP's Steps 1-2 leave IRSNet untrained)
        restored = getattr(model, "restorer", None) is not None and any(STEPS[entry["step"]]["restore"] for entry in schedule[: index + 1])
        options = {} if getattr(model, "restorer", None) is None else {"restore": restored}
        epochs += len((stage_dir / "log.jsonl").read_text().splitlines())
        state, _ = read_weights(stage_dir / "model.safetensors")
        own = model.state_dict()
        # a stage shared with a model that has more parts (AMP-SC's Steps 1-2 carry an untrained IRSNet)
        model.load_state_dict({key: value for key, value in state.items() if key in own})
        curves = sweep(model, link, snrs, dataset, snr_kind=family.snr_kind, batch_size=100, progress=False, **options)
        psnr = [round(value, 3) for value in curves["psnr"]]
        rows.append({"stage": stage_dir.name.split("-", 1)[1], "epochs": epochs, "restorer": bool(options.get("restore")), "psnr": psnr, "psnr_mean": round(sum(psnr) / len(psnr), 3)})
        print(f"{run_dir.name:32s} {rows[-1]['stage']:10s} {epochs:4d} epochs  " + "  ".join(f"{v:6.2f}" for v in psnr) + f"  mean {rows[-1]['psnr_mean']:.2f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="run folders under --runs")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", default=None, help="data root with CIFAR-10 (default $DIGISEM_DATA)")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--snr", default="0,9,18", help="SNR points in the run's convention (AMP-SC: Eb/N0 over the BSC)")
    args = parser.parse_args()
    snrs = parse_snr_range(args.snr)
    dataset = recipe_dataset("cifar10", args.data, "test", limit=args.limit)
    out = Path(args.out)
    curves = {name: stage_points(Path(args.runs) / name, dataset, snrs) for name in args.names}
    write_json(out / "stage_curve.json", {"curves": curves, "snr_db": snrs, "meta": run_metadata(0, "cpu", n_images=len(dataset), runs=args.names)})
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for name, rows in curves.items():
        axis.plot([row["epochs"] for row in rows], [row["psnr_mean"] for row in rows], marker="o", label=name)
        for row in rows:
            axis.annotate(row["stage"].split("-")[0], (row["epochs"], row["psnr_mean"]), fontsize=6, textcoords="offset points", xytext=(2, 3))
    axis.set(xlabel="cumulative training epochs (of 50,000 images)", ylabel=f"test PSNR (dB), mean at {args.snr} dB",
             title=f"PSNR of each stage's model ({len(dataset)} CIFAR-10 test images)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    atomic_write(out / "stage_curve.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    print(f"wrote {out / 'stage_curve.json'} and {out / 'stage_curve.png'}")


if __name__ == "__main__":
    main()
