"""Pieces of the robust semantic communication system (masked VQ-VAE paper) that are specific to it.

- :class:`MaskedVQVAE` (Sec. III): a ViT encoder over the kept image patches (tokens from a linear
  patch embedding, the paper's, or from a convolutional stem, a hybrid ViT), a shared codebook
  (:class:`~digisem.digitize.VectorQuantizer`), indices over any bit link, and an asymmetric
  lightweight decoder with shared mask tokens and positional embeddings, ending in a task head
  (classification: 3 FC layers; reconstruction: pixels of every patch).
- :func:`keep_patches`: uniform random masking, or noise-related masking (per-patch masking
  probability raised where semantic noise concentrates).
- :class:`FeatureImportanceModule` (FIM, Sec. IV-A, eqs. 13-16): importance of each feature of a
  layer, learned from its pooled activations and the SNR; features are re-weighted and those below a
  threshold are not passed on (and not transmitted).
- :func:`similarity_loss` (eq. 17) and :func:`redundant_features` (the threshold delta of Sec. IV-B1).
- :func:`masked_vqvae_symbols` and :func:`jpeg_ldpc_symbols`: the transmitted-symbol formulas of
  Table I.

The codebook itself is :class:`digisem.digitize.VectorQuantizer`; the attacks are in
:mod:`digisem.attacks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..digitize import AnalogSymbols, VectorQuantizer
from ..link.errors import InputError
from ..nn import TransformerBlock
from .base import SampleCheck, System, SystemOutput, register_system
from .config import DictConfig

TASKS = ("classification", "reconstruction")
STEMS = ("linear", "conv")
TRANSMISSIONS = ("digital", "analog")
MASKINGS = ("uniform", "noise")


class FeatureImportanceModule(nn.Module):
    """FIM with SNR input (eqs. 13-16).

    Parameters
    ----------
    features : int
        N, the number of features of the layer (channels of a feature map, or the width of tokens).
    classes : int
        C, the size of the task output the FIM predicts (eq. 15: classes for classification).
    threshold : float
        Features whose importance is below ``threshold / N`` (a fraction of the uniform importance) are
        masked: zeroed and counted as not transmitted. 0 keeps every feature.

    Input: ``feature_map : [B, M, N]`` (M positions or tokens, N features; the paper's ``F^l`` as
    rows), ``snr_db`` scalar or ``[B]`` (the ``mu`` appended to the pooled map).
    Output: dict with ``features`` ``[B, M, N]`` re-weighted and masked (``f~_n = w^_n f_n``),
    ``logits`` ``[B, C]`` (``W relu([mu, f^])``, whose cross-entropy with the label is eq. 15),
    ``importance`` ``[N]`` (softmax over n of ``w^_n = mean_c W[c, n]``, eq. 14) and ``kept`` ``[N]``
    bool.

    Note
    ----
    Eq. 13: ``f^_n = mean_m F[m, n]`` (global average pooling). The auxiliary network is one linear
    layer ``W in R^{C x (N + 1)}`` on the ReLU of the pooled map: its weights are the importances
    the paper reads (eq. 14). The SNR enters as ``mu = snr_db / 10``, so the learned importances
    depend on the SNRs seen in training; at inference they are fixed weights.
    Eq. 14 averages the signed ``W[c, n]`` over classes; under softmax cross-entropy the gradients of
    the C logits sum to zero, so that signed mean never moves under SGD (it stays at its random
    initialization). The mean of ``|W[c, n]|`` (how strongly feature n drives any class) is what
    training shapes, and is used here.
    """

    def __init__(self, features: int, classes: int, threshold: float = 0.0):
        super().__init__()
        if features < 1 or classes < 2 or threshold < 0:
            raise InputError(f"need features >= 1, classes >= 2, threshold >= 0; got {features}, {classes}, {threshold}")
        self.auxiliary = nn.Linear(features + 1, classes)
        self.threshold = float(threshold)

    def importance(self) -> torch.Tensor:
        """Eq. 14 then softmax: ``[N]`` weights in (0, 1) summing to 1 (the SNR column excluded), from
        the mean over classes of the *absolute* auxiliary weights (see the class note)."""
        return torch.softmax(self.auxiliary.weight[:, 1:].abs().mean(0), dim=0)

    def forward(self, feature_map: torch.Tensor, snr_db: float | torch.Tensor) -> dict[str, torch.Tensor]:
        count = self.auxiliary.in_features - 1
        if feature_map.dim() != 3 or feature_map.shape[2] != count:
            raise InputError(f"FIM expects a feature map [B, M, {count}], got shape {tuple(feature_map.shape)}")
        snr = torch.as_tensor(snr_db, dtype=feature_map.dtype, device=feature_map.device).expand(feature_map.shape[0])
        pooled = torch.cat([snr[:, None] / 10, feature_map.mean(1)], dim=1)
        logits = self.auxiliary(F.relu(pooled))
        importance = self.importance()
        kept = importance >= self.threshold / count
        weights = importance * kept
        return {"features": feature_map * weights, "logits": logits, "importance": importance, "kept": kept}


def similarity_loss(features: torch.Tensor) -> torch.Tensor:
    """Eq. 17: ``-||F^T F||^2`` (squared Frobenius norm, averaged over the batch) of the cosine
    similarities between the encoded feature vectors ``features : [B, K, D]`` of each example."""
    normalized = F.normalize(features, dim=-1)
    gram = normalized @ normalized.transpose(1, 2)
    return -gram.pow(2).sum((1, 2)).mean()


def redundant_features(features: torch.Tensor, delta: float) -> torch.Tensor:
    """Which of the ``K`` feature vectors of each example need not be sent (Sec. IV-B1).

    Input: ``features : [B, K, D]``, threshold ``delta`` on the cosine similarity. A vector is
    redundant when an earlier vector of the same example has similarity above ``delta`` with it (only
    the first of a similar pair is transmitted). Output: ``[B, K]`` bool, True = not transmitted.
    """
    if not -1 <= delta <= 1:
        raise InputError(f"delta is a cosine similarity threshold in [-1, 1], got {delta}")
    normalized = F.normalize(features, dim=-1)
    gram = normalized @ normalized.transpose(1, 2)
    earlier = torch.ones(gram.shape[1], gram.shape[2], dtype=torch.bool, device=gram.device).tril(-1)
    return ((gram > delta) & earlier).any(dim=2)


def jpeg_ldpc_symbols(height: int, width: int, channels: int, bits_per_pixel: int, code_rate: float, compression_ratio: float, bits_per_symbol: int) -> float:
    """Table I, JPEG+LDPC: ``L H Cn Pb / (Rc Cr Bs)`` symbols per image (the paper's "Rc" divides: a
    rate-1/2 code doubles the bits). E.g. ``(224, 224, 3, 8, 0.5, 11.2, 4) -> 53760``."""
    return height * width * channels * bits_per_pixel / (code_rate * compression_ratio * bits_per_symbol)


def masked_vqvae_symbols(height: int, width: int, bits_per_index: int, keep_ratio: float, patch: int, bits_per_symbol: int, code_rate: float = 1.0) -> float:
    """Table I, masked VQ-VAE: ``L H Jc Mr / (Pa^2 Bs)`` symbols per image, divided by ``code_rate``
    when the indices are channel coded (the paper's example leaves the LDPC out: ``(224, 224, 8, 0.5,
    16, 4) -> 196``, 392 with rate 1/2)."""
    if not 0 < keep_ratio <= 1 or not 0 < code_rate <= 1:
        raise InputError(f"keep_ratio and code_rate must lie in (0, 1], got {keep_ratio}, {code_rate}")
    return height * width * bits_per_index * keep_ratio / (patch * patch * bits_per_symbol * code_rate)


def keep_patches(batch: int, patches: int, mask_ratio: float, masking_weights: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of the patches each example keeps: ``[B, K]`` int64, sorted, ``K = round(N (1 - mask_ratio))``.

    ``masking_weights : [N]`` (optional, non-negative): relative masking probability of each patch,
    e.g. the frequency with which semantic noise lands there (noise-related masking). Patches are
    kept without replacement with probability proportional to ``1 / (weight + mean weight)``, so
    noisy patches are masked more often; None masks uniformly at random (the ablation).
    """
    if not 0 <= mask_ratio < 1:
        raise InputError(f"mask_ratio must lie in [0, 1), got {mask_ratio}")
    keep = max(1, round(patches * (1 - mask_ratio)))
    if masking_weights is None:
        scores = torch.rand(batch, patches, generator=generator)
        return scores.argsort(dim=1)[:, :keep].sort(dim=1).values
    if masking_weights.shape != (patches,) or bool((masking_weights < 0).any()):
        raise InputError(f"masking_weights must be [{patches}] non-negative, got shape {tuple(masking_weights.shape)}")
    keep_weights = 1 / (masking_weights.float() + masking_weights.float().mean().clamp_min(1e-12))
    chosen = torch.multinomial(keep_weights.expand(batch, patches), keep, replacement=False, generator=generator)
    return chosen.sort(dim=1).values


def _conv_bn(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """3x3 convolution (padding 1), batch norm, GELU: ``[B, in, H, W]`` -> ``[B, out, H / stride, W / stride]``."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), nn.GELU())


class ConvStem(nn.Module):
    """Convolutional tokenizer of a hybrid ViT: two 3x3 conv-BN-GELU layers of ``channels`` at full
    resolution, then ``log2(patch)`` stages of a stride-2 layer and a stride-1 layer, doubling the
    channels each stage and ending at ``width``. Token ``i`` covers patch ``i`` of the linear
    embedding's grid (its receptive field reaches the neighbours).

    Input: ``x : [B, 3, H, W]``. Output: ``[B, (H / patch) (W / patch), width]`` in row-major order.
    """

    def __init__(self, patch: int, channels: int, width: int):
        super().__init__()
        if patch < 1 or patch & (patch - 1):
            raise InputError(f"a conv stem downsamples by powers of 2: patch must be 1, 2, 4, 8, ..., got {patch}")
        layers = [_conv_bn(3, channels, 1), _conv_bn(channels, channels if patch > 1 else width, 1)]
        current, stages = channels, patch.bit_length() - 1
        for stage in range(stages):
            out = width if stage == stages - 1 else 2 * current
            layers += [_conv_bn(current, out, 2), _conv_bn(out, out, 1)]
            current = out
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.contiguous(memory_format=torch.channels_last)).flatten(2).transpose(1, 2)


class _PatchEncoder(nn.Module):
    """Token embedding (``embed``: a linear map of each patch's pixels, or ``stem``: a
    :class:`ConvStem`), learned positional embedding, ViT blocks, final norm and projection to ``D``."""

    def __init__(self, patch_pixels: int, patches: int, width: int, depth: int, heads: int, code_dim: int, stem: nn.Module | None = None):
        super().__init__()
        if stem is None:
            self.embed = nn.Linear(patch_pixels, width)
        else:
            self.stem = stem
        self.position = nn.Parameter(0.02 * torch.randn(1, patches, width))
        self.blocks = nn.ModuleList(TransformerBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.project = nn.Linear(width, code_dim)


class _MaskedDecoder(nn.Module):
    """The asymmetric lightweight decoder: received basis vectors at their patch positions, a shared
    learned mask token everywhere else, positional embeddings on all, ViT blocks, norm.

    Input: ``received [B, K, D]`` and ``kept [B, K]`` patch indices. Output: ``[B, N, width]``.
    """

    def __init__(self, code_dim: int, patches: int, width: int, depth: int, heads: int):
        super().__init__()
        self.embed = nn.Linear(code_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(0.02 * torch.randn(1, patches, width))
        self.blocks = nn.ModuleList(TransformerBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(self, received: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        width = self.mask_token.shape[-1]
        embedded = self.embed(received)
        full = self.mask_token.to(embedded.dtype).expand(received.shape[0], self.position.shape[1], width)
        hidden = full.scatter(1, kept[:, :, None].expand(-1, -1, width), embedded) + self.position
        for block in self.blocks:
            hidden = block(hidden)
        return self.norm(hidden)


@dataclass(frozen=True)
class MaskedVQVAEConfig(DictConfig):
    """Hyper-parameters of :class:`MaskedVQVAE` (the authors' demo: ViT on 224-px CIFAR with 16-px
    patches, width 384, depth 4, 6 heads, features of 32 dimensions, J = 256, beta = 0.25).

    ``masking="noise"``: noise-related masking; the model keeps a ``noise_profile`` buffer ``[N]``
    (mean magnitude of semantic noise per patch, updated by training on attacked batches, see
    :meth:`MaskedVQVAE.update_noise_profile`) and masks noisy patches more often once it is set.

    ``transmission="analog"`` makes the same ViT the paper's JSCC baseline: no codebook, the encoder
    output pairs into ``K code_dim / 2`` complex symbols per image, power-normalized per image and sent
    over a :class:`~digisem.link.SymbolLink`.

    ``stem="conv"`` makes the tokens with a :class:`ConvStem` of ``stem_channels`` (a hybrid ViT that
    learns at 32 px on a CPU budget); ``"linear"`` is the paper's patch embedding. ``decoder_heads``
    (0: half the encoder's) sets the decoder's attention heads."""

    image_size: int = 32
    patch: int = 4
    stem: str = "linear"
    stem_channels: int = 64
    width: int = 128
    depth: int = 4
    heads: int = 4
    decoder_width: int = 64
    decoder_depth: int = 2
    decoder_heads: int = 0
    code_dim: int = 32
    codebook_size: int = 256
    beta: float = 0.25
    mask_ratio: float = 0.5
    task: str = "classification"
    classes: int = 10
    fim_layers: tuple[int, ...] = ()
    fim_threshold: float = 0.0
    transmission: str = "digital"
    masking: str = "uniform"

    def __post_init__(self) -> None:
        if self.stem not in STEMS:
            raise InputError(f"unknown stem {self.stem!r}: use one of {STEMS}")
        if self.masking not in MASKINGS:
            raise InputError(f"unknown masking {self.masking!r}: use one of {MASKINGS}")
        if self.transmission not in TRANSMISSIONS:
            raise InputError(f"unknown transmission {self.transmission!r}: use one of {TRANSMISSIONS}")
        if self.transmission == "analog" and self.code_dim % 2:
            raise InputError(f"analog transmission pairs features into complex symbols: code_dim must be even, got {self.code_dim}")
        if not 0 <= self.mask_ratio < 1:
            raise InputError(f"mask_ratio must lie in [0, 1), got {self.mask_ratio}")
        if self.image_size % self.patch:
            raise InputError(f"image_size {self.image_size} must be a multiple of patch {self.patch}")
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}: use one of {TASKS}")
        if any(not 0 <= layer < self.depth for layer in self.fim_layers):
            raise InputError(f"fim_layers must index encoder blocks 0..{self.depth - 1}, got {self.fim_layers}")
        object.__setattr__(self, "fim_layers", tuple(self.fim_layers))

    @property
    def patches(self) -> int:
        """Patches per image, N."""
        return (self.image_size // self.patch) ** 2


@register_system("vqvae", config=MaskedVQVAEConfig, snr_kind="esn0", default_link="16qam-mimo-8x4-svd-ldpc-1/2", default_snrs="-9:18:3",
                 sample_check=SampleCheck(snr_db=3.0, link=None))
class MaskedVQVAE(System):
    """The masked VQ-VAE semantic communication system: parts ``encoder`` (patch embedding or conv stem,
    positional embedding, ViT blocks, projection to the code dimension), ``digitizer`` (the shared
    codebook, :class:`~digisem.digitize.VectorQuantizer`; :class:`~digisem.digitize.AnalogSymbols`
    for the JSCC twin), ``decoder`` (mask token, positional embedding, ViT blocks) and ``head``.

    Call: ``model(x, link=None, snr_db=None, generator=None, masking_weights=None)`` with ``x : [B, 3,
    H, W]`` in [0, 1]. With a ``link`` (e.g. ``"16qam-mimo-8x4-svd-ldpc-1/2"``) the codebook indices
    travel as ``bits_per_index``-bit integers and the receiver looks the received indices up in its
    copy of the codebook (straight-through gradient to the encoder); without one the indices arrive
    intact. ``snr_db`` (in the link's convention) is also the FIMs' SNR input (0 when None). Masking
    (``mask_ratio`` of the patches, uniform or by ``masking_weights``) applies in training and in
    transmission alike: masked patches are never sent. Mode: ``digital`` (or ``analog`` for the JSCC
    twin, ``transmission="analog"``, over a symbol link).

    Output :class:`SystemOutput`: ``logits [B, classes]`` (classification) or ``x_hat [B, 3, H, W]``
    (reconstruction); ``payload`` / ``received`` (``[B, K]`` indices, or ``[B, K D / 2]`` complex
    symbols when analog); ``kept [B, K]`` patch indices; ``features [B, K, D]`` (encoder output
    ``z_e``); ``vq_losses`` (codebook, commitment; empty when analog); ``fim_logits`` (one
    ``[B, classes]`` per FIM layer, for eq. 16).
    """

    def __init__(self, config: MaskedVQVAEConfig | None = None):
        super().__init__()
        self.config = config = config or MaskedVQVAEConfig()
        patch_pixels = 3 * config.patch * config.patch
        stem = ConvStem(config.patch, config.stem_channels, config.width) if config.stem == "conv" else None
        self.encoder = _PatchEncoder(patch_pixels, config.patches, config.width, config.depth, config.heads, config.code_dim, stem)
        self.fims = nn.ModuleDict({str(layer): FeatureImportanceModule(config.width, config.classes, config.fim_threshold) for layer in config.fim_layers})
        self.digitizer = VectorQuantizer(config.codebook_size, config.code_dim, config.beta) if config.transmission == "digital" else AnalogSymbols()
        self.restorer = None
        if config.masking == "noise":
            self.register_buffer("noise_profile", torch.zeros(config.patches))
        self.decoder = _MaskedDecoder(config.code_dim, config.patches, config.decoder_width, config.decoder_depth, config.decoder_heads or max(1, config.heads // 2))
        if config.task == "classification":
            width = config.decoder_width
            self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, config.classes))
        else:
            self.head = nn.Linear(config.decoder_width, patch_pixels)

    @property
    def modes(self) -> tuple[str, ...]:
        return (self.config.transmission,)

    @property
    def task(self) -> str:
        return self.config.task

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> ``[B, N, 3 p^2]`` patches in row-major order."""
        size, p = self.config.image_size, self.config.patch
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, size, size):
            raise InputError(f"the masked VQ-VAE expects images [B, 3, {size}, {size}], got shape {tuple(x.shape)}")
        return x.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(x.shape[0], -1, 3 * p * p)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`patchify`."""
        side, p = self.config.image_size // self.config.patch, self.config.patch
        grid = patches.reshape(patches.shape[0], side, side, 3, p, p).permute(0, 3, 1, 4, 2, 5)
        return grid.reshape(patches.shape[0], 3, side * p, side * p)

    def run(self, x, *, link, snr_db, mode, generator, masking_weights: torch.Tensor | None = None) -> SystemOutput:
        """The chain (see the class docstring); ``masking_weights [N]`` overrides the masking profile."""
        config = self.config
        patches = self.patchify(x)
        if masking_weights is None and config.masking == "noise" and float(self.noise_profile.sum()) > 0:
            masking_weights = self.noise_profile
        kept = keep_patches(x.shape[0], config.patches, config.mask_ratio, masking_weights, generator).to(x.device)
        embedded = self.encoder.stem(x) if config.stem == "conv" else self.encoder.embed(patches)
        tokens = torch.gather(embedded + self.encoder.position, 1, kept[:, :, None].expand(-1, -1, config.width))
        fim_logits = []
        snr = 0.0 if snr_db is None else snr_db
        for index, block in enumerate(self.encoder.blocks):
            tokens = block(tokens)
            if str(index) in self.fims:
                out = self.fims[str(index)](tokens, snr)
                tokens = out["features"]
                fim_logits.append(out["logits"])
        features = self.encoder.project(self.encoder.norm(tokens))
        outputs = SystemOutput(kept=kept, features=features, fim_logits=fim_logits)
        if config.transmission == "analog":
            payload = self.digitizer.to_payload(features)
            received_payload = self.send(payload, link, snr_db, generator)
            received = self.digitizer.from_payload(received_payload, features.shape)
            outputs["vq_losses"] = {}
        else:
            received, payload, vq_losses = self.digitizer(features)
            received_payload = payload
            if link is not None:
                received_payload = self.send(payload, link, snr_db, generator).clamp(0, config.codebook_size - 1)
                received = received + (self.digitizer.from_payload(received_payload) - received).detach()
            outputs["vq_losses"] = vq_losses
        outputs.update(payload=payload, received=received_payload, **self.accounting(payload, link))
        hidden = self.decoder(received, kept)
        if config.task == "classification":
            outputs["logits"] = self.head(hidden.mean(1))
        else:
            outputs["x_hat"] = torch.sigmoid(self.unpatchify(self.head(hidden)))
        return outputs

    @torch.no_grad()
    def update_noise_profile(self, clean: torch.Tensor, attacked: torch.Tensor, momentum: float = 0.9) -> None:
        """Noise-related masking: fold the mean absolute semantic noise per patch of a batch
        (``attacked - clean``, both ``[B, 3, H, W]``) into ``noise_profile`` (exponential average;
        the first batch sets it)."""
        if self.config.masking != "noise":
            raise InputError("update_noise_profile needs a model with masking='noise'")
        profile = self.patchify(attacked - clean).abs().mean((0, 2))
        if float(self.noise_profile.sum()) == 0:
            self.noise_profile.copy_(profile)
        else:
            self.noise_profile.mul_(momentum).add_((1 - momentum) * profile)

    def symbols_per_image(self, bits_per_symbol: int, code_rate: float = 1.0) -> float:
        """Transmitted symbols per image: Table I's formula with this model's sizes (digital), or
        ``K code_dim / 2`` complex symbols (analog; the arguments are then unused)."""
        if self.config.transmission == "analog":
            return self.config.patches * (1 - self.config.mask_ratio) * self.config.code_dim / 2
        return masked_vqvae_symbols(self.config.image_size, self.config.image_size, self.digitizer.bits_per_index, 1 - self.config.mask_ratio, self.config.patch, bits_per_symbol, code_rate)
