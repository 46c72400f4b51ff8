"""Convolutional building blocks shared by the digisem systems.

- :class:`GDN`: generalized divisive normalization (Ballé et al., 2016); ``inverse=True`` gives IGDN.
- :class:`RCB`: residual convolutional block (AMP-SC eq. 22).
- :class:`TransposedRCB`: the same block with transposed convolutions (upsampling).
- :class:`SqueezeExcitation`: channel attention (AMP-SC eq. 23).
- :class:`ResidualBlock`: the ResNet basic block with batch norm and PReLU (JCM's codec).
- :class:`TransformerBlock`: the pre-norm ViT block on token sequences (SCDM's U-Net, the masked VQ-VAE).

The convolutional blocks take and return images or feature maps ``[B, C, H, W]``; the Transformer
block takes and returns tokens ``[B, L, D]``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..link.errors import InputError

OUTPUT_ACTIVATIONS = ("prelu", "sigmoid")


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows where it would push ``x`` back above the bound."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(inputs)
        ctx.bound = bound
        return inputs.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (inputs,) = ctx.saved_tensors
        pass_through = (inputs >= ctx.bound) | (grad_output < 0)
        return grad_output * pass_through, None


class GDN(nn.Module):
    """Generalized divisive normalization over channels (Ballé, Laparra and Simoncelli, 2016).

    Parameters
    ----------
    channels : int
        Number of channels ``C``.
    inverse : bool
        ``False`` for GDN (divide), ``True`` for IGDN (multiply).
    beta_min : float
        Lower bound on every ``beta_i`` (keeps the denominator away from zero).
    gamma_init : float
        Initial ``gamma = gamma_init * I`` (``beta`` starts at 1). ``gamma_init=0`` is the identity.
    reparam_offset : float
        Offset of the non-negative reparametrization below.

    Input: ``x : [B, C, H, W]``. Output: ``y : [B, C, H, W]`` (same dtype and device).

    Note
    ----
    ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` (IGDN: ``x_i * sqrt(...)``). ``beta`` and
    ``gamma`` are stored as ``beta_raw`` and ``gamma_raw`` with ``beta = max(beta_raw, sqrt(beta_min +
    o^2))^2 - o^2`` and ``gamma = max(gamma_raw, o)^2 - o^2`` (``o = reparam_offset``), so
    ``beta >= beta_min`` and ``gamma >= 0`` whatever the optimizer does.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1, reparam_offset: float = 2.0**-18):
        super().__init__()
        if channels < 1:
            raise InputError(f"channels must be >= 1, got {channels}")
        if gamma_init < 0 or beta_min <= 0:
            raise InputError(f"need gamma_init >= 0 and beta_min > 0, got {gamma_init} and {beta_min}")
        self.channels = channels
        self.inverse = inverse
        self._pedestal = reparam_offset**2
        self._beta_bound = (beta_min + self._pedestal) ** 0.5
        self._gamma_bound = reparam_offset
        self.beta_raw = nn.Parameter(torch.sqrt(torch.ones(channels) + self._pedestal))
        self.gamma_raw = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + self._pedestal))

    @property
    def beta(self) -> torch.Tensor:
        """Effective ``beta : [C]`` (``>= beta_min``)."""
        return _LowerBound.apply(self.beta_raw, self._beta_bound) ** 2 - self._pedestal

    @property
    def gamma(self) -> torch.Tensor:
        """Effective ``gamma : [C, C]`` (``>= 0``); ``gamma[i, j]`` weighs ``x_j^2`` in channel ``i``."""
        return _LowerBound.apply(self.gamma_raw, self._gamma_bound) ** 2 - self._pedestal

    def extra_repr(self) -> str:
        return f"{self.channels}, inverse={self.inverse}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise InputError(f"GDN expects [B, {self.channels}, H, W], got shape {tuple(x.shape)}")
        norm = F.conv2d(x * x, self.gamma[:, :, None, None], self.beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class _ResidualBlock(nn.Module):
    """Shared forward of :class:`RCB` and :class:`TransposedRCB` (eq. 22: ``s' = F(s) + W_s s``)."""

    conv1: nn.Module
    gdn1: GDN
    act1: nn.PReLU
    conv2: nn.Module
    gdn2: GDN
    shortcut: nn.Module
    output_activation: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.gdn2(self.conv2(self.act1(self.gdn1(self.conv1(x)))))
        return self.output_activation(residual + self.shortcut(x))


def _check_block_args(in_channels: int, out_channels: int, kernel_size: int, stride: int, output_activation: str) -> None:
    if in_channels < 1 or out_channels < 1:
        raise InputError(f"channels must be >= 1, got {in_channels} -> {out_channels}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise InputError(f"kernel_size must be odd (same padding), got {kernel_size}")
    if stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise InputError(f"unknown output_activation {output_activation!r}: use one of {OUTPUT_ACTIVATIONS}")


def _activation(name: str) -> nn.Module:
    return nn.PReLU() if name == "prelu" else nn.Sigmoid()


class RCB(_ResidualBlock):
    """Residual convolutional block (AMP-SC eq. 22, the authors' layout).

    ``conv(k, stride, no bias) -> GDN -> PReLU -> conv 1x1 -> GDN``, plus the shortcut (a strided
    1x1 conv when the shape changes, the identity otherwise), added, then the output activation.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Odd; padding ``kernel_size // 2`` keeps ``H / stride``.
    stride : int
    output_activation : str
        ``"prelu"`` (default) or ``"sigmoid"``.

    Input: ``x : [B, in_channels, H, W]``. Output: ``[B, out_channels, ceil(H / stride), ceil(W / stride)]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, output_activation: str = "prelu"):
        super().__init__()
        _check_block_args(in_channels, out_channels, kernel_size, stride, output_activation)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False)
        self.gdn1 = GDN(out_channels)
        self.act1 = nn.PReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.gdn2 = GDN(out_channels)
        reshapes = in_channels != out_channels or stride != 1
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if reshapes else nn.Identity()
        self.output_activation = _activation(output_activation)


class TransposedRCB(_ResidualBlock):
    """Transposed residual convolutional block (T-RCB): :class:`RCB` with transposed convolutions.

    ``output_padding = stride - 1`` makes the output exactly ``stride`` times larger. The
    normalization is GDN (not IGDN), as in the authors' code.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Odd.
    stride : int
    output_activation : str
        ``"prelu"`` (default) or ``"sigmoid"`` (the last decoder block, images in [0, 1]).

    Input: ``x : [B, in_channels, H, W]``. Output: ``[B, out_channels, stride * H, stride * W]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, output_activation: str = "prelu"):
        super().__init__()
        _check_block_args(in_channels, out_channels, kernel_size, stride, output_activation)
        extra = stride - 1
        self.conv1 = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, output_padding=extra, bias=False)
        self.gdn1 = GDN(out_channels)
        self.act1 = nn.PReLU()
        self.conv2 = nn.ConvTranspose2d(out_channels, out_channels, 1, bias=False)
        self.gdn2 = GDN(out_channels)
        reshapes = in_channels != out_channels or stride != 1
        self.shortcut = nn.ConvTranspose2d(in_channels, out_channels, 1, stride, output_padding=extra, bias=False) if reshapes else nn.Identity()
        self.output_activation = _activation(output_activation)


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation channel attention (Hu et al., 2018; AMP-SC eq. 23).

    ``s' = sigmoid(W2 relu(W1 mean_hw(s))) * s`` with ``W1 : C -> hidden`` and ``W2 : hidden -> C``
    (linear layers with bias).

    Parameters
    ----------
    channels : int
    hidden : int, optional
        Defaults to ``max(1, channels // 2)`` (the authors' 256 -> 128 -> 256).

    Input: ``x : [B, C, H, W]``. Output: ``[B, C, H, W]``.
    """

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = max(1, channels // 2) if hidden is None else hidden
        if channels < 1 or hidden < 1:
            raise InputError(f"channels and hidden must be >= 1, got {channels} and {hidden}")
        self.squeeze = nn.Linear(channels, hidden)
        self.excite = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise InputError(f"SqueezeExcitation expects [B, C, H, W], got shape {tuple(x.shape)}")
        weights = torch.sigmoid(self.excite(F.relu(self.squeeze(x.mean(dim=(2, 3))))))
        return x * weights[:, :, None, None]


class ResidualBlock(nn.Module):
    """ResNet basic block with batch norm and PReLU (JCM's encoder and decoder).

    ``conv3x3(stride) -> BN -> PReLU -> conv3x3 -> BN``, plus a shortcut (``conv1x1(stride) -> BN``
    when the shape changes, else identity), added, then PReLU.

    Input: ``x : [B, in_channels, H, W]``. Output: ``[B, out_channels, H / stride, W / stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        _check_block_args(in_channels, out_channels, 3, stride, "prelu")
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.PReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        reshapes = in_channels != out_channels or stride != 1
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)) if reshapes else nn.Identity()
        self.activation = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))


class TransformerBlock(nn.Module):
    """Pre-norm Transformer (ViT) block: ``x + MHA(LN(x))`` then ``x + MLP(LN(x))`` (MLP 4x wide, GELU).

    Input: ``tokens : [B, L, dim]``. Output: ``[B, L, dim]``. ``dim`` must be divisible by ``heads``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        if dim < 1 or heads < 1 or dim % heads:
            raise InputError(f"dim must be a positive multiple of heads, got dim={dim}, heads={heads}")
        self.norm1 = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.self_attention(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))

    def self_attention(self, normed: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention of ``normed [B, L, dim]`` with the weights of ``self.attention``
        (an ``nn.MultiheadAttention``, so checkpoints keep its names), computed as explicit softmax
        matmuls: under bfloat16 autocast on the CPU this is about 5x faster than the fused kernels
        for the short sequences used here."""
        batch, length, dim = normed.shape
        heads = self.attention.num_heads
        packed = F.linear(normed, self.attention.in_proj_weight, self.attention.in_proj_bias)
        query, key, value = packed.reshape(batch, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(query @ key.transpose(-2, -1) * (dim // heads) ** -0.5, dim=-1)
        return self.attention.out_proj((weights @ value).transpose(1, 2).reshape(batch, length, dim))
