"""Datasets (CIFAR-10, Kodak24, Urban100, any image folder), seeded loaders and bundled samples.

Images come out as float32 tensors (3, H, W) with values in [0, 1]; batches are (B, 3, H, W).

Where the data lives: every function takes ``root``, the folder that holds the data sets
(``cifar10-jpeg/``, ``cifar-10-batches-py/``, ``kodak24/``, ``urban100/``). When ``root`` is None
the environment variable ``DIGISEM_DATA`` names it; with neither, a :class:`DatasetNotFoundError`
says what to pass or set. Nothing is read from a hard-coded path.

Bundled samples (``digisem/samples/*.png``, read with :func:`sample_images`), so examples and tests
run without any data set:

- ``cifar_<class>_<NNNN>.png``: 8 CIFAR-10 test images, 32x32, one from each of the classes
  airplane, automobile, bird, cat, deer, dog, ship and truck, namely ``test/<class>/0000.jpg`` of the
  JPEG copy of CIFAR-10 (quality 75, see ``cifar10-jpeg``), saved losslessly as the decoded JPEG
  pixels. CIFAR-10 is the data set of A. Krizhevsky, "Learning Multiple Layers of Features from Tiny
  Images", 2009, https://www.cs.toronto.edu/~kriz/cifar.html.
- ``kodak_kodim01.png``, ``kodak_kodim23.png``: 256x256 center crops of ``kodim01.png`` and
  ``kodim23.png`` of the Kodak PhotoCD test set (Kodak24), released by Eastman Kodak for
  unrestricted use.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm import tqdm

from .link.errors import InputError

DATA_ENV_VAR = "DIGISEM_DATA"

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_PICKLE_DIR = "cifar-10-batches-py"
CIFAR10_FOLDER_DIR = "cifar10-jpeg"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_BATCHES = {"train": tuple(f"data_batch_{n}" for n in range(1, 6)), "test": ("test_batch",)}
CIFAR10_FOLDER_EXTENSIONS = ("jpg", "jpeg", "png")

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp")

SAMPLE_KINDS = ("cifar", "kodak")

_DOWNLOAD_CHUNK_BYTES = 1 << 20


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not where it was looked for; the message says where and how to fix it."""


class DownloadError(OSError):
    """A download failed (offline, server error, checksum mismatch) or its archive is unsafe."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else the ``DIGISEM_DATA`` environment variable.

    Raises:
        DatasetNotFoundError: neither is given.
    """
    if root is not None:
        return Path(root).expanduser()
    from_env = os.environ.get(DATA_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    raise DatasetNotFoundError(
        f"No data folder given: pass --data DIR (root=DIR in Python) or set the environment variable {DATA_ENV_VAR}=DIR, where DIR "
        f"holds the data sets ({CIFAR10_FOLDER_DIR}/ or {CIFAR10_PICKLE_DIR}/, kodak24/, urban100/)"
    )


def _normalize_extensions(extensions: Sequence[str]) -> frozenset[str]:
    return frozenset("." + extension.lower().lstrip(".") for extension in extensions)


def _list_images(folder: Path, extensions: Sequence[str]) -> list[Path]:
    suffixes = _normalize_extensions(extensions)
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in suffixes and path.is_file())


def _read_rgb_array(source: Path | BinaryIO) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3) RGB; other modes are converted (alpha is dropped)."""
    with Image.open(source) as image:
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def _read_rgb(source: Path | BinaryIO) -> Tensor:
    """Decode an image file to uint8 (3, H, W) RGB."""
    return torch.from_numpy(_read_rgb_array(source).transpose(2, 0, 1).copy())


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be None or a positive int, got {limit!r}")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR-10 batch files that can build plain containers and numpy arrays only.

    Dicts, lists, bytes, str and int need no global lookup; every other global is refused, so a
    crafted file cannot call ``os.system`` or anything else.
    """

    _ALLOWED_GLOBALS = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> object:
        allowed = self._ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: CIFAR-10 batch files may only hold dicts, lists, "
                "bytes, str, int and numpy arrays"
            )
        return allowed


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One official batch file -> images uint8 (N, 3, 32, 32) and labels int64 (N,).

    Raises ValueError naming the file for a damaged, truncated or unsafe file (nothing in it runs)."""
    try:
        with path.open("rb") as file:
            batch = _RestrictedUnpickler(file, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as err:
        raise InputError(f"{path} is not a valid CIFAR-10 batch file ({type(err).__name__}: {err}); delete {path.parent} "
                         "and fetch the official batches again with digisem download cifar10") from err
    if not isinstance(batch, dict):
        raise InputError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise InputError(f"{path}: expected keys b'data' and b'labels', got {sorted(map(repr, batch))}")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise InputError(
            f"{path}: expected b'data' uint8 (N, 3072) and N labels, got b'data' {data.dtype} {data.shape} "
            f"and {len(labels)} labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise InputError(f"{path}: labels must lie in [0, 10), got [{labels.min()}, {labels.max()}]")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar10_pickle_dir(base: Path) -> Path | None:
    for candidate in (base / CIFAR10_PICKLE_DIR, base):
        if any((candidate / name).is_file() for names in CIFAR10_BATCHES.values() for name in names):
            return candidate
    return None


def _has_batches(pickle_dir: Path | None, split: str) -> bool:
    return pickle_dir is not None and all((pickle_dir / name).is_file() for name in CIFAR10_BATCHES[split])


def _cifar10_folder_split(base: Path, split: str) -> Path | None:
    for candidate in (base / CIFAR10_FOLDER_DIR / split, base / split):
        if candidate.is_dir() and any((candidate / name).is_dir() for name in CIFAR10_CLASSES):
            return candidate
    return None


def _cifar10_not_found(base: Path, split: str, source: str) -> DatasetNotFoundError:
    looked = []
    if source in ("auto", "pickle"):
        looked.append(f"  official python batches: {base / CIFAR10_PICKLE_DIR}/ ({', '.join(CIFAR10_BATCHES[split])})")
    if source in ("auto", "folder"):
        looked.append(f"  image-folder copy: {base / CIFAR10_FOLDER_DIR / split}/<class>/NNNN.jpg")
    return DatasetNotFoundError(
        f"CIFAR-10 {split} split not found (source={source!r}). Looked for\n"
        + "\n".join(looked)
        + f"\nDownload the official batches with `digisem download cifar10 --root {base}` "
        f"(or CIFAR10(..., download=True)) from {CIFAR10_URL}, or point root / {DATA_ENV_VAR} at a folder "
        "that holds one of these."
    )


def _choose_cifar10_source(base: Path, split: str, source: str, download: bool) -> tuple[str, Path]:
    """Which copy of the split to read: ``("pickle", batches folder)`` or ``("folder", split folder)``."""
    pickle_dir = _cifar10_pickle_dir(base) if source in ("auto", "pickle") else None
    if _has_batches(pickle_dir, split):
        return "pickle", pickle_dir
    split_dir = _cifar10_folder_split(base, split) if source in ("auto", "folder") else None
    if split_dir is not None:
        return "folder", split_dir
    if pickle_dir is not None:
        missing = [name for name in CIFAR10_BATCHES[split] if not (pickle_dir / name).is_file()]
        raise DatasetNotFoundError(
            f"{pickle_dir} lacks {', '.join(missing)} for the {split} split; remove the folder and download it "
            f"again with `digisem download cifar10 --root {base}` ({CIFAR10_URL})"
        )
    if download:
        return "pickle", download_cifar10(base)
    raise _cifar10_not_found(base, split, source)


def _list_cifar10_folder(split_dir: Path) -> tuple[list[Path], list[int]]:
    """Files and labels in round-robin class order: file 0 of each class, then file 1, ..."""
    found = sorted(path.name for path in split_dir.iterdir() if path.is_dir())
    if tuple(found) != CIFAR10_CLASSES:
        raise InputError(
            f"{split_dir}: expected one folder per CIFAR-10 class {list(CIFAR10_CLASSES)}, found {found}"
        )
    per_class = [_list_images(split_dir / name, CIFAR10_FOLDER_EXTENSIONS) for name in CIFAR10_CLASSES]
    ranked = sorted(
        (rank, label, path) for label, files in enumerate(per_class) for rank, path in enumerate(files)
    )
    return [path for _, _, path in ranked], [label for _, label, _ in ranked]


def _decode_cifar10_files(files: Sequence[Path]) -> Tensor:
    pixels = np.empty((len(files), 32, 32, 3), dtype=np.uint8)
    for index, path in enumerate(files):
        image = _read_rgb_array(path)
        if image.shape != (32, 32, 3):
            raise InputError(f"{path}: CIFAR-10 images must be 32x32, got {image.shape[1]}x{image.shape[0]}")
        pixels[index] = image
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


class CIFAR10(Dataset):
    """CIFAR-10 from the official python batches or from an image-folder copy, one interface.

    Parameters:
        root: data folder (None: ``DIGISEM_DATA``). It holds ``cifar-10-batches-py/`` (the official
            python batches ``data_batch_1..5``, ``test_batch``) and/or ``cifar10-jpeg/{train,test}/<class>/NNNN.jpg``;
            ``root`` may also be either of these two folders itself.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        source: ``"pickle"``, ``"folder"`` or ``"auto"``, which uses the official batches when both
            exist (they are the original pixels; the folder copy may be lossy JPEG).
        transform: callable applied to each image tensor (3, 32, 32) float in [0, 1].
        download: when no source exists, fetch the official batches with :func:`download_cifar10`
            (``source`` ``"auto"`` or ``"pickle"`` only).
        limit: keep only the first ``limit`` images of the split.

    Order: the official batches keep their file order (data_batch_1 ... 5). The folder copy is
    ordered round-robin over classes, file names sorted within each class (file 0 of airplane,
    automobile, ..., truck, then file 1 of each, ...), so ``limit=N`` keeps a class-balanced subset.
    Labels are indices into :data:`CIFAR10_CLASSES` (the official order, also the sorted folder names).

    Memory: the official batches are read at construction; folder images are decoded once, on first
    access, into one uint8 tensor (about 1 s per 10,000 images). With a multi-worker DataLoader,
    touch ``dataset.images`` before creating it so workers share that tensor instead of each decoding.

    Items:
        ``(image, label)``: image float32 (3, 32, 32) in [0, 1] (or ``transform``'s output), label int.

    Raises:
        DatasetNotFoundError: the split is in none of the expected places; the message lists them
            and the download command.
    """

    classes = CIFAR10_CLASSES

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: Literal["train", "test"] = "train",
        source: Literal["auto", "folder", "pickle"] = "auto",
        transform: Callable[[Tensor], Tensor] | None = None,
        download: bool = False,
        limit: int | None = None,
    ) -> None:
        if split not in CIFAR10_BATCHES:
            raise InputError(f"split must be 'train' or 'test', got {split!r}")
        if source not in ("auto", "folder", "pickle"):
            raise InputError(f"source must be 'auto', 'folder' or 'pickle', got {source!r}")
        if download and source == "folder":
            raise InputError("download fetches the official python batches: use source='pickle' or 'auto'")
        _check_limit(limit)
        self.split = split
        self.transform = transform
        self.source, self.location = _choose_cifar10_source(data_root(root), split, source, download)
        self._files: list[Path] = []
        self._images: Tensor | None = None
        if self.source == "pickle":
            batches = [_read_cifar10_batch(self.location / name) for name in CIFAR10_BATCHES[split]]
            self._images = torch.from_numpy(np.concatenate([images for images, _ in batches])[:limit].copy())
            self._labels = torch.from_numpy(np.concatenate([labels for _, labels in batches])[:limit].copy())
        else:
            files, labels = _list_cifar10_folder(self.location)
            self._files = files[:limit]
            self._labels = torch.tensor(labels[:limit], dtype=torch.int64)

    @property
    def images(self) -> Tensor:
        """All images of the split, uint8 (N, 3, 32, 32), decoded on first access."""
        if self._images is None:
            self._images = _decode_cifar10_files(self._files)
        return self._images

    @property
    def labels(self) -> Tensor:
        """All labels of the split, int64 (N,), available without decoding any image."""
        return self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index].to(torch.float32) / 255.0
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self._labels[index])


def _md5_of_file(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as file:
        while chunk := file.read(_DOWNLOAD_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _download_verified(url: str, destination: Path, md5: str, timeout: float) -> None:
    """Download ``url`` to a temporary file next to ``destination``; rename it only if the md5 matches."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    temp_path = Path(temp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    size = int(response.headers.get("Content-Length") or 0) or None
                    with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=destination.name) as bar:
                        while chunk := response.read(_DOWNLOAD_CHUNK_BYTES):
                            out.write(chunk)
                            digest.update(chunk)
                            bar.update(len(chunk))
            except urllib.error.HTTPError as error:
                raise DownloadError(
                    f"Could not download {url}: the server answered HTTP {error.code} {error.reason}"
                ) from error
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
                raise DownloadError(
                    f"Could not download {url}: {error}. This machine seems to be offline (or the server is "
                    f"unreachable). Download the archive on a machine with internet access and copy it to "
                    f"{destination}, then run again; or extract it so that "
                    f"{destination.parent / CIFAR10_PICKLE_DIR}/ exists."
                ) from error
        actual = digest.hexdigest()
        if actual != md5:
            raise DownloadError(
                f"Checksum mismatch for {url}: md5 {actual}, expected {md5}; the partial file was deleted, try again"
            )
        os.replace(temp_path, destination)
    finally:
        temp_path.unlink(missing_ok=True)


def _safe_member_path(member: tarfile.TarInfo, archive: Path) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if (
        path.is_absolute()
        or ".." in path.parts
        or "\\" in member.name
        or not path.parts
        or path.parts[0] != CIFAR10_PICKLE_DIR
        or not (member.isfile() or member.isdir())
    ):
        raise DownloadError(
            f"refusing to extract {archive}: member {member.name!r} is not a plain file or folder inside "
            f"{CIFAR10_PICKLE_DIR}/"
        )
    return path


def _extract_cifar10(archive: Path, base: Path) -> Path:
    """Extract into a temporary folder, check every batch is there, then move it into place."""
    target = base / CIFAR10_PICKLE_DIR
    staging = Path(tempfile.mkdtemp(prefix=".cifar-10-extract.", dir=base))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [(member, _safe_member_path(member, archive)) for member in tar.getmembers()]
            for member, relative in members:
                destination = staging.joinpath(*relative.parts)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as source, destination.open("wb") as out:
                    shutil.copyfileobj(source, out)
        extracted = staging / CIFAR10_PICKLE_DIR
        expected = [name for names in CIFAR10_BATCHES.values() for name in names]
        missing = [name for name in expected if not (extracted / name).is_file()]
        if missing:
            raise DownloadError(f"{archive} lacks {', '.join(missing)} under {CIFAR10_PICKLE_DIR}/")
        if target.exists():
            raise DownloadError(
                f"{target} exists but is incomplete; remove it and run again to extract a fresh copy from {archive}"
            )
        os.replace(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_cifar10(root: str | os.PathLike | None = None, *, timeout: float = 60) -> Path:
    """Download and extract the official CIFAR-10 python batches into ``<root>/cifar-10-batches-py``.

    Fetches :data:`CIFAR10_URL` (about 163 MiB) with a progress bar into a temporary file in
    ``root``, checks its md5 against :data:`CIFAR10_MD5`, renames it to ``<root>/cifar-10-python.tar.gz``
    (kept), and extracts it through a temporary folder, refusing any member that is not a plain
    file or folder under ``cifar-10-batches-py/``. Nothing half-written is left behind. Does nothing
    when the batches are already there; reuses a verified archive already in ``root``.

    Args:
        root: data folder (None: ``DIGISEM_DATA``); created if missing.
        timeout: seconds to wait for the server per network operation.

    Returns:
        The ``cifar-10-batches-py`` folder.

    Raises:
        DownloadError: offline or server error (the message names the URL), checksum mismatch, or an
            unsafe archive.
    """
    base = data_root(root)
    target = base / CIFAR10_PICKLE_DIR
    expected = [name for names in CIFAR10_BATCHES.values() for name in names]
    if all((target / name).is_file() for name in expected):
        return target
    base.mkdir(parents=True, exist_ok=True)
    archive = base / CIFAR10_ARCHIVE
    if not (archive.is_file() and _md5_of_file(archive) == CIFAR10_MD5):
        _download_verified(CIFAR10_URL, archive, CIFAR10_MD5, timeout)
    return _extract_cifar10(archive, base)


def _crop_size(crop: int | Sequence[int] | None) -> tuple[int, int] | None:
    if crop is None:
        return None
    height, width = (crop, crop) if isinstance(crop, int) else tuple(crop)
    if height < 1 or width < 1:
        raise InputError(f"crop must be positive, got {crop!r}")
    return int(height), int(width)


class ImageFolder(Dataset):
    """The images of one folder (not recursive), sorted by file name, with optional crop and flip.

    Parameters:
        root: the folder holding the images.
        crop: None (whole image), an int (square) or (height, width) in pixels. A center crop,
            or a uniformly random one when ``random_crop`` is True.
        random_crop: draw the crop position at random (needs ``crop``).
        random_flip: flip horizontally with probability 1/2.
        extensions: file extensions to include, case-insensitive.
        limit: keep only the first ``limit`` files.
        generator: ``torch.Generator`` for the random crops and flips; None uses torch's global RNG.
            A generator is copied into every DataLoader worker (they would repeat each other's
            draws), so with ``num_workers > 0`` leave it None: the DataLoader seeds each worker's
            global RNG from its own seed (see :func:`make_loader`).

    Items:
        float32 (3, H, W) in [0, 1], RGB (other modes are converted, alpha dropped); (3, h, w) with
        ``crop``.

    Raises:
        DatasetNotFoundError: the folder is missing or holds no image.
        ValueError: an image is smaller than the crop (when it is read).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        crop: int | tuple[int, int] | None = None,
        random_crop: bool = False,
        random_flip: bool = False,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        limit: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        _check_limit(limit)
        self.crop_size = _crop_size(crop)
        if random_crop and self.crop_size is None:
            raise InputError("random_crop=True needs a crop size")
        folder = Path(root)
        if not folder.is_dir():
            raise DatasetNotFoundError(f"image folder {folder} does not exist")
        files = _list_images(folder, extensions)
        if not files:
            raise DatasetNotFoundError(f"no images with extensions {tuple(extensions)} in {folder}")
        self.root = folder
        self.files = files[:limit]
        self.random_crop = random_crop
        self.random_flip = random_flip
        self.generator = generator

    def __len__(self) -> int:
        return len(self.files)

    def _crop(self, image: Tensor, path: Path) -> Tensor:
        crop_height, crop_width = self.crop_size
        height, width = image.shape[1:]
        if height < crop_height or width < crop_width:
            raise InputError(
                f"{path}: image is {width}x{height} (width x height), smaller than the crop {crop_width}x{crop_height}"
            )
        if self.random_crop:
            top = int(torch.randint(height - crop_height + 1, (1,), generator=self.generator))
            left = int(torch.randint(width - crop_width + 1, (1,), generator=self.generator))
        else:
            top = (height - crop_height) // 2
            left = (width - crop_width) // 2
        return image[:, top : top + crop_height, left : left + crop_width]

    def __getitem__(self, index: int) -> Tensor:
        path = self.files[index]
        image = _read_rgb(path)
        if self.crop_size is not None:
            image = self._crop(image, path)
        if self.random_flip and bool(torch.rand((), generator=self.generator) < 0.5):
            image = image.flip(-1)
        return image.to(torch.float32) / 255.0


class _BenchmarkFolder(ImageFolder):
    """An :class:`ImageFolder` at ``<root>/<folder_name>`` that must hold a known number of images."""

    folder_name: str
    file_pattern: str
    expected_count: int

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        crop: int | tuple[int, int] | None = None,
        random_crop: bool = False,
        random_flip: bool = False,
        limit: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        base = data_root(root)
        named = base / self.folder_name
        folder = named if named.is_dir() else base
        found = sorted(folder.glob(self.file_pattern)) if folder.is_dir() else []
        if not found:
            raise DatasetNotFoundError(
                f"{type(self).__name__} not found: looked for {self.file_pattern} in {named} and in {base}; "
                f"pass --data DIR (root=DIR in Python) or set {DATA_ENV_VAR}=DIR where DIR/{self.folder_name}/ holds the images"
            )
        if len(found) != self.expected_count:
            raise DatasetNotFoundError(
                f"{type(self).__name__}: expected {self.expected_count} images {self.file_pattern} in {folder}, "
                f"found {len(found)}"
            )
        super().__init__(
            folder,
            crop=crop,
            random_crop=random_crop,
            random_flip=random_flip,
            extensions=(PurePosixPath(self.file_pattern).suffix,),
            limit=limit,
            generator=generator,
        )


class Kodak24(_BenchmarkFolder):
    """The 24 Kodak PhotoCD images ``kodimNN.png`` (768x512, six of them 512x768), as an :class:`ImageFolder`.

    Looks in ``<root>/kodak24`` or in ``root`` itself (None: ``DIGISEM_DATA``) and checks that 24
    images are there. Other parameters and the items are those of :class:`ImageFolder`.
    """

    folder_name = "kodak24"
    file_pattern = "kodim*.png"
    expected_count = 24


class Urban100(_BenchmarkFolder):
    """The 100 Urban100 photos ``img_NNN.png`` (sizes vary), as an :class:`ImageFolder`.

    Looks in ``<root>/urban100`` or in ``root`` itself (None: ``DIGISEM_DATA``) and checks that 100
    images are there. Sizes differ, so batch them with ``crop``. Other parameters and the items are
    those of :class:`ImageFolder`.
    """

    folder_name = "urban100"
    file_pattern = "img_*.png"
    expected_count = 100


def sample_images(kind: Literal["cifar", "kodak"] = "cifar") -> tuple[Tensor, list[str]]:
    """The images bundled with digisem (see the module docstring for their provenance).

    Args:
        kind: ``"cifar"``: 8 CIFAR-10 test images, 32x32, one per class for 8 classes;
            ``"kodak"``: 2 Kodak24 center crops, 256x256.

    Returns:
        Images float32 (N, 3, H, W) in [0, 1], and their names (file names without ``.png``,
        e.g. ``"cifar_cat_0000"``), sorted.
    """
    if kind not in SAMPLE_KINDS:
        raise InputError(f"kind must be one of {SAMPLE_KINDS}, got {kind!r}")
    folder = resources.files("digisem").joinpath("samples")
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.startswith(f"{kind}_") and entry.name.endswith(".png")),
        key=lambda entry: entry.name,
    )
    images = torch.stack([_read_rgb(io.BytesIO(entry.read_bytes())) for entry in entries])
    return images.to(torch.float32) / 255.0, [entry.name.removesuffix(".png") for entry in entries]


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose shuffling is driven by a ``torch.Generator`` seeded with ``seed``.

    The same seed gives the same order of items. With ``num_workers > 0`` the DataLoader also seeds
    each worker's global RNG from that generator, so random crops and flips drawn from the global
    RNG (``ImageFolder(generator=None)``) repeat too. With ``num_workers == 0`` those draws come from
    the main process's global RNG: seed it (``torch.manual_seed``) or give the dataset its own
    generator.

    Returns:
        A DataLoader yielding the dataset's items collated into batches of ``batch_size``.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
    )


DATASETS = ("cifar10", "samples", "urban100", "kodak24", "folder")


def labelled_samples() -> TensorDataset:
    """The bundled CIFAR sample images with their class labels (from the file names)."""
    images, names = sample_images("cifar")
    labels = torch.tensor([CIFAR10_CLASSES.index(name.split("_")[1]) for name in names])
    return TensorDataset(images, labels)


def random_crop_flip(padding: int = 4) -> Callable[[Tensor], Tensor]:
    """Training augmentation for one image ``[3, H, W]``: a random ``H x W`` crop of the image padded
    by ``padding`` pixels (reflection), then a horizontal flip with probability 1/2. Draws come from
    the global RNG (the training loop seeds it per epoch, so runs repeat)."""

    def transform(image: Tensor) -> Tensor:
        height, width = image.shape[1:]
        padded = torch.nn.functional.pad(image[None], (padding,) * 4, mode="reflect")[0]
        top, left = (int(v) for v in torch.randint(0, 2 * padding + 1, (2,)))
        crop = padded[:, top : top + height, left : left + width]
        return crop.flip(2) if bool(torch.rand(()) < 0.5) else crop

    return transform


class Resized(Dataset):
    """``(image, label)`` items of ``dataset`` with images resized (bilinear) to ``size x size``."""

    def __init__(self, dataset: Dataset, size: int):
        self.dataset, self.size = dataset, int(size)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        resized = torch.nn.functional.interpolate(image[None], size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        return resized.clamp(0, 1), label


def recipe_dataset(name: str, root: str | os.PathLike | None, split: Literal["train", "test"], *, limit: int | None = None, crop: int | None = None,
                   image_size: int | None = None, augment: bool = False, folder: str | None = None) -> Dataset:
    """The one dataset chooser of recipes and evaluation.

    Parameters
    ----------
    name : str
        ``"cifar10"`` (the split, class-balanced first ``limit`` for the folder copy), ``"samples"``
        (the 8 bundled CIFAR images with labels: no data folder needed), ``"urban100"`` (random
        ``crop`` crops in training; the test split is Kodak24 center crops), ``"kodak24"`` (center
        crops), ``"folder"`` (any image folder ``folder``).
    root : data folder (None: ``$DIGISEM_DATA``).
    image_size : resize to ``image_size x image_size`` (bilinear), e.g. 224 for ViT recipes.
    augment : random crop (4-pixel reflection padding) and flip (training only).

    Output
    ------
    A dataset of ``(image [3, H, W] in [0, 1], label)`` (CIFAR-10, samples) or of images.
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}: use one of {DATASETS}")
    _check_limit(limit)
    transform = random_crop_flip() if augment and split == "train" else None
    if name == "samples":
        images, labels = labelled_samples().tensors
        if transform is not None:
            raise InputError("augment applies to cifar10 training sets, not the bundled samples")
        dataset: Dataset = TensorDataset(images[:limit], labels[:limit])
    elif name == "cifar10":
        dataset = CIFAR10(root, split=split, limit=limit, transform=transform)
    elif name == "folder":
        if not folder:
            raise InputError("dataset 'folder' needs a folder of images")
        dataset = ImageFolder(folder, crop=crop, limit=limit)
    elif name == "urban100" and split == "train":
        dataset = Urban100(root, crop=crop, random_crop=True, random_flip=True, limit=limit)
    else:
        dataset = Kodak24(root, crop=crop, limit=limit)
    if image_size is not None and image_size != 32 and name in ("cifar10", "samples"):
        dataset = Resized(dataset, image_size)
    return dataset


def describe_dataset(name: str, split: str, dataset: Dataset) -> str:
    """How a results file names a dataset, e.g. ``"CIFAR-10 test (JPEG copy)"``."""
    if name == "cifar10":
        return f"CIFAR-10 {split}" + (" (JPEG copy)" if getattr(dataset, "source", getattr(getattr(dataset, "dataset", None), "source", "")) == "folder" else "")
    if name == "urban100" and split == "test":
        return "Kodak24"
    return {"samples": "bundled sample images", "urban100": "Urban100", "kodak24": "Kodak24", "folder": "image folder"}[name]
