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

import copy
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch.utils.data import Dataset, TensorDataset
from tqdm.auto import tqdm

from ..io import atomic_write, derived_seed, run_metadata
from ..systems.jcm import JCM, JCMConfig, parameter_count, reconstruction_loss
from ..systems.scdm import SCDM, SCDMConfig, dsm_loss, sample, to_complex, to_real
from ..weights import read_weights
from .amp import test_dataset, training_dataset
from .loop import Stage, default_device, distributed_context, fit_stage
from .recipe import RecipeError, stage_key
from .run import write_run_folder

PAPER_NAMES = {"jcm": "JCM", "scdm": "SCDM"}


def _images_of(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, labels or None) of a batch from CIFAR-10 (pairs) or a TensorDataset of images."""
    if isinstance(batch, (list, tuple)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def all_images(dataset: Dataset, limit: int | None = None) -> torch.Tensor:
    """The first ``limit`` images of a dataset as one ``[N, 3, H, W]`` float tensor in [0, 1]."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return torch.stack([_images_of(dataset[i])[0] for i in range(count)])


def run_jcm_recipe(recipe: dict[str, Any], runs_dir: str | Path = "runs", data_root: str | None = None, *, resume: bool = False, progress: bool = True) -> Path:
    """Train a JCM codec at ``train.snr_db``, fit its symbol prior, evaluate it; returns the run folder."""
    runs_dir = Path(runs_dir)
    rank, _ = distributed_context()
    torch.manual_seed(int(recipe["seed"]))
    model = JCM(JCMConfig.from_dict(recipe["model"]))
    train = recipe["train"]
    snr_db, class_weight = float(train["snr_db"]), float(train.get("class_weight", 0.0))

    def loss(model_call, batch, generator):
        images, labels = _images_of(batch)
        outputs = model_call(images, snr_db=snr_db, generator=generator)
        return reconstruction_loss(outputs, images, labels, class_weight), {}

    dataset = training_dataset(recipe["data"], data_root)
    fingerprint = {"system": "jcm", "model": recipe["model"], "data": recipe["data"], "train": train, "seed": recipe["seed"]}
    stage_dir = runs_dir / "_stages" / f"{stage_key(fingerprint)}-jcm"
    stage = Stage("jcm", int(train["epochs"]), float(train["lr"]), ("encoder", "decoder"), loss)
    started = time.perf_counter()
    logs = fit_stage(model, stage, dataset, stage_dir, batch_size=int(recipe["data"]["batch_size"]), seed=int(recipe["seed"]), device=default_device(), progress=progress, resume=resume)
    model.cpu()
    model.fit_symbol_prior(all_images(dataset, 2000), torch.Generator().manual_seed(int(recipe["seed"])))
    train_seconds = time.perf_counter() - started
    if rank != 0:
        return runs_dir / recipe["name"]
    return _finish(model, recipe, {"system": "jcm", "config": recipe["model"]}, logs, runs_dir, data_root, train_seconds, progress)


def load_codec(source: str, runs_dir: str | Path = "runs") -> tuple[JCM, dict[str, Any], str]:
    """The JCM named by a recipe's ``codec``: a run folder, a recipe name trained under ``runs_dir``, or a zoo name."""
    from .. import zoo

    candidates = [Path(runs_dir) / source, Path(source)]
    found = next((c for c in candidates if (c / "model.safetensors").is_file()), None)
    try:
        model, metadata = zoo.load(str(found) if found else source)
    except Exception as err:
        raise RecipeError(f"codec {source!r} not found as a run folder, trained recipe or zoo name: train it first (digisem train {source}) ({err})") from err
    if metadata.get("system") != "jcm":
        raise RecipeError(f"codec {source!r} is a {metadata.get('system')!r} model, not a JCM codec")
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


def run_scdm_recipe(recipe: dict[str, Any], runs_dir: str | Path = "runs", data_root: str | None = None, *, resume: bool = False, progress: bool = True) -> Path:
    """Stage 1 (score matching on the frozen codec's symbols), Stage 2 (decoder fine-tuning on SCDM
    outputs), evaluation; returns the run folder."""
    runs_dir = Path(runs_dir)
    rank, world_size = distributed_context()
    if world_size > 1:
        raise RecipeError("SCDM recipes train in one process (no DDP): run them without torchrun")
    codec, codec_metadata, codec_source = load_codec(str(recipe["codec"]), runs_dir)
    joint = recipe.get("joint", {"epochs": 0})
    config = SCDMConfig.from_dict({**recipe["model"], "codec": codec_metadata["config"], "joint_decoder": int(joint["epochs"]) > 0})
    torch.manual_seed(int(recipe["seed"]))
    model = SCDM(config)
    if model.decoder is not None:
        model.decoder.load_state_dict(codec.decoder.state_dict())
    seed = int(recipe["seed"])
    started = time.perf_counter()
    images = all_images(training_dataset(recipe["data"], data_root), recipe["data"].get("train_limit"))
    symbols = codec.transmit_all(images)
    codec_key = stage_key({"codec": codec_source, "weights": codec_metadata.get("recipe"), "results": codec_metadata.get("results")})
    # the sampler does not change score matching: recipes that differ only in it share the score stage
    score_model = {key: value for key, value in recipe["model"].items() if key != "sampler"}
    fingerprint = {"system": "scdm", "codec": codec_key, "model": score_model, "data": recipe["data"], "train": recipe["train"], "seed": seed}
    score_dir = runs_dir / "_stages" / f"{stage_key(fingerprint)}-score"
    train = recipe["train"]

    def score_loss(model_call, batch, generator):
        return dsm_loss(model.score, batch[0], model.schedule, generator), {}

    score_stage = Stage("score", int(train["epochs"]), float(train["lr"]), ("score",), score_loss)
    device = default_device()
    logs = fit_stage(model, score_stage, TensorDataset(to_real(symbols)), score_dir, batch_size=int(train["batch_size"]), seed=seed, device=device,
                     progress=progress, resume=resume, optional_parts=("decoder",))
    if model.decoder is not None:
        joint_dir = runs_dir / "_stages" / f"{stage_key({**fingerprint, 'sampler': recipe['model'].get('sampler'), 'joint': joint})}-joint"
        count = min(int(joint["images"]), images.shape[0])
        model.cpu()
        inputs_file = joint_dir / "inputs.safetensors"
        if inputs_file.is_file():
            denoised = read_weights(inputs_file)[0]["denoised"]
        else:
            denoised = to_real(denoised_training_set(model, symbols[:count], torch.Generator().manual_seed(derived_seed(seed, "joint")), progress=progress)[0])
            atomic_write(inputs_file, lambda tmp: save_file({"denoised": denoised.contiguous()}, str(tmp)))
        joint_set = TensorDataset(denoised, images[:count])

        def joint_loss(model_call, batch, generator):
            coords, targets = batch
            return reconstruction_loss({"x_hat": model.decoder(to_complex(coords))[0]}, targets), {}

        joint_stage = Stage("joint", int(joint["epochs"]), float(joint["lr"]), ("decoder",), joint_loss)
        logs += fit_stage(model, joint_stage, joint_set, joint_dir, batch_size=int(joint["batch_size"]), seed=seed, device=device, progress=progress, resume=resume)
    train_seconds = time.perf_counter() - started
    if rank != 0:
        return runs_dir / recipe["name"]
    metadata = {"system": "scdm", "config": config.to_dict(), "codec": codec_source}
    return _finish(model.cpu(), recipe, metadata, logs, runs_dir, data_root, train_seconds, progress, codec=codec)


def _finish(model, recipe: dict[str, Any], weights_metadata: dict[str, Any], logs: list[dict[str, Any]], runs_dir: Path, data_root: str | None,
            train_seconds: float, progress: bool, codec: JCM | None = None) -> Path:
    """Evaluate (JCM alone, or SCDM on its codec with the jointly trained decoder if any) and write the run folder."""
    from ..cli import parse_snr_range
    from ..evaluate import evaluate_symbol_system

    evaluation = recipe["eval"]
    test_set = test_dataset(recipe["data"], data_root, evaluation.get("test_limit"))
    snrs = parse_snr_range(str(evaluation["snr"]))
    started = time.perf_counter()
    if codec is None:
        curves = evaluate_symbol_system(model, test_set, snrs, batch_size=int(evaluation.get("batch_size", 100)), seed=int(recipe["seed"]), progress=progress)
    else:
        curves = evaluate_symbol_system(codec, test_set, snrs, denoiser=model, decoder=model.decoder, batch_size=int(evaluation.get("batch_size", 100)), seed=int(recipe["seed"]), progress=progress)
    name = recipe.get("paper_name", PAPER_NAMES[recipe["system"]])
    results = {
        "name": name,
        "model": recipe["name"],
        "description": recipe.get("description", ""),
        "results": curves,
        "meta": run_metadata(
            int(recipe["seed"]), "cpu", dataset="CIFAR-10 test" if recipe["data"]["dataset"] == "cifar10" else recipe["data"]["dataset"], n_images=len(test_set),
            channel="awgn", snr_kind="esn0", modulation=f"learned {(codec or model).config.order}-ary",
            psnr="mean over images of per-image PSNR (all channels, data range 1)", parameters=parameter_count(model),
            train_seconds=round(train_seconds, 1), eval_seconds=round(time.perf_counter() - started, 1), recipe=copy.deepcopy(recipe),
        ),
    }
    weights_metadata = {**weights_metadata, "recipe": recipe["name"], "name": name, "results": {"snr_db": curves["snr_db"], "psnr": curves["psnr"]}}
    return write_run_folder(Path(runs_dir) / recipe["name"], recipe, model, weights_metadata, logs, results, plots=("psnr", "latent_mse"))
