"""Cost of the SAL building blocks, measured side by side in one run on this machine.

1. Losses: ``SelectionLoss(attention_refine(seg, d_s), proxies, w) + 2 * AttentionLoss()(d_s, tags)``
   forward + backward, as a ratio of plain ``F.cross_entropy`` forward + backward on the same logits
   (batch 8, 21 x 321 x 321; goal <= 1.3x). The two alternate, and the medians are compared; on
   the CPU with the default number of threads and with one.
2. Scores: ``boundary_accuracy`` + ``class_distribution`` throughput in masks per second at
   500 x 375 on one thread (goal >= 500 masks/s), for uint8 label maps (as read from PNG) and int64
   ones; ``mask_objectness`` is timed for information.

    python benchmarks/bench_blocks.py [--repeats 7] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sal_lightning.losses import AttentionLoss, SelectionLoss, attention_refine
from sal_lightning.scoring import boundary_accuracy, class_distribution, mask_objectness

Timing = tuple[float, float]  # (wall seconds, process CPU seconds)


def _timer(device: torch.device) -> Callable[[Callable[[], object]], Timing]:
    def run(fn: Callable[[], object]) -> Timing:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - wall, time.process_time() - cpu

    return run


def _median(timings: list[Timing]) -> Timing:
    return statistics.median(t[0] for t in timings), statistics.median(t[1] for t in timings)


def bench_losses(device: torch.device, repeats: int) -> tuple[Timing, Timing]:
    """Median timings of (plain cross-entropy, SAL losses), forward + backward, alternating."""
    g = torch.Generator().manual_seed(0)
    seg = torch.randn(8, 21, 321, 321, generator=g).to(device).requires_grad_(True)
    d_s = torch.randn(8, 20, generator=g).to(device).requires_grad_(True)
    target = torch.randint(0, 21, (8, 321, 321), generator=g)
    target[:, :, :16] = 255  # some ignored pixels, as VOC's void band
    target = target.to(device)
    tags = (torch.rand(8, 20, generator=g) < 0.15).float().to(device)
    weight = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0], device=device)
    selection, attention = SelectionLoss(), AttentionLoss()

    def plain() -> None:
        seg.grad = None
        F.cross_entropy(seg, target, ignore_index=255).backward()

    def sal() -> None:
        seg.grad, d_s.grad = None, None
        loss = selection(attention_refine(seg, d_s), target, weight) + 2.0 * attention(d_s, tags)
        loss.backward()

    timer = _timer(device)
    plain()  # warm-up
    sal()
    times: dict[str, list[Timing]] = {"plain": [], "sal": []}
    for _ in range(repeats):
        times["plain"].append(timer(plain))
        times["sal"].append(timer(sal))
    return _median(times["plain"]), _median(times["sal"])


def bench_scores(device: torch.device, repeats: int, batch: int = 16) -> dict[str, Timing]:
    """Masks per second (wall, CPU) of boundary_accuracy + class_distribution and mask_objectness."""
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 21, (batch, 375, 500), generator=g)
    labels[torch.rand(batch, 375, 500, generator=g) < 0.05] = 255
    reference = (torch.rand(batch, 375, 500, generator=g) < 0.4).to(device)
    tags = (torch.rand(batch, 20, generator=g) < 0.15).float().to(device)
    image = (255 * torch.rand(batch, 3, 375, 500, generator=g)).to(torch.uint8).to(device)
    inputs = {"uint8": labels.to(torch.uint8).to(device), "int64": labels.to(device)}
    timer = _timer(device)
    rates: dict[str, Timing] = {}

    def rate(fn: Callable[[], object], n: int) -> Timing:
        fn()  # warm-up
        wall, cpu = _median([timer(fn) for _ in range(n)])
        return batch / wall, batch / max(cpu, 1e-9)

    for name, lab in inputs.items():

        def scores(lab: torch.Tensor = lab) -> None:
            boundary_accuracy(reference, lab)
            class_distribution(lab, tags)

        rates[f"AC + CD, {name} labels"] = rate(scores, repeats)
    rates["mask_objectness (information)"] = rate(
        lambda: mask_objectness(image, inputs["uint8"]), max(1, repeats // 2)
    )
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions per measurement")
    parser.add_argument("--threads", type=int, default=None, help="threads for the loss part (and 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.machine()} {platform.processor() or platform.platform()}, "
        f"{os.cpu_count()} logical CPUs, torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )

    threads = torch.get_num_threads()
    print("\n1. losses (SelectionLoss + attention_refine + AttentionLoss vs F.cross_entropy)")
    print("   batch 8 x 21 x 321 x 321, forward + backward")
    for n in sorted({threads, 1}, reverse=True) if device.type == "cpu" else [threads]:
        torch.set_num_threads(n)
        plain, sal = bench_losses(device, args.repeats)
        ratio = sal[0] / plain[0]
        goal = "met" if ratio <= 1.3 else "NOT met"
        print(
            f"   {n} thread(s): F.cross_entropy {plain[0] * 1e3:7.1f} ms; SAL losses {sal[0] * 1e3:7.1f} ms"
        )
        print(f"   ratio {ratio:.2f}x (goal <= 1.3x: {goal}); CPU-time ratio {sal[1] / plain[1]:.2f}x")

    torch.set_num_threads(1)
    print("\n2. scores at 500 x 375, one thread: masks/s by wall clock (by process CPU time)")
    for name, (wall, cpu) in bench_scores(device, args.repeats).items():
        goal = "" if "information" in name else f"  (goal >= 500: {'met' if wall >= 500 else 'NOT met'})"
        print(f"   {name:32s} {wall:6.0f} ({cpu:6.0f}) masks/s{goal}")
    torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
