"""The thread policy: the rule on hand-worked cases, the cgroup and /proc readers on written files,
the measurement beside a real busy process, and the choice applied in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sal_lightning._threads import (
    busy_cpus,
    cgroup_quota,
    choose_threads,
    cpu_ticks,
    measure_busy,
    parse_cfs,
    parse_cpu_max,
)


@pytest.mark.parametrize(
    ("cpus", "quota", "busy", "processes", "threads"),
    [
        (2, None, 0.0, 1, 2),  # a quiet 2-core machine: both cores
        (2, None, 0.05, 1, 2),  # a little noise does not cost a core
        (2, None, 1.0, 1, 1),  # beside one busy process: one core is left
        (2, None, 3.0, 1, 1),  # at load 3: one thread, never zero
        (2, None, 0.6, 1, 1),  # 1.4 free CPUs round to 1
        (2, None, 0.5, 1, 2),  # 1.5 free CPUs round to 2
        (8, None, 2.4, 1, 6),  # 5.6 free -> 6
        (8, None, 2.6, 1, 5),  # 5.4 free -> 5
        (64, 4.0, 10.0, 1, 4),  # a container's quota caps a big, busy machine
        (2, 1.5, 0.0, 1, 1),  # a quota of 1.5 CPUs: one whole CPU
        (2, 0.5, 0.0, 1, 1),  # under one CPU of quota: still one thread
        (8, None, 0.0, 3, 2),  # three DDP processes share 8 CPUs: 2 each
        (2, None, 0.0, 4, 1),  # more processes than CPUs: one each
        (1, None, 0.0, 1, 1),
    ],
)
def test_the_rule_on_hand_worked_cases(
    cpus: int, quota: float | None, busy: float, processes: int, threads: int
) -> None:
    assert choose_threads(cpus, quota, busy, processes) == threads


def test_the_rule_refuses_no_cpus() -> None:
    with pytest.raises(ValueError, match="cpus and processes"):
        choose_threads(0, None, 0.0)


@pytest.mark.parametrize(
    ("text", "quota"),
    [
        ("max 100000\n", None),
        ("150000 100000\n", 1.5),
        ("200000 100000", 2.0),
        ("50000 50000", 1.0),
        ("", None),
    ],
)
def test_cgroup_v2_cpu_max(text: str, quota: float | None) -> None:
    assert parse_cpu_max(text) == quota


@pytest.mark.parametrize(
    ("quota", "period", "cpus"),
    [("-1\n", "100000\n", None), ("50000", "100000", 0.5), ("300000", "100000", 3.0)],
)
def test_cgroup_v1_cfs_quota(quota: str, period: str, cpus: float | None) -> None:
    assert parse_cfs(quota, period) == cpus


def test_cgroup_quota_reads_the_process_cgroup_and_its_parents(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    # cgroup v2: the quota of a parent cgroup limits the child's
    (tmp_path / "fs" / "jobs" / "job1").mkdir(parents=True)
    (tmp_path / "fs" / "jobs" / "cpu.max").write_text("250000 100000\n")
    (tmp_path / "fs" / "jobs" / "job1" / "cpu.max").write_text("max 100000\n")
    proc.write_text("0::/jobs/job1\n")
    assert cgroup_quota(tmp_path / "fs", proc) == 2.5
    # cgroup v1 (a cpu,cpuacct hierarchy)
    v1 = tmp_path / "v1" / "cpu,cpuacct" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    proc.write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    assert cgroup_quota(tmp_path / "v1", proc) == 1.5
    proc.write_text("4:cpu,cpuacct:/\n")  # no quota anywhere
    assert cgroup_quota(tmp_path / "empty", proc) is None


STAT_BEFORE = """cpu  100 0 50 1000 10 0 0 0 0 0
cpu0 60 0 20 500 5 0 0 0 0 0
cpu1 40 0 30 500 5 0 0 0 0 0
cpu2 0 0 0 900 0 0 0 0 0 0
intr 12345
"""
# cpu0: 100 busy ticks of 100 (fully busy); cpu1: 25 of 100; cpu2 (outside the affinity): busy
STAT_AFTER = """cpu  300 0 100 1100 10 0 0 0 0 0
cpu0 140 0 40 500 5 0 0 0 0 0
cpu1 60 0 35 575 5 0 0 0 0 0
cpu2 100 0 0 900 0 0 0 0 0 0
"""


def test_busy_cpus_from_two_readings_of_proc_stat() -> None:
    before, after = cpu_ticks(STAT_BEFORE, {0, 1}), cpu_ticks(STAT_AFTER, {0, 1})
    assert before == {0: (80, 585), 1: (70, 575)}  # idle and iowait are not busy
    assert busy_cpus(before, after) == pytest.approx(1.0 + 0.25)
    assert busy_cpus(cpu_ticks(STAT_BEFORE, {2}), cpu_ticks(STAT_AFTER, {2})) == pytest.approx(1.0)


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs /proc/stat (Linux)")
def test_a_busy_process_beside_is_measured() -> None:
    """A process spinning on the CPUs of this one keeps about one of them busy (more when the
    machine is loaded already: the measurement counts every other process)."""
    cpus = set(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        busy = measure_busy(cpus, seconds=1.0)
    finally:
        spinner.kill()
        spinner.wait()
    assert 0.8 <= busy <= len(cpus) + 0.05


def _applied(env: dict[str, str], code: str = "") -> tuple[dict[str, object], str]:
    script = (
        "import json, os, sys, torch\n"
        "from sal_lightning._threads import apply_threads, threads_record\n"
        "choice = apply_threads()\n"
        "apply_threads()  # once per process: printed once\n"
        f"{code}\n"
        "print(json.dumps({'threads': choice.threads, 'source': choice.source,"
        " 'torch': torch.get_num_threads(), 'omp': os.environ.get('OMP_NUM_THREADS'),"
        " 'record': threads_record()}))\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", script], env={**base, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout), done.stderr


def test_the_policy_applies_to_torch_and_to_child_processes() -> None:
    out, err = _applied({})
    assert out["source"] == "policy" and 1 <= out["threads"] <= len(os.sched_getaffinity(0))
    assert out["torch"] == out["threads"] and out["omp"] == str(out["threads"])  # children inherit it
    lines = [line for line in err.splitlines() if "torch threads" in line]
    assert len(lines) == 1 and "usable CPUs" in lines[0] and "SAL_LIGHTNING_THREADS" in lines[0]
    assert str(out["record"]).startswith(f"{out['threads']} (policy: ")


def test_the_user_setting_wins() -> None:
    out, err = _applied({"OMP_NUM_THREADS": "1"})
    assert (out["threads"], out["source"], out["torch"]) == (1, "OMP_NUM_THREADS", 1)
    assert "torch threads: 1 (OMP_NUM_THREADS)" in err and out["record"] == "1 (OMP_NUM_THREADS=1)"
    out, _ = _applied({"SAL_LIGHTNING_THREADS": "2"})
    assert (out["threads"], out["source"], out["torch"], out["omp"]) == (2, "SAL_LIGHTNING_THREADS", 2, "2")


def test_a_program_that_set_torch_threads_is_left_alone() -> None:
    script = (
        "import torch\n"
        "torch.set_num_threads(3)\n"
        "from sal_lightning._threads import apply_threads\n"
        "choice = apply_threads()\n"
        "print(choice.source, choice.threads, torch.get_num_threads())\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=base, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["torch.set_num_threads", "3", "3"]


def test_a_bad_setting_is_one_error_naming_it() -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", "from sal_lightning._threads import apply_threads; apply_threads()"],
        env={**base, "SAL_LIGHTNING_THREADS": "many"},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "SAL_LIGHTNING_THREADS: expected a number of threads >= 1" in done.stderr


def test_pool_workers_run_one_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's process pools start their workers with one thread, whatever the parent uses."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from sal_lightning._threads import one_thread_worker

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=one_thread_worker) as pool:
        assert pool.submit(os.getenv, "OMP_NUM_THREADS").result() == "1"
        assert pool.submit(os.getenv, "OPENBLAS_NUM_THREADS").result() == "1"
