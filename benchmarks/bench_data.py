"""Data-loading throughput beside a training step's consumption, measured in one run on this machine.

The loader: VOCDataset + DeepLab training transforms (random scale 0.5-1.5, pad, crop 321, flip,
normalise) over 500 x 375 JPEG / PNG files (the synthetic VOC generator at VOC's usual size),
DataLoader with ``--workers`` processes. The consumer: one training step (forward, backward, SGD)
of segmentation-models-pytorch DeepLabV3 on the CPU at the same crop. The ratio loader / consumer
should be at least 3: loading is then not the bottleneck.

    python benchmarks/bench_data.py [--encoder resnet18|resnet101] [--batch 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from torch.utils.data import DataLoader

from sal_lightning.data.datasets import VOCDataset
from sal_lightning.data.synthetic import make_synthetic_voc
from sal_lightning.data.transforms import pad_collate, train_transform


def loader_rate(root: Path, crop: int, batch: int, workers: int, samples: int) -> float:
    """Samples per second delivered by the training DataLoader (after its first batch)."""
    dataset = VOCDataset(root, "train", transform=train_transform(crop))
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        collate_fn=pad_collate,
        persistent_workers=workers > 0,
        drop_last=True,
    )
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    count, start = 0, time.perf_counter()
    while count < samples:
        try:
            batch_dict = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        count += batch_dict["image"].shape[0]
    return count / (time.perf_counter() - start)


def consumer_rate(encoder: str, crop: int, batch: int, steps: int) -> float:
    """Samples per second consumed by DeepLabV3 training steps on the CPU (after one warm-up step)."""
    torch.manual_seed(0)
    model = smp.DeepLabV3(encoder_name=encoder, encoder_weights=None, classes=21)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    image = torch.randn(batch, 3, crop, crop)
    mask = torch.randint(0, 21, (batch, crop, crop))
    model.train()

    pad = (-crop) % 8  # smp needs sizes divisible by 8: pad, then crop the logits back, as a segmenter does

    def step() -> None:
        optimizer.zero_grad()
        logits = model(torch.nn.functional.pad(image, (0, pad, 0, pad)))[..., :crop, :crop]
        torch.nn.functional.cross_entropy(logits, mask, ignore_index=255).backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="resnet18", help="DeepLabV3 encoder of the consumer")
    parser.add_argument("--crop", type=int, default=321)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=48, help="500 x 375 images written for the loader")
    parser.add_argument("--samples", type=int, default=120, help="samples timed through the loader")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps")
    args = parser.parse_args()

    machine = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, {threads} torch threads, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = make_synthetic_voc(Path(tmp) / "voc", n_train=args.images, n_val=0, size=(375, 500), seed=0)
        print(f"wrote {args.images} images of 500 x 375 in {time.perf_counter() - start:.1f} s")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a DataLoader worker (torch sets 1 thread there)
        single = loader_rate(root, args.crop, args.batch, 0, args.samples // 4)
        torch.set_num_threads(threads)
        loaded = loader_rate(root, args.crop, args.batch, args.workers, args.samples)
    consumed = consumer_rate(args.encoder, args.crop, args.batch, args.steps)
    print(f"loader, 1 process:              {single:7.1f} samples/s (crop {args.crop})")
    print(f"loader, {args.workers} workers:              {loaded:7.1f} samples/s (batch {args.batch})")
    print(f"DeepLabV3-{args.encoder} train step: {consumed:7.2f} samples/s (CPU, batch {args.batch})")
    print(f"ratio loader / consumer: {loaded / consumed:.1f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
