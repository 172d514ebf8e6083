"""What a pipeline step is: a :class:`Step` (its configuration, what it reads and writes, its work),
the :class:`StepContext` it runs in and the :class:`Workdir` it shares with the other steps.

Each stage module defines its steps beside its settings and its function (``stages/coarse.py``:
:class:`~sal_lightning.stages.coarse.CoarseSettings`, :func:`~sal_lightning.stages.coarse.score_coarse`
and :class:`~sal_lightning.stages.coarse.CoarseScores`); :mod:`sal_lightning.pipeline` runs them
in order with a manifest and resume. The workdir they share::

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

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sal_lightning.stages.trainer import TrainerSettings


@dataclass(frozen=True)
class Workdir:
    """The artefacts of a pipeline's workdir by name (see the module docstring).

    ``Workdir(Path("runs/voc")).proxies`` is ``runs/voc/step1/proxies``; :data:`ARTEFACTS` (a
    workdir at ``.``) gives the workdir-relative paths that steps declare they read and write.
    """

    folder: Path = Path()

    def path(self, artefact: str) -> Path:
        """Any artefact by its workdir-relative path (a step of your own writes its own)."""
        return self.folder / artefact

    @property
    def step1(self) -> Path:
        """Step 1's work folder (``sal_lightning.stages.proxies``)."""
        return self.folder / "step1"

    @property
    def proxies(self) -> Path:
        """The proxy annotations, one PNG per id (step 1's, or an imported folder)."""
        return self.step1 / "proxies"

    @property
    def p1(self) -> Path:
        """Step 1's network on the evaluation split, without tags (the P1 row)."""
        return self.step1 / "p1" / "proxies"

    @property
    def step1_report(self) -> Path:
        """Step 1's report: seed and proxy quality, the trainings' losses."""
        return self.step1 / "proxies.json"

    @property
    def references(self) -> Path:
        """The reference masks H_i, one PNG per id."""
        return self.folder / "references"

    @property
    def coarse(self) -> Path:
        """The coarse step's folder."""
        return self.folder / "coarse"

    @property
    def coarse_scores(self) -> Path:
        """AC, CD and SC of every proxy."""
        return self.coarse / "scores.csv"

    @property
    def scorer(self) -> Path:
        """The fine scorer's folder: its training set and checkpoints."""
        return self.folder / "scorer"

    @property
    def scorer_checkpoint(self) -> Path:
        """The trained fine scorer."""
        return self.scorer / "scorer.ckpt"

    @property
    def scorer_record(self) -> Path:
        """How the fine scorer was trained (method, network, epochs, batch, samples)."""
        return self.scorer / "scorer.json"

    @property
    def fine(self) -> Path:
        """The fine step's folder."""
        return self.folder / "fine"

    @property
    def fine_scores(self) -> Path:
        """The coarse scores with P and SF."""
        return self.fine / "scores.csv"

    @property
    def scores(self) -> Path:
        """Every score and the weights of the refined selection (P4, P5)."""
        return self.folder / "scores.csv"

    @property
    def scores_record(self) -> Path:
        """The sidecar of :attr:`scores`."""
        return self.folder / "scores.json"

    @property
    def selection(self) -> Path:
        """The other selections' tables and the summary of all."""
        return self.folder / "selection"

    @property
    def coarse_selection(self) -> Path:
        """The scores with the weights of the coarse selection (P3)."""
        return self.selection / "coarse.csv"

    @property
    def oracle_selection(self) -> Path:
        """The scores with the oracle's weights (where ground truth exists)."""
        return self.selection / "oracle.csv"

    @property
    def selection_summary(self) -> Path:
        """Each selection's threshold, count, zero scores and total weight."""
        return self.selection / "summary.json"

    @property
    def retrain(self) -> Path:
        """The retrainings' folder."""
        return self.folder / "retrain"

    def retrained(self, variant: str) -> Path:
        """One variant's retrainings: ``seed<k>.ckpt``."""
        return self.retrain / variant

    @property
    def evaluation(self) -> Path:
        """The evaluation's predictions, ``results.json`` and ``inference.json``."""
        return self.folder / "evaluation"

    @property
    def results(self) -> Path:
        """mIoU per variant and seed."""
        return self.evaluation / "results.json"

    @property
    def inference(self) -> Path:
        """The inference every evaluated run used."""
        return self.evaluation / "inference.json"

    @property
    def report(self) -> Path:
        """The report."""
        return self.folder / "report.md"

    @property
    def report_data(self) -> Path:
        """The report's figures as JSON."""
        return self.folder / "report.json"

    @property
    def figures(self) -> Path:
        """The report's plots."""
        return self.folder / "figures"


#: the workdir's artefacts as workdir-relative paths (what steps declare they read and write)
ARTEFACTS = Workdir()


def names(paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """Workdir-relative paths as the strings the manifest records (``step1/proxies``)."""
    return tuple(Path(p).as_posix() for p in paths)


@dataclass
class StepContext:
    """What a running step gets besides its configuration.

    Attributes:
        workdir: the pipeline's folder; artefacts are paths relative to it.
        trainer: the settings of every ``lightning.Trainer`` a step builds (``accelerator``,
            ``devices``, ``strategy``, ``num_nodes``...), so all steps scale alike.
        fresh: True when the step's outputs were cleared before this run (new configuration);
            False when a previous interrupted run with the same configuration left partial
            outputs that the step may reuse.
    """

    workdir: Path
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    fresh: bool = True

    @property
    def paths(self) -> Workdir:
        """The workdir's artefacts by name."""
        return Workdir(self.workdir)

    def path(self, artefact: str) -> Path:
        """Any artefact by its workdir-relative path."""
        return self.workdir / artefact


class Step:
    """Base class of pipeline steps. Subclasses are dataclasses; their fields are the configuration.

    Class attributes:
        kind: the step's kind, used as its default name (``"coarse"``), the configuration
            section that holds its settings.
        reads: artefacts (workdir-relative paths, e.g. from :data:`ARTEFACTS`) that must exist
            before the step runs.
        writes: artefacts the step produces; cleared when the step re-runs with a new configuration.
        sources: names of fields that hold folders outside the workdir which the step reads; their
            content hash is part of the step's configuration, so a changed file re-runs the step.
    """

    kind: ClassVar[str] = "step"
    reads: ClassVar[tuple[str | os.PathLike[str], ...]] = ()
    writes: ClassVar[tuple[str | os.PathLike[str], ...]] = ()
    sources: ClassVar[tuple[str, ...]] = ()

    @property
    def name(self) -> str:
        """The step's unique name in a pipeline (the kind, unless a subclass qualifies it)."""
        return self.kind

    def inputs(self) -> tuple[str, ...]:
        """Artefacts read by this instance (defaults to the class's ``reads``)."""
        return names(self.reads)

    def outputs(self) -> tuple[str, ...]:
        """Artefacts written by this instance (defaults to the class's ``writes``)."""
        return names(self.writes)

    def batch_sizes(self) -> dict[str, int]:
        """The training batch sizes of this step by setting name (``{"data.batch_size": 7}``); the
        pipeline checks that the trainer settings can divide them (global batches). The default:
        those its ``settings`` declare with a ``batch_sizes()`` method, else none."""
        settings = getattr(self, "settings", None)
        sizes = getattr(settings, "batch_sizes", None)
        return dict(sizes()) if callable(sizes) else {}

    def check(self) -> None:
        """Validate the configuration and the inputs from outside the workdir without doing any work.

        The pipeline calls it for every step before the first one runs, so a bad setting fails in
        the first second, not hours later when its step starts. Raise ``ValueError`` (a setting),
        ``FileNotFoundError`` (an input) or ``ImportError`` (a missing extra) with a message naming
        the setting or file and the fix. The default checks nothing.
        """

    def run(self, ctx: StepContext) -> dict[str, Any]:
        """Do the work; return a JSON-able summary (metrics, counts) for the manifest."""
        raise NotImplementedError


def mean(values: Iterable[float]) -> float:
    """The mean of ``values`` without the NaNs (NaN when none is left): a step's summary figure."""
    array = np.array(list(values), dtype=np.float64)
    return float(np.nanmean(array)) if array.size and not np.isnan(array).all() else math.nan
