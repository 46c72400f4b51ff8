"""Run provenance and safe file writing: every result records config, seed, versions and git commit;
files are written atomically (temporary file in the same folder, then rename), so a crash never
leaves a half-written result."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .hardware import cpu_description


def _default_mode() -> int:
    """The permissions a plain ``open(path, "w")`` gives a new file: ``0o666`` less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it onto ``path``.

    The file gets the permissions a plain write would (``0o666`` less the umask), not the private
    ``0o600`` of the temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


STALE_SECONDS = 60.0
"""A temporary file untouched for this long belongs to a writer that died (``kill -9``, power loss):
a live atomic write renames its file within moments of the last byte."""


def remove_stale_temporaries(folder: str | Path, older_than_s: float = STALE_SECONDS) -> list[Path]:
    """Delete the leftovers of interrupted atomic writes in ``folder`` (not recursive): ``.*.tmp``
    files and ``.*.partial`` folders (:func:`staged_folder`) not modified for ``older_than_s``
    seconds. Returns what was deleted; a missing folder is nothing to clean."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for path in sorted(folder.glob(".*.tmp")) + sorted(folder.glob(".*.partial")):
        try:
            if path.lstat().st_mtime > cutoff:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


@contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """Yield a new empty folder beside ``path`` to write a whole set of outputs into; when the block
    ends normally, move every file in it into ``path`` (created if needed; files of the same name are
    replaced, others kept), and if it raises (Ctrl-C included) delete it. So ``path`` holds every
    file of a run or none: never some new files beside an old report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
    try:
        yield stage
        for source in sorted(stage.rglob("*")):
            if source.is_file():
                target = path / source.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, allow_nan=True) + "\n"))


def derived_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed derived deterministically from ``seed`` and ``keys`` (e.g. stage name, epoch, SNR)."""
    digest = hashlib.sha256(repr((seed,) + keys).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def write_jsonl(path: str | Path, lines: list[Any]) -> Path:
    """Write one JSON document per line (e.g. a training log), atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text("".join(json.dumps(line) + "\n" for line in lines)))


def git_commit() -> str | None:
    """The git commit of the digisem source tree (``-dirty`` if it has uncommitted changes), or None."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def run_metadata(seed: int | None, device: str | torch.device = "cpu", **extra: Any) -> dict[str, Any]:
    """Provenance for a results file: digisem/torch/python versions, git commit, seed, device, the
    CPU (:func:`cpu_description`), host, plus ``extra``."""
    from digisem import __version__

    return {
        "digisem": __version__,
        "git": git_commit(),
        "seed": seed,
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_description(),
        **extra,
    }
