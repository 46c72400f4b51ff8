import pytest
import torch
from conftest import assert_rate_within_binomial
from torch.utils.data import TensorDataset

from digisem.data import sample_images
from digisem.evaluate import average_over, evaluate_images, make_image_link
from digisem.link import bsc_flip_probability
from digisem.systems.ampsc import AMPSC, AMPSCConfig


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = AMPSC(AMPSCConfig(preset="cifar", width=8, irsnet=False, kernel_size=3))
    return model, TensorDataset(sample_images("cifar")[0])


def test_no_bit_errors_channel_and_bsc_rate(tiny):
    model, data = tiny
    clean = evaluate_images(model, data, [0.0, 18.0], "none", progress=False)
    assert clean["ber"] == [0.0, 0.0] and clean["psnr"][0] == clean["psnr"][1]
    noisy = evaluate_images(model, data, [0.0], "bsc", progress=False)
    bits = 8 * 512 * 4
    assert_rate_within_binomial(round(noisy["ber"][0] * bits), bits, float(bsc_flip_probability("16qam", 0.0)))


def test_same_seed_same_numbers_and_schema(tiny):
    model, data = tiny
    a = evaluate_images(model, data, [3.0, 6.0], "awgn", seed=1, progress=False)
    b = evaluate_images(model, data, [3.0, 6.0], "awgn", seed=1, progress=False)
    assert a == b
    assert set(a) == {"snr_db", "psnr", "ssim", "ms_ssim", "ber"}
    assert average_over({"snr_db": [0, 9, 18, 21], "psnr": [10, 20, 30, 99]}, "psnr", 0, 18) == 20


def test_awgn_link_converts_ebn0_to_esn0():
    assert make_image_link("awgn").snr_for(0.0) == pytest.approx(6.0206, abs=1e-3)
    assert make_image_link("bsc").snr_for(3.0) == 3.0 and make_image_link("none").snr_for(3.0) is None
    with pytest.raises(ValueError, match="unknown evaluation channel"):
        make_image_link("fiber")


def test_analog_channel_skips_quantization_and_is_flat(tiny):
    model, data = tiny
    analog = evaluate_images(model, data, [0.0, 9.0, 18.0], "analog", progress=False)
    assert analog["psnr"][0] == analog["psnr"][1] == analog["psnr"][2]
    quantized = evaluate_images(model, data, [0.0], "none", progress=False)
    assert analog["psnr"][0] != quantized["psnr"][0]
