"""The classical reference: an image codec, then 5G LDPC + QAM over any digisem channel, with the
same channel uses per image as the system it is compared with (:class:`SeparateCoding`, registered
as ``"separate"``), and the budget an ideal channel code would give (:func:`capacity_bits`).

- **Codecs** (:data:`CODECS`): WebP, JPEG, JPEG 2000 and AVIF through Pillow, BPG through libbpg's
  ``bpgenc``/``bpgdec``. Each sends only what the receiver cannot rebuild: containers and headers
  that are the same for every image of a size (JPEG's tables, the RIFF/HEIF boxes, the JPEG 2000
  main header) are shared by both ends, as JPEG's abbreviated format does. A stream carries a
  length (and, for JPEG, its quality) in front; both are counted in the bit budget.
- **Per image**: the highest quality whose stream fits the budget (:class:`StreamCache`: a binary
  search whose encodes are kept, so each image is encoded once per quality across all budgets).
- **MCS** (:data:`MCS_TABLE`, :func:`mcs_plan`, :func:`mcs_link`): 5G NR LDPC rates 1/3 ... 5/6 x
  QPSK / 16-QAM / 64-QAM filling the channel uses of an image.
- **Failures**: a stream that does not fit, arrives with any error (what a CRC detects) or does not
  decode gives the fallback image (the per-channel training mean) and is counted.

The JPEG helpers (:func:`jpeg_bytes`, :func:`split_jpeg`, :func:`jpeg_for_budget`...) also serve the
JPEG+LDPC baseline of the robust semantic communication paper (:mod:`digisem.analyses`). Small
images: a 32x32 JPEG file is ~600 bytes of headers around a few hundred bytes of entropy-coded data;
for a fixed size and quality Pillow writes the same headers for every image, so only the payload is
sent (:func:`split_jpeg`, :func:`decode_jpeg_payload`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..link import BitLink, constellation_info
from ..link.errors import InputError
from ..link.ldpc import LDPC5GCode
from .base import SampleCheck, System, SystemOutput, register_system
from .config import DictConfig

JPEG_QUALITIES = range(1, 96)


def jpeg_bytes(image: torch.Tensor, quality: int) -> bytes:
    """JPEG file of ``image : [3, H, W]`` in [0, 1] at Pillow ``quality`` (1-95), 4:2:0 chroma."""
    if quality not in JPEG_QUALITIES:
        raise InputError(f"quality must be an int in 1..95, got {quality!r}")
    pixels = _pixels(image)
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
        raise InputError("not a baseline JPEG file (no start-of-scan marker or no end-of-image marker)")
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
        raise InputError(f"no JPEG quality fits {max_bits} bits: quality 1 needs {8 * len(encode(1))} bits")
    return best


class JpegAtBudget(torch.utils.data.Dataset):
    """``(image, label)`` items of ``dataset`` with each image ``[3, H, W]`` replaced by the decoded
    highest-quality JPEG whose entropy-coded payload fits ``max_bits`` bits (:func:`jpeg_for_budget`,
    payload only): what the JPEG+LDPC baseline's receiver sees when every bit arrives. A classifier
    trained on these is that baseline's own classifier."""

    def __init__(self, dataset: torch.utils.data.Dataset, max_bits: int):
        if int(max_bits) <= 0:
            raise InputError(f"a JPEG budget is a positive number of bits, got {max_bits}")
        self.dataset, self.max_bits = dataset, int(max_bits)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        payload, quality = jpeg_for_budget(image, self.max_bits, payload_only=True)
        return decode_jpeg_payload(payload, tuple(image.shape[1:]), quality), label


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
        raise InputError(f"bits must be a 1-D tensor whose length is a multiple of 8, got shape {tuple(bits.shape)}")
    return np.packbits(bits.to(torch.uint8).cpu().numpy()).tobytes()


# ---------------------------------------------------------------------------------------------------
# image codecs in their abbreviated form: what both ends can rebuild (containers, fixed headers) is not sent

def _pixels(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` in [0, 1] -> ``[H, W, 3]`` uint8 (rounded)."""
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        raise InputError(f"image must be a [3, H, W] tensor in [0, 1], got {tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
    # NumPy, not torch: on a machine whose cores are busy, torch's thread pool makes these
    # few-thousand-element operations milliseconds each (np.rint rounds half to even, as torch.round)
    return np.rint(image.detach().cpu().float().numpy().clip(0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def _save(image: torch.Tensor, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_pixels(image), "RGB").save(buffer, format=format, **options)
    return buffer.getvalue()


def webp_bytes(image: torch.Tensor, quality: int) -> bytes:
    """WebP file (lossy VP8, RIFF container included) of ``image : [3, H, W]`` in [0, 1] at ``quality`` 0-100."""
    return _save(image, "WEBP", quality=int(quality), method=6)


_VP8_START = b"\x9d\x01\x2a"


def _webp_encode(image: torch.Tensor, quality: int) -> bytes:
    """The VP8 frame without what the receiver knows: the 20-byte RIFF/chunk header and, inside
    the frame header, the start code and the image size (7 bytes); the 3-byte frame tag stays."""
    data = webp_bytes(image, quality)
    if data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 ":
        raise InputError("Pillow wrote a WebP file that is not simple lossy VP8 (RIFF 'VP8 ' chunk)")
    frame = data[20 : 20 + int.from_bytes(data[16:20], "little")]
    if frame[3:6] != _VP8_START:
        raise InputError("the VP8 frame has no start code after its 3-byte tag")
    return frame[:3] + frame[10:]


def _webp_decode(data: bytes, shape: tuple[int, int], quality: int) -> torch.Tensor | None:
    height, width = shape
    frame = data[:3] + _VP8_START + width.to_bytes(2, "little") + height.to_bytes(2, "little") + data[3:]
    chunk = b"VP8 " + len(frame).to_bytes(4, "little") + frame + b"\x00" * (len(frame) % 2)
    return decode_jpeg(b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk, shape)


JPEG2000_QUALITIES = range(0, 201)
"""JPEG 2000 quality ``q`` = OpenJPEG's rate mode at compression ratio ``2^((200 - q) / 20)`` (1 to
1024, steps of 3.5 % in size)."""
_J2K_START_OF_TILE = b"\xff\x90"
_J2K_END = b"\xff\xd9"


def _jpeg2000_file(image: torch.Tensor, quality: int) -> bytes:
    """Raw JPEG 2000 codestream (no JP2 boxes), 9/7 wavelet, colour transform, one quality layer."""
    ratio = 2.0 ** ((JPEG2000_QUALITIES.stop - 1 - quality) / 20)
    return _save(image, "JPEG2000", no_jp2=True, irreversible=True, mct=1, quality_mode="rates", quality_layers=[ratio])


def _jpeg2000_split(data: bytes) -> tuple[bytes, bytes]:
    start = data.find(_J2K_START_OF_TILE)
    if start < 0 or not data.endswith(_J2K_END):
        raise InputError("not a JPEG 2000 codestream (no start-of-tile or end-of-codestream marker)")
    return data[:start], data[start:-2]


@functools.lru_cache(maxsize=64)
def _jpeg2000_main_header(height: int, width: int) -> bytes:
    """The main header (SIZ, COD, QCD...) every ``height x width`` codestream of these settings shares."""
    return _jpeg2000_split(_jpeg2000_file(torch.full((3, height, width), 0.5), 100))[0]


def _jpeg2000_encode(image: torch.Tensor, quality: int) -> bytes:
    """The tile-parts of the codestream (main header and end marker shared by both ends)."""
    return _jpeg2000_split(_jpeg2000_file(image, quality))[1]


def _jpeg2000_decode(data: bytes, shape: tuple[int, int], quality: int) -> torch.Tensor | None:
    return decode_jpeg(_jpeg2000_main_header(*shape) + data + _J2K_END, shape)


def _avif_file(image: torch.Tensor, quality: int) -> bytes:
    return _save(image, "AVIF", quality=int(quality))


def _avif_boxes(data: bytes) -> tuple[int, int, int]:
    """``(offset of the extent length in iloc, its size in bytes, offset of the mdat box)`` of a
    one-item AVIF file as Pillow writes it (ftyp, meta with one iloc extent, mdat)."""
    def children(start: int, end: int) -> dict[bytes, int]:
        found, offset = {}, start
        while offset + 8 <= end:
            found[data[offset + 4 : offset + 8]] = offset
            offset += max(8, int.from_bytes(data[offset : offset + 4], "big"))
        return found

    top = children(0, len(data))
    if b"meta" not in top or b"mdat" not in top:
        raise InputError("not an AVIF file with meta and mdat boxes")
    meta = top[b"meta"]
    iloc = children(meta + 12, top[b"mdat"]).get(b"iloc")
    if iloc is None:
        raise InputError("AVIF meta box has no iloc box")
    version = data[iloc + 8]
    offset_size, length_size = data[iloc + 12] >> 4, data[iloc + 12] & 15
    base_size, index_size = data[iloc + 13] >> 4, (data[iloc + 13] & 15 if version else 0)
    position = iloc + 14
    count_size = 2 if version < 2 else 4
    if int.from_bytes(data[position : position + count_size], "big") != 1:
        raise InputError("AVIF iloc box describes more than one item")
    position += count_size + count_size + (2 if version else 0) + 2 + base_size
    if int.from_bytes(data[position : position + 2], "big") != 1:
        raise InputError("AVIF item has more than one extent")
    position += 2 + index_size + offset_size
    return position, length_size, top[b"mdat"]


def _avif_encode(image: torch.Tensor, quality: int) -> bytes:
    """The AV1 data of the mdat box (the HEIF boxes around it are shared by both ends)."""
    data = _avif_file(image, quality)
    return data[_avif_boxes(data)[2] + 8 :]


@functools.lru_cache(maxsize=64)
def _avif_template(height: int, width: int) -> tuple[bytes, int, int]:
    data = _avif_file(torch.full((3, height, width), 0.5), 50)
    length_at, length_size, mdat = _avif_boxes(data)
    return data[:mdat], length_at, length_size


def _avif_decode(data: bytes, shape: tuple[int, int], quality: int) -> torch.Tensor | None:
    header, length_at, length_size = _avif_template(*shape)
    if len(data) >= 1 << (8 * length_size):
        return None
    header = header[:length_at] + len(data).to_bytes(length_size, "big") + header[length_at + length_size :]
    return decode_jpeg(header + (8 + len(data)).to_bytes(4, "big") + b"mdat" + data, shape)


BPG_PROGRAMS = ("bpgenc", "bpgdec")
BPG_HELP = ("BPG needs the bpgenc and bpgdec programs of libbpg (https://bellard.org/bpg/) on PATH: build them from "
            "libbpg's source (make && make install) or install a package that provides them; or use webp, jpeg2000 or avif")


def _bpg_run(arguments: list[str]) -> None:
    subprocess.run(arguments, check=True, capture_output=True)


def _bpg_encode(image: torch.Tensor, quality: int) -> bytes:
    """The whole .bpg file (its header is a few bytes) at bpgenc ``-q 51 - quality``."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.png"), Path(folder, "out.bpg")
        Image.fromarray(_pixels(image), "RGB").save(source)
        _bpg_run(["bpgenc", "-q", str(51 - quality), "-o", str(target), str(source)])
        return target.read_bytes()


def _bpg_decode(data: bytes, shape: tuple[int, int], quality: int) -> torch.Tensor | None:
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.bpg"), Path(folder, "out.png")
        source.write_bytes(data)
        try:
            _bpg_run(["bpgdec", "-o", str(target), str(source)])
        except subprocess.CalledProcessError:
            return None
        return decode_jpeg(target.read_bytes(), shape)


@dataclass(frozen=True)
class Codec:
    """An image codec in its abbreviated form: ``encode(image [3, H, W], quality) -> bytes`` sends
    only what the receiver cannot rebuild; ``decode(bytes, (H, W), quality) -> [3, H, W] or None``.
    Stream sizes grow with ``qualities`` (searched in that order); ``sends_quality``: the receiver
    needs the quality (a byte of side information); ``shared`` says what both ends know."""

    name: str
    label: str
    qualities: range
    sends_quality: bool
    shared: str
    encode: Callable[[torch.Tensor, int], bytes]
    decode: Callable[[bytes, tuple[int, int], int], torch.Tensor | None]


CODECS: dict[str, Codec] = {
    "webp": Codec("webp", "WebP", range(0, 101), False, "RIFF/VP8 chunk header, VP8 start code and image size (27 bytes)", _webp_encode, _webp_decode),
    "jpeg": Codec("jpeg", "JPEG", JPEG_QUALITIES, True, "all headers up to the start of scan and the end marker (~600 bytes at 32x32)",
                  lambda image, quality: split_jpeg(jpeg_bytes(image, quality))[1], decode_jpeg_payload),
    "jpeg2000": Codec("jpeg2000", "JPEG 2000", JPEG2000_QUALITIES, False, "the main header (SIZ/COD/QCD, ~140 bytes at 32x32) and the end marker",
                      _jpeg2000_encode, _jpeg2000_decode),
    "avif": Codec("avif", "AVIF", range(0, 101), False, "the HEIF boxes (ftyp, meta, mdat header; ~275 bytes at 32x32)", _avif_encode, _avif_decode),
    "bpg": Codec("bpg", "BPG", range(0, 52), False, "nothing (the whole .bpg file is sent)", _bpg_encode, _bpg_decode),
}
"""The codecs of :class:`SeparateCoding`, by name; all through Pillow except BPG (libbpg's programs)."""


def check_codec(name: str) -> Codec:
    """The :class:`Codec` called ``name``; ValueError for an unknown one, RuntimeError for BPG
    without its programs on PATH (saying how to get them)."""
    if name not in CODECS:
        raise InputError(f"unknown codec {name!r}: use one of {sorted(CODECS)}")
    if name == "bpg" and not all(shutil.which(program) for program in BPG_PROGRAMS):
        raise RuntimeError(BPG_HELP)
    return CODECS[name]


class StreamCache:
    """Every bitstream encoded so far, by codec, image and quality, so that a quality search for
    another bit budget re-encodes nothing it has already tried (each image is encoded at most once
    per quality, whatever the number of budgets). Shared by the systems of one sweep."""

    def __init__(self) -> None:
        self.streams: dict[tuple[str, bytes], dict[int, bytes]] = {}
        self.encodes = 0

    def stream(self, codec: Codec, image: torch.Tensor, key: bytes, quality: int) -> bytes:
        """The stream of ``image [3, H, W]`` (identified by ``key``) at ``quality``."""
        known = self.streams.setdefault((codec.name, key), {})
        if quality not in known:
            known[quality] = codec.encode(image, quality)
            self.encodes += 1
        return known[quality]

    def best(self, codec: Codec, image: torch.Tensor, max_bytes: int) -> tuple[bytes, int] | None:
        """The highest-quality stream of ``image [3, H, W]`` of at most ``max_bytes`` bytes,
        ``(bytes, quality)``, or None when even the lowest quality does not fit (binary search:
        sizes grow with quality)."""
        key = hashlib.blake2b(_pixels(image).tobytes() + bytes(str(tuple(image.shape)), "ascii"), digest_size=16).digest()
        return _highest_quality(lambda quality: self.stream(codec, image, key, quality), codec.qualities.start, codec.qualities.stop - 1, max_bytes)


# ---------------------------------------------------------------------------------------------------
# the classical chain as a registered system: image codec -> bytes -> any bit link -> bytes -> decode

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
"""Per-channel mean of the CIFAR-10 training images (the usual normalization constants): the image a
receiver shows for a failed transmission."""
URBAN100_MEAN = (0.4561, 0.4448, 0.4392)
"""Per-channel mean of the 100 Urban100 images (the training set of the high-resolution systems,
whose test set is Kodak24), measured over all pixels of the data folder's copy."""


def side_info_bytes(codec: str, payload_bits: int) -> int:
    """Bytes of side information in front of each stream within ``payload_bits``: the quality
    (1 byte, JPEG only) and the stream length (as many bytes as a length below ``payload_bits / 8`` needs)."""
    return int(CODECS[codec].sends_quality) + max(1, -(-(payload_bits // 8 - 1).bit_length() // 8))


@dataclass(frozen=True)
class SeparateCodingConfig(DictConfig):
    """The classical chain: an image ``codec`` (a key of :data:`CODECS`, in its abbreviated form)
    at the highest quality whose stream fits ``payload_bits`` bits per image (side information
    included, :func:`side_info_bytes`), sent as bytes over the bit link given at call time (e.g.
    ``"16qam-awgn-ldpc-1/2"``, or an MCS link of :func:`mcs_plan`). An image whose stream does not
    fit, does not arrive intact or does not decode is a failure, shown as ``fallback`` (RGB in [0, 1])."""

    codec: str = "jpeg"
    payload_bits: int = 1024
    fallback: tuple = CIFAR10_MEAN

    def __post_init__(self) -> None:
        check_codec(self.codec)
        if isinstance(self.payload_bits, bool) or not isinstance(self.payload_bits, int) or self.payload_bits < 8 or self.payload_bits % 8:
            raise InputError(f"payload_bits must be a positive multiple of 8, got {self.payload_bits!r}")
        if len(self.fallback) != 3 or not all(0.0 <= float(v) <= 1.0 for v in self.fallback):
            raise InputError(f"fallback must be three values in [0, 1] (an RGB colour), got {self.fallback!r}")
        object.__setattr__(self, "fallback", tuple(float(v) for v in self.fallback))


class _Bytes(nn.Module):
    """Digitizer of a byte stream: payload ``"integers"`` of 8 bits, the bytes themselves."""

    payload_kind = "integers"
    bits_per_value = 8

    def to_payload(self, streams: torch.Tensor) -> torch.Tensor:
        return streams

    def from_payload(self, payload: torch.Tensor) -> torch.Tensor:
        return payload


class _CodecEncoder(nn.Module):
    """Images ``[B, 3, H, W]`` -> ``(byte streams [B, payload_bits / 8] int64, fits [B] bool)``: side
    information, stream, zeros; an image whose lowest quality does not fit sends zeros (fits False)."""

    def __init__(self, config: SeparateCodingConfig, cache: StreamCache):
        super().__init__()
        self.config, self.cache = config, cache
        self.codec = CODECS[config.codec]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.payload_bits // 8
        side = side_info_bytes(self.config.codec, self.config.payload_bits)
        rows, fits = [], []
        for image in x:
            best = self.cache.best(self.codec, image, size - side) if size > side else None
            row = b""
            if best is not None:
                data, quality = best
                row = (bytes([quality]) if self.codec.sends_quality else b"") + len(data).to_bytes(side - self.codec.sends_quality, "big") + data
            rows.append(np.frombuffer(row + bytes(size - len(row)), dtype=np.uint8))
            fits.append(best is not None)
        return torch.from_numpy(np.stack(rows).astype(np.int64)), torch.tensor(fits)


class _CodecDecoder(nn.Module):
    """Received byte streams ``[B, payload_bits / 8]`` -> ``(images [B, 3, H, W], decoded [B] bool)``;
    the fallback colour where a stream does not decode."""

    def __init__(self, config: SeparateCodingConfig):
        super().__init__()
        self.config = config
        self.codec = CODECS[config.codec]

    def forward(self, streams: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        side = side_info_bytes(self.config.codec, self.config.payload_bits)
        fallback = torch.tensor(self.config.fallback, dtype=torch.float32)[:, None, None].expand(3, *shape)
        images, decoded = [], []
        for row in streams.to(torch.uint8).cpu().numpy():
            data = row.tobytes()
            quality = data[0] if self.codec.sends_quality else 0
            length = int.from_bytes(data[int(self.codec.sends_quality) : side], "big")
            image = None
            if 0 < length <= len(data) - side and quality in self.codec.qualities:
                image = self.codec.decode(data[side : side + length], shape, quality)
            decoded.append(image is not None)
            images.append(fallback if image is None else image)
        return torch.stack(images), torch.tensor(decoded)


@register_system("separate", config=SeparateCodingConfig, snr_kind="esn0", default_link="16qam-awgn-ldpc-1/2", default_snrs="0:20:2",
                 sample_check=SampleCheck(snr_db=10.0, link="16qam-awgn-ldpc-1/2"))
class SeparateCoding(System):
    """Separate source and channel coding, the classical reference: an image codec (WebP, JPEG,
    JPEG 2000, AVIF, BPG) at the highest quality within a bit budget, its bytes over any bit link
    (5G LDPC + QAM + channel, or a BSC), decoded at the receiver.

    Parameters
    ----------
    config : SeparateCodingConfig, optional
        Defaults to JPEG within 1,024 bits (512 channel uses at 16-QAM with LDPC rate 1/2).
    cache : StreamCache, optional
        Where encoded streams are kept (share one across the systems of a sweep).

    Input (call): ``x : [B, 3, H, W]`` in [0, 1]; ``link`` a bit link or spec (None: error-free);
    ``snr_db`` in the link's convention (Es/N0 per complex symbol for a :class:`BitLink`). No training.

    Output: :class:`SystemOutput` with ``x_hat``, ``payload`` / ``received`` (``[B, payload_bits / 8]``
    bytes as int64), the accounting keys, ``delivered : [B]`` bool (decoded from an intact stream),
    ``failures`` (the other images, shown as the fallback: the stream
    did not fit, arrived with an error, as a CRC would detect, or did not decode), ``unfit`` (of
    those, streams that did not fit) and ``decode_failures`` (intact streams that did not decode).

    Example
    -------
    >>> system = SeparateCoding(SeparateCodingConfig("jpeg", 1024))
    >>> out = system(torch.rand(2, 3, 32, 32), link="16qam-awgn-ldpc-1/2", snr_db=10.0)
    >>> out["bits_per_image"], out["channel_uses_per_image"]
    (1024, 512)
    """

    encodes_once = True

    def __init__(self, config: SeparateCodingConfig | None = None, cache: StreamCache | None = None):
        super().__init__()
        self.config = config = config or SeparateCodingConfig()
        self.encoder = _CodecEncoder(config, cache or StreamCache())
        self.digitizer = _Bytes()
        self.restorer = None
        self.decoder = _CodecDecoder(config)
        self.head = None

    def run(self, x, *, link, snr_db, mode, generator, **options) -> SystemOutput:
        """Encode each image, send its bytes, decode (no options)."""
        if options:
            raise TypeError(f"SeparateCoding takes no options, got {sorted(options)}")
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3 or x.shape[0] == 0:
            raise InputError(f"SeparateCoding expects images [B, 3, H, W], got {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        payload, fits = self.encoder(x)
        received = self.send(payload, link, snr_db, generator)
        intact = (received == payload).all(1) & fits
        x_hat, decoded = self.decoder(torch.where(intact[:, None], received, torch.zeros_like(received)), tuple(x.shape[2:]))
        ok = intact & decoded
        fallback = torch.tensor(self.config.fallback, dtype=x_hat.dtype)[:, None, None]
        x_hat = torch.where(ok[:, None, None, None], x_hat, fallback)
        return SystemOutput(x_hat=x_hat.to(x.device), payload=payload, received=received, delivered=ok, failures=int((~ok).sum()), unfit=int((~fits).sum()),
                            decode_failures=int((intact & ~decoded).sum()), **self.accounting(payload, link))


# ---------------------------------------------------------------------------------------------------
# the 5G MCS table and the capacity budget

MODULATIONS = ("qpsk", "16qam", "64qam")
CODE_RATES = ("1/3", "1/2", "2/3", "3/4", "5/6")
MCS_TABLE = tuple(f"{modulation}-{rate}" for modulation in MODULATIONS for rate in CODE_RATES)
"""The MCS of the reference: 5G NR LDPC at five code rates x QPSK / 16-QAM / 64-QAM, e.g. ``"16qam-1/2"``."""
MAX_LDPC_K = 8448
"""Largest 5G NR LDPC codeword (information bits, base graph 1)."""
BG2_MAX_K = 3840
"""Largest codeword of base graph 2; above it base graph 1, whose rates must exceed 1/3."""


@dataclass(frozen=True)
class MCSPlan:
    """How one MCS fills ``channel_uses`` complex symbols per image: ``codewords`` 5G LDPC codewords
    of ``k`` information and ``n`` coded bits (the fewest with ``k <= 8448``), ``payload_bits`` (a
    multiple of 8, at most ``codewords * k``) for the codec."""

    mcs: str
    modulation: str
    rate: float
    codewords: int
    k: int
    n: int
    payload_bits: int
    channel_uses: int


def mcs_density(mcs: str) -> float:
    """Information bits per channel use of ``mcs`` (bits per symbol x code rate), e.g. 2 for ``"16qam-1/2"``."""
    if mcs not in MCS_TABLE:
        raise InputError(f"unknown MCS {mcs!r}: use one of {', '.join(MCS_TABLE)}")
    modulation, rate = mcs.split("-")
    numerator, denominator = map(int, rate.split("/"))
    return constellation_info(modulation).bits_per_symbol * numerator / denominator


def mcs_plan(mcs: str, channel_uses: int) -> MCSPlan:
    """The :class:`MCSPlan` of ``mcs`` (an entry of :data:`MCS_TABLE`) at ``channel_uses`` complex
    symbols per image; ValueError when the budget cannot hold one 5G codeword (``k >= 12``)."""
    if mcs not in MCS_TABLE:
        raise InputError(f"unknown MCS {mcs!r}: use one of {', '.join(MCS_TABLE)}")
    if isinstance(channel_uses, bool) or not isinstance(channel_uses, int) or channel_uses < 1:
        raise InputError(f"channel_uses must be a positive int, got {channel_uses!r}")
    modulation, rate_text = mcs.split("-")
    numerator, denominator = map(int, rate_text.split("/"))
    coded = channel_uses * constellation_info(modulation).bits_per_symbol
    codewords = -(-coded * numerator // (denominator * MAX_LDPC_K))
    n = coded // codewords
    k = n * numerator // denominator
    if k > BG2_MAX_K and 3 * k <= n:
        k = n // 3 + 1  # base graph 1 (k > 3840) takes rates above 1/3 only: one more information bit
    if k < 12:
        raise InputError(f"{channel_uses} channel uses at {mcs} carry {k} information bits: a 5G LDPC codeword needs k >= 12")
    return MCSPlan(mcs, modulation, numerator / denominator, codewords, k, n, 8 * (codewords * k // 8), channel_uses)


def mcs_link(plan: MCSPlan, channel: str = "awgn") -> BitLink:
    """The :class:`BitLink` of ``plan``: its modulation and 5G LDPC code (APP demapping) over
    ``channel`` (a channel spec: ``"awgn"``, ``"rayleigh"``, ``"mimo-8x4-svd"``...). ValueError when
    the channel pads the codewords beyond the plan's channel uses."""
    link = BitLink(plan.modulation, channel, code=LDPC5GCode(plan.k, plan.n))
    uses = link.channel_uses(plan.payload_bits)
    if uses > plan.channel_uses:
        raise InputError(f"{plan.mcs} over {channel} needs {uses} channel uses for {plan.codewords} codewords, more than {plan.channel_uses}: give a multiple of the channel's symbols per use")
    return link


def capacity_bits(channel_uses: int, esn0_db: float) -> int:
    """Bits per image an ideal code carries over AWGN: ``channel_uses * log2(1 + Es/N0)``, rounded
    down to whole bytes (``esn0_db``: Es/N0 per complex symbol, dB)."""
    bits = channel_uses * math.log2(1.0 + 10.0 ** (float(esn0_db) / 10.0))
    return 8 * int(bits // 8)


def minimum_stream_bits(codec: str, images: torch.Tensor) -> int:
    """The fewest bits (side information included) in which any of ``images [B, 3, H, W]`` fits:
    its stream at the codec's lowest quality."""
    spec = check_codec(codec)
    smallest = min(len(spec.encode(image, spec.qualities.start)) for image in images)
    return 8 * (smallest + side_info_bytes(codec, 8 * (smallest + 4)))
