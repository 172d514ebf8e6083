"""A short ResNet-101 fit on a GPU: plain DeepLab v2 (P2) vs SAL-Net (P5), 321 px crops, bf16.

The paper's SAL-Net-ResNet101 network (``deeplabv2_resnet101``) is trained through the real
Lightning loop on synthetic VOC-format data (``make_synthetic_voc``; their ground truth stands in
for proxies, every image selected) for ``--steps`` steps of batch ``--batch`` at crop 321, once as
P2 (no branch, plain cross-entropy) and once as P5 (branch, Eq. 11, ``L_sel + 2 L_atten``). Prints
the median time per training step after ``--warmup`` steps, the peak GPU memory and the P5 / P2
ratios (the paper's Table XI: 0.91 s per iteration for SAL-Net-ResNet101; +7.4% for SAL-Net-VGG16
over its DeepLab). Needs CUDA; ``nox -s gpu`` runs it, never CI::

    python benchmarks/gpu_fit.py --steps 60 --batch 7
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning
import lightning.pytorch as pl
import torch

VARIANTS = {
    "P2": {"use_selection": False, "use_attention": False},
    "P5": {"use_selection": True, "use_attention": True},
}


class StepTimer(pl.Callback):
    """Wall time of every training batch (CUDA synchronised at both ends)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._start)


def fit(variant: str, root: Path, args: argparse.Namespace) -> dict[str, float]:
    """Median seconds per step after the warm-up, peak memory (GiB) and the last loss of one fit."""
    from sal_lightning import SALSegmenter, VOCSegmentationDataModule

    pl.seed_everything(0, workers=True, verbose=False)
    model = SALSegmenter(
        backbone="deeplabv2_resnet101", encoder_weights=args.encoder_weights, lr=1e-4, **VARIANTS[variant]
    )
    data = VOCSegmentationDataModule(
        str(root),
        train_split="train",
        val_split="val",
        crop_size=321,
        batch_size=args.batch,
        num_workers=args.workers,
    )
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator="gpu",
        devices=1,
        precision=args.precision,
        max_steps=args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, datamodule=data)
    loss = float(trainer.callback_metrics["train/loss"])
    if not torch.isfinite(torch.tensor(loss)):
        raise SystemExit(f"gpu_fit: {variant} ended with a non-finite loss {loss}")
    steady = timer.times[args.warmup :] or timer.times
    return {
        "step_s": statistics.median(steady),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "loss": loss,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=7, help="the paper's batch")
    parser.add_argument("--precision", default="bf16-mixed", help="Lightning precision (32-true to compare)")
    parser.add_argument("--encoder-weights", default=None, help="e.g. imagenet (downloads); default random")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--data", help="a VOC-layout root to reuse (default: synthetic, in a temp folder)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit(
            f"gpu_fit: no CUDA device is visible to torch {torch.__version__}; run it on a GPU machine"
        )
    with tempfile.TemporaryDirectory(prefix="sal_gpu_fit_") as tmp:
        if args.data:
            root = Path(args.data)
        else:
            from sal_lightning.data.synthetic import make_synthetic_voc

            root = make_synthetic_voc(Path(tmp) / "voc", n_train=8 * args.batch, n_val=4, size=400)
        results = {variant: fit(variant, root, args) for variant in VARIANTS}
    print(
        f"gpu_fit: deeplabv2_resnet101, batch {args.batch}, crop 321, {args.precision}, {args.steps} steps "
        f"({args.warmup} warm-up), {torch.cuda.get_device_name()}, torch {torch.__version__}, "
        f"lightning {lightning.__version__}"
    )
    for variant, r in results.items():
        print(
            f"  {variant}: {r['step_s']:.4f} s/step  peak {r['peak_gib']:.2f} GiB  last loss {r['loss']:.3f}"
        )
    p2, p5 = results["P2"], results["P5"]
    print(
        f"  P5 / P2: time per step {p5['step_s'] / p2['step_s']:.3f}, peak memory "
        f"{p5['peak_gib'] / p2['peak_gib']:.3f} (paper, VGG16 SAL / DeepLab: 1.074)"
    )


if __name__ == "__main__":
    main()
