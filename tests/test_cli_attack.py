"""The ``digisem attack`` verb on a freshly trained robust-smoke classifier (no network)."""

import json

import pytest
from PIL import Image

from digisem.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", "robust-smoke", "--runs", str(runs), "--quiet"]) == 0
    return runs / "robust-smoke"


def attack(run_dir, out, *extra):
    return main(["attack", str(run_dir), "--data", "samples", "--out", str(out), "--quiet", *extra])


def test_attack_writes_accuracies_and_a_perturbation_picture(trained, tmp_path, capsys):
    capsys.readouterr()
    assert attack(trained, tmp_path / "att") == 0
    results = json.loads((tmp_path / "att" / "attack.json").read_text())
    for key in ("clean_accuracy", "attacked_accuracy"):
        assert isinstance(results[key], float) and 0.0 <= results[key] <= 1.0
    assert results["n_images"] == 8
    assert results["snr_db"] == 3.0 and results["attack"]["kind"] == "ifgsm"
    assert results["attack"]["epsilon"] == pytest.approx(0.016)
    assert results["attack"]["step"] == pytest.approx(1.25 * 0.016 / 5)
    assert results["link"]["channel"] == "mimo-4x4-svd", "the link the model was trained with"
    with Image.open(tmp_path / "att" / "perturbation.png") as picture:
        assert picture.format == "PNG"
        picture.verify()
    out = capsys.readouterr().out
    assert "clean accuracy" in out and "attacked accuracy" in out


def test_zero_budget_means_no_attack(trained, tmp_path):
    assert attack(trained, tmp_path / "att", "--eps", "0") == 0
    results = json.loads((tmp_path / "att" / "attack.json").read_text())
    assert results["attacked_accuracy"] == results["clean_accuracy"]
    assert results["attack"] == {"kind": "none"}
    assert (tmp_path / "att" / "perturbation.png").is_file()


@pytest.mark.parametrize("eps", ["-1", "nan"])
def test_negative_budget_is_a_usage_error(trained, tmp_path, capsys, eps):
    capsys.readouterr()
    assert attack(trained, tmp_path / "att", "--eps", eps) == 2
    assert "--eps" in capsys.readouterr().err
    assert not (tmp_path / "att" / "attack.json").exists()


def test_zero_steps_is_a_usage_error(trained, tmp_path, capsys):
    capsys.readouterr()
    assert attack(trained, tmp_path / "att", "--steps", "0") == 2
    assert "--steps" in capsys.readouterr().err


def test_a_jcm_model_is_not_a_classifier(tmp_path, capsys):
    capsys.readouterr()
    assert main(["attack", "jcm-cifar10-64qam", "--data", "samples", "--out", str(tmp_path / "att"), "--quiet"]) == 2
    assert "not a classifier" in capsys.readouterr().err
    assert not (tmp_path / "att").exists()


def test_a_negative_snr_parses(trained, tmp_path):
    assert attack(trained, tmp_path / "att", "--snr", "-3", "--attack", "fgsm") == 0
    results = json.loads((tmp_path / "att" / "attack.json").read_text())
    assert results["snr_db"] == -3.0 and results["attack"]["kind"] == "fgsm"
    assert 0.0 <= results["attacked_accuracy"] <= 1.0


def test_same_seed_gives_the_same_result(trained, tmp_path):
    assert attack(trained, tmp_path / "a", "--attack", "pgd", "--steps", "2") == 0
    assert attack(trained, tmp_path / "b", "--attack", "pgd", "--steps", "2") == 0
    first = json.loads((tmp_path / "a" / "attack.json").read_text())
    second = json.loads((tmp_path / "b" / "attack.json").read_text())
    assert (first["clean_accuracy"], first["attacked_accuracy"]) == (second["clean_accuracy"], second["attacked_accuracy"])


def test_zoo_jscc_on_real_cifar10_loses_most_of_its_accuracy_to_semantic_noise(tmp_path):
    """The undefended JSCC baseline (47% clean, 2% attacked on 1,000 test images) on 50 real test images."""
    import os
    from pathlib import Path

    data = os.environ.get("DIGISEM_DATA")
    if not data or not (Path(data) / "cifar10-jpeg").exists() and not (Path(data) / "cifar-10-batches-py").exists():
        pytest.skip("real CIFAR-10 not found: set DIGISEM_DATA to a folder holding it (digisem download cifar10 --root DIR)")
    assert main(["attack", "jscc-cifar10", "--data", data, "--limit", "50", "--eps", "0.016", "--snr", "3", "--out", str(tmp_path / "att"), "--quiet"]) == 0
    results = json.loads((tmp_path / "att" / "attack.json").read_text())
    assert results["n_images"] == 50
    assert results["clean_accuracy"] > 0.25
    assert results["attacked_accuracy"] < 0.15


@pytest.mark.parametrize("extra,spec", [
    (["--attack", "patch", "--patch-size", "6"], {"kind": "patch", "size": 6, "step": 0.25, "steps": 5}),
    (["--attack", "pgd-l2", "--eps", "0.5"], {"kind": "pgd-l2", "epsilon": 0.5, "step": 0.125, "steps": 5}),
    (["--attack", "patch", "--patch-size", "8", "--patch-at", "0", "24"], {"kind": "patch", "size": 8, "step": 0.25, "steps": 5, "top": 0, "left": 24}),
])
def test_the_concentrated_attacks_run_from_the_command_line(trained, tmp_path, extra, spec):
    assert attack(trained, tmp_path / "att", *extra) == 0
    results = json.loads((tmp_path / "att" / "attack.json").read_text())
    assert results["attack"] == spec
    assert 0.0 <= results["attacked_accuracy"] <= 1.0


def test_a_patch_larger_than_the_image_is_a_usage_error(trained, tmp_path, capsys):
    assert attack(trained, tmp_path / "att", "--attack", "patch", "--patch-size", "40") == 2
    assert "--patch-size must be in [1, 32]" in capsys.readouterr().err
    assert not (tmp_path / "att").exists()


@pytest.mark.parametrize("extra,message", [
    (["--attack", "patch", "--patch-size", "8", "--patch-at", "0", "25"], "--patch-at TOP LEFT must keep the 8x8 square inside"),
    (["--attack", "ifgsm", "--patch-at", "0", "0"], "--patch-at places the patch attack's square: it needs --attack patch"),
])
def test_a_patch_placed_outside_the_image_or_without_a_patch_attack_is_a_usage_error(trained, tmp_path, capsys, extra, message):
    assert attack(trained, tmp_path / "att", *extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "att").exists()
