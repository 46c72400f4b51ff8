"""The one contract of every registered system (digisem.systems.base), checked family by family.

Every family of kind ``"system"`` in :data:`digisem.systems.FAMILIES` must have an entry in
:data:`TINY_CONFIGS` (a registered system without one fails :func:`test_every_registered_system_has_tiny_configs`),
so a new system is held to the contract the day it is registered.
"""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from torch import nn

from digisem.link import from_spec
from digisem.snr import parse_snr_range
from digisem.systems import FAMILIES, SystemOutput
from digisem.systems.base import MODES, System

TINY_CONFIGS: dict[str, dict[str, dict]] = {
    # family -> variant -> {config, side (square image side), payload (shape per image, without B)}
    "ampsc": {
        "irsnet": {"config": {"width": 4, "irsnet_width": 2, "kernel_size": 3}, "side": 32, "payload": (8, 8, 8)},
        "no-irsnet": {"config": {"width": 4, "irsnet": False, "kernel_size": 3, "num_bits": 2}, "side": 16, "payload": (8, 4, 4)},
    },
    "jcm": {
        "16qam": {"config": {"order": 16, "width": 4, "decoder_blocks": 1, "channel_uses": 16, "prior_size": 8}, "side": 32, "payload": (16,)},
        "classifier": {"config": {"order": 4, "width": 4, "decoder_blocks": 1, "channel_uses": 8, "classes": 3, "prior_size": 8}, "side": 32, "payload": (8,)},
    },
    "vqvae": {
        "digital": {"config": {"image_size": 16, "patch": 4, "width": 8, "depth": 1, "heads": 2, "decoder_width": 8, "decoder_depth": 1, "code_dim": 4,
                               "codebook_size": 16, "classes": 3}, "side": 16, "payload": (8,)},
        "conv-stem": {"config": {"image_size": 16, "patch": 4, "stem": "conv", "stem_channels": 4, "width": 8, "depth": 1, "heads": 2, "decoder_width": 8,
                                 "decoder_depth": 1, "decoder_heads": 2, "code_dim": 4, "codebook_size": 16, "classes": 3}, "side": 16, "payload": (8,)},
        "analog-reconstruction": {"config": {"image_size": 16, "patch": 4, "width": 8, "depth": 1, "heads": 2, "decoder_width": 8, "decoder_depth": 1, "code_dim": 4,
                                             "transmission": "analog", "task": "reconstruction", "mask_ratio": 0.25}, "side": 16, "payload": (12 * 4 // 2,)},
    },
    "deepjscc": {
        "analog": {"config": {"width": 2}, "side": 16, "payload": (16 * 4 * 4 // 2,)},
        "digital": {"config": {"width": 2, "ratio": 1 / 12, "transmission": "digital"}, "side": 16, "payload": (8, 4, 4)},
    },
    "separate": {
        "jpeg": {"config": {"codec": "jpeg", "payload_bits": 1024}, "side": 16, "payload": (128,)},
        "webp": {"config": {"codec": "webp", "payload_bits": 2048}, "side": 16, "payload": (256,)},
    },
}
"""Tiny models of every registered system family, with the payload each must send per image."""

SYSTEM_FAMILIES = FAMILIES.names("system")
VARIANTS = [(name, variant) for name in SYSTEM_FAMILIES for variant in TINY_CONFIGS.get(name, {"<missing>": None})]
BIT_LINK, CODED_LINK, SYMBOL_LINK = "16qam-awgn", "16qam-awgn-ldpc-1/2", "awgn"
HIGH_SNR = 30.0


def test_every_registered_system_has_tiny_configs():
    missing = sorted(set(SYSTEM_FAMILIES) - set(TINY_CONFIGS))
    assert not missing, f"registered systems without an entry in TINY_CONFIGS (tests/systems/test_base.py): {missing}"
    stale = sorted(set(TINY_CONFIGS) - set(SYSTEM_FAMILIES))
    assert not stale, f"TINY_CONFIGS names families that are not registered systems: {stale}"
    assert {"ampsc", "jcm", "vqvae", "deepjscc", "separate"} <= set(SYSTEM_FAMILIES)
    assert FAMILIES.names("restorer") == ["scdm"]


def build(name: str, variant: str) -> tuple[System, torch.Tensor, dict]:
    if variant == "<missing>":
        pytest.fail(f"system family {name!r} has no tiny config in TINY_CONFIGS")
    entry = TINY_CONFIGS[name][variant]
    torch.manual_seed(0)
    model = FAMILIES[name].build(entry["config"]).eval()
    x = torch.rand(2, 3, entry["side"], entry["side"], generator=torch.Generator().manual_seed(1))
    return model, x, entry


@functools.cache
def default_payload_kind(name: str) -> str:
    """The payload of a family's default (paper-sized) model."""
    return FAMILIES[name].cls().payload_kind


def link_for(model: System) -> str:
    return BIT_LINK if model.payload_kind == "integers" else SYMBOL_LINK


def task_output(model: System, out: SystemOutput) -> torch.Tensor:
    return out["x_hat"] if model.task == "reconstruction" else out["logits"]


def expected_bits(model: System, values: int) -> int | None:
    bits = model.digitizer.bits_per_value
    return None if bits is None else values * bits


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_registration_is_consistent(name, variant):
    model, _, entry = build(name, variant)
    family = FAMILIES[name]
    assert isinstance(model, System) and type(model) is family.cls and model.family == name
    assert family.kind == "system" and family.snr_kind in ("esn0", "ebn0")
    assert model.config == family.config.from_dict(entry["config"])
    assert family.config.from_dict(model.config.to_dict()) == model.config, "the config round-trips through a plain dict"
    assert model.task in ("reconstruction", "classification") and model.payload_kind in ("integers", "symbols")
    assert model.modes and set(model.modes) <= set(MODES) and model.default_mode == model.modes[0]
    assert parse_snr_range(family.default_snrs)
    # the family's own links carry the payload of its default model; a variant with the other payload
    # (e.g. the analog twin of the masked VQ-VAE) is told so clearly
    default_payload = default_payload_kind(name)
    for spec in (family.default_link, family.sample_check.link if family.sample_check else None):
        if spec is None:
            continue
        from_spec(spec, default_payload)
        if model.payload_kind == default_payload:
            from_spec(spec, model.payload_kind)
        else:
            try:
                from_spec(spec, model.payload_kind)
            except ValueError as err:
                assert "carries" in str(err)
    for part in ("encoder", "digitizer", "decoder"):
        assert isinstance(getattr(model, part), nn.Module)
    for part in ("restorer", "head"):
        assert getattr(model, part) is None or isinstance(getattr(model, part), nn.Module)


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_the_output_keys_payload_and_accounting(name, variant):
    model, x, entry = build(name, variant)
    with torch.no_grad():
        out = model(x, link=link_for(model), snr_db=HIGH_SNR, generator=torch.Generator().manual_seed(2))
    assert isinstance(out, SystemOutput)
    assert {"payload", "received", "bits_per_image", "channel_uses_per_image"} <= set(out)
    assert ("x_hat" in out) if model.task == "reconstruction" else (out.get("logits") is not None)
    if out.get("x_hat") is not None:
        assert out["x_hat"].shape == x.shape and bool(((out["x_hat"] >= 0) & (out["x_hat"] <= 1)).all())
    if out.get("logits") is not None:
        assert out["logits"].shape == (2, model.config.classes)
    payload, received = out["payload"], out["received"]
    assert tuple(payload.shape) == (2, *entry["payload"]) and received.shape == payload.shape
    values = math.prod(entry["payload"])
    if model.payload_kind == "integers":
        bits = model.digitizer.bits_per_value
        assert payload.dtype == received.dtype == torch.int64
        assert int(payload.min()) >= 0 and int(payload.max()) < 2**bits and int(received.min()) >= 0 and int(received.max()) < 2**bits
        assert out["bits_per_image"] == values * bits
        assert out["channel_uses_per_image"] == values * bits / 4, "uncoded 16-QAM: 4 bits per channel use"
        assert torch.equal(received, payload), f"16-QAM at {HIGH_SNR} dB delivers every bit"
    else:
        assert payload.dtype == received.dtype == torch.complex64 and payload.dim() == 2
        assert out["bits_per_image"] == expected_bits(model, values)
        assert out["channel_uses_per_image"] == values, "one channel use per complex symbol"
        assert torch.allclose(payload.abs().pow(2).mean(1), torch.ones(2), atol=1e-4), "unit energy per image"
        noise = (received - payload).abs().pow(2).mean()
        assert 0 < float(noise) < 10 * 10 ** (-HIGH_SNR / 10)


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_channel_uses_follow_the_links_count(name, variant):
    model, x, entry = build(name, variant)
    values = math.prod(entry["payload"])
    with torch.no_grad():
        if model.payload_kind == "integers":
            bits = values * model.digitizer.bits_per_value
            coded = model(x, link=CODED_LINK, snr_db=HIGH_SNR, generator=torch.Generator().manual_seed(2))
            assert coded["channel_uses_per_image"] == math.ceil(bits / 512) * 1024 / 4, "rate 1/2 LDPC, k = 512: whole codewords of n = 1024 bits"
            assert torch.equal(coded["received"], coded["payload"])
            mimo = model(x, link="qpsk-mimo-4x2-svd", snr_db=HIGH_SNR, generator=torch.Generator().manual_seed(2))
            assert mimo["channel_uses_per_image"] == math.ceil(bits / 4) * 4 / 2, "QPSK on 2 eigenmodes: padded to whole uses of 2 symbols"
            link = from_spec(CODED_LINK)
            assert coded["channel_uses_per_image"] == link.channel_uses(coded["bits_per_image"])
        else:
            mimo = model(x, link="mimo-4x2-svd", snr_db=HIGH_SNR, generator=torch.Generator().manual_seed(2))
            assert mimo["channel_uses_per_image"] == values
            assert from_spec("mimo-4x2-svd", "symbols").channel_uses(values) == values
        intact = model(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(intact["received"], intact["payload"]), "without a link the payload arrives intact"
    assert intact["channel_uses_per_image"] is None
    assert intact["bits_per_image"] == expected_bits(model, values)


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_links_for_the_other_payload_are_refused(name, variant):
    model, x, _ = build(name, variant)
    wrong = SYMBOL_LINK if model.payload_kind == "integers" else BIT_LINK
    message = "carries complex symbols" if model.payload_kind == "integers" else "carries bits"
    with pytest.raises(ValueError, match=message):
        model(x, link={"kind": "symbols", "channel": "awgn"} if model.payload_kind == "integers" else wrong, snr_db=10.0)
    with pytest.raises(ValueError, match="snr_db"):
        model(x, link=link_for(model))  # a noisy link without an SNR


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_the_generator_drives_every_draw(name, variant):
    """Same generator seed, same output, whatever the global RNG does in between."""
    model, x, _ = build(name, variant)
    runs = []
    for global_seed in (10, 11):
        torch.manual_seed(global_seed)
        with torch.no_grad():
            runs.append(model(x, link=link_for(model), snr_db=0.0, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(runs[0]["received"], runs[1]["received"])
    assert torch.equal(task_output(model, runs[0]), task_output(model, runs[1]))
    with torch.no_grad():
        other = model(x, link=link_for(model), snr_db=0.0, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(other["received"], runs[0]["received"]), "another seed, other channel noise"


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_modes_are_checked_and_each_supported_mode_runs(name, variant):
    model, x, _ = build(name, variant)
    assert model.check_mode(None) == model.default_mode
    for mode in model.modes:
        assert model.check_mode(mode) == mode
        with torch.no_grad():
            out = model(x, mode=mode, generator=torch.Generator().manual_seed(0))
        assert task_output(model, out).shape[0] == 2
    for mode in [m for m in MODES if m not in model.modes] + ["bogus"]:
        with pytest.raises(ValueError, match=rf"supports modes .*{model.modes[0]}.*got '{mode}'"):
            model.check_mode(mode)
        with pytest.raises(ValueError, match="supports modes"):
            model(x, mode=mode)
    with pytest.raises(TypeError):
        model(x, link_for(model))  # link, snr_db and mode are keyword-only


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_with_parts_shares_weights_and_leaves_the_original_unchanged(name, variant):
    model, x, _ = build(name, variant)
    original_decoder = model.decoder
    keys = list(model.state_dict())
    generator = lambda: torch.Generator().manual_seed(3)
    with torch.no_grad():
        before = task_output(model, model(x, generator=generator()))

    twin = model.with_parts(decoder=copy.deepcopy(model.decoder))
    original_parameters = [p.detach().clone() for p in original_decoder.parameters()]
    assert type(twin) is type(model) and twin is not model
    assert twin.encoder is model.encoder and twin.digitizer is model.digitizer and twin.head is model.head
    assert twin.decoder is not original_decoder and model.decoder is original_decoder
    assert list(twin.state_dict()) == keys
    for (key, a), b in zip(model.encoder.state_dict().items(), twin.encoder.state_dict().values()):
        assert a.data_ptr() == b.data_ptr(), f"encoder weight {key} is shared, not copied"
    with torch.no_grad():
        assert torch.equal(task_output(twin, twin(x, generator=generator())), before), "identical parts, identical output"
        for parameter in twin.decoder.parameters():
            parameter.add_(0.5)
        # and (for decoders without weights too) the twin's decoder halves its first output
        twin.decoder.register_forward_hook(lambda module, inputs, out: (out[0] * 0.5, *out[1:]) if isinstance(out, tuple) else out * 0.5)
        changed = task_output(twin, twin(x, generator=generator()))
        again = task_output(model, model(x, generator=generator()))
    assert not torch.equal(changed, before)
    assert torch.equal(again, before), "the original keeps its own decoder"
    assert all(torch.equal(a, b) for a, b in zip(original_parameters, original_decoder.parameters()))
    assert list(model.state_dict()) == keys

    shared = model.with_parts(restorer=model.restorer)
    assert dict(shared.named_parameters()).keys() == dict(model.named_parameters()).keys()
    with pytest.raises(ValueError, match="unknown parts"):
        model.with_parts(quantizer=nn.Identity())


def test_what_is_registered_on_a_with_parts_copy_stays_on_it():
    model, x, _ = build("deepjscc", "analog")
    twin = model.with_parts(restorer=None)
    twin.register_buffer("extra", torch.zeros(1))
    calls = []
    twin.register_forward_hook(lambda module, inputs, out: calls.append(1))
    model(x)
    assert not calls and "extra" not in dict(model.named_buffers()), "hooks and buffers of the copy do not leak to the original"
    twin(x)
    assert calls == [1]
    jcm, _, _ = build("jcm", "16qam")
    assert jcm.with_parts(restorer=None).symbol_prior is jcm.symbol_prior, "the original's buffers are shared, not copied"


def test_a_restorer_plugged_in_with_with_parts_runs_on_the_received_symbols():
    """SCDM (kind "restorer") or the MMSE denoiser join a JCM codec through with_parts; the codec itself stays plain."""
    from digisem.systems.scdm import MMSEDenoiser

    torch.manual_seed(0)
    codec = FAMILIES["jcm"].build(TINY_CONFIGS["jcm"]["16qam"]["config"]).eval()
    scdm = FAMILIES["scdm"].build({"steps": 8, "score": {"channels": 8, "multipliers": [1, 1, 1], "heads": 2, "embed_dim": 16},
                                   "codec": TINY_CONFIGS["jcm"]["16qam"]["config"], "joint_decoder": True}).eval()
    assert type(scdm.decoder) is type(codec.decoder), "the joint decoder is the codec family's decoder"
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    prior = codec.digitizer.points()
    for restorer, decoder in ((scdm, scdm.decoder), (MMSEDenoiser(prior), codec.decoder)):
        system = codec.with_parts(restorer=restorer, decoder=decoder)
        with torch.no_grad():
            out = system(x, link="awgn", snr_db=5.0, generator=torch.Generator().manual_seed(2))
        assert out["restored"].shape == out["received"].shape and not torch.equal(out["restored"], out["received"])
        assert codec.restorer is None
    with torch.no_grad():
        plain = codec(x, link="awgn", snr_db=5.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(plain["restored"], plain["received"])
    with pytest.raises(ValueError, match="snr_db"):
        codec.with_parts(restorer=scdm)(x)


def test_the_registry_refuses_a_second_family_under_a_known_name_and_names_the_known_ones():
    from digisem.systems.base import register_system

    with pytest.raises(ValueError, match="already registered"):
        register_system("ampsc", config=FAMILIES["ampsc"].config)(type("Impostor", (System,), {"__doc__": "Not AMP-SC."}))
    assert type(FAMILIES["ampsc"].cls).__name__ != "Impostor" and FAMILIES["ampsc"].cls.__name__ == "AMPSC"
    with pytest.raises(KeyError, match="known: .*ampsc"):
        FAMILIES["nope"]
    assert "jcm" in FAMILIES and "nope" not in FAMILIES
