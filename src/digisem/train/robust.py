"""Robust semantic communication recipes (the masked VQ-VAE paper, Algorithm 3; classification, or
reconstruction for Fig. 11).

One stage trains the whole masked VQ-VAE on adversarial samples: each batch is attacked with the
weights fixed (Algorithm 2 step 2), the weights get one adversarial ascent step (step 3, when
``train.awp_gamma > 0``), and the gradient of the loss at the perturbed weights updates the clean
ones (step 4). The loss is the cross-entropy on the attacked images sent over the training link,
plus the codebook and commitment terms of eq. 12, the codebook orthogonality term, the FIM
cross-entropies (eq. 16) and the similarity term (eq. 17), each with its recipe weight.

A ``robust`` recipe: ``model`` (:class:`~digisem.systems.vqvae.MaskedVQVAEConfig`), ``data``
(``dataset`` cifar10 or samples, ``train_limit``, ``batch_size``, optional ``image_size`` to resize to), ``link`` (``modulation``,
``channel``, ``code``: e.g. 16qam, mimo-8x4-svd, ldpc-1/2; null sends indices intact), ``train``
(``epochs``, ``lr``, ``snr_db``, ``attack``, ``awp_gamma``, ``weights``, optional ``init_from``: the
name of an earlier run in the same runs folder to fine-tune), ``eval`` (``snr``,
``test_limit``, ``batch_size``, ``attack``). Attacks: ``{kind: none|fgsm|ifgsm|pgd, epsilon, step,
steps}`` on images in [0, 1].
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from ..attacks import AdversarialWeightPerturbation, fgsm, iterative_fgsm, pgd
from ..data import CIFAR10, CIFAR10_CLASSES, sample_images
from ..io import run_metadata
from ..systems.vqvae import MaskedVQVAE, MaskedVQVAEConfig, similarity_loss
from .loop import Stage, default_device, fit_stage
from .recipe import RecipeError, stage_key
from .run import write_run_folder

TRAINABLE = ("encoder", "fims", "quantizer", "decoder", "head")
ATTACKS = ("none", "fgsm", "ifgsm", "pgd")


def labelled_samples() -> TensorDataset:
    """The bundled CIFAR sample images with their labels (from the file names)."""
    images, names = sample_images("cifar")
    labels = torch.tensor([CIFAR10_CLASSES.index(name.split("_")[1]) for name in names])
    return TensorDataset(images, labels)


class Resized(torch.utils.data.Dataset):
    """``(image, label)`` items of ``dataset`` with images resized (bilinear) to ``size x size``
    (the authors' CIFAR-10 at 224 px for 16-px patches)."""

    def __init__(self, dataset, size: int):
        self.dataset, self.size = dataset, int(size)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        resized = F.interpolate(image[None], size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        return resized.clamp(0, 1), label


def classification_dataset(data: dict[str, Any], root: str | None, split: str, limit: int | None):
    """``(image, label)`` items: CIFAR-10 (``split``, first ``limit``) or the bundled samples, resized
    to ``data["image_size"]`` when the recipe names one (native 32 px otherwise)."""
    if data["dataset"] == "samples":
        dataset = labelled_samples()
    elif data["dataset"] == "cifar10":
        dataset = CIFAR10(root, split=split, limit=limit)
    else:
        raise RecipeError(f"unknown dataset {data['dataset']!r} for a robust recipe: use cifar10 or samples")
    return Resized(dataset, data["image_size"]) if data.get("image_size", 32) != 32 else dataset


def make_link(spec: dict[str, Any] | None):
    """The link of a recipe's ``link`` section: a :class:`~digisem.link.BitLink` (``modulation``,
    ``channel``, ``code``, optional ``ldpc_k`` information bits per codeword, default 512), a :class:`~digisem.link.SymbolLink` for ``{kind: analog, channel}``, or
    None (the features arrive intact)."""
    if spec is None:
        return None
    from ..link import BitLink, SymbolLink
    from ..link.ldpc import LDPC5GCode

    kind = spec.get("kind", "digital")
    if kind not in ("digital", "analog"):
        raise RecipeError(f"unknown link kind {kind!r}: use digital or analog")
    if kind == "analog":
        return SymbolLink(spec["channel"], normalize=False)
    code = LDPC5GCode.from_spec(spec["code"], k=int(spec.get("ldpc_k", 512))) if spec.get("code") else None
    return BitLink(spec["modulation"], spec["channel"], code=code)


def make_attack(spec: dict[str, Any] | None) -> Callable[..., torch.Tensor] | None:
    """``attack(loss_fn, images, generator) -> images'`` of a recipe's attack section (None for kind none)."""
    if spec is None or spec.get("kind", "none") == "none":
        return None
    kind = spec["kind"]
    if kind not in ATTACKS:
        raise RecipeError(f"unknown attack {kind!r}: use one of {ATTACKS}")
    epsilon = float(spec["epsilon"])
    if kind == "fgsm":
        return lambda loss_fn, x, generator=None: fgsm(loss_fn, x, epsilon)
    step, steps = float(spec["step"]), int(spec["steps"])
    if kind == "ifgsm":
        return lambda loss_fn, x, generator=None: iterative_fgsm(loss_fn, x, epsilon, step, steps)
    return lambda loss_fn, x, generator=None: pgd(loss_fn, x, epsilon, step, steps, generator=generator)


def _initialize_from(model: MaskedVQVAE, runs_dir: Path, run_name: str | None) -> str | None:
    """Start from the weights of an earlier run ``runs_dir/run_name`` (e.g. adversarial fine-tuning of
    a clean model, as the authors fine-tune a pretrained ViT); parts the earlier model lacks (FIMs,
    the noise profile of noise-related masking) keep their fresh initialization. Returns the source file's sha256 (None without ``run_name``)."""
    if not run_name:
        return None
    import hashlib

    from ..weights import read_weights

    source = Path(runs_dir) / run_name / "model.safetensors"
    if not source.is_file():
        raise RecipeError(f"train.init_from {run_name!r}: no trained run at {source}; train it first with: digisem train {run_name}")
    state, _ = read_weights(source)
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    resized = [key for key in state if key in own and state[key].shape != own[key].shape]
    if unexpected or resized or any(not key.startswith("fims.") and key != "noise_profile" for key in missing):
        raise RecipeError(f"train.init_from {run_name!r} does not fit this model: missing {missing}, unexpected {unexpected}, other shapes {resized}")
    model.load_state_dict(state, strict=False)
    return hashlib.sha256(source.read_bytes()).hexdigest()


def task_loss(out: dict[str, Any], targets: torch.Tensor) -> torch.Tensor:
    """Per-example task loss ``[B]``: cross-entropy with the labels (classification) or the MSE of
    ``x_hat`` against the clean images (reconstruction)."""
    if "logits" in out:
        return F.cross_entropy(out["logits"], targets, reduction="none")
    return (out["x_hat"] - targets).pow(2).flatten(1).mean(1)


def robust_loss(model_call, images: torch.Tensor, targets: torch.Tensor, weights: dict[str, float], *, snr_db=None, link=None, generator=None) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-example training loss ``[B]`` (the task loss, :func:`task_loss`, + the weighted extra terms,
    shared by all examples) and its parts. ``targets``: labels, or clean images for reconstruction."""
    out = model_call(images, snr_db=snr_db, link=link, generator=generator)
    per_example = task_loss(out, targets)
    module = getattr(model_call, "module", model_call)
    extra = float(weights.get("vq", 1.0)) * sum(out["vq_losses"].values(), torch.zeros(()))
    if module.quantizer is not None:
        extra = extra + float(weights.get("orthogonality", 0.0)) * module.quantizer.orthogonality()
    if out["fim_logits"]:
        extra = extra + float(weights.get("fim", 0.0)) * sum(F.cross_entropy(logits, targets) for logits in out["fim_logits"]) / len(out["fim_logits"])
    if weights.get("similarity"):
        extra = extra + float(weights["similarity"]) * similarity_loss(out["features"])
    if "logits" in out:
        parts = {"cross_entropy": float(per_example.detach().mean()), "accuracy": float((out["logits"].argmax(1) == targets).float().mean())}
    else:
        parts = {"mse": float(per_example.detach().mean())}
    return per_example + extra, parts


def run_robust_recipe(recipe: dict[str, Any], runs_dir: str | Path = "runs", data_root: str | None = None, *, resume: bool = False, progress: bool = True) -> Path:
    """Adversarially train a masked VQ-VAE (classifier or reconstruction) or its JSCC baseline, evaluate
    accuracy or PSNR vs SNR (clean and attacked); returns the run folder."""
    runs_dir = Path(runs_dir)
    seed = int(recipe["seed"])
    torch.manual_seed(seed)
    model = MaskedVQVAE(MaskedVQVAEConfig.from_dict(recipe["model"]))
    train = recipe["train"]
    link = make_link(recipe.get("link"))
    link_kind = (recipe.get("link") or {}).get("kind", "digital")
    if link is not None and link_kind != model.config.transmission:
        raise RecipeError(f"a {model.config.transmission} model needs a {model.config.transmission} link, got a {link_kind} one")
    attack = make_attack(train.get("attack"))
    weights = train.get("weights", {})
    initial_weights = _initialize_from(model, runs_dir, train.get("init_from"))
    snr_db = float(train["snr_db"]) if link is not None else None
    gamma = float(train.get("awp_gamma", 0.0))
    awp = AdversarialWeightPerturbation(model, gamma) if gamma > 0 else None

    reconstruction = model.config.task == "reconstruction"
    if reconstruction and model.config.fim_layers:
        raise RecipeError("the FIM learns from class labels (eq. 15): use fim_layers [] for a reconstruction model")

    def loss(model_call, batch, generator):
        images, labels = batch
        targets = images if reconstruction else labels
        if attack is not None:
            clean = images
            images = attack(lambda x: task_loss(model_call(x, generator=generator), targets), images, generator)
            if model.config.masking == "noise":
                model.update_noise_profile(clean, images)
        if awp is not None:
            awp.perturb(lambda: robust_loss(model_call, images, targets, weights, snr_db=snr_db, link=link, generator=generator)[0].mean())
        total, parts = robust_loss(model_call, images, targets, weights, snr_db=snr_db, link=link, generator=generator)
        return total.mean(), parts

    data = recipe["data"]
    dataset = classification_dataset(data, data_root, "train", data.get("train_limit"))
    fingerprint = {"system": "robust", "model": recipe["model"], "data": data, "link": recipe.get("link"), "train": train, "seed": seed, "initial_weights": initial_weights}
    stage_dir = runs_dir / "_stages" / f"{stage_key(fingerprint)}-robust"
    trainable = tuple(part for part in TRAINABLE if getattr(model, part) is not None)
    stage = Stage("robust", int(train["epochs"]), float(train["lr"]), trainable, loss, after_backward=awp.restore if awp is not None else None)
    started = time.perf_counter()
    logs = fit_stage(model, stage, dataset, stage_dir, batch_size=int(data["batch_size"]), seed=seed, device=default_device(), progress=progress, resume=resume)
    train_seconds = time.perf_counter() - started
    model.cpu().eval()
    evaluation = recipe["eval"]
    from ..cli import parse_snr_range
    from ..evaluate import evaluate_classification, evaluate_reconstruction

    test_set = classification_dataset(data, data_root, "test", evaluation.get("test_limit"))
    started = time.perf_counter()
    metric, evaluate = ("psnr", evaluate_reconstruction) if reconstruction else ("accuracy", evaluate_classification)
    curves = evaluate(model, test_set, parse_snr_range(str(evaluation["snr"])), link, attack=make_attack(evaluation.get("attack")),
                                     batch_size=int(evaluation.get("batch_size", 100)), seed=seed, progress=progress)
    name = recipe.get("paper_name", recipe["name"])
    results = {
        "name": name,
        "model": recipe["name"],
        "description": recipe.get("description", ""),
        "results": curves,
        "meta": run_metadata(seed, "cpu", dataset="CIFAR-10 test" if data["dataset"] == "cifar10" else "bundled sample images", n_images=len(test_set),
                             channel=(recipe.get("link") or {}).get("channel", "none"), snr_kind="esn0", link=recipe.get("link"), attack=evaluation.get("attack"),
                             train_seconds=round(train_seconds, 1), eval_seconds=round(time.perf_counter() - started, 1), recipe=copy.deepcopy(recipe)),
    }
    metadata = {"system": "vqvae", "config": recipe["model"], "recipe": recipe["name"], "name": name, "link": recipe.get("link"), "results": {"snr_db": curves["snr_db"], metric: curves[metric]}}
    return write_run_folder(runs_dir / recipe["name"], recipe, model, metadata, logs, results, plots=(metric,))
