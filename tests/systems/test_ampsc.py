import json
import math

import pytest
import torch
from conftest import assert_rate_within_binomial
from torch import nn

from digisem.link import BitLink, BSCLink, int_to_bits
from digisem.nn import GDN, RCB, SqueezeExcitation, TransposedRCB
from digisem.systems.ampsc import (
    AMPSC,
    MODES,
    STEP_LOSSES,
    AMPSCConfig,
    IRSNet,
    loss_eq17,
    loss_eq19,
    loss_eq21,
    mask_attack,
    receiver_complexity,
)

KEYS = {"x_hat", "payload", "received", "bits_per_image", "channel_uses_per_image", "features", "transmitted", "received_features", "restored"}


def tiny(**overrides) -> AMPSC:
    torch.manual_seed(0)
    return AMPSC(AMPSCConfig(**{"width": 8, "irsnet_width": 4, "kernel_size": 3, **overrides}))


def images(generator, size=32, batch=2):
    return torch.rand(batch, 3, size, size, generator=generator)


def count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("preset, rcbs, ses", [("cifar", 6, 5), ("hr", 8, 7)])
def test_block_counts_follow_table_iii(preset, rcbs, ses):
    model = tiny(preset=preset)
    assert count(model.encoder, RCB) == rcbs and count(model.encoder, SqueezeExcitation) == ses
    assert count(model.decoder, TransposedRCB) == rcbs and count(model.decoder, SqueezeExcitation) == ses
    assert count(model.restorer, RCB) == 9 and count(model.restorer, TransposedRCB) == 2


def test_cifar_sends_512_values_and_2048_bits_at_ratio_one_sixth(generator):
    model = tiny()
    out = model(images(generator), mode="digital", link=BSCLink(0.0), generator=generator)
    assert out["payload"].shape == (2, 8, 8, 8) and out["x_hat"].shape == (2, 3, 32, 32)
    assert out["payload"][0].numel() == 512 == 3 * 32 * 32 // 6
    assert int_to_bits(out["payload"][0], 4).numel() == 2048 == model.payload_bits(32)
    assert tiny(num_bits=2).payload_bits(32) == 1024


def test_hr_preset_downsamples_16_times(generator):
    model = tiny(preset="hr")
    out = model(images(generator, size=64, batch=1), mode="digital", link=BSCLink(0.0125), generator=generator)
    assert out["payload"].shape == (1, 128, 4, 4) and out["x_hat"].shape == (1, 3, 64, 64)
    assert out["payload"][0].numel() == 3 * 64 * 64 // 6
    assert model.payload_bits(64) == 2048 * 4
    assert AMPSCConfig(preset="hr", ratio=1 / 24).latent_shape(256) == (32, 16, 16)


def test_paper_scale_receiver_matches_table_v_parameter_counts():
    """Table V counts conv and linear weights only (GDN not counted): SoftHe22 decoder 11.180 M;
    the decoder plus IRSNet gives 13.917 M (Table V prints 12.917 M)."""
    model = AMPSC(AMPSCConfig(preset="hr", width=256, ratio=1 / 24, irsnet_width=64))

    def weights(module):
        layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
        return sum(p.numel() for m in module.modules() if isinstance(m, layers) for p in m.parameters(recurse=False))

    assert round(weights(model.decoder) / 1e6, 3) == 11.180
    assert round((weights(model.decoder) + weights(model.restorer)) / 1e6, 3) == 13.917


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_returns_the_documented_keys_and_shapes(mode, generator):
    model = tiny()
    link = BitLink("16qam", "awgn") if mode == "digital" else None
    snr = 8.0 if mode == "digital" else None
    out = model(images(generator), link=link, snr_db=snr, mode=mode, generator=generator)
    assert set(out) == KEYS
    assert out["x_hat"].shape == (2, 3, 32, 32) and bool(((out["x_hat"] > 0) & (out["x_hat"] < 1)).all())
    for key in ("features", "transmitted", "received_features", "restored"):
        assert out[key].shape == (2, 8, 8, 8) and out[key].dtype == torch.float32
    assert bool(((out["features"] > -7.5) & (out["features"] < 8.5)).all())
    if mode == "digital":
        assert out["payload"].dtype == torch.int64 and out["received"].dtype == torch.int64
        assert int(out["payload"].min()) >= 0 and int(out["payload"].max()) <= 15
        # 512 values x 4 bits; uncoded 16-QAM carries 4 bits per channel use
        assert out["bits_per_image"] == 2048 and out["channel_uses_per_image"] == 512
    else:
        assert out["payload"] is None and out["received"] is None
        assert out["bits_per_image"] is None and out["channel_uses_per_image"] is None


def test_analog_sends_the_bounded_features_and_relaxed_adds_noise_of_std_alpha(generator):
    model = tiny()
    x = images(generator)
    analog = model(x, mode="analog")
    assert analog["transmitted"] is analog["features"] and analog["restored"] is analog["received_features"]
    relaxed = model(x, mode="relaxed", generator=generator)
    noise = (relaxed["transmitted"] - relaxed["features"]).detach()
    assert abs(float(noise.std()) - 0.5) < 5 * 0.5 / math.sqrt(2 * noise.numel())
    assert not torch.equal(relaxed["restored"], relaxed["received_features"])


def test_digital_over_an_error_free_link_receives_the_rounded_features(generator):
    model = tiny()
    out = model(images(generator), mode="digital", link=BSCLink(p=0.0), generator=generator)
    assert torch.equal(out["received"], out["payload"])
    assert torch.equal(out["transmitted"], torch.round(out["features"]))
    assert torch.equal(out["received_features"], out["transmitted"])


def test_digital_without_a_link_delivers_the_payload_intact(generator):
    model = tiny()
    x = images(generator)
    out = model(x, generator=generator)  # mode defaults to "digital"
    assert torch.equal(out["received"], out["payload"])
    assert torch.equal(out["received_features"], torch.round(out["features"]))
    assert out["bits_per_image"] == 2048 and out["channel_uses_per_image"] is None
    over_error_free = model(x, link=BSCLink(p=0.0), mode="digital", generator=generator)
    assert torch.equal(over_error_free["x_hat"], out["x_hat"])


def test_bsc_link_errors_reach_the_received_features(generator):
    model = tiny()
    out = model(images(generator, batch=8), mode="digital", link=BSCLink(p=0.1), generator=generator)
    bit_errors = int((int_to_bits(out["payload"], 4) != int_to_bits(out["received"], 4)).sum())
    assert_rate_within_binomial(bit_errors, out["payload"].numel() * 4, 0.1)
    changed = out["received"] != out["payload"]
    assert torch.equal(out["received_features"] != out["transmitted"], changed)


def grads(module: nn.Module) -> list:
    return [p.grad for p in module.parameters()]


@pytest.mark.parametrize("mode", ["analog", "relaxed"])
def test_gradients_reach_the_encoder_in_analog_and_relaxed_modes(mode, generator):
    model = tiny()
    out = model(images(generator), mode=mode, generator=generator)
    out["x_hat"].mean().backward()
    assert all(g is not None for g in grads(model.encoder) + grads(model.decoder))
    assert any(float(g.abs().sum()) > 0 for g in grads(model.encoder))
    restorer_grads = grads(model.restorer)
    assert all(g is None for g in restorer_grads) if mode == "analog" else all(g is not None for g in restorer_grads)


def test_no_gradient_crosses_the_digital_path(generator):
    model = tiny()
    x = images(generator)
    out = model(x, mode="digital", link=BSCLink(0.0125), mask_ratio=0.025, generator=generator)
    assert not out["features"].requires_grad and not out["transmitted"].requires_grad and not out["received_features"].requires_grad
    loss_eq17(out, x).backward()
    assert all(g is None for g in grads(model.encoder))
    assert all(g is not None for g in grads(model.restorer) + grads(model.decoder))


def test_relaxed_mode_without_restorer_leaves_irsnet_untouched(generator):
    model = tiny()
    out = model(images(generator), mode="relaxed", restore=False, generator=generator)
    assert out["restored"] is out["received_features"]
    out["x_hat"].mean().backward()
    assert all(g is None for g in grads(model.restorer))


def test_restorer_changes_restored_but_not_received(generator):
    model = tiny()
    x = images(generator)
    runs = [model(x, mode="digital", link=BSCLink(0.05), mask_ratio=0.1, restore=flag, generator=torch.Generator().manual_seed(3)) for flag in (True, False)]
    with_restorer, without = runs
    assert torch.equal(with_restorer["received"], without["received"])
    assert torch.equal(with_restorer["received_features"], without["received_features"])
    assert not torch.equal(with_restorer["restored"], with_restorer["received_features"])
    assert without["restored"] is without["received_features"]
    assert not torch.equal(with_restorer["x_hat"], without["x_hat"])


def test_mask_attack_zeroes_the_expected_fraction_and_nothing_else(generator):
    features = torch.rand(4, 50000, generator=generator) + 1.0
    masked = mask_attack(features, 0.025, generator)
    zeros = masked == 0
    assert_rate_within_binomial(int(zeros.sum()), features.numel(), 0.025)
    assert torch.equal(masked[~zeros], features[~zeros])
    assert mask_attack(features, 0.0, generator) is features
    assert torch.equal(mask_attack(features, 1.0, generator), torch.zeros_like(features))
    with pytest.raises(ValueError, match="mask ratio"):
        mask_attack(features, 1.5)


def test_mask_attack_acts_on_the_received_features_before_the_restorer(generator):
    model = tiny()
    out = model(images(generator, batch=4), mode="digital", link=BSCLink(0.0), mask_ratio=0.5, generator=generator)
    kept = out["received_features"] != 0
    assert torch.equal(out["received_features"][kept], out["transmitted"][kept])
    assert_rate_within_binomial(int((~kept & (out["transmitted"] != 0)).sum()), int((out["transmitted"] != 0).sum()), 0.5)


def test_step_losses_follow_the_paper_equations(generator):
    model = tiny()
    x = images(generator)
    out = model(x, mode="digital", link=BSCLink(0.0125), mask_ratio=0.025, generator=generator)
    image_l1 = (out["x_hat"] - x).abs().mean()
    restoration = (out["restored"] - out["transmitted"]).abs().mean()
    assert torch.allclose(loss_eq17(out, x), image_l1 + restoration)
    assert torch.allclose(loss_eq21(out, x, restoration_weight=0.5), image_l1 + 0.5 * restoration)
    assert torch.allclose(loss_eq19(out, x), image_l1)
    assert STEP_LOSSES[True][3] is loss_eq17 and STEP_LOSSES[True][4] is loss_eq19 and STEP_LOSSES[True][5] is loss_eq21
    assert all(torch.allclose(STEP_LOSSES[False][step](out, x), image_l1) for step in range(1, 6))
    with pytest.raises(ValueError, match="restored"):
        loss_eq17({"x_hat": out["x_hat"]}, x)


def test_config_round_trips_through_json_and_rejects_unknown_keys():
    config = AMPSCConfig(preset="hr", width=32, num_bits=2, ratio=1 / 24, irsnet=False, irsnet_width=16, kernel_size=3, alpha=0.25)
    assert AMPSCConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert AMPSCConfig.from_dict({}) == AMPSCConfig()
    with pytest.raises(ValueError, match="'widht'"):
        AMPSCConfig.from_dict({"widht": 32})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ratio": 0.2}, "ratio"),
        ({"preset": "imagenet"}, "preset"),
        ({"kernel_size": 4}, "odd"),
        ({"num_bits": 0}, "num_bits"),
        ({"width": 0}, "width"),
        ({"irsnet": 1}, "irsnet"),
    ],
)
def test_invalid_configs_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        AMPSCConfig(**overrides)


def test_bad_inputs_raise_clear_errors(generator):
    model = tiny()
    x = images(generator)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\].*multiples of 16"):
        model(torch.rand(2, 1, 32, 32), mode="analog")
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.rand(2, 3, 36, 36), mode="analog")
    with pytest.raises(ValueError, match="multiples of 64"):
        tiny(preset="hr")(torch.rand(1, 3, 48, 48), mode="analog")
    with pytest.raises(ValueError, match="digital.*relaxed.*analog.*'soft'"):
        model(x, mode="soft")
    with pytest.raises(TypeError):
        model(x, "digital")  # mode is keyword-only
    with pytest.raises(ValueError, match="no channel"):
        model(x, mode="analog", link=BSCLink(0.01))
    with pytest.raises(ValueError, match="no channel"):
        model(x, mode="relaxed", snr_db=3.0)
    with pytest.raises(ValueError, match="no restorer"):
        tiny(irsnet=False)(x, link=BSCLink(0.01), mode="digital", restore=True)
    with pytest.raises(ValueError, match="carries complex symbols"):
        model(x, link={"kind": "symbols", "channel": "awgn"}, snr_db=3.0)
    with pytest.raises(ValueError, match="multiples of 4"):
        IRSNet(8, 4)(torch.rand(1, 8, 6, 6))


def reference_flops(parts, features):
    """2 x multiply-accumulates of every conv, transposed conv, linear layer and GDN's 1x1 mixing."""
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            macs += output.numel() * module.in_channels * math.prod(module.kernel_size)
        elif isinstance(module, nn.ConvTranspose2d):
            macs += inputs[0].numel() * module.out_channels * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            macs += inputs[0].shape[0] * module.in_features * module.out_features
        elif isinstance(module, GDN):
            macs += inputs[0].numel() * module.channels

    handles = [m.register_forward_hook(hook) for part in parts for m in part.modules()]
    with torch.no_grad():
        for part in parts:
            features = part(features)
    for handle in handles:
        handle.remove()
    return 2 * macs


@pytest.mark.parametrize("irsnet", [True, False])
def test_receiver_complexity_counts_restorer_and_decoder(irsnet):
    model = tiny(irsnet=irsnet)
    result = receiver_complexity(model, 32)
    parts = [p for p in (model.restorer, model.decoder) if p is not None]
    assert result["params"] == sum(p.numel() for part in parts for p in part.parameters())
    assert result["flops"] == reference_flops(parts, torch.zeros(1, 8, 8, 8)) == 2 * result["macs"]
