"""JCM: joint coding-modulation with a learned constellation (the codec of SCDM, its reference [10]).

An encoder maps a 32x32 image to logits over the PAM levels of each real dimension of ``n`` channel
uses; a straight-through Gumbel-softmax (:class:`~digisem.digitize.LearnedConstellation`) picks the
levels; each example's symbols are scaled to unit average energy and sent over a
:class:`~digisem.link.SymbolLink`; an optional denoiser (SCDM, the MMSE estimator) cleans the
received symbols; a decoder reconstructs the image (and optionally classifies it). The link is any
symbol link (``"awgn"``, ``"rayleigh"`` with perfect-CSI equalization, ``"mimo-8x4-svd"``, ...).

SNR convention: ``snr_db`` is Es/N0 per complex symbol; symbols have unit average energy per example,
so the AWGN noise per complex symbol has variance ``N0 = 10^(-snr_db / 10)`` (``N0 / 2`` per real
dimension). The authors' code normalizes by the batch-wide mean power instead; per-example
normalization makes each image's output independent of the rest of its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..digitize import LearnedConstellation
from ..link import normalize_power
from ..link.errors import InputError
from ..nn import ResidualBlock
from .base import SampleCheck, System, SystemOutput, register_system
from .config import DictConfig

IMAGE_SIZE = 32
LATENT_SIDE = 4
"""The decoder reshapes the 2n received real values to ``(2n / 16, 4, 4)``."""


@dataclass
class JCMConfig(DictConfig):
    """Hyper-parameters of a JCM codec.

    ``order``: constellation order M (2 = BPSK, 4/16/64/256-QAM); ``channel_uses``: n complex symbols
    per image (a multiple of 8); ``width``: channels of the first encoder stage (the authors: 64;
    stages use width, 2 width, 4 width); ``decoder_blocks``: residual blocks per decoder stage;
    ``temperature``: Gumbel-softmax temperature; ``classes``: size of the optional classification
    head (0: none); ``prior_size``: number of transmitted symbols kept as the empirical prior of the
    MMSE estimator.
    """

    order: int = 64
    channel_uses: int = 128
    width: int = 64
    decoder_blocks: int = 2
    temperature: float = 1.5
    classes: int = 0
    prior_size: int = 4096

    def __post_init__(self) -> None:
        if self.channel_uses < 8 or self.channel_uses % 8:
            raise InputError(f"channel_uses must be a positive multiple of 8 (the decoder reshapes 2n reals to (2n/16, 4, 4)), got {self.channel_uses}")
        if self.width < 4 or self.width % 4:
            raise InputError(f"width must be a positive multiple of 4, got {self.width}")
        if self.decoder_blocks < 1 or self.classes < 0 or self.prior_size < 1:
            raise InputError(f"need decoder_blocks >= 1, classes >= 0, prior_size >= 1; got {self.decoder_blocks}, {self.classes}, {self.prior_size}")


class JCMEncoder(nn.Module):
    """Image ``[B, 3, 32, 32]`` in [0, 1] -> level logits ``[B, d, K]`` (the authors' ResNet layout).

    conv3x3 + BN + PReLU, residual stages at width (stride 1), 2 width (stride 2), 4 width x 2
    (stride 2), 4 width x 2 (stride 2) -> ``[B, 4 width, 4, 4]`` -> linear to ``d * K`` logits.
    """

    def __init__(self, width: int, real_dims: int, num_levels: int):
        super().__init__()
        wide = 4 * width
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.PReLU(),
            ResidualBlock(width, width),
            ResidualBlock(width, 2 * width, stride=2),
            ResidualBlock(2 * width, wide, stride=2),
            ResidualBlock(wide, wide),
            ResidualBlock(wide, wide, stride=2),
            ResidualBlock(wide, wide),
        )
        self.real_dims, self.num_levels = real_dims, num_levels
        self.logits = nn.Linear(wide * LATENT_SIDE * LATENT_SIDE, real_dims * num_levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # images in [0, 1] -> [-1, 1], as the authors' code
        features = self.features(2 * x - 1).flatten(1)
        return self.logits(features).view(x.shape[0], self.real_dims, self.num_levels)


class JCMDecoder(nn.Module):
    """Received symbols ``[B, n], complex`` -> image ``[B, 3, 32, 32]`` in (0, 1) (and class logits).

    Real and imaginary parts ``[B, 2n]`` -> ``(2n/16, 4, 4)`` -> 1x1 conv to 4 width -> residual
    blocks -> depth-to-space x4 -> 1x1 conv to 2 width -> residual blocks -> depth-to-space x2 ->
    1x1 conv to 3 -> sigmoid (the authors' output is linear on [-1, 1] images; digisem images are in
    [0, 1]). With ``classes > 0`` a linear head on the pooled 4x4 features gives class logits.
    """

    def __init__(self, width: int, channel_uses: int, blocks: int, classes: int = 0):
        super().__init__()
        wide = 4 * width
        self.in_channels = 2 * channel_uses // (LATENT_SIDE * LATENT_SIDE)
        self.head = nn.Sequential(nn.Conv2d(self.in_channels, wide, 1), nn.PReLU(), *[ResidualBlock(wide, wide) for _ in range(blocks)])
        self.stage = nn.Sequential(
            nn.PixelShuffle(4),
            nn.Conv2d(wide // 16, 2 * width, 1),
            nn.PReLU(),
            *[ResidualBlock(2 * width, 2 * width) for _ in range(blocks)],
            nn.PixelShuffle(2),
            nn.Conv2d(2 * width // 4, 3, 1),
        )
        self.classifier = nn.Linear(wide, classes) if classes else None

    def forward(self, symbols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        reals = torch.view_as_real(symbols).permute(0, 2, 1).reshape(symbols.shape[0], -1)
        features = self.head(reals.view(symbols.shape[0], self.in_channels, LATENT_SIDE, LATENT_SIDE))
        x_hat = torch.sigmoid(self.stage(features))
        logits = self.classifier(features.mean(dim=(2, 3))) if self.classifier is not None else None
        return x_hat, logits


Denoiser = Callable[..., torch.Tensor]
"""``denoiser(received [B, n] complex, snr_db, generator=...) -> [B, n] complex`` (SCDM, MMSE)."""


@register_system("jcm", config=JCMConfig, snr_kind="esn0", default_link="awgn", default_snrs="-18:18:6", sample_check=SampleCheck(snr_db=6.0, link="awgn"))
class JCM(System):
    """The JCM codec: parts ``encoder``, ``digitizer`` (the learned constellation), ``restorer``
    (None; a symbol denoiser such as SCDM or :class:`~digisem.systems.scdm.MMSEDenoiser` via
    :meth:`~digisem.systems.base.System.with_parts`), ``decoder`` (with the classification head
    inside when ``classes > 0``).

    Parameters
    ----------
    config : JCMConfig, optional
        Defaults to ``JCMConfig()`` (64-QAM, n = 128, width 64: the paper's setting).

    Example
    -------
    >>> model = JCM(JCMConfig(order=16, width=8)).eval()
    >>> out = model(torch.rand(2, 3, 32, 32), link="awgn", snr_db=10.0)
    >>> out["payload"].shape, out["x_hat"].shape
    (torch.Size([2, 128]), torch.Size([2, 3, 32, 32]))
    """

    encodes_once = True

    def __init__(self, config: JCMConfig | None = None):
        super().__init__()
        self.config = config = config or JCMConfig()
        self.digitizer = LearnedConstellation(config.order, config.temperature)
        self.encoder = JCMEncoder(config.width, self.digitizer.real_dims(config.channel_uses), self.digitizer.num_levels)
        self.decoder = JCMDecoder(config.width, config.channel_uses, config.decoder_blocks, config.classes)
        self.restorer = None
        self.head = None
        # transmitted symbols of training images: the empirical prior of the MMSE estimator (re, im)
        self.register_buffer("symbol_prior", torch.zeros(config.prior_size, 2))

    @property
    def task(self) -> str:
        return "reconstruction"

    def _check_images(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            raise TypeError(f"JCM expects float images [B, 3, 32, 32] in [0, 1], got {x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, IMAGE_SIZE, IMAGE_SIZE) or x.shape[0] == 0:
            raise InputError(f"JCM expects images [B, 3, 32, 32] (CIFAR size), got shape {tuple(x.shape)}")

    def transmit(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The unit-energy symbols an image batch sends: ``x [B, 3, 32, 32]`` -> ``[B, n], complex64``."""
        self._check_images(x)
        return normalize_power(self.digitizer.to_payload(self.encoder(x), generator))

    def run(self, x, *, link, snr_db, mode, generator, **options) -> SystemOutput:
        """Send ``x`` over a symbol link at ``snr_db`` and decode (no options).

        Input
        -----
        x : [B, 3, 32, 32], float in [0, 1]
        link : symbol link or spec (``"awgn"``, ``"rayleigh"``, ``"mimo-8x4-svd"``); None: noiseless.
        snr_db : float or [B], optional
            Es/N0 in dB per complex symbol.
        generator : torch.Generator, optional
            Drives the Gumbel noise (training), the channel noise and the restorer, in that order.

        Output
        ------
        :class:`SystemOutput` with ``x_hat [B, 3, 32, 32]`` in (0, 1); ``payload [B, n]`` as sent
        (complex64, unit energy per example); ``received [B, n]`` after the channel; ``restored
        [B, n]`` what the decoder saw (after the restorer, if any); ``logits [B, classes]`` when the
        model has a classification head.
        """
        if options:
            raise TypeError(f"JCM takes no options, got {sorted(options)}")
        symbols = self.transmit(x, generator)
        received = self.send(symbols, link, snr_db, generator)
        if self.restorer is not None:
            if snr_db is None:
                raise InputError("a restorer (denoiser) needs the channel snr_db")
            restored = self.restorer(received, snr_db, generator=generator)
        else:
            restored = received
        x_hat, logits = self.decoder(self.digitizer.from_payload(restored))
        return SystemOutput(x_hat=x_hat, logits=logits, payload=symbols, received=received, restored=restored, **self.accounting(symbols, link))

    @torch.no_grad()
    def transmit_all(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Eval-mode symbols of many images: ``[N, 3, 32, 32]`` -> ``[N, n], complex64`` (leaves the model in eval mode)."""
        self.eval()
        return torch.cat([self.transmit(batch) for batch in images.split(batch_size)])

    @torch.no_grad()
    def fit_symbol_prior(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Fill ``symbol_prior`` with ``prior_size`` symbols drawn from what ``images [N, 3, 32, 32]`` transmit
        (eval mode: the encoder's most likely levels); returns it as ``[prior_size], complex64``."""
        was_training = self.training
        symbols = self.transmit_all(images).reshape(-1)
        self.train(was_training)
        if symbols.numel() < self.config.prior_size:
            raise InputError(f"{images.shape[0]} images give {symbols.numel()} symbols, fewer than prior_size {self.config.prior_size}")
        chosen = torch.randperm(symbols.numel(), generator=generator)[: self.config.prior_size]
        self.symbol_prior.copy_(torch.view_as_real(symbols[chosen]))
        return symbols[chosen]

    def prior_symbols(self) -> torch.Tensor:
        """The empirical symbol prior ``[prior_size], complex64``; raises if it was never fitted."""
        if not bool(self.symbol_prior.abs().sum() > 0):
            raise InputError("this JCM has no symbol prior: call fit_symbol_prior(training_images) (training recipes do this)")
        return torch.view_as_complex(self.symbol_prior.contiguous())


def reconstruction_loss(outputs: dict[str, torch.Tensor], x: torch.Tensor, labels: torch.Tensor | None = None, class_weight: float = 0.0) -> torch.Tensor:
    """MSE between ``x_hat`` and ``x`` (per pixel, images in [0, 1]) plus ``class_weight`` x cross-entropy."""
    loss = F.mse_loss(outputs["x_hat"], x)
    if class_weight and outputs.get("logits") is not None:
        if labels is None:
            raise InputError("the classification term needs labels")
        loss = loss + class_weight * F.cross_entropy(outputs["logits"], labels)
    return loss


def parameter_count(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())
