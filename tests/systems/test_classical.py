"""The classical reference: codecs and their budget search, MCS links, failures and fallback, capacity, the auto envelope, bad input."""

import math

import pytest
import torch

from digisem.data import sample_images
from digisem.metrics import psnr
from digisem.systems.classical import (
    SeparateCoding,
    bits_to_bytes,
    bytes_to_bits,
    decode_jpeg,
    jpeg_bytes,
    jpeg_for_budget,
)


def test_jpeg_round_trip_and_budget_search():
    image = sample_images("cifar")[0][0]
    data, quality = jpeg_for_budget(image, 8 * 1000)
    assert 8 * len(data) <= 8 * 1000
    assert quality == 95 or 8 * len(jpeg_bytes(image, quality + 1)) > 8 * 1000, "the highest quality that fits"
    decoded = decode_jpeg(bits_to_bytes(bytes_to_bits(data)), (32, 32))
    assert decoded is not None and decoded.shape == (3, 32, 32)
    assert float(psnr(decoded[None], image[None])) > 20
    low = decode_jpeg(jpeg_for_budget(image, 8 * 700)[0], (32, 32))  # a 32x32 JPEG carries ~620 bytes of headers
    assert float(psnr(low[None], image[None])) < float(psnr(decoded[None], image[None])), "a smaller budget costs quality"
    with pytest.raises(ValueError, match="no JPEG quality fits 100 bits"):
        jpeg_for_budget(image, 100)


def test_corrupted_or_truncated_files_are_failed_transmissions():
    image = sample_images("cifar")[0][1]
    data = jpeg_bytes(image, 75)
    assert decode_jpeg(data[:20], (32, 32)) is None
    assert decode_jpeg(b"\x00" * len(data), (32, 32)) is None
    assert decode_jpeg(data, (64, 64)) is None, "a file of the wrong size is a failure too"
    bits = bytes_to_bits(data)
    flipped = bits.clone()
    flipped[: 8 * 4] ^= 1  # destroy the SOI marker and the start of the header
    assert decode_jpeg(bits_to_bytes(flipped), (32, 32)) is None
    assert torch.equal(bytes_to_bits(bits_to_bytes(bits)), bits)
    with pytest.raises(ValueError, match="multiple of 8"):
        bits_to_bytes(bits[:-3])


@pytest.mark.parametrize("codec", ["jpeg", "webp", "jpeg2000", "avif"])
def test_separate_coding_sends_its_stream_within_the_bit_budget(codec):
    from digisem.link import BSCLink
    from digisem.systems.classical import CODECS, SeparateCoding, SeparateCodingConfig, side_info_bytes

    system = SeparateCoding(SeparateCodingConfig(codec, 2048))
    images, _ = sample_images("cifar")
    x = images[:3]
    out = system(x)
    payload = out["payload"]
    assert payload.shape == (3, 256) and payload.dtype == torch.int64 and out["bits_per_image"] == 2048
    assert torch.equal(out["received"], payload) and out["failures"] == 0 and bool(out["delivered"].all())
    side = side_info_bytes(codec, 2048)
    assert side == (2 if codec == "jpeg" else 1), "quality (JPEG only) and a one-byte length for streams under 256 bytes"
    lengths = payload[:, side - 1]
    assert bool((lengths > 0).all()) and bool((lengths <= 256 - side).all())
    assert bool((payload[torch.arange(256)[None, :].expand(3, -1) >= side + lengths[:, None]] == 0).all()), "zeros after the stream"
    for index, (row, length) in enumerate(zip(payload, lengths.tolist())):
        stream = bytes(row[side : side + length].tolist())
        assert torch.equal(CODECS[codec].decode(stream, (32, 32), int(row[0])), out["x_hat"][index]), "x_hat is the codec's decoding of the stream sent"
    assert float(psnr(out["x_hat"], x, per_image=False)) > 15
    richer = SeparateCoding(SeparateCodingConfig(codec, 8192))(x)
    assert float(psnr(richer["x_hat"], x, per_image=False)) > float(psnr(out["x_hat"], x, per_image=False)), "more bits, higher quality"
    garbled = system(x, link=BSCLink(p=0.5), generator=torch.Generator().manual_seed(0))
    assert garbled["failures"] == 3 and not bool(garbled["delivered"].any())


def _streams(codec, image):
    """Every quality's stream size of ``image`` (the exhaustive truth for the binary search)."""
    from digisem.systems.classical import CODECS

    return {quality: len(CODECS[codec].encode(image, quality)) for quality in CODECS[codec].qualities}


@pytest.mark.parametrize("codec", ["webp", "jpeg", "jpeg2000", "avif"])
def test_quality_search_returns_the_highest_quality_that_fits_and_encodes_once(codec):
    from digisem.systems.classical import CODECS, StreamCache

    image = sample_images("cifar")[0][2]
    sizes = _streams(codec, image)
    cache = StreamCache()
    for budget in (90, 140, 220):
        data, quality = cache.best(CODECS[codec], image, budget)
        assert len(data) == sizes[quality] <= budget
        assert quality == max(CODECS[codec].qualities) or sizes[quality + 1] > budget, "the next quality does not fit"
        if codec == "jpeg2000":  # its sizes grow strictly with quality: the search is exact
            assert quality == max(q for q, size in sizes.items() if size <= budget)
    encodes = cache.encodes
    assert encodes <= len(sizes)
    cache.best(CODECS[codec], image, 140)
    assert cache.encodes == encodes, "a budget searched before encodes nothing again"


def test_a_stream_far_above_the_mcs_threshold_arrives_byte_identical():
    from digisem.systems.classical import SeparateCoding, SeparateCodingConfig, mcs_link, mcs_plan

    plan = mcs_plan("16qam-1/2", 512)
    assert (plan.codewords, plan.k, plan.n, plan.payload_bits) == (1, 1024, 2048, 1024)
    link = mcs_link(plan, "awgn")
    assert link.channel_uses(plan.payload_bits) == 512
    x = sample_images("cifar")[0][:2]
    system = SeparateCoding(SeparateCodingConfig("webp", plan.payload_bits))
    out = system(x, link=link, snr_db=30.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out["received"], out["payload"]) and out["failures"] == 0
    assert torch.equal(out["x_hat"], system(x)["x_hat"]), "the same image as without a channel"
    assert out["channel_uses_per_image"] == 512
    large = mcs_plan("qpsk-1/3", 8192)  # one base-graph-1 codeword, whose rate must exceed 1/3
    assert (large.codewords, large.n, large.k) == (1, 16384, 16384 // 3 + 1) and mcs_link(large).channel_uses(large.payload_bits) <= 8192


def test_failed_streams_are_counted_and_shown_as_the_fallback():
    from digisem.link import BSCLink
    from digisem.systems.classical import SeparateCoding, SeparateCodingConfig

    x = sample_images("cifar")[0][:4]
    colour = (0.25, 0.5, 0.75)
    system = SeparateCoding(SeparateCodingConfig("webp", 1024, fallback=colour))
    generator = torch.Generator().manual_seed(1)
    out = system(x, link=BSCLink(p=0.002), generator=generator)
    broken = (out["received"] != out["payload"]).any(1)
    assert out["failures"] == int(broken.sum()) and torch.equal(out["delivered"], ~broken)
    expected = torch.tensor(colour)[:, None, None].expand(3, 32, 32)
    for index in range(4):
        assert torch.equal(out["x_hat"][index], expected) == bool(broken[index])
    tiny = SeparateCoding(SeparateCodingConfig("webp", 64, fallback=colour))(x)  # 8 bytes: no WebP stream fits
    assert tiny["unfit"] == tiny["failures"] == 4 and torch.equal(tiny["x_hat"], expected.expand(4, 3, 32, 32))
    images, decoded = system.decoder(torch.randint(0, 256, (2, 128)), (32, 32))
    assert not bool(decoded.any()) and torch.equal(images, expected.expand(2, 3, 32, 32)), "garbage that is not a stream: fallback"


def test_capacity_budget_is_log2_one_plus_snr_per_channel_use():
    from digisem.systems.classical import capacity_bits

    assert capacity_bits(100, 10 * math.log10(3)) == 200  # log2(1 + 3) = 2 bits per channel use
    assert capacity_bits(512, 10 * math.log10(15)) == 2048  # log2(16) = 4
    assert capacity_bits(100, 0.0) == 96  # 100 bits, whole bytes
    assert capacity_bits(1000, -100.0) == 0


def test_auto_envelope_is_never_below_any_mcs_and_names_its_choice():
    from torch.utils.data import TensorDataset

    from digisem.evaluate import reference_sweep

    x = sample_images("cifar")[0][:4]
    curves = reference_sweep("webp", 512, [0.0, 6.0, 20.0], TensorDataset(x), mcs=("qpsk-1/2", "16qam-1/2", "64qam-2/3"), progress=False)
    assert set(curves["by_mcs"]) == {"qpsk-1/2", "16qam-1/2", "64qam-2/3"} and len(curves["mcs"]) == 3
    for index in range(3):
        assert all(curves["psnr"][index] >= mcs["psnr"][index] for mcs in curves["by_mcs"].values())
        assert curves["psnr"][index] == curves["by_mcs"][curves["mcs"][index]]["psnr"][index]
    assert curves["mcs"][2] == "64qam-2/3" and curves["failure_rate"][2] == 0.0, "at 20 dB the densest MCS arrives intact"
    assert curves["capacity_bits"] == [512, 8 * int(512 * math.log2(1 + 10**0.6) // 8), 8 * int(512 * math.log2(101) // 8)]
    assert curves["psnr_capacity_bound"][2] >= curves["psnr"][2], "the ideal code carries more bits"


def test_bad_input_is_refused_with_what_to_do(monkeypatch):
    from torch.utils.data import TensorDataset

    from digisem.evaluate import reference_sweep
    from digisem.systems.classical import SeparateCodingConfig, check_codec, mcs_plan

    with pytest.raises(ValueError, match="unknown codec 'png'"):
        SeparateCodingConfig("png", 1024)
    with pytest.raises(ValueError, match="multiple of 8"):
        SeparateCodingConfig("jpeg", 1001)
    with pytest.raises(ValueError, match="fallback"):
        SeparateCodingConfig("webp", 1024, fallback=(0.5, 0.5))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        SeparateCoding()(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="unknown MCS"):
        mcs_plan("8psk-1/2", 512)
    x = sample_images("cifar")[0][:2]
    with pytest.raises(ValueError, match=r"too few for any webp stream: the smallest needs \d+ bits, about \d+ channel uses at 64qam-5/6"):
        reference_sweep("webp", 16, [10.0], TensorDataset(x), progress=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="bpgenc and bpgdec"):
        check_codec("bpg")
