"""Recipes: YAML files naming a system family, its model, data, schedule and evaluation.

``load_recipe("ampsc-cifar10-4bit-cpu", ["schedule.0.epochs=1"])`` reads ``recipes/<name>.yaml``
(or a path), merges it over its ``base`` recipe if it names one (a recipe is a short diff), applies ``key=value`` overrides (dotted keys, list indices allowed, values parsed as
YAML) and rejects keys the recipe does not have. Stages are cached by content: the key of a stage
is a hash of everything that determines its weights (model, data, training options, seed and the
whole schedule up to and including it), so recipes that share a prefix share its checkpoints.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..link.errors import InputError

RECIPE_DIRS = (Path.cwd() / "recipes", Path(__file__).resolve().parents[1] / "recipes")
"""Where recipe names are looked up: ``./recipes`` (a user's own), then the package's recipes
(``digisem/recipes/``, shipped as package data, so installed copies find them too)."""


class RecipeError(InputError):
    """A recipe that cannot be found, parsed or overridden as asked."""


def recipe_path(name_or_path: str) -> Path:
    """Resolve a recipe name (``recipes/<name>.yaml``) or a path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    for folder in RECIPE_DIRS:
        path = folder / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    known = sorted({p.stem for folder in RECIPE_DIRS if folder.is_dir() for p in folder.glob("*.yaml")})
    raise RecipeError(f"unknown recipe {name_or_path!r}; known recipes: {', '.join(known) or 'none found'}")


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a recipe and apply ``key=value`` overrides; the result records its source in ``recipe_file``."""
    path = recipe_path(name_or_path)
    recipe = _read_with_bases(path, [])
    if "system" not in recipe or "name" not in recipe:
        raise RecipeError(f"recipe {path} must be a mapping with at least 'name' and 'system'")
    for override in overrides or []:
        apply_override(recipe, override, may_add=lambda parts: _schema_field(recipe, parts))
    recipe["recipe_file"] = str(path)
    return recipe


def _schema_field(recipe: dict[str, Any], parts: list[str]) -> bool:
    """Whether ``parts`` (``[section, key]``) names a field of the recipe family's section schema: a
    key the YAML may leave at its default (e.g. ``train.compile``), which an override may set."""
    from ..systems import FAMILIES

    system = recipe.get("system")
    if len(parts) != 2 or system not in FAMILIES or FAMILIES[system].recipe is None:
        return False
    section = FAMILIES[system].recipe.sections.get(parts[0])
    return dataclasses.is_dataclass(section) and parts[1] in {field.name for field in dataclasses.fields(section)}


def _read_with_bases(path: Path, chain: list[Path]) -> dict[str, Any]:
    """Read one recipe file; a ``base: other-recipe`` key merges this file over that recipe."""
    if path in chain:
        raise RecipeError(f"recipe bases form a cycle: {' -> '.join(str(p) for p in chain + [path])}")
    try:
        recipe = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise RecipeError(f"recipe {path} is not valid YAML: {err}") from err
    if not isinstance(recipe, dict):
        raise RecipeError(f"recipe {path} must be a mapping with at least 'name' and 'system'")
    base = recipe.pop("base", None)
    if base is None:
        return recipe
    return merge(_read_with_bases(recipe_path(base), chain + [path]), recipe)


def merge(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    """``diff`` over ``base``: mappings merge key by key, anything else (lists included) is replaced."""
    merged = copy.deepcopy(base)
    for key, value in diff.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_override(recipe: dict[str, Any], override: str, may_add: Callable[[list[str]], bool] = lambda parts: False) -> None:
    """Set ``a.b.0.c=value`` in place; the key path must already exist (no silent typos), except a
    last key that ``may_add(parts)`` admits (a schema field the recipe leaves at its default)."""
    if "=" not in override:
        raise RecipeError(f"override {override!r} must look like key=value (e.g. schedule.0.epochs=2)")
    key, text = override.split("=", 1)
    value = _parse_value(text, override)
    parts = key.strip().split(".")
    node: Any = recipe
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise RecipeError(f"unknown recipe key {key!r}: {'.'.join(parts[:depth]) or 'root'} is a list of {len(node)}")
            index: Any = int(part)
        elif isinstance(node, dict):
            if part not in node and not (last and may_add(parts)):
                raise RecipeError(f"unknown recipe key {key!r}: {'.'.join(parts[:depth]) or 'the recipe'} has {sorted(node)}")
            index = part
        else:
            raise RecipeError(f"unknown recipe key {key!r}: {'.'.join(parts[:depth])} is a value, not a mapping")
        if last:
            node[index] = value
        else:
            node = node[index]


def _parse_value(text: str, override: str) -> Any:
    """A number if ``text`` is one (``3e-4`` included, which YAML 1.1 reads as a string), else YAML;
    text with a colon that YAML 1.1 would read as a base-60 number (``-18:18:6`` -> -65886) stays
    text (an SNR range)."""
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"cannot parse the value of override {override!r}: {err}") from err
    if ":" in text and isinstance(value, (int, float)) and not isinstance(value, bool):
        return text.strip()
    return value


def stage_key(fingerprint: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serializable fingerprint."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]


def dump_recipe(recipe: dict[str, Any]) -> str:
    """The recipe as YAML (for ``config.yaml`` in a run folder)."""
    return yaml.safe_dump(copy.deepcopy(recipe), sort_keys=False)
