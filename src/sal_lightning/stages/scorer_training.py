"""How the library's fine scorers train: :func:`fit_scorer` (one Lightning fit whose checkpoints
name their method), :func:`train_mask_scorer` and :func:`train_agreement_net` on their data, and
the training functions :data:`~sal_lightning.stages.scorer.SCORERS` registers, which get a
:class:`ScorerTraining` (:func:`train_regression`, :func:`train_agreement`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.layout import resolve_ids
from sal_lightning.scoring.synthesis import SynthesisSettings
from sal_lightning.stages.checks import resolve
from sal_lightning.stages.coarse import CoarseSettings
from sal_lightning.stages.trainer import TrainerSettings, final_losses, make_trainer, seed_everything

if not TYPE_CHECKING:  # annotations only, read without importing Lightning (sal_lightning._lazy)
    MaskScorer = AgreementNet = LightningModule = Any
else:
    from lightning.pytorch import LightningModule
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader

    from sal_lightning.data.datamodules import MaskScorerDataModule
    from sal_lightning.models.agreement_net import AgreementNet
    from sal_lightning.models.scorer import MaskScorer

PathLike = str | os.PathLike[str]
#: the checkpoint entry that names the scorer's method
METHOD_KEY = "scorer_method"
#: the file beside a scorer's checkpoints with its training's steps and final losses
TRAINING_FILE = "training.json"


@dataclass(frozen=True)
class ScorerTraining:
    """One training of a fine scorer: what a registered training function gets.

    Attributes:
        root: the VOC root (the images).
        proxies: the folder of the proxies it will score.
        references: the folder of their reference masks.
        folder: the scorer's work folder (checkpoints in ``folder/checkpoints``).
        ids: the image ids.
        method: the scorer's method (its name in the registry).
        module: its LightningModule, ``"package.module:Class"``.
        model: the module's arguments.
        epochs: the training's epochs.
        batch_size: its batch size (per device, or global with ``trainer.batch_sizes="global"``).
        seed: the seed of the training set and of the initial weights.
        synthesis: the settings of a synthesised training set.
        scores: the coarse scores (their ``ac`` column), or ``None``.
        coarse: the settings of Eq. 3 (AC), as the coarse scores used them.
        trainer: Lightning settings.
    """

    root: PathLike
    proxies: PathLike
    references: PathLike
    folder: Path
    ids: list[str]
    method: str
    module: str
    model: dict[str, Any]
    epochs: int
    batch_size: int
    seed: int = 0
    synthesis: SynthesisSettings = field(default_factory=SynthesisSettings)
    scores: PathLike | None = None
    coarse: CoarseSettings | None = None
    trainer: TrainerSettings | None = None

    @property
    def checkpoints(self) -> Path:
        """Where the training's checkpoints go."""
        return self.folder / "checkpoints"

    def network(self) -> LightningModule:
        """The method's network with ``model``, its initial weights from ``seed``."""
        seed_everything(self.seed)
        return resolve(self.module)(**self.model)  # type: ignore[no-any-return]


def fit_scorer(
    model: LightningModule,
    data: MaskScorerDataModule | DataLoader[Any],
    *,
    checkpoint: ModelCheckpoint,
    method: str,
    epochs: int,
    trainer: TrainerSettings | None = None,
) -> None:
    """Fit a scorer for ``epochs``; every checkpoint names ``method``, and ``training.json`` beside
    them holds the steps and the last step's loss."""
    from sal_lightning.callbacks.checkpoint import CheckpointEntry
    from sal_lightning.data.datamodules import MaskScorerDataModule

    # not deterministic=True: adaptive average pooling has no deterministic CUDA backward
    callbacks = [checkpoint, CheckpointEntry(METHOD_KEY, method)]
    loop = make_trainer(
        trainer, callbacks=callbacks, progress=True, max_epochs=epochs, enable_checkpointing=True
    )
    if isinstance(data, MaskScorerDataModule):
        loop.fit(model, datamodule=data)
    else:
        loop.fit(model, data)
    if loop.is_global_zero and checkpoint.dirpath is not None:
        summary = {"steps": loop.global_step, **final_losses(loop)}
        atomic_write_text(Path(checkpoint.dirpath) / TRAINING_FILE, json.dumps(summary, indent=2) + "\n")
    loop.strategy.barrier("scorer-training-summary")


def train_mask_scorer(
    samples: PathLike,
    out: PathLike,
    *,
    model: MaskScorer | None = None,
    max_epochs: int = 50,
    batch_size: int = 8,
    val_fraction: float = 0.1,
    num_workers: int = 0,
    seed: int = 0,
    trainer: TrainerSettings | None = None,
) -> Path:
    """Fit a :class:`MaskScorer` (paper: lr 1e-5, batch 8, 50 epochs) on a sample folder.

    Checkpoints go to ``out``; returns the best one by ``val/loss`` (the last one when there is
    no validation split). ``batch_size`` is per device, or global with
    ``trainer.batch_sizes="global"``.

    Args:
        samples: the sample folder (``sal-lightning score trainset`` writes one).
        out: the folder of the checkpoints.
        model: the network (default: the paper's :class:`MaskScorer`).
        max_epochs: epochs (paper: 50).
        batch_size: samples per step (paper: 8).
        val_fraction: share of the images whose samples validate (0: no validation).
        num_workers: DataLoader worker processes.
        seed: seed of the split and of the shuffling.
        trainer: Lightning settings (``devices=N`` trains on N processes).
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    from sal_lightning.data.datamodules import MaskScorerDataModule
    from sal_lightning.models.scorer import MaskScorer

    seed_everything(seed)
    model = model or MaskScorer()
    data = MaskScorerDataModule(
        samples=str(samples),
        input_size=int(model.hparams["input_size"]),
        val_fraction=val_fraction,
        seed=seed,
        batch_size=(trainer or TrainerSettings()).local_batch(batch_size, "batch_size"),
        num_workers=num_workers,
    )
    monitor = "val/loss" if val_fraction > 0 else None
    checkpoint = ModelCheckpoint(
        dirpath=str(out), filename="scorer-{epoch:02d}", monitor=monitor, save_last=True
    )
    fit_scorer(model, data, checkpoint=checkpoint, method="regression", epochs=max_epochs, trainer=trainer)
    return Path(checkpoint.best_model_path or checkpoint.last_model_path)


def train_agreement_net(
    root: PathLike,
    proxies: PathLike,
    *,
    references: PathLike,
    out: PathLike,
    split: str | Sequence[str] | None = None,
    model: AgreementNet | None = None,
    max_epochs: int = 10,
    batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    trainer: TrainerSettings | None = None,
) -> Path:
    """Fit an :class:`AgreementNet` on the agreement of the proxies and their reference masks;
    returns the checkpoint written to ``out`` (``last.ckpt``)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from sal_lightning.data.datamodules import make_loader
    from sal_lightning.data.proxy_data import AgreementDataset
    from sal_lightning.models.agreement_net import AgreementNet

    seed_everything(seed)
    model = model or AgreementNet()
    ids = resolve_ids(root, split, proxies)
    dataset = AgreementDataset(
        root, ids, proxies, references, input_size=int(model.hparams["input_size"]), hflip=True
    )
    checkpoint = ModelCheckpoint(dirpath=str(out), save_last=True, save_top_k=0)
    batch = (trainer or TrainerSettings()).local_batch(batch_size, "batch_size")
    loader = make_loader(dataset, batch, train=True, num_workers=num_workers, drop_last=False)
    fit_scorer(model, loader, checkpoint=checkpoint, method="agreement", epochs=max_epochs, trainer=trainer)
    return Path(checkpoint.last_model_path)


def train_regression(job: ScorerTraining) -> tuple[Path, int]:
    """The ``"regression"`` scorer: a training set synthesised from the proxies (in
    ``job.folder/samples``), then :func:`train_mask_scorer`; returns the best checkpoint and the
    number of samples."""
    from sal_lightning.stages.trainset import build_scorer_training_set

    samples = build_scorer_training_set(
        job.root,
        job.proxies,
        references=job.references,
        out=job.folder / "samples",
        split=job.ids,
        synthesis=job.synthesis,
        coarse=job.coarse,
        scores=job.scores,
        overwrite=True,
    )
    best = train_mask_scorer(
        samples,
        job.checkpoints,
        model=cast("MaskScorer", job.network()),
        max_epochs=job.epochs,
        batch_size=job.batch_size,
        seed=job.seed,
        trainer=job.trainer,
    )
    index = samples / "samples.csv"
    return best, sum(1 for _ in index.open()) - 1 if index.is_file() else 0


def train_agreement(job: ScorerTraining) -> tuple[Path, int]:
    """The ``"agreement"`` scorer: :func:`train_agreement_net` on the proxies; returns its
    checkpoint and the number of images."""
    best = train_agreement_net(
        job.root,
        job.proxies,
        references=job.references,
        out=job.checkpoints,
        split=job.ids,
        model=cast("AgreementNet", job.network()),
        max_epochs=job.epochs,
        batch_size=job.batch_size,
        seed=job.seed,
        trainer=job.trainer,
    )
    return best, len(job.ids)
