"""One generic training loop for every digisem recipe.

A recipe is a sequence of :class:`~digisem.systems.base.Stage` objects (which named parts of the
model train, for how many epochs, at which learning rate, with which loss). :func:`fit_stage` trains one stage with Adam and
cosine annealing, shows progress, and after every epoch writes one atomic checkpoint
(``state.pt``: model, optimizer, scheduler, epoch, logs; loaded with ``weights_only=True``), the
weights as ``model.safetensors`` and the log as ``log.jsonl``. A finished stage leaves
``done.json``. Temporary files that a killed run left in the stage folder are deleted when the
stage runs again (:func:`~digisem.io.remove_stale_temporaries`). Running a stage again resumes it
(or just loads it when done), and because every
epoch's shuffling and noise come from generators seeded by (seed, stage, epoch), a resumed run
gives the same numbers as an uninterrupted one.

Under ``torchrun`` (``WORLD_SIZE > 1``) the same loop runs data-parallel (DDP): each rank sees a
shard of every epoch and rank 0 writes the files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm.auto import tqdm

from ..distributed import distributed_context
from ..hardware import channels_last_is_sound, native_bfloat16
from ..io import derived_seed, remove_stale_temporaries, write_json, write_jsonl
from ..link.errors import InputError
from ..systems.base import Stage
from ..weights import load_state, save_state, save_weights


def default_device() -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


EMULATED_BF16_VARIABLE = "DIGISEM_EMULATED_BF16"
"""Set to ``1`` to train ``bf16`` stages in bfloat16 even where the hardware only emulates it."""


def fitted_to_hardware(stage: Stage, device: torch.device) -> Stage:
    """``stage`` with the speed settings that ``device`` can run (:mod:`digisem.hardware`), each change
    warned about: ``precision="bf16"`` becomes ``"fp32"`` where bfloat16 is only emulated (many times
    slower; ``DIGISEM_EMULATED_BF16=1`` keeps it, e.g. to reproduce a recipe's numbers exactly), and
    ``channels_last`` is dropped where torch's channels-last kernels corrupt the heap (an x86 CPU
    without AVX-512). The epoch logs record what was used."""
    changes = {}
    if stage.precision == "bf16" and not native_bfloat16(device) and os.environ.get(EMULATED_BF16_VARIABLE) != "1":
        changes["precision"] = "fp32"
        warnings.warn(f"this {device.type} has no native bfloat16 (on a CPU: no AVX512-BF16 or AMX), so bfloat16 autocast would be "
                      f"emulated and many times slower: stage {stage.name!r} trains in fp32 instead (set {EMULATED_BF16_VARIABLE}=1 to keep bf16)",
                      RuntimeWarning, stacklevel=2)
    if stage.channels_last and not channels_last_is_sound(device):
        changes["channels_last"] = False
        warnings.warn(f"stage {stage.name!r} trains in the contiguous format: torch's channels-last 1x1-convolution gradient "
                      "corrupts the heap on x86 CPUs without AVX-512 (digisem.hardware)", RuntimeWarning, stacklevel=2)
    return dataclasses.replace(stage, **changes) if changes else stage


def _trainable_parameters(model: nn.Module, names: tuple[str, ...]) -> list[nn.Parameter]:
    parameters = []
    for name in names:
        part = getattr(model, name, None)
        if not isinstance(part, nn.Module):
            raise InputError(f"stage trains {name!r}, but the model has no such part (it has {[n for n, _ in model.named_children()]})")
        parameters += list(part.parameters())
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in parameters:
        parameter.requires_grad_(True)
    if not parameters:
        raise InputError(f"stage trains {names}, which have no parameters")
    return parameters


def fit_stage(
    model: nn.Module,
    stage: Stage,
    dataset: Dataset,
    stage_dir: str | Path,
    *,
    batch_size: int,
    seed: int,
    device: torch.device | None = None,
    progress: bool = True,
    resume: bool = True,
    optional_parts: tuple[str, ...] = (),
    collate: Callable[[list[Any]], Any] | None = None,
) -> list[dict[str, Any]]:
    """Train ``stage`` (resuming from ``stage_dir`` if it holds a checkpoint); returns the epoch logs.

    Input batches are whatever the dataset yields, collated by the default collate (images
    ``[B, 3, H, W]`` in [0, 1] for image datasets) and moved to ``device``. A stage that was
    interrupted continues only with ``resume=True``; a finished stage is always just loaded.
    ``optional_parts`` names submodules that a checkpoint may have or lack (e.g. a restorer that a
    shared, cached stage did not train); every other weight must match exactly.
    """
    stage_dir = Path(stage_dir)
    device = device or default_device()
    rank, world_size = distributed_context()
    if rank == 0:
        remove_stale_temporaries(stage_dir)
    model.to(device)
    if (stage_dir / "done.json").is_file():
        checkpoint = load_state(stage_dir / "state.pt")
        _load_model_state(model, checkpoint["model"], optional_parts, stage_dir)
        return checkpoint["logs"]
    if stage.epochs < 1:
        raise InputError(f"stage {stage.name!r} needs epochs >= 1, got {stage.epochs}")
    parameters = _trainable_parameters(model, stage.trainable)
    stage = fitted_to_hardware(stage, device)
    optimizer = torch.optim.Adam(parameters, lr=stage.lr)
    total_batches = _batches_per_epoch(stage, len(dataset), batch_size, world_size)
    scheduler = _lr_scheduler(optimizer, stage, total_batches)
    logs: list[dict[str, Any]] = []
    start_epoch = 0
    if (stage_dir / "state.pt").is_file():
        checkpoint = load_state(stage_dir / "state.pt")
        _load_model_state(model, checkpoint["model"], optional_parts, stage_dir)
        if not resume:
            raise InputError(
                f"stage {stage.name!r} was interrupted after epoch {checkpoint['epoch'] + 1} of {stage.epochs} "
                f"({stage_dir}): pass --resume to continue it, or delete that folder to start over"
            )
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        logs = checkpoint["logs"]
        start_epoch = checkpoint["epoch"] + 1
    with speed_options_applied(model, stage):
        model_call = model
        if world_size > 1:
            # parts frozen in a stage, or skipped by its forward mode, get no gradient
            model_call = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
        for epoch in range(start_epoch, stage.epochs):
            epoch_seed = derived_seed(seed, stage.name, epoch)
            torch.manual_seed(epoch_seed)
            if world_size > 1:
                sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=epoch_seed % 2**31)
            else:
                sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(epoch_seed))
            loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True, collate_fn=collate)
            noise = torch.Generator(device=device).manual_seed(derived_seed(epoch_seed, "noise", rank))
            if total_batches == 0:
                raise InputError(f"the dataset ({len(dataset)} items) is smaller than one batch of {batch_size}")
            sums: dict[str, float] = {}
            started = time.perf_counter()
            model.train()
            bar = tqdm(total=total_batches, desc=f"{stage.name} {epoch + 1}/{stage.epochs}", disable=not progress or rank != 0, leave=False)
            for index, batch in enumerate(loader):
                if index == total_batches:
                    break
                batch = _to_device(batch, device, torch.channels_last if stage.channels_last else None)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=stage.precision == "bf16"):
                    loss, values = stage.loss(model_call, batch, noise)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"stage {stage.name!r}, epoch {epoch}: loss is {loss.item()}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if stage.after_backward is not None:
                    stage.after_backward()
                optimizer.step()
                if stage.warmup_epochs > 0:
                    scheduler.step()
                for key, value in {"loss": loss.item(), **values}.items():
                    sums[key] = sums.get(key, 0.0) + value
                bar.update(1)
                bar.set_postfix(loss=f"{sums['loss'] / (index + 1):.4f}")
            bar.close()
            if stage.warmup_epochs == 0:
                scheduler.step()
            entry = {"stage": stage.name, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - started, 2),
                     "precision": stage.precision, "channels_last": stage.channels_last}
            entry.update({key: value / total_batches for key, value in sums.items()})
            logs.append(entry)
            if rank == 0:
                _checkpoint(model, optimizer, scheduler, epoch, logs, stage_dir)
                if progress:
                    print(json.dumps(entry), flush=True)
            if world_size > 1:
                dist.barrier()
    if rank == 0:
        write_json(stage_dir / "done.json", {"stage": stage.name, "epochs": stage.epochs, "final": logs[-1]})
    return logs


def _batches_per_epoch(stage: Stage, items: int, batch_size: int, world_size: int) -> int:
    """Optimizer steps per epoch of each rank: the full batches of its shard (the loader's length, with
    ``drop_last``; a distributed shard is padded to ``ceil(items / world_size)``), capped by ``max_batches``."""
    batches = -(-items // world_size) // batch_size
    return batches if stage.max_batches is None else min(batches, stage.max_batches)


def _lr_scheduler(optimizer: torch.optim.Optimizer, stage: Stage, batches_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing from ``stage.lr`` to ``stage.eta_min``: stepped once per epoch, or, with
    ``stage.warmup_epochs > 0``, once per batch after a linear warm-up from ``lr / warmup steps``
    over that many epochs (the one-cycle shape short trainings want)."""
    if stage.warmup_epochs == 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=stage.epochs, eta_min=stage.eta_min)
    total = max(1, stage.epochs * batches_per_epoch)
    warmup = min(total, max(1, round(stage.warmup_epochs * batches_per_epoch)))
    floor = stage.eta_min / stage.lr if stage.lr > 0 else 0.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@contextmanager
def speed_options_applied(model: nn.Module, stage: Stage) -> Iterator[None]:
    """Inside the block the model is in the stage's channels-last format and its trainable parts
    are compiled (as ``stage.channels_last`` / ``stage.compile`` ask); afterwards, also after an
    error, it is contiguous and eager again."""
    if stage.channels_last:
        model.to(memory_format=torch.channels_last)
    if stage.compile:
        for name in stage.trainable:
            getattr(model, name).compile()
    try:
        yield
    finally:
        if stage.channels_last:
            model.to(memory_format=torch.contiguous_format)
        if stage.compile:
            for name in stage.trainable:
                # nn.Module.compile() keeps the compiled call here; None restores the eager module
                getattr(model, name)._compiled_call_impl = None


def _load_model_state(model: nn.Module, state: dict[str, torch.Tensor], optional_parts: tuple[str, ...], stage_dir: Path) -> None:
    """Load ``state``; keys of ``optional_parts`` may be missing, extra or of another shape (a shared
    stage cached by a model whose untrained restorer had another width: the model keeps its own
    initialization of those), any other mismatch raises."""
    own = model.state_dict()
    state = {key: value for key, value in state.items()
             if key.split(".")[0] not in optional_parts or key not in own or own[key].shape == value.shape}
    missing, unexpected = model.load_state_dict(state, strict=False)
    mismatched = [key for key in missing + unexpected if key.split(".")[0] not in optional_parts]
    if mismatched:
        raise InputError(f"checkpoint in {stage_dir} does not fit the model: mismatched weights {mismatched[:5]}")


def _checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, epoch: int, logs: list[dict[str, Any]], stage_dir: Path) -> None:
    """One atomic resume point (``state.pt``), then the weights and log for people to read."""
    model_state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    save_state({"epoch": epoch, "model": model_state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "logs": logs}, stage_dir / "state.pt")
    save_weights(model, stage_dir / "model.safetensors", {"epoch": epoch})
    write_jsonl(stage_dir / "log.jsonl", logs)


def _to_device(batch: Any, device: torch.device, memory_format: torch.memory_format | None = None) -> Any:
    """``batch`` (a tensor or nested lists/tuples of them) on ``device``; 4-D tensors (images) in
    ``memory_format`` when one is given."""
    if isinstance(batch, torch.Tensor):
        if memory_format is not None and batch.dim() == 4:
            return batch.to(device, non_blocking=True, memory_format=memory_format)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(item, device, memory_format) for item in batch)
    return batch
