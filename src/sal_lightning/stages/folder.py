"""Score any folder of pseudo-labels end to end: coarse scores, a fine scorer trained on the folder
itself (or a trained one), ``p`` and ``sf``, then the selection weights, in one fresh ``scores.csv``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sal_lightning.data.io import read_scores, scores_sidecar
from sal_lightning.data.layout import resolve_ids
from sal_lightning.data.saliency import SaliencySource
from sal_lightning.stages.coarse import CoarseSettings, score_coarse
from sal_lightning.stages.fine import FineSettings, score_fine
from sal_lightning.stages.references import ReferenceSettings
from sal_lightning.stages.scorer import ScorerSettings, train_scorer
from sal_lightning.stages.select import SelectSettings, select_scores
from sal_lightning.stages.trainer import TrainerSettings

PathLike = str | os.PathLike[str]
Rows = dict[str, dict[str, float]]
#: the scorer :func:`score_folder` trains by default: the library's agreement method, quick on any folder
AGREEMENT_SCORER = ScorerSettings(method="agreement")


def _check_scorer(
    checkpoint: PathLike | None, scorer: ScorerSettings | None, trainer: TrainerSettings | None
) -> bool:
    """Whether a scorer is trained; refuses scorer settings beside a checkpoint, and a global batch
    that the devices do not divide (before any work)."""
    if checkpoint is not None and scorer is not None and scorer != AGREEMENT_SCORER:
        raise ValueError(
            "checkpoint and scorer: a trained checkpoint scores the proxies, so the scorer settings "
            "would train nothing; give one of them (--scorer null with --checkpoint)"
        )
    if checkpoint is not None or scorer is None:
        return False
    (trainer or TrainerSettings()).local_batch(scorer.batch, "scorer.batch_size")
    return True


def _partial(target: Path, rank: int) -> Path:
    """The table built beside ``target`` until it is complete (rank 0 removes a leftover of an
    interrupted run)."""
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")
    if rank == 0:
        for leftover in (partial, scores_sidecar(partial)):
            leftover.unlink(missing_ok=True)
    return partial


def _score(
    root: PathLike,
    proxies: PathLike,
    *,
    scores: Path,
    ids: list[str],
    references: PathLike | None,
    saliency: SaliencySource,
    reference_settings: ReferenceSettings | None,
    coarse: CoarseSettings,
    checkpoint: PathLike | None,
    scorer: ScorerSettings | None,
    trainer: TrainerSettings | None,
) -> bool:
    """The coarse scores into ``scores``, then (with a ``checkpoint``, or a ``scorer`` trained in
    ``scorer/`` beside it) ``p`` and ``sf``; whether a scorer scored."""
    score_coarse(
        root,
        proxies,
        scores=scores,
        split=ids,
        references=references,
        saliency=saliency,
        reference_settings=reference_settings,
        settings=coarse,
        trainer=trainer,
    )
    model = checkpoint
    if scorer is not None:
        assert references is not None
        model, _ = train_scorer(
            root,
            proxies,
            references=references,
            workdir=scores.parent / "scorer",
            split=ids,
            settings=scorer,
            scores=scores,
            coarse=coarse,
            trainer=trainer,
        )
    if model is None:
        return False
    fine = FineSettings(batch_size=2 * coarse.batch_size, num_workers=coarse.num_workers)
    score_fine(root, proxies, checkpoint=model, scores=scores, split=ids, settings=fine, trainer=trainer)
    return True


def score_folder(
    root: PathLike,
    proxies: PathLike,
    *,
    scores: PathLike,
    split: str | Sequence[str] | None = None,
    references: PathLike | None = None,
    saliency: SaliencySource = None,
    reference_settings: ReferenceSettings | None = None,
    coarse: CoarseSettings | None = None,
    checkpoint: PathLike | None = None,
    scorer: ScorerSettings | None = AGREEMENT_SCORER,
    selection: SelectSettings | None = None,
    trainer: TrainerSettings | None = None,
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
        reference_settings: how saliency becomes a reference mask (built in the DataLoader
            workers).
        coarse: the settings of Eq. 3, images per predict step (masks per fine step: twice as
            many) and DataLoader worker processes.
        checkpoint: a trained scorer's checkpoint; else ``scorer`` is trained on this folder (a
            checkpoint with scorer settings other than the default is refused: they would do nothing).
        scorer: the scorer trained on this folder when no ``checkpoint`` is given (in ``scorer/``
            beside ``scores``; default: the library's agreement method); ``None`` with no
            checkpoint: coarse scores only (``p`` and ``sf`` empty), and the weights follow SC.
        selection: threshold or share and weight mode of Eq. 9 (on SF, or SC without a scorer), and
            the share below which the selection fails.
        trainer: Lightning settings (``devices=N`` shards every loop across N processes).
    """
    train = _check_scorer(checkpoint, scorer, trainer)
    from lightning.pytorch.utilities import rank_zero_only

    rank = int(getattr(rank_zero_only, "rank", 0))  # set from the launcher's environment
    target = Path(scores)
    partial = _partial(target, rank)
    ids = resolve_ids(root, split, proxies)
    if train and references is None:
        references = target.parent / "references"
    scored = _score(
        root,
        proxies,
        scores=partial,
        ids=ids,
        references=references,
        saliency=saliency,
        reference_settings=reference_settings,
        coarse=coarse or CoarseSettings(),
        checkpoint=checkpoint,
        scorer=scorer if train else None,
        trainer=trainer,
    )
    if rank != 0:  # rank 0 selects and moves the table into place
        return {}
    select_scores(partial, "sf" if scored else "sc", settings=selection)
    os.replace(scores_sidecar(partial), scores_sidecar(target))
    os.replace(partial, target)
    return read_scores(target)
