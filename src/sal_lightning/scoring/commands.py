"""``sal-lightning score``: reference masks, coarse and fine proxy scores, selection and reports.

Actions (each a thin shell over a function of :mod:`sal_lightning.scoring`)::

    sal-lightning score references --root ROOT --out REFS [--saliency DIR | --saliency-fn MOD:FN]
    sal-lightning score coarse     --root ROOT --proxy-dir P --scores CSV [--reference-dir R] [--saliency DIR]
    sal-lightning score trainset   --root ROOT --proxy-dir P --reference-dir REFS --out SAMPLES [--scores CSV]
    sal-lightning score train-scorer --samples SAMPLES --out CKPT_DIR [--epochs 50 --lr 1e-5 --batch-size 8]
    sal-lightning score fine       --root ROOT --proxy-dir P --checkpoint CKPT --scores CSV [--tau 0.85]
    sal-lightning score select     --scores CSV --tau T [--mode hard|soft|score] [--score sf|sc]
    sal-lightning score sweep      --scores CSV --out DIR [--root ROOT --proxy-dir P]
    sal-lightning score folder     --root ROOT --proxy-dir P --checkpoint CKPT --scores CSV
    sal-lightning score corrupt    --root ROOT --out P [--split S --seed K]

``--split`` is a split name or list file; without it, the ids are the PNGs of ``--proxy-dir``
(``references``: the ``train_aug`` split, else ``train``).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any


def _trainer_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator (cpu, gpu, auto)")
    parser.add_argument("--devices", default="1", help="devices per node (a number, or 'auto')")
    parser.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp")
    parser.add_argument("--num-nodes", type=int, default=1, help="nodes (with torchrun / SLURM)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")


def _reference_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--saliency", type=Path, default=None, help="folder of grayscale saliency PNGs <id>.png"
    )
    group.add_argument(
        "--saliency-fn", default=None, help="a saliency callable image -> map, as 'module:function'"
    )
    parser.add_argument(
        "--method", default="ft-border", choices=("ft-border", "ft"), help="built-in saliency method"
    )
    parser.add_argument("--threshold", default=None, help="number in (0, 1), 'adaptive' or 'otsu'")
    parser.add_argument("--no-crf", action="store_true", help="no dense CRF refinement")
    parser.add_argument("--max-objects", type=int, default=3, help="iterative-erasing rounds (callables)")


def _coarse_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--definition", default="paper", choices=("paper", "fmeasure"), help="Eq. 3 variant")
    parser.add_argument("--b", type=float, default=0.1, help="objectness exponent of Eq. 3")
    parser.add_argument("--no-objectness", action="store_true", help="F = 1 instead of the mask objectness")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``score`` actions on ``parser``."""
    sub = parser.add_subparsers(dest="score_command", metavar="ACTION", required=True)

    p = sub.add_parser("references", help="write reference masks H from saliency (PNG per id)")
    p.add_argument("--root", type=Path, required=True, help="VOC root")
    p.add_argument("--out", type=Path, required=True, help="output folder of reference PNGs")
    p.add_argument("--split", default=None, help="split name or list file (default train_aug, else train)")
    p.add_argument("--overwrite", action="store_true", help="rebuild masks that exist")
    p.add_argument("--workers", type=int, default=0, help="worker processes")
    _reference_args(p)

    p = sub.add_parser("coarse", help="AC, CD, SC of every proxy into scores.csv (Eq. 3-5)")
    p.add_argument("--root", type=Path, required=True, help="VOC root (images, tags)")
    p.add_argument("--proxy-dir", type=Path, required=True, help="proxy annotations <id>.png")
    p.add_argument("--scores", type=Path, required=True, help="scores.csv to write or update")
    p.add_argument("--split", default=None, help="split name or list file (default: every proxy PNG)")
    p.add_argument(
        "--reference-dir", type=Path, default=None, help="reference masks (read, or built and cached)"
    )
    p.add_argument("--batch-size", type=int, default=8, help="images per predict step")
    _reference_args(p)
    _coarse_args(p)
    _trainer_args(p)

    p = sub.add_parser("trainset", help="synthesise the mask scorer's training samples")
    p.add_argument("--root", type=Path, required=True, help="VOC root")
    p.add_argument("--proxy-dir", type=Path, required=True, help="proxy annotations <id>.png")
    p.add_argument("--reference-dir", type=Path, required=True, help="reference masks <id>.png")
    p.add_argument("--out", type=Path, required=True, help="sample folder to write")
    p.add_argument("--split", default=None, help="split name or list file (default: every proxy PNG)")
    p.add_argument("--scores", type=Path, default=None, help="reuse the ac column of this scores.csv")
    p.add_argument("--positive", type=float, default=0.8, help="AC of positives (>=)")
    p.add_argument("--negative", type=float, default=0.3, help="AC of negatives (<=)")
    p.add_argument("--donor", type=float, default=0.9, help="AC of cut-paste donors (>=)")
    p.add_argument("--receiver", type=float, default=0.3, help="AC of cut-paste receivers (>=)")
    p.add_argument("--samples-per-image", type=float, default=1.0, help="scales the synthesised samples")
    p.add_argument("--degraded-share", type=float, default=0.3, help="degraded samples per image (x spi)")
    p.add_argument("--cutpaste-share", type=float, default=0.2, help="cut-paste samples per image (x spi)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--overwrite", action="store_true", help="replace a sample folder built otherwise")
    _coarse_args(p)

    p = sub.add_parser("train-scorer", help="train the MaskScorer on a sample folder (Eq. 6)")
    p.add_argument("--samples", type=Path, required=True, help="sample folder (score trainset)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    p.add_argument("--epochs", type=int, default=50, help="epochs (paper: 50)")
    p.add_argument("--batch-size", type=int, default=8, help="batch size (paper: 8)")
    p.add_argument("--lr", type=float, default=1e-5, help="learning rate (paper: 1e-5)")
    p.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd"), help="optimiser")
    p.add_argument("--input-size", type=int, default=256, help="network input side (paper: 256)")
    p.add_argument("--arch", default="table1", choices=("table1", "light"), help="Table I or its CPU variant")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of source images held out")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    _trainer_args(p)

    p = sub.add_parser("fine", help="scorer predictions P, SF = P * CD and weights into scores.csv")
    p.add_argument("--root", type=Path, required=True, help="VOC root")
    p.add_argument("--proxy-dir", type=Path, required=True, help="proxy annotations <id>.png")
    p.add_argument("--checkpoint", type=Path, required=True, help="MaskScorer checkpoint")
    p.add_argument("--scores", type=Path, required=True, help="scores.csv holding cd (score coarse)")
    p.add_argument("--split", default=None, help="split name or list file (default: every proxy PNG)")
    p.add_argument("--batch-size", type=int, default=16, help="masks per predict step")
    p.add_argument("--tau", type=float, default=0.85, help="selection threshold of Eq. 9")
    p.add_argument("--mode", default="hard", choices=("hard", "soft", "score"), help="weight mode")
    _trainer_args(p)

    p = sub.add_parser("select", help="fill sf (where p exists) and weight from tau")
    p.add_argument("--scores", type=Path, required=True, help="scores.csv")
    p.add_argument("--tau", type=float, required=True, help="threshold (paper: 0.55 VGG16, 0.85 ResNet-101)")
    p.add_argument("--mode", default="hard", choices=("hard", "soft", "score"), help="weight mode")
    p.add_argument("--score", default="sf", choices=("sf", "sc"), help="column the weights follow")
    p.add_argument("--temperature", type=float, default=0.05, help="width of the soft step")

    p = sub.add_parser("sweep", help="tau sweep (Table IV) and, with ground truth, correlations (Fig. 9)")
    p.add_argument("--scores", type=Path, required=True, help="scores.csv")
    p.add_argument("--out", type=Path, required=True, help="report folder (report.md, .json, .png)")
    p.add_argument("--root", type=Path, default=None, help="VOC root with ground truth")
    p.add_argument("--proxy-dir", type=Path, default=None, help="the scored proxies")
    p.add_argument("--column", default="sf", choices=("sf", "sc", "ac", "p"), help="column to sweep")
    p.add_argument("--taus", default=None, help="comma-separated thresholds")
    p.add_argument("--definition", default="fmeasure", choices=("paper", "fmeasure"), help="true-AC variant")

    p = sub.add_parser("folder", help="score any folder of pseudo-labels end to end into scores.csv")
    p.add_argument("--root", type=Path, required=True, help="VOC-layout root with the images")
    p.add_argument("--proxy-dir", type=Path, required=True, help="pseudo-labels <id>.png")
    p.add_argument("--checkpoint", type=Path, default=None, help="a trained scorer's checkpoint")
    p.add_argument(
        "--scorer-method",
        default="reference",
        choices=("reference", "regression", "none"),
        help="without --checkpoint: train this scorer on the folder itself ('none': SC only)",
    )
    p.add_argument("--scorer-epochs", type=int, default=None, help="epochs (10 reference, 50 regression)")
    p.add_argument("--scorer-input-size", type=int, default=None, help="scorer input side (default 256)")
    p.add_argument("--scores", type=Path, required=True, help="scores.csv to write")
    p.add_argument("--split", default=None, help="split name or list file (default: every PNG)")
    p.add_argument("--reference-dir", type=Path, default=None, help="reference masks (read or cached)")
    p.add_argument("--tau", type=float, default=0.85, help="selection threshold")
    p.add_argument("--mode", default="hard", choices=("hard", "soft", "score"), help="weight mode")
    p.add_argument("--batch-size", type=int, default=8, help="images per predict step")
    _reference_args(p)
    _coarse_args(p)
    _trainer_args(p)

    p = sub.add_parser("corrupt", help="write proxies of known quality: corrupted ground truth")
    p.add_argument("--root", type=Path, required=True, help="VOC root with ground truth")
    p.add_argument("--out", type=Path, required=True, help="output proxy folder")
    p.add_argument("--split", default="train", help="split name or list file")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def load_callable(spec: str) -> Any:
    """``"package.module:function"`` -> the function (``ValueError`` when it is not a callable)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--saliency-fn: expected 'module:function', got {spec!r}")
    value = getattr(importlib.import_module(module_name), attr, None)
    if not callable(value):
        raise ValueError(f"--saliency-fn: {spec!r} is not a callable")
    return value


def _threshold(text: str | None) -> float | str | None:
    if text is None or text in ("adaptive", "otsu"):
        return text
    try:
        return float(text)
    except ValueError as error:
        raise ValueError(f"--threshold: expected a number, 'adaptive' or 'otsu', got {text!r}") from error


def _reference(args: argparse.Namespace) -> tuple[Any, Any]:
    from sal_lightning.scoring.references import ReferenceConfig

    config = ReferenceConfig(
        threshold=_threshold(args.threshold),  # type: ignore[arg-type]
        crf=not args.no_crf,
        max_objects=args.max_objects,
        method=args.method,
    )
    source = load_callable(args.saliency_fn) if args.saliency_fn else args.saliency
    return source, config


def _coarse(args: argparse.Namespace) -> Any:
    from sal_lightning.scoring.coarse import CoarseConfig
    from sal_lightning.scoring.objectness import mask_objectness

    return CoarseConfig(
        b=args.b, definition=args.definition, objectness=None if args.no_objectness else mask_objectness
    )


def _trainer_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    devices: int | str = int(args.devices) if str(args.devices).isdigit() else args.devices
    return {
        "accelerator": args.accelerator,
        "devices": devices,
        "strategy": args.strategy,
        "num_nodes": args.num_nodes,
    }


def _split(args: argparse.Namespace) -> Any:
    return None if args.split is None else args.split


def _print_rows(rows: dict[str, dict[str, float]], columns: tuple[str, ...]) -> None:
    import math

    for column in columns:
        values = [r[column] for r in rows.values() if column in r and not math.isnan(r[column])]
        if values:
            print(f"  {column}: mean {sum(values) / len(values):.4f} over {len(values)} images")


#: action -> (the option naming its output, whether that option is a file rather than a folder)
OUTPUTS: dict[str, tuple[str, bool]] = {
    "references": ("out", False),
    "coarse": ("scores", True),
    "trainset": ("out", False),
    "train-scorer": ("out", False),
    "fine": ("scores", True),
    "select": ("scores", True),
    "sweep": ("out", False),
    "folder": ("scores", True),
    "corrupt": ("out", False),
}


def _dispatch(args: argparse.Namespace) -> int:
    from sal_lightning._atomic import check_writable

    command = args.score_command
    option, is_file = OUTPUTS[command]
    target = Path(getattr(args, option))
    check_writable(target.parent if is_file else target, f"--{option}")  # before any work
    if command == "references":
        from sal_lightning.data.layout import read_split, resolve_voc_root, split_path
        from sal_lightning.scoring.references import build_references

        voc = resolve_voc_root(args.root)
        split = args.split or ("train_aug" if split_path(voc, "train_aug").is_file() else "train")
        ids = read_split(voc, split)
        source, config = _reference(args)
        out = build_references(voc, ids, args.out, source, config, args.workers, args.overwrite)
        print(f"reference masks of {len(ids)} images in {out}")
        return 0
    if command == "coarse":
        from sal_lightning.scoring.stages import score_coarse

        source, config = _reference(args)
        rows = score_coarse(
            args.root, args.proxy_dir, args.scores, _split(args), args.reference_dir, source, config,
            _coarse(args), args.batch_size, args.workers, _trainer_kwargs(args),
        )  # fmt: skip
        print(f"coarse scores of {len(rows)} proxies in {args.scores}")
        _print_rows(rows, ("ac", "cd", "sc"))
        return 0
    if command == "trainset":
        from sal_lightning.data.io import read_scores
        from sal_lightning.scoring.stages import resolve_ids
        from sal_lightning.scoring.synthesis import SynthesisConfig, build_scorer_training_set

        config = SynthesisConfig(
            positive_threshold=args.positive,
            negative_threshold=args.negative,
            donor_threshold=args.donor,
            receiver_threshold=args.receiver,
            samples_per_image=args.samples_per_image,
            degraded_share=args.degraded_share,
            cutpaste_share=args.cutpaste_share,
            seed=args.seed,
            coarse=_coarse(args),
        )
        ids = resolve_ids(args.root, _split(args), args.proxy_dir)
        ac = {i: r["ac"] for i, r in read_scores(args.scores).items()} if args.scores else None
        out = build_scorer_training_set(
            args.root, ids, args.proxy_dir, args.reference_dir, args.out, config, ac, args.overwrite
        )
        print(f"scorer training samples in {out}")
        return 0
    if command == "train-scorer":
        from sal_lightning.models.scorer import MaskScorer
        from sal_lightning.scoring.stages import train_mask_scorer

        model = MaskScorer(
            arch=args.arch,
            input_size=args.input_size,
            lr=args.lr,
            optimizer=args.optimizer,
        )
        best = train_mask_scorer(
            args.samples, args.out, model, args.epochs, args.batch_size, args.val_fraction, args.workers,
            args.seed, _trainer_kwargs(args),
        )  # fmt: skip
        print(f"best checkpoint: {best}")
        return 0
    if command == "fine":
        from sal_lightning.scoring.stages import apply_selection, score_fine

        p = score_fine(
            args.root, args.proxy_dir, args.checkpoint, args.scores, _split(args), args.batch_size,
            args.workers, _trainer_kwargs(args),
        )  # fmt: skip
        rows = apply_selection(args.scores, args.tau, args.mode, "sf")
        print(f"fine scores of {len(p)} proxies in {args.scores}")
        _print_rows(rows, ("p", "sf", "weight"))
        return 0
    if command == "select":
        from sal_lightning.scoring.stages import apply_selection

        rows = apply_selection(args.scores, args.tau, args.mode, args.score, args.temperature)
        chosen = sum(1 for r in rows.values() if r["weight"] >= 0.5)
        print(f"{chosen} of {len(rows)} proxies with weight >= 0.5 (tau {args.tau}, {args.mode})")
        return 0
    if command == "sweep":
        from sal_lightning.scoring.reports import DEFAULT_TAUS, write_report

        taus = tuple(float(t) for t in args.taus.split(",")) if args.taus else DEFAULT_TAUS
        report = write_report(
            args.scores, args.out, args.root, args.proxy_dir, args.column, taus, args.definition
        )
        print((Path(args.out) / "report.md").read_text())
        if "correlations" in report:
            print(json.dumps(report["correlations"], indent=2))
        return 0
    if command == "folder":
        from sal_lightning.scoring.stages import score_folder

        source, config = _reference(args)
        rows = score_folder(
            args.root, args.proxy_dir, args.checkpoint, args.scores, _split(args), args.reference_dir, source,
            config, _coarse(args), args.tau, args.mode, args.batch_size, args.workers, _trainer_kwargs(args),
            scorer_method=None if args.scorer_method == "none" else args.scorer_method,
            scorer_model=None if args.scorer_input_size is None else {"input_size": args.scorer_input_size},
            scorer_epochs=args.scorer_epochs,
        )  # fmt: skip
        if rows:  # on rank 0 (the other ranks of a DDP run return no rows)
            print(f"scores of {len(rows)} pseudo-labels in {args.scores}")
            _print_rows(rows, ("ac", "cd", "sc", "p", "sf", "weight"))
        return 0
    if command == "corrupt":
        from sal_lightning.data.layout import read_split, resolve_voc_root
        from sal_lightning.scoring.corruption import make_corrupted_proxies

        voc = resolve_voc_root(args.root)
        done = make_corrupted_proxies(voc, read_split(voc, args.split), args.out, args.seed)
        print(f"{len(done)} corrupted proxies in {args.out} (ops in corruptions.json)")
        return 0
    raise ValueError(f"unknown score action {command!r}")


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``score`` action; returns the exit code (bad input raises, and
    :func:`sal_lightning.cli.main` reports it in one line with exit code 2)."""
    return _dispatch(args)
