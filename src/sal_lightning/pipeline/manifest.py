"""What the pipeline records about its steps: configuration hashes, source-folder hashes, timings.

Helpers of :mod:`sal_lightning.pipeline.runner`: a step's configuration as JSON (:func:`jsonable`)
and its hash (:func:`config_hash`), the content hash of a folder a step reads (:func:`folder_hash`),
results on one line, and the liveness of the process that recorded a running step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` with paths as strings, tuples as lists, functions and classes by their qualified
    name (stable across processes) and anything else unknown as its ``repr``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "__qualname__") and hasattr(value, "__module__"):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def folder_hash(folder: str | os.PathLike[str] | None) -> str | None:
    """Content hash of a folder: the relative name and the bytes of every file below it (hidden
    files skipped), so replacing, adding or removing a file changes it. ``None`` for ``None``;
    ``"missing"`` when the folder does not exist (the step reports that when it runs).

    Within one process the hash is reused while no file's size or modification time changed.
    """
    if folder is None:
        return None
    root = Path(folder)
    if not root.is_dir():
        return "missing"
    files = []
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in name.split("/")):
            stat = path.stat()
            files.append((name, stat.st_size, stat.st_mtime_ns))
    key, listing = str(root.resolve()), tuple(files)
    cached = _FOLDER_HASHES.get(key)
    if cached is None or cached[0] != listing:
        digest = hashlib.blake2b(digest_size=16)
        for name, _size, _mtime in files:
            digest.update(name.encode() + b"\0")
            digest.update(hashlib.blake2b((root / name).read_bytes(), digest_size=16).digest())
        cached = _FOLDER_HASHES[key] = (listing, digest.hexdigest())
    return cached[1]


# folder -> (its files' names, sizes and modification times, its content hash)
_FOLDER_HASHES: dict[str, tuple[tuple[tuple[str, int, int], ...], str]] = {}


def config_hash(config: dict[str, Any]) -> str:
    """A stable short hash of a JSON-able configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_result(result: Any, limit: int = 160) -> str:
    """A step's result on one line: ``key value`` pairs, nested ones in parentheses, numbers to
    three significant digits (a nested ``mean`` stands for its whole record); cut at ``limit``."""

    def text(value: Any) -> str:
        if isinstance(value, dict):
            if "mean" in value:
                return text(value["mean"])
            return "(" + ", ".join(f"{k} {text(v)}" for k, v in value.items()) + ")"
        if isinstance(value, float):
            return f"{value:.3g}"
        if isinstance(value, list):
            return "[" + ", ".join(text(v) for v in value) + "]"
        return str(value)

    line = (
        ", ".join(f"{k} {text(v)}" for k, v in result.items()) if isinstance(result, dict) else text(result)
    )
    return line if len(line) <= limit else line[: limit - 3] + "..."


def alive(record: dict[str, Any]) -> bool:
    """Whether the process that recorded a running step still runs (on this host)."""
    pid = record.get("pid")
    if not isinstance(pid, int):
        return False  # recorded without a process id: nothing can still be running it
    if record.get("host") != socket.gethostname():
        return True  # another machine (a shared file system): cannot tell, so trust the record
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def now() -> str:
    """The current UTC time, ISO format."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def clear(workdir: Path, artefacts: Iterable[str]) -> None:
    """Remove the artefacts (files or folders, relative to ``workdir``) that exist."""
    for artefact in artefacts:
        path = workdir / artefact
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
