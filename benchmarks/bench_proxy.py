"""ProxyNet training-step cost with and without DSRG growth and the CRF constrain loss.

One optimiser step (forward, SEC/DSRG losses, backward, SGD) on a synthetic batch (``--batch``
images of ``--crop`` px, 1-3 tags each, blob seeds), for four settings, interleaved one step each
for ``--rounds`` rounds so drift in machine load hits all of them (medians):

1. seed + expand losses only;
2. + DSRG region growing;
3. + growing + constrain loss, CRFs in the training process (``crf_processes=0``);
4. + growing + constrain loss, CRFs in a ``CRFPool(--processes)`` (``crf_processes=N``), submitted
   after the forward pass and collected after the growth and the other losses.

It prints ms per step and the overhead of settings 2-4 over setting 1 (the goal: growth + CRF add
at most 50%); then the added work alone, timed back to back (the growth, and the constrain loss's
CRF targets in process and through the pool without overlap), which is steadier on a shared machine
than differences of whole steps; then the CRF cost per image through ``bench_crf.py``: SEC's
training CRF at the output resolution and DeepLab's test CRF at full VOC size (the proxies').

    python benchmarks/bench_proxy.py [--backbone deeplabv3_resnet18] [--batch 4] [--crop 321]
                                     [--processes 2] [--rounds 6] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Any

import torch
from bench_crf import cpu_name
from bench_crf import run as bench_crf_run

from sal_lightning.losses import grow_seeds
from sal_lightning.models.proxy import ProxyNet, gather_crf_targets, restrict_to_tags, submit_crf_targets
from sal_lightning.postprocess.crf import DEEPLAB_TEST_CRF, SEC_TRAIN_CRF

SETTINGS: dict[str, dict[str, Any]] = {
    "seed + expand": {"grow": False, "constrain_weight": 0.0, "crf_processes": 0},
    "+ growth": {"grow": True, "constrain_weight": 0.0, "crf_processes": 0},
    "+ growth + constrain (CRF in process)": {"grow": True, "constrain_weight": 1.0, "crf_processes": 0},
    "+ growth + constrain (CRF pool)": {"grow": True, "constrain_weight": 1.0, "crf_processes": None},
}


def synthetic_batch(batch: int, crop: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Images, blob seeds (a background border and one blob per tag) and 1-3 tags per image."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, crop, crop, generator=gen)
    seeds = torch.full((batch, crop, crop), 255, dtype=torch.long)
    tags = torch.zeros(batch, 20)
    yy, xx = torch.meshgrid(torch.arange(crop), torch.arange(crop), indexing="ij")
    for b in range(batch):
        border = crop // 10
        seeds[b, :border], seeds[b, -border:], seeds[b, :, :border], seeds[b, :, -border:] = 0, 0, 0, 0
        for c in torch.randperm(20, generator=gen)[: int(torch.randint(1, 4, (1,), generator=gen))]:
            tags[b, c] = 1
            cy, cx = torch.randint(crop // 4, 3 * crop // 4, (2,), generator=gen).tolist()
            seeds[b][(yy - cy) ** 2 + (xx - cx) ** 2 < (crop // 12) ** 2] = int(c) + 1
    return {"image": image, "mask": seeds, "tags": tags}


def step_time(model: ProxyNet, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    model.losses(batch)["loss"].backward()
    optimizer.step()
    if batch["image"].is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="deeplabv3_resnet18")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, default=321)
    parser.add_argument("--processes", type=int, default=2, help="CRF workers of setting 4")
    parser.add_argument("--rounds", type=int, default=6, help="timed steps per setting (interleaved)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--crf-images", type=int, default=8, help="images per size in the CRF part")
    args = parser.parse_args()
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}, "
        f"device {args.device}, load average {os.getloadavg()[0]:.2f}"
    )
    device = torch.device(args.device)
    batch = {k: v.to(device) for k, v in synthetic_batch(args.batch, args.crop).items()}
    models = {}
    for name, options in SETTINGS.items():
        torch.manual_seed(0)
        workers = args.processes if options["crf_processes"] is None else options["crf_processes"]
        model = ProxyNet(
            args.backbone,
            grow=bool(options["grow"]),
            constrain_weight=float(options["constrain_weight"]),
            crf_processes=int(workers),
        ).to(device)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        step_time(model, optimizer, batch)  # warm-up (and CRF worker start-up)
        models[name] = (model, optimizer)
    side = math.ceil(args.crop / models["seed + expand"][0].net.output_stride)
    low = (side, side)
    print(f"{args.backbone}, batch {args.batch} x {args.crop} px, output {low[0]} x {low[1]}, 21 classes")
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    names = list(models)
    for round_ in range(args.rounds):  # one step per setting per round, the order rotated
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            times[name].append(step_time(*models[name], batch))
    base = statistics.median(times["seed + expand"])
    for name, values in times.items():
        t = statistics.median(values)
        print(f"  {name:<40} {1000 * t:8.1f} ms / step   overhead {100 * (t / base - 1):+6.1f}%")

    # the added work alone, timed back to back (steadier than differences of whole steps)
    model = models["+ growth"][0]
    with torch.no_grad():
        probs = model.net(batch["image"]).low_res_logits.float().softmax(1)
    s = model.net.output_stride
    seeds = batch["mask"][:, ::s, ::s][:, : probs.shape[-2], : probs.shape[-1]]
    target = restrict_to_tags(probs, batch["tags"])
    parts = {
        "growth": lambda: grow_seeds(probs, seeds, batch["tags"]),
        "CRF targets, in process": lambda: gather_crf_targets(
            submit_crf_targets(
                models["+ growth + constrain (CRF in process)"][0]._crf_pool(), batch["image"], target
            ),
            target,
        ),
        f"CRF targets, pool({args.processes}), not overlapped": lambda: gather_crf_targets(
            submit_crf_targets(
                models["+ growth + constrain (CRF pool)"][0]._crf_pool(), batch["image"], target
            ),
            target,
        ),
    }
    for name, work in parts.items():
        work()
        spent = []
        for _ in range(10):
            start = time.perf_counter()
            work()
            spent.append(time.perf_counter() - start)
        t = statistics.median(spent)
        print(f"  {name:<40} {1000 * t:8.1f} ms / batch  = {100 * t / base:5.1f}% of a seed + expand step")
    for model, _ in models.values():
        model._close_crf()

    crf_args = argparse.Namespace(images=args.crf_images, processes=args.processes, labels=21, repeats=3)
    print(
        "CRF per image (bench_crf.py): SEC's training CRF at the output resolution, "
        "DeepLab's test CRF at full size"
    )
    bench_crf_run(int(low[0]), int(low[1]), crf_args, SEC_TRAIN_CRF)
    bench_crf_run(375, 500, crf_args, DEEPLAB_TEST_CRF)


if __name__ == "__main__":
    main()
