"""Pieces of the robust semantic communication system (masked VQ-VAE paper) that are specific to it.

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

import torch
from torch import nn
from torch.nn import functional as F


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
    the paper reads (eq. 14). The SNR enters as ``mu = snr_db / 10``.
    """

    def __init__(self, features: int, classes: int, threshold: float = 0.0):
        super().__init__()
        if features < 1 or classes < 2 or threshold < 0:
            raise ValueError(f"need features >= 1, classes >= 2, threshold >= 0; got {features}, {classes}, {threshold}")
        self.auxiliary = nn.Linear(features + 1, classes)
        self.threshold = float(threshold)

    def importance(self) -> torch.Tensor:
        """Eq. 14 then softmax: ``[N]`` weights in (0, 1) summing to 1 (the SNR column excluded)."""
        return torch.softmax(self.auxiliary.weight[:, 1:].mean(0), dim=0)

    def forward(self, feature_map: torch.Tensor, snr_db: float | torch.Tensor) -> dict[str, torch.Tensor]:
        count = self.auxiliary.in_features - 1
        if feature_map.dim() != 3 or feature_map.shape[2] != count:
            raise ValueError(f"FIM expects a feature map [B, M, {count}], got shape {tuple(feature_map.shape)}")
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
        raise ValueError(f"delta is a cosine similarity threshold in [-1, 1], got {delta}")
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
        raise ValueError(f"keep_ratio and code_rate must lie in (0, 1], got {keep_ratio}, {code_rate}")
    return height * width * bits_per_index * keep_ratio / (patch * patch * bits_per_symbol * code_rate)
