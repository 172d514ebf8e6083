"""Scoring throughput: coarse scores of a dataset (with reference CRFs) and MaskScorer inference.

1. Coarse scoring, :func:`sal_lightning.stages.coarse.score_coarse` on a synthetic VOC-format set
   of ``--images`` images of 500 x 375 (VOC's common size): every image is decoded, its reference
   mask built from the saliency PNG (threshold + two-label dense CRF), and AC / CD / SC computed
   in batches; images per second with the work in the main process (``num_workers=0``) and in 1
   and 2 DataLoader worker processes (their start-up time is included, as a user pays it),
   measured side by side in one run. A last row reads cached reference masks (no CRF).
2. MaskScorer inference at 256 x 256 (paper layout), batch ``--batch``, images per second on the
   CPU (and on the GPU when one is present).

    python benchmarks/bench_scoring.py [--images 32] [--batch 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sal_lightning.data.layout import read_split
from sal_lightning.data.synthetic import make_synthetic_voc
from sal_lightning.models.scorer import MaskScorer
from sal_lightning.stages.coarse import CoarseSettings, score_coarse
from sal_lightning.stages.corrupt import make_corrupted_proxies
from sal_lightning.stages.trainer import TrainerSettings


def coarse_rate(root: Path, proxies: Path, work: Path, workers: int, cached: bool, repeats: int) -> float:
    """Images per second of one coarse-scoring pass (median over ``repeats``)."""
    ids = read_split(root, "train")
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        score_coarse(
            root,
            proxies,
            scores=work / f"scores_{workers}_{r}.csv",
            split=ids,
            references=work / "refs" if cached else None,
            saliency=root / "saliency",
            settings=CoarseSettings(batch_size=8, num_workers=workers),
            trainer=TrainerSettings(accelerator="cpu", enable_progress_bar=False),
        )
        times.append(time.perf_counter() - start)
    return len(ids) / statistics.median(times)


def scorer_rate(device: str, batch: int, repeats: int) -> float:
    """MaskScorer (default Table I layout) forward passes per second at 256 x 256."""
    model = MaskScorer().eval().to(device)
    image = torch.randn(batch, 3, 256, 256, device=device)
    mask = (torch.rand(batch, 256, 256, device=device) > 0.5).long()
    with torch.inference_mode():
        model(image, mask)  # warm-up
        times = []
        for _ in range(max(3, repeats)):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(image, mask)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="images scored per pass")
    parser.add_argument("--batch", type=int, default=16, help="MaskScorer batch size")
    parser.add_argument("--repeats", type=int, default=2, help="passes per setting (median)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = make_synthetic_voc(work / "voc", n_train=args.images, n_val=0, size=(375, 500), seed=0)
        proxies = work / "proxies"
        make_corrupted_proxies(root, proxies, split=read_split(root, "train"), seed=0, progress=False)
        rates = {w: coarse_rate(root, proxies, work, w, False, args.repeats) for w in (0, 1, 2)}
        coarse_rate(root, proxies, work, 0, True, 1)  # fills the reference cache
        cached = coarse_rate(root, proxies, work, 0, True, args.repeats)
    print(f"coarse scoring, {args.images} images of 500 x 375, reference CRF (10 iterations) included:")
    for workers, rate in rates.items():
        where = "main process" if workers == 0 else f"{workers} worker process{'es' if workers > 1 else ''}"
        print(f"  {where:>20}: {rate:6.1f} images/s  ({rate / rates[0]:.2f}x the main process)")
    print(f"  {'cached references':>20}: {cached:6.1f} images/s  (no CRF; main process)")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cpu = scorer_rate("cpu", args.batch, args.repeats)
    print(f"MaskScorer inference, 256 x 256, batch {args.batch}: CPU {cpu:.1f} images/s", end="")
    if torch.cuda.is_available():
        print(f", GPU {scorer_rate('cuda', args.batch, args.repeats):.1f} images/s", end="")
    print()


if __name__ == "__main__":
    main()
