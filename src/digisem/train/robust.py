"""Robust semantic communication recipes (the masked VQ-VAE paper, Algorithm 3; classification, or
reconstruction for Fig. 11).

One stage trains the whole masked VQ-VAE on adversarial samples: each batch is attacked with the
weights fixed (Algorithm 2 step 2), the weights get one adversarial ascent step (step 3, when
``train.awp_gamma > 0``), and the gradient of the loss at the perturbed weights updates the clean
ones (step 4). The loss is the cross-entropy on the attacked images sent over the training link
(mixed with the one on the clean images when ``train.clean_weight > 0``: Algorithm 3 step 4 trains
the codebook, encoder and decoder on the input images themselves), plus the codebook and commitment terms of eq. 12, the codebook orthogonality term, the FIM
cross-entropies (eq. 16) and the similarity term (eq. 17), each with its recipe weight.

A ``vqvae`` recipe: ``model`` (:class:`~digisem.systems.vqvae.MaskedVQVAEConfig`), ``data``
(``dataset`` cifar10 or samples, ``train_limit``, ``batch_size``, optional ``image_size`` to resize to), ``link`` (``modulation``,
``channel``, ``code``: e.g. 16qam, mimo-8x4-svd, ldpc-1/2; null sends indices intact), ``train``
(``epochs``, ``lr``, ``snr_db``, ``attack``, ``awp_gamma``, ``weights``, optional ``init_from``: the
name of an earlier run in the same runs folder or a zoo model to fine-tune, ``warmup_epochs``,
``label_smoothing``, ``clean_weight``), ``eval`` (``snr``,
``test_limit``, ``batch_size``, ``attack``). Attacks: ``{kind: none|fgsm|ifgsm|pgd, epsilon, step,
steps}`` on images in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from ..attacks import AdversarialWeightPerturbation
from ..attacks import from_spec as attack_from_spec
from ..digitize import VectorQuantizer
from ..evaluate import task_loss
from ..systems.base import RecipeContext, RecipeSpec, Stage, TrainingSpeed, register_recipe, speed_options
from ..systems.vqvae import MaskedVQVAE, similarity_loss
from .recipe import RecipeError
from .schema import AttackSection
from .warm_start import initialize_from

TRAINABLE = ("encoder", "fims", "digitizer", "decoder", "head")


@dataclass
class RobustTraining(TrainingSpeed):
    """The ``train`` section: ``epochs``, ``lr``, Es/N0 ``snr_db`` of the training link, the
    transmitter-side ``attack`` of adversarial training, the AWP ``awp_gamma`` (0: none), the loss
    ``weights`` (``vq``, ``orthogonality``, ``fim``, ``similarity``) and ``init_from`` (an earlier
    run of the same runs folder to fine-tune), ``precision`` (``fp32``, or ``bf16`` autocast), the
    speed switches, ``warmup_epochs`` (> 0: linear warm-up, then a per-batch cosine; see
    :class:`~digisem.systems.base.Stage`), ``label_smoothing`` of the training cross-entropy
    (the attacks still maximize the plain one) and ``clean_weight`` in [0, 1] (with an attack: the
    loss is ``(1 - clean_weight) * L(attacked) + clean_weight * L(clean)``, one more forward and
    backward pass per batch)."""

    epochs: int
    lr: float
    snr_db: float = 3.0
    attack: AttackSection | None = None
    awp_gamma: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    init_from: str | None = None
    precision: str = "fp32"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    clean_weight: float = 0.0


def robust_loss(model_call, images: torch.Tensor, clean: torch.Tensor, labels: torch.Tensor | None, weights: dict[str, float], *, snr_db=None, link=None,
                generator=None, label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-example training loss ``[B]`` of (possibly attacked) ``images`` and its parts: the task loss
    (:func:`digisem.evaluate.task_loss`: cross-entropy with ``labels``, with ``label_smoothing`` in
    [0, 1), or, with ``labels=None``, the MSE against the ``clean`` images) plus the weighted extra
    terms shared by all examples."""
    out = model_call(images, snr_db=snr_db, link=link, generator=generator)
    per_example = task_loss(out, clean, labels, label_smoothing)
    module = getattr(model_call, "module", model_call)
    extra = float(weights.get("vq", 1.0)) * sum(out["vq_losses"].values(), torch.zeros(()))
    if isinstance(module.digitizer, VectorQuantizer):
        extra = extra + float(weights.get("orthogonality", 0.0)) * module.digitizer.orthogonality()
    if out["fim_logits"]:
        extra = extra + float(weights.get("fim", 0.0)) * sum(F.cross_entropy(logits, labels) for logits in out["fim_logits"]) / len(out["fim_logits"])
    if weights.get("similarity"):
        extra = extra + float(weights["similarity"]) * similarity_loss(out["features"])
    if out.get("logits") is not None:
        parts = {"cross_entropy": float(per_example.detach().mean()), "accuracy": float((out["logits"].argmax(1) == labels).float().mean())}
    else:
        parts = {"mse": float(per_example.detach().mean())}
    return per_example + extra, parts


def robust_stages(context: RecipeContext) -> Iterator[Stage]:
    """One stage on adversarial samples (Algorithm 3): attack with the weights fixed, one AWP ascent
    step, the gradient at the perturbed weights updates the clean ones."""
    model, recipe = context.model, context.recipe
    train = recipe["train"]
    link_spec = recipe.get("link")
    if link_spec is not None:
        kind = link_spec.get("kind", "digital") if isinstance(link_spec, dict) else None
        if kind is not None and {"analog": "analog", "symbols": "analog"}.get(kind, "digital") != model.config.transmission:
            raise RecipeError(f"a {model.config.transmission} model needs a {model.config.transmission} link, got a {kind} one")
    try:
        link = model.link_for(link_spec)
    except ValueError as err:
        raise RecipeError(f"recipe section link: {err}") from err
    attack = attack_from_spec(train["attack"])
    weights = train["weights"]
    if not 0 <= train["label_smoothing"] < 1:
        raise RecipeError(f"recipe key train.label_smoothing must lie in [0, 1), got {train['label_smoothing']}")
    if not 0 <= train["clean_weight"] <= 1:
        raise RecipeError(f"recipe key train.clean_weight must lie in [0, 1], got {train['clean_weight']}")
    if train["clean_weight"] > 0 and attack is None:
        raise RecipeError("recipe key train.clean_weight mixes clean and attacked images: it needs a train.attack")
    if train["warmup_epochs"] < 0:
        raise RecipeError(f"recipe key train.warmup_epochs must be >= 0, got {train['warmup_epochs']}")
    smoothing = float(train["label_smoothing"])
    clean_weight = float(train["clean_weight"])
    initial_weights = initialize_from(model, context.runs_dir, train["init_from"], may_lack=lambda key: key.startswith("fims.") or key == "noise_profile")
    snr_db = train["snr_db"] if link is not None else None
    awp = AdversarialWeightPerturbation(model, train["awp_gamma"]) if train["awp_gamma"] > 0 else None
    reconstruction = model.config.task == "reconstruction"
    if reconstruction and model.config.fim_layers:
        raise RecipeError("the FIM learns from class labels (eq. 15): use fim_layers [] for a reconstruction model")

    def loss(model_call, batch, generator):
        clean, labels = batch
        labels = None if reconstruction else labels
        images = clean
        if attack is not None:
            images = attack(lambda x: task_loss(model_call(x, generator=generator), clean, labels), clean, generator)
            if model.config.masking == "noise":
                model.update_noise_profile(clean, images)
        if awp is not None:
            awp.perturb(lambda: robust_loss(model_call, images, clean, labels, weights, snr_db=snr_db, link=link, generator=generator,
                                            label_smoothing=smoothing)[0].mean())
        total, parts = robust_loss(model_call, images, clean, labels, weights, snr_db=snr_db, link=link, generator=generator, label_smoothing=smoothing)
        if clean_weight == 0:
            return total.mean(), parts
        clean_total, clean_parts = robust_loss(model_call, clean, clean, labels, weights, snr_db=snr_db, link=link, generator=generator,
                                               label_smoothing=smoothing)
        parts.update({f"clean_{key}": value for key, value in clean_parts.items()})
        return (1 - clean_weight) * total.mean() + clean_weight * clean_total.mean(), parts

    trainable = tuple(part for part in TRAINABLE if any(True for _ in getattr(model, part).parameters()))
    context.extras["weights_metadata"] = {"link": link_spec}
    yield Stage("robust", train["epochs"], train["lr"], trainable, loss, after_backward=awp.restore if awp is not None else None,
                fingerprint={"link": link_spec, "initial_weights": initial_weights}, precision=train["precision"], warmup_epochs=float(train["warmup_epochs"]),
                **speed_options(train))


ROBUST_RECIPE = register_recipe("vqvae", RecipeSpec(stages=robust_stages, sections={"train": RobustTraining, "link": dict[str, Any] | None}))
