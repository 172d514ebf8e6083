"""Download and extract PASCAL VOC 2012 trainval and SegmentationClassAug: verified, resumable, atomic.

- A download goes to ``<file>.part`` and resumes from its size with an HTTP ``Range`` request (a
  server that ignores the range sends the whole file, which then restarts the part file). The
  finished file is checked (MD5 / SHA-256 where known) and only then renamed to its final name, so
  a file under the final name is complete.
- A final file that is present and verifies is never fetched again; one that fails verification is
  removed and fetched again once.
- Archives extract into a temporary folder beside the target and are moved into place; a marker
  file (``.<archive>.extracted``), written last, makes reruns skip them. Tar members are extracted
  with the ``data`` filter and zip members may not leave the target folder.

URLs and checksums are arguments, so mirrors work; ``file://`` URLs are accepted (urllib).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sal_lightning._atomic import atomic_write_text
from sal_lightning._download import download_file
from sal_lightning.data.io import PathLike
from sal_lightning.data.layout import resolve_voc_root


@dataclass(frozen=True)
class Archive:
    """One downloadable archive.

    Attributes:
        url: where to fetch it (http(s):// or file://).
        filename: name of the downloaded file under the download folder.
        extract_to: folder (relative to the data dir) the archive's members are extracted into.
        md5, sha256: expected hex digests (None: not verified; the atomic rename still guarantees a
            complete transfer).
        skip_prefixes: member path prefixes not extracted (e.g. ``__MACOSX/``).
    """

    url: str
    filename: str
    extract_to: str = "."
    md5: str | None = None
    sha256: str | None = None
    skip_prefixes: tuple[str, ...] = ("__MACOSX/",)


VOC2012_TRAINVAL = Archive(
    url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
    filename="VOCtrainval_11-May-2012.tar",
    md5="6cd6e144f989b92b3379bac3b3de84fd",
)
"""PASCAL VOC 2012 trainval (1.9 GB; holds ``VOCdevkit/VOC2012``). MD5 as published with the dataset."""

SEGMENTATION_CLASS_AUG = Archive(
    url="https://www.dropbox.com/s/oeu149j8qtbs1x0/SegmentationClassAug.zip?dl=1",
    filename="SegmentationClassAug.zip",
    extract_to="VOCdevkit/VOC2012",
)
"""SBD-augmented masks (12,031 PNGs) as redistributed for DeepLab; no checksum is published, pass one
with ``dataclasses.replace(SEGMENTATION_CLASS_AUG, sha256=...)`` to pin it."""


def _safe_members(names: Sequence[str], archive: Path) -> None:
    for name in names:
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise ValueError(f"{archive}: member {name!r} would be written outside the target folder")


def _merge_move(source: Path, target: Path) -> None:
    """Move the tree ``source`` into ``target``: entries renamed in, folders merged, files replaced."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        destination = target / entry.name
        if entry.is_dir() and destination.is_dir():
            _merge_move(entry, destination)
        else:
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(entry, destination)


def extract_archive(
    archive: PathLike, target: PathLike, skip_prefixes: Sequence[str] = ("__MACOSX/",)
) -> Path:
    """Extract a tar / zip into ``target`` via a temporary folder beside it; a marker skips reruns.

    Returns ``target``.
    """
    archive, target = Path(archive), Path(target)
    marker = target / f".{archive.name}.extracted"
    if marker.is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".extract-{archive.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                names = [n for n in handle.namelist() if not n.startswith(tuple(skip_prefixes))]
                _safe_members(names, archive)
                handle.extractall(staging, members=names)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as handle:
                members = [m for m in handle.getmembers() if not m.name.startswith(tuple(skip_prefixes))]
                _safe_members([m.name for m in members], archive)
                handle.extractall(staging, members=members, filter="data")
        else:
            raise ValueError(f"{archive}: not a tar or zip archive")
        _merge_move(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    atomic_write_text(marker, f"{archive.name}\n")
    return target


def download_voc(
    data_dir: PathLike,
    archives: Sequence[Archive] = (VOC2012_TRAINVAL, SEGMENTATION_CLASS_AUG),
    download_dir: PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Fetch and extract ``archives`` under ``data_dir``; returns the VOC root (``VOCdevkit/VOC2012``).

    Archives are kept in ``download_dir`` (default ``<data_dir>/downloads``) so reruns verify instead
    of fetching; delete them once extracted to save space (the extraction markers stay).
    """
    data_dir = Path(data_dir).expanduser()
    downloads = Path(download_dir) if download_dir is not None else data_dir / "downloads"
    for archive in archives:
        target = data_dir / archive.extract_to
        if (target / f".{archive.filename}.extracted").is_file():
            continue
        path = download_file(
            archive.url, downloads / archive.filename, archive.md5, archive.sha256, progress=progress
        )
        extract_archive(path, target, archive.skip_prefixes)
    return resolve_voc_root(data_dir)


def download(
    out: PathLike,
    voc_url: str | None = None,
    voc_md5: str | None = None,
    aug_url: str | None = None,
    aug_sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """VOC2012 trainval and SegmentationClassAug under ``out`` (``out/VOCdevkit/VOC2012``), with
    ``train_aug.txt``; returns the VOC root.

    Args:
        out: the data folder (downloads are kept in ``out/downloads``).
        voc_url: a mirror of ``VOCtrainval_11-May-2012.tar`` (default: the official one).
        voc_md5: that archive's MD5 (default: the official one).
        aug_url: where ``SegmentationClassAug.zip`` is (default: the usual mirror).
        aug_sha256: a SHA-256 that the ``SegmentationClassAug.zip`` download must match.
        progress: show progress bars.
    """
    from sal_lightning.data.layout import make_train_aug_list, split_path

    voc_archive = Archive(
        url=voc_url or VOC2012_TRAINVAL.url,
        filename=VOC2012_TRAINVAL.filename,
        md5=voc_md5 or VOC2012_TRAINVAL.md5,
    )
    aug_archive = Archive(
        url=aug_url or SEGMENTATION_CLASS_AUG.url,
        filename=SEGMENTATION_CLASS_AUG.filename,
        extract_to=SEGMENTATION_CLASS_AUG.extract_to,
        sha256=aug_sha256,
    )
    voc = download_voc(out, (voc_archive, aug_archive), progress=progress)
    if not split_path(voc, "train_aug").is_file():
        make_train_aug_list(voc)
    return voc
