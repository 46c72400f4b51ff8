"""JCM and SCDM recipes: train a JCM codec at one SNR; train SCDM on a frozen codec (Algorithm 1), then
fine-tune the codec's decoder on SCDM outputs (Stage 2, Algorithm 3).

A ``jcm`` recipe: ``model`` (:class:`~digisem.systems.jcm.JCMConfig`), ``data`` (``dataset``,
``train_limit``, ``batch_size``), ``train`` (``snr_db`` Es/N0 of training, ``epochs``, ``lr``,
``class_weight``), ``eval`` (``snr``, ``test_limit``, ``batch_size``).

An ``scdm`` recipe: ``codec`` (a run folder, a ``jcm`` recipe's name whose run exists, or a zoo
name), ``model`` (:class:`~digisem.systems.scdm.SCDMConfig` without ``codec``), ``data``, ``train``
(``epochs``, ``lr``, ``batch_size`` of score matching), ``joint`` (``images``, ``epochs``, ``lr``,
``batch_size`` of the decoder fine-tuning; ``epochs: 0`` skips Stage 2), ``eval``.

Stage 2 needs SCDM outputs for training images at random SNRs, ``N_snr ~ U{1..N}``. The score
network is frozen in that stage, so the denoised symbols are computed once (grouped by ``N_snr``,
so each group samples only its own steps) and the decoder then trains on them for ``joint.epochs``
epochs; the paper draws fresh channel noise every batch, this draws one realization per image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch.utils.data import Dataset, TensorDataset
from tqdm.auto import tqdm

from ..io import atomic_write, derived_seed
from ..systems.base import (
    RecipeContext,
    RecipeSpec,
    Stage,
    TrainingSpeed,
    batch_parts,
    register_recipe,
    speed_options,
)
from ..systems.jcm import JCM, reconstruction_loss
from ..systems.scdm import SCDM, SCDMConfig, dsm_loss, sample, to_complex, to_real
from ..weights import read_weights
from ..distributed import distributed_context
from .recipe import RecipeError, stage_key
from .warm_start import initialize_from


@dataclass
class JCMTraining(TrainingSpeed):
    """The ``train`` section of a JCM recipe: Es/N0 of training ``snr_db`` (dB per complex symbol),
    ``epochs``, ``lr``, ``class_weight`` of the classification term, the training ``link``
    (a symbol channel spec, default AWGN), ``precision`` (``fp32``, or ``bf16`` autocast) and
    ``init_from`` (an earlier JCM run or a zoo codec to fine-tune, e.g. the single codec for a
    per-SNR member), and the speed switches."""

    snr_db: float
    epochs: int
    lr: float
    class_weight: float = 0.0
    link: str = "awgn"
    precision: str = "fp32"
    init_from: str | None = None


@dataclass
class ScoreTraining:
    """The ``train`` section of an SCDM recipe: score matching ``epochs``, ``lr``, ``batch_size``."""

    epochs: int
    lr: float
    batch_size: int = 128


@dataclass
class JointTraining:
    """The ``joint`` section (Stage 2): the decoder fine-tuned on SCDM outputs of ``images`` training
    images for ``epochs`` (0 skips it) at ``lr`` with ``batch_size``."""

    images: int = 2000
    epochs: int = 0
    lr: float = 1.0e-4
    batch_size: int = 64


def all_images(dataset: Dataset, limit: int | None = None) -> torch.Tensor:
    """The first ``limit`` images of a dataset as one ``[N, 3, H, W]`` float tensor in [0, 1]."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return torch.stack([batch_parts(dataset[i])[0] for i in range(count)])


def jcm_stages(context: RecipeContext) -> Iterator[Stage]:
    """Train a JCM codec at ``train.snr_db`` over ``train.link`` (from scratch, or from the run
    ``train.init_from``), then fit its symbol prior (the MMSE baseline's) on 2,000 training images."""
    model, train = context.model, context.recipe["train"]
    link = model.link_for(train["link"])

    def loss(model_call, batch, generator):
        images, labels = batch_parts(batch)
        outputs = model_call(images, link=link, snr_db=train["snr_db"], generator=generator)
        return reconstruction_loss(outputs, images, labels, train["class_weight"]), {}

    initial_weights = initialize_from(model, context.runs_dir, train["init_from"])
    yield Stage("jcm", train["epochs"], train["lr"], ("encoder", "decoder"), loss, precision=train["precision"], **speed_options(train),
                fingerprint={"initial_weights": initial_weights} if initial_weights else {})
    model.cpu()
    model.fit_symbol_prior(all_images(context.train_set, 2000), torch.Generator().manual_seed(context.seed))


def load_codec(source: str, runs_dir: str | Path = "runs") -> tuple[JCM, dict[str, Any], str]:
    """The codec named by a recipe's ``codec``: a run folder, a recipe name trained under ``runs_dir``, or a zoo name."""
    from .. import zoo

    candidates = [Path(runs_dir) / source, Path(source)]
    found = next((c for c in candidates if (c / "model.safetensors").is_file()), None)
    try:
        model, metadata = zoo.load(str(found) if found else source)
    except Exception as err:
        raise RecipeError(f"codec {source!r} not found as a run folder, trained recipe or zoo name: train it first (digisem train {source}) ({err})") from err
    if getattr(model, "payload_kind", None) != "symbols" or not hasattr(model, "transmit_all"):
        raise RecipeError(f"codec {source!r} is a {metadata.get('system')!r} model, not a symbol codec (JCM)")
    return model, metadata, str(found or source)


@torch.no_grad()
def denoised_training_set(scdm: SCDM, symbols: torch.Tensor, generator: torch.Generator, batch_size: int = 500, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 2 inputs: each clean ``symbols [N, n]`` gets ``N_snr ~ U{1..N}``, channel noise at that
    step (eq. 7) and SCDM's denoising from there. Returns ``(denoised [N, n] complex64, steps [N])``."""
    steps = torch.randint(1, scdm.schedule.steps + 1, (symbols.shape[0],), generator=generator)
    noisy, _ = scdm.schedule.perturb(to_real(symbols), steps, generator)
    denoised = torch.empty_like(noisy)
    groups = [(step, torch.nonzero(steps == step).flatten()) for step in steps.unique().tolist()]
    scdm.eval()
    for step, indices in tqdm(groups, desc="SCDM on training symbols", disable=not progress, leave=False):
        for chunk in indices.split(batch_size):
            denoised[chunk] = sample(scdm.score, scdm.schedule, noisy[chunk], torch.full((chunk.numel(),), step), scdm.sampler, generator)[0]
    return to_complex(denoised), steps


def build_scdm(recipe: dict[str, Any], runs_dir: Path) -> SCDM:
    """An SCDM for the recipe's ``codec`` (its joint decoder, if any, starts as the codec's)."""
    codec, metadata, _ = load_codec(str(recipe["codec"]), runs_dir)
    config = SCDMConfig.from_dict({**recipe["model"], "codec": metadata["config"], "codec_system": metadata["system"], "joint_decoder": recipe["joint"]["epochs"] > 0})
    model = SCDM(config)
    if model.decoder is not None:
        model.decoder.load_state_dict(codec.decoder.state_dict())
    return model


def scdm_stages(context: RecipeContext) -> Iterator[Stage]:
    """Stage 1: score matching on the frozen codec's symbols of the training images; Stage 2 (when
    ``joint.epochs > 0``): the decoder fine-tuned on SCDM outputs. The sampler does not change score
    matching, so recipes that differ only in it share the score stage."""
    _, world_size = distributed_context()
    if world_size > 1:
        raise RecipeError("SCDM recipes train in one process (no DDP): run them without torchrun")
    model, recipe, seed = context.model, context.recipe, context.seed
    codec, codec_metadata, codec_source = load_codec(str(recipe["codec"]), context.runs_dir)
    images = all_images(context.train_set, recipe["data"]["train_limit"])
    symbols = codec.transmit_all(images)
    codec_key = stage_key({"codec": codec_source, "weights": codec_metadata.get("recipe"), "results": codec_metadata.get("results")})
    score_model = {key: value for key, value in recipe["model"].items() if key != "sampler"}
    train, joint = recipe["train"], recipe["joint"]

    def score_loss(model_call, batch, generator):
        return dsm_loss(model.score, batch[0], model.schedule, generator), {}

    yield Stage("score", train["epochs"], train["lr"], ("score",), score_loss, fingerprint={"codec": codec_key, "model": score_model, "joint": None},
                dataset=TensorDataset(to_real(symbols)), batch_size=train["batch_size"], optional_parts=("decoder",))
    context.extras.update(evaluated=codec.with_parts(restorer=model, decoder=model.decoder or codec.decoder),
                          weights_metadata={"codec": codec_source, "config": model.config.to_dict()})
    if model.decoder is None:
        return
    model.cpu()
    count = min(joint["images"], images.shape[0])
    joint_fingerprint = {"codec": codec_key}
    inputs_file = context.stage_dir(Stage("joint", joint["epochs"], joint["lr"], ("decoder",), score_loss, fingerprint=joint_fingerprint)) / "inputs.safetensors"
    if inputs_file.is_file():
        denoised = read_weights(inputs_file)[0]["denoised"]
    else:
        denoised = to_real(denoised_training_set(model, symbols[:count], torch.Generator().manual_seed(derived_seed(seed, "joint")), progress=context.progress)[0])
        atomic_write(inputs_file, lambda tmp: save_file({"denoised": denoised.contiguous()}, str(tmp)))

    def joint_loss(model_call, batch, generator):
        coords, targets = batch
        return reconstruction_loss({"x_hat": model.decoder(to_complex(coords))[0]}, targets), {}

    yield Stage("joint", joint["epochs"], joint["lr"], ("decoder",), joint_loss, fingerprint=joint_fingerprint,
                dataset=TensorDataset(denoised, images[:count]), batch_size=joint["batch_size"])


JCM_RECIPE = register_recipe("jcm", RecipeSpec(stages=jcm_stages, sections={"train": JCMTraining}))
SCDM_RECIPE = register_recipe("scdm", RecipeSpec(stages=scdm_stages, sections={"codec": str, "train": ScoreTraining, "joint": JointTraining}, build=build_scdm))
