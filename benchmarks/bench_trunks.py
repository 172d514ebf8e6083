"""DeepLab v2 on the two ResNet-101 trunks, side by side: torchvision's (``deeplabv2_resnet101``) and
the DeepLab authors' Caffe one (``deeplabv2_caffe_resnet101``).

Per iteration: forward, cross-entropy on the logits, backward (no optimiser step), on one batch of
random images, both trunks measured alternately (A, B, B, A, ...) so that drifts in machine load
hit both; the median of each is printed with their ratio. Also the parameter counts (trunk and
head) and the floating-point operations of one forward pass (exact, machine-independent).
Batch norm is frozen (eval mode), as when weights are loaded.

    python benchmarks/bench_trunks.py                      # CPU, one thread, batch 1, crop 321
    python benchmarks/bench_trunks.py --device cuda --batch 7 --iters 20
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from sal_lightning.nn import build_deeplab

TRUNKS = ("deeplabv2_resnet101", "deeplabv2_caffe_resnet101")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--crop", type=int, default=321)
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per trunk")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.crop, args.crop, device=device)
    target = torch.randint(0, 21, (args.batch, args.crop, args.crop), device=device)
    models = {}
    for name in TRUNKS:
        model = build_deeplab(name, num_classes=21).to(device)
        model.freeze_backbone_bn()  # as with loaded weights
        models[name] = model.train()
        trunk = sum(p.numel() for p in model.backbone_parameters())
        head = sum(p.numel() for p in model.head_parameters())
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        gflop = counter.get_total_flops() / 1e9
        print(f"{name}: trunk {trunk:,} parameters, head {head:,}; forward {gflop:.1f} GFLOP")

    def step(name: str) -> float:
        model = models[name]
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        F.cross_entropy(model(x).logits, target).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - tic

    for name in TRUNKS:  # warm-up
        step(name)
    times: dict[str, list[float]] = {name: [] for name in TRUNKS}
    for k in range(args.iters):
        for name in TRUNKS if k % 2 == 0 else TRUNKS[::-1]:
            times[name].append(step(name))
    medians = {name: statistics.median(values) for name, values in times.items()}
    where = f"{args.device}, {args.threads} thread(s)"
    print(f"forward+backward, batch {args.batch}, {args.crop}x{args.crop}, {where}, median of {args.iters}:")
    for name in TRUNKS:
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
        print(f"  {name:28s} {medians[name]:.2f} s (range {spread})")
    print(f"  ratio caffe / torchvision: {medians[TRUNKS[1]] / medians[TRUNKS[0]]:.3f}")
    machine = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, Python {platform.python_version()}, {machine}")


if __name__ == "__main__":
    main()
