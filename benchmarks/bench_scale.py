"""Coarse scoring and the scorer's training-set synthesis at dataset scale, on this CPU.

Writes a synthetic VOC-layout root of N small images (``--size`` px, the ``clean`` generator, its
saliency maps) and proxies of known quality (corrupted ground truth), in a child process whose
memory is not counted. Then, each in a fresh process:

- ``coarse``: :func:`~sal_lightning.stages.coarse.score_coarse` (reference masks from the saliency
  maps with dense CRF, written to a folder; AC, CD, SC of every proxy into ``scores.csv``);
- ``synthesis``: :func:`~sal_lightning.stages.trainset.build_scorer_training_set` (the paper's four
  kinds of samples, written as a sample folder, reusing the AC column).

Each reports images per second and two peaks: the process's resident set (``ru_maxrss``) and,
with ``--tracemalloc``, the Python heap (slower). Both stages run at ``N / 4`` and at ``N``
images: a peak that grows with N by more than the rows a stage must keep (a scores row, a sample
row) would be a per-dataset table held in memory, and the script says how many bytes per image
the peak grew by.

    python benchmarks/bench_scale.py [--images 10000] [--size 64] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import tempfile
import time
import tracemalloc
from importlib import metadata
from pathlib import Path
from typing import Any


def _make_data(root: str, proxies: str, images: int, size: int) -> None:
    from sal_lightning.data.synthetic import make_synthetic_voc
    from sal_lightning.stages.corrupt import make_corrupted_proxies

    make_synthetic_voc(root, n_train=images, n_val=0, size=size, seed=0, difficulty="clean")
    make_corrupted_proxies(root, proxies, split="train", seed=0, progress=False)


def _stage(kind: str, work: str, ids: list[str], trace: bool, queue: Any) -> None:
    """Run one stage on ``ids`` in this (fresh) process and put its figures on ``queue``."""
    from sal_lightning.stages.coarse import CoarseSettings, score_coarse
    from sal_lightning.stages.trainer import TrainerSettings
    from sal_lightning.stages.trainset import build_scorer_training_set

    base = Path(work)
    tag = f"{kind}-{len(ids)}"
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    if kind == "coarse":
        score_coarse(
            base / "voc",
            base / "proxies",
            scores=base / tag / "scores.csv",
            split=ids,
            references=base / tag / "refs",
            saliency=base / "voc" / "saliency",
            settings=CoarseSettings(batch_size=32),
            trainer=TrainerSettings(accelerator="cpu", enable_progress_bar=False),
        )
    else:
        coarse = base / f"coarse-{len(ids)}"
        build_scorer_training_set(
            base / "voc",
            base / "proxies",
            references=coarse / "refs",
            out=base / tag / "samples",
            split=ids,
            scores=coarse / "scores.csv",
            progress=False,
        )
    seconds = time.perf_counter() - start
    heap = tracemalloc.get_traced_memory()[1] if trace else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    queue.put({"stage": kind, "images": len(ids), "seconds": seconds, "peak_rss": rss, "peak_heap": heap})


def _run(target: Any, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue) if target is _stage else args)
    process.start()
    result = queue.get() if target is _stage else None
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed with exit code {process.exitcode}")
    return result


def _versions() -> str:
    names = ("sal-lightning", "torch", "lightning", "numpy", "opencv-python-headless", "pydensecrf")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap (slower)")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        start = time.perf_counter()
        _run(_make_data, str(work / "voc"), str(work / "proxies"), args.images, args.size)
        print(f"data: {args.images} images of {args.size} px in {time.perf_counter() - start:.0f} s")
        ids = (work / "voc" / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
        rows = []
        for count in (len(ids) // 4, len(ids)):
            for kind in ("coarse", "synthesis"):
                row = _run(_stage, kind, str(work), ids[:count], args.tracemalloc)
                rows.append(row)
                heap = f", heap peak {row['peak_heap'] / 2**20:.0f} MiB" if row["peak_heap"] else ""
                print(
                    f"{kind:9s} {count:6d} images: {count / row['seconds']:6.1f} img/s "
                    f"({row['seconds']:.0f} s), RSS peak {row['peak_rss'] / 2**20:.0f} MiB{heap}",
                    flush=True,
                )
        for kind in ("coarse", "synthesis"):
            small, large = (r for r in rows if r["stage"] == kind)
            growth = (large["peak_rss"] - small["peak_rss"]) / (large["images"] - small["images"])
            print(
                f"{kind}: peak RSS grows {growth:.0f} bytes per image "
                f"from {small['images']} to {large['images']}"
            )
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"{platform.platform()}"
        )
        print(f"versions: Python {platform.python_version()}, {_versions()}")
        (work / "bench_scale.json").write_text(json.dumps(rows, indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
