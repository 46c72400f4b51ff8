"""Analyses of the robust semantic communication paper (digisem.analyses) against hand-made truths."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from digisem.analyses import (
    codebook_similarity,
    feature_activation_frequency,
    jpeg_link_classification,
    noise_masking_weights,
    retrieval_recall_at_1,
    symbols_sent,
    with_keep_ratio,
)
from digisem.systems.vqvae import MaskedVQVAE, MaskedVQVAEConfig
from digisem.train.robust import make_link

TINY = {"image_size": 16, "patch": 4, "width": 16, "depth": 1, "heads": 2, "decoder_width": 8, "decoder_depth": 1, "code_dim": 8, "codebook_size": 16, "classes": 4}


def tiny_model(**overrides) -> MaskedVQVAE:
    torch.manual_seed(0)
    return MaskedVQVAE(MaskedVQVAEConfig(**{**TINY, **overrides})).eval()


def tiny_images(count: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


# --- codebook_similarity ----------------------------------------------------------------------------


def test_codebook_similarity_of_orthogonal_rows_is_the_identity():
    codebook = torch.tensor([[2.0, 0.0, 0.0], [0.0, -3.0, 0.0], [0.0, 0.0, 0.5]])
    assert torch.allclose(codebook_similarity(codebook), torch.eye(3), atol=1e-6)


def test_codebook_similarity_closed_forms():
    codebook = torch.tensor([[1.0, 0.0], [-4.0, 0.0], [1.0, 1.0]])
    similarity = codebook_similarity(codebook)
    assert similarity.shape == (3, 3)
    assert similarity[0, 1].item() == pytest.approx(-1.0)  # a row and (a multiple of) its negative
    assert similarity[0, 2].item() == pytest.approx(1 / math.sqrt(2))  # 45 degrees
    assert similarity[1, 2].item() == pytest.approx(-1 / math.sqrt(2))  # 135 degrees
    assert torch.allclose(similarity, similarity.T)
    assert torch.allclose(similarity.diagonal(), torch.ones(3))


def test_codebook_similarity_does_not_track_gradients():
    codebook = nn.Parameter(torch.randn(4, 3))
    assert not codebook_similarity(codebook).requires_grad


# --- retrieval_recall_at_1 --------------------------------------------------------------------------


def test_recall_at_1_of_two_tight_clusters_is_one():
    generator = torch.Generator().manual_seed(0)
    cluster_a = torch.tensor([1.0, 0.0, 0.0]) + 0.01 * torch.randn(5, 3, generator=generator)
    cluster_b = torch.tensor([0.0, 1.0, 0.0]) + 0.01 * torch.randn(5, 3, generator=generator)
    features = torch.cat([cluster_a, cluster_b])
    labels = torch.tensor([0] * 5 + [1] * 5)
    assert retrieval_recall_at_1(features, labels) == 1.0


def test_recall_at_1_of_a_constructed_half_case():
    # a and b are each other's nearest neighbours but differ in label; c and d match
    features = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0]])
    labels = torch.tensor([0, 1, 2, 2])
    assert retrieval_recall_at_1(features, labels) == pytest.approx(0.5)
    # cosine similarity: rescaling any item changes nothing
    scaled = features * torch.tensor([[10.0], [0.1], [3.0], [7.0]])
    assert retrieval_recall_at_1(scaled, labels) == pytest.approx(0.5)


def test_recall_at_1_never_retrieves_the_item_itself():
    # every item differs in label from all others: an item matching itself would score > 0
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert retrieval_recall_at_1(features, torch.tensor([0, 1, 2])) == 0.0


def test_recall_at_1_rejects_mismatched_sizes():
    with pytest.raises(ValueError):
        retrieval_recall_at_1(torch.randn(4, 3), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError):
        retrieval_recall_at_1(torch.randn(1, 3), torch.tensor([0]))


# --- with_keep_ratio --------------------------------------------------------------------------------


def test_with_keep_ratio_shares_weights_and_leaves_the_original_alone():
    model = tiny_model(mask_ratio=0.5)
    original_config = model.config
    variant = with_keep_ratio(model, 0.25)
    original_parameters = list(model.parameters())
    variant_parameters = list(variant.parameters())
    assert len(variant_parameters) == len(original_parameters) > 0
    assert all(a is b for a, b in zip(variant_parameters, original_parameters))
    assert model.config is original_config and model.config.mask_ratio == 0.5
    assert variant.config.mask_ratio == pytest.approx(0.75)
    # a change to the original's weights is seen by the variant (shared, not copied)
    with torch.no_grad():
        model.head[-1].bias.add_(1.0)
    assert torch.equal(variant.head[-1].bias, model.head[-1].bias)


@pytest.mark.parametrize("keep_ratio", [0.0, -0.1, 1.01, 2.0])
def test_with_keep_ratio_rejects_ratios_outside_0_1(keep_ratio):
    with pytest.raises(ValueError, match="keep_ratio"):
        with_keep_ratio(tiny_model(), keep_ratio)


@pytest.mark.parametrize("keep_ratio", [1.0, 0.75, 0.3, 0.25, 0.1])
def test_with_keep_ratio_variant_sends_round_n_keep_patches(keep_ratio):
    model = tiny_model(mask_ratio=0.5)
    patches = (16 // 4) ** 2
    variant = with_keep_ratio(model, keep_ratio)
    with torch.no_grad():
        out = variant(tiny_images(), generator=torch.Generator().manual_seed(0))
        original_out = model(tiny_images(), generator=torch.Generator().manual_seed(0))
    expected = max(1, round(patches * keep_ratio))
    assert out["kept"].shape == (2, expected)
    assert out["indices"].shape == (2, expected)
    assert original_out["kept"].shape == (2, patches // 2), "the original still keeps half"


# --- noise_masking_weights --------------------------------------------------------------------------


def test_noise_masking_weights_of_a_perturbation_in_one_patch():
    model = tiny_model()
    images = tiny_images(2)
    perturbed = images.clone()
    # patch row 1, column 2 of the 4 x 4 grid (row-major index 6), only in the first image
    perturbed[0, :, 4:8, 8:12] += 0.1
    weights = noise_masking_weights(model, images, perturbed)
    assert weights.shape == (16,)
    assert int(weights.argmax()) == 6
    nonzero = torch.nonzero(weights > 1e-6).flatten().tolist()
    assert nonzero == [6]
    # mean |perturbation| over the batch (0.1 and 0) and the patch's pixels
    assert weights[6].item() == pytest.approx(0.05, abs=1e-5)


def test_noise_masking_weights_rejects_a_shape_mismatch():
    model = tiny_model()
    with pytest.raises(ValueError, match="same shape"):
        noise_masking_weights(model, tiny_images(2), tiny_images(3))


# --- feature_activation_frequency -------------------------------------------------------------------


def test_feature_activation_frequency_is_a_frequency_per_feature():
    model = tiny_model(depth=2, fim_layers=(1,))
    images = tiny_images(3)
    frequency = feature_activation_frequency(model, images, snr_db=5.0)
    assert frequency.shape == (16,)
    assert bool(((frequency >= 0) & (frequency <= 1)).all())
    # a count over 3 images x 8 kept tokens: multiples of 1/24
    assert torch.allclose(frequency * 24, (frequency * 24).round(), atol=1e-4)
    assert torch.equal(feature_activation_frequency(model, images, threshold=-float("inf")), torch.ones(16))
    assert torch.equal(feature_activation_frequency(model, images, threshold=float("inf")), torch.zeros(16))


# --- symbols_sent -----------------------------------------------------------------------------------


def _send(model, images):
    return lambda link: model(images, snr_db=10.0, link=link, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("ldpc_k,mask_ratio", [(12, 0.5), (20, 0.5), (24, 0.25), (40, 0.5)])
def test_symbols_sent_over_a_coded_mimo_link_matches_the_hand_count(ldpc_k, mask_ratio):
    model = tiny_model(mask_ratio=mask_ratio)
    link = make_link({"modulation": "16qam", "channel": "mimo-8x4-svd", "code": "ldpc-1/2", "ldpc_k": ldpc_k})
    kept = round(16 * (1 - mask_ratio))
    bits = kept * 4  # codebook 16: 4 bits per index
    codewords = math.ceil(bits / ldpc_k)
    coded = codewords * 2 * ldpc_k
    symbols = coded / 4  # 16-QAM
    streams = 4  # 8x4 eigenmodes: min(8, 4) streams per channel use
    expected = math.ceil(symbols / streams) * streams
    with torch.no_grad():
        assert symbols_sent(_send(model, tiny_images(2)), link) == expected


@pytest.mark.parametrize("codebook_size,mask_ratio", [(16, 0.5), (16, 0.5625), (8, 0.5625), (8, 0.25)])
def test_symbols_sent_over_an_uncoded_mimo_link_matches_the_hand_count(codebook_size, mask_ratio):
    model = tiny_model(codebook_size=codebook_size, mask_ratio=mask_ratio)
    link = make_link({"modulation": "16qam", "channel": "mimo-8x4-svd", "code": None})
    kept = round(16 * (1 - mask_ratio))
    bits_per_index = math.ceil(math.log2(codebook_size))
    expected = math.ceil(math.ceil(kept * bits_per_index / 4) / 4) * 4
    with torch.no_grad():
        assert symbols_sent(_send(model, tiny_images(2)), link) == expected


def test_symbols_sent_restores_the_links_channel():
    model = tiny_model()
    link = make_link({"modulation": "16qam", "channel": "awgn", "code": None})
    channel = link.channel
    with torch.no_grad():
        assert symbols_sent(_send(model, tiny_images(1)), link) == 8  # 8 kept x 4 bits / 4 bits per symbol
    assert link.channel is channel

    def failing(link):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        symbols_sent(failing, link)
    assert link.channel is channel


# --- jpeg_link_classification -----------------------------------------------------------------------

COLOURS = torch.tensor([[0.85, 0.15, 0.15], [0.15, 0.85, 0.15], [0.15, 0.15, 0.85], [0.5, 0.5, 0.5]])


def colour_dataset() -> TensorDataset:
    labels = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    images = COLOURS[labels][:, :, None, None].expand(-1, -1, 16, 16).clone()
    return TensorDataset(images, labels)


def colour_classifier(images: torch.Tensor) -> torch.Tensor:
    means = images.mean((2, 3))
    return -100 * (means[:, None, :] - COLOURS[None]).pow(2).sum(-1)


def test_colour_classifier_is_perfect_on_clean_images():
    images, labels = colour_dataset().tensors
    assert torch.equal(colour_classifier(images).argmax(1), labels)


def test_jpeg_link_classification_is_perfect_at_high_snr_and_breaks_at_low_snr():
    link = make_link({"modulation": "16qam", "channel": "awgn", "code": "ldpc-1/2"})
    budget = 2048
    results = jpeg_link_classification(colour_classifier, colour_dataset(), [30.0, -10.0], link, budget, batch_size=4)
    assert results["snr_db"] == [30.0, -10.0]
    assert results["accuracy"][0] == 1.0
    assert results["failed_accuracy"][0] == 0.0
    assert results["failed_accuracy"][1] > 0 or results["accuracy"][1] < 1
    assert 0 < results["payload_bits"] <= budget
    assert 1 <= results["quality"] <= 95
    assert "accuracy_attacked" not in results


def test_jpeg_link_classification_with_an_attack_adds_attacked_curves():
    link = make_link({"modulation": "16qam", "channel": "awgn", "code": "ldpc-1/2"})

    def to_next_colour(loss_fn, images, generator=None):
        # an "attack" that repaints every image in the next class's colour: always fools the classifier
        labels = colour_classifier(images).argmax(1)
        return COLOURS[(labels + 1) % 4][:, :, None, None].expand_as(images).clone()

    results = jpeg_link_classification(colour_classifier, colour_dataset(), [30.0], link, 2048, attack=to_next_colour, batch_size=8)
    assert results["accuracy"] == [1.0] and results["accuracy_attacked"] == [0.0]
    assert results["failed_accuracy_attacked"] == [0.0]
