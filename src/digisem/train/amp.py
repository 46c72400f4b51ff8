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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..link import BSCLink
from ..systems.ampsc import AMPSC, STEP_LOSSES
from ..systems.base import RecipeContext, RecipeSpec, Stage, TrainingSpeed, images_of, register_recipe, speed_options
from .recipe import RecipeError
from .warm_start import initialize_from

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


@dataclass
class AMPTraining(TrainingSpeed):
    """The ``train`` section of an AMP recipe: ``p``, the BSC flip probability of the digital steps,
    ``precision`` (``fp32``, or ``bf16`` autocast) of every step, ``init_from`` (an earlier run or a
    zoo model whose weights the schedule starts from, e.g. to continue the zoo model with more
    Steps 3-5) and the speed switches."""

    p: float = 0.0125
    precision: str = "fp32"
    init_from: str | None = None


@dataclass
class AMPStep:
    """One ``schedule`` entry: AMP ``step`` (1-5), ``epochs``, ``lr`` and the MATK ``mask_ratio``
    (default ``2p`` on the masked steps 3 and 4, 0 on the others)."""

    step: int
    epochs: int
    lr: float
    mask_ratio: float | None = None


def step_loss(model: AMPSC, step: int, p: float, mask_ratio: float):
    """The loss callable of one AMP step for :func:`~digisem.train.loop.fit_stage`."""
    spec = STEPS[step]
    with_restorer = model.restorer is not None and spec["restore"]
    loss_of_step = STEP_LOSSES[model.restorer is not None][step]
    link = BSCLink(p=p) if spec["mode"] == "digital" else None

    def loss(model_call, batch, generator):
        images = images_of(batch)
        out = model_call(images, link=link, snr_db=None, mode=spec["mode"], mask_ratio=mask_ratio, generator=generator, restore=with_restorer)
        return loss_of_step(out, images), {}

    return loss


def resolve_schedule(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """Schedule entries with defaults filled in (``mask_ratio`` = 2p on masked steps, else 0), validated."""
    p = float(recipe["train"]["p"])
    resolved = []
    for index, entry in enumerate(recipe["schedule"]):
        if entry["step"] not in STEPS:
            raise RecipeError(f"recipe key schedule.{index}.step must be one of 1..5, got {entry['step']}")
        if entry["epochs"] < 1:
            raise RecipeError(f"recipe key schedule.{index}.epochs must be >= 1, got {entry['epochs']}")
        default_mask = 2 * p if STEPS[entry["step"]]["masked"] else 0.0
        mask = entry["mask_ratio"] if entry.get("mask_ratio") is not None else default_mask
        resolved.append({"step": entry["step"], "epochs": entry["epochs"], "lr": entry["lr"], "mask_ratio": float(mask)})
    return resolved


def amp_stages(context: RecipeContext) -> Iterator[Stage]:
    """The AMP schedule: one stage per entry, each with its step's mode, trained parts and loss.

    A step's cache key leaves out the IRSNet settings while no step of the prefix has trained IRSNet,
    so AMP-SC, SoftQ and SoftHe22 share their Steps 1-2. With ``train.init_from`` the model starts
    from those weights and every key also carries their sha256 (a model with IRSNet may start from
    one without: its IRSNet then starts fresh)."""
    model, recipe = context.model, context.recipe
    schedule = resolve_schedule(recipe)
    p = float(recipe["train"]["p"])
    initial_weights = initialize_from(model, context.runs_dir, recipe["train"]["init_from"], may_lack=lambda key: key.startswith("restorer."))
    start = {"initial_weights": initial_weights} if initial_weights else {}
    for index, entry in enumerate(schedule):
        prefix = schedule[: index + 1]
        trains_restorer = model.restorer is not None and any(STEPS[e["step"]]["restore"] for e in prefix)
        model_fingerprint = {k: v for k, v in recipe["model"].items() if trains_restorer or k not in RESTORER_KEYS}
        parts = tuple(part for part in STEPS[entry["step"]]["parts"] if getattr(model, part) is not None)
        yield Stage(f"step{entry['step']}-{index}", entry["epochs"], entry["lr"], parts, step_loss(model, entry["step"], p, entry["mask_ratio"]),
                    fingerprint={"model": model_fingerprint, "schedule": prefix, **start}, optional_parts=RESTORER_PARTS, precision=recipe["train"]["precision"], **speed_options(recipe["train"]))


AMP_RECIPE = register_recipe("ampsc", RecipeSpec(stages=amp_stages, sections={"train": AMPTraining, "schedule": list[AMPStep]}))
