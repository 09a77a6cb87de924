"""Atomic file writes and deterministic image encoding, used by every writer in aot.

Every file is written to a temporary name in its folder, fsynced, given the usual mode
(0666 less the umask: ``mkstemp`` alone would leave it 0600, unreadable by another user or a
container) and renamed over its path, so a reader sees the old file or the new one, never half.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from PIL import Image


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
"""Mode of every file aot writes: what ``open()`` would give (mkstemp alone gives 0600)."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (pyarrow);
    on success fsync it, give it ``FILE_MODE`` and rename it over ``path``; on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as e:  # a full or read-only disk: name the file being written, not the temporary
        if e.errno is None or e.filename not in (None, tmp):
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e  # OSError(errno, ...) is the errno's subclass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


class FolderBusy(RuntimeError):
    """Another process holds the folder's write lock (the message names it and its pid)."""


@contextmanager
def folder_lock(folder: str | Path, name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on ``folder/name`` while writing the folder;
    a second writer fails at once with :class:`FolderBusy`. The kernel drops the lock when the
    process dies, so a killed writer never leaves the folder locked (the empty file stays)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / name
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise FolderBusy(f"{folder} is being written by another process (pid {holder}); wait for it to finish or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def png_bytes(img: np.ndarray) -> bytes:
    """Deterministic PNG encoding of an RGB uint8 (H, W, 3) array (no timestamps or metadata)."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"png_bytes expects uint8 (H, W, 3), got {img.dtype} {img.shape}")
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def decode_png(data: bytes, what: str = "image") -> np.ndarray:
    """PNG bytes -> RGB uint8 (H, W, 3); a clear ValueError naming ``what`` on corrupt data."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises several types for corrupt data
        raise ValueError(f"{what}: cannot decode image ({type(e).__name__}: {e})") from None
