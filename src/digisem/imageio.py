"""Reading, writing and tiling single images for ``digisem send`` and the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.nn import functional as F

from .io import atomic_write
from .link.errors import InputError


def read_pixels(path: str | Path) -> np.ndarray:
    """An image file as ``[H, W, 3]`` uint8 pixels (a quarter of the float image's memory);
    grayscale, palette and RGBA become RGB."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as handle:
            return np.array(handle.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read {path} as an image: {err}") from err


def read_image(path: str | Path) -> torch.Tensor:
    """An image file as ``[3, H, W]`` float32 in [0, 1]; grayscale, palette and RGBA become RGB."""
    return torch.from_numpy(read_pixels(path)).permute(2, 0, 1).float() / 255.0


def to_pixels(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` (or ``[B, 3, H, W]``) in [0, 1] -> ``[H, W, 3]`` (``[B, H, W, 3]``) uint8, rounded
    half to even. In NumPy: small torch element-wise ops wait for torch's thread pool on a busy machine."""
    values = image.detach().movedim(-3, -1).cpu().float().numpy()
    return np.rint(np.clip(values, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def write_pixels(pixels: np.ndarray, path: str | Path) -> Path:
    """Write ``[H, W, 3]`` uint8 pixels as a PNG, atomically."""
    return atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def write_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write ``[3, H, W]`` in [0, 1] as an 8-bit PNG, atomically."""
    return write_pixels(to_pixels(image), path)


def tile(image: torch.Tensor, block: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Cut ``[3, H, W]`` into ``[N, 3, block, block]`` tiles (edge-replicated padding to a multiple of ``block``).

    Returns the tiles and the layout ``(H, W, rows, cols)`` for :func:`untile`.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise InputError(f"expected an RGB image [3, H, W], got shape {tuple(image.shape)}")
    height, width = image.shape[1:]
    pad_h, pad_w = -height % block, -width % block
    padded = F.pad(image.unsqueeze(0), (0, pad_w, 0, pad_h), mode="replicate")[0]
    rows, cols = padded.shape[1] // block, padded.shape[2] // block
    tiles = padded.reshape(3, rows, block, cols, block).permute(1, 3, 0, 2, 4).reshape(rows * cols, 3, block, block)
    return tiles, (height, width, rows, cols)


def untile(tiles: torch.Tensor, layout: tuple[int, int, int, int]) -> torch.Tensor:
    """Inverse of :func:`tile`: ``[N, 3, b, b]`` tiles -> ``[3, H, W]`` (padding removed)."""
    height, width, rows, cols = layout
    block = tiles.shape[-1]
    image = tiles.reshape(rows, cols, 3, block, block).permute(2, 0, 3, 1, 4).reshape(3, rows * block, cols * block)
    return image[:, :height, :width]
