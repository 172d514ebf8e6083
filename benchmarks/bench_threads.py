"""Torch threads side by side: torch's default, one thread, and the library's policy.

Each setting runs as a fresh process, in turn (default, one, policy, default, ...), on a machine
kept quiet or loaded by this script with N processes that spin on the CPU (``--busy 1``: beside one
busy process; ``--busy 3``: at load 3 or more), on two workloads:

- ``fast-demo``: ``sal-lightning demo --fast`` from nothing (data written, every step run);
- ``step``: real-size training steps: DeepLab v2 ResNet-101 (``deeplabv2_resnet101``, no
  pretrained weights) at 321 x 321, batch 2, forward + backward + SGD, timed after one warm-up step.

The settings: ``default`` is torch's own choice (one thread per physical core: ``OMP_NUM_THREADS``
set to that count, which is what torch starts with), ``one`` is ``OMP_NUM_THREADS=1``, ``policy``
sets nothing (the library chooses, see ``sal_lightning._threads``). Prints, per workload, the
median wall and CPU seconds of each setting and the ratios to the policy, pair by pair; the load
average before each run states the conditions::

    python benchmarks/bench_threads.py --busy 0 --busy 1 --busy 3 --runs 3
    python benchmarks/bench_threads.py --workload step --busy 1 --runs 3 --steps 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = ("default", "one", "policy")
SPIN = "while True: pass"


def child_step(steps: int, size: int, batch: int) -> None:
    """The ``step`` workload, in this process: JSON with the seconds per step and the threads used."""
    from sal_lightning._threads import apply_threads

    apply_threads(announce=False)  # what the library's Trainer factory does; a user setting wins
    import torch

    from sal_lightning.nn import build_deeplab

    torch.manual_seed(0)
    net = build_deeplab("deeplabv2_resnet101", num_classes=21, encoder_weights=None)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    image = torch.randn(batch, 3, size, size)
    target = torch.randint(0, 21, (batch, size, size))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(net(image).logits, target)  # logits at input size
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocations, oneDNN kernels
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    print(json.dumps({"seconds_per_step": seconds, "threads": torch.get_num_threads()}))


def physical_cores() -> int:
    from sal_lightning._threads import physical_cores as cores

    return cores()


def environment(setting: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.pop("SAL_LIGHTNING_THREADS", None)
    if setting == "default":
        env["OMP_NUM_THREADS"] = str(physical_cores())
    elif setting == "one":
        env["OMP_NUM_THREADS"] = "1"
    return env


def run_once(workload: str, setting: str, args: argparse.Namespace, scratch: Path) -> dict[str, float]:
    """One run of ``workload`` under ``setting``: wall and CPU seconds (and seconds per step)."""
    if workload == "fast-demo":
        workdir = scratch / f"demo-{setting}"
        shutil.rmtree(workdir, ignore_errors=True)
        command = [sys.executable, "-m", "sal_lightning", "demo", "--fast", "--workdir", str(workdir)]
    else:
        command = [sys.executable, __file__, "--child-step", "--steps", str(args.steps)]
        command += ["--size", str(args.size), "--batch", str(args.batch)]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=environment(setting), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{workload} / {setting} failed:\n{done.stderr[-3000:]}")
    result = {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "load": load,
    }
    if workload == "step":
        report = json.loads(done.stdout.strip().splitlines()[-1])
        result |= {"step": report["seconds_per_step"], "threads": report["threads"]}
    return result


def compare(workload: str, busy: int, args: argparse.Namespace, scratch: Path) -> None:
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
    try:
        time.sleep(2.0 if busy else 0.0)
        runs: dict[str, list[dict[str, float]]] = {s: [] for s in SETTINGS}
        for _ in range(args.runs):
            for setting in SETTINGS:
                runs[setting].append(run_once(workload, setting, args, scratch))
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
    key = "step" if workload == "step" else "wall"
    loads = [r["load"] for rs in runs.values() for r in rs]
    print(
        f"\n{workload}, beside {busy} busy process(es) started by this script "
        f"(1-min load average before the runs: {min(loads):.1f} to {max(loads):.1f}), {args.runs} run(s):"
    )
    print(
        f"| setting | {'s/step' if key == 'step' else 'wall s'} (median) | CPU s (median) | "
        f"{key} / policy, pair by pair (median, min-max) |"
    )
    print("|---|---|---|---|")
    for setting in SETTINGS:
        values = [r[key] for r in runs[setting]]
        ratios = [r[key] / p[key] for r, p in zip(runs[setting], runs["policy"], strict=True)]
        count = int(runs[setting][0].get("threads", 0))
        threads = f" ({count} thread{'s' if count != 1 else ''})" if count else ""
        print(
            f"| {setting}{threads} | {statistics.median(values):.2f} | "
            f"{statistics.median(r['cpu'] for r in runs[setting]):.1f} | "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["fast-demo", "step", "both"], default="both")
    parser.add_argument("--busy", type=int, action="append", help="spinning processes (repeatable)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each setting")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps (step workload)")
    parser.add_argument("--size", type=int, default=321, help="crop side (step workload)")
    parser.add_argument("--batch", type=int, default=2, help="batch size (step workload)")
    parser.add_argument("--child-step", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_step:
        child_step(args.steps, args.size, args.batch)
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch

    print(
        f"{platform.machine()}, {cpus} usable CPUs, {physical_cores()} physical cores (torch's default "
        f"threads), Python {platform.python_version()}, torch {torch.__version__}"
    )
    workloads = ["fast-demo", "step"] if args.workload == "both" else [args.workload]
    with tempfile.TemporaryDirectory() as scratch:
        for busy in args.busy or [0]:
            for workload in workloads:
                compare(workload, busy, args, Path(scratch))


if __name__ == "__main__":
    main()
