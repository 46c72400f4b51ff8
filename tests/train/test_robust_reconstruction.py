"""Robust recipes for reconstruction (Fig. 11), resized data (paper scale), and PSNR evaluation against an oracle."""

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from digisem.data import Resized, recipe_dataset
from digisem.evaluate import sweep
from digisem.systems import FAMILIES
from digisem.train import run_recipe
from digisem.train.recipe import RecipeError, load_recipe
from digisem.train.run import training_set
from digisem.train.schema import check_recipe

TINY_MODEL = {"width": 16, "depth": 2, "heads": 2, "decoder_width": 8, "decoder_depth": 1, "code_dim": 8, "codebook_size": 16, "patch": 8}


def reconstruction_recipe() -> dict:
    recipe = load_recipe("robust-smoke")
    recipe["name"] = "recon-smoke"
    recipe["model"].update(TINY_MODEL, task="reconstruction", fim_layers=[])
    recipe["train"]["weights"] = {"vq": 1.0}
    return recipe


def test_reconstruction_recipe_trains_and_reports_psnr_clean_and_attacked(tmp_path):
    run_dir = run_recipe(reconstruction_recipe(), tmp_path, progress=False)
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert results["snr_db"] == [-3.0, 9.0]
    assert len(results["psnr"]) == len(results["psnr_attacked"]) == 2
    assert all(0 < value < 60 for value in results["psnr"] + results["psnr_attacked"])
    assert (run_dir / "plots" / "psnr.png").is_file()
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert "mse" in log[-1]


def test_reconstruction_with_fim_is_rejected(tmp_path):
    recipe = reconstruction_recipe()
    recipe["model"]["fim_layers"] = [1]
    with pytest.raises(RecipeError, match="FIM"):
        run_recipe(recipe, tmp_path, progress=False)


class _HalfGray(nn.Module):
    """Returns every pixel as 0.5: the PSNR against image x is 10 log10(1 / mean (x - 0.5)^2)."""

    def forward(self, x, *, link=None, snr_db=None, mode=None, generator=None):
        return {"x_hat": torch.full_like(x, 0.5)}


def test_evaluate_reconstruction_matches_the_closed_form_psnr():
    images = torch.stack([torch.full((3, 32, 32), 0.0), torch.full((3, 32, 32), 0.75)])
    dataset = TensorDataset(images, torch.zeros(2, dtype=torch.long))
    curves = sweep(_HalfGray(), None, [0.0, 10.0], dataset, progress=False)
    expected = (10 * math.log10(1 / 0.25) + 10 * math.log10(1 / 0.0625)) / 2
    assert curves["psnr"] == pytest.approx([expected, expected], abs=1e-4)
    assert "psnr_attacked" not in curves


def test_resized_dataset_keeps_labels_and_range():
    images = torch.rand(2, 3, 32, 32)
    resized = Resized(TensorDataset(images, torch.tensor([3, 7])), 64)
    image, label = resized[1]
    assert image.shape == (3, 64, 64) and int(label) == 7
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    assert float(image.mean()) == pytest.approx(float(images[1].mean()), abs=0.02)


def test_recipe_image_size_resizes_the_samples():
    dataset = recipe_dataset("samples", None, "train", image_size=48)
    assert dataset[0][0].shape == (3, 48, 48) and 0 <= int(dataset[0][1]) < 10
    assert recipe_dataset("samples", None, "train")[0][0].shape == (3, 32, 32)


def test_recipe_image_size_reaches_the_training_set():
    recipe = reconstruction_recipe()
    recipe["data"]["image_size"] = recipe["model"]["image_size"] = 48
    family = FAMILIES["vqvae"]
    checked = check_recipe(recipe, family.recipe.sections, family.config)
    assert training_set(checked, None)[0][0].shape == (3, 48, 48)
