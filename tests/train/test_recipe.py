from pathlib import Path

import pytest

from digisem import zoo
from digisem.attacks import from_spec as attack_from_spec
from digisem.link import from_spec as link_from_spec
from digisem.systems import FAMILIES
from digisem.systems.ampsc import AMPSCConfig
from digisem.systems.deepjscc import DeepJSCCConfig
from digisem.systems.jcm import JCMConfig
from digisem.systems.scdm import SamplerConfig, SCDMConfig, ScoreNetConfig
from digisem.systems.vqvae import MaskedVQVAEConfig
from digisem.train.amp import resolve_schedule
from digisem.train.recipe import RecipeError, apply_override, load_recipe, stage_key
from digisem.train.schema import check_recipe
from digisem.weights import read_weights


def write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return str(path)


def test_overrides_set_nested_keys_and_list_items(tmp_path):
    path = write(tmp_path, "name: r\nsystem: ampsc\nmodel: {width: 32}\nschedule:\n  - {step: 1, epochs: 4, lr: 1.0e-4}\n")
    recipe = load_recipe(path, ["model.width=8", "schedule.0.epochs=1", "schedule.0.lr=3e-4"])
    assert recipe["model"]["width"] == 8
    assert recipe["schedule"][0] == {"step": 1, "epochs": 1, "lr": 3e-4}
    assert recipe["recipe_file"] == path


@pytest.mark.parametrize(
    "override,message",
    [("model.widht=8", "unknown recipe key 'model.widht'"), ("schedule.3.epochs=1", "is a list of 1"), ("width", "key=value"), ("model.width.x=1", "is a value")],
)
def test_bad_overrides_name_the_key(tmp_path, override, message):
    path = write(tmp_path, "name: r\nsystem: ampsc\nmodel: {width: 32}\nschedule:\n  - {step: 1}\n")
    with pytest.raises(RecipeError, match=message):
        load_recipe(path, [override])


def test_unknown_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(RecipeError, match="'name' and 'system'"):
        load_recipe(write(tmp_path, "- 1\n"))


def test_stage_key_is_order_independent_and_sensitive():
    assert stage_key({"a": 1, "b": [1, 2]}) == stage_key({"b": [1, 2], "a": 1})
    assert stage_key({"a": 1}) != stage_key({"a": 2})


def test_apply_override_parses_yaml_values():
    recipe = {"x": {"flag": False, "p": 0.1}}
    apply_override(recipe, "x.flag=true")
    apply_override(recipe, "x.p=null")
    assert recipe == {"x": {"flag": True, "p": None}}


def test_base_recipe_merge_and_cycle(tmp_path):
    (tmp_path / "parent.yaml").write_text("name: parent\nsystem: ampsc\nmodel: {width: 32, irsnet: true}\nschedule: [{step: 1}, {step: 2}]\n")
    (tmp_path / "child.yaml").write_text(f"base: {tmp_path / 'parent.yaml'}\nname: child\nmodel: {{irsnet: false}}\nschedule: [{{step: 1}}]\n")
    recipe = load_recipe(str(tmp_path / "child.yaml"))
    assert recipe["name"] == "child" and recipe["model"] == {"width": 32, "irsnet": False}
    assert recipe["schedule"] == [{"step": 1}]
    (tmp_path / "a.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\nname: a\nsystem: ampsc\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\nname: b\nsystem: ampsc\n")
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(str(tmp_path / "a.yaml"))


RECIPES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("name", RECIPES)
def test_every_bundled_recipe_loads_and_its_config_is_valid(name):
    """Catches typos in the shipped YAML: every section passes its family's schema and every model
    key is one the system's config knows."""
    recipe = load_recipe(name)
    assert recipe["name"] == name
    family = FAMILIES[recipe["system"]]
    assert family.recipe is not None, f"{name}: system {recipe['system']!r} has no recipe runner"
    checked = check_recipe(recipe, family.recipe.sections, family.config)
    for attack in (checked["eval"]["attack"], checked.get("train", {}).get("attack")):
        attack_from_spec(attack)
    if recipe["system"] == "ampsc":
        AMPSCConfig.from_dict(recipe["model"])
        resolve_schedule(checked)
    elif recipe["system"] == "jcm":
        JCMConfig.from_dict(recipe["model"])
        assert {"snr_db", "epochs", "lr"} <= set(recipe["train"])
    elif recipe["system"] == "deepjscc":
        config = DeepJSCCConfig.from_dict(recipe["model"])
        link_from_spec(checked["train"]["link"], "symbols" if config.transmission == "analog" else "integers")
    elif recipe["system"] == "vqvae":
        config = MaskedVQVAEConfig.from_dict(recipe["model"])
        link_from_spec(checked["link"], "symbols" if config.transmission == "analog" else "integers")
    else:
        assert recipe["system"] == "scdm"
        config = SCDMConfig.from_dict(recipe["model"])
        SamplerConfig(**config.sampler)
        ScoreNetConfig(**config.score)
        codec = recipe["codec"]  # a jcm recipe, or a zoo codec (the zoo-scale SCDMs)
        made_by = read_weights(zoo.resolve_weights(codec))[1] if codec in zoo.zoo_names() else load_recipe(codec)
        assert made_by["system"] == "jcm"


def test_an_override_may_set_a_key_the_yaml_leaves_at_its_schema_default():
    recipe = load_recipe("jcm-smoke", ["train.compile=true", "train.channels_last=false"])
    assert recipe["train"]["compile"] is True and recipe["train"]["channels_last"] is False
    with pytest.raises(RecipeError, match="unknown recipe key 'train.compiled'"):
        load_recipe("jcm-smoke", ["train.compiled=true"])
