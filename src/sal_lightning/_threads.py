"""How many intra-op threads torch uses in a process of the library: chosen once, printed once.

torch starts one intra-op thread per physical core of the machine, whatever share of it the
process may use and whatever runs beside it. On a 2-core machine with one other busy process, two
OpenMP threads that wait for each other at every operation made the demo several times slower
than one thread; at a load of 3, ten times slower. The policy:

- **the user's choice wins**: ``OMP_NUM_THREADS`` (read by torch itself), or
  ``SAL_LIGHTNING_THREADS=N`` (this library's own setting; ``auto``, the default, is the policy);
  in a Python program, a ``torch.set_num_threads`` call that left another count than torch's
  default is left alone too;
- otherwise **the CPUs this process may use** (its CPU affinity, and the cgroup CPU quota of a
  container: ``cpu.max`` or ``cpu.cfs_quota_us``, not the machine's count) **minus the CPUs that
  other processes keep busy**, measured over a quarter of a second from ``/proc/stat`` on the
  CPUs of the affinity (the 1-minute load average where ``/proc/stat`` does not exist), rounded to
  the nearest whole CPU, at least 1, shared among the processes of a CPU DDP run.

A sample of ``/proc/stat`` sees what runs now; the load average lags a minute behind (it still
counts a run that just ended, and misses one that just started). The count is chosen once per
process, when the first work starts (not for ``--help`` or a configuration error): a process that
starts later beside it is not seen.

:func:`choose_threads` is the rule, a pure function of those measurements; :func:`apply_threads`
measures, applies (``torch.set_num_threads``, and ``OMP_NUM_THREADS`` for the processes it starts:
DDP ranks) and prints one line on stderr; DataLoader workers run one thread (torch sets it), and so
do the workers of the library's process pools (:func:`one_thread_worker`);
:func:`threads_record` is what the reports and manifests record beside the library versions.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: this library's own setting: a number of threads, or ``auto`` (the policy)
ENV = "SAL_LIGHTNING_THREADS"
#: the variables read by torch's OpenMP and MKL thread pools, which the user may set
USER_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class ThreadChoice:
    """The count of intra-op threads and what it came from.

    Attributes:
        threads: intra-op threads of this process.
        source: ``"policy"``, ``"OMP_NUM_THREADS"``, ``"MKL_NUM_THREADS"``, ``SAL_LIGHTNING_THREADS``
            or ``"torch.set_num_threads"`` (a count set by the program itself).
        cpus: the CPUs the process may use (affinity and quota), for the policy.
        busy: the CPUs other processes kept busy when it was measured, for the policy.
        processes: the processes sharing them (DDP ranks on the CPU).
    """

    threads: int
    source: str
    cpus: float | None = None
    busy: float | None = None
    processes: int = 1

    def describe(self) -> str:
        """``"1 (policy: 2 usable CPUs, 1.0 busy with other processes)"`` or ``"4 (OMP_NUM_THREADS)"``."""
        if self.source != "policy":
            return f"{self.threads} ({self.source})"
        shared = f", {self.processes} processes" if self.processes > 1 else ""
        busy = f"{self.busy:.1f} busy with other processes"
        return f"{self.threads} (policy: {self.cpus:g} usable CPUs, {busy}{shared})"


def choose_threads(cpus: int, quota: float | None, busy: float, processes: int = 1) -> int:
    """The policy's thread count per process.

    Args:
        cpus: CPUs in the process's affinity mask.
        quota: the cgroup CPU quota in CPUs (``1.5`` for ``150000 100000``), ``None`` without one.
        busy: CPUs of the affinity kept busy by other processes (0 on a quiet machine).
        processes: processes of this run sharing the CPUs (DDP ranks on the CPU).

    Returns ``round(cpus - busy)``, at most the whole CPUs of the quota, divided among
    ``processes``; at least 1.
    """
    if cpus < 1 or processes < 1:
        raise ValueError(f"cpus and processes: expected integers >= 1, got {cpus} and {processes}")
    free = math.floor(cpus - max(0.0, busy) + 0.5)
    if quota is not None:
        free = min(free, math.floor(quota))
    return max(1, free // processes)


def parse_cpu_max(text: str) -> float | None:
    """The quota in CPUs of a cgroup v2 ``cpu.max`` (``"150000 100000"`` -> 1.5; ``"max 100000"`` -> None)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = float(parts[1]) if len(parts) > 1 else 100000.0
    return float(parts[0]) / period if period > 0 else None


def parse_cfs(quota: str, period: str) -> float | None:
    """The quota in CPUs of cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: none)."""
    q, p = int(quota.strip()), int(period.strip())
    return q / p if q > 0 and p > 0 else None


def busy_cpus(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> float:
    """CPUs kept busy between two readings of ``{cpu: (busy ticks, total ticks)}`` (:func:`cpu_ticks`)."""
    busy = 0.0
    for cpu, (busy1, total1) in after.items():
        busy0, total0 = before.get(cpu, (busy1, total1))
        if total1 > total0:
            busy += (busy1 - busy0) / (total1 - total0)
    return busy


def cpu_ticks(stat: str, cpus: set[int]) -> dict[int, tuple[int, int]]:
    """``{cpu: (busy ticks, total ticks)}`` of the ``cpuN`` lines of ``/proc/stat`` for ``cpus``
    (idle and iowait are not busy; guest time is already inside user time)."""
    ticks = {}
    for line in stat.splitlines():
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        values = [int(v) for v in fields[:8]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        ticks[int(name[3:])] = (sum(values) - idle, sum(values))
    return ticks


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cgroup_quota(root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self/cgroup")) -> float | None:
    """The smallest CPU quota (in CPUs) of this process's cgroup and its parents, v2 or v1."""
    quotas: list[float] = []
    for line in (_read(proc) or "").splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            folders, name = [root, root / "unified"], "cpu.max"
        elif "cpu" in controllers.split(","):
            folders, name = [root / "cpu", root / controllers, root / "cpu,cpuacct"], "cpu.cfs_quota_us"
        else:
            continue
        rel = Path(path.lstrip("/"))
        for folder in folders:
            for where in {folder / rel, *(folder / p for p in rel.parents)}:
                if name == "cpu.max":
                    text = _read(where / name)
                    quota = parse_cpu_max(text) if text else None
                else:
                    q, p = _read(where / name), _read(where / "cpu.cfs_period_us")
                    quota = parse_cfs(q, p) if q and p else None
                if quota is not None:
                    quotas.append(quota)
    return min(quotas) if quotas else None


def measure_busy(cpus: set[int], seconds: float = SAMPLE_SECONDS) -> float:
    """CPUs of ``cpus`` that other processes keep busy now (this one sleeps while it measures)."""
    first = _read(Path("/proc/stat"))
    if first is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return min(float(len(cpus)), load)
    time.sleep(seconds)
    second = _read(Path("/proc/stat")) or first
    return busy_cpus(cpu_ticks(first, cpus), cpu_ticks(second, cpus))


def physical_cores() -> int:
    """The machine's physical cores (torch's default thread count), from the CPU topology."""
    cores = set()
    for topology in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        package, core = _read(topology / "physical_package_id"), _read(topology / "core_id")
        if package is not None and core is not None:
            cores.add((package.strip(), core.strip()))
    return len(cores) or os.cpu_count() or 1


_CHOSEN: ThreadChoice | None = None


def _user_choice() -> ThreadChoice | None:
    """The count the user set (environment, or ``torch.set_num_threads`` in this program), if any."""
    for name in USER_ENV:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return ThreadChoice(int(value), name)
    setting = os.environ.get(ENV, "auto").strip().lower()
    if setting not in ("", "auto"):
        if not (setting.isdigit() and int(setting) > 0):
            raise ValueError(f"{ENV}: expected a number of threads >= 1 or 'auto', got {setting!r}")
        return ThreadChoice(int(setting), ENV)
    if "torch" in sys.modules:
        current = sys.modules["torch"].get_num_threads()
        if current != physical_cores():
            return ThreadChoice(current, "torch.set_num_threads")
    return None


def apply_threads(processes: int = 1, announce: bool = True) -> ThreadChoice:
    """Choose this process's thread count (once; again only when ``processes`` changes) and apply it.

    Sets ``torch.set_num_threads`` and ``OMP_NUM_THREADS`` (inherited by the processes it starts),
    and prints the choice as one line on stderr the first time (on rank 0 only).
    """
    global _CHOSEN
    if _CHOSEN is not None and (_CHOSEN.source != "policy" or _CHOSEN.processes == processes):
        return _CHOSEN
    choice = _user_choice() if _CHOSEN is None else None
    if choice is None:
        cpus = _affinity()
        quota = cgroup_quota() if _CHOSEN is None else _CHOSEN.cpus
        busy = measure_busy(cpus) if _CHOSEN is None else float(_CHOSEN.busy or 0.0)
        usable = float(len(cpus)) if quota is None else min(float(len(cpus)), quota)
        threads = choose_threads(len(cpus), quota, busy, processes)
        choice = ThreadChoice(threads, "policy", usable, busy, processes=processes)
    if choice.source in (ENV, "policy"):
        os.environ["OMP_NUM_THREADS"] = str(choice.threads)  # torch reads it when imported later
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(choice.threads)
    first, _CHOSEN = _CHOSEN is None, choice
    if announce and os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("RANK", "0") == "0":
        hint = (
            "" if choice.source != "policy" or not first else f"; set {ENV}=N or OMP_NUM_THREADS=N to choose"
        )
        print(f"sal-lightning: torch threads: {choice.describe()}{hint}", file=sys.stderr, flush=True)
    return choice


def one_thread_worker() -> None:
    """Initializer of the library's worker pools (CRFs, reference masks, COCO conversion): several
    workers share the CPUs, so each runs one thread. It runs before a worker loads numpy or torch
    (this module imports neither), so their thread pools read it."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


def threads_record() -> str:
    """The thread count of this process as a report records it (``"not chosen"`` before any work);
    for a count set in the environment, the one torch uses (it caps ``OMP_NUM_THREADS`` at the
    machine's cores) and the setting: ``"2 (OMP_NUM_THREADS=3)"``."""
    if _CHOSEN is not None and _CHOSEN.source in USER_ENV and "torch" in sys.modules:
        return f"{sys.modules['torch'].get_num_threads()} ({_CHOSEN.source}={_CHOSEN.threads})"
    if _CHOSEN is not None:
        return _CHOSEN.describe()
    if "torch" in sys.modules:
        return f"{sys.modules['torch'].get_num_threads()} (torch's default)"
    return "not chosen"
