"""Masked VQ-VAE (patches, masking, codebook over a link), FIM (eqs. 13-16), similarity terms (eq. 17) and Table I."""

import pytest
import torch

from digisem.systems.vqvae import (
    ConvStem,
    FeatureImportanceModule,
    MaskedVQVAE,
    MaskedVQVAEConfig,
    jpeg_ldpc_symbols,
    keep_patches,
    masked_vqvae_symbols,
    redundant_features,
    similarity_loss,
)


def test_fim_pools_reweights_and_reads_importance_from_its_weights(generator):
    fim = FeatureImportanceModule(features=5, classes=3)
    with torch.no_grad():
        fim.auxiliary.weight.copy_(torch.randn(3, 6, generator=generator))
        fim.auxiliary.bias.zero_()
    feature_map = torch.randn(2, 7, 5, generator=generator)
    out = fim(feature_map, snr_db=torch.tensor([3.0, 10.0]))
    column_means = fim.auxiliary.weight[:, 1:].abs().mean(0)  # eq. 14 on |W|, the SNR column excluded
    expected_importance = torch.exp(column_means) / torch.exp(column_means).sum()
    assert torch.allclose(out["importance"], expected_importance)
    assert torch.allclose(out["features"], feature_map * expected_importance)  # f~_n = w^_n f_n
    pooled = torch.cat([torch.tensor([[0.3], [1.0]]), feature_map.mean(1)], dim=1)  # [mu, GAP] (eq. 13)
    assert torch.allclose(out["logits"], torch.relu(pooled) @ fim.auxiliary.weight.T)
    assert bool(out["kept"].all())
    assert not torch.allclose(fim(feature_map, 0.0)["logits"], fim(feature_map, 20.0)["logits"]), "the SNR is an input"


def test_fim_threshold_masks_unimportant_features_and_trains_through_both_paths(generator):
    fim = FeatureImportanceModule(features=4, classes=2, threshold=1.0)
    with torch.no_grad():
        fim.auxiliary.weight.copy_(torch.tensor([[0.0, 2.0, -2.0, 0.5, 0.0], [0.0, 2.0, 2.0, -0.5, 0.0]]))
    feature_map = torch.randn(3, 6, 4, generator=generator)
    out = fim(feature_map, 5.0)
    # importances softmax(mean |W| = [2, 2, 0.5, 0]): features 3 and 4 fall below the uniform 1/4
    assert out["kept"].tolist() == [True, True, False, False]
    assert torch.equal(out["features"][..., 2:], torch.zeros(3, 6, 2))
    loss = torch.nn.functional.cross_entropy(out["logits"], torch.tensor([0, 1, 0])) + out["features"].pow(2).sum()
    loss.backward()
    assert fim.auxiliary.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"feature map \[B, M, 4\]"):
        fim(torch.randn(2, 4), 0.0)


def test_similarity_loss_and_redundant_features():
    identical = torch.ones(1, 3, 4)
    orthogonal = torch.eye(3, 4)[None]
    assert float(similarity_loss(identical)) == pytest.approx(-9.0)  # all 9 cosines are 1
    assert float(similarity_loss(orthogonal)) == pytest.approx(-3.0)  # only the diagonal
    features = torch.tensor([[[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.05, 1.0]]])
    assert redundant_features(features, 0.95).tolist() == [[False, True, False, True]]
    assert redundant_features(features, 0.9999).tolist() == [[False, False, False, False]]
    with pytest.raises(ValueError, match="delta"):
        redundant_features(features, 2.0)


def test_table_one_symbol_counts_match_the_paper():
    assert jpeg_ldpc_symbols(224, 224, 3, 8, 0.5, 11.2, 4) == pytest.approx(53760)
    assert masked_vqvae_symbols(224, 224, 8, 0.5, 16, 4) == pytest.approx(196)
    assert masked_vqvae_symbols(224, 224, 8, 0.5, 16, 4, code_rate=0.5) == pytest.approx(392)
    assert masked_vqvae_symbols(224, 224, 8, 0.5, 16, 4) / jpeg_ldpc_symbols(224, 224, 3, 8, 0.5, 11.2, 4) == pytest.approx(0.0036, abs=1e-4)


def test_keep_patches_uniform_and_noise_related(generator):
    kept = keep_patches(4, 64, 0.5, generator=generator)
    assert kept.shape == (4, 32) and all(len(set(row.tolist())) == 32 for row in kept)
    assert bool((kept[:, 1:] > kept[:, :-1]).all()), "sorted, without repeats"
    weights = torch.zeros(64)
    weights[:16] = 10.0  # semantic noise concentrates on the first 16 patches
    counts = torch.zeros(64)
    for _ in range(50):
        counts += torch.bincount(keep_patches(8, 64, 0.5, weights, generator).flatten(), minlength=64)
    assert counts[:16].mean() < 0.3 * counts[16:].mean(), "noisy patches must be masked more often"
    with pytest.raises(ValueError, match="mask_ratio"):
        keep_patches(1, 16, 1.0)


def test_masked_vqvae_shapes_bits_and_link(generator):
    from digisem.link import BitLink, BSCLink

    torch.manual_seed(0)
    config = MaskedVQVAEConfig(width=16, depth=2, heads=2, decoder_width=8, decoder_depth=1, code_dim=8, codebook_size=16, fim_layers=(1,))
    model = MaskedVQVAE(config)
    x = torch.rand(3, 3, 32, 32, generator=generator)
    out = model(x, snr_db=3.0, generator=generator)
    assert out["logits"].shape == (3, 10) and out["kept"].shape == (3, 32) and out["payload"].shape == (3, 32)
    assert out["payload"].dtype == torch.int64 and int(out["payload"].min()) >= 0 and int(out["payload"].max()) < 16
    assert torch.equal(out["payload"], out["received"]) and len(out["fim_logits"]) == 1
    assert out["bits_per_image"] == 32 * 4 and out["channel_uses_per_image"] is None
    assert model.symbols_per_image(4) == pytest.approx(32 * 4 / 4)  # 32 kept patches x 4 bits / 4 bits per symbol
    noisy = model(x, link=BSCLink(p=0.2), generator=generator)
    assert not torch.equal(noisy["payload"], noisy["received"])
    clean = model(x, snr_db=30.0, link=BitLink("16qam", "awgn"), generator=generator)
    assert torch.equal(clean["payload"], clean["received"]), "16-QAM at 30 dB delivers every index"
    assert clean["channel_uses_per_image"] == 32 == model.symbols_per_image(4)
    loss = torch.nn.functional.cross_entropy(noisy["logits"], torch.tensor([0, 1, 2])) + sum(noisy["vq_losses"].values())
    loss.backward()
    assert model.encoder.embed.weight.grad.abs().sum() > 0, "straight-through through the link reaches the encoder"
    assert model.digitizer.codebook.grad.abs().sum() > 0


def test_masked_vqvae_reconstruction_round_trip_of_patches(generator):
    model = MaskedVQVAE(MaskedVQVAEConfig(width=16, depth=1, heads=2, decoder_width=8, decoder_depth=1, code_dim=8, codebook_size=16, task="reconstruction"))
    x = torch.rand(2, 3, 32, 32, generator=generator)
    assert torch.equal(model.unpatchify(model.patchify(x)), x)
    assert model.patchify(x)[0, 1].reshape(3, 4, 4).equal(x[0, :, 0:4, 4:8]), "patch 1 is the second 4x4 block of the first row"
    assert model(x, generator=generator)["x_hat"].shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"images \[B, 3, 32, 32\]"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="unknown task"):
        MaskedVQVAEConfig(task="segmentation")


def test_conv_stem_token_i_sees_patch_i_and_its_neighbours_only(generator):
    stem = ConvStem(patch=4, channels=4, width=8).eval()
    x = torch.rand(1, 3, 32, 32, generator=generator)
    tokens = stem(x)
    assert tokens.shape == (1, 64, 8)
    changed = x.clone()
    changed[0, :, 0:4, 0:4] = 1 - changed[0, :, 0:4, 0:4]  # patch 0 (top-left) only
    moved = (stem(changed) - tokens).abs().amax(-1)[0].reshape(8, 8)
    assert moved[0, 0] > 0, "token 0 sees patch 0"
    # receptive field: 11 pixels beyond the patch on each side (two full-resolution 3x3 layers, then
    # two stages of a stride-2 and a stride-1 layer), so patch 0 reaches tokens 0..3 of each axis
    assert moved[3, 3] > 0 and torch.all(moved[4:, :] == 0) and torch.all(moved[:, 4:] == 0), "tokens four or more patches away do not"


def test_masked_vqvae_with_a_conv_stem_sends_only_the_kept_tokens_and_trains_the_stem(generator):
    config = MaskedVQVAEConfig(stem="conv", stem_channels=4, width=16, depth=1, heads=2, decoder_width=8, decoder_depth=1, decoder_heads=2, code_dim=8,
                               codebook_size=16)
    model = MaskedVQVAE(config)
    assert not hasattr(model.encoder, "embed")
    out = model(torch.rand(2, 3, 32, 32, generator=generator), generator=generator)
    assert out["payload"].shape == (2, 32) and out["bits_per_image"] == 32 * 4
    torch.nn.functional.cross_entropy(out["logits"], torch.tensor([0, 1])).backward()
    assert model.encoder.stem.layers[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown stem"):
        MaskedVQVAEConfig(stem="resnet")
    with pytest.raises(ValueError, match="powers of 2"):
        MaskedVQVAE(MaskedVQVAEConfig(stem="conv", image_size=30, patch=3))


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_config_rejects_a_mask_ratio_outside_zero_one(ratio):
    with pytest.raises(ValueError, match=r"mask_ratio must lie in \[0, 1\)"):
        MaskedVQVAEConfig(mask_ratio=ratio)


def test_fim_importance_learned_at_different_snrs_differs():
    """Eq. 14 reads the importance from the auxiliary weights, so it is fixed at inference; the SNR
    enters the auxiliary logits, so training at another SNR learns other weights."""
    features = torch.rand(16, 4, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(16) % 3
    learned = []
    for snr_db in (0.0, 20.0):
        torch.manual_seed(1)
        fim = FeatureImportanceModule(features=6, classes=3)
        optimizer = torch.optim.SGD(fim.parameters(), lr=0.5)
        for _ in range(20):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(fim(features, snr_db)["logits"], labels).backward()
            optimizer.step()
        learned.append(fim.importance().detach())
    assert not torch.allclose(learned[0], learned[1], atol=1e-4)
    assert torch.allclose(learned[0].sum(), torch.tensor(1.0)) and torch.allclose(learned[1].sum(), torch.tensor(1.0))


def test_signed_class_mean_of_the_auxiliary_weights_is_frozen_under_sgd():
    """Why eq. 14 reads |W|: softmax cross-entropy gradients of the C logits sum to zero, so the
    signed mean over classes of every weight column never changes under SGD."""
    features = torch.rand(16, 4, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(16) % 3
    torch.manual_seed(1)
    fim = FeatureImportanceModule(features=6, classes=3)
    before = fim.auxiliary.weight.detach().mean(0).clone()
    optimizer = torch.optim.SGD(fim.parameters(), lr=0.5)
    for _ in range(20):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(fim(features, 5.0)["logits"], labels).backward()
        optimizer.step()
    assert torch.allclose(fim.auxiliary.weight.detach().mean(0), before, atol=1e-6)
    assert not torch.allclose(fim.auxiliary.weight.detach().abs().mean(0), before.abs(), atol=1e-3)


def test_noise_related_masking_profile_steers_which_patches_are_kept():
    config = MaskedVQVAEConfig(image_size=16, patch=4, width=16, depth=1, heads=2, decoder_width=8, decoder_depth=1, code_dim=8, codebook_size=16, mask_ratio=0.5, masking="noise")
    model = MaskedVQVAE(config)
    assert torch.equal(model.noise_profile, torch.zeros(16)), "uniform masking until a profile is measured"
    clean = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    attacked = clean.clone()
    attacked[:, :, :4, :4] += 0.5  # all the noise in patch 0
    model.update_noise_profile(clean, attacked)
    assert model.noise_profile[0] == pytest.approx(0.5) and float(model.noise_profile[1:].abs().max()) == 0
    kept = model(torch.rand(200, 3, 16, 16), generator=torch.Generator().manual_seed(1))["kept"]
    kept_share = (kept == 0).float().sum() / 200
    assert kept_share < 0.25, "the noisy patch is masked far more often than half the time"
    assert "noise_profile" in model.state_dict()
    with pytest.raises(ValueError, match="masking"):
        MaskedVQVAEConfig(masking="noisy")
    with pytest.raises(ValueError, match="masking='noise'"):
        MaskedVQVAE(MaskedVQVAEConfig(image_size=16, patch=4)).update_noise_profile(clean, attacked)
