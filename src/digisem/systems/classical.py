"""Classical separate source and channel coding: JPEG / WebP (Pillow) bits over any digisem bit link,
and :class:`SeparateCoding`, the registered system of that chain.

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
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from .base import SampleCheck, System, SystemOutput, register_system
from .config import DictConfig

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
    low, high = JPEG_QUALITIES.start, JPEG_QUALITIES.stop - 1

    def encode(quality: int) -> bytes:
        data = jpeg_bytes(image, quality)
        return split_jpeg(data)[1] if payload_only else data

    best = _highest_quality(encode, low, high, max_bits // 8)
    if best is None:
        raise ValueError(f"no JPEG quality fits {max_bits} bits: quality 1 needs {8 * len(encode(1))} bits")
    return best


def _highest_quality(encode, low: int, high: int, max_bytes: int) -> tuple[bytes, int] | None:
    """Binary search over qualities ``low..high`` for the highest whose ``encode(quality)`` has at
    most ``max_bytes`` bytes (sizes grow with quality): ``(bytes, quality)``, or None."""
    best = None
    while low <= high:
        middle = (low + high) // 2
        data = encode(middle)
        if len(data) <= max_bytes:
            best, low = (data, middle), middle + 1
        else:
            high = middle - 1
    return best


def bytes_to_bits(data: bytes) -> torch.Tensor:
    """File bytes -> ``[8 len(data)]`` uint8 bits, MSB first."""
    return torch.from_numpy(np.unpackbits(np.frombuffer(data, dtype=np.uint8)).copy())


def bits_to_bytes(bits: torch.Tensor) -> bytes:
    """``[8 k]`` bits in {0, 1}, MSB first -> ``k`` bytes (inverse of :func:`bytes_to_bits`)."""
    if bits.dim() != 1 or bits.numel() % 8:
        raise ValueError(f"bits must be a 1-D tensor whose length is a multiple of 8, got shape {tuple(bits.shape)}")
    return np.packbits(bits.to(torch.uint8).cpu().numpy()).tobytes()


# ---------------------------------------------------------------------------------------------------
# the classical chain as a registered system: image codec -> bytes -> any bit link -> bytes -> decode

CODECS = ("jpeg", "webp")
HEADER_BYTES = 3
"""Side information in front of each image's bitstream: the codec quality (1 byte) and the stream
length in bytes (2 bytes, big-endian); counted in the bit budget."""
FAILED_DECODE_VALUE = 0.5
"""A bitstream that does not decode becomes a mid-gray image (and is counted in ``decode_failures``)."""


def webp_bytes(image: torch.Tensor, quality: int) -> bytes:
    """WebP file (lossy, RIFF container included) of ``image : [3, H, W]`` in [0, 1] at ``quality`` 0-100."""
    pixels = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="WEBP", quality=int(quality), method=6)
    return buffer.getvalue()


def _encode(codec: str, image: torch.Tensor, quality: int) -> bytes:
    if codec == "jpeg":
        return split_jpeg(jpeg_bytes(image, quality))[1]
    return webp_bytes(image, quality)


def _decode(codec: str, data: bytes, shape: tuple[int, int], quality: int) -> torch.Tensor | None:
    if codec == "jpeg":
        return decode_jpeg_payload(data, shape, quality) if 1 <= quality <= 95 else None
    return decode_jpeg(data, shape)


def encode_for_budget(codec: str, image: torch.Tensor, max_bytes: int) -> tuple[bytes, int]:
    """The highest-quality bitstream of ``image [3, H, W]`` in ``codec`` of at most ``max_bytes``
    bytes (binary search over quality; JPEG without its shared headers): ``(bytes, quality)``.
    Raises ValueError naming the smallest size when even the lowest quality does not fit."""
    lowest, highest = (1, 95) if codec == "jpeg" else (0, 100)
    best = _highest_quality(lambda quality: _encode(codec, image, quality), lowest, highest, max_bytes)
    if best is None:
        raise ValueError(f"no {codec} quality fits {max_bytes} bytes: quality {lowest} needs {len(_encode(codec, image, lowest))} bytes")
    return best


@dataclass(frozen=True)
class SeparateCodingConfig(DictConfig):
    """The classical chain: an image ``codec`` (``jpeg``: the abbreviated format, headers shared by
    both ends; ``webp``: the whole RIFF file) at the highest quality whose stream fits
    ``payload_bits`` bits per image (``HEADER_BYTES`` of side information included), sent as bytes
    over the bit link given at call time (e.g. ``"16qam-awgn-ldpc-1/2"``)."""

    codec: str = "jpeg"
    payload_bits: int = 1024

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}: use one of {CODECS}")
        if not isinstance(self.payload_bits, int) or self.payload_bits < 8 * (HEADER_BYTES + 1) or self.payload_bits % 8:
            raise ValueError(f"payload_bits must be a multiple of 8 of at least {8 * (HEADER_BYTES + 1)}, got {self.payload_bits!r}")


class _Bytes(nn.Module):
    """Digitizer of a byte stream: payload ``"integers"`` of 8 bits, the bytes themselves."""

    payload_kind = "integers"
    bits_per_value = 8

    def to_payload(self, streams: torch.Tensor) -> torch.Tensor:
        return streams

    def from_payload(self, payload: torch.Tensor) -> torch.Tensor:
        return payload


class _CodecEncoder(nn.Module):
    """Images ``[B, 3, H, W]`` -> byte streams ``[B, payload_bits / 8]`` int64 (header, stream, zeros)."""

    def __init__(self, config: SeparateCodingConfig):
        super().__init__()
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.config.payload_bits // 8
        rows = []
        for image in x:
            data, quality = encode_for_budget(self.config.codec, image, size - HEADER_BYTES)
            row = bytes([quality]) + len(data).to_bytes(2, "big") + data
            rows.append(np.frombuffer(row + bytes(size - len(row)), dtype=np.uint8))
        return torch.from_numpy(np.stack(rows).astype(np.int64))


class _CodecDecoder(nn.Module):
    """Received byte streams ``[B, payload_bits / 8]`` -> images ``[B, 3, H, W]`` (mid-gray where a stream fails)."""

    def __init__(self, config: SeparateCodingConfig):
        super().__init__()
        self.config = config

    def forward(self, streams: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, int]:
        images, failures = [], 0
        for row in streams.to(torch.uint8).cpu().numpy():
            data = row.tobytes()
            length = int.from_bytes(data[1:3], "big")
            decoded = None
            if length <= len(data) - HEADER_BYTES:
                decoded = _decode(self.config.codec, data[HEADER_BYTES : HEADER_BYTES + length], shape, data[0])
            if decoded is None:
                failures += 1
                decoded = torch.full((3, *shape), FAILED_DECODE_VALUE)
            images.append(decoded)
        return torch.stack(images), failures


@register_system("separate", config=SeparateCodingConfig, snr_kind="esn0", default_link="16qam-awgn-ldpc-1/2", default_snrs="0:20:2",
                 sample_check=SampleCheck(snr_db=10.0, link="16qam-awgn-ldpc-1/2"))
class SeparateCoding(System):
    """Separate source and channel coding, the classical reference: an image codec (JPEG, WebP)
    within a bit budget, its bytes over any bit link (LDPC + QAM + channel, or a BSC), decoded at
    the receiver; a stream that does not decode gives a mid-gray image.

    Parameters
    ----------
    config : SeparateCodingConfig, optional
        Defaults to JPEG within 1,024 bits (512 channel uses at 16-QAM with LDPC rate 1/2).

    Input (call): ``x : [B, 3, H, W]`` in [0, 1]; ``link`` a bit link or spec (None: error-free);
    ``snr_db`` in the link's convention. No training: every part is a fixed algorithm.

    Output: :class:`SystemOutput` with ``x_hat``, ``payload`` / ``received`` (``[B, payload_bits / 8]``
    bytes as int64), the accounting keys and ``decode_failures`` (images whose stream did not decode).

    Example
    -------
    >>> system = SeparateCoding(SeparateCodingConfig("jpeg", 1024))
    >>> out = system(torch.rand(2, 3, 32, 32), link="16qam-awgn-ldpc-1/2", snr_db=10.0)
    >>> out["bits_per_image"], out["channel_uses_per_image"]
    (1024, 512)
    """

    def __init__(self, config: SeparateCodingConfig | None = None):
        super().__init__()
        self.config = config = config or SeparateCodingConfig()
        self.encoder = _CodecEncoder(config)
        self.digitizer = _Bytes()
        self.restorer = None
        self.decoder = _CodecDecoder(config)
        self.head = None

    def run(self, x, *, link, snr_db, mode, generator, **options) -> SystemOutput:
        """Encode each image, send its bytes, decode (no options)."""
        if options:
            raise TypeError(f"SeparateCoding takes no options, got {sorted(options)}")
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3 or x.shape[0] == 0:
            raise ValueError(f"SeparateCoding expects images [B, 3, H, W], got {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        payload = self.encoder(x)
        received = self.send(payload, link, snr_db, generator)
        x_hat, failures = self.decoder(received, tuple(x.shape[2:]))
        return SystemOutput(x_hat=x_hat.to(x.device), payload=payload, received=received, decode_failures=failures, **self.accounting(payload, link))
