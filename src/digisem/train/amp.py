"""AMP-SC recipes: the alternating multi-phase training (Algorithms 1-6, Table II) and its benchmarks.

A recipe's ``schedule`` is a list of AMP steps ``{step: 1..5, epochs, lr[, mask_ratio]}``:

====  =========  ==============================  ==========  =======================
step  mode       trains                          MATK        loss
====  =========  ==============================  ==========  =======================
1     analog     encoder, decoder                no          eq. 9
2     relaxed    encoder, decoder (no IRSNet)    no          eq. 11
3     digital    [IRSNet,] decoder               2p          eq. 17 (eq. 13 w/o IRSNet)
4     relaxed    encoder, [IRSNet,] decoder      2p          eq. 19 (eq. 15)
5     digital    [IRSNet,] decoder               no          eq. 21 (eq. 13)
====  =========  ==============================  ==========  =======================

Digital steps send the payload over ``BSCLink(p)`` (``train.p``, 0.0125 in the paper). The paper's
systems are schedules: AMP-SC ``1, 2, (3, 4) x 3, 5``; Conventional ``1`` (evaluated without bit
flips); SoftQ ``1, 2``; He22 ``1, 5`` without IRSNet; SoftHe22 ``1, 2, 5`` without IRSNet; SoftAMP
the AMP schedule without IRSNet; ``mask_ratio: 0`` on a step removes MATK (the "-woMATK" variants).
Every step's checkpoint is cached under ``runs/_stages/<key>`` where the key hashes all that
determines it, so systems that share a prefix train it once.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from ..data import CIFAR10, ImageFolder, Kodak24, Urban100, sample_images
from ..evaluate import average_over, evaluate_images
from ..io import run_metadata, write_json
from ..link import BSCLink
from ..systems.ampsc import AMPSC, STEP_LOSSES, AMPSCConfig
from .loop import Stage, default_device, distributed_context, fit_stage
from .recipe import RecipeError, stage_key
from .run import write_run_folder

STEPS = {
    1: {"mode": "analog", "parts": ("encoder", "decoder"), "masked": False, "restore": False},
    2: {"mode": "relaxed", "parts": ("encoder", "decoder"), "masked": False, "restore": False},
    3: {"mode": "digital", "parts": ("restorer", "decoder"), "masked": True, "restore": True},
    4: {"mode": "relaxed", "parts": ("encoder", "restorer", "decoder"), "masked": True, "restore": True},
    5: {"mode": "digital", "parts": ("restorer", "decoder"), "masked": False, "restore": True},
}
RESTORER_KEYS = ("irsnet", "irsnet_width")
RESTORER_PARTS = ("restorer",)
"""Steps that leave IRSNet untrained are shared between models with and without it."""


def step_loss(model: AMPSC, step: int, p: float, mask_ratio: float):
    """The loss callable of one AMP step for :func:`~digisem.train.loop.fit_stage`."""
    spec = STEPS[step]
    with_restorer = model.restorer is not None and spec["restore"]
    loss_of_step = STEP_LOSSES[model.restorer is not None][step]
    link = BSCLink(p=p) if spec["mode"] == "digital" else None

    def loss(model_call, batch, generator):
        # (images, labels) from CIFAR-10 and TensorDataset, bare images from image folders
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        out = model_call(images, spec["mode"], link=link, snr_db=None, mask_ratio=mask_ratio, generator=generator, restore=with_restorer)
        value = loss_of_step(out, images)
        return value, {}

    return loss


def resolve_schedule(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """Schedule entries with defaults filled in (``mask_ratio`` = 2p on masked steps, else 0), validated."""
    p = float(recipe["train"]["p"])
    resolved = []
    for index, entry in enumerate(recipe["schedule"]):
        unknown = set(entry) - {"step", "epochs", "lr", "mask_ratio"}
        if unknown or "step" not in entry or entry["step"] not in STEPS:
            raise RecipeError(f"schedule entry {index} {entry}: needs step in 1..5, epochs, lr (optional mask_ratio); unknown keys {sorted(unknown)}")
        default_mask = 2 * p if STEPS[entry["step"]]["masked"] else 0.0
        resolved.append({"step": int(entry["step"]), "epochs": int(entry["epochs"]), "lr": float(entry["lr"]), "mask_ratio": float(entry.get("mask_ratio", default_mask))})
    return resolved


def training_dataset(data: dict[str, Any], root: str | None):
    """The training set of a recipe's ``data`` section: CIFAR-10 train split, Urban100 random crops,
    or ``samples`` (the bundled CIFAR sample images: for tests and smoke runs, no data folder needed)."""
    if data["dataset"] == "samples":
        return TensorDataset(sample_images("cifar")[0])
    if data["dataset"] == "cifar10":
        return CIFAR10(root, split="train", limit=data.get("train_limit"))
    if data["dataset"] == "urban100":
        return Urban100(root, crop=data["crop"], random_crop=True, random_flip=True)
    raise RecipeError(f"unknown training dataset {data['dataset']!r}: use cifar10 or urban100")


def test_dataset(data: dict[str, Any], root: str | None, limit: int | None):
    """The test set: CIFAR-10 test split, Kodak24 center crops (high resolution), or the bundled samples."""
    if data["dataset"] == "samples":
        return TensorDataset(sample_images("cifar")[0][:limit])
    if data["dataset"] == "cifar10":
        return CIFAR10(root, split="test", limit=limit)
    if data.get("test_folder"):
        return ImageFolder(data["test_folder"], crop=data.get("test_crop"), limit=limit)
    return Kodak24(root, crop=data.get("test_crop"), limit=limit)


def describe_dataset(name: str, dataset) -> str:
    """How a results file names its test set, e.g. "CIFAR-10 test (JPEG copy)"."""
    if name == "cifar10":
        return "CIFAR-10 test" + (" (JPEG copy)" if getattr(dataset, "source", "") == "folder" else "")
    return {"samples": "bundled sample images", "urban100": "Kodak24"}.get(name, name)


def build_model(recipe: dict[str, Any]) -> AMPSC:
    """A freshly initialized model (seeded by the recipe's seed)."""
    torch.manual_seed(int(recipe["seed"]))
    return AMPSC(AMPSCConfig.from_dict(recipe["model"]))


def run_amp_recipe(recipe: dict[str, Any], runs_dir: str | Path = "runs", data_root: str | None = None, *, resume: bool = False, progress: bool = True) -> Path:
    """Train a recipe's schedule (reusing cached steps), evaluate it, and write its run folder.

    Run folder ``runs_dir/<name>/``: ``config.yaml``, ``model.safetensors`` (with config and results
    as metadata), ``log.jsonl``, ``results.json``, ``plots/psnr.png``. Returns the folder.
    """
    runs_dir = Path(runs_dir)
    rank, _ = distributed_context()
    device = default_device()
    model = build_model(recipe)
    schedule = resolve_schedule(recipe)
    dataset = training_dataset(recipe["data"], data_root)
    started = time.perf_counter()
    logs: list[dict[str, Any]] = []
    stage_dirs = []
    for index, entry in enumerate(schedule):
        prefix = schedule[: index + 1]
        trains_restorer = model.restorer is not None and any(STEPS[e["step"]]["restore"] for e in prefix)
        model_fingerprint = {k: v for k, v in recipe["model"].items() if trains_restorer or k not in RESTORER_KEYS}
        fingerprint = {"system": "ampsc", "model": model_fingerprint, "data": recipe["data"], "train": recipe["train"], "seed": recipe["seed"], "schedule": prefix}
        stage_dir = runs_dir / "_stages" / f"{stage_key(fingerprint)}-step{entry['step']}"
        stage_dirs.append(stage_dir)
        parts = tuple(part for part in STEPS[entry["step"]]["parts"] if getattr(model, part) is not None)
        stage = Stage(f"step{entry['step']}-{index}", entry["epochs"], entry["lr"], parts, step_loss(model, entry["step"], float(recipe["train"]["p"]), entry["mask_ratio"]))
        if rank == 0 and not (stage_dir / "fingerprint.json").is_file():
            write_json(stage_dir / "fingerprint.json", fingerprint)
        logs += fit_stage(model, stage, dataset, stage_dir, batch_size=int(recipe["data"]["batch_size"]), seed=int(recipe["seed"]), device=device, progress=progress, resume=resume, optional_parts=RESTORER_PARTS)
    train_seconds = time.perf_counter() - started
    if rank != 0:
        return runs_dir / recipe["name"]
    return finish_run(model, recipe, logs, stage_dirs, runs_dir, data_root, train_seconds, progress)


def finish_run(model: AMPSC, recipe: dict[str, Any], logs: list[dict[str, Any]], stage_dirs: list[Path], runs_dir: Path, data_root: str | None, train_seconds: float, progress: bool) -> Path:
    """Evaluate the trained model and write the run folder."""
    from ..cli import parse_snr_range

    run_dir = runs_dir / recipe["name"]
    evaluation = recipe["eval"]
    test_set = test_dataset(recipe["data"], data_root, evaluation.get("test_limit"))
    started = time.perf_counter()
    curves = evaluate_images(model.cpu(), test_set, parse_snr_range(str(evaluation["snr"])), evaluation["channel"], batch_size=int(evaluation.get("batch_size", 100)), seed=int(recipe["seed"]), progress=progress)
    eval_seconds = time.perf_counter() - started
    name = recipe.get("paper_name", recipe["name"])
    summary = {"psnr_avg_0_18": round(average_over(curves, "psnr", 0.0, 18.0), 3)} if any(0 <= s <= 18 for s in curves["snr_db"]) else {}
    results = {
        "name": name,
        "model": recipe["name"],
        "description": recipe.get("description", ""),
        "results": curves,
        "summary": summary,
        "meta": run_metadata(
            int(recipe["seed"]),
            "cpu",
            dataset=describe_dataset(recipe["data"]["dataset"], test_set),
            n_images=len(test_set),
            channel=evaluation["channel"],
            snr_kind="ebn0",
            modulation="16qam",
            psnr="mean over images of per-image PSNR (all channels, data range 1)",
            train_seconds=round(train_seconds, 1),
            eval_seconds=round(eval_seconds, 1),
            stages=[str(d) for d in stage_dirs],
            recipe=copy.deepcopy(recipe),
        ),
    }
    weights_metadata = {"system": "ampsc", "config": recipe["model"], "recipe": recipe["name"], "name": name, "results": {"snr_db": curves["snr_db"], "psnr": curves["psnr"]}}
    return write_run_folder(run_dir, recipe, model, weights_metadata, logs, results)
