"""JPEG baseline: budget search, bit round trip, and corrupted files counted as failures."""

import pytest
import torch

from digisem.data import sample_images
from digisem.metrics import psnr
from digisem.systems.classical import (
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


@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_separate_coding_sends_its_stream_within_the_bit_budget(codec):
    from digisem.link import BSCLink
    from digisem.systems.classical import (
        HEADER_BYTES,
        SeparateCoding,
        SeparateCodingConfig,
    )

    system = SeparateCoding(SeparateCodingConfig(codec, 2048))
    images, _ = sample_images("cifar")
    x = images[:3]
    out = system(x)
    payload = out["payload"]
    assert payload.shape == (3, 256) and payload.dtype == torch.int64 and out["bits_per_image"] == 2048
    assert torch.equal(out["received"], payload) and out["decode_failures"] == 0
    lengths = payload[:, 1] * 256 + payload[:, 2]
    assert bool((lengths > 0).all()) and bool((lengths <= 256 - HEADER_BYTES).all()), "quality, length, stream: all within 2048 bits"
    assert bool((payload[torch.arange(256)[None, :].expand(3, -1) >= HEADER_BYTES + lengths[:, None]] == 0).all()), "zeros after the stream"
    assert float(psnr(out["x_hat"], x, per_image=False)) > 15
    richer = SeparateCoding(SeparateCodingConfig(codec, 8192))(x)
    assert float(psnr(richer["x_hat"], x, per_image=False)) > float(psnr(out["x_hat"], x, per_image=False)), "more bits, higher quality"
    garbled = system(x, link=BSCLink(p=0.5), generator=torch.Generator().manual_seed(0))
    assert garbled["decode_failures"] >= 1
    failed = [i for i in range(3) if torch.equal(garbled["x_hat"][i], torch.full((3, 32, 32), 0.5))]
    assert len(failed) == garbled["decode_failures"], "a stream that does not decode is a mid-gray image"


def test_separate_coding_config_errors():
    from digisem.systems.classical import SeparateCoding, SeparateCodingConfig

    with pytest.raises(ValueError, match="unknown codec"):
        SeparateCodingConfig("png", 1024)
    with pytest.raises(ValueError, match="multiple of 8"):
        SeparateCodingConfig("jpeg", 1001)
    with pytest.raises(ValueError, match="at least"):
        SeparateCodingConfig("jpeg", 16)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        SeparateCoding()(torch.rand(3, 32, 32))
