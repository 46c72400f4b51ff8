"""``train.init_from``: start a recipe from the weights of an earlier run or a zoo model (fine-tuning).

Used by the robust recipes (adversarial fine-tuning of a clean model, as the authors fine-tune a
pretrained ViT) and the JCM recipes (the per-SNR codec family fine-tuned from the single codec).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from torch import nn

from ..weights import read_weights
from .recipe import RecipeError


def initial_weights_file(runs_dir: str | Path, source: str) -> Path:
    """The weights file that ``train.init_from: source`` names: the run ``runs_dir/source`` if it was
    trained, else the zoo model ``source`` (its pinned checksum verified).

    Raises :class:`RecipeError` when it is neither, with the command that trains the run.
    """
    from .. import zoo

    run_weights = Path(runs_dir) / source / "model.safetensors"
    if run_weights.is_file():
        return run_weights
    if source in zoo.zoo_names():
        return zoo.resolve_weights(source)
    raise RecipeError(f"train.init_from {source!r}: no trained run at {run_weights} and no zoo model of that name; "
                      f"train it first with: digisem train {source}")


def initialize_from(model: nn.Module, runs_dir: str | Path, source: str | None, *, may_lack: Callable[[str], bool] = lambda key: False) -> str | None:
    """Load the weights of the earlier run ``runs_dir/source`` (or of the zoo model ``source``) into ``model``.

    Every tensor of the source must exist in ``model`` with the same shape (float16 zoo tensors are
    cast to the model's dtype); a tensor of ``model`` that the source lacks is allowed only where
    ``may_lack(key)`` (e.g. a FIM the clean model never had), and keeps its fresh initialization.
    Returns the sha256 of the source file, for the stage's cache key and the run's record (None
    without ``source``: nothing is loaded).
    """
    if not source:
        return None
    weights_file = initial_weights_file(runs_dir, source)
    state, _ = read_weights(weights_file)
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    resized = [key for key in state if key in own and state[key].shape != own[key].shape]
    if unexpected or resized or not all(may_lack(key) for key in missing):
        raise RecipeError(f"train.init_from {source!r} does not fit this model: missing {missing}, unexpected {unexpected}, other shapes {resized}")
    model.load_state_dict(state, strict=False)
    return hashlib.sha256(weights_file.read_bytes()).hexdigest()
