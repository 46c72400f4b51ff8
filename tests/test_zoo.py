import hashlib

import pytest
import torch

from digisem import zoo
from digisem.systems.ampsc import AMPSC, AMPSCConfig
from digisem.weights import CheckpointError, save_weights

CONFIG = {"preset": "cifar", "width": 8, "num_bits": 4, "ratio": 1 / 6, "irsnet": False, "irsnet_width": 4, "kernel_size": 3, "alpha": 0.5}


def saved_model(path):
    torch.manual_seed(0)
    model = AMPSC(AMPSCConfig.from_dict(CONFIG))
    save_weights(model, path, {"system": "ampsc", "config": CONFIG, "name": "tiny"})
    return model


def test_load_run_folder_rebuilds_model_from_metadata(tmp_path):
    model = saved_model(tmp_path / "run" / "model.safetensors")
    loaded, metadata = zoo.load(tmp_path / "run")
    assert metadata["name"] == "tiny" and not loaded.training
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_zoo_checksum_pins_the_file(tmp_path, monkeypatch):
    saved_model(tmp_path / "tiny-model.safetensors")
    digest = hashlib.sha256((tmp_path / "tiny-model.safetensors").read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  tiny-model.safetensors\n")
    monkeypatch.setattr(zoo, "zoo_dir", lambda: tmp_path)
    assert zoo.zoo_names() == ["tiny-model"]
    zoo.load("tiny-model")
    data = bytearray((tmp_path / "tiny-model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "tiny-model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted: sha256"):
        zoo.load("tiny-model")


def test_missing_and_unknown_system(tmp_path):
    with pytest.raises(CheckpointError, match="no model 'nope'"):
        zoo.load("nope")
    model = torch.nn.Linear(2, 2)
    save_weights(model, tmp_path / "w.safetensors", {"system": "linear", "config": {}})
    with pytest.raises(CheckpointError, match="known systems"):
        zoo.load(tmp_path / "w.safetensors")


@pytest.mark.parametrize("name", zoo.zoo_names())
def test_every_zoo_model_loads_strictly_under_the_current_part_names(name):
    """Each bundled file fits its family's model key for key (``load_weights`` is strict), names a
    registered family, and a system's parts are the contract's (``digitizer``, never ``quantizer``)."""
    from digisem.systems import FAMILIES

    model, metadata = zoo.load(name)
    assert metadata["system"] in FAMILIES and isinstance(model, FAMILIES[metadata["system"]].cls)
    assert not any(key.startswith("quantizer.") for key in model.state_dict())
    if FAMILIES[metadata["system"]].kind == "system":
        assert model.digitizer.payload_kind in ("integers", "symbols")
        assert FAMILIES[metadata["system"]].sample_check is not None
