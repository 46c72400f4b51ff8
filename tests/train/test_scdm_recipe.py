"""JCM and SCDM recipes end to end on the bundled samples, and `digisem eval` with every denoiser."""

import hashlib
import json

import pytest
import torch

from digisem import zoo
from digisem.cli import main
from digisem.train import run_recipe
from digisem.train.recipe import RecipeError, load_recipe
from digisem.weights import read_weights


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    codec_dir = run_recipe(load_recipe("jcm-smoke"), runs, progress=False)
    scdm_dir = run_recipe(load_recipe("scdm-smoke"), runs, progress=False)
    return runs, codec_dir, scdm_dir


def test_jcm_and_scdm_recipes_write_run_folders(smoke_runs):
    _, codec_dir, scdm_dir = smoke_runs
    codec_results = json.loads((codec_dir / "results.json").read_text())
    # a recipe without paper_name is named by its recipe name (one rule for every family)
    assert codec_results["name"] == codec_results["model"] == "jcm-smoke" and codec_results["meta"]["snr_kind"] == "esn0"
    assert codec_results["results"]["snr_db"] == [-6.0, 6.0]
    # without a denoiser the decoder sees the channel output: both latent MSEs are N0 = 10^(-snr/10)
    assert codec_results["results"]["latent_mse"] == codec_results["results"]["latent_mse_channel"]
    assert codec_results["results"]["latent_mse"][0] == pytest.approx(10**0.6, rel=0.1)
    codec, metadata = zoo.load(codec_dir)
    assert metadata["system"] == "jcm" and codec.prior_symbols().abs().sum() > 0
    scdm_results = json.loads((scdm_dir / "results.json").read_text())
    assert scdm_results["meta"]["recipe"]["codec"] == "jcm-smoke"
    scdm, scdm_metadata = zoo.load(scdm_dir)
    assert scdm_metadata["system"] == "scdm" and scdm.decoder is not None
    # Stage 2 trained only the decoder, starting from the codec's
    state, _ = read_weights(scdm_dir / "model.safetensors")
    assert any(not torch.equal(state[f"decoder.{k}"], v) for k, v in codec.decoder.state_dict().items() if v.dtype.is_floating_point)
    for folder in (codec_dir, scdm_dir):
        assert (folder / "plots" / "psnr.png").is_file() and (folder / "plots" / "latent_mse.png").is_file() and (folder / "config.yaml").is_file()


def test_scdm_recipe_stages_are_cached(smoke_runs):
    runs, _, scdm_dir = smoke_runs
    before = sorted(p.name for p in (runs / "_stages").iterdir())
    assert any(name.endswith("-score") for name in before) and any(name.endswith("-joint") for name in before)
    assert (next((runs / "_stages").glob("*-joint")) / "inputs.safetensors").is_file()
    state_before, metadata_before = read_weights(scdm_dir / "model.safetensors")
    run_recipe(load_recipe("scdm-smoke"), runs, progress=False)
    assert sorted(p.name for p in (runs / "_stages").iterdir()) == before
    state_after, metadata_after = read_weights(scdm_dir / "model.safetensors")
    assert metadata_after == metadata_before, "a re-run loads the cached stages and reproduces the evaluation"
    assert all(torch.equal(state_after[key], value) for key, value in state_before.items())


@pytest.mark.parametrize("denoiser", ["none", "mmse", "scdm", "scdm-joint"])
def test_eval_verb_with_each_denoiser(smoke_runs, denoiser, tmp_path, capsys):
    _, codec_dir, scdm_dir = smoke_runs
    out = tmp_path / denoiser
    status = main(["eval", str(codec_dir), "--denoiser", denoiser, "--scdm", str(scdm_dir), "--data", "samples", "--snr", "-12,0", "--grid-snr", "-6", "--out", str(out), "--quiet"])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    curves = results["results"]
    assert curves["snr_db"] == [-12.0, 0.0] and results["meta"]["denoiser"] == denoiser
    assert (out / "grid.png").is_file() and (out / "latent_mse.png").is_file()
    if denoiser == "mmse":
        # the per-symbol posterior mean can only shrink the error of the channel output
        assert all(d < c for d, c in zip(curves["latent_mse"], curves["latent_mse_channel"]))
    assert "latent MSE" in capsys.readouterr().out


@pytest.mark.parametrize("sampler", ["tweedie", "ode"])
def test_eval_verb_sampler_choice_is_recorded(smoke_runs, sampler, tmp_path):
    _, codec_dir, scdm_dir = smoke_runs
    out = tmp_path / sampler
    assert main(["eval", str(codec_dir), "--denoiser", "scdm", "--sampler", sampler, "--scdm", str(scdm_dir), "--data", "samples", "--snr=-6", "--grid-snr=-6", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["sampler"] == sampler and f"sampler {sampler}" in results["name"]


def test_eval_and_train_errors_are_one_line(smoke_runs, capsys):
    _, codec_dir, scdm_dir = smoke_runs
    assert main(["eval", str(codec_dir), "--denoiser", "wiener", "--data", "samples"]) == 2
    assert "unknown --denoiser 'wiener'" in capsys.readouterr().err
    assert main(["eval", str(codec_dir), "--denoiser", "scdm", "--scdm", str(scdm_dir), "--snr=-30", "--data", "samples", "--quiet"]) == 2
    assert "below this SCDM's trained range" in capsys.readouterr().err
    assert main(["eval", str(scdm_dir), "--data", "samples"]) == 2
    err = capsys.readouterr().err
    assert "not a system: evaluate its codec" in err and f"digisem eval {codec_dir} --denoiser scdm" in err and len(err.strip().splitlines()) == 1
    assert main(["eval", str(codec_dir), "--denoiser", "scdm", "--scdm", str(codec_dir), "--data", "samples"]) == 2
    assert "not a restorer such as an SCDM" in capsys.readouterr().err


def test_init_from_a_zoo_name_starts_from_the_zoo_weights(tmp_path):
    """With no run of that name, train.init_from takes the zoo model: its float16 tensors land in a
    fresh model of the same config, and the returned sha256 is the one pinned in zoo/SHA256SUMS."""
    from digisem.train.warm_start import initialize_from

    name = "jcm-cifar10-64qam"
    zoo_state, metadata = read_weights(zoo.zoo_dir() / f"{name}.safetensors")
    model = zoo.build_system(metadata)
    assert initialize_from(model, tmp_path, name) == zoo.zoo_checksums()[name]
    state = model.state_dict()
    assert all(torch.equal(state[key], tensor.to(state[key].dtype)) for key, tensor in zoo_state.items())


def test_scdm_recipe_without_its_codec_says_how_to_train_it(tmp_path):
    with pytest.raises(RecipeError, match=r"train it first \(digisem train jcm-smoke\)"):
        run_recipe(load_recipe("scdm-smoke"), tmp_path, progress=False)


def test_a_jcm_recipe_fine_tuned_from_an_earlier_run_starts_from_its_weights(smoke_runs):
    """train.init_from (the per-SNR family fine-tuned from the single codec): with lr 0 the encoder's
    and decoder's parameters stay the base run's; the stage is cached under the base weights' sha256."""
    runs, codec_dir, _ = smoke_runs
    recipe = load_recipe("jcm-smoke")
    recipe.update(name="jcm-smoke-tuned")
    recipe["train"].update(snr_db=-6.0, lr=0.0, init_from="jcm-smoke")
    tuned_dir = run_recipe(recipe, runs, progress=False)
    tuned, _ = read_weights(tuned_dir / "model.safetensors")
    base, _ = read_weights(codec_dir / "model.safetensors")
    # parameters only: batch-norm running statistics move in training mode even at lr 0
    weights = [key for key in base if key.startswith(("encoder.", "decoder.")) and "running_" not in key and "num_batches" not in key]
    assert weights and all(torch.equal(tuned[key], base[key]) for key in weights)
    stages = {json.loads(path.read_text()).get("initial_weights") for path in (runs / "_stages").glob("*-jcm/fingerprint.json")}
    assert hashlib.sha256((codec_dir / "model.safetensors").read_bytes()).hexdigest() in stages
    recipe["train"]["init_from"] = "never-trained"
    with pytest.raises(RecipeError, match="digisem train never-trained"):
        run_recipe(recipe, runs, progress=False)
