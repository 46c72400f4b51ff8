"""The contract every digisem system follows, and the one registry of system families.

The one picture::

    x -> encoder -> features -> digitizer -> payload -> link -> received -> digitizer^-1 -> [restorer] -> decoder -> x_hat [-> head -> logits]

- :class:`System` is an ``nn.Module`` with named parts ``encoder``, ``digitizer``, ``restorer``
  (optional), ``decoder`` and ``head`` (optional), and one call:
  ``system(x, *, link=None, snr_db=None, mode=None, generator=None, **options) -> SystemOutput``.
- A digitizer (:class:`~digisem.digitize.ScalarQuantizer`, :class:`~digisem.digitize.VectorQuantizer`,
  :class:`~digisem.digitize.LearnedConstellation`, :class:`~digisem.digitize.AnalogSymbols`) states
  what its payload is (``payload_kind``: ``"integers"`` of ``bits_per_value`` bits, or complex
  ``"symbols"``), turns features into a payload (``to_payload``) and back (``from_payload``).
- :class:`SystemOutput` is a dict with stable keys: ``x_hat`` and/or ``logits``, ``payload`` (what
  entered the link), ``received`` (what the link delivered, same kind), ``bits_per_image``,
  ``channel_uses_per_image``, and any extras a family adds (``features``, ``restored``, ...).
- :data:`FAMILIES` is the one registry: :func:`register_system` in each system's own file records
  its class, config, SNR convention, default link, sample check and (optionally) its recipe; the
  zoo, the CLI, the demo and the tests read it.
"""

from __future__ import annotations

import abc
import copy
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from ..link import BitLink, from_spec
from ..link.errors import InputError

MODES = ("digital", "relaxed", "analog")
"""``digital``: the payload is quantized and crosses the link; ``relaxed``: a differentiable stand-in
for quantization (training); ``analog``: unquantized features (over a symbol link, or straight to the
decoder for systems whose features are not channel symbols)."""
PAYLOAD_KINDS = ("integers", "symbols")
TASKS = ("reconstruction", "classification")


def batch_parts(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(images [B, 3, H, W], labels [B] or None)`` of a batch: ``(images, labels)`` pairs
    (CIFAR-10, labelled TensorDatasets), one-tensor tuples or bare images (image folders)."""
    if isinstance(batch, (list, tuple)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def images_of(batch: Any) -> torch.Tensor:
    """The images ``[B, 3, H, W]`` of a batch (see :func:`batch_parts`)."""
    return batch_parts(batch)[0]


class SystemOutput(dict):
    """The output of every system: a dict with stable keys.

    ``x_hat : [B, 3, H, W]`` in [0, 1] (reconstruction) and/or ``logits : [B, classes]``
    (classification); ``payload`` (``[B, ...]`` int64 integers or ``[B, n]`` complex64 symbols, None
    when nothing was digitized); ``received`` (the link's output, same kind and shape; the payload
    itself without a link); ``bits_per_image`` (payload bits per image, None for analog symbols);
    ``channel_uses_per_image`` (complex channel symbols per image on this link, None when unknown or
    without a link); extras per family.
    """


@functools.lru_cache(maxsize=32)
def _cached_link(spec: str, payload: str) -> nn.Module | None:
    return from_spec(spec, payload)


class System(nn.Module, abc.ABC):
    """Base of every system: named parts and the one forward.

    Subclasses are registered with :func:`register_system` (which sets ``family``) and implement
    the abstract :meth:`run`; :meth:`forward` checks the mode, builds a
    link given as a spec string (:func:`digisem.link.from_spec`, cached), and calls :meth:`run`.

    Attributes
    ----------
    encoder, digitizer, decoder : nn.Module
    restorer, head : nn.Module or None
    family : str
        The registry name (``"ampsc"``, ``"jcm"``, ...).
    encodes_once : bool
        True when :meth:`run` calls ``self.encoder(x)`` once on the whole batch and the encoder
        draws no noise: an SNR sweep then encodes each batch once for all its SNRs
        (:func:`digisem.evaluate.sweep`). Default False.
    """

    family: ClassVar[str] = ""
    encodes_once: ClassVar[bool] = False
    restorer: nn.Module | None
    head: nn.Module | None

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes this system supports (the first is :attr:`default_mode`)."""
        return ("digital",)

    @property
    def default_mode(self) -> str:
        """The mode of deployment (and of evaluation sweeps)."""
        return self.modes[0]

    @property
    def task(self) -> str:
        """``"reconstruction"`` (outputs ``x_hat``) or ``"classification"`` (outputs ``logits``)."""
        return "reconstruction"

    @property
    def payload_kind(self) -> str:
        """``"integers"`` or ``"symbols"``: what the digitizer puts on the link."""
        return self.digitizer.payload_kind

    def link_for(self, spec: str | dict[str, Any] | nn.Module | None) -> nn.Module | None:
        """The link of ``spec`` for this system's payload (:func:`digisem.link.from_spec`)."""
        if isinstance(spec, str):
            return _cached_link(spec, self.payload_kind)
        return from_spec(spec, self.payload_kind)

    def check_mode(self, mode: str | None) -> str:
        """``mode`` (None: :attr:`default_mode`) if this system supports it, else ValueError naming the choices."""
        mode = self.default_mode if mode is None else mode
        if mode not in self.modes:
            raise InputError(f"{type(self).__name__} supports modes {self.modes}, got {mode!r}")
        return mode

    def forward(self, x: torch.Tensor, *, link: Any = None, snr_db: float | torch.Tensor | None = None, mode: str | None = None,
                generator: torch.Generator | None = None, **options: Any) -> SystemOutput:
        """Send ``x`` through the chain.

        Input
        -----
        x : [B, 3, H, W], float in [0, 1]
        link : link module, spec (``"16qam-awgn"``, ``{kind: bits, ...}``) or None
            None sends the payload intact (or, for symbol payloads, noiselessly).
        snr_db : float or [B], optional
            In the link's convention (:func:`digisem.link.link_snr_kind`): Es/N0 per complex symbol
            for bit and symbol links, Eb/N0 for a BSC derived from a modulation.
        mode : str, optional
            One of :attr:`modes` (default :attr:`default_mode`).
        generator : torch.Generator, optional
            Drives every random draw of the call, in the family's stated order.
        options
            Family-specific options (e.g. AMP-SC's ``mask_ratio`` and ``restore``).

        Output
        ------
        :class:`SystemOutput`
        """
        return self.run(x, link=self.link_for(link), snr_db=snr_db, mode=self.check_mode(mode), generator=generator, **options)

    @abc.abstractmethod
    def run(self, x: torch.Tensor, *, link: nn.Module | None, snr_db: float | torch.Tensor | None, mode: str,
            generator: torch.Generator | None, **options: Any) -> SystemOutput:
        """The family's chain (called by :meth:`forward` with a built link and a checked mode); every
        family implements it (a subclass without one cannot be instantiated)."""

    def send(self, payload: torch.Tensor, link: nn.Module | None, snr_db: float | torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
        """The payload through ``link``: integers as ``link(payload, num_bits=b, snr_db, generator)``,
        symbols as ``link(payload, snr_db, generator).symbols``; the payload itself without a link."""
        if link is None:
            return payload
        if self.payload_kind == "integers":
            if snr_db is None and isinstance(link, BitLink):
                raise InputError("a bit link needs snr_db (Es/N0 in dB per complex symbol)")
            return link(payload, num_bits=self.digitizer.bits_per_value, snr_db=snr_db, generator=generator)
        if snr_db is None:
            raise InputError("a symbol link needs snr_db (Es/N0 in dB per complex symbol)")
        return link(payload, snr_db, generator).symbols

    def accounting(self, payload: torch.Tensor | None, link: nn.Module | None) -> dict[str, float | int | None]:
        """``bits_per_image`` and ``channel_uses_per_image`` of a payload ``[B, ...]`` on ``link``."""
        if payload is None:
            return {"bits_per_image": None, "channel_uses_per_image": None}
        values = payload[0].numel()
        bits = values * self.digitizer.bits_per_value if self.digitizer.bits_per_value else None
        if link is None or not hasattr(link, "channel_uses"):
            uses = values if self.payload_kind == "symbols" and link is not None else None
        else:
            uses = link.channel_uses(bits if self.payload_kind == "integers" else values)
        return {"bits_per_image": bits, "channel_uses_per_image": uses}

    def with_parts(self, **parts: nn.Module | None) -> System:
        """A shallow copy sharing every weight, with some parts replaced (e.g.
        ``codec.with_parts(restorer=scdm, decoder=scdm.decoder)``); the original is unchanged."""
        unknown = sorted(set(parts) - {"encoder", "digitizer", "restorer", "decoder", "head"})
        if unknown:
            raise InputError(f"unknown parts {unknown}: a system has encoder, digitizer, restorer, decoder, head")
        clone = copy.copy(self)
        # own registries (parameters, buffers, hooks, ...): what is registered on the clone stays on
        # it; the tensors and parts in them are still the original's
        for name, value in vars(self).items():
            if isinstance(value, (dict, set)):
                vars(clone)[name] = copy.copy(value)
        clone._modules = {**self._modules, **parts}
        for name in parts:
            vars(clone).pop(name, None)  # a part set to None in __init__ is a plain attribute
        return clone


# ---------------------------------------------------------------------------------------------------
# training stages: what a family's recipe asks the one runner (digisem.train.run_recipe) to train

LossFn = Callable[[Callable[..., Any], Any, torch.Generator], tuple[torch.Tensor, dict[str, float]]]
"""``loss(model_call, batch, generator) -> (scalar loss, {name: float})``; ``model_call`` is the
model (DDP-wrapped when distributed) and ``generator`` the epoch's noise generator (on the device)."""


@dataclass(kw_only=True)
class TrainingSpeed:
    """Speed switches that every family's ``train`` section inherits (see :class:`Stage`):
    ``channels_last`` (default on: as fast or faster for every family, measured in
    ``docs/results/training_speed.md``) and ``compile`` (default off: ``torch.compile`` costs 15-50 s
    per stage and process, which pays off only in runs longer than several minutes)."""

    channels_last: bool = True
    compile: bool = False


def speed_options(train: dict[str, Any]) -> dict[str, bool]:
    """The :class:`Stage` keyword arguments of a checked ``train`` section's speed switches."""
    return {"channels_last": bool(train["channels_last"]), "compile": bool(train["compile"])}


@dataclass
class Stage:
    """One training stage.

    ``trainable`` names submodules of the model (e.g. ``("encoder", "decoder")``); all others are
    frozen. The learning rate follows cosine annealing from ``lr`` to ``eta_min`` over ``epochs``,
    stepped per epoch; with ``warmup_epochs > 0`` it rises linearly for that many epochs first and the
    cosine is stepped per batch.
    ``max_batches`` caps the batches per epoch (None: the whole dataset). ``after_backward`` runs
    between each backward pass and the optimizer step (e.g. removing an adversarial weight
    perturbation). ``fingerprint`` is what, beyond the recipe, determines the stage's weights (the
    runner hashes it with the family, model, data, train sections, seed and earlier stages into the
    stage-cache key); ``dataset`` and ``batch_size`` replace the recipe's training set and batch
    size; ``optional_parts`` may be missing from or extra in a cached checkpoint; ``precision``
    ``"bf16"`` runs the loss under bfloat16 autocast (weights and optimizer stay float32) where the
    hardware computes bfloat16 natively, and in float32 elsewhere
    (:func:`digisem.train.loop.fitted_to_hardware`, which also drops ``channels_last`` where it is unsound).
    ``channels_last`` trains with the model's 4-D weights and the images in the channels-last
    memory format; ``compile`` runs each trainable part through ``torch.compile`` (see
    ``docs/results/training_speed.md`` for what each buys per family). Both are undone when the
    stage ends, so the model leaves the stage as it came, apart from its weights.
    """

    name: str
    epochs: int
    lr: float
    trainable: tuple[str, ...]
    loss: LossFn
    eta_min: float = 1e-6
    warmup_epochs: float = 0.0
    max_batches: int | None = None
    after_backward: Callable[[], None] | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    dataset: Dataset | None = None
    batch_size: int | None = None
    optional_parts: tuple[str, ...] = ()
    collate: Callable[[list[Any]], Any] | None = None
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise InputError(f"stage {self.name!r}: precision must be 'fp32' or 'bf16', got {self.precision!r}")


@dataclass
class RecipeContext:
    """What the recipe runner hands a family: the recipe (schema-checked), the model, the training
    set of its ``data`` section, and where runs live."""

    recipe: dict[str, Any]
    model: nn.Module
    train_set: Dataset | None
    runs_dir: Any
    data_root: str | None
    seed: int
    progress: bool = True
    stage_dir: Callable[[Stage], Any] | None = None
    """``stage_dir(stage)``: the cache folder the runner gives ``stage`` if it is yielded next (for
    files a family computes before the stage, e.g. SCDM's Stage-2 inputs)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Filled by the family for the results: ``weights_metadata`` (extra keys of the weights file),
    ``meta`` (extra keys of the results' meta), ``evaluated`` (the system to sweep instead of the model)."""


StagesFn = Callable[[RecipeContext], Iterator[Stage]]
"""A family's training plan: a generator of stages; code after a ``yield`` runs once that stage is
trained (e.g. fitting a prior, or building the next stage's data from the trained model)."""


@dataclass
class RecipeSpec:
    """How a family trains from a recipe.

    ``stages``: its training plan. ``sections``: the schema of its recipe sections beyond the
    common ones (``{"train": TrainSection, ...}``, dataclasses; see :mod:`digisem.train.schema`).
    ``build``: ``build(recipe, runs_dir) -> model`` when a model needs more than its ``model``
    section (default: ``cls(config.from_dict(recipe["model"]))``).
    """

    stages: StagesFn
    sections: dict[str, type] = field(default_factory=dict)
    build: Callable[[dict[str, Any], Any], nn.Module] | None = None


@dataclass
class SampleCheck:
    """Where a published model is scored on the bundled sample images (recorded in its zoo
    metadata and re-checked by the tests): ``snr_db`` of kind ``snr_kind`` over ``link`` (a spec;
    None: the link recorded with the model)."""

    snr_db: float
    link: str | None
    snr_kind: str = "esn0"
    seed: int = 0


@dataclass
class Family:
    """One registry entry.

    ``name`` (as weights metadata and recipes name it), ``cls`` and ``config`` (the class and its
    :class:`~digisem.systems.config.DictConfig`), ``kind`` (``"system"``, or ``"restorer"`` for a
    plug-in receiver block such as SCDM), ``snr_kind`` of its sweeps, ``default_link`` spec,
    ``sample_check``, ``recipe`` (how it trains; None: it cannot be trained from a recipe) and
    ``description``.
    """

    name: str
    cls: type[nn.Module]
    config: type
    kind: str = "system"
    snr_kind: str = "esn0"
    default_link: str | None = "awgn"
    default_snrs: str = "-18:18:6"
    sample_check: SampleCheck | None = None
    recipe: RecipeSpec | None = None
    description: str = ""

    def build(self, config: dict[str, Any]) -> nn.Module:
        """An untrained model of this family from a config mapping (unknown keys refused)."""
        return self.cls(self.config.from_dict(config))


class Registry:
    """A name -> :class:`Family` table filled where each family is defined."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}

    def add(self, family: Family) -> Family:
        """Register ``family``; a second family under the same name raises ValueError."""
        if family.name in self._families and self._families[family.name].cls is not family.cls:
            raise InputError(f"system family {family.name!r} is already registered by {self._families[family.name].cls.__name__}")
        self._families[family.name] = family
        return family

    def __getitem__(self, name: str) -> Family:
        if name not in self._families:
            raise KeyError(f"unknown system family {name!r}; known: {', '.join(sorted(self._families))}")
        return self._families[name]

    def __contains__(self, name: object) -> bool:
        return name in self._families

    def __iter__(self) -> Iterator[Family]:
        return iter(self._families.values())

    def names(self, kind: str | None = None) -> list[str]:
        """Registered family names (of one ``kind``, ``"system"`` or ``"restorer"``, if given)."""
        return sorted(name for name, family in self._families.items() if kind is None or family.kind == kind)


FAMILIES = Registry()
"""The one registry. Importing :mod:`digisem.systems` fills it with every family of the library."""


def register_system(name: str, *, config: type, kind: str = "system", snr_kind: str = "esn0", default_link: str | None = "awgn",
                    default_snrs: str = "-18:18:6", sample_check: SampleCheck | None = None, recipe: RecipeSpec | None = None,
                    description: str = "") -> Callable[[type], type]:
    """Class decorator: register a system (or restorer) family under ``name`` (see :class:`Family`)."""

    def decorate(cls: type) -> type:
        if kind == "system":
            cls.family = name
        FAMILIES.add(Family(name, cls, config, kind, snr_kind, default_link, default_snrs, sample_check, recipe, description or (cls.__doc__ or "").strip().splitlines()[0]))
        return cls

    return decorate


def register_recipe(name: str, recipe: RecipeSpec) -> RecipeSpec:
    """Attach a recipe to an already registered family (for families whose training lives in
    :mod:`digisem.train`, which the system's file cannot import)."""
    FAMILIES[name].recipe = recipe
    return recipe
