"""``train.init_from``: start a recipe from the weights of an earlier run (fine-tuning).

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


def initialize_from(model: nn.Module, runs_dir: str | Path, run_name: str | None, *, may_lack: Callable[[str], bool] = lambda key: False) -> str | None:
    """Load the weights of the earlier run ``runs_dir/run_name`` into ``model``.

    Every tensor of the earlier run must exist in ``model`` with the same shape; a tensor of
    ``model`` that the earlier run lacks is allowed only where ``may_lack(key)`` (e.g. a FIM the clean
    model never had), and keeps its fresh initialization. Returns the sha256 of the source file, for
    the stage's cache key and the run's record (None without ``run_name``: nothing is loaded).
    """
    if not run_name:
        return None
    source = Path(runs_dir) / run_name / "model.safetensors"
    if not source.is_file():
        raise RecipeError(f"train.init_from {run_name!r}: no trained run at {source}; train it first with: digisem train {run_name}")
    state, _ = read_weights(source)
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    resized = [key for key in state if key in own and state[key].shape != own[key].shape]
    if unexpected or resized or not all(may_lack(key) for key in missing):
        raise RecipeError(f"train.init_from {run_name!r} does not fit this model: missing {missing}, unexpected {unexpected}, other shapes {resized}")
    model.load_state_dict(state, strict=False)
    return hashlib.sha256(source.read_bytes()).hexdigest()
