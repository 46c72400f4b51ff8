"""digisem.metrics against closed forms and hand-worked cases."""

import math

import pytest
import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)

from digisem import metrics
from digisem.metrics import (
    accuracy,
    bit_error_rate,
    block_error_rate,
    image_quality,
    ms_ssim,
    ms_ssim_betas,
    psnr,
    recall_at_k,
    ssim,
)

SSIM_C1 = 0.01**2
STANDARD_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _images(batch: int, side: int, seed: int = 0, high: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, side, side, generator=generator) * high


def _noisy(x: torch.Tensor, std: float, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=generator)).clamp(0, 1)


# PSNR


def test_psnr_of_constant_offset_is_20_db():
    x = _images(4, 16, high=0.9)
    assert torch.allclose(psnr(x + 0.1, x), torch.full((4,), 20.0), atol=1e-4)


def test_psnr_of_known_mse_per_image():
    x = torch.full((2, 3, 8, 8), 0.5)
    x_hat = x.clone()
    x_hat[0] += 0.01  # MSE 1e-4 -> 40 dB
    x_hat[1, :, :4] += 0.2  # half the pixels off by 0.2: MSE 0.02 -> 10 log10(50) dB
    expected = torch.tensor([40.0, 10 * math.log10(50)])
    assert torch.allclose(psnr(x_hat, x), expected, atol=1e-3)


def test_psnr_mean_is_mean_of_per_image_psnr_not_psnr_of_mean_mse():
    x = torch.full((2, 3, 8, 8), 0.5)
    x_hat = x + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)  # 20 dB and 40 dB
    assert psnr(x_hat, x, per_image=False).item() == pytest.approx(30.0, abs=1e-3)
    assert psnr(x_hat, x, per_image=False).shape == ()


def test_psnr_identical_images_is_inf():
    x = _images(2, 8)
    assert torch.isinf(psnr(x, x)).all()


def test_psnr_clamps_reconstruction_to_unit_range():
    x = torch.full((1, 3, 8, 8), 0.9)
    overshoot = torch.full((1, 3, 8, 8), 1.3)  # clamped to 1.0: MSE 0.01
    assert psnr(overshoot, x).item() == pytest.approx(20.0, abs=1e-4)


# SSIM / MS-SSIM


def test_ssim_of_identical_images_is_one():
    x = _images(3, 32)
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-6)


def test_ssim_of_constant_images_is_the_luminance_term():
    # Flat images have zero variance, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1).
    x = torch.full((1, 3, 16, 16), 0.5)
    x_hat = torch.full((1, 3, 16, 16), 0.6)
    expected = (2 * 0.5 * 0.6 + SSIM_C1) / (0.5**2 + 0.6**2 + SSIM_C1)
    assert ssim(x_hat, x).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("metric", [ssim, ms_ssim])
@pytest.mark.parametrize("side", [32, 256])
def test_more_noise_scores_lower(metric, side):
    x = _images(2, side)
    scores = [metric(_noisy(x, std), x) for std in (0.01, 0.05, 0.2)]
    assert (scores[0] > scores[1]).all() and (scores[1] > scores[2]).all()
    assert (scores[0] <= 1.0).all()


@pytest.mark.parametrize("side", [12, 32, 50, 120, 256])
def test_ms_ssim_of_identical_images_is_one(side):
    x = _images(2, side)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2), atol=1e-5)


def test_ms_ssim_on_256_is_the_standard_five_scale_ms_ssim():
    x = _images(2, 256)
    x_hat = _noisy(x, 0.1)
    standard = multiscale_structural_similarity_index_measure(x_hat, x, data_range=1.0, reduction="none")
    assert torch.allclose(ms_ssim(x_hat, x), standard, atol=1e-6)


def test_ms_ssim_on_32_is_two_scales_as_documented():
    # 2 scales: cs(scale 1)^b1 * ssim(scale 2)^b2 with the first two standard betas rescaled to sum to 1.
    x = _images(3, 32)
    x_hat = _noisy(x, 0.05)
    beta_fine, beta_coarse = STANDARD_BETAS[0] / 0.3304, STANDARD_BETAS[1] / 0.3304
    _, contrast_structure = structural_similarity_index_measure(
        x_hat, x, data_range=1.0, reduction="none", return_contrast_sensitivity=True
    )
    pooled = torch.nn.functional.avg_pool2d
    coarse_ssim = structural_similarity_index_measure(pooled(x_hat, 2), pooled(x, 2), data_range=1.0, reduction="none")
    expected = contrast_structure.clamp(min=0) ** beta_fine * coarse_ssim.clamp(min=0) ** beta_coarse
    assert torch.allclose(ms_ssim(x_hat, x), expected, atol=1e-5)


@pytest.mark.parametrize(("height", "width"), [(11, 11), (16, 21), (32, 32), (40, 57), (100, 120), (180, 200)])
def test_ssim_and_ms_ssim_equal_torchmetrics(height, width):
    # The separable filter must give torchmetrics' numbers (its 2-D window, reflect padding, scale rule).
    generator = torch.Generator().manual_seed(height * width)
    x = torch.rand(3, 3, height, width, generator=generator, dtype=torch.float64)
    x_hat = (x + 0.1 * torch.randn(x.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    reference = structural_similarity_index_measure(x_hat, x, data_range=1.0, reduction="none")
    assert torch.allclose(ssim(x_hat, x), reference, atol=1e-10)
    betas = ms_ssim_betas(height, width)
    reference = multiscale_structural_similarity_index_measure(x_hat, x, data_range=1.0, betas=betas, normalize="relu", reduction="none")
    assert torch.allclose(ms_ssim(x_hat, x), reference, atol=1e-10)


def test_image_quality_gives_the_three_metrics_of_one_by_one_calls():
    x = _images(4, 32)
    x_hat = _noisy(x, 0.05)
    together = image_quality(x_hat, x)
    assert set(together) == {"psnr", "ssim", "ms_ssim"}
    for name, metric in (("psnr", psnr), ("ssim", ssim), ("ms_ssim", ms_ssim)):
        assert torch.allclose(together[name], metric(x_hat, x), atol=1e-6)


def test_ms_ssim_on_small_images_is_ssim():
    x = _images(2, 16)
    x_hat = _noisy(x, 0.05)
    assert torch.allclose(ms_ssim(x_hat, x), ssim(x_hat, x), atol=1e-6)


@pytest.mark.parametrize(
    ("side", "scales"),
    [(11, 1), (21, 1), (22, 2), (32, 2), (43, 2), (44, 3), (98, 3), (99, 4), (175, 4), (176, 5), (512, 5)],
)
def test_ms_ssim_scale_count_by_smaller_side(side, scales):
    betas = ms_ssim_betas(side, 1000)
    assert len(betas) == scales
    assert ms_ssim_betas(1000, side) == betas
    if scales == 5:
        assert betas == STANDARD_BETAS
    else:
        assert sum(betas) == pytest.approx(1.0)
        assert betas == pytest.approx([beta / sum(STANDARD_BETAS[:scales]) for beta in STANDARD_BETAS[:scales]])


def test_ms_ssim_and_ssim_reject_images_smaller_than_the_window():
    x = _images(1, 10)
    for metric in (ssim, ms_ssim):
        with pytest.raises(ValueError, match="11"):
            metric(x, x)


def test_ms_ssim_works_on_rectangular_images():
    x = torch.rand(1, 3, 64, 200)
    assert ms_ssim(_noisy(x, 0.05), x).shape == (1,)


# input checks shared by the image metrics


@pytest.mark.parametrize("metric", [psnr, ssim, ms_ssim])
def test_shape_mismatch_names_both_shapes(metric):
    with pytest.raises(ValueError, match=r"\(2, 3, 32, 32\).*\(2, 3, 32, 16\)"):
        metric(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 16))


@pytest.mark.parametrize("metric", [psnr, ssim, ms_ssim])
def test_integer_images_raise_type_error(metric):
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(TypeError, match="uint8"):
        metric(x, x)


@pytest.mark.parametrize("metric", [psnr, ssim, ms_ssim])
def test_empty_batch_raises(metric):
    x = torch.rand(0, 3, 32, 32)
    with pytest.raises(ValueError, match="empty batch"):
        metric(x, x)


def test_non_4d_images_raise():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        psnr(torch.rand(3, 32, 32), torch.rand(3, 32, 32))


def test_reference_outside_unit_range_beyond_tolerance_raises():
    x = torch.full((1, 3, 8, 8), 0.5)
    within = x.clone()
    within[0, 0, 0, 0] = 1.0 + metrics.REFERENCE_TOLERANCE / 2
    psnr(x, within)
    beyond = x.clone()
    beyond[0, 0, 0, 0] = 1.01
    with pytest.raises(ValueError, match=r"x .*1\.01"):
        psnr(x, beyond)


@pytest.mark.parametrize("wrong_scale", [lambda x: x * 255.0, lambda x: x * 2.0 - 1.0], ids=["0-255", "-1-1"])
def test_reconstruction_on_the_wrong_scale_raises(wrong_scale):
    x = _images(1, 8)
    with pytest.raises(ValueError, match="x_hat"):
        psnr(wrong_scale(x), x)


def test_nan_reconstruction_raises():
    x = torch.full((1, 3, 8, 8), 0.5)
    x_hat = x.clone()
    x_hat[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        psnr(x_hat, x)


def test_half_precision_is_scored_in_float32():
    x = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float16)
    assert psnr(x + 0.125, x).dtype == torch.float32


# link metrics


def test_bit_error_rate_on_known_bits():
    bits = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.uint8)
    received = torch.tensor([[0, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.uint8)
    assert bit_error_rate(received, bits).item() == pytest.approx(3 / 8)
    assert bit_error_rate(received.bool(), bits.bool()).item() == pytest.approx(3 / 8)
    assert bit_error_rate(received.float(), bits.float()).item() == pytest.approx(3 / 8)
    assert bit_error_rate(bits, bits).item() == 0.0


def test_block_error_rate_counts_blocks_with_any_wrong_bit():
    bits = torch.zeros(2, 3, 4, dtype=torch.uint8)  # 6 blocks of 4 bits
    received = bits.clone()
    received[0, 0, 1] = 1
    received[0, 0, 3] = 1  # second error in the same block
    received[1, 2, 0] = 1
    assert block_error_rate(received, bits).item() == pytest.approx(2 / 6)
    assert bit_error_rate(received, bits).item() == pytest.approx(3 / 24)


def test_bit_metrics_reject_soft_values_and_mismatched_shapes():
    bits = torch.zeros(8)
    with pytest.raises(ValueError, match="other than 0 and 1"):
        bit_error_rate(torch.full((8,), 0.7), bits)
    with pytest.raises(ValueError, match=r"\(8,\).*\(4,\)"):
        block_error_rate(bits, torch.zeros(4))
    with pytest.raises(ValueError, match="no bits"):
        bit_error_rate(torch.zeros(0), torch.zeros(0))


def test_bit_errors_count_differing_bits_of_integer_payloads():
    sent = torch.tensor([[0, 15, 7], [8, 1, 3]])
    received = torch.tensor([[1, 15, 0], [0, 1, 12]])  # 0^1: 1 bit, 7^0: 3 bits, 8^0: 1 bit, 3^12: 4 bits
    assert metrics.bit_errors(sent, received, 4) == (9, 24)
    assert metrics.bit_errors(sent, sent, 4) == (0, 24)
    assert metrics.bit_errors(sent.to(torch.uint8), received.to(torch.uint8), 8) == (9, 48), "leading zero bits never differ"
    values = torch.randint(0, 256, (3, 50), generator=torch.Generator().manual_seed(0))
    flipped = values ^ torch.randint(0, 256, (3, 50), generator=torch.Generator().manual_seed(1))
    from digisem.link import int_to_bits

    reference = int((int_to_bits(values, 8) != int_to_bits(flipped, 8)).sum())
    assert metrics.bit_errors(values, flipped, 8) == (reference, 3 * 50 * 8)


def test_bit_errors_refuse_floats_shapes_and_widths():
    with pytest.raises(ValueError, match="integer tensors of one shape"):
        metrics.bit_errors(torch.zeros(2, 3), torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match="integer tensors of one shape"):
        metrics.bit_errors(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="num_bits must be >= 1"):
        metrics.bit_errors(torch.zeros(2, dtype=torch.int64), torch.zeros(2, dtype=torch.int64), 0)


# task metrics


def test_accuracy_on_known_logits():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2, 2, 1])
    assert accuracy(logits, labels).item() == pytest.approx(0.5)


def test_accuracy_errors():
    with pytest.raises(TypeError, match="integer"):
        accuracy(torch.rand(4, 3), torch.rand(4))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        accuracy(torch.rand(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5,\)"):
        accuracy(torch.rand(4, 3), torch.zeros(5, dtype=torch.int64))


def test_recall_at_k_on_hand_built_embeddings():
    # Directions in the plane (angles in degrees); cosine similarity ranks neighbours by angle gap.
    angles = torch.tensor([0.0, 10.0, 25.0, 90.0, 100.0, 180.0])
    labels = torch.tensor([0, 0, 1, 1, 2, 0])
    radians = torch.deg2rad(angles)
    scales = torch.tensor([1.0, 3.0, 0.5, 2.0, 1.0, 7.0])  # lengths must not matter
    embeddings = torch.stack([radians.cos(), radians.sin()], dim=1) * scales[:, None]
    # nearest (self excluded): 0->10 hit, 10->0 hit, 25->10 miss, 90->100 miss, 100->90 miss, 180->100 miss
    assert recall_at_k(embeddings, labels, k=1).item() == pytest.approx(2 / 6)
    # two nearest: 0:{10,25} hit, 10:{0,25} hit, 25:{10,0} miss, 90:{100,25} hit, 100:{90,25} miss,
    # 180:{100,90} miss
    assert recall_at_k(embeddings, labels, k=2).item() == pytest.approx(3 / 6)


def test_recall_excludes_self():
    embeddings = torch.eye(4)
    assert recall_at_k(embeddings, torch.arange(4), k=1).item() == 0.0


def test_recall_over_many_queries_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(1300, 8, generator=generator)
    labels = torch.randint(0, 20, (1300,), generator=generator)
    unit = embeddings / embeddings.norm(dim=1, keepdim=True)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float("inf"))
    nearest = similarity.topk(3, dim=1).indices
    expected = (labels[nearest] == labels[:, None]).any(dim=1).float().mean()
    assert recall_at_k(embeddings, labels, k=3).item() == pytest.approx(expected.item())


def test_recall_rejects_k_too_large():
    with pytest.raises(ValueError, match="k=4 for N=4"):
        recall_at_k(torch.rand(4, 2), torch.arange(4), k=4)
