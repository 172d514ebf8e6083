"""SALSegmenter vs the plain DeepLab it is built on, trained with cross-entropy, side by side.

Same network, output stride, head, batch and crop. The plain baseline of ``deeplabv3_<encoder>`` is
segmentation-models-pytorch's own DeepLabV3 (an independent implementation); of
``deeplabv2_<encoder>`` (the paper's DeepLab v2) and ``vgg16_*`` it is the library's
``build_deeplab`` network alone. Measured alternately in one process (A, B, B, A,
...) so drifts in machine load hit both equally, and the median per-iteration time is reported
(wall time on a GPU; on the CPU the process's CPU time, which other processes sharing the cores
inflate far less than wall time):

- training step: forward, loss, backward, SGD step. SAL: DeepLab + classification branch, Eq. 11
  refinement, ``L_sel + 2 L_atten`` with per-image weights (the paper's P5); plain: DeepLabV3 + CE.
  The paper (Table XI) reports 0.87 s vs 0.81 s per iteration for SAL-Net-VGG16 over
  DeepLab-VGG16-ASPP (+7.4%); goal <= +5%.
- inference: one forward pass without gradients (SAL without Eq. 11 at inference, its default, so the
  branch is not run; ``--refine-at-inference`` to include it). Goal <= +2%.
- floating-point operations of both (exact and machine-independent, so a loaded machine's noisy
  timings can be checked against them);
- memory of a training step: CUDA ``max_memory_allocated`` on a GPU; on the CPU, what the step must
  hold at its peak: the storages autograd saves for backward plus parameters, gradients and
  momentum (see :func:`training_bytes`).

``--amp bf16`` runs forward and loss under ``torch.autocast(dtype=torch.bfloat16)``.

    python benchmarks/bench_segmenter.py                       # CPU defaults: resnet18, batch 2, crop 160
    python benchmarks/bench_segmenter.py --backbone deeplabv2_resnet101 --batch 2 --crop 321 --iters 0
    python benchmarks/bench_segmenter.py --backbone deeplabv2_resnet101 --batch 7 --crop 321 \
        --device cuda --amp bf16
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F


def build(
    kind: str, args: argparse.Namespace
) -> tuple[Callable[[dict[str, torch.Tensor]], torch.Tensor], Any]:
    """``(loss_fn(batch) -> scalar, model)`` for ``kind`` = ``"sal"`` or ``"plain"``."""
    torch.manual_seed(0)
    if kind == "sal":
        from sal_lightning import SALSegmenter

        model = SALSegmenter(
            backbone=args.backbone,
            output_stride=8,
            branch_combine=args.branch_combine,
            refine_at_inference=args.refine_at_inference,
        ).to(args.device)
        return (lambda batch: model.losses(batch)["loss"]), model
    if not args.backbone.startswith("deeplabv3_"):
        from sal_lightning.nn import build_deeplab

        deeplab = build_deeplab(args.backbone, num_classes=21, output_stride=8).to(args.device)
        return (
            lambda batch: F.cross_entropy(deeplab(batch["image"]).logits, batch["mask"], ignore_index=255)
        ), deeplab
    import segmentation_models_pytorch as smp

    net = smp.DeepLabV3(
        encoder_name=args.backbone.removeprefix("deeplabv3_"),
        encoder_weights=None,
        encoder_output_stride=8,
        decoder_atrous_rates=(12, 24, 36),
        decoder_aspp_dropout=0.5,
        classes=21,
    ).to(args.device)
    return (lambda batch: F.cross_entropy(net(batch["image"]), batch["mask"], ignore_index=255)), net


def make_batch(args: argparse.Namespace) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    shape = (args.batch, args.crop, args.crop)
    tags = (torch.rand(args.batch, 20, generator=gen) < 0.15).float()
    batch = {
        "image": torch.randn(args.batch, 3, args.crop, args.crop, generator=gen),
        "mask": torch.randint(0, 21, shape, generator=gen),
        "tags": tags,
        "weight": torch.ones(args.batch),
    }
    return {k: v.to(args.device) for k, v in batch.items()}


@contextlib.contextmanager
def autocast(args: argparse.Namespace) -> Iterator[None]:
    """``torch.autocast`` in bfloat16 with ``--amp bf16``, else nothing."""
    if args.amp == "bf16":
        with torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16):
            yield
    else:
        yield


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def trainer_step(kind: str, args: argparse.Namespace) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(train_step, infer_step)`` closures of one model."""
    loss_fn, model = build(kind, args)
    params = model.parameter_groups() if kind == "sal" else model.parameters()
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=5e-4)
    batch = make_batch(args)

    def train() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast(args):
            loss = loss_fn(batch)
        loss.backward()
        optimizer.step()

    def infer() -> None:
        model.eval()
        with torch.inference_mode(), autocast(args):
            if kind == "sal":
                model.segment(batch["image"], refine=args.refine_at_inference)
            else:
                model(batch["image"])

    return train, infer


def timed(fn: Callable[[], None], device: str) -> float:
    """Seconds of one call: wall time on a GPU, this process's CPU time on the CPU."""
    clock = time.perf_counter if device.startswith("cuda") else time.process_time
    sync(device)
    start = clock()
    fn()
    sync(device)
    return clock() - start


def alternate(
    fns: dict[str, Callable[[], None]], iters: int, warmup: int, device: str
) -> dict[str, list[float]]:
    """Seconds of each call of each function, run in alternating order (A B, B A, A B ...)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for i in range(iters):
        for name in names if i % 2 == 0 else reversed(names):
            times[name].append(timed(fns[name], device))
    return times


def flops(fn: Callable[[], None]) -> int:
    """Floating-point operations of one call (``torch.utils.flop_counter``; machine-independent)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def training_bytes(kind: str, args: argparse.Namespace) -> int:
    """Memory of a training step: CUDA peak (above what the process held before building the
    model), or on the CPU the tensors a step must hold at its peak.

    CPU: the distinct storages autograd saves for the backward pass (activations, and the weights
    convolutions keep) plus every parameter, its gradient and its momentum buffer. CPU allocators
    keep no peak statistics, and the resident set size mostly measures the allocator's caching.
    """
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()  # the other models of this process
        train, _ = trainer_step(kind, args)
        train()  # optimiser state allocated
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        train()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    loss_fn, model = build(kind, args)
    batch = make_batch(args)
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), autocast(args):
        loss_fn(batch)
    for p in model.parameters():
        storages[p.untyped_storage().data_ptr()] = p.untyped_storage().nbytes()
    state = 2 * sum(p.numel() * p.element_size() for p in model.parameters())  # gradient + momentum
    return sum(storages.values()) + state


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.processor() or "cpu"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="deeplabv3_resnet18")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--crop", type=int, default=160, help="side (divisible by 8 for deeplabv3_*: smp refuses others)"
    )
    parser.add_argument("--iters", type=int, default=10, help="timed iterations (0: FLOPs and memory only)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--branch-combine", choices=("sum", "released"), default="sum")
    parser.add_argument("--refine-at-inference", action="store_true")
    parser.add_argument("--amp", choices=("none", "bf16"), default="none", help="autocast dtype")
    parser.add_argument("--flops-only", action="store_true", help="count FLOPs, skip timing and memory")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: no CUDA device is visible to torch {torch.__version__}")
    load_before = os.getloadavg()[0]
    plain_train, plain_infer = trainer_step("plain", args)
    sal_train, sal_infer = trainer_step("sal", args)
    if args.flops_only:
        for name, plain_fn, sal_fn in (
            ("train step", plain_train, sal_train),
            ("inference", plain_infer, sal_infer),
        ):
            plain_f, sal_f = flops(plain_fn), flops(sal_fn)
            print(
                f"bench_segmenter {args.backbone} batch {args.batch} crop {args.crop} {args.branch_combine}: "
                f"{name} FLOPs plain {plain_f / 1e9:.1f} G, SAL {sal_f / 1e9:.1f} G, "
                f"ratio {sal_f / plain_f:.4f}"
            )
        return
    warmup = args.warmup if args.iters else 0  # --iters 0: FLOPs and memory only
    train = alternate({"plain": plain_train, "sal": sal_train}, args.iters, warmup, args.device)
    infer = alternate({"plain": plain_infer, "sal": sal_infer}, args.iters, warmup, args.device)
    memory = {kind: training_bytes(kind, args) for kind in ("plain", "sal")}
    counts = {
        "train step": {"plain": flops(plain_train), "sal": flops(sal_train)},
        "inference": {"plain": flops(plain_infer), "sal": flops(sal_infer)},
    }

    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    print(
        f"bench_segmenter: {args.backbone}, batch {args.batch}, crop {args.crop}, branch "
        f"{args.branch_combine}, amp {args.amp}, device {args.device} ({machine}, "
        f"{torch.get_num_threads()} threads), torch {torch.__version__}, "
        f"{args.iters} alternating iterations, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    goals = {"train step": "paper 1.074, goal <= 1.05", "inference": "goal <= 1.02"}
    for name, times in (("train step", train), ("inference", infer)):
        for stat, fn in (("median", statistics.median), ("min", min)) if args.iters else ():
            plain, sal = fn(times["plain"]), fn(times["sal"])
            print(
                f"  {name:<11} {stat:<6} plain {plain:.4f} s  SAL {sal:.4f} s  "
                f"ratio {sal / plain:.3f}  ({goals[name]})"
            )
        plain_f, sal_f = counts[name]["plain"], counts[name]["sal"]
        print(
            f"  {name:<11} FLOPs  plain {plain_f / 1e9:.2f} G  SAL {sal_f / 1e9:.2f} G  "
            f"ratio {sal_f / plain_f:.3f}"
        )
    label = "peak memory" if args.device.startswith("cuda") else "step memory"
    print(
        f"  {label:<11} plain {memory['plain'] / 2**20:.1f} MiB  SAL {memory['sal'] / 2**20:.1f} MiB  "
        f"ratio {memory['sal'] / max(memory['plain'], 1):.3f}"
    )


if __name__ == "__main__":
    main()
