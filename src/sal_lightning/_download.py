"""Verified, resumable, atomic file downloads (http(s):// and file:// URLs, through urllib).

A download goes to ``<file>.part`` and resumes from its size with an HTTP ``Range`` request (a
server that ignores the range sends the whole file, which then restarts the part file). The
finished file is checked (MD5 / SHA-256 where known) and only then renamed to its final name, so a
file under the final name is complete. A final file that is present and verifies is never fetched
again; one that fails verification is removed and fetched again once. Used for datasets
(:mod:`sal_lightning.data.download`) and network weights (:mod:`sal_lightning.nn.hub`).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20
PathLike = str | os.PathLike[str]


def file_digest(path: PathLike, algorithm: str) -> str:
    """Hex digest (``md5`` / ``sha256``) of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, md5: str | None, sha256: str | None) -> None:
    """Raise ``ValueError`` naming the file unless its digests match the given ones."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None:
            actual = file_digest(path, algorithm)
            if actual.lower() != expected.lower():
                raise ValueError(
                    f"{path}: {algorithm} is {actual}, expected {expected} (corrupt or changed file)"
                )


def _fetch(url: str, part: Path, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (HTTP Range from its size; restart if the range is ignored)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # range not satisfiable: the part file is already complete
            return
        raise
    with response:
        status = getattr(response, "status", None)
        resumed = have > 0 and status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        mode = "ab" if resumed else "wb"
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=have if resumed else 0,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise OSError(
            f"{part}: transfer interrupted at {part.stat().st_size} of {total} bytes; rerun to resume"
        )


def download_file(
    url: str,
    dest: PathLike,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` unless ``dest`` exists and verifies; resumes ``dest.part``.

    Returns ``dest``. A checksum mismatch of a fresh download removes it and raises ``ValueError``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        try:
            verify(dest, md5, sha256)
            return dest
        except ValueError:
            dest.unlink()  # corrupt: fetch again below
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part, progress)
    try:
        verify(part, md5, sha256)
    except ValueError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest
