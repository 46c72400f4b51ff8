import pytest
import torch
from PIL import Image

from digisem import zoo
from digisem.cli import main
from digisem.imageio import read_image, tile, untile
from digisem.systems.ampsc import AMPSC, AMPSCConfig
from digisem.weights import save_weights

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


def test_publish_records_sample_psnr_that_load_reproduces(tiny_zoo):
    assert zoo.zoo_names() == ["ampsc-cifar10-4bit", "softhe22-cifar10-4bit"]
    model, metadata = zoo.load("ampsc-cifar10-4bit")
    assert zoo.sample_psnr(model, metadata) == pytest.approx(metadata["sample_check"]["psnr"], abs=0.01)


def test_demo_writes_plot_grid_and_report(tiny_zoo, capsys):
    out = tiny_zoo / "demo"
    assert main(["demo", "--out", str(out), "--snr", "0,9", "--quiet"]) == 0
    for name in ("psnr.png", "grid.png", "report.html", "report.md", "ampsc-cifar10-4bit-awgn.json", "softhe22-cifar10-4bit-bsc.json"):
        assert (out / name).is_file(), name
    assert "<img src='psnr.png'" in (out / "report.html").read_text()
    assert "report.html" in capsys.readouterr().out
    assert main(["zoo"]) == 0


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
def test_every_zoo_model_reproduces_its_recorded_sample_psnr(name):
    model, metadata = zoo.load(name)
    assert zoo.sample_psnr(model, metadata) == pytest.approx(metadata["sample_check"]["psnr"], abs=0.01)
