"""DeepJSCC: the field's reference analog codec (Bourtsoulatze, Kurka and Gunduz, "Deep Joint
Source-Channel Coding for Wireless Image Transmission", 2019), and its digital twin.

``x -> CNN encoder -> [B, C, H/4, W/4] -> AnalogSymbols (pairs -> complex, unit energy per image)
-> SymbolLink (AWGN, Rayleigh, MIMO eigenmodes) -> CNN decoder -> x_hat``

The encoder is five 5x5 convolutions with PReLU (``3 -> w`` stride 2, ``w -> 2w`` stride 2, two
``2w -> 2w``, ``2w -> C``), the decoder its transposed mirror ending in a sigmoid (the original has
``w = 16``). The bandwidth ratio ``k/n`` (complex channel symbols per source value) sets
``C = 2 * ratio * 3 * 16``: 1/6 -> ``C = 16``, 512 symbols for a 32x32x3 image; 1/12 -> 256.

``transmission="digital"`` is the same CNN with AMP-SC's 4-bit :class:`~digisem.digitize.ScalarQuantizer`
on the latent (``tanh`` bounding, rounding; relaxed by additive noise in training) over any bit link.

SNR convention: Es/N0 in dB per complex symbol (unit-energy symbols) for symbol links; bit links
follow theirs (:func:`digisem.link.link_snr_kind`).

This file is the whole system: model, registration, recipe (training stages) and sample check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..digitize import AnalogSymbols, ScalarQuantizer
from ..link.errors import InputError
from .base import (
    RecipeContext,
    RecipeSpec,
    SampleCheck,
    Stage,
    System,
    SystemOutput,
    TrainingSpeed,
    images_of,
    register_system,
    speed_options,
)
from .config import DictConfig

DOWNSAMPLING = 4
TRANSMISSIONS = ("analog", "digital")


@dataclass(frozen=True)
class DeepJSCCConfig(DictConfig):
    """Architecture of a DeepJSCC model.

    Parameters
    ----------
    ratio : float
        Bandwidth ratio ``k/n``: complex channel symbols per source value (1/6 or 1/12 in the paper).
        ``2 * ratio * 3 * 16`` must be a positive integer (the latent channels ``C``).
    width : int
        Channels of the first convolution ``w``; the others have ``2w`` (original: 16).
    kernel_size : int
        Odd kernel of every convolution (original: 5).
    transmission : str
        ``"analog"`` (complex symbols over a symbol link) or ``"digital"`` (``num_bits``-bit integers
        of the bounded latent over a bit link).
    num_bits : int
        Bits per latent value in digital transmission (AMP-SC's 4).
    alpha : float
        Standard deviation of the relaxed-quantization noise in feature units (digital training).
    """

    ratio: float = 1 / 6
    width: int = 16
    kernel_size: int = 5
    transmission: str = "analog"
    num_bits: int = 4
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if self.transmission not in TRANSMISSIONS:
            raise InputError(f"unknown transmission {self.transmission!r}: use one of {TRANSMISSIONS}")
        if not isinstance(self.width, int) or self.width < 1 or not isinstance(self.kernel_size, int) or self.kernel_size % 2 == 0:
            raise InputError(f"need a positive int width and an odd int kernel_size, got {self.width!r}, {self.kernel_size!r}")
        channels = 2 * self.ratio * 3 * DOWNSAMPLING**2
        if not self.ratio > 0 or abs(channels - round(channels)) > 1e-6 * max(1.0, channels):
            raise InputError(f"ratio {self.ratio!r} gives {channels:g} latent channels (2 * ratio * 3 * 16); use ratio = k / 96 for a positive integer k (1/6, 1/12, ...)")
        ScalarQuantizer(self.num_bits)

    @property
    def latent_channels(self) -> int:
        """``C = 2 * ratio * 3 * 16``: real latent channels at 1/4 resolution."""
        return round(2 * self.ratio * 3 * DOWNSAMPLING**2)

    def channel_uses(self, height: int, width: int) -> int:
        """Complex symbols per ``height x width`` image in analog transmission: ``ratio * 3 H W``."""
        return self.latent_channels * (height // DOWNSAMPLING) * (width // DOWNSAMPLING) // 2


def _convolutions(widths: list[int], kernel: int, strides: list[int], transposed: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (inputs, outputs, stride) in enumerate(zip(widths, widths[1:], strides)):
        padding = kernel // 2
        if transposed:
            layers.append(nn.ConvTranspose2d(inputs, outputs, kernel, stride, padding, output_padding=stride - 1))
        else:
            layers.append(nn.Conv2d(inputs, outputs, kernel, stride, padding))
        if index < len(strides) - 1 or not transposed:
            layers.append(nn.PReLU(outputs))
    return nn.Sequential(*layers)


@dataclass
class DeepJSCCTraining(TrainingSpeed):
    """The ``train`` section of a DeepJSCC recipe.

    ``epochs``, ``lr``: the main stage (Adam, cosine annealing). ``snr_db``: Es/N0 of training in dB
    per complex symbol, or ``snr_range [low, high]`` to draw one SNR per image uniformly (one model
    for all SNRs). ``link``: the training link spec (analog: a symbol channel such as ``awgn``).
    Digital transmission: the main stage runs in relaxed mode without a channel, then
    ``digital_epochs`` of decoder fine-tuning over ``link`` (a bit link, e.g. ``bsc``) at ``snr_db``.
    ``precision``: ``bf16`` (bfloat16 autocast of the forward and loss) or ``fp32``; the speed
    switches of :class:`~digisem.systems.base.TrainingSpeed`.
    """

    epochs: int
    lr: float
    snr_db: float | None = 10.0
    snr_range: list[float] | None = None
    link: str = "awgn"
    digital_epochs: int = 0
    digital_lr: float = 1.0e-4
    precision: str = "bf16"


def _draw_snr(train: dict, batch: int, generator: torch.Generator) -> torch.Tensor | float:
    """The training SNR: one value, or one per image from ``snr_range`` (dB)."""
    if train.get("snr_range"):
        low, high = (float(v) for v in train["snr_range"])
        return low + (high - low) * torch.rand(batch, generator=generator, device=generator.device)
    return float(train["snr_db"])


def _mse_loss(mode: str, link, train: dict):
    def loss(model_call, batch, generator):
        images = images_of(batch)
        snr = _draw_snr(train, images.shape[0], generator) if link is not None else None
        out = model_call(images, link=link, snr_db=snr, mode=mode, generator=generator)
        value = F.mse_loss(out["x_hat"], images)
        return value, {"psnr": float(-10 * torch.log10(value.detach().clamp_min(1e-10)))}

    return loss


def recipe_stages(context: RecipeContext) -> Iterator[Stage]:
    """DeepJSCC's training plan: MSE end to end (analog over the training link; digital in relaxed
    mode), then, for digital transmission, ``digital_epochs`` of decoder tuning over the bit link."""
    model, train = context.model, context.recipe["train"]
    if train.get("snr_range") is not None and len(train["snr_range"]) != 2:
        raise InputError(f"train.snr_range must be [low, high] in dB, got {train['snr_range']}")
    if model.config.transmission == "analog":
        yield Stage("deepjscc", int(train["epochs"]), float(train["lr"]), ("encoder", "decoder"), _mse_loss("analog", model.link_for(train["link"]), train), precision=train["precision"], **speed_options(train))
        return
    yield Stage("deepjscc-relaxed", int(train["epochs"]), float(train["lr"]), ("encoder", "decoder"), _mse_loss("relaxed", None, train), precision=train["precision"], **speed_options(train))
    if int(train.get("digital_epochs", 0)) > 0:
        yield Stage("deepjscc-digital", int(train["digital_epochs"]), float(train["digital_lr"]), ("decoder",), _mse_loss("digital", model.link_for(train["link"]), train), precision=train["precision"], **speed_options(train))


@register_system("deepjscc", config=DeepJSCCConfig, snr_kind="esn0", default_link="awgn", default_snrs="0:20:2",
                 sample_check=SampleCheck(snr_db=10.0, link="awgn"), recipe=RecipeSpec(stages=recipe_stages, sections={"train": DeepJSCCTraining}))
class DeepJSCC(System):
    """DeepJSCC (Bourtsoulatze et al., 2019): a CNN encoder and decoder around a symbol link, or,
    with ``transmission="digital"``, around AMP-SC's scalar quantizer and a bit link.

    Parameters
    ----------
    config : DeepJSCCConfig, optional
        Defaults to the original: ratio 1/6, width 16, 5x5 kernels, analog.

    Input (call): ``x : [B, 3, H, W]`` in [0, 1], ``H`` and ``W`` multiples of 4; ``link``, ``snr_db``,
    ``mode``, ``generator`` as :meth:`System.forward`. Modes: analog transmission ``("analog",)``
    (symbols over the link; without a link they arrive intact); digital ``("digital", "relaxed",
    "analog")`` (the payload over a bit link; quantization noise ``alpha N(0, 1)``; bounded
    features straight to the decoder).

    Output: :class:`SystemOutput` with ``x_hat``, ``payload`` / ``received`` (``[B, n]`` complex64
    symbols, or ``[B, C, H/4, W/4]`` int64 integers), the accounting keys, and ``features``
    (the encoder output, bounded when digital).

    Example
    -------
    >>> model = DeepJSCC(DeepJSCCConfig(width=4)).eval()
    >>> out = model(torch.rand(2, 3, 32, 32), link="awgn", snr_db=10.0)
    >>> out["payload"].shape, out["channel_uses_per_image"]
    (torch.Size([2, 512]), 512)
    """

    encodes_once = True

    def __init__(self, config: DeepJSCCConfig | None = None):
        super().__init__()
        self.config = config = config or DeepJSCCConfig()
        wide, kernel = 2 * config.width, config.kernel_size
        self.encoder = _convolutions([3, config.width, wide, wide, wide, config.latent_channels], kernel, [2, 2, 1, 1, 1], transposed=False)
        self.digitizer = AnalogSymbols() if config.transmission == "analog" else ScalarQuantizer(config.num_bits)
        self.restorer = None
        self.decoder = _convolutions([config.latent_channels, wide, wide, wide, config.width, 3], kernel, [1, 1, 1, 2, 2], transposed=True)
        self.head = None

    @property
    def modes(self) -> tuple[str, ...]:
        return ("analog",) if self.config.transmission == "analog" else ("digital", "relaxed", "analog")

    def _check_images(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            raise TypeError(f"DeepJSCC expects float images [B, 3, H, W] in [0, 1], got {x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[0] == 0 or x.shape[2] % DOWNSAMPLING or x.shape[3] % DOWNSAMPLING:
            raise InputError(f"DeepJSCC expects images [B, 3, H, W] with H and W multiples of {DOWNSAMPLING}, got shape {tuple(x.shape)}")

    def run(self, x, *, link, snr_db, mode, generator, **options) -> SystemOutput:
        """The chain in one mode (see the class docstring); no options."""
        if options:
            raise TypeError(f"DeepJSCC takes no options, got {sorted(options)}")
        self._check_images(x)
        features = self.encoder(x)
        payload = received = None
        if self.config.transmission == "analog":
            payload = self.digitizer.to_payload(features)
            received = self.send(payload, link, snr_db, generator)
            restored = self.digitizer.from_payload(received, features.shape).to(features.dtype)
        else:
            features = self.digitizer.bounded(features)
            if mode == "digital":
                payload = self.digitizer.to_payload(features)
                received = self.send(payload, link, snr_db, generator)
                restored = self.digitizer.from_payload(received, features.dtype)
            else:
                if link is not None:
                    raise InputError(f"mode {mode!r} of a digital DeepJSCC has no channel: pass link=None")
                restored = self.digitizer.relaxed(features, self.config.alpha, generator) if mode == "relaxed" else features
        x_hat = torch.sigmoid(self.decoder(restored))
        return SystemOutput(x_hat=x_hat, payload=payload, received=received, features=features, **self.accounting(payload, link))
