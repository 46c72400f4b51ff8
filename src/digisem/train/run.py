"""The run folder every recipe writes (DESIGN.md): config, weights with metadata, log, results, plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..io import atomic_write, write_json, write_jsonl
from ..plots import plot_metric
from ..weights import save_weights
from .recipe import dump_recipe


def write_run_folder(
    run_dir: str | Path,
    recipe: dict[str, Any],
    model: nn.Module,
    weights_metadata: dict[str, Any],
    logs: list[dict[str, Any]],
    results: dict[str, Any],
    plots: tuple[str, ...] = ("psnr",),
) -> Path:
    """Write ``config.yaml``, ``model.safetensors`` (``weights_metadata`` inside), ``log.jsonl``,
    ``results.json`` and ``plots/<metric>.png`` for each of ``plots`` into ``run_dir``; returns it."""
    run_dir = Path(run_dir)
    atomic_write(run_dir / "config.yaml", lambda tmp: tmp.write_text(dump_recipe(recipe)))
    save_weights(model, run_dir / "model.safetensors", weights_metadata)
    write_jsonl(run_dir / "log.jsonl", logs)
    write_json(run_dir / "results.json", results)
    for metric in plots:
        plot_metric([results], metric, run_dir / "plots" / f"{metric}.png", title=results["name"])
    return run_dir
