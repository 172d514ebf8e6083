"""The SAL-Net steps as pipeline :class:`~sal_lightning.pipeline.runner.Step` objects.

Each step holds the data it works on (root, split) and its section of the configuration
(``settings``), reads its inputs from the workdir, calls its stage function
(:mod:`sal_lightning.stages`) and returns a summary for the manifest. The workdir they share::

    step1/                 step 1 work folder: cam.ckpt, cams/, seeds/, proxynet.ckpt, proxies/, p1/
    references/<id>.png    reference masks H_i (saliency + CRF)
    coarse/scores.csv      AC, CD, SC (Eq. 3-5)
    scorer/                scorer training set (samples/), checkpoints, scorer.ckpt, scorer.json
    fine/scores.csv        + P and SF (Eq. 6-7)
    scores.csv             every column, ``weight`` from SF (Eq. 9): the paper's selection (P4, P5)
    selection/coarse.csv   the same table with ``weight`` from SC (coarse selection, P3)
    selection/oracle.csv   where ground truth exists: the oracle selection
    selection/summary.json each selection's threshold, count, zero scores, total weight
    retrain/P2..P5/        seed<k>.ckpt: SALSegmenter retrained on the proxies
    evaluation/            val predictions of P2..P5, results.json, inference.json (scales, fusion,
                           flip, CRF as they ran)
    report.md, figures/    the ablation table, scorer correlations, tau sweep, overlays
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm import tqdm

from sal_lightning._atomic import atomic_path, atomic_write_text
from sal_lightning.data.io import read_label_png, read_scores, write_label_png, write_scores
from sal_lightning.data.layout import read_split, resolve_voc_root, root_classes
from sal_lightning.pipeline.runner import Step, StepContext
from sal_lightning.stages.checks import check_crf, check_folder, check_split
from sal_lightning.stages.coarse import CoarseSettings, score_coarse
from sal_lightning.stages.evaluate import EvaluateSettings, evaluate, summarise
from sal_lightning.stages.fine import FineSettings, score_fine
from sal_lightning.stages.proxies import run_proxies
from sal_lightning.stages.proxy_config import ProxyConfig, check_networks
from sal_lightning.stages.quality import has_ground_truth, label_quality, proxy_miou, true_quality
from sal_lightning.stages.references import ReferenceSettings, build_references
from sal_lightning.stages.report import ReportSettings, write_report
from sal_lightning.stages.retrain import VARIANTS, RetrainSettings, retrain, variant_runs
from sal_lightning.stages.scorer import ScorerSettings, train_scorer
from sal_lightning.stages.select import (
    SelectSettings,
    check_kept,
    describe_summary,
    mean_quality,
    oracle_selection,
    select_rows,
)

PROXIES = "step1/proxies"
#: the table each retraining variant's weights come from (``None``: every proxy, weight 1)
SELECTIONS: dict[str | None, str | None] = {
    None: None,
    "coarse": "selection/coarse.csv",
    "fine": "scores.csv",
    "oracle": "selection/oracle.csv",
}

#: the table of each selection of the ``select`` step
SELECTED = {"sf": "scores.csv", "sc": "selection/coarse.csv", "oracle": "selection/oracle.csv"}


def _mean(values: Any) -> float:
    array = np.array(list(values), dtype=np.float64)
    return float(np.nanmean(array)) if array.size and not np.isnan(array).all() else math.nan


@dataclass
class MakeProxies(Step):
    """Step 1: CAM classifier -> seeds -> ProxyNet -> ``step1/proxies``; P1 = ProxyNet on ``val_split``."""

    kind: ClassVar[str] = "proxies"
    writes: ClassVar[tuple[str, ...]] = ("step1",)
    sources: ClassVar[tuple[str, ...]] = ("saliency",)
    root: str
    split: str
    val_split: str | None
    saliency: str | None
    settings: ProxyConfig

    def check(self) -> None:
        check_split(self.root, self.split, "train_split")
        check_split(self.root, self.val_split, "val_split")
        check_folder(self.saliency, "saliency")
        check_networks(self.settings)
        if self.settings.needs_crf:
            check_crf("step 1's dense CRF (crf or constrain_weight)")
        self.settings.check_saliency(self.saliency)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        report = run_proxies(
            self.root, ctx.path("step1"), self.split, self.saliency, self.settings,
            resume=not ctx.fresh, val_split=self.val_split, trainer=ctx.trainer,
        )  # fmt: skip
        result: dict[str, Any] = {k: report[k]["miou"] for k in ("seeds", "proxies") if k in report}
        if "p1" in report:
            result["p1_val_miou"] = report["p1"]["miou"]
        result |= {f"{net}_loss": t["loss"] for net, t in report["training"].items() if "loss" in t}
        return result


@dataclass
class ImportProxies(Step):
    """Step 1 replaced by a folder of pseudo-labels from any method (one PNG per id of ``split``).

    The PNGs are checked (values 0..C or 255, C the root's foreground classes: those of its
    ``classes.txt``, VOC's 20 without one; one per id) and copied to ``step1/proxies``. The
    folder's content hash is part of the configuration: after a PNG there changes, the next run
    imports again and re-runs every later step.
    """

    kind: ClassVar[str] = "proxies"
    writes: ClassVar[tuple[str, ...]] = ("step1",)
    sources: ClassVar[tuple[str, ...]] = ("proxies",)
    root: str
    split: str
    proxies: str

    def check(self) -> None:
        check_folder(self.proxies, "proxies")
        ids = check_split(self.root, self.split, "train_split")
        missing = [i for i in ids if not (Path(self.proxies) / f"{i}.png").is_file()]
        if missing:
            raise FileNotFoundError(
                f"{self.proxies}: {len(missing)} of {len(ids)} proxies of split {self.split!r} are "
                f"missing, e.g. {[f'{i}.png' for i in missing[:5]]}"
            )

    def run(self, ctx: StepContext) -> dict[str, Any]:
        self.check()
        ids = check_split(self.root, self.split, "train_split")
        out = ctx.path(PROXIES)
        k = len(root_classes(self.root))
        for image_id in tqdm(ids, desc="import proxies", unit="img", disable=len(ids) < 200):
            target = out / f"{image_id}.png"
            if not target.is_file():
                write_label_png(target, read_label_png(Path(self.proxies) / f"{image_id}.png", k), k)
        return {"imported": len(ids)}


@dataclass
class MakeReferences(Step):
    """Reference masks H_i from saliency (a folder of PNGs, or the built-in method when ``None``)."""

    kind: ClassVar[str] = "references"
    reads: ClassVar[tuple[str, ...]] = (PROXIES,)
    writes: ClassVar[tuple[str, ...]] = ("references",)
    sources: ClassVar[tuple[str, ...]] = ("saliency",)
    root: str
    split: str
    saliency: str | None
    settings: ReferenceSettings

    def check(self) -> None:
        check_split(self.root, self.split, "train_split")
        check_folder(self.saliency, "saliency")
        if self.settings.crf:
            check_crf("references.crf")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        out = build_references(
            self.root,
            ctx.path("references"),
            self.split,
            self.saliency,
            self.settings,
            self.settings.processes,
        )
        return {"references": sum(1 for _ in out.glob("*.png"))}


@dataclass
class CoarseScores(Step):
    """AC, CD and SC of every proxy (Eq. 3-5) into ``coarse/scores.csv``."""

    kind: ClassVar[str] = "coarse"
    reads: ClassVar[tuple[str, ...]] = (PROXIES, "references")
    writes: ClassVar[tuple[str, ...]] = ("coarse",)
    root: str
    split: str
    settings: CoarseSettings

    def check(self) -> None:
        check_split(self.root, self.split, "train_split")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        rows = score_coarse(
            self.root, ctx.path(PROXIES), ctx.path("coarse/scores.csv"), self.split, ctx.path("references"),
            coarse=self.settings, batch_size=self.settings.batch_size, num_workers=self.settings.num_workers,
            trainer=ctx.trainer.with_progress(False),  # bars where steps train
        )  # fmt: skip
        return {"scored": len(rows), "mean_sc": _mean(r["sc"] for r in rows.values())}


@dataclass
class TrainScorer(Step):
    """The fine scorer, trained on this dataset's own proxies (:class:`ScorerSettings`)."""

    kind: ClassVar[str] = "scorer"
    reads: ClassVar[tuple[str, ...]] = (PROXIES, "references", "coarse")
    writes: ClassVar[tuple[str, ...]] = ("scorer",)
    root: str
    split: str
    settings: ScorerSettings

    def check(self) -> None:
        check_split(self.root, self.split, "train_split")
        self.settings.check()

    def run(self, ctx: StepContext) -> dict[str, Any]:
        best, samples = train_scorer(
            self.root, ctx.path(PROXIES), ctx.path("references"), ctx.path("scorer"), self.split,
            self.settings, ctx.path("coarse/scores.csv"), ctx.trainer,
        )  # fmt: skip
        with atomic_path(ctx.path("scorer/scorer.ckpt")) as tmp:
            shutil.copyfile(best, tmp)
        settings = self.settings
        trained: dict[str, Any] = {"method": settings.method, "network": settings.network.__name__}
        trained |= {"model": settings.model, "max_epochs": settings.epochs, "batch_size": settings.batch}
        trained["samples"] = samples
        atomic_write_text(ctx.path("scorer/scorer.json"), json.dumps(trained, indent=2, default=str) + "\n")
        return {"method": self.settings.method, "samples": samples, "checkpoint": "scorer/scorer.ckpt"}


@dataclass
class FineScores(Step):
    """P of every proxy from the trained scorer and SF = P * CD (Eq. 7) into ``fine/scores.csv``."""

    kind: ClassVar[str] = "fine"
    reads: ClassVar[tuple[str, ...]] = (PROXIES, "coarse", "scorer")
    writes: ClassVar[tuple[str, ...]] = ("fine",)
    root: str
    split: str
    settings: FineSettings

    def run(self, ctx: StepContext) -> dict[str, Any]:
        table = ctx.path("fine/scores.csv")
        write_scores(table, read_scores(ctx.path("coarse/scores.csv")), {"step": "fine", "from": "coarse"})
        rows = score_fine(
            self.root, ctx.path(PROXIES), ctx.path("scorer/scorer.ckpt"), table, self.split,
            self.settings.batch_size, self.settings.num_workers, ctx.trainer,
        )  # fmt: skip
        return {"scored": len(rows), "mean_sf": _mean(r["sf"] for r in rows.values())}


@dataclass
class Select(Step):
    """Weights (Eq. 9) from SF into ``scores.csv`` (P4, P5) and from SC into ``selection/coarse.csv``
    (P3); a summary of both in ``selection/summary.json``. Where the split has ground truth, the
    oracle selection into ``selection/oracle.csv``: P4's weights given to the proxies in the order
    of their true per-image mIoU (:func:`~sal_lightning.stages.select.select_best`).

    Fails before any retraining when a selection keeps fewer than ``min_share`` of the proxies."""

    kind: ClassVar[str] = "select"
    reads: ClassVar[tuple[str, ...]] = ("fine", PROXIES)
    writes: ClassVar[tuple[str, ...]] = ("scores.csv", "scores.json", "selection")
    root: str
    split: str
    settings: SelectSettings

    def run(self, ctx: StepContext) -> dict[str, Any]:
        rows = read_scores(ctx.path("fine/scores.csv"))
        result: dict[str, Any] = {}
        tables: dict[str, Any] = {}
        for column, selection in (("sf", self.settings.fine()), ("sc", self.settings.coarse())):
            tables[column], result[column] = select_rows(rows, column, selection)
            check_kept(column, result[column], selection, self.settings.min_share)
        ids = sorted(rows)
        if has_ground_truth(self.root, ids):
            quality = proxy_miou(true_quality(self.root, ids, ctx.path(PROXIES), progress=False))
            tables["oracle"], result["oracle"] = oracle_selection(rows, quality, tables["sf"])
            for name, table in tables.items():  # one measure for every selection
                result[name]["mean_true_miou"] = mean_quality(table, quality)
            result["all"] = {"of": len(ids), "mean_true_miou": float(np.mean(list(quality.values())))}
        for name, table in tables.items():
            note = {"step": "select", "score": name, **result[name], "mode": self.settings.mode}
            write_scores(ctx.path(SELECTED[name]), table, note)
        atomic_write_text(ctx.path("selection/summary.json"), json.dumps(result, indent=2) + "\n")
        for name in ("sf", "sc"):
            print(f"  selection {describe_summary(name, result[name])}", flush=True)
        return result


@dataclass
class Retrain(Step):
    """Step 4: SALSegmenter on the proxies, one run per seed, the same ``max_steps`` for every variant
    (:data:`~sal_lightning.stages.retrain.VARIANTS`: P2 all proxies, P3 coarse selection, P4 refined
    selection, P5 refined selection + attention loss, oracle)."""

    kind: ClassVar[str] = "retrain"
    root: str
    train_split: str
    val_split: str
    variant: str
    settings: RetrainSettings

    @property
    def name(self) -> str:
        return f"retrain-{self.variant}"

    def check(self) -> None:
        check_split(self.root, self.train_split, "train_split")
        check_split(self.root, self.val_split, "val_split")
        self.settings.check(self.root)
        if self.variant == "oracle" and not has_ground_truth(
            self.root, read_split(resolve_voc_root(self.root), self.train_split)
        ):
            raise ValueError(
                f"retrain.variants: 'oracle' ranks proxies by their true quality, but {self.train_split!r} "
                f"of {self.root} has ids without a ground-truth mask; remove 'oracle' from the variants"
            )

    @property
    def _scores(self) -> str | None:
        return SELECTIONS[VARIANTS[self.variant].selection]

    def inputs(self) -> tuple[str, ...]:
        return (PROXIES,) if self._scores is None else (PROXIES, self._scores)

    def outputs(self) -> tuple[str, ...]:
        return (f"retrain/{self.variant}",)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        return retrain(
            self.root, ctx.path(PROXIES), ctx.path(f"retrain/{self.variant}"),
            None if self._scores is None else ctx.path(self._scores), VARIANTS[self.variant].use_attention,
            self.settings, self.train_split, self.val_split, resume=not ctx.fresh, trainer=ctx.trainer,
        )  # fmt: skip


@dataclass
class Evaluate(Step):
    """P1..P5 on ``split`` with the ``evaluate`` section's inference (scales, flip, dense CRF): mIoU
    per run.

    P1 is the step 1 network (its predictions in ``step1/p1/proxies``); P2..P5 every
    ``retrain/<variant>/seed<k>.ckpt``. Predictions go to ``evaluation/<variant>/seed<k>/<id>.png``;
    the numbers to ``evaluation/results.json``.
    """

    kind: ClassVar[str] = "evaluate"
    writes: ClassVar[tuple[str, ...]] = ("evaluation",)
    root: str
    split: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    include_p1: bool
    settings: EvaluateSettings

    def inputs(self) -> tuple[str, ...]:
        return tuple(f"retrain/{v}" for v in self.variants) + (("step1",) if self.include_p1 else ())

    def check(self) -> None:
        check_split(self.root, self.split, "val_split")
        if self.settings.crf:
            check_crf("evaluate.crf")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        results: dict[str, dict[str, float]] = {}
        if self.include_p1:
            p1 = ctx.path("step1/p1/proxies")
            if not p1.is_dir():
                raise FileNotFoundError(
                    f"{p1}: ProxyNet predictions missing; run step 'proxies' with val_split"
                )
            ids = read_split(resolve_voc_root(self.root), self.split)
            results["P1"] = {"seed0": label_quality(p1, self.root, ids).miou}
        runs = variant_runs(ctx.path("retrain"), self.variants, self.seeds)
        trainer = ctx.trainer.with_progress(False)
        results |= evaluate(
            self.root, runs, ctx.path("evaluation"), self.split, self.settings, not ctx.fresh, trainer
        )
        atomic_write_text(ctx.path("evaluation/results.json"), json.dumps(results, indent=2) + "\n")
        return summarise(results)


@dataclass
class Report(Step):
    """``report.md`` and ``figures/`` from the evaluation, the scores and the proxies."""

    kind: ClassVar[str] = "report"
    reads: ClassVar[tuple[str, ...]] = ("evaluation", "scores.csv", PROXIES)
    writes: ClassVar[tuple[str, ...]] = ("report.md", "report.json", "figures")
    root: str
    split: str
    val_split: str
    settings: ReportSettings

    def run(self, ctx: StepContext) -> dict[str, Any]:
        return write_report(ctx.workdir, self.root, self.split, self.val_split, self.settings)
