"""Analyses of the robust semantic communication paper (digisem.analyses) against hand-made truths."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from digisem.analyses import (
    accuracy_vs_epsilon,
    accuracy_vs_keep_ratio,
    codebook_similarity,
    embeddings,
    feature_activation_frequency,
    interfered_eigenmodes,
    jpeg_link_classification,
    noise_masking_weights,
    with_keep_ratio,
)
from digisem.link import MIMO, from_spec
from digisem.metrics import recall_at_k
from digisem.systems.vqvae import MaskedVQVAE, MaskedVQVAEConfig, keep_patches

TINY = {"image_size": 16, "patch": 4, "width": 16, "depth": 1, "heads": 2, "decoder_width": 8, "decoder_depth": 1, "code_dim": 8, "codebook_size": 16, "classes": 4}


def tiny_model(**overrides) -> MaskedVQVAE:
    torch.manual_seed(0)
    return MaskedVQVAE(MaskedVQVAEConfig(**{**TINY, **overrides})).eval()


def tiny_images(count: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def recall_at_1(features: torch.Tensor, labels: torch.Tensor) -> float:
    return float(recall_at_k(features, labels, 1))


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


# --- recall@1 (digisem.metrics.recall_at_k) on hand-made features, then on analyses.embeddings --------------------------------------------------------------------------


def test_recall_at_1_of_two_tight_clusters_is_one():
    generator = torch.Generator().manual_seed(0)
    cluster_a = torch.tensor([1.0, 0.0, 0.0]) + 0.01 * torch.randn(5, 3, generator=generator)
    cluster_b = torch.tensor([0.0, 1.0, 0.0]) + 0.01 * torch.randn(5, 3, generator=generator)
    features = torch.cat([cluster_a, cluster_b])
    labels = torch.tensor([0] * 5 + [1] * 5)
    assert recall_at_1(features, labels) == 1.0


def test_recall_at_1_of_a_constructed_half_case():
    # a and b are each other's nearest neighbours but differ in label; c and d match
    features = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0]])
    labels = torch.tensor([0, 1, 2, 2])
    assert recall_at_1(features, labels) == pytest.approx(0.5)
    # cosine similarity: rescaling any item changes nothing
    scaled = features * torch.tensor([[10.0], [0.1], [3.0], [7.0]])
    assert recall_at_1(scaled, labels) == pytest.approx(0.5)


def test_recall_at_1_never_retrieves_the_item_itself():
    # every item differs in label from all others: an item matching itself would score > 0
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert recall_at_1(features, torch.tensor([0, 1, 2])) == 0.0


def test_recall_at_1_rejects_mismatched_sizes():
    with pytest.raises(ValueError):
        recall_at_1(torch.randn(4, 3), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError):
        recall_at_1(torch.randn(1, 3), torch.tensor([0]))


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
    assert out["payload"].shape == (2, expected)
    assert out["received"].shape == (2, expected)
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


# --- channel symbols per image (Table I, measured): channel_uses_per_image vs the hand count -------


class SymbolCounter(nn.Module):
    """Wraps a link's channel and records the complex symbols per example each call puts on it."""

    def __init__(self, channel: nn.Module):
        super().__init__()
        self.channel = channel
        self.counts: list[int] = []

    @property
    def symbols_multiple(self) -> int:
        return getattr(self.channel, "symbols_multiple", 1)

    def forward(self, x, snr_db, generator=None):
        self.counts.append(x.shape[1])
        return self.channel(x, snr_db, generator)


def symbols_sent(model, images, spec) -> tuple[int, list[int], dict]:
    """``(channel_uses_per_image, symbols measured at the channel's input per call, output)``."""
    link = from_spec(spec)
    counter = SymbolCounter(link.channel)
    link.channel = counter
    with torch.no_grad():
        out = model(images, link=link, snr_db=10.0, generator=torch.Generator().manual_seed(0))
    return out["channel_uses_per_image"], counter.counts, out


@pytest.mark.parametrize("ldpc_k,mask_ratio", [(12, 0.5), (20, 0.5), (24, 0.25), (40, 0.5)])
def test_symbols_sent_over_a_coded_mimo_link_matches_the_hand_count(ldpc_k, mask_ratio):
    model = tiny_model(mask_ratio=mask_ratio)
    spec = {"modulation": "16qam", "channel": "mimo-8x4-svd", "code": "ldpc-1/2", "ldpc_k": ldpc_k}
    kept = round(16 * (1 - mask_ratio))
    bits = kept * 4  # codebook 16: 4 bits per index
    codewords = math.ceil(bits / ldpc_k)
    coded = codewords * 2 * ldpc_k
    symbols = coded / 4  # 16-QAM
    streams = 4  # 8x4 eigenmodes: min(8, 4) streams per channel use
    expected = math.ceil(symbols / streams) * streams
    uses, measured, out = symbols_sent(model, tiny_images(2), spec)
    assert uses == expected
    assert measured == [expected], "one pass over the channel, carrying exactly that many symbols"
    assert out["bits_per_image"] == bits
    assert from_spec(spec).channel_uses(bits) == expected


@pytest.mark.parametrize("codebook_size,mask_ratio", [(16, 0.5), (16, 0.5625), (8, 0.5625), (8, 0.25)])
def test_symbols_sent_over_an_uncoded_mimo_link_matches_the_hand_count(codebook_size, mask_ratio):
    model = tiny_model(codebook_size=codebook_size, mask_ratio=mask_ratio)
    spec = {"modulation": "16qam", "channel": "mimo-8x4-svd", "code": None}
    kept = round(16 * (1 - mask_ratio))
    bits_per_index = math.ceil(math.log2(codebook_size))
    expected = math.ceil(math.ceil(kept * bits_per_index / 4) / 4) * 4
    uses, measured, out = symbols_sent(model, tiny_images(2), spec)
    assert uses == expected and measured == [expected]
    assert out["bits_per_image"] == kept * bits_per_index


def test_symbols_sent_over_awgn_is_bits_over_bits_per_symbol():
    model = tiny_model()
    uses, measured, out = symbols_sent(model, tiny_images(1), {"modulation": "16qam", "channel": "awgn", "code": None})
    assert uses == 8 and measured == [8]  # 8 kept x 4 bits / 4 bits per symbol
    assert out["payload"].shape == out["received"].shape == (1, 8)


@pytest.mark.parametrize("spec,expected", [
    ("16qam-awgn-ldpc-1/2", 256),  # 256 bits -> one k=512 codeword of 1024 bits -> 256 16-QAM symbols
    ({"modulation": "16qam", "channel": "awgn", "code": "ldpc-1/2", "ldpc_k": 256}, 128),  # one codeword of 512 bits
    ("16qam-mimo-8x4-svd-ldpc-1/2", 256),  # already a multiple of 4 streams
    ("16qam-awgn", 64),  # uncoded: 256 / 4
])
def test_symbols_sent_by_a_256_word_codebook_with_32_kept_patches(spec, expected):
    model = tiny_model(image_size=32, codebook_size=256, mask_ratio=0.5)  # 64 patches, 32 kept, 8 bits each
    uses, measured, out = symbols_sent(model, torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)), spec)
    assert out["bits_per_image"] == 32 * 8 == 256
    assert uses == expected and measured == [expected]


def test_symbols_per_image_without_a_link_are_not_counted():
    with torch.no_grad():
        out = tiny_model()(tiny_images(1), generator=torch.Generator().manual_seed(0))
    assert out["channel_uses_per_image"] is None and out["bits_per_image"] == 8 * 4
    assert torch.equal(out["received"], out["payload"])


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
    link = from_spec({"modulation": "16qam", "channel": "awgn", "code": "ldpc-1/2"})
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
    link = "16qam-awgn-ldpc-1/2"  # a spec is built by the function

    def to_next_colour(loss_fn, images, generator=None):
        # an "attack" that repaints every image in the next class's colour: always fools the classifier
        labels = colour_classifier(images).argmax(1)
        return COLOURS[(labels + 1) % 4][:, :, None, None].expand_as(images).clone()

    results = jpeg_link_classification(colour_classifier, colour_dataset(), [30.0], link, 2048, attack=to_next_colour, batch_size=8)
    assert results["accuracy"] == [1.0] and results["accuracy_attacked"] == [0.0]
    assert results["failed_accuracy_attacked"] == [0.0]


# --- feature_activation_frequency against a hand-run encoder ----------------------------------------


def hand_encoder_tokens(model: MaskedVQVAE, images: torch.Tensor, snr_db: float, seed: int) -> torch.Tensor:
    """The tokens leaving the last encoder block (after its FIM), rebuilt from the model's parts:
    the call's generator first draws which patches are kept."""
    config = model.config
    kept = keep_patches(images.shape[0], config.patches, config.mask_ratio, None, torch.Generator().manual_seed(seed))
    tokens = model.encoder.embed(model.patchify(images)) + model.encoder.position
    tokens = torch.gather(tokens, 1, kept[:, :, None].expand(-1, -1, config.width))
    for index, block in enumerate(model.encoder.blocks):
        tokens = block(tokens)
        if str(index) in model.fims:
            tokens = model.fims[str(index)](tokens, snr_db)["features"]
    return tokens


@pytest.mark.parametrize("threshold", [0.0, 0.05, -0.05])
def test_feature_activation_frequency_counts_the_last_encoder_layers_activations(threshold):
    model = tiny_model(depth=2, fim_layers=(1,))
    images = tiny_images(3)
    with torch.no_grad():
        tokens = hand_encoder_tokens(model, images, 5.0, seed=3)
    expected = (tokens > threshold).float().mean((0, 1))
    assert torch.allclose(feature_activation_frequency(model, images, snr_db=5.0, threshold=threshold, seed=3), expected)


def test_feature_activation_frequency_sees_the_features_a_fim_masks_as_never_active():
    model = tiny_model(depth=2, fim_layers=(1,), fim_threshold=1.0)  # importance below uniform: masked
    kept = model.fims["1"](torch.zeros(1, 1, 16), 0.0)["kept"]
    assert 0 < int(kept.sum()) < 16, "the FIM masks some features and keeps others"
    # a masked feature is zeroed on every token: never above 0, always above -1e-12
    above_zero = feature_activation_frequency(model, tiny_images(3), snr_db=5.0, threshold=0.0)
    above_minus = feature_activation_frequency(model, tiny_images(3), snr_db=5.0, threshold=-1e-12)
    masked = int((~kept).sum())
    assert torch.equal(above_zero[~kept], torch.zeros(masked)) and torch.equal(above_minus[~kept], torch.ones(masked))
    assert torch.equal(above_zero[kept], above_minus[kept]), "a kept feature is not zeroed"


# --- accuracy_vs_epsilon / accuracy_vs_keep_ratio against hand-counted accuracies -------------------


def classifier_and_dataset():
    """A tiny full-patch classifier and 8 images labelled so that it is right on exactly the first 5."""
    model = tiny_model(mask_ratio=0.0)
    images = tiny_images(8, seed=4)
    with torch.no_grad():
        predicted = model(images)["logits"].argmax(1)
    labels = torch.where(torch.arange(8) < 5, predicted, (predicted + 1) % 4)
    return model, TensorDataset(images, labels)


def hand_accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return float((model(images)["logits"].argmax(1) == labels).float().mean())


@pytest.mark.parametrize("link", [None, "16qam-awgn", {"modulation": "16qam", "channel": "mimo-8x4-svd", "code": None}])
def test_accuracy_vs_epsilon_matches_the_hand_count_clean_and_attacked(link):
    model, dataset = classifier_and_dataset()
    labels = dataset.tensors[1]
    replacement = tiny_images(8, seed=5)
    seen = []

    def replace(loss_fn, batch, generator=None):
        # an "attack" that sends other images; it is given a loss over the batch it attacks
        seen.append(tuple(loss_fn(batch).shape))
        return replacement[: batch.shape[0]].clone()

    result = accuracy_vs_epsilon(model, dataset, link, 40.0, [0.0, 0.5], lambda epsilon: None if epsilon == 0 else replace, batch_size=8)
    assert result["epsilon"] == [0.0, 0.5]
    assert result["accuracy"][0] == pytest.approx(5 / 8)  # 40 dB: the indices arrive intact
    assert result["accuracy"][1] == pytest.approx(hand_accuracy(model, replacement, labels))
    assert seen == [(8,)]


def test_accuracy_vs_keep_ratio_keeps_the_weights_and_the_original():
    model, dataset = classifier_and_dataset()
    result = accuracy_vs_keep_ratio(model, dataset, None, 3.0, [1.0, 0.5], [0.0], lambda epsilon: None, batch_size=3)
    assert result["keep_ratio"] == [1.0, 0.5]
    assert list(result["accuracy"]) == ["0.0"]
    full, half = result["accuracy"]["0.0"]
    assert full == pytest.approx(5 / 8), "every patch kept: the model as it is"
    assert half * 8 == pytest.approx(round(half * 8))
    assert model.config.mask_ratio == 0.0


# --- interfered_eigenmodes: the attacker's [B, Nr, T] hook on MIMO's interference ------------------


def test_interfered_eigenmodes_adds_the_interferer_at_the_receive_antennas():
    batch, uses = 2, 3
    x = torch.randn(batch, 4 * uses, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    offset = torch.randn(batch, 4, uses, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))  # [B, Nr, T]
    calls = []

    def interferer(count, generator):
        calls.append((count, generator.initial_seed()))
        return offset

    channel = interfered_eigenmodes(8, 4, interferer, seed=7)
    assert isinstance(channel, MIMO) and channel.detector == "svd" and channel.block
    assert (channel.num_tx, channel.num_rx, channel.symbols_multiple) == (8, 4, 4)
    clean_channel = interfered_eigenmodes(8, 4, None, seed=7)
    assert clean_channel.interference is None
    attacked = channel(x, 80.0, torch.Generator().manual_seed(2)).symbols
    clean = clean_channel(x, 80.0, torch.Generator().manual_seed(2)).symbols
    assert calls == [(batch, 7)]
    assert torch.allclose(clean, x, atol=1e-3), "interference-free eigenmodes at 80 dB deliver the symbols"
    # the receiver projects each use's antenna vector d_t on U^H and divides by s (H drawn first)
    h = torch.randn(batch, 1, 4, 8, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
    u, s, _ = torch.linalg.svd(h, full_matrices=False)
    expected = torch.einsum("bnk,bnt->btk", u[:, 0].conj(), offset) / s[:, 0, None, :]
    assert torch.allclose(attacked - clean, expected.reshape(batch, -1), atol=1e-3)


# --- embeddings, scored by recall@1 -----------------------------------------------------------------


def duplicated_colours(labels: list[int]) -> TensorDataset:
    images = COLOURS[:, :, None, None].expand(-1, -1, 16, 16)
    return TensorDataset(torch.cat([images, images]).clone(), torch.tensor(labels))


def test_embeddings_are_the_heads_input_and_keep_the_dataset_order():
    model = tiny_model(mask_ratio=0.0)
    dataset = duplicated_colours([0, 1, 2, 3, 0, 1, 2, 3])
    features, labels = embeddings(model, dataset, batch_size=3)
    assert features.shape == (8, 8) and torch.equal(labels, dataset.tensors[1])
    with torch.no_grad():
        logits = model(dataset.tensors[0])["logits"]
        assert torch.allclose(model.head(features), logits, atol=1e-6)
    assert torch.allclose(features[:4], features[4:]), "an image gives the same embedding wherever it sits"
    over_link, _ = embeddings(model, dataset, snr_db=40.0, link="16qam-awgn", batch_size=3)
    assert torch.allclose(over_link, features, atol=1e-6), "at 40 dB the indices arrive intact"


def test_recall_at_1_on_embeddings_finds_each_images_twin():
    model = tiny_model(mask_ratio=0.0)
    same, _ = embeddings(model, duplicated_colours([0, 1, 2, 3, 0, 1, 2, 3]), batch_size=3)
    assert recall_at_1(same, torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])) == 1.0
    # each twin now carries another label: its nearest neighbour (itself, sent again) is a miss
    shifted, labels = embeddings(model, duplicated_colours([0, 1, 2, 3, 1, 2, 3, 0]), batch_size=3)
    assert recall_at_1(shifted, labels) == 0.0
