import json

import pytest
import torch

from digisem.train import amp
from digisem.train.amp import STEPS, resolve_schedule, run_amp_recipe
from digisem.train.recipe import RecipeError, load_recipe
from digisem.weights import read_weights

TINY = ["model.width=4", "model.irsnet_width=2", "eval.snr=0,18"]


def test_tiny_recipe_end_to_end_and_resume_is_identical(tmp_path, monkeypatch):
    recipe = load_recipe("ampsc-smoke", TINY)
    run_dir = run_amp_recipe(recipe, tmp_path / "a", progress=False)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["name"] == "AMP-SC (smoke)" and results["results"]["snr_db"] == [0.0, 18.0]
    assert results["meta"]["recipe"]["model"]["width"] == 4 and results["meta"]["git"] is not None
    assert (run_dir / "plots" / "psnr.png").is_file() and (run_dir / "config.yaml").is_file()
    assert len(list((tmp_path / "a" / "_stages").iterdir())) == 5

    # the same recipe, interrupted in step 1's second epoch (2 batches per epoch: the 3rd batch) ...
    real_step_loss = amp.step_loss
    calls = {"n": 0}

    def interrupting_step_loss(*args):
        loss = real_step_loss(*args)

        def wrapped(*batch_args):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return loss(*batch_args)

        return wrapped

    monkeypatch.setattr(amp, "step_loss", interrupting_step_loss)
    with pytest.raises(KeyboardInterrupt):
        run_amp_recipe(load_recipe("ampsc-smoke", TINY), tmp_path / "b", progress=False)
    monkeypatch.setattr(amp, "step_loss", real_step_loss)
    with pytest.raises(ValueError, match="pass --resume"):
        run_amp_recipe(load_recipe("ampsc-smoke", TINY), tmp_path / "b", progress=False)
    # ... and resumed, ends with the same weights and numbers as the uninterrupted run
    run_b = run_amp_recipe(load_recipe("ampsc-smoke", TINY), tmp_path / "b", resume=True, progress=False)
    state_a, _ = read_weights(run_dir / "model.safetensors")
    state_b, _ = read_weights(run_b / "model.safetensors")
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert json.loads((run_b / "results.json").read_text())["results"] == results["results"]


def test_shared_prefix_is_trained_once(tmp_path):
    run_amp_recipe(load_recipe("ampsc-smoke", TINY), tmp_path, progress=False)
    before = {p.name for p in (tmp_path / "_stages").iterdir()}
    # the same steps 1-2 without IRSNet (a SoftQ-like schedule) reuse the cached stages
    softq = load_recipe("ampsc-smoke", TINY + ["model.irsnet=false", "name=softq-smoke"])
    softq["schedule"] = softq["schedule"][:2]
    run_amp_recipe(softq, tmp_path, progress=False)
    assert {p.name for p in (tmp_path / "_stages").iterdir()} == before


def test_schedule_validation_and_mask_defaults():
    recipe = {"train": {"p": 0.0125}, "schedule": [{"step": 3, "epochs": 1, "lr": 1e-3}, {"step": 5, "epochs": 1, "lr": 1e-3}]}
    resolved = resolve_schedule(recipe)
    assert resolved[0]["mask_ratio"] == 0.025 and resolved[1]["mask_ratio"] == 0.0
    assert STEPS[3]["parts"] == ("restorer", "decoder") and "encoder" not in STEPS[5]["parts"]
    with pytest.raises(RecipeError, match="step in 1..5"):
        resolve_schedule({"train": {"p": 0.01}, "schedule": [{"step": 6, "epochs": 1, "lr": 1e-3}]})
    with pytest.raises(RecipeError, match="unknown keys"):
        resolve_schedule({"train": {"p": 0.01}, "schedule": [{"step": 1, "epochs": 1, "lr": 1e-3, "mask": 0.1}]})


@pytest.mark.parametrize("step,changed", [(1, {"encoder", "decoder"}), (2, {"encoder", "decoder"}), (3, {"restorer", "decoder"}), (4, {"encoder", "restorer", "decoder"}), (5, {"restorer", "decoder"})])
def test_each_step_trains_exactly_its_parts(tmp_path, step, changed):
    from torch.utils.data import TensorDataset

    from digisem.data import sample_images
    from digisem.train.loop import Stage, fit_stage

    recipe = load_recipe("ampsc-smoke", TINY)
    model = amp.build_model(recipe)
    before = {name: [p.clone() for p in getattr(model, name).parameters()] for name in ("encoder", "restorer", "decoder")}
    parts = amp.STEPS[step]["parts"]
    stage = Stage(f"step{step}", 1, 1e-2, parts, amp.step_loss(model, step, 0.0125, 0.025 if amp.STEPS[step]["masked"] else 0.0))
    fit_stage(model, stage, TensorDataset(sample_images("cifar")[0]), tmp_path, batch_size=4, seed=0, progress=False)
    moved = {name for name, params in before.items() if any(not torch.equal(a, b) for a, b in zip(params, getattr(model, name).parameters()))}
    assert moved == changed
