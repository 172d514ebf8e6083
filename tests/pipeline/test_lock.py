"""One run per workdir: the lock file, a busy workdir, a stale lock taken over, other DDP ranks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sal_lightning.cli import main
from sal_lightning.pipeline.lock import LOCK, WorkdirLock, is_main_process


@pytest.fixture
def sleeper() -> subprocess.Popen[bytes]:
    """A live process other than this one, to hold a lock."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def write_lock(folder: Path, pid: int, host: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}
    (folder / LOCK).write_text(json.dumps(record) + "\n")
    return folder / LOCK


def test_the_lock_names_its_holder_and_is_released(tmp_path: Path) -> None:
    with WorkdirLock(tmp_path / "w") as lock:
        holder = json.loads((tmp_path / "w" / LOCK).read_text())
        assert lock.held and holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(FileExistsError, match=rf"is in use by process {os.getpid()} on host"):
            WorkdirLock(tmp_path / "w").acquire()
    assert not (tmp_path / "w" / LOCK).exists()


def test_a_live_holder_keeps_the_workdir(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    write_lock(tmp_path, sleeper.pid)
    with pytest.raises(FileExistsError, match=rf"process {sleeper.pid} on host .*delete .*\.lock"):
        WorkdirLock(tmp_path).acquire()
    write_lock(tmp_path, 2**22 + 12345, host="another-host")  # not checkable from here: trusted
    with pytest.raises(FileExistsError, match="another-host"):
        WorkdirLock(tmp_path).acquire()


def test_a_dead_holder_is_taken_over_with_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    write_lock(tmp_path, int(dead.stdout))
    with WorkdirLock(tmp_path):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert f"its process {int(dead.stdout)} on host" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind


def test_other_ranks_work_under_the_main_process_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen[bytes]
) -> None:
    assert is_main_process()
    write_lock(tmp_path, sleeper.pid)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_main_process()
    with WorkdirLock(tmp_path) as lock:  # rank 1: no lock of its own
        assert not lock.held
    assert (tmp_path / LOCK).exists()  # the holder's lock is left alone


def test_a_second_pipeline_on_a_busy_workdir_stops_before_any_step(
    synthetic_voc: Path, tmp_path: Path, sleeper: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    write_lock(work, sleeper.pid)
    argv = ["pipeline", "--config", str(Path(__file__).parents[1] / "conf" / "pipeline.yaml")]
    argv += ["--root", str(synthetic_voc), "--workdir", str(work)]
    argv += ["--proxies", str(synthetic_voc / "SegmentationClassAug")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"is in use by process {sleeper.pid}" in err
    assert not (work / "manifest.json").exists()
