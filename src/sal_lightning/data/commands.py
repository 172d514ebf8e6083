"""``sal-lightning data``: synthetic data, checks, ``train_aug`` lists and downloads for VOC-format roots.

Actions::

    sal-lightning data synth --out DIR [--n-train N --n-val M --size S --seed K]
    sal-lightning data check --root ROOT [--split train_aug --split val] [--proxy-dir DIR]
    sal-lightning data train-aug --root ROOT
    sal-lightning data download --out DATA_DIR [--voc-url URL --aug-url URL --aug-sha256 HEX]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``data`` actions on ``parser``."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    synth = sub.add_parser("synth", help="write a synthetic dataset in the PASCAL VOC 2012 layout")
    synth.add_argument("--out", type=Path, required=True, help="output folder (becomes a VOC root)")
    synth.add_argument("--n-train", type=int, default=200, help="training images (train, train_aug)")
    synth.add_argument("--n-val", type=int, default=50, help="validation images (val)")
    synth.add_argument("--size", type=int, default=96, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0, help="random seed (the output is deterministic)")
    synth.add_argument(
        "--difficulty",
        choices=("realistic", "clean"),
        default="realistic",
        help="realistic: look-alike classes, saliency that misses and spills (default); clean: the easy "
        "data of the first releases' figures",
    )

    check = sub.add_parser(
        "check", help="validate a VOC root: lists, files (each one decoded), sizes, every label value"
    )
    check.add_argument("--root", type=Path, required=True, help="VOC root (or a VOCdevkit parent)")
    check.add_argument(
        "--split",
        action="append",
        default=None,
        help="split name or list file (repeatable; default: all present)",
    )
    check.add_argument("--proxy-dir", type=Path, default=None, help="also check these proxy PNGs")
    check.add_argument("--saliency-dir", type=Path, default=None, help="also check these saliency PNGs")

    aug = sub.add_parser(
        "train-aug", help="write ImageSets/Segmentation/train_aug.txt (Aug PNG ids minus val)"
    )
    aug.add_argument("--root", type=Path, required=True, help="VOC root holding SegmentationClassAug/")

    download = sub.add_parser("download", help="download VOC2012 trainval + SegmentationClassAug (resumable)")
    download.add_argument("--out", type=Path, required=True, help="data folder (gets VOCdevkit/VOC2012)")
    download.add_argument("--voc-url", default=None, help="mirror of VOCtrainval_11-May-2012.tar")
    download.add_argument("--voc-md5", default=None, help="MD5 of that tar (default: the official one)")
    download.add_argument("--aug-url", default=None, help="location of SegmentationClassAug.zip")
    download.add_argument("--aug-sha256", default=None, help="SHA-256 pinning SegmentationClassAug.zip")


def _check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sal_lightning.data.datasets import VOCDataset
    from sal_lightning.data.io import read_gray_png, read_image, read_label_png
    from sal_lightning.data.layout import SPLIT_NAMES, resolve_voc_root, split_path

    voc = resolve_voc_root(args.root)
    splits = args.split or [s for s in SPLIT_NAMES if s != "test" and split_path(voc, s).is_file()]
    if not splits:
        raise FileNotFoundError(f"{voc / 'ImageSets' / 'Segmentation'}: no split lists found")
    for split in splits:
        dataset = VOCDataset(voc, split, proxy_dir=args.proxy_dir, saliency_dir=args.saliency_dir)
        for source in tqdm(dataset.samples, desc=f"checking {split}", unit="img"):
            read_image(source.image)  # decodes every pixel: a truncated JPEG fails here
            for mask in {source.mask, source.tags_mask} - {None}:
                read_label_png(mask)  # raises on values outside 0..20 / 255
            if source.saliency is not None:
                read_gray_png(source.saliency)
        print(f"{split}: {len(dataset)} images, every file decoded, sizes and label values valid")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``data`` action; returns the exit code (bad data raises, and
    :func:`sal_lightning.cli.main` reports it in one line with exit code 2)."""
    if args.data_command == "synth":
        from sal_lightning._atomic import check_writable
        from sal_lightning.data.synthetic import make_synthetic_voc

        check_writable(args.out, "--out")

        root = make_synthetic_voc(
            args.out,
            args.n_train,
            args.n_val,
            args.size,
            args.seed,
            difficulty=args.difficulty,
            progress=True,
        )
        counts = f"{args.n_train} train, {args.n_val} val, {args.difficulty}"
        print(f"wrote a synthetic VOC root at {root} ({counts})")
        return 0
    if args.data_command == "check":
        return _check(args)
    if args.data_command == "train-aug":
        from sal_lightning.data.layout import make_train_aug_list, resolve_voc_root

        ids = make_train_aug_list(args.root)
        listed = resolve_voc_root(args.root) / "ImageSets" / "Segmentation" / "train_aug.txt"
        print(f"wrote {listed} ({len(ids)} ids)")
        return 0
    if args.data_command == "download":
        from sal_lightning.data.datamodules import VOCSegmentationDataModule

        dm = VOCSegmentationDataModule(
            str(args.out),
            download=True,
            voc_url=args.voc_url,
            voc_md5=args.voc_md5,
            aug_url=args.aug_url,
            aug_sha256=args.aug_sha256,
        )
        dm.prepare_data()
        print(f"VOC root ready at {dm.voc_root}")
        return 0
    raise ValueError(f"unknown data action {args.data_command!r}")
