"""``sal-lightning data``: write the synthetic VOC-format dataset (``synth``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``data`` sub-subcommands on ``parser``."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    synth = sub.add_parser("synth", help="write a synthetic dataset in the PASCAL VOC 2012 layout")
    synth.add_argument("--out", type=Path, required=True, help="output folder (becomes a VOC root)")
    synth.add_argument("--n-train", type=int, default=200, help="training images (train, train_aug)")
    synth.add_argument("--n-val", type=int, default=50, help="validation images (val)")
    synth.add_argument("--size", type=int, default=96, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0, help="random seed (the output is deterministic)")


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``data`` action; returns the exit code."""
    if args.data_command == "synth":
        from sal_lightning.data.synthetic import make_synthetic_voc

        root = make_synthetic_voc(args.out, args.n_train, args.n_val, args.size, args.seed, progress=True)
        print(f"wrote a synthetic VOC root at {root} ({args.n_train} train, {args.n_val} val)")
        return 0
    raise ValueError(f"unknown data action {args.data_command!r}")
