"""DeepJSCC (Bourtsoulatze et al., 2019) and its digital twin: bandwidth ratio -> symbols, power,
channel uses, the noiseless round trip, gradients, errors, and one real recipe run end to end."""

import json
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from digisem.digitize import AnalogSymbols, ScalarQuantizer
from digisem.link import SymbolLink, make_channel
from digisem.systems.deepjscc import DeepJSCC, DeepJSCCConfig


def tiny(**overrides) -> DeepJSCC:
    torch.manual_seed(0)
    return DeepJSCC(DeepJSCCConfig(**{"width": 2, **overrides})).eval()


def images(batch: int = 2, side: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(1))


class CountingChannel(nn.Module):
    """A channel wrapper that keeps what it was given."""

    def __init__(self, name: str = "awgn"):
        super().__init__()
        self.channel = make_channel(name)
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, snr_db, generator=None):
        self.inputs.append(x.detach().clone())
        return self.channel(x, snr_db, generator)


def test_the_default_is_the_papers_architecture():
    model = DeepJSCC()
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 16, (5, 5), (2, 2)), (16, 32, (5, 5), (2, 2)), (32, 32, (5, 5), (1, 1)), (32, 32, (5, 5), (1, 1)), (32, 16, (5, 5), (1, 1))]
    assert sum(isinstance(m, nn.PReLU) for m in model.encoder) == 5
    transposed = [m for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in transposed] == [(16, 32, (1, 1)), (32, 32, (1, 1)), (32, 32, (1, 1)), (32, 16, (2, 2)), (16, 3, (2, 2))]
    assert isinstance(model.digitizer, AnalogSymbols) and model.modes == ("analog",) and model.payload_kind == "symbols"


@pytest.mark.parametrize("ratio, channels, symbols", [(1 / 6, 16, 512), (1 / 12, 8, 256), (2 / 96, 2, 64)])
def test_the_bandwidth_ratio_sets_the_symbols_per_image(ratio, channels, symbols):
    """k/n = ratio complex symbols per source value: a 32x32x3 image (3072 values) sends 3072 ratio symbols."""
    model = tiny(ratio=ratio)
    assert model.config.latent_channels == channels and model.config.channel_uses(32, 32) == symbols == round(3072 * ratio)
    counting = CountingChannel()
    with torch.no_grad():
        out = model(images(), link=SymbolLink(counting), snr_db=10.0, generator=torch.Generator().manual_seed(0))
    assert out["payload"].shape == (2, symbols) and out["payload"].dtype == torch.complex64
    assert out["received"].shape == (2, symbols) and out["x_hat"].shape == (2, 3, 32, 32)
    assert out["features"].shape == (2, channels, 8, 8)
    assert torch.allclose(out["payload"].abs().pow(2).mean(1), torch.ones(2), atol=1e-5), "unit energy per image"
    (sent,) = counting.inputs
    assert sent.shape == (2, symbols) and out["channel_uses_per_image"] == symbols, "symbols on the channel = channel uses"
    assert out["bits_per_image"] is None
    assert model.config.channel_uses(64, 48) == round(64 * 48 * 3 * ratio)


def test_the_channel_adds_n0_per_complex_symbol():
    model = tiny()
    with torch.no_grad():
        out = model(images(8), link="awgn", snr_db=5.0, generator=torch.Generator().manual_seed(0))
    noise = (out["received"] - out["payload"]).abs().pow(2)
    assert float(noise.mean()) == pytest.approx(10 ** (-0.5), rel=6 / math.sqrt(noise.numel()))


def test_without_a_link_the_decoder_gets_the_power_normalized_features_exactly():
    model = tiny()
    x = images()
    seen = []
    model.decoder.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach().clone()))
    with torch.no_grad():
        out = model(x)
        features = model.encoder(x)
    assert torch.equal(out["received"], out["payload"]) and out["channel_uses_per_image"] is None
    assert torch.equal(out["features"], features)
    # each image scaled to unit energy per complex symbol: mean |s|^2 = 2 mean(f^2) over its values
    scale = torch.sqrt(2 * features.pow(2).flatten(1).mean(1))[:, None, None, None]
    expected = features / scale
    digitizer = AnalogSymbols()
    assert torch.allclose(digitizer.from_payload(digitizer.to_payload(features), features.shape), expected, atol=1e-6)
    (decoded,) = seen
    assert torch.allclose(decoded, expected, atol=1e-6)
    pairs = features.flatten(1).reshape(2, -1, 2)
    assert torch.allclose(torch.view_as_real(out["payload"]), pairs / scale.reshape(2, 1, 1), atol=1e-6), "consecutive values pair into (re, im)"


def test_analog_transmission_is_differentiable_through_the_channel():
    model = tiny().train()
    x = images()
    out = model(x, link="awgn", snr_db=torch.tensor([0.0, 10.0]), generator=torch.Generator().manual_seed(0))
    F.mse_loss(out["x_hat"], x).backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in model.encoder.parameters())


def test_the_digital_twin_sends_4_bit_integers_and_is_exact_over_an_error_free_link():
    from digisem.evaluate import sweep

    model = tiny(transmission="digital")
    assert isinstance(model.digitizer, ScalarQuantizer) and model.digitizer.bits_per_value == 4
    assert model.modes == ("digital", "relaxed", "analog") and model.payload_kind == "integers"
    x = images()
    with torch.no_grad():
        out = model(x, link="none", generator=torch.Generator().manual_seed(0))
        analog = model(x, mode="analog")
    payload = out["payload"]
    assert payload.shape == (2, 16, 8, 8) and payload.dtype == torch.int64
    assert int(payload.min()) >= 0 and int(payload.max()) <= 15
    assert torch.equal(out["received"], payload)
    assert out["bits_per_image"] == 16 * 8 * 8 * 4
    assert torch.equal(payload, torch.round(out["features"]).long() + 7), "the payload is the rounded bounded features, shifted by 7"
    assert bool(((out["features"] > -7.5) & (out["features"] < 8.5)).all())
    assert not torch.equal(out["x_hat"], analog["x_hat"]), "rounding changes what the decoder sees"
    result = sweep(model, "none", [0.0, 10.0], TensorDataset(x), progress=False)
    assert result["ber"] == [0.0, 0.0]
    coded = model(x, link="16qam-awgn", snr_db=8.0, generator=torch.Generator().manual_seed(0))
    assert coded["channel_uses_per_image"] == 16 * 8 * 8 * 4 // 4


def test_the_digital_twin_trains_in_relaxed_mode_and_tunes_the_decoder_in_digital_mode():
    model = tiny(transmission="digital").train()
    x = images()
    relaxed = model(x, mode="relaxed", generator=torch.Generator().manual_seed(0))
    noise = (relaxed["x_hat"] - model(x, mode="analog")["x_hat"]).detach()
    assert float(noise.abs().max()) > 0, "relaxation adds noise"
    F.mse_loss(relaxed["x_hat"], x).backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in model.encoder.parameters())
    model.zero_grad(set_to_none=True)
    digital = model(x, link="bsc", snr_db=6.0, mode="digital", generator=torch.Generator().manual_seed(0))
    F.mse_loss(digital["x_hat"], x).backward()
    assert all(p.grad is None for p in model.encoder.parameters()), "rounding and bits are not differentiable"
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_bad_inputs_are_refused():
    model = tiny()
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\] with H and W multiples of 4"):
        model(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.rand(2, 3, 30, 32))
    with pytest.raises(ValueError, match="got shape"):
        model(torch.rand(0, 3, 32, 32))
    with pytest.raises(ValueError, match="got shape"):
        model(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="float images"):
        model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match="no options"):
        model(images(), mask_ratio=0.1)
    with pytest.raises(ValueError, match="supports modes"):
        model(images(), mode="digital")
    with pytest.raises(ValueError, match="carries bits"):
        model(images(), link="16qam-awgn", snr_db=3.0)
    with pytest.raises(ValueError, match="needs snr_db"):
        model(images(), link="awgn")
    with pytest.raises(ValueError, match="no channel"):
        tiny(transmission="digital")(images(), link="bsc", snr_db=3.0, mode="relaxed")


@pytest.mark.parametrize("overrides, message", [
    ({"ratio": 0.1}, r"ratio = k / 96"),
    ({"ratio": 1 / 7}, r"ratio = k / 96"),
    ({"ratio": 0.0}, "ratio"),
    ({"ratio": -1 / 6}, "ratio"),
    ({"width": 0}, "width"),
    ({"kernel_size": 4}, "odd"),
    ({"transmission": "quantum"}, "unknown transmission"),
    ({"num_bits": 0}, "num_bits"),
])
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        DeepJSCCConfig(**overrides)


def test_config_round_trips_and_refuses_unknown_keys():
    config = DeepJSCCConfig(ratio=1 / 12, width=8, kernel_size=3, transmission="digital", num_bits=2, alpha=0.25)
    assert DeepJSCCConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown DeepJSCCConfig keys"):
        DeepJSCCConfig.from_dict({"ratio": 1 / 6, "snr": 10})


def test_the_smoke_recipe_trains_evaluates_and_loads_from_its_run_folder(tmp_path):
    from digisem import zoo
    from digisem.data import labelled_samples
    from digisem.evaluate import sweep
    from digisem.train.recipe import load_recipe
    from digisem.train.run import run_recipe

    run_dir = run_recipe(load_recipe("deepjscc-smoke"), tmp_path, progress=False)
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert results["snr_db"] == [0.0, 10.0, 20.0]
    assert len(results["psnr"]) == 3 and all(math.isfinite(v) and 5 < v < 60 for v in results["psnr"])
    assert results["channel_uses"] == [512.0] * 3
    for snr, mse in zip(results["snr_db"], results["latent_mse_channel"]):
        assert mse == pytest.approx(10 ** (-snr / 10), rel=0.15), "Es/N0 per unit-energy complex symbol"
    model, metadata = zoo.load(run_dir)
    assert isinstance(model, DeepJSCC) and not model.training and metadata["system"] == "deepjscc"
    assert model.config == DeepJSCCConfig(width=4, kernel_size=3)
    again = sweep(model, "awgn", results["snr_db"], labelled_samples(), seed=0, batch_size=8, progress=False)
    assert again["psnr"] == pytest.approx(results["psnr"], abs=1e-4), "the saved weights reproduce the recorded sweep"
