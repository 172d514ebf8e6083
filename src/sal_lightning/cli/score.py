"""``sal-lightning score``: reference masks, coarse and fine proxy scores, the scorer, selection, reports.

Each action is its stage function's signature on the command line (:mod:`sal_lightning.cli.args`)::

    sal-lightning score references --root ROOT --out REFS [--saliency DIR] [--crf false] [--processes N]
    sal-lightning score coarse     --root ROOT --proxies P --scores CSV [--references R] [--saliency DIR]
    sal-lightning score trainset   --root ROOT --proxies P --references R --out SAMPLES [--scores CSV]
    sal-lightning score train-scorer --samples SAMPLES --out DIR [--max_epochs 50] [--model.lr 1e-5]
    sal-lightning score fine       --root ROOT --proxies P --checkpoint CKPT --scores CSV
    sal-lightning score select     --scores CSV [--column sf|sc] [--tau T | --keep K] [--mode hard|soft|score]
    sal-lightning score sweep      --scores CSV --out DIR [--root ROOT --proxies P]
    sal-lightning score folder     --root ROOT --proxies P --scores CSV [--checkpoint CKPT] [--tau T]
    sal-lightning score corrupt    --root ROOT --out P [--split S] [--seed K]

``--split`` is a split name or a list file; without it, the ids are the PNGs of ``--proxies``.
Every Lightning loop takes ``--trainer.devices N`` (DDP across N processes).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser

from sal_lightning.cli.args import add_function, call, lazy_subcommands

HELP = "Proxy scoring: reference masks, coarse/fine scores, the mask scorer, selection, reports."
Report = Callable[[Mapping[str, Any], Any], None]


def _rows(what: str, columns: tuple[str, ...], noun: str = "proxies") -> Report:
    def report(args: Mapping[str, Any], rows: Any) -> None:
        if not rows:  # a DDP rank other than 0 returns no rows
            return
        print(f"{what} of {len(rows)} {noun} in {args['scores']}")
        for column in columns:
            values = [r[column] for r in rows.values() if column in r and not math.isnan(r[column])]
            if values:
                print(f"  {column}: mean {sum(values) / len(values):.4f} over {len(values)} images")

    return report


def _sweep(args: Mapping[str, Any], report: Any) -> None:
    print((Path(args["out"]) / "report.md").read_text())
    if "correlations" in report:
        print(json.dumps(report["correlations"], indent=2))


@dataclass(frozen=True)
class Action:
    """One ``score`` action.

    Attributes:
        stage: ``"module:function"`` under :mod:`sal_lightning.stages` (imported when used).
        help: one line for ``--help``.
        output: the argument naming what it writes (checked for writing before any work).
        report: prints what it wrote.
        flatten: the settings whose fields become flags of their own.
        hidden: settings fields left at their defaults (``"settings.processes"``): they would do
            nothing in this action.
        model: a LightningModule (``"package.module:Class"``) whose arguments make the ``--model.*``
            group.
        paths: the arguments that take a file path here (the function also takes an object).
    """

    stage: str
    help: str
    output: str
    report: Report
    flatten: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    model: str | None = None
    paths: tuple[str, ...] = ()

    @staticmethod
    def _load(spec: str) -> Any:
        module, name = spec.split(":")
        return getattr(importlib.import_module(module), name)

    def function(self) -> Callable[..., Any]:
        return self._load(f"sal_lightning.stages.{self.stage}")  # type: ignore[no-any-return]

    def classes(self) -> dict[str, type]:
        return {} if self.model is None else {"model": self._load(self.model)}

    def add_to(self, parser: ArgumentParser) -> None:
        """This action's arguments: its function's signature."""
        add_function(
            parser,
            self.function(),
            self.flatten,
            classes=self.classes(),
            paths=self.paths,
            hidden=self.hidden,
        )


#: the reference settings' worker pool: the coarse scores build missing masks in their DataLoader workers
NO_POOL = ("reference_settings.processes",)
ACTIONS: dict[str, Action] = {
    "references": Action(
        "references:build_references",
        "write reference masks H from saliency (PNG per id)",
        "out",
        lambda a, out: print(f"reference masks in {out}"),
        flatten=("settings",),
    ),
    "coarse": Action(
        "coarse:score_coarse",
        "AC, CD, SC of every proxy into scores.csv (Eq. 3-5)",
        "scores",
        _rows("coarse scores", ("ac", "cd", "sc")),
        flatten=("reference_settings", "settings"),
        hidden=NO_POOL,
    ),
    "trainset": Action(
        "trainset:build_scorer_training_set",
        "synthesise the mask scorer's training samples",
        "out",
        lambda a, out: print(f"scorer training samples in {out}"),
        flatten=("synthesis",),
        hidden=("coarse.batch_size", "coarse.num_workers"),
    ),
    "train-scorer": Action(
        "scorer_training:train_mask_scorer",
        "train the MaskScorer on a sample folder (Eq. 6)",
        "out",
        lambda a, best: print(f"best checkpoint: {best}"),
        model="sal_lightning.models.scorer:MaskScorer",
    ),
    "fine": Action(
        "fine:score_fine",
        "scorer predictions P and SF = P * CD into scores.csv (Eq. 6-7)",
        "scores",
        _rows("fine scores", ("p", "sf")),
        flatten=("settings",),
        paths=("checkpoint",),
    ),
    "select": Action(
        "select:select_scores",
        "weights (Eq. 9) from sf or sc, with tau or keep",
        "scores",
        lambda a, s: print(
            f"{s['selected']} of {s['of']} proxies selected ({s['rule']}: threshold {s['threshold']:.4g}; "
            f"{s['zeros']} zero scores; total weight {s['weight']:.4g})"
        ),
        flatten=("settings",),
    ),
    "sweep": Action(
        "sweep:sweep_report",
        "tau sweep (Table IV) and, with ground truth, correlations (Fig. 9)",
        "out",
        _sweep,
    ),
    "folder": Action(
        "folder:score_folder",
        "score any folder of pseudo-labels end to end into scores.csv",
        "scores",
        _rows("scores", ("ac", "cd", "sc", "p", "sf", "weight"), "pseudo-labels"),
        flatten=("reference_settings", "coarse", "selection"),
        hidden=NO_POOL,
    ),
    "corrupt": Action(
        "corrupt:make_corrupted_proxies",
        "write proxies of known quality: corrupted ground truth",
        "out",
        lambda a, done: print(f"{len(done)} corrupted proxies in {a['out']} (ops in corruptions.json)"),
    ),
}


def main(argv: list[str]) -> int:
    """Run ``sal-lightning score ACTION ...``; returns the exit code."""
    from sal_lightning._atomic import check_writable

    helps = {name: action.help for name, action in ACTIONS.items()}
    top, parsers = lazy_subcommands(
        "sal-lightning score", HELP, helps, argv, build=lambda name, parser: ACTIONS[name].add_to(parser)
    )
    namespace = top.parse_args(argv)
    name = namespace["action"]
    action, args = ACTIONS[name], namespace[name]
    target = Path(args[action.output])
    check_writable(target.parent if action.output == "scores" else target, f"--{action.output}")
    result = call(
        parsers[name], action.function(), args, action.flatten, classes=action.classes(), hidden=action.hidden
    )
    action.report(args.as_dict(), result)
    return 0
