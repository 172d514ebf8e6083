"""Atomic file writes: write to a temporary file beside the target, then rename over it.

An interrupted write never leaves a half-written artefact: readers see either the old file or the
complete new one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The temporary name keeps the target's suffix, so writers that infer the format from the
    extension (PIL, numpy) work unchanged. Parent folders are created. On error the temporary
    file is removed and the target is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(folder: str | os.PathLike[str], argument: str) -> Path:
    """Prove that files can be written in ``folder`` (or, while it does not exist, in the nearest
    folder above it, where it will be created) before any work; nothing is left behind.

    Writes, flushes to disk and removes a 64 KiB probe file, so a read-only folder, a full disk or
    a path under a regular file fail in the first second instead of after the computation.
    Raises ``OSError`` naming ``argument``, the folder and the fix; returns ``folder``.
    """
    path = Path(folder)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    probe = existing / f".write-probe-{uuid.uuid4().hex[:8]}.tmp"
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 65536)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        reason = error.strerror or str(error)
        reason = reason if existing == path else f"{reason}: {existing}"
        message = f"{argument}: cannot write in {path} ({reason}); choose a writable folder with free space"
        raise type(error)(message) from error
    finally:
        with suppress(OSError):
            probe.unlink(missing_ok=True)
    return path
