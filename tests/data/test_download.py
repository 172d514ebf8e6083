"""Downloads: verified, resumable, never repeated, extracted atomically (local archives, no network)."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sal_lightning.data.datamodules import VOCSegmentationDataModule
from sal_lightning.data.download import download_file, extract_archive
from sal_lightning.data.io import read_id_list


def _digest(path: Path, algorithm: str) -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


@pytest.fixture
def archives(make_voc: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    """A VOC trainval-like tar (VOCdevkit/VOC2012/..., no Aug masks or train_aug) and an Aug zip."""
    voc = make_voc(n_train=3, n_val=2, size=24)
    tar_path = tmp_path / "src" / "VOCtrainval.tar"
    tar_path.parent.mkdir()
    with tarfile.open(tar_path, "w") as tar:
        for path in sorted(voc.rglob("*")):
            rel = path.relative_to(voc)
            if path.is_file() and rel.parts[0] != "SegmentationClassAug" and rel.name != "train_aug.txt":
                tar.add(path, arcname=f"VOCdevkit/VOC2012/{rel.as_posix()}")
    zip_path = tmp_path / "src" / "SegmentationClassAug.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted((voc / "SegmentationClassAug").glob("*.png")):
            archive.write(path, f"SegmentationClassAug/{path.name}")
        archive.writestr("__MACOSX/SegmentationClassAug/._junk", b"junk")
    return tar_path, zip_path


def test_prepare_data_downloads_once_and_builds_train_aug(
    archives: tuple[Path, Path], tmp_path: Path
) -> None:
    tar_path, zip_path = archives
    options = {
        "voc_url": tar_path.as_uri(),
        "voc_md5": _digest(tar_path, "md5"),
        "aug_url": zip_path.as_uri(),
        "aug_sha256": _digest(zip_path, "sha256"),
    }
    data = tmp_path / "data"
    dm = VOCSegmentationDataModule(
        str(data), download=True, crop_size=16, batch_size=2, num_workers=0, **options
    )
    dm.prepare_data()
    voc = data / "VOCdevkit" / "VOC2012"
    assert read_id_list(voc / "ImageSets/Segmentation/train_aug.txt") == [f"synth_{i:06d}" for i in range(3)]
    assert len(list((voc / "SegmentationClassAug").glob("*.png"))) == 5 and not (voc / "__MACOSX").exists()
    assert not list(data.glob(".extract-*")) and not list((data / "downloads").glob("*.part"))
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["image"].shape == (2, 3, 16, 16)

    # a rerun fetches nothing: the sources are gone and it still succeeds
    shutil.rmtree(tar_path.parent)
    stamp = (data / "downloads" / "VOCtrainval_11-May-2012.tar").stat().st_mtime_ns
    VOCSegmentationDataModule(str(data), download=True, **options).prepare_data()
    assert (data / "downloads" / "VOCtrainval_11-May-2012.tar").stat().st_mtime_ns == stamp


def test_verified_file_is_not_fetched_again_and_corrupt_one_is(
    archives: tuple[Path, Path], tmp_path: Path
) -> None:
    tar_path, _ = archives
    md5 = _digest(tar_path, "md5")
    dest = tmp_path / "dl" / "voc.tar"
    download_file(tar_path.as_uri(), dest, md5=md5, progress=False)
    assert dest.read_bytes() == tar_path.read_bytes()
    download_file("file:///nonexistent/source.tar", dest, md5=md5, progress=False)  # verified: no fetch
    dest.write_bytes(b"corrupt")
    download_file(tar_path.as_uri(), dest, md5=md5, progress=False)  # fails verification: fetched again
    assert dest.read_bytes() == tar_path.read_bytes()


def test_checksum_mismatch_leaves_nothing(archives: tuple[Path, Path], tmp_path: Path) -> None:
    tar_path, _ = archives
    dest = tmp_path / "dl" / "voc.tar"
    with pytest.raises(ValueError, match=r"voc\.tar\.part: md5 is [0-9a-f]{32}, expected 0{32}"):
        download_file(tar_path.as_uri(), dest, md5="0" * 32, progress=False)
    assert not dest.exists() and not dest.with_name("voc.tar.part").exists()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one payload and honours ``Range: bytes=N-`` with 206 (as real servers do)."""

    payload = b""
    ranges: list[str] = []

    def do_GET(self) -> None:
        start = 0
        header = self.headers.get("Range")
        if header:
            type(self).ranges.append(header)
            start = int(header.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}")
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def range_server(archives: tuple[Path, Path]) -> Iterator[str]:
    """A loopback HTTP server (no network) serving the tar archive with Range support."""
    _RangeHandler.payload = archives[0].read_bytes()
    _RangeHandler.ranges = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/voc.tar"
    server.shutdown()
    server.server_close()


def test_resume_from_a_partial_file(archives: tuple[Path, Path], range_server: str, tmp_path: Path) -> None:
    payload = archives[0].read_bytes()
    dest = tmp_path / "dl" / "voc.tar"
    dest.parent.mkdir()
    half = len(payload) // 2
    dest.with_name("voc.tar.part").write_bytes(payload[:half])  # an interrupted earlier download
    download_file(range_server, dest, md5=hashlib.md5(payload).hexdigest(), progress=False)
    assert _RangeHandler.ranges == [f"bytes={half}-"] and dest.read_bytes() == payload


def test_server_ignoring_range_restarts_the_part_file(archives: tuple[Path, Path], tmp_path: Path) -> None:
    tar_path, _ = archives
    dest = tmp_path / "dl" / "voc.tar"
    dest.parent.mkdir()
    dest.with_name("voc.tar.part").write_bytes(b"stale bytes from another file")
    download_file(
        tar_path.as_uri(), dest, md5=_digest(tar_path, "md5"), progress=False
    )  # file:// sends it all
    assert dest.read_bytes() == tar_path.read_bytes()


def test_extraction_refuses_escaping_members_and_leaves_no_staging(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("ok.txt", b"fine")
        archive.writestr("../escape.txt", b"bad")
    with pytest.raises(ValueError, match=r"evil\.zip: member '\.\./escape\.txt' would be written outside"):
        extract_archive(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists() and not list(tmp_path.glob(".extract-*"))
    assert not (tmp_path / "out" / ".evil.zip.extracted").exists()
    (tmp_path / "plain.bin").write_bytes(b"neither tar nor zip")
    with pytest.raises(ValueError, match="not a tar or zip archive"):
        extract_archive(tmp_path / "plain.bin", tmp_path / "out")
