import json

import pytest
import torch

from digisem.systems import FAMILIES
from digisem.systems.base import Stage
from digisem.train import amp, run_recipe
from digisem.train.amp import STEPS, AMPStep, resolve_schedule
from digisem.train.recipe import RecipeError, load_recipe
from digisem.train.schema import check_value
from digisem.weights import read_weights

TINY = ["model.width=4", "model.irsnet_width=2", "eval.snr=0,18"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """ampsc-smoke (tiny) trained once: (runs folder, run folder, results, the stage folders it made)."""
    runs = tmp_path_factory.mktemp("runs")
    run_dir = run_recipe(load_recipe("ampsc-smoke", TINY), runs, progress=False)
    return runs, run_dir, json.loads((run_dir / "results.json").read_text()), sorted(p.name for p in (runs / "_stages").iterdir())


def test_tiny_recipe_end_to_end(reference):
    _, run_dir, results, stage_dirs = reference
    assert results["name"] == "AMP-SC (smoke)" and results["results"]["snr_db"] == [0.0, 18.0]
    assert results["meta"]["recipe"]["model"]["width"] == 4 and results["meta"]["git"] is not None
    assert results["meta"]["snr_kind"] == "ebn0" and results["meta"]["link"] == "bsc"
    assert results["meta"]["cpu"].startswith(torch.cpu.get_capabilities()["cpu_name"]) and "bf16 " in results["meta"]["cpu"]
    logs = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert all(entry["precision"] == "fp32" and isinstance(entry["channels_last"], bool) for entry in logs), "the logs record what the stages ran in"
    assert (run_dir / "plots" / "psnr.png").is_file() and (run_dir / "config.yaml").is_file()
    assert sorted(name.split("-", 1)[1] for name in stage_dirs) == ["step1-0", "step2-1", "step3-2", "step4-3", "step5-4"], "AMP stages are named step<k>-<index>"
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 6, "one log line per epoch of every stage"


def test_resume_after_interruption_is_identical(reference, tmp_path, monkeypatch):
    _, run_dir, results, stage_dirs = reference
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
        run_recipe(load_recipe("ampsc-smoke", TINY), tmp_path, progress=False)
    monkeypatch.setattr(amp, "step_loss", real_step_loss)
    with pytest.raises(ValueError, match="pass --resume"):
        run_recipe(load_recipe("ampsc-smoke", TINY), tmp_path, progress=False)
    # ... and resumed, ends with the same weights and numbers as the uninterrupted run
    run_b = run_recipe(load_recipe("ampsc-smoke", TINY), tmp_path, resume=True, progress=False)
    state_a, _ = read_weights(run_dir / "model.safetensors")
    state_b, _ = read_weights(run_b / "model.safetensors")
    assert set(state_a) == set(state_b)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert json.loads((run_b / "results.json").read_text())["results"] == results["results"]
    # the runner computes the same stage cache keys in both runs folders
    assert sorted(p.name for p in (tmp_path / "_stages").iterdir()) == stage_dirs


def test_shared_prefix_is_trained_once(reference):
    """AMP-SC and SoftQ / SoftHe22 share Steps 1-2: the IRSNet keys stay out of the cache key until a step trains IRSNet."""
    runs, _, _, stage_dirs = reference
    before = set(stage_dirs)
    # the same steps 1-2 without IRSNet (a SoftQ-like schedule) reuse the cached stages
    softq = load_recipe("ampsc-smoke", TINY + ["model.irsnet=false", "name=softq-smoke"])
    softq["schedule"] = softq["schedule"][:2]
    run_recipe(softq, runs, progress=False)
    assert {p.name for p in (runs / "_stages").iterdir()} == before
    # a SoftHe22-like schedule (1, 2, 5 without IRSNet) adds only its own step 5
    softhe22 = load_recipe("ampsc-smoke", TINY + ["model.irsnet=false", "name=softhe22-smoke"])
    softhe22["schedule"] = softhe22["schedule"][:2] + softhe22["schedule"][4:]
    run_recipe(softhe22, runs, progress=False)
    added = {p.name for p in (runs / "_stages").iterdir()} - before
    assert len(added) == 1 and next(iter(added)).endswith("-step5-2")
    # a step that trains IRSNet depends on its settings; the shared steps 1-2 load into a model with a
    # wider (untrained) IRSNet, which keeps its own initialization
    wider = load_recipe("ampsc-smoke", TINY + ["model.irsnet_width=3", "name=wider-smoke"])
    wider["schedule"] = wider["schedule"][:3]
    run_recipe(wider, runs, progress=False)
    new = {p.name for p in (runs / "_stages").iterdir()} - before - added
    assert [name.split("-", 1)[1] for name in new] == ["step3-2"]


def test_schedule_validation_and_mask_defaults():
    recipe = {"train": {"p": 0.0125}, "schedule": [{"step": 3, "epochs": 1, "lr": 1e-3}, {"step": 5, "epochs": 1, "lr": 1e-3}]}
    resolved = resolve_schedule(recipe)
    assert resolved[0]["mask_ratio"] == 0.025 and resolved[1]["mask_ratio"] == 0.0
    assert STEPS[3]["parts"] == ("restorer", "decoder") and "encoder" not in STEPS[5]["parts"]
    with pytest.raises(RecipeError, match=r"schedule.0.step must be one of 1..5"):
        resolve_schedule({"train": {"p": 0.01}, "schedule": [{"step": 6, "epochs": 1, "lr": 1e-3}]})
    with pytest.raises(RecipeError, match=r"schedule.0.epochs must be >= 1"):
        resolve_schedule({"train": {"p": 0.01}, "schedule": [{"step": 1, "epochs": 0, "lr": 1e-3}]})
    with pytest.raises(RecipeError, match=r"unknown recipe key schedule.0.mask\b"):
        check_value([{"step": 1, "epochs": 1, "lr": 1e-3, "mask": 0.1}], list[AMPStep], "schedule")


def test_bad_schedule_fails_before_any_training(tmp_path):
    recipe = load_recipe("ampsc-smoke", TINY + ["schedule.1.step=6"])
    with pytest.raises(RecipeError, match="schedule.1.step"):
        run_recipe(recipe, tmp_path, progress=False)
    assert not (tmp_path / "_stages").exists()


@pytest.mark.parametrize("step,changed", [(1, {"encoder", "decoder"}), (2, {"encoder", "decoder"}), (3, {"restorer", "decoder"}), (4, {"encoder", "restorer", "decoder"}), (5, {"restorer", "decoder"})])
def test_each_step_trains_exactly_its_parts(tmp_path, step, changed):
    from torch.utils.data import TensorDataset

    from digisem.data import sample_images
    from digisem.train.loop import fit_stage

    recipe = load_recipe("ampsc-smoke", TINY)
    model = FAMILIES["ampsc"].build(recipe["model"])
    before = {name: [p.clone() for p in getattr(model, name).parameters()] for name in ("encoder", "restorer", "decoder")}
    parts = amp.STEPS[step]["parts"]
    stage = Stage(f"step{step}", 1, 1e-2, parts, amp.step_loss(model, step, 0.0125, 0.025 if amp.STEPS[step]["masked"] else 0.0))
    fit_stage(model, stage, TensorDataset(sample_images("cifar")[0]), tmp_path, batch_size=4, seed=0, progress=False)
    moved = {name for name, params in before.items() if any(not torch.equal(a, b) for a, b in zip(params, getattr(model, name).parameters()))}
    assert moved == changed


def test_an_amp_schedule_can_start_from_earlier_weights(tmp_path):
    """train.init_from (continuing a trained model with more AMP steps): a Step-5-only schedule
    freezes the encoder, so after training it is bit-identical to the source run's encoder, while the
    decoder has moved; the stage key carries the source's sha256."""
    import hashlib

    base = load_recipe("ampsc-smoke", ["schedule.0.epochs=1"])
    base["schedule"] = base["schedule"][:1]
    base_dir = run_recipe(base, tmp_path, progress=False)
    tuned = load_recipe("ampsc-smoke")
    tuned.update(name="ampsc-smoke-continued", schedule=[{"step": 5, "epochs": 1, "lr": 1.0e-2}])
    tuned["train"]["init_from"] = "ampsc-smoke"
    tuned_dir = run_recipe(tuned, tmp_path, progress=False)
    source, _ = read_weights(base_dir / "model.safetensors")
    result, _ = read_weights(tuned_dir / "model.safetensors")
    encoder = [key for key in source if key.startswith("encoder.")]
    assert encoder and all(torch.equal(result[key], source[key]) for key in encoder)
    assert any(not torch.equal(result[key], source[key]) for key in source if key.startswith("decoder."))
    sha = hashlib.sha256((base_dir / "model.safetensors").read_bytes()).hexdigest()
    keys = [json.loads(path.read_text()).get("initial_weights") for path in (tmp_path / "_stages").glob("*/fingerprint.json")]
    assert sha in keys
