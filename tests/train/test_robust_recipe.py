"""Robust recipe end to end on the bundled samples, and accuracy evaluation against an oracle."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from digisem import zoo
from digisem.evaluate import sweep
from digisem.train import robust, run_recipe
from digisem.train.recipe import RecipeError, load_recipe


def test_robust_smoke_recipe_trains_with_attack_and_weight_perturbation(tmp_path, monkeypatch):
    calls = {"perturb": 0, "restore": 0}
    real_perturb, real_restore = robust.AdversarialWeightPerturbation.perturb, robust.AdversarialWeightPerturbation.restore

    def counting_perturb(self, loss):
        calls["perturb"] += 1
        return real_perturb(self, loss)

    def counting_restore(self):
        calls["restore"] += 1
        return real_restore(self)

    monkeypatch.setattr(robust.AdversarialWeightPerturbation, "perturb", counting_perturb)
    monkeypatch.setattr(robust.AdversarialWeightPerturbation, "restore", counting_restore)
    run_dir = run_recipe(load_recipe("robust-smoke"), tmp_path, progress=False)
    assert calls["perturb"] == calls["restore"] == 2, "one weight perturbation per batch, removed before each step"
    results = json.loads((run_dir / "results.json").read_text())
    curves = results["results"]
    assert curves["snr_db"] == [-3.0, 9.0] and len(curves["accuracy"]) == len(curves["accuracy_attacked"]) == 2
    assert results["meta"]["link"]["channel"] == "mimo-4x4-svd" and (run_dir / "plots" / "accuracy.png").is_file()
    assert results["meta"]["attack"]["kind"] == "ifgsm"
    model, metadata = zoo.load(run_dir)
    assert metadata["system"] == "vqvae" and model.config.fim_layers == (1,)
    assert zoo.recorded_link(metadata)["channel"] == "mimo-4x4-svd", "the training link travels with the weights"


class _Oracle(nn.Module):
    """Reads the label from the image's mean brightness (label k <-> mean (k + 0.5) / 10)."""

    def forward(self, x, *, link=None, snr_db=None, mode=None, generator=None):
        centers = (torch.arange(10, dtype=x.dtype) + 0.5) / 10
        return {"logits": -1000 * (x.mean(dim=(1, 2, 3))[:, None] - centers[None, :]).pow(2)}


def test_accuracy_evaluation_against_an_oracle():
    labels = torch.arange(10)
    images = ((labels.float() + 0.5) / 10)[:, None, None, None].expand(10, 3, 8, 8).clone()
    dataset = TensorDataset(images, labels)
    clean = sweep(_Oracle(), None, [0.0, 10.0], dataset, progress=False)
    assert clean == {"snr_db": [0.0, 10.0], "accuracy": [1.0, 1.0]}
    # an attack that moves every pixel by 0.1 (one class width) towards the next class fools the oracle
    shift = lambda loss_fn, x, generator=None: (x + 0.1).clamp(0, 1)
    attacked = sweep(_Oracle(), None, [0.0], dataset, attack=shift, progress=False)
    # ... except class 9, whose images saturate at 1.0 and stay nearest to their own class
    assert attacked["accuracy"] == [1.0] and attacked["accuracy_attacked"] == [0.1]


def test_label_smoothing_is_the_mixture_of_cross_entropy_and_uniform_targets():
    """robust_loss with label_smoothing e: (1 - e) (-log p_y) + e mean_k(-log p_k), per example, for
    known logits (the extra terms are zero for a model without codebook, FIM or similarity term)."""
    from digisem.systems.base import SystemOutput
    from digisem.train.robust import robust_loss

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 1])

    class Fixed(torch.nn.Module):
        digitizer = None

        def forward(self, images, **kwargs):
            return SystemOutput(logits=logits, vq_losses={}, fim_logits=[], features=None)

    log_p = torch.log_softmax(logits, 1)
    for smoothing in (0.0, 0.1, 0.5):
        total, parts = robust_loss(Fixed(), torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), labels, {}, label_smoothing=smoothing)
        expected = (1 - smoothing) * -log_p[[0, 1], labels] + smoothing * -log_p.mean(1)
        torch.testing.assert_close(total, expected)
        assert parts["accuracy"] == 0.5


def test_out_of_range_smoothing_and_warmup_are_named(tmp_path):
    for override, key in (("train.label_smoothing=1.5", "train.label_smoothing"), ("train.warmup_epochs=-1", "train.warmup_epochs")):
        with pytest.raises(RecipeError, match=key):
            run_recipe(load_recipe("robust-smoke", [override]), tmp_path, progress=False)


def test_clean_weight_mixes_the_losses_of_attacked_and_clean_images(tmp_path, monkeypatch):
    """train.clean_weight w: each batch's loss is (1 - w) L(attacked) + w L(clean) (Algorithm 3 step 4
    trains on the input images themselves), and the clean pass sees the unattacked batch."""
    calls = []
    real_loss = robust.robust_loss

    def recording_loss(model_call, images, clean, labels, weights, **kwargs):
        total, parts = real_loss(model_call, images, clean, labels, weights, **kwargs)
        calls.append((torch.equal(images, clean), float(total.detach().mean())))
        return total, parts

    monkeypatch.setattr(robust, "robust_loss", recording_loss)
    run_dir = run_recipe(load_recipe("robust-smoke", ["train.clean_weight=0.25", "train.awp_gamma=0"]), tmp_path, progress=False)
    # the bundled 8 samples in batches of 4: per batch one pass on attacked images, then one on clean ones
    assert [is_clean for is_clean, _ in calls] == [False, True, False, True]
    expected = sum(0.75 * calls[i][1] + 0.25 * calls[i + 1][1] for i in (0, 2)) / 2
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] == pytest.approx(expected, rel=1e-5)
    assert 0 <= log[-1]["clean_accuracy"] <= 1


def test_clean_weight_out_of_range_or_without_attack_is_named(tmp_path):
    with pytest.raises(RecipeError, match="train.clean_weight"):
        run_recipe(load_recipe("robust-smoke", ["train.clean_weight=1.5"]), tmp_path, progress=False)
    with pytest.raises(RecipeError, match="needs a train.attack"):
        run_recipe(load_recipe("robust-smoke", ["train.clean_weight=0.5", "train.attack.kind=none"]), tmp_path, progress=False)


def test_jpeg_bits_trains_and_evaluates_on_jpegs_and_says_so(tmp_path, monkeypatch):
    """data.jpeg_bits: the training and test images are the JPEGs of the JPEG+LDPC baseline (the
    baseline's own classifier), and the results name that test set."""
    from digisem.systems.classical import JpegAtBudget

    served = []
    real_item = JpegAtBudget.__getitem__

    def counting_item(self, index):
        served.append(self.max_bits)
        return real_item(self, index)

    monkeypatch.setattr(JpegAtBudget, "__getitem__", counting_item)
    recipe = load_recipe("robust-smoke")
    recipe["data"]["jpeg_bits"], recipe["link"] = 2194, None
    run_dir = run_recipe(recipe, tmp_path, progress=False)
    # the 8 bundled images once in training (one epoch) and once per evaluation pass (clean, attacked)
    assert len(served) >= 8 + 8 and set(served) == {2194}
    meta = json.loads((run_dir / "results.json").read_text())["meta"]
    assert meta["dataset"] == "bundled sample images, as JPEGs within 2194 payload bits" and meta["link"] is None
