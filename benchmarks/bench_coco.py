"""COCO -> VOC-layout conversion: throughput and peak memory on synthetic COCO-format data.

Writes N images' worth of COCO-format instance annotations with COCO's statistics (image sizes
640 x 480 and the like, about 7 instances per image of up to 30 polygon points each, about 1% of
images with a crowd RLE, 1% without objects, the 80 sparse category ids) and JPEGs of those sizes
(one file per size, hard-linked N times: the conversion reads only JPEG headers), in a child
process so that its memory is not counted. Then converts them in another fresh process with
:func:`sal_lightning.data.coco.convert_coco` and measures images per second (first run and a
resumed rerun that finds everything done), the time spent reading the JSON, and the peak resident
memory of that process (worker processes are not counted: Linux reports a forked child's peak as
at least its parent's size at the fork).

    python benchmarks/bench_coco.py [--images 2000] [--processes 0] [--keep DIR]
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
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SIZES = ((480, 640), (640, 480), (427, 640), (375, 500))  # (H, W)


def _polygon(rng: np.random.Generator, height: int, width: int) -> list[float]:
    """A star-shaped polygon of 6..30 points inside the image."""
    points = int(rng.integers(6, 31))
    cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
    radius = rng.uniform(0.03, 0.35) * min(height, width)
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    r = radius * rng.uniform(0.5, 1.0, points)
    xs = np.clip(cx + r * np.cos(angles), 0, width - 1)
    ys = np.clip(cy + r * np.sin(angles), 0, height - 1)
    return [round(float(v), 2) for pair in zip(xs, ys, strict=True) for v in pair]


def _crowd_rle(rng: np.random.Generator, height: int, width: int) -> dict[str, object]:
    """An uncompressed RLE (COCO's crowd form) of a random box."""
    mask = np.zeros((height, width), dtype=np.uint8)
    y0, x0 = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
    mask[y0 : y0 + height // 3, x0 : x0 + width // 3] = 1
    flat = mask.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0, *counts]
    return {"size": [height, width], "counts": counts}


def write_synthetic_coco(base: str, count: int, seed: int = 0) -> None:
    """``<base>/instances_train2014.json`` and ``<base>/train2014/*.jpg`` for ``count`` images."""
    from PIL import Image

    from sal_lightning.data.coco import COCO_CATEGORY_IDS, COCO_CLASSES

    rng = np.random.default_rng(seed)
    root = Path(base)
    folder = root / "train2014"
    folder.mkdir(parents=True, exist_ok=True)
    templates = {}
    for height, width in SIZES:
        path = root / f"template_{height}x{width}.jpg"
        Image.new("RGB", (width, height), (120, 110, 100)).save(path, quality=90)
        templates[(height, width)] = path
    images, annotations = [], []
    for k in range(count):
        image_id = k + 1
        height, width = SIZES[int(rng.integers(len(SIZES)))]
        name = f"COCO_train2014_{image_id:012d}.jpg"
        os.link(templates[(height, width)], folder / name)
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        if rng.random() < 0.01:
            continue  # an image without objects
        for _ in range(max(1, int(rng.poisson(7.3)))):
            parts = [_polygon(rng, height, width) for _ in range(1 + int(rng.random() < 0.15))]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(rng.choice(COCO_CATEGORY_IDS)),
                    "segmentation": parts,
                    "iscrowd": 0,
                    "area": 0.0,
                    "bbox": [0, 0, 1, 1],
                }
            )
        if rng.random() < 0.01:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": _crowd_rle(rng, height, width),
                    "iscrowd": 1,
                    "area": 0.0,
                    "bbox": [0, 0, 1, 1],
                }
            )
    categories = [{"id": c, "name": n} for c, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES[1:], strict=True)]
    data = {"images": images, "annotations": annotations, "categories": categories}
    (root / "instances_train2014.json").write_text(json.dumps(data))


def _versions() -> str:
    names = ("sal-lightning", "pycocotools", "numpy", "pillow")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def measure(base: str, processes: int, results: Any) -> None:
    """Convert (first run, then a rerun) in a fresh process and put the figures on ``results``."""
    from sal_lightning.data.coco import convert_coco
    from sal_lightning.data.coco_annotations import read_coco_annotations

    annotations = Path(base) / "coco" / "instances_train2014.json"
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    coco = read_coco_annotations(annotations)
    parse = time.perf_counter() - start
    del coco
    out = Path(base) / "out"
    start = time.perf_counter()
    (summary,) = convert_coco(annotations, Path(base) / "coco", out, processes=processes, progress=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    (again,) = convert_coco(annotations, Path(base) / "coco", out, processes=processes, progress=False)
    rerun = time.perf_counter() - start
    results.put(
        {
            "summary": str(summary),
            "listed": summary.listed,
            "kept": again.kept,
            "pngs": sum(1 for _ in out.glob("SegmentationClass/*.png")),
            "parse": parse,
            "first": first,
            "rerun": rerun,
            "rss_start": rss_start,
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "json_mb": annotations.stat().st_size / 1e6,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="synthetic images (default 2000)")
    parser.add_argument("--processes", type=int, default=0, help="convert_coco's worker processes")
    parser.add_argument("--keep", type=Path, default=None, help="write the data here and keep it")
    args = parser.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_coco_"))
    context = multiprocessing.get_context("spawn")
    try:
        start = time.perf_counter()
        child = context.Process(target=write_synthetic_coco, args=(str(base / "coco"), args.images))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"writing the synthetic data failed (exit code {child.exitcode})")
        setup = time.perf_counter() - start

        results = context.Queue()
        child = context.Process(target=measure, args=(str(base), args.processes, results))
        child.start()
        r = results.get()
        child.join()

        print(f"bench_coco: {args.images} synthetic COCO-format images, processes={args.processes}")
        print(f"  {_versions()}")
        print(f"  {platform.platform()}, {os.cpu_count()} CPUs ({platform.processor() or 'cpu'})")
        print(
            f"  setup (another process, not measured): {setup:.1f} s, annotation file {r['json_mb']:.1f} MB"
        )
        print(f"  {r['summary']}")
        print(f"  first run: {r['first']:.1f} s = {r['listed'] / r['first']:.1f} images/s ({r['pngs']} PNGs)")
        print(f"    of which reading + checking the JSON: {r['parse']:.2f} s")
        rerun = r["listed"] / r["rerun"]
        print(f"  rerun, all done ({r['kept']} kept): {r['rerun']:.1f} s = {rerun:.0f} images/s")
        print(f"  peak resident memory: {r['rss']:.0f} MB (after imports: {r['rss_start']:.0f} MB)")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
