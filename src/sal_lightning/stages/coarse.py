"""Coarse scores of a folder of proxies (SAL-Net Eq. 3-5) into ``scores.csv``, as a predict loop.

Image decoding, reference masks and their CRFs run in DataLoader worker processes
(``num_workers``); the loop shards across DDP ranks and :class:`~sal_lightning.callbacks.ScoresWriter`
gathers the rows (rank 0 writes the table).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from sal_lightning.data.layout import resolve_ids
from sal_lightning.data.saliency import SaliencySource
from sal_lightning.scoring.coarse import CoarseConfig
from sal_lightning.scoring.references import ReferenceConfig
from sal_lightning.stages.checks import check_at_least
from sal_lightning.stages.trainer import TrainerOptions, make_trainer

PathLike = str | os.PathLike[str]
Rows = dict[str, dict[str, float]]


@dataclass(frozen=True)
class CoarseSettings(CoarseConfig):
    """The coarse scores of a pipeline (its ``coarse`` section): the settings of Eq. 3
    (:class:`~sal_lightning.scoring.coarse.CoarseConfig`) and the loader's.

    Attributes:
        batch_size: images per predict step.
        num_workers: DataLoader worker processes (image decoding, reference CRFs).
    """

    batch_size: int = 8
    num_workers: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least("batch_size", self.batch_size, 1)
        check_at_least("num_workers", self.num_workers, 0)


def _source_name(saliency: SaliencySource) -> str | None:
    if saliency is None:
        return None
    return repr(saliency) if callable(saliency) else str(saliency)


def score_coarse(
    root: PathLike,
    proxies: PathLike,
    scores: PathLike,
    split: str | Sequence[str] | None = None,
    references: PathLike | None = None,
    saliency: SaliencySource = None,
    reference: ReferenceConfig | None = None,
    coarse: CoarseConfig | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    trainer: TrainerOptions | None = None,
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
        reference: how saliency becomes a reference mask.
        coarse: the settings of Eq. 3 (``b``, definition, objectness).
        batch_size: images per predict step.
        num_workers: DataLoader worker processes.
        trainer: Lightning settings (``devices=N`` shards the images across N processes).
    """
    from sal_lightning.callbacks.writers import ScoresWriter
    from sal_lightning.data.datamodules import make_loader
    from sal_lightning.data.proxy_data import CoarseScoringDataset, list_collate
    from sal_lightning.models.coarse import CoarseScorer

    check_at_least("batch_size", batch_size, 1)
    check_at_least("num_workers", num_workers, 0)
    coarse = coarse or CoarseConfig()
    reference = reference or ReferenceConfig()
    ids = resolve_ids(root, split, proxies)
    dataset = CoarseScoringDataset(root, ids, proxies, references, saliency, reference)
    loader = make_loader(dataset, batch_size, num_workers=num_workers, collate=list_collate)
    config = {
        "step": "coarse",
        "proxies": str(proxies),
        "references": None if references is None else str(references),
        "saliency": _source_name(saliency),
        "reference": reference.as_dict(),
        "coarse": coarse.as_dict(),
    }
    writer = ScoresWriter(scores, ("ac", "cd", "sc"), config)
    make_trainer(trainer, callbacks=[writer], progress=True).predict(
        CoarseScorer(coarse), loader, return_predictions=False
    )
    return writer.rows
