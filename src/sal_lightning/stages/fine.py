"""Fine scores (SAL-Net Eq. 6-7): the learned scorer's ``P`` of every proxy, then ``SF = P * CD``.

A predict loop (sharded under DDP) of a trained :class:`~sal_lightning.models.MaskScorer` or
:class:`~sal_lightning.models.AgreementNet` over the proxies' foregrounds, resized to the model's
``input_size`` as in training; :class:`~sal_lightning.callbacks.ScoresWriter` writes ``p`` into
``scores.csv`` and :func:`add_sf` the product with the ``cd`` column that coarse scoring filled.
:class:`FineScores` is the pipeline's step (``fine/scores.csv``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sal_lightning.data.io import read_scores, write_scores
from sal_lightning.data.layout import resolve_ids
from sal_lightning.scoring.metrics import fine_score
from sal_lightning.stages.checks import check_at_least
from sal_lightning.stages.scorer import load_scorer
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext, mean
from sal_lightning.stages.trainer import TrainerSettings, make_trainer

if not TYPE_CHECKING:  # annotations only, read without importing Lightning (sal_lightning._lazy)
    MaskScorer = AgreementNet = Any
else:  # the command line takes the checkpoint as a path
    from sal_lightning.models.agreement_net import AgreementNet
    from sal_lightning.models.scorer import MaskScorer

PathLike = str | os.PathLike[str]
Rows = dict[str, dict[str, float]]


@dataclass(frozen=True)
class FineSettings:
    """The fine scores of a pipeline (its ``fine`` section).

    Attributes:
        batch_size: masks per predict step.
        num_workers: DataLoader worker processes.
    """

    batch_size: int = 16
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_at_least("batch_size", self.batch_size, minimum=1)
        check_at_least("num_workers", self.num_workers, minimum=0)


def add_sf(scores: PathLike) -> Rows:
    """Fill ``sf = p * cd`` (Eq. 7) in ``scores`` for every row with a ``p``; returns the rows."""
    import torch

    rows = read_scores(scores)
    ids = [i for i in rows if not math.isnan(rows[i]["p"])]
    if not ids:
        raise ValueError(f"{scores}: column 'p' is empty; run the fine scorer first")
    if any(math.isnan(rows[i]["cd"]) for i in ids):
        raise ValueError(f"{scores}: column 'cd' is incomplete; run coarse scoring first")
    p = torch.tensor([rows[i]["p"] for i in ids], dtype=torch.float64)
    cd = torch.tensor([rows[i]["cd"] for i in ids], dtype=torch.float64)
    sf = fine_score(p, cd).tolist()
    write_scores(
        scores, {i: {"sf": v} for i, v in zip(ids, sf, strict=True)}, {"step": "fine", "sf": "p * cd"}
    )
    return read_scores(scores)


def score_fine(
    root: PathLike,
    proxies: PathLike,
    *,
    checkpoint: PathLike | MaskScorer | AgreementNet,
    scores: PathLike,
    split: str | Sequence[str] | None = None,
    settings: FineSettings | None = None,
    trainer: TrainerSettings | None = None,
) -> Rows:
    """Write the scorer's ``p`` of every proxy and ``sf = p * cd`` to ``scores``; returns the rows.

    Args:
        root: VOC root (the images).
        proxies: folder of proxy annotations ``<id>.png``.
        checkpoint: a :class:`MaskScorer` or :class:`AgreementNet` checkpoint file, or a model.
        scores: the ``scores.csv`` holding ``cd`` (coarse scores) to add ``p`` and ``sf`` to.
        split: split name, list file or ids; ``None``: every PNG in ``proxies``.
        settings: masks per predict step, DataLoader worker processes.
        trainer: Lightning settings (``devices=N`` shards the proxies across N processes).
    """
    from sal_lightning.callbacks.writers import ScoresWriter
    from sal_lightning.data.datamodules import make_loader
    from sal_lightning.data.proxy_data import ProxyMaskDataset

    settings = settings or FineSettings()
    ids = resolve_ids(root, split, proxies)
    table = read_scores(scores) if Path(scores).is_file() else {}
    missing = [i for i in ids if math.isnan(table.get(i, {}).get("cd", math.nan))]
    if missing:
        raise ValueError(
            f"scores: {len(missing)} of {len(ids)} proxies have no cd in {scores}, e.g. {missing[:3]}; "
            "run the coarse scores into it first (sal-lightning score coarse)"
        )
    if isinstance(checkpoint, str | os.PathLike):
        model, source = load_scorer(checkpoint), str(checkpoint)
    else:
        model, source = checkpoint, "in-memory model"
    dataset = ProxyMaskDataset(root, ids, proxies, int(model.hparams["input_size"]))
    writer = ScoresWriter(scores, ("p",), {"step": "fine", "checkpoint": source, "proxies": str(proxies)})
    model.eval()
    loop = make_trainer(trainer, callbacks=[writer], progress=True)
    loader = make_loader(dataset, settings.batch_size, num_workers=settings.num_workers)
    loop.predict(model, loader, return_predictions=False)
    if loop.is_global_zero:
        add_sf(scores)
    loop.strategy.barrier("fine-scores")  # every rank reads the table with its sf
    return read_scores(scores)


@dataclass
class FineScores(Step):
    """P of every proxy from the trained scorer and SF = P * CD (Eq. 7) into ``fine/scores.csv``."""

    kind = "fine"
    reads = (ARTEFACTS.proxies, ARTEFACTS.coarse, ARTEFACTS.scorer)
    writes = (ARTEFACTS.fine,)
    root: str
    split: str
    settings: FineSettings

    def run(self, ctx: StepContext) -> dict[str, Any]:
        table = ctx.paths.fine_scores
        write_scores(table, read_scores(ctx.paths.coarse_scores), {"step": "fine", "from": "coarse"})
        rows = score_fine(
            self.root,
            ctx.paths.proxies,
            checkpoint=ctx.paths.scorer_checkpoint,
            scores=table,
            split=self.split,
            settings=self.settings,
            trainer=ctx.trainer,
        )
        return {"scored": len(rows), "mean_sf": mean(r["sf"] for r in rows.values())}
