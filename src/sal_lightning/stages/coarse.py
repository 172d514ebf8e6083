"""Coarse scores of a folder of proxies (SAL-Net Eq. 3-5) into ``scores.csv``, as a predict loop.

:class:`CoarseSettings` holds the settings of Eq. 3 and the loader's; :func:`score_coarse` writes
AC, CD and SC of every proxy; :class:`CoarseScores` is the pipeline's step (``step1/proxies`` and
``references/`` in, ``coarse/scores.csv`` out). Image decoding, reference masks and their CRFs run
in DataLoader worker processes (``num_workers``); the loop shards across DDP ranks and
:class:`~sal_lightning.callbacks.ScoresWriter` gathers the rows (rank 0 writes the table).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sal_lightning.data.layout import resolve_ids
from sal_lightning.data.saliency import SaliencySource
from sal_lightning.scoring.coarse import ObjectnessFn, check_accuracy_settings, objectness_name
from sal_lightning.scoring.metrics import Definition
from sal_lightning.scoring.objectness import mask_objectness
from sal_lightning.stages.checks import check_at_least, check_split
from sal_lightning.stages.references import ReferenceSettings
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext, mean
from sal_lightning.stages.trainer import TrainerSettings, make_trainer

PathLike = str | os.PathLike[str]
Rows = dict[str, dict[str, float]]


@dataclass(frozen=True)
class CoarseSettings:
    """The coarse scores' settings (the pipeline's ``coarse`` section): Eq. 3's and the loader's.

    Attributes:
        b: exponent of the objectness term, ``>= 0`` (paper: 0.1; 0: F has no effect).
        definition: ``"paper"`` (Eq. 3 as printed) or ``"fmeasure"`` (standard F1).
        objectness: ``F(B)``; the default edge-alignment
            :func:`~sal_lightning.scoring.objectness.mask_objectness`, ``None`` for F = 1. Must be
            picklable (a module-level function) to run under DDP.
        batch_size: images per predict step.
        num_workers: DataLoader worker processes (image decoding, reference CRFs).
    """

    b: float = 0.1
    definition: Definition = "paper"
    objectness: ObjectnessFn | None = field(default=mask_objectness)
    batch_size: int = 8
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_accuracy_settings(self.b, self.definition, self.objectness)
        check_at_least("batch_size", self.batch_size, minimum=1)
        check_at_least("num_workers", self.num_workers, minimum=0)

    def accuracy(self) -> dict[str, Any]:
        """The settings of Eq. 3 as keyword arguments (of
        :func:`~sal_lightning.scoring.coarse.accuracy_batch` and its kin)."""
        return {"b": self.b, "definition": self.definition, "objectness": self.objectness}

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view of Eq. 3's settings (the objectness function by qualified name)."""
        return {**self.accuracy(), "objectness": objectness_name(self.objectness)}


def _source_name(saliency: SaliencySource) -> str | None:
    if saliency is None:
        return None
    return repr(saliency) if callable(saliency) else str(saliency)


def score_coarse(
    root: PathLike,
    proxies: PathLike,
    *,
    scores: PathLike,
    split: str | Sequence[str] | None = None,
    references: PathLike | None = None,
    saliency: SaliencySource = None,
    reference_settings: ReferenceSettings | None = None,
    settings: CoarseSettings | None = None,
    trainer: TrainerSettings | None = None,
) -> Rows:
    """Write ``ac``, ``cd``, ``sc`` of every proxy to ``scores``; returns ``{id: {ac, cd, sc}}``.

    Args:
        root: VOC root (images and tags).
        proxies: folder of proxy annotations ``<id>.png``.
        scores: the ``scores.csv`` to write or update (columns other steps filled are kept).
        split: split name, list file or ids; ``None``: every PNG in ``proxies``.
        references: folder of reference masks: read where they exist, else built from ``saliency``
            and written there (``None``: built and not kept).
        saliency: folder of saliency PNGs, a callable, or ``None`` (the built-in method).
        reference_settings: how saliency becomes a reference mask (its ``processes`` are not used:
            the masks are built in the DataLoader workers).
        settings: the settings of Eq. 3 (``b``, definition, objectness) and of the loader.
        trainer: Lightning settings (``devices=N`` shards the images across N processes).
    """
    from sal_lightning.callbacks.writers import ScoresWriter
    from sal_lightning.data.datamodules import make_loader
    from sal_lightning.data.proxy_data import CoarseScoringDataset, list_collate
    from sal_lightning.models.coarse import CoarseScorer

    settings = settings or CoarseSettings()
    reference_settings = reference_settings or ReferenceSettings()
    ids = resolve_ids(root, split, proxies)
    dataset = CoarseScoringDataset(
        root,
        ids,
        proxies,
        references=references,
        saliency=saliency,
        reference_arguments=reference_settings.mask_arguments(),
    )
    loader = make_loader(dataset, settings.batch_size, num_workers=settings.num_workers, collate=list_collate)
    config = {
        "step": "coarse",
        "proxies": str(proxies),
        "references": None if references is None else str(references),
        "saliency": _source_name(saliency),
        "reference": reference_settings.mask_arguments(),
        "coarse": settings.as_dict(),
    }
    writer = ScoresWriter(scores, ("ac", "cd", "sc"), config)
    make_trainer(trainer, callbacks=[writer], progress=True).predict(
        CoarseScorer(**settings.accuracy()), loader, return_predictions=False
    )
    return writer.rows


@dataclass
class CoarseScores(Step):
    """AC, CD and SC of every proxy (Eq. 3-5) into ``coarse/scores.csv``."""

    kind = "coarse"
    reads = (ARTEFACTS.proxies, ARTEFACTS.references)
    writes = (ARTEFACTS.coarse,)
    root: str
    split: str
    settings: CoarseSettings

    def check(self) -> None:
        check_split(self.root, self.split, argument="train_split")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        rows = score_coarse(
            self.root,
            ctx.paths.proxies,
            scores=ctx.paths.coarse_scores,
            split=self.split,
            references=ctx.paths.references,
            settings=self.settings,
            trainer=ctx.trainer.with_progress(False),  # bars where steps train
        )
        return {"scored": len(rows), "mean_sc": mean(r["sc"] for r in rows.values())}
