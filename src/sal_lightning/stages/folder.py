"""Score any folder of pseudo-labels end to end: coarse scores, a fine scorer trained on the folder
itself (or a trained one), ``p`` and ``sf``, then the selection weights, in one fresh ``scores.csv``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sal_lightning.data.io import read_scores, scores_sidecar
from sal_lightning.data.layout import resolve_ids
from sal_lightning.data.saliency import SaliencySource
from sal_lightning.scoring.coarse import CoarseConfig
from sal_lightning.scoring.references import ReferenceConfig
from sal_lightning.stages.coarse import score_coarse
from sal_lightning.stages.fine import score_fine
from sal_lightning.stages.scorer import ScorerSettings, train_scorer
from sal_lightning.stages.select import Selection, select_scores
from sal_lightning.stages.trainer import TrainerOptions

PathLike = str | os.PathLike[str]
Rows = dict[str, dict[str, float]]
#: the scorer :func:`score_folder` trains by default: the library's method, quick on any folder
REFERENCE_SCORER = ScorerSettings(method="reference")


def score_folder(
    root: PathLike,
    proxies: PathLike,
    scores: PathLike,
    split: str | Sequence[str] | None = None,
    references: PathLike | None = None,
    saliency: SaliencySource = None,
    reference: ReferenceConfig | None = None,
    coarse: CoarseConfig | None = None,
    checkpoint: PathLike | None = None,
    scorer: ScorerSettings | None = REFERENCE_SCORER,
    selection: Selection | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    trainer: TrainerOptions | None = None,
) -> Rows:
    """Score a folder of pseudo-labels; returns the rows of ``scores`` (on rank 0; the other ranks
    of a DDP run return no rows).

    Args:
        root: VOC-layout root with the images (and tags).
        proxies: folder of pseudo-labels ``<id>.png``.
        scores: the ``scores.csv`` to write: it holds exactly this run's rows and columns, built
            beside it and moved into place at the end (an interrupted run leaves the previous
            table as it was).
        split: split name, list file or ids; ``None``: every PNG in ``proxies``.
        references: folder of reference masks, read or built and kept (default, when a scorer
            is trained: ``references/`` beside ``scores``).
        saliency: folder of saliency PNGs, a callable, or ``None`` (the built-in method).
        reference: how saliency becomes a reference mask.
        coarse: the settings of Eq. 3.
        checkpoint: a trained scorer's checkpoint; else ``scorer`` is trained on this folder (a
            checkpoint with scorer settings other than the default is refused: they would do nothing).
        scorer: the scorer trained on this folder when no ``checkpoint`` is given (in ``scorer/``
            beside ``scores``; default: the library's reference method); ``None`` with no
            checkpoint: coarse scores only (``p`` and ``sf`` empty), and the weights follow SC.
        selection: threshold or share and weight mode of Eq. 9 (on SF, or SC without a scorer).
        batch_size: images per predict step (masks per fine step: twice as many).
        num_workers: DataLoader worker processes.
        trainer: Lightning settings (``devices=N`` shards every loop across N processes).
    """
    if checkpoint is not None and scorer is not None and scorer != REFERENCE_SCORER:
        raise ValueError(
            "checkpoint and scorer: a trained checkpoint scores the proxies, so the scorer settings "
            "would train nothing; give one of them (--scorer null with --checkpoint)"
        )
    from lightning.pytorch.utilities import rank_zero_only

    rank = int(getattr(rank_zero_only, "rank", 0))  # set from the launcher's environment
    target = Path(scores)
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")
    if rank == 0:
        for leftover in (partial, scores_sidecar(partial)):
            leftover.unlink(missing_ok=True)
    ids = resolve_ids(root, split, proxies)
    train = checkpoint is None and scorer is not None
    if train and scorer is not None:  # a global batch that does not divide fails before any work
        (trainer or TrainerOptions()).local_batch(scorer.batch, "scorer.batch_size")
    if train and references is None:
        references = target.parent / "references"
    score_coarse(
        root, proxies, partial, ids, references, saliency, reference, coarse, batch_size, num_workers, trainer
    )
    model = checkpoint
    if train:
        assert scorer is not None and references is not None
        work = target.parent / "scorer"
        model, _ = train_scorer(root, proxies, references, work, ids, scorer, partial, trainer)
    if model is not None:
        score_fine(root, proxies, model, partial, ids, 2 * batch_size, num_workers, trainer)
    if rank != 0:  # rank 0 selects and moves the table into place
        return {}
    select_scores(partial, "sf" if model is not None else "sc", selection)
    os.replace(scores_sidecar(partial), scores_sidecar(target))
    os.replace(partial, target)
    return read_scores(target)
