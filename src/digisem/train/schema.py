"""Recipe schema: every section of a recipe is checked, and an unknown key anywhere is refused with
its dotted name (``train.epohcs``), as is a value of the wrong type (``train.epochs=1.5``).

Sections are dataclasses; a field's type hint is its schema: ``int`` (an integral number),
``float`` (any number), ``str``, ``bool``, ``list[...]``, ``dict[str, Any]`` (free-form), another
dataclass (a nested section), and ``X | None`` (may be null). Fields without a default are required.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from .recipe import RecipeError


@dataclasses.dataclass
class DataSection:
    """``data``: the training set (and the test set's source).

    ``dataset`` (see :func:`digisem.data.recipe_dataset`), ``train_limit``, ``batch_size``,
    ``image_size`` (resize), ``crop`` (training crops, high resolution), ``test_crop``,
    ``test_folder`` (an image folder as the test set), ``augment`` (random crop and flip),
    ``jpeg_bits`` (each training and test image replaced by its best JPEG within that many payload
    bits: :class:`~digisem.systems.classical.JpegAtBudget`)."""

    dataset: str
    batch_size: int = 64
    train_limit: int | None = None
    image_size: int | None = None
    crop: int | None = None
    test_crop: int | None = None
    test_folder: str | None = None
    augment: bool = False
    jpeg_bits: int | None = None


@dataclasses.dataclass
class AttackSection:
    """An attack (:func:`digisem.attacks.from_spec`): ``kind`` (none, fgsm, ifgsm, pgd, pgd-l2,
    patch), ``epsilon`` on images in [0, 1] (L-infinity; L2 for pgd-l2), ``step`` and ``steps`` of
    the iterative attacks, ``size`` in pixels of the patch."""

    kind: str = "none"
    epsilon: float = 0.0
    step: float | None = None
    steps: int | None = None
    size: int | None = None


@dataclasses.dataclass
class EvalSection:
    """``eval``: the sweep after training. ``snr`` (a range such as ``"0:18:1"`` or ``"-6,6"``, or
    one number; default the family's), ``snr_kind``
    (default the family's), ``mode`` (default the system's), ``channel`` or ``link`` (a link spec;
    ``"analog"``: analog mode without a link; default the recipe's ``link`` section, else the
    family's), ``test_limit``,
    ``batch_size``, ``attack`` (transmitter-side semantic noise)."""

    snr: str | float | None = None
    snr_kind: str | None = None
    mode: str | None = None
    channel: str | None = None
    link: Any = None
    test_limit: int | None = None
    batch_size: int = 100
    attack: AttackSection | None = None


TOP_LEVEL = {"name", "system", "paper_name", "description", "seed", "model", "data", "eval", "recipe_file"}
"""Top-level keys every recipe may have; a family adds its own sections (``train``, ``schedule``, ...)."""


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def check_value(value: Any, hint: Any, dotted: str) -> Any:
    """``value`` checked (and normalized: ints to floats, sections to dicts) against the type ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return check_value(value, option, dotted)
            except RecipeError as err:
                errors.append(str(err))
        raise RecipeError(errors[0] if len(errors) == 1 else f"recipe key {dotted}: {value!r} fits none of {' | '.join(_type_name(o) for o in options)}")
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return check_section(value, hint, dotted)
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"recipe key {dotted} must be a list, got {value!r}")
        (item,) = typing.get_args(hint) or (Any,)
        return [check_value(entry, item, f"{dotted}.{index}") for index, entry in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"recipe key {dotted} must be a mapping, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"recipe key {dotted} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            raise RecipeError(f"recipe key {dotted} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"recipe key {dotted} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise RecipeError(f"recipe key {dotted} must be a string, got {value!r}")
        return value
    raise TypeError(f"schema type {hint!r} of {dotted} is not supported")


def check_section(values: Any, section: type, dotted: str) -> dict[str, Any]:
    """A recipe section checked against the dataclass ``section``: unknown keys, missing required
    keys and wrong types raise :class:`RecipeError` naming the dotted key; defaults are filled in."""
    if not isinstance(values, dict):
        raise RecipeError(f"recipe section {dotted} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(section)
    fields = {field.name: field for field in dataclasses.fields(section)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise RecipeError(f"unknown recipe key {dotted}.{unknown[0]}: {dotted} has {', '.join(fields)}")
    checked = {}
    for name, field in fields.items():
        if name in values:
            checked[name] = check_value(values[name], hints[name], f"{dotted}.{name}")
        elif field.default is not dataclasses.MISSING:
            checked[name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            checked[name] = field.default_factory()
        else:
            raise RecipeError(f"recipe key {dotted}.{name} is required")
    return checked


def check_recipe(recipe: dict[str, Any], sections: dict[str, type], config: type) -> dict[str, Any]:
    """The whole recipe checked: the common sections, the family's ``sections`` and the ``model``
    section against the family's ``config`` (a :class:`~digisem.systems.config.DictConfig`)."""
    allowed = TOP_LEVEL | set(sections)
    unknown = sorted(set(recipe) - allowed)
    if unknown:
        raise RecipeError(f"unknown recipe key {unknown[0]!r}: a {recipe.get('system')} recipe has {', '.join(sorted(allowed))}")
    for key in ("name", "system"):
        if not isinstance(recipe.get(key), str):
            raise RecipeError(f"recipe key {key} must be a string, got {recipe.get(key)!r}")
    checked = dict(recipe)
    checked["seed"] = check_value(recipe.get("seed", 0), int, "seed")
    checked["data"] = check_section(recipe.get("data", {}), DataSection, "data")
    checked["eval"] = check_section(recipe.get("eval", {}), EvalSection, "eval")
    for name, section in sections.items():
        if name in recipe:
            checked[name] = check_value(recipe[name], section, name)
            continue
        try:
            checked[name] = check_value({} if dataclasses.is_dataclass(section) else None, section, name)
        except RecipeError as err:
            raise RecipeError(f"recipe section {name} is required for system {recipe['system']!r} ({err})") from err
    model = recipe.get("model", {})
    if not isinstance(model, dict):
        raise RecipeError(f"recipe section model must be a mapping, got {model!r}")
    known = {field.name for field in dataclasses.fields(config)}
    unknown = sorted(set(model) - known)
    if unknown:
        raise RecipeError(f"unknown recipe key model.{unknown[0]}: model has {', '.join(sorted(known))}")
    try:
        config.from_dict(model)
    except (TypeError, ValueError) as err:
        raise RecipeError(f"recipe section model: {err}") from err
    return checked
