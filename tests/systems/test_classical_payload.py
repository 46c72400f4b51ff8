"""JPEG headers vs entropy-coded payload (split_jpeg, jpeg_headers, decode_jpeg_payload, payload budgets)."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from digisem.systems.classical import (
    decode_jpeg,
    decode_jpeg_payload,
    jpeg_bytes,
    jpeg_for_budget,
    jpeg_headers,
    split_jpeg,
)

EOI = b"\xff\xd9"


def smooth_image(seed: int, height: int = 32, width: int = 32) -> torch.Tensor:
    """A random but compressible image: a few low-frequency sinusoids per channel, in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None, :]
    channels = []
    for _ in range(3):
        a, b, c, d = (torch.rand(4, generator=generator) * 6).tolist()
        channels.append(0.5 + 0.25 * torch.sin(a * x + b * y) + 0.2 * torch.cos(c * x - d * y))
    return torch.stack(channels).clamp(0, 1)


@pytest.mark.parametrize("quality", [1, 30, 75, 95])
def test_headers_plus_payload_plus_end_marker_is_the_file(quality):
    data = jpeg_bytes(smooth_image(0), quality)
    headers, payload = split_jpeg(data)
    assert headers + payload + EOI == data
    assert headers.startswith(b"\xff\xd8")  # start of image
    assert b"\xff\xda" in headers and not headers.endswith(EOI)
    assert len(payload) > 0


def test_headers_are_shared_by_images_of_the_same_size_and_quality():
    first, second = jpeg_bytes(smooth_image(1), 60), jpeg_bytes(smooth_image(2), 60)
    assert first != second
    headers_1, payload_1 = split_jpeg(first)
    headers_2, payload_2 = split_jpeg(second)
    assert headers_1 == headers_2 == jpeg_headers(32, 32, 60)
    assert payload_1 != payload_2
    # a different quality (quantization tables) or size (frame header) gives different headers
    assert jpeg_headers(32, 32, 61) != headers_1
    assert jpeg_headers(32, 48, 60) != headers_1
    assert split_jpeg(jpeg_bytes(smooth_image(3, 32, 48), 60))[0] == jpeg_headers(32, 48, 60)


@pytest.mark.parametrize("height,width,quality", [(32, 32, 50), (16, 24, 10), (24, 16, 95)])
def test_decode_jpeg_payload_equals_decoding_the_whole_file(height, width, quality):
    image = smooth_image(4, height, width)
    data = jpeg_bytes(image, quality)
    _, payload = split_jpeg(data)
    from_payload = decode_jpeg_payload(payload, (height, width), quality)
    from_file = decode_jpeg(data, (height, width))
    assert from_payload is not None and from_file is not None
    assert torch.equal(from_payload, from_file)
    # and both are Pillow's own decoding of the file
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert torch.equal(from_file, torch.from_numpy(reference.copy()).permute(2, 0, 1).float() / 255)
    assert from_file.shape == (3, height, width)


@pytest.mark.parametrize("budget", [600, 1200, 2400, 6000])
def test_payload_only_budget_is_respected_and_quality_is_the_highest_that_fits(budget):
    image = smooth_image(6)
    payload, quality = jpeg_for_budget(image, budget, payload_only=True)
    assert 8 * len(payload) <= budget
    assert payload == split_jpeg(jpeg_bytes(image, quality))[1]
    if quality < 95:
        assert 8 * len(split_jpeg(jpeg_bytes(image, quality + 1))[1]) > budget
    # the payload alone fits at least the quality the whole file fits (headers are ~600 bytes)
    try:
        _, file_quality = jpeg_for_budget(image, budget)
    except ValueError:
        file_quality = 0
    assert quality >= file_quality


def test_whole_file_budget_counts_the_headers():
    image = smooth_image(7)
    data, quality = jpeg_for_budget(image, 12000)
    assert data == jpeg_bytes(image, quality) and 8 * len(data) <= 12000
    assert data.startswith(b"\xff\xd8") and data.endswith(EOI)


def test_a_too_small_budget_raises_naming_bits():
    image = smooth_image(8)
    smallest = 8 * len(split_jpeg(jpeg_bytes(image, 1))[1])
    with pytest.raises(ValueError, match="bits"):
        jpeg_for_budget(image, smallest - 1, payload_only=True)
    payload, quality = jpeg_for_budget(image, smallest, payload_only=True)
    assert quality >= 1 and 8 * len(payload) <= smallest
    with pytest.raises(ValueError, match=f"{smallest} bits"):
        jpeg_for_budget(image, 8, payload_only=True)


@pytest.mark.parametrize("data", [b"", b"not a jpeg at all", b"\x89PNG\r\n\x1a\n" + bytes(40), b"\xff\xd8\xff\xda\x00\x08abcdef"])
def test_split_jpeg_rejects_non_jpeg_bytes(data):
    with pytest.raises(ValueError):
        split_jpeg(data)


def test_split_jpeg_rejects_a_real_png():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="PNG")
    with pytest.raises(ValueError):
        split_jpeg(buffer.getvalue())


def test_jpeg_at_budget_items_are_pillow_jpegs_at_the_highest_quality_that_fits():
    """Each item is Pillow's own decode of the image's JPEG at the highest quality whose payload fits
    the budget (checked by scanning every quality), and keeps its label."""
    from torch.utils.data import TensorDataset

    from digisem.systems.classical import JpegAtBudget

    images = torch.stack([smooth_image(seed) for seed in (11, 12)])
    budget = 1500
    dataset = JpegAtBudget(TensorDataset(images, torch.tensor([3, 7])), budget)
    assert len(dataset) == 2
    for index in range(2):
        fitting = [q for q in range(1, 96) if 8 * len(split_jpeg(jpeg_bytes(images[index], q))[1]) <= budget]
        pixels = (images[index].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=max(fitting))
        expected = torch.from_numpy(np.asarray(Image.open(buffer).convert("RGB")).copy()).permute(2, 0, 1).float() / 255
        image, label = dataset[index]
        assert label == (3, 7)[index] and torch.equal(image, expected)
    with pytest.raises(ValueError, match="positive number of bits"):
        JpegAtBudget(TensorDataset(images, torch.tensor([3, 7])), 0)
