import json

import pytest
import torch
from PIL import Image

from digisem import zoo
from digisem.cli import main
from digisem.imageio import read_image, tile, untile
from digisem.systems.ampsc import AMPSC, AMPSCConfig
from digisem.systems.deepjscc import DeepJSCC, DeepJSCCConfig
from digisem.systems.jcm import JCM, JCMConfig
from digisem.systems.scdm import SCDM, SCDMConfig
from digisem.weights import read_weights, save_weights

CONFIG = {"preset": "cifar", "width": 4, "num_bits": 4, "ratio": 1 / 6, "irsnet": False, "irsnet_width": 2, "kernel_size": 3, "alpha": 0.5}


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    """Two tiny models published under the demo's zoo names into a temporary zoo folder."""
    monkeypatch.setattr(zoo, "zoo_dir", lambda: tmp_path / "zoo")
    for index, name in enumerate(("ampsc-cifar10-4bit", "softhe22-cifar10-4bit")):
        torch.manual_seed(index)
        save_weights(AMPSC(AMPSCConfig.from_dict(CONFIG)), tmp_path / name / "model.safetensors", {"system": "ampsc", "config": CONFIG, "name": name.upper(), "recipe": "test"})
        zoo.publish(tmp_path / name, name)
    return tmp_path


@pytest.fixture
def tiny_symbol_zoo(tiny_zoo):
    """Adds a tiny JCM (with a fitted symbol prior) and a tiny SCDM with a joint decoder under the demo's names."""
    jcm_config = {"order": 64, "channel_uses": 128, "width": 4, "decoder_blocks": 1, "temperature": 1.5, "classes": 0, "prior_size": 256}
    torch.manual_seed(0)
    codec = JCM(JCMConfig.from_dict(jcm_config))
    codec.fit_symbol_prior(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0))
    save_weights(codec, tiny_zoo / "jcm" / "model.safetensors", {"system": "jcm", "config": jcm_config, "name": "JCM", "recipe": "test"})
    zoo.publish(tiny_zoo / "jcm", "jcm-cifar10-64qam", half=True)
    scdm_config = SCDMConfig(steps=8, sigma_min=0.1, score={"channels": 8, "multipliers": [1, 1, 1], "heads": 2, "embed_dim": 16}, codec=jcm_config, joint_decoder=True)
    save_weights(SCDM(scdm_config), tiny_zoo / "scdm" / "model.safetensors", {"system": "scdm", "config": scdm_config.to_dict(), "name": "SCDM", "recipe": "test"})
    zoo.publish(tiny_zoo / "scdm", "scdm-cifar10-64qam", codec="jcm-cifar10-64qam", half=True)
    return tiny_zoo


@pytest.fixture
def tiny_analog_zoo(tiny_symbol_zoo):
    """Adds a tiny DeepJSCC (bandwidth ratio 1/6: 3072 / 6 = 512 symbols per 32x32 image) under the demo's name."""
    config = {"ratio": 1 / 6, "width": 2}
    torch.manual_seed(0)
    save_weights(DeepJSCC(DeepJSCCConfig.from_dict(config)), tiny_symbol_zoo / "deepjscc" / "model.safetensors", {"system": "deepjscc", "config": config, "name": "DeepJSCC", "recipe": "test"})
    zoo.publish(tiny_symbol_zoo / "deepjscc", "deepjscc-cifar10-1_6")
    return tiny_symbol_zoo


def test_publish_records_sample_psnr_that_load_reproduces(tiny_zoo):
    assert zoo.zoo_names() == ["ampsc-cifar10-4bit", "softhe22-cifar10-4bit"]
    model, metadata = zoo.load("ampsc-cifar10-4bit")
    assert zoo.sample_score(model, metadata)["psnr"] == pytest.approx(metadata["sample_check"]["psnr"], abs=0.01)


def test_demo_writes_plot_grid_and_report(tiny_zoo, capsys):
    out = tiny_zoo / "demo"
    assert main(["demo", "--out", str(out), "--snr", "0,9", "--quiet"]) == 0
    for name in ("psnr.png", "grid.png", "report.html", "report.md", "ampsc-cifar10-4bit-awgn.json", "softhe22-cifar10-4bit-bsc.json"):
        assert (out / name).is_file(), name
    assert "<img src='psnr.png'" in (out / "report.html").read_text()
    assert "Symbol-level" not in (out / "report.md").read_text(), "no JCM/SCDM in this zoo: that part is skipped"
    assert "report.html" in capsys.readouterr().out
    assert main(["zoo"]) == 0


def test_demo_includes_jcm_and_scdm_when_the_zoo_has_them(tiny_symbol_zoo, capsys):
    out = tiny_symbol_zoo / "demo"
    assert main(["demo", "--out", str(out), "--snr", "0,9", "--quiet"]) == 0
    for name in ("psnr_scdm.png", "grid_scdm.png", "jcm-64qam-none.json", "jcm-64qam-mmse.json", "jcm-64qam-scdm-joint.json"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "## Symbol-level systems" in report and "| SCDM + joint decoder |" in report and "-18 dB" in report
    assert main(["zoo"]) == 0
    listing = capsys.readouterr().out
    assert "jcm-cifar10-64qam" in listing and "scdm-cifar10-64qam" in listing


def test_demo_adds_deepjscc_as_the_analog_reference_when_the_zoo_has_it(tiny_analog_zoo):
    out = tiny_analog_zoo / "demo"
    assert main(["demo", "--out", str(out), "--snr", "0,9", "--quiet"]) == 0
    for name in ("psnr_scdm.png", "grid_scdm.png", "jcm-64qam-none.json", "jcm-64qam-scdm-joint.json", "deepjscc-cifar10-1_6-awgn.json"):
        assert (out / name).is_file(), name
    results = json.loads((out / "deepjscc-cifar10-1_6-awgn.json").read_text())
    assert results["model"] == "deepjscc-cifar10-1_6" and results["meta"]["modulation"] == "analog"
    assert results["results"]["snr_db"] == [-18.0, -12.0, -6.0, 0.0, 6.0, 12.0, 18.0] and len(results["results"]["psnr"]) == 7
    assert results["results"]["channel_uses"] == [512.0] * 7
    report = (out / "report.md").read_text()
    assert "| DeepJSCC |" in report and "| SCDM + joint decoder |" in report
    assert "DeepJSCC as the analog reference (512 symbols per image)" in report
    model, metadata = zoo.load("deepjscc-cifar10-1_6")
    assert metadata["sample_check"]["link"] == "awgn" and metadata["sample_check"]["snr_kind"] == "esn0"
    assert zoo.sample_score(model, metadata)["psnr"] == pytest.approx(metadata["sample_check"]["psnr"], abs=0.01)


def test_published_scdm_reproduces_its_sample_psnr_through_its_codec(tiny_symbol_zoo):
    for name in ("jcm-cifar10-64qam", "scdm-cifar10-64qam"):
        model, metadata = zoo.load(name)
        assert zoo.sample_score(model, metadata)["psnr"] == pytest.approx(metadata["sample_check"]["psnr"], abs=0.01)
    assert zoo.load("scdm-cifar10-64qam")[1]["codec"] == "jcm-cifar10-64qam"
    stored, metadata = read_weights(zoo.resolve_weights("jcm-cifar10-64qam"))
    assert stored["encoder.logits.weight"].dtype == torch.float16 and metadata["storage"].startswith("float16")
    model, _ = zoo.load("jcm-cifar10-64qam")
    assert model.encoder.logits.weight.dtype == torch.float32


def test_send_tiles_any_image_and_reports_psnr(tiny_zoo, capsys):
    image_path = tiny_zoo / "gray.png"
    Image.fromarray((torch.rand(40, 70) * 255).byte().numpy(), mode="L").save(image_path)
    assert main(["send", str(image_path), "--model", "ampsc-cifar10-4bit", "--snr", "5", "--out", str(tiny_zoo / "rx.png")]) == 0
    assert Image.open(tiny_zoo / "rx.png").size == (70, 40)
    assert "6 blocks of 32x32" in capsys.readouterr().out
    assert main(["send", str(tiny_zoo / "missing.png"), "--model", "ampsc-cifar10-4bit"]) == 2
    (tiny_zoo / "broken.png").write_bytes(b"not an image")
    assert main(["send", str(tiny_zoo / "broken.png"), "--model", "ampsc-cifar10-4bit"]) == 2


def test_tile_round_trip():
    image = torch.rand(3, 33, 65)
    tiles, layout = tile(image, 32)
    assert tiles.shape == (6, 3, 32, 32) and torch.equal(untile(tiles, layout), image)
    with pytest.raises(ValueError, match="RGB image"):
        tile(torch.rand(1, 32, 32), 32)


def test_read_image_converts_modes(tmp_path):
    Image.new("RGBA", (5, 4), (255, 0, 0, 10)).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (3, 4, 5) and image[0].min() == 1.0


@pytest.mark.parametrize("name", zoo.zoo_names())
def test_every_zoo_model_reproduces_its_recorded_sample_score(name):
    model, metadata = zoo.load(name)
    scores = zoo.sample_score(model, metadata)
    assert scores
    for key, value in scores.items():
        assert value == pytest.approx(metadata["sample_check"][key], abs=0.01)
