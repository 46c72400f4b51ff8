"""digisem.data on small data sets built in tmp_path, and on the real data when DIGISEM_DATA is set."""

import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digisem import data
from digisem.data import (
    CIFAR10,
    CIFAR10_CLASSES,
    CIFAR10_URL,
    DatasetNotFoundError,
    DownloadError,
    ImageFolder,
    Kodak24,
    Urban100,
    download_cifar10,
    make_loader,
    sample_images,
)


class _Python2Pickler(pickle._Pickler):
    """Writes pickles the way Python 2's cPickle wrote the official CIFAR-10 batches: str and bytes as py2 strings."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_string(self, value):
        raw = value.encode("latin-1") if isinstance(value, str) else value
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(value)

    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string


def _official_batch_bytes(images: np.ndarray, labels: list[int], numpy_module: str = "numpy.core.multiarray") -> bytes:
    """An official-format batch: {'data': uint8 (N, 3072) CHW row-major, 'labels': [...]}, Python 2 pickle."""
    buffer = io.BytesIO()
    batch = {"batch_label": "fake batch", "labels": list(labels), "data": images.reshape(len(images), 3 * 32 * 32)}
    _Python2Pickler(buffer, protocol=2).dump(batch)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", f"c{numpy_module}\n".encode())


def _write_official_batches(folder: Path, per_batch: int = 2, test_count: int = 3, **kwargs) -> dict[str, tuple]:
    """Writes data_batch_1..5 and test_batch.

    Every pixel of an image holds its index (train 0, 1, ...; test 100, 101, ...); its label is index % 10.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    start = 0
    for name, count in [(f"data_batch_{n}", per_batch) for n in range(1, 6)] + [("test_batch", test_count)]:
        indices = np.arange(start, start + count) if name != "test_batch" else np.arange(100, 100 + count)
        images = np.broadcast_to(indices[:, None, None, None], (count, 3, 32, 32)).astype(np.uint8)
        labels = [int(index) % 10 for index in indices]
        (folder / name).write_bytes(_official_batch_bytes(images, labels, **kwargs))
        written[name] = (images, labels)
        if name != "test_batch":
            start += count
    meta = io.BytesIO()
    _Python2Pickler(meta, protocol=2).dump(
        {"num_cases_per_batch": per_batch, "label_names": list(CIFAR10_CLASSES), "num_vis": 3072}
    )
    (folder / "batches.meta").write_bytes(meta.getvalue())
    return written


def _save_png(path: Path, pixels: np.ndarray, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path)


def _write_cifar_folder(split_dir: Path, per_class: int = 2) -> None:
    """Class c, file k: a flat 32x32 PNG of value 20 * c + k in every channel."""
    for label, name in enumerate(CIFAR10_CLASSES):
        for rank in range(per_class):
            _save_png(split_dir / name / f"{rank:04d}.png", np.full((32, 32, 3), 20 * label + rank, np.uint8))


def _coordinate_image(height: int, width: int) -> np.ndarray:
    """Red = column, green = row, blue = 7: a crop's corner pixel tells where the crop was taken."""
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([columns, rows, np.full_like(rows, 7)], axis=-1).astype(np.uint8)


# data root


def test_data_root_uses_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "from_env"))
    assert data.data_root(tmp_path / "given") == tmp_path / "given"
    assert data.data_root() == tmp_path / "from_env"


def test_no_root_and_no_environment_says_what_to_set(monkeypatch):
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    with pytest.raises(DatasetNotFoundError, match="root=DIR.*DIGISEM_DATA"):
        CIFAR10()
    with pytest.raises(DatasetNotFoundError, match="DIGISEM_DATA"):
        Kodak24()


# CIFAR-10 official python batches


@pytest.mark.parametrize("numpy_module", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_official_batches_load_with_chw_row_major_layout(tmp_path, numpy_module):
    folder = tmp_path / data.CIFAR10_PICKLE_DIR
    _write_official_batches(folder, numpy_module=numpy_module)
    pixels = np.zeros((1, 3, 32, 32), np.uint8)
    row = np.zeros(3072, np.uint8)
    row[1 * 1024 + 5 * 32 + 7] = 200  # channel 1 (green), row 5, column 7
    row[2 * 1024 + 31 * 32 + 0] = 90  # channel 2 (blue), row 31, column 0
    pixels[0] = row.reshape(3, 32, 32)
    (folder / "test_batch").write_bytes(_official_batch_bytes(pixels, [6], numpy_module))
    dataset = CIFAR10(tmp_path, split="test")
    image, label = dataset[0]
    assert dataset.source == "pickle" and len(dataset) == 1 and label == 6
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert image[1, 5, 7].item() == pytest.approx(200 / 255)
    assert image[2, 31, 0].item() == pytest.approx(90 / 255)
    assert torch.count_nonzero(image).item() == 2


def test_official_train_split_concatenates_batches_in_order(tmp_path):
    _write_official_batches(tmp_path / data.CIFAR10_PICKLE_DIR, per_batch=2)
    dataset = CIFAR10(tmp_path, split="train")
    assert len(dataset) == 10
    assert dataset.images[:, 0, 0, 0].tolist() == list(range(10))
    assert dataset.labels.tolist() == [index % 10 for index in range(10)]
    assert CIFAR10(tmp_path, split="train", limit=3).labels.tolist() == [0, 1, 2]


def test_root_may_be_the_batches_folder_itself(tmp_path):
    _write_official_batches(tmp_path)
    assert len(CIFAR10(tmp_path, split="test")) == 3


@pytest.mark.parametrize(
    "payload",
    [
        lambda marker: (os.mkdir, (str(marker),)),
        lambda marker: (exec, (f"open({str(marker)!r}, 'w').close()",)),
        lambda marker: (os.system, (f"touch {marker}",)),
    ],
    ids=["os.mkdir", "exec", "os.system"],
)
def test_malicious_batch_file_is_refused_without_running_code(tmp_path, payload):
    marker = tmp_path / "pwned"

    class Malicious:
        def __reduce__(self):
            return payload(marker)

    folder = tmp_path / data.CIFAR10_PICKLE_DIR
    _write_official_batches(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Malicious(), b"labels": [0]}, protocol=2))
    with pytest.raises(ValueError, match="not a valid CIFAR-10 batch file.*refusing to load global") as raised:
        CIFAR10(tmp_path, split="test")
    assert isinstance(raised.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists()


def test_batch_with_wrong_layout_is_rejected(tmp_path):
    folder = tmp_path / data.CIFAR10_PICKLE_DIR
    _write_official_batches(folder)
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]})
    (folder / "test_batch").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match=r"uint8 \(N, 3072\)"):
        CIFAR10(tmp_path, split="test")


# CIFAR-10 image-folder copy


def test_folder_copy_labels_follow_class_order_round_robin(tmp_path):
    _write_cifar_folder(tmp_path / data.CIFAR10_FOLDER_DIR / "test", per_class=2)
    dataset = CIFAR10(tmp_path, split="test")
    assert dataset.source == "folder" and len(dataset) == 20
    assert dataset.labels.tolist() == list(range(10)) * 2
    for index in (0, 3, 13, 19):
        image, label = dataset[index]
        rank = index // 10
        assert label == index % 10
        assert torch.equal(image, torch.full((3, 32, 32), (20 * label + rank) / 255))
    limited = CIFAR10(tmp_path, split="test", limit=10)
    assert sorted(limited.labels.tolist()) == list(range(10))


def test_folder_copy_accepts_the_folder_itself_and_jpeg_files(tmp_path):
    split_dir = tmp_path / "test"
    _write_cifar_folder(split_dir, per_class=1)
    (split_dir / "cat" / "0000.png").unlink()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(split_dir / "cat" / "0000.jpg", quality=95)
    dataset = CIFAR10(tmp_path, split="test", source="folder")
    cat_image, cat_label = dataset[CIFAR10_CLASSES.index("cat")]
    assert cat_label == 3
    assert (cat_image - 128 / 255).abs().max().item() < 3 / 255
    assert dataset.transform is None and dataset.images.shape == (10, 3, 32, 32)


def test_folder_copy_with_wrong_class_folders_is_rejected(tmp_path):
    split_dir = tmp_path / data.CIFAR10_FOLDER_DIR / "test"
    _write_cifar_folder(split_dir, per_class=1)
    (split_dir / "horse").rename(split_dir / "pony")
    with pytest.raises(ValueError, match="pony"):
        CIFAR10(tmp_path, split="test")


def test_auto_prefers_official_batches_and_source_can_force_folder(tmp_path):
    _write_official_batches(tmp_path / data.CIFAR10_PICKLE_DIR)
    _write_cifar_folder(tmp_path / data.CIFAR10_FOLDER_DIR / "test", per_class=1)
    assert CIFAR10(tmp_path, split="test").source == "pickle"
    assert CIFAR10(tmp_path, split="test", source="folder").source == "folder"


def test_transform_is_applied_to_the_image(tmp_path):
    _write_official_batches(tmp_path / data.CIFAR10_PICKLE_DIR)
    dataset = CIFAR10(tmp_path, split="test", transform=lambda image: image[:, :16, :16] * 2)
    image, _ = dataset[0]
    assert image.shape == (3, 16, 16)
    assert image[0, 0, 0].item() == pytest.approx(2 * 100 / 255)


def test_missing_cifar_names_both_places_the_command_and_the_url(tmp_path):
    with pytest.raises(DatasetNotFoundError) as caught:
        CIFAR10(tmp_path, split="test")
    message = str(caught.value)
    assert str(tmp_path / data.CIFAR10_PICKLE_DIR) in message
    assert str(tmp_path / data.CIFAR10_FOLDER_DIR / "test") in message
    assert f"digisem download cifar10 --root {tmp_path}" in message
    assert CIFAR10_URL in message


def test_cifar_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="split"):
        CIFAR10(tmp_path, split="val")
    with pytest.raises(ValueError, match="source"):
        CIFAR10(tmp_path, source="lmdb")
    with pytest.raises(ValueError, match="limit"):
        CIFAR10(tmp_path, limit=0)


# download (the network is always faked)


def _fake_archive(path: Path, members: dict[str, bytes] | None = None) -> str:
    """A tar.gz laid out like cifar-10-python.tar.gz; returns its md5."""
    staging = path.parent / "archive_source"
    if members is None:
        _write_official_batches(staging / data.CIFAR10_PICKLE_DIR)
        members = {
            f"{data.CIFAR10_PICKLE_DIR}/{file.name}": file.read_bytes()
            for file in sorted((staging / data.CIFAR10_PICKLE_DIR).iterdir())
        }
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return hashlib.md5(path.read_bytes()).hexdigest()


class _FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


@pytest.fixture
def served_archive(tmp_path, monkeypatch):
    """Serves a fake CIFAR-10 archive in place of the network and records the requested URLs."""
    archive = tmp_path / "served" / "cifar.tar.gz"
    archive.parent.mkdir()
    monkeypatch.setattr(data, "CIFAR10_MD5", _fake_archive(archive))
    requests = []

    def fake_urlopen(url, timeout):
        requests.append((url, timeout))
        return _FakeResponse(archive.read_bytes())

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    return requests


def test_download_fetches_verifies_and_extracts(tmp_path, served_archive):
    root = tmp_path / "data"
    folder = download_cifar10(root, timeout=5)
    assert served_archive == [(CIFAR10_URL, 5)]
    assert folder == root / data.CIFAR10_PICKLE_DIR
    assert sorted(path.name for path in root.iterdir()) == sorted([data.CIFAR10_ARCHIVE, data.CIFAR10_PICKLE_DIR])
    assert len(CIFAR10(root, split="train")) == 10
    download_cifar10(root)
    assert len(served_archive) == 1


def test_dataset_download_flag_fetches_when_missing(tmp_path, served_archive):
    dataset = CIFAR10(tmp_path / "data", split="test", download=True)
    assert dataset.source == "pickle" and len(dataset) == 3
    assert len(served_archive) == 1


def test_checksum_mismatch_raises_and_leaves_nothing(tmp_path, served_archive, monkeypatch):
    monkeypatch.setattr(data, "CIFAR10_MD5", "0" * 32)
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="Checksum mismatch"):
        download_cifar10(root)
    assert list(root.iterdir()) == []


def test_offline_error_names_the_url(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="offline") as caught:
        download_cifar10(root)
    assert CIFAR10_URL in str(caught.value)
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    "member",
    ["../escaped", f"{data.CIFAR10_PICKLE_DIR}/../../escaped", "/tmp/escaped", "elsewhere/escaped"],
)
def test_archive_members_outside_the_batches_folder_are_refused(tmp_path, monkeypatch, member):
    root = tmp_path / "data"
    root.mkdir()
    archive = root / data.CIFAR10_ARCHIVE
    monkeypatch.setattr(data, "CIFAR10_MD5", _fake_archive(archive, {member: b"x"}))
    with pytest.raises(DownloadError, match="refusing to extract"):
        download_cifar10(root)
    assert not (tmp_path / "escaped").exists()
    assert sorted(path.name for path in root.iterdir()) == [data.CIFAR10_ARCHIVE]


def test_archive_symlinks_are_refused(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    archive = root / data.CIFAR10_ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo(f"{data.CIFAR10_PICKLE_DIR}/test_batch")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    monkeypatch.setattr(data, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    with pytest.raises(DownloadError, match="not a plain file"):
        download_cifar10(root)


# image folders


def test_image_folder_sorts_filters_and_converts_modes(tmp_path):
    _save_png(tmp_path / "b_rgba.png", np.full((6, 5, 4), (10, 20, 30, 0), np.uint8), "RGBA")
    _save_png(tmp_path / "a_gray.png", np.full((4, 4), 77, np.uint8), "L")
    palette = Image.new("P", (3, 2))
    palette.putpalette([200, 100, 50] * 256)
    palette.save(tmp_path / "c_palette.bmp")
    (tmp_path / "notes.txt").write_text("not an image")
    dataset = ImageFolder(tmp_path)
    assert [path.name for path in dataset.files] == ["a_gray.png", "b_rgba.png", "c_palette.bmp"]
    gray, rgba, paletted = dataset[0], dataset[1], dataset[2]
    assert gray.dtype == torch.float32 and gray.shape == (3, 4, 4)
    assert torch.equal(gray, torch.full((3, 4, 4), 77 / 255))
    assert rgba.shape == (3, 6, 5) and rgba[:, 0, 0].tolist() == pytest.approx([10 / 255, 20 / 255, 30 / 255])
    assert paletted.shape == (3, 2, 3) and paletted[:, 1, 2].tolist() == pytest.approx([200 / 255, 100 / 255, 50 / 255])
    assert len(ImageFolder(tmp_path, limit=2)) == 2
    assert len(ImageFolder(tmp_path, extensions=("PNG",))) == 2


def test_center_crop_position(tmp_path):
    _save_png(tmp_path / "grid.png", _coordinate_image(40, 60))
    square = ImageFolder(tmp_path, crop=10)[0]
    assert square.shape == (3, 10, 10)
    assert (square[0, 0, 0] * 255).round().item() == 25  # left = (60 - 10) // 2
    assert (square[1, 0, 0] * 255).round().item() == 15  # top = (40 - 10) // 2
    rectangle = ImageFolder(tmp_path, crop=(8, 20))[0]
    assert rectangle.shape == (3, 8, 20)
    assert (rectangle[0, 0, 0] * 255).round().item() == 20 and (rectangle[1, 0, 0] * 255).round().item() == 16


def _crop_corners(dataset, draws: int) -> list[tuple[int, int, bool]]:
    """(left, top, flipped) of each draw, read back from the coordinate image."""
    corners = []
    for _ in range(draws):
        image = (dataset[0] * 255).round().to(torch.int64)
        flipped = bool(image[0, 0, 0] > image[0, 0, -1])
        corners.append((int(image[0, 0, -1 if flipped else 0]), int(image[1, 0, 0]), flipped))
    return corners


def test_random_crops_and_flips_repeat_with_the_same_seed(tmp_path):
    _save_png(tmp_path / "grid.png", _coordinate_image(64, 64))

    def draws(seed: int) -> list[tuple[int, int, bool]]:
        generator = torch.Generator().manual_seed(seed)
        dataset = ImageFolder(tmp_path, crop=8, random_crop=True, random_flip=True, generator=generator)
        return _crop_corners(dataset, 12)

    first = draws(0)
    assert first == draws(0)
    assert first != draws(1)
    assert {flipped for _, _, flipped in first} == {True, False}
    assert all(0 <= left <= 56 and 0 <= top <= 56 for left, top, _ in first)
    assert len({(left, top) for left, top, _ in first}) > 1


def test_random_crops_follow_the_global_seed(tmp_path):
    _save_png(tmp_path / "grid.png", _coordinate_image(64, 64))
    dataset = ImageFolder(tmp_path, crop=8, random_crop=True, random_flip=True)
    torch.manual_seed(3)
    first = _crop_corners(dataset, 6)
    torch.manual_seed(3)
    assert _crop_corners(dataset, 6) == first


def test_image_smaller_than_crop_names_file_and_sizes(tmp_path):
    _save_png(tmp_path / "small.png", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(ValueError, match=r"small\.png.*30x20.*32x32"):
        ImageFolder(tmp_path, crop=32)[0]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(DatasetNotFoundError, match="no images"):
        ImageFolder(tmp_path)
    _save_png(tmp_path / "one.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="crop size"):
        ImageFolder(tmp_path, random_crop=True)


def test_kodak24_counts_images_and_accepts_either_folder(tmp_path):
    folder = tmp_path / "kodak24"
    for number in range(1, 25):
        _save_png(folder / f"kodim{number:02d}.png", np.full((4, 6, 3), number, np.uint8))
    assert len(Kodak24(tmp_path)) == 24
    assert len(Kodak24(folder, limit=5)) == 5
    assert (Kodak24(folder)[23] * 255).round()[0, 0, 0].item() == 24
    (folder / "kodim24.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="expected 24 images"):
        Kodak24(tmp_path)


def test_missing_benchmark_sets_say_where_they_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "kodak24")):
        Kodak24(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "urban100")):
        Urban100(tmp_path)


# bundled samples


def test_bundled_cifar_samples():
    images, names = sample_images("cifar")
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.05
    classes = {name.split("_")[1] for name in names}
    assert len(classes) == 8 and classes <= set(CIFAR10_CLASSES)


def test_bundled_kodak_samples():
    images, names = sample_images("kodak")
    assert images.shape == (2, 3, 256, 256)
    assert names == ["kodak_kodim01", "kodak_kodim23"]
    with pytest.raises(ValueError, match="kind"):
        sample_images("imagenet")


def test_labelled_samples_carry_the_class_of_their_file_names():
    dataset = data.labelled_samples()
    images, labels = dataset.tensors
    reference, names = sample_images("cifar")
    assert torch.equal(images, reference) and labels.dtype == torch.int64
    assert [CIFAR10_CLASSES[int(label)] for label in labels] == [name.split("_")[1] for name in names]


def test_recipe_dataset_samples_limit_and_resize():
    samples = data.recipe_dataset("samples", None, "test")
    assert len(samples) == 8 and samples[0][0].shape == (3, 32, 32)
    assert len(data.recipe_dataset("samples", None, "test", limit=3)) == 3
    resized = data.recipe_dataset("samples", None, "test", image_size=64)
    image, label = resized[2]
    assert image.shape == (3, 64, 64) and label == samples[2][1]
    expected = torch.nn.functional.interpolate(samples[2][0][None], size=(64, 64), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    assert torch.equal(image, expected)
    assert data.recipe_dataset("samples", None, "test", image_size=32) is not None and not isinstance(data.recipe_dataset("samples", None, "test", image_size=32), data.Resized)


def test_recipe_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.recipe_dataset("imagenet", None, "test")
    with pytest.raises(ValueError, match="limit"):
        data.recipe_dataset("samples", None, "test", limit=0)
    with pytest.raises(ValueError, match="augment"):
        data.recipe_dataset("samples", None, "train", augment=True)
    with pytest.raises(ValueError, match="needs a folder"):
        data.recipe_dataset("folder", None, "test")
    with pytest.raises(DatasetNotFoundError):
        data.recipe_dataset("cifar10", tmp_path, "test")


def test_resized_keeps_labels_and_range():
    from torch.utils.data import TensorDataset

    source = TensorDataset(torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([4, 7]))
    resized = data.Resized(source, 16)
    assert len(resized) == 2
    image, label = resized[1]
    assert image.shape == (3, 16, 16) and int(label) == 7 and 0 <= float(image.min()) and float(image.max()) <= 1
    constant = data.Resized(TensorDataset(torch.full((1, 3, 4, 4), 0.25), torch.tensor([0])), 12)[0][0]
    assert torch.allclose(constant, torch.full((3, 12, 12), 0.25)), "bilinear resizing keeps a constant image"


def test_random_crop_flip_is_a_shifted_reflected_window_of_the_image():
    transform = data.random_crop_flip(padding=4)
    image = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(3, 8, 8)
    padded = torch.nn.functional.pad(image[None], (4,) * 4, mode="reflect")[0]
    windows = [padded[:, top : top + 8, left : left + 8] for top in range(9) for left in range(9)]
    candidates = windows + [w.flip(2) for w in windows]
    seen_flip = seen_shift = False
    torch.manual_seed(0)
    for _ in range(40):
        out = transform(image)
        assert out.shape == image.shape
        matches = [i for i, c in enumerate(candidates) if torch.equal(out, c)]
        assert matches, "every output is a window of the reflection-padded image, maybe flipped"
        seen_flip |= any(i >= len(windows) for i in matches)
        seen_shift |= not torch.equal(out, image) and not torch.equal(out, image.flip(2))
    assert seen_flip and seen_shift
    torch.manual_seed(5)
    first = [transform(image) for _ in range(3)]
    torch.manual_seed(5)
    assert all(torch.equal(a, b) for a, b in zip(first, [transform(image) for _ in range(3)])), "draws follow the global seed"


# loaders


def test_make_loader_same_seed_same_batches(tmp_path):
    _write_official_batches(tmp_path / data.CIFAR10_PICKLE_DIR, per_batch=4)
    dataset = CIFAR10(tmp_path, split="train")

    def label_batches(seed: int) -> list[list[int]]:
        return [labels.tolist() for _, labels in make_loader(dataset, batch_size=6, shuffle=True, seed=seed)]

    first = label_batches(0)
    assert first == label_batches(0)
    assert first != label_batches(1)
    assert sorted(sum(first, [])) == sorted(dataset.labels.tolist())


def test_make_loader_with_workers_repeats_random_crops(tmp_path):
    _save_png(tmp_path / "grid.png", _coordinate_image(64, 64))
    dataset = ImageFolder(tmp_path, crop=8, random_crop=True, random_flip=True)
    repeated = torch.utils.data.ConcatDataset([dataset] * 8)

    def crops(seed: int) -> torch.Tensor:
        return torch.cat(list(make_loader(repeated, batch_size=2, shuffle=False, seed=seed, num_workers=2)))

    first = crops(5)
    assert torch.equal(first, crops(5))
    assert not torch.equal(first, crops(6))


# real data (DIGISEM_DATA)


@pytest.fixture
def real_root() -> Path:
    value = os.environ.get(data.DATA_ENV_VAR)
    if not value:
        pytest.skip(f"real-data test: set {data.DATA_ENV_VAR} to the data folder (e.g. ../shared/data) to run it")
    root = Path(value)
    if not root.is_dir():
        pytest.skip(f"real-data test: {data.DATA_ENV_VAR}={value} is not a folder")
    return root


def _needs(root: Path, folder: str) -> None:
    if not (root / folder).is_dir():
        pytest.skip(f"real-data test: {root / folder} is missing")


@pytest.mark.real_data
def test_real_cifar10_test_split(real_root):
    _needs(real_root, data.CIFAR10_FOLDER_DIR)
    dataset = CIFAR10(split="test", source="folder")
    assert len(dataset) == 10_000
    assert torch.bincount(dataset.labels).tolist() == [1000] * 10
    assert dataset.images.shape == (10_000, 3, 32, 32) and dataset.images.dtype == torch.uint8
    image, label = dataset[0]
    assert image.shape == (3, 32, 32) and label == 0


@pytest.mark.real_data
def test_real_cifar10_train_split(real_root):
    _needs(real_root, data.CIFAR10_FOLDER_DIR)
    dataset = CIFAR10(split="train", source="folder")
    assert len(dataset) == 50_000
    assert torch.bincount(dataset.labels).tolist() == [5000] * 10


@pytest.mark.real_data
def test_real_kodak24(real_root):
    _needs(real_root, "kodak24")
    dataset = Kodak24()
    sizes = [tuple(dataset[index].shape) for index in range(len(dataset))]
    assert len(sizes) == 24
    assert set(sizes) == {(3, 512, 768), (3, 768, 512)}
    assert sizes.count((3, 768, 512)) == 6


@pytest.mark.real_data
def test_real_urban100(real_root):
    _needs(real_root, "urban100")
    dataset = Urban100(crop=256, random_crop=True, generator=torch.Generator().manual_seed(0))
    assert len(dataset) == 100
    assert dataset[0].shape == (3, 256, 256)


@pytest.mark.real_data
def test_bundled_samples_match_their_sources(real_root):
    _needs(real_root, data.CIFAR10_FOLDER_DIR)
    _needs(real_root, "kodak24")
    images, names = sample_images("cifar")
    for image, name in zip(images, names):
        _, class_name, number = name.split("_")
        source = ImageFolder(real_root / data.CIFAR10_FOLDER_DIR / "test" / class_name, limit=int(number) + 1)
        assert torch.equal(image, source[int(number)])
    crops, names = sample_images("kodak")
    kodak = Kodak24(crop=256)
    for crop, name in zip(crops, names):
        index = int(name.removeprefix("kodak_kodim")) - 1
        assert torch.equal(crop, kodak[index])
