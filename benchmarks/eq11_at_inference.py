"""Eq. 11 at inference: the same retrained checkpoints evaluated with and without it (paired).

Reads ``<workdir>/retrain/<variant>/seed*.ckpt`` of a finished pipeline run (``sal-lightning
pipeline``), tests each checkpoint on ``--split`` twice, ``refine_at_inference`` off and on, at a
single scale and at ``--scales`` with dense CRF, and prints the per-seed mIoU, the paired
differences (on - off) and their mean and standard deviation over seeds. How the figures in
``docs/segmenter.md`` were made::

    sal-lightning pipeline --config CONFIG --workdir /tmp/eq11 --root VOC --saliency SAL --proxies PROXIES
    python benchmarks/eq11_at_inference.py --workdir /tmp/eq11 --root VOC
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
from pathlib import Path

import lightning
import torch


def evaluate(
    checkpoint: Path, root: str, split: str, refine: bool, scales: tuple[float, ...], crf: bool
) -> float:
    """Test mIoU (in %) of one checkpoint with the given inference settings."""
    import lightning.pytorch as pl

    from sal_lightning import SALSegmenter, VOCSegmentationDataModule

    model = SALSegmenter.load_from_checkpoint(
        checkpoint,
        map_location="cpu",
        refine_at_inference=refine,
        test_scales=scales,
        test_flip=False,
        crf=crf,
        crf_processes=0,
    )
    data = VOCSegmentationDataModule(root, test_split=split, eval_batch_size=8, num_workers=0)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.test(model, datamodule=data, verbose=False)
    return 100.0 * float(trainer.callback_metrics["test/mIoU"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a finished pipeline run")
    parser.add_argument("--root", required=True, help="its VOC-layout data root")
    parser.add_argument("--split", default="val")
    parser.add_argument("--variant", default="P5")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.75, 1.0, 1.25])
    args = parser.parse_args(argv)
    logging.getLogger("lightning").setLevel(logging.WARNING)  # no per-class tables, no banners
    checkpoints = sorted(
        Path(args.workdir, "retrain", args.variant).glob("seed*.ckpt"),
        key=lambda p: int(re.sub(r"\D", "", p.stem)),
    )
    if not checkpoints:
        raise SystemExit(f"--workdir: no retrain/{args.variant}/seed*.ckpt under {args.workdir}")
    settings = {"single scale": ((1.0,), False), f"scales {args.scales} + CRF": (tuple(args.scales), True)}
    print(
        f"eq11_at_inference: {args.variant}, {len(checkpoints)} seeds, split {args.split}; "
        f"torch {torch.__version__}, lightning {lightning.__version__}"
    )
    for name, (scales, crf) in settings.items():
        rows = []
        for ckpt in checkpoints:
            off = evaluate(ckpt, args.root, args.split, False, scales, crf)
            on = evaluate(ckpt, args.root, args.split, True, scales, crf)
            rows.append((ckpt.stem, off, on))
            print(f"  {name:<28} {ckpt.stem}: off {off:.2f}  on {on:.2f}  on - off {on - off:+.2f}")
        for label, values in (
            ("off", [r[1] for r in rows]),
            ("on", [r[2] for r in rows]),
            ("on - off", [r[2] - r[1] for r in rows]),
        ):
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            sign = "+" if label == "on - off" else ""
            print(f"  {name:<28} {label:<8} mean {statistics.mean(values):{sign}.2f}  std {spread:.2f}")


if __name__ == "__main__":
    main()
