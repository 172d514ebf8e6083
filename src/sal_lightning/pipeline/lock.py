"""One run per workdir at a time: a lock file naming its holder.

:class:`WorkdirLock` creates ``<workdir>/.lock`` atomically (``O_CREAT | O_EXCL``) with the holder's
process id, host and start time, and removes it when the run ends (normally, on an error or on
Ctrl-C). A second run on the same workdir stops at once with a ``FileExistsError`` naming the holder
and the fix. A lock left by a process that no longer runs (killed, the machine rebooted) is taken
over, with a notice on stderr; a lock held on another host (a shared file system) is trusted, since
its process cannot be checked from here.

Only the main process of a run takes the lock: the other ranks of a DDP run (which re-run the
command with ``RANK`` / ``LOCAL_RANK`` set) work under their main process's lock.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from sal_lightning.pipeline.manifest import alive, now

LOCK = ".lock"
#: environment variables that give a process's rank in a distributed run (one is > 0 on other ranks)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def is_main_process() -> bool:
    """Whether this process is the main one of its run (rank 0 everywhere, or not distributed)."""
    return all(os.environ.get(name, "0").strip() in ("", "0") for name in RANK_VARIABLES)


def describe_holder(holder: dict[str, Any]) -> str:
    """``"process 123 on host h (started 2026-...)"``."""
    if holder.get("pid") is None:
        return "another process (its lock file names none)"
    return f"process {holder.get('pid')} on host {holder.get('host')} (started {holder.get('started')})"


class WorkdirLock:
    """The lock of a workdir, held within a ``with`` block (see the module docstring).

    Args:
        workdir: the pipeline's folder (created if needed).
    """

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.path = Path(workdir) / LOCK
        self.held = False

    def holder(self) -> dict[str, Any] | None:
        """The holder recorded in the lock file (``None`` without one; ``{}`` when unreadable)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": now()}
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(record) + "\n")
        return True

    def _take_over(self, holder: dict[str, Any]) -> bool:
        """Move a dead holder's lock aside (one process wins the rename) and create ours."""
        aside = self.path.with_name(f"{LOCK}.stale.{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return self._create()  # another process removed it first: try once
        aside.unlink(missing_ok=True)
        print(
            f"sal-lightning: taking over the lock of {self.path.parent}: its {describe_holder(holder)} "
            "no longer runs",
            file=sys.stderr,
            flush=True,
        )
        return self._create()

    def acquire(self) -> None:
        """Take the lock, or raise ``FileExistsError`` naming the live process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._create():
            self.held = True
            return
        holder = self.holder() or {}
        if holder.get("pid") is not None and not alive(holder) and self._take_over(holder):
            self.held = True
            return
        holder = self.holder() or holder
        raise FileExistsError(
            f"workdir {self.path.parent} is in use by {describe_holder(holder)}; wait for that run to "
            f"end, or use another --workdir (if that process is gone, delete {self.path})"
        )

    def release(self) -> None:
        """Remove the lock file if this process holds it."""
        if self.held and (self.holder() or {}).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> WorkdirLock:
        if is_main_process():
            self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()
