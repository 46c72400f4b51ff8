"""The one recipe runner: seeding, the schema check, the stage cache, evaluation, the results file
and the run folder are written once here; a family contributes only its stages
(:class:`~digisem.systems.base.RecipeSpec`).

``run_recipe(recipe)`` trains every stage the family's plan yields (each cached under
``runs/_stages/<key>-<stage>``, the key hashing everything that determines its weights, so recipes
sharing a prefix train it once), evaluates the trained system with the one sweep
(:func:`digisem.evaluate.sweep`) and writes ``runs/<name>/``: ``config.yaml``, ``model.safetensors``
(config, recipe and results as metadata), ``log.jsonl``, ``results.json`` and ``plots/<metric>.png``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from torch import nn

from ..attacks import from_spec as attack_from_spec
from ..data import describe_dataset, recipe_dataset
from ..evaluate import average_over, sweep
from ..io import atomic_write, remove_stale_temporaries, run_metadata, write_json, write_jsonl
from ..plots import plot_metric
from ..snr import parse_snr_range
from ..systems import FAMILIES
from ..systems.base import RecipeContext
from ..systems.classical import JpegAtBudget
from ..weights import save_weights
from ..distributed import distributed_context
from .loop import default_device, fit_stage
from .recipe import RecipeError, dump_recipe, stage_key
from .schema import check_recipe

PLOTTED = ("psnr", "accuracy", "latent_mse", "ber")


def family_of(recipe: dict[str, Any]):
    """The registered family a recipe trains, or RecipeError naming the trainable ones."""
    name = recipe.get("system")
    trainable = [family.name for family in FAMILIES if family.recipe is not None]
    if name not in FAMILIES or FAMILIES[name].recipe is None:
        raise RecipeError(f"recipe {recipe.get('name')!r} is for system {name!r}, which has no recipe runner; trainable systems: {', '.join(sorted(trainable))}")
    return FAMILIES[name]


def training_set(recipe: dict[str, Any], data_root: str | None):
    """The training set of a recipe's ``data`` section (:func:`digisem.data.recipe_dataset`; JPEG
    images at ``data.jpeg_bits``, :class:`~digisem.systems.classical.JpegAtBudget`)."""
    data = recipe["data"]
    return _jpeg(recipe_dataset(data["dataset"], data_root, "train", limit=data["train_limit"], crop=data["crop"], image_size=data["image_size"],
                                augment=data["augment"]), data["jpeg_bits"])


def test_set(recipe: dict[str, Any], data_root: str | None):
    """The test set: the test split of the recipe's dataset (an image folder if ``data.test_folder``;
    JPEG images at ``data.jpeg_bits``)."""
    data = recipe["data"]
    name, folder = ("folder", data["test_folder"]) if data["test_folder"] else (data["dataset"], None)
    return _jpeg(recipe_dataset(name, data_root, "test", limit=recipe["eval"]["test_limit"], crop=data["test_crop"], image_size=data["image_size"], folder=folder),
                 data["jpeg_bits"])


def _jpeg(dataset, max_bits: int | None):
    """``dataset`` itself, or its images as JPEGs within ``max_bits`` payload bits."""
    return dataset if max_bits is None else JpegAtBudget(dataset, max_bits)


def run_recipe(recipe: dict[str, Any], runs_dir: str | Path = "runs", data_root: str | None = None, *, resume: bool = False, progress: bool = True) -> Path:
    """Train a recipe's stages (reusing cached ones), evaluate, and write the run folder; returns it.

    ``recipe`` is a loaded recipe (:func:`~digisem.train.recipe.load_recipe`); every section is
    checked against its schema first, so a typo fails before any training.
    """
    import torch

    family = family_of(recipe)
    spec = family.recipe
    recipe = check_recipe(recipe, spec.sections, family.config)
    runs_dir = Path(runs_dir)
    rank, _ = distributed_context()
    seed = recipe["seed"]
    torch.manual_seed(seed)
    model = spec.build(recipe, runs_dir) if spec.build is not None else family.build(recipe["model"])
    base_fingerprint = {"system": family.name, "model": recipe["model"], "data": recipe["data"], "seed": seed,
                        **{name: recipe[name] for name in spec.sections}}
    logs: list[dict[str, Any]] = []
    stage_dirs: list[Path] = []

    def fingerprint_of(stage) -> dict[str, Any]:
        return {**base_fingerprint, "previous": [d.name for d in stage_dirs], "stage": stage.name, **stage.fingerprint}

    def stage_dir_of(stage) -> Path:
        return runs_dir / "_stages" / f"{stage_key(fingerprint_of(stage))}-{stage.name}"

    context = RecipeContext(recipe, model, training_set(recipe, data_root), runs_dir, data_root, seed, progress, stage_dir=stage_dir_of)
    started = time.perf_counter()
    for stage in spec.stages(context):
        fingerprint = fingerprint_of(stage)
        stage_dir = stage_dir_of(stage)
        if stage.epochs < 1 and not (stage_dir / "done.json").is_file():
            raise RecipeError(f"stage {stage.name!r} of recipe {recipe['name']!r} needs epochs >= 1, got {stage.epochs}")
        if rank == 0 and not (stage_dir / "fingerprint.json").is_file():
            write_json(stage_dir / "fingerprint.json", fingerprint)
        dataset = stage.dataset if stage.dataset is not None else context.train_set
        batch_size = stage.batch_size or recipe["data"]["batch_size"]
        logs += fit_stage(model, stage, dataset, stage_dir, batch_size=batch_size, seed=seed, device=default_device(), progress=progress,
                          resume=resume, optional_parts=stage.optional_parts, collate=stage.collate)
        stage_dirs.append(stage_dir)
        model.cpu()
    train_seconds = time.perf_counter() - started
    if rank != 0:
        return runs_dir / recipe["name"]
    return _evaluate_and_write(family, recipe, model, context, logs, stage_dirs, train_seconds, progress)


def _evaluate_and_write(family, recipe, model: nn.Module, context: RecipeContext, logs, stage_dirs, train_seconds: float, progress: bool) -> Path:
    evaluation = recipe["eval"]
    system = context.extras.get("evaluated", model)
    tests = test_set(recipe, context.data_root)
    snr_kind = evaluation["snr_kind"] or family.snr_kind
    link = evaluation["link"] if evaluation["link"] is not None else evaluation["channel"]
    if link is None:
        link = recipe.get("link", family.default_link)
    link, mode = eval_link(link, evaluation["mode"])
    attack = attack_from_spec(evaluation["attack"])
    started = time.perf_counter()
    curves = sweep(system, link, parse_snr_range(str(family.default_snrs if evaluation["snr"] is None else evaluation["snr"])), tests, snr_kind=snr_kind, mode=mode, attack=attack,
                   batch_size=evaluation["batch_size"], seed=recipe["seed"], progress=progress, label=f"eval {recipe['name']}")
    eval_seconds = time.perf_counter() - started
    name = recipe.get("paper_name", recipe["name"])
    summary = {}
    if "psnr" in curves and any(0 <= s <= 18 for s in curves["snr_db"]):
        summary["psnr_avg_0_18"] = round(average_over(curves, "psnr", 0.0, 18.0), 3)
    results = {
        "name": name,
        "model": recipe["name"],
        "description": recipe.get("description", ""),
        "results": curves,
        "summary": summary,
        "meta": run_metadata(recipe["seed"], "cpu", dataset=describe_dataset(recipe["data"]["test_folder"] and "folder" or recipe["data"]["dataset"], "test", tests)
                             + ("" if recipe["data"]["jpeg_bits"] is None else f", as JPEGs within {recipe['data']['jpeg_bits']} payload bits"),
                             n_images=len(tests), link=link, snr_kind=snr_kind, attack=evaluation["attack"],
                             psnr="mean over images of per-image PSNR (all channels, data range 1)", train_seconds=round(train_seconds, 1),
                             eval_seconds=round(eval_seconds, 1), stages=[str(d) for d in stage_dirs], recipe=copy.deepcopy(recipe), **context.extras.get("meta", {})),
    }
    main = next((metric for metric in ("psnr", "accuracy") if metric in curves), None)
    weights_metadata = {"system": family.name, "config": recipe["model"], "recipe": recipe["name"], "name": name,
                        "results": {"snr_db": curves["snr_db"], **({main: curves[main]} if main else {})}, **context.extras.get("weights_metadata", {})}
    return write_run_folder(context.runs_dir / recipe["name"], recipe, model, weights_metadata, logs, results, plots=tuple(m for m in PLOTTED if m in curves))


def eval_link(link: Any, mode: str | None) -> tuple[Any, str | None]:
    """``(link spec, mode)`` of an evaluation: ``"analog"`` means analog mode without a link (an
    analog system's upper bound, e.g. AMP-SC's "Conventional" benchmark); anything else passes."""
    if link == "analog":
        if mode not in (None, "analog"):
            raise RecipeError(f"link 'analog' evaluates in analog mode, got mode {mode!r}")
        return None, "analog"
    return link, mode


def write_run_folder(run_dir: str | Path, recipe: dict[str, Any], model: nn.Module, weights_metadata: dict[str, Any], logs: list[dict[str, Any]],
                     results: dict[str, Any], plots: tuple[str, ...] = ("psnr",)) -> Path:
    """Write ``config.yaml``, ``model.safetensors`` (``weights_metadata`` inside), ``log.jsonl``,
    ``results.json`` and ``plots/<metric>.png`` for each of ``plots`` into ``run_dir``; returns it."""
    run_dir = Path(run_dir)
    atomic_write(run_dir / "config.yaml", lambda tmp: tmp.write_text(dump_recipe(recipe)))
    save_weights(model, run_dir / "model.safetensors", weights_metadata)
    write_jsonl(run_dir / "log.jsonl", logs)
    write_json(run_dir / "results.json", results)
    for metric in plots:
        plot_metric([results], metric, run_dir / "plots" / f"{metric}.png", title=results["name"])
    remove_stale_temporaries(run_dir)
    return run_dir
