"""Learning curves of trained runs from their ``log.jsonl``: one line per run, a training metric
against the epoch (counted across all of a run's stages), saved as a PNG next to a copy of each
run's results and log.

A ``loss`` that is a mean squared error of images in [0, 1] can be drawn as training PSNR
(``--metric psnr-from-mse``: ``10 log10(1 / loss)``, dB); ``accuracy``, ``cross_entropy`` or any
other logged key is drawn as logged.

A run that continues or fine-tunes another (``train.init_from``) can start where that one ends:
``--after RUN=BASE`` draws RUN's first epoch after BASE's last (BASE must be one of the runs drawn).

Usage: python benchmarks/learning_curve.py RUN [RUN ...] --metric accuracy --out docs/results/robust/zoo [--runs runs] [--title TEXT] [--after RUN=BASE]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from digisem.io import atomic_write, write_json


def read_log(run_dir: Path) -> list[dict]:
    """The entries of ``run_dir/log.jsonl`` (one per epoch of each stage), in order."""
    path = run_dir / "log.jsonl"
    if not path.is_file():
        raise SystemExit(f"no learning log at {path}: train the run first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metric_values(entries: list[dict], metric: str) -> list[float]:
    """The metric of each log entry; ``psnr-from-mse`` converts the logged ``loss`` (MSE) to dB."""
    if metric == "psnr-from-mse":
        return [10 * math.log10(1 / entry["loss"]) for entry in entries]
    missing = [index for index, entry in enumerate(entries) if metric not in entry]
    if missing:
        raise SystemExit(f"metric {metric!r} is not in log entries {missing[:5]}; logged keys: {sorted(entries[0])}")
    return [float(entry[metric]) for entry in entries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="run folders under --runs")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--metric", default="loss")
    parser.add_argument("--out", required=True, help="folder for learning_curve.png and the copies")
    parser.add_argument("--title", default="learning curves (log.jsonl)")
    parser.add_argument("--after", action="append", default=[], metavar="RUN=BASE", help="draw RUN's epochs after BASE's (a continued or fine-tuned run)")
    args = parser.parse_args()
    after = dict(item.split("=", 1) for item in args.after if "=" in item)
    if len(after) != len(args.after) or not set(after) | set(after.values()) <= set(args.names):
        raise SystemExit(f"--after takes RUN=BASE with both among the runs drawn ({', '.join(args.names)}), got {args.after}")
    out = Path(args.out)
    figure, axis = plt.subplots(figsize=(6, 4))
    epochs_of: dict[str, int] = {}
    def depth(run: str, seen: tuple[str, ...] = ()) -> int:
        if run in seen:
            raise SystemExit(f"--after makes a cycle: {' -> '.join((*seen, run))}")
        return 0 if run not in after else 1 + depth(after[run], (*seen, run))

    for name in sorted(args.names, key=depth):
        run_dir = Path(args.runs) / name
        entries = read_log(run_dir)
        values = metric_values(entries, args.metric)
        start = epochs_of.get(after.get(name), 0)
        epochs_of[name] = start + len(values)
        axis.plot(range(start + 1, start + len(values) + 1), values, marker="o", label=name if name not in after else f"{name} (after {after[name]})")
        write_json(out / f"{name}.log.json", entries)
        if (run_dir / "results.json").is_file():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / "results.json", out / f"{name}.json")
        print(f"{name}: " + ", ".join(f"{value:.4g}" for value in values))
    label = "training PSNR (dB, from the MSE loss)" if args.metric == "psnr-from-mse" else f"training {args.metric}"
    axis.set(xlabel="epoch", ylabel=label, title=args.title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    atomic_write(out / "learning_curve.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110))


if __name__ == "__main__":
    main()
