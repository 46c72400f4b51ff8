import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from digisem.train.loop import Stage, fit_stage
from digisem.weights import CheckpointError, load_state, load_weights, save_weights


class TwoPart(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 3)
        self.decoder = nn.Linear(3, 4)

    def forward(self, x, generator):
        noise = torch.randn(x.shape[0], 3, generator=generator, device=x.device) * 0.1
        return self.decoder(self.encoder(x) + noise)


def mse_loss(model_call, batch, generator):
    (x,) = batch
    loss = (model_call(x, generator) - x).pow(2).mean()
    return loss, {"mse": loss.item()}


@pytest.fixture
def dataset():
    return TensorDataset(torch.randn(64, 4, generator=torch.Generator().manual_seed(0)))


def make_model():
    torch.manual_seed(0)
    return TwoPart()


def test_stage_trains_only_named_parts_and_lowers_loss(tmp_path, dataset):
    model = make_model()
    encoder_before = model.encoder.weight.clone()
    stage = Stage("decoder-only", epochs=3, lr=1e-2, trainable=("decoder",), loss=mse_loss)
    logs = fit_stage(model, stage, dataset, tmp_path / "s", batch_size=16, seed=0, progress=False)
    assert torch.equal(model.encoder.weight, encoder_before)
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert [entry["epoch"] for entry in logs] == [0, 1, 2]
    assert json.loads((tmp_path / "s" / "done.json").read_text())["epochs"] == 3
    assert len((tmp_path / "s" / "log.jsonl").read_text().splitlines()) == 3


def test_resume_after_interruption_gives_identical_weights(tmp_path, dataset):
    full = make_model()
    stage = Stage("joint", epochs=4, lr=1e-2, trainable=("encoder", "decoder"), loss=mse_loss)
    fit_stage(full, stage, dataset, tmp_path / "full", batch_size=16, seed=3, progress=False)

    calls = {"n": 0}

    def interrupted_loss(model_call, batch, generator):
        calls["n"] += 1
        if calls["n"] == 2 * 4 + 1:  # first batch of the third epoch (4 batches per epoch)
            raise KeyboardInterrupt
        return mse_loss(model_call, batch, generator)

    partial = make_model()
    with pytest.raises(KeyboardInterrupt):
        fit_stage(partial, Stage("joint", 4, 1e-2, ("encoder", "decoder"), interrupted_loss), dataset, tmp_path / "cut", batch_size=16, seed=3, progress=False)
    assert load_state(tmp_path / "cut" / "state.pt")["epoch"] == 1
    resumed = make_model()
    logs = fit_stage(resumed, stage, dataset, tmp_path / "cut", batch_size=16, seed=3, progress=False)
    assert [entry["epoch"] for entry in logs] == [0, 1, 2, 3]
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # a finished stage is loaded, not trained again
    again = make_model()
    fit_stage(again, stage, dataset, tmp_path / "full", batch_size=16, seed=3, progress=False)
    assert torch.equal(again.decoder.weight, full.decoder.weight)


def test_unknown_part_and_small_dataset_errors(tmp_path, dataset):
    with pytest.raises(ValueError, match="no such part"):
        fit_stage(make_model(), Stage("x", 1, 1e-3, ("restorer",), mse_loss), dataset, tmp_path / "a", batch_size=16, seed=0, progress=False)
    with pytest.raises(ValueError, match="smaller than one batch"):
        fit_stage(make_model(), Stage("x", 1, 1e-3, ("decoder",), mse_loss), dataset, tmp_path / "b", batch_size=128, seed=0, progress=False)


def test_weights_round_trip_and_corruption_errors(tmp_path):
    model = make_model()
    save_weights(model, tmp_path / "w.safetensors", {"recipe": "test", "psnr": 30.5})
    other = TwoPart()
    metadata = load_weights(other, tmp_path / "w.safetensors")
    assert metadata == {"recipe": "test", "psnr": 30.5}
    assert torch.equal(other.encoder.weight, model.encoder.weight)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupted"):
        load_weights(other, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(other, tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(nn.Linear(2, 2), tmp_path / "w.safetensors")
    (tmp_path / "bad.pt").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="not one digisem wrote"):
        load_state(tmp_path / "bad.pt")


class ConvPair(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Conv2d(3, 4, 3, padding=1)
        self.decoder = nn.Conv2d(4, 3, 3, padding=1)
        self.seen_channels_last = []

    def forward(self, x, generator):
        self.seen_channels_last.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        return self.decoder(torch.relu(self.encoder(x)))


def test_channels_last_and_compile_apply_during_the_stage_only(tmp_path):
    """The speed switches: the images reach the model in channels-last, the trainable parts are
    compiled while the stage runs, and afterwards the model is contiguous and eager again, with
    weights equal to an eager fp32 run's up to float rounding."""
    images = TensorDataset(torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(0)))

    def loss(model_call, batch, generator):
        (x,) = batch
        value = (model_call(x, generator) - x).pow(2).mean()
        return value, {}

    results = {}
    for switches in ({}, {"channels_last": True, "compile": True}):
        torch.manual_seed(0)
        model = ConvPair()
        stage = Stage("speed", epochs=1, lr=1e-2, trainable=("encoder", "decoder"), loss=loss, **switches)
        fit_stage(model, stage, images, tmp_path / str(len(switches)), batch_size=16, seed=0, progress=False)
        assert model.seen_channels_last == [bool(switches)] * 2
        assert all(p.is_contiguous() for p in model.parameters())
        assert model.encoder._compiled_call_impl is None and model.decoder._compiled_call_impl is None
        results[bool(switches)] = model.state_dict()
    for key, value in results[False].items():
        torch.testing.assert_close(results[True][key], value, rtol=1e-4, atol=1e-5)
