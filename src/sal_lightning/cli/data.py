"""``sal-lightning data``: synthetic data, checks, ``train_aug`` lists and downloads for VOC-format roots.

Each action is its function's signature on the command line (:mod:`sal_lightning.cli.args`)::

    sal-lightning data synth --out DIR [--n_train N --n_val M --size S --seed K --difficulty clean]
    sal-lightning data check --root ROOT [--split train] [--proxies DIR] [--saliency DIR]
    sal-lightning data train-aug --root ROOT
    sal-lightning data download --out DATA_DIR [--voc_url URL --aug_url URL --aug_sha256 HEX]
    sal-lightning data coco --annotations JSON [JSON ...] --images DIR --out ROOT [--processes P]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sal_lightning.cli.args import add_function, call, lazy_subcommands

HELP = "VOC-format data: synthetic data, checks, train_aug lists, downloads, COCO conversion."


def _synth(args: Mapping[str, Any], root: Path) -> None:
    counts = f"{args['n_train']} train, {args['n_val']} val, {args['difficulty']}"
    print(f"wrote a synthetic VOC root at {root} ({counts})")


def _check(args: Mapping[str, Any], counts: dict[str, int]) -> None:
    for split, images in counts.items():
        print(f"{split}: {images} images, every file decoded, sizes and label values valid")


def _train_aug(args: Mapping[str, Any], ids: list[str]) -> None:
    from sal_lightning.data.layout import resolve_voc_root, split_path

    print(f"wrote {split_path(resolve_voc_root(args['root']), 'train_aug')} ({len(ids)} ids)")


def _coco(args: Mapping[str, Any], summaries: list[Any]) -> None:
    for summary in summaries:
        print(summary)


def _functions() -> dict[str, tuple[Callable[..., Any], str, Callable[[Mapping[str, Any], Any], None]]]:
    """action -> (its function, its help, what it prints)."""
    from sal_lightning.data.check import check_root
    from sal_lightning.data.coco import convert_coco
    from sal_lightning.data.download import download
    from sal_lightning.data.layout import make_train_aug_list
    from sal_lightning.data.synthetic import make_synthetic_voc

    return {
        "synth": (make_synthetic_voc, "write a synthetic dataset in the PASCAL VOC 2012 layout", _synth),
        "check": (
            check_root,
            "validate a VOC root: lists, files (each one decoded), sizes, label values",
            _check,
        ),
        "train-aug": (
            make_train_aug_list,
            "write ImageSets/Segmentation/train_aug.txt (Aug ids minus val)",
            _train_aug,
        ),
        "download": (
            download,
            "download VOC2012 trainval + SegmentationClassAug (resumable)",
            lambda args, voc: print(f"VOC root ready at {voc}"),
        ),
        "coco": (convert_coco, "convert MS COCO instance annotations to a VOC-layout root", _coco),
    }


def main(argv: list[str]) -> int:
    """Run ``sal-lightning data ACTION ...``; returns the exit code."""
    from sal_lightning._atomic import check_writable

    functions = _functions()
    helps = {name: help_text for name, (_, help_text, _) in functions.items()}
    top, parsers = lazy_subcommands(
        "sal-lightning data",
        HELP,
        helps,
        argv,
        build=lambda name, parser: add_function(parser, functions[name][0]),
    )
    namespace = top.parse_args(argv)
    name = namespace["action"]
    fn, _, report = functions[name]
    args = namespace[name]
    if "out" in args:
        check_writable(args["out"], "--out")  # before any work
    report(args.as_dict(), call(parsers[name], fn, args))
    return 0
