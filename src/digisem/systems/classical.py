"""Classical separate source and channel coding: JPEG (Pillow) bits over any digisem bit link.

The JPEG+LDPC baseline of the robust semantic communication paper: each image is JPEG-compressed at
the highest quality whose file fits a bit budget, the file's bits go over a link (e.g. 5G LDPC rate
1/2 + 16-QAM + channel), and the receiver decodes what arrives. A file that Pillow cannot decode
counts as a failed transmission (``None``), which the caller scores as it chooses (e.g. a wrong
class, or a mid-gray image).

Small images: a 32x32 JPEG file is ~600 bytes of headers (quantization and Huffman tables) around a
few hundred bytes of entropy-coded data. For a fixed size and quality Pillow writes the same headers
for every image (standard tables, no optimization), so a link may send only the entropy-coded
``payload`` (:func:`split_jpeg`) and the receiver re-attaches the known headers
(:func:`decode_jpeg_payload`), as JPEG's abbreviated format does.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image

JPEG_QUALITIES = range(1, 96)


def jpeg_bytes(image: torch.Tensor, quality: int) -> bytes:
    """JPEG file of ``image : [3, H, W]`` in [0, 1] at Pillow ``quality`` (1-95), 4:2:0 chroma."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W] in [0, 1], got shape {tuple(image.shape)}")
    if quality not in JPEG_QUALITIES:
        raise ValueError(f"quality must be an int in 1..95, got {quality!r}")
    pixels = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_jpeg(data: bytes, shape: tuple[int, int]) -> torch.Tensor | None:
    """Decode a (possibly corrupted) JPEG file to ``[3, H, W]`` in [0, 1]; None when Pillow cannot
    decode it or it does not have the expected ``shape = (H, W)`` (a failed transmission)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as picture:
                picture.load()
                decoded = picture.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    if decoded.size != (shape[1], shape[0]):
        return None
    return torch.from_numpy(np.asarray(decoded).copy()).permute(2, 0, 1).float() / 255


START_OF_SCAN = b"\xff\xda"
END_OF_IMAGE = b"\xff\xd9"


def split_jpeg(data: bytes) -> tuple[bytes, bytes]:
    """A JPEG file -> ``(headers, payload)``: everything up to the end of the start-of-scan segment,
    and the entropy-coded data after it (without the end-of-image marker)."""
    start = data.find(START_OF_SCAN)
    if start < 0 or not data.endswith(END_OF_IMAGE):
        raise ValueError("not a baseline JPEG file (no start-of-scan marker or no end-of-image marker)")
    end = start + 2 + int.from_bytes(data[start + 2:start + 4], "big")
    return data[:end], data[end:-2]


def jpeg_headers(height: int, width: int, quality: int) -> bytes:
    """The headers Pillow writes for every ``height x width`` JPEG at ``quality`` (what both ends share)."""
    return split_jpeg(jpeg_bytes(torch.full((3, height, width), 0.5), quality))[0]


def decode_jpeg_payload(payload: bytes, shape: tuple[int, int], quality: int) -> torch.Tensor | None:
    """Decode an entropy-coded ``payload`` (from :func:`split_jpeg`) of an ``shape = (H, W)`` JPEG at
    ``quality`` by re-attaching the shared headers; None for a failed transmission."""
    return decode_jpeg(jpeg_headers(shape[0], shape[1], quality) + payload + END_OF_IMAGE, shape)


def jpeg_for_budget(image: torch.Tensor, max_bits: int, payload_only: bool = False) -> tuple[bytes, int]:
    """The highest-quality JPEG of ``image [3, H, W]`` whose file (or, with ``payload_only``, whose
    entropy-coded payload, see :func:`split_jpeg`) has at most ``max_bits`` bits: ``(bytes, quality)``.
    Raises ValueError when even quality 1 does not fit (naming its size)."""
    low, high, best = JPEG_QUALITIES.start, JPEG_QUALITIES.stop - 1, None

    def encode(quality: int) -> bytes:
        data = jpeg_bytes(image, quality)
        return split_jpeg(data)[1] if payload_only else data

    while low <= high:
        middle = (low + high) // 2
        data = encode(middle)
        if 8 * len(data) <= max_bits:
            best, low = (data, middle), middle + 1
        else:
            high = middle - 1
    if best is None:
        raise ValueError(f"no JPEG quality fits {max_bits} bits: quality 1 needs {8 * len(encode(1))} bits")
    return best


def bytes_to_bits(data: bytes) -> torch.Tensor:
    """File bytes -> ``[8 len(data)]`` uint8 bits, MSB first."""
    return torch.from_numpy(np.unpackbits(np.frombuffer(data, dtype=np.uint8)).copy())


def bits_to_bytes(bits: torch.Tensor) -> bytes:
    """``[8 k]`` bits in {0, 1}, MSB first -> ``k`` bytes (inverse of :func:`bytes_to_bits`)."""
    if bits.dim() != 1 or bits.numel() % 8:
        raise ValueError(f"bits must be a 1-D tensor whose length is a multiple of 8, got shape {tuple(bits.shape)}")
    return np.packbits(bits.to(torch.uint8).cpu().numpy()).tobytes()
