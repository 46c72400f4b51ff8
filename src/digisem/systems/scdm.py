"""SCDM: a score-based (VE-SDE) denoiser of received constellation symbols (the SCDM paper).

The variance-exploding forward process matches the AWGN channel exactly (eqs. 6-8):
``z_i = z_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) eps``, ``eps ~ CN(0, 1)``, with ``sigma_0 = 0`` and
``sigma_1 .. sigma_N`` geometric from ``sigma_min`` to ``sigma_max``, no drift. So
``z_i = z_0 + sigma_i eps`` and a symbol received at Es/N0 = ``snr_db`` (unit-energy symbols, noise
variance ``N0 = sigma^2`` per complex symbol) is distributed as ``z`` at the step whose ``sigma_i``
equals ``sqrt(N0)``. Sampling (Algorithm 2) starts there and runs back to ``sigma_0 = 0``.

Conventions: ``sigma`` is the standard deviation of the complex noise (``E|n|^2 = sigma^2``); each
real dimension has variance ``v = sigma^2 / 2``. Internally symbols are real tensors ``[B, 2, n]``
(real and imaginary parts as channels), and the score is taken with respect to those real
coordinates, so the predictor of eq. 10 reads ``x <- x + (v_i - v_{i-1}) s + sqrt(v_i - v_{i-1}) z``.

Also here: :class:`MMSEDenoiser`, the per-symbol posterior mean under the codec's empirical symbol
prior (the best denoiser if symbols were independent), and :func:`tweedie` (one network
evaluation: the posterior mean ``x + v s(x)`` of the whole sequence under the learned score).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..link.constellation import check_symbols
from ..link.errors import InputError
from ..nn import TransformerBlock
from .base import FAMILIES, SampleCheck, register_system
from .config import DictConfig

SNR_TOLERANCE_STEPS = 0.5
"""An SNR may lie up to half a step beyond ``sigma_max`` (rounding to step N) before it is refused."""


class VESchedule:
    """The discrete noise levels of SCDM's VE process.

    Parameters
    ----------
    sigma_min, sigma_max : float
        Complex noise standard deviations of steps 1 and N (Es/N0 = ``-20 log10 sigma`` dB).
    steps : int
        N (paper: 64).

    Attributes
    ----------
    sigmas : [N + 1] float64, ``sigmas[0] = 0`` (clean) and ``sigmas[i] = sigma_min (sigma_max /
    sigma_min)^((i - 1) / (N - 1))`` for ``i = 1..N``.
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 10.0, steps: int = 64):
        if not 0 < sigma_min < sigma_max:
            raise InputError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        if steps < 2:
            raise InputError(f"steps must be >= 2, got {steps}")
        self.sigma_min, self.sigma_max, self.steps = float(sigma_min), float(sigma_max), int(steps)
        ratios = torch.arange(steps, dtype=torch.float64) / (steps - 1)
        self.sigmas = torch.cat([torch.zeros(1, dtype=torch.float64), sigma_min * (sigma_max / sigma_min) ** ratios])

    def __repr__(self) -> str:
        return f"VESchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, steps={self.steps})"

    @property
    def snr_range_db(self) -> tuple[float, float]:
        """Es/N0 (dB) of steps N and 1: the range of channel SNRs the schedule covers."""
        return -20 * math.log10(self.sigma_max), -20 * math.log10(self.sigma_min)

    def snr_db_of_step(self, step: int) -> float:
        """Es/N0 (dB per complex symbol) whose noise equals step ``step`` (1..N)."""
        if not 1 <= step <= self.steps:
            raise InputError(f"step must be in 1..{self.steps}, got {step}")
        return -20 * math.log10(float(self.sigmas[step]))

    def step_for_snr(self, snr_db: float | torch.Tensor) -> torch.Tensor:
        """N_snr: the step whose sigma is nearest (in log scale) to the channel's ``sqrt(N0)``.

        Input: ``snr_db`` scalar or ``[B]``, Es/N0 in dB per complex symbol. Output: int64 tensor of
        the same shape; 0 where the channel is cleaner than half a step below ``sigma_min`` (nothing to
        denoise). Raises ValueError for an SNR below the schedule's range (noisier than ``sigma_max``
        by more than half a step), naming the trained range.
        """
        snr = torch.as_tensor(snr_db, dtype=torch.float64)
        if not bool(torch.isfinite(snr).all()):
            raise InputError(f"snr_db must be finite, got {snr.tolist()}")
        log_sigma = -snr / 20 * math.log(10)
        position = (log_sigma - math.log(self.sigma_min)) / (math.log(self.sigma_max) - math.log(self.sigma_min)) * (self.steps - 1) + 1
        if bool((position > self.steps + SNR_TOLERANCE_STEPS).any()):
            low, high = self.snr_range_db
            raise InputError(f"snr_db {snr.min().item():g} dB is below this SCDM's trained range [{low:.1f}, {high:.1f}] dB (Es/N0)")
        return torch.round(position).clamp(0, self.steps).to(torch.int64)

    def forward_step(self, z: torch.Tensor, step: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """One step of the forward process (eq. 7): ``z_i = z_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) eps``.

        Input: ``z : [B, n] complex`` at step ``step - 1``; ``eps ~ CN(0, 1)``. Output: ``[B, n]`` at ``step``.
        """
        if not 1 <= step <= self.steps:
            raise InputError(f"step must be in 1..{self.steps}, got {step}")
        scale = math.sqrt((float(self.sigmas[step]) ** 2 - float(self.sigmas[step - 1]) ** 2) / 2)
        real = torch.randn(z.shape, generator=generator, device=z.device)
        imag = torch.randn(z.shape, generator=generator, device=z.device)
        return z + scale * torch.complex(real, imag)

    def perturb(self, z0: torch.Tensor, step: torch.Tensor | int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Marginal of the forward process: ``z_i = z_0 + sigma_i eps``.

        Input: ``z0 : [B, 2, n]`` real coordinates, ``step`` int or ``[B]`` in 0..N. Output:
        ``(z_i [B, 2, n], noise [B, 2, n])`` where ``noise ~ N(0, 1)`` per real dimension, i.e.
        ``z_i = z0 + sqrt(v_i) noise``.
        """
        sigma = self.sigmas.to(z0.device)[torch.as_tensor(step, device=z0.device)].to(z0.dtype)
        noise = torch.randn(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)
        return z0 + _per_example(sigma / math.sqrt(2), z0) * noise, noise


def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar or ``[B]`` tensor against ``like : [B, ...]``."""
    values = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return values.reshape(-1, *([1] * (like.dim() - 1))) if values.dim() else values


def to_real(symbols: torch.Tensor) -> torch.Tensor:
    """Complex symbols ``[B, n]`` -> real coordinates ``[B, 2, n]`` (real part, imaginary part)."""
    return torch.view_as_real(symbols).permute(0, 2, 1).contiguous()


def to_complex(coords: torch.Tensor) -> torch.Tensor:
    """Real coordinates ``[B, 2, n]`` -> complex symbols ``[B, n], complex64``."""
    return torch.view_as_complex(coords.permute(0, 2, 1).contiguous().float())


# ---------------------------------------------------------------------------------------------------
# score network


class _NoiseEmbedding(nn.Module):
    """``sigma [B]`` -> sinusoidal features of ``log sigma`` -> MLP -> ``[B, dim]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        frequencies = torch.exp(torch.arange(half, device=sigma.device, dtype=sigma.dtype) * (-math.log(1000.0) / max(half - 1, 1)))
        angles = (torch.log(sigma) * 25.0)[:, None] * frequencies[None, :]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))


class _ResBlock1d(nn.Module):
    """GroupNorm-SiLU-conv, plus the noise embedding, GroupNorm-SiLU-conv, with a 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, in_channels), in_channels)
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, padding=1)
        self.embed = nn.Linear(embed_dim, out_channels)
        self.norm2 = nn.GroupNorm(min(8, out_channels), out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.embed(embedding)[:, :, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.shortcut(x)


class _TransformerBlock1d(TransformerBlock):
    """:class:`~digisem.nn.TransformerBlock` over the positions of a channel-first ``[B, C, L]`` sequence."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


@dataclass
class ScoreNetConfig:
    """Size of the score U-Net: ``channels`` at full resolution, ``multipliers`` per down-sampling
    level (3 levels as the paper), ``heads`` of each Transformer block, ``embed_dim`` of the noise
    embedding, ``data_variance`` per real dimension of the clean symbols (0.5 for unit-energy
    complex symbols; used to scale the network input)."""

    channels: int = 64
    multipliers: tuple[int, ...] = (1, 2, 2)
    heads: int = 4
    embed_dim: int = 128
    data_variance: float = 0.5


class ScoreUNet(nn.Module):
    """U-Net over the symbol sequence (the paper's SCDM backbone): 3 down-sampling blocks, a
    bottleneck, 3 up-sampling blocks; each block a ResNet block plus a Transformer block; the
    bottleneck ResNet-Transformer-ResNet; a noise-level embedding in every ResNet block.

    Input: ``x : [B, 2, n]`` real coordinates of noisy symbols (``n`` a multiple of 8), ``sigma : [B]``
    complex noise standard deviation. Output: the score ``[B, 2, n]`` with respect to ``x``
    (``-noise / sqrt(v)`` for the ideal denoiser). The network sees ``x / sqrt(v + data_variance)``
    and its output is divided by ``sqrt(v)`` (the scalings of EDM and of score_sde's VE models), so
    its raw output is the predicted unit noise at every level.
    """

    def __init__(self, config: ScoreNetConfig | None = None):
        super().__init__()
        self.config = config = config or ScoreNetConfig()
        widths = [config.channels * m for m in config.multipliers]
        self.embedding = _NoiseEmbedding(config.embed_dim)
        self.stem = nn.Conv1d(2, config.channels, 3, padding=1)
        self.down_res, self.down_attn, self.downsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        previous = config.channels
        for width in widths:
            self.down_res.append(_ResBlock1d(previous, width, config.embed_dim))
            self.down_attn.append(_TransformerBlock1d(width, config.heads))
            self.downsample.append(nn.Conv1d(width, width, 3, stride=2, padding=1))
            previous = width
        self.mid1 = _ResBlock1d(previous, previous, config.embed_dim)
        self.mid_attn = _TransformerBlock1d(previous, config.heads)
        self.mid2 = _ResBlock1d(previous, previous, config.embed_dim)
        self.upsample, self.up_res, self.up_attn = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for width, target in zip(reversed(widths), list(reversed(widths))[1:] + [config.channels]):
            self.upsample.append(nn.Conv1d(previous, previous, 3, padding=1))
            self.up_res.append(_ResBlock1d(previous + width, target, config.embed_dim))
            self.up_attn.append(_TransformerBlock1d(target, config.heads))
            previous = target
        self.out = nn.Sequential(nn.GroupNorm(min(8, previous), previous), nn.SiLU(), nn.Conv1d(previous, 2, 3, padding=1))
        self.length_multiple = 2 ** len(widths)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 2 or x.shape[2] % self.length_multiple:
            raise InputError(f"the score network expects [B, 2, n] with n a multiple of {self.length_multiple}, got shape {tuple(x.shape)}")
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        variance = _per_example(sigma**2 / 2, x)
        h = self.stem(x / torch.sqrt(variance + self.config.data_variance))
        embedding = self.embedding(sigma)
        skips = []
        for res, attn, down in zip(self.down_res, self.down_attn, self.downsample):
            h = attn(res(h, embedding))
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, embedding)), embedding)
        for upsample, res, attn in zip(self.upsample, self.up_res, self.up_attn):
            h = upsample(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = attn(res(torch.cat([h, skips.pop()], dim=1), embedding))
        return -self.out(h) / torch.sqrt(variance)


ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``score(x [B, 2, n], sigma [B]) -> [B, 2, n]``."""


def dsm_loss(score: ScoreFn, z0: torch.Tensor, schedule: VESchedule, generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoising score matching (Algorithm 1, eq. 5 with ``lambda = v``): ``i ~ U{1..N}``,
    ``mean || sqrt(v_i) s(z_0 + sqrt(v_i) e, sigma_i) + e ||^2`` per real dimension.

    Input: ``z0 : [B, n]`` complex clean symbols (or ``[B, 2, n]`` real coordinates).
    """
    coords = to_real(z0) if z0.is_complex() else z0
    steps = torch.randint(1, schedule.steps + 1, (coords.shape[0],), generator=generator, device=coords.device)
    noisy, noise = schedule.perturb(coords, steps, generator)
    sigma = schedule.sigmas.to(coords.device)[steps].to(coords.dtype)
    predicted = score(noisy, sigma) * _per_example(sigma / math.sqrt(2), coords)
    return (predicted + noise).pow(2).mean()


# ---------------------------------------------------------------------------------------------------
# samplers (a predictor and a corrector from small registries; "none" entries keep the loop simple)


def _reverse_diffusion(x, score, v_now, v_next, generator, last):
    """Eq. 10: ``x + (v_i - v_{i-1}) s + sqrt(v_i - v_{i-1}) z``; the last step returns the mean."""
    mean = x + (v_now - v_next) * score
    if last:
        return mean
    return mean + torch.sqrt(v_now - v_next) * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _probability_flow(x, score, v_now, v_next, generator, last):
    """Euler step of the probability-flow ODE: ``x + (v_i - v_{i-1}) s / 2`` (deterministic)."""
    return x + 0.5 * (v_now - v_next) * score


PREDICTORS = {"reverse_diffusion": _reverse_diffusion, "ode": _probability_flow, "none": None}
CORRECTORS = ("langevin", "none")


@dataclass
class SamplerConfig:
    """How SCDM samples (Algorithm 2).

    ``predictor``: ``reverse_diffusion`` (eq. 10, the paper), ``ode`` (probability-flow Euler,
    deterministic) or ``none``; ``corrector``: ``langevin`` (eq. 11, the paper) or ``none``;
    ``corrector_steps``: L (paper 2); ``r``: the corrector's signal-to-noise ratio (paper 0.16);
    ``tweedie``: skip the chain and return the one-step posterior mean ``x + v s(x)`` at the
    starting level (1 network evaluation).
    """

    predictor: str = "reverse_diffusion"
    corrector: str = "langevin"
    corrector_steps: int = 2
    r: float = 0.16
    tweedie: bool = False

    def __post_init__(self) -> None:
        if self.predictor not in PREDICTORS:
            raise InputError(f"unknown predictor {self.predictor!r}: use one of {sorted(PREDICTORS)}")
        if self.corrector not in CORRECTORS:
            raise InputError(f"unknown corrector {self.corrector!r}: use one of {CORRECTORS}")
        if self.corrector_steps < 0 or self.r <= 0:
            raise InputError(f"need corrector_steps >= 0 and r > 0, got {self.corrector_steps}, {self.r}")

    def label(self) -> str:
        """Short name, e.g. ``PC (L=2)``, ``predictor only``, ``ODE``, ``Tweedie (1 step)``."""
        if self.tweedie:
            return "Tweedie (1 step)"
        corrections = self.corrector_steps if self.corrector == "langevin" else 0
        if self.predictor == "ode":
            return "ODE" + (f" + Langevin (L={corrections})" if corrections else "")
        if self.predictor == "none":
            return f"corrector only (L={corrections})"
        return f"PC (L={corrections})" if corrections else "predictor only"


SAMPLERS: dict[str, SamplerConfig] = {
    "pc": SamplerConfig(),
    "pc1": SamplerConfig(corrector_steps=1),
    "predictor": SamplerConfig(corrector="none"),
    "ode": SamplerConfig(predictor="ode", corrector="none"),
    "tweedie": SamplerConfig(tweedie=True),
}
"""The named samplers (``digisem eval --sampler``, the sampler study): ``pc`` the paper's (reverse
diffusion + 2 Langevin steps, r = 0.16), ``pc1`` (1 Langevin step), ``predictor`` (no corrector),
``ode`` (probability flow), ``tweedie`` (one network evaluation)."""


def _langevin(x, score_fn, sigma, v, r, steps, generator):
    """Eq. 11 at level ``sigma``: ``x + e s + sqrt(2 e) z`` with ``e = 2 (r ||z|| / ||s||)^2`` per example."""
    for _ in range(steps):
        score = score_fn(x, sigma)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        ratio = noise.flatten(1).norm(dim=1) / score.flatten(1).norm(dim=1).clamp_min(1e-12)
        step = _per_example(2 * (r * ratio) ** 2, x)
        x = x + step * score + torch.sqrt(2 * step) * noise
    return x


@torch.no_grad()
def sample(
    score_fn: ScoreFn,
    schedule: VESchedule,
    received: torch.Tensor,
    start_steps: torch.Tensor,
    config: SamplerConfig | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Algorithm 2: denoise ``received [B, 2, n]`` (real coordinates) from step ``start_steps`` (``[B]``, 0..N).

    For ``i = N_snr .. 1``: predictor from ``sigma_i`` to ``sigma_{i-1}``, then ``L`` corrector steps at
    ``sigma_{i-1}`` (none after the last step, at ``sigma_0 = 0``, which returns the predictor's mean).
    Examples whose ``start_steps`` is 0 come back unchanged. Each step evaluates the score network on
    the examples still active only, so a batch of mixed SNRs costs the sum of its examples' steps,
    not the batch size times the largest. Returns ``(denoised [B, 2, n], number of
    score evaluations per example at the largest start step)``.
    """
    config = config or SamplerConfig()
    start_steps = torch.as_tensor(start_steps, device=received.device).expand(received.shape[0])
    sigmas = schedule.sigmas.to(device=received.device, dtype=received.dtype)
    variances = sigmas**2 / 2
    x = received.clone()
    top = int(start_steps.max())
    evaluations = 0
    if config.tweedie:
        active = start_steps > 0
        if bool(active.any()):
            denoised = tweedie(score_fn, x, sigmas[start_steps.clamp_min(1)])
            x = torch.where(_per_example(active, x).bool(), denoised, x)
            evaluations = 1
        return x, evaluations
    predictor = PREDICTORS[config.predictor]
    corrections = config.corrector_steps if config.corrector == "langevin" else 0
    for i in range(top, 0, -1):
        active = (start_steps >= i).nonzero().squeeze(1)
        everyone = len(active) == x.shape[0]
        candidate = x if everyone else x[active]
        if predictor is not None:
            candidate = predictor(candidate, score_fn(candidate, sigmas[i].expand(len(active))), variances[i], variances[i - 1], generator, last=i == 1)
            evaluations += 1
        if i > 1 and corrections:
            candidate = _langevin(candidate, score_fn, sigmas[i - 1].expand(len(active)), variances[i - 1], config.r, corrections, generator)
            evaluations += corrections
        x = candidate if everyone else x.index_copy(0, active, candidate)
    return x, evaluations


def tweedie(score_fn: ScoreFn, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Posterior mean ``E[z_0 | z] = z + v s(z, sigma)`` (Tweedie's formula) of ``noisy [B, 2, n]``."""
    return noisy + _per_example(sigma**2 / 2, noisy) * score_fn(noisy, sigma)


# ---------------------------------------------------------------------------------------------------
# the plug-in receiver blocks


@dataclass
class SCDMConfig(DictConfig):
    """An SCDM: its noise schedule, score network, default sampler, and the codec it was trained on.

    ``codec`` is the config of the codec (family ``codec_system``, registered in
    :data:`~digisem.systems.base.FAMILIES`) whose symbols it denoises; its decoder's architecture is
    the jointly trained decoder's (``joint_decoder=True``).
    """

    sigma_min: float = 0.01
    sigma_max: float = 10.0
    steps: int = 64
    score: dict[str, Any] = field(default_factory=dict)
    sampler: dict[str, Any] = field(default_factory=dict)
    codec: dict[str, Any] = field(default_factory=dict)
    joint_decoder: bool = False
    codec_system: str = "jcm"


@register_system("scdm", config=SCDMConfig, kind="restorer", snr_kind="esn0", default_link="awgn", default_snrs="-18:18:6",
                 sample_check=SampleCheck(snr_db=-6.0, link="awgn"))
class SCDM(nn.Module):
    """Score-based channel denoising model: a plug-in receiver block for received symbols.

    Named parts: ``score`` (:class:`ScoreUNet`) and, after joint training (Stage 2, Algorithm 3),
    ``decoder`` (the codec's decoder fine-tuned on SCDM outputs; None before).

    Call: ``scdm(received [B, n] complex64, snr_db, generator=None, sampler=None) -> [B, n] complex64``
    with ``snr_db`` the channel's Es/N0 in dB per complex symbol (scalar or ``[B]``), unit-energy
    symbols. An SNR below the schedule's range raises ValueError; above it the symbols pass unchanged.
    ``sampler`` overrides the default :class:`SamplerConfig`.
    """

    def __init__(self, config: SCDMConfig | None = None):
        super().__init__()
        self.config = config = config or SCDMConfig()
        self.schedule = VESchedule(config.sigma_min, config.sigma_max, config.steps)
        score_config = dict(config.score)
        if "multipliers" in score_config:
            score_config["multipliers"] = tuple(score_config["multipliers"])
        self.score = ScoreUNet(ScoreNetConfig(**score_config))
        self.sampler = SamplerConfig(**config.sampler)
        self.decoder = None
        if config.joint_decoder:
            self.decoder = FAMILIES[config.codec_system].build(config.codec).decoder

    def forward(self, received: torch.Tensor, snr_db: float | torch.Tensor, generator: torch.Generator | None = None, sampler: SamplerConfig | None = None) -> torch.Tensor:
        check_symbols(received, "received")
        if received.dim() != 2 or received.shape[1] % self.score.length_multiple:
            raise InputError(f"SCDM expects received symbols [B, n] with n a multiple of {self.score.length_multiple}, got shape {tuple(received.shape)}")
        codec_length = self.config.codec.get("channel_uses")
        if codec_length and received.shape[1] != codec_length:
            raise InputError(f"this SCDM was trained on sequences of n = {codec_length} symbols, got n = {received.shape[1]}")
        steps = self.schedule.step_for_snr(snr_db).to(received.device)
        denoised, _ = sample(self.score, self.schedule, to_real(received), steps, sampler or self.sampler, generator)
        return to_complex(denoised)


class MMSEDenoiser(nn.Module):
    """Per-symbol posterior mean under an empirical symbol prior and known AWGN (the honest baseline).

    ``E[z | y] = sum_s z_s exp(-|y - z_s|^2 / N0) / sum_s exp(-|y - z_s|^2 / N0)`` over the prior
    samples ``z_s``, with ``N0 = 10^(-snr_db / 10)`` (Es/N0 per complex symbol, unit-energy symbols).
    This is the minimum-MSE estimate of each symbol if the symbols were independent draws from the
    prior; SCDM can only beat it by using the dependence between the symbols of one image.

    Parameters: ``prior : [S], complex`` samples of transmitted symbols (e.g. ``JCM.prior_symbols()``).
    Call: ``denoiser(received [B, n] complex, snr_db scalar or [B], generator=None) -> [B, n] complex64``.
    """

    def __init__(self, prior: torch.Tensor, chunk: int = 8192):
        super().__init__()
        check_symbols(prior, "prior")
        self.register_buffer("prior", prior.reshape(-1).to(torch.complex64))
        self.chunk = chunk

    @torch.no_grad()
    def forward(self, received: torch.Tensor, snr_db: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_symbols(received, "received")
        n0 = 10 ** (-torch.as_tensor(snr_db, dtype=torch.float32, device=received.device) / 10)
        n0 = n0.expand(received.shape[0])[:, None].expand(received.shape).reshape(-1)
        flat = received.reshape(-1)
        prior = self.prior.to(received.device)
        outputs = []
        for start in range(0, flat.numel(), self.chunk):
            y = flat[start : start + self.chunk, None]
            weights = torch.softmax(-(y - prior[None, :]).abs().pow(2) / n0[start : start + self.chunk, None], dim=1)
            outputs.append(weights.to(torch.complex64) @ prior)
        return torch.cat(outputs).reshape(received.shape)

