"""Training speed per family: images per second of one recipe's first training stage under fp32,
bfloat16 autocast, the channels-last memory format and ``torch.compile``, alone and combined.

Each row builds the recipe's model afresh (same seed), takes the first stage its family's plan yields
(the real loss: link, quantizer, attack and all) and times ``--batches`` optimizer steps (Adam over
the stage's trainable parts) on random images of the recipe's batch size, after ``--warmup`` steps
(where ``torch.compile`` compiles; its time is reported apart). ``cl`` and ``compile`` are the training loop's
``train.channels_last`` and ``train.compile`` switches (:func:`digisem.train.loop.speed_options_applied`). The speed-up is
against the fp32 row of the same recipe.

The ``bf16`` rows time bfloat16 autocast as asked, also where the hardware only emulates it (the
training loop would fall back to fp32 there); the ``cl`` rows are skipped on CPUs where channels-last
kernels are unsound (:mod:`digisem.hardware`).

With ``--wait-policy passive`` the script re-runs itself with ``OMP_WAIT_POLICY=PASSIVE`` (it must be
set before torch starts its thread pool).

Prints a table and writes JSON ``{"rows": [...], "meta": {...}}`` (meta: threads, wait policy,
1-minute load average before and after, versions).
Usage: ``python benchmarks/training_speed.py [--recipes R ...] [--configs fp32 bf16 cl bf16+cl compile bf16+compile]
[--threads 1] [--batches 10] [--wait-policy passive] [--out training_speed.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_RECIPES = ["ampsc-cifar10-4bit-zoo", "deepjscc-cifar10-1_6-zoo", "jcm-cifar10-64qam-zoo", "vqvae-cifar10-zoo"]
CONFIGS = ["fp32", "bf16", "cl", "bf16+cl", "compile", "bf16+compile", "bf16+cl+compile"]


def first_stage(recipe, model, images, labels):
    """The first stage of the recipe's training plan, with ``images``/``labels`` as its training set."""
    import torch

    from digisem.systems.base import RecipeContext
    from digisem.train.run import family_of

    family = family_of(recipe)
    dataset = torch.utils.data.TensorDataset(images, labels)
    context = RecipeContext(recipe, model, dataset, "runs", None, recipe["seed"], progress=False)
    return next(iter(family.recipe.stages(context)))


def time_config(recipe_name: str, config: str, batches: int, warmup: int) -> dict:
    """Images per second of ``batches`` training steps of the recipe's first stage under ``config``."""
    import torch

    from digisem.systems import FAMILIES
    from digisem.train.loop import speed_options_applied
    from digisem.train.recipe import load_recipe
    from digisem.train.run import family_of
    from digisem.train.schema import check_recipe

    options = set(config.split("+"))
    unknown = options - {"fp32", "bf16", "cl", "compile"}
    if unknown:
        raise SystemExit(f"unknown config part(s) {sorted(unknown)} in {config!r}: combine fp32, bf16, cl, compile with '+'")
    raw = load_recipe(recipe_name)
    family = family_of(raw)
    recipe = check_recipe(raw, family.recipe.sections, family.config)
    if "init_from" in recipe["train"]:
        recipe["train"]["init_from"] = None  # speed does not depend on the starting weights
    torch.manual_seed(recipe["seed"])
    model = family.recipe.build(recipe, "runs") if family.recipe.build is not None else FAMILIES[family.name].build(recipe["model"])
    batch_size = recipe["data"]["batch_size"]
    size = recipe["data"]["image_size"] or 32
    images = torch.rand(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 10, (batch_size,), generator=torch.Generator().manual_seed(1))
    stage = first_stage(recipe, model, images, labels)
    stage.channels_last, stage.compile = "cl" in options, "compile" in options
    if stage.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    parameters = [p for part in stage.trainable for p in getattr(model, part).parameters()]
    optimizer = torch.optim.Adam(parameters, lr=stage.lr)
    noise = torch.Generator().manual_seed(2)
    model.train()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in options):
            loss, _ = stage.loss(model, (images, labels), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if stage.after_backward is not None:
            stage.after_backward()
        optimizer.step()

    with speed_options_applied(model, stage):  # the training loop's own switches
        started = time.perf_counter()
        for _ in range(warmup):
            step()
        warmup_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(batches):
            step()
        seconds = time.perf_counter() - started
    return {"recipe": recipe_name, "stage": stage.name, "config": config, "batch_size": batch_size, "batches": batches,
            "images_per_s": round(batches * batch_size / seconds, 2), "warmup_s": round(warmup_seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES)
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--batches", type=int, default=10, help="timed training steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument("--wait-policy", choices=["default", "passive"], default="default")
    parser.add_argument("--label", default="", help="what else the machine was running")
    parser.add_argument("--out", default="training_speed.json")
    args = parser.parse_args()
    if args.wait_policy == "passive" and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        raise SystemExit(subprocess.call([sys.executable, *sys.argv], env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}))
    import torch

    from digisem.hardware import channels_last_is_sound
    from digisem.io import run_metadata, write_json

    torch.set_num_threads(args.threads)
    configs = args.configs
    if not channels_last_is_sound("cpu") and any("cl" in config.split("+") for config in configs):
        configs = [config for config in configs if "cl" not in config.split("+")]
        print(f"skipping the channels-last rows {sorted(set(args.configs) - set(configs))}: channels-last kernels corrupt the heap on this CPU "
              "(x86 without AVX-512, digisem.hardware)", flush=True)
    load_before = os.getloadavg()[0]
    rows = []
    for recipe_name in args.recipes:
        for config in configs:
            row = time_config(recipe_name, config, args.batches, args.warmup)
            rows.append(row)
            print(f"{recipe_name:28s} {config:16s} {row['images_per_s']:8.1f} img/s  (warm-up {row['warmup_s']:.1f} s)", flush=True)
    baseline = {row["recipe"]: row["images_per_s"] for row in rows if row["config"] == "fp32"}
    for row in rows:
        if row["recipe"] in baseline:
            row["speedup_vs_fp32"] = round(row["images_per_s"] / baseline[row["recipe"]], 2)
    meta = run_metadata(0, "cpu", threads=args.threads, wait_policy=os.environ.get("OMP_WAIT_POLICY", "default"), label=args.label,
                        load_average_before=load_before, load_average_after=os.getloadavg()[0], command=" ".join(sys.argv))
    write_json(args.out, {"rows": rows, "meta": meta})
    print(f"\n{'recipe':28s} {'config':16s} {'img/s':>8s} {'vs fp32':>8s}")
    for row in rows:
        speedup = f"{row['speedup_vs_fp32']:7.2f}x" if "speedup_vs_fp32" in row else f"{'-':>8s}"  # no fp32 row to compare with
        print(f"{row['recipe']:28s} {row['config']:16s} {row['images_per_s']:8.1f} {speedup}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
