"""The one SNR sweep (digisem.evaluate.sweep) against independent truth: oracle systems whose
outputs are known exactly, closed-form BERs, the Eb/N0 <-> Es/N0 conversion, seeds, attacks."""

import math

import pytest
import torch
from conftest import assert_rate_within_binomial
from torch import nn
from torch.utils.data import TensorDataset

from digisem.digitize import AnalogSymbols, ScalarQuantizer
from digisem.evaluate import average_over, sweep
from digisem.link import BSCLink, ber_awgn, bsc_flip_probability
from digisem.systems.base import System, SystemOutput

IMAGE_SHAPE = (3, 32, 32)
BITS_PER_IMAGE = 8 * 3 * 32 * 32


class PixelSystem(System):
    """Oracle: the payload is the image itself as 8-bit integers (``round(255 x)``) and ``x_hat`` is
    what arrives, so every payload error is a pixel error and an intact payload gives ``x_hat == x``.
    ``logits`` read the class off the mean brightness (class ``k`` images have mean ``(k + 0.5) / 4``)."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Identity(), nn.Identity()
        self.digitizer = ScalarQuantizer(8)
        self.restorer = self.head = None
        self.calls = 0

    def run(self, x, *, link, snr_db, mode, generator, **options):
        self.calls += 1
        payload = self.digitizer.to_payload(x * 255 - self.digitizer.offset)
        received = self.send(payload, link, snr_db, generator)
        x_hat = (self.digitizer.from_payload(received) + self.digitizer.offset) / 255
        centres = (torch.arange(4) + 0.5) / 4
        logits = -(x_hat.mean((1, 2, 3))[:, None] - centres[None, :]).abs()
        return SystemOutput(x_hat=x_hat, logits=logits, payload=payload, received=received, **self.accounting(payload, link))


class SymbolSystem(System):
    """Oracle over a symbol link: the image's values paired into unit-energy complex symbols, decoded
    as a constant grey (the reconstruction does not matter here, the symbols do)."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Identity(), nn.Identity()
        self.digitizer = AnalogSymbols()
        self.restorer = self.head = None

    @property
    def modes(self):
        return ("analog",)

    def run(self, x, *, link, snr_db, mode, generator, **options):
        payload = self.digitizer.to_payload(x - 0.5)
        received = self.send(payload, link, snr_db, generator)
        return SystemOutput(x_hat=torch.full_like(x, 0.5), payload=payload, received=received, **self.accounting(payload, link))


def pixel_images(count: int, seed: int = 0, side: int = 32) -> torch.Tensor:
    """Images on the 8-bit grid (so the oracle's payload round trip is exact)."""
    return torch.randint(0, 256, (count, 3, side, side), generator=torch.Generator().manual_seed(seed)).float() / 255


def labelled_images(count: int = 8) -> TensorDataset:
    """Class ``k`` images: uniform noise of width 0.2 around brightness ``(k + 0.5) / 4`` on the 8-bit grid."""
    labels = torch.arange(count) % 4
    noise = torch.rand(count, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(1)) * 0.2 - 0.1
    images = torch.round(((labels.float() + 0.5) / 4)[:, None, None, None].add(noise).clamp(0, 1) * 255) / 255
    return TensorDataset(images, labels)


@pytest.fixture(scope="module")
def images():
    return TensorDataset(pixel_images(4))


def test_an_error_free_link_delivers_the_oracle_exactly(images):
    result = sweep(PixelSystem(), "none", [0.0, 10.0], images, progress=False, batch_size=3)
    assert result["snr_db"] == [0.0, 10.0]
    assert result["ber"] == [0.0, 0.0] and result["psnr"] == [math.inf, math.inf]
    assert result["ssim"] == pytest.approx([1.0, 1.0]) and result["ms_ssim"] == pytest.approx([1.0, 1.0])
    assert "channel_uses" not in result, "a fixed-p BSC names no modulation, so no channel-use count"
    fixed = sweep(PixelSystem(), BSCLink(p=0.0), [3.0], images, progress=False)
    assert fixed["ber"] == [0.0] and fixed["psnr"] == [math.inf]


def test_a_fixed_p_bsc_flips_bits_at_p(images):
    result = sweep(PixelSystem(), BSCLink(p=0.05), [0.0], images, progress=False)
    bits = len(images) * BITS_PER_IMAGE
    assert_rate_within_binomial(round(result["ber"][0] * bits), bits, 0.05)
    assert result["psnr"][0] < 30


@pytest.mark.parametrize("snr_kind, ebn0", [("ebn0", 2.0), ("esn0", 2.0 - 10 * math.log10(4))])
def test_the_bsc_takes_its_flip_probability_from_16qam_at_the_points_eb_n0(images, snr_kind, ebn0):
    """``"bsc"`` is the 16-QAM Gray BER at Eb/N0; an Es/N0 axis is converted first (Eb/N0 = Es/N0 - 10 log10 4)."""
    result = sweep(PixelSystem(), "bsc", [2.0], images, snr_kind=snr_kind, progress=False)
    bits = len(images) * BITS_PER_IMAGE
    assert_rate_within_binomial(round(result["ber"][0] * bits), bits, float(bsc_flip_probability("16qam", ebn0, "ebn0")))
    assert result["channel_uses"] == [BITS_PER_IMAGE / 4]


def test_a_16qam_awgn_link_matches_the_closed_form_ber_and_counts_channel_uses(images):
    result = sweep(PixelSystem(), "16qam-awgn", [4.0, 12.0], images, progress=False)
    bits = len(images) * BITS_PER_IMAGE
    for snr, ber in zip(result["snr_db"], result["ber"]):
        assert_rate_within_binomial(round(ber * bits), bits, float(ber_awgn("16qam", snr, "esn0")))
    assert result["channel_uses"] == [BITS_PER_IMAGE / 4] * 2
    assert result["psnr"][0] < result["psnr"][1]
    coded = sweep(PixelSystem(), "16qam-awgn-ldpc-1/2", [12.0], TensorDataset(pixel_images(1, side=16)), progress=False)
    assert coded["ber"] == [0.0], "rate 1/2 LDPC at 12 dB Es/N0 corrects everything"
    assert coded["channel_uses"] == [2 * 8 * 3 * 16 * 16 / 4], "6144 bits in 12 blocks of k = 512, coded to n = 1024"


def test_an_eb_n0_axis_is_converted_to_the_links_es_n0(images):
    """Eb/N0 e on uncoded 16-QAM is Es/N0 e + 10 log10(4); with LDPC rate 1/2, e + 10 log10(2): the
    measured BER matches the closed form at the converted point (within binomial bounds)."""
    result = sweep(PixelSystem(), "16qam-awgn", [4.0], images, snr_kind="ebn0", seed=3, progress=False)
    bits = len(images) * BITS_PER_IMAGE
    assert result["snr_db"] == [4.0]
    assert_rate_within_binomial(round(result["ber"][0] * bits), bits, float(ber_awgn("16qam", 4.0, "ebn0")))
    assert_rate_within_binomial(round(result["ber"][0] * bits), bits, float(ber_awgn("16qam", 4.0 + 10 * math.log10(4), "esn0")))
    small = TensorDataset(pixel_images(1, side=16))
    low = sweep(PixelSystem(), "16qam-awgn-ldpc-1/2", [0.0], small, snr_kind="ebn0", progress=False)
    high = sweep(PixelSystem(), "16qam-awgn-ldpc-1/2", [0.0 + 10 * math.log10(2) + 8.0], small, snr_kind="esn0", progress=False)
    assert low["ber"][0] > 0.01 and high["ber"][0] == 0.0, "rate 1/2 16-QAM LDPC fails at Eb/N0 0 dB and decodes at Es/N0 11 dB"


def test_the_same_seed_gives_the_same_numbers_and_another_seed_other_noise(images):
    a = sweep(PixelSystem(), "16qam-awgn", [3.0, 6.0], images, seed=1, progress=False)
    b = sweep(PixelSystem(), "16qam-awgn", [3.0, 6.0], images, seed=1, progress=False)
    c = sweep(PixelSystem(), "16qam-awgn", [3.0, 6.0], images, seed=2, progress=False)
    assert a == b
    assert a["ber"] != c["ber"]
    assert set(a) == {"snr_db", "psnr", "ssim", "ms_ssim", "ber", "channel_uses"}


def test_without_a_link_every_point_is_computed_once_and_repeated(images):
    system = PixelSystem()
    result = sweep(system, None, [0.0, 5.0, 10.0], images, progress=False, batch_size=2)
    assert system.calls == 2, "two batches, one computation for all three SNRs"
    assert result["snr_db"] == [0.0, 5.0, 10.0] and result["psnr"] == [math.inf] * 3 and result["ber"] == [0.0] * 3


def test_accuracy_comes_from_logits_and_labels():
    data = labelled_images()
    result = sweep(PixelSystem(), "none", [0.0], data, progress=False)
    assert result["accuracy"] == [1.0]
    noisy = sweep(PixelSystem(), BSCLink(p=0.5), [0.0], data, progress=False)
    assert noisy["accuracy"][0] < 1.0, "coin-flip bits erase the brightness"


def test_symbol_payloads_report_the_channel_noise_per_complex_symbol():
    """AWGN at Es/N0 s adds complex noise of variance N0 = 10^(-s/10) to unit-energy symbols."""
    data = TensorDataset(pixel_images(2))
    result = sweep(SymbolSystem(), "awgn", [0.0, 10.0], data, progress=False)
    symbols = 2 * 3 * 32 * 32 // 2
    for snr, mse in zip(result["snr_db"], result["latent_mse_channel"]):
        assert mse == pytest.approx(10 ** (-snr / 10), rel=6 / math.sqrt(symbols))
    assert result["latent_mse"] == result["latent_mse_channel"], "no restorer: the decoder sees the received symbols"
    assert result["channel_uses"] == [3 * 32 * 32 / 2] * 2
    assert "ber" not in result


def test_an_attack_adds_the_attacked_metrics():
    data = labelled_images(4)

    def identity(loss_fn, x, generator=None):
        losses = loss_fn(x)
        assert losses.shape == (x.shape[0],), "the attack gets per-example task losses"
        return x

    def darken(loss_fn, x, generator=None):
        return (x - 0.25).clamp(0, 1)

    same = sweep(PixelSystem(), "none", [0.0], data, attack=identity, progress=False)
    assert same["accuracy_attacked"] == same["accuracy"] == [1.0] and same["psnr_attacked"] == same["psnr"]
    dark = sweep(PixelSystem(), "none", [0.0], data, attack=darken, progress=False)
    assert dark["accuracy_attacked"][0] < 1.0
    images = data.tensors[0]
    delivered = torch.round((images - 0.25).clamp(0, 1) * 255) / 255  # the oracle's 8-bit payload of the attacked images
    expected = (10 * torch.log10(1 / (delivered - images).pow(2).flatten(1).mean(1))).mean()
    assert dark["psnr_attacked"][0] == pytest.approx(float(expected), abs=1e-4)
    assert "ssim_attacked" not in dark and "ber_attacked" not in dark


def test_a_real_attack_from_its_spec_lowers_a_differentiable_systems_psnr():
    from digisem.attacks import from_spec
    from digisem.systems.deepjscc import DeepJSCC, DeepJSCCConfig

    torch.manual_seed(0)
    model = DeepJSCC(DeepJSCCConfig(width=2))
    data = TensorDataset(pixel_images(2))
    result = sweep(model, "awgn", [10.0], data, attack=from_spec({"kind": "fgsm", "epsilon": 0.1}), progress=False)
    assert result["psnr_attacked"][0] < result["psnr"][0]


def test_bad_sweeps_are_refused(images):
    with pytest.raises(ValueError, match="at least one SNR"):
        sweep(PixelSystem(), "none", [], images, progress=False)
    with pytest.raises(ValueError, match="empty"):
        sweep(PixelSystem(), "none", [0.0], TensorDataset(torch.zeros(0, *IMAGE_SHAPE)), progress=False)
    with pytest.raises(ValueError, match="SNR kind"):
        sweep(PixelSystem(), "none", [0.0], images, snr_kind="sinr", progress=False)
    with pytest.raises(ValueError, match="carries complex symbols"):
        sweep(PixelSystem(), {"kind": "symbols", "channel": "awgn"}, [0.0], images, progress=False)
    with pytest.raises(ValueError, match="supports modes"):
        sweep(PixelSystem(), "none", [0.0], images, mode="relaxed", progress=False)


def test_average_over_an_snr_window():
    assert average_over({"snr_db": [0, 9, 18, 21], "psnr": [10, 20, 30, 99]}, "psnr", 0, 18) == 20
    with pytest.raises(ValueError, match="no SNR points"):
        average_over({"snr_db": [0], "psnr": [1]}, "psnr", 5, 6)


# ---------------------------------------------------------------------------------------------------
# send_image: an image of any size, streamed block by block


class NoisyCopy(nn.Module):
    """Oracle for send_image: ``x_hat = x + 0.05 * N(0, 1)`` from the given generator (shift 0.1 for
    noise-free copies with a known error), so the PSNR is known in closed form."""

    def __init__(self, noise=0.05, shift=0.0):
        super().__init__()
        self.noise, self.shift, self.calls = noise, shift, []

    def forward(self, x, *, link=None, snr_db=None, mode=None, generator=None):
        self.calls.append(x.shape[0])
        return {"x_hat": x + self.shift + self.noise * torch.randn(x.shape, generator=generator)}


@pytest.mark.parametrize("height,width,batch_size", [(70, 45, 2), (64, 96, 256), (33, 31, 1), (40, 130, 7)])
def test_send_image_streams_row_by_row_and_matches_one_tiled_call(height, width, batch_size):
    import numpy as np

    from digisem.evaluate import send_image
    from digisem.imageio import tile, to_pixels, untile

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    streamed, value = send_image(NoisyCopy(), pixels, 16, link=None, snr_db=0.0, generator=torch.Generator().manual_seed(3), batch_size=batch_size)
    # one tiled call over the whole float image, the same batches and the same generator
    image = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255.0
    tiles, layout = tile(image, 16)
    generator, system = torch.Generator().manual_seed(3), NoisyCopy()
    x_hat = torch.cat([system(batch, generator=generator)["x_hat"] for batch in tiles.split(batch_size)]).clamp(0, 1)
    whole = untile(x_hat, layout)
    assert np.array_equal(streamed, to_pixels(whole))
    mse = float((whole - image).double().pow(2).mean())
    assert value == pytest.approx(10 * math.log10(1 / mse), abs=1e-6)


def test_send_image_of_an_exact_copy_returns_the_pixels_and_the_psnr_of_a_known_shift():
    import numpy as np

    from digisem.evaluate import send_image

    pixels = np.full((50, 37, 3), 100, dtype=np.uint8)
    copy, value = send_image(NoisyCopy(noise=0.0), pixels, 16, link=None, snr_db=0.0, batch_size=5)
    assert np.array_equal(copy, pixels) and value > 250  # error 0 -> PSNR 10 log10(1 / 1e-30)
    shifted, value = send_image(NoisyCopy(noise=0.0, shift=0.1), pixels, 16, link=None, snr_db=0.0, batch_size=5)
    assert value == pytest.approx(20.0, abs=1e-4)  # MSE = 0.1^2 -> 20 dB
    assert np.all(shifted == round((100 / 255 + 0.1) * 255))


def test_send_image_sends_full_batches_and_refuses_bad_input():
    import numpy as np

    from digisem.evaluate import send_image
    from digisem.link.errors import InputError

    system = NoisyCopy()
    send_image(system, np.zeros((48, 80, 3), dtype=np.uint8), 16, link=None, snr_db=0.0, batch_size=4)
    assert system.calls == [4, 4, 4, 3]  # 15 tiles, row-major, batches across rows
    with pytest.raises(InputError, match=r"pixels must be \[H, W, 3\] uint8"):
        send_image(system, np.zeros((48, 80, 3), dtype=np.float32), 16, link=None, snr_db=0.0)
    with pytest.raises(InputError, match="batch_size must be >= 1"):
        send_image(system, np.zeros((48, 80, 3), dtype=np.uint8), 16, link=None, snr_db=0.0, batch_size=0)


# ---------------------------------------------------------------------------------------------------
# encode once per sweep


def _systems_that_encode_once():
    from digisem.systems.ampsc import AMPSC, AMPSCConfig
    from digisem.systems.classical import SeparateCoding, SeparateCodingConfig
    from digisem.systems.deepjscc import DeepJSCC, DeepJSCCConfig
    from digisem.systems.jcm import JCM, JCMConfig

    torch.manual_seed(0)
    return [
        ("ampsc", AMPSC(AMPSCConfig(width=8, irsnet_width=4)), "16qam-awgn", "ebn0"),
        ("deepjscc", DeepJSCC(DeepJSCCConfig(width=4)), "awgn", "esn0"),
        ("jcm", JCM(JCMConfig(width=8)), "awgn", "esn0"),
        ("separate", SeparateCoding(SeparateCodingConfig("webp", 2048)), "qpsk-awgn-ldpc-1/2", "esn0"),
    ]


@pytest.mark.parametrize("index", range(4), ids=["ampsc", "deepjscc", "jcm", "separate"])
def test_a_sweep_encodes_each_batch_once_with_the_numbers_of_encoding_at_every_snr(index, monkeypatch):
    from digisem.data import sample_images

    _, system, link, snr_kind = _systems_that_encode_once()[index]
    images = TensorDataset(sample_images("cifar")[0][:6])
    calls = []
    system.encoder.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    snrs = [0.0, 6.0, 12.0]
    once = sweep(system, link, snrs, images, snr_kind=snr_kind, batch_size=4, progress=False)
    assert calls == [4, 2]  # one call per batch, not one per batch and SNR
    monkeypatch.setattr(type(system), "encodes_once", False)
    calls.clear()
    every = sweep(system, link, snrs, images, snr_kind=snr_kind, batch_size=4, progress=False)
    assert calls == [4, 4, 4, 2, 2, 2]
    assert once == every


@pytest.mark.parametrize("index", range(3), ids=["ampsc", "deepjscc", "jcm"])
def test_a_bf16_sweep_runs_the_networks_in_bfloat16_and_scores_in_float32(index):
    from digisem.data import sample_images

    _, system, link, snr_kind = _systems_that_encode_once()[index]
    images = TensorDataset(sample_images("cifar")[0][:6])
    dtypes = []
    system.decoder.register_forward_hook(lambda module, inputs, output: dtypes.append((output[0] if isinstance(output, tuple) else output).dtype))
    snrs = [0.0, 12.0]
    full = sweep(system, link, snrs, images, snr_kind=snr_kind, batch_size=3, progress=False)
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    half = sweep(system, link, snrs, images, snr_kind=snr_kind, batch_size=3, progress=False, precision="bf16")
    assert set(dtypes) == {torch.bfloat16}
    # bfloat16 keeps 8 significant bits: the same images to a few hundredths of a dB
    assert half["psnr"] == pytest.approx(full["psnr"], abs=0.1)
    assert half["ssim"] == pytest.approx(full["ssim"], abs=0.01)
    with pytest.raises(ValueError, match="precision must be one of"):
        sweep(system, link, snrs, images, snr_kind=snr_kind, progress=False, precision="fp16")


# ---------------------------------------------------------------------------------------------------
# a sweep under torchrun


@pytest.mark.slow
def test_eval_under_torchrun_shares_the_snr_points_and_gives_the_single_process_numbers(tmp_path):
    import json
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun") or pytest.skip("torchrun is not on PATH")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    eval_args = ["-m", "digisem.cli", "eval", "ampsc-cifar10-4bit", "--data", "samples", "--snr", "0,4,8,12,16", "--quiet"]
    single = subprocess.run([sys.executable, *eval_args, "--out", str(tmp_path / "one")], capture_output=True, text=True, timeout=600, env=env)
    assert single.returncode == 0, single.stderr[-3000:]
    sharded = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", *eval_args, "--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=600, env=env)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["results"] == one["results"] and two["meta"]["ranks"] == 2 and one["meta"]["ranks"] == 1
