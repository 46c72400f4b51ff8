"""train.init_from of robust recipes (fine-tuning an earlier run) and link/model consistency checks."""

import copy
import hashlib

import pytest
import torch

from digisem.link import from_spec as link_from_spec
from digisem.systems.vqvae import MaskedVQVAE, MaskedVQVAEConfig
from digisem.train import run_recipe
from digisem.train.recipe import RecipeError, load_recipe
from digisem.train.warm_start import initialize_from
from digisem.weights import read_weights


def quick_recipe(name: str, **model) -> dict:
    """robust-smoke with a cheap schedule: no attack, no weight perturbation, one SNR, clean evaluation."""
    recipe = load_recipe("robust-smoke")
    recipe["name"] = name
    recipe["model"].update(model)
    recipe["train"].update(attack={"kind": "none"}, awp_gamma=0.0)
    recipe["eval"].update(snr="9", attack={"kind": "none"})
    return recipe


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    run_recipe(quick_recipe("base", fim_layers=[]), runs, progress=False)
    return runs


def test_initialize_from_copies_every_non_fim_weight_of_the_base_run(base_run):
    recipe = quick_recipe("tuned", fim_layers=[1])
    recipe["train"]["init_from"] = "base"
    torch.manual_seed(123)
    model = MaskedVQVAE(MaskedVQVAEConfig.from_dict(recipe["model"]))
    fresh = {key: value.clone() for key, value in model.state_dict().items()}
    base_state, _ = read_weights(base_run / "base" / "model.safetensors")
    # the base differs from a fresh model, so equality below is the copy's doing
    assert not torch.equal(fresh["encoder.embed.weight"], base_state["encoder.embed.weight"])
    digest = initialize_from(model, base_run, "base", may_lack=lambda key: key.startswith("fims."))
    assert digest == hashlib.sha256((base_run / "base" / "model.safetensors").read_bytes()).hexdigest()
    state = model.state_dict()
    assert set(base_state) == {key for key in state if not key.startswith("fims.")}
    for key, value in base_state.items():
        assert torch.equal(state[key], value.to(state[key].dtype)), key
    fim_keys = [key for key in state if key.startswith("fims.")]
    assert fim_keys, "the tuned model has a FIM"
    for key in fim_keys:
        assert torch.equal(state[key], fresh[key]), f"{key} keeps its fresh initialization"
    assert bool(model.digitizer.initialized), "the loaded codebook is not re-initialized"


def test_initialize_from_nothing_is_a_no_op(base_run):
    model = MaskedVQVAE(MaskedVQVAEConfig.from_dict(quick_recipe("x")["model"]))
    before = copy.deepcopy(model.state_dict())
    assert initialize_from(model, base_run, None) is None
    assert initialize_from(model, base_run, "") is None
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_run_with_init_from_starts_from_the_base_weights(base_run):
    recipe = quick_recipe("tuned-lr0", fim_layers=[1])
    recipe["train"].update(init_from="base", epochs=1, lr=0.0)  # lr 0: the weights stay where they started
    run_dir = run_recipe(recipe, base_run, progress=False)
    tuned, _ = read_weights(run_dir / "model.safetensors")
    base, _ = read_weights(base_run / "base" / "model.safetensors")
    assert any(key.startswith("fims.") for key in tuned)
    for key, value in base.items():
        if key in ("digitizer.usage", "digitizer.calls"):  # bookkeeping of the codebook care
            continue
        assert torch.equal(tuned[key], value), key
    assert set(tuned) - set(base) == {key for key in tuned if key.startswith("fims.")}


def test_init_from_a_missing_run_names_the_command_to_train_it(tmp_path):
    model = MaskedVQVAE(MaskedVQVAEConfig.from_dict(quick_recipe("x")["model"]))
    with pytest.raises(RecipeError, match="digisem train"):
        initialize_from(model, tmp_path, "never-trained")
    recipe = quick_recipe("tuned")
    recipe["train"]["init_from"] = "never-trained"
    with pytest.raises(RecipeError, match="digisem train never-trained"):
        run_recipe(recipe, tmp_path, progress=False)


def test_init_from_a_model_of_another_width_is_a_recipe_error(base_run):
    model = MaskedVQVAE(MaskedVQVAEConfig.from_dict({**quick_recipe("x")["model"], "width": 32}))
    with pytest.raises(RecipeError, match="base"):
        initialize_from(model, base_run, "base")


def test_init_from_a_model_with_extra_parts_is_a_recipe_error(base_run):
    # a base run lacking the FIM is fine (above); a model lacking a part the base has is not
    model = MaskedVQVAE(MaskedVQVAEConfig.from_dict({**quick_recipe("x")["model"], "fim_layers": [], "transmission": "analog"}))
    with pytest.raises(RecipeError, match="does not fit"):
        initialize_from(model, base_run, "base")


def test_analog_model_with_a_digital_link_is_a_recipe_error(tmp_path):
    recipe = quick_recipe("analog", transmission="analog")
    with pytest.raises(RecipeError, match="link"):
        run_recipe(recipe, tmp_path, progress=False)
    assert not (tmp_path / "analog").exists()


def test_digital_model_with_an_analog_link_is_a_recipe_error(tmp_path):
    recipe = quick_recipe("digital")
    recipe["link"] = {"kind": "analog", "channel": "awgn"}
    with pytest.raises(RecipeError, match="link"):
        run_recipe(recipe, tmp_path, progress=False)


def test_unknown_link_kind_is_a_recipe_error(tmp_path):
    with pytest.raises(ValueError, match="link kind 'carrier-pigeon'"):
        link_from_spec({"kind": "carrier-pigeon", "channel": "awgn"})
    recipe = quick_recipe("pigeon")
    recipe["link"] = {"kind": "carrier-pigeon", "channel": "awgn"}
    with pytest.raises(RecipeError, match="carrier-pigeon"):
        run_recipe(recipe, tmp_path, progress=False)
    assert not (tmp_path / "pigeon").exists() and not (tmp_path / "_stages").exists()


def test_analog_model_trains_over_an_analog_link(tmp_path):
    recipe = quick_recipe("analog", transmission="analog")
    recipe["link"] = {"kind": "analog", "channel": "awgn"}
    run_dir = run_recipe(recipe, tmp_path, progress=False)
    state, metadata = read_weights(run_dir / "model.safetensors")
    assert not any(key.startswith("digitizer.") for key in state)
    assert metadata["config"]["transmission"] == "analog"


def test_noise_related_masking_fine_tunes_from_a_uniform_run_and_measures_its_profile(base_run):
    recipe = quick_recipe("noisemask", fim_layers=[], masking="noise")
    recipe["train"].update(init_from="base", attack={"kind": "fgsm", "epsilon": 0.016})
    run_dir = run_recipe(recipe, base_run, progress=False)
    state, _ = read_weights(run_dir / "model.safetensors")
    profile = state["noise_profile"]
    assert profile.shape == (16,) and float(profile.min()) > 0
    assert float(profile.max()) <= 0.016 + 1e-6, "mean |noise| per patch cannot exceed epsilon"
