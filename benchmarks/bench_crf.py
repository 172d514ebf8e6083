"""Dense CRF cost: time per image, and a process pool against the calling process.

For each size (41 x 41, the output resolution of SEC's constrain loss on 321 crops; 500 x 375, a
full VOC image) it runs ``--images`` CRFs with 21 labels and 10 iterations (DeepLab's test
parameters), first one after another in this process, then through ``CRFPool(--processes)``
(workers started and warmed up beforehand; their start-up time is printed separately). It prints
the time per image, the pool's throughput ratio, and how long ``submit`` blocks the caller.

    python benchmarks/bench_crf.py [--images 8] [--processes 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from sal_lightning.postprocess.crf import DEEPLAB_TEST_CRF, CRFPool, CRFSettings, dense_crf


def synthetic(seed: int, height: int, width: int, labels: int) -> tuple[np.ndarray, np.ndarray]:
    """A blocky colour image with noise and smooth softmax probabilities over ``labels``."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (height // 25 + 2, width // 25 + 2, 3))
    image = np.kron(cells, np.ones((25, 25, 1)))[:height, :width] + rng.normal(0, 10, (height, width, 3))
    coarse = rng.normal(0, 2, (labels, height // 8 + 2, width // 8 + 2))
    logits = np.kron(coarse, np.ones((1, 8, 8)))[:, :height, :width]
    probs = np.exp(logits - logits.max(0))
    return np.clip(image, 0, 255).astype(np.uint8), (probs / probs.sum(0)).astype(np.float32)


def run(height: int, width: int, args: argparse.Namespace, params: CRFSettings) -> None:
    data = [synthetic(i, height, width, args.labels) for i in range(args.images)]
    dense_crf(*data[0], params)  # warm-up
    serial, parallel, blocked, cpu = [], [], [], []
    start = time.perf_counter()
    pool = CRFPool(args.processes)
    pool.map([d[0] for d in data[: args.processes]], [d[1] for d in data[: args.processes]], params)
    startup = time.perf_counter() - start
    for _ in range(args.repeats):  # alternate, so drift in machine load hits both sides
        start, cpu_start = time.perf_counter(), time.process_time()
        for image, probs in data:
            dense_crf(image, probs, params)
        serial.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        start = time.perf_counter()
        futures = [pool.submit(image, probs, params) for image, probs in data]
        blocked.append(time.perf_counter() - start)
        for future in futures:
            future.result()
        parallel.append(time.perf_counter() - start)
    pool.close()
    t_serial, t_parallel = statistics.median(serial), statistics.median(parallel)
    print(
        f"{width} x {height}, {args.labels} labels, {params.iterations} iterations, {args.images} images: "
        f"in-process {1000 * t_serial / args.images:.1f} ms/image "
        f"(CPU {1000 * statistics.median(cpu) / args.images:.1f} ms), "
        f"pool({args.processes}) {1000 * t_parallel / args.images:.1f} ms/image, "
        f"throughput ratio {t_serial / t_parallel:.2f}x, "
        f"submit blocks the caller {1000 * statistics.median(blocked) / args.images:.2f} ms/image, "
        f"pool start-up {startup:.2f} s"
    )


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--labels", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for height, width in ((41, 41), (375, 500)):
        run(height, width, args, DEEPLAB_TEST_CRF)


if __name__ == "__main__":
    main()
