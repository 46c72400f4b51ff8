import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from digisem.hardware import channels_last_is_sound
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
        # channels-last is dropped on CPUs where its kernels are unsound (tested below)
        assert model.seen_channels_last == [bool(switches) and channels_last_is_sound("cpu")] * 2
        assert all(p.is_contiguous() for p in model.parameters())
        assert model.encoder._compiled_call_impl is None and model.decoder._compiled_call_impl is None
        results[bool(switches)] = model.state_dict()
    for key, value in results[False].items():
        torch.testing.assert_close(results[True][key], value, rtol=1e-4, atol=1e-5)


class AutocastProbe(TwoPart):
    """Records the dtype of the encoder's output in each forward (bfloat16 under autocast)."""

    def forward(self, x, generator):
        hidden = self.encoder(x)
        self.seen_dtypes = getattr(self, "seen_dtypes", []) + [hidden.dtype]
        return self.decoder(hidden).float()


@pytest.mark.parametrize(("capabilities", "native"), [({"avx2": True, "avx512_bf16": False}, False), ({"avx512_bf16": True}, True),
                                                      ({"amx_bf16": True}, True), ({"bf16": True}, True), ({}, False)])
def test_native_bfloat16_reads_the_cpu_features(monkeypatch, capabilities, native):
    from digisem import hardware

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert hardware.native_bfloat16("cpu") is native
    assert hardware.cpu_description().endswith("bf16 native" if native else "bf16 emulated")


@pytest.mark.parametrize(("capabilities", "sound"), [({"architecture": "x86_64", "avx2": True, "avx512_f": False}, False),
                                                     ({"architecture": "x86_64", "avx512_f": True}, True), ({"architecture": "arm64", "neon": True}, True)])
def test_channels_last_is_refused_only_on_x86_without_avx512(monkeypatch, capabilities, sound):
    from digisem import hardware

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert hardware.channels_last_is_sound("cpu") is sound


def test_a_channels_last_stage_trains_contiguous_where_channels_last_is_unsound(tmp_path, monkeypatch):
    """Where channels-last kernels corrupt the heap, the stage warns, the images reach the model in
    the contiguous format and the logs say channels_last false."""
    from digisem.train import loop

    monkeypatch.setattr(loop, "channels_last_is_sound", lambda device: False)
    images = TensorDataset(torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(0)))
    model = ConvPair()
    stage = Stage("cl", epochs=1, lr=1e-2, trainable=("encoder", "decoder"), channels_last=True,
                  loss=lambda model_call, batch, generator: ((model_call(batch[0], generator) - batch[0]).pow(2).mean(), {}))
    with pytest.warns(RuntimeWarning, match="contiguous format.*without AVX-512"):
        logs = fit_stage(model, stage, images, tmp_path / "cl", batch_size=16, seed=0, progress=False)
    assert model.seen_channels_last == [False, False]
    assert logs[0]["channels_last"] is False


@pytest.mark.parametrize(("native", "forced", "used"), [(True, False, "bf16"), (False, False, "fp32"), (False, True, "bf16")])
def test_bf16_stage_falls_back_to_fp32_where_bfloat16_is_emulated(tmp_path, dataset, monkeypatch, native, forced, used):
    """A ``bf16`` stage trains in bfloat16 only on hardware that has it (or when forced with
    DIGISEM_EMULATED_BF16=1); otherwise it warns, trains in float32 (the same weights as an fp32
    stage) and the epoch logs say so."""
    from digisem.train import loop

    monkeypatch.setattr(loop, "native_bfloat16", lambda device: native)
    if forced:
        monkeypatch.setenv(loop.EMULATED_BF16_VARIABLE, "1")
    else:
        monkeypatch.delenv(loop.EMULATED_BF16_VARIABLE, raising=False)
    runs = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = AutocastProbe()
        stage = Stage("p", epochs=1, lr=1e-2, trainable=("encoder", "decoder"), loss=mse_loss, precision=precision)
        if precision == "bf16" and used == "fp32":
            with pytest.warns(RuntimeWarning, match="no native bfloat16.*DIGISEM_EMULATED_BF16=1"):
                logs = fit_stage(model, stage, dataset, tmp_path / precision, batch_size=16, seed=0, progress=False)
        else:
            logs = fit_stage(model, stage, dataset, tmp_path / precision, batch_size=16, seed=0, progress=False)
        runs[precision] = (logs, model)
    logs, model = runs["bf16"]
    assert [entry["precision"] for entry in logs] == [used]
    assert set(model.seen_dtypes) == {torch.bfloat16 if used == "bf16" else torch.float32}
    assert runs["fp32"][0][0]["precision"] == "fp32"
    same_weights = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), runs["fp32"][1].state_dict().values()))
    assert same_weights is (used == "fp32")


def test_warmup_then_per_batch_cosine_follows_the_closed_form(tmp_path, dataset):
    """warmup_epochs > 0: the lr after optimizer step t (1-based, T steps, W of warm-up) is
    lr t / W during the warm-up, then eta_min + (lr - eta_min) (1 + cos(pi (t - W) / (T - W))) / 2;
    the epoch logs hold the lr after each epoch's last step. 64 items / batch 16 = 4 steps per epoch."""
    import math

    lr, eta_min, epochs, per_epoch, warmup = 0.1, 0.001, 3, 4, 2  # warmup_epochs 0.5 -> 2 steps
    stage = Stage("onecycle", epochs=epochs, lr=lr, eta_min=eta_min, trainable=("encoder", "decoder"), loss=mse_loss, warmup_epochs=0.5)
    logs = fit_stage(make_model(), stage, dataset, tmp_path / "s", batch_size=16, seed=0, progress=False)

    def expected(step):  # the lr in force for the (step + 1)-th optimizer step, 0-based
        if step < warmup:
            return lr * (step + 1) / warmup
        return eta_min + (lr - eta_min) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (epochs * per_epoch - warmup)))

    assert [entry["lr"] for entry in logs] == pytest.approx([expected((epoch + 1) * per_epoch) for epoch in range(epochs)], rel=1e-9)
