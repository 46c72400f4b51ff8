"""The recipe schema: every section checked, unknown keys refused with their dotted names, wrong types
and missing required keys refused, defaults filled in; and the documented `digisem train` forms."""

import json
import re
import shlex
from pathlib import Path

import pytest

from digisem.cli import build_parser, main
from digisem.systems import FAMILIES
from digisem.train import load_recipe, run_recipe
from digisem.train.recipe import RecipeError
from digisem.train.schema import check_recipe

ROOT = Path(__file__).resolve().parents[2]


def checked(recipe: dict) -> dict:
    family = FAMILIES[recipe["system"]]
    return check_recipe(recipe, family.recipe.sections, family.config)


def with_key(name: str, dotted: str, value) -> dict:
    """Recipe ``name`` with ``dotted`` set to ``value``, creating the last key (overrides refuse new keys)."""
    recipe = load_recipe(name)
    *path, last = dotted.split(".")
    node = recipe
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return recipe


UNKNOWN_KEYS = [
    ("ampsc-smoke", "epohcs", "'epohcs'"),
    ("ampsc-smoke", "train.epohcs", "train.epohcs"),
    ("ampsc-smoke", "data.batch_sise", "data.batch_sise"),
    ("ampsc-smoke", "eval.snrr", "eval.snrr"),
    ("ampsc-smoke", "model.widht", "model.widht"),
    ("ampsc-smoke", "schedule.0.epoch", "schedule.0.epoch"),
    ("jcm-smoke", "train.snr", "train.snr"),
    ("deepjscc-smoke", "train.snr_rnage", "train.snr_rnage"),
    ("robust-smoke", "train.attack.eps", "train.attack.eps"),
    ("robust-smoke", "eval.attack.kidn", "eval.attack.kidn"),
    ("scdm-smoke", "joint.imags", "joint.imags"),
    ("scdm-smoke", "train.batch", "train.batch"),
]


@pytest.mark.parametrize("name,dotted,named", UNKNOWN_KEYS)
def test_unknown_keys_in_every_section_are_refused_with_their_dotted_name(name, dotted, named):
    recipe = with_key(name, dotted, 1)
    with pytest.raises(RecipeError, match="unknown recipe key " + re.escape(named)):
        checked(recipe)


def test_an_unknown_key_fails_before_any_training(tmp_path):
    recipe = with_key("ampsc-smoke", "train.epohcs", 3)
    with pytest.raises(RecipeError, match=r"train\.epohcs"):
        run_recipe(recipe, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_unknown_keys_in_the_smoke_recipes_of_the_other_families_fail_before_training(tmp_path):
    recipe = with_key("robust-smoke", "data.batch_sise", 4)
    with pytest.raises(RecipeError, match=r"data\.batch_sise"):
        run_recipe(recipe, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "name,override,message",
    [
        ("deepjscc-smoke", "train.epochs=1.5", r"train\.epochs must be an integer, got 1\.5"),
        ("deepjscc-smoke", "train.epochs=abc", r"train\.epochs must be an integer, got 'abc'"),
        ("jcm-smoke", "train.lr=fast", r"train\.lr must be a number"),
        ("jcm-smoke", "train.epochs=true", r"train\.epochs must be an integer"),
        ("jcm-smoke", "data.batch_size=[4]", r"data\.batch_size must be an integer"),
        ("ampsc-smoke", "schedule.0.step=one", r"schedule\.0\.step must be an integer"),
        ("ampsc-smoke", "schedule=7", r"schedule must be a list"),
        ("ampsc-smoke", "eval=[1]", r"section eval must be a mapping"),
        ("ampsc-smoke", "seed=x", r"seed must be an integer"),
        ("robust-smoke", "train.weights=3", r"train\.weights must be a mapping"),
        ("robust-smoke", "train.attack.epsilon=big", r"train\.attack\.epsilon must be a number"),
        ("scdm-smoke", "codec=3", r"codec must be a string"),
    ],
)
def test_wrong_types_are_refused(name, override, message):
    with pytest.raises(RecipeError, match=message):
        checked(load_recipe(name, [override]))


def test_data_augment_must_be_a_boolean():
    with pytest.raises(RecipeError, match=r"data\.augment must be true or false"):
        checked(with_key("deepjscc-smoke", "data.augment", "yes"))


def test_a_model_value_the_config_refuses_is_a_recipe_error():
    with pytest.raises(RecipeError, match="recipe section model"):
        checked(load_recipe("deepjscc-smoke", ["model.ratio=0.3"]))


@pytest.mark.parametrize(
    "name,remove,message",
    [
        ("jcm-smoke", ["train"], r"section train is required for system 'jcm'"),
        ("jcm-smoke", ["train", "lr"], r"train\.lr is required"),
        ("ampsc-smoke", ["schedule"], r"section schedule is required for system 'ampsc'"),
        ("ampsc-smoke", ["schedule", 0, "lr"], r"schedule\.0\.lr is required"),
        ("scdm-smoke", ["codec"], r"section codec is required for system 'scdm'"),
        ("scdm-smoke", ["train", "epochs"], r"train\.epochs is required"),
        ("deepjscc-smoke", ["data", "dataset"], r"data\.dataset is required"),
        ("robust-smoke", ["train", "epochs"], r"train\.epochs is required"),
        ("robust-smoke", ["name"], r"recipe key name must be a string"),
    ],
)
def test_missing_required_sections_and_keys_are_refused(name, remove, message):
    recipe = load_recipe(name)
    node = recipe
    for part in remove[:-1]:
        node = node[part]
    del node[remove[-1]]
    with pytest.raises(RecipeError, match=message):
        checked(recipe)


def test_defaults_are_filled_and_numbers_normalized():
    recipe = checked(load_recipe("jcm-smoke", ["train.snr_db=10", "train.epochs=1.0"]))
    assert recipe["seed"] == 0
    assert recipe["data"] == {"dataset": "samples", "batch_size": 4, "train_limit": None, "image_size": None, "crop": None,
                              "test_crop": None, "test_folder": None, "augment": False, "jpeg_bits": None}
    assert recipe["eval"]["snr"] == "-6,6" and recipe["eval"]["batch_size"] == 8 and recipe["eval"]["attack"] is None
    assert recipe["eval"]["link"] is None and recipe["eval"]["snr_kind"] is None
    assert recipe["train"]["link"] == "awgn" and recipe["train"]["class_weight"] == 0.0
    assert isinstance(recipe["train"]["snr_db"], float) and isinstance(recipe["train"]["epochs"], int)
    amp = checked(load_recipe("ampsc-smoke"))
    assert amp["schedule"][0] == {"step": 1, "epochs": 2, "lr": 1.0e-3, "mask_ratio": None}
    assert amp["train"] == {"p": 0.0125, "precision": "fp32", "channels_last": True, "compile": False, "init_from": None}
    scdm = checked(load_recipe("scdm-smoke"))
    assert scdm["joint"]["epochs"] == 1 and scdm["train"]["batch_size"] == 4
    robust = checked(load_recipe("robust-smoke"))
    assert robust["train"]["init_from"] is None and robust["train"]["attack"] == {"kind": "pgd", "epsilon": 0.016, "step": 0.006, "steps": 3, "size": None}
    assert robust["eval"]["attack"]["kind"] == "ifgsm"
    # the check returns a new recipe: the loaded one is not changed
    original = load_recipe("jcm-smoke")
    checked(original)
    assert "augment" not in original["data"]


def test_an_snr_override_may_be_a_number_or_a_range():
    assert checked(load_recipe("ampsc-smoke", ["eval.snr=0"]))["eval"]["snr"] == 0.0
    # YAML 1.1 would read these as base-60 integers (-18:18:6 -> -65886)
    assert checked(load_recipe("ampsc-smoke", ["eval.snr=-18:18:6"]))["eval"]["snr"] == "-18:18:6"
    assert checked(load_recipe("ampsc-smoke", ["eval.snr=6:18:3"]))["eval"]["snr"] == "6:18:3"


def documented_train_commands() -> list[str]:
    """Every `digisem train ...` line of the README and of the recorded commands in docs/results."""
    lines = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "docs").rglob("commands.log"))]:
        for line in path.read_text().splitlines():
            match = re.search(r"digisem train \S.*", line)
            if match and not match.group(0).startswith("digisem train ..."):
                lines.append(match.group(0).split("`")[0].split("#")[0].strip())
    return sorted(set(lines))


DOCUMENTED = documented_train_commands()


def test_the_readme_train_form_is_among_the_documented_commands():
    assert "digisem train ampsc-cifar10-4bit-cpu [key=value ...] [--resume]" in DOCUMENTED


@pytest.mark.parametrize("command", DOCUMENTED)
def test_documented_train_commands_still_parse(command):
    # the README's synopsis: fill its placeholders with real overrides
    command = command.replace("[key=value ...]", "schedule.0.epochs=2 model.width=32").replace("[--resume]", "--resume")
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.verb == "train" and args.func.__name__ == "command_train"
    recipe = load_recipe(args.recipe, args.overrides)
    checked(recipe)


def test_the_readme_train_options_parse():
    args = build_parser().parse_args(["train", "ampsc-smoke", "schedule.0.epochs=1", "model.width=4", "--resume", "--runs", "r", "--data", "d", "--quiet"])
    assert (args.recipe, args.overrides, args.resume, args.runs, args.data, args.quiet) == ("ampsc-smoke", ["schedule.0.epochs=1", "model.width=4"], True, "r", "d", True)


def test_train_verb_runs_deepjscc_smoke_and_writes_a_run_folder(tmp_path, capsys):
    assert main(["train", "deepjscc-smoke", "train.epochs=1", "--runs", str(tmp_path), "--quiet"]) == 0
    run_dir = tmp_path / "deepjscc-smoke"
    assert f"run folder: {run_dir}" in capsys.readouterr().out
    for name in ("config.yaml", "model.safetensors", "log.jsonl", "results.json", "plots/psnr.png"):
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert results["name"] == "DeepJSCC (smoke)" and results["results"]["snr_db"] == [0.0, 10.0, 20.0]
    assert results["meta"]["recipe"]["train"]["epochs"] == 1 and results["meta"]["link"] == "awgn"
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 1
    assert [p.name.split("-", 1)[1] for p in (tmp_path / "_stages").iterdir()] == ["deepjscc"]


def test_train_verb_refuses_a_bad_recipe_in_one_line(tmp_path, capsys):
    assert main(["train", "deepjscc-smoke", "train.epochs=1.5", "--runs", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "train.epochs must be an integer" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "deepjscc-smoke", "train.epohcs=1", "--runs", str(tmp_path), "--quiet"]) == 2
    assert "unknown recipe key 'train.epohcs'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
