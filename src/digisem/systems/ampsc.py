"""AMP-SC: digital semantic communication with alternating multi-phase training and mask attack.

Gong, Wang, Bi, Wu and Qian, "Digital Semantic Communications: An Alternating Multi-Phase Training
Strategy with Mask Attack". The chain is

``x -> Encoder -> bounded features -> ScalarQuantizer -> payload -> link -> payload' -> dequantize
-> [MATK] -> [IRSNet] -> Decoder -> x_hat``

and :class:`AMPSC` runs it in one of three modes (see :meth:`AMPSC.forward`). This module holds the
parts specific to AMP-SC: its configuration, encoder, decoder, IRSNet, the mask attack, the losses of
the five training steps (eqs. 9-21) and the receiver complexity of Table V. The training schedule
(Algorithms 1-6, Table II) lives in ``digisem.train``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from ..digitize import ScalarQuantizer
from ..link.errors import InputError
from ..nn import RCB, SqueezeExcitation, TransposedRCB
from .base import SampleCheck, System, SystemOutput, register_system
from .config import DictConfig

PRESET_DOWNSAMPLING = {"cifar": 4, "hr": 16}
"""Spatial downsampling factor of each preset: ``"cifar"`` (Table III CIFAR10 column) and ``"hr"``
(Table III Kodak24 & DIV2K column, the authors' high-resolution encoder)."""

STRIDE1_BLOCKS = 3
"""Stride-1 RCB + SE pairs after the downsampling blocks (the authors' "deep extraction" blocks)."""

IRSNET_DOWNSAMPLING = 4
"""IRSNet halves the latent map twice, so ``h`` and ``w`` must be multiples of 4."""

MODES = ("digital", "relaxed", "analog")
"""The modes of AMP-SC; the first is the default (deployment)."""


@dataclass(frozen=True)
class AMPSCConfig(DictConfig):
    """Architecture of an AMP-SC model; stored as JSON next to its weights (:meth:`to_dict`).

    Parameters
    ----------
    preset : str
        ``"cifar"``: 6 RCB / 6 T-RCB, 5 SE each side, 4x downsampling (32x32 images -> 8x8 latents).
        ``"hr"``: 8 RCB / 8 T-RCB, 7 SE each side, 16x downsampling (Kodak24, DIV2K, 256 crops).
    width : int
        Channels of the encoder and decoder convolutions (paper: 256).
    num_bits : int
        Bits per transmitted value ``b`` (paper: 2 or 4).
    ratio : float
        Transmitted values per image value (paper: 1/6). The latent has ``ratio * 3 * d^2`` channels
        for downsampling ``d``, which must be an integer (cifar, 1/6: 8 channels, 512 values per image).
    irsnet : bool
        Build the IRSNet restorer (AMP-SC) or not (the SoftQ / He22 / SoftAMP benchmarks).
    irsnet_width : int
        IRSNet channels at full latent resolution; ``2x`` and ``4x`` at the two coarser scales
        (paper: 64, i.e. 32 -> 64 -> 128 -> 256 on the authors' 32-channel latent).
    kernel_size : int
        Odd kernel of the encoder and decoder convolutions (authors: 5). IRSNet uses 3 (and 1).
    alpha : float
        Standard deviation of the relaxed-quantization noise in feature units (eq. 10; paper: 0.5).
    """

    preset: str = "cifar"
    width: int = 256
    num_bits: int = 4
    ratio: float = 1 / 6
    irsnet: bool = True
    irsnet_width: int = 64
    kernel_size: int = 5
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if self.preset not in PRESET_DOWNSAMPLING:
            raise InputError(f"unknown preset {self.preset!r}: use one of {tuple(PRESET_DOWNSAMPLING)}")
        for name in ("width", "irsnet_width", "num_bits", "kernel_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if self.kernel_size % 2 == 0:
            raise InputError(f"kernel_size must be odd, got {self.kernel_size}")
        if not isinstance(self.irsnet, bool):
            raise InputError(f"irsnet must be a bool, got {self.irsnet!r}")
        if not isinstance(self.alpha, (int, float)) or isinstance(self.alpha, bool) or self.alpha < 0:
            raise InputError(f"alpha must be a number >= 0, got {self.alpha!r}")
        if not isinstance(self.ratio, (int, float)) or isinstance(self.ratio, bool) or not self.ratio > 0:
            raise InputError(f"ratio must be a number > 0, got {self.ratio!r}")
        channels = self.ratio * 3 * self.downsampling**2
        if abs(channels - round(channels)) > 1e-6 * max(1.0, channels) or round(channels) < 1:
            step = 3 * self.downsampling**2
            raise InputError(
                f"ratio {self.ratio!r} gives {channels:g} latent channels (ratio * 3 * {self.downsampling}^2) "
                f"for preset {self.preset!r}; use ratio = k / {step} for a positive integer k"
            )
        ScalarQuantizer(self.num_bits)

    @property
    def downsampling(self) -> int:
        """Spatial downsampling factor ``d`` of the encoder (4 or 16)."""
        return PRESET_DOWNSAMPLING[self.preset]

    @property
    def latent_channels(self) -> int:
        """Channels ``C = ratio * 3 * d^2`` of the transmitted feature map."""
        return round(self.ratio * 3 * self.downsampling**2)

    @property
    def input_multiple(self) -> int:
        """Image height and width must be multiples of this (``d``, times 4 with IRSNet)."""
        return self.downsampling * (IRSNET_DOWNSAMPLING if self.irsnet else 1)

    def latent_shape(self, image_size: int | tuple[int, int]) -> tuple[int, int, int]:
        """``(C, H / d, W / d)`` of the features for ``image_size`` ``H`` or ``(H, W)`` (pixels)."""
        height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if height % self.input_multiple or width % self.input_multiple or height < 1 or width < 1:
            raise InputError(f"image size {height}x{width}: height and width must be positive multiples of {self.input_multiple} ({self._input_rule()})")
        return self.latent_channels, height // self.downsampling, width // self.downsampling

    def _input_rule(self) -> str:
        return f"preset {self.preset!r}" + (" with IRSNet" if self.irsnet else "")


def _downsampling_steps(downsampling: int) -> int:
    steps = round(math.log2(downsampling)) if downsampling >= 2 else 0
    if steps < 1 or 1 << steps != downsampling:
        raise InputError(f"downsampling must be a power of 2 >= 2, got {downsampling}")
    return steps


class Encoder(nn.Module):
    """AMP-SC semantic encoder ``E_S`` (eq. 1), the authors' layout.

    ``RCB(3 -> width, s2) + SE``, ``log2(d) - 1`` more ``RCB(width, s2) + SE``, three
    ``RCB(width, s1) + SE``, then ``RCB(width -> C)``: 6 RCB and 5 SE for d = 4, 8 and 7 for d = 16.

    Input: ``x : [B, 3, H, W]``, images in [0, 1]. Output: raw (unbounded) features
    ``[B, C, H / d, W / d]``; :meth:`ScalarQuantizer.bounded` bounds them.
    """

    def __init__(self, downsampling: int, width: int, latent_channels: int, kernel_size: int = 5):
        super().__init__()
        steps = _downsampling_steps(downsampling)
        layers: list[nn.Module] = [RCB(3, width, kernel_size, stride=2), SqueezeExcitation(width)]
        for _ in range(steps - 1):
            layers += [RCB(width, width, kernel_size, stride=2), SqueezeExcitation(width)]
        for _ in range(STRIDE1_BLOCKS):
            layers += [RCB(width, width, kernel_size), SqueezeExcitation(width)]
        layers.append(RCB(width, latent_channels, kernel_size))
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Decoder(nn.Module):
    """AMP-SC semantic decoder ``D_S`` (eq. 7), the mirror of :class:`Encoder`.

    ``T-RCB(C -> width)``, ``log2(d) - 1`` times ``SE + T-RCB(width, s2)``, three times
    ``SE + T-RCB(width, s1)``, then ``SE + T-RCB(width -> 3, s2)`` ending in a sigmoid.

    Input: features ``[B, C, h, w]`` in feature units. Output: ``x_hat : [B, 3, d h, d w]`` in (0, 1).
    """

    def __init__(self, downsampling: int, width: int, latent_channels: int, kernel_size: int = 5):
        super().__init__()
        steps = _downsampling_steps(downsampling)
        layers: list[nn.Module] = [TransposedRCB(latent_channels, width, kernel_size)]
        for _ in range(steps - 1):
            layers += [SqueezeExcitation(width), TransposedRCB(width, width, kernel_size, stride=2)]
        for _ in range(STRIDE1_BLOCKS):
            layers += [SqueezeExcitation(width), TransposedRCB(width, width, kernel_size)]
        layers += [SqueezeExcitation(width), TransposedRCB(width, 3, kernel_size, stride=2, output_activation="sigmoid")]
        self.blocks = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.blocks(features)


class IRSNet(nn.Module):
    """Information restoration network ``D_R`` (eq. 6): a U-Net of nine RCBs and two T-RCBs.

    With ``w = width`` (authors: channels 32 -> 64 -> 128 -> 256)::

        f1 = RCB(C -> w)(z)                                  full resolution
        f2 = RCB(2w)(RCB(w -> 2w, s2)(f1))                   1/2
        f3 = RCB(4w)(RCB(2w -> 4w, s2)(f2))                  1/4
        g3 = RCB(4w, k1)(f3)                                 projection
        g2 = T-RCB(4w -> 2w, s2)(RCB(4w)(g3 + f3))
        g1 = T-RCB(2w -> w, s2)(RCB(2w)(g2 + f2))
        z' = RCB(w -> C)(g1 + f1)

    Kernels are 3x3 except the projection. Input: received features ``z : [B, C, h, w]`` (feature
    units, ``h`` and ``w`` multiples of 4). Output: restored features ``[B, C, h, w]``.
    """

    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        self.channels = channels
        self.inlet = RCB(channels, width, 3)
        self.down1 = nn.Sequential(RCB(width, 2 * width, 3, stride=2), RCB(2 * width, 2 * width, 3))
        self.down2 = nn.Sequential(RCB(2 * width, 4 * width, 3, stride=2), RCB(4 * width, 4 * width, 3))
        self.projection = RCB(4 * width, 4 * width, 1)
        self.up2 = nn.Sequential(RCB(4 * width, 4 * width, 3), TransposedRCB(4 * width, 2 * width, 3, stride=2))
        self.up1 = nn.Sequential(RCB(2 * width, 2 * width, 3), TransposedRCB(2 * width, width, 3, stride=2))
        self.outlet = RCB(width, channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1] != self.channels or z.shape[2] % IRSNET_DOWNSAMPLING or z.shape[3] % IRSNET_DOWNSAMPLING:
            raise InputError(f"IRSNet expects [B, {self.channels}, h, w] with h, w multiples of {IRSNET_DOWNSAMPLING}, got shape {tuple(z.shape)}")
        f1 = self.inlet(z)
        f2 = self.down1(f1)
        f3 = self.down2(f2)
        g2 = self.up2(self.projection(f3) + f3)
        g1 = self.up1(g2 + f2)
        return self.outlet(g1 + f1)


def mask_attack(features: torch.Tensor, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """MATK: zero each received value independently with probability ``ratio`` (paper default ``2p``).

    The keep-mask is ``rand > ratio`` (the authors' code); masked values become 0 in feature units,
    the others pass unchanged (gradients flow through them). ``ratio = 0`` returns ``features`` itself
    and draws nothing.

    Input: ``features : [B, ...]`` float; ``ratio`` in [0, 1]; ``generator`` on ``features``' device.
    Output: same shape, dtype and device.
    """
    if not 0.0 <= ratio <= 1.0:
        raise InputError(f"mask ratio must lie in [0, 1], got {ratio}")
    if ratio == 0.0:
        return features
    keep = torch.rand(features.shape, generator=generator, device=features.device) > ratio
    return torch.where(keep, features, torch.zeros((), dtype=features.dtype, device=features.device))


@register_system("ampsc", config=AMPSCConfig, snr_kind="ebn0", default_link="bsc", default_snrs="0:18:1",
                 sample_check=SampleCheck(snr_db=6.0, link="bsc", snr_kind="ebn0"))
class AMPSC(System):
    """The AMP-SC system (and its benchmarks): parts ``encoder``, ``digitizer`` (the scalar
    quantizer), ``restorer`` (IRSNet or None), ``decoder``; no head.

    Parameters
    ----------
    config : AMPSCConfig, optional
        Defaults to ``AMPSCConfig()`` (cifar preset at paper width 256, 4 bits, ratio 1/6, IRSNet).

    Example
    -------
    >>> model = AMPSC(AMPSCConfig(width=16, irsnet_width=8))
    >>> out = model(torch.rand(2, 3, 32, 32), link="bsc", snr_db=6.0)
    >>> out["payload"].shape, out["x_hat"].shape, out["bits_per_image"]
    (torch.Size([2, 8, 8, 8]), torch.Size([2, 3, 32, 32]), 2048)
    """

    encodes_once = True

    def __init__(self, config: AMPSCConfig | None = None):
        super().__init__()
        self.config = config = config or AMPSCConfig()
        args = (config.downsampling, config.width, config.latent_channels, config.kernel_size)
        self.encoder = Encoder(*args)
        self.digitizer = ScalarQuantizer(config.num_bits)
        self.decoder = Decoder(*args)
        self.head = None
        # built last, so the encoder and decoder draw the same initial weights with or without IRSNet
        self.restorer = IRSNet(config.latent_channels, config.irsnet_width) if config.irsnet else None

    @property
    def modes(self) -> tuple[str, ...]:
        return MODES

    @property
    def sample_kind(self) -> str:
        """The bundled sample images this model takes: ``"cifar"`` (32x32) or ``"kodak"`` (256x256, hr preset)."""
        return "cifar" if self.config.preset == "cifar" else "kodak"

    def payload_bits(self, image_size: int | tuple[int, int]) -> int:
        """Bits sent per image of ``image_size`` (``H`` or ``(H, W)``), before any channel code."""
        return math.prod(self.config.latent_shape(image_size)) * self.config.num_bits

    def _check_images(self, x: torch.Tensor) -> None:
        multiple = self.config.input_multiple
        expected = f"images [B, 3, H, W] with H and W multiples of {multiple} ({self.config._input_rule()})"
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            raise TypeError(f"AMP-SC expects float {expected}, got {type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] % multiple or x.shape[3] % multiple or x.shape[0] == 0:
            raise InputError(f"AMP-SC expects {expected}, got shape {tuple(x.shape)}")

    def _runs_restorer(self, mode: str, restore: bool | None) -> bool:
        if restore is None:
            return self.restorer is not None and mode != "analog"
        if restore and self.restorer is None:
            raise InputError("restore=True but this model has no restorer (built with irsnet=False)")
        return bool(restore)

    def run(
        self,
        x: torch.Tensor,
        *,
        link: Callable[..., torch.Tensor] | None,
        snr_db: float | torch.Tensor | None,
        mode: str,
        generator: torch.Generator | None,
        mask_ratio: float = 0.0,
        restore: bool | None = None,
    ) -> SystemOutput:
        """Run the chain in one mode (called as ``model(x, link=..., snr_db=..., mode=..., ...)``).

        Input
        -----
        x : [B, 3, H, W], float in [0, 1]
            ``H`` and ``W`` multiples of ``config.input_multiple``.
        mode : str
            ``"analog"``: bounded features straight to the decoder (Step 1, eq. 8; the Conventional
            benchmark). ``"relaxed"``: bounded features ``+ alpha N(0, 1)`` (Step 2, eq. 10; Step 4,
            eqs. 14, 18). ``"digital"`` (default): round to the payload, send it through ``link``,
            dequantize (Steps 3 and 5, eqs. 12, 16, 20; testing). The encoder runs without gradients
            in digital mode: rounding and bits are not differentiable, so nothing could reach it.
        link : bit link, digital mode only
            Called as ``link(payload, num_bits=b, snr_db=snr_db, generator=generator)``:
            ``BSCLink(0.0125)``, ``"bsc"`` (p from 16-QAM at Eb/N0), ``"16qam-awgn"``, ...; None
            delivers the payload without errors.
        snr_db : float or [B], digital mode only
            Passed to the link, in the link's convention (Eb/N0 for ``"bsc"``, Es/N0 per complex
            symbol for bit links).
        mask_ratio : float
            MATK probability applied to the received features (paper: ``2p`` in Steps 3 and 4, 0 else).
        generator : torch.Generator, optional
            On ``x``'s device; drives the relaxation noise, the link and the mask, in that order.
        restore : bool, optional
            Whether IRSNet runs. Default (None): in "relaxed" and "digital" modes when the model has
            one (eqs. 16, 18, 20), never in "analog" mode (eq. 8). Step 2 (eq. 10) comes before IRSNet
            joins the training (Sec. III-B4, authors' code), so its recipe passes ``restore=False``.

        Output
        ------
        :class:`SystemOutput` with
            ``x_hat : [B, 3, H, W]`` reconstruction in (0, 1);
            ``payload`` / ``received : [B, C, h, w], int64`` in ``[0, 2^b - 1]`` as sent and as the
            link returned it (digital mode; None otherwise), ``bits_per_image``,
            ``channel_uses_per_image``;
            ``features : [B, C, h, w]`` bounded encoder output (feature units);
            ``transmitted : [B, C, h, w]`` what entered the channel, in feature units: the rounded
            levels (digital), the relaxed features (relaxed) or ``features`` (analog);
            ``received_features : [B, C, h, w]`` after the link and MATK, before the restorer;
            ``restored : [B, C, h, w]`` after the restorer (``received_features`` when it does not run).
        """
        self._check_images(x)
        if mode != "digital" and (link is not None or snr_db is not None):
            raise InputError(f"mode {mode!r} has no channel: link and snr_db are only used with mode='digital'")
        runs_restorer = self._runs_restorer(mode, restore)
        payload = received_payload = None
        if mode == "digital":
            with torch.no_grad():
                features = self.digitizer.bounded(self.encoder(x))
            payload = self.digitizer.to_payload(features)
            received_payload = self.send(payload, link, snr_db, generator)
            transmitted = self.digitizer.from_payload(payload, features.dtype)
            received = self.digitizer.from_payload(received_payload, features.dtype)
        else:
            features = self.digitizer.bounded(self.encoder(x))
            transmitted = self.digitizer.relaxed(features, self.config.alpha, generator) if mode == "relaxed" else features
            received = transmitted
        received = mask_attack(received, mask_ratio, generator)
        restored = self.restorer(received) if runs_restorer else received
        x_hat = self.decoder(restored)
        return SystemOutput(x_hat=x_hat, payload=payload, received=received_payload, **self.accounting(payload, link),
                            features=features, transmitted=transmitted, received_features=received, restored=restored)


def _outputs_entry(outputs: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in outputs:
        raise InputError(f"the forward outputs have no {key!r} (keys: {sorted(outputs)})")
    return outputs[key]


def reconstruction_l1(outputs: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``mean |x_hat - x|`` (the image term of every step). ``x : [B, 3, H, W]`` -> scalar."""
    return F.l1_loss(_outputs_entry(outputs, "x_hat"), x)


def restoration_l1(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """``mean |restored - transmitted|`` in feature units (IRSNet's term of eqs. 17 and 21) -> scalar."""
    return F.l1_loss(_outputs_entry(outputs, "restored"), _outputs_entry(outputs, "transmitted"))


def loss_eq9(outputs: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Step 1 (feature extraction, analog mode), eq. 9: ``||y_1 - x||_1`` as a mean. -> scalar."""
    return reconstruction_l1(outputs, x)


def loss_eq11(outputs: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Step 2 (relaxed mode, no IRSNet), eq. 11: ``||y_2 - x||_1`` as a mean. -> scalar."""
    return reconstruction_l1(outputs, x)


def loss_eq13(outputs: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Step 3 without IRSNet (digital mode, MATK), eq. 13: ``||y_3 - x||_1`` as a mean; also Step 5 without IRSNet. -> scalar."""
    return reconstruction_l1(outputs, x)


def loss_eq15(outputs: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Step 4 without IRSNet (relaxed mode, MATK), eq. 15: ``||y_4 - x||_1`` as a mean. -> scalar."""
    return reconstruction_l1(outputs, x)


def loss_eq17(outputs: dict[str, torch.Tensor], x: torch.Tensor, restoration_weight: float = 1.0) -> torch.Tensor:
    """Step 3 (digital mode, MATK, IRSNet), eq. 17: ``||y_3 - x||_1 + w ||D_R(z M) - [x~]||_1``.

    Both terms are means (``nn.L1Loss``), the image one in [0, 1] units and the restoration one in
    feature units; the paper and the authors' code add them with weight ``w = 1``. -> scalar.
    """
    return reconstruction_l1(outputs, x) + restoration_weight * restoration_l1(outputs)


def loss_eq19(outputs: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Step 4 (relaxed mode, MATK, IRSNet), eq. 19: ``||y_4 - x||_1`` as a mean (no restoration term). -> scalar."""
    return reconstruction_l1(outputs, x)


def loss_eq21(outputs: dict[str, torch.Tensor], x: torch.Tensor, restoration_weight: float = 1.0) -> torch.Tensor:
    """Step 5 (digital mode, no MATK, IRSNet), eq. 21: ``||y_5 - x||_1 + w ||D_R(z) - [x~]||_1`` (``w = 1``). -> scalar."""
    return reconstruction_l1(outputs, x) + restoration_weight * restoration_l1(outputs)


STEP_LOSSES: dict[bool, dict[int, Callable[..., torch.Tensor]]] = {
    True: {1: loss_eq9, 2: loss_eq11, 3: loss_eq17, 4: loss_eq19, 5: loss_eq21},
    False: {1: loss_eq9, 2: loss_eq11, 3: loss_eq13, 4: loss_eq15, 5: loss_eq13},
}
"""``STEP_LOSSES[with_irsnet][step]``: the loss of each AMP step (1-5) for models with and without IRSNet."""


def receiver_complexity(model: AMPSC, image_size: int | tuple[int, int]) -> dict[str, int]:
    """Parameters and FLOPs of the receiver (IRSNet, if any, and decoder) for one image (Table V).

    ``flops`` counts ``torch.utils.flop_counter.FlopCounterMode``: 2 per multiply-accumulate of the
    convolutions (GDN's 1x1 included), transposed convolutions and linear layers; element-wise ops
    (PReLU, sigmoid, GDN's square root, additions) are not counted. ``macs = flops / 2``.

    Input: ``image_size`` ``H`` or ``(H, W)`` in pixels (Table V: 128). Output:
    ``{"params": int, "flops": int, "macs": int}``.
    """
    channels, height, width = model.config.latent_shape(image_size)
    reference = next(model.decoder.parameters())
    features = torch.zeros(1, channels, height, width, device=reference.device, dtype=reference.dtype)
    parts = [part for part in (model.restorer, model.decoder) if part is not None]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        for part in parts:
            features = part(features)
    flops = int(counter.get_total_flops())
    params = sum(p.numel() for part in parts for p in part.parameters())
    return {"params": params, "flops": flops, "macs": flops // 2}
