"""Image, task and link metrics.

Image metrics take ``x_hat`` (the reconstruction) and ``x`` (the reference), both floating point
of shape (B, C, H, W) (C = 3 for RGB) with values in [0, 1], and return one value per image, shape
(B,), or with ``per_image=False`` the mean of those per-image values, shape (), data range 1.0.
PSNR is torchmetrics'; SSIM and MS-SSIM follow torchmetrics' definitions (its Gaussian window,
reflect padding and MS-SSIM scale rule) with the separable filter as two matrix products shared by
both: :func:`image_quality` gives all three for 100 CIFAR-10 images in 9 ms, where torchmetrics'
SSIM and MS-SSIM took 87 ms (2 threads, ``docs/results/eval.md``).

Input rules shared by the image metrics:

- ``x`` must lie in [0, 1] up to ``REFERENCE_TOLERANCE`` (1e-3, room for rounding); it is then
  clamped to [0, 1].
- ``x_hat`` is clamped to [0, 1] before scoring, as a display would do, so a decoder that
  overshoots slightly is scored on the image it would show. Values outside
  [-``RECONSTRUCTION_SLACK``, 1 + ``RECONSTRUCTION_SLACK``] (slack 0.5) raise, because they mean the
  wrong scale ([-1, 1] or [0, 255]) rather than an overshoot.
- Integer or boolean images raise ``TypeError`` (divide uint8 images by 255 first); shape mismatch,
  a batch of zero images, or a tensor that is not 4-D raise ``ValueError``. Half precision inputs
  are scored in float32.

Link metrics (``bit_error_rate``, ``block_error_rate``) and task metrics (``accuracy``,
``recall_at_k``) return a 0-dim float32 tensor holding a fraction in [0, 1].
"""

import functools

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio

from .link.errors import InputError

REFERENCE_TOLERANCE = 1e-3
RECONSTRUCTION_SLACK = 0.5

SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# (smallest image side, number of MS-SSIM scales). A scale count n needs the coarsest scale,
# side / 2**(n - 1), to hold the 11-px window, and torchmetrics also requires
# side // (n - 1)**2 > 10, which is why 4 scales start at 99 px rather than 88 px.
MS_SSIM_SCALES_BY_MIN_SIDE = ((176, 5), (99, 4), (44, 3), (22, 2), (11, 1))

_RECALL_QUERY_CHUNK = 1024


def _check_image_pair(x_hat: Tensor, x: Tensor, metric: str) -> tuple[Tensor, Tensor]:
    """Validate a (reconstruction, reference) pair and return both clamped to [0, 1]."""
    for name, image in (("x_hat", x_hat), ("x", x)):
        if not isinstance(image, Tensor):
            raise TypeError(f"{metric}: {name} must be a torch.Tensor, got {type(image).__name__}")
        if not image.is_floating_point():
            raise TypeError(
                f"{metric}: {name} must be a floating point image in [0, 1], got dtype {image.dtype} "
                f"with shape {tuple(image.shape)}; convert uint8 images with image.float() / 255"
            )
    if x_hat.shape != x.shape:
        raise InputError(
            f"{metric}: shape mismatch, x_hat has shape {tuple(x_hat.shape)} and x has shape {tuple(x.shape)}"
        )
    if x.ndim != 4:
        raise InputError(f"{metric}: images must have shape (B, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError(f"{metric}: empty batch, shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise InputError(f"{metric}: images have no pixels, shape {tuple(x.shape)}")
    _check_range(x, "x", metric, REFERENCE_TOLERANCE, "reference images must lie in [0, 1]")
    _check_range(
        x_hat,
        "x_hat",
        metric,
        RECONSTRUCTION_SLACK,
        "reconstructions are clamped to [0, 1], but values this far out mean the wrong scale "
        "(images in [-1, 1] or [0, 255]?)",
    )
    dtype = torch.promote_types(torch.promote_types(x_hat.dtype, x.dtype), torch.float32)
    return x_hat.to(dtype).clamp(0.0, 1.0), x.to(dtype).clamp(0.0, 1.0)


def _check_range(image: Tensor, name: str, metric: str, tolerance: float, reason: str) -> None:
    inside = (image >= -tolerance) & (image <= 1.0 + tolerance)
    if not bool(inside.all()):
        finite = image[torch.isfinite(image)]
        span = f"[{finite.min().item():.4g}, {finite.max().item():.4g}]" if finite.numel() else "no finite values"
        has_nan = " and NaN/inf values" if not bool(torch.isfinite(image).all()) else ""
        raise InputError(
            f"{metric}: {name} (shape {tuple(image.shape)}) has values in {span}{has_nan}, outside "
            f"[{-tolerance:g}, {1.0 + tolerance:g}]: {reason}"
        )


def _reduce(per_image: Tensor, keep_per_image: bool) -> Tensor:
    return per_image if keep_per_image else per_image.mean()


def psnr(x_hat: Tensor, x: Tensor, per_image: bool = True) -> Tensor:
    """Peak signal-to-noise ratio in dB, data range 1.0.

    Each image's PSNR is 10 log10(1 / MSE) with the MSE taken over all its channels and pixels,
    after clamping ``x_hat`` to [0, 1] (see the module docstring for the input rules). Identical
    images give ``inf``.

    Args:
        x_hat: reconstruction, float (B, C, H, W) in [0, 1].
        x: reference, float (B, C, H, W) in [0, 1].
        per_image: if False, return the mean of the per-image PSNRs (not the PSNR of the mean MSE;
            one ``inf`` makes the mean ``inf``).

    Returns:
        PSNR in dB, shape (B,), or shape () when ``per_image`` is False.
    """
    x_hat, x = _check_image_pair(x_hat, x, "psnr")
    values = peak_signal_noise_ratio(x_hat, x, data_range=1.0, dim=(1, 2, 3), reduction="none")
    return _reduce(values, per_image)


def _check_window_fits(x: Tensor, metric: str) -> int:
    min_side = min(x.shape[-2], x.shape[-1])
    if min_side < SSIM_KERNEL_SIZE:
        raise InputError(
            f"{metric}: images of shape {tuple(x.shape)} are smaller than the "
            f"{SSIM_KERNEL_SIZE}x{SSIM_KERNEL_SIZE} Gaussian window; both sides must be at least {SSIM_KERNEL_SIZE} px"
        )
    return min_side


@functools.lru_cache(maxsize=32)
def _window_matrix(size: int, dtype: torch.dtype) -> Tensor:
    """``[size, size]`` matrix ``A`` with ``A @ v`` = ``v`` reflect-padded by half the Gaussian window
    (``SSIM_KERNEL_SIZE`` taps, sigma ``SSIM_SIGMA``) and filtered along its length: one axis of
    torchmetrics' SSIM filter as a matrix product."""
    pad = (SSIM_KERNEL_SIZE - 1) // 2
    offsets = torch.arange(SSIM_KERNEL_SIZE, dtype=torch.float64) - pad
    taps = torch.exp(-((offsets / SSIM_SIGMA) ** 2) / 2)
    taps = taps / taps.sum()
    rows = torch.arange(size).repeat_interleave(SSIM_KERNEL_SIZE)
    sources = (torch.arange(size)[:, None] + torch.arange(SSIM_KERNEL_SIZE) - pad).reshape(-1).abs()
    sources = torch.where(sources >= size, 2 * (size - 1) - sources, sources)
    matrix = torch.zeros(size, size, dtype=torch.float64)
    matrix.index_put_((rows, sources), taps.repeat(size), accumulate=True)
    return matrix.to(dtype)


def _similarity_and_contrast(x_hat: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image SSIM and contrast-structure term of validated images ``[B, C, H, W]`` -> ``([B], [B])``.

    The five local statistics are filtered with the separable Gaussian as two matrix products
    (reflect padding folded into the matrices, see :func:`_window_matrix`). The SSIM is the mean of
    the whole ``H x W`` map; the contrast-structure term is the mean of the map without the
    half-window border, as in torchmetrics' SSIM and MS-SSIM (the definitions this module follows,
    checked in ``tests/test_metrics.py``).
    """
    height, width = x.shape[-2:]
    pad = (SSIM_KERNEL_SIZE - 1) // 2
    planes = torch.stack((x_hat, x, x_hat * x_hat, x * x, x_hat * x))
    planes = _window_matrix(height, x.dtype) @ planes @ _window_matrix(width, x.dtype).T
    mu_hat, mu, hat_sq, ref_sq, cross = planes
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mu_hat_sq, mu_sq, mu_cross = mu_hat * mu_hat, mu * mu, mu_hat * mu
    variance_hat = (hat_sq - mu_hat_sq).clamp_min(0.0)
    variance = (ref_sq - mu_sq).clamp_min(0.0)
    contrast = (2 * (cross - mu_cross) + c2) / (variance_hat + variance + c2)
    similarity = (2 * mu_cross + c1) / (mu_hat_sq + mu_sq + c1) * contrast
    inner = contrast[..., pad : height - pad, pad : width - pad]
    return similarity.mean(dim=(1, 2, 3)), inner.mean(dim=(1, 2, 3))


def _ms_ssim_from(x_hat: Tensor, x: Tensor, finest: tuple[Tensor, Tensor]) -> Tensor:
    """MS-SSIM ``[B]`` of validated images, given their finest scale's ``(similarity, contrast)``."""
    betas = ms_ssim_betas(x.shape[-2], x.shape[-1])
    similarity, contrast = finest
    terms = [contrast]
    for _ in betas[1:]:
        x_hat, x = F.avg_pool2d(x_hat, 2), F.avg_pool2d(x, 2)
        similarity, contrast = _similarity_and_contrast(x_hat, x)
        terms.append(contrast)
    terms[-1] = similarity
    values = torch.ones_like(similarity)
    for term, beta in zip(terms, betas):
        values = values * term.clamp_min(0.0) ** beta
    return values


def ssim(x_hat: Tensor, x: Tensor, per_image: bool = True) -> Tensor:
    """Structural similarity (Wang et al. 2004), unitless, at most 1.

    Gaussian window 11x11, sigma 1.5, k1 = 0.01, k2 = 0.03, data range 1.0, averaged over channels
    and pixels (reflect padding at the border, as torchmetrics does); ``x_hat`` is clamped to [0, 1]
    first. Both image sides must be at least 11 px.

    Args:
        x_hat: reconstruction, float (B, C, H, W) in [0, 1].
        x: reference, float (B, C, H, W) in [0, 1].
        per_image: if False, return the mean over images.

    Returns:
        SSIM, shape (B,), or shape () when ``per_image`` is False.
    """
    x_hat, x = _check_image_pair(x_hat, x, "ssim")
    _check_window_fits(x, "ssim")
    return _reduce(_similarity_and_contrast(x_hat, x)[0], per_image)


def ms_ssim_betas(height: int, width: int) -> tuple[float, ...]:
    """MS-SSIM scale weights used by :func:`ms_ssim` for images of the given size (pixels).

    The number of scales depends on the smaller side (the window stays 11x11, sigma 1.5):

    ========================  ======  ==================================================
    smaller side (px)         scales  betas
    ========================  ======  ==================================================
    >= 176                    5       (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), standard
    99 - 175                  4       first 4 standard betas, rescaled to sum to 1
    44 - 98                   3       first 3 standard betas, rescaled to sum to 1
    22 - 43 (CIFAR-10: 32)    2       (0.1356, 0.8644): first 2, rescaled to sum to 1
    11 - 21                   1       (1.0,): equals SSIM
    ========================  ======  ==================================================

    Dropping the coarsest scales keeps the coarsest one at least as large as the window.

    Returns:
        One weight per scale, finest scale first.
    """
    min_side = min(height, width)
    for smallest_side, scales in MS_SSIM_SCALES_BY_MIN_SIDE:
        if min_side >= smallest_side:
            if scales == len(MS_SSIM_BETAS):
                return MS_SSIM_BETAS
            kept = MS_SSIM_BETAS[:scales]
            total = sum(kept)
            return tuple(beta / total for beta in kept)
    raise InputError(
        f"ms_ssim: images of {height}x{width} px are smaller than the {SSIM_KERNEL_SIZE}x{SSIM_KERNEL_SIZE} window; "
        f"both sides must be at least {SSIM_KERNEL_SIZE} px"
    )


def ms_ssim(x_hat: Tensor, x: Tensor, per_image: bool = True) -> Tensor:
    """Multi-scale structural similarity (Wang et al. 2003), unitless, at most 1.

    Gaussian window 11x11, sigma 1.5, data range 1.0, 2x2 average pooling between scales; images
    whose smaller side is at least 176 px use the standard 5 scales, smaller images use fewer scales
    with rescaled weights as listed in :func:`ms_ssim_betas` (32x32 CIFAR-10 images use 2 scales).
    Negative contrast-structure terms are clipped to 0 (torchmetrics' ``normalize="relu"``), so a
    badly damaged image scores 0 instead of NaN. ``x_hat`` is clamped to [0, 1] first.

    Args:
        x_hat: reconstruction, float (B, C, H, W) in [0, 1], both sides at least 11 px.
        x: reference, float (B, C, H, W) in [0, 1].
        per_image: if False, return the mean over images.

    Returns:
        MS-SSIM, shape (B,), or shape () when ``per_image`` is False.
    """
    x_hat, x = _check_image_pair(x_hat, x, "ms_ssim")
    _check_window_fits(x, "ms_ssim")
    return _reduce(_ms_ssim_from(x_hat, x, _similarity_and_contrast(x_hat, x)), per_image)


def image_quality(x_hat: Tensor, x: Tensor) -> dict[str, Tensor]:
    """Per-image ``psnr`` (dB), ``ssim`` and ``ms_ssim`` in one pass: ``{name: [B]}``.

    The same values as :func:`psnr`, :func:`ssim` and :func:`ms_ssim` called one by one, with the
    inputs checked once and the finest scale's Gaussian statistics shared by SSIM and MS-SSIM.

    Args:
        x_hat: reconstruction, float (B, C, H, W) in [0, 1], both sides at least 11 px.
        x: reference, float (B, C, H, W) in [0, 1].
    """
    x_hat, x = _check_image_pair(x_hat, x, "image_quality")
    _check_window_fits(x, "image_quality")
    finest = _similarity_and_contrast(x_hat, x)
    values = peak_signal_noise_ratio(x_hat, x, data_range=1.0, dim=(1, 2, 3), reduction="none")
    return {"psnr": values, "ssim": finest[0], "ms_ssim": _ms_ssim_from(x_hat, x, finest)}


def _check_bit_pair(bits_hat: Tensor, bits: Tensor, metric: str) -> None:
    if bits_hat.shape != bits.shape:
        raise InputError(
            f"{metric}: shape mismatch, bits_hat has shape {tuple(bits_hat.shape)} "
            f"and bits has shape {tuple(bits.shape)}"
        )
    if bits.numel() == 0:
        raise InputError(f"{metric}: no bits to compare, shape {tuple(bits.shape)}")
    for name, values in (("bits_hat", bits_hat), ("bits", bits)):
        if values.is_complex():
            raise TypeError(f"{metric}: {name} must hold bits 0/1, got dtype {values.dtype}")
        if not bool(((values == 0) | (values == 1)).all()):
            raise InputError(
                f"{metric}: {name} (shape {tuple(values.shape)}, dtype {values.dtype}) holds values other than 0 "
                "and 1; make hard decisions first (e.g. llr < 0 or probability > 0.5)"
            )


def bit_error_rate(bits_hat: Tensor, bits: Tensor) -> Tensor:
    """Fraction of bits that differ.

    Args:
        bits_hat: received bits, any shape, values 0/1 (uint8, bool, integer or float).
        bits: transmitted bits, same shape.

    Returns:
        Bit error rate in [0, 1], shape (), float32.
    """
    _check_bit_pair(bits_hat, bits, "bit_error_rate")
    errors = torch.count_nonzero(bits_hat != bits)
    return errors.to(torch.float32) / bits.numel()


def block_error_rate(bits_hat: Tensor, bits: Tensor) -> Tensor:
    """Fraction of blocks (code words) with at least one wrong bit; a block is the last dimension.

    Args:
        bits_hat: received bits, shape (..., n), values 0/1 (uint8, bool, integer or float).
        bits: transmitted bits, same shape.

    Returns:
        Block error rate in [0, 1] over the prod(...) blocks, shape (), float32.
    """
    _check_bit_pair(bits_hat, bits, "block_error_rate")
    if bits.ndim == 0:
        raise InputError("block_error_rate: bits must have at least one dimension (the block), got a scalar")
    block_in_error = (bits_hat != bits).reshape(-1, bits.shape[-1]).any(dim=-1)
    return torch.count_nonzero(block_in_error).to(torch.float32) / block_in_error.numel()


def bit_errors(values: Tensor, values_hat: Tensor, num_bits: int) -> tuple[int, int]:
    """Bit errors between two payloads of ``num_bits``-bit integers.

    Args:
        values: sent integers, any integer shape, in [0, 2^num_bits).
        values_hat: received integers, same shape.
        num_bits: bits per integer, >= 1.

    Returns:
        ``(errors, bits)``: the number of differing bits and the number of bits compared.
    """
    if values.shape != values_hat.shape or values.dtype.is_floating_point or values_hat.dtype.is_floating_point:
        raise InputError(f"bit_errors: expected two integer tensors of one shape, got {values.dtype} {tuple(values.shape)} and {values_hat.dtype} {tuple(values_hat.shape)}")
    if num_bits < 1:
        raise InputError(f"bit_errors: num_bits must be >= 1, got {num_bits}")
    flipped = values.to(torch.int64) ^ values_hat.to(torch.int64)
    errors = sum(int(((flipped >> i) & 1).sum()) for i in range(num_bits))
    return errors, flipped.numel() * num_bits


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Top-1 classification accuracy.

    Args:
        logits: class scores, float (B, K) (logits or probabilities; the arg-max is used).
        labels: true classes, integer (B,) in [0, K).

    Returns:
        Fraction of correct arg-max predictions, shape (), float32.
    """
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise InputError(
            f"accuracy: expected logits (B, K) and labels (B,), got shapes {tuple(logits.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if labels.shape[0] == 0:
        raise InputError(f"accuracy: empty batch, logits shape {tuple(logits.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"accuracy: labels must be integer class indices, got dtype {labels.dtype}")
    num_classes = logits.shape[1]
    if bool((labels < 0).any()) or bool((labels >= num_classes).any()):
        raise InputError(
            f"accuracy: labels must lie in [0, {num_classes}) for logits of shape {tuple(logits.shape)}, "
            f"got values in [{labels.min().item()}, {labels.max().item()}]"
        )
    correct = logits.argmax(dim=1) == labels
    return correct.to(torch.float32).mean()


def recall_at_k(embeddings: Tensor, labels: Tensor, k: int = 1) -> Tensor:
    """Retrieval recall@k within one set of embeddings, by cosine similarity.

    Every item queries all the others (itself excluded); it counts as a hit when at least one of its
    ``k`` most similar items has its label. An item whose label occurs only once counts as a miss.
    Ties in similarity are broken by ``torch.topk``. Similarities are computed 1024 queries at a
    time, so memory grows as 1024 x N.

    Args:
        embeddings: float (N, D).
        labels: integer (N,).
        k: neighbours considered per query, 1 <= k < N.

    Returns:
        Fraction of queries that are hits, shape (), float32.
    """
    if embeddings.ndim != 2 or labels.ndim != 1 or embeddings.shape[0] != labels.shape[0]:
        raise InputError(
            f"recall_at_k: expected embeddings (N, D) and labels (N,), got shapes "
            f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    if not embeddings.is_floating_point():
        raise TypeError(f"recall_at_k: embeddings must be floating point, got dtype {embeddings.dtype}")
    if labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"recall_at_k: labels must be integer, got dtype {labels.dtype}")
    count = embeddings.shape[0]
    if not 1 <= k < count:
        raise InputError(f"recall_at_k: need 1 <= k < N, got k={k} for N={count} embeddings")
    unit = F.normalize(embeddings.to(torch.promote_types(embeddings.dtype, torch.float32)), dim=1)
    hits = torch.zeros(count, dtype=torch.bool, device=embeddings.device)
    for start in range(0, count, _RECALL_QUERY_CHUNK):
        stop = min(start + _RECALL_QUERY_CHUNK, count)
        similarity = unit[start:stop] @ unit.T
        rows = torch.arange(stop - start, device=embeddings.device)
        similarity[rows, rows + start] = -torch.inf
        neighbours = similarity.topk(k, dim=1).indices
        hits[start:stop] = (labels[neighbours] == labels[start:stop, None]).any(dim=1)
    return hits.to(torch.float32).mean()
